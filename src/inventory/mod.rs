//! The inventory: hosts, groups, variables and secrets, loaded and validated before anything
//! runs. See `load` for the precedence rules and `select` for `--limit`.

mod address;
mod file;
mod load;
mod refs;
mod select;

pub use address::ssh_destination;
pub use file::Connection;
pub use load::load;
pub use select::select;

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
    /// Hosts in the order they first appear in the file.
    pub hosts: Vec<Host>,
    /// Group name to its member hosts (including hosts of child groups), in host order.
    pub groups: IndexMap<String, Vec<String>>,
    pub secrets: Secrets,
    /// The raw `balancer:` section, validated by the balancer module.
    pub balancer: Option<(Value, u64, u64)>,
    pub source: crate::yaml::Source,
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

impl Inventory {
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
}
