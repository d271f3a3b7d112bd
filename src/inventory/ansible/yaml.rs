//! YAML as ansible-core reads it: PyYAML's `SafeLoader` (YAML 1.1 plain scalars: `yes`/`no`/
//! `on`/`off` are booleans, `0755` is octal, `1_000` is a number, `1e3` is a string since a
//! float's exponent needs a sign) with Ansible's own tags (`!vault`, `!vault-encrypted`,
//! `!unsafe`) and merge keys (`<<`). Built on the YAML event parser under serde-saphyr
//! (`granit-parser`), which gives every node its position and tag, so faults are located
//! and a tag rollout does not know is an error instead of being dropped.
//!
//! Differences from PyYAML, all rare in inventories: timestamps stay strings (PyYAML makes
//! dates that `ansible-inventory` prints back in ISO form, the same text for a plain date),
//! integers beyond 64 bits and `.inf`/`.nan` stay strings (JSON has no such numbers), and
//! `!!binary`, `!!set`, `!!omap` and other tags are refused.

use granit_parser::{Event, Parser, ScalarStyle, Tag};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;

/// The most nodes one document may expand to (aliases counted each time they are used): an
/// alias bomb stops here instead of eating memory.
const MAX_NODES: usize = 1_000_000;

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 256;

/// A YAML node with where it starts (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub line: u64,
    pub column: u64,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A `!vault` value: the vault text (`$ANSIBLE_VAULT;...`), kept encrypted.
    Vault(String),
    Seq(Vec<Node>),
    /// Pairs in document order, merge keys applied, a later duplicate key replacing the
    /// earlier one in place (PyYAML keeps the last value).
    Map(Vec<(Node, Node)>),
}

/// A YAML fault at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

fn err(line: u64, column: u64, message: impl Into<String>) -> YamlError {
    YamlError {
        line,
        column,
        message: message.into(),
    }
}

/// Parses the first document of `text` (an empty stream is `None`, as PyYAML's `load` gives).
///
/// # Errors
/// A syntax error, an unknown tag, a bad merge key, too deep or an alias bomb.
pub fn parse(text: &str) -> Result<Option<Node>, YamlError> {
    let mut b = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        nodes: 0,
    };
    loop {
        match b.next()? {
            Some((Event::StreamStart | Event::DocumentStart(..), _, _)) => {}
            Some((Event::StreamEnd, _, _)) | None => return Ok(None),
            Some((ev, line, col)) => return b.node(ev, line, col, 0).map(Some),
        }
    }
}

