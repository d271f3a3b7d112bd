//! Loading and validating an inventory.
//!
//! Variable precedence, lowest to highest (documented in the README):
//! 1. role defaults (`roles/NAME/defaults.yml`, merged later by the planner),
//! 2. `all: vars:`,
//! 3. group vars, shallower groups before deeper ones, siblings by name,
//! 4. host vars,
//! 5. `--extra-vars` on the command line.
//!
//! Ansible's connection variables (`ansible_host`, `ansible_port`, `ansible_user`,
//! `ansible_become`, `ansible_connection`) in the merged variables set the host's address,
//! port, user, become and connection (see `connection_vars`).

use super::connection_vars;
use super::file::{HostFile, InventoryFile, Vars};
use super::groups::{Pos, Tree};
use super::refs::{self, Origin};
use super::settings::{KnownRoles, balancer, dir_setting, ssh_config};
use super::{Host, Inventory, address};
use crate::error::Diagnostic;
use crate::secret::{self, Secrets};
use crate::yaml::Source;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Ansible inventory sources named on the command line (`-i`), which replace the rollout
/// file's `inventory:`, and the vault password file for their vaults.
#[derive(Debug, Clone, Default)]
pub struct AnsibleSources {
    /// Files, folders or `host1,host2,` lists, relative to the working folder, in order.
    pub sources: Vec<PathBuf>,
    /// `--vault-password-file` or `ANSIBLE_VAULT_PASSWORD_FILE`.
    pub vault_password_file: Option<PathBuf>,
    /// ansible-core's vault ids (`LABEL@SOURCE`), in order: `ANSIBLE_VAULT_IDENTITY_LIST`, each
    /// `--vault-id`, then `@prompt_ask_vault_pass` for `--ask-vault-pass` (see
    /// [`crate::inventory::ansible::vault::VaultIds::load`]).
    pub vault_ids: Vec<String>,
}

/// Reads, parses and validates the inventory at `path` (rollout's own format, or a rollout
/// file naming an Ansible inventory with `inventory:`).
///
/// Errors: see [`load_with`].
pub fn load(path: &Path, extra_vars: &Map<String, Value>) -> Result<Inventory, Diagnostic> {
    load_with(path, extra_vars, &AnsibleSources::default())
}

/// Reads the Ansible inventory `ansible.sources` alone, without a rollout file (`rollout exec
/// -i hosts.ini`, as `ansible -i hosts.ini`): no roles, no balancer, no `ssh_config`;
/// relative paths (secret files) from the current folder. Messages name the first source.
///
/// Errors: as [`load_with`] for an Ansible inventory; no source given.
pub fn load_ansible(
    extra_vars: &Map<String, Value>,
    ansible: &AnsibleSources,
) -> Result<Inventory, Diagnostic> {
    let Some(first) = ansible.sources.first() else {
        return Err(Diagnostic::file(
            Path::new("-i"),
            "no inventory given: name a rollout file or an Ansible inventory with -i",
        ));
    };
    let source = crate::yaml::Source {
        path: first.clone(),
        text: String::new(),
    };
    super::ansible_hosts::load(
        first,
        source,
        Path::new("."),
        &InventoryFile::default(),
        &ansible.sources,
        ansible,
        extra_vars,
    )
}

/// The Ansible inventory sources the rollout file at `path` names with `inventory:`,
/// relative to it, for `rollout inventory` given a rollout file (`$ROLLOUT_INVENTORY`)
/// instead of `-i`.
///
/// # Errors
/// The file cannot be read or parsed; its `inventory:` is malformed or names a path that does
/// not exist; it names no Ansible inventory (its hosts are rollout's own `all:`).
pub fn ansible_sources(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let source = crate::yaml::Source::read_or_hint(path, None)?;
    let file: InventoryFile = source.parse().map_err(|d| ansible_hint(path, &source, d))?;
    let base = match path.parent() {
        Some(b) if !b.as_os_str().is_empty() => b.to_path_buf(),
        _ => PathBuf::from("."),
    };
    super::ansible_hosts::sources(&source, &base, &file, &AnsibleSources::default())?.ok_or_else(
        || {
            Diagnostic::file(
                path,
                "names no Ansible inventory (`inventory:`): `rollout inventory` shows an Ansible inventory",
            )
            .with_hint("name one with `inventory: hosts.ini` in the rollout file, or give `-i PATH`")
        },
    )
}

