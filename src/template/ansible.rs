//! Ansible's filters that BBB roles use most, as ansible-core 2.19 writes them
//! (`lib/ansible/plugins/filter/core.py`, `lib/ansible/utils/vars.py` `merge_hash`): same
//! arguments, same results, checked expression by expression against Jinja2 with ansible-core's
//! own filters (`tests/jinja_oracle.rs`). Where rollout differs it says so here and in
//! `docs/roles.md`: regular expressions are the `regex` crate's (no look-around, no
//! back-references, `$` only at the very end unless `multiline`), and `hash` knows the SHA
//! family only.

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Error, ErrorKind, Value};
use std::fmt::Write as _;

fn bad(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// The text Ansible's filters take of a value (`to_text(..., nonstring='simplerepr')`):
/// strings as they are, numbers written out; anything else is an error here.
fn text(v: &Value, filter: &str) -> Result<String, Error> {
    match v.kind() {
        ValueKind::String => Ok(v.as_str().unwrap_or_default().to_string()),
        ValueKind::Number => Ok(v.to_string()),
        k => Err(bad(format!("{filter} needs a string, got {k}"))),
    }
}

/// A compiled pattern with Python `re`'s `I` and `M` flags.
fn compile(pattern: &str, ignorecase: bool, multiline: bool) -> Result<regex::Regex, Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| bad(format!("invalid regular expression `{pattern}`: {e}")))
}

/// Python `re.sub`'s replacement (`\1`, `\g<1>`, `\g<name>`, `\n`, `\\`) in the `regex`
/// crate's spelling (`${1}`, `${name}`, `$$` for a literal `$`).
fn replacement(py: &str) -> Result<String, Error> {
    let mut out = String::new();
    let mut chars = py.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                Some(d @ '0'..='9') => {
                    let mut n = d.to_string();
                    if let Some(e @ '0'..='9') = chars.peek().copied() {
                        n.push(e);
                        chars.next();
                    }
                    write!(out, "${{{n}}}").ok();
                }
                Some('g') => {
                    if chars.next() != Some('<') {
                        return Err(bad(format!("bad group reference in `{py}`")));
                    }
                    let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                    if name.is_empty() {
                        return Err(bad(format!("bad group reference in `{py}`")));
                    }
                    write!(out, "${{{name}}}").ok();
                }
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('\\') => out.push('\\'),
                Some(e) if e.is_ascii_alphabetic() => {
                    return Err(bad(format!("bad escape \\{e} in `{py}`")));
                }
                Some(e) => {
                    out.push('\\');
                    if e == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(e);
                    }
                }
                None => return Err(bad(format!("bad escape (end of replacement) in `{py}`"))),
            },
            c => out.push(c),
        }
    }
    Ok(out)
}

/// `regex_replace(pattern, replacement, ignorecase=false, multiline=false, count=0,
/// mandatory_count=0)`: Python's `re.subn`.
///
/// # Errors
/// An invalid pattern or replacement; `mandatory_count` not met.
pub fn regex_replace(
    value: &Value,
    pattern: Option<String>,
    repl: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let value = text(value, "regex_replace")?;
    let pattern = pattern.unwrap_or_default();
    let ignorecase = kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multiline = kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false);
    let count = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    let mandatory = kwargs.get::<Option<usize>>("mandatory_count")?.unwrap_or(0);
    kwargs.assert_all_used()?;
    let re = compile(&pattern, ignorecase, multiline)?;
    let rep = replacement(&repl.unwrap_or_default())?;
    let found = re.find_iter(&value).count();
    let subs = if count == 0 { found } else { found.min(count) };
    if mandatory != 0 && mandatory != subs {
        return Err(bad(format!(
            "'{pattern}' should match {mandatory} times, but matches {subs} times"
        )));
    }
    Ok(re.replacen(&value, count, rep.as_str()).into_owned())
}

/// `regex_search(regex, '\\1' | '\\g<name>' ..., ignorecase=, multiline=)`: the first match
/// (none when nothing matches), or the list of the named groups of it.
///
/// # Errors
/// An invalid pattern, an argument that is not a group reference.
pub fn regex_search(
    value: &Value,
    pattern: String,
    args: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let value = text(value, "regex_search")?;
    let ignorecase = kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multiline = kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    enum Group {
        Index(usize),
        Name(String),
    }
    let mut groups = Vec::new();
    for a in args.iter() {
        if let Some(name) = a.strip_prefix("\\g<").and_then(|r| r.strip_suffix('>')) {
            groups.push(Group::Name(name.to_string()));
        } else if let Some(n) = a.strip_prefix('\\').and_then(|r| r.parse().ok()) {
            groups.push(Group::Index(n));
        } else {
            return Err(bad(format!("Unknown argument `{a}` (\\N or \\g<name>)")));
        }
    }
    let re = compile(&pattern, ignorecase, multiline)?;
    let Some(caps) = re.captures(&value) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map_or("", |m| m.as_str())));
    }
    let mut items = Vec::new();
    for g in groups {
        let m = match &g {
            Group::Index(n) if *n < re.captures_len() => caps.get(*n),
            Group::Name(n) if re.capture_names().any(|c| c == Some(n)) => caps.name(n),
            _ => return Err(bad("no such group")),
        };
        items.push(m.map_or(Value::from(()), |m| Value::from(m.as_str())));
    }
    Ok(Value::from(items))
}

