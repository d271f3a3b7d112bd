//! Settings of a rollout file that every way of loading an inventory reads alike (rollout's
//! own format and a rollout file naming an Ansible inventory): the known roles, `ssh_config:`,
//! the `balancer:`/`state:` sections and the `roles_path:`/`templates_path:` folders.

use crate::error::{Diagnostic, did_you_mean};
use crate::secret;
use crate::yaml::Source;
use serde_json::Value;
use serde_saphyr::Spanned;
use std::path::{Path, PathBuf};

/// The roles found in the roles folder, to check the inventory's `roles:` entries against.
pub(super) struct KnownRoles {
    dir: PathBuf,
    names: Vec<String>,
}

impl KnownRoles {
    /// The sub-folders of `dir`; none if it cannot be read (every role is then reported).
    pub(super) fn read(dir: &Path) -> Self {
        let names = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        KnownRoles {
            dir: dir.to_path_buf(),
            names,
        }
    }

    /// Errors (with a did-you-mean) if role `r` has no folder.
    pub(super) fn check(&self, source: &Source, r: &Spanned<String>) -> Result<(), Diagnostic> {
        if self.names.iter().any(|k| k == &r.value) {
            return Ok(());
        }
        let mut d = source.at(
            r.referenced.line(),
            r.referenced.column(),
            format!("role `{}` not found in {}", r.value, self.dir.display()),
        );
        d.hint = did_you_mean(&r.value, self.names.iter().map(String::as_str))
            .map(|s| format!("did you mean `{s}`?"));
        Err(d)
    }
}

/// `ssh_config:` resolved against the inventory's folder; it must exist.
pub(super) fn ssh_config(
    source: &Source,
    base: &Path,
    setting: Option<&Spanned<String>>,
) -> Result<Option<PathBuf>, Diagnostic> {
    let Some(s) = setting else { return Ok(None) };
    let p = base.join(&s.value);
    if !p.is_file() {
        return Err(source.at(
            s.referenced.line(),
            s.referenced.column(),
            format!("ssh_config file {} does not exist", p.display()),
        ));
    }
    Ok(Some(p))
}

/// The raw `balancer:` (or `state:`) section with its secrets resolved, and its line and
/// column.
pub(super) fn balancer(
    source: &Source,
    base: &Path,
    section: Option<&Spanned<Value>>,
    found: &mut Vec<String>,
) -> Result<Option<(Value, u64, u64)>, Diagnostic> {
    let Some(b) = section else { return Ok(None) };
    let (line, col) = (b.referenced.line(), b.referenced.column());
    let mut v = b.value.clone();
    secret::resolve_in_section(&mut v, base, found).map_err(|e| source.at(line, col, e))?;
    Ok(Some((v, line, col)))
}

/// `roles_path:`/`templates_path:` if set, else the nearest folder of that name at or above
/// the inventory's folder (so `inventories/x.yml` finds the repository's `roles/`).
pub(super) fn dir_setting(
    source: &Source,
    base: &Path,
    setting: Option<&Spanned<String>>,
    default: &str,
) -> Result<PathBuf, Diagnostic> {
    if let Some(s) = setting {
        let p = base.join(&s.value);
        if !p.is_dir() {
            return Err(source.at(
                s.referenced.line(),
                s.referenced.column(),
                format!("folder {} does not exist", p.display()),
            ));
        }
        return Ok(p);
    }
    // Lexical ancestors first, so messages show paths as the operator typed them.
    for dir in base.ancestors() {
        let p = if dir.as_os_str().is_empty() {
            PathBuf::from(default)
        } else {
            dir.join(default)
        };
        if p.is_dir() {
            return Ok(p);
        }
    }
    let abs = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    for dir in abs.ancestors() {
        let p = dir.join(default);
        if p.is_dir() {
            return Ok(p);
        }
    }
    Ok(base.join(default))
}
