//! Building POSIX shell safely: quoting, heredocs that cannot be closed early by their
//! content, and the markers the controller reads back. Every remote script is sent on
//! stdin and wrapped in a function that is called on its last line, so a script cut off in
//! transit (controller killed) runs nothing at all.
//!
//! A value (anything from an inventory, a role or a template) reaches a script only through
//! this module, in one of three forms, so no value can end a quote, expand, or run:
//! - a word: [`quote`], also for messages, which are built whole in Rust and quoted, never
//!   placed inside `"..."`; a value that may start with `-` goes after `--` (or `--url`),
//!   or is handed to an inner shell as a positional parameter (`sh -c '... "$1"' name VALUE`);
//! - a variable read from a heredoc: [`env_line`], for one-line values that must stay
//!   verbatim in the script text (so secret redaction of `-v` output still finds them);
//! - a heredoc: [`heredoc`] or [`Nonce::heredoc`], whose delimiter is never a line of
//!   the body.
//!
//! A NUL byte cannot be part of a shell word, a variable or a heredoc line: step arguments
//! that carry one are refused before any script is built (`ArgError::Nul`).

use sha2::Digest;

/// `s` as one POSIX sh word that stands for exactly `s`: bare when it holds only characters
/// that are never special, else single-quoted. `s` must not contain NUL (see the module doc).
/// `=` is quoted: a bare `a=b` in a command's first place would be an assignment.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+,".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Lowercase hex SHA-256 of `bytes`, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`, two digits each.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 of `bytes` (with padding) in lines of 76 characters, each ending in a
/// newline, as coreutils' `base64` prints it.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD.encode(bytes);
    // 76-column lines, as coreutils writes them; keeps heredoc lines short.
    let mut out = String::with_capacity(raw.len() + raw.len() / 76 + 1);
    for chunk in raw.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out
}

/// The bytes of standard base64 `text`, whitespace (line breaks) ignored; `None` when it
/// is not valid base64.
pub fn unbase64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(clean).ok()
}

/// A per-run token that makes markers and heredoc delimiters unguessable by content.
#[derive(Debug, Clone)]
pub struct Nonce(
    /// The token, hex digits (16 from [`Nonce::new`]).
    pub String,
);

impl Nonce {
    /// 64 bits from the operating system's random source (16 hex digits). Should that
    /// source fail (it does not on Linux once booted), std's per-process random hash keys
    /// are the fallback: a run must not stop for want of a delimiter.
    pub fn new() -> Nonce {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            use std::hash::BuildHasher;
            let fallback = std::collections::hash_map::RandomState::new().hash_one(now_nanos());
            bytes = fallback.to_le_bytes();
        }
        Nonce(hex(&bytes))
    }

    /// A heredoc carrying `body` verbatim; the delimiter includes the nonce and a tag, so
    /// it cannot be guessed by whoever wrote the body.
    pub fn heredoc(&self, tag: &str, body: &str) -> String {
        here(format!("__RL_{tag}_{}", self.0), "", body)
    }

    /// The prefix of the lines a remote script prints for the controller to read back
    /// (`@@rollout-` and the nonce), which no other output starts with by chance.
    pub fn marker(&self) -> String {
        format!("@@rollout-{}", self.0)
    }
}

/// A heredoc redirection (`<<'DELIM'`), then `rest` (the end of the command line, e.g.
/// ` || true`), then `body` verbatim and the delimiter. The delimiter is `__RL_{tag}__`,
/// lengthened until it is no line of `body`, so the body cannot end the heredoc early.
pub fn heredoc(tag: &str, rest: &str, body: &str) -> String {
    here(format!("__RL_{tag}__"), rest, body)
}

/// Sets and exports shell variable `name` to `value` (one line, no NUL) without a process
/// and without the value ever being parsed by the shell: `read -r` from a heredoc.
pub fn env_line(name: &str, value: &str) -> String {
    let body = format!("{value}\n");
    format!(
        "IFS= read -r {name} {}export {name}\n",
        heredoc(name, " || true", &body)
    )
}

fn here(mut delim: String, rest: &str, body: &str) -> String {
    while body.lines().any(|l| l == delim) {
        delim.push('_');
    }
    let nl = if body.ends_with('\n') || body.is_empty() {
        ""
    } else {
        "\n"
    };
    format!("<<'{delim}'{rest}\n{body}{nl}{delim}\n")
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

impl Default for Nonce {
    fn default() -> Self {
        Nonce::new()
    }
}

/// Wraps a script body so nothing runs unless the whole text arrived.
pub fn whole_or_nothing(body: &str) -> String {
    format!("__rollout_main() {{\n{body}\n}}\n__rollout_main\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("/etc/x.conf"), "/etc/x.conf");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn heredoc_delimiter_never_matches_content() {
        let n = Nonce("x".into());
        let h = n.heredoc("F", "__RL_F_x\nmore\n");
        assert!(h.starts_with("<<'__RL_F_x_'\n"));
        assert!(h.ends_with("\n__RL_F_x_\n"));
    }

    #[test]
    fn fixed_heredoc_lengthens_past_a_body_line_equal_to_it() {
        assert_eq!(heredoc("V", "", "a\n"), "<<'__RL_V__'\na\n__RL_V__\n");
        assert_eq!(
            env_line("V", "__RL_V__"),
            "IFS= read -r V <<'__RL_V___' || true\n__RL_V__\n__RL_V___\nexport V\n"
        );
    }

    #[test]
    fn nonces_are_random_not_derived_from_the_clock() {
        // The hand-made nonce hashed the clock and the pid: nonces made in one instant by
        // one process were only as different as std's hash keys happened to be.
        let many: std::collections::HashSet<String> = (0..10_000).map(|_| Nonce::new().0).collect();
        assert_eq!(many.len(), 10_000);
        assert!(
            many.iter()
                .all(|n| n.len() == 16 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        );
    }
}
