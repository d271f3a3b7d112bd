//! The inventory's group tree: walking `all:` and its `children:` into a flat table of groups
//! and hosts, then refusing what Ansible would silently accept or loop on (a group referenced
//! but never defined, a cycle, a host defined twice). Kept apart from `load` so the tree's
//! rules can be read without the variable and role handling around them.

use super::file::{GroupFile, HostFile, Vars};
use crate::error::{Diagnostic, did_you_mean};
use crate::yaml::Source;
use indexmap::IndexMap;
use serde_saphyr::Spanned;
use std::collections::BTreeSet;

/// A (line, column) position in the inventory file, both 1-based.
pub(super) type Pos = (u64, u64);

/// One group as gathered from every place it appears in the tree.
#[derive(Default)]
pub(super) struct GroupInfo<'a> {
    /// Whether some occurrence gives the group a body (not only a reference).
    defined: bool,
    /// The deepest nesting level the group appears at (`all` is 0).
    pub(super) depth: usize,
    /// Where the group is first named, for errors about it.
    first_seen: Pos,
    /// Every `vars:` block of the group, in file order.
    pub(super) vars: Vec<&'a Vars>,
    /// Every `roles:` entry of the group, in file order.
    pub(super) roles: Vec<&'a Spanned<String>>,
    children: Vec<String>,
    hosts: Vec<String>,
}

/// The inventory's groups and hosts, flattened from the tree and validated.
pub(super) struct Tree<'a> {
    /// Groups in the order they first appear.
    pub(super) groups: IndexMap<String, GroupInfo<'a>>,
    /// Hosts in the order they first appear, with their definition (if any) and position.
    pub(super) hosts: IndexMap<String, (Option<&'a HostFile>, Pos)>,
}

impl<'a> Tree<'a> {
    /// Walks `all:` and checks that every group is defined and no group contains itself.
    ///
    /// Errors: `all` as a child, a host defined twice, an undefined group, a group cycle.
    pub(super) fn collect(
        source: &Source,
        all: &'a Spanned<GroupFile>,
    ) -> Result<Self, Diagnostic> {
        let mut tree = Tree {
            groups: IndexMap::new(),
            hosts: IndexMap::new(),
        };
        let at = (all.referenced.line(), all.referenced.column());
        tree.walk(source, "all", Some(&all.value), 0, at)?;
        tree.check_defined(source)?;
        tree.check_cycles(source)?;
        Ok(tree)
    }

    fn walk(
        &mut self,
        source: &Source,
        name: &str,
        group: Option<&'a GroupFile>,
        depth: usize,
        at: Pos,
    ) -> Result<(), Diagnostic> {
        let info = self.info(name, at);
        info.depth = info.depth.max(depth);
        let Some(group) = group else { return Ok(()) };
        info.defined = true;
        info.vars.push(&group.vars);
        info.roles.extend(group.roles.iter());
        for (h, hf) in &group.hosts {
            self.add_host(source, name, h, hf.as_ref())?;
        }
        for (c, cg) in &group.children {
            if c.value == "all" {
                return Err(source.at(
                    c.referenced.line(),
                    c.referenced.column(),
                    "`all` cannot be a child group",
                ));
            }
            let info = self.info(name, at);
            if !info.children.contains(&c.value) {
                info.children.push(c.value.clone());
            }
            let pos = (c.referenced.line(), c.referenced.column());
            self.walk(source, &c.value, cg.as_ref(), depth + 1, pos)?;
        }
        Ok(())
    }