struct Builder<'a> {
    parser: Parser<'a, granit_parser::StrInput<'a>>,
    /// Anchored nodes by the parser's id, with their size in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    nodes: usize,
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<Option<(Event<'a>, u64, u64)>, YamlError> {
        loop {
            match self.parser.next_event() {
                None => return Ok(None),
                Some(Err(e)) => {
                    let m = e.marker();
                    return Err(err(m.line() as u64, m.col() as u64 + 1, e.info()));
                }
                Some(Ok((ev, span))) => {
                    let (line, col) = match span.tag_start() {
                        Some(t) => (t.line() as u64, t.col() as u64 + 1),
                        None => (span.start.line() as u64, span.start.col() as u64 + 1),
                    };
                    // Anchors are read from the node events; comments mean nothing to YAML.
                    if matches!(ev, Event::Anchor(..) | Event::Comment(..)) {
                        continue;
                    }
                    return Ok(Some((ev, line, col)));
                }
            }
        }
    }

    fn count(&mut self, n: usize, line: u64, column: u64) -> Result<(), YamlError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(err(
                line,
                column,
                format!("document expands to more than {MAX_NODES} nodes (alias bomb?)"),
            ));
        }
        Ok(())
    }

    fn node(
        &mut self,
        ev: Event<'a>,
        line: u64,
        column: u64,
        depth: usize,
    ) -> Result<Node, YamlError> {
        if depth > MAX_DEPTH {
            return Err(err(
                line,
                column,
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        let before = self.nodes;
        self.count(1, line, column)?;
        let (node, anchor) = match ev {
            Event::Alias(id) => {
                let Some((n, size)) = self.anchors.get(&id).cloned() else {
                    return Err(err(line, column, "alias to an unknown anchor"));
                };
                self.count(size, line, column)?;
                return Ok(Node { line, column, ..n });
            }
            Event::Scalar(text, style, anchor, tag) => {
                (scalar(&text, style, tag.as_deref(), line, column)?, anchor)
            }
            Event::SequenceStart(_, anchor, tag) => {
                check_collection_tag(tag.as_deref(), "seq", line, column)?;
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        Some((Event::SequenceEnd, _, _)) => break,
                        Some((ev, l, c)) => items.push(self.node(ev, l, c, depth + 1)?),
                        None => return Err(err(line, column, "unterminated sequence")),
                    }
                }
                (
                    Node {
                        kind: Kind::Seq(items),
                        line,
                        column,
                    },
                    anchor,
                )
            }
            Event::MappingStart(_, anchor, tag) => {
                check_collection_tag(tag.as_deref(), "map", line, column)?;
                let mut pairs = Pairs::default();
                let mut merged: Vec<(Node, Node)> = Vec::new();
                loop {
                    let key = match self.next()? {
                        Some((Event::MappingEnd, _, _)) => break,
                        Some((ev, l, c)) => {
                            let is_merge = matches!(&ev, Event::Scalar(t, ScalarStyle::Plain, _, None) if t == "<<");
                            let k = self.node(ev, l, c, depth + 1)?;
                            (k, is_merge)
                        }
                        None => return Err(err(line, column, "unterminated mapping")),
                    };
                    let value = match self.next()? {
                        Some((ev, l, c)) => self.node(ev, l, c, depth + 1)?,
                        None => return Err(err(line, column, "unterminated mapping")),
                    };
                    if key.1 {
                        merged = merge_sources(value)?.into_iter().chain(merged).collect();
                        continue;
                    }
                    pairs.insert(key.0, value);
                }
                // Merged keys come first and explicit keys override them (PyYAML's
                // flatten_mapping); among merged mappings the first one listed wins.
                let mut all = Pairs::default();
                for (k, v) in merged.into_iter().chain(pairs.list) {
                    all.insert(k, v);
                }
                (
                    Node {
                        kind: Kind::Map(all.list),
                        line,
                        column,
                    },
                    anchor,
                )
            }
            other => {
                return Err(err(
                    line,
                    column,
                    format!("unexpected YAML event {other:?}"),
                ));
            }
        };
        if anchor != 0 {
            let size = self.nodes - before;
            self.anchors.insert(anchor, (node.clone(), size));
        }
        Ok(node)
    }
}

/// Mapping pairs being collected: a later duplicate key replaces the earlier value in
/// place; scalar keys are found through an index (a mapping of 50 000 hosts stays linear).
#[derive(Default)]
struct Pairs {
    list: Vec<(Node, Node)>,
    index: HashMap<String, usize>,
}

impl Pairs {
    fn insert(&mut self, key: Node, value: Node) {
        let id = match &key.kind {
            Kind::Seq(_) | Kind::Map(_) => None,
            scalar => Some(format!("{scalar:?}")),
        };
        let found = match &id {
            Some(id) => self.index.get(id).copied(),
            None => self.list.iter().position(|(k, _)| k.kind == key.kind),
        };
        match found {
            Some(i) => self.list[i].1 = value,
            None => {
                if let Some(id) = id {
                    self.index.insert(id, self.list.len());
                }
                self.list.push((key, value));
            }
        }
    }
}

/// The pairs a `<<` value contributes, the first mapping of a list winning.
fn merge_sources(value: Node) -> Result<Vec<(Node, Node)>, YamlError> {
    match value.kind {
        Kind::Map(pairs) => Ok(pairs),
        Kind::Seq(items) => {
            let mut out = Pairs::default();
            for item in items.into_iter().rev() {
                let Kind::Map(pairs) = item.kind else {
                    return Err(err(
                        item.line,
                        item.column,
                        "a merge key `<<` takes mappings only",
                    ));
                };
                for (k, v) in pairs {
                    out.insert(k, v);
                }
            }
            Ok(out.list)
        }
        _ => Err(err(
            value.line,
            value.column,
            "a merge key `<<` takes a mapping or a list of mappings",
        )),
    }
}

