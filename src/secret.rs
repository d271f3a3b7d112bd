//! Secrets: referenced from the inventory (`{secret: "env:NAME"}` or
//! `{secret: "file:path"}`), resolved on the controller, and redacted by value from every
//! line rollout prints, logs or diffs. They reach hosts only inside scripts sent over the
//! SSH channel's stdin, never on a remote command line.

use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// What replaces a secret's value in any output.
pub const REDACTED: &str = "<redacted>";

/// The set of secret values known for a run, longest first.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Arc<Vec<String>>,
}

impl Secrets {
    pub fn new(mut values: Vec<String>) -> Self {
        values.retain(|v| !v.is_empty());
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        values.dedup();
        Secrets {
            values: Arc::new(values),
        }
    }

    /// Replaces every known secret value in `text`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in self.values.iter() {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        out
    }

    pub fn contains_secret(&self, text: &str) -> bool {
        self.values.iter().any(|v| text.contains(v.as_str()))
    }

    /// The positions where secrets start in `line` (for masking old values in diffs).
    pub fn first_secret_at(&self, line: &str) -> Option<usize> {
        self.values
            .iter()
            .filter_map(|v| line.find(v.as_str()))
            .min()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Is this value a secret reference (`{secret: "..."}`)?
pub fn reference(value: &Value) -> Option<&str> {
    match value {
        Value::Object(m) if m.len() == 1 => m.get("secret").and_then(Value::as_str),
        _ => None,
    }
}

/// Resolves a reference such as `env:BBB_SECRET` or `file:secrets/bbb` (relative to `base`).
pub fn resolve(reference: &str, base: &Path) -> Result<String, String> {
    let value = if let Some(name) = reference.strip_prefix("env:") {
        std::env::var(name)
            .map_err(|_| format!("secret `{reference}`: environment variable {name} is not set"))?
    } else if let Some(path) = reference.strip_prefix("file:") {
        let p = base.join(path);
        let text = std::fs::read_to_string(&p)
            .map_err(|e| format!("secret `{reference}`: cannot read {}: {e}", p.display()))?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else {
        return Err(format!(
            "secret reference `{reference}` must start with `env:` or `file:`"
        ));
    };
    if value.is_empty() {
        return Err(format!("secret `{reference}` is empty"));
    }
    Ok(value)
}

/// Replaces secret references anywhere inside `value`; collects the resolved values.
pub fn resolve_in(value: &mut Value, base: &Path, found: &mut Vec<String>) -> Result<(), String> {
    if let Some(r) = reference(value) {
        let v = resolve(r, base)?;
        found.push(v.clone());
        *value = Value::String(v);
        return Ok(());
    }
    match value {
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| resolve_in(v, base, found)),
        Value::Object(m) => m.values_mut().try_for_each(|v| resolve_in(v, base, found)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first() {
        let s = Secrets::new(vec!["abc".into(), "abcdef".into()]);
        assert_eq!(s.redact("x=abcdef y=abc"), "x=<redacted> y=<redacted>");
    }

    #[test]
    fn resolves_env_and_file_references() {
        let dir = std::env::temp_dir().join(format!("rollout-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("s"), "filesecret\n").unwrap();
        assert_eq!(resolve("file:s", &dir).unwrap(), "filesecret");
        assert_eq!(
            resolve("env:ROLLOUT_TEST_SURELY_UNSET", &dir).unwrap_err(),
            "secret `env:ROLLOUT_TEST_SURELY_UNSET`: environment variable ROLLOUT_TEST_SURELY_UNSET is not set"
        );
        assert!(resolve("vault:x", &dir).is_err());
    }
}