/// `ternary(true_val, false_val, none_val=none)`: `none_val` for none (when given), else
/// `true_val` or `false_val` by the value's truth.
pub fn ternary(value: &Value, true_val: Value, false_val: Value, none_val: Option<Value>) -> Value {
    match none_val {
        Some(n) if value.is_none() && !n.is_none() => n,
        _ if value.is_true() => true_val,
        _ => false_val,
    }
}

/// `b64decode`: the UTF-8 text of base64 `value`. Like Python's `base64.b64decode`,
/// characters outside the alphabet are skipped; padding must be right.
///
/// # Errors
/// Wrong padding, bytes that are not UTF-8, another `encoding` than UTF-8.
pub fn b64decode(value: &Value, encoding: Option<String>) -> Result<String, Error> {
    use base64::Engine;
    if let Some(e) = encoding
        && !matches!(e.to_ascii_lowercase().as_str(), "utf-8" | "utf8")
    {
        return Err(bad(format!(
            "b64decode: encoding {e} is not supported (utf-8)"
        )));
    }
    let s = text(value, "b64decode")?;
    let clean: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .map_err(|e| bad(format!("b64decode: {e}")))?;
    String::from_utf8(bytes).map_err(|_| bad("b64decode: the decoded bytes are not UTF-8"))
}

/// `hash(hashtype='sha1')`: the hex digest of the value's UTF-8 bytes.
///
/// # Errors
/// A hash type other than sha1, sha224, sha256, sha384, sha512.
pub fn hash(value: &Value, kind: Option<String>) -> Result<String, Error> {
    use sha1::Digest;
    let data = text(value, "hash")?;
    let d = data.as_bytes();
    let hex = crate::script::hex;
    Ok(match kind.as_deref().unwrap_or("sha1") {
        "sha1" => hex(&sha1::Sha1::digest(d)),
        "sha224" => hex(&sha2::Sha224::digest(d)),
        "sha256" => hex(&sha2::Sha256::digest(d)),
        "sha384" => hex(&sha2::Sha384::digest(d)),
        "sha512" => hex(&sha2::Sha512::digest(d)),
        k => {
            return Err(bad(format!(
                "hash type {k} is not supported (sha1, sha224, sha256, sha384, sha512)"
            )));
        }
    })
}

/// `mandatory(msg=none)`: the value, or an error when it is undefined.
///
/// # Errors
/// An undefined value: `msg`, or "Mandatory variable not defined."
pub fn mandatory(value: &Value, msg: Option<String>) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(bad(
            msg.unwrap_or_else(|| "Mandatory variable not defined.".into())
        ));
    }
    Ok(value.clone())
}

/// `dict2items(key_name='key', value_name='value')`: a list of `{key, value}` maps.
///
/// # Errors
/// A value that is not a mapping.
pub fn dict2items(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key_name = kwargs
        .get::<Option<String>>("key_name")?
        .unwrap_or("key".into());
    let value_name = kwargs
        .get::<Option<String>>("value_name")?
        .unwrap_or("value".into());
    kwargs.assert_all_used()?;
    if value.kind() != ValueKind::Map {
        return Err(bad(format!(
            "dict2items requires a dictionary, got {} instead.",
            value.kind()
        )));
    }
    let mut out = Vec::new();
    for k in value.try_iter()? {
        let v = value.get_item(&k)?;
        out.push(Value::from_pairs([
            (Value::from(key_name.as_str()), k),
            (Value::from(value_name.as_str()), v),
        ]));
    }
    Ok(Value::from(out))
}

fn pairs(v: &Value) -> Result<Vec<(Value, Value)>, Error> {
    let mut out = Vec::new();
    for k in v.try_iter()? {
        let item = v.get_item(&k)?;
        out.push((k, item));
    }
    Ok(out)
}