/// How a tag is written in the source, for messages.
fn spelled(tag: &Tag) -> String {
    tag.original()
}

/// A collection may carry its core tag (`!!map`, `!!seq`) or Ansible's `!unsafe` (its
/// strings stay strings); any other tag is an error.
fn check_collection_tag(
    tag: Option<&Tag>,
    core: &str,
    line: u64,
    column: u64,
) -> Result<(), YamlError> {
    let Some(tag) = tag else { return Ok(()) };
    if tag.core_suffix() == Some(core) {
        return Ok(());
    }
    if tag.handle() == "!" && tag.suffix() == "unsafe" {
        return Ok(());
    }
    Err(err(
        line,
        column,
        format!("unsupported YAML tag `{}`", spelled(tag)),
    ))
}

fn scalar(
    text: &str,
    style: ScalarStyle,
    tag: Option<&Tag>,
    line: u64,
    column: u64,
) -> Result<Node, YamlError> {
    let node = |kind| Node { kind, line, column };
    let Some(tag) = tag else {
        return Ok(node(if style == ScalarStyle::Plain {
            resolve_plain(text)
        } else {
            Kind::Str(text.to_string())
        }));
    };
    if tag.handle() == "!" {
        return match tag.suffix() {
            "vault" | "vault-encrypted" => Ok(node(Kind::Vault(text.to_string()))),
            "unsafe" | "" => Ok(node(Kind::Str(text.to_string()))),
            _ => Err(err(
                line,
                column,
                format!("unsupported YAML tag `{}`", spelled(tag)),
            )),
        };
    }
    let bad = |what: &str| err(line, column, format!("`{text}` is not a valid {what}"));
    match tag.core_suffix() {
        Some("str") => Ok(node(Kind::Str(text.to_string()))),
        Some("null") => match resolve_plain(text) {
            Kind::Null => Ok(node(Kind::Null)),
            _ => Err(bad("null")),
        },
        Some("bool") => match resolve_plain(text) {
            k @ Kind::Bool(_) => Ok(node(k)),
            _ => Err(bad("boolean")),
        },
        Some("int") => match resolve_plain(text) {
            k @ Kind::Int(_) => Ok(node(k)),
            _ => Err(bad("integer")),
        },
        Some("float") => match resolve_plain(text) {
            k @ Kind::Float(_) => Ok(node(k)),
            Kind::Int(i) => Ok(node(Kind::Float(i as f64))),
            _ => Err(bad("float")),
        },
        _ => Err(err(
            line,
            column,
            format!("unsupported YAML tag `{}`", spelled(tag)),
        )),
    }
}

/// A plain scalar's value by PyYAML's implicit resolvers (YAML 1.1).
pub fn resolve_plain(s: &str) -> Kind {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Kind::Bool(true);
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Kind::Bool(false);
        }
        _ => {}
    }
    if let Some(k) = yaml11_int(s) {
        return k;
    }
    if let Some(f) = yaml11_float(s) {
        return Kind::Float(f);
    }
    Kind::Str(s.to_string())
}

fn split_sign(s: &str) -> (i128, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (-1, &s[1..]),
        Some(b'+') => (1, &s[1..]),
        _ => (1, s),
    }
}

