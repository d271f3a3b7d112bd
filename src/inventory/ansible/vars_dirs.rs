//! `group_vars/` and `host_vars/` beside an inventory source, found and read as ansible-core's
//! `host_group_vars` vars plugin and `DataLoader.find_vars_files` do
//! (lib/ansible/plugins/vars/host_group_vars.py, lib/ansible/parsing/dataloader.py): for an
//! entity `NAME`, the first of `NAME` (a file, or a folder read recursively: every file
//! without extension or ending `.yml`/`.yaml`/`.json`, in sorted order, skipping hidden files
//! and `~` backups), `NAME.yml`, `NAME.yaml`, `NAME.json`. Each file is YAML (JSON is read
//! as YAML), possibly vault-encrypted as a whole; an empty file adds nothing; the files'
//! variables are merged in order, a later file's top-level key replacing an earlier one.

use super::data::At;
use super::value;
use super::yaml;
use super::{sorted_names, vault};
use crate::error::Diagnostic;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Extensions of variable files (ansible-core's `YAML_FILENAME_EXTENSIONS`).
const EXTENSIONS: [&str; 3] = ["yml", "yaml", "json"];

/// The most files one `group_vars/NAME/` folder may hold (recursively): a folder with more
/// is a mistake (a home directory linked there), not variables.
const MAX_FILES: usize = 10_000;

/// Variables and where each was set.
pub type Located = (Map<String, Value>, HashMap<String, At>);

/// Reads and caches variable files.
pub struct VarsFiles<'a> {
    password: Option<&'a vault::VaultIds>,
    cache: HashMap<PathBuf, Located>,
    /// Merged variables by (folder, `group_vars`/`host_vars`, name): a group's files are
    /// looked for once, not once per host.
    found: HashMap<(PathBuf, &'static str, String), Located>,
    /// Plaintexts of the vault-encrypted files read, for the run's redaction set.
    pub secrets: Vec<String>,
}

impl<'a> VarsFiles<'a> {
    pub fn new(password: Option<&'a vault::VaultIds>) -> Self {
        VarsFiles {
            password,
            cache: HashMap::new(),
            found: HashMap::new(),
            secrets: Vec::new(),
        }
    }

    /// The variables of entity `name` from `dir/sub/` (`sub` is `group_vars` or `host_vars`),
    /// with where each was set; empty if there are none. A name starting with `/` is
    /// skipped, as ansible-core does.
    ///
    /// # Errors
    /// A file that cannot be read, decrypted or parsed, or does not hold a mapping.
    pub fn vars(
        &mut self,
        dir: &Path,
        sub: &'static str,
        name: &str,
    ) -> Result<Located, Diagnostic> {
        let key = (dir.to_path_buf(), sub, name.to_string());
        if let Some(v) = self.found.get(&key) {
            return Ok(v.clone());
        }
        let v = self.vars_uncached(dir, sub, name)?;
        self.found.insert(key, v.clone());
        Ok(v)
    }

    fn vars_uncached(&mut self, dir: &Path, sub: &str, name: &str) -> Result<Located, Diagnostic> {
        let mut out = (Map::new(), HashMap::new());
        if name.starts_with('/') {
            return Ok(out);
        }
        let base = dir.join(sub);
        if !base.is_dir() {
            return Ok(out);
        }
        for file in find(&base, name)? {
            let (vars, origins) = self.load(&file)?;
            out.0.extend(vars);
            out.1.extend(origins);
        }
        Ok(out)
    }

    fn load(&mut self, file: &Path) -> Result<Located, Diagnostic> {
        if let Some(v) = self.cache.get(file) {
            return Ok(v.clone());
        }
        let text = super::read_text(file)?;
        let (text, encrypted) = if vault::is_encrypted(&text) {
            let Some(password) = self.password else {
                return Err(Diagnostic::file(
                    file,
                    "this file is vault-encrypted and no vault password was given",
                )
                .with_hint("pass --vault-id [LABEL@]SOURCE, --vault-password-file FILE or --ask-vault-pass, or set ANSIBLE_VAULT_PASSWORD_FILE"));
            };
            let plain = password
                .decrypt(&text)
                .map_err(|e| Diagnostic::file(file, format!("cannot decrypt: {e}")))?;
            let plain = String::from_utf8(plain)
                .map_err(|_| Diagnostic::file(file, "the decrypted vault is not UTF-8 text"))?;
            (plain, true)
        } else {
            (text, false)
        };
        let located = |e: yaml::YamlError| {
            // Positions inside a decrypted vault would point into ciphertext: name the file only.
            if encrypted {
                Diagnostic::file(file, format!("in the decrypted vault: {}", e.message))
            } else {
                Diagnostic::at(file, &text, e.line, e.column, e.message)
            }
        };
        let doc = yaml::parse(&text).map_err(located)?;
        let mut vars = Map::new();
        let mut origins = HashMap::new();
        // Inside a decrypted vault only the file is known.
        let at = |line: u64, column: u64| At {
            file: file.to_path_buf(),
            line: if encrypted { 0 } else { line },
            column: if encrypted { 0 } else { column },
        };
        if let Some(yaml::Node {
            kind: yaml::Kind::Map(pairs),
            ..
        }) = &doc
        {
            for (k, _) in pairs {
                if let Some(name) = k.key_text() {
                    origins.insert(name, at(k.line, k.column));
                }
            }
        }
        let vault = |t: &str, l: u64, c: u64| {
            let a = at(l, c);
            value::vaulted_at(t, &a.file, a.line, a.column)
        };
        match doc {
            None => {}
            Some(n) if matches!(n.kind, yaml::Kind::Null) => {}
            Some(n) => match n.to_value(&vault).map_err(located)? {
                Value::Object(m) => vars = m,
                _ => {
                    let d = if encrypted {
                        Diagnostic::file(
                            file,
                            "the decrypted vault must hold a mapping of variables",
                        )
                    } else {
                        Diagnostic::at(
                            file,
                            &text,
                            n.line,
                            n.column,
                            "a variables file must hold a mapping of variables",
                        )
                    };
                    return Err(d);
                }
            },
        }
        if encrypted {
            let marked = value::mark_all(Value::Object(vars));
            value::plaintexts(&marked, &mut self.secrets);
            vars = match marked {
                Value::Object(m) => m,
                _ => Map::new(),
            };
        }
        let out = (vars, origins);
        self.cache.insert(file.to_path_buf(), out.clone());
        Ok(out)
    }
}

/// `find_vars_files(base, name)`: the first of `name` (file or folder), `name.yml`,
/// `name.yaml`, `name.json`.
fn find(base: &Path, name: &str) -> Result<Vec<PathBuf>, Diagnostic> {
    for ext in [""].into_iter().chain(EXTENSIONS) {
        let p = if ext.is_empty() {
            base.join(name)
        } else {
            base.join(format!("{name}.{ext}"))
        };
        if p.is_dir() {
            let mut out = Vec::new();
            dir_files(&p, &mut out)?;
            return Ok(out);
        }
        if p.exists() {
            return Ok(vec![p]);
        }
    }
    Ok(Vec::new())
}

fn dir_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Diagnostic> {
    let names = sorted_names(dir)?;
    for n in names {
        if n.starts_with('.') || n.ends_with('~') {
            continue;
        }
        let p = dir.join(&n);
        let ext = Path::new(&n)
            .extension()
            .map(|e| e.to_string_lossy().into_owned());
        if p.is_dir() && ext.is_none() {
            dir_files(&p, out)?;
        } else if p.is_file() && ext.as_deref().is_none_or(|e| EXTENSIONS.contains(&e)) {
            out.push(p);
        }
        if out.len() > MAX_FILES {
            return Err(Diagnostic::file(
                dir,
                format!("more than {MAX_FILES} variable files"),
            ));
        }
    }
    Ok(())
}
