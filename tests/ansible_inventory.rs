//! `rollout inventory` against ansible-core's own reading: every case of
//! tests/fixtures/ansible-inventories (a copy of the shared corpus; each case holds the
//! inventory, `expected-list.json` from `ansible-inventory --list` and `expected-graph.txt`
//! from `--graph`, ansible-core 2.19.14) is read by the built binary, and its `--list` must
//! equal the oracle's (groups' hosts and children in order, every host's merged variables;
//! a `<redacted>` value stands for whatever the oracle shows, and the oracle's
//! `{"__ansible_vault": ...}` must be `<redacted>`), its `--graph` the oracle's text. Also: the
//! decrypted vault values never show, and a missing or wrong vault password is exit 2 naming
//! the file.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REDACTED: &str = "<redacted>";

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ansible-inventories")
}

/// The cases and the inventory each names on its `inventory:` line of SOURCE.txt.
fn cases() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(corpus()).expect("corpus") {
        let dir = e.expect("entry").path();
        let Ok(source) = std::fs::read_to_string(dir.join("SOURCE.txt")) else {
            continue;
        };
        let inv = source
            .lines()
            .find_map(|l| l.strip_prefix("inventory:"))
            .expect("inventory: line")
            .trim()
            .to_string();
        out.push((dir, inv));
    }
    out.sort();
    assert!(out.len() >= 12, "corpus has {} cases", out.len());
    out
}

fn rollout(dir: &Path, args: &[&str], password: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rollout"));
    c.current_dir(dir).arg("inventory").args(args);
    c.env_remove("ANSIBLE_VAULT_PASSWORD_FILE");
    if let Some(p) = password {
        c.env("ANSIBLE_VAULT_PASSWORD_FILE", p);
    }
    c.output().expect("rollout runs")
}

/// Does rollout's value `got` match the oracle's `want`?
fn same(want: &Value, got: &Value) -> bool {
    if got == REDACTED {
        return true;
    }
    match (want, got) {
        (Value::Object(w), _) if w.contains_key("__ansible_vault") => false,
        (Value::Object(w), Value::Object(g)) => {
            w.len() == g.len() && w.iter().all(|(k, v)| g.get(k).is_some_and(|x| same(v, x)))
        }
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(a, b)| same(a, b))
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => want == got,
    }
}

