//! The neutral model an Ansible inventory is read into, with ansible-core's rules for
//! building it (lib/ansible/inventory/data.py, group.py, host.py): hosts and groups kept in
//! the order first seen, `all` and `ungrouped` always there, a group's children and hosts in
//! the order added, no cycles, and `reconcile` putting parentless groups under `all` and
//! hosts of no group into `ungrouped` (and out of it once they are in another group).

use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

/// Where something was written: a file and a 1-based line and column (0 when only the file
/// is known, as inside a vault-encrypted file, whose positions would point into ciphertext).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
}

/// Index of `all` in [`Data::groups`].
pub const ALL: usize = 0;
/// Index of `ungrouped` in [`Data::groups`].
pub const UNGROUPED: usize = 1;

/// One group.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    /// Member hosts (indexes into [`Data::hosts`]), in the order added.
    pub hosts: Vec<usize>,
    /// Child groups, in the order added.
    pub children: Vec<usize>,
    pub parents: Vec<usize>,
    /// The group's own variables from the inventory file (not from `group_vars/`).
    pub vars: Map<String, Value>,
    /// `ansible_group_priority` (default 1): among groups of one depth, a higher priority
    /// is merged later and wins.
    pub priority: i64,
    /// Where each of [`Group::vars`] was set (the last setting).
    pub origins: HashMap<String, At>,
}

/// One host.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// The host's own variables from the inventory file (not from `host_vars/`).
    pub vars: Map<String, Value>,
    /// Where each of [`Host::vars`] was set (the last setting).
    pub origins: HashMap<String, At>,
    /// Where the host was first named.
    pub at: Option<At>,
}

/// Hosts and groups of every source read so far.
#[derive(Debug, Clone)]
pub struct Data {
    pub groups: Vec<Group>,
    pub hosts: Vec<Host>,
    group_index: HashMap<String, usize>,
    host_index: HashMap<String, usize>,
    /// (group, host) pairs of [`Group::hosts`], for constant-time membership checks.
    members: HashSet<(usize, usize)>,
    /// The inventory file being read (for [`At`]); set by the reader before each file.
    pub file: PathBuf,
}

impl Default for Data {
    fn default() -> Self {
        Self::new()
    }
}

