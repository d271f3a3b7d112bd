//! End-to-end tests of the engine on real lab hosts (systemd, sshd, apt through the lab's
//! proxy): convergence of 12 hosts and a no-op second run, a host stopped mid-run, a file
//! write interrupted by killing the remote shell, and strict host keys.

mod common;

use common::{brief, lab, repo, rollout, summary_counts};
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lab tests share the machine's two cores; run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn fixture() -> std::path::PathBuf {
    repo().join("tests/fixtures/lab_engine")
}

#[test]
#[cfg_attr(
    not(lab_tests),
    ignore = "needs the lab: run as root with ROLLOUT_LAB_TESTS=1 (see README)"
)]
fn apply_converges_twelve_hosts_and_a_second_run_changes_nothing() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("eng", 12);
    std::fs::write(lab.state.join("app_secret"), "lab-secret-7f3a9c\n").unwrap();
    let inv = lab.inventory(
        "engine.yml",
        &fixture(),
        &["engine"],
        "app_secret: {secret: \"file:app_secret\"}",
    );
    let inv = inv.to_str().unwrap();

    let (code, out, err) = rollout(&["apply", inv, "--output", "plain", "-v"]);
    assert_eq!(code, 0, "first apply failed:\n{}", brief(&out, &err));
    let (hosts, changes, failed) = summary_counts(&out);
    assert_eq!((hosts, failed), (12, 0));
    // 10 steps change on a fresh host; the port barrier waits for the restarted app and
    // reports ok (README), although the port was not open at the check.
    assert_eq!(changes, 12 * 10, "{out}");
    assert!(
        !out.contains("lab-secret-7f3a9c") && !err.contains("lab-secret-7f3a9c"),
        "the secret was printed"
    );

    // What a user would check by hand.
    assert_eq!(
        lab.ssh_ok("h07", "cat /opt/app/app.conf"),
        "# managed by rollout\nname=h07\nsecret=lab-secret-7f3a9c\n"
    );
    assert_eq!(
        lab.ssh_ok("h07", "stat -c '%a %U' /opt/app/app.conf"),
        "640 root\n"
    );
    assert_eq!(
        lab.ssh_ok(
            "h03",
            "systemctl is-active rollout-app; systemctl is-enabled rollout-app"
        ),
        "active\nenabled\n"
    );
    assert!(
        lab.ssh_ok("h12", "dpkg-query -W -f='${Status}' tree")
            .contains("installed")
    );
    assert!(
        lab.ssh_ok("h01", "curl -s http://127.0.0.1:8081/app.conf")
            .contains("name=h01")
    );

    let (code, out, err) = rollout(&["apply", inv, "--output", "plain"]);
    assert_eq!(code, 0, "second apply failed:\n{}", brief(&out, &err));
    assert_eq!(
        summary_counts(&out),
        (12, 0, 0),
        "a second apply changes nothing:\n{out}"
    );

    // Drift on one host is found by plan (with a diff) and repaired by apply.
    lab.ssh_ok("h05", "sed -i 's/disableRecordingDefault=true/disableRecordingDefault=false/' /opt/app/bbb-web.properties");
    let (code, out, _) = rollout(&["plan", inv, "--output", "plain"]);
    assert_eq!(code, 0);
    assert!(out.contains("h05: ~ engine: recordings off (set disableRecordingDefault)\n    -disableRecordingDefault=false\n    +disableRecordingDefault=true\n"), "{out}");
    assert_eq!(summary_counts(&out), (12, 1, 0));
    let (_, out, _) = rollout(&["apply", inv, "--output", "plain", "--limit", "h05"]);
    assert_eq!(summary_counts(&out), (1, 1, 0));
}

