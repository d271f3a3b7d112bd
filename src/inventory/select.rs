//! `--limit`: choose hosts by name or group, comma-separated; `!name` excludes.

use super::{Host, Inventory};
use crate::error::did_you_mean;

/// The hosts `limit` selects, in inventory order. `None` selects all hosts.
pub fn select<'a>(inv: &'a Inventory, limit: Option<&str>) -> Result<Vec<&'a Host>, String> {
    let Some(limit) = limit else {
        return Ok(inv.hosts.iter().collect());
    };
    if limit.split(',').all(|p| p.trim().is_empty()) {
        return Err(format!("--limit `{limit}` names no host or group"));
    }
    let mut include: Vec<&str> = Vec::new();
    let mut exclude: Vec<&str> = Vec::new();
    for part in limit.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (list, name) = match part.strip_prefix('!') {
            Some(n) => (&mut exclude, n),
            None => (&mut include, part),
        };
        let known = inv.groups.contains_key(name) || inv.host(name).is_some();
        if !known {
            let names = inv
                .groups
                .keys()
                .map(String::as_str)
                .chain(inv.hosts.iter().map(|h| h.name.as_str()));
            let hint = did_you_mean(name, names)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(format!(
                "--limit: `{name}` is neither a host nor a group of {}{hint}",
                inv.path.display()
            ));
        }
        list.push(name);
    }
    let matches = |h: &Host, names: &[&str]| {
        names
            .iter()
            .any(|n| h.name == *n || inv.groups.get(*n).is_some_and(|m| m.contains(&h.name)))
    };
    let selected: Vec<&Host> = inv
        .hosts
        .iter()
        .filter(|h| (include.is_empty() || matches(h, &include)) && !matches(h, &exclude))
        .collect();
    if selected.is_empty() {
        return Err(format!("--limit `{limit}` selects no hosts"));
    }
    Ok(selected)
}
