//! Secrets: referenced from the inventory (`{secret: "env:NAME"}` or
//! `{secret: "file:path"}`), resolved on the controller, and redacted by value from every
//! line rollout prints, logs or diffs. They reach hosts only inside scripts sent over the
//! SSH channel's stdin, never on a remote command line.

use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

/// What replaces a secret's value in any output.
pub const REDACTED: &str = "<redacted>";

/// The set of secret values known for a run, longest first: each secret in the spellings a
/// template or a host commonly turns it into (see [`spellings`]), and the values rendered from
/// secrets that were registered while planning (see [`Secrets::add_derived`]). Clones share
/// one set, so a value registered by the plan is redacted by every reporter of the run.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Arc<RwLock<Vec<String>>>,
}

impl Secrets {
    /// The set of `values` and their [`spellings`]; also remembered for [`redact_known`].
    pub fn new(values: Vec<String>) -> Self {
        let s = Secrets::default();
        s.insert(values.iter().flat_map(|v| spellings(v)).collect());
        s
    }

    /// Adds values rendered from secrets (a URL with a password in it, a line of a file),
    /// each as it is: they are redacted wherever they show up afterwards, error messages
    /// included. Only values [`worth_redacting`] should be added.
    pub fn add_derived(&self, values: Vec<String>) {
        self.insert(values);
    }

    fn insert(&self, mut values: Vec<String>) {
        values.retain(|v| !v.is_empty());
        if values.is_empty() {
            return;
        }
        remember(values.iter());
        // A poisoned lock only means another thread panicked while pushing: the set is intact.
        let mut all = self.values.write().unwrap_or_else(|e| e.into_inner());
        all.extend(values);
        all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        all.dedup();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<String>> {
        self.values.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces every known secret value in `text`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in self.read().iter() {
            if out.contains(v.as_str()) {
                out = outside_markers(&out, |piece| piece.replace(v.as_str(), REDACTED));
            }
        }
        out
    }

    /// Does `text` contain a known secret value?
    pub fn contains_secret(&self, text: &str) -> bool {
        self.read().iter().any(|v| text.contains(v.as_str()))
    }

    /// The byte offset of the first secret in `line` (for masking old values in diffs).
    pub fn first_secret_at(&self, line: &str) -> Option<usize> {
        self.read()
            .iter()
            .filter_map(|v| line.find(v.as_str()))
            .min()
    }

    /// No secret known?
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
}

/// What a diff or a shown script says instead of content rendered from a secret.
pub const DEPENDS_ON_SECRET: &str = "(content depends on a secret; not shown)";

/// Shortest text rendered from a secret that is registered for redaction (shorter ones, a
/// length or `true`, are not spellings of anything and would redact ordinary words).
pub const MIN_DERIVED_BYTES: usize = 8;

/// Longest text rendered from a secret that is registered for redaction as a whole (longer
/// ones are registered line by line).
pub const MAX_DERIVED_BYTES: usize = 4096;

/// The pieces of `rendered` (text rendered from a secret) worth registering with
/// [`Secrets::add_derived`], found by comparing it with `canary`, the same text rendered with
/// every secret replaced by a [`canary`] (None: that render failed, every piece counts): the
/// whole text, and each line that the canary render does not have, if between
/// [`MIN_DERIVED_BYTES`] and [`MAX_DERIVED_BYTES`] long. Lines that do not depend on the
/// secret (a host's name alone on a line) are not redacted elsewhere this way.
pub fn worth_redacting(rendered: &str, canary: Option<&str>) -> Vec<String> {
    if canary == Some(rendered) {
        return Vec::new();
    }
    let same: std::collections::HashSet<&str> =
        canary.unwrap_or("").lines().map(str::trim).collect();
    let ok = |t: &str| (MIN_DERIVED_BYTES..=MAX_DERIVED_BYTES).contains(&t.len());
    let mut out = Vec::new();
    if ok(rendered) {
        out.push(rendered.to_string());
    }
    if rendered.contains('\n') {
        out.extend(
            rendered
                .lines()
                .map(str::trim)
                .filter(|l| ok(l) && !same.contains(l))
                .map(String::from),
        );
    }
    out
}

/// A stand-in for secret `value` of another length, made of a character `value` does not
/// have: what a template renders from it differs wherever it depends on the secret.
pub fn canary(value: &str) -> String {
    let c = ['\u{2603}', '\u{2604}']
        .into_iter()
        .find(|c| !value.contains(*c))
        .unwrap_or('\u{2605}');
    std::iter::repeat_n(c, value.chars().count() + 3).collect()
}

/// `v` with every string inside replaced by its [`canary`].
pub fn canary_json(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(canary(s)),
        Value::Array(a) => Value::Array(a.iter().map(canary_json).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), canary_json(v))).collect())
        }
        other => other.clone(),
    }
}

