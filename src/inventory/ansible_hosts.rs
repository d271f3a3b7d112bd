//! A rollout file whose hosts come from an Ansible inventory (`inventory:` in the file, or
//! `-i` on the command line): the hosts, groups and merged variables are exactly what
//! `rollout inventory` reads (ansible-core's rules and precedence, see [`super::ansible`]);
//! the rollout file keeps what Ansible keeps outside its inventory (a playbook's roles per
//! group as `roles:`, `ssh_config:`, `roles_path:`, `templates_path:`, `balancer:`, `state:`).
//!
//! Each host's variables then go through what rollout's own format goes through: vault values
//! (`!vault` and vault-encrypted files) are decrypted into secrets, rollout's secret
//! references are resolved, `-e` is applied, self-references are refused, and the
//! connection variables (`ansible_host`, `ansible_port`, `ansible_user`, `ansible_become`,
//! `ansible_connection`) set the host's connection (see `connection_vars`). Errors name the
//! file, line and column of the Ansible inventory where the variable was set.

use super::ansible::data::{ALL, At};
use super::ansible::value::{self, Wrapped};
use super::ansible::{self, vault};
use super::file::{Connection, HostFile, InventoryFile};
use super::refs::{self, Origin};
use super::settings::{KnownRoles, balancer, dir_setting, ssh_config};
use super::{Host, Inventory, connection_vars};
use crate::error::{Diagnostic, did_you_mean};
use crate::secret::{self, Secrets};
use crate::yaml::Source;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The Ansible inventory sources of a run: `-i` if given (relative to the working folder),
/// else the rollout file's `inventory:` (relative to the file); `None` when neither is there
/// (rollout's own `all:` then gives the hosts).
///
/// # Errors
/// `all:` together with an Ansible inventory, or an `inventory:` that is not a path or a
/// list of paths, or names a path that does not exist.
pub(super) fn sources(
    source: &Source,
    base: &Path,
    file: &InventoryFile,
    cli: &super::AnsibleSources,
) -> Result<Option<Vec<PathBuf>>, Diagnostic> {
    if let Some(all) = &file.all
        && (!cli.sources.is_empty() || file.inventory.is_some())
    {
        return Err(source
            .at(
                all.referenced.line(),
                all.referenced.column(),
                "`all:` and an Ansible inventory (`inventory:` or `-i`) both give hosts",
            )
            .with_hint(
                "keep one: move the hosts into the Ansible inventory, or drop `inventory:`/`-i`",
            ));
    }
    if !cli.sources.is_empty() {
        return Ok(Some(cli.sources.clone()));
    }
    let Some(inv) = &file.inventory else {
        return Ok(None);
    };
    let at = (inv.referenced.line(), inv.referenced.column());
    let bad = || {
        source.at(
            at.0,
            at.1,
            "`inventory:` must be a path (an INI or YAML file, or a folder) or a list of paths",
        )
    };
    let names: Vec<&str> = match &inv.value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        _ => return Err(bad()),
    };
    if names.is_empty() || names.iter().any(|n| n.is_empty()) {
        return Err(bad());
    }
    let mut out = Vec::new();
    for n in names {
        let p = base.join(n);
        if !p.exists() {
            if n.contains(',') {
                // ansible-core's `host1,host2,` list.
                out.push(PathBuf::from(n));
                continue;
            }
            return Err(source.at(
                at.0,
                at.1,
                format!("Ansible inventory {} does not exist", p.display()),
            ));
        }
        out.push(p);
    }
    Ok(Some(out))
}

