//! Ansible inventories read as ansible-core 2.19 reads them, contacting no host: INI and YAML
//! files, folders of them, several sources, `group_vars/` and `host_vars/` beside each
//! source, vault-encrypted variable files and `!vault` values. The result is a neutral model
//! ([`data::Data`]) and each host's variables merged with Ansible's precedence (see
//! [`Inventory::host_vars`]), shown as `ansible-inventory --list`, `--graph` and `--host`
//! show them, secrets as `<redacted>` (see docs/inventory.md).
//!
//! What is not read: inventory plugins (`plugin:` YAML files), dynamic inventory scripts and
//! TOML inventories are refused with a message; play-adjacent `group_vars/` (rollout has no
//! playbook directory) are not looked for.

pub mod data;
mod ini;
pub mod literal;
pub mod ranges;
pub mod value;
pub mod vars_dirs;
pub mod vault;
pub mod yaml;
mod yaml_inventory;

use crate::error::Diagnostic;
use data::{ALL, At, Data};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use vars_dirs::VarsFiles;

/// Variables ansible-core sets itself and `ansible-inventory` leaves out of its output
/// (`INTERNAL_STATIC_VARS` of lib/ansible/constants.py); a variable of the same name set in
/// an inventory is left out too, as there.
pub const INTERNAL_VARS: [&str; 34] = [
    "ansible_async_path",
    "ansible_collection_name",
    "ansible_config_file",
    "ansible_dependent_role_names",
    "ansible_diff_mode",
    "ansible_facts",
    "ansible_forks",
    "ansible_inventory_sources",
    "ansible_limit",
    "ansible_play_batch",
    "ansible_play_hosts",
    "ansible_play_hosts_all",
    "ansible_play_role_names",
    "ansible_playbook_python",
    "ansible_role_name",
    "ansible_role_names",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_verbosity",
    "ansible_version",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "groups",
    "group_names",
    "omit",
    "hostvars",
    "playbook_dir",
    "play_hosts",
    "role_name",
    "role_names",
    "role_path",
    "role_uuid",
];

/// File names a folder source skips (ansible-core's `IGNORED`: hidden files, the variable
/// folders, and `INVENTORY_IGNORE_EXTS`).
const IGNORED_EXTENSIONS: [&str; 12] = [
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".cfg", ".retry",
];

/// The most files one folder source may hold (recursively).
const MAX_SOURCE_FILES: usize = 10_000;

/// An inventory read from one or more sources.
#[derive(Debug)]
pub struct Inventory {
    pub data: Data,
    /// Each host's merged variables (index as [`Data::hosts`]), secrets still wrapped (see
    /// [`value`]).
    pub host_vars: Vec<Map<String, Value>>,
    /// Where each of a host's merged variables was set (index as [`Data::hosts`]): the
    /// winning place after precedence; a variable whose place is unknown is missing.
    pub host_origins: Vec<HashMap<String, At>>,
    /// Plaintexts of decrypted vault files, for the run's redaction set.
    pub secrets: Vec<String>,
    /// What ansible-core would warn about (skipped keys and files), with their place.
    pub warnings: Vec<String>,
}

/// Reads `sources` (files, folders, or `host1,host2,` lists) in order.
///
/// # Errors
/// The first source or variable file that cannot be read, decrypted or parsed, located.
pub fn read(
    sources: &[PathBuf],
    password: Option<&vault::VaultIds>,
) -> Result<Inventory, Diagnostic> {
    let mut data = Data::new();
    let mut warnings = Vec::new();
    let mut var_dirs = Vec::new();
    for s in sources {
        let text = s.to_string_lossy();
        if text.contains(',') && !s.exists() {
            host_list(&text, &mut data);
            continue;
        }
        let abs = absolute(s);
        if abs.is_dir() {
            let mut count = 0;
            read_dir(&abs, &mut data, &mut warnings, &mut count)?;
            var_dirs.push(abs);
        } else {
            read_file(&abs, s, &mut data, &mut warnings, false)?;
            var_dirs.push(abs.parent().map(Path::to_path_buf).unwrap_or_default());
        }
    }
    data.reconcile();
    let mut files = VarsFiles::new(password);
    let depths = data.depths();
    let memberships = data.groups_of_all_hosts();
    let mut host_vars = Vec::with_capacity(data.hosts.len());
    let mut host_origins = Vec::with_capacity(data.hosts.len());
    for (h, groups) in memberships.into_iter().enumerate() {
        let (v, o) = merged(&data, &depths, h, groups, &var_dirs, &mut files)?;
        host_vars.push(v);
        host_origins.push(o);
    }
    Ok(Inventory {
        data,
        host_vars,
        host_origins,
        secrets: files.secrets,
        warnings,
    })
}