    /// The group's entry, created (first seen at `at`) if this is its first mention.
    fn info(&mut self, name: &str, at: Pos) -> &mut GroupInfo<'a> {
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| GroupInfo {
                first_seen: at,
                ..Default::default()
            })
    }

    /// Lists host `h` in group `group`; a host may be listed many times but defined once.
    fn add_host(
        &mut self,
        source: &Source,
        group: &str,
        h: &Spanned<String>,
        hf: Option<&'a HostFile>,
    ) -> Result<(), Diagnostic> {
        let pos = (h.referenced.line(), h.referenced.column());
        let info = self.info(group, pos);
        if !info.hosts.contains(&h.value) {
            info.hosts.push(h.value.clone());
        }
        match self.hosts.get_mut(&h.value) {
            None => {
                self.hosts.insert(h.value.clone(), (hf, pos));
            }
            Some(existing) => match (existing.0, hf) {
                (Some(_), Some(_)) => {
                    return Err(source
                        .at(pos.0, pos.1, format!("host `{}` is defined twice (first at line {})", h.value, existing.1.0))
                        .with_hint("define a host's address and vars once; list it elsewhere with an empty value"));
                }
                (None, Some(_)) => *existing = (hf, pos),
                _ => {}
            },
        }
        Ok(())
    }

    fn check_defined(&self, source: &Source) -> Result<(), Diagnostic> {
        for (name, g) in &self.groups {
            if !g.defined {
                let defined = self
                    .groups
                    .iter()
                    .filter(|(_, g)| g.defined)
                    .map(|(n, _)| n.as_str());
                let mut d = source.at(
                    g.first_seen.0,
                    g.first_seen.1,
                    format!("group `{name}` is referenced but never defined"),
                );
                d.hint = Some(match did_you_mean(name, defined) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        format!("define it with `{name}:` and `hosts:` somewhere under `children:`")
                    }
                });
                return Err(d);
            }
        }
        Ok(())
    }

    fn check_cycles(&self, source: &Source) -> Result<(), Diagnostic> {
        fn visit(
            name: &str,
            groups: &IndexMap<String, GroupInfo>,
            stack: &mut Vec<String>,
        ) -> Option<Vec<String>> {
            if stack.iter().any(|s| s == name) {
                let mut cycle = stack.clone();
                cycle.push(name.to_string());
                return Some(cycle);
            }
            stack.push(name.to_string());
            for c in &groups[name].children {
                if let Some(cycle) = visit(c, groups, stack) {
                    return Some(cycle);
                }
            }
            stack.pop();
            None
        }
        if let Some(cycle) = visit("all", &self.groups, &mut Vec::new()) {
            let last = &self.groups[cycle.last().expect("cycle is not empty").as_str()];
            return Err(source.at(
                last.first_seen.0,
                last.first_seen.1,
                format!("group cycle: {}", cycle.join(" -> ")),
            ));
        }
        Ok(())
    }

    /// Each group's members, including those of descendant groups, in host order.
    pub(super) fn members(&self) -> IndexMap<String, Vec<String>> {
        let mut members = IndexMap::new();
        for name in self.groups.keys() {
            let mut set = BTreeSet::new();
            self.collect_members(name, &mut set);
            let ordered = self
                .hosts
                .keys()
                .filter(|h| set.contains(*h))
                .cloned()
                .collect();
            members.insert(name.clone(), ordered);
        }
        members
    }

    fn collect_members(&self, name: &str, out: &mut BTreeSet<String>) {
        let g = &self.groups[name];
        out.extend(g.hosts.iter().cloned());
        for c in &g.children {
            self.collect_members(c, out);
        }
    }

    /// The groups host `name` belongs to, in variable precedence order: shallower groups
    /// before deeper ones, siblings by name (`all`, at depth 0, stays first).
    pub(super) fn host_groups(
        &self,
        members: &IndexMap<String, Vec<String>>,
        name: &str,
    ) -> Vec<(&String, &GroupInfo<'a>)> {
        let mut host_groups: Vec<(&String, &GroupInfo<'a>)> = self
            .groups
            .iter()
            .filter(|(g, _)| members[*g].iter().any(|h| h == name))
            .collect();
        host_groups.sort_by(|a, b| {
            a.1.depth.cmp(&b.1.depth).then_with(|| {
                if a.1.depth == 0 {
                    std::cmp::Ordering::Equal
                } else {
                    a.0.cmp(b.0)
                }
            })
        });
        host_groups
    }
}