/// Reads, parses and validates the rollout file at `path`, its hosts coming from `all:` or
/// from an Ansible inventory (`ansible.sources`, else the file's `inventory:`).
///
/// Errors: the file cannot be read or parsed, the group tree is invalid (see `groups`), a
/// secret cannot be resolved (a vault without or with a wrong password among them), a role or
/// folder does not exist, a host's variables or address are invalid, or the inventory
/// defines no hosts.
pub fn load_with(
    path: &Path,
    extra_vars: &Map<String, Value>,
    ansible: &AnsibleSources,
) -> Result<Inventory, Diagnostic> {
    // Only a regular file of bounded size: a FIFO or /dev/zero would hang or exhaust memory.
    let source = crate::yaml::Source::read_or_hint(
        path,
        Some("an inventory needs at least `all:` with `hosts:` or `children:`"),
    )?;
    let file: InventoryFile = source.parse().map_err(|d| ansible_hint(path, &source, d))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    if let Some(sources) = super::ansible_hosts::sources(&source, &base, &file, ansible)? {
        return super::ansible_hosts::load(
            path, source, &base, &file, &sources, ansible, extra_vars,
        );
    }
    let Some(all) = &file.all else {
        return Err(Diagnostic::file(
            path,
            "the inventory has neither `all:` (rollout's hosts) nor `inventory:` (an Ansible inventory)",
        )
        .with_hint("add `all:` with `hosts:` or `children:`, or name an Ansible inventory with `inventory: hosts.ini` or `-i` (docs/from-ansible.md)"));
    };
    if let Some(r) = &file.roles {
        return Err(source
            .at(
                r.referenced.line(),
                r.referenced.column(),
                "a top-level `roles:` gives the roles of an Ansible inventory's groups, and this file names none",
            )
            .with_hint("in `all:`, give each group its own `roles:`; or name an Ansible inventory with `inventory:` or `-i`"));
    }

    let tree = Tree::collect(&source, all)?;
    let members = tree.members();
    let mut secret_values = Vec::new();
    let mut group_vars: HashMap<*const Vars, Map<String, Value>> = HashMap::new();
    for g in tree.groups.values() {
        for v in &g.vars {
            let m = resolve_vars(&source, &base, v, &mut secret_values)?;
            group_vars.insert(*v as *const Vars, m);
        }
    }
    let roles_dir = dir_setting(&source, &base, file.roles_path.as_ref(), "roles")?;
    let templates_dir = dir_setting(&source, &base, file.templates_path.as_ref(), "templates")?;

    let mut hosts = Hosts {
        source: &source,
        base: &base,
        tree: &tree,
        members: &members,
        group_vars,
        roles: KnownRoles::read(&roles_dir),
        extra_vars,
        secret_values,
    };
    let mut out_hosts = Vec::new();
    let mut var_origins = HashMap::new();
    for (name, (hf, at)) in &tree.hosts {
        let (host, origins) = hosts.build(name, *hf, *at)?;
        out_hosts.push(host);
        var_origins.insert(name.clone(), origins);
    }
    let mut secret_values = hosts.secret_values;
    if out_hosts.is_empty() {
        return Err(source
            .at(
                all.referenced.line(),
                all.referenced.column(),
                "the inventory defines no hosts",
            )
            .with_hint("add hosts under `all: hosts:` or under a group in `all: children:`"));
    }
    let ssh_config = ssh_config(&source, &base, file.ssh_config.as_ref())?;
    let state = balancer(&source, &base, file.state.as_ref(), &mut secret_values)?;
    let balancer = balancer(&source, &base, file.balancer.as_ref(), &mut secret_values)?;

    Ok(Inventory {
        path: path.to_path_buf(),
        ssh_config,
        roles_dir,
        templates_dir,
        host_order: out_hosts.iter().map(|h| h.name.clone()).collect(),
        hosts: out_hosts,
        groups: members,
        secrets: Secrets::new(secret_values),
        balancer,
        state,
        source,
        var_origins,
    })
}

/// A `vars:` block with its secrets resolved (files relative to `base`); every secret value
/// read is added to `found` so it can be redacted from output.
pub(super) fn resolve_vars(
    source: &Source,
    base: &Path,
    vars: &Vars,
    found: &mut Vec<String>,
) -> Result<Map<String, Value>, Diagnostic> {
    let mut out = Map::new();
    for (k, v) in vars {
        let mut value = v.value.value.clone();
        secret::resolve_in(&mut value, base, found).map_err(|e| {
            let (line, col) =
                reference_fault(&v.value).unwrap_or((v.referenced.line(), v.referenced.column()));
            source.at(line, col, e)
        })?;
        out.insert(k.clone(), value);
    }
    Ok(out)
}

/// Where a malformed secret reference written as the variable's value is wrong: the key
/// besides `secret`, else the `secret` key's value. None for a value that is not a reference
/// (a reference nested deeper is placed at the variable).
fn reference_fault(node: &crate::yaml::Node) -> Option<crate::yaml::Pos> {
    if !node.keys.contains_key("secret") {
        return None;
    }
    match node.keys.iter().find(|(k, _)| *k != "secret") {
        Some((_, (key, _))) => Some(*key),
        None => node.value_at("secret"),
    }
}

/// What building each host needs from the rest of the inventory.
struct Hosts<'a> {
    source: &'a Source,
    base: &'a Path,
    tree: &'a Tree<'a>,
    members: &'a IndexMap<String, Vec<String>>,
    /// Each group `vars:` block, secrets resolved, by the block's address.
    group_vars: HashMap<*const Vars, Map<String, Value>>,
    roles: KnownRoles,
    extra_vars: &'a Map<String, Value>,
    /// Every secret value read so far.
    secret_values: Vec<String>,
}