/// `value` as it is and as templates and hosts commonly spell it: lower and upper case,
/// shell-quoted, XML/HTML-escaped, JSON-escaped, SQL-quoted, percent-encoded (as a URL's
/// user info, also with lower-case hex digits or all lower case, and as a form), hex of its bytes (lower and
/// upper case, as `xxd -p` or `od -An -tx1` print them: without separators, and with one
/// space between bytes), base64 (standard and URL-safe; the whole value, and the parts that
/// do not depend on its neighbours when it is encoded inside a longer text), reversed.
///
/// Tools that wrap long hex (`xxd -p` after 30 bytes, `od` after 16) split a longer value
/// over lines: only the unwrapped forms are spellings here.
pub fn spellings(value: &str) -> Vec<String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    let mut out = vec![
        value.to_string(),
        value.to_lowercase(),
        value.to_uppercase(),
        crate::script::quote(value),
        value.replace('\'', r"'\''"),
        crate::template::xml_escape(value),
        html_escape(value),
        serde_json::to_string(value)
            .map(|j| j[1..j.len() - 1].to_string())
            .unwrap_or_default(),
        json_ascii(value),
        value.replace('\'', "''"),
        value.replace('"', "\\\""),
        percent_encode(value, true),
        percent_encode(value, false),
        percent_encode(value, true).to_lowercase(),
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
        value.chars().rev().collect(),
    ];
    let hex = hex::encode(value.as_bytes());
    let spaced = spaced_hex(&hex);
    out.extend([hex.to_uppercase(), hex, spaced.to_uppercase(), spaced]);
    for engine in [&STANDARD, &URL_SAFE] {
        let whole = engine.encode(value);
        out.push(whole.trim_end_matches('=').to_string());
        out.push(whole);
        out.extend(base64_cores(value.as_bytes(), engine));
    }
    out.retain(|s| s.len() >= value.len().min(MIN_DERIVED_BYTES));
    out.sort();
    out.dedup();
    out
}

