//! Shared helpers for end-to-end tests on lab hosts (`lab/lab`).
//!
//! Lab tests run when `ROLLOUT_LAB_TESTS=1` (the README's test command sets it): `build.rs`
//! then sets `cfg(lab_tests)`. Without it they are `#[ignore]`d with the reason, so `cargo
//! test` reports them as ignored, never as passed. A lab that cannot start fails the test.

#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Lab {
    pub name: String,
    pub state: PathBuf,
    pub hosts: Vec<String>,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The lab name a test uses: `ROLLOUT_LAB_NAME` when set (to run one lab test binary under
/// another name, beside labs of other checkouts on a shared machine), else `default`.
pub fn lab_name(default: &str) -> String {
    std::env::var("ROLLOUT_LAB_NAME").unwrap_or_else(|_| default.to_string())
}

/// Starts (or restarts) the named lab with `n` pristine hosts. Panics (fails the test) when
/// lab tests are not enabled (an ignored test run with `--include-ignored`) or the lab
/// cannot start.
pub fn lab(name: &str, n: usize) -> Lab {
    assert!(
        std::env::var("ROLLOUT_LAB_TESTS").as_deref() == Ok("1"),
        "lab tests need root and ROLLOUT_LAB_TESTS=1 (see README)"
    );
    let out = Command::new(repo().join("lab/lab"))
        .args(["up", "--name", name, "--hosts", &n.to_string()])
        .output()
        .expect("lab/lab runs");
    assert!(
        out.status.success(),
        "lab/lab up --name {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hosts = (1..=n)
        .map(|i| {
            if n > 99 {
                format!("h{i:03}")
            } else {
                format!("h{i:02}")
            }
        })
        .collect();
    Lab {
        name: name.into(),
        state: repo().join("lab/.state").join(name),
        hosts,
    }
}

/// Appends to `target/lab-proxy.txt` how many races lab `name`'s apt proxy logged ("Failure
/// to move file", see lab/README) and how many error lines in all: a figure per lab for the
/// whole run (issue 12 item 9), which .ci/run prints after the tests. Call before the lab
/// goes down (its state folder goes with it); a lab already down is not noted again.
#[allow(dead_code)]
pub fn note_proxy_races(name: &str) {
    let state = repo().join("lab/.state").join(name);
    if !state.join("acng").is_dir() {
        return; // already down (noted then)
    }
    let err = std::fs::read_to_string(state.join("acng/log/apt-cacher.err")).unwrap_or_default();
    let line = format!(
        "{name}: {} 'Failure to move' and {} lines in all in the apt proxy's error log\n",
        err.matches("Failure to move").count(),
        err.lines().count()
    );
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(repo().join("target/lab-proxy.txt"))
    {
        use std::io::Write;
        let _ = f.write_all(line.as_bytes());
    }
}

impl Drop for Lab {
    /// Labs go down when their test ends (fewer idle hosts for the tests after it);
    /// `ROLLOUT_LAB_KEEP=1` keeps them for inspection.
    fn drop(&mut self) {
        if std::thread::panicking() {
            // What the lab's apt proxy said, for a failure CI shows only once: its error
            // log names a refused or broken fetch that made apt on a host fail or hang.
            for f in ["acng/log/apt-cacher.err", "acng/out.log"] {
                if let Ok(t) = std::fs::read_to_string(self.state.join(f)) {
                    let lines: Vec<&str> = t.lines().collect();
                    eprintln!(
                        "lab {}: last lines of {f}:\n{}",
                        self.name,
                        lines[lines.len().saturating_sub(40)..].join("\n")
                    );
                }
            }
        }
        note_proxy_races(&self.name);
        if std::env::var("ROLLOUT_LAB_KEEP").as_deref() != Ok("1") {
            let _ = Command::new(repo().join("lab/lab"))
                .args(["down", "--name", &self.name])
                .output();
        }
    }
}

impl Lab {
    /// Writes an inventory for this lab's hosts that applies `roles` from `fixture`
    /// (a folder with `roles/` and `templates/`), with extra `all` vars (YAML lines).
    pub fn inventory(&self, file: &str, fixture: &Path, roles: &[&str], vars: &str) -> PathBuf {
        let generated =
            std::fs::read_to_string(self.state.join("inventory.yml")).expect("generated inventory");
        let mut text = format!(
            "roles_path: {}\ntemplates_path: {}\n",
            fixture.join("roles").display(),
            fixture.join("templates").display()
        );
        for line in generated.lines() {
            text.push_str(line);
            text.push('\n');
            if line == "  vars:" {
                for v in vars.lines().filter(|l| !l.trim().is_empty()) {
                    text.push_str(&format!("    {v}\n"));
                }
            }
            if line == "    lab:" {
                text.push_str(&format!("      roles: [{}]\n", roles.join(", ")));
            }
        }
        let path = self.state.join(file);
        std::fs::write(&path, text).expect("write inventory");
        path
    }

    pub fn ssh(&self, host: &str, cmd: &str) -> Output {
        Command::new("ssh")
            .args([
                "-F",
                self.state.join("ssh_config").to_str().unwrap(),
                host,
                cmd,
            ])
            .output()
            .expect("ssh runs")
    }

    pub fn ssh_ok(&self, host: &str, cmd: &str) -> String {
        let o = self.ssh(host, cmd);
        assert!(
            o.status.success(),
            "{host}: `{cmd}` failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn lab_cmd(&self, args: &[&str]) {
        let mut full = args.to_vec();
        full.extend(["--name", &self.name]);
        let out = Command::new(repo().join("lab/lab"))
            .args(&full)
            .output()
            .expect("lab/lab runs");
        assert!(
            out.status.success(),
            "lab/lab {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs the rollout binary; returns (exit code, stdout, stderr).
pub fn rollout(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rollout"))
        .args(args)
        .output()
        .expect("rollout runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The summary line `N hosts, C changes, F failed or unreachable`.
pub fn summary_counts(stdout: &str) -> (usize, usize, usize) {
    let line = stdout
        .lines()
        .find(|l| l.contains(" hosts, ") && l.contains(" changes, "))
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (nums[0], nums[1], nums[2])
}

/// The last `last` lines of a run's output, without the scripts `-v` dumps (lines starting
/// with `    |`): twelve hosts' scripts would bury the error that matters.
pub fn without_scripts(out: &str, last: usize) -> String {
    let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with("    |")).collect();
    lines[lines.len().saturating_sub(last)..].join("\n")
}

/// A failed run's output for an assertion message (see [`without_scripts`]). The lines that
/// say what went wrong (FAILED, UNREACHABLE, error, timed out) and stderr come first, the
/// whole stdout last: CI shows only the head and tail of a long failure message, and twelve
/// hosts' step lines would push the cause out of both.
pub fn brief(stdout: &str, stderr: &str) -> String {
    let cause: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("    |"))
        .filter(|l| {
            let low = l.to_ascii_lowercase();
            l.contains("FAILED")
                || l.contains("UNREACHABLE")
                || low.contains("error")
                || low.contains("timed out")
                || low.contains(" hosts, ")
        })
        .collect();
    format!(
        "what went wrong:\n{}\nstderr:\n{}\nstdout:\n{}\nwhat went wrong (again):\n{}",
        cause.join("\n"),
        without_scripts(stderr, usize::MAX),
        without_scripts(stdout, usize::MAX),
        cause.join("\n"),
    )
}

/// Every spelling of `secret` that output, files or command lines must not hold: the value
/// itself and what templates and transports make of it (lower/upper case, reversed,
/// shell-quoted, SQL-quoted, XML-escaped, JSON-escaped, URL-encoded, hex, and base64 in each
/// of its three alignments, so that it is found inside a longer base64 text too). Computed
/// here, independently of rollout's code. Hashes (hex sha1/sha256) are not spellings: they
/// do not give the secret away.
pub fn spellings(secret: &str) -> Vec<String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let url = |s: &str, plus: bool| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' if plus => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let s = secret;
    let mut v: Vec<String> = vec![
        s.into(),
        s.to_lowercase(),
        s.to_uppercase(),
        s.chars().rev().collect(),
        s.replace('\'', "''"),
        s.replace('\'', r"'\''"),
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&apos;"),
        serde_json::to_string(s).unwrap().trim_matches('"').into(),
        url(s, false),
        url(s, true),
        url(s, false).to_lowercase(),
        // Hex of the bytes, as `xxd -p` and `od -An -tx1` print them.
        s.bytes().map(|b| format!("{b:02x}")).collect(),
        s.bytes().map(|b| format!("{b:02X}")).collect(),
        s.bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
        b64.encode(s.to_lowercase()),
    ];
    // base64 of the secret after 0, 1 or 2 bytes of something else: the characters that
    // depend on the secret's bytes alone (a whole 3-byte group), whatever came before.
    for pad in 0..3 {
        let text = format!("{}{s}", "\0".repeat(pad));
        let enc = b64.encode(text.as_bytes());
        let start = if pad == 0 { 0 } else { 4 };
        let whole = (pad + s.len()) / 3 * 4;
        if whole > start + 8 {
            v.push(enc[start..whole].to_string());
        }
    }
    v.sort();
    v.dedup();
    v.retain(|f| f.len() >= 6);
    v
}

/// The spellings of any of `secrets` found in `text`, with a few bytes around each (for an
/// assertion message that says where, without printing whole outputs twice).
pub fn secrets_in(text: &str, secrets: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for s in secrets {
        for f in spellings(s) {
            if let Some(i) = text.find(&f) {
                let mut from = i.saturating_sub(60);
                while !text.is_char_boundary(from) {
                    from -= 1;
                }
                let mut to = (i + f.len() + 60).min(text.len());
                while !text.is_char_boundary(to) {
                    to += 1;
                }
                found.push(format!("`{f}` in …{}…", &text[from..to]));
            }
        }
    }
    found
}

/// Runs `cmd` to its end with stdout and stderr captured; kills it and fails the test after
/// `limit` (naming the program and its arguments, never its environment, which may hold
/// secrets). Returns (exit code, stdout, stderr).
pub fn run_with_limit(mut cmd: Command, limit: Duration) -> (i32, Vec<u8>, Vec<u8>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("command starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stdout.read_to_end(&mut b);
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = stderr.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            // The program and its arguments only: the command's environment holds the secrets.
            let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
            let tail = |b: Vec<u8>| without_scripts(&String::from_utf8_lossy(&b), 40);
            panic!(
                "{} {} did not finish within {limit:?}; the end of its output:\n{}\n{}",
                cmd.get_program().to_string_lossy(),
                args.join(" "),
                tail(out.join().unwrap()),
                tail(err.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (code, out.join().unwrap(), err.join().unwrap())
}

/// The Scalelite API emulator on the controller's loopback, stopped when dropped.
pub struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts lab/emulators/scalelite.py on 127.0.0.1:`port` with `lb_secret` as its
/// LOADBALANCER_SECRET (polling every 2 s); waits until it listens.
pub fn start_scalelite_emulator(port: u16, lb_secret: &str) -> Emulator {
    let child = Command::new("python3")
        .arg(repo().join("lab/emulators/scalelite.py"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--quiet"])
        .env("LOADBALANCER_SECRET", lb_secret)
        .env("SERVER_ID_IS_HOSTNAME", "true")
        .env("POLL_INTERVAL", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs the Scalelite emulator");
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the Scalelite emulator did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Emulator(child)
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The lab's index K (its subnet is 10.77.K.0/24), from its lab.env.
pub fn lab_index(state: &Path) -> String {
    let env = std::fs::read_to_string(state.join("lab.env")).expect("lab.env");
    env.lines()
        .find_map(|l| l.strip_prefix("LAB_INDEX="))
        .expect("LAB_INDEX")
        .to_string()
}

/// `lab/pool.yml` for this lab: its ssh_config, its subnet and the emulator's port.
pub fn pool_inventory(state: &Path, net: &str, port: u16) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("lab/pool.yml")).expect("lab/pool.yml");
    let mut replaced = 0;
    let out: String = text
        .lines()
        .map(|l| {
            let new = match l {
                "ssh_config: .state/lab/ssh_config" => "ssh_config: ssh_config".to_string(),
                "    lab_net: \"10.77.0\"" => format!("    lab_net: \"{net}\""),
                "  url: http://127.0.0.1:18081/scalelite/api" => {
                    format!("  url: http://127.0.0.1:{port}/scalelite/api")
                }
                _ if l.starts_with("          address: 10.77.0.") => {
                    l.replace("10.77.0.", &format!("{net}."))
                }
                _ => return format!("{l}\n"),
            };
            replaced += 1;
            format!("{new}\n")
        })
        .collect();
    assert_eq!(
        replaced, 7,
        "lab/pool.yml changed shape: ssh_config, lab_net, the balancer url or the four node address lines not found"
    );
    let path = state.join("pool.yml");
    std::fs::write(&path, out).unwrap();
    path
}

/// The stand-in's pin in lab/pool.yml must be the sha256 of the file the lab serves.
pub fn check_standin_pin() {
    let repo = repo();
    let out = Command::new("sha256sum")
        .arg(repo.join("lab/www/bbb-install.sh"))
        .output()
        .expect("sha256sum");
    let sha = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let pool = std::fs::read_to_string(repo.join("lab/pool.yml")).unwrap();
    assert!(
        pool.contains(&format!("bbb_install_sha256: {sha}")),
        "lab/www/bbb-install.sh changed (sha256 {sha}): review it and pin the new sha256 in lab/pool.yml"
    );
}

/// Runs `script` (Python, reading one JSON `request` on stdin and printing one JSON line per
/// case, `{"ok": VALUE}` or `{"err": TEXT}`) with the pinned ansible-core venv's Python
/// (`ROLLOUT_ORACLE_PYTHON` at build time; `.ci/run` makes it in bench/.venv) and `env`;
/// returns the lines in order. `what` names the oracle in failures. Panics (fails the test)
/// when the Python is not set, does not run or the script fails.
pub fn ansible_oracle(
    what: &str,
    script: &str,
    env: &[(&str, &str)],
    request: &serde_json::Value,
) -> Vec<Result<serde_json::Value, String>> {
    use std::io::Write;
    let Some(python) = option_env!("ROLLOUT_ORACLE_PYTHON") else {
        panic!(
            "the {what} oracle needs ansible-core 2.19: build with ROLLOUT_ORACLE_PYTHON=<venv>/bin/python (.ci/run makes it in bench/.venv)"
        );
    };
    let mut child = Command::new(python)
        .args(["-c", script])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("ROLLOUT_ORACLE_PYTHON={python} does not run: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the {what} oracle ({python}) failed: is ansible-core 2.19 installed there?\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            match (v.get("ok"), v.get("err")) {
                (Some(ok), _) => Ok(ok.clone()),
                (_, Some(e)) => Err(e.as_str().unwrap().to_string()),
                _ => panic!("oracle line {l}"),
            }
        })
        .collect()
}
