//! Ansible's `lookup()` for the two lookup plugins operators use in values and templates
//! (ansible-core 2.19 `lib/ansible/plugins/lookup/env.py` and `file.py`):
//!
//! - `lookup('env', 'NAME', ..., default='')`: the controller's environment variables, `''`
//!   (or `default`) for one that is not set;
//! - `lookup('file', 'path', ..., rstrip=true, lstrip=false)`: a file's text on the
//!   controller, trailing white space stripped. A relative path is looked for as Ansible looks
//!   for it outside a role: in `files/` of the project folder (the folder holding `roles/` and
//!   `templates/`, Ansible's playbook folder), then in the project folder itself.
//!
//! Several terms give their values joined by `,` (Ansible's `lookup` without `wantlist`);
//! `wantlist=true` gives the list. Other lookup plugins are an error naming these two.
//!
//! Secrets stay redacted: the value of an environment variable whose name starts with
//! `ROLLOUT_` or contains `SECRET`, `PASSWORD`, `TOKEN` or `KEY`, and the text of a file other
//! users may not read (no `o+r`: a key, a password file), are collected
//! ([`crate::template::Templates::take_secret_lookups`]) and redacted from everything rollout
//! shows, in their common spellings (`secret::spellings`, applied by the planner). A text a template derives
//! from such a value in another way is not known to be secret: give secrets as
//! `{secret: "env:NAME"}` or `{secret: "file:path"}` in the inventory, which are tracked
//! through every template.

use minijinja::value::{Kwargs, Rest};
use minijinja::{Error, ErrorKind, Value};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What lookups leave for the caller, shared between the environment and its [`Templates`]:
/// the secret values they read, and the warnings of `errors='warn'` (each text once).
///
/// [`Templates`]: crate::template::Templates
#[derive(Default)]
pub struct Finds {
    secrets: Mutex<Vec<String>>,
    warnings: Mutex<Vec<String>>,
    warned: Mutex<std::collections::BTreeSet<String>>,
}

/// [`Finds`], shared.
pub type Found = Arc<Finds>;