/// Builds the run's inventory from the Ansible inventory `sources` and the rollout file
/// (`source`, parsed as `file`, in folder `base`); `vault` gives the vault passwords
/// (its `vault_password_file` and `vault_ids`, read here).
///
/// # Errors
/// The Ansible inventory cannot be read (located as `rollout inventory` reports it); a vault
/// value without a password or with a wrong one, at its place; a `roles:` key that is no
/// group or host, or a role that does not exist; a host's variables (see the module's
/// documentation); no hosts.
pub(super) fn load(
    path: &Path,
    source: Source,
    base: &Path,
    file: &InventoryFile,
    sources: &[PathBuf],
    vault: &super::AnsibleSources,
    extra_vars: &Map<String, Value>,
) -> Result<Inventory, Diagnostic> {
    let password = vault::VaultIds::load(
        &vault.vault_ids,
        vault.vault_password_file.as_deref(),
        vault::id_match_from_env(),
    );
    // The passwords are secrets from here on.
    Secrets::new(
        password
            .as_ref()
            .map(vault::VaultIds::passwords)
            .unwrap_or_default(),
    );
    let read = ansible::read(sources, password.as_ref())?;
    // Registered now, so that no message below can show them.
    Secrets::new(read.secrets.clone());
    for w in &read.warnings {
        let text = format!("warning: {}", secret::redact_known(w));
        eprintln!("{text}");
        crate::log_file::lines(&text);
    }
    let data = &read.data;
    let roles_dir = dir_setting(&source, base, file.roles_path.as_ref(), "roles")?;
    let templates_dir = dir_setting(&source, base, file.templates_path.as_ref(), "templates")?;
    let known = KnownRoles::read(&roles_dir);
    let role_map = role_map(&source, file, data, &known)?;

    let depths = data.depths();
    let memberships = data.groups_of_all_hosts();
    let mut vaults = Vaults {
        password: password.as_ref(),
        opened: HashMap::new(),
    };
    let mut secret_values = read.secrets.clone();
    let mut hosts = Vec::new();
    let mut var_origins = HashMap::new();
    for h in data.hosts_under(ALL) {
        let name = data.hosts[h].name.clone();
        let groups: Vec<String> = std::iter::once(ALL)
            .chain(ansible::precedence_order(
                data,
                &depths,
                memberships[h].clone(),
            ))
            .map(|g| data.groups[g].name.clone())
            .collect();
        let mut vars = read.host_vars[h].clone();
        let mut origins: HashMap<String, Origin> = read.host_origins[h]
            .iter()
            .map(|(k, at)| (k.clone(), Origin::Ansible(at.clone())))
            .collect();
        let at_var = |k: &str, message: String| match origins.get(k) {
            Some(Origin::Ansible(at)) => Origin::ansible_diagnostic(at, message),
            _ => Diagnostic::file(&sources[0], message),
        };
        for (k, v) in vars.iter_mut() {
            vaults
                .open(v, &mut secret_values)
                .map_err(|(at, message)| match at {
                    Some(at) => Origin::ansible_diagnostic(&at, format!("variable `{k}`: {message}")),
                    None => at_var(k, format!("variable `{k}`: {message}")),
                })
                .map_err(|d| {
                    d.with_hint("pass --vault-id [LABEL@]SOURCE, --vault-password-file FILE or --ask-vault-pass, or set ANSIBLE_VAULT_PASSWORD_FILE (the password the value was encrypted with)")
                })?;
            secret::resolve_in(v, base, &mut secret_values)
                .map_err(|e| at_var(k, format!("variable `{k}`: {e}")))?;
        }
        for (k, v) in extra_vars {
            vars.insert(k.clone(), v.clone());
            origins.insert(k.clone(), Origin::Extra);
        }
        // References that are templates (`file:secrets/{{ inventory_hostname }}`), left by
        // `resolve_in`, resolved with the host's variables.
        if vars.values().any(secret::contains_reference) {
            let mut ctx = vars.clone();
            ctx.insert("inventory_hostname".into(), name.clone().into());
            let mut group_names: Vec<&String> = groups
                .iter()
                .filter(|g| g.as_str() != "all" && g.as_str() != "ungrouped")
                .collect();
            group_names.sort();
            ctx.insert("group_names".into(), serde_json::json!(group_names));
            let ctx = Value::Object(ctx);
            for (k, v) in vars.iter_mut() {
                if secret::contains_reference(v) {
                    secret::resolve_for_host(v, base, &mut secret_values, &ctx).map_err(|e| {
                        let message = format!("variable `{k}`: {e}");
                        match origins.get(k) {
                            Some(Origin::Ansible(at)) => Origin::ansible_diagnostic(at, message),
                            _ => Diagnostic::file(&sources[0], message),
                        }
                    })?;
                }
            }
        }
        refs::check(&source, &vars, &origins)?;
        origins.retain(|k, _| vars.contains_key(k));
        let conn = connection_vars::read(&source, &name, &HostFile::default(), &vars, &origins)?;
        if conn.address.is_none()
            && conn.connection.unwrap_or_default() == Connection::Ssh
            && let Some(why) = super::address::problem(&name)
        {
            let message = format!(
                "host `{}` has no `ansible_host` and its name {why}",
                name.escape_debug()
            );
            let d = match &data.hosts[h].at {
                Some(at) => Origin::ansible_diagnostic(at, message),
                None => Diagnostic::file(&sources[0], message),
            };
            return Err(d.with_hint("set `ansible_host` to the host's name or IP address"));
        }
        let mut roles: Vec<String> = Vec::new();
        for key in groups.iter().chain([&name]) {
            for r in role_map.get(key).into_iter().flatten() {
                if !roles.contains(r) {
                    roles.push(r.clone());
                }
            }
        }
        hosts.push(Host {
            address: conn.address.unwrap_or_else(|| name.clone()),
            port: conn.port,
            user: conn.user,
            connection: conn.connection.unwrap_or_default(),
            become_root: conn.become_root.unwrap_or(false),
            groups,
            roles,
            vars,
            name: name.clone(),
        });
        var_origins.insert(name, origins);
    }
    if hosts.is_empty() {
        return Err(Diagnostic::file(
            &sources[0],
            "the Ansible inventory defines no hosts",
        ));
    }
    // Each group's hosts in ansible-core's order (`Group.get_hosts`: its own, then its
    // children's, level by level), the order `groups['web']` and `--limit web[0]` see.
    let members: IndexMap<String, Vec<String>> = (0..data.groups.len())
        .map(|g| {
            let hosts = data.hosts_under(g);
            let names = hosts.iter().map(|h| data.hosts[*h].name.clone()).collect();
            (data.groups[g].name.clone(), names)
        })
        .collect();
    let ssh_config = ssh_config(&source, base, file.ssh_config.as_ref())?;
    let state = balancer(&source, base, file.state.as_ref(), &mut secret_values)?;
    let balancer = balancer(&source, base, file.balancer.as_ref(), &mut secret_values)?;
    Ok(Inventory {
        path: path.to_path_buf(),
        ssh_config,
        roles_dir,
        templates_dir,
        hosts,
        host_order: data.hosts.iter().map(|h| h.name.clone()).collect(),
        groups: members,
        secrets: Secrets::new(secret_values),
        balancer,
        state,
        source,
        var_origins,
    })
}

