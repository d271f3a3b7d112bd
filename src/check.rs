//! The check script of one host and its parser.
//!
//! A no-op run is nothing but checks, and on a host every process the script starts costs more
//! than anything rollout does locally. So the probes steps have in common are gathered once for
//! all of them ([`Batch`]): one `stat` for every file and directory path, one `sha256sum` for
//! every file, one `awk` per properties file. Only a file whose hash differs costs more
//! (its old content, for the diff). Steps that need their own probe (apt, services, commands,
//! symlinks where a file should be) run their fragment in a section of their own.
//!
//! The parser turns the shared output back into each step's [`Probe`], line for line what the
//! step's own fragment would have printed, so every step kind has one evaluator.
//!
//! Output grammar (every marker line starts with the run's nonce marker `M`):
//! `M s` then `stat` lines `TYPE|USER|GROUP|MODE|SIZE|PATH`; `M h` then `sha256sum` lines;
//! `M B I BASE64` old content of step I; `M p J` then `N VALUE` lines of properties file J,
//! or `M P J` when that file is missing; `M b I` … `M e I RC` a step's own section; `M z` the
//! end (a cut connection must not look like a host where nothing exists).

use crate::plan::HostPlan;
use crate::script::{Nonce, quote, whole_or_nothing};
use crate::step::{AWK_FIND_MANY, Action, Batch, DIFF_LIMIT, Probe};
use std::collections::HashMap;

/// Properties files in the order of their first step, each with its keys (unique, in order).
fn prop_files<'a>(batches: &[Option<Batch<'a>>]) -> Vec<(&'a str, Vec<&'a str>)> {
    let mut files: Vec<(&str, Vec<&str>)> = Vec::new();
    for b in batches.iter().flatten() {
        if let Batch::Prop { path, key } = b {
            match files.iter_mut().find(|(p, _)| p == path) {
                Some((_, keys)) if !keys.contains(key) => keys.push(key),
                Some(_) => {}
                None => files.push((path, vec![key])),
            }
        }
    }
    files
}

fn actions(plan: &HostPlan) -> Vec<&Action> {
    plan.steps.iter().map(|s| &s.action).collect()
}

/// The one script that checks every step of a host.
pub fn script(plan: &HostPlan, nonce: &Nonce) -> String {
    script_of(&actions(plan), nonce)
}

/// Splits check output into each step's probe.
pub fn parse(plan: &HostPlan, output: &str, nonce: &Nonce) -> Result<Vec<Probe>, String> {
    parse_of(&actions(plan), output, nonce)
}