fn bad(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// The project folder of the templates folder `templates` (its parent; `.` for a bare name).
pub fn base(templates: &Path) -> PathBuf {
    match templates.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Takes the secret values collected in `found`.
pub fn take(found: &Found) -> Vec<String> {
    std::mem::take(&mut *found.secrets.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Takes the warnings collected in `found` (not yet redacted: the caller redacts them).
pub fn take_warnings(found: &Found) -> Vec<String> {
    std::mem::take(&mut *found.warnings.lock().unwrap_or_else(|e| e.into_inner()))
}

fn collect(found: &Found, value: &str) {
    if value.is_empty() {
        return;
    }
    let mut all = found.secrets.lock().unwrap_or_else(|e| e.into_inner());
    all.push(value.to_string());
}

/// Keeps `text` as a warning unless it was kept before.
fn warn(found: &Found, text: String) {
    let mut seen = found.warned.lock().unwrap_or_else(|e| e.into_inner());
    if seen.insert(text.clone()) {
        let mut all = found.warnings.lock().unwrap_or_else(|e| e.into_inner());
        all.push(text);
    }
}

/// Is environment variable `name` one whose value is a secret?
fn secret_env(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("ROLLOUT_")
        || ["SECRET", "PASSWORD", "TOKEN", "KEY"]
            .iter()
            .any(|w| upper.contains(w))
}

/// The file `term` names, relative to `base` as [the module](self) says.
fn locate(base: &Path, term: &str) -> Option<PathBuf> {
    let p = Path::new(term);
    if p.is_absolute() {
        return p.is_file().then(|| p.to_path_buf());
    }
    [base.join("files").join(p), base.join(p)]
        .into_iter()
        .find(|c| c.is_file())
}

/// May users other than the owner and group not read `path`?
fn private(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 == 0)
}

/// What `errors=` asks for when a lookup fails (Ansible's `errors`: `strict` by default).
#[derive(Clone, Copy, PartialEq)]
enum OnError {
    Strict,
    Warn,
    Ignore,
}

/// The `lookup` function, reading files relative to `base` and collecting secrets in `found`.
pub fn function(base: PathBuf, found: Found) -> Value {
    Value::from_function(
        move |plugin: String, terms: Rest<String>, kwargs: Kwargs| -> Result<Value, Error> {
            run(&base, &found, &plugin, &terms, &kwargs, false)
        },
    )
}

/// Ansible's `query()` (and its short name `q()`): `lookup()` with `wantlist=True`, so the
/// result is always a list.
pub fn query(base: PathBuf, found: Found) -> Value {
    Value::from_function(
        move |plugin: String, terms: Rest<String>, kwargs: Kwargs| -> Result<Value, Error> {
            run(&base, &found, &plugin, &terms, &kwargs, true)
        },
    )
}

/// One lookup, as ansible-core 2.19 `_internal/_templating/_jinja_plugins.py`
/// `_invoke_lookup` runs it: `wantlist` gives the list; without it no value is `[]`, one
/// value is itself and several are joined by `,`. `errors='warn'|'ignore'` turn a failure of
/// the plugin (a missing file) into no value (`None`, or `[]` with `wantlist`), printed as a
/// warning or not at all; a plugin rollout does not have stays an error.
fn run(
    base: &Path,
    found: &Found,
    plugin: &str,
    terms: &[String],
    kwargs: &Kwargs,
    query: bool,
) -> Result<Value, Error> {
    let wantlist = query || kwargs.get::<Option<bool>>("wantlist")?.unwrap_or(false);
    let on_error = match kwargs.get::<Option<String>>("errors")?.as_deref() {
        None | Some("strict") => OnError::Strict,
        Some("warn") => OnError::Warn,
        Some("ignore") => OnError::Ignore,
        Some(other) => {
            return Err(bad(format!(
                "lookup errors=`{other}`: expected strict, warn or ignore"
            )));
        }
    };
    let values = match plugin {
        "env" => env(found, terms, kwargs),
        "file" => file(base, found, terms, kwargs),
        other => {
            return Err(bad(format!(
                "lookup plugin `{other}` is not supported (env, file)"
            )));
        }
    };
    let values = match values {
        Ok(v) => v,
        Err(e) if on_error == OnError::Strict => return Err(e),
        Err(e) => {
            if on_error == OnError::Warn {
                warn(
                    found,
                    format!(
                        "an error occurred while running the lookup plugin '{plugin}': {}",
                        e.detail().unwrap_or("")
                    ),
                );
            }
            return Ok(if wantlist {
                Value::from(Vec::<Value>::new())
            } else {
                Value::from(())
            });
        }
    };
    Ok(match values.len() {
        _ if wantlist => Value::from(values),
        0 => Value::from(Vec::<Value>::new()),
        1 => Value::from(values.into_iter().next().unwrap_or_default()),
        _ => Value::from(values.join(",")),
    })
}

/// `lookup('env', NAME, ..., default='')`.
fn env(found: &Found, terms: &[String], kwargs: &Kwargs) -> Result<Vec<String>, Error> {
    let default = kwargs.get::<Option<String>>("default")?.unwrap_or_default();
    kwargs.assert_all_used()?;
    Ok(terms
        .iter()
        .map(|name| {
            let v = std::env::var(name).unwrap_or_else(|_| default.clone());
            if secret_env(name) {
                collect(found, &v);
            }
            v
        })
        .collect())
}

/// `lookup('file', PATH, ..., rstrip=true, lstrip=false)`.
fn file(
    base: &Path,
    found: &Found,
    terms: &[String],
    kwargs: &Kwargs,
) -> Result<Vec<String>, Error> {
    let rstrip = kwargs.get::<Option<bool>>("rstrip")?.unwrap_or(true);
    let lstrip = kwargs.get::<Option<bool>>("lstrip")?.unwrap_or(false);
    kwargs.assert_all_used()?;
    let mut out = Vec::new();
    for term in terms {
        let path = locate(base, term).ok_or_else(|| {
            bad(format!(
                "lookup('file'): could not locate file `{term}` (looked in {0}/files/ and {0}/)",
                base.display()
            ))
        })?;
        let text =
            crate::bounded::read_to_string(&path, crate::bounded::MAX_FILE_BYTES).map_err(|e| {
                bad(format!(
                    "lookup('file'): cannot read {}: {e}",
                    path.display()
                ))
            })?;
        let mut text = text.as_str();
        if rstrip {
            text = text.trim_end();
        }
        if lstrip {
            text = text.trim_start();
        }
        if private(&path) {
            collect(found, text);
        }
        out.push(text.to_string());
    }
    Ok(out)
}
