//! The two Python behaviours an INI inventory's values depend on (lib/ansible/plugins/inventory/
//! ini.py): `shlex.split(line, comments=True)` cuts a host line into words, and
//! `ast.literal_eval` turns each value into a Python literal when it is one (`80` is a number,
//! `"a b"` loses its quotes, `[1, 2]` is a list, `True` a boolean), the text being kept as it is
//! otherwise (`3.1.2`, `no`, `{{ x }}`).
//!
//! Only what a literal can be is read: numbers (decimal, `0x`, `0o`, `0b`, `_` separators,
//! floats, one leading sign), strings (single, double and triple quotes, `r`/`u`/`b` prefixes,
//! escapes, adjacent strings joined), `True`/`False`/`None`, lists, tuples, sets and dicts,
//! `#` comments. Complex numbers and numbers past 64 bits are kept as text (JSON has none).

use serde_json::{Map, Number, Value};

/// Splits a host line as `shlex.split(line, comments=True)` does (POSIX mode): words at
/// whitespace, quotes removed (`'…'` literal, `"…"` with `\"`, `\\` escapes), a backslash
/// outside quotes escaping the next character, `#` outside quotes ending the line.
///
/// # Errors
/// An unclosed quote or a backslash at the end (Python's messages).
pub fn shlex_split(line: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' => break,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("No closing quotation"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("No closing quotation"),
                        },
                        Some(c) => word.push(c),
                        None => return Err("No closing quotation"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("No escaped character"),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// ini.py's `_parse_value`: the value of `ast.literal_eval(text)` if `text` is a Python
/// literal, else `text` itself as a string.
pub fn parse_value(text: &str) -> Value {
    let mut p = Lit {
        s: text.trim_start_matches([' ', '\t']).as_bytes(),
        i: 0,
        depth: 0,
    };
    match p.top() {
        Some(v) => v,
        None => Value::String(text.to_string()),
    }
}

/// Deepest nesting read as a literal; deeper text stays a string (Python would stop with a
/// recursion error, which ini.py does not catch: an error either way, but no crash here).
const MAX_DEPTH: usize = 100;

struct Lit<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Lit<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Skips whitespace, line continuations and comments (inside brackets Python also skips
    /// newlines; at the top level a newline cannot occur in one INI line).
    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => self.i += 1,
                b'\\' if matches!(self.s.get(self.i + 1), Some(b'\n')) => self.i += 2,
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.skip_space();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// The whole text: one value, or a tuple written without parentheses (`1, 2`).
    fn top(&mut self) -> Option<Value> {
        let first = self.expr()?;
        if !self.eat(b',') {
            self.skip_space();
            return (self.i == self.s.len()).then_some(first);
        }
        let mut items = vec![first];
        loop {
            self.skip_space();
            if self.i == self.s.len() {
                return Some(Value::Array(items));
            }
            items.push(self.expr()?);
            if !self.eat(b',') {
                self.skip_space();
                return (self.i == self.s.len()).then_some(Value::Array(items));
            }
        }
    }

    fn expr(&mut self) -> Option<Value> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        let v = match self.peek()? {
            b'[' => {
                self.i += 1;
                Value::Array(self.items(b']')?)
            }
            b'(' => {
                self.i += 1;
                self.skip_space();
                if self.eat(b')') {
                    Value::Array(Vec::new())
                } else {
                    let first = self.expr()?;
                    if self.eat(b')') {
                        first // a parenthesised value, not a tuple
                    } else if self.eat(b',') {
                        let mut rest = self.items(b')')?;
                        rest.insert(0, first);
                        Value::Array(rest)
                    } else {
                        return None;
                    }
                }
            }
            b'{' => {
                self.i += 1;
                self.brace()?
            }
            b'-' | b'+' => {
                let neg = self.peek() == Some(b'-');
                self.i += 1;
                self.skip_space();
                match self.number()? {
                    Value::Number(n) if neg => negate(&n)?,
                    v => v,
                }
            }
            b'0'..=b'9' | b'.' => self.number()?,
            _ => {
                if let Some(s) = self.strings()? {
                    s
                } else {
                    self.name()?
                }
            }
        };
        self.depth -= 1;
        Some(v)
    }

    /// Comma-separated values up to `close` (a trailing comma allowed).
    fn items(&mut self, close: u8) -> Option<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            if self.eat(close) {
                return Some(out);
            }
            out.push(self.expr()?);
            if self.eat(close) {
                return Some(out);
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// After `{`: a dict (`{k: v}`), an empty dict (`{}`) or a set (`{a, b}`, as a list).
    fn brace(&mut self) -> Option<Value> {
        if self.eat(b'}') {
            return Some(Value::Object(Map::new()));
        }
        let first = self.expr()?;
        if self.eat(b':') {
            let mut m = Map::new();
            let mut key = first;
            loop {
                let v = self.expr()?;
                m.insert(key_text(&key)?, v);
                if self.eat(b'}') {
                    return Some(Value::Object(m));
                }
                if !self.eat(b',') {
                    return None;
                }
                if self.eat(b'}') {
                    return Some(Value::Object(m));
                }
                key = self.expr()?;
                if !self.eat(b':') {
                    return None;
                }
            }
        }
        let mut items = vec![first];
        if self.eat(b'}') {
            return Some(Value::Array(items));
        }
        if !self.eat(b',') {
            return None;
        }
        items.extend(self.items(b'}')?);
        Some(Value::Array(items))
    }

    fn name(&mut self) -> Option<Value> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.i += 1;
        }
        match &self.s[start..self.i] {
            b"True" => Some(Value::Bool(true)),
            b"False" => Some(Value::Bool(false)),
            b"None" => Some(Value::Null),
            _ => None,
        }
    }

    /// One or more adjacent string literals, joined; `None` inside if this is not a string.
    fn strings(&mut self) -> Option<Option<Value>> {
        let mut out: Option<String> = None;
        // Python refuses to join bytes and text literals.
        let mut kind: Option<bool> = None;
        loop {
            self.skip_space();
            let save = self.i;
            let mut raw = false;
            let mut bytes = false;
            while let Some(c) = self.peek() {
                match c.to_ascii_lowercase() {
                    b'r' => raw = true,
                    b'b' => bytes = true,
                    b'u' => {}
                    _ => break,
                }
                self.i += 1;
                if self.i - save > 2 {
                    break;
                }
            }
            let Some(q @ (b'\'' | b'"')) = self.peek() else {
                self.i = save;
                return Some(out.map(Value::String));
            };
            if kind.is_some_and(|k| k != bytes) {
                return None;
            }
            kind = Some(bytes);
            let triple = self.s[self.i..].starts_with(&[q, q, q]);
            self.i += if triple { 3 } else { 1 };
            let mut text = Vec::new();
            loop {
                let c = self.peek()?;
                if c == q && (!triple || self.s[self.i..].starts_with(&[q, q, q])) {
                    self.i += if triple { 3 } else { 1 };
                    break;
                }
                if c == b'\n' && !triple {
                    return None;
                }
                self.i += 1;
                if c == b'\\' {
                    let e = self.peek()?;
                    self.i += 1;
                    if raw {
                        text.push(b'\\');
                        text.push(e);
                        continue;
                    }
                    match e {
                        b'\n' => {}
                        b'\\' | b'\'' | b'"' => text.push(e),
                        b'n' => text.push(b'\n'),
                        b't' => text.push(b'\t'),
                        b'r' => text.push(b'\r'),
                        b'a' => text.push(7),
                        b'b' => text.push(8),
                        b'f' => text.push(12),
                        b'v' => text.push(11),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.i += 1;
                                    }
                                    _ => break,
                                }
                            }
                            push_char(&mut text, char::from_u32(v)?);
                        }
                        b'x' | b'u' | b'U' => {
                            let n = match e {
                                b'x' => 2,
                                b'u' => 4,
                                _ => 8,
                            };
                            let hex = std::str::from_utf8(self.s.get(self.i..self.i + n)?).ok()?;
                            let v = u32::from_str_radix(hex, 16).ok()?;
                            self.i += n;
                            push_char(&mut text, char::from_u32(v)?);
                        }
                        other => {
                            text.push(b'\\');
                            text.push(other);
                        }
                    }
                } else {
                    text.push(c);
                }
            }
            out.get_or_insert_with(String::new)
                .push_str(&String::from_utf8(text).ok()?);
        }
    }

    /// A Python number: int (`0x`, `0o`, `0b`, decimal without leading zeros, `_` between
    /// digits) or float; `j` (complex) and out-of-range ints are not read.
    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
            || (self.i > start
                && matches!(self.s[self.i - 1], b'e' | b'E')
                && matches!(self.peek(), Some(b'+' | b'-'))
                && !self.s[start..].starts_with(b"0x")
                && !self.s[start..].starts_with(b"0X"))
        {
            self.i += 1;
        }
        let t = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        let underscores_ok =
            |d: &str| !d.starts_with('_') && !d.ends_with('_') && !d.contains("__");
        let lower = t.to_ascii_lowercase();
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
            if let Some(d) = lower.strip_prefix(prefix) {
                let d = d.strip_prefix('_').unwrap_or(d);
                if d.is_empty() || !underscores_ok(d) {
                    return None;
                }
                return i64::from_str_radix(&d.replace('_', ""), radix)
                    .ok()
                    .map(|v| Value::Number(v.into()));
            }
        }
        if lower.bytes().all(|c| c.is_ascii_digit() || c == b'_') {
            if !underscores_ok(&lower)
                || (lower.starts_with('0') && lower.bytes().any(|c| c != b'0' && c != b'_'))
            {
                return None;
            }
            return lower
                .replace('_', "")
                .parse::<i64>()
                .ok()
                .map(|v| Value::Number(v.into()));
        }
        // A float: digits with one `.` and/or an exponent.
        let (mant, exp) = match lower.split_once('e') {
            Some((m, e)) => (m, Some(e)),
            None => (lower.as_str(), None),
        };
        let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
        let digits = |d: &str| {
            d.is_empty()
                || (d.bytes().all(|c| c.is_ascii_digit() || c == b'_') && underscores_ok(d))
        };
        if !digits(int) || !digits(frac) || (int.is_empty() && frac.is_empty()) {
            return None;
        }
        if !mant.contains('.') && exp.is_none() {
            return None;
        }
        if let Some(e) = exp {
            let d = e.strip_prefix(['+', '-']).unwrap_or(e);
            if d.is_empty() || !digits(d) {
                return None;
            }
        }
        let v: f64 = lower.replace('_', "").parse().ok()?;
        Number::from_f64(v).map(Value::Number)
    }
}

