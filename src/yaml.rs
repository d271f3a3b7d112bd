//! Reading YAML files the operator wrote: one place that turns serde-saphyr's errors into
//! [`Diagnostic`]s with the file's name, a snippet and a did-you-mean hint, and that guards
//! against empty files, non-UTF-8 bytes and alias bombs. Messages and hints come from the
//! crate's typed error variants, not from its English text.

use crate::bounded::ReadError;
use crate::error::{Diagnostic, did_you_mean};
use serde::de::DeserializeOwned;
use serde_saphyr::{DefaultMessageFormatter, Error as YamlError, MessageFormatter};
use std::path::Path;

/// A source file kept in memory so later validation errors can show snippets.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file as named to rollout, for messages.
    pub path: std::path::PathBuf,
    /// The whole file, valid UTF-8.
    pub text: String,
}

impl Source {
    /// Reads a file through [`crate::bounded`] (only a regular file of at most
    /// [`crate::bounded::MAX_FILE_BYTES`], so a FIFO swapped in cannot block), refusing empty
    /// and non-UTF-8 files with a clear message.
    ///
    /// # Errors
    /// A file that cannot be read, is not a regular file, is too large, is not UTF-8 (located
    /// at the first bad byte) or holds only blank and comment lines.
    pub fn read(path: &Path) -> Result<Source, Diagnostic> {
        Source::read_or_hint(path, None)
    }

    /// [`Source::read`], with `empty_hint` for an empty file (what the file should hold).
    ///
    /// # Errors
    /// As [`Source::read`].
    pub fn read_or_hint(path: &Path, empty_hint: Option<&str>) -> Result<Source, Diagnostic> {
        let bytes =
            crate::bounded::read(path, crate::bounded::MAX_FILE_BYTES).map_err(|e| match e {
                ReadError::Io(e) => Diagnostic::file(path, format!("cannot read file: {e}")),
                other => Diagnostic::file(path, other.to_string()),
            })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = upto.iter().filter(|b| **b == b'\n').count() as u64 + 1;
            let col = upto.iter().rev().take_while(|b| **b != b'\n').count() as u64 + 1;
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            Diagnostic::at(path, &text, line, col, "file is not valid UTF-8")
                .with_hint("save the file as UTF-8")
        })?;
        if text
            .trim()
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            let mut d = Diagnostic::file(path, "file is empty");
            d.hint = empty_hint.map(String::from);
            return Err(d);
        }
        Ok(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    /// Parses the whole file as `T`.
    ///
    /// # Errors
    /// serde-saphyr's error as a located [`Diagnostic`] with a hint where one helps.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Diagnostic> {
        serde_saphyr::from_str_with_options(&self.text, options()).map_err(|e| self.diagnose(&e))
    }

    /// Parses the whole file as `T`, handing back serde-saphyr's typed error to a caller
    /// that words it itself (see [`original`]).
    ///
    /// # Errors
    /// serde-saphyr's error, unchanged.
    pub fn parse_typed<T: DeserializeOwned>(&self) -> Result<T, YamlError> {
        serde_saphyr::from_str_with_options(&self.text, options())
    }

    /// A diagnostic at a line/column of this file.
    pub fn at(&self, line: u64, column: u64, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(&self.path, &self.text, line, column, message)
    }

    /// A diagnostic at `within` (line and column, 1-based) of the string scalar `value` that
    /// starts at `at` in this file: the column inside the value when the fault is on the
    /// value's first line and the scalar is written on one line as it reads (plain or quoted
    /// without escapes before the fault), else the scalar's start.
    pub fn at_in_scalar(
        &self,
        at: Pos,
        value: &str,
        within: Pos,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, column) = scalar_position(&self.text, at, value, within);
        self.at(line, column, message)
    }

    fn diagnose(&self, e: &serde_saphyr::Error) -> Diagnostic {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let cause = original(e);
        let (line, column) = match cause {
            YamlError::UnsupportedTag { tag, .. } => tag_position(&self.text, tag, line, column),
            _ => (line, column),
        };
        let message = message(cause);
        let mut d = if line > 0 {
            self.at(line, column, message)
        } else {
            Diagnostic::file(&self.path, message)
        };
        d.hint = leading_zero_hint(&self.text, line, column).or_else(|| hint(cause));
        d
    }
}

