//! YAML inventories as ansible-core's `yaml` plugin reads them
//! (lib/ansible/plugins/inventory/yaml.py): every top-level key is a group; a group is a
//! mapping (or empty) with `hosts:` (host patterns, ranges allowed, each with its variables),
//! `children:` (groups, recursively) and `vars:`; a string there stands for a one-entry
//! mapping. What ansible-core skips with a warning (a group that is not a mapping, an
//! unknown key) is skipped with a warning here too.

use super::data::Data;
use super::ranges;
use super::value;
use super::yaml::{Kind, Node, YamlError};

fn err(n: &Node, message: impl Into<String>) -> YamlError {
    YamlError {
        line: n.line,
        column: n.column,
        message: message.into(),
    }
}

/// Reads the parsed document `doc` into `data`; warnings are pushed to `warnings` with
/// their line.
///
/// # Errors
/// An empty file, a top level that is not a mapping, a plugin configuration (`plugin:`), a
/// section that is not a mapping, a host pattern that is not a string or not valid, host
/// variables that are not a mapping, a loop between groups.
pub fn parse(
    doc: Option<&Node>,
    data: &mut Data,
    warnings: &mut Vec<String>,
) -> Result<(), YamlError> {
    let Some(doc) = doc.filter(|d| !matches!(d.kind, Kind::Null)) else {
        return Err(YamlError {
            line: 0,
            column: 0,
            message: "parsed empty YAML file".into(),
        });
    };
    let Kind::Map(pairs) = &doc.kind else {
        return Err(err(doc, "a YAML inventory is a mapping of group names"));
    };
    if let Some((k, _)) = pairs
        .iter()
        .find(|(k, v)| k.kind == Kind::Str("plugin".into()) && !matches!(v.kind, Kind::Null))
    {
        return Err(err(
            k,
            "this is an inventory plugin's configuration (`plugin:`): rollout reads only \
             static YAML and INI inventories",
        ));
    }
    for (name, group) in pairs {
        parse_group(name, group, data, warnings)?;
    }
    Ok(())
}

