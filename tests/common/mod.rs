//! Shared helpers for end-to-end tests on lab hosts (`lab/lab`).
//!
//! Lab tests run when `ROLLOUT_LAB_TESTS=1` (the README's test command sets it): `build.rs`
//! then sets `cfg(lab_tests)`. Without it they are `#[ignore]`d with the reason, so `cargo
//! test` reports them as ignored, never as passed. A lab that cannot start fails the test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Lab {
    pub name: String,
    pub state: PathBuf,
    pub hosts: Vec<String>,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

impl Drop for Lab {
    /// Labs go down when their test ends (fewer idle hosts for the tests after it);
    /// `ROLLOUT_LAB_KEEP=1` keeps them for inspection.
    fn drop(&mut self) {
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

/// A failed run's output for an assertion message (see [`without_scripts`]).
pub fn brief(stdout: &str, stderr: &str) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        without_scripts(stdout, usize::MAX),
        without_scripts(stderr, usize::MAX)
    )
}
