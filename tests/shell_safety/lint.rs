//! The generated check and apply scripts of a host with steps of every kind (adversarial
//! values included) pass `sh -n` and `shellcheck`, and so does `lab/lab` (checked, not run). Without shellcheck the test fails in CI
//! (`ROLLOUT_LAB_TESTS=1`) and says it skipped otherwise.

use super::sandbox::{NASTY, action, owner};
use rollout::inventory::{Connection, Host};
use rollout::plan::{self, HostPlan, Item, Planned};
use rollout::role::StepSpec;
use rollout::script::Nonce;
use rollout::step::{Action, KINDS};
use serde_json::json;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

/// Shellcheck codes left out for the generated scripts, each a deliberate choice:
/// - SC2016 (`$` in single quotes): values are single-quoted so that they do not expand, and
///   awk programs and inner-shell scripts (`bash -c '..."$1"'`) expand `$` themselves.
/// - SC1003 (`\` in single quotes), SC2089/SC2090 (quotes in a variable taken literally):
///   a value's quotes and backslashes are data and meant literally.
/// - SC2234 (`( test )`): a user-written `unless:` runs in a subshell of its own, so that it
///   cannot change the check script's state.
/// - SC2320 (`$?` after `echo`): the `$?` after a step's check section is the status of its
///   brace group, whose last command may well be an `echo`.
const EXCLUDED: &str = "SC1003,SC2016,SC2089,SC2090,SC2234,SC2320";

/// Steps of every kind, each with adversarial values where it takes values.
fn steps() -> Vec<Action> {
    let mut steps = Vec::new();
    for (i, v) in NASTY.iter().enumerate() {
        let p = format!("/tmp/rollout-lint/{i} {v}");
        steps.extend([
            action(
                "file",
                json!({"path": p, "content": v, "owner": owner(v), "group": owner(v), "mode": 640}),
            ),
            action("directory", json!({"path": format!("{p}.d"), "owner": owner(v)})),
            action(
                "property",
                json!({"path": p, "key": format!("k{}", v.replace('=', "")), "value": v}),
            ),
            action(
                "property",
                json!({"path": p, "key": "s", "value": v, "sensitive": true, "owner": owner(v), "group": owner(v), "mode": "0640"}),
            ),
            action(
                "line",
                json!({"path": format!("{p}.l"), "line": v, "regexp": "^a'\""}),
            ),
            action(
                "service",
                json!({"name": v, "enabled": true, "state": "started"}),
            ),
            action(
                "command",
                json!({"run": "true", "creates": p, "unless": "false", "chdir": format!("{p}.cd")}),
            ),
            action(
                "download",
                json!({"url": v, "dest": format!("{p}.dl"), "sha256": "0".repeat(64), "owner": owner(v)}),
            ),
            action("wait_for", json!({"port": 80, "host": v})),
            action("wait_for", json!({"url": v, "status": 204})),
        ]);
    }
    steps.push(action(
        "apt",
        json!({"name": ["g++", "a=1"], "state": "latest", "update_cache": true}),
    ));
    steps.push(action(
        "assert",
        json!({"that": "[ \"$(id -u)\" = 0 ]", "message": "root"}),
    ));
    let kinds: std::collections::BTreeSet<&str> = steps.iter().map(Action::kind).collect();
    assert_eq!(kinds.len(), KINDS.len(), "a step of every kind");
    steps
}

fn plan(steps: Vec<Action>) -> HostPlan {
    let planned = |(i, action): (usize, Action)| Planned {
        spec: Arc::new(StepSpec {
            role: "r".into(),
            name: format!("s{i}"),
            kind: action.kind().into(),
            args: json!({}),
            when: None,
            tags: vec![],
            notify: vec![],
            // Half the steps run under `timeout`, half inline.
            timeout: (i % 2 == 0).then_some(30),
            ends_meetings: false,
            stage: false,
            file: "steps.yml".into(),
            places: Default::default(),
        }),
        action,
        timeout: 30,
        depends_on_secret: false,
    };
    HostPlan {
        host: Host {
            name: "h1".into(),
            address: "h1".into(),
            port: None,
            user: None,
            connection: Connection::Local,
            become_root: false,
            groups: vec![],
            roles: vec![],
            vars: Default::default(),
        },
        steps: steps.into_iter().enumerate().map(planned).collect(),
        handlers: vec![],
        skipped: 0,
        owed: vec![],
        vars: Default::default(),
    }
}

/// Runs `prog args` with `script` on stdin; its output when it fails.
fn run(prog: &str, args: &[&str], script: &str) -> Result<(), String> {
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{prog}: {e}"))?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{prog} {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

/// Whether shellcheck is there; in CI its absence fails the test.
pub fn have_shellcheck() -> bool {
    if Command::new("shellcheck").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("ROLLOUT_LAB_TESTS").as_deref() != Ok("1"),
        "shellcheck is not installed (Debian package `shellcheck`); CI needs it"
    );
    eprintln!("SKIPPED: shellcheck is not installed (apt-get install shellcheck)");
    false
}

#[test]
fn generated_scripts_pass_sh_n_and_shellcheck() {
    let plan = plan(steps());
    let nonce = Nonce::new();
    let check = plan::check_script(&plan, &nonce);
    let items: Vec<Item> = (0..plan.steps.len()).map(Item::Step).collect();
    let apply = plan::apply_script(&plan, &items, &nonce);
    let fragments: String = plan.steps.iter().map(|s| s.action.apply()).collect();
    for (what, script) in [
        ("check", &check),
        ("apply", &apply),
        ("fragments", &fragments),
    ] {
        run("sh", &["-n"], script).unwrap_or_else(|e| panic!("{what} script: {e}"));
    }
    if !have_shellcheck() {
        return;
    }
    for (what, script) in [("check", &check), ("apply", &apply)] {
        run("shellcheck", &["-s", "dash", "-e", EXCLUDED, "-"], script)
            .unwrap_or_else(|e| panic!("{what} script: {e}"));
    }
}

#[test]
fn lab_script_passes_shellcheck() {
    if !have_shellcheck() {
        return;
    }
    let lab = std::fs::read_to_string("lab/lab").unwrap();
    run("shellcheck", &["-s", "bash", "-"], &lab).unwrap_or_else(|e| panic!("lab/lab: {e}"));
}
