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
    sh_path(script, None)
}

/// Runs `script` with `sh`, with `bin` first on PATH when given.
fn sh_path(script: &str, bin: Option<&std::path::Path>) -> String {
    let mut c = Command::new("sh");
    if let Some(bin) = bin {
        let path = std::env::var("PATH").unwrap_or_default();
        c.env("PATH", format!("{}:{path}", bin.display()));
    }
    let mut c = c
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
    own_facts_path(a, None)
}

fn own_facts_path(a: &Action, bin: Option<&std::path::Path>) -> Facts {
    let out = sh_path(
        &format!("export LC_ALL=C\n{{\n{}}} </dev/null\n", a.check()),
        bin,
    );
    a.read(&crate::step::CheckOutput {
        lines: out.lines().map(String::from).collect(),
    })
}

fn specs(p: &dyn Fn(&str) -> String) -> Vec<(&'static str, serde_json::Value)> {
    let file = |n: &str, c: &str| json!({"path": p(n), "content": c, "mode": "0644"});
    let props = p("a.properties");
    let download = |n: &str, c: &str| download_spec(p, n, c);
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
        // One awk pass for every line step's file: exact, other matches, missing, not a
        // regular file, through a link, a value that is shell, the same file twice.
        (
            "line",
            json!({"path": p("lines"), "line": "b=2", "regexp": "^b="}),
        ),
        (
            "line",
            json!({"path": p("lines"), "regexp": "^[ab]=", "state": "absent"}),
        ),
        ("line", json!({"path": p("lines"), "line": "c=3"})),
        ("line", json!({"path": p("nolines"), "line": "x"})),
        (
            "line",
            json!({"path": p("dir"), "line": "x", "regexp": "x"}),
        ),
        ("line", json!({"path": p("link"), "line": "hello"})),
        (
            "line",
            json!({"path": p("empty"), "line": "x", "regexp": "."}),
        ),
        (
            "line",
            json!({"path": p("it's spaced"), "line": "$(touch PWNED) 'x'", "regexp": "^h.*o$"}),
        ),
        // Downloads share the stat and the hash: right, wrong, missing, a directory, links.
        ("download", download("same", "hello\n")),
        ("download", download("differs", "hello\n")),
        ("download", download("missing", "x")),
        ("download", download("dir", "x")),
        ("download", download("link", "hello\n")),
        ("download", download("dirlink", "x")),
        ("download", download("dangling", "x")),
    ]
}

fn download_spec(p: &dyn Fn(&str) -> String, name: &str, content: &str) -> serde_json::Value {
    json!({"url": "http://x/y", "dest": p(name), "sha256": crate::script::sha256_hex(content.as_bytes()), "mode": "0644"})
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
        ("lines", "a=1\nb=1\nb=2\n#b=3\nb=4\n"),
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
    assert_eq!(script.matches("ENVIRON[\"__rlF\" k]").count(), 1);
    assert!(!std::path::Path::new("PWNED").exists());
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

/// Stubs of `systemctl`, `dpkg-query` and `apt-cache` that answer as the real ones do (one
/// line per unit, `is-enabled` stopping at a unit it cannot find, a name it cannot read
/// failing the whole call; dpkg's own order), and log every call.
fn stubs(d: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = d.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = d.join("calls");
    let systemctl = r#"verb=$1; shift; [ "$1" != -- ] || shift
for u in "$@"; do case $u in *"'"*) exit 1;; esac; done
for u in "$@"; do
  case $verb.$u in
    is-enabled.a|is-enabled.a.service) echo enabled;; is-active.a|is-active.a.service) echo active;;
    is-enabled.b) echo disabled;; is-active.b) echo inactive;;
    is-enabled.c.service) echo static;; is-active.c.service) echo failed;;
    is-enabled.*) echo "Failed to get unit file state for $u" >&2; exit 1;;
    *) echo inactive;;
  esac
done"#;
    let dpkg = r#"for p in coturn nginx zlib; do for a in "$@"; do [ "$a" != "$p" ] || case $p in
  coturn) echo "package coturn ii  1.0";; nginx) echo "package nginx rc  2.0";; zlib) echo "package zlib ii  3";; esac; done; done"#;
    let apt_cache =
        r#"shift; for p in "$@"; do printf '%s:\n  Installed: 3\n  Candidate: 4\n' "$p"; done"#;
    for (name, body) in [
        ("systemctl", systemctl),
        ("dpkg-query", dpkg),
        ("apt-cache", apt_cache),
    ] {
        let f = bin.join(name);
        std::fs::write(
            &f,
            format!("#!/bin/sh\necho {name} >> '{}'\n{body}\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// Units, packages and ports: gathered once for all steps, and fact for fact what each
/// step's own check finds (stubs for systemd and dpkg, real ports); with units that all
/// answer, the script asks `systemctl` twice in all, and once per unit each when one does not.
#[test]
fn units_packages_and_ports_gathered_equal_own_checks() {
    let d = std::env::temp_dir().join(format!("rollout-check-units-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let bin = stubs(&d);
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let unit = |n: &str| json!({"name": n, "enabled": true, "state": "started"});
    let common = vec![
        ("service", unit("a")),
        ("service", unit("b")),
        (
            "service",
            json!({"name": "c.service", "enabled": false, "state": "stopped"}),
        ),
        ("service", unit("a")),
        ("apt", json!({"name": ["nginx", "coturn"]})),
        ("apt", json!({"name": "zlib=3 coturn", "state": "latest"})),
        ("apt", json!({"name": ["gone"], "state": "absent"})),
        ("wait_for", json!({"port": port})),
        ("wait_for", json!({"port": closed, "host": "127.0.0.1"})),
        ("wait_for", json!({"port": port, "host": "127.0.0.1"})),
    ];
    let secrets = Secrets::default();
    let cx = Context {
        secrets: &secrets,
        host: "h",
    };
    for (extra, systemctl_calls) in [(vec![], 2), (vec![unit("nope"), unit("it's")], 2 + 2 * 5)] {
        let mut specs = common.clone();
        specs.extend(extra.into_iter().map(|u| ("service", u)));
        let actions: Vec<Action> = specs.into_iter().map(|(k, a)| action(k, a)).collect();
        let refs: Vec<&Action> = actions.iter().collect();
        let nonce = Nonce::new();
        let script = script(&refs, &nonce);
        let _ = std::fs::remove_file(d.join("calls"));
        let out = sh_path(&script, Some(&bin));
        let calls = std::fs::read_to_string(d.join("calls")).unwrap();
        assert_eq!(calls.matches("systemctl").count(), systemctl_calls, "{out}");
        assert_eq!(calls.matches("dpkg-query").count(), 1);
        assert_eq!(calls.matches("apt-cache").count(), 1);
        assert_eq!(script.matches("timeout 3 bash").count(), 1);
        let gathered = parse(&refs, &out, &nonce).unwrap();
        for (i, a) in actions.iter().enumerate() {
            let own = own_facts_path(a, Some(&bin));
            assert_eq!(gathered[i], own, "step {i}: {a:?}\n{out}");
            assert_eq!(a.evaluate(&gathered[i], &cx), a.evaluate(&own, &cx));
        }
    }
    drop(open);
    std::fs::remove_dir_all(&d).unwrap();
}
