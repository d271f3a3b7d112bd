//! `rollout exec` (Ansible's ad-hoc command) and the retry file of `exec` and `apply`, through
//! the real binary: hosts `h01`, `h02` run on the controller's shell (`connection: local`),
//! `h03` goes through SSH to an `ssh` stand-in on PATH that refuses every connection (so no
//! address is contacted). Checked: per-host output blocks, exit codes (0, 1, 2 before anything
//! runs), a secret the command prints is redacted, each word reaches the program as typed
//! (spaces, `$(...)`), `--output json`, and that the retry file holds exactly the hosts that
//! failed and `--limit @FILE` selects them.

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// The secret the inventory reads from the environment; the command prints it.
const SECRET: &str = "s3cret-exec-value-4711";

struct Project {
    dir: PathBuf,
}

impl Project {
    fn new(name: &str) -> Project {
        let dir = std::env::temp_dir().join(format!("rollout-exec-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("roles/app")).unwrap();
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(
            dir.join("inventory.yml"),
            format!(
                "all:\n  vars:\n    out: {}\n    api_secret: {{secret: \"env:EXEC_TEST_SECRET\"}}\n  children:\n    pool:\n      roles: [app]\n      hosts:\n        h01: {{connection: local}}\n        h02: {{connection: local}}\n        h03: {{address: h03.invalid}}\n",
                out.display()
            ),
        )
        .unwrap();
        // Fails on h02 only: apply then has one failed host (and h03 unreachable).
        std::fs::write(
            dir.join("roles/app/steps.yml"),
            "- name: mark\n  file: {path: \"{{ out }}/{{ inventory_hostname }}\", content: \"x\\n\"}\n- name: fail on h02\n  when: inventory_hostname == 'h02'\n  command: {run: \"exit 3\", creates: \"{{ out }}/never\"}\n",
        )
        .unwrap();
        let ssh = dir.join("bin/ssh");
        std::fs::write(
            &ssh,
            "#!/bin/sh\necho 'ssh: connect to host h03.invalid port 22: Connection refused' >&2\nexit 255\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
        Project { dir }
    }

    /// `rollout SUB INVENTORY ARGS...` with the stand-in ssh first on PATH; (code, stdout,
    /// stderr).
    fn rollout(&self, sub: &str, args: &[&str]) -> (i32, String, String) {
        let path = std::env::var("PATH").unwrap_or_default();
        let out = Command::new(env!("CARGO_BIN_EXE_rollout"))
            .arg(sub)
            .arg(self.dir.join("inventory.yml"))
            .args(args)
            .current_dir(&self.dir)
            .env("PATH", format!("{}:{path}", self.dir.join("bin").display()))
            .env("EXEC_TEST_SECRET", SECRET)
            .env_remove("TERM")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn path(&self, f: &str) -> PathBuf {
        self.dir.join(f)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The block of `host` in exec's plain output: its head line (`h01 | ...`) and the lines
/// after it until the next head line or the count line.
fn block(out: &str, host: &str) -> String {
    let mut text = String::new();
    let mut inside = false;
    for line in out.lines() {
        let head = line.starts_with("h0") && line.get(3..6) == Some(" | ");
        if head || line.starts_with("3 hosts:") {
            inside = line.starts_with(&format!("{host} | "));
        }
        if inside {
            text.push_str(line);
            text.push('\n');
        }
    }
    assert!(!text.is_empty(), "no block for {host} in:\n{out}");
    text
}

/// The command every host runs: prints each argument in brackets (so a word split at its
/// space or a `$(...)` expanded by a shell shows), the secret from its environment, then
/// `mkdir`s one folder: exactly one of the local hosts creates it, the other fails.
fn command(p: &Project) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        "printf '[%s]\\n' \"$@\"; echo \"token=$EXEC_TEST_SECRET\"; mkdir \"$0\"".into(),
        p.path("out/once").display().to_string(),
        "a b".into(),
        "$(echo expanded)".into(),
        "*".into(),
    ]
}

#[test]
fn exec_runs_per_host_redacts_quotes_and_exits_1_when_a_host_fails() {
    let p = Project::new("plain");
    let retry = p.path("exec.retry");
    let mut args: Vec<String> = vec![
        "-l".into(),
        "all".into(),
        "--retry-file".into(),
        retry.display().to_string(),
        "--".into(),
    ];
    args.extend(command(&p));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = p.rollout("exec", &args);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        !out.contains(SECRET) && !err.contains(SECRET),
        "{out}\n{err}"
    );
    let (b1, b2) = (block(&out, "h01"), block(&out, "h02"));
    // Exactly one local host made the folder; the other's mkdir failed (rc 1).
    let (ok, failed) = if b1.starts_with("h01 | CHANGED") {
        (&b1, &b2)
    } else {
        (&b2, &b1)
    };
    let words = "[a b]\n[$(echo expanded)]\n[*]\ntoken=<redacted>\n";
    assert!(ok.contains("| CHANGED | rc=0 >>\n"), "{out}");
    assert!(ok.contains(words), "{ok}");
    assert!(failed.contains("| FAILED | rc=1 >>\n"), "{out}");
    assert!(
        failed.contains(words) && failed.contains("mkdir"),
        "{failed}"
    );
    let b3 = block(&out, "h03");
    assert!(
        b3.starts_with("h03 | UNREACHABLE! >>\nfailed to connect"),
        "{out}"
    );
    assert!(
        out.contains("3 hosts: 1 ok, 1 failed, 1 unreachable\n"),
        "{out}"
    );
    // The retry file: the failed and the unreachable host, in inventory order.
    let failed_host = &failed[..3];
    assert_eq!(
        std::fs::read_to_string(&retry).unwrap(),
        format!("{failed_host}\nh03\n")
    );
    assert!(err.contains("retry file: "), "{err}");
}

#[test]
fn exec_json_is_one_exec_object_with_every_host() {
    let p = Project::new("json");
    let mut args: Vec<String> = vec!["-l".into(), "h01:h03".into(), "-o".into(), "json".into()];
    args.push("--".into());
    args.extend(command(&p));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = p.rollout("exec", &args);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(!out.contains(SECRET), "{out}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines.len(), 1, "{out}");
    let v = &lines[0];
    assert_eq!(v["event"], "exec");
    assert_eq!(v["schema"], 1);
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts[0]["host"], "h01");
    assert_eq!(hosts[0]["status"], "changed");
    assert_eq!(hosts[0]["rc"], 0);
    assert_eq!(
        hosts[0]["stdout"],
        "[a b]\n[$(echo expanded)]\n[*]\ntoken=<redacted>\n"
    );
    assert_eq!(hosts[1]["host"], "h03");
    assert_eq!(hosts[1]["status"], "unreachable");
    assert!(hosts[1]["rc"].is_null());
    assert!(
        hosts[1]["reason"]
            .as_str()
            .unwrap()
            .starts_with("failed to connect")
    );
}

#[test]
fn exec_all_ok_exits_0_and_the_retry_file_keeps_only_hosts_still_to_retry() {
    let p = Project::new("ok");
    let retry = p.path("old.retry");
    std::fs::write(&retry, "h02\nh03\n").unwrap();
    // (h03 is unreachable in this project; h01 and h02 answer.)
    let run = |limit: &str| {
        p.rollout(
            "exec",
            &[
                "-l",
                limit,
                "--retry-file",
                retry.to_str().unwrap(),
                "--",
                "echo",
                "hi there",
            ],
        )
    };
    // A narrower run: h02 passes and leaves the file; h03, not run, stays in it.
    let (code, out, err) = run("h01,h02");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("h01 | CHANGED | rc=0 >>\nhi there\n"), "{out}");
    assert!(out.contains("h02 | CHANGED | rc=0 >>\nhi there\n"), "{out}");
    assert_eq!(std::fs::read_to_string(&retry).unwrap(), "h03\n");
    assert!(err.contains("(1 host)"), "{err}");
    assert!(out.contains("2 hosts: 2 ok"), "{out}");
    // Once the hosts in it have passed, nothing is left to retry: the file is gone.
    std::fs::write(&retry, "h01\nh02\n").unwrap();
    let (code, out, err) = run("h01");
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(std::fs::read_to_string(&retry).unwrap(), "h02\n");
    assert!(out.contains("1 host: 1 ok, 0 failed"), "{out}");
    let (code, out, err) = run(&format!("@{}", retry.display()));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!retry.exists(), "nothing left to retry: the file is gone");
    assert!(err.contains("no host left to retry"), "{err}");
    // A retry file that cannot be written is found before any host is contacted.
    let marker = p.path("out/ran");
    let (code, out, err) = p.rollout(
        "exec",
        &[
            "-l",
            "h01",
            "--retry-file",
            "/nonexistent-dir/x.retry",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("/nonexistent-dir/x.retry: --retry-file"),
        "{err}"
    );
    assert!(!marker.exists(), "the command ran");
}

#[test]
fn exec_bad_input_exits_2_before_any_host_is_contacted() {
    let p = Project::new("bad");
    let marker = p.path("out/ran");
    let touch = ["touch", marker.to_str().unwrap()];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["-l", "nosuchhost", "--", touch[0], touch[1]],
            "nosuchhost",
        ),
        (vec!["-l", "all", "--", ""], "program name is empty"),
        (vec!["-l", "all", "--"], "COMMAND"),
        (vec!["-l", "all", touch[0], touch[1]], "unexpected argument"),
        (
            vec!["-l", "all", touch[0], "-p"],
            "write the command after `--`",
        ),
        (vec!["--", touch[0], touch[1]], "--limit"),
    ];
    for (args, want) in cases {
        let (code, out, err) = p.rollout("exec", &args);
        assert_eq!(code, 2, "{args:?}\n{out}\n{err}");
        assert!(err.contains(want), "{args:?}: want `{want}` in:\n{err}");
        assert!(!marker.exists(), "{args:?} ran the command");
    }
}

