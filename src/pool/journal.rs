//! The controller's journal of pool operations: which phase every node is in, so that a
//! rollout killed mid-upgrade continues where it stopped, and `rollout status` can show a
//! node that an interrupted run left cordoned. One JSON file per inventory under
//! `$ROLLOUT_STATE_DIR`, else `$XDG_STATE_HOME/rollout/`, else `~/.local/state/rollout/`;
//! written atomically (temporary file, fsync, rename) before every balancer change, so the
//! journal never claims less than what happened. A lock file keeps two rollouts from working
//! on the same pool at once.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the journal or its lock cannot be used. Nothing in the pool is changed after one.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the journal {} is damaged ({source}); move it away to start afresh", path.display())]
    Damaged {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot read the journal {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the journal {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another rollout (pid {pid}) is working on this pool; wait for it, or remove {} if that process is not rollout", path.display())]
    Locked { pid: u32, path: PathBuf },
    #[error("cannot create {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the lock {}: {source}", path.display())]
    CreateLock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot take the lock {}", path.display())]
    TakeLock { path: PathBuf },
}

/// Where a node is in a pool operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// In the pool as usual.
    Idle,
    /// Cordoned; waiting for its meetings to end.
    Draining,
    /// No meetings left; out of service on purpose (`rollout drain`).
    Drained,
    /// Upgrade: the roles are being applied.
    Applying,
    /// Upgrade: waiting for the health check. (Journals written before this name read
    /// `checking`; "check" alone is a step's read-only part.)
    #[serde(alias = "checking")]
    HealthCheck,
    /// Upgrade: being enabled again.
    Enabling,
    /// Upgrade of this node completed in the current run.
    Done,
    /// Left out of service after a failure.
    Failed,
}

impl Phase {
    /// Phases in which rollout holds the node out of service.
    pub fn holds_node(self) -> bool {
        !matches!(self, Phase::Idle | Phase::Done)
    }

    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Draining => "draining",
            Phase::Drained => "drained",
            Phase::Applying => "applying",
            Phase::HealthCheck => "health check",
            Phase::Enabling => "enabling",
            Phase::Done => "done",
            Phase::Failed => "failed",
        }
    }
}

/// One node's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    pub phase: Phase,
    /// Unix seconds when the phase began.
    pub since: u64,
    /// `drain` or `upgrade`.
    pub by: String,
    /// The upgrade run the phase belongs to.
    #[serde(default)]
    pub run: Option<String>,
    /// The balancer state before rollout took the node out (`enabled`, `cordoned`,
    /// `disabled`, `unregistered`): only a node that was enabled is enabled again.
    #[serde(default)]
    pub was: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Unix seconds of the last completed upgrade.
    #[serde(default)]
    pub last_rollout: Option<u64>,
}

/// An upgrade run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    pub started: u64,
    #[serde(default)]
    pub finished: Option<u64>,
}

/// The journal of one inventory's pool: the open upgrade run and every node's record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Journal {
    #[serde(default)]
    pub inventory: String,
    #[serde(default)]
    pub run: Option<Run>,
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeRecord>,
    #[serde(skip)]
    path: PathBuf,
}

/// Unix seconds now (0 if the clock is before 1970).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The state folder.
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ROLLOUT_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("rollout");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/state/rollout")
}

/// The journal file of an inventory: its name plus a hash of its absolute path.
pub fn path_for(inventory: &Path) -> PathBuf {
    let abs = std::fs::canonicalize(inventory).unwrap_or_else(|_| inventory.to_path_buf());
    let hash = crate::script::sha256_hex(abs.to_string_lossy().as_bytes());
    let stem = inventory
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "inventory".into());
    state_dir().join(format!("{stem}-{}.json", &hash[..12]))
}