/// ansible-core's `merge_hash(x, y, recursive, list_merge)`: `y` over `x`, keys of `x` first.
fn merge(x: &Value, y: &Value, recursive: bool, list_merge: &str) -> Result<Value, Error> {
    let mut out: indexmap::IndexMap<Value, Value> = pairs(x)?.into_iter().collect();
    for (k, yv) in pairs(y)? {
        let merged = match out.get(&k) {
            Some(xv) if xv.kind() == ValueKind::Map && yv.kind() == ValueKind::Map => {
                if recursive {
                    merge(xv, &yv, recursive, list_merge)?
                } else {
                    yv
                }
            }
            Some(xv) if xv.kind() == ValueKind::Seq && yv.kind() == ValueKind::Seq => {
                let xs: Vec<Value> = xv.try_iter()?.collect();
                let ys: Vec<Value> = yv.try_iter()?.collect();
                let without = |a: &[Value], b: &[Value]| -> Vec<Value> {
                    a.iter().filter(|i| !b.contains(i)).cloned().collect()
                };
                Value::from(match list_merge {
                    "replace" => ys,
                    "keep" => xs,
                    "append" => [xs, ys].concat(),
                    "prepend" => [ys, xs].concat(),
                    "append_rp" => [without(&xs, &ys), ys].concat(),
                    "prepend_rp" => {
                        let rest = without(&xs, &ys);
                        [ys, rest].concat()
                    }
                    _ => unreachable!("checked by combine"),
                })
            }
            _ => yv,
        };
        out.insert(k, merged);
    }
    Ok(Value::from_pairs(out))
}

/// `combine(dict, ..., recursive=false, list_merge='replace')`: the maps merged left to
/// right, later keys winning; `[a, b] | combine` merges the list's maps.
///
/// # Errors
/// A term that is not a map; another keyword or `list_merge` value.
pub fn combine(value: &Value, terms: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let recursive = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let list_merge = kwargs
        .get::<Option<String>>("list_merge")?
        .unwrap_or("replace".into());
    if kwargs.args().any(|k| k != "recursive" && k != "list_merge") {
        return Err(bad(
            "'recursive' and 'list_merge' are the only valid keyword arguments",
        ));
    }
    kwargs.assert_all_used()?;
    if !matches!(
        list_merge.as_str(),
        "replace" | "keep" | "append" | "prepend" | "append_rp" | "prepend_rp"
    ) {
        return Err(bad(format!(
            "'{list_merge}' is not a valid list_merge (replace, keep, append, prepend, append_rp, prepend_rp)"
        )));
    }
    let mut dicts = Vec::new();
    for t in std::iter::once(value).chain(terms.iter()) {
        if t.kind() == ValueKind::Seq {
            dicts.extend(t.try_iter()?);
        } else {
            dicts.push(t.clone());
        }
    }
    for d in &dicts {
        if d.kind() != ValueKind::Map {
            return Err(bad(format!(
                "failed to combine variables, expected dicts but got a '{}'",
                d.kind()
            )));
        }
    }
    let mut it = dicts.into_iter();
    let Some(mut acc) = it.next() else {
        return Ok(Value::from_pairs(Vec::<(Value, Value)>::new()));
    };
    for d in it {
        acc = merge(&acc, &d, recursive, &list_merge)?;
    }
    Ok(acc)
}

/// Writes `s` as Python's `json.dumps` does (`ensure_ascii=True`).
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    write!(out, "\\u{u:04x}").ok();
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_value(
    out: &mut String,
    v: &Value,
    indent: Option<usize>,
    sort: bool,
    depth: usize,
) -> Result<(), Error> {
    if depth > 64 {
        return Err(bad("to_json: nested more than 64 deep"));
    }
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v.kind() {
        ValueKind::Undefined => return Err(bad("to_json: an undefined value")),
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => match v.as_i64() {
            Some(i) if !v.to_string().contains('.') => write!(out, "{i}").unwrap_or(()),
            _ => {
                let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
                if f.is_nan() {
                    out.push_str("NaN");
                } else if f.is_infinite() {
                    out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
                } else if f.fract() == 0.0 && f.abs() < 1e16 {
                    write!(out, "{f:.1}").ok();
                } else {
                    write!(out, "{f}").ok();
                }
            }
        },
        ValueKind::String => json_str(out, v.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                json_value(out, item, indent, sort, depth + 1)?;
            }
            newline(out, depth);
            out.push(']');
        }
        ValueKind::Map => {
            let mut items = pairs(v)?;
            if items.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if sort {
                items.sort_by(|a, b| a.0.cmp(&b.0));
            }
            out.push('{');
            for (i, (k, item)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, depth + 1);
                match k.as_str() {
                    Some(s) => json_str(out, s),
                    None => json_str(out, &k.to_string()),
                }
                out.push_str(": ");
                json_value(out, item, indent, sort, depth + 1)?;
            }
            newline(out, depth);
            out.push('}');
        }
        k => return Err(bad(format!("to_json: a {k} cannot be written as JSON"))),
    }
    Ok(())
}

