//! The run options of `plan` and `apply` through the real binary on local hosts
//! (`connection: local`, no SSH): `--limit` (hosts, groups, `!name`), `--tags` and
//! `--skip-tags`, `--forks N`, `-e` as Ansible reads it with the highest precedence, the whole
//! variable precedence order, the summary table at the end of a run, and plain lines (not
//! progress bars) when stdout/stderr are no terminal but bars on one.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A throwaway project: an inventory (given), one role `app` with the given steps and
/// defaults, and an output folder the steps write into (variable `out`).
struct Project {
    dir: PathBuf,
}

impl Project {
    fn new(name: &str, inventory: &str, steps: &str, defaults: &str) -> Project {
        let dir =
            std::env::temp_dir().join(format!("rollout-runopts-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("roles/app")).unwrap();
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::create_dir_all(dir.join("out")).unwrap();
        let inventory = inventory.replace("OUT", dir.join("out").to_str().unwrap());
        std::fs::write(dir.join("inventory.yml"), inventory).unwrap();
        std::fs::write(dir.join("roles/app/steps.yml"), steps).unwrap();
        if !defaults.is_empty() {
            std::fs::write(dir.join("roles/app/defaults.yml"), defaults).unwrap();
        }
        Project { dir }
    }

    /// Runs `rollout SUB INVENTORY ARGS...`; (exit code, stdout, stderr).
    fn rollout(&self, sub: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_rollout"))
            .arg(sub)
            .arg(self.dir.join("inventory.yml"))
            .args(args)
            .env_remove("TERM")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The JSON events of `rollout SUB --output json ARGS...`, which must exit 0.
    fn events(&self, sub: &str, args: &[&str]) -> Vec<Value> {
        let mut all = vec!["--output", "json"];
        all.extend(args);
        let (code, out, err) = self.rollout(sub, &all);
        assert_eq!(code, 0, "{out}\n{err}");
        out.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    fn out(&self, f: &str) -> PathBuf {
        self.dir.join("out").join(f)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The hosts of the run's `summary` object, in order.
fn summary_hosts(events: &[Value]) -> Vec<String> {
    let summary = events
        .iter()
        .find(|e| e["event"] == "summary")
        .expect("a summary");
    summary["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap().to_string())
        .collect()
}

/// `(host, label)` of every `step` event, sorted.
fn steps_seen(events: &[Value]) -> Vec<(String, String)> {
    let mut seen: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["event"] == "step")
        .map(|e| {
            (
                e["host"].as_str().unwrap().to_string(),
                e["label"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    seen
}

const HOSTS: &str = "all:
  vars:
    out: OUT
  children:
    web:
      roles: [app]
      hosts:
        web1: {connection: local}
        web2: {connection: local}
    db:
      roles: [app]
      hosts:
        db1: {connection: local}
";

const ONE_STEP: &str = "- name: mark
  file: {path: \"{{ out }}/{{ inventory_hostname }}\", content: \"x\\n\"}
";

#[test]
fn limit_selects_hosts_and_groups_and_bang_excludes() {
    let p = Project::new("limit", HOSTS, ONE_STEP, "");
    let hosts = |limit: &str| summary_hosts(&p.events("plan", &["--limit", limit]));
    assert_eq!(
        summary_hosts(&p.events("plan", &[])),
        ["web1", "web2", "db1"]
    );
    assert_eq!(hosts("web"), ["web1", "web2"], "a group");
    assert_eq!(hosts("db1"), ["db1"], "a host");
    assert_eq!(
        hosts("db1,web2"),
        ["web2", "db1"],
        "several, in inventory order"
    );
    assert_eq!(hosts("web,!web2"), ["web1"], "`!host` excludes a host");
    assert_eq!(hosts("all,!web"), ["db1"], "`!group` excludes a group");
    assert_eq!(
        hosts("!db"),
        ["web1", "web2"],
        "only exclusions: from all hosts"
    );
    // Only the selected hosts are touched by an apply.
    let events = p.events("apply", &["--limit", "web,!web1"]);
    assert_eq!(summary_hosts(&events), ["web2"]);
    let mut written: Vec<String> = std::fs::read_dir(p.dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, ["web2"]);
}

const TAGGED: &str = "- name: config
  file: {path: \"{{ out }}/{{ inventory_hostname }}.conf\", content: \"c\\n\"}
  tags: [config]
- name: packages
  file: {path: \"{{ out }}/{{ inventory_hostname }}.pkgs\", content: \"p\\n\"}
  tags: [packages, slow]
- name: untagged
  file: {path: \"{{ out }}/{{ inventory_hostname }}.plain\", content: \"u\\n\"}
";

#[test]
fn tags_and_skip_tags_select_steps() {
    let p = Project::new("tags", HOSTS, TAGGED, "");
    let labels = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--limit", "web1"];
        all.extend(args);
        steps_seen(&p.events("plan", &all))
            .into_iter()
            .map(|(_, l)| l)
            .collect()
    };
    let every = ["app: config", "app: packages", "app: untagged"];
    assert_eq!(labels(&[]), every);
    assert_eq!(labels(&["--tags", "config"]), ["app: config"]);
    assert_eq!(
        labels(&["--tags", "slow,config"]),
        ["app: config", "app: packages"],
        "one of several tags is enough"
    );
    assert_eq!(
        labels(&["--tags", "app"]),
        every,
        "a role's name tags all its steps"
    );
    assert_eq!(
        labels(&["--skip-tags", "packages"]),
        ["app: config", "app: untagged"]
    );
    assert_eq!(
        labels(&["--tags", "config,packages", "--skip-tags", "slow"]),
        ["app: config"],
        "--skip-tags wins over --tags"
    );
    // What is selected is what an apply changes.
    p.events("apply", &["--limit", "web1", "--skip-tags", "config"]);
    assert!(!p.out("web1.conf").exists());
    assert!(p.out("web1.pkgs").exists() && p.out("web1.plain").exists());
}

/// Each host's command step counts, ten times over 1 s, how many hosts are inside it at
/// once, and keeps the largest count: with `--forks N` no host ever sees more than N.
#[test]
fn forks_caps_how_many_hosts_run_at_once() {
    let mut inv = String::from(
        "all:\n  vars:\n    out: OUT\n  children:\n    g:\n      roles: [app]\n      hosts:\n",
    );
    for i in 1..=6 {
        inv.push_str(&format!("        h{i}: {{connection: local}}\n"));
    }
    let steps = r#"- name: count
  command:
    creates: "{{ out }}/done.{{ inventory_hostname }}"
    run: |
      touch "{{ out }}/in.{{ inventory_hostname }}"
      max=0
      for i in 1 2 3 4 5 6 7 8 9 10; do
        n=$(ls "{{ out }}" | grep -c '^in\.')
        [ "$n" -le "$max" ] || max=$n
        sleep 0.1
      done
      rm "{{ out }}/in.{{ inventory_hostname }}"
      echo "$max" > "{{ out }}/done.{{ inventory_hostname }}"
"#;
    for forks in [1usize, 2, 3] {
        let p = Project::new(&format!("forks{forks}"), &inv, steps, "");
        p.events("apply", &["--forks", &forks.to_string()]);
        let seen: Vec<usize> = (1..=6)
            .map(|i| {
                std::fs::read_to_string(p.out(&format!("done.h{i}")))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            })
            .collect();
        let most = *seen.iter().max().unwrap();
        assert!(
            most <= forks,
            "--forks {forks}: {most} hosts at once (per host: {seen:?})"
        );
        assert_eq!(
            most, forks,
            "--forks {forks}: hosts do run side by side up to the cap (per host: {seen:?})"
        );
    }
}

/// `-e` as Ansible reads it: `k=v` values are strings (also `41`, `true`, `no`), several
/// pairs in one `-e`, quotes keep spaces; a JSON mapping is typed; `-e` wins over every other
/// source.
#[test]
fn extra_vars_are_read_as_ansible_reads_them_and_win() {
    let inv = "all:
  vars:
    out: OUT
    n: 1
    word: from-all
  children:
    g:
      roles: [app]
      vars:
        flag: false
      hosts:
        h1:
          connection: local
          vars:
            ratio: 9.5
";
    let steps = "- name: typed
  file:
    path: \"{{ out }}/typed\"
    content: |
      n={{ n is string }}:{{ n }} flag={{ flag is string }}:{{ flag }} m+1={{ m + 1 }} off={{ off is sameas false }} ratio*2={{ ratio * 2 }}
      word={{ word }} no={{ no is string }}:{{ no }} empty={{ empty is string }}:[{{ empty }}] colon={{ colon }}
";
    let p = Project::new("extra", inv, steps, "word: from-defaults\n");
    p.events(
        "apply",
        &[
            "-e",
            "n=41 flag=true",
            "-e",
            r#"{"m": 41, "off": false, "ratio": 0.25}"#,
            "-e",
            "word='from -e' no=no empty=",
            "-e",
            "colon=\"a: b\"",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(p.out("typed")).unwrap(),
        "n=true:41 flag=true:true m+1=42 off=true ratio*2=0.5\nword=from -e no=true:no empty=true:[] colon=a: b\n"
    );
}

#[test]
fn variables_take_precedence_in_the_documented_order() {
    let inv = "all:
  vars:
    out: OUT
    v2: all
    v3: all
    v4: all
    v5: all
    v6: all
    v7: all
    sib: all
  children:
    outer:
      vars:
        v3: outer
        v4: outer
        v5: outer
        v6: outer
        v7: outer
      children:
        inner:
          roles: [app]
          vars:
            v4: inner
            v5: inner
            v6: inner
            v7: inner
          hosts:
            h1:
              connection: local
              vars:
                v6: host
                v7: host
    zeta:
      vars:
        sib: zeta
      hosts:
        h1:
    alpha:
      vars:
        sib: alpha
        v5: alpha
      hosts:
        h1:
";
    let steps = "- name: vars
  file:
    path: \"{{ out }}/vars\"
    content: \"{{ v1 }} {{ v2 }} {{ v3 }} {{ v4 }} {{ v5 }} {{ v6 }} {{ v7 }} {{ sib }}\\n\"
";
    let defaults = "v1: defaults\nv2: defaults\nv3: defaults\nv4: defaults\nv5: defaults\nv6: defaults\nv7: defaults\nsib: defaults\n";
    let p = Project::new("precedence", inv, steps, defaults);
    p.events("apply", &["-e", "v7=extra"]);
    // v5: `alpha` (depth 1) is shallower than `inner` (depth 2), so inner wins; `sib`:
    // `zeta` and `alpha` are siblings at depth 1, the later name wins.
    assert_eq!(
        std::fs::read_to_string(p.out("vars")).unwrap(),
        "defaults all outer inner inner host extra zeta\n"
    );
}

/// The table at the end of a plain run: a header, one row per host in inventory order, the
/// totals line, then each failed host's reason. `db1` changed its first step before its
/// second failed. Seconds vary and are compared by shape.
#[test]
fn the_summary_table_ends_a_plain_run() {
    let steps = "- name: mark
  file: {path: \"{{ out }}/{{ inventory_hostname }}\", content: \"x\\n\"}
- name: broken
  command: {run: \"echo no such thing >&2; exit 5\", creates: \"{{ out }}/{{ inventory_hostname }}.never\"}
  when: inventory_hostname == 'db1'
";
    let p = Project::new("table", HOSTS, steps, "");
    let (code, out, err) = p.rollout("apply", &["--output", "plain"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let tail: Vec<&str> = out.lines().rev().take(6).collect::<Vec<_>>();
    let tail: Vec<String> = tail
        .into_iter()
        .rev()
        .map(|l| {
            // The SECONDS column: digits, a dot and one digit, right-aligned in 7.
            let (head, secs) = l.split_at(l.len().min(l.rfind("  ").map_or(0, |i| i + 2)));
            if !head.is_empty() && secs.len() >= 3 && secs.trim().parse::<f64>().is_ok() {
                format!("{head}{:>width$}", "S.S", width = secs.len())
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(
        tail.join("\n"),
        [
            "HOST     OK  CHANGED  FAILED  UNREACHABLE  SECONDS",
            "web1      0        1       0            0      S.S",
            "web2      0        1       0            0      S.S",
            "db1       0        1       1            0      S.S",
            "3 hosts, 3 changes, 1 failed or unreachable",
            "  db1: FAILED: app: broken: exit code 5: no such thing",
        ]
        .join("\n"),
        "{out}"
    );
}

/// On a pipe, every event is a plain line and no terminal control sequence is written; on a
/// terminal (a pty from util-linux `script`), rollout draws its bars with control sequences.
#[test]
fn plain_lines_on_a_pipe_bars_on_a_terminal() {
    let p = Project::new("tty", HOSTS, ONE_STEP, "");
    let (code, out, err) = p.rollout("plan", &["--limit", "web1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("web1: ~ app: mark (create)\n"), "{out}");
    assert!(
        !out.contains('\x1b') && !err.contains('\x1b'),
        "{out:?}\n{err:?}"
    );

    let Ok(script) = which("script") else {
        panic!("util-linux `script` is needed to give rollout a terminal")
    };
    let cmd = format!(
        "{} plan {} --limit web1",
        rollout::script::quote(env!("CARGO_BIN_EXE_rollout")),
        rollout::script::quote(p.dir.join("inventory.yml").to_str().unwrap())
    );
    let typescript = p.dir.join("typescript");
    let run = Command::new(script)
        .args(["-q", "-e", "-c", &cmd])
        .arg(&typescript)
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let shown = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    assert!(
        shown.contains("web1: ~ app: mark"),
        "the lines show above the bars: {shown:?}"
    );
    assert!(
        shown.contains('\x1b'),
        "a terminal gets control sequences (bars drawn, then cleared): {shown:?}"
    );
}

fn which(prog: &str) -> Result<PathBuf, ()> {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(prog))
        .find(|p| p.is_file())
        .ok_or(())
}

#[test]
fn omit_leaves_the_argument_out_as_ansible_does() {
    let inv = "all:
  vars:
    out: OUT
    no_owner: \"{{ omit }}\"
    modes: [\"0600\", \"{{ omit }}\"]
  children:
    g:
      roles: [app]
      hosts:
        h1:
          connection: local
";
    let steps = "- name: omitted
  file:
    path: \"{{ out }}/omitted\"
    mode: \"{{ file_mode | default(omit) }}\"
    owner: \"{{ no_owner }}\"
    group: \"{{ omit }}\"
    content: \"x{{ omit }}y {{ modes | length }}\\n\"
";
    let p = Project::new("omit", inv, steps, "");
    let (code, out, err) = p.rollout("plan", &["--output", "json"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("omit_place_holder"), "{out}");
    p.events("apply", &[]);
    assert_eq!(std::fs::read_to_string(p.out("omitted")).unwrap(), "xy 1\n");
}

#[test]
fn lookups_read_the_environment_and_files_and_secrets_stay_redacted() {
    use std::os::unix::fs::PermissionsExt;
    let inv = "all:
  vars:
    out: OUT
  children:
    g:
      roles: [app]
      hosts:
        h1:
          connection: local
";
    let steps = "- name: looked up
  file:
    path: \"{{ out }}/looked-up\"
    content: |
      env={{ lookup('env', 'ROLLOUT_LOOKUP_TEST_SECRET') }}
      public={{ lookup('file', 'motd.txt') }}
      key={{ lookup('file', 'key.txt') }}
";
    let p = Project::new("lookup", inv, steps, "");
    std::fs::create_dir_all(p.dir.join("files")).unwrap();
    std::fs::write(p.dir.join("files/motd.txt"), "welcome-text\n").unwrap();
    let key = p.dir.join("key.txt");
    std::fs::write(&key, "k3y-m4terial-x9\n").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rollout"))
        .arg("apply")
        .arg(p.dir.join("inventory.yml"))
        .arg("--diff")
        .env("ROLLOUT_LOOKUP_TEST_SECRET", "s3cr3t-fr0m-env-q7")
        .env_remove("TERM")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(
        std::fs::read_to_string(p.out("looked-up")).unwrap(),
        "env=s3cr3t-fr0m-env-q7\npublic=welcome-text\nkey=k3y-m4terial-x9\n",
        "{stdout}\n{stderr}"
    );
    for secret in ["s3cr3t-fr0m-env-q7", "k3y-m4terial-x9"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} shown:\n{stdout}\n{stderr}"
        );
    }
    assert!(
        stdout.contains("public=welcome-text"),
        "the diff is shown:\n{stdout}"
    );
}

#[test]
fn hostvars_holds_every_hosts_variables_rendered_for_that_host() {
    let inv = "all:
  vars:
    out: OUT
    word: \"w-{{ inventory_hostname }}\"
  children:
    g:
      roles: [app]
      hosts:
        h1:
          connection: local
          vars:
            peer: \"{{ hostvars['h2'].word }}/{{ hostvars['h2'].port }}\"
        h2:
          connection: local
          vars:
            port: 8443
            peer: \"{{ hostvars['h1'].word }}\"
";
    let steps = "- name: hostvars
  file:
    path: \"{{ out }}/{{ inventory_hostname }}\"
    content: \"{{ peer }} {{ hostvars[inventory_hostname].word }} {{ hostvars | length }}\\n\"
";
    let p = Project::new("hostvars", inv, steps, "");
    p.events("apply", &[]);
    assert_eq!(
        std::fs::read_to_string(p.out("h1")).unwrap(),
        "w-h2/8443 w-h1 2\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.out("h2")).unwrap(),
        "w-h1 w-h2 2\n"
    );
}

#[test]
fn hostvars_has_no_role_defaults_as_in_ansible() {
    let inv = "all:
  vars:
    out: OUT
  children:
    g:
      roles: [app]
      hosts:
        h1:
          connection: local
";
    let steps = "- name: defaults
  file:
    path: \"{{ out }}/d\"
    content: \"{{ from_default }} {{ hostvars['h1'].from_default is defined }}\\n\"
";
    let p = Project::new("hostvars-defaults", inv, steps, "from_default: dflt\n");
    p.events("apply", &[]);
    assert_eq!(std::fs::read_to_string(p.out("d")).unwrap(), "dflt false\n");
}
