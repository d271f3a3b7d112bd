//! Secret values inside an Ansible inventory's variables. A `!vault` value (kept encrypted)
//! and every value of a vault-encrypted file (decrypted) are wrapped in a one-key object
//! whose key no YAML or INI file can produce by accident (it starts with a NUL character),
//! so they travel through merging like any value and are recognised wherever they end up.
//! [`redacted`] turns them, and rollout's own secret references (`{secret: "env:NAME"}`),
//! into `<redacted>` for output.

use crate::secret::REDACTED;
use serde_json::{Map, Value};

/// The key of a secret's wrapper object.
pub const SECRET_KEY: &str = "\u{0}rollout-secret";

/// A `!vault` value, still encrypted (`text` is the vault text).
pub fn vaulted(text: &str) -> Value {
    wrap("vault", Value::String(text.to_string()))
}

/// A `!vault` value, still encrypted, written at `line`, `column` of `file` (kept so that a
/// value that cannot be decrypted is reported where it was written; see [`vault_of`]).
pub fn vaulted_at(text: &str, file: &std::path::Path, line: u64, column: u64) -> Value {
    let mut v = vaulted(text);
    if let Value::Object(m) = &mut v
        && let Some(Value::Object(inner)) = m.get_mut(SECRET_KEY)
    {
        inner.insert(
            "file".into(),
            Value::String(file.to_string_lossy().into_owned()),
        );
        inner.insert("line".into(), Value::from(line));
        inner.insert("column".into(), Value::from(column));
    }
    v
}

/// What a wrapped secret holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Wrapped<'a> {
    /// A `!vault` value: its vault text and where it was written (file, line, column), if
    /// known.
    Vault(&'a str, Option<super::data::At>),
    /// A value from a vault-encrypted file, in plaintext.
    Plain(&'a Value),
}

/// The content of `v` if it is a wrapped secret.
pub fn vault_of(v: &Value) -> Option<Wrapped<'_>> {
    let Value::Object(inner) = v.as_object()?.get(SECRET_KEY)? else {
        return None;
    };
    if !is_secret(v) {
        return None;
    }
    if let Some(p) = inner.get("plain") {
        return Some(Wrapped::Plain(p));
    }
    let text = inner.get("vault")?.as_str()?;
    let at = inner
        .get("file")
        .and_then(Value::as_str)
        .map(|f| super::data::At {
            file: f.into(),
            line: inner.get("line").and_then(Value::as_u64).unwrap_or(0),
            column: inner.get("column").and_then(Value::as_u64).unwrap_or(0),
        });
    Some(Wrapped::Vault(text, at))
}

/// A value that came out of a vault (a decrypted file's scalar).
pub fn decrypted(value: Value) -> Value {
    wrap("plain", value)
}

fn wrap(kind: &str, v: Value) -> Value {
    let mut inner = Map::new();
    inner.insert(kind.into(), v);
    let mut m = Map::new();
    m.insert(SECRET_KEY.into(), Value::Object(inner));
    Value::Object(m)
}

/// Is `v` a wrapped secret?
pub fn is_secret(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.len() == 1 && m.contains_key(SECRET_KEY))
}

/// Marks every scalar inside `v` (a decrypted file's content) as a secret, keeping the
/// structure (names of keys stay visible, as they are variable names).
pub fn mark_all(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, mark_all(v))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(mark_all).collect()),
        Value::Null => Value::Null,
        scalar => decrypted(scalar),
    }
}

/// The plaintexts of decrypted secret strings inside `v` (for the run's redaction set;
/// numbers and booleans from a vault are not registered: redacting every `22` or `true` from
/// messages would hide more than it protects).
pub fn plaintexts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if is_secret(v) => {
            if let Some(Value::Object(inner)) = m.get(SECRET_KEY)
                && let Some(Value::String(p)) = inner.get("plain")
            {
                out.push(p.clone());
            }
        }
        Value::Object(m) => m.values().for_each(|v| plaintexts(v, out)),
        Value::Array(a) => a.iter().for_each(|v| plaintexts(v, out)),
        _ => {}
    }
}

/// `v` for output: every wrapped secret and every rollout secret reference (a mapping with
/// only a string `secret` key) is `<redacted>`.
pub fn redacted(v: &Value) -> Value {
    match v {
        _ if is_secret(v) => Value::String(REDACTED.into()),
        Value::Object(m) if m.len() == 1 && m.get("secret").is_some_and(Value::is_string) => {
            Value::String(REDACTED.into())
        }
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), redacted(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(redacted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_and_references_print_redacted() {
        let v = json!({
            "a": vaulted("$ANSIBLE_VAULT;1.1;AES256\n00"),
            "b": mark_all(json!({"k": "plain-text", "n": [1, null]})),
            "c": {"secret": "env:X"},
            "d": {"secret": "file:x", "other": 1},
            "e": "visible",
        });
        assert_eq!(
            redacted(&v),
            json!({
                "a": "<redacted>",
                "b": {"k": "<redacted>", "n": ["<redacted>", null]},
                "c": "<redacted>",
                "d": {"secret": "file:x", "other": 1},
                "e": "visible",
            })
        );
        let mut found = Vec::new();
        plaintexts(&v, &mut found);
        assert_eq!(found, ["plain-text"]);
    }
}