/// The rollout file's `roles:` (group or host name to roles), every name and role checked.
fn role_map(
    source: &Source,
    file: &InventoryFile,
    data: &ansible::data::Data,
    known: &KnownRoles,
) -> Result<HashMap<String, Vec<String>>, Diagnostic> {
    let mut out = HashMap::new();
    let Some(map) = &file.roles else {
        return Ok(out);
    };
    for (name, roles) in &map.value {
        if data.group(&name.value).is_none() && data.host(&name.value).is_none() {
            let names = data
                .groups
                .iter()
                .map(|g| g.name.as_str())
                .chain(data.hosts.iter().map(|h| h.name.as_str()));
            let mut d = source.at(
                name.referenced.line(),
                name.referenced.column(),
                format!(
                    "roles: `{}` is neither a group nor a host of the Ansible inventory",
                    name.value
                ),
            );
            d.hint = did_you_mean(&name.value, names).map(|s| format!("did you mean `{s}`?"));
            return Err(d);
        }
        let mut list = Vec::new();
        for r in roles {
            known.check(source, r)?;
            list.push(r.value.clone());
        }
        out.insert(name.value.clone(), list);
    }
    Ok(out)
}

/// Opens the vault values of the hosts' variables, each distinct one decrypted once.
struct Vaults<'a> {
    password: Option<&'a vault::VaultIds>,
    /// Plaintext by vault text.
    opened: HashMap<String, String>,
}

impl Vaults<'_> {
    /// Replaces every wrapped secret inside `v` by its plaintext (a `!vault` value is
    /// decrypted into a string) and adds the plaintext strings to `found`.
    ///
    /// # Errors
    /// Where the value was written (if known) and why it cannot be decrypted.
    fn open(&mut self, v: &mut Value, found: &mut Vec<String>) -> Result<(), (Option<At>, String)> {
        match value::vault_of(v) {
            Some(Wrapped::Plain(p)) => {
                let p = p.clone();
                if let Value::String(s) = &p {
                    found.push(s.clone());
                }
                *v = p;
                return Ok(());
            }
            Some(Wrapped::Vault(text, at)) => {
                let plain = self.decrypt(text).map_err(|e| (at, e))?;
                Secrets::new(vec![plain.clone()]);
                found.push(plain.clone());
                *v = Value::String(plain);
                return Ok(());
            }
            None => {}
        }
        match v {
            Value::Object(m) => m.values_mut().try_for_each(|x| self.open(x, found)),
            Value::Array(a) => a.iter_mut().try_for_each(|x| self.open(x, found)),
            _ => Ok(()),
        }
    }

    fn decrypt(&mut self, text: &str) -> Result<String, String> {
        if let Some(p) = self.opened.get(text) {
            return Ok(p.clone());
        }
        let Some(ids) = self.password else {
            return Err("this `!vault` value is encrypted and no vault password was given".into());
        };
        let plain = ids
            .decrypt(text)
            .map_err(|e| format!("cannot decrypt this `!vault` value: {e}"))?;
        let plain = String::from_utf8(plain)
            .map_err(|_| "the decrypted `!vault` value is not UTF-8 text".to_string())?;
        self.opened.insert(text.to_string(), plain.clone());
        Ok(plain)
    }
}