/// A hint for a value written with a leading zero (`mode: 0644`) at `line`:`column` (1-based)
/// of `text`, where an error points: YAML 1.2, which rollout's own files follow, has no octal
/// `0644` (Ansible's YAML 1.1 reads it as the number 420), so such a value is refused where
/// a number is expected. `None` when no such number is there.
pub fn leading_zero_hint(text: &str, line: u64, column: u64) -> Option<String> {
    let src = text.lines().nth((line as usize).checked_sub(1)?)?;
    let rest: String = src
        .chars()
        .skip((column as usize).checked_sub(1)?)
        .collect();
    let word: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let leading_zero =
        word.len() > 1 && word.starts_with('0') && word.chars().all(|c| c.is_ascii_digit());
    leading_zero.then(|| {
        format!(
            "`{word}` has a leading zero, which YAML 1.2 does not read as octal: quote it \
             (`mode: \"{word}\"` for a file mode)"
        )
    })
}

/// See [`Source::at_in_scalar`].
fn scalar_position(text: &str, at: Pos, value: &str, within: Pos) -> Pos {
    let (line, column) = at;
    let (wline, wcol) = within;
    let Some(src_line) = text.lines().nth((line as usize).saturating_sub(1)) else {
        return at;
    };
    let rest: String = src_line
        .chars()
        .skip((column as usize).saturating_sub(1))
        .collect();
    let after_indicator = line > 1
        && text
            .lines()
            .nth(line as usize - 2)
            .map(|l| l.split(" #").next().unwrap_or("").trim_end())
            .is_some_and(|l| l.ends_with('|') || l.ends_with("|-") || l.ends_with("|+"));
    if after_indicator {
        return literal_block_position(text, at, value, within);
    }
    if wline != 1 || wcol <= 1 {
        return at;
    }
    let before: String = value.chars().take((wcol - 1) as usize).collect();
    let quoted = rest.starts_with(['"', '\'']);
    let body = if quoted { &rest[1..] } else { rest.as_str() };
    if before.contains(['\\', '\'', '"']) || !body.starts_with(&before) {
        return at;
    }
    (line, column + wcol - 1 + u64::from(quoted))
}

/// [`scalar_position`] in a literal block scalar (`|`, `|-`, `|+`), which serde-saphyr places
/// at its first line: line N of the value is the file's N-th line from there, at the same
/// indentation. The block's start when the file does not read as the value there.
fn literal_block_position(text: &str, at: Pos, value: &str, within: Pos) -> Pos {
    let (wline, wcol) = within;
    let indent = (at.1 as usize).saturating_sub(1);
    let file_line = text.lines().nth((at.0 + wline) as usize - 2);
    let value_line = value.lines().nth((wline as usize).saturating_sub(1));
    match (file_line, value_line) {
        (Some(f), Some(v)) if f.get(indent..) == Some(v) => (at.0 + wline - 1, at.1 + wcol - 1),
        _ => at,
    }
}

/// Where the tag `tag` of the node at `line`:`column` was written: serde-saphyr places the
/// error at the node (`[` of `!!python/object ["..."]`), the operator wrote the fault at the
/// tag before it. Unchanged if the tag's text is not found before the node (a shorthand
/// written differently).
fn tag_position(text: &str, tag: &str, line: u64, column: u64) -> (u64, u64) {
    let Some(start) = text
        .split_inclusive('\n')
        .nth((line as usize).saturating_sub(1))
    else {
        return (line, column);
    };
    let line_start = start.as_ptr() as usize - text.as_ptr() as usize;
    let node = start
        .char_indices()
        .nth((column as usize).saturating_sub(1))
        .map_or(line_start + start.len(), |(i, _)| line_start + i);
    let Some(at) = text[..node].rfind(tag) else {
        return (line, column);
    };
    let before = &text[..at];
    let tag_line = before.matches('\n').count() as u64 + 1;
    let tag_col = before.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
    (tag_line, tag_col)
}

/// The error under serde-saphyr's wrappers (snippet, alias use-site).
pub fn original(e: &YamlError) -> &YamlError {
    match e {
        YamlError::WithSnippet { error, .. } | YamlError::AliasError { error, .. } => {
            original(error)
        }
        other => other,
    }
}

