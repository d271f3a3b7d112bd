//! The gathered facts against each step's own check, on a real shell.

use super::*;
use crate::script::Nonce;
use crate::secret::Secrets;
use crate::step::{Context, Facts, with_plain_resolve};
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

/// A step's facts from its own fragment alone.
fn own_facts(a: &Action) -> Facts {
    let out = sh(&format!(
        "export LC_ALL=C\n{{\n{}}} </dev/null\n",
        a.check()
    ));
    a.read(&crate::step::CheckOutput {
        lines: out.lines().map(String::from).collect(),
    })
}

fn specs(p: &dyn Fn(&str) -> String) -> Vec<(&'static str, serde_json::Value)> {
    let file = |n: &str, c: &str| json!({"path": p(n), "content": c, "mode": "0644"});
    let props = p("a.properties");
    let prop = |key: &str, value: &str| json!({"path": props, "key": key, "value": value});
    vec![
        ("file", file("same", "hello\n")),
        // A second step on the same path shares its stat and hash, and gets its content.
        ("file", file("same", "other\n")),
        ("file", file("differs", "new line\n")),
        ("file", file("empty", "x\n")),
        ("file", file("it's spaced", "hello\n")),
        ("file", file("pipe|d", "hello\n")),
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
        ("directory", json!({"path": p("dangling")})),
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
        // Owner, group or mode wanted: the file's stat is gathered too (not following a link).
        (
            "property",
            json!({"path": props, "key": "a", "value": "1", "mode": "0600"}),
        ),
        (
            "property",
            json!({"path": p("none.properties"), "key": "a", "value": "1", "owner": "root"}),
        ),
        (
            "property",
            json!({"path": p("link"), "key": "hello", "value": "", "group": "root"}),
        ),
        (
            "property",
            json!({"path": props, "key": "c", "value": "x", "mode": "0640", "sensitive": true}),
        ),
        ("command", json!({"run": "true", "creates": p("same")})),
    ]
}

/// The gathered facts are, fact for fact, what each step's own fragment finds, on a real
/// shell, for every state a path can be in; so are the verdicts.
#[test]
fn gathered_facts_equal_each_steps_own_facts() {
    let d = std::env::temp_dir().join(format!("rollout-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("dir")).unwrap();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    for (name, text) in [
        ("same", "hello\n"),
        ("differs", "old line\n"),
        ("empty", ""),
        ("it's spaced", "hello\n"),
        ("pipe|d", "hello\n"),
        ("gone", "x"),
        ("plain", "x"),
        ("a.properties", "a=1\n#b=2\nb = 3 \nc=\n a=4\nnoeq\n"),
    ] {
        std::fs::write(p(name), text).unwrap();
    }
    std::os::unix::fs::symlink(p("same"), p("link")).unwrap();
    std::os::unix::fs::symlink(p("dir"), p("dirlink")).unwrap();
    std::os::unix::fs::symlink(p("nowhere"), p("dangling")).unwrap();

    let actions: Vec<Action> = specs(&p).into_iter().map(|(k, a)| action(k, a)).collect();
    let refs: Vec<&Action> = actions.iter().collect();
    let nonce = Nonce::new();
    let script = script(&refs, &nonce);
    let out = sh(&script);
    let gathered = parse(&refs, &out, &nonce).unwrap();
    let secrets = Secrets::default();
    let cx = Context {
        secrets: &secrets,
        host: "h",
    };
    for (i, a) in actions.iter().enumerate() {
        let own = own_facts(a);
        assert_eq!(gathered[i], own, "step {i}: {a:?}");
        assert_eq!(
            a.evaluate(&gathered[i], &cx),
            a.evaluate(&own, &cx),
            "step {i}"
        );
    }
    // Only the files whose hash is not a step's wanted one send their content; the script starts one stat, one
    // sha256sum and one awk per properties file for all of these (plus the symlinks' and
    // the sensitive property's own checks).
    assert_eq!(out.matches(" c ").count(), 3, "{out}");
    assert_eq!(script.matches("|%n' --").count(), 1);
    assert_eq!(script.matches("sha256sum --").count(), 1);
    assert_eq!(script.matches("KS=").count(), 3);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_cut_output_is_an_error_not_an_empty_host() {
    let a = action("directory", json!({"path": "/x"}));
    let nonce = Nonce::new();
    let m = nonce.marker();
    assert!(parse(&[&a], &format!("{m} s\n"), &nonce).is_err());
    assert!(parse(&[&a], &format!("{m} s\n{m} z\n"), &nonce).is_ok());
    assert_eq!(
        parse(&[&a], &format!("{m} e 0 0\n{m} z\n"), &nonce),
        Err(CheckError::Marker(format!("{m} e 0 0")))
    );
}
