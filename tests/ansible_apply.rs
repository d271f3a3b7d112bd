//! `plan`/`apply` on an Ansible inventory (issue 7): a rollout file names an INI inventory
//! with `group_vars/` (a folder, a `!vault` value, a vault-encrypted file) and `host_vars/`
//! (tests/fixtures/ansible_apply). The hosts get the variables ansible-core would give them
//! and connect as the connection variables say; vault values are used on the host and never
//! shown; bad input is a located error, exit 2, with no host contacted. Runs on the
//! recording fake and, for the ssh arguments, the real binary with an `ssh` stand-in on PATH
//! that only records its arguments.

use rollout::app::{self, Options};
use rollout::connection::ConnError;
use rollout::connection::fake::FakeConnector;
use rollout::exec::{self, Goal};
use rollout::report::{Event, Format, Settings, plain_line};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// The plaintext of the `!vault` value in `group_vars/bbb/main.yml`.
const INLINE_SECRET: &str = "vault-bbb-secret-3f9a1c";
/// The plaintext of `vault_turn_secret` in the vault-encrypted `group_vars/bbb/vault.yml`.
const FILE_SECRET: &str = "vaultfile-turn-secret-77b2";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ansible_apply")
}

fn options(pool: &Path, password: Option<&str>) -> Options {
    Options {
        inventory: pool.to_path_buf(),
        ansible_inventory: vec![],
        vault_password_file: password.map(|p| fixture().join(p)),
        become_password: None,
        vault_ids: vec![],
        limit: None,
        tags: vec![],
        skip_tags: vec![],
        forks: 2,
        extra_vars: vec![],
        output: Format::Plain,
        verbose: true,
        accept_new_host_keys: false,
        lock_wait: None,
    }
}

/// Every event as plain text (with `-v` and diffs) and as JSON.
fn printed(events: &[Event]) -> String {
    let mut settings = Settings::new(Format::Plain, true, 2, "t");
    settings.show_diff = true;
    let mut out = String::new();
    for e in events {
        if let Some(l) = plain_line(e, &settings) {
            out.push_str(&l);
            out.push('\n');
        }
        out.push_str(&serde_json::to_string(e).unwrap());
        out.push('\n');
    }
    out
}

/// A host where nothing exists yet; every applied item succeeds.
fn blank(_h: &str, script: &str) -> Result<String, ConnError> {
    let m = script
        .split(['\'', '"', ' ', '\n'])
        .find(|w| w.starts_with("@@rollout-"))
        .expect("marker")
        .to_string();
    let mut out = String::new();
    if script.contains("__rl_end") {
        for i in 0..script.matches(&format!("\necho '{m} b ")).count() {
            out.push_str(&format!("{m} b {i}\n{m} e {i} 0\n"));
        }
        return Ok(out);
    }
    for w in script.split(&format!("echo '{m} ")).skip(1) {
        let mut f = w.split(['\'', ' ']);
        match (f.next(), f.next()) {
            (Some("b"), Some(i)) => out.push_str(&format!("{m} b {i}\nA\n{m} e {i} 0\n")),
            (Some(tag @ ("P" | "L")), Some(j)) => out.push_str(&format!("{m} {tag} {j}\n")),
            // The line pass, packages, units and ports: empty sections.
            (Some(tag @ ("l" | "k" | "a" | "u" | "v" | "w")), _) => {
                out.push_str(&format!("{m} {tag}\n"))
            }
            _ => {}
        }
    }
    out.push_str(&format!("{m} z\n"));
    Ok(out)
}

