//! The house has no circles: the crate's modules import each other in one direction only
//! (inventory -> role -> template -> step -> check -> plan -> exec -> report, the balancer and
//! the pool above them, then `app`, `subcommand` and `cli` on top). This test reads the
//! `crate::` and `super::` paths of every source file (test modules left out) and fails on
//! any cycle between top-level modules, or between sibling files of one folder, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("src is readable") {
        let p = e.expect("dir entry").path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The file's module path below `src/`: `pool/journal.rs` -> ["pool", "journal"],
/// `pool/mod.rs` -> ["pool"], `lib.rs` -> [].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

/// The code of a file without its test module (by convention the last item, after
/// `#[cfg(test)]`) and without comments (doc links are not imports).
fn code(text: &str) -> String {
    let text = text.find("#[cfg(test)]").map_or(text, |i| &text[..i]);
    text.lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Absolute module paths this file's code refers to (`crate::a::b` and `super::c`), at most
/// two levels deep.
fn references(module: &[String], text: &str) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    // `super` is the module one up: for `pool/journal.rs` (["pool", "journal"]) and for
    // `pool/mod.rs` (["pool"]) alike, the module path without its last part.
    let up = module[..module.len().saturating_sub(1)].to_vec();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", up)] {
        let mut from = 0;
        while let Some(i) = text[from..].find(prefix) {
            let at = from + i;
            from = at + prefix.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            let mut path = base.clone();
            let rest = &text[from..];
            for seg in rest.split("::").take(2) {
                let name: String = seg
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty()
                    || name == "super"
                    || name.starts_with(|c: char| c.is_ascii_uppercase())
                {
                    break;
                }
                path.push(name.clone());
                if !seg.starts_with(&name) || seg.len() != name.len() {
                    break;
                }
            }
            if !path.is_empty() {
                out.insert(path);
            }
        }
    }
    out
}

/// A cycle in `graph`, if any, as the list of its nodes.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m.as_str()).copied().unwrap_or(0) {
                1 => {
                    let start = stack.iter().position(|s| s == m).unwrap_or(0);
                    let mut c = stack[start..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0
            && let Some(c) = visit(n, graph, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// Which module imports which.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The graph of top-level modules, and per folder the graph of its files.
fn graphs() -> (Graph, BTreeMap<String, Graph>) {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut top: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // folder -> sibling graph
    let mut siblings: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for f in all {
        let module = module_of(&src, &f);
        let Some(first) = module.first().cloned() else {
            continue; // lib.rs, main.rs
        };
        if module.last().is_some_and(|m| m == "tests") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("source is UTF-8");
        let refs = references(&module, &code(&text));
        top.entry(first.clone()).or_default();
        for r in &refs {
            if r[0] != first {
                top.entry(first.clone()).or_default().insert(r[0].clone());
            } else if module.len() == 2 && r.len() >= 2 && r[1] != module[1] {
                siblings
                    .entry(first.clone())
                    .or_default()
                    .entry(module[1].clone())
                    .or_default()
                    .insert(r[1].clone());
            }
        }
    }
    (top, siblings)
}

#[test]
fn modules_import_in_one_direction_only() {
    let (top, siblings) = graphs();
    assert!(
        top.contains_key("step") && top.contains_key("pool"),
        "{top:?}"
    );
    if let Some(c) = cycle(&top) {
        panic!("modules import each other in a circle: {}", c.join(" -> "));
    }
    for (folder, g) in &siblings {
        if let Some(c) = cycle(g) {
            panic!(
                "files of src/{folder}/ import each other in a circle: {}",
                c.join(" -> ")
            );
        }
    }
}

#[test]
fn only_the_command_line_sits_on_top() {
    let (top, _) = graphs();
    for (m, deps) in &top {
        assert!(
            !deps.contains("cli"),
            "`{m}` imports `cli`: only main.rs may"
        );
        if m != "cli" {
            assert!(
                !deps.contains("subcommand"),
                "`{m}` imports `subcommand`: only `cli` may"
            );
        }
    }
    for low in [
        "inventory",
        "role",
        "template",
        "step",
        "check",
        "plan",
        "exec",
    ] {
        let deps = &top[low];
        for high in ["app", "pool", "balancer", "subcommand", "cli"] {
            assert!(
                !deps.contains(high),
                "`{low}` (the engine) imports `{high}` (above it)"
            );
        }
    }
}

#[test]
fn a_cycle_is_found_and_named() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        cycle(&g).map(|c| c.join(" -> ")),
        Some("a -> b -> c -> a".into())
    );
    if let Some(s) = g.get_mut("c") {
        s.clear();
    }
    assert_eq!(cycle(&g), None);
}
