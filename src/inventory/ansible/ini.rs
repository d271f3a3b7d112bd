//! INI inventories as ansible-core's `ini` plugin reads them
//! (lib/ansible/plugins/inventory/ini.py): lines before any section are hosts of
//! `ungrouped`; `[group]` holds host lines (`name[:port] key=value ...`, split as `shlex` does,
//! values read as Python literals), `[group:vars]` one `key=value` per line (the value read
//! as a Python literal too, `#` comments included), `[group:children]` group names. A group
//! named under `:children` or `:vars` before its own section is pending until declared; one
//! never declared is an error, reported at the line that named it.

use super::data::{Data, UNGROUPED};
use super::literal::{parse_value, shlex_split};
use super::ranges;

/// A fault at a 1-based line and column of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniError {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Hosts,
    Children,
    Vars,
}

struct Pending {
    line: u64,
    column: u64,
    state: State,
    parents: Vec<String>,
}

/// Reads `text` into `data`.
///
/// # Errors
/// The first bad line: an unknown section type, a malformed section or host line, a bad
/// range, an undeclared group, a loop between groups.
pub fn parse(text: &str, data: &mut Data) -> Result<(), IniError> {
    let mut group = UNGROUPED;
    let mut state = State::Hosts;
    let mut pending: Vec<(String, Pending)> = Vec::new();
    let find = |p: &Vec<(String, Pending)>, n: &str| p.iter().position(|(k, _)| k == n);
    for (i, raw) in text.lines().enumerate() {
        let lineno = i as u64 + 1;
        let indent = raw.len() - raw.trim_start().len();
        let column = raw[..indent].chars().count() as u64 + 1;
        let line = raw.trim();
        let fail = |col: u64, message: String| IniError {
            line: lineno,
            column: col,
            message,
        };
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some((name, tag)) = section(line) {
            state = match tag {
                None | Some("hosts") => State::Hosts,
                Some("children") => State::Children,
                Some("vars") => State::Vars,
                Some(other) => {
                    return Err(fail(
                        column,
                        format!("section [{name}:{other}] has unknown type: {other}"),
                    ));
                }
            };
            if data.group(name).is_none() {
                if state == State::Vars && find(&pending, name).is_none() {
                    pending.push((
                        name.to_string(),
                        Pending {
                            line: lineno,
                            column,
                            state,
                            parents: Vec::new(),
                        },
                    ));
                }
                data.add_group(name);
            }
            group = data.group(name).unwrap_or(UNGROUPED);
            if state != State::Vars
                && let Some(p) = find(&pending, name)
            {
                match pending[p].1.state {
                    State::Children => add_pending_children(data, name, &mut pending)
                        .map_err(|m| fail(column, m))?,
                    _ => {
                        pending.remove(p);
                    }
                }
            }
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            return Err(fail(
                column,
                format!(
                    "invalid section entry: `{line}`; a section is `[name]`, `[name:vars]` or \
                     `[name:children]` with no spaces"
                ),
            ));
        }
        match state {
            State::Hosts => {
                let words = shlex_split(line).map_err(|e| {
                    fail(
                        column,
                        format!("cannot parse host definition `{line}`: {e}"),
                    )
                })?;
                let Some(pattern) = words.first() else {
                    continue;
                };
                let (names, port) = host_pattern(pattern).map_err(|m| fail(column, m))?;
                let mut vars = Vec::new();
                let word_column = |w: &str| {
                    raw.find(w)
                        .map_or(column, |i| raw[..i].chars().count() as u64 + 1)
                };
                for w in &words[1..] {
                    let Some((k, v)) = w.split_once('=') else {
                        let col = raw
                            .find(w.as_str())
                            .map_or(column, |i| raw[..i].chars().count() as u64 + 1);
                        return Err(fail(
                            col,
                            format!("expected key=value host variable assignment, got: {w}"),
                        ));
                    };
                    vars.push((k.to_string(), parse_value(v), word_column(k)));
                }
                for n in names {
                    let h = data.add_host(&n, group, port);
                    data.named_at(h, (lineno, column));
                    for (k, v, col) in &vars {
                        data.set_host_var(h, k, v.clone(), (lineno, *col));
                    }
                }
            }
            State::Vars => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(fail(column, format!("expected key=value, got: {line}")));
                };
                data.set_group_var(group, k.trim(), parse_value(v.trim()), (lineno, column))
                    .map_err(|m| fail(column, m))?;
            }
            State::Children => {
                let Some(child) = group_name(line) else {
                    return Err(fail(column, format!("expected group name, got: {line}")));
                };
                if data.group(child).is_some() {
                    data.add_child(group, child).map_err(|m| fail(column, m))?;
                } else if let Some(p) = find(&pending, child) {
                    let parent = data.groups[group].name.clone();
                    pending[p].1.parents.push(parent);
                } else {
                    pending.push((
                        child.to_string(),
                        Pending {
                            line: lineno,
                            column,
                            state: State::Children,
                            parents: vec![data.groups[group].name.clone()],
                        },
                    ));
                }
            }
        }
    }
    if let Some((name, p)) = pending.into_iter().next() {
        let message = match p.state {
            State::Vars => format!("section [{name}:vars] not valid for undefined group `{name}`"),
            _ => format!(
                "section [{}:children] includes undefined group `{name}`",
                p.parents.last().map_or("", String::as_str)
            ),
        };
        return Err(IniError {
            line: p.line,
            column: p.column,
            message,
        });
    }
    Ok(())
}