#[test]
#[cfg_attr(
    not(lab_tests),
    ignore = "needs the lab: run as root with ROLLOUT_LAB_TESTS=1 (see README)"
)]
fn a_host_stopped_mid_run_is_unreachable_while_the_others_finish() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("engstop", 4);
    std::fs::write(lab.state.join("app_secret"), "lab-secret-stop\n").unwrap();
    let inv = lab.inventory(
        "engine.yml",
        &fixture(),
        &["engine"],
        "app_secret: {secret: \"file:app_secret\"}\nslow_seconds: 20",
    );
    let err_log = lab.state.join("stop-run.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollout"))
        .args(["apply", inv.to_str().unwrap(), "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err_log).unwrap())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let started = Instant::now();
    let mut stopped = false;
    let mut summary = String::new();
    let mut seen: Vec<String> = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        seen.push(line.clone());
        if !stopped
            && line.contains("\"step_begin\"")
            && line.contains("\"host\":\"h02\"")
            && line.contains("slow step")
        {
            lab.lab_cmd(&["stop", "h02"]);
            stopped = true;
        }
        if line.contains("\"summary\"") {
            summary = line;
        }
        // 600 s: the run takes ~35 s, but the lab's apt-cacher-ng now and then leaves an
        // `apt-get update` hanging, which the apt step's 300 s watchdog ends and retries.
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "run did not finish; its last events:\n{}\nstderr:\n{}",
            seen[seen.len().saturating_sub(30)..].join("\n"),
            std::fs::read_to_string(&err_log).unwrap_or_default()
        );
    }
    let status = child.wait().unwrap();
    assert!(stopped, "h02 never reached the slow step");
    assert_eq!(status.code(), Some(1), "a lost host makes the run fail");
    let v: serde_json::Value = serde_json::from_str(&summary).unwrap();
    for h in v["hosts"].as_array().unwrap() {
        let name = h["host"].as_str().unwrap();
        let status = h["outcome"]["status"].as_str().unwrap();
        if name == "h02" {
            assert_eq!(status, "unreachable", "{h}");
            assert!(
                h["outcome"]["reason"]
                    .as_str()
                    .unwrap()
                    .contains("slow step"),
                "the reason names the step: {h}"
            );
        } else {
            assert_eq!(status, "ok", "{h}");
        }
    }
    lab.lab_cmd(&["start", "h02"]);
}

/// Waits on h01 for rollout's write of a file (`base64 -d` writing into it) and, once the
/// first bytes have landed, sends `signal` to that process's whole process group: the remote
/// shell of rollout's SSH session and everything it runs, as a lost connection or a shutdown
/// would. Only processes of this lab host are touched. Prints what it did. When the test says
/// rollout's run has ended (`RUN_DONE` exists) without a write seen (a loaded machine may not
/// schedule the watcher during a write of a fraction of a second), it says so and ends.
const KILL_THE_WRITER: &str = r#"
sig=$1
SECONDS=0
until pid=$(pgrep -n -x -f 'base64 -d'); do
  [ ! -e /run/rollout-test-run-done ] || { echo "the write ended before it could be killed"; exit 0; }
  (( SECONDS < 300 )) || { echo "no write seen within 300 s"; exit 1; }
done
while ! [ -s "/proc/$pid/fd/1" ] && [ -d "/proc/$pid" ]; do :; done
pg=$(ps -o pgid= -p "$pid" | tr -d ' ')
[ -n "$pg" ] || { echo "the write ended before it could be killed"; exit 0; }
kill -s "$sig" -- "-$pg"
echo "sent $sig to process group $pg (writer $pid)"
"#;