/// `path` made absolute against the working directory, without resolving links (Ansible's
/// `unfrackpath(follow=False)`).
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// A file's text: only a regular file of bounded size, UTF-8 (located at the first bad byte).
pub(crate) fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let bytes =
        crate::bounded::read(path, crate::bounded::MAX_FILE_BYTES).map_err(|e| match e {
            crate::bounded::ReadError::Io(e) => {
                Diagnostic::file(path, format!("cannot read file: {e}"))
            }
            other => Diagnostic::file(path, other.to_string()),
        })?;
    String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        let col = upto.iter().rev().take_while(|b| **b != b'\n').count() as u64 + 1;
        let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
        Diagnostic::at(path, &text, line, col, "file is not valid UTF-8")
            .with_hint("save the file as UTF-8")
    })
}

/// ansible-core's `host_list` plugin: `-i 'a,b:2222,'` names hosts, put in `ungrouped`.
fn host_list(text: &str, data: &mut Data) {
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, port) = ranges::parse_address(part)
            .filter(|(n, _)| !n.contains('['))
            .unwrap_or((part.to_string(), None));
        data.add_host(&name, data::UNGROUPED, port);
    }
}

fn read_dir(
    dir: &Path,
    data: &mut Data,
    warnings: &mut Vec<String>,
    count: &mut usize,
) -> Result<(), Diagnostic> {
    let names = sorted_names(dir)?;
    for n in names {
        if n.starts_with('.')
            || matches!(n.as_str(), "host_vars" | "group_vars" | "vars_plugins")
            || IGNORED_EXTENSIONS.iter().any(|e| n.ends_with(e))
        {
            continue;
        }
        *count += 1;
        if *count > MAX_SOURCE_FILES {
            return Err(Diagnostic::file(
                dir,
                format!("more than {MAX_SOURCE_FILES} files in this inventory folder"),
            ));
        }
        let p = dir.join(&n);
        if p.is_dir() {
            read_dir(&p, data, warnings, count)?;
        } else {
            read_file(&p, &p, data, warnings, true)?;
        }
    }
    Ok(())
}

/// Which of ansible-core's file plugins would try `path`: (yaml, ini).
fn plugins_for(path: &Path) -> (bool, bool) {
    match path.extension().map(|e| e.to_string_lossy().into_owned()) {
        None => (true, true),
        Some(e) if e.is_empty() => (false, false),
        Some(e) => (matches!(e.as_str(), "yml" | "yaml" | "json"), e == "ini"),
    }
}

/// Reads one inventory file into `data`. `in_folder`: a file of a folder source that no
/// plugin reads is skipped with a warning (as ansible-core does) instead of being an error.
fn read_file(
    path: &Path,
    shown: &Path,
    data: &mut Data,
    warnings: &mut Vec<String>,
    in_folder: bool,
) -> Result<(), Diagnostic> {
    let (yaml_ok, ini_ok) = plugins_for(path);
    if !yaml_ok && !ini_ok {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let message = if ext == "toml" {
            "TOML inventories are not read by rollout: convert it to YAML or INI".to_string()
        } else {
            format!(
                "no inventory reader takes `.{ext}` files: YAML inventories end in .yml, .yaml or \
                 .json, INI inventories in .ini or have no extension"
            )
        };
        if in_folder {
            warnings.push(format!("{}: skipped: {message}", shown.display()));
            return Ok(());
        }
        return Err(Diagnostic::file(shown, message));
    }
    let text = read_text(path).map_err(|mut d| {
        d.file = shown.to_path_buf();
        d
    })?;
    data.file = shown.to_path_buf();
    if text.starts_with("#!") && is_executable(path) {
        return Err(
            Diagnostic::file(shown, "dynamic inventory scripts are not run by rollout")
                .with_hint("run the script yourself and save its output as a YAML inventory"),
        );
    }
    let mut yaml_error = None;
    if yaml_ok {
        match yaml::parse(&text) {
            Ok(doc)
                if ini_ok
                    && !doc
                        .as_ref()
                        .is_some_and(|d| matches!(d.kind, yaml::Kind::Map(_))) => {}
            Ok(doc) => {
                let mut file_warnings = Vec::new();
                let r = yaml_inventory::parse(doc.as_ref(), data, &mut file_warnings);
                warnings.extend(
                    file_warnings
                        .into_iter()
                        .map(|w| format!("{}:{w}", shown.display())),
                );
                return r.map_err(|e| located(shown, &text, e.line, e.column, e.message));
            }
            Err(e) => yaml_error = Some(e),
        }
    }
    if ini_ok {
        return ini::parse(&text, data)
            .map_err(|e| located(shown, &text, e.line, e.column, e.message));
    }
    let e = yaml_error.unwrap_or(yaml::YamlError {
        line: 0,
        column: 0,
        message: "not a YAML inventory".into(),
    });
    Err(located(shown, &text, e.line, e.column, e.message))
}