/// `from_json`: a JSON text as its value (ansible-core 2.19 `plugins/filter/core.py`
/// `from_json`, Python's `json.loads`): objects, arrays, strings, numbers, `true`/`false`,
/// `null` (none).
///
/// # Errors
/// Text that is not one JSON value, naming the line and column (serde_json's message).
pub fn from_json(text: &str) -> Result<Value, Error> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| bad(format!("from_json: {e}")))?;
    Ok(Value::from(minijinja::value::Serde(v)))
}

/// `to_json(indent=none, sort_keys=false)`: Python's `json.dumps` (separators `", "` and
/// `": "`, non-ASCII written as `\uXXXX`).
///
/// # Errors
/// An undefined value or one JSON cannot hold; another keyword.
pub fn to_json(value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent = kwargs.get::<Option<usize>>("indent")?;
    let sort = kwargs.get::<Option<bool>>("sort_keys")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let mut out = String::new();
    json_value(&mut out, value, indent, sort, 0)?;
    Ok(out)
}

/// Jinja2's `int(default=0, base=10)` filter, which Ansible templates use (Jinja2 3.1
/// `filters.py` `do_int`), replacing minijinja's, which fails on text that is not a number:
/// a string is read as an integer in `base` (surrounding whitespace, a sign and `_` between
/// digits allowed, as Python's `int()`), else as a decimal number cut to an integer
/// (`'1.9'` → 1, `'1e3'` → 1000); a number is cut to an integer, `true`/`false` are 1/0;
/// anything else (`'abc'`, `''`, none, a list) is `default`.
///
/// # Errors
/// A `base` outside 2–36, an unknown keyword argument.
pub fn int(
    value: &Value,
    default: Option<Value>,
    base: Option<u32>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default = default.or(kwargs.get::<Option<Value>>("default")?);
    let base = base.or(kwargs.get::<Option<u32>>("base")?).unwrap_or(10);
    kwargs.assert_all_used()?;
    if !(2..=36).contains(&base) {
        return Err(bad(format!("int: base {base} is not between 2 and 36")));
    }
    let default = || default.clone().unwrap_or(Value::from(0));
    let from_float = |f: f64| {
        if f.is_finite() && f.abs() < 9.2e18 {
            Some(Value::from(f.trunc() as i64))
        } else {
            None
        }
    };
    let got = match value.kind() {
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default().trim();
            let digits = python_underscores(text);
            digits
                .as_deref()
                .and_then(|d| i64::from_str_radix(d, base).ok())
                .map(Value::from)
                .or_else(|| {
                    digits
                        .and_then(|d| d.parse::<f64>().ok())
                        .and_then(from_float)
                })
        }
        ValueKind::Bool => Some(Value::from(i64::from(value.is_true()))),
        ValueKind::Number => match i64::try_from(value.clone()) {
            Ok(i) => Some(Value::from(i)),
            Err(_) => f64::try_from(value.clone()).ok().and_then(from_float),
        },
        _ => None,
    };
    Ok(got.unwrap_or_else(default))
}

/// Jinja2's `float(default=0.0)` filter (`do_float`), replacing minijinja's, which fails on
/// text that is not a number: a string read as Python's `float()` reads it, a number as it
/// is, `true`/`false` as 1.0/0.0; anything else is `default`.
///
/// # Errors
/// An unknown keyword argument.
pub fn float(value: &Value, default: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let default = default.or(kwargs.get::<Option<Value>>("default")?);
    kwargs.assert_all_used()?;
    let got = match value.kind() {
        ValueKind::String => python_underscores(value.as_str().unwrap_or_default().trim())
            .and_then(|d| d.parse::<f64>().ok()),
        ValueKind::Bool => Some(if value.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => f64::try_from(value.clone()).ok(),
        _ => None,
    };
    Ok(match got {
        Some(f) => Value::from(f),
        None => default.unwrap_or(Value::from(0.0)),
    })
}

/// `text` without the `_` Python allows between two digits (`1_000`); `None` when an `_`
/// stands anywhere else (Python refuses `_1`, `1__0`, `1_`).
fn python_underscores(text: &str) -> Option<String> {
    let b = text.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'_' {
            let digit = |j: Option<&u8>| j.is_some_and(|c| c.is_ascii_alphanumeric());
            if i == 0 || !digit(b.get(i - 1)) || !digit(b.get(i + 1)) {
                return None;
            }
        }
    }
    Some(text.replace('_', ""))
}
