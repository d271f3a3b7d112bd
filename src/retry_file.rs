//! Ansible's retry file (`retry_files_enabled`): after a run where hosts failed or were
//! unreachable, their names one per line, for `--limit @FILE` on the next run
//! ([`crate::inventory::select`] reads it). Ansible writes `<playbook>.retry` when enabled
//! (off by default since ansible-core 2.8); rollout writes only where `--retry-file PATH`
//! says, so no file appears beside an inventory that may live in a repository.

use std::io::Write;
use std::path::{Path, PathBuf};

/// What [`update`] did with the retry file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written with these hosts (one a line, in the order given).
    Written(Vec<String>),
    /// Nothing failed: a retry file left there by an earlier run was removed (or none was
    /// there), so `--limit @FILE` never retries hosts that are fine now.
    NothingFailed,
}

/// Writes `failed` (host names) to `path`, one a line, atomically: a temporary file in the
/// same folder, flushed to disk, then renamed over `path`, so a reader never sees half a
/// list. With no failed host, removes `path` if it exists.
///
/// # Errors
/// The folder cannot be written, or an existing `path` cannot be removed (the message names
/// the file and the cause).
pub fn update(path: &Path, failed: &[String]) -> Result<Outcome, String> {
    if failed.is_empty() {
        return match std::fs::remove_file(path) {
            Ok(()) => Ok(Outcome::NothingFailed),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Outcome::NothingFailed),
            Err(e) => Err(format!(
                "cannot remove the old retry file {}: {e}",
                path.display()
            )),
        };
    }
    let text: String = failed.iter().map(|h| format!("{h}\n")).collect();
    // Beside the target (one file system, so the rename is atomic), named by this process.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write the retry file {}: {e}", path.display())
    })?;
    Ok(Outcome::Written(failed.to_vec()))
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
            format!("retry file: nothing failed, {} not written", path.display())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_failed_hosts_and_removes_the_file_when_none_failed() {
        let dir = std::env::temp_dir().join(format!("rollout-retry-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pool.retry");
        let out = update(&path, &["h2".into(), "h3".into()]).unwrap();
        assert_eq!(out, Outcome::Written(vec!["h2".into(), "h3".into()]));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "h2\nh3\n");
        // No temporary file is left beside it.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        assert_eq!(update(&path, &[]).unwrap(), Outcome::NothingFailed);
        assert!(!path.exists());
        assert_eq!(update(&path, &[]).unwrap(), Outcome::NothingFailed);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unwritable_folder_is_an_error_naming_the_file() {
        let e = update(Path::new("/nonexistent-dir/x.retry"), &["h".into()]).unwrap_err();
        assert!(e.contains("/nonexistent-dir/x.retry"), "{e}");
    }
}
