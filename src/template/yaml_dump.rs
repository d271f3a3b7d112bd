//! Ansible's `to_yaml` and `to_nice_yaml` filters (ansible-core 2.19,
//! `lib/ansible/plugins/filter/core.py`): `yaml.dump(value, Dumper=AnsibleDumper,
//! allow_unicode=True, default_flow_style=...)`, where `AnsibleDumper` is PyYAML's
//! `CSafeDumper` (libyaml's emitter) when libyaml is installed, as it is wherever Ansible is
//! packaged, for plain data. This ports what plain data goes through: PyYAML 6's
//! `representer.py` (keys sorted, a list or map of scalars only in flow style `[a, b]` unless
//! `default_flow_style` says otherwise) and `resolver.py` (a string that would read back as
//! something else, `'yes'`, `'123'`, `''`, is quoted), and libyaml 0.2.5's `emitter.c`
//! (which strings are quoted and how, lines folded at `width`, 80 columns), so that the text is
//! Ansible's to the byte. Checked against ansible-core by `tests/jinja_oracle.rs`.
//!
//! Differences: a list or map used twice in one value is written twice, where PyYAML writes an
//! anchor (`&id001`) and an alias; keyword arguments other than `indent`, `width`,
//! `default_flow_style` and `sort_keys` are refused.

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Error, ErrorKind, Value};
use std::sync::LazyLock;