#[test]
#[cfg_attr(
    not(lab_tests),
    ignore = "needs the lab: run as root with ROLLOUT_LAB_TESTS=1 (see README)"
)]
fn killing_the_remote_shell_mid_write_leaves_the_old_or_the_new_file_and_no_temp_file() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("engkill", 1);
    std::fs::write(lab.state.join("app_secret"), "lab-secret-kill\n").unwrap();
    // About 7.6 MB per version (the template repeats one line), so the write takes long
    // enough to be caught in the middle.
    const LINES: usize = 120_000;
    let content = |i: usize| format!("{i}:{}\n", "x".repeat(60)).repeat(LINES);
    let sha = |s: &str| rollout::script::sha256_hex(s.as_bytes());
    let inventory = |i: usize| {
        let vars = format!(
            "app_secret: {{secret: \"file:app_secret\"}}\nbig_seed: {i}\nbig_lines: {LINES}"
        );
        lab.inventory("engine.yml", &fixture(), &["engine"], &vars)
    };
    let inv = inventory(0);
    let (code, out, err) = rollout(&["apply", inv.to_str().unwrap(), "--output", "plain"]);
    assert_eq!(code, 0, "{}", brief(&out, &err));
    let remote_sha = || {
        lab.ssh_ok("h01", "sha256sum < /opt/app/big.bin | cut -d' ' -f1")
            .trim()
            .to_string()
    };
    assert_eq!(remote_sha(), sha(&content(0)));
    let mut current = sha(&content(0));
    let mut cut_short = 0;
    for (i, signal) in [(1, "TERM"), (2, "HUP"), (3, "INT"), (4, "TERM")] {
        let inv = inventory(i);
        let ssh_config = lab.state.join("ssh_config");
        lab.ssh_ok("h01", "rm -f /run/rollout-test-run-done");
        let watcher = std::thread::spawn(move || {
            Command::new("ssh")
                .args(["-F", ssh_config.to_str().unwrap(), "h01", "bash", "-c"])
                .arg(rollout::script::quote(KILL_THE_WRITER))
                .args(["kill-the-writer", signal])
                .output()
                .expect("ssh runs")
        });
        // The watcher is logged in and polling before rollout starts.
        std::thread::sleep(Duration::from_millis(1500));
        let run = Command::new(env!("CARGO_BIN_EXE_rollout"))
            .args(["apply", inv.to_str().unwrap(), "--output", "plain"])
            .output()
            .unwrap();
        lab.ssh_ok("h01", "touch /run/rollout-test-run-done");
        let w = watcher.join().unwrap();
        let said = String::from_utf8_lossy(&w.stdout).into_owned();
        assert!(
            w.status.success(),
            "the watcher failed: {said}{}",
            String::from_utf8_lossy(&w.stderr)
        );
        let remote = remote_sha();
        let new = sha(&content(i));
        assert!(
            remote == current || remote == new,
            "after SIG{signal} ({said}) big.bin is neither the old nor the new file; rollout said:\n{}",
            String::from_utf8_lossy(&run.stdout)
        );
        // Once every process of the signalled group has ended (a subshell may still be in
        // its trap when rollout's session closes).
        let pg = said
            .split_whitespace()
            .skip_while(|w| *w != "group")
            .nth(1)
            .unwrap_or("0");
        let left = lab.ssh_ok(
            "h01",
            &format!(
                "for i in $(seq 100); do kill -0 -- -{pg} 2>/dev/null || break; sleep 0.1; done; ls -A /opt/app | grep '^[.]rollout[.]' || true"
            ),
        );
        assert_eq!(left, "", "SIG{signal} ({said}) left a temporary file");
        if remote == current && said.starts_with("sent") {
            cut_short += 1;
            assert_ne!(
                run.status.code(),
                Some(0),
                "rollout reported success for a write that was killed"
            );
        }
        current = remote;
    }
    // Otherwise every write finished before the signal and this test proved nothing.
    assert!(
        cut_short > 0,
        "no signal landed before a write was renamed into place"
    );
}