impl Journal {
    /// Reads the journal of `inventory` (empty when there is none yet).
    ///
    /// Errors: the file cannot be read, or is not a journal.
    pub fn load(inventory: &Path) -> Result<Journal, JournalError> {
        let path = path_for(inventory);
        let mut j = match std::fs::read_to_string(&path) {
            Ok(text) => match serde_json::from_str::<Journal>(&text) {
                Ok(j) => j,
                Err(source) => return Err(JournalError::Damaged { path, source }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Journal::default(),
            Err(source) => return Err(JournalError::Read { path, source }),
        };
        j.inventory = inventory.display().to_string();
        j.path = path;
        Ok(j)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the journal atomically.
    ///
    /// Errors: the state folder or the file cannot be written.
    pub fn save(&self) -> Result<(), JournalError> {
        let fail = |source: std::io::Error| JournalError::Write {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        // Invariant: the journal is plain data (strings, numbers, maps with string keys).
        let text = serde_json::to_string_pretty(self).expect("journal serializes");
        let mut f = std::fs::File::create(&tmp).map_err(fail)?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(fail)?;
        std::fs::rename(&tmp, &self.path).map_err(fail)
    }

    /// Sets a node's phase (keeping what the record already knows) and saves.
    ///
    /// Errors: the journal cannot be written.
    pub fn set(
        &mut self,
        host: &str,
        phase: Phase,
        by: &str,
        reason: Option<String>,
    ) -> Result<(), JournalError> {
        let run = self
            .run
            .as_ref()
            .filter(|_| by == "upgrade")
            .map(|r| r.id.clone());
        let rec = self.nodes.entry(host.to_string()).or_insert(NodeRecord {
            phase,
            since: now(),
            by: by.into(),
            run: None,
            was: None,
            reason: None,
            last_rollout: None,
        });
        rec.phase = phase;
        rec.since = now();
        rec.by = by.into();
        rec.run = run;
        rec.reason = reason;
        if phase == Phase::Done {
            rec.last_rollout = Some(rec.since);
        }
        if phase == Phase::Idle {
            rec.was = None;
        }
        self.save()
    }

    /// Remembers the balancer state a node had before rollout took it out.
    pub fn remember_was(&mut self, host: &str, was: &str) {
        if let Some(rec) = self.nodes.get_mut(host)
            && rec.was.is_none()
        {
            rec.was = Some(was.to_string());
        }
    }

    /// The unfinished upgrade run, if any.
    pub fn open_run(&self) -> Option<&Run> {
        self.run.as_ref().filter(|r| r.finished.is_none())
    }

    /// A node's record when it belongs to the open upgrade run.
    pub fn in_open_run(&self, host: &str) -> Option<&NodeRecord> {
        let run = self.open_run()?;
        self.nodes
            .get(host)
            .filter(|r| r.run.as_deref() == Some(run.id.as_str()))
    }
}

/// Held while a command changes the pool; removed on drop.
pub struct Lock {
    path: PathBuf,
}

impl Lock {
    /// Takes the lock of `journal`'s pool, taking over one left by a killed rollout.
    ///
    /// Errors: another rollout holds it, or the lock file cannot be created.
    pub fn acquire(journal: &Journal) -> Result<Lock, JournalError> {
        let path = journal.path().with_extension("lock");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::StateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(Lock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid: Option<u32> = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| t.trim().parse().ok());
                    if let Some(pid) = pid
                        && Path::new(&format!("/proc/{pid}")).exists()
                        && pid != std::process::id()
                    {
                        return Err(JournalError::Locked { pid, path });
                    }
                    // Left behind by a rollout that was killed: take it over.
                    let _ = std::fs::remove_file(&path);
                }
                Err(source) => return Err(JournalError::CreateLock { path, source }),
            }
        }
        Err(JournalError::TakeLock { path })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Unix seconds as `2026-11-22 10:04 UTC`; a time past the year 9999 (a damaged journal)
/// prints as its raw seconds.
pub fn format_time(secs: u64) -> String {
    match i64::try_from(secs).map(jiff::Timestamp::from_second) {
        Ok(Ok(t)) => t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        _ => format!("{secs} s after 1970-01-01 UTC"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_check_phase_reads_journals_that_called_it_checking() {
        let old: Phase = serde_json::from_str("\"checking\"").unwrap();
        assert_eq!(old, Phase::HealthCheck);
        assert_eq!(serde_json::to_string(&old).unwrap(), "\"health_check\"");
        assert_eq!(old.name(), "health check");
    }

    #[test]
    fn formats_times() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(1_700_000_000), "2023-11-14 22:13 UTC");
        // Leap days, including 2000's (a century divisible by 400), and 2100's absence.
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(4_107_542_399), "2100-02-28 23:59 UTC");
        assert_eq!(format_time(4_107_542_400), "2100-03-01 00:00 UTC");
        // The hand-computed calendar printed a twelve-digit year for a damaged journal.
        assert_eq!(
            format_time(u64::MAX),
            "18446744073709551615 s after 1970-01-01 UTC"
        );
    }
}