/// The message without position (we print line and column ourselves), in serde-saphyr's
/// words except where ours say more to an operator.
fn message(e: &YamlError) -> String {
    match e {
        YamlError::Budget { breach, .. } => {
            use serde_saphyr::budget::BudgetBreach as B;
            match breach {
                B::Nodes { .. } | B::Events { .. } => {
                    "the file has more than 200000 values (an alias counts each time it is used)"
                }
                B::Depth { .. } => "the file nests values more than 128 levels deep",
                B::Aliases { .. } | B::AliasAnchorRatio { .. } | B::MergeKeys { .. } => {
                    "the file uses aliases too often (an alias bomb?)"
                }
                _ => "the file is too large to read",
            }
            .into()
        }
        YamlError::MultipleDocuments { .. } => {
            "a second YAML document (after `---`): only one is allowed per file".into()
        }
        // The crate's text ends with advice for programmers (DuplicateKeyPolicy).
        YamlError::DuplicateMappingKey { key: Some(k), .. } => {
            format!("duplicate mapping key: {k}")
        }
        YamlError::DuplicateMappingKey { key: None, .. } => "duplicate mapping key".into(),
        YamlError::UnsupportedTag { tag, .. } => format!("unsupported YAML tag `{tag}`"),
        other => DefaultMessageFormatter
            .format_message(other)
            .trim()
            .to_string(),
    }
}

/// A hint for the errors an operator makes most: a mistyped key, a word for a number.
fn hint(e: &YamlError) -> Option<String> {
    match e {
        YamlError::InvalidScalar { ty, .. } if ty.starts_with(['u', 'i']) => {
            Some("expected a whole number here".into())
        }
        YamlError::SerdeUnknownField {
            field, expected, ..
        } => did_you_mean(field, expected.iter().copied()).map(|c| format!("did you mean `{c}`?")),
        _ => None,
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" from a deserializer that has no
/// typed errors (serde_json, which step arguments go through), the closest field.
pub fn unknown_field_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (word, rest) = rest.split_once('`')?;
    let list = rest
        .split_once("expected one of ")
        .map(|(_, l)| l)
        .or_else(|| rest.split_once("expected ").map(|(_, l)| l))?;
    let candidates: Vec<&str> = list.split(", ").map(|c| c.trim_matches('`')).collect();
    did_you_mean(word, candidates.iter().copied()).map(|c| format!("did you mean `{c}`?"))
}

/// A line and column (1-based) in a source file.
pub type Pos = (u64, u64);

/// A YAML value together with where its direct children were written: for a mapping, each
/// key's position and its value's; for a sequence, each item's. Deeper levels keep only
/// their value. Used where a later error (a step argument that is wrong once rendered, a
/// `notify:` entry naming no handler) must point at the argument itself, not at the step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// The value as `serde_json` sees it (what steps are built from).
    pub value: serde_json::Value,
    /// A mapping's keys in order: the key's position and its value's.
    pub keys: indexmap::IndexMap<String, (Pos, Pos)>,
    /// A sequence's items: each item's position.
    pub items: Vec<Pos>,
}

impl Node {
    /// Where the value of key `key` was written, if this node is a mapping that has it.
    pub fn value_at(&self, key: &str) -> Option<Pos> {
        self.keys.get(key).map(|(_, v)| *v)
    }
}

fn pos<T>(s: &serde_saphyr::Spanned<T>) -> Pos {
    (s.referenced.line(), s.referenced.column())
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl NodeVisitor {
    fn scalar(value: serde_json::Value) -> Node {
        Node {
            value,
            ..Node::default()
        }
    }
}

impl<'de> serde::de::Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Self::scalar(v.into()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Self::scalar(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Self::scalar(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Self::scalar(
            serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into),
        ))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Self::scalar(v.into()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Self::scalar(v.into()))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Self::scalar(serde_json::Value::Null))
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Self::scalar(serde_json::Value::Null))
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        <Node as serde::Deserialize>::deserialize(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut node = Node {
            value: serde_json::Value::Array(Vec::new()),
            ..Node::default()
        };
        let mut values = Vec::new();
        while let Some(item) = seq.next_element::<serde_saphyr::Spanned<Node>>()? {
            node.items.push(pos(&item));
            values.push(item.value.value);
        }
        node.value = serde_json::Value::Array(values);
        Ok(node)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut node = Node::default();
        let mut values = serde_json::Map::new();
        while let Some(k) = map.next_key::<serde_saphyr::Spanned<String>>()? {
            let v = map.next_value::<serde_saphyr::Spanned<Node>>()?;
            node.keys.insert(k.value.clone(), (pos(&k), pos(&v)));
            values.insert(k.value, v.value.value);
        }
        node.value = serde_json::Value::Object(values);
        Ok(node)
    }
}