/// `[-+]?0b[01_]+`, `[-+]?0[0-7_]+`, `[-+]?(0|[1-9][0-9_]*)`, `[-+]?0x[0-9a-fA-F_]+`,
/// `[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+` (base 60). A value past 64 bits stays a string.
fn yaml11_int(s: &str) -> Option<Kind> {
    let (sign, body) = split_sign(s);
    let digits =
        |t: &str, ok: fn(u8) -> bool| !t.is_empty() && t.bytes().all(|b| ok(b) || b == b'_');
    let value: Option<i128> = if let Some(b) = body.strip_prefix("0b") {
        if !digits(b, |c| c == b'0' || c == b'1') {
            return None;
        }
        i128::from_str_radix(&b.replace('_', ""), 2).ok()
    } else if let Some(h) = body.strip_prefix("0x") {
        if !digits(h, |c| c.is_ascii_hexdigit()) {
            return None;
        }
        i128::from_str_radix(&h.replace('_', ""), 16).ok()
    } else if body == "0" {
        Some(0)
    } else if let Some(o) = body.strip_prefix('0') {
        if !digits(o, |c| (b'0'..=b'7').contains(&c)) {
            return None;
        }
        let o = o.replace('_', "");
        if o.is_empty() {
            Some(0)
        } else {
            i128::from_str_radix(&o, 8).ok()
        }
    } else if body.contains(':') {
        let mut parts = body.split(':');
        let first = parts.next()?;
        if !first.starts_with(|c: char| ('1'..='9').contains(&c))
            || !digits(first, |c| c.is_ascii_digit())
        {
            return None;
        }
        let mut v: i128 = first.replace('_', "").parse().ok()?;
        for p in parts {
            let ok = matches!(p.len(), 1 | 2)
                && p.bytes().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || p.as_bytes()[0] <= b'5');
            if !ok {
                return None;
            }
            v = v.checked_mul(60)?.checked_add(p.parse::<i128>().ok()?)?;
        }
        Some(v)
    } else {
        if !body.starts_with(|c: char| ('1'..='9').contains(&c))
            || !digits(body, |c| c.is_ascii_digit())
        {
            return None;
        }
        body.replace('_', "").parse().ok()
    };
    let v = sign * value?;
    Some(match i64::try_from(v) {
        Ok(i) => Kind::Int(i),
        Err(_) => Kind::Str(s.to_string()),
    })
}