fn group_name(n: &Node) -> Result<String, YamlError> {
    match &n.kind {
        Kind::Str(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(err(n, "a group name must be a non-empty string")),
    }
}

/// `section` of a group as pairs: a mapping, empty, or a string standing for `{string: null}`.
fn section(group: &str, key: &str, v: &Node) -> Result<Option<Vec<(Node, Node)>>, YamlError> {
    match &v.kind {
        Kind::Null => Ok(None),
        Kind::Map(pairs) => Ok(Some(pairs.clone())),
        Kind::Str(_) => Ok(Some(vec![(
            v.clone(),
            Node {
                kind: Kind::Null,
                line: v.line,
                column: v.column,
            },
        )])),
        _ => Err(err(
            v,
            format!("invalid `{key}` entry for `{group}` group: it must be a mapping"),
        )),
    }
}

fn parse_group(
    name_node: &Node,
    group: &Node,
    data: &mut Data,
    warnings: &mut Vec<String>,
) -> Result<String, YamlError> {
    let name = group_name(name_node)?;
    let pairs = match &group.kind {
        Kind::Null => Vec::new(),
        Kind::Map(p) => p.clone(),
        _ => {
            warnings.push(format!(
                "{}:{}: skipping `{name}`: it is not a valid group definition (not a mapping)",
                name_node.line, name_node.column
            ));
            return Ok(name);
        }
    };
    let g = data.add_group(&name);
    for (key, v) in &pairs {
        let key_name = key.key_text().unwrap_or_default();
        let section_pairs = match key_name.as_str() {
            "vars" | "children" | "hosts" => section(&name, &key_name, v)?,
            _ => {
                if !matches!(v.kind, Kind::Null) {
                    warnings.push(format!(
                        "{}:{}: skipping unexpected key `{key_name}` in group `{name}`: only \
                         `vars`, `children` and `hosts` are valid",
                        key.line, key.column
                    ));
                }
                continue;
            }
        };
        let Some(section_pairs) = section_pairs else {
            continue;
        };
        match key_name.as_str() {
            "vars" => {
                for (k, val) in &section_pairs {
                    let Some(var) = k.key_text() else {
                        return Err(err(k, "a variable name must be a plain value"));
                    };
                    let file = data.file.clone();
                    let val = val.to_value(&|t, l, c| value::vaulted_at(t, &file, l, c))?;
                    data.set_group_var(g, &var, val, (k.line, k.column))
                        .map_err(|m| err(k, m))?;
                }
            }
            "children" => {
                for (child, child_data) in &section_pairs {
                    let child_name = parse_group(child, child_data, data, warnings)?;
                    data.add_child(g, &child_name).map_err(|m| err(child, m))?;
                }
            }
            _ => {
                for (pattern, vars) in &section_pairs {
                    let Kind::Str(p) = &pattern.kind else {
                        return Err(err(
                            pattern,
                            "a host pattern must be a string: enclose numbers in quotes",
                        ));
                    };
                    let (names, port) = ranges::expand(p).map_err(|m| err(pattern, m))?;
                    let vars = match &vars.kind {
                        Kind::Null => Vec::new(),
                        Kind::Map(pairs) => pairs.clone(),
                        _ => {
                            return Err(err(
                                vars,
                                format!("the variables of host `{p}` must be a mapping"),
                            ));
                        }
                    };
                    let mut converted = Vec::new();
                    for (k, val) in &vars {
                        let Some(var) = k.key_text() else {
                            return Err(err(k, "a variable name must be a plain value"));
                        };
                        let file = data.file.clone();
                        let val = val.to_value(&|t, l, c| value::vaulted_at(t, &file, l, c))?;
                        converted.push((var, val, (k.line, k.column)));
                    }
                    for n in names {
                        if n.is_empty() {
                            return Err(err(pattern, "a host name must not be empty"));
                        }
                        let h = data.add_host(&n, g, port);
                        data.named_at(h, (pattern.line, pattern.column));
                        for (k, v, at) in &converted {
                            data.set_host_var(h, k, v.clone(), *at);
                        }
                    }
                }
            }
        }
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(text: &str) -> (Data, Vec<String>) {
        let doc = super::super::yaml::parse(text).unwrap();
        let mut d = Data::new();
        let mut w = Vec::new();
        parse(doc.as_ref(), &mut d, &mut w).unwrap();
        d.reconcile();
        (d, w)
    }

    #[test]
    fn groups_hosts_ranges_and_warnings() {
        let (d, w) = read(
            "all:\n  vars: {a: 1}\nweb:\n  hosts:\n    w[1:2]:\n      x: yes\n  children: db\n  bogus: [1]\ndb:\n  hosts: h\nodd: [1]\n",
        );
        let web = d.group("web").unwrap();
        assert_eq!(d.groups[web].hosts.len(), 2);
        assert_eq!(json!(d.hosts[0].vars), json!({"x": true}));
        assert_eq!(d.groups[web].children, [d.group("db").unwrap()]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(d.group("odd").is_none());
    }

    #[test]
    fn faults_are_located() {
        let doc = super::super::yaml::parse("g:\n  hosts:\n    1:\n").unwrap();
        let e = parse(doc.as_ref(), &mut Data::new(), &mut Vec::new()).unwrap_err();
        assert_eq!((e.line, e.column), (3, 5));
        let doc = super::super::yaml::parse("g:\n  hosts: [a]\n").unwrap();
        let e = parse(doc.as_ref(), &mut Data::new(), &mut Vec::new()).unwrap_err();
        assert!(e.message.contains("must be a mapping"), "{}", e.message);
        let doc = super::super::yaml::parse("plugin: aws_ec2\n").unwrap();
        assert!(parse(doc.as_ref(), &mut Data::new(), &mut Vec::new()).is_err());
    }
}