fn bad(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// A node of PyYAML's representation graph.
enum Node {
    /// A scalar's text; `plain_ok`: PyYAML's `implicit[0]`, whether the text read back plain
    /// is the same value (a string `"123"` is not: it would read back as a number).
    Scalar {
        text: String,
        plain_ok: bool,
    },
    Seq(Vec<Node>, bool),
    Map(Vec<(Node, Node)>, bool),
}

/// PyYAML's implicit resolvers (YAML 1.1): a string one of them matches would not read back
/// as a string, so it is quoted.
static RESOLVERS: LazyLock<Vec<regex::Regex>> = LazyLock::new(|| {
    [
        r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
        r"^(?:<<)$",
        r"^(?:~|null|Null|NULL|)$",
        r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
        r"^(?:=)$",
        r"^(?:!|&|\*)$",
    ]
    .iter()
    .map(|r| regex::Regex::new(r).expect("valid resolver"))
    .collect()
});

/// Would PyYAML read `s` back as something other than a string? (Python's `re.match` with
/// `$` also matches before a final newline.)
fn resolves_to_other(s: &str) -> bool {
    let m = |t: &str| RESOLVERS.iter().any(|r| r.is_match(t));
    m(s) || s.strip_suffix('\n').is_some_and(m)
}

/// Python's `repr(float)` as PyYAML's `represent_float` writes it.
fn float_text(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let text = if f == 0.0 || (-4..16).contains(&exp) {
        let mut s = format!("{f}");
        if !s.contains('.') {
            s.push_str(".0");
        }
        s
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    };
    if !text.contains('.') && text.contains('e') {
        text.replacen('e', ".0e", 1)
    } else {
        text
    }
}

/// PyYAML's `SafeRepresenter` for `v`; `flow`: `default_flow_style`.
fn represent(v: &Value, flow: Option<bool>, sort: bool, depth: usize) -> Result<Node, Error> {
    if depth > 64 {
        return Err(bad("to_yaml: nested more than 64 deep"));
    }
    let scalar = |text: String| Node::Scalar {
        text,
        plain_ok: true,
    };
    let collection_flow = |simple: bool| flow.unwrap_or(simple);
    Ok(match v.kind() {
        ValueKind::Undefined => return Err(bad("to_yaml: an undefined value")),
        ValueKind::None => scalar("null".into()),
        ValueKind::Bool => scalar(if v.is_true() { "true" } else { "false" }.into()),
        ValueKind::Number => match v.as_i64() {
            Some(i) if !v.to_string().contains('.') => scalar(i.to_string()),
            _ => scalar(float_text(f64::try_from(v.clone()).unwrap_or(f64::NAN))),
        },
        ValueKind::String => {
            let text = v.as_str().unwrap_or_default().to_string();
            Node::Scalar {
                plain_ok: !resolves_to_other(&text),
                text,
            }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items = v
                .try_iter()?
                .map(|i| represent(&i, flow, sort, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            let simple = items.iter().all(|n| matches!(n, Node::Scalar { .. }));
            Node::Seq(items, collection_flow(simple))
        }
        ValueKind::Map => {
            let mut pairs = Vec::new();
            for k in v.try_iter()? {
                let item = v.get_item(&k)?;
                pairs.push((k, item));
            }
            if sort {
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
            }
            let mut items = Vec::new();
            for (k, item) in pairs {
                items.push((
                    represent(&k, flow, sort, depth + 1)?,
                    represent(&item, flow, sort, depth + 1)?,
                ));
            }
            let simple = items
                .iter()
                .all(|(k, v)| matches!(k, Node::Scalar { .. }) && matches!(v, Node::Scalar { .. }));
            Node::Map(items, collection_flow(simple))
        }
        k => return Err(bad(format!("to_yaml: a {k} cannot be written as YAML"))),
    })
}

/// PyYAML's `ScalarAnalysis`.
struct Analysis {
    empty: bool,
    multiline: bool,
    allow_flow_plain: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_space_or_break(c: char) -> bool {
    matches!(c, '\0' | ' ' | '\t') || is_break(c)
}

/// libyaml's `IS_PRINTABLE`: what it writes as it is (with `allow_unicode`); characters above
/// U+FFFF are not, so they are written `\\UXXXXXXXX` in double quotes.
fn printable(c: char) -> bool {
    c == '\n'
        || ('\x20'..='\x7e').contains(&c)
        || ('\u{a0}'..='\u{d7ff}').contains(&c)
        || (('\u{e000}'..='\u{fffd}').contains(&c) && c != '\u{feff}')
}

/// `Emitter.analyze_scalar` with `allow_unicode=True`.
fn analyze(s: &str) -> Analysis {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return Analysis {
            empty: true,
            multiline: false,
            allow_flow_plain: false,
            allow_block_plain: true,
            allow_single_quoted: true,
        };
    }
    let (mut block_ind, mut flow_ind) = (false, false);
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    if s.starts_with("---") || s.starts_with("...") {
        block_ind = true;
        flow_ind = true;
    }
    let mut preceded_by_ws = true;
    let mut followed_by_ws = chars.len() == 1 || is_space_or_break(chars[1]);
    let (mut prev_space, mut prev_break) = (false, false);
    let last = chars.len() - 1;
    for (i, &c) in chars.iter().enumerate() {
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(c) {
                flow_ind = true;
                block_ind = true;
            }
            if c == '?' || c == ':' {
                flow_ind = true;
                block_ind |= followed_by_ws;
            }
            if c == '-' && followed_by_ws {
                flow_ind = true;
                block_ind = true;
            }
        } else {
            if ",?[]{}".contains(c) {
                flow_ind = true;
            }
            if c == ':' {
                flow_ind = true;
                block_ind |= followed_by_ws;
            }
            if c == '#' && preceded_by_ws {
                flow_ind = true;
                block_ind = true;
            }
        }
        if is_break(c) {
            line_breaks = true;
        }
        special |= !printable(c);
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= i == last;
            break_space |= prev_break;
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            leading_break |= i == 0;
            trailing_break |= i == last;
            space_break |= prev_space;
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = is_space_or_break(c);
        followed_by_ws = i + 2 >= chars.len() || is_space_or_break(chars[i + 2]);
    }
    let mut a = Analysis {
        empty: false,
        multiline: line_breaks,
        allow_flow_plain: true,
        allow_block_plain: true,
        allow_single_quoted: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if break_space || space_break || special {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
        a.allow_single_quoted = false;
    }
    if line_breaks {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if flow_ind {
        a.allow_flow_plain = false;
    }
    if block_ind {
        a.allow_block_plain = false;
    }
    a
}

/// PyYAML's `Emitter`, for the events plain data makes.
struct Emitter {
    out: String,
    indent: Option<usize>,
    indents: Vec<Option<usize>>,
    column: usize,
    whitespace: bool,
    indention: bool,
    flow_level: usize,
    best_indent: usize,
    best_width: usize,
}

impl Emitter {
    fn write(&mut self, data: &str) {
        self.column += data.chars().count();
        self.out.push_str(data);
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        self.indent = match self.indent {
            None if flow => Some(self.best_indent),
            None => Some(0),
            Some(i) if !indentless => Some(i + self.best_indent),
            Some(i) => Some(i),
        };
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().flatten();
    }

    fn write_indicator(&mut self, ind: &str, need_ws: bool, whitespace: bool, indention: bool) {
        if !self.whitespace && need_ws {
            self.write(" ");
        }
        self.write(ind);
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
    }

    fn write_line_break(&mut self) {
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
        self.out.push('\n');
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.write_line_break();
        }
        if self.column < indent {
            self.whitespace = true;
            let pad = " ".repeat(indent - self.column);
            self.write(&pad);
        }
    }

    fn simple_key(node: &Node) -> bool {
        match node {
            Node::Scalar { text, .. } => text.chars().count() <= 128 && !analyze(text).multiline,
            Node::Seq(items, _) => items.is_empty(),
            Node::Map(items, _) => items.is_empty(),
        }
    }

    fn node(&mut self, n: &Node, mapping: bool, simple_key: bool) {
        match n {
            Node::Scalar { text, plain_ok } => {
                self.increase_indent(true, false);
                self.scalar(text, *plain_ok, simple_key);
                self.pop_indent();
            }
            Node::Seq(items, flow) => {
                if self.flow_level > 0 || *flow || items.is_empty() {
                    self.write_indicator("[", true, true, false);
                    self.flow_level += 1;
                    self.increase_indent(true, false);
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            self.write_indicator(",", false, false, false);
                        }
                        if self.column > self.best_width {
                            self.write_indent();
                        }
                        self.node(item, false, false);
                    }
                    self.pop_indent();
                    self.flow_level -= 1;
                    self.write_indicator("]", false, false, false);
                } else {
                    let indentless = mapping && !self.indention;
                    self.increase_indent(false, indentless);
                    for item in items {
                        self.write_indent();
                        self.write_indicator("-", true, false, true);
                        self.node(item, false, false);
                    }
                    self.pop_indent();
                }
            }
            Node::Map(items, flow) => {
                if self.flow_level > 0 || *flow || items.is_empty() {
                    self.write_indicator("{", true, true, false);
                    self.flow_level += 1;
                    self.increase_indent(true, false);
                    for (i, (k, v)) in items.iter().enumerate() {
                        if i > 0 {
                            self.write_indicator(",", false, false, false);
                        }
                        if self.column > self.best_width {
                            self.write_indent();
                        }
                        if Self::simple_key(k) {
                            self.node(k, true, true);
                            self.write_indicator(":", false, false, false);
                        } else {
                            self.write_indicator("?", true, false, false);
                            self.node(k, true, false);
                            if self.column > self.best_width {
                                self.write_indent();
                            }
                            self.write_indicator(":", true, false, false);
                        }
                        self.node(v, true, false);
                    }
                    self.pop_indent();
                    self.flow_level -= 1;
                    self.write_indicator("}", false, false, false);
                } else {
                    self.increase_indent(false, false);
                    for (k, v) in items {
                        self.write_indent();
                        if Self::simple_key(k) {
                            self.node(k, true, true);
                            self.write_indicator(":", false, false, false);
                        } else {
                            self.write_indicator("?", true, false, true);
                            self.node(k, true, false);
                            self.write_indent();
                            self.write_indicator(":", true, false, true);
                        }
                        self.node(v, true, false);
                    }
                    self.pop_indent();
                }
            }
        }
    }

    /// `process_scalar` with `choose_scalar_style` for a scalar without a style of its own.
    fn scalar(&mut self, text: &str, plain_ok: bool, simple_key: bool) {
        let a = analyze(text);
        let split = !simple_key;
        let plain_allowed = if self.flow_level > 0 {
            a.allow_flow_plain
        } else {
            a.allow_block_plain
        };
        if plain_ok && !(simple_key && (a.empty || a.multiline)) && plain_allowed {
            self.write_plain(text, split);
        } else if a.allow_single_quoted && !(simple_key && a.multiline) {
            self.write_single_quoted(text, split);
        } else {
            self.write_double_quoted(text, split);
        }
    }

    fn write_plain(&mut self, text: &str, split: bool) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write(" ");
        }
        self.whitespace = false;
        self.indention = false;
        // Plain scalars have no line breaks (analyze refuses them): only spaces fold.
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut start) = (false, 0);
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > self.best_width && split {
                        self.write_indent();
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        let data: String = chars[start..end].iter().collect();
                        self.write(&data);
                    }
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_break(c)) {
                let data: String = chars[start..end].iter().collect();
                self.write(&data);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
            }
        }
    }

    fn write_breaks(&mut self, chars: &[char]) {
        if chars.first() == Some(&'\n') {
            self.write_line_break();
        }
        for &br in chars {
            if br == '\n' {
                self.write_line_break();
            } else {
                self.whitespace = true;
                self.indention = true;
                self.column = 0;
                self.out.push(br);
            }
        }
        self.write_indent();
    }

    fn write_single_quoted(&mut self, text: &str, split: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks, mut start) = (false, false, 0);
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end
                        && self.column > self.best_width
                        && split
                        && start != 0
                        && end != chars.len()
                    {
                        self.write_indent();
                    } else {
                        let data: String = chars[start..end].iter().collect();
                        self.write(&data);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    self.write_breaks(&chars[start..end]);
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_break(c) || c == '\'') && start < end {
                let data: String = chars[start..end].iter().collect();
                self.write(&data);
                start = end;
            }
            if ch == Some('\'') {
                self.write("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
        }
        self.write_indicator("'", false, false, false);
    }

    /// libyaml's `yaml_emitter_write_double_quoted`: a long line is folded at a space (a
    /// line break reads back as one space; a second space is escaped).
    fn write_double_quoted(&mut self, text: &str, split: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let mut spaces = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if !printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                let data = match c {
                    '\0' => "\\0".to_string(),
                    '\x07' => "\\a".to_string(),
                    '\x08' => "\\b".to_string(),
                    '\t' => "\\t".to_string(),
                    '\n' => "\\n".to_string(),
                    '\x0b' => "\\v".to_string(),
                    '\x0c' => "\\f".to_string(),
                    '\r' => "\\r".to_string(),
                    '\x1b' => "\\e".to_string(),
                    '"' => "\\\"".to_string(),
                    '\\' => "\\\\".to_string(),
                    '\u{85}' => "\\N".to_string(),
                    '\u{a0}' => "\\_".to_string(),
                    '\u{2028}' => "\\L".to_string(),
                    '\u{2029}' => "\\P".to_string(),
                    c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                    c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                    c => format!("\\U{:08X}", c as u32),
                };
                self.write(&data);
                spaces = false;
            } else if c == ' ' {
                if split
                    && !spaces
                    && self.column > self.best_width
                    && i != 0
                    && i != chars.len() - 1
                {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.write("\\");
                    }
                } else {
                    self.write(" ");
                }
                spaces = true;
            } else {
                let mut b = [0; 4];
                self.write(c.encode_utf8(&mut b));
                spaces = false;
            }
            i += 1;
        }
        self.write_indicator("\"", false, false, false);
    }
}