/// `[-+]?([0-9][0-9_]*)?\.[0-9_]*([eE][-+][0-9]+)?` (at least one digit somewhere before the
/// exponent), base 60 `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*`; `.inf`/`.nan` are left as
/// strings (no JSON number).
fn yaml11_float(s: &str) -> Option<f64> {
    let (sign, body) = split_sign(s);
    let sign = sign as f64;
    if body.contains(':') {
        let (whole, frac) = body.split_once('.')?;
        let mut parts = whole.split(':');
        let first = parts.next()?;
        if first.is_empty()
            || !first.starts_with(|c: char| c.is_ascii_digit())
            || !first.bytes().all(|c| c.is_ascii_digit() || c == b'_')
        {
            return None;
        }
        let mut v: f64 = first.replace('_', "").parse().ok()?;
        for p in parts {
            let ok = matches!(p.len(), 1 | 2)
                && p.bytes().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || p.as_bytes()[0] <= b'5');
            if !ok {
                return None;
            }
            v = v * 60.0 + p.parse::<f64>().ok()?;
        }
        if !frac.bytes().all(|c| c.is_ascii_digit() || c == b'_') {
            return None;
        }
        let frac = frac.replace('_', "");
        let f: f64 = if frac.is_empty() {
            0.0
        } else {
            format!("0.{frac}").parse().ok()?
        };
        return Some(sign * (v + f));
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.')?;
    let int_ok = int.is_empty()
        || (int.starts_with(|c: char| c.is_ascii_digit())
            && int.bytes().all(|c| c.is_ascii_digit() || c == b'_'));
    if !int_ok || !frac.bytes().all(|c| c.is_ascii_digit() || c == b'_') {
        return None;
    }
    // `.5` is a float, `-.5` is not (PyYAML's resolver has no sign on that form).
    if int.is_empty() && (body.len() != s.len() || !frac.starts_with(|c: char| c.is_ascii_digit()))
    {
        return None;
    }
    if let Some(e) = exponent {
        let digits = e.strip_prefix(['+', '-'])?;
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    let text = format!(
        "{}.{}{}",
        if int.is_empty() {
            "0".into()
        } else {
            int.replace('_', "")
        },
        frac.replace('_', ""),
        exponent.map(|e| format!("e{e}")).unwrap_or_default()
    );
    let v: f64 = text.parse().ok()?;
    v.is_finite().then_some(sign * v)
}

impl Node {
    /// The node as a key or value name: strings as they are, numbers, booleans and null as
    /// Python's `json.dumps` writes a non-string key (`80`, `true`, `null`).
    pub fn key_text(&self) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            Kind::Null => Some("null".into()),
            _ => None,
        }
    }

    /// The node as a variable value; `vault` makes a `!vault` value (its text, line and
    /// column) into what the caller keeps for it (see `super::value::vaulted_at`).
    ///
    /// # Errors
    /// A mapping key that is a list or a mapping (no variable name), at its position.
    pub fn to_value(&self, vault: &dyn Fn(&str, u64, u64) -> Value) -> Result<Value, YamlError> {
        Ok(match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::Number((*i).into()),
            Kind::Float(f) => {
                Number::from_f64(*f).map_or_else(|| Value::String(f.to_string()), Value::Number)
            }
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Vault(v) => vault(v, self.line, self.column),
            Kind::Seq(items) => Value::Array(
                items
                    .iter()
                    .map(|i| i.to_value(vault))
                    .collect::<Result<_, _>>()?,
            ),
            Kind::Map(pairs) => {
                let mut m = Map::new();
                for (k, v) in pairs {
                    let Some(name) = k.key_text() else {
                        return Err(err(
                            k.line,
                            k.column,
                            "a mapping key must be a plain value, not a list or mapping",
                        ));
                    };
                    m.insert(name, v.to_value(vault)?);
                }
                Value::Object(m)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Value {
        parse(text)
            .unwrap()
            .unwrap()
            .to_value(&|v, _, _| Value::String(format!("VAULT:{}", v.len())))
            .unwrap()
    }

    #[test]
    fn comments_are_ignored_wherever_they_are() {
        let want = serde_json::json!({"all": {"hosts": {"a": null, "b": 1}}});
        for text in [
            "# head\nall:\n  hosts:\n    a:\n    b: 1\n",
            "---\n# head\nall:\n  # inside\n  hosts:\n    a: # after\n    b: 1 # end\n# tail\n",
        ] {
            assert_eq!(value(text), want, "{text}");
        }
    }

    #[test]
    fn plain_scalars_resolve_as_yaml_1_1() {
        for (text, want) in [
            ("yes", serde_json::json!(true)),
            ("Off", serde_json::json!(false)),
            ("~", Value::Null),
            ("0755", serde_json::json!(493)),
            ("0x1F", serde_json::json!(31)),
            ("0b101", serde_json::json!(5)),
            ("1_000", serde_json::json!(1000)),
            ("1:20", serde_json::json!(80)),
            ("-12", serde_json::json!(-12)),
            ("1.5", serde_json::json!(1.5)),
            ("1.0e+3", serde_json::json!(1000.0)),
            ("1e3", serde_json::json!("1e3")),
            ("3.1.2", serde_json::json!("3.1.2")),
            ("08", serde_json::json!("08")),
            ("192.0.2.1", serde_json::json!("192.0.2.1")),
            ("'yes'", serde_json::json!("yes")),
            ("!!str 12", serde_json::json!("12")),
            ("!unsafe '{{ x }}'", serde_json::json!("{{ x }}")),
        ] {
            assert_eq!(value(&format!("k: {text}\n"))["k"], want, "{text}");
        }
    }

    #[test]
    fn vault_values_stay_opaque_and_unknown_tags_are_errors() {
        let v = value("k: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n");
        assert_eq!(v["k"], "VAULT:31");
        let e = parse("a: 1\nb: !secret x\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 4));
        assert_eq!(e.message, "unsupported YAML tag `!secret`");
        assert!(parse("a: !!python/object:os.system [x]\n").is_err());
    }

    #[test]
    fn merge_keys_and_duplicates_follow_pyyaml() {
        let v = value(
            "base: &b {x: 1, y: 2}\nother: &o {y: 3, z: 4}\nk:\n  <<: [*b, *o]\n  x: 9\n  x: 10\n",
        );
        assert_eq!(v["k"], serde_json::json!({"x": 10, "y": 2, "z": 4}));
    }

    #[test]
    fn alias_bombs_stop() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
                p = i - 1
            ));
        }
        assert!(parse(&doc).unwrap_err().message.contains("alias bomb"));
    }
}