fn push_char(text: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    text.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn negate(n: &Number) -> Option<Value> {
    if let Some(i) = n.as_i64() {
        return Some(Value::Number(i.checked_neg()?.into()));
    }
    Number::from_f64(-n.as_f64()?).map(Value::Number)
}

/// A dict key as JSON writes it (Python's `json.dumps` turns `1` into `"1"`, `True` into
/// `"true"`); a list key (unhashable in Python) is no literal.
fn key_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_python_literals_or_kept_as_text() {
        for (text, want) in [
            ("80", json!(80)),
            ("-5", json!(-5)),
            ("1_000", json!(1000)),
            ("0x1f", json!(31)),
            ("1.5", json!(1.5)),
            ("\"product\"", json!("product")),
            ("'03#pa33w0rd'", json!("03#pa33w0rd")),
            ("'a' \"b\"", json!("ab")),
            ("True", json!(true)),
            ("None", Value::Null),
            ("[1, 'a', (2, 3)]", json!([1, "a", [2, 3]])),
            ("{'a': 1, 2: [True]}", json!({"a": 1, "2": [true]})),
            ("(5)", json!(5)),
            ("False # a comment", json!(false)),
            (
                "'-o ProxyCommand=\"ssh -W %h:%p -q bastion01\"'",
                json!("-o ProxyCommand=\"ssh -W %h:%p -q bastion01\""),
            ),
            // Not literals: kept as written.
            ("3.1.2", json!("3.1.2")),
            ("no", json!("no")),
            ("08", json!("08")),
            ("--5", json!("--5")),
            ("192.0.2.10", json!("192.0.2.10")),
            ("turn01.example.org", json!("turn01.example.org")),
            (
                "{{ ansible_playbook_python }}",
                json!("{{ ansible_playbook_python }}"),
            ),
            ("abc # x", json!("abc # x")),
            ("'unclosed", json!("'unclosed")),
            ("", json!("")),
            ("1j", json!("1j")),
        ] {
            assert_eq!(parse_value(text), want, "{text}");
        }
    }

    #[test]
    fn host_lines_split_as_shlex_does() {
        assert_eq!(
            shlex_split("h a=\"x y\" b='c d' e=f\\ g # comment").unwrap(),
            ["h", "a=x y", "b=c d", "e=f g"]
        );
        assert_eq!(shlex_split("h x=''").unwrap(), ["h", "x="]);
        assert_eq!(shlex_split("h#c").unwrap(), ["h"]);
        assert_eq!(shlex_split("h a=\"x").unwrap_err(), "No closing quotation");
    }
}
