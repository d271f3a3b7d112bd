//! Secrets: referenced from the inventory (`{secret: "env:NAME"}` or
//! `{secret: "file:path"}`), resolved on the controller, and redacted by value from every
//! line rollout prints, logs or diffs. They reach hosts only inside scripts sent over the
//! SSH channel's stdin, never on a remote command line.

use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};

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
        remember(values.iter());
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

/// Every secret value this process has read (see [`resolve`]) or been given (see
/// [`Secrets::new`]). Errors can stop a command before a run's [`Secrets`] exist (a variable
/// that fails to render, a balancer value that does not validate), so the one place that
/// prints errors redacts with this set instead ([`redact_known`]).
static KNOWN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Adds values to [`KNOWN`].
fn remember<'a>(values: impl IntoIterator<Item = &'a String>) {
    // A poisoned lock only means another thread panicked while pushing: the list is intact.
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    for v in values {
        if !v.is_empty() && !known.contains(v) {
            known.push(v.clone());
        }
    }
    known.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
}

/// Replaces every secret value this process has read in `text`, in any ASCII case (an error
/// that lowercased a value, `expected true or false, got \`s3cret\``, is caught too). The one
/// redaction point for error messages: [`crate::subcommand::Error::print`] and
/// [`crate::report::summary::error`] pass everything they print through it.
pub fn redact_known(text: &str) -> String {
    let known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for v in known.iter() {
        out = replace_ignoring_ascii_case(&out, v);
    }
    out
}

/// `text` with every occurrence of `value`, compared without ASCII case, replaced by
/// [`REDACTED`]. ASCII case folding keeps byte offsets, so the matches index `text` too.
fn replace_ignoring_ascii_case(text: &str, value: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let needle = value.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in lower.match_indices(&needle) {
        out.push_str(&text[last..i]);
        out.push_str(REDACTED);
        last = i + needle.len();
    }
    out.push_str(&text[last..]);
    out
}

/// Is this value a secret reference (`{secret: "..."}`)?
///
/// # Errors
/// A mapping with a `secret` key that is not exactly `{secret: "<string>"}`: a typo there
/// must not ship the mapping itself to hosts as an ordinary value.
pub fn reference(value: &Value) -> Result<Option<&str>, String> {
    let Value::Object(m) = value else {
        return Ok(None);
    };
    let Some(r) = m.get("secret") else {
        return Ok(None);
    };
    if let Some(other) = m.keys().find(|k| *k != "secret") {
        return Err(format!(
            "a secret reference has only the `secret` key, but this one also has `{other}`"
        ));
    }
    r.as_str()
        .map(Some)
        .ok_or_else(|| "`secret` must be a string such as \"env:NAME\" or \"file:PATH\"".into())
}

/// Does `value` hold a mapping with a `secret` key anywhere inside?
pub fn contains_reference(value: &Value) -> bool {
    match value {
        Value::Object(m) => m.contains_key("secret") || m.values().any(contains_reference),
        Value::Array(items) => items.iter().any(contains_reference),
        _ => false,
    }
}

/// Resolves a reference such as `env:BBB_SECRET` or `file:secrets/bbb` (relative to `base`).
pub fn resolve(reference: &str, base: &Path) -> Result<String, String> {
    let value = if let Some(name) = reference.strip_prefix("env:") {
        std::env::var(name)
            .map_err(|_| format!("secret `{reference}`: environment variable {name} is not set"))?
    } else if let Some(path) = reference.strip_prefix("file:") {
        let p = base.join(path);
        let text = crate::bounded::read_to_string(&p, crate::bounded::MAX_FILE_BYTES).map_err(
            |e| match e {
                crate::bounded::ReadError::Io(e) => {
                    format!("secret `{reference}`: cannot read {}: {e}", p.display())
                }
                e => format!("secret `{reference}`: {e}"),
            },
        )?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else {
        return Err(format!(
            "secret reference `{reference}` must start with `env:` or `file:`"
        ));
    };
    if value.is_empty() {
        return Err(format!("secret `{reference}` is empty"));
    }
    remember([&value]);
    Ok(value)
}

/// Replaces secret references anywhere inside a variable's `value`; collects the resolved
/// values.
///
/// # Errors
/// A reference that cannot be resolved, or a malformed one (see [`reference`]).
pub fn resolve_in(value: &mut Value, base: &Path, found: &mut Vec<String>) -> Result<(), String> {
    walk(value, base, found, true)
}

/// Like [`resolve_in`] for a configuration section with a field of its own named `secret`
/// (the `balancer:` section): there only an exact `{secret: "..."}` is a reference, and the
/// section's typed validation judges the rest.
///
/// # Errors
/// A reference that cannot be resolved.
pub fn resolve_in_section(
    value: &mut Value,
    base: &Path,
    found: &mut Vec<String>,
) -> Result<(), String> {
    walk(value, base, found, false)
}

fn walk(
    value: &mut Value,
    base: &Path,
    found: &mut Vec<String>,
    strict: bool,
) -> Result<(), String> {
    let r = match reference(value) {
        Ok(r) => r,
        Err(e) if strict => return Err(e),
        Err(_) => None,
    };
    if let Some(r) = r {
        let v = resolve(r, base)?;
        found.push(v.clone());
        *value = Value::String(v);
        return Ok(());
    }
    match value {
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| walk(v, base, found, strict)),
        Value::Object(m) => m
            .values_mut()
            .try_for_each(|v| walk(v, base, found, strict)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_redacted_in_any_case() {
        Secrets::new(vec!["Known-Secret-Value".into()]);
        assert_eq!(
            redact_known("mode `Known-Secret-Value`, got `known-secret-value`, KNOWN-SECRET-VALUE"),
            "mode `<redacted>`, got `<redacted>`, <redacted>"
        );
    }

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
        assert_eq!(
            resolve("file:/dev/zero", &dir).unwrap_err(),
            "secret `file:/dev/zero`: not a regular file"
        );
    }

    #[test]
    fn malformed_references_are_errors() {
        let mut found = Vec::new();
        let base = Path::new(".");
        for (v, want) in [
            (
                serde_json::json!({"secret": 5}),
                "`secret` must be a string",
            ),
            (
                serde_json::json!({"a": [{"secret": "env:X", "note": 1}]}),
                "also has `note`",
            ),
        ] {
            let mut v = v;
            let e = resolve_in(&mut v, base, &mut found).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }
}
