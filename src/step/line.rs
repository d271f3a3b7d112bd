//! `line`: one line present in (or absent from) a file; with `regexp`, the last line
//! matching it is replaced. Lines travel in environment variables, never in argv.

use super::args::{absolute, ere, present};
use super::error::{ArgError, StepError};
use super::facts::{CheckOutput, Gather, Gathered};
use super::file::gatherable;
use super::kind::{Context, Kind, Resolve, Verdict};
use crate::script::{env_line, quote};
use serde::Deserialize;

/// The arguments of a `line` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineArgs {
    pub path: String,
    pub line: Option<String>,
    /// An extended regular expression (awk) selecting the line to replace or remove.
    pub regexp: Option<String>,
    /// `present` (default) or `absent`.
    pub state: Option<String>,
}

/// A line step for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub path: String,
    pub line: Option<String>,
    pub regexp: Option<String>,
    pub present: bool,
}

/// What a line step's check found in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineFacts {
    pub file_exists: bool,
    /// The exact line is there.
    pub exact: bool,
    /// Lines other than the exact one that match the regexp.
    pub matches: usize,
}

impl Line {
    fn env(&self) -> String {
        let mut s = String::new();
        if let Some(l) = &self.line {
            // Verbatim in the script (not a quoted word), so `-v` redaction still finds it.
            s.push_str(&env_line("L", l));
        }
        s.push_str(&format!(
            "R={}\nexport R\n",
            quote(self.regexp.as_deref().unwrap_or(""))
        ));
        s
    }
}

impl Kind for Line {
    const NAME: &'static str = "line";
    const MAY_BLOCK: bool = false;
    type Args = LineArgs;
    type Facts = LineFacts;

    fn new(a: LineArgs, _: &Resolve) -> Result<Line, StepError> {
        let path = absolute("path", a.path)?;
        let present = present(a.state.as_deref())?;
        if present && a.line.is_none() {
            return Err(ArgError::LineMissing.into());
        }
        if !present && a.line.is_none() && a.regexp.is_none() {
            return Err(ArgError::LineNothing.into());
        }
        if a.line.as_deref().is_some_and(|l| l.contains('\n')) {
            return Err(ArgError::LineNewline.into());
        }
        Ok(Line {
            path,
            line: a.line,
            regexp: ere(a.regexp)?,
            present,
        })
    }

    /// `absent` (no file), `exact` when the exact line is there, `match` per other line the
    /// regexp matches.
    fn check(&self) -> String {
        format!(
            "p={}\n{}if [ ! -e \"$p\" ]; then echo absent; else awk 'BEGIN{{l=ENVIRON[\"L\"]; r=ENVIRON[\"R\"]}} $0==l && l!=\"\"{{print \"exact\"}} r!=\"\" && $0 ~ r && $0!=l{{print \"match\"}}' \"$p\"; fi\n",
            quote(&self.path),
            self.env()
        )
    }

    /// Gathered unless the path or the regexp holds a character the pass cannot carry (a
    /// regexp's value travels as one line).
    fn gather(&self) -> Option<Gather<'_>> {
        let regexp = self.regexp.as_deref().unwrap_or("");
        (gatherable(&self.path) && !regexp.contains('\n')).then(|| Gather::Line {
            path: &self.path,
            line: self.line.as_deref().unwrap_or(""),
            regexp,
        })
    }

    fn gathered(&self, g: &Gathered) -> Option<LineFacts> {
        let h = g.line(
            &self.path,
            self.line.as_deref().unwrap_or(""),
            self.regexp.as_deref().unwrap_or(""),
        )?;
        Some(LineFacts {
            file_exists: h.file_exists,
            exact: h.exact,
            matches: h.matches,
        })
    }

    fn read(&self, out: &CheckOutput) -> LineFacts {
        LineFacts {
            file_exists: !out.has("absent"),
            exact: out.has("exact"),
            matches: out.values("match").count(),
        }
    }

    fn evaluate(&self, facts: &LineFacts, _: &Context) -> Verdict {
        if !self.present {
            return if facts.exact || facts.matches > 0 {
                Verdict::change("remove line")
            } else {
                Verdict::Unchanged
            };
        }
        if facts.exact {
            return Verdict::Unchanged;
        }
        let summary = if facts.matches > 0 {
            "replace line"
        } else {
            "add line"
        };
        Verdict::Change {
            summary: summary.into(),
            diff: self.line.as_ref().map(|l| format!("+{l}\n")),
        }
    }

    fn apply(&self) -> String {
        let p = quote(&self.path);
        let prog = if self.present {
            // Runs only when the exact line is missing: replace the last regexp match, else append.
            r#"BEGIN{l=ENVIRON["L"]; r=ENVIRON["R"]} {a[NR]=$0; if(r!="" && $0 ~ r) last=NR} END{for(i=1;i<=NR;i++) print (i==last ? l : a[i]); if(!last) print l}"#
        } else {
            r#"BEGIN{l=ENVIRON["L"]; r=ENVIRON["R"]} (l!="" && $0==l) || (r!="" && $0 ~ r) {next} {print}"#
        };
        format!(
            "{}[ -e {p} ] || : > {p}\nt=$(__rl_tmp {p})\nawk '{prog}' {p} > \"$t\" || {{ rm -f \"$t\"; exit 1; }}\n__rl_commit \"$t\" {p} '' '' ''\n",
            self.env()
        )
    }
}