/// `to_yaml(indent=2, width=80, default_flow_style=none, sort_keys=true)`: PyYAML's
/// `yaml.dump` of the value (see the module's documentation).
///
/// # Errors
/// An undefined value, one YAML cannot hold, another keyword.
pub fn to_yaml(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    dump(value, kwargs, None, None)
}

/// `to_nice_yaml(indent=4, ...)`: [`to_yaml`] with block style throughout and an indent of 4.
///
/// # Errors
/// As [`to_yaml`].
pub fn to_nice_yaml(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    dump(value, kwargs, Some(4), Some(false))
}

fn dump(
    value: &Value,
    kwargs: Kwargs,
    indent: Option<usize>,
    flow: Option<bool>,
) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?.or(indent);
    let width = kwargs.get::<Option<usize>>("width")?;
    let flow = if kwargs.has("default_flow_style") {
        kwargs.get::<Option<bool>>("default_flow_style")?
    } else {
        flow
    };
    let sort = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let node = represent(value, flow, sort, 0)?;
    // PyYAML's `Emitter.__init__`.
    let best_indent = indent.filter(|i| (2..10).contains(i)).unwrap_or(2);
    let best_width = width.filter(|w| *w > best_indent * 2).unwrap_or(80);
    let mut e = Emitter {
        out: String::new(),
        indent: None,
        indents: Vec::new(),
        column: 0,
        whitespace: true,
        indention: true,
        flow_level: 0,
        best_indent,
        best_width,
    };
    e.node(&node, false, false);
    // The document's end (libyaml writes no `...` after a plain scalar, as PyYAML does).
    e.write_indent();
    Ok(e.out)
}
