//! `line`: one line present in (or absent from) a file; with `regexp`, the last line
//! matching it is replaced. Lines travel in environment variables, never in argv.

use super::{Probe, Verdict};
use crate::script::quote;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineArgs {
    pub path: String,
    pub line: Option<String>,
    /// An extended regular expression (awk) selecting the line to replace or remove.
    pub regexp: Option<String>,
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub path: String,
    pub line: Option<String>,
    pub regexp: Option<String>,
    pub present: bool,
}

impl Line {
    pub fn new(a: LineArgs) -> Result<Line, String> {
        if !a.path.starts_with('/') {
            return Err(format!("path `{}` must be absolute", a.path));
        }
        let present = match a.state.as_deref() {
            None | Some("present") => true,
            Some("absent") => false,
            Some(s) => return Err(format!("state `{s}` must be present or absent")),
        };
        if present && a.line.is_none() {
            return Err("a present line needs `line`".into());
        }
        if !present && a.line.is_none() && a.regexp.is_none() {
            return Err("an absent line needs `line` or `regexp`".into());
        }
        if a.line.as_deref().is_some_and(|l| l.contains('\n')) {
            return Err("`line` cannot contain a newline".into());
        }
        Ok(Line {
            path: a.path,
            line: a.line,
            regexp: a.regexp,
            present,
        })
    }

    fn env(&self) -> String {
        let mut s = String::new();
        if let Some(l) = &self.line {
            s.push_str(&format!(
                "L=$(cat <<'__RL_L__'\n{l}\n__RL_L__\n)\nexport L\n"
            ));
        }
        s.push_str(&format!(
            "R={}\nexport R\n",
            quote(self.regexp.as_deref().unwrap_or(""))
        ));
        s
    }

    /// Prints `A` (no file), `E` when the exact line is there, and `M` per regexp match.
    pub fn check(&self) -> String {
        format!(
            "p={}\n{}if [ ! -e \"$p\" ]; then echo A; else awk 'BEGIN{{l=ENVIRON[\"L\"]; r=ENVIRON[\"R\"]}} $0==l && l!=\"\"{{print \"E\"}} r!=\"\" && $0 ~ r && $0!=l{{print \"M\"}}' \"$p\"; fi\n",
            quote(&self.path),
            self.env()
        )
    }

    pub fn evaluate(&self, probe: &Probe) -> Verdict {
        let exact = probe.first("E").is_some();
        let matches = probe.tagged("M").count();
        if self.present {
            if exact {
                Verdict::Unchanged
            } else {
                let summary = if matches > 0 {
                    "replace line"
                } else {
                    "add line"
                };
                Verdict::Change {
                    summary: summary.into(),
                    diff: self.line.as_ref().map(|l| format!("+{l}\n")),
                }
            }
        } else if exact || matches > 0 {
            Verdict::change("remove line")
        } else {
            Verdict::Unchanged
        }
    }

    pub fn apply(&self) -> String {
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
