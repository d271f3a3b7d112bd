//! Ansible's retry file (`retry_files_enabled`): after a run where hosts failed or were
//! unreachable, their names one per line, for `--limit @FILE` on the next run
//! ([`crate::inventory::select`] reads it). Ansible writes `<playbook>.retry` when enabled
//! (off by default since ansible-core 2.8); rollout writes only where `--retry-file PATH`
//! says, so no file appears beside an inventory that may live in a repository.

use crate::error::Diagnostic;
use std::io::Write;
use std::path::Path;

/// What [`update`] did with the retry file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written with these hosts (one a line): the hosts an earlier run left there and this
    /// run did not select, then this run's failed hosts.
    Written(Vec<String>),
    /// No host is left to retry: this run's hosts all succeeded and the file named no other
    /// host, so an old retry file was removed (or none was there), and `--limit @FILE`
    /// never retries hosts that are fine now.
    NothingFailed,
}

/// Checks, before any host is contacted, that the retry file at `path` can be written
/// later: it is not a folder, its folder takes a new file (one is created there and
/// removed), and an existing file is readable (its hosts are kept, see [`update`]).
///
/// # Errors
/// A diagnostic naming the file and the cause; the run must not start (exit 2).
pub fn check(path: &Path) -> Result<(), Diagnostic> {
    let bad = |m: String| Diagnostic::file(path, format!("--retry-file: {m}"));
    if path.is_dir() {
        return Err(bad("this is a folder; name a file".into()));
    }
    tempfile::Builder::new()
        .prefix(".rollout-retry-check")
        .tempfile_in(folder(path))
        .map_err(|e| bad(format!("cannot create a file in its folder: {e}")))?;
    read_old(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    Ok(())
}

/// The folder `path` is in (`.` for a bare file name).
fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The hosts in an existing retry file at `path` (none when it does not exist).
fn read_old(path: &Path) -> std::io::Result<Vec<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Brings the retry file at `path` up to date after a run over the hosts `ran`, of which
/// `failed` failed or were unreachable. The file keeps the hosts an earlier run left there
/// that this run did not select (a narrower `--limit` does not lose them) and that are still
/// in the inventory (`known`: a host taken out could never be retried, and `--limit @FILE`
/// would refuse its name), loses the hosts this run ran without failure, and gains this
/// run's failed hosts (after the kept ones, in
/// the order given). It is written atomically (a temporary file in the same folder, flushed,
/// renamed over `path`), so a reader never sees half a list; with no host left, `path` is
/// removed if it exists.
///
/// # Errors
/// The old file cannot be read, the folder cannot be written, or an existing `path` cannot
/// be removed (the message names the file and the cause).
pub fn update(
    path: &Path,
    ran: &[String],
    failed: &[String],
    known: &dyn Fn(&str) -> bool,
) -> Result<Outcome, String> {
    let mut hosts: Vec<String> = read_old(path)
        .map_err(|e| format!("cannot read the retry file {}: {e}", path.display()))?
        .into_iter()
        .filter(|h| !ran.contains(h) && known(h))
        .collect();
    for h in failed {
        if !hosts.contains(h) {
            hosts.push(h.clone());
        }
    }
    if hosts.is_empty() {
        return match std::fs::remove_file(path) {
            Ok(()) => Ok(Outcome::NothingFailed),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Outcome::NothingFailed),
            Err(e) => Err(format!(
                "cannot remove the old retry file {}: {e}",
                path.display()
            )),
        };
    }
    let text: String = hosts.iter().map(|h| format!("{h}\n")).collect();
    let write = || -> std::io::Result<()> {
        // Beside the target (one file system, so the rename is atomic).
        let mut f = tempfile::Builder::new()
            .prefix(".rollout-retry")
            .tempfile_in(folder(path))?;
        f.write_all(text.as_bytes())?;
        f.as_file().sync_all()?;
        f.persist(path).map_err(|e| e.error)?;
        Ok(())
    };
    write().map_err(|e| format!("cannot write the retry file {}: {e}", path.display()))?;
    Ok(Outcome::Written(hosts))
}

/// The line telling the operator what happened to the retry file at `path`.
pub fn describe(path: &Path, outcome: &Outcome) -> String {
    match outcome {
        Outcome::Written(hosts) => format!(
            "retry file: {} ({} host{}); run again with --limit @{}",
            path.display(),
            hosts.len(),
            if hosts.len() == 1 { "" } else { "s" },
            path.display()
        ),
        Outcome::NothingFailed => {
            format!(
                "retry file: no host left to retry, {} removed or not written",
                path.display()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keeps_hosts_not_run_drops_the_ones_that_passed_and_adds_failures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pool.retry");
        let all = |_: &str| true;
        let out = update(
            &path,
            &hosts(&["h1", "h2", "h3"]),
            &hosts(&["h2", "h3"]),
            &all,
        )
        .unwrap();
        assert_eq!(out, Outcome::Written(hosts(&["h2", "h3"])));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "h2\nh3\n");
        // No temporary file is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A narrower run (only h2) that passes keeps h3, which it did not run.
        let out = update(&path, &hosts(&["h2"]), &[], &all).unwrap();
        assert_eq!(out, Outcome::Written(hosts(&["h3"])));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "h3\n");
        // A run of h1 that fails adds it after the kept host.
        update(&path, &hosts(&["h1"]), &hosts(&["h1"]), &all).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "h3\nh1\n");
        // Once every host in it has passed, the file goes.
        let out = update(&path, &hosts(&["h1", "h3"]), &[], &all).unwrap();
        assert_eq!(out, Outcome::NothingFailed);
        assert!(!path.exists());
        assert_eq!(
            update(&path, &hosts(&["h1"]), &[], &all).unwrap(),
            Outcome::NothingFailed
        );
        // A host no longer in the inventory leaves the file (it could never be retried).
        std::fs::write(&path, "gone\nh2\n").unwrap();
        let known = |h: &str| h != "gone";
        let out = update(&path, &hosts(&["h1"]), &[], &known).unwrap();
        assert_eq!(out, Outcome::Written(hosts(&["h2"])));
    }

    #[test]
    fn an_unwritable_folder_is_an_error_naming_the_file() {
        let path = Path::new("/nonexistent-dir/x.retry");
        let e = update(path, &[], &hosts(&["h"]), &|_: &str| true).unwrap_err();
        assert!(e.contains("/nonexistent-dir/x.retry"), "{e}");
        let d = check(path).unwrap_err();
        assert_eq!(d.file, path);
        assert!(d.message.starts_with("--retry-file: cannot create"), "{d}");
        let dir = tempfile::tempdir().unwrap();
        let d = check(dir.path()).unwrap_err();
        assert!(d.message.contains("folder"), "{d}");
        let ok = dir.path().join("x.retry");
        check(&ok).unwrap();
        // The check leaves nothing behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
