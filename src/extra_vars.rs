//! `-e` / `--extra-vars` as ansible-core 2.19 reads it (`lib/ansible/utils/vars.py`
//! `load_extra_vars`, `lib/ansible/parsing/splitter.py` `parse_kv`; see docs/sources.md):
//!
//! - `@FILE`: a YAML (or JSON) file holding a mapping;
//! - an argument starting with `{` (or `[`): inline YAML/JSON, which must be a mapping;
//! - anything else: `key=value` pairs separated by spaces (`-e 'a=1 b="two words"'`), split
//!   as ansible-core's `split_args` does (quotes and `{{ }}`, `{% %}`, `{# #}` blocks keep
//!   their spaces), backslash escapes decoded (`\n`, `\t`, `\uXXXX`, ...), one pair of
//!   surrounding quotes removed from each value. **Values are strings**, as in Ansible:
//!   `-e n=3` sets the string `"3"`; typed values come from the YAML/JSON forms.
//!
//! Later `-e` arguments replace earlier ones key by key (Ansible's default
//! `hash_behaviour=replace`). An argument starting with `/` or `.` is refused with Ansible's
//! hint to prepend `@`. Unlike Ansible, a word without `=` in the `key=value` form is an
//! error (Ansible silently keeps it as `_raw_params`), and every key must be a variable name
//! a template can use.

use crate::error::Diagnostic;
use crate::yaml::Source;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// One `-e` argument, its inline forms already parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum ExtraVars {
    /// `key=value` pairs or an inline YAML/JSON mapping.
    Vars(Map<String, Value>),
    /// `@FILE`: read when the command runs ([`load`]), so its errors are located.
    File(PathBuf),
}

/// Why an `-e` argument cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadExtraVars {
    /// A word without `=` in the `key=value` form.
    #[error("`{0}` is not KEY=VALUE")]
    NotKeyValue(String),
    /// A key a template could not name (`=1`, `a-b=2`).
    #[error("`{0}` is not a variable name (letters, digits and `_`, not starting with a digit)")]
    NotAName(String),
    /// An unclosed quote or `{{`/`{%`/`{#` block.
    #[error("unbalanced quotes or template block (ansible-core's `split_args` refuses it too)")]
    Unbalanced,
    /// A path without `@`.
    #[error("prepend `@` to read variables from a file (`-e @{0}`)")]
    PathWithoutAt(String),
    /// Inline YAML/JSON that does not parse.
    #[error("not valid YAML/JSON: {0}")]
    Yaml(String),
    /// Inline YAML/JSON that is not a mapping.
    #[error("could not be made into a dictionary (a mapping is needed)")]
    NotAMapping,
    /// `@` with no file name.
    #[error("`@` needs a file name (`-e @vars.yml`)")]
    NoFile,
}

/// Parses one `-e` argument as ansible-core does (see the module documentation). An empty
/// argument sets nothing, as in Ansible.
///
/// # Errors
/// See [`BadExtraVars`].
pub fn parse_arg(arg: &str) -> Result<ExtraVars, BadExtraVars> {
    if let Some(path) = arg.strip_prefix('@') {
        if path.is_empty() {
            return Err(BadExtraVars::NoFile);
        }
        return Ok(ExtraVars::File(PathBuf::from(path)));
    }
    if arg.starts_with('/') || arg.starts_with('.') {
        return Err(BadExtraVars::PathWithoutAt(arg.to_string()));
    }
    if arg.starts_with('{') || arg.starts_with('[') {
        let value: Value =
            serde_saphyr::from_str(arg).map_err(|e| BadExtraVars::Yaml(first_line(&e)))?;
        let Value::Object(map) = value else {
            return Err(BadExtraVars::NotAMapping);
        };
        check_names(&map)?;
        return Ok(ExtraVars::Vars(map));
    }
    let mut map = Map::new();
    for word in split_args(arg)? {
        let word = decode_escapes(&word);
        let Some(at) = unescaped_eq(&word) else {
            return Err(BadExtraVars::NotKeyValue(word.trim().to_string()));
        };
        let key = word[..at].trim();
        if !is_variable_name(key) {
            return Err(BadExtraVars::NotAName(key.to_string()));
        }
        let value = unquote(word[at + 1..].trim());
        map.insert(key.to_string(), Value::String(value.to_string()));
    }
    Ok(ExtraVars::Vars(map))
}

