//! Variables that refer to other variables (`url: "https://{{ fqdn }}/api"`): which names a
//! value refers to, the order to render them in, and the cycles that have no order.
//!
//! Each value is rendered once, after the values it refers to, so a self-reference such as
//! `a: "{{ a }}"` or `b -> c -> b` is an error naming the chain instead of a value that grows
//! until memory runs out or a literal `{{ a }}` shipped to hosts. A rendered value is never
//! rendered again: text that only looks like a template after rendering (a secret containing
//! `{{`) stays as it is.

use crate::bounded::render::Place;
use crate::template::{RenderError, Templates, Tracked, has_syntax, render_json, render_json_each};
use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

/// The largest value a variable may have after rendering, in bytes of its strings (1 MiB):
/// values that double through each other are stopped long before memory runs out.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Only parses: the names a template refers to do not depend on filters or settings.
static PARSER: LazyLock<minijinja::Environment<'static>> =
    LazyLock::new(minijinja::Environment::new);

/// Does any string inside `v` contain template syntax?
pub fn json_has_syntax(v: &Value) -> bool {
    match v {
        Value::String(s) => has_syntax(s),
        Value::Array(a) => a.iter().any(json_has_syntax),
        Value::Object(m) => m.values().any(json_has_syntax),
        _ => false,
    }
}

/// The top-level names the templated strings inside `value` refer to.
///
/// # Errors
/// A template syntax error in one of the strings.
pub fn references(value: &Value) -> Result<BTreeSet<String>, minijinja::Error> {
    let mut out = BTreeSet::new();
    collect_references(value, &mut out)?;
    Ok(out)
}

fn collect_references(value: &Value, out: &mut BTreeSet<String>) -> Result<(), minijinja::Error> {
    match value {
        Value::String(s) if has_syntax(s) => {
            out.extend(PARSER.template_from_str(s)?.undeclared_variables(false));
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| collect_references(v, out)),
        Value::Object(m) => m.values().try_for_each(|v| collect_references(v, out)),
        _ => Ok(()),
    }
}

/// The keys of `deps` ordered so that each comes after the keys it refers to; names that are
/// not keys of `deps` (plain values, globals, undefined names) are ignored.
///
/// # Errors
/// A cycle, as the chain of names from its first member back to it (`["b", "c", "b"]`).
pub fn order(deps: &IndexMap<String, BTreeSet<String>>) -> Result<Vec<String>, Vec<String>> {
    #[derive(PartialEq)]
    enum Mark {
        Active,
        Done,
    }
    let mut mark: HashMap<&str, Mark> = HashMap::new();
    let mut out = Vec::with_capacity(deps.len());
    for start in deps.keys() {
        if mark.contains_key(start.as_str()) {
            continue;
        }
        // An explicit stack: a chain of thousands of variables must not overflow ours.
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(start, children(deps, start))];
        mark.insert(start, Mark::Active);
        while let Some((node, todo)) = stack.last_mut() {
            let node = *node;
            let Some(next) = todo.pop() else {
                mark.insert(node, Mark::Done);
                out.push(node.to_string());
                stack.pop();
                continue;
            };
            match mark.get(next) {
                Some(Mark::Done) => {}
                Some(Mark::Active) => {
                    let from = stack.iter().position(|(n, _)| *n == next).unwrap_or(0);
                    let mut chain: Vec<String> =
                        stack[from..].iter().map(|(n, _)| n.to_string()).collect();
                    chain.push(next.to_string());
                    return Err(chain);
                }
                None => {
                    mark.insert(next, Mark::Active);
                    stack.push((next, children(deps, next)));
                }
            }
        }
    }
    Ok(out)
}

/// The names `node` refers to that are keys of `deps`, last first (popped in name order).
fn children<'a>(deps: &'a IndexMap<String, BTreeSet<String>>, node: &str) -> Vec<&'a str> {
    let mut c: Vec<&str> = deps[node]
        .iter()
        .filter_map(|r| deps.get_key_value(r).map(|(k, _)| k.as_str()))
        .collect();
    c.reverse();
    c
}