impl Data {
    /// An inventory with only `all` and its child `ungrouped`.
    pub fn new() -> Data {
        let mut d = Data {
            groups: Vec::new(),
            hosts: Vec::new(),
            group_index: HashMap::new(),
            host_index: HashMap::new(),
            members: HashSet::new(),
            file: PathBuf::new(),
        };
        d.add_group("all");
        d.add_group("ungrouped");
        d.link(ALL, UNGROUPED);
        d
    }

    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<usize> {
        self.group_index.get(name).copied()
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<usize> {
        self.host_index.get(name).copied()
    }

    /// Adds a group unless it exists; its index either way.
    pub fn add_group(&mut self, name: &str) -> usize {
        if let Some(i) = self.group(name) {
            return i;
        }
        self.groups.push(Group {
            name: name.to_string(),
            hosts: Vec::new(),
            children: Vec::new(),
            parents: Vec::new(),
            vars: Map::new(),
            priority: 1,
            origins: HashMap::new(),
        });
        self.group_index
            .insert(name.to_string(), self.groups.len() - 1);
        self.groups.len() - 1
    }

    /// Adds a host unless it exists (a port given then becomes its `ansible_port`; a port on
    /// a later mention is ignored, as ansible-core does) and puts it in `group`.
    pub fn add_host(&mut self, name: &str, group: usize, port: Option<u16>) -> usize {
        let h = match self.host(name) {
            Some(h) => h,
            None => {
                let mut vars = Map::new();
                if let Some(p) = port {
                    vars.insert("ansible_port".into(), Value::from(p));
                }
                self.hosts.push(Host {
                    name: name.to_string(),
                    vars,
                    origins: HashMap::new(),
                    at: None,
                });
                self.host_index
                    .insert(name.to_string(), self.hosts.len() - 1);
                self.hosts.len() - 1
            }
        };
        self.put(group, h);
        h
    }

    /// Adds host `h` to `group` unless it is a member already.
    fn put(&mut self, group: usize, h: usize) {
        if self.members.insert((group, h)) {
            self.groups[group].hosts.push(h);
        }
    }

    /// Sets a group variable, written at `line`, `column` of the current file;
    /// `ansible_group_priority` sets the priority instead.
    ///
    /// # Errors
    /// A priority that is not a whole number.
    pub fn set_group_var(
        &mut self,
        group: usize,
        key: &str,
        value: Value,
        (line, column): (u64, u64),
    ) -> Result<(), String> {
        if key == "ansible_group_priority" {
            self.groups[group].priority = python_int(&value).ok_or_else(|| {
                format!("ansible_group_priority must be a whole number, not {value}")
            })?;
        } else {
            let at = self.at(line, column);
            let g = &mut self.groups[group];
            g.vars.insert(key.to_string(), value);
            g.origins.insert(key.to_string(), at);
        }
        Ok(())
    }

    /// Sets a host variable, written at `line`, `column` of the current file.
    pub fn set_host_var(
        &mut self,
        host: usize,
        key: &str,
        value: Value,
        (line, column): (u64, u64),
    ) {
        let at = self.at(line, column);
        let h = &mut self.hosts[host];
        h.vars.insert(key.to_string(), value);
        h.origins.insert(key.to_string(), at);
    }

    /// Notes that host `host` was named at `line`, `column` of the current file, unless it
    /// was named before; an `ansible_port` its first naming gave (`host:2222`) was set there.
    pub fn named_at(&mut self, host: usize, (line, column): (u64, u64)) {
        if self.hosts[host].at.is_none() {
            let at = self.at(line, column);
            let h = &mut self.hosts[host];
            if h.vars.contains_key("ansible_port") && !h.origins.contains_key("ansible_port") {
                h.origins.insert("ansible_port".into(), at.clone());
            }
            h.at = Some(at);
        }
    }

    /// `line`, `column` of the file being read.
    pub fn at(&self, line: u64, column: u64) -> At {
        At {
            file: self.file.clone(),
            line,
            column,
        }
    }

    /// Every ancestor of `group`.
    pub fn ancestors(&self, group: usize) -> BTreeSet<usize> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<usize> = self.groups[group].parents.clone();
        while let Some(g) = todo.pop() {
            if seen.insert(g) {
                todo.extend(self.groups[g].parents.iter().copied());
            }
        }
        seen
    }

    /// Makes `child` (a group, else a host) a member of `parent`.
    ///
    /// # Errors
    /// An unknown name, a group added to itself or an edge that closes a loop.
    pub fn add_child(&mut self, parent: usize, child: &str) -> Result<(), String> {
        if let Some(c) = self.group(child) {
            if c == parent {
                return Err(format!("can't add group `{child}` to itself"));
            }
            if self.groups[parent].children.contains(&c) {
                return Ok(());
            }
            if self.ancestors(parent).contains(&c) {
                return Err(format!(
                    "adding group `{child}` as child to `{}` creates a recursive dependency loop",
                    self.groups[parent].name
                ));
            }
            self.link(parent, c);
            Ok(())
        } else if let Some(h) = self.host(child) {
            self.put(parent, h);
            Ok(())
        } else {
            Err(format!("`{child}` is not a known host nor group"))
        }
    }

    fn link(&mut self, parent: usize, child: usize) {
        self.groups[parent].children.push(child);
        if !self.groups[child].parents.contains(&parent) {
            self.groups[child].parents.push(parent);
        }
    }

    /// The groups `host` is in, directly or through child groups.
    pub fn host_groups(&self, host: usize) -> BTreeSet<usize> {
        self.groups_of_all_hosts().swap_remove(host)
    }

    /// For every host (index as [`Data::hosts`]), the groups it is in, directly or through
    /// child groups: one pass over the groups, each group's ancestors computed once.
    pub fn groups_of_all_hosts(&self) -> Vec<BTreeSet<usize>> {
        let mut out = vec![BTreeSet::new(); self.hosts.len()];
        for (i, g) in self.groups.iter().enumerate() {
            if g.hosts.is_empty() {
                continue;
            }
            let mut with_ancestors = self.ancestors(i);
            with_ancestors.insert(i);
            for h in &g.hosts {
                out[*h].extend(with_ancestors.iter().copied());
            }
        }
        out
    }

