//! Argument shapes several kinds share: flags and numbers that may arrive as rendered text,
//! octal file modes, and the owner/group/mode comparison of file-like kinds.

use super::error::ArgError;
use super::facts::PathStat;
use serde::Deserialize;

/// Accepts `true`/`false` or a rendered string such as "True" or "yes".
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    /// The flag's value; [`ArgError::Flag`] for text that is not a yes or a no.
    pub fn get(&self) -> Result<bool, ArgError> {
        match self {
            Flag::Bool(b) => Ok(*b),
            Flag::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" | "" => Ok(false),
                other => Err(ArgError::Flag(other.to_string())),
            },
        }
    }
}

/// An optional flag's value, `default` when unset.
pub fn flag_or(f: &Option<Flag>, default: bool) -> Result<bool, ArgError> {
    f.as_ref()
        .map(Flag::get)
        .transpose()
        .map(|v| v.unwrap_or(default))
}

/// Accepts a number or a rendered string of digits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Num {
    Int(u64),
    Text(String),
}

impl Num {
    /// The number; [`ArgError::Number`] for text that is not digits.
    pub fn get(&self) -> Result<u64, ArgError> {
        match self {
            Num::Int(n) => Ok(*n),
            Num::Text(s) => s.trim().parse().map_err(|_| ArgError::Number(s.clone())),
        }
    }
}

/// File modes are octal; YAML may give `0644` as the number 644, so digits are read as octal.
/// [`ArgError::Mode`] for anything but one to four octal digits.
pub fn mode(m: &Option<Num>) -> Result<Option<String>, ArgError> {
    let Some(m) = m else { return Ok(None) };
    let s = match m {
        Num::Int(n) => n.to_string(),
        Num::Text(s) => s.trim().trim_start_matches("0o").to_string(),
    };
    if s.is_empty() || s.len() > 4 {
        return Err(ArgError::Mode(s));
    }
    match u32::from_str_radix(&s, 8) {
        Ok(v) if !s.starts_with('+') => Ok(Some(format!("{v:04o}"))),
        _ => Err(ArgError::Mode(s)),
    }
}

/// Normalizes `stat -c %a` output ("644") to the form of [`mode`] ("0644").
pub fn stat_mode(s: &str) -> String {
    u32::from_str_radix(s.trim(), 8)
        .map(|v| format!("{v:04o}"))
        .unwrap_or_else(|_| s.to_string())
}

/// A path argument named `field`: absolute and on one line. [`ArgError::NotAbsolute`] or
/// [`ArgError::PathNewline`] otherwise.
pub fn absolute(field: &'static str, value: String) -> Result<String, ArgError> {
    if !value.starts_with('/') {
        return Err(ArgError::NotAbsolute { field, value });
    }
    if value.contains('\n') {
        return Err(ArgError::PathNewline(field));
    }
    Ok(value)
}

/// An owner or group named `field`, if given: a name `useradd`/`groupadd` would accept
/// (letters, digits, `.`, `_`, `-`, at most 32 characters, a trailing `$` for machine
/// accounts, not starting with `-`) or a numeric id. Anything else (spaces, `:`, a newline,
/// empty) can name no account, and `chown` would fail on the host or read `root:root` as a
/// group change too. [`ArgError::Account`] otherwise.
pub fn account(field: &'static str, value: Option<String>) -> Result<Option<String>, ArgError> {
    let Some(v) = value else { return Ok(None) };
    let name = v.strip_suffix('$').unwrap_or(&v);
    let ok = !name.is_empty()
        && v.len() <= 32
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(Some(v))
    } else {
        Err(ArgError::Account { field, value: v })
    }
}

