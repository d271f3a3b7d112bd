//! Issue 8 on the lab (`lab/lab up --name watch --hosts 6`): while the example pool
//! (`lab/pool.yml`, as `tests/lab_pool.rs` maps it onto a lab, with secrets of its own) is
//! applied, upgraded (`rollout upgrade`), drained and undrained, every process started on
//! every host and on the controller is recorded with its argv: `strace -f -e
//! trace=execve,execveat` attached from the controller to each host's init (services systemd
//! starts) and sshd (everything a login runs; nspawn hosts' processes are visible in the
//! controller's PID namespace), and rollout itself run under `strace -f`. Polling /proc would
//! miss short processes. Then the test asserts:
//! - no spelling of any secret (`common::spellings`: the value, lower/upper case, reversed,
//!   quoted, escaped, URL-encoded, hex, base64) in any argv, on the hosts or the controller;
//! - every file on a host that holds a secret is no more open than the role step that writes
//!   it says (mode bits, owner, group), and readable by its owner and group only where no
//!   step documents it;
//! - nothing of rollout's is left in temporary places (/tmp, /var/tmp, /dev/shm, /run,
//!   root's home) on any host: every file there that the runs added is listed and must be
//!   the state of a service the roles run, not a file of rollout's.
//!
//! - akka-apps' copy of the secret (`/etc/bigbluebutton/bbb-apps-akka.conf`, created 0644 by
//!   its package) is closed by the bbb role's `property` step to 0640 root:bigbluebutton: no
//!   exemption; and the user akka-apps runs as can still read it, `nobody` cannot.
//!
//! What BigBlueButton's own tools do (bbb-conf's `sed` with the secret) is listed in
//! `upstream_argv`, reported on every run, and allowed only in exactly that form.
//!
//! Runs only with ROLLOUT_LAB_TESTS=1 (and root; ignored otherwise). The lab is taken down at
//! the end unless ROLLOUT_LAB_KEEP=1.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pool's secrets for this test (environment variable, value): mixed case, so that a
/// lowercased or uppercased copy is a different string, and unlike lab_pool's.
const SECRETS: &[(&str, &str)] = &[
    ("POOL_BBB_SECRET_H01", "WatchBbbH01-q7Rt2xKp9L"),
    ("POOL_BBB_SECRET_H02", "WatchBbbH02-Zm4Vn8cW3e"),
    ("POOL_BBB_SECRET_H03", "WatchBbbH03-Hy6Ds1bQ5u"),
    ("POOL_BBB_SECRET_H04", "WatchBbbH04-Pk9Gf3jT7a"),
    ("POOL_TURN_SECRET", "WatchTurn-Xe5Lw8sN2r"),
    ("POOL_LB_SECRET", "WatchLb-Cu3Ob7yM1v"),
    ("POOL_SECRET_KEY_BASE", "WatchKeyBase-Ji2Aq6zR8d"),
    ("POOL_POSTGRES_PASSWORD", "WatchPg-Ts4Fh9kE6w"),
    ("POOL_SIP_PASSWORD", "WatchSip-Nb7Ux1pG3y"),
];

fn secret(var: &str) -> &'static str {
    SECRETS.iter().find(|(k, _)| *k == var).unwrap().1
}

fn values() -> Vec<&'static str> {
    SECRETS.iter().map(|(_, v)| *v).collect()
}

/// A strace attached to running processes (`-p`), detached (SIGINT) and reaped on drop.
struct Trace {
    child: Child,
    file: PathBuf,
}

