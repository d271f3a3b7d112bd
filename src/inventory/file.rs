//! The inventory file's YAML shape, as operators write it (Ansible-style `all:` with
//! `hosts:`, `children:` and `vars:`). Every struct denies unknown fields so a typo such as
//! `childern:` is an error with a did-you-mean, never silently ignored.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

pub type Vars = IndexMap<String, Spanned<serde_json::Value>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryFile {
    /// An ssh_config file (relative to the inventory) used for every host.
    pub ssh_config: Option<Spanned<String>>,
    /// Where roles live; default: the nearest `roles/` folder at or above the inventory.
    pub roles_path: Option<Spanned<String>>,
    /// Where templates live; default: the nearest `templates/` folder at or above the inventory.
    pub templates_path: Option<Spanned<String>>,
    pub all: Spanned<GroupFile>,
    /// The load balancer the pool's BBB nodes register with.
    pub balancer: Option<Spanned<serde_json::Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupFile {
    #[serde(default)]
    pub hosts: IndexMap<Spanned<String>, Option<HostFile>>,
    #[serde(default)]
    pub children: IndexMap<Spanned<String>, Option<GroupFile>>,
    #[serde(default)]
    pub vars: Vars,
    #[serde(default)]
    pub roles: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFile {
    /// DNS name, IP address or ssh_config alias; default: the host's name.
    pub address: Option<Spanned<String>>,
    pub port: Option<Spanned<u16>>,
    pub user: Option<String>,
    /// `ssh` (default) or `local` (run on the controller itself).
    pub connection: Option<Connection>,
    /// Run steps through `sudo -n` (for a non-root user).
    #[serde(rename = "become")]
    pub become_root: Option<bool>,
    #[serde(default)]
    pub vars: Vars,
    #[serde(default)]
    pub roles: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Connection {
    #[default]
    Ssh,
    Local,
}