/// "refers to itself (b -> c -> b)" for a cycle found by [`order`].
pub fn cycle_message(chain: &[String]) -> String {
    format!("refers to itself ({})", chain.join(" -> "))
}

/// Which variables carry a secret, and what was rendered from them.
#[derive(Debug, Clone, Default)]
pub struct Taint {
    /// Variables that hold a secret, or were rendered from one (see [`resolve`]).
    pub names: BTreeSet<String>,
    /// Texts rendered from secrets, worth redacting wherever they show up (see
    /// [`crate::secret::worth_redacting`]).
    pub derived: Vec<String>,
    /// The variables of `names` as rendered with every secret replaced by its
    /// [`crate::secret::canary`]: what tells the parts of a rendered text that depend on a
    /// secret from the rest.
    pub canary: Map<String, Value>,
}

impl Taint {
    /// The variables of `vars` that hold one of `secrets` anywhere inside.
    pub fn of(vars: &Map<String, Value>, secrets: &crate::secret::Secrets) -> Taint {
        let canary: Map<String, Value> = vars
            .iter()
            .filter(|(_, v)| any_string(v, &|s| secrets.contains_secret(s)))
            .map(|(k, v)| (k.clone(), crate::secret::canary_json(v)))
            .collect();
        Taint {
            names: canary.keys().cloned().collect(),
            derived: Vec::new(),
            canary,
        }
    }

    /// `vars` with the variables of `names` replaced by their canary values.
    pub fn canary_vars(&self, vars: &Map<String, Value>) -> Map<String, Value> {
        let mut out = vars.clone();
        out.extend(self.canary.clone());
        out
    }

    /// Registers the strings of `rendered` that differ from those of `canary` (the same
    /// value rendered with canaries; None: that render failed) in [`Taint::derived`].
    pub fn compare(&mut self, rendered: &Value, canary: Option<&Value>) {
        let (mut real, mut fake) = (Vec::new(), Vec::new());
        strings(rendered, &mut real);
        if let Some(c) = canary {
            strings(c, &mut fake);
        }
        for (i, r) in real.into_iter().enumerate() {
            let c = canary.and(fake.get(i).copied());
            self.derived.extend(crate::secret::worth_redacting(r, c));
        }
    }
}

/// The strings inside `v`, in order.
fn strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Value::Object(m) => m.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Does `f` hold for a string inside `v`?
fn any_string(v: &Value, f: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().any(|v| any_string(v, f)),
        Value::Object(m) => m.values().any(|v| any_string(v, f)),
        _ => false,
    }
}

/// The variable holding Ansible's `hostvars` (every host's variables, already rendered for its
/// own host): [`resolve`] leaves it as it is.
pub const HOSTVARS: &str = "hostvars";

