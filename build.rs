//! Build script: marks the build as one that runs the lab tests when `ROLLOUT_LAB_TESTS=1`
//! (the README's test command), so that without it `cargo test` reports the lab tests as
//! *ignored* (with the reason) instead of passing them silently; and records for `rollout
//! --version` the git commit it was built from (`ROLLOUT_GIT_COMMIT`, absent outside a git
//! checkout) and the minijinja version locked in `Cargo.lock` (`ROLLOUT_MINIJINJA_VERSION`).
//! Likewise the Jinja2 oracle test (`tests/jinja_oracle.rs`) runs when `ROLLOUT_ORACLE_PYTHON`
//! names a Python with ansible-core 2.19.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(lab_tests)");
    println!("cargo::rerun-if-env-changed=ROLLOUT_LAB_TESTS");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(jinja_oracle)");
    println!("cargo::rerun-if-env-changed=ROLLOUT_ORACLE_PYTHON");
    if std::env::var_os("ROLLOUT_ORACLE_PYTHON").is_some_and(|p| !p.is_empty()) {
        println!("cargo::rustc-cfg=jinja_oracle");
    }
    if std::env::var("ROLLOUT_LAB_TESTS").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=lab_tests");
    }
    println!("cargo::rerun-if-changed=Cargo.lock");
    if let Some(v) = locked_version("minijinja") {
        println!("cargo::rustc-env=ROLLOUT_MINIJINJA_VERSION={v}");
    }
    if let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) {
        println!("cargo::rustc-env=ROLLOUT_GIT_COMMIT={commit}");
        // HEAD's reflog changes with every commit, checkout and rebase.
        if let Some(log) = git(&["rev-parse", "--git-path", "logs/HEAD"]) {
            println!("cargo::rerun-if-changed={log}");
        }
    }
}

/// `git ARGS` in the crate's folder, its first output line; None without git or a checkout.
fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let line = String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .next()?
        .trim()
        .to_string();
    (!line.is_empty()).then_some(line)
}

/// The version of package `name` in Cargo.lock (`name = "..."` followed by `version = "..."`).
fn locked_version(name: &str) -> Option<String> {
    let lock = std::fs::read_to_string("Cargo.lock").ok()?;
    let mut lines = lock.lines();
    let want = format!("name = \"{name}\"");
    lines.find(|l| l.trim() == want)?;
    let v = lines.next()?.trim().strip_prefix("version = \"")?;
    Some(v.trim_end_matches('"').to_string())
}