    /// ansible-core's `reconcile_inventory`: parentless groups become children of `all`
    /// (in the order groups were created), a host of no group but `all` joins `ungrouped`,
    /// and a host in `ungrouped` and in another group leaves `ungrouped`.
    pub fn reconcile(&mut self) {
        for g in 0..self.groups.len() {
            if g != ALL && self.groups[g].parents.is_empty() {
                self.link(ALL, g);
            }
        }
        let all_groups = self.groups_of_all_hosts();
        let mut leave = HashSet::new();
        for (h, groups) in all_groups.iter().enumerate() {
            if groups.contains(&UNGROUPED) {
                if groups.iter().any(|g| *g != ALL && *g != UNGROUPED) {
                    leave.insert(h);
                    self.members.remove(&(UNGROUPED, h));
                }
            } else if groups.iter().all(|g| *g == ALL) {
                self.put(UNGROUPED, h);
            }
        }
        self.groups[UNGROUPED].hosts.retain(|h| !leave.contains(h));
    }

    /// Each group's depth: 0 for `all`, else one more than its deepest parent (the depth
    /// ansible-core keeps up to date as edges are added).
    pub fn depths(&self) -> Vec<usize> {
        fn depth(d: &Data, g: usize, memo: &mut Vec<Option<usize>>) -> usize {
            if let Some(v) = memo[g] {
                return v;
            }
            let v = d.groups[g]
                .parents
                .iter()
                .map(|p| depth(d, *p, memo) + 1)
                .max()
                .unwrap_or(0);
            memo[g] = Some(v);
            v
        }
        let mut memo = vec![None; self.groups.len()];
        (0..self.groups.len())
            .map(|g| depth(self, g, &mut memo))
            .collect()
    }

    /// Hosts of `group` and its descendants, each once, in ansible-core's order (the group's
    /// own first, then its children's, level by level).
    pub fn hosts_under(&self, group: usize) -> Vec<usize> {
        let mut order = vec![group];
        let mut seen: BTreeSet<usize> = BTreeSet::from([group]);
        let mut i = 0;
        while i < order.len() {
            for c in &self.groups[order[i]].children {
                if seen.insert(*c) {
                    order.push(*c);
                }
            }
            i += 1;
        }
        let mut out = Vec::new();
        let mut seen_hosts = BTreeSet::new();
        for g in order {
            for h in &self.groups[g].hosts {
                if seen_hosts.insert(*h) {
                    out.push(*h);
                }
            }
        }
        out
    }
}

/// Python's `int(value)` for what an inventory gives: whole numbers, floats (truncated),
/// booleans and numeric strings.
fn python_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64)),
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => s.trim().replace('_', "").parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_are_refused_and_reconcile_places_hosts() {
        let mut d = Data::new();
        let a = d.add_group("a");
        let b = d.add_group("b");
        d.add_child(a, "b").unwrap();
        assert!(
            d.add_child(b, "a")
                .unwrap_err()
                .contains("recursive dependency loop")
        );
        assert!(d.add_child(a, "a").is_err());
        d.add_host("lonely", ALL, None);
        let h = d.add_host("h", UNGROUPED, Some(2222));
        d.named_at(h, (3, 1));
        d.add_host("h", b, None);
        d.named_at(h, (9, 1));
        assert_eq!(d.hosts[h].at, Some(d.at(3, 1)), "where first named");
        assert_eq!(d.hosts[h].origins["ansible_port"], d.at(3, 1));
        d.reconcile();
        assert_eq!(d.groups[ALL].children, [UNGROUPED, a]);
        assert_eq!(d.groups[UNGROUPED].hosts, [0]);
        assert_eq!(d.hosts[1].vars["ansible_port"], 2222);
        assert_eq!(d.depths(), [0, 1, 1, 2]);
    }
}
