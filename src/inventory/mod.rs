//! The inventory: hosts, groups, variables and secrets, loaded and validated before anything
//! runs. See `load` for the precedence rules and `select` for `--limit`.

mod address;
pub mod ansible;
mod ansible_hosts;
mod connection_vars;
mod file;
mod groups;
mod load;
mod refs;
mod select;
mod settings;

pub use address::ssh_destination;
pub use file::Connection;
pub use load::{
    AnsibleSources, ansible_sources, load, load_ansible, load_with, looks_like_ansible_ini,
};
pub use refs::Origin;
pub use select::{View, choose, names_host, select, split_host_pattern};

use crate::error::Diagnostic;
use crate::secret::Secrets;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::path::PathBuf;

/// A validated inventory, ready to plan against.
#[derive(Debug)]
pub struct Inventory {
    pub path: PathBuf,
    pub ssh_config: Option<PathBuf>,
    pub roles_dir: PathBuf,
    pub templates_dir: PathBuf,
    /// Hosts in the order they first appear in the file (for an Ansible inventory,
    /// ansible-core's `all` order: `all`'s own hosts, then its children's, level by level).
    pub hosts: Vec<Host>,
    /// Host names in the order the inventory first names them (ansible-core's
    /// `InventoryData.hosts`): the order a `--limit` glob or regex lists the hosts it
    /// matches in, before a subscript picks from them.
    pub host_order: Vec<String>,
    /// Group name to its member hosts (including hosts of child groups): for an Ansible
    /// inventory in ansible-core's order (the group's own hosts, then its children's, level
    /// by level), for rollout's own file in host order.
    pub groups: IndexMap<String, Vec<String>>,
    pub secrets: Secrets,
    /// The raw `balancer:` section, validated by the balancer module.
    pub balancer: Option<(Value, u64, u64)>,
    /// The raw `state:` section, validated by [`crate::pool::state`].
    pub state: Option<(Value, u64, u64)>,
    pub source: crate::yaml::Source,
    /// Per host name, where each of its variables was set (the winning place after
    /// precedence), so an error in a variable's value points at it (see [`Inventory::var_at`]).
    pub var_origins: std::collections::HashMap<String, std::collections::HashMap<String, Origin>>,
}

/// One machine of the pool.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub connection: Connection,
    pub become_root: bool,
    /// Groups the host belongs to, from `all` to the deepest (the precedence order).
    pub groups: Vec<String>,
    /// Roles to apply, in order, without duplicates.
    pub roles: Vec<String>,
    /// Inventory variables after precedence (role defaults are merged later, under these).
    pub vars: Map<String, Value>,
}

#[cfg(test)]
impl Host {
    /// A bare SSH host named `name` (address the same, no user, no become, no groups, roles
    /// or variables), for unit tests.
    pub fn named(name: &str) -> Host {
        Host {
            name: name.into(),
            address: name.into(),
            port: None,
            user: None,
            connection: Connection::Ssh,
            become_root: false,
            groups: vec![],
            roles: vec![],
            vars: Default::default(),
        }
    }
}

impl Inventory {
    /// A diagnostic at the place variable `name` was set for this host: its line and column
    /// in the inventory, or `-e NAME` at `within` (line, column of the fault inside the
    /// value, 1-based). `None` if the inventory did not set it.
    pub fn var_at(
        &self,
        host: &Host,
        name: &str,
        within: (u64, u64),
        message: String,
    ) -> Option<Diagnostic> {
        match self.var_origins.get(&host.name)?.get(name)? {
            Origin::At(line, column) => {
                let text = host.vars.get(name).and_then(Value::as_str).unwrap_or("");
                Some(
                    self.source
                        .at_in_scalar((*line, *column), text, within, message),
                )
            }
            Origin::Extra => {
                let text = host.vars.get(name).and_then(Value::as_str).unwrap_or("");
                let path = std::path::PathBuf::from(format!("-e {name}"));
                Some(Diagnostic::at(&path, text, within.0, within.1, message))
            }
            // The variable's key in the Ansible inventory's file (the fault's place inside
            // the value is not kept there).
            Origin::Ansible(at) => Some(Origin::ansible_diagnostic(at, message)),
        }
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// A path the inventory names (`ca_file:`, `bbb_api_ca_file`), relative to the inventory's
/// folder unless absolute.
pub fn relative_to(inv: &Inventory, name: &str) -> PathBuf {
    let dir = if inv.path.is_dir() {
        inv.path.as_path()
    } else {
        inv.path.parent().unwrap_or(std::path::Path::new("."))
    };
    dir.join(name)
}