#[test]
#[cfg_attr(
    not(lab_tests),
    ignore = "needs the lab: run as root with ROLLOUT_LAB_TESTS=1 (see README)"
)]
fn become_through_sudo_and_strict_host_keys() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab("engkeys", 1);
    let fixture = repo().join("tests/fixtures/lab_become");
    // Log in as `deploy` (passwordless sudo in the lab) and become root for the steps.
    let ssh_config = std::fs::read_to_string(lab.state.join("ssh_config")).unwrap();
    let inv_text = format!(
        "ssh_config: ssh_config\nroles_path: {}\ntemplates_path: {}\nall:\n  hosts:\n    h01:\n      user: deploy\n      become: true\n      roles: [become]\n",
        fixture.join("roles").display(),
        fixture.join("templates").display()
    );
    std::fs::write(lab.state.join("become.yml"), &inv_text).unwrap();
    let inv = lab.state.join("become.yml");
    let (code, out, err) = rollout(&["apply", inv.to_str().unwrap(), "--output", "plain"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        lab.ssh_ok("h01", "stat -c '%U %a' /etc/rollout-become.conf"),
        "root 600\n"
    );
    assert_eq!(
        lab.ssh_ok("h01", "cat /etc/rollout-become.conf"),
        "written as root by deploy\n"
    );

    // The login user from ssh_config alone (`User deploy`, no `user:` in the inventory):
    // become still goes through sudo, decided on the host (issue 7 item 3).
    lab.ssh_ok("h01", "rm -f /etc/rollout-become.conf");
    std::fs::write(
        lab.state.join("ssh_config_deploy"),
        ssh_config.replace("User root", "User deploy"),
    )
    .unwrap();
    std::fs::write(
        lab.state.join("deploy.yml"),
        inv_text
            .replace("ssh_config: ssh_config", "ssh_config: ssh_config_deploy")
            .replace("      user: deploy\n", ""),
    )
    .unwrap();
    let deploy_inv = lab.state.join("deploy.yml");
    let (code, out, err) = rollout(&["apply", deploy_inv.to_str().unwrap(), "--output", "plain"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        lab.ssh_ok("h01", "stat -c '%U %a' /etc/rollout-become.conf"),
        "root 600\n"
    );

    // An ad-hoc command becomes root the same way (`rollout exec`, as `ansible -b`).
    let (code, out, err) = rollout(&[
        "exec",
        deploy_inv.to_str().unwrap(),
        "-l",
        "h01",
        "--",
        "id",
        "-u",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("h01 | CHANGED | rc=0 >>") && out.lines().any(|l| l == "0"),
        "{out}"
    );

    // A host whose key is not in known_hosts is refused by default...
    let keys = lab.state.join("empty_known_hosts");
    std::fs::write(&keys, "").unwrap();
    let strict = ssh_config.replace(
        lab.state.join("known_hosts").to_str().unwrap(),
        keys.to_str().unwrap(),
    );
    std::fs::write(lab.state.join("ssh_config_strict"), strict).unwrap();
    std::fs::write(
        lab.state.join("strict.yml"),
        inv_text.replace("ssh_config: ssh_config", "ssh_config: ssh_config_strict"),
    )
    .unwrap();
    let strict_inv = lab.state.join("strict.yml");
    let (code, out, _) = rollout(&["plan", strict_inv.to_str().unwrap(), "--output", "plain"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("h01: UNREACHABLE") && out.contains("Host key verification failed"),
        "{out}"
    );
    // ...and accepted (and remembered) only when the operator says so.
    let (code, out, err) = rollout(&[
        "plan",
        strict_inv.to_str().unwrap(),
        "--output",
        "plain",
        "--accept-new-host-keys",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        std::fs::read_to_string(&keys)
            .unwrap()
            .contains("ssh-ed25519"),
        "the new key was remembered"
    );

    // A host whose key changed (a reinstalled machine, or someone in the middle) is refused,
    // with or without --accept-new-host-keys (which accepts unknown hosts only), and nothing
    // runs on it.
    lab.ssh_ok(
        "h01",
        "rm -f /etc/ssh/ssh_host_ed25519_key* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && rm -f /etc/rollout-become.conf && (systemctl try-restart ssh.service || true)",
    );
    std::thread::sleep(Duration::from_secs(1));
    for extra in [None, Some("--accept-new-host-keys")] {
        let mut args = vec!["apply", inv.to_str().unwrap(), "--output", "plain"];
        args.extend(extra);
        let (code, out, err) = rollout(&args);
        assert_eq!(code, 1, "a changed host key must fail the run: {out}{err}");
        assert!(
            out.contains("h01: UNREACHABLE")
                && out.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
                && out.contains("Host key verification failed"),
            "the reason names the changed key: {out}{err}"
        );
    }
    // Looked at past the changed key: the file rollout would have written is still gone.
    let look = Command::new("ssh")
        .args([
            "-F",
            lab.state.join("ssh_config").to_str().unwrap(),
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "h01",
            "test ! -e /etc/rollout-become.conf && echo untouched",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&look.stdout), "untouched\n");
    let known = std::fs::read_to_string(lab.state.join("known_hosts")).unwrap();
    let ours = Command::new("ssh-keyscan")
        .args(["-t", "ed25519", &lab_address(&lab, "h01")])
        .output()
        .unwrap();
    let new_key = String::from_utf8_lossy(&ours.stdout);
    let new_key = new_key.split_whitespace().nth(2).unwrap_or("(no key)");
    assert!(
        !known.contains(new_key),
        "the changed key was written to known_hosts"
    );
}

/// A lab host's address, from the lab's `hosts` file.
fn lab_address(lab: &common::Lab, host: &str) -> String {
    std::fs::read_to_string(lab.state.join("hosts"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{host} ")))
        .unwrap_or_else(|| panic!("{host} not in the lab's hosts file"))
        .trim()
        .to_string()
}

/// Become with a sudo password (issue 7 item 3): a login user whose sudo asks for its
/// password every time (`timestamp_timeout=0`), the password from `--become-password-file`
/// sent on stdin before the script. A wrong password fails the host with one clear line and
/// touches nothing; neither password shows in any output, in any spelling.
#[test]
#[cfg_attr(
    not(lab_tests),
    ignore = "needs the lab: run as root with ROLLOUT_LAB_TESTS=1 (see README)"
)]
fn become_with_a_sudo_password_from_a_file() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab(&common::lab_name("becomepw"), 1);
    let password = "Lab-pw 93xq'Z";
    let wrong = "Wrong-pw-71kd";
    lab.ssh_ok(
        "h01",
        &format!(
            "useradd -m -s /bin/sh pwuser && printf 'pwuser:%s\\n' {} | chpasswd \
             && printf 'pwuser ALL=(ALL) ALL\\nDefaults:pwuser timestamp_timeout=0\\n' > /etc/sudoers.d/pwuser \
             && chmod 440 /etc/sudoers.d/pwuser && visudo -cq \
             && install -d -m 700 -o pwuser -g pwuser /home/pwuser/.ssh \
             && install -m 600 -o pwuser -g pwuser /root/.ssh/authorized_keys /home/pwuser/.ssh/authorized_keys",
            shell_quote(password)
        ),
    );
    // sudo really asks pwuser for a password.
    assert_ne!(
        lab.ssh("h01", "su -s /bin/sh pwuser -c 'sudo -n true'")
            .status
            .code(),
        Some(0)
    );
    let fixture = repo().join("tests/fixtures/lab_become");
    std::fs::write(
        lab.state.join("pw.yml"),
        format!(
            "ssh_config: ssh_config\nroles_path: {}\ntemplates_path: {}\nall:\n  hosts:\n    h01:\n      user: pwuser\n      become: true\n      roles: [become]\n",
            fixture.join("roles").display(),
            fixture.join("templates").display()
        ),
    )
    .unwrap();
    let inv = lab.state.join("pw.yml");
    let inv = inv.to_str().unwrap();
    let good = lab.state.join("become-pass");
    std::fs::write(&good, format!("{password}\n")).unwrap();
    let bad = lab.state.join("become-pass-wrong");
    std::fs::write(&bad, format!("{wrong}\n")).unwrap();

    // Without a password, sudo -n is refused: the host fails, nothing is written.
    let (code, out, err) = rollout(&["apply", inv, "--output", "plain"]);
    assert_eq!(code, 1, "{out}{err}");

    // A wrong password: one clear line for the host, exit 1, nothing written.
    let (code, out, err) = rollout(&[
        "apply",
        inv,
        "--output",
        "plain",
        "-v",
        "--become-password-file",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("the become password was refused"), "{all}");
    assert_eq!(
        common::secrets_in(&all, &[wrong, password]),
        Vec::<String>::new()
    );
    assert_eq!(
        lab.ssh_ok(
            "h01",
            "test -e /etc/rollout-become.conf && echo there || echo absent"
        ),
        "absent\n"
    );

    // The right password: the steps run as root.
    let (code, out, err) = rollout(&[
        "apply",
        inv,
        "--output",
        "plain",
        "-v",
        "--become-password-file",
        good.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    assert_eq!(
        common::secrets_in(&all, &[wrong, password]),
        Vec::<String>::new()
    );
    assert_eq!(
        lab.ssh_ok("h01", "stat -c '%U %a' /etc/rollout-become.conf"),
        "root 600\n"
    );
}

/// `s` single-quoted for sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The dpkg lock held by another package run (unattended-upgrades on a fresh machine, an
/// operator's `apt-get`; issue 12 item 6, "the dpkg lock held"): the apply waits it out and
/// installs, instead of failing the host, and the other run finishes undisturbed. (The apt
/// step waits on the lock, `DPkg::Lock::Timeout=600`; its retries would also ride out a
/// short hold: with the timeout set to 0 this test still passed, 81 s against 69 s for a
/// 65 s hold. It checks the invariant, survival, not which of the two got it there.) The holder is a real `dpkg -i` of a package whose preinst sleeps,
/// so dpkg's own locks (`lock-frontend` and `lock`) are held as they are in the field.
#[test]
#[cfg_attr(
    not(lab_tests),
    ignore = "needs the lab: run as root with ROLLOUT_LAB_TESTS=1 (see README)"
)]
fn a_held_dpkg_lock_is_waited_for_not_failed() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let lab = lab(&common::lab_name("dpkglock"), 1);
    const HOLD_SECONDS: u64 = 25;
    lab.ssh_ok(
        "h01",
        &format!(
            "set -e; d=$(mktemp -d); mkdir $d/DEBIAN; \
             printf 'Package: rollout-lock-holder\\nVersion: 1\\nArchitecture: all\\nMaintainer: lab <lab@lab.invalid>\\nDescription: holds the dpkg lock for a test\\n' > $d/DEBIAN/control; \
             printf '#!/bin/sh\\ntouch /run/holder-started\\nsleep {HOLD_SECONDS}\\n' > $d/DEBIAN/preinst; \
             chmod 755 $d/DEBIAN/preinst; dpkg-deb -b $d /root/holder.deb >/dev/null; \
             systemd-run --unit=rollout-lock-holder --collect dpkg -i /root/holder.deb >/dev/null 2>&1; \
             for i in $(seq 1 100); do [ -e /run/holder-started ] && exit 0; sleep 0.1; done; exit 1"
        ),
    );
    let started = Instant::now();
    let inv = lab.inventory(
        "dpkg.yml",
        &repo().join("tests/fixtures/lab_dpkg"),
        &["pkg"],
        "",
    );
    let (code, out, err) = rollout(&["apply", inv.to_str().unwrap(), "--output", "plain", "-v"]);
    let took = started.elapsed();
    assert_eq!(
        code,
        0,
        "apply failed under a held dpkg lock:\n{}",
        brief(&out, &err)
    );
    // It waited for the holder (which ran for HOLD_SECONDS from just before `started`).
    assert!(
        took >= Duration::from_secs(HOLD_SECONDS - 5),
        "apply ended after {took:?}, before the lock was free"
    );
    assert!(
        lab.ssh_ok("h01", "dpkg-query -W -f='${Status}' tree")
            .contains("install ok installed")
    );
    assert!(
        lab.ssh_ok("h01", "dpkg-query -W -f='${Status}' rollout-lock-holder")
            .contains("install ok installed"),
        "the other package run was disturbed"
    );
}