/// All `-e` arguments merged in order (a later one replaces an earlier one's keys), `@FILE`s
/// read now.
///
/// # Errors
/// A file that cannot be read, is empty or not UTF-8, does not parse (located at
/// file:line:column), is not a mapping, or has a key that is not a variable name.
pub fn load(args: &[ExtraVars]) -> Result<Map<String, Value>, Diagnostic> {
    let mut out = Map::new();
    for arg in args {
        match arg {
            ExtraVars::Vars(m) => out.extend(m.clone()),
            ExtraVars::File(path) => out.extend(read_file(path)?),
        }
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<Map<String, Value>, Diagnostic> {
    let source = Source::read_or_hint(
        path,
        Some("an -e @FILE holds a YAML or JSON mapping of variables"),
    )?;
    let value: Value = source.parse()?;
    let Value::Object(map) = value else {
        return Err(Diagnostic::file(
            path,
            "-e @FILE: could not be made into a dictionary (the file must hold a mapping of variables)",
        ));
    };
    check_names(&map).map_err(|e| Diagnostic::file(path, e.to_string()))?;
    Ok(map)
}

fn check_names(map: &Map<String, Value>) -> Result<(), BadExtraVars> {
    match map.keys().find(|k| !is_variable_name(k)) {
        Some(k) => Err(BadExtraVars::NotAName(k.clone())),
        None => Ok(()),
    }
}

/// The first line of serde-saphyr's message, without its own `error: `.
fn first_line(e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// A name a template can refer to: ASCII letters, digits and `_`, not starting with a digit.
pub fn is_variable_name(k: &str) -> bool {
    k.chars().next().is_some_and(|c| !c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The first `=` not preceded by `\`, looked for from the second character on (as
/// `parse_kv` does, so `=a=b` has the key `=a`).
fn unescaped_eq(word: &str) -> Option<usize> {
    let b = word.as_bytes();
    (1..b.len()).find(|&i| b[i] == b'=' && b[i - 1] != b'\\')
}

/// One pair of matching surrounding quotes removed (`quoting.unquote`).
fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() > 1
        && b[0] == b[b.len() - 1]
        && matches!(b[0], b'"' | b'\'')
        && b[b.len() - 2] != b'\\'
    {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Words split at spaces and newlines outside quotes and template blocks
/// (`splitter.split_args`). A quote preceded by `\` does not count.
fn split_args(s: &str) -> Result<Vec<String>, BadExtraVars> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = [0usize; 3]; // {{ }}, {% %}, {# #}
    let mut prev: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        if quote.is_none() && depth == [0; 3] && (c == ' ' || c == '\n') {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev = Some(c);
            continue;
        }
        cur.push(c);
        if matches!(c, '"' | '\'') && prev != Some('\\') {
            match quote {
                Some(q) if q == c => quote = None,
                Some(_) => {}
                None => quote = Some(c),
            }
        } else if c == '{' && matches!(next, Some('{' | '%' | '#')) {
            let i = match next {
                Some('{') => 0,
                Some('%') => 1,
                _ => 2,
            };
            depth[i] += 1;
            cur.push(chars.next().unwrap_or_default());
            prev = next;
            continue;
        } else if matches!(c, '}' | '%' | '#') && next == Some('}') {
            let i = match c {
                '}' => 0,
                '%' => 1,
                _ => 2,
            };
            if depth[i] > 0 {
                depth[i] -= 1;
                cur.push(chars.next().unwrap_or_default());
                prev = next;
                continue;
            }
        }
        prev = Some(c);
    }
    if quote.is_some() || depth != [0; 3] {
        return Err(BadExtraVars::Unbalanced);
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Ok(words)
}

/// Python's escapes as `splitter._decode_escapes` decodes them: `\\ \' \" \a \b \f \n \r
/// \t \v`, `\xHH`, `\uHHHH`, `\UHHHHHHHH`; anything else stays as written (`\N{...}` too).
fn decode_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let simple = match after.chars().next() {
            Some('\\') => Some('\\'),
            Some('\'') => Some('\''),
            Some('"') => Some('"'),
            Some('a') => Some('\x07'),
            Some('b') => Some('\x08'),
            Some('f') => Some('\x0c'),
            Some('n') => Some('\n'),
            Some('r') => Some('\r'),
            Some('t') => Some('\t'),
            Some('v') => Some('\x0b'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            rest = &after[1..];
            continue;
        }
        let hex = match after.chars().next() {
            Some('x') => 2,
            Some('u') => 4,
            Some('U') => 8,
            _ => 0,
        };
        let digits = after
            .get(1..1 + hex)
            .filter(|d| hex > 0 && d.len() == hex && d.bytes().all(|b| b.is_ascii_hexdigit()));
        match digits
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .and_then(char::from_u32)
        {
            Some(c) => {
                out.push(c);
                rest = &after[1 + hex..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(arg: &str) -> Value {
        match parse_arg(arg) {
            Ok(ExtraVars::Vars(m)) => Value::Object(m),
            other => panic!("{arg}: {other:?}"),
        }
    }

    #[test]
    fn key_value_pairs_are_strings_as_in_ansible() {
        // The issue's case: `-e 'a=1 b=2'` set `a` to `1 b=2`.
        assert_eq!(vars("a=1 b=2"), json!({"a": "1", "b": "2"}));
        assert_eq!(
            vars("flag=false n=3.5"),
            json!({"flag": "false", "n": "3.5"})
        );
        assert_eq!(vars("a=  b=x=y"), json!({"a": "", "b": "x=y"}));
        assert_eq!(vars(""), json!({}));
    }

    #[test]
    fn quotes_and_template_blocks_keep_their_spaces() {
        assert_eq!(
            vars(r#"dial="+49 30 999" who='a b' t={{ x | default('y z') }}"#),
            json!({"dial": "+49 30 999", "who": "a b", "t": "{{ x | default('y z') }}"})
        );
        assert_eq!(vars(r#"a="x \"y\" z""#), json!({"a": "x \"y\" z"}));
        assert_eq!(vars("a=1\nb=2"), json!({"a": "1", "b": "2"}));
        assert_eq!(parse_arg("a=\"open"), Err(BadExtraVars::Unbalanced));
        assert_eq!(parse_arg("a={{ x"), Err(BadExtraVars::Unbalanced));
    }

    #[test]
    fn escapes_are_decoded_as_python_does() {
        assert_eq!(
            vars(r"a=x\ty b=\u00e9\x41 c=\q d=k\=v"),
            json!({"a": "x\ty", "b": "éA", "c": "\\q", "d": "k\\=v"})
        );
    }

    #[test]
    fn json_and_yaml_mappings_are_typed() {
        assert_eq!(
            vars(r#"{"a": 1, "b": [true, "x"]}"#),
            json!({"a": 1, "b": [true, "x"]})
        );
        assert_eq!(vars("{a: false, b: 2.5}"), json!({"a": false, "b": 2.5}));
        assert_eq!(parse_arg("[1, 2]"), Err(BadExtraVars::NotAMapping));
        assert!(matches!(parse_arg("{a: "), Err(BadExtraVars::Yaml(_))));
        assert_eq!(
            parse_arg(r#"{"a b": 1}"#),
            Err(BadExtraVars::NotAName("a b".into()))
        );
    }

    #[test]
    fn files_paths_and_bad_words() {
        assert_eq!(
            parse_arg("@vars.yml"),
            Ok(ExtraVars::File("vars.yml".into()))
        );
        assert_eq!(parse_arg("@"), Err(BadExtraVars::NoFile));
        assert_eq!(
            parse_arg("./vars.yml"),
            Err(BadExtraVars::PathWithoutAt("./vars.yml".into()))
        );
        assert_eq!(
            parse_arg("a b=2"),
            Err(BadExtraVars::NotKeyValue("a".into()))
        );
        assert_eq!(parse_arg("=1"), Err(BadExtraVars::NotKeyValue("=1".into())));
        assert_eq!(
            parse_arg("a-b=1"),
            Err(BadExtraVars::NotAName("a-b".into()))
        );
    }

    #[test]
    fn later_arguments_replace_earlier_keys() {
        let args = [parse_arg("a=1 b=2").unwrap(), parse_arg("{b: 3}").unwrap()];
        assert_eq!(
            Value::Object(load(&args).unwrap()),
            json!({"a": "1", "b": 3})
        );
    }
}
