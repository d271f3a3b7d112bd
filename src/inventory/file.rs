//! The inventory file's YAML shape, as operators write it (Ansible-style `all:` with
//! `hosts:`, `children:` and `vars:`). Every struct denies unknown fields so a typo such as
//! `childern:` is an error with a did-you-mean, never silently ignored.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;

pub type Vars = IndexMap<String, Spanned<crate::yaml::Node>>;

/// The rollout file's top-level `roles:`: group or host name to its roles, in order.
pub type RoleMap = IndexMap<Spanned<String>, Vec<Spanned<String>>>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryFile {
    /// An ssh_config file (relative to the inventory) used for every host.
    pub ssh_config: Option<Spanned<String>>,
    /// Where roles live; default: the nearest `roles/` folder at or above the inventory.
    pub roles_path: Option<Spanned<String>>,
    /// Where templates live; default: the nearest `templates/` folder at or above the inventory.
    pub templates_path: Option<Spanned<String>>,
    /// An Ansible inventory that gives the hosts, groups and variables instead of `all:`:
    /// a path (INI or YAML file, or a folder) or a list of them, relative to this file, read
    /// as `rollout inventory -i` reads them (see docs/from-ansible.md). `-i` on the command
    /// line replaces it.
    pub inventory: Option<Spanned<serde_json::Value>>,
    /// With an Ansible inventory: the roles of each of its groups or hosts, in order, as a
    /// playbook's plays name them (`bbb: [base, bbb]`).
    pub roles: Option<Spanned<RoleMap>>,
    /// rollout's own hosts, groups and variables (not with `inventory:`).
    pub all: Option<Spanned<GroupFile>>,
    /// The load balancer the pool's BBB nodes register with.
    pub balancer: Option<Spanned<serde_json::Value>>,
    /// Where the pool's lock and journal live (`backend: local` or `postgresql`).
    pub state: Option<Spanned<serde_json::Value>>,
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
    pub port: Option<Spanned<Port>>,
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

/// A host's ssh port, 1-65535 (a whole number, or its digits quoted). Anything else is
/// refused in the operator's words ("`eighty` is not a port number (1-65535)") rather than
/// the parser's ("invalid u16").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Port, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a port number (1-65535)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Port, E> {
                u16::try_from(v)
                    .ok()
                    .filter(|p| *p > 0)
                    .map(Port)
                    .ok_or_else(|| E::custom(format!("`{v}` is not a port number (1-65535)")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Port, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("`{v}` is not a port number (1-65535)"))),
                }
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Port, E> {
                Err(E::custom(format!("`{v}` is not a port number (1-65535)")))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Port, E> {
                Err(E::custom(format!("`{v}` is not a port number (1-65535)")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Port, E> {
                match v.trim().parse::<u64>() {
                    Ok(n) if !v.trim().starts_with('+') => self.visit_u64(n),
                    _ => Err(E::custom(format!(
                        "`{}` is not a port number (1-65535)",
                        v.escape_debug()
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}