fn located(path: &Path, text: &str, line: u64, column: u64, message: String) -> Diagnostic {
    if line == 0 {
        Diagnostic::file(path, message)
    } else {
        Diagnostic::at(path, text, line, column, message)
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// Host `h`'s variables with ansible-core's precedence (`VariableManager.get_vars` with the
/// default `VARIABLE_PRECEDENCE`), lowest first: the inventory's `all` vars; the inventory's
/// vars of the host's other groups, sorted by depth, then `ansible_group_priority`, then
/// name; `group_vars/all` of each source; `group_vars/GROUP` of each source for those groups
/// in the same order; the host's inventory vars; `host_vars/HOST` of each source. A later
/// top-level key replaces an earlier one whole (`hash_behaviour = replace`).
fn merged(
    data: &Data,
    depths: &[usize],
    h: usize,
    groups: std::collections::BTreeSet<usize>,
    dirs: &[PathBuf],
    files: &mut VarsFiles,
) -> Result<vars_dirs::Located, Diagnostic> {
    let groups = precedence_order(data, depths, groups);
    let mut out = (Map::new(), HashMap::new());
    let own =
        |vars: &Map<String, Value>, origins: &HashMap<String, At>| (vars.clone(), origins.clone());
    extend(
        &mut out,
        own(&data.groups[ALL].vars, &data.groups[ALL].origins),
    );
    for g in &groups {
        extend(
            &mut out,
            own(&data.groups[*g].vars, &data.groups[*g].origins),
        );
    }
    for d in dirs {
        extend(&mut out, files.vars(d, "group_vars", "all")?);
    }
    for d in dirs {
        for g in &groups {
            extend(
                &mut out,
                files.vars(d, "group_vars", &data.groups[*g].name)?,
            );
        }
    }
    extend(&mut out, own(&data.hosts[h].vars, &data.hosts[h].origins));
    for d in dirs {
        extend(&mut out, files.vars(d, "host_vars", &data.hosts[h].name)?);
    }
    for k in INTERNAL_VARS {
        out.0.remove(k);
        out.1.remove(k);
    }
    Ok(out)
}

/// `groups` without `all`, in the order their variables are merged: by depth, then
/// `ansible_group_priority`, then name (ansible-core's `sort_groups`).
pub fn precedence_order(
    data: &Data,
    depths: &[usize],
    groups: std::collections::BTreeSet<usize>,
) -> Vec<usize> {
    let mut groups: Vec<usize> = groups.into_iter().filter(|g| *g != ALL).collect();
    groups.sort_by(|a, b| {
        let (ga, gb) = (&data.groups[*a], &data.groups[*b]);
        (depths[*a], ga.priority, &ga.name).cmp(&(depths[*b], gb.priority, &gb.name))
    });
    groups
}

/// Merges a layer into `into`: each key replaces the earlier one whole, and its place
/// replaces the earlier place (or removes it when the layer does not know it).
fn extend(into: &mut vars_dirs::Located, (vars, mut origins): vars_dirs::Located) {
    for (k, v) in vars {
        match origins.remove(&k) {
            Some(at) => into.1.insert(k.clone(), at),
            None => into.1.remove(&k),
        };
        into.0.insert(k, v);
    }
}

impl Inventory {
    /// The inventory as `--limit` patterns see it: hosts in `all` order and in the order
    /// first named, every group with its hosts in ansible-core's order.
    pub fn pattern_view(&self) -> crate::inventory::View<'_> {
        let d = &self.data;
        let names = |g: usize| {
            d.hosts_under(g)
                .into_iter()
                .map(|h| d.hosts[h].name.as_str())
                .collect::<Vec<&str>>()
        };
        crate::inventory::View {
            all: names(ALL),
            hosts: d.hosts.iter().map(|h| h.name.as_str()).collect(),
            groups: (0..d.groups.len())
                .map(|g| (d.groups[g].name.as_str(), names(g)))
                .collect(),
        }
    }

    /// `ansible-inventory --list`: every group reachable from `all` with its `hosts` and
    /// `children` (empty ones left out), and `_meta.hostvars` with each host's merged
    /// variables (hosts without any left out), secrets as `<redacted>`. With `only`
    /// (`--limit`), as `ansible-inventory --limit --list`: groups list only those hosts, a
    /// group left with neither hosts nor children is left out, and only those hosts' variables
    /// are shown.
    pub fn list(&self, only: Option<&HashSet<&str>>) -> Value {
        let d = &self.data;
        let mut out = Map::new();
        let mut seen = std::collections::BTreeSet::new();
        let shown = |h: usize| only.is_none_or(|o| o.contains(d.hosts[h].name.as_str()));
        self.format_group(ALL, &shown, &mut out, &mut seen);
        let mut hostvars = Map::new();
        for h in d.hosts_under(ALL).into_iter().filter(|h| shown(*h)) {
            if !self.host_vars[h].is_empty() {
                hostvars.insert(
                    d.hosts[h].name.clone(),
                    value::redacted(&Value::Object(self.host_vars[h].clone())),
                );
            }
        }
        let mut meta = Map::new();
        meta.insert("hostvars".into(), Value::Object(hostvars));
        meta.insert("profile".into(), Value::String("inventory_legacy".into()));
        out.insert("_meta".into(), Value::Object(meta));
        Value::Object(out)
    }

    fn format_group(
        &self,
        g: usize,
        shown: &dyn Fn(usize) -> bool,
        out: &mut Map<String, Value>,
        seen: &mut std::collections::BTreeSet<usize>,
    ) {
        let d = &self.data;
        let group = &d.groups[g];
        let mut entry = Map::new();
        let hosts: Vec<Value> = group
            .hosts
            .iter()
            .filter(|h| shown(**h))
            .map(|h| Value::String(d.hosts[*h].name.clone()))
            .collect();
        if g != ALL && !hosts.is_empty() {
            entry.insert("hosts".into(), Value::Array(hosts));
        }
        if !group.children.is_empty() {
            let kids = group
                .children
                .iter()
                .map(|c| Value::String(d.groups[*c].name.clone()))
                .collect();
            entry.insert("children".into(), Value::Array(kids));
        }
        for c in &group.children {
            if seen.insert(*c) {
                self.format_group(*c, shown, out, seen);
            }
        }
        if !entry.is_empty() {
            out.insert(group.name.clone(), Value::Object(entry));
        }
    }

    /// `ansible-inventory --graph [GROUP]`: the tree under `group`, child groups before
    /// hosts, one line each (`@group:`, `  |--name`).
    ///
    /// # Errors
    /// `group` is not a group.
    pub fn graph(&self, group: &str) -> Result<String, String> {
        let g = self
            .data
            .group(group)
            .ok_or_else(|| format!("--graph: `{group}` is not a group of the inventory"))?;
        let mut lines = Vec::new();
        self.graph_group(g, 0, &mut lines);
        Ok(lines.join("\n") + "\n")
    }

    fn graph_group(&self, g: usize, depth: usize, lines: &mut Vec<String>) {
        let d = &self.data;
        lines.push(graph_name(&format!("@{}:", d.groups[g].name), depth));
        for c in &d.groups[g].children {
            self.graph_group(*c, depth + 1, lines);
        }
        if g != ALL {
            for h in &d.groups[g].hosts {
                lines.push(graph_name(&d.hosts[*h].name, depth + 1));
            }
        }
    }

    /// `ansible-inventory --host NAME`: the host's merged variables, secrets `<redacted>`.
    ///
    /// # Errors
    /// No host of that name.
    pub fn host(&self, name: &str) -> Result<Value, String> {
        let h = self.data.host(name).ok_or_else(|| {
            let names = self.data.hosts.iter().map(|h| h.name.as_str());
            let hint = crate::error::did_you_mean(name, names)
                .map(|n| format!(" (did you mean `{n}`?)"))
                .unwrap_or_default();
            format!("--host: no host `{name}` in the inventory{hint}")
        })?;
        Ok(value::redacted(&Value::Object(self.host_vars[h].clone())))
    }
}

fn graph_name(name: &str, depth: usize) -> String {
    if depth == 0 {
        name.to_string()
    } else {
        format!("{}--{name}", "  |".repeat(depth))
    }
}

/// JSON as `ansible-inventory` prints it: keys sorted, four-space indents.
pub fn to_json(v: &Value) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    // A Value always serialises.
    let _ = v.serialize(&mut ser);
    String::from_utf8(buf).unwrap_or_default()
}

/// The names in folder `dir`, sorted (the order ansible-core reads a folder in).
///
/// # Errors
/// The folder cannot be read (the diagnostic names it).
fn sorted_names(dir: &Path) -> Result<Vec<String>, Diagnostic> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Diagnostic::file(dir, format!("cannot read folder: {e}")))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}