fn add_pending_children(
    data: &mut Data,
    group: &str,
    pending: &mut Vec<(String, Pending)>,
) -> Result<(), String> {
    let Some(at) = pending.iter().position(|(k, _)| k == group) else {
        return Ok(());
    };
    let parents = pending[at].1.parents.clone();
    for parent in parents {
        let p = data.add_group(&parent);
        data.add_child(p, group)?;
        if pending
            .iter()
            .any(|(k, v)| *k == parent && v.state == State::Children)
        {
            add_pending_children(data, &parent, pending)?;
        }
    }
    pending.retain(|(k, _)| k != group);
    Ok(())
}

/// `^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$`: the group name and the optional type.
fn section(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix('[')?;
    let close = rest.find(']')?;
    let (inside, after) = (&rest[..close], rest[close + 1..].trim_start());
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    let (name, tag) = match inside.split_once(':') {
        Some((n, t)) => (n, Some(t)),
        None => (inside, None),
    };
    let name_ok = !name.is_empty()
        && !name
            .chars()
            .any(|c| c == ':' || c == ']' || c.is_whitespace());
    let tag_ok =
        tag.is_none_or(|t| !t.is_empty() && t.chars().all(|c| c.is_alphanumeric() || c == '_'));
    (name_ok && tag_ok).then_some((name, tag))
}

/// `^([^:\]\s]+)\s*(?:#.*)?$`
fn group_name(line: &str) -> Option<&str> {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '#')
        .unwrap_or(line.len());
    let (name, rest) = (&line[..end], line[end..].trim_start());
    let ok = !name.is_empty()
        && !name.contains([':', ']'])
        && (rest.is_empty() || rest.starts_with('#'));
    ok.then_some(name)
}

/// ini.py's `_expand_hostpattern`: ranges and port, with its two extra checks.
fn host_pattern(pattern: &str) -> Result<ranges::Expanded, String> {
    let (names, port) = ranges::expand(pattern)?;
    if pattern.trim().ends_with(':') && port.is_none() {
        return Err(format!(
            "invalid host pattern `{pattern}`: ending in `:` is not allowed, this character is \
             reserved to provide a port"
        ));
    }
    if names.iter().any(|n| n.trim() == "---") {
        return Err(format!(
            "invalid host pattern `{pattern}`: `---` is normally a sign this is a YAML file"
        ));
    }
    Ok((names, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str) -> Data {
        let mut d = Data::new();
        parse(text, &mut d).unwrap();
        d.reconcile();
        d
    }

    #[test]
    fn host_lines_and_vars_sections_read_as_ansible_does() {
        let d = read(
            "h0 a=1\n[web]\nh1 ansible_port=22 s=\"x y\" b=no\nh1:2222\n[web:vars]\nt=30\nu=3.1.2 \n[all:vars]\nc=False # note\n",
        );
        let h1 = d.host("h1").unwrap();
        assert_eq!(
            json!(d.hosts[h1].vars),
            json!({"ansible_port": 22, "s": "x y", "b": "no"})
        );
        let web = d.group("web").unwrap();
        assert_eq!(json!(d.groups[web].vars), json!({"t": 30, "u": "3.1.2"}));
        assert_eq!(json!(d.groups[0].vars), json!({"c": false}));
        assert_eq!(d.groups[UNGROUPED].hosts, [d.host("h0").unwrap()]);
    }

    #[test]
    fn pending_children_resolve_or_fail_where_named() {
        let d = read("[top:children]\nmid\n[mid:children]\nleaf\n[leaf]\nh\n");
        let top = d.group("top").unwrap();
        assert_eq!(d.groups[top].children, [d.group("mid").unwrap()]);
        let mut d = Data::new();
        let e = parse("[a:children]\nb\n\n[b:vars]\nx=1\n", &mut d).unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        assert_eq!(
            e.message,
            "section [a:children] includes undefined group `b`"
        );
        let e = parse("[g]\nh x\n", &mut Data::new()).unwrap_err();
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (2, 3, "expected key=value host variable assignment, got: x")
        );
        let e = parse("[g:bogus]\n", &mut Data::new()).unwrap_err();
        assert!(e.message.contains("unknown type"), "{}", e.message);
        let e = parse("[g]\nh[1:]\n", &mut Data::new()).unwrap_err();
        assert_eq!(e.message, "host range must specify end value");
    }
}