/// `value` JSON-escaped with every non-ASCII character as `\uXXXX` (UTF-16, lower-case hex),
/// as Python's `json.dumps` writes it by default (`ensure_ascii`): the shape of Ansible
/// modules' output, without the quotes.
fn json_ascii(value: &str) -> String {
    let json = serde_json::to_string(value).unwrap_or_default();
    let inner = json
        .get(1..json.len().saturating_sub(1))
        .unwrap_or_default();
    let mut out = String::with_capacity(inner.len());
    for c in inner.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Lowercase hex `hex` with a space between each two-digit byte (`od -An -tx1`).
fn spaced_hex(hex: &str) -> String {
    let mut out = String::with_capacity(hex.len() * 3 / 2);
    for (i, c) in hex.chars().enumerate() {
        if i > 0 && i % 2 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The characters of base64 that depend on `bytes` alone, for each of the three positions
/// `bytes` can start at inside a longer text (`user:password` encoded whole).
fn base64_cores(bytes: &[u8], engine: &impl base64::Engine) -> Vec<String> {
    (0..3)
        .filter_map(|shift| {
            let mut padded = vec![0u8; shift];
            padded.extend_from_slice(bytes);
            let enc = engine.encode(&padded);
            // Character i carries bits 6i..6i+5 of the input; keep those inside `bytes`.
            let first = (shift * 8).div_ceil(6);
            let end = ((shift + bytes.len()) * 8) / 6;
            let core = enc.get(first..end)?;
            (core.len() >= MIN_DERIVED_BYTES).then(|| core.to_string())
        })
        .collect()
}

/// `s` with every byte outside RFC 3986's unreserved set written `%XX`, in upper-case hex
/// digits as RFC 3986 recommends (`upper`) or lower-case ones.
fn percent_encode(s: &str, upper: bool) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// `s` as minijinja's `escape` filter writes it for HTML.
fn html_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#x27;".to_string(),
            '/' => "&#x2f;".to_string(),
            c => c.to_string(),
        })
        .collect()
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

/// Forgets every value [`KNOWN`] holds, as if the process had just started. For harnesses
/// that run many commands in one process (the fuzz targets under `fuzz/` and their corpus
/// replay): each input must be redacted with its own secrets only, or a secret an earlier
/// input read would hide a leak of the same value by a later one. rollout itself never calls
/// it: one process is one command.
#[doc(hidden)]
pub fn forget_known() {
    KNOWN.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// Replaces every secret value this process has read in `text`, in any ASCII case (an error
/// that lowercased a value, `expected true or false, got \`s3cret\``, is caught too). The one
/// redaction point for error messages: [`crate::subcommand::Error::print`] and
/// [`crate::report::summary::error`] pass everything they print through it.
pub fn redact_known(text: &str) -> String {
    let known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = text.to_string();
    for v in known.iter() {
        out = outside_markers(&out, |piece| replace_ignoring_ascii_case(piece, v));
    }
    out
}

/// `text` with `f` applied to each piece between the [`REDACTED`] markers already in it, the
/// markers kept: a short secret that is part of the marker (`e`, `act`) must not redact the
/// marker itself again, and again at every later pass (`<r<redacted>dacted>`), whose
/// leftovers would spell the secret.
fn outside_markers(text: &str, f: impl Fn(&str) -> String) -> String {
    text.split(REDACTED)
        .map(f)
        .collect::<Vec<_>>()
        .join(REDACTED)
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
    r.as_str().map(Some).ok_or_else(|| {
        "`secret` must be a string such as \"env:NAME\", \"file:PATH\" or \"cmd:COMMAND\"".into()
    })
}

/// Does `value` hold a mapping with a `secret` key anywhere inside?
pub fn contains_reference(value: &Value) -> bool {
    match value {
        Value::Object(m) => m.contains_key("secret") || m.values().any(contains_reference),
        Value::Array(items) => items.iter().any(contains_reference),
        _ => false,
    }
}

/// Seconds a `cmd:` secret command may take (a password manager asking for its passphrase
/// on the terminal included) before it is killed and the run stops.
pub const COMMAND_SECONDS: u64 = 120;

/// Bytes of output a `cmd:` secret command may print (1 MiB).
const COMMAND_MAX_BYTES: u64 = 1 << 20;

/// Runs the `cmd:` secret reference's `command` (`sops -d --extract '["bbb"]' secrets.yaml`,
/// `pass show pool/bbb`) without a shell: its words split as a POSIX shell would (quotes
/// kept together, crate `shlex`), the program looked up in `PATH`, run in `base` (the
/// inventory's folder), stdin the terminal's when there is one (a passphrase prompt) else
/// nothing, stderr the terminal's. Its stdout, trailing newlines removed, is the secret.
///
/// # Errors
/// Words that do not split (an open quote), no program, a program that cannot be started,
/// one that fails (its exit code), takes more than [`COMMAND_SECONDS`] or prints more than
/// 1 MiB or nothing: the message names the reference and the cause, never the output.
fn run_command(reference: &str, command: &str, base: &Path) -> Result<String, String> {
    use std::io::{IsTerminal, Read};
    use std::process::{Command, Stdio};
    let bad = |why: String| format!("secret `{reference}`: {why}");
    let words = shlex::split(command).ok_or_else(|| bad("the command has an open quote".into()))?;
    let Some((program, args)) = words.split_first() else {
        return Err(bad("no command after `cmd:`".into()));
    };
    let stdin = if std::io::stdin().is_terminal() {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let mut child = Command::new(program)
        .args(args)
        .current_dir(if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        })
        .stdin(stdin)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| bad(format!("cannot run `{program}`: {e}")))?;
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        stdout
            .take(COMMAND_MAX_BYTES + 1)
            .read_to_end(&mut out)
            .map(|_| out)
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(COMMAND_SECONDS);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(bad(format!(
                    "`{program}` did not end within {COMMAND_SECONDS} s and was stopped"
                )));
            }
            Err(e) => return Err(bad(format!("`{program}`: {e}"))),
        }
    };
    if !status.success() {
        return Err(bad(match status.code() {
            Some(c) => format!("`{program}` exited with code {c}"),
            None => format!("`{program}` was killed by a signal"),
        }));
    }
    let out = match reader.join() {
        Ok(Ok(out)) if out.len() as u64 <= COMMAND_MAX_BYTES => out,
        _ => {
            return Err(bad(format!(
                "`{program}`: its output is unreadable or over 1 MiB"
            )));
        }
    };
    let text =
        String::from_utf8(out).map_err(|_| bad(format!("`{program}` printed no UTF-8 text")))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// Resolves a reference such as `env:BBB_SECRET`, `file:secrets/bbb` (relative to `base`)