impl Trace {
    /// Traces `pids` and everything they start from now on into `file`; returns once strace
    /// has attached to all of them (their TracerPid is set).
    fn attach(pids: &[u32], file: &Path) -> Trace {
        let mut cmd = Command::new("strace");
        cmd.args([
            "-f",
            "-qq",
            "-e",
            "trace=execve,execveat",
            "-e",
            "signal=none",
            "-s",
            "65535",
            "-o",
        ])
        .arg(file);
        for p in pids {
            cmd.args(["-p", &p.to_string()]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("strace runs (apt-get install strace)");
        let t = Trace {
            child,
            file: file.to_path_buf(),
        };
        let start = Instant::now();
        while !pids.iter().all(|p| traced(*p)) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "strace did not attach to {pids:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        t
    }

    fn stop(mut self) -> String {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
        std::fs::read_to_string(&self.file).unwrap_or_default()
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid (already reaped: harmless ESRCH).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

fn traced(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("TracerPid:") && l.trim_end() != "TracerPid:\t0")
        })
        .unwrap_or(false)
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A host's init (the child of its systemd-nspawn, whose pid lab/lab keeps) and its sshd.
fn host_pids(lab: &common::Lab, host: &str) -> [u32; 2] {
    let nspawn: u32 = std::fs::read_to_string(lab.state.join(host).join("pid"))
        .expect("the host's nspawn pid")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(comm(nspawn), "systemd-nspawn", "{host}: pid {nspawn}");
    let init = *children(nspawn)
        .iter()
        .find(|p| comm(**p) == "systemd")
        .unwrap_or_else(|| panic!("{host}: no init under nspawn {nspawn}"));
    let sshd = *children(init)
        .iter()
        .find(|p| comm(**p) == "sshd")
        .unwrap_or_else(|| panic!("{host}: no sshd under init {init}"));
    [init, sshd]
}

/// Runs rollout under `strace -f` with the pool's secrets; returns (exit code, output).
fn traced_rollout(args: &[&str], trace: &Path, limit: Duration) -> (i32, String) {
    let mut cmd = Command::new("strace");
    cmd.args([
        "-f",
        "-qq",
        "-e",
        "trace=execve,execveat",
        "-e",
        "signal=none",
        "-s",
        "65535",
        "-o",
    ])
    .arg(trace)
    .arg(env!("CARGO_BIN_EXE_rollout"))
    .args(args)
    .envs(SECRETS.iter().copied())
    .stdin(Stdio::null());
    let (code, out, err) = common::run_with_limit(cmd, limit);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
    let found = common::secrets_in(&text, &values());
    assert!(found.is_empty(), "rollout printed a secret: {found:?}");
    (code, text)
}

/// A file step of the roles: its path (a pattern: `{{ ... }}` stands for anything), mode,
/// owner and group as written.
struct Documented {
    path: String,
    mode: u32,
    owner: String,
    group: String,
}

impl Documented {
    fn matches(&self, path: &str) -> bool {
        // The literal pieces between `{{ ... }}`, matched in order; each template any text.
        let mut lits = Vec::new();
        let mut rest = self.path.as_str();
        while let Some(i) = rest.find("{{") {
            lits.push(&rest[..i]);
            rest = rest[i..].split_once("}}").map_or("", |(_, r)| r);
        }
        if lits.is_empty() {
            return path == rest;
        }
        let Some(mut p) = path.strip_prefix(lits[0]) else {
            return false;
        };
        for lit in &lits[1..] {
            match p.find(lit) {
                Some(i) => p = &p[i + lit.len()..],
                None => return false,
            }
        }
        p.ends_with(rest)
    }
}

/// Every `file:` and `property:` step in roles/*/steps.yml with a mode.
fn documented_files() -> Vec<Documented> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(common::repo().join("roles")).unwrap() {
        let f = entry.unwrap().path().join("steps.yml");
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let steps: Vec<serde_json::Value> = serde_saphyr::from_str(&text).unwrap();
        for s in steps {
            let Some(file) = s.get("file").or_else(|| s.get("property")) else {
                continue;
            };
            let (Some(path), Some(mode)) = (file["path"].as_str(), file["mode"].as_str()) else {
                continue;
            };
            let field = |k: &str| file[k].as_str().unwrap_or("root").to_string();
            out.push(Documented {
                path: path.to_string(),
                mode: u32::from_str_radix(mode, 8).unwrap(),
                owner: field("owner"),
                group: field("group"),
            });
        }
    }
    out
}

/// What BigBlueButton's own tools do with the secret, not rollout: `bbb-conf --setip` (run
/// by bbb-install.sh, which the bbb role runs to install and upgrade) copies securitySalt
/// into akka-apps' file with `sed` on its command line (docs/sources.md, bbb-apps-akka.conf;
/// the lab's stand-in does as the real one). Listed, counted and reported, never hidden.
fn upstream_argv(line: &str) -> bool {
    line.contains(r#"execve("/usr/bin/sed", ["sed", "-i", "s/sharedSecret[ ]*=[ ]*\"[^\"]*\"/sharedSecret=\""#)
        && line.contains(r#"", "/etc/bigbluebutton/bbb-apps-akka.conf"]"#)
}

/// akka-apps' copy of the secret: its package creates it 0644 root:root; the bbb role's
/// `property` step closes it. akka-apps runs as this user (bbb-apps-akka.service `User=`).
const AKKA_CONF: &str = "/etc/bigbluebutton/bbb-apps-akka.conf";
const AKKA_USER: &str = "bigbluebutton";

/// Files in /run that the services the roles install keep there (pid files, locks, their
/// sockets), and systemd's and the journal's own: not rollout's.
const SERVICE_STATE: &[&str] = &[
    "/run/systemd/",
    "/run/udev/",
    "/run/log/journal/",
    "/run/user/",
    "/run/dbus/",
    "/run/nginx.pid",
    "/run/ufw.lock",
    "/run/adduser",
    "/run/turnserver/",
    "/run/motd.dynamic",
    "/run/utmp",
    "/run/sshd.pid",
    "/run/xtables.lock",
];

/// The temporary places of a host: every regular file, socket or link, one per line.
const TEMP_LIST: &str = "find /tmp /var/tmp /dev/shm /run /root -xdev ! -type d 2>/dev/null | sort";

#[test]
#[cfg_attr(
    not(lab_tests),
    ignore = "needs the lab: run as root with ROLLOUT_LAB_TESTS=1 (see README)"
)]
fn no_secret_in_any_argv_or_open_file_and_nothing_left_behind() {
    let lab = common::lab("watch", 6);
    common::check_standin_pin();
    let t0 = Instant::now();
    let phase = |what: &str| {
        eprintln!(
            "lab_watch: {what} after {:.0} s",
            t0.elapsed().as_secs_f64()
        )
    };
    let net = format!("10.77.{}", common::lab_index(&lab.state));
    let port = common::free_port();
    let _emulator = common::start_scalelite_emulator(port, secret("POOL_LB_SECRET"));
    let inv = common::pool_inventory(&lab.state, &net, port);
    let inv = inv.to_str().unwrap();

    let before: Vec<String> = lab.hosts.iter().map(|h| lab.ssh_ok(h, TEMP_LIST)).collect();
    let pids: Vec<u32> = lab.hosts.iter().flat_map(|h| host_pids(&lab, h)).collect();
    let traces = lab.state.join("traces");
    let _ = std::fs::remove_dir_all(&traces);
    std::fs::create_dir_all(&traces).unwrap();
    let hosts_trace = Trace::attach(&pids, &traces.join("hosts"));
    phase("tracing");

    // Apply the pool, upgrade two nodes (a batch of two), drain and undrain a third.
    let runs: &[(&str, &[&str], u64)] = &[
        ("apply", &["apply", inv, "--output", "plain"], 900),
        (
            "upgrade",
            &[
                "upgrade",
                inv,
                "--output",
                "plain",
                "--limit",
                "h01,h02",
                "--batch-size",
                "2",
            ],
            600,
        ),
        (
            "drain",
            &["drain", inv, "--output", "plain", "--limit", "h03"],
            120,
        ),
        (
            "undrain",
            &["undrain", inv, "--output", "plain", "--limit", "h03"],
            120,
        ),
    ];
    let mut controller = String::new();
    for (name, args, limit) in runs {
        let file = traces.join(format!("controller-{name}"));
        let (code, out) = traced_rollout(args, &file, Duration::from_secs(*limit));
        assert_eq!(
            code,
            0,
            "{name} failed:\n{}",
            common::without_scripts(&out, 60)
        );
        controller.push_str(&std::fs::read_to_string(&file).unwrap());
        phase(name);
    }
    let hosts = hosts_trace.stop();

    // The traces saw what ran: the controller's ssh, the hosts' shells and the upgrade.
    let execs = |t: &str| t.lines().filter(|l| l.contains("execve(")).count();
    assert!(
        controller.contains("execve(\"/usr/bin/ssh\""),
        "no ssh in the controller's trace"
    );
    assert!(
        hosts.contains("bbb-install") && hosts.contains("systemctl"),
        "the hosts' trace lacks bbb-install.sh or systemctl ({} execs)",
        execs(&hosts)
    );
    eprintln!(
        "lab_watch: {} processes on the hosts, {} on the controller",
        execs(&hosts),
        execs(&controller)
    );

    // 1. No spelling of a secret in any process's argv (the environment is not printed).
    for (place, trace) in [("a host", &hosts), ("the controller", &controller)] {
        let upstream = trace.lines().filter(|l| upstream_argv(l)).count();
        if upstream > 0 {
            eprintln!(
                "lab_watch: {upstream} upstream bbb-conf sed(s) with the secret on {place} (see upstream_argv)"
            );
        }
        let found: Vec<String> = trace
            .lines()
            .filter(|l| l.contains("execve") && !upstream_argv(l))
            .flat_map(|l| common::secrets_in(l, &values()))
            .collect();
        assert!(
            found.is_empty(),
            "a secret on a command line on {place}:\n{}",
            found.join("\n")
        );
    }

    // 2. Files holding a secret: no more open than the role step writing them says.
    let documented = documented_files();
    let mut patterns = String::new();
    for s in values() {
        for f in common::spellings(s) {
            patterns.push_str(&f);
            patterns.push('\n');
        }
    }
    let mut report = Vec::new();
    let mut wrong = Vec::new();
    for h in &lab.hosts {
        let list = lab.ssh_ok(
            h,
            &format!(
                "cat > /run/watch-patterns <<'EOF'\n{patterns}EOF\n\
                 grep -rlsF -f /run/watch-patterns /etc /opt /var /srv /home /root /tmp /run /dev/shm /usr/local 2>/dev/null \
                 | grep -v '^/run/watch-patterns$' | xargs -r stat -c '%n %U %G %a'; rm -f /run/watch-patterns"
            ),
        );
        for line in list.lines() {
            let f: Vec<&str> = line.rsplitn(4, ' ').collect();
            let (mode, group, owner, path) = (f[0], f[1], f[2], f[3]);
            let mode = u32::from_str_radix(mode, 8).unwrap();
            report.push(format!("{h} {path} {owner}:{group} {mode:o}"));
            let ok = match documented.iter().find(|d| d.matches(path)) {
                Some(d) => mode & !d.mode == 0 && owner == d.owner && group == d.group,
                None => mode & 0o007 == 0,
            };
            if !ok {
                wrong.push(format!("{h} {path} {owner}:{group} {mode:o}"));
            }
        }
    }
    eprintln!("lab_watch: files holding a secret:\n{}", report.join("\n"));
    assert!(
        wrong.is_empty(),
        "files holding a secret more open than documented:\n{}",
        wrong.join("\n")
    );
    // akka-apps' file: closed, yet readable by the user akka-apps runs as (closed too far,
    // akka-apps could not start; the lab's API emulator, which runs as that user too, could
    // not sign breakout joins), not by another.
    let mut akka = Vec::new();
    for h in &lab.hosts {
        let out = lab.ssh_ok(
            h,
            &format!(
                "if [ -e {AKKA_CONF} ]; then stat -c '%U:%G %a' {AKKA_CONF}; \
                 runuser -u {AKKA_USER} -- test -r {AKKA_CONF} && echo {AKKA_USER} reads; \
                 runuser -u nobody -- test -r {AKKA_CONF} && echo nobody reads; true; fi"
            ),
        );
        if !out.trim().is_empty() {
            akka.push((
                h.to_string(),
                out.split_whitespace().collect::<Vec<_>>().join(" "),
            ));
        }
    }
    eprintln!("lab_watch: {AKKA_CONF}: {akka:?}");
    assert!(!akka.is_empty(), "no host has {AKKA_CONF}");
    for (h, found) in &akka {
        assert_eq!(
            found,
            &format!("root:{AKKA_USER} 640 {AKKA_USER} reads"),
            "{h}: {AKKA_CONF}"
        );
    }

    // 3. Nothing left behind in temporary places: what the runs added there.
    let mut added = Vec::new();
    for (h, before) in lab.hosts.iter().zip(&before) {
        let before: BTreeSet<&str> = before.lines().collect();
        let after = lab.ssh_ok(h, TEMP_LIST);
        for f in after.lines().filter(|f| !before.contains(f)) {
            added.push(format!("{h} {f}"));
        }
    }
    eprintln!(
        "lab_watch: files added in temporary places:\n{}",
        added.join("\n")
    );
    let leftovers: Vec<&String> = added
        .iter()
        .filter(|f| {
            let path = f.split_once(' ').map_or("", |(_, p)| p);
            !SERVICE_STATE.iter().any(|s| path.starts_with(s))
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "rollout left files in temporary places:\n{leftovers:?}"
    );
    phase("checks");
}