fn script_of(steps: &[&Action], nonce: &Nonce) -> String {
    let m = nonce.marker();
    let batches: Vec<Option<Batch>> = steps.iter().map(|a| a.batch()).collect();
    let mut body = String::from("export LC_ALL=C\n");

    let mut stat_paths: Vec<&str> = Vec::new();
    let mut hash_paths: Vec<&str> = Vec::new();
    for b in batches.iter().flatten() {
        match b {
            Batch::File { path, want } => {
                if !stat_paths.contains(path) {
                    stat_paths.push(path);
                }
                if want.is_some() && !hash_paths.contains(path) {
                    hash_paths.push(path);
                }
            }
            Batch::Dir { path } if !stat_paths.contains(path) => stat_paths.push(path),
            _ => {}
        }
    }
    let args = |paths: &[&str]| paths.iter().map(|p| quote(p)).collect::<Vec<_>>().join(" ");
    if !stat_paths.is_empty() {
        body.push_str(&format!(
            "echo '{m} s'\nstat -c '%F|%U|%G|%a|%s|%n' -- {} 2>/dev/null </dev/null\n",
            args(&stat_paths)
        ));
    }
    if !hash_paths.is_empty() {
        // The hashes go to a variable too: a file whose hash is not the wanted one sends its
        // old content (for the diff), found with `case` alone, without a process.
        body.push_str(&format!(
            "__h=$(sha256sum -- {} 2>/dev/null </dev/null)\necho '{m} h'\nprintf '%s\\n' \"$__h\"\n",
            args(&hash_paths)
        ));
        body.push_str(&format!(
            "__rl_old() {{ if [ \"$(stat -c %s -- \"$2\")\" -le {DIFF_LIMIT} ]; then printf '%s B %s ' '{m}' \"$1\"; base64 -w0 < \"$2\"; echo; fi; }}\n"
        ));
    }
    for (i, b) in batches.iter().enumerate() {
        if let Some(Batch::File { path, want }) = b {
            let q = quote(path);
            // A symlink where the file should be: the step's own probe says so.
            body.push_str(&format!(
                "if [ -L {q} ]; then echo '{m} b {i}'\n{{\n{}}} </dev/null\necho \"{m} e {i} $?\"\n",
                steps[i].check()
            ));
            if let Some(w) = want {
                body.push_str(&format!(
                    "elif [ -f {q} ]; then case \"$__h\n\" in *{w}'  '{q}'\n'*) ;; *) __rl_old {i} {q} </dev/null ;; esac\n"
                ));
            }
            body.push_str("fi\n");
        }
    }
    for (j, (path, keys)) in prop_files(&batches).iter().enumerate() {
        let q = quote(path);
        body.push_str(&format!(
            "if [ -e {q} ]; then echo '{m} p {j}'; KS={} awk '{AWK_FIND_MANY}' {q} </dev/null; else echo '{m} P {j}'; fi\n",
            quote(&keys.join("\n"))
        ));
    }
    for (i, a) in steps.iter().enumerate() {
        if batches[i].is_some() {
            continue;
        }
        // A brace group, not a subshell: every fork counts (the fragments are rollout's own
        // read-only probes; user-written `unless`/`assert` tests run in their own subshells
        // inside them).
        body.push_str(&format!(
            "echo '{m} b {i}'\n{{\n{}}} </dev/null\necho \"{m} e {i} $?\"\n",
            a.check()
        ));
    }
    body.push_str(&format!("echo '{m} z'\n"));
    whole_or_nothing(&body)
}

/// What a `stat -c '%F|%U|%G|%a|%s|%n'` line says about a path.
struct Stat<'a> {
    kind: &'a str,
    owner: &'a str,
    group: &'a str,
    mode: &'a str,
    size: &'a str,
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    None,
    Stat,
    Hash,
    Props(usize),
    Step(usize),
}

