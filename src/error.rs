//! Errors the operator reads. Bad input is a [`Diagnostic`]: it names the file, line and
//! column, shows the offending line with a caret and, where we can guess, a hint. Bad input
//! exits with code 2 before any host is touched; host failures exit with code 1.

use std::fmt;
use std::path::{Path, PathBuf};

/// How a command ended, as the process sees it: the one mapping to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Everything done: exit 0.
    Ok,
    /// Nothing failed, but on at least one BBB node with meetings the steps and handlers
    /// that would end them were held back (restart pending): exit 3.
    Held,
    /// At least one host or node failed, or the pool could not be worked on: exit 1.
    Failed,
    /// Bad input (inventory, roles, templates, command line), or a failed preflight
    /// (`assert`) that stopped `plan`/`apply` before any host changed: exit 2.
    Input,
    /// Stopped by Ctrl-C (SIGINT): exit 130, as shells report it.
    Interrupted,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Held => 3,
            Exit::Failed => 1,
            Exit::Input => 2,
            Exit::Interrupted => 130,
        }
    }

    /// `Failed` when `failed`, else `Ok`.
    pub fn failed_if(failed: bool) -> Exit {
        if failed { Exit::Failed } else { Exit::Ok }
    }
}

/// A located error in one of the operator's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the error concerns the whole file.
    pub line: u64,
    /// 1-based; 0 when unknown.
    pub column: u64,
    pub message: String,
    /// The source line(s) with a caret, rendered from the file's text.
    pub snippet: Option<String>,
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic for a whole file (empty, unreadable, not UTF-8).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
            snippet: None,
            hint: None,
        }
    }

    /// A diagnostic at a position, with the snippet cut from `source`.
    pub fn at(
        file: &Path,
        source: &str,
        line: u64,
        column: u64,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            snippet: snippet(source, line, column),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        write!(f, ": {}", self.message)?;
        if let Some(s) = &self.snippet {
            write!(f, "\n{s}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  = hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Renders the line before and the line at `line` with a caret under `column`.
pub fn snippet(source: &str, line: u64, column: u64) -> Option<String> {
    if line == 0 {
        return None;
    }
    let lines: Vec<&str> = source.lines().collect();
    let idx = usize::try_from(line).ok()?.checked_sub(1)?;
    let at = lines.get(idx)?;
    let width = line.to_string().len();
    let mut out = format!("{:width$} |\n", "");
    if idx > 0 {
        out.push_str(&format!(
            "{:>width$} | {}\n",
            line - 1,
            visible(lines[idx - 1])
        ));
    }
    out.push_str(&format!("{line:>width$} | {}\n", visible(at)));
    let col = usize::try_from(column.max(1)).unwrap_or(1) - 1;
    // The caret under the same character once control characters are shown escaped.
    let before: String = at.chars().take(col).collect();
    let col = visible(&before).chars().count() + col.saturating_sub(before.chars().count());
    out.push_str(&format!("{:width$} | {}^", "", " ".repeat(col)));
    Some(out)
}

/// Text for the operator's terminal: control characters other than a newline shown as
/// Rust-style escapes (`\u{1b}`), so a value quoted in an error cannot recolour, clear or
/// rewrite the screen. Applied after redaction, which matches the values as they are.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' => "\n".to_string(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// A source line as it may be printed to a terminal: control characters (an ESC sequence
/// would recolour or clear the operator's screen, a CR would hide what came before) shown
/// as Rust-style escapes, `\u{1b}`; a tab as one space so the caret stays aligned.
fn visible(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            '\t' => " ".to_string(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Words longer than this get no suggestion: nobody mistypes a 65-character key, and the
/// edit distance costs the product of both lengths.
const SUGGEST_MAX_CHARS: usize = 64;

/// The closest candidate to `word` by edit distance, if it is close enough to be a typo: at
/// most 2 edits, or a third of the candidate's length. The distance is the optimal string
/// alignment distance (strsim's `osa_distance`, in characters): a swap of two neighbouring
/// characters, the commonest typo, is one edit, so `wbe1` is nearer to `web1` than to
/// `web`. Of equally near candidates the first wins.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if word.chars().count() > SUGGEST_MAX_CHARS {
        return None;
    }
    candidates
        .into_iter()
        .filter(|c| c.chars().count() <= SUGGEST_MAX_CHARS)
        .map(|c| (strsim::osa_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.chars().count() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        let keys = ["hosts", "children", "vars", "roles"];
        assert_eq!(did_you_mean("childern", keys), Some("children"));
        assert_eq!(did_you_mean("host", keys), Some("hosts"));
        assert_eq!(did_you_mean("zebra", keys), None);
    }

    #[test]
    fn a_swap_is_one_edit_and_the_nearest_name_wins() {
        // Groups are offered before hosts; by Levenshtein `web` and `web1` were both 2 edits
        // from `wbe1`, and the group won.
        assert_eq!(
            did_you_mean("wbe1", ["web", "db", "web1", "db1"]),
            Some("web1")
        );
        assert_eq!(did_you_mean("ngnix", ["nginx", "coturn"]), Some("nginx"));
    }

    #[test]
    fn huge_words_get_no_suggestion_and_cost_nothing() {
        // The hand-written distance allocated a row per character of both words: a
        // megabyte-long key against a long candidate list took seconds.
        let huge = "a".repeat(1_000_000);
        let long = "a".repeat(100);
        assert_eq!(did_you_mean(&huge, ["hosts", long.as_str()]), None);
        let near = "a".repeat(64);
        let cand = format!("{}b", "a".repeat(63));
        assert_eq!(did_you_mean(&near, [cand.as_str()]), Some(cand.as_str()));
    }

    #[test]
    fn control_characters_are_shown_escaped_with_the_caret_aligned() {
        let d = Diagnostic::at(Path::new("x.yml"), "x: \u{1b}[2Jred\u{7}z\n", 1, 12, "bad");
        assert_eq!(
            d.to_string(),
            "error: x.yml:1:12: bad\n  |\n1 | x: \\u{1b}[2Jred\\u{7}z\n  |                     ^"
        );
    }

    #[test]
    fn renders_caret_under_column() {
        let d = Diagnostic::at(Path::new("inv.yml"), "a:\n  b: 1\n", 2, 3, "bad");
        assert_eq!(
            d.to_string(),
            "error: inv.yml:2:3: bad\n  |\n1 | a:\n2 |   b: 1\n  |   ^"
        );
    }
}
