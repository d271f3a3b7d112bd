//! `--log-file PATH` (env `ROLLOUT_LOG_FILE`), as Ansible's `log_path`: every human line a
//! command prints (step lines, notes, warnings, errors and the summary; in the plain shape
//! also under `--output json` or progress bars) is appended to the file, each line behind the
//! time it was written and the process id. What goes in passes the same redaction as the
//! terminal's text and then [`crate::secret::redact_known`] once more, so the file holds no
//! secret value the process has read. The file is created with mode 0600 and appended to,
//! never truncated; it is opened before the command starts, so a path that cannot be written
//! stops the command (exit 2) before any host is contacted.
//!
//! One log per process: [`open`] sets it, [`lines`] writes to it from anywhere (a module of
//! its own, beside `secret`, so that every layer may write without an import circle).

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// The open log file of this process, if `--log-file` was given.
static LOG: OnceLock<Mutex<std::fs::File>> = OnceLock::new();

/// Opens `path` for appending (created with mode 0600 if missing; an existing file keeps its
/// mode and content) as this process's log. A second call keeps the first file.
///
/// # Errors
/// A text naming the path and the system's reason when it cannot be opened for appending
/// (missing folder, no permission, a directory).
pub fn open(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open the log file {}: {e}", path.display()))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(format!(
            "cannot open the log file {}: it is a directory",
            path.display()
        ));
    }
    let _ = LOG.set(Mutex::new(file));
    Ok(())
}

/// Is a log file open (so that callers may skip building text nobody reads)?
pub fn is_open() -> bool {
    LOG.get().is_some()
}

/// Appends every line of `text`, each as `TIME p=PID | LINE` (TIME in UTC, RFC 3339 to the
/// millisecond), after [`crate::secret::redact_known`]. Does nothing without a log file; a
/// failed write is ignored (the terminal still has the line, and a full disk must not end a
/// rolling upgrade half-way).
pub fn lines(text: &str) {
    let Some(log) = LOG.get() else {
        return;
    };
    let text = crate::secret::redact_known(text);
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Millisecond)
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let pid = std::process::id();
    let mut out = String::new();
    for l in text.trim_end_matches('\n').lines() {
        out.push_str(&format!("{now} p={pid} | {l}\n"));
    }
    let mut f = log.lock().unwrap_or_else(|e| e.into_inner());
    let _ = f.write_all(out.as_bytes());
}