#[test]
fn apply_retry_file_holds_the_failed_hosts_and_limit_at_file_selects_them() {
    let p = Project::new("apply");
    let retry = p.path("pool.retry");
    let (code, out, err) = p.rollout("apply", &["--retry-file", retry.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(std::fs::read_to_string(&retry).unwrap(), "h02\nh03\n");
    assert!(
        err.contains(&format!("retry file: {} (2 hosts)", retry.display())),
        "{err}"
    );
    // The next run with `--limit @FILE` works on exactly those hosts.
    let at = format!("@{}", retry.display());
    let (code, out, err) = p.rollout("plan", &["--limit", &at, "--output", "json"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let summary: Value = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["event"] == "summary")
        .expect("a summary");
    let hosts: Vec<&str> = summary["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["h02", "h03"]);
    // Without --retry-file nothing is written (off by default, as in Ansible since 2.8).
    std::fs::remove_file(&retry).unwrap();
    let (code, _, _) = p.rollout("apply", &[]);
    assert_eq!(code, 1);
    let written: Vec<_> = std::fs::read_dir(&p.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().ends_with(".retry"))
        .collect();
    assert!(written.is_empty(), "{written:?}");
}

/// Whether process `pid` still exists (a zombie counts as gone: it no longer runs).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Ctrl-C on `rollout exec` stops the command on the hosts: the command and what it started
/// (its process group) are gone within the grace time, exit 130, and the message says what
/// happened to the command (not apply's "steps already running finish").
#[test]
fn interrupting_exec_stops_the_command_and_its_children_on_the_hosts() {
    let p = Project::new("int");
    let pids = p.path("out/pids");
    let path = std::env::var("PATH").unwrap_or_default();
    let script = format!(
        "sleep 61 & echo \"$$ $!\" >{}.tmp; mv {0}.tmp {0}; wait",
        pids.display()
    );
    let child = Command::new(env!("CARGO_BIN_EXE_rollout"))
        .args(["exec"])
        .arg(p.dir.join("inventory.yml"))
        .args(["-l", "h01", "--", "sh", "-c", &script])
        .env("PATH", format!("{}:{path}", p.dir.join("bin").display()))
        .env("EXEC_TEST_SECRET", SECRET)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !pids.exists() {
        assert!(
            started.elapsed().as_secs() < 30,
            "the command never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let text = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<i32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(pids.iter().all(|&p| alive(p)), "{text}");
    // SIGINT, as Ctrl-C sends it, to rollout alone (a terminal would also signal the shell
    // it started: the watcher must not depend on that).
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("The command is stopped on the hosts"), "{err}");
    assert!(!err.contains("Steps already running"), "{err}");
    let stopped = std::time::Instant::now();
    while pids.iter().any(|&p| alive(p)) {
        assert!(
            stopped.elapsed().as_secs() < 15,
            "still running after Ctrl-C: {:?}",
            pids.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `rollout exec -i hosts.ini` without a rollout file, as `ansible -i hosts.ini all -a ...`:
/// the Ansible inventory alone gives the hosts (no roles are needed to run a command).
#[test]
fn exec_runs_on_an_ansible_inventory_without_a_rollout_file() {
    let p = Project::new("ini");
    std::fs::write(
        p.path("hosts.ini"),
        "[web]\nw1 ansible_connection=local\nw2 ansible_connection=local\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rollout"))
            .arg("exec")
            .args(args)
            .current_dir(&p.dir)
            .env_remove("ROLLOUT_INVENTORY")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["-i", "hosts.ini", "-l", "web", "--", "echo", "hi"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("w1 | CHANGED | rc=0 >>\nhi\n"), "{out}");
    assert!(out.contains("w2 | CHANGED | rc=0 >>\nhi\n"), "{out}");
    // Bad input names the Ansible inventory.
    let (code, _, err) = run(&["-i", "hosts.ini", "-l", "nosuch", "--", "true"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("hosts.ini"), "{err}");
    // The command without `--`: taken as INVENTORY, then the tip.
    let (code, _, err) = run(&["-i", "hosts.ini", "-l", "web", "uptime"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("write the command after `--`"), "{err}");
    // An empty ROLLOUT_INVENTORY counts as unset, with and without a rollout file (the
    // positional arguments keep their order when clap's env is taken away).
    for args in [
        vec!["-i", "hosts.ini", "-l", "w1", "--", "true"],
        vec!["inventory.yml", "-l", "h01", "--", "true"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_rollout"))
            .arg("exec")
            .args(&args)
            .current_dir(&p.dir)
            .env("ROLLOUT_INVENTORY", "")
            .env("EXEC_TEST_SECRET", SECRET)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Neither a rollout file nor -i: clap says what is missing.
    let (code, _, err) = run(&["-l", "all", "--", "true"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("<INVENTORY>"), "{err}");
}