/// Runs `goal` on the fake; what was printed, and the fake (with every script it received).
async fn run(o: &Options, goal: Goal) -> (String, FakeConnector) {
    let prepared = app::load(o, &serde_json::Map::new()).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let opts = Arc::new(exec::Options {
        goal,
        forks: 2,
        verbose: true,
        secrets: prepared.inventory.secrets.clone(),
        guard: None,
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let fake = FakeConnector::new(blank);
    let results = exec::run(prepared.plans, Arc::new(fake.clone()), opts, tx).await;
    let mut events = vec![];
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let mut text = printed(&events);
    text.push_str(&serde_json::to_string(&results).unwrap());
    text.push_str(&rollout::report::summary(&results));
    (text, fake)
}

#[test]
fn hosts_connect_as_the_connection_variables_say() {
    let o = options(&fixture().join("pool.yml"), Some("vault-pass.txt"));
    let p = app::load(&o, &serde_json::Map::new()).unwrap_or_else(|e| panic!("{e:?}"));
    let hosts: Vec<_> = p
        .plans
        .iter()
        .map(|pl| {
            let h = &pl.host;
            (
                h.name.as_str(),
                h.address.as_str(),
                h.port,
                h.user.as_deref(),
                h.become_root,
                h.roles.clone(),
                h.groups.clone(),
            )
        })
        .collect();
    let groups = vec!["all".to_string(), "bbb".to_string()];
    assert_eq!(
        hosts,
        [
            (
                "bbb01.pool.example",
                "192.0.2.11",
                Some(2222),
                Some("deploy"),
                true,
                vec!["app".to_string()],
                groups.clone()
            ),
            (
                "bbb02.pool.example",
                "bbb02.pool.example",
                Some(2222),
                Some("deploy"),
                true,
                vec!["app".to_string()],
                groups
            ),
        ]
    );
}

#[tokio::test]
async fn plan_shows_group_and_host_vars_and_never_a_vault_value() {
    let o = options(&fixture().join("pool.yml"), Some("vault-pass.txt"));
    let (text, _) = run(&o, Goal::Plan).await;
    // host_vars/bbb01 beats group_vars/bbb, which beats the INI file's [bbb:vars].
    assert!(text.contains("+title=Pool 1"), "{text}");
    assert!(text.contains("+title=Pool from group_vars"), "{text}");
    assert!(!text.contains("From the INI file"), "{text}");
    // [bbb:vars] and group_vars/all.
    assert!(text.contains("+port=8090"), "{text}");
    assert!(text.contains("+motd=managed by rollout"), "{text}");
    assert!(text.contains("content depends on a secret"), "{text}");
    for s in [INLINE_SECRET, FILE_SECRET] {
        assert!(!text.contains(s), "`{s}` shown in:\n{text}");
    }
}

#[tokio::test]
async fn apply_sends_the_decrypted_values_to_the_host_only() {
    let o = options(&fixture().join("pool.yml"), Some("vault-pass.txt"));
    let (text, fake) = run(&o, Goal::Apply).await;
    for s in [INLINE_SECRET, FILE_SECRET] {
        assert!(!text.contains(s), "`{s}` shown in:\n{text}");
    }
    // File content travels base64-encoded (in lines of 76) on the SSH channel's stdin.
    use base64::Engine;
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let scripts = fake
        .scripts("bbb02.pool.example")
        .concat()
        .replace('\n', "");
    assert!(
        scripts.contains(&b64(format!("secret={INLINE_SECRET}\n"))),
        "the `!vault` value reaches the host decrypted"
    );
    assert!(
        scripts.contains(&b64(format!("turn={FILE_SECRET}\n"))),
        "a variable of a vault-encrypted file, through a template, reaches the host"
    );
}

fn rollout(args: &[&str], path_dir: Option<&Path>) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rollout"));
    c.args(args).env_remove("ANSIBLE_VAULT_PASSWORD_FILE");
    if let Some(d) = path_dir {
        let path = std::env::var("PATH").unwrap_or_default();
        c.env("PATH", format!("{}:{path}", d.display()));
    }
    let out = c.output().expect("rollout runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A scratch copy of the fixture, for a test that changes it.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollout-ansapply-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy(&fixture(), &dir);
    dir
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn ssh_is_called_with_ansible_host_port_and_user() {
    let dir = scratch("ssh");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("ssh-args.log");
    let ssh = bin.join("ssh");
    std::fs::write(
        &ssh,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\necho 'ssh: connect to host: Connection refused' >&2\nexit 255\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pool = dir.join("pool.yml");
    let pass = dir.join("vault-pass.txt");
    let (code, stdout, stderr) = rollout(
        &[
            "plan",
            pool.to_str().unwrap(),
            "--vault-password-file",
            pass.to_str().unwrap(),
            "-o",
            "plain",
        ],
        Some(&bin),
    );
    assert_eq!(code, 1, "both hosts unreachable: {stdout}{stderr}");
    let mut calls: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            // The control socket's folder is random: keep what says where and as whom.
            let w: Vec<&str> = l.split(' ').collect();
            w[w.len() - 5..].join(" ")
        })
        .collect();
    calls.sort();
    assert_eq!(
        calls,
        [
            "-p 2222 -l deploy 192.0.2.11",
            "-p 2222 -l deploy bbb02.pool.example"
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dash_i_replaces_the_files_inventory_and_may_be_repeated() {
    let dir = scratch("dash-i");
    std::fs::write(
        dir.join("other.ini"),
        "[bbb]\nbbb09.pool.example ansible_user=ops\n\n[bbb:vars]\nbbb_client_title=t\nbbb_web_port=1\nmotd=m\nbbb_secret=s\nturn_secret=t\n",
    )
    .unwrap();
    let mut o = options(&dir.join("pool.yml"), None);
    o.ansible_inventory = vec![dir.join("other.ini")];
    let p = app::load(&o, &serde_json::Map::new()).unwrap_or_else(|e| panic!("{e:?}"));
    let names: Vec<_> = p
        .plans
        .iter()
        .map(|pl| (pl.host.name.as_str(), pl.host.user.as_deref()))
        .collect();
    assert_eq!(names, [("bbb09.pool.example", Some("ops"))]);
    // Several -i, a folder among them (its group_vars/ and host_vars/ inside it), in order.
    o.ansible_inventory = vec![dir.join("inventory"), dir.join("other.ini")];
    o.vault_password_file = Some(dir.join("vault-pass.txt"));
    let p = app::load(&o, &serde_json::Map::new()).unwrap_or_else(|e| panic!("{e:?}"));
    let hosts: Vec<_> = p
        .plans
        .iter()
        .map(|pl| {
            (
                pl.host.name.as_str(),
                pl.host.address.as_str(),
                pl.host.user.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        hosts,
        [
            ("bbb01.pool.example", "192.0.2.11", Some("deploy")),
            ("bbb02.pool.example", "bbb02.pool.example", Some("deploy")),
            ("bbb09.pool.example", "bbb09.pool.example", Some("ops")),
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rollout plan POOL EXTRA...` exits 2, prints nothing on stdout, and stderr holds `want`.
fn refused(pool: &Path, extra: &[&str], want: &[&str]) -> String {
    let mut args = vec!["plan", pool.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = rollout(&args, None);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stdout, "");
    for w in want {
        assert!(stderr.contains(w), "`{w}` not in:\n{stderr}");
    }
    for s in [INLINE_SECRET, FILE_SECRET] {
        assert!(!stderr.contains(s), "`{s}` shown in:\n{stderr}");
    }
    stderr
}

#[test]
fn a_missing_or_wrong_vault_password_is_a_located_error() {
    let pool = fixture().join("pool.yml");
    refused(
        &pool,
        &[],
        &["group_vars/bbb/vault.yml: this file is vault-encrypted and no vault password was given"],
    );
    let wrong = fixture().join("wrong-pass.txt");
    refused(
        &pool,
        &["--vault-password-file", wrong.to_str().unwrap()],
        &["group_vars/bbb/vault.yml: cannot decrypt: wrong vault password"],
    );
    // Without the encrypted file, the inline `!vault` value is the first to need it: the
    // error names its file, line and column.
    let dir = scratch("inline");
    std::fs::remove_file(dir.join("inventory/group_vars/bbb/vault.yml")).unwrap();
    let pool = dir.join("pool.yml");
    refused(
        &pool,
        &[],
        &[
            "group_vars/bbb/main.yml:3:13: variable `bbb_secret`: this `!vault` value is encrypted and no vault password was given",
            "= hint: pass --vault-id [LABEL@]SOURCE, --vault-password-file FILE or --ask-vault-pass",
        ],
    );
    let wrong = dir.join("wrong-pass.txt");
    refused(
        &pool,
        &["--vault-password-file", wrong.to_str().unwrap()],
        &[
            "group_vars/bbb/main.yml:3:13: variable `bbb_secret`: cannot decrypt this `!vault` value: wrong vault password",
        ],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_values_and_names_are_located_errors() {
    let dir = scratch("bad");
    let pool = dir.join("pool.yml");
    let pass = dir.join("vault-pass.txt");
    let pass = pass.to_str().unwrap();
    // A connection variable in host_vars/.
    std::fs::write(
        dir.join("inventory/host_vars/bbb01.pool.example.yml"),
        "bbb_client_title: x\nansible_port: eighty\n",
    )
    .unwrap();
    refused(
        &pool,
        &["--vault-password-file", pass],
        &[
            "host_vars/bbb01.pool.example.yml:2:1: ansible_port must be a port number (1-65535), not \"eighty\"",
        ],
    );
    // A variable in the INI file, and one rollout does not honour.
    std::fs::remove_file(dir.join("inventory/host_vars/bbb01.pool.example.yml")).unwrap();
    std::fs::write(
        dir.join("inventory/hosts.ini"),
        "[bbb]\nbbb01.pool.example\n\n[bbb:vars]\nansible_ssh_private_key_file=~/.ssh/pool\n",
    )
    .unwrap();
    refused(
        &pool,
        &["--vault-password-file", pass],
        &[
            "hosts.ini:5:1: host `bbb01.pool.example`: `ansible_ssh_private_key_file` changes how Ansible connects",
            "IdentityFile",
        ],
    );
    // A `roles:` key that is no group of the inventory.
    std::fs::write(
        &pool,
        "inventory: inventory/hosts.ini\nroles_path: roles\ntemplates_path: templates\nroles:\n  bbbb: [app]\n",
    )
    .unwrap();
    refused(
        &pool,
        &["--vault-password-file", pass],
        &[
            "pool.yml:5:3: roles: `bbbb` is neither a group nor a host of the Ansible inventory",
            "did you mean `bbb`?",
        ],
    );
    // Both `all:` and an Ansible inventory.
    std::fs::write(
        &pool,
        "inventory: inventory/hosts.ini\nall:\n  hosts:\n    h1: {}\n",
    )
    .unwrap();
    refused(
        &pool,
        &[],
        &["pool.yml:3:3: `all:` and an Ansible inventory"],
    );
    // An INI inventory given where the rollout file goes.
    let ini = dir.join("inventory/hosts.ini");
    refused(&ini, &[], &["looks like an Ansible INI inventory"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every case of the ansible-core corpus (tests/fixtures/ansible-inventories) through the
/// path `plan` and `apply` take: each host's variables must be the oracle's merged
/// variables (`ansible-inventory --list`, vaults decrypted), its groups the oracle's, and its
/// address, port, user and become those its connection variables give. A case whose
/// variables ask for what rollout does not do (a network device connection, a password
/// login, a key file outside `ssh_config:`) must be refused at the place it is written.
#[test]
fn every_corpus_inventory_gives_the_oracles_hosts_and_variables() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ansible-inventories");
    let tmp = std::env::temp_dir().join(format!("rollout-ansapply-corpus-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("SOURCE.txt").exists())
        .collect();
    cases.sort();
    let mut outcome = Vec::new();
    for dir in &cases {
        let source = std::fs::read_to_string(dir.join("SOURCE.txt")).unwrap();
        let inv = source
            .lines()
            .find_map(|l| l.strip_prefix("inventory:"))
            .unwrap()
            .trim()
            .to_string();
        let pool = tmp.join("pool.yml");
        std::fs::write(
            &pool,
            "roles: {}  # no roles: only the hosts are looked at\n",
        )
        .unwrap();
        let ansible = rollout::inventory::AnsibleSources {
            sources: vec![dir.join(&inv)],
            vault_password_file: Some(corpus.join("vault-pass.txt")),
            vault_ids: vec![],
        };
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let want_file = if dir.join("expected-list.decrypted.json").exists() {
            "expected-list.decrypted.json"
        } else {
            "expected-list.json"
        };
        let want: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(want_file)).unwrap()).unwrap();
        match rollout::inventory::load_with(&pool, &Default::default(), &ansible) {
            Ok(got) => {
                let hostvars = &want["_meta"]["hostvars"];
                let mut want_hosts: Vec<String> = Vec::new();
                collect_hosts(&want, "all", &mut want_hosts);
                // ansible-core's order below the first level depends on Python's set order:
                // the hosts are compared as sets.
                let mut got_hosts: Vec<String> = got.hosts.iter().map(|h| h.name.clone()).collect();
                got_hosts.sort();
                want_hosts.sort();
                assert_eq!(got_hosts, want_hosts, "{name}: hosts");
                for h in &got.hosts {
                    let empty = serde_json::json!({});
                    let w = hostvars.get(&h.name).unwrap_or(&empty);
                    assert_eq!(
                        serde_json::Value::Object(h.vars.clone()),
                        *w,
                        "{name}: variables of {}",
                        h.name
                    );
                    let s = |k: &str| {
                        w.get(k).map(|v| match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                    };
                    assert_eq!(
                        h.address,
                        s("ansible_host").unwrap_or(h.name.clone()),
                        "{name}"
                    );
                    assert_eq!(h.port.map(|p| p.to_string()), s("ansible_port"), "{name}");
                    assert_eq!(h.user, s("ansible_user"), "{name}");
                    for g in &h.groups {
                        assert!(
                            g == "all" || in_group(&want, g, &h.name),
                            "{name}: {} is not in {g} for ansible-core",
                            h.name
                        );
                    }
                }
                outcome.push(format!("{name}: {} hosts", got.hosts.len()));
            }
            Err(d) => {
                assert!(d.line > 0, "{name}: refusal not located: {d}");
                outcome.push(format!(
                    "{name}: refused at {}:{}: {}",
                    d.file.file_name().unwrap().to_string_lossy(),
                    d.line,
                    d.message
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let refused = "changes how Ansible connects, and rollout does not read it";
    assert_eq!(
        outcome,
        [
            "01-a13-bbb-fleet-ini: 38 hosts".to_string(),
            "03-ebbba-bbb-minimal-yaml: 3 hosts".into(),
            "04-virtuos-bbb-vaultfile-yaml: 1 hosts".into(),
            "06-scalelite-cluster-ports-ini: 12 hosts".into(),
            "07-bbb-greenlight-single-ini: 1 hosts".into(),
            format!("09-docs-inventory-guide-ini: refused at hosts:5: host `aws_host`: `ansible_ssh_private_key_file` {refused}"),
            "11-docs-inventory-guide-yaml: 60 hosts".into(),
            "12-ansible-test-complex-ini: 8 hosts".into(),
            format!("14-ansible-test-become-ini: refused at inventory.ini:4: host `testhost`: `ansible_become_user` {refused}"),
            "16-migrated-unit-test-content-ini: 9 hosts".into(),
            "17-group-priority-same-depth-ini: 2 hosts".into(),
            "19-docs-network-inventory-vault-yaml: refused at inventory.yml:19: ansible_connection `ansible.netcommon.network_cli` is not one rollout has: use `ssh` or `local`".into(),
        ]
    );
}

/// The hosts under `group` in the oracle's `--list`, each once.
fn collect_hosts(list: &serde_json::Value, group: &str, out: &mut Vec<String>) {
    let mut queue = vec![group.to_string()];
    let mut i = 0;
    while i < queue.len() {
        let g = &list[&queue[i]];
        for h in g["hosts"].as_array().into_iter().flatten() {
            let h = h.as_str().unwrap().to_string();
            if !out.contains(&h) {
                out.push(h);
            }
        }
        for c in g["children"].as_array().into_iter().flatten() {
            let c = c.as_str().unwrap().to_string();
            if !queue.contains(&c) {
                queue.push(c);
            }
        }
        i += 1;
    }
}

/// Is `host` in `group` or one of its descendants in the oracle's `--list`?
fn in_group(list: &serde_json::Value, group: &str, host: &str) -> bool {
    let mut hosts = Vec::new();
    collect_hosts(list, group, &mut hosts);
    hosts.iter().any(|h| h == host)
}

/// The pool commands' `balancer:` stays in the rollout file and works with an Ansible
/// inventory: its group is the Ansible inventory's group, its errors point into the rollout
/// file.
#[test]
fn the_balancer_section_works_with_an_ansible_inventory() {
    let dir = scratch("balancer");
    let pool = dir.join("pool.yml");
    let text = std::fs::read_to_string(&pool).unwrap();
    std::fs::write(
        &pool,
        format!("{text}balancer:\n  kind: scalelite\n  url: http://127.0.0.1:9/scalelite/api\n  secret: {{secret: \"file:lb-secret.txt\"}}\n  group: bbb\n"),
    )
    .unwrap();
    std::fs::write(dir.join("lb-secret.txt"), "lb-secret-5e1\n").unwrap();
    let ansible = rollout::inventory::AnsibleSources {
        sources: vec![],
        vault_password_file: Some(dir.join("vault-pass.txt")),
        vault_ids: vec![],
    };
    let inv = rollout::inventory::load_with(&pool, &Default::default(), &ansible)
        .unwrap_or_else(|d| panic!("{d}"));
    let cfg = rollout::balancer::config::load(&inv)
        .unwrap_or_else(|d| panic!("{d}"))
        .expect("a balancer");
    assert_eq!(
        (cfg.group.as_str(), cfg.secret.as_str()),
        ("bbb", "lb-secret-5e1")
    );
    assert_eq!(
        inv.groups["bbb"],
        ["bbb01.pool.example", "bbb02.pool.example"]
    );
    std::fs::write(
        &pool,
        format!("{text}balancer:\n  kind: scalelite\n  url: http://127.0.0.1:9/scalelite/api\n  secret: {{secret: \"file:lb-secret.txt\"}}\n  group: bbbb\n"),
    )
    .unwrap();
    let inv = rollout::inventory::load_with(&pool, &Default::default(), &ansible)
        .unwrap_or_else(|d| panic!("{d}"));
    let e = rollout::balancer::config::load(&inv)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pool.yml:13:3: balancer: group `bbbb` is not defined"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
