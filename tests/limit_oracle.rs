//! `--limit` against the oracle: every pattern of [`PATTERNS`] is evaluated by rollout
//! (`inventory::select` over `tests/fixtures/limit/rollout.yml`, whose hosts come from
//! `hosts.ini`) and by ansible-core 2.19.14 over the same `hosts.ini` exactly as
//! `ansible all -i hosts.ini --limit PATTERN` does (`InventoryManager.subset(PATTERN)`, then
//! `list_hosts('all')`), and the hosts chosen must be the same, in the same order. The oracle
//! runs with `ANSIBLE_HOST_PATTERN_MISMATCH=error`, ansible-core's setting for what rollout
//! always does: a pattern that matches no host or group is an error, not a warning. Where
//! ansible-core fails, or chooses no host, rollout must refuse (exit 2 before anything runs).
//!
//! The Python with ansible-core is `ROLLOUT_ORACLE_PYTHON`, as for `tests/jinja_oracle.rs`
//! (`.ci/run` sets it); without it at build time the test is *ignored* with that reason, and
//! run anyway (`--include-ignored`) it fails saying so.

mod common;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The patterns compared, `@LIMITFILE` standing for the path of a retry-style file the test
/// writes (see [`LIMIT_FILE`]).
const PATTERNS: &[&str] = &[
    "all",
    "*",
    "web",
    "web*",
    "*.example.org",
    "bbb0[12].example.org",
    "bbb?[!3].example.org",
    "[bt]*",
    "bbb,turn",
    "bbb:turn",
    "bbb, turn1 ,,db1",
    "web:&frontend",
    "pool:&bbb_edu",
    "pool:!bbb",
    "pool,!bbb_edu",
    "pool:!bbb_edu:&bbb",
    "!bbb:&pool:web",
    "&bbb",
    "!pool",
    "~bbb0[13]",
    "~web",
    "~.*example",
    "~(db|turn)1$",
    "~.*1\\.example",
    "~example",
    "bbb[0]",
    "bbb[-1]",
    "bbb[1:2]",
    "bbb[2:]",
    "bbb[1-2]",
    "bbb[2:0]",
    "bbb[4:],web1.example.org",
    "web_staging[1:],db1",
    "bbb_edu[0]",
    "frontend[0:3]",
    "pool[-2]",
    "web*[0]",
    "bbb0*[0:1]",
    "*example*[5:7]",
    "*[0]",
    "ungrouped",
    "ungr*",
    "al*",
    "10.0.0.5",
    "fe80::1",
    "fe80::1,db1",
    "web1.example.org:!web",
    "lonely*:db",
    "@LIMITFILE",
    "@LIMITFILE,!bbb01.example.org",
    // Ansible chooses no host for these; rollout refuses them.
    "nosuchhost",
    "10.0.0.5:2222",
    "bbb[7]",
    "web:&db",
    "web:&bbb,db",
];

/// The retry-style file `@LIMITFILE` names: one pattern a line, each line whole.
const LIMIT_FILE: &str = "bbb01.example.org\n  turn1  \n\nbbb_edu\n!bbb02.example.org\n";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/limit")
}

/// ansible-core's `InventoryManager`, as the `ansible` command uses it for `--limit`: one
/// JSON line per pattern, `{"ok": [hosts]}` or `{"err": message}`.
const ORACLE: &str = r#"
import json, sys
from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader

req = json.load(sys.stdin)
inv = InventoryManager(loader=DataLoader(), sources=[req["inventory"]])
for pattern in req["patterns"]:
    inv.clear_caches()
    inv.clear_pattern_cache()
    try:
        inv.subset(pattern)
        print(json.dumps({"ok": [h.name for h in inv.list_hosts("all")]}))
    except AnsibleError as e:
        print(json.dumps({"err": str(e)}))
"#;

fn oracle(inventory: &Path, patterns: &[String]) -> Vec<Result<Vec<String>, String>> {
    // ansible-core's own switch for what rollout always does: a pattern that matches
    // nothing is an error, not a warning.
    let lines: Vec<_> = common::ansible_oracle(
        "--limit",
        ORACLE,
        &[("ANSIBLE_HOST_PATTERN_MISMATCH", "error")],
        &serde_json::json!({"inventory": inventory, "patterns": patterns}),
    )
    .into_iter()
    .map(|r| r.map(|ok| serde_json::from_value(ok).unwrap()))
    .collect();
    assert_eq!(lines.len(), patterns.len(), "one oracle line per pattern");
    lines
}