/// A `regexp` argument as awk reads it (a POSIX extended regular expression), checked when
/// the plan is made rather than by awk on the host: the pattern must parse (with
/// `regex-syntax`, whose syntax is a superset of ERE) and use nothing of the Perl and Rust
/// dialects that ERE lacks (flags and non-capturing groups, `\d`/`\w`/`\s`, Unicode
/// classes, `\b` and `\A`-style assertions, lazy repetition). [`ArgError::Regexp`]
/// otherwise, with the character position of the fault (1-based).
pub fn ere(value: Option<String>) -> Result<Option<String>, ArgError> {
    use regex_syntax::ast::{self, Ast};
    let Some(v) = value else { return Ok(None) };
    let bad = |why: String, column: usize| ArgError::Regexp {
        value: v.clone(),
        why,
        column,
    };
    let parsed = ast::parse::Parser::new().parse(&v);
    let tree = match parsed {
        Ok(t) => t,
        Err(e) => {
            return Err(bad(
                format!("is not a regular expression: {}", e.kind()),
                e.span().start.column,
            ));
        }
    };
    struct Dialect(Option<(&'static str, ast::Span)>);
    impl ast::Visitor for Dialect {
        type Output = Option<(&'static str, ast::Span)>;
        type Err = ();
        fn finish(self) -> Result<Self::Output, ()> {
            Ok(self.0)
        }
        fn visit_pre(&mut self, a: &Ast) -> Result<(), ()> {
            use ast::{AssertionKind as A, GroupKind as G};
            let what = match a {
                Ast::Flags(_) => Some("flags such as `(?i)`"),
                Ast::Group(g) if !matches!(g.kind, G::CaptureIndex(_)) => {
                    Some("`(?:...)` and named groups")
                }
                Ast::ClassPerl(_) => {
                    Some("`\\d`, `\\w` and `\\s` (use `[[:digit:]]` and the like)")
                }
                Ast::ClassUnicode(_) => Some("Unicode classes such as `\\p{L}`"),
                Ast::Assertion(x) if !matches!(x.kind, A::StartLine | A::EndLine) => {
                    Some("assertions other than `^` and `$`")
                }
                Ast::Repetition(r) if !r.greedy => Some("lazy repetition such as `*?`"),
                _ => None,
            };
            if let (None, Some(w)) = (self.0, what) {
                // A repetition's span starts at what it repeats; the fault is its operator.
                let span = match a {
                    Ast::Repetition(r) => r.op.span,
                    _ => *a.span(),
                };
                self.0 = Some((w, span));
            }
            Ok(())
        }
    }
    if let Ok(Some((what, span))) = ast::visit(&tree, Dialect(None)) {
        return Err(bad(
            format!("uses {what}, which awk's extended regular expressions lack"),
            span.start.column,
        ));
    }
    Ok(Some(v))
}

/// Wanted ownership and mode of a file-like step (None: left as found).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ownership {
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Four octal digits, as `mode` gives them.
    pub mode: Option<String>,
}

impl Ownership {
    /// Owner/group/mode differences between what `stat` found and what is wanted, in plan
    /// words ("owner root -> app").
    pub fn changes(&self, current: Option<&PathStat>) -> Vec<String> {
        let mut out = Vec::new();
        let Some(s) = current else { return out };
        if let Some(w) = self.owner.as_deref().filter(|w| *w != s.owner) {
            out.push(format!("owner {} -> {w}", s.owner));
        }
        if let Some(w) = self.group.as_deref().filter(|w| *w != s.group) {
            out.push(format!("group {} -> {w}", s.group));
        }
        let m = stat_mode(&s.mode);
        if let Some(w) = self.mode.as_deref().filter(|w| **w != m) {
            out.push(format!("mode {m} -> {w}"));
        }
        out
    }
}

/// `state:` of kinds that are either present (default) or absent: true when present.
pub fn present(state: Option<&str>) -> Result<bool, ArgError> {
    match state {
        None | Some("present") => Ok(true),
        Some("absent") => Ok(false),
        Some(s) => Err(ArgError::State {
            value: s.to_string(),
            allowed: "present or absent",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_absolute_and_on_one_line() {
        assert_eq!(absolute("path", "/etc/x".into()).unwrap(), "/etc/x");
        for bad in ["etc/x", "", "/etc/a\nb"] {
            assert!(absolute("path", bad.into()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn owners_are_names_an_account_can_have() {
        for good in ["root", "www-data", "_apt", "bbb.user", "1000", "host$"] {
            assert_eq!(
                account("owner", Some(good.into())).unwrap().as_deref(),
                Some(good)
            );
        }
        for bad in [
            "no such user",
            "root:root",
            "",
            "-x",
            "a\nb",
            "$",
            &"a".repeat(33),
        ] {
            let e = account("owner", Some(bad.into())).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("owner `{bad}` is not a user or group name")
            );
        }
        assert_eq!(account("group", None).unwrap(), None);
    }

    #[test]
    fn modes_are_octal_digits() {
        assert_eq!(mode(&Some(Num::Int(644))).unwrap(), Some("0644".into()));
        assert_eq!(
            mode(&Some(Num::Text("0640".into()))).unwrap(),
            Some("0640".into())
        );
        assert_eq!(
            mode(&Some(Num::Text("0o755".into()))).unwrap(),
            Some("0755".into())
        );
        assert!(mode(&Some(Num::Int(999))).is_err());
        assert!(mode(&Some(Num::Text("+7".into()))).is_err());
    }

    #[test]
    fn regexps_are_what_awk_reads() {
        for good in [
            "^PermitRootLogin",
            "a(b|c)+[[:space:]]*$",
            "x{2,3}",
            "\\.conf$",
        ] {
            assert_eq!(ere(Some(good.into())).unwrap().as_deref(), Some(good));
        }
        for (bad, column) in [
            ("a(b", 2),
            ("[a-", 1),
            ("(?i)x", 1),
            ("a\\d", 2),
            ("a*?", 2),
        ] {
            match ere(Some(bad.into())) {
                Err(ArgError::Regexp { column: c, .. }) => assert_eq!(c, column, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(ere(None).unwrap(), None);
    }

    #[test]
    fn flags_accept_rendered_text() {
        assert!(Flag::Text("True".into()).get().unwrap());
        assert!(!Flag::Text("no".into()).get().unwrap());
        assert!(Flag::Text("maybe".into()).get().is_err());
    }
}