/// Renders the templated values of `vars` in place, each once, after the values it refers to.
/// Sensitivity follows the data: a value whose rendering read a variable of `taint.names`
/// joins them, and the texts rendered from a secret join `taint.derived`.
///
/// # Errors
/// The variable's name and what went wrong: a cycle, a template error (an undefined name is
/// named), a value over [`MAX_VALUE_BYTES`] or over the rendering budget.
///
/// `place` says where a variable was set (and whether as `-e NAME`: the name is appended),
/// named if a render spends the budget ([`crate::bounded::render`]).
pub fn resolve<'p>(
    t: &Templates,
    vars: &mut Map<String, Value>,
    taint: &mut Taint,
    place: &dyn Fn(&str) -> (Place<'p>, bool),
) -> Result<(), (String, RenderError)> {
    let plain = |message: String| RenderError {
        template: None,
        line: None,
        range: None,
        message,
    };
    let mut deps: IndexMap<String, BTreeSet<String>> = IndexMap::new();
    for (k, v) in vars
        .iter()
        .filter(|(k, v)| k.as_str() != HOSTVARS && json_has_syntax(v))
    {
        let refs = references(v).map_err(|e| {
            let mut r = plain(format!(
                "template syntax error: {}",
                crate::template::describe(&e)
            ));
            r.line = e.line();
            (k.clone(), r)
        })?;
        deps.insert(k.clone(), refs);
    }
    let order = order(&deps).map_err(|chain| (chain[0].clone(), plain(cycle_message(&chain))))?;
    // Values as the template engine sees them, converted once each.
    let mut seen: HashMap<String, minijinja::Value> = HashMap::new();
    for k in &order {
        let refs = &deps[k.as_str()];
        let mut local: BTreeMap<&str, minijinja::Value> = BTreeMap::new();
        for r in refs {
            if let Some(v) = seen.get(r) {
                local.insert(r, v.clone());
            } else if let Some(v) = vars.get(r) {
                let v = minijinja::Value::from(minijinja::value::Serde(v));
                seen.insert(r.clone(), v.clone());
                local.insert(r, v);
            }
        }
        let secret: BTreeSet<String> = refs.intersection(&taint.names).cloned().collect();
        let tracked = Tracked::new(minijinja::Value::from(local), Arc::new(secret));
        let mut value = vars[k.as_str()].clone();
        let mut from_secret = false;
        let at = match place(k) {
            (p, true) => Place {
                file_suffix: k,
                ..p
            },
            (p, false) => p,
        };
        crate::bounded::render::at(at, || {
            render_json_each(t, &mut value, &tracked.value(), &mut |_| {
                from_secret |= tracked.take_read();
            })
        })
        .map_err(|e| (k.clone(), name_undefined(t, e, refs, vars)))?;
        if from_secret {
            // The same value rendered from the canaries of the variables it refers to.
            let canary_ctx: BTreeMap<&str, minijinja::Value> = refs
                .iter()
                .filter_map(|r| {
                    let v = taint.canary.get(r).or_else(|| vars.get(r))?;
                    Some((
                        r.as_str(),
                        minijinja::Value::from(minijinja::value::Serde(v)),
                    ))
                })
                .collect();
            let mut canary = vars[k.as_str()].clone();
            let ok = crate::bounded::render::at(at, || {
                render_json(t, &mut canary, &minijinja::Value::from(canary_ctx)).is_ok()
            });
            taint.compare(&value, ok.then_some(&canary));
            taint.names.insert(k.clone());
            taint.canary.insert(k.clone(), canary);
        }
        // `omit` inside a list or map drops out of it (the value itself stays `omit`, for the
        // argument that uses it).
        crate::template::drop_omitted(&mut value);
        if string_bytes(&value) > MAX_VALUE_BYTES {
            let mib = MAX_VALUE_BYTES / (1024 * 1024);
            let message = format!("the rendered value is larger than {mib} MiB");
            return Err((k.clone(), plain(message)));
        }
        seen.insert(
            k.clone(),
            minijinja::Value::from(minijinja::value::Serde(&value)),
        );
        vars.insert(k.clone(), value);
    }
    Ok(())
}

/// Strict undefined errors do not say which name was undefined; the references do.
fn name_undefined(
    t: &Templates,
    mut e: RenderError,
    refs: &BTreeSet<String>,
    vars: &Map<String, Value>,
) -> RenderError {
    if e.message.starts_with("undefined variable") {
        let missing: Vec<String> = refs
            .iter()
            .filter(|r| !vars.contains_key(*r) && !t.has_global(r))
            .map(|r| format!("`{r}`"))
            .collect();
        if !missing.is_empty() {
            e.message = format!("undefined variable {}", missing.join(", "));
        }
    }
    e
}