#[test]
#[cfg_attr(
    not(jinja_oracle),
    ignore = "needs ansible-core 2.19: build with ROLLOUT_ORACLE_PYTHON=<venv>/bin/python (.ci/run makes it in bench/.venv)"
)]
fn limit_selects_what_ansible_core_selects() {
    assert!(PATTERNS.len() >= 30, "{} patterns", PATTERNS.len());
    let dir = tempdir();
    let limit_file = dir.join("retry");
    std::fs::write(&limit_file, LIMIT_FILE).unwrap();
    let patterns: Vec<String> = PATTERNS
        .iter()
        .map(|p| p.replace("LIMITFILE", limit_file.to_str().unwrap()))
        .collect();
    let want = oracle(&fixture().join("hosts.ini"), &patterns);
    let inv = rollout::inventory::load(&fixture().join("rollout.yml"), &Default::default())
        .unwrap_or_else(|d| panic!("{d}"));
    let mut failures = Vec::new();
    for (pattern, want) in patterns.iter().zip(want) {
        let got = rollout::inventory::select(&inv, Some(pattern))
            .map(|hosts| hosts.iter().map(|h| h.name.clone()).collect::<Vec<_>>());
        match (&want, &got) {
            (Ok(w), Ok(g)) if w == g => {}
            (Ok(w), Err(e)) if w.is_empty() && e.contains("--limit") => {}
            (Err(_), Err(e)) if e.contains("--limit") => {}
            _ => failures.push(format!(
                "--limit {pattern:?}:\n  ansible-core {want:?}\n  rollout      {got:?}"
            )),
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `rollout inventory --limit PATTERN --list` prints what `ansible-inventory --limit PATTERN
/// --list` prints: groups list only the chosen hosts (a group left empty is left out), and
/// only their variables are shown.
#[test]
#[cfg_attr(
    not(jinja_oracle),
    ignore = "needs ansible-core 2.19: build with ROLLOUT_ORACLE_PYTHON=<venv>/bin/python (.ci/run makes it in bench/.venv)"
)]
fn inventory_list_with_limit_is_ansible_inventorys() {
    let Some(python) = option_env!("ROLLOUT_ORACLE_PYTHON") else {
        panic!("the --limit oracle needs ansible-core 2.19: build with ROLLOUT_ORACLE_PYTHON");
    };
    let ansible_inventory = Path::new(python).with_file_name("ansible-inventory");
    let mut failures = Vec::new();
    for pattern in [
        "bbb_edu",
        "pool:!bbb:&frontend",
        "web*[0],db1",
        "~(db|turn)1$",
    ] {
        let run = |program: &Path, first: &[&str]| {
            let out = Command::new(program)
                .current_dir(fixture())
                .args(first)
                .args(["-i", "hosts.ini", "--limit", pattern, "--list"])
                .env("ANSIBLE_HOST_PATTERN_MISMATCH", "error")
                .output()
                .unwrap_or_else(|e| panic!("{} does not run: {e}", program.display()));
            assert!(
                out.status.success(),
                "{} --limit {pattern}: {}",
                program.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        };
        let want = run(&ansible_inventory, &[]);
        let got = run(Path::new(env!("CARGO_BIN_EXE_rollout")), &["inventory"]);
        if want != got {
            failures.push(format!("--limit {pattern:?}:\nwant {want:#}\ngot  {got:#}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A fresh folder under the system's temporary folder.
fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollout-limit-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Without the oracle too: a limit file that does not exist is an error naming it, and a
/// pattern matching nothing names the pattern and offers the nearest host, not a group.
#[test]
fn missing_limit_file_and_typos_are_named() {
    let inv = rollout::inventory::load(&fixture().join("rollout.yml"), &Default::default())
        .unwrap_or_else(|d| panic!("{d}"));
    let e = rollout::inventory::select(&inv, Some("@/nonexistent/retry")).unwrap_err();
    assert!(e.contains("`/nonexistent/retry`"), "{e}");
    let e = rollout::inventory::select(&inv, Some("bbb,turn2")).unwrap_err();
    assert!(
        e.contains("`turn2` matches no host or group") && e.contains("did you mean `turn1`?"),
        "{e}"
    );
    let e = rollout::inventory::select(&inv, Some("web*:!bbb:&nosuch*")).unwrap_err();
    assert!(e.contains("`nosuch*` matches no host or group"), "{e}");
}