/// or `cmd:pass show pool/bbb` (run in `base`, see [`run_command`]).
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
    } else if let Some(command) = reference.strip_prefix("cmd:") {
        run_command(reference, command, base)?
    } else {
        return Err(format!(
            "secret reference `{reference}` must start with `env:`, `file:` or `cmd:`"
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
    walk(value, base, found, true, Host::Later)
}

/// Resolves the references [`resolve_in`] left for the host because they are templates
/// (`{secret: "file:secrets/{{ inventory_hostname }}"}`), each rendered first with the
/// host's `context` (its variables, `inventory_hostname`, `group_names`).
///
/// # Errors
/// A reference that does not render (an undefined variable) or cannot be resolved.
pub fn resolve_for_host(
    value: &mut Value,
    base: &Path,
    found: &mut Vec<String>,
    context: &Value,
) -> Result<(), String> {
    walk(value, base, found, true, Host::Is(context))
}

/// Whether a reference is a template, resolved per host ([`resolve_for_host`]).
fn is_template(reference: &str) -> bool {
    reference.contains("{{") || reference.contains("{%")
}

/// `reference` rendered with `context` (a plain minijinja environment: undefined variables
/// are errors).
fn render_reference(reference: &str, context: &Value) -> Result<String, String> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.render_str(
        reference,
        minijinja::Value::from(minijinja::value::Serde(context)),
    )
    .map_err(|e| format!("secret `{reference}`: cannot render the reference: {e}"))
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
    walk(value, base, found, false, Host::None)
}

/// Which host a reference that is a template is rendered for.
#[derive(Clone, Copy)]
enum Host<'a> {
    /// This host's variables: render it now.
    Is(&'a Value),
    /// A host's, later ([`resolve_for_host`]): leave it as it is.
    Later,
    /// None (a section such as `balancer:` belongs to no host): an error.
    None,
}

/// Resolves the references inside `value`; one that is a template as `host` says.
fn walk(
    value: &mut Value,
    base: &Path,
    found: &mut Vec<String>,
    strict: bool,
    host: Host<'_>,
) -> Result<(), String> {
    let r = match reference(value) {
        Ok(r) => r,
        Err(e) if strict => return Err(e),
        Err(_) => None,
    };
    if let Some(r) = r {
        let v = match host {
            _ if !is_template(r) => resolve(r, base)?,
            Host::Is(ctx) => resolve(&render_reference(r, ctx)?, base)?,
            Host::Later => return Ok(()),
            Host::None => {
                return Err(format!(
                    "secret `{r}`: this section belongs to no host, so its references cannot use host variables"
                ));
            }
        };
        found.push(v.clone());
        *value = Value::String(v);
        return Ok(());
    }
    match value {
        Value::Array(items) => items
            .iter_mut()
            .try_for_each(|v| walk(v, base, found, strict, host)),
        Value::Object(m) => m
            .values_mut()
            .try_for_each(|v| walk(v, base, found, strict, host)),
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
        // A mixed case no stored spelling has (a template's `title` or `swapcase`).
        assert_eq!(redact_known("got kNOWN-sECRET-vALUE"), "got <redacted>");
    }

    #[test]
    fn json_with_ascii_escapes_is_a_spelling() {
        // Python's json.dumps (ensure_ascii): what Ansible modules print.
        assert!(spellings("Unié-Sec😀").contains(&"Uni\\u00e9-Sec\\ud83d\\ude00".to_string()));
        let s = Secrets::new(vec!["Unié-Secret-98".into()]);
        assert_eq!(
            s.redact(r#"json:"Uni\u00e9Secret-98" "Uni\u00e9-Secret-98""#),
            r#"json:"Uni\u00e9Secret-98" "<redacted>""#
        );
    }

    #[test]
    fn hex_of_the_bytes_is_a_spelling() {
        let s = Secrets::new(vec!["Pw/9z".into()]);
        for text in [
            "xxd -p: 50772f397a",
            "upper: 50772F397A",
            "od:  50 77 2f 39 7a",
            "OD: 50 77 2F 39 7A",
        ] {
            assert!(s.contains_secret(text), "{text}");
            assert!(!s.redact(text).contains("7a") && !s.redact(text).contains("7A"));
        }
        assert_eq!(redact_known("x 50772f397a y"), "x <redacted> y");
        // Percent-encoding with lowercase digits (`%2f`), as some encoders write it.
        assert_eq!(s.redact("u=Pw%2f9z"), "u=<redacted>");
    }

    #[test]
    fn a_secret_inside_the_marker_does_not_redact_the_marker_again() {
        // Parts of the marker itself (registered process-wide: nothing else prints them).
        let s = Secrets::new(vec!["dacte".into(), "ted>".into()]);
        let once = s.redact("x dacte y ted> z");
        assert_eq!(once, "x <redacted> y <redacted> z");
        // Again, and through the process-wide pass: the markers stay as they are.
        assert_eq!(s.redact(&once), once);
        assert_eq!(redact_known(&redact_known(&once)), once);
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
    fn cmd_references_run_without_a_shell_and_never_show_their_output() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "from-a-file\n").unwrap();
        // Words as a shell splits them, no shell: `$(...)` and `;` reach printf as text.
        assert_eq!(
            resolve("cmd:printf '%s|%s\\n' 'a b' '$(id);x'", dir.path()).unwrap(),
            "a b|$(id);x"
        );
        // Run in the inventory's folder.
        assert_eq!(resolve("cmd:cat pw", dir.path()).unwrap(), "from-a-file");
        for (reference, want) in [
            (
                "cmd:sh -c 'printf %s%s leaked- text; exit 3'",
                "`sh` exited with code 3",
            ),
            ("cmd:", "no command after `cmd:`"),
            ("cmd:echo 'open", "the command has an open quote"),
            (
                "cmd:rollout-surely-no-such-program",
                "cannot run `rollout-surely-no-such-program`",
            ),
            ("cmd:true", "is empty"),
        ] {
            let e = resolve(reference, dir.path()).unwrap_err();
            assert!(e.contains(want), "{reference}: {e}");
            assert!(!e.contains("leaked-text"), "{e}");
        }
    }

    #[test]
    fn a_reference_that_is_a_template_waits_for_the_host() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("s")).unwrap();
        std::fs::write(dir.path().join("s/h2"), "per-host-secret-h2\n").unwrap();
        let mut v = serde_json::json!({"secret": "file:s/{{ inventory_hostname }}"});
        let mut found = Vec::new();
        resolve_in(&mut v, dir.path(), &mut found).unwrap();
        assert!(reference(&v).unwrap().is_some(), "left for the host: {v}");
        let ctx = serde_json::json!({"inventory_hostname": "h2"});
        resolve_for_host(&mut v, dir.path(), &mut found, &ctx).unwrap();
        assert_eq!(v, "per-host-secret-h2");
        assert_eq!(found, ["per-host-secret-h2"]);
        let mut v = serde_json::json!({"secret": "file:s/{{ nope }}"});
        let e = resolve_for_host(&mut v, dir.path(), &mut found, &ctx).unwrap_err();
        assert!(
            e.contains("cannot render the reference") && e.contains("nope"),
            "{e}"
        );
        // A section that belongs to no host (`balancer:`): an error, not left unresolved.
        let mut v = serde_json::json!({"secret": "file:s/{{ inventory_hostname }}"});
        let e = resolve_in_section(&mut v, dir.path(), &mut found).unwrap_err();
        assert!(e.contains("belongs to no host"), "{e}");
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