#[test]
fn list_and_graph_match_ansible_inventory() {
    let password = corpus().join("vault-pass.txt");
    let mut failures = Vec::new();
    for (dir, inv) in cases() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let out = rollout(&dir, &["-i", &inv, "--list"], Some(&password));
        if !out.status.success() {
            failures.push(format!(
                "{name}: --list exit {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
            continue;
        }
        let got: Value = serde_json::from_slice(&out.stdout).expect("--list prints JSON");
        let want: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expected-list.json")).unwrap())
                .unwrap();
        if !same(&want, &got) {
            failures.push(format!(
                "{name}: --list differs:\nwant {want:#}\ngot  {got:#}"
            ));
        }
        let out = rollout(&dir, &["-i", &inv, "--graph"], Some(&password));
        let want = std::fs::read_to_string(dir.join("expected-graph.txt")).unwrap();
        if String::from_utf8_lossy(&out.stdout) != want {
            failures.push(format!(
                "{name}: --graph differs:\nwant\n{want}got\n{}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn vault_values_never_show_and_need_the_right_password() {
    let case = corpus().join("04-virtuos-bbb-vaultfile-yaml");
    let password = corpus().join("vault-pass.txt");
    let out = rollout(
        &case,
        &["-i", "hosts.yml", "--host", "bbb-test.example.org"],
        Some(&password),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("\"vault_bigbluebutton\": \"<redacted>\""),
        "{text}"
    );
    assert!(!text.contains("placeholder-bbb-api-secret"), "{text}");

    let out = rollout(&case, &["-i", "hosts.yml", "--list"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("group_vars/all/vault.yml") && err.contains("no vault password"),
        "{err}"
    );

    let wrong = std::env::temp_dir().join(format!("rollout-wrong-pass-{}", std::process::id()));
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let out = rollout(
        &case,
        &[
            "-i",
            "hosts.yml",
            "--list",
            "--vault-password-file",
            wrong.to_str().unwrap(),
        ],
        None,
    );
    std::fs::remove_file(&wrong).unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("vault.yml") && err.contains("wrong vault password"),
        "{err}"
    );
}

#[test]
fn a_password_file_that_cannot_be_read_matters_only_to_a_vault() {
    // From the environment (a shell may set it for every project), as here.
    let gone = std::env::temp_dir().join(format!("rollout-no-pass-{}", std::process::id()));
    // No vault in this inventory: the missing file does not matter.
    let case = corpus().join("17-group-priority-same-depth-ini");
    let out = rollout(&case, &["-i", "hosts.ini", "--list"], Some(&gone));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Given on the command line, it is refused at start, as ansible-core refuses it.
    let out = rollout(
        &case,
        &[
            "-i",
            "hosts.ini",
            "--list",
            "--vault-password-file",
            gone.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--vault-password-file") && err.contains("was not found"),
        "{err}"
    );
    // A vault-encrypted file needs it: exit 2 naming both files.
    let case = corpus().join("04-virtuos-bbb-vaultfile-yaml");
    let out = rollout(&case, &["-i", "hosts.yml", "--list"], Some(&gone));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("group_vars/all/vault.yml")
            && err.contains("vault password file")
            && err.contains("cannot be read")
            && err.contains(gone.to_str().unwrap()),
        "{err}"
    );
}

#[test]
fn inline_vault_values_are_redacted_without_a_password() {
    let case = corpus().join("19-docs-network-inventory-vault-yaml");
    let out = rollout(&case, &["-i", "inventory.yml", "--host", "leaf01"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ansible_password"], REDACTED);
    assert_eq!(v["ansible_user"], "my_vyos_user");
}

#[test]
fn several_sources_and_folders_merge_in_order() {
    let dir = std::env::temp_dir().join(format!("rollout-ansinv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("inv/group_vars/web")).unwrap();
    std::fs::create_dir_all(dir.join("inv/host_vars")).unwrap();
    std::fs::write(
        dir.join("inv/10-hosts.ini"),
        "[web]\nw[1:2] x=1\n[web:vars]\nlevel=inventory\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("inv/20-more.yml"),
        "db:\n  hosts:\n    d1:\n  vars:\n    {level: db}\n",
    )
    .unwrap();
    std::fs::write(dir.join("inv/README.md"), "# not an inventory\n").unwrap();
    std::fs::write(
        dir.join("inv/group_vars/web/a.yml"),
        "level: group_vars\nlist: [1]\n",
    )
    .unwrap();
    std::fs::write(dir.join("inv/group_vars/web/b"), "list: [2]\n").unwrap();
    std::fs::write(dir.join("inv/host_vars/w2.yml"), "level: host_vars\n").unwrap();
    std::fs::write(dir.join("extra.ini"), "[web]\nw3\n").unwrap();
    let out = rollout(&dir, &["-i", "inv", "-i", "extra.ini", "--list"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["web"]["hosts"], serde_json::json!(["w1", "w2", "w3"]));
    let hv = &v["_meta"]["hostvars"];
    assert_eq!(
        hv["w1"],
        serde_json::json!({"x": 1, "level": "group_vars", "list": [2]})
    );
    assert_eq!(hv["w2"]["level"], "host_vars");
    assert_eq!(hv["w3"]["level"], "group_vars");
    assert_eq!(hv["d1"]["level"], "db");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_located_exit_2() {
    let dir = std::env::temp_dir().join(format!("rollout-ansinv-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text, want) in [
        (
            "a.ini",
            "[g]\nweb[01:5]\n",
            "a.ini:2:1: host range must specify equal-length begin and end formats",
        ),
        (
            "b.ini",
            "[g]\nh x\n",
            "b.ini:2:3: expected key=value host variable assignment, got: x",
        ),
        (
            "c.ini",
            "[a:children]\nb\n",
            "c.ini:2:1: section [a:children] includes undefined group `b`",
        ),
        (
            "d.yml",
            "g:\n  hosts:\n    h: !secret x\n",
            "d.yml:3:8: unsupported YAML tag `!secret`",
        ),
        (
            "e.yml",
            "g:\n  children:\n    g:\n",
            "e.yml:3:5: can't add group `g` to itself",
        ),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
        let out = rollout(&dir, &["-i", file, "--list"], None);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{file}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