fn parse_of(steps: &[&Action], output: &str, nonce: &Nonce) -> Result<Vec<Probe>, String> {
    let m = nonce.marker();
    let n = steps.len();
    let batches: Vec<Option<Batch>> = steps.iter().map(|a| a.batch()).collect();
    let files = prop_files(&batches);

    let mut own: Vec<Option<Probe>> = vec![None; n];
    let mut stats: HashMap<&str, Stat> = HashMap::new();
    let mut hashes: HashMap<&str, &str> = HashMap::new();
    let mut old: HashMap<usize, &str> = HashMap::new();
    // Per properties file: None = missing, Some(lines) = present.
    let mut props: Vec<Option<Vec<&str>>> = vec![None; files.len()];
    let mut props_seen = vec![false; files.len()];
    let mut step_lines: Vec<String> = Vec::new();
    let mut section = Section::None;
    let mut ended = false;

    for line in output.lines() {
        if let Some(rest) = line.strip_prefix(&m).and_then(|r| r.strip_prefix(' ')) {
            let mut f = rest.splitn(3, ' ');
            let tag = f.next().unwrap_or("");
            let num = f.next().and_then(|x| x.parse::<usize>().ok());
            let bad = || format!("unexpected marker line `{line}`");
            section = match (tag, num) {
                ("s", None) => Section::Stat,
                ("h", None) => Section::Hash,
                ("z", None) => {
                    ended = true;
                    Section::None
                }
                ("B", Some(i)) if i < n => {
                    old.insert(i, f.next().unwrap_or(""));
                    Section::None
                }
                ("p", Some(j)) if j < files.len() => {
                    props[j] = Some(Vec::new());
                    props_seen[j] = true;
                    Section::Props(j)
                }
                ("P", Some(j)) if j < files.len() => {
                    props_seen[j] = true;
                    Section::None
                }
                ("b", Some(i)) if i < n => {
                    step_lines.clear();
                    Section::Step(i)
                }
                ("e", Some(i)) if i < n => {
                    if section != Section::Step(i) {
                        return Err(bad());
                    }
                    let rc = f.next().and_then(|r| r.parse().ok()).unwrap_or(-1);
                    own[i] = Some(Probe {
                        lines: std::mem::take(&mut step_lines),
                        rc,
                    });
                    Section::None
                }
                _ => return Err(bad()),
            };
            continue;
        }
        match section {
            Section::Stat => {
                let mut f = line.splitn(6, '|');
                if let (Some(kind), Some(owner), Some(group), Some(mode), Some(size), Some(p)) =
                    (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
                {
                    stats.insert(
                        p,
                        Stat {
                            kind,
                            owner,
                            group,
                            mode,
                            size,
                        },
                    );
                }
            }
            Section::Hash => {
                if let Some((h, p)) = line.split_once("  ") {
                    hashes.insert(p, h);
                }
            }
            Section::Props(j) => {
                if let Some(lines) = props[j].as_mut() {
                    lines.push(line);
                }
            }
            Section::Step(_) => step_lines.push(line.to_string()),
            Section::None => {}
        }
    }
    if !ended {
        return Err("the check script stopped before its end".into());
    }

    let mut probes = Vec::with_capacity(n);
    for (i, (b, own)) in batches.iter().zip(own).enumerate() {
        if let Some(p) = own {
            probes.push(p);
            continue;
        }
        let lines: Vec<String> = match b {
            None => return Err(format!("the check script stopped before step {}", i + 1)),
            Some(Batch::Dir { path }) => match stats.get(path) {
                None => vec!["A".into()],
                Some(s) if s.kind == "directory" => {
                    vec![format!("S {} {} {}", s.owner, s.group, s.mode)]
                }
                Some(_) => vec!["F".into()],
            },
            Some(Batch::File { path, .. }) => match stats.get(path) {
                None => vec!["A".into()],
                Some(s) if s.kind == "directory" => vec!["D".into()],
                Some(s) if s.kind == "symbolic link" => vec!["L".into()],
                Some(s) => {
                    let mut l = vec![format!("S {} {} {} {}", s.owner, s.group, s.mode, s.size)];
                    if let Some(h) = hashes.get(path) {
                        l.push(format!("H {h}"));
                    }
                    if let Some(b) = old.get(&i) {
                        l.push(format!("B {b}"));
                    }
                    l
                }
            },
            Some(Batch::Prop { path, key }) => {
                let j = files.iter().position(|(p, _)| p == path).unwrap_or(0);
                if !props_seen[j] {
                    return Err(format!("the check script stopped before step {}", i + 1));
                }
                match &props[j] {
                    None => vec!["A".into()],
                    Some(lines) => {
                        let k = files[j].1.iter().position(|k| k == key).unwrap_or(0) + 1;
                        let k = k.to_string();
                        lines
                            .iter()
                            .filter_map(|l| l.split_once(' ').filter(|(n, _)| *n == k))
                            .map(|(_, v)| format!("V {v}"))
                            .collect()
                    }
                }
            }
        };
        probes.push(Probe { lines, rc: 0 });
    }
    Ok(probes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secrets;
    use crate::step::with_plain_resolve;
    use serde_json::json;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn action(kind: &str, args: serde_json::Value) -> Action {
        with_plain_resolve(|r| crate::step::resolve(kind, args, r)).unwrap()
    }

    fn sh(script: &str) -> String {
        let mut c = Command::new("sh")
            .arg("-s")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap()
    }

    /// The batched probes say, line for line, what each step's own fragment says, on a
    /// real shell, for every state a path can be in.
    #[test]
    fn batched_probes_equal_each_steps_own_probe() {
        let d = std::env::temp_dir().join(format!("rollout-check-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("dir")).unwrap();
        let p = |n: &str| d.join(n).to_str().unwrap().to_string();
        std::fs::write(p("same"), "hello\n").unwrap();
        std::fs::write(p("differs"), "old line\n").unwrap();
        std::fs::write(p("empty"), "").unwrap();
        std::fs::write(p("it's spaced"), "hello\n").unwrap();
        std::fs::write(p("gone"), "x").unwrap();
        std::fs::write(p("plain"), "x").unwrap();
        std::fs::write(p("a.properties"), "a=1\n#b=2\nb = 3 \nc=\n a=4\nnoeq\n").unwrap();
        std::os::unix::fs::symlink(p("same"), p("link")).unwrap();
        std::os::unix::fs::symlink(p("dir"), p("dirlink")).unwrap();
        std::os::unix::fs::symlink(p("nowhere"), p("dangling")).unwrap();

        let file = |n: &str, c: &str| json!({"path": p(n), "content": c, "mode": "0644"});
        let props = p("a.properties");
        let prop = |key: &str, value: &str| json!({"path": props, "key": key, "value": value});
        let specs = vec![
            ("file", file("same", "hello\n")),
            ("file", file("differs", "new line\n")),
            ("file", file("empty", "x\n")),
            ("file", file("it's spaced", "hello\n")),
            ("file", file("missing", "x\n")),
            ("file", file("dir", "x\n")),
            ("file", file("link", "hello\n")),
            ("file", file("dangling", "hello\n")),
            ("file", json!({"path": p("gone"), "state": "absent"})),
            ("file", json!({"path": p("nothing"), "state": "absent"})),
            ("directory", json!({"path": p("dir"), "mode": "0755"})),
            ("directory", json!({"path": p("nodir")})),
            ("directory", json!({"path": p("plain")})),
            ("directory", json!({"path": p("dirlink")})),
            ("property", prop("a", "1")),
            ("property", prop("b", "3")),
            ("property", prop("c", "x")),
            ("property", prop("z", "x")),
            (
                "property",
                json!({"path": props, "key": "a", "state": "absent"}),
            ),
            (
                "property",
                json!({"path": p("none.properties"), "key": "a", "value": "1"}),
            ),
            (
                "property",
                json!({"path": props, "key": "b", "value": "3", "sensitive": true}),
            ),
            ("command", json!({"run": "true", "creates": p("same")})),
        ];
        let actions: Vec<Action> = specs.into_iter().map(|(k, a)| action(k, a)).collect();
        let refs: Vec<&Action> = actions.iter().collect();
        let nonce = Nonce::new();
        let out = sh(&script_of(&refs, &nonce));
        let batched = parse_of(&refs, &out, &nonce).unwrap();
        let secrets = Secrets::default();
        for (i, a) in actions.iter().enumerate() {
            let own: Vec<String> = sh(&format!(
                "export LC_ALL=C\n{{\n{}}} </dev/null\n",
                a.check()
            ))
            .lines()
            .map(String::from)
            .collect();
            // A file that must be absent needs no hash or old content: existence is enough.
            let absent = matches!(a.batch(), Some(Batch::File { want: None, .. }));
            if !absent || own.len() == 1 {
                assert_eq!(batched[i].lines, own, "step {i}: {a:?}");
            }
            let own = Probe { lines: own, rc: 0 };
            assert_eq!(
                a.evaluate(&batched[i], &secrets, "h"),
                a.evaluate(&own, &secrets, "h"),
                "step {i}"
            );
        }
        // Only the differing file sends its old content; the script starts one stat, one
        // sha256sum and one awk for all of these (plus the symlinks' and the sensitive
        // property's own probes).
        assert_eq!(out.matches(" B ").count(), 2, "{out}");
        let script = script_of(&refs, &nonce);
        assert_eq!(script.matches("stat -c '%F").count(), 1);
        assert_eq!(script.matches("sha256sum --").count(), 1);
        assert_eq!(script.matches("KS=").count(), 2);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_cut_output_is_an_error_not_an_empty_host() {
        let a = action("directory", json!({"path": "/x"}));
        let nonce = Nonce::new();
        let m = nonce.marker();
        assert!(parse_of(&[&a], &format!("{m} s\n"), &nonce).is_err());
        assert!(parse_of(&[&a], &format!("{m} s\n{m} z\n"), &nonce).is_ok());
        assert!(parse_of(&[&a], &format!("{m} e 0 0\n{m} z\n"), &nonce).is_err());
    }
}
