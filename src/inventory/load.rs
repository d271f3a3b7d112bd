//! Loading and validating an inventory.
//!
//! Variable precedence, lowest to highest (documented in the README):
//! 1. role defaults (`roles/NAME/defaults.yml`, merged later by the planner),
//! 2. `all: vars:`,
//! 3. group vars, shallower groups before deeper ones, siblings by name,
//! 4. host vars,
//! 5. `--extra-vars` on the command line.

use super::file::{GroupFile, HostFile, InventoryFile, Vars};
use super::refs::{self, Origin};
use super::{Host, Inventory, address};
use crate::error::{Diagnostic, did_you_mean};
use crate::secret::{self, Secrets};
use crate::yaml::Source;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

#[derive(Default)]
struct GroupInfo<'a> {
    defined: bool,
    depth: usize,
    first_seen: (u64, u64),
    vars: Vec<&'a Vars>,
    roles: Vec<&'a Spanned<String>>,
    children: Vec<String>,
    hosts: Vec<String>,
}

/// Reads, parses and validates the inventory at `path`.
pub fn load(path: &Path, extra_vars: &[(String, String)]) -> Result<Inventory, Diagnostic> {
    // Only a regular file of bounded size: a FIFO or /dev/zero would hang or exhaust memory.
    let source = crate::yaml::Source::read(path)?;
    let file: InventoryFile = source.parse()?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };

    // Collect groups and hosts from the tree.
    let mut groups: IndexMap<String, GroupInfo> = IndexMap::new();
    let mut hosts: IndexMap<String, (Option<&HostFile>, (u64, u64))> = IndexMap::new();
    walk(
        &source,
        "all",
        Some(&file.all.value),
        0,
        (file.all.referenced.line(), file.all.referenced.column()),
        &mut groups,
        &mut hosts,
    )?;

    for (name, g) in &groups {
        if !g.defined {
            let defined = groups
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
    check_cycles(&source, &groups)?;

    // Each group's members, including those of descendant groups, in host order.
    let mut members: IndexMap<String, Vec<String>> = IndexMap::new();
    for name in groups.keys() {
        let mut set = BTreeSet::new();
        collect_members(name, &groups, &mut set);
        let ordered = hosts.keys().filter(|h| set.contains(*h)).cloned().collect();
        members.insert(name.clone(), ordered);
    }

    let mut secret_values = Vec::new();
    let mut resolved_vars: HashMap<*const Vars, Map<String, Value>> = HashMap::new();
    let resolve_vars =
        |vars: &Vars, found: &mut Vec<String>| -> Result<Map<String, Value>, Diagnostic> {
            let mut out = Map::new();
            for (k, v) in vars {
                let mut value = v.value.clone();
                secret::resolve_in(&mut value, &base, found)
                    .map_err(|e| source.at(v.referenced.line(), v.referenced.column(), e))?;
                out.insert(k.clone(), value);
            }
            Ok(out)
        };
    for g in groups.values() {
        for v in &g.vars {
            let m = resolve_vars(v, &mut secret_values)?;
            resolved_vars.insert(*v as *const Vars, m);
        }
    }

    let roles_dir = dir_setting(&source, &base, file.roles_path.as_ref(), "roles")?;
    let templates_dir = dir_setting(&source, &base, file.templates_path.as_ref(), "templates")?;
    let known_roles: Vec<String> = std::fs::read_dir(&roles_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let check_role = |r: &Spanned<String>| -> Result<(), Diagnostic> {
        if known_roles.iter().any(|k| k == &r.value) {
            return Ok(());
        }
        let mut d = source.at(
            r.referenced.line(),
            r.referenced.column(),
            format!("role `{}` not found in {}", r.value, roles_dir.display()),
        );
        d.hint = did_you_mean(&r.value, known_roles.iter().map(String::as_str))
            .map(|s| format!("did you mean `{s}`?"));
        Err(d)
    };

    let mut out_hosts = Vec::new();
    let mut var_origins = HashMap::new();
    for (name, (hf, at)) in &hosts {
        let default_host = HostFile::default();
        let hf = hf.unwrap_or(&default_host);
        let mut host_groups: Vec<(&String, usize)> = groups
            .iter()
            .filter(|(g, _)| members[*g].contains(name))
            .map(|(g, info)| (g, info.depth))
            .collect();
        host_groups.sort_by(|a, b| {
            a.1.cmp(&b.1).then_with(|| {
                if a.1 == 0 {
                    std::cmp::Ordering::Equal
                } else {
                    a.0.cmp(b.0)
                }
            })
        });
        let mut vars = Map::new();
        let mut origins: HashMap<String, Origin> = HashMap::new();
        let mut roles: Vec<String> = Vec::new();
        for (g, _) in &host_groups {
            let info = &groups[*g];
            for v in &info.vars {
                for (k, val) in &resolved_vars[&(*v as *const Vars)] {
                    vars.insert(k.clone(), val.clone());
                }
                origins.extend(refs::positions(v));
            }
            for r in &info.roles {
                check_role(r)?;
                if !roles.contains(&r.value) {
                    roles.push(r.value.clone());
                }
            }
        }
        for (k, val) in resolve_vars(&hf.vars, &mut secret_values)? {
            vars.insert(k, val);
        }
        origins.extend(refs::positions(&hf.vars));
        for r in &hf.roles {
            check_role(r)?;
            if !roles.contains(&r.value) {
                roles.push(r.value.clone());
            }
        }
        for (k, v) in extra_vars {
            vars.insert(k.clone(), extra_value(v));
            origins.insert(k.clone(), Origin::Extra);
        }
        refs::check(&source, &vars, &origins)?;
        origins.retain(|k, _| vars.contains_key(k));
        address::check(&source, name, hf, *at)?;
        out_hosts.push(Host {
            name: name.clone(),
            address: hf
                .address
                .as_ref()
                .map_or_else(|| name.clone(), |a| a.value.clone()),
            port: hf.port.as_ref().map(|p| p.value),
            user: hf.user.clone(),
            connection: hf.connection.unwrap_or_default(),
            become_root: hf.become_root.unwrap_or(false),
            groups: host_groups.iter().map(|(g, _)| (*g).clone()).collect(),
            roles,
            vars,
        });
        var_origins.insert(name.clone(), origins);
    }
    if out_hosts.is_empty() {
        return Err(source
            .at(
                file.all.referenced.line(),
                file.all.referenced.column(),
                "the inventory defines no hosts",
            )
            .with_hint("add hosts under `all: hosts:` or under a group in `all: children:`"));
    }

    let ssh_config = match &file.ssh_config {
        Some(s) => {
            let p = base.join(&s.value);
            if !p.is_file() {
                return Err(source.at(
                    s.referenced.line(),
                    s.referenced.column(),
                    format!("ssh_config file {} does not exist", p.display()),
                ));
            }
            Some(p)
        }
        None => None,
    };
    let balancer = file
        .balancer
        .as_ref()
        .map(|b| (b.value.clone(), b.referenced.line(), b.referenced.column()));
    let mut balancer = balancer;
    if let Some((v, line, col)) = balancer.as_mut() {
        secret::resolve_in_section(v, &base, &mut secret_values)
            .map_err(|e| source.at(*line, *col, e))?;
    }

    Ok(Inventory {
        path: path.to_path_buf(),
        ssh_config,
        roles_dir,
        templates_dir,
        hosts: out_hosts,
        groups: members,
        secrets: Secrets::new(secret_values),
        balancer,
        source,
        var_origins,
    })
}

#[allow(clippy::too_many_arguments)]
fn walk<'a>(
    source: &Source,
    name: &str,
    group: Option<&'a GroupFile>,
    depth: usize,
    at: (u64, u64),
    groups: &mut IndexMap<String, GroupInfo<'a>>,
    hosts: &mut IndexMap<String, (Option<&'a HostFile>, (u64, u64))>,
) -> Result<(), Diagnostic> {
    let info = groups.entry(name.to_string()).or_insert_with(|| GroupInfo {
        first_seen: at,
        ..Default::default()
    });
    info.depth = info.depth.max(depth);
    let Some(group) = group else { return Ok(()) };
    info.defined = true;
    info.vars.push(&group.vars);
    info.roles.extend(group.roles.iter());
    for (h, hf) in &group.hosts {
        let pos = (h.referenced.line(), h.referenced.column());
        let info = groups.get_mut(name).expect("group just inserted");
        if !info.hosts.contains(&h.value) {
            info.hosts.push(h.value.clone());
        }
        match hosts.get_mut(&h.value) {
            None => {
                hosts.insert(h.value.clone(), (hf.as_ref(), pos));
            }
            Some(existing) => match (existing.0, hf) {
                (Some(_), Some(_)) => {
                    return Err(source
                        .at(pos.0, pos.1, format!("host `{}` is defined twice (first at line {})", h.value, existing.1.0))
                        .with_hint("define a host's address and vars once; list it elsewhere with an empty value"));
                }
                (None, Some(_)) => *existing = (hf.as_ref(), pos),
                _ => {}
            },
        }
    }
    for (c, cg) in &group.children {
        if c.value == "all" {
            return Err(source.at(
                c.referenced.line(),
                c.referenced.column(),
                "`all` cannot be a child group",
            ));
        }
        let info = groups.get_mut(name).expect("group just inserted");
        if !info.children.contains(&c.value) {
            info.children.push(c.value.clone());
        }
        walk(
            source,
            &c.value,
            cg.as_ref(),
            depth + 1,
            (c.referenced.line(), c.referenced.column()),
            groups,
            hosts,
        )?;
    }
    Ok(())
}

fn check_cycles(source: &Source, groups: &IndexMap<String, GroupInfo>) -> Result<(), Diagnostic> {
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
    if let Some(cycle) = visit("all", groups, &mut Vec::new()) {
        let last = &groups[cycle.last().expect("cycle is not empty").as_str()];
        return Err(source.at(
            last.first_seen.0,
            last.first_seen.1,
            format!("group cycle: {}", cycle.join(" -> ")),
        ));
    }
    Ok(())
}

fn collect_members(name: &str, groups: &IndexMap<String, GroupInfo>, out: &mut BTreeSet<String>) {
    let g = &groups[name];
    out.extend(g.hosts.iter().cloned());
    for c in &g.children {
        collect_members(c, groups, out);
    }
}

/// `roles_path:`/`templates_path:` if set, else the nearest folder of that name at or above
/// the inventory's folder (so `inventories/x.yml` finds the repository's `roles/`).
fn dir_setting(
    source: &Source,
    base: &Path,
    setting: Option<&Spanned<String>>,
    default: &str,
) -> Result<PathBuf, Diagnostic> {
    if let Some(s) = setting {
        let p = base.join(&s.value);
        if !p.is_dir() {
            return Err(source.at(
                s.referenced.line(),
                s.referenced.column(),
                format!("folder {} does not exist", p.display()),
            ));
        }
        return Ok(p);
    }
    // Lexical ancestors first, so messages show paths as the operator typed them.
    for dir in base.ancestors() {
        let p = if dir.as_os_str().is_empty() {
            PathBuf::from(default)
        } else {
            dir.join(default)
        };
        if p.is_dir() {
            return Ok(p);
        }
    }
    let abs = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    for dir in abs.ancestors() {
        let p = dir.join(default);
        if p.is_dir() {
            return Ok(p);
        }
    }
    Ok(base.join(default))
}

/// `-e key=value` values are typed like YAML scalars (`false`, `3`, `2.5`); anything else,
/// including an empty value, is a string.
pub fn extra_value(v: &str) -> Value {
    match serde_saphyr::from_str::<Value>(v) {
        Ok(x @ (Value::Bool(_) | Value::Number(_))) => x,
        _ => Value::String(v.to_string()),
    }
}