/// Options for every YAML file we read: duplicate keys are errors (the default), a budget
/// stops alias bombs long before they eat memory, and a tag rollout does not understand
/// (`!vault`, `!!python/object`, a typo) is an error rather than silently dropped, which
/// would change the value's meaning.
fn options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.reject_unsupported_tags = true;
    o.budget = serde_saphyr::budget! { max_aliases: 10_000, max_nodes: 200_000, max_depth: 128 };
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Host {
        port: Option<u16>,
        address: Option<String>,
    }

    fn diagnose(text: &str) -> Diagnostic {
        let src = Source {
            path: "x.yml".into(),
            text: text.to_string(),
        };
        src.parse::<Host>().unwrap_err()
    }

    #[test]
    fn a_number_with_a_leading_zero_gets_a_hint_to_quote_it() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Step {
            mode: Option<u32>,
        }
        let src = Source {
            path: "steps.yml".into(),
            text: "mode: 0644\n".into(),
        };
        let d = src.parse::<Step>().unwrap_err();
        assert_eq!(
            d.hint.as_deref(),
            Some(
                "`0644` has a leading zero, which YAML 1.2 does not read as octal: quote it (`mode: \"0644\"` for a file mode)"
            ),
            "{d}"
        );
    }

    #[test]
    fn hints_come_from_the_error_variant() {
        let d = diagnose("adress: x\n");
        assert_eq!(
            d.message,
            "unknown field `adress`, expected one of port, address"
        );
        assert_eq!(d.hint.as_deref(), Some("did you mean `address`?"));
        let d = diagnose("port: eighty\n");
        assert_eq!((d.line, d.column), (1, 7));
        assert_eq!(d.message, "invalid u16");
        assert_eq!(d.hint.as_deref(), Some("expected a whole number here"));
        let d = diagnose("port: 1\nport: 2\n");
        assert_eq!(d.message, "duplicate mapping key: port");
    }

    #[test]
    fn an_indentation_error_is_not_a_number_error() {
        // Read from the English text, "invalid indentation ..." looked like "invalid i16"
        // and got the hint for a whole number.
        let d = diagnose("address: \"unterminated\n");
        assert_eq!(d.message, "invalid indentation in multiline quoted scalar");
        assert_eq!(d.hint, None);
    }

    #[test]
    fn unknown_tags_are_errors() {
        let d = diagnose("address: !host x\n");
        assert_eq!(d.message, "unsupported YAML tag `!host`");
        assert_eq!((d.line, d.column), (1, 10));
        let d = diagnose("port: 1\naddress: !!python/object:x [\"a\"]\n");
        assert_eq!(d.message, "unsupported YAML tag `!!python/object:x`");
        assert_eq!((d.line, d.column), (2, 10));
        // The core schema's own tags stay usable.
        assert!(
            diagnose("port: !!int 1\naddress: !!str x\nx: 1\n")
                .message
                .contains("`x`")
        );
    }

    #[test]
    fn a_place_inside_a_value_is_found_where_the_file_reads_as_the_value() {
        let text =
            "a: \"x {{ y }}\"\nb: x {{ y }}\nc: |\n  one\n  two {{ y }}\nd: \"\\t {{ y }}\"\n";
        // Quoted, plain, literal block (line 2 of the value), and an escape before the fault
        // (the file does not read as the value: the scalar's start).
        assert_eq!(scalar_position(text, (1, 4), "x {{ y }}", (1, 3)), (1, 7));
        assert_eq!(scalar_position(text, (2, 4), "x {{ y }}", (1, 3)), (2, 6));
        assert_eq!(
            scalar_position(text, (4, 3), "one\ntwo {{ y }}", (2, 5)),
            (5, 7)
        );
        assert_eq!(scalar_position(text, (6, 4), "\t {{ y }}", (1, 3)), (6, 4));
    }

    #[test]
    fn serde_json_unknown_fields_get_the_same_hint() {
        assert_eq!(
            unknown_field_hint("unknown field `pth`, expected one of `path`, `mode`").as_deref(),
            Some("did you mean `path`?")
        );
        assert_eq!(unknown_field_hint("missing field `path`"), None);
    }
}