/// The bytes of all strings inside `v` (what grows when values double).
fn string_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(string_bytes).sum(),
        Value::Object(m) => m.iter().map(|(k, v)| k.len() + string_bytes(v)).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(pairs: &[(&str, &[&str])]) -> IndexMap<String, BTreeSet<String>> {
        pairs
            .iter()
            .map(|(k, r)| (k.to_string(), r.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn orders_dependencies_first_and_names_cycles() {
        let d = deps(&[("url", &["fqdn"]), ("fqdn", &["host"]), ("x", &["range"])]);
        assert_eq!(order(&d).unwrap(), ["fqdn", "url", "x"]);
        assert_eq!(order(&deps(&[("a", &["a"])])).unwrap_err(), ["a", "a"]);
        let d = deps(&[("a", &[]), ("b", &["c"]), ("c", &["b"])]);
        assert_eq!(order(&d).unwrap_err(), ["b", "c", "b"]);
    }

    #[test]
    fn references_are_top_level_names() {
        let v = serde_json::json!({"x": ["{{ a.b }} {% for i in range(n) %}{{ i }}{% endfor %}"]});
        let r: Vec<String> = references(&v).unwrap().into_iter().collect();
        assert_eq!(r, ["a", "n", "range"]);
    }

    #[test]
    fn self_references_and_growth_are_errors() {
        let t = Templates::empty();
        let mut m: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"a": "{{a}}{{a}}"})).unwrap();
        let (k, e) = resolve(&t, &mut m, &mut Taint::default(), &|_| {
            (Place::default(), false)
        })
        .unwrap_err();
        assert_eq!(
            (k.as_str(), e.message.as_str()),
            ("a", "refers to itself (a -> a)")
        );
        let mut m = Map::new();
        m.insert("a0".into(), Value::String("x".repeat(1024)));
        for i in 1..20 {
            m.insert(
                format!("a{i}"),
                format!("{{{{ a{0} }}}}{{{{ a{0} }}}}", i - 1).into(),
            );
        }
        let (k, e) = resolve(&t, &mut m, &mut Taint::default(), &|_| {
            (Place::default(), false)
        })
        .unwrap_err();
        assert_eq!(k, "a11");
        assert!(e.message.contains("larger than 1 MiB"), "{}", e.message);
    }

    #[test]
    fn undefined_names_are_named_and_rendered_text_is_final() {
        let t = Templates::empty();
        let mut m: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"b": "{{ nope }}", "a": 1})).unwrap();
        let (k, e) = resolve(&t, &mut m, &mut Taint::default(), &|_| {
            (Place::default(), false)
        })
        .unwrap_err();
        assert_eq!(
            (k.as_str(), e.message.as_str()),
            ("b", "undefined variable `nope`")
        );
        let mut m: Map<String, Value> =
            serde_json::from_value(serde_json::json!({"s": "{{ '{{' }} s }}", "t": "[{{ s }}]"}))
                .unwrap();
        resolve(&t, &mut m, &mut Taint::default(), &|_| {
            (Place::default(), false)
        })
        .unwrap();
        assert_eq!(m["t"], "[{{ s }}]");
    }

    #[test]
    fn variables_resolve_through_each_other() {
        let t = Templates::empty();
        let mut m: Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::json!({"host": "bbb1", "url": "https://{{ fqdn }}/api", "fqdn": "{{ host }}.example.org"})).unwrap();
        resolve(&t, &mut m, &mut Taint::default(), &|_| {
            (Place::default(), false)
        })
        .unwrap();
        assert_eq!(m["url"], "https://bbb1.example.org/api");
        let mut cyc: Map<String, serde_json::Value> =
            serde_json::from_value(serde_json::json!({"a": "{{ b }}x", "b": "{{ a }}y"})).unwrap();
        assert!(
            resolve(&t, &mut cyc, &mut Taint::default(), &|_| (
                Place::default(),
                false
            ))
            .is_err()
        );
    }
}