impl Hosts<'_> {
    /// Host `name` (defined by `hf`, if anywhere, at `at`) with its variables merged in
    /// precedence order, its roles checked, and where each variable was set.
    fn build(
        &mut self,
        name: &str,
        hf: Option<&HostFile>,
        at: Pos,
    ) -> Result<(Host, HashMap<String, Origin>), Diagnostic> {
        let default_host = HostFile::default();
        let hf = hf.unwrap_or(&default_host);
        let host_groups = self.tree.host_groups(self.members, name);
        let mut vars = Map::new();
        let mut origins: HashMap<String, Origin> = HashMap::new();
        let mut roles: Vec<String> = Vec::new();
        for (_, info) in &host_groups {
            for v in &info.vars {
                for (k, val) in &self.group_vars[&(*v as *const Vars)] {
                    vars.insert(k.clone(), val.clone());
                }
                origins.extend(refs::positions(v));
            }
            self.add_roles(&mut roles, info.roles.iter().copied())?;
        }
        let host_vars = resolve_vars(self.source, self.base, &hf.vars, &mut self.secret_values)?;
        vars.extend(host_vars);
        origins.extend(refs::positions(&hf.vars));
        self.add_roles(&mut roles, hf.roles.iter())?;
        for (k, v) in self.extra_vars {
            vars.insert(k.clone(), v.clone());
            origins.insert(k.clone(), Origin::Extra);
        }
        // References that are templates (`file:secrets/{{ inventory_hostname }}`), left by
        // `resolve_vars`, resolved now that the host's variables are known.
        if vars.values().any(secret::contains_reference) {
            let mut groups: Vec<String> = host_groups
                .iter()
                .map(|(g, _)| (*g).clone())
                .filter(|g| g != "all" && g != "ungrouped")
                .collect();
            groups.sort();
            let mut ctx = vars.clone();
            ctx.insert("inventory_hostname".into(), name.into());
            ctx.insert("group_names".into(), groups.into());
            let ctx = Value::Object(ctx);
            for (k, v) in vars.iter_mut() {
                if !secret::contains_reference(v) {
                    continue;
                }
                secret::resolve_for_host(v, self.base, &mut self.secret_values, &ctx).map_err(
                    |e| match origins.get(k) {
                        Some(Origin::At(line, column)) => self.source.at(*line, *column, e),
                        _ => Diagnostic::file(&self.source.path, e),
                    },
                )?;
            }
        }
        refs::check(self.source, &vars, &origins)?;
        origins.retain(|k, _| vars.contains_key(k));
        let ansible = connection_vars::read(self.source, name, hf, &vars, &origins)?;
        // With `ansible_host` or `ansible_connection` set, the name need not be an address.
        let by_name = ansible.address.is_none() && ansible.connection.is_none();
        address::check(self.source, name, hf, at, by_name)?;
        let host = Host {
            name: name.to_string(),
            address: ansible.address.unwrap_or_else(|| {
                hf.address
                    .as_ref()
                    .map_or_else(|| name.to_string(), |a| a.value.clone())
            }),
            port: ansible.port.or(hf.port.as_ref().map(|p| p.value.0)),
            user: ansible.user.or_else(|| hf.user.clone()),
            connection: ansible.connection.or(hf.connection).unwrap_or_default(),
            become_root: ansible.become_root.or(hf.become_root).unwrap_or(false),
            groups: host_groups.iter().map(|(g, _)| (*g).clone()).collect(),
            roles,
            vars,
        };
        Ok((host, origins))
    }

    /// Checks each role and appends it to `roles` unless already there.
    fn add_roles<'r>(
        &self,
        roles: &mut Vec<String>,
        add: impl Iterator<Item = &'r Spanned<String>>,
    ) -> Result<(), Diagnostic> {
        for r in add {
            self.roles.check(self.source, r)?;
            if !roles.contains(&r.value) {
                roles.push(r.value.clone());
            }
        }
        Ok(())
    }
}

/// Does the file at `path` with text `text` look like an Ansible INI inventory (a `.ini`
/// name, or a first line that is not a comment and is a `[section]`)?
pub fn looks_like_ansible_ini(path: &Path, text: &str) -> bool {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(['#', ';']));
    path.extension().is_some_and(|e| e == "ini")
        || first.is_some_and(|l| l.starts_with('[') && l.ends_with(']'))
}

/// `d`, a parse error of the rollout file, with a hint when the file is an Ansible INI
/// inventory given where the rollout file goes.
fn ansible_hint(path: &Path, source: &Source, d: Diagnostic) -> Diagnostic {
    let ini = looks_like_ansible_ini(path, &source.text);
    if ini && d.hint.is_none() {
        return d.with_hint(
            "this looks like an Ansible INI inventory: name it in a rollout file (`inventory: hosts.ini`) or pass it with `-i` after one (`rollout plan pool.yml -i hosts.ini`); `rollout inventory -i hosts.ini --list` reads it alone (docs/from-ansible.md)",
        );
    }
    d
}
