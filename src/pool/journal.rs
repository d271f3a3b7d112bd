//! The controller's journal of pool operations: which phase every node is in, so that a
//! rollout killed mid-upgrade continues where it stopped, and `rollout status` can show a
//! node that an interrupted run left cordoned. One JSON file per inventory under
//! `$ROLLOUT_STATE_DIR`, else `$XDG_STATE_HOME/rollout/`, else `~/.local/state/rollout/`;
//! written atomically (temporary file, fsync, rename) before every balancer change, so the
//! journal never claims less than what happened. A kernel lock on a lock file keeps two
//! rollouts on one controller from working on the same pool at once (see [`Lock`]).
//!
//! That is the local state backend. With `state: {backend: postgresql, ...}` in the
//! inventory (see [`super::state`]) the lock and the journal live in a PostgreSQL database
//! instead, shared by every controller ([`super::state::postgres`]); the types here are the
//! same for both.

use super::state::Backend;
use super::state::postgres::Session;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::balancer::State;

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
    /// Another rollout holds the pool's lock.
    #[error("another rollout is working on this pool: {holder}; wait for it (`--wait 10m` waits up to 10 minutes). The lock is {}", path.display())]
    Locked {
        /// Who holds it, in words (see [`Holder`]).
        holder: String,
        /// The lock file.
        path: PathBuf,
    },
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
    /// Another rollout holds the pool's lock in the state database.
    #[error(
        "another rollout is working on pool `{pool}`: {holder}; wait for it (`--wait 10m` waits up to 10 minutes). The lock is the pool's advisory lock in the state database"
    )]
    LockedDb {
        /// Who holds it, in words (see [`Holder`]).
        holder: String,
        /// The pool's name in the database.
        pool: String,
    },
    /// The state database refused or failed (redacted; never the URL).
    #[error("state database: {what}: {message}")]
    Database {
        /// What rollout was doing (`connecting`, `writing the journal`, ...).
        what: String,
        message: String,
    },
    /// The connection to the state database is gone: the pool's lock is no longer held
    /// and the journal can no longer be written.
    #[error("lost the connection to the state database ({reason})")]
    StateLost { reason: String },
    /// Another session holds the pool's lock now (this one lost it).
    #[error(
        "the lock of pool `{pool}` in the state database is no longer this rollout's; nothing more is changed"
    )]
    LockLost { pool: String },
    /// The database's tables are of a newer rollout.
    #[error(
        "the state database's tables are of schema version {found}, newer than this rollout knows ({known}); use a newer rollout"
    )]
    Schema { found: i32, known: i32 },
    /// A journal read without the pool's lock cannot be written.
    #[error("the journal was read without the pool's lock and cannot be written")]
    ReadOnly,
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
    /// Handlers (restarts) that `rollout apply` held back because the node had meetings:
    /// owed to the node, run by the next apply that finds it free (or told to end or drain
    /// its meetings). Independent of `phase`: the node stays in service meanwhile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owed: Vec<Owed>,
    /// Who set the node's balancer state last, as far as rollout knows: a rollout run
    /// (written before every cordon, enable or add rollout does), or a state rollout found
    /// in the balancer without having set it (a person's: `rake servers:disable`,
    /// `b3scalectl disable backend`). See [`crate::pool::rules::hands_off`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer: Option<StateMark>,
}

/// Who set a node's balancer state (see [`NodeRecord::balancer`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMark {
    /// The state: `enabled`, `cordoned` or `disabled` (rollout's words, [`State`]).
    pub state: String,
    /// Unix seconds when rollout set it, or first found it so.
    pub at: u64,
    /// Who set it.
    #[serde(flatten)]
    pub by: SetBy,
}

/// Who set a balancer state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "set_by", rename_all = "snake_case")]
pub enum SetBy {
    /// A rollout run: its user, controller and command (`rollout drain`), never arguments.
    Rollout {
        user: String,
        host: String,
        command: String,
    },
    /// Found so in the balancer by a rollout run that had not set it: someone else did.
    Found,
}

impl StateMark {
    /// The short form `rollout status` shows: `rollout drain, alice@ctl1, 2026-12-06 21:50
    /// UTC`, or `outside rollout (found 2026-12-06 21:50 UTC)`.
    pub fn short(&self) -> String {
        match &self.by {
            SetBy::Rollout {
                user,
                host,
                command,
            } => format!("{command}, {user}@{host}, {}", format_time(self.at)),
            SetBy::Found => format!("outside rollout (found {})", format_time(self.at)),
        }
    }

    /// Whether this record explains `state`: a record of rollout taking the node out covers
    /// both out-of-service states (see [`crate::pool::rules::hands_off::owner`]).
    pub fn explains(&self, state: State) -> bool {
        match self.by {
            SetBy::Rollout { .. } => (self.state == "enabled") == (state == State::Enabled),
            SetBy::Found => self.state == state.to_string(),
        }
    }
}

impl std::fmt::Display for StateMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.by {
            SetBy::Rollout {
                user,
                host,
                command,
            } => write!(
                f,
                "set {} by `{command}` ({user} on {host}) at {}",
                self.state,
                format_time(self.at)
            ),
            SetBy::Found => write!(
                f,
                "set outside rollout (found {} in the balancer {})",
                self.state,
                format_time(self.at)
            ),
        }
    }
}

/// A handler owed to a node (see [`NodeRecord::owed`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owed {
    /// The handler's role.
    pub role: String,
    /// The handler's name in its role's `handlers.yml`.
    pub handler: String,
    /// Unix seconds when an apply first held it back.
    pub since: u64,
    /// Why it was held the last time (redacted), e.g. `1 meeting running`.
    pub reason: String,
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
    /// The local backend's file (empty for the database's).
    #[serde(skip)]
    path: PathBuf,
    /// The database session holding the pool's lock, for the PostgreSQL backend.
    #[serde(skip)]
    db: Option<Arc<Session>>,
    /// Read from the database without the lock: cannot be saved.
    #[serde(skip)]
    read_only: bool,
    /// Each node's phase as last written (what the journal says, whatever this process
    /// meant to write after that).
    #[serde(skip)]
    written: BTreeMap<String, Phase>,
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
    /// Reads the pool's journal from its state backend without taking the lock (what
    /// `status` shows, what `apply` must leave out): it cannot be saved. Use
    /// [`Lock::journal`] to change it.
    ///
    /// Errors: the file cannot be read or is not a journal; the database.
    pub fn load(state: &Backend) -> Result<Journal, JournalError> {
        match state {
            Backend::Local { inventory } => Journal::load_file(inventory),
            Backend::Postgres(s) => {
                let session = Session::open(s)?;
                let mut j = Journal::from_db(&session)?;
                j.read_only = true;
                Ok(j)
            }
        }
    }

    /// The journal in the database, bound to `session` for saving.
    fn from_db(session: &Arc<Session>) -> Result<Journal, JournalError> {
        let (run, nodes) = session.read()?;
        let mut j = Journal {
            inventory: format!("pool {}", session.pool),
            run,
            nodes: nodes.into_iter().collect(),
            db: Some(session.clone()),
            ..Journal::default()
        };
        j.written = j.nodes.iter().map(|(h, r)| (h.clone(), r.phase)).collect();
        Ok(j)
    }

    /// Reads the journal file of `inventory` (empty when there is none yet).
    ///
    /// Errors: the file cannot be read, or is not a journal.
    fn load_file(inventory: &Path) -> Result<Journal, JournalError> {
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
        j.written = j.nodes.iter().map(|(h, r)| (h.clone(), r.phase)).collect();
        Ok(j)
    }

    /// The nodes the journal, as last written, says are held out of service by `by`, as
    /// `host (phase)`.
    pub fn written_out(&self, by: &str) -> Vec<String> {
        self.written
            .iter()
            .filter(|(h, p)| p.holds_node() && self.nodes.get(*h).is_some_and(|r| r.by == by))
            .map(|(h, p)| format!("{h} ({})", p.name()))
            .collect()
    }

    /// Writes the journal: atomically to its file, or in one transaction to the database
    /// (checking that this rollout still holds the pool's lock there).
    ///
    /// Errors: the state folder or the file cannot be written; the database, a lost
    /// connection or lock; a journal read without the lock.
    pub fn save(&mut self) -> Result<(), JournalError> {
        if self.read_only {
            return Err(JournalError::ReadOnly);
        }
        if let Some(db) = &self.db {
            db.write(
                self.run.clone(),
                self.nodes
                    .iter()
                    .map(|(h, r)| (h.clone(), r.clone()))
                    .collect(),
            )?;
        } else {
            self.save_file()?;
        }
        self.written = self
            .nodes
            .iter()
            .map(|(h, r)| (h.clone(), r.phase))
            .collect();
        Ok(())
    }

    /// Writes the journal file atomically.
    fn save_file(&self) -> Result<(), JournalError> {
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
            owed: Vec::new(),
            balancer: None,
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

    /// Replaces what `rollout apply` owes `host` by `handlers` (role, name), held back for
    /// `reason`; an empty list clears it. Keeps when each handler was first held. Does not
    /// save.
    pub fn set_owed(&mut self, host: &str, handlers: &[(String, String)], reason: &str) {
        if handlers.is_empty() {
            if let Some(rec) = self.nodes.get_mut(host) {
                rec.owed.clear();
            }
            return;
        }
        let rec = self
            .nodes
            .entry(host.to_string())
            .or_insert_with(NodeRecord::untouched);
        let before = std::mem::take(&mut rec.owed);
        rec.owed = handlers
            .iter()
            .map(|(role, handler)| Owed {
                role: role.clone(),
                handler: handler.clone(),
                since: before
                    .iter()
                    .find(|o| o.role == *role && o.handler == *handler)
                    .map_or_else(now, |o| o.since),
                reason: reason.to_string(),
            })
            .collect();
    }

    /// Records that this rollout run (`command`, e.g. `drain`) is about to set `host`'s
    /// balancer state to `state`. Does not save: call [`Journal::save`] before the change.
    pub fn mark_set(&mut self, host: &str, state: State, command: &str) {
        let me = Holder::me(command);
        self.mark(
            host,
            StateMark {
                state: state.to_string(),
                at: me.since,
                by: SetBy::Rollout {
                    user: me.user,
                    host: me.host,
                    command: me.command,
                },
            },
        );
    }

    /// Records that `host` was found `state` in the balancer without rollout having set it;
    /// keeps an earlier such record of the same state (and its time). Returns whether the
    /// journal changed (then the caller saves).
    pub fn mark_found(&mut self, host: &str, state: State) -> bool {
        let state = state.to_string();
        let known = self
            .nodes
            .get(host)
            .and_then(|r| r.balancer.as_ref())
            .is_some_and(|m| m.by == SetBy::Found && m.state == state);
        if !known {
            self.mark(
                host,
                StateMark {
                    state,
                    at: now(),
                    by: SetBy::Found,
                },
            );
        }
        !known
    }

    fn mark(&mut self, host: &str, mark: StateMark) {
        let rec = self
            .nodes
            .entry(host.to_string())
            .or_insert_with(NodeRecord::untouched);
        rec.balancer = Some(mark);
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

/// Who holds a pool's lock, written into the lock file by the holder so that a rollout that
/// must wait can say whom it waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The login name of the user who runs it (`$USER`, else `uid N`).
    pub user: String,
    /// The controller's host name.
    pub host: String,
    /// The holding process.
    pub pid: u32,
    /// The command, e.g. `rollout upgrade` (never its arguments, which may carry values).
    pub command: String,
    /// When it took the lock, in Unix seconds.
    pub since: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` by {} on {} (pid {}) since {}",
            self.command,
            self.user,
            self.host,
            self.pid,
            format_time(self.since)
        )
    }
}

impl Holder {
    /// This process, running `rollout {command}`.
    pub fn me(command: &str) -> Holder {
        use std::os::unix::fs::MetadataExt;
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| {
                let uid = std::fs::metadata("/proc/self")
                    .map(|m| m.uid())
                    .unwrap_or(0);
                format!("uid {uid}")
            });
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown host".into());
        Holder {
            user,
            host,
            pid: std::process::id(),
            command: format!("rollout {command}"),
            since: now(),
        }
    }
}

/// Held while a command changes the pool. Local backend: a kernel lock (`flock`) on the
/// journal's lock file, which the kernel releases when the process ends in any way, so a
/// killed rollout never leaves a stale lock and two rollouts can never both hold it; the
/// file stays, its content names the holder. PostgreSQL backend: the pool's session-level
/// advisory lock, which the database releases when the session ends in any way; a row of
/// `rollout_lock_holders` names the holder.
pub struct Lock {
    kind: LockKind,
}

enum LockKind {
    File {
        file: std::fs::File,
        inventory: PathBuf,
    },
    Db(Arc<Session>),
}

impl Lock {
    /// Takes the lock of the pool for `command` (`upgrade`, `drain`, ...) in its state
    /// backend; with `wait`, waits up to that long for another rollout to release it,
    /// telling on stderr whom it waits for.
    ///
    /// Errors: [`JournalError::Locked`] or [`JournalError::LockedDb`] naming the holder
    /// when another rollout holds it (after `wait`); the state folder or the lock file
    /// cannot be created; the database cannot be used.
    pub fn acquire(
        state: &Backend,
        command: &str,
        wait: Option<std::time::Duration>,
    ) -> Result<Lock, JournalError> {
        match state {
            Backend::Local { inventory } => {
                let file =
                    Lock::acquire_at(path_for(inventory).with_extension("lock"), command, wait)?;
                Ok(Lock {
                    kind: LockKind::File {
                        file,
                        inventory: inventory.clone(),
                    },
                })
            }
            Backend::Postgres(s) => {
                let session = Session::open(s)?;
                Lock::acquire_db(&session, command, wait)?;
                Ok(Lock {
                    kind: LockKind::Db(session),
                })
            }
        }
    }

    /// The pool's journal, to be changed under this lock.
    ///
    /// Errors: as [`Journal::load`].
    pub fn journal(&self) -> Result<Journal, JournalError> {
        match &self.kind {
            LockKind::File { inventory, .. } => Journal::load_file(inventory),
            LockKind::Db(session) => Journal::from_db(session),
        }
    }

    /// Resolves when the lock is lost with the connection to the state database (with
    /// why); never for the local backend.
    pub fn lost(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>> {
        match &self.kind {
            LockKind::File { .. } => Box::pin(std::future::pending()),
            LockKind::Db(session) => Box::pin(session.lost()),
        }
    }

    /// [`Lock::acquire`] in the database.
    fn acquire_db(
        session: &Session,
        command: &str,
        wait: Option<std::time::Duration>,
    ) -> Result<(), JournalError> {
        let me = Holder::me(command);
        let started = std::time::Instant::now();
        let mut told = false;
        while !session.try_lock(&me)? {
            let holder = session
                .holder()?
                .map_or_else(|| "another rollout".to_string(), |h| h.to_string());
            match wait {
                Some(w) if started.elapsed() < w => {
                    if !told {
                        eprintln!(
                            "waiting up to {} for the lock of pool `{}`, held by {holder}",
                            super::human(w),
                            session.pool
                        );
                        told = true;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                _ => {
                    return Err(JournalError::LockedDb {
                        holder,
                        pool: session.pool.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// [`Lock::acquire`] with the lock file at `path`.
    fn acquire_at(
        path: PathBuf,
        command: &str,
        wait: Option<std::time::Duration>,
    ) -> Result<std::fs::File, JournalError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| JournalError::StateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| JournalError::CreateLock {
                path: path.clone(),
                source,
            })?;
        let started = std::time::Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = read_holder(&path);
                    let waited = started.elapsed();
                    match wait {
                        Some(w) if waited < w => {
                            if !told {
                                eprintln!(
                                    "waiting up to {} for the pool's lock, held by {holder}",
                                    super::human(w)
                                );
                                told = true;
                            }
                            std::thread::sleep(std::time::Duration::from_millis(200));
                        }
                        _ => return Err(JournalError::Locked { holder, path }),
                    }
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(JournalError::CreateLock { path, source });
                }
            }
        }
        let me = serde_json::to_string(&Holder::me(command)).unwrap_or_default();
        let mut f = &file;
        let _ = f.set_len(0);
        let _ = f.write_all(format!("{me}\n").as_bytes());
        Ok(file)
    }
}

/// The holder named in a lock file, in words; "another rollout" when the file does not say
/// (written by an older rollout, or being written right now).
fn read_holder(path: &Path) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Holder>(t.trim()).ok())
        .map_or_else(|| "another rollout".to_string(), |h| h.to_string())
}

impl Drop for Lock {
    fn drop(&mut self) {
        match &self.kind {
            LockKind::File { file, .. } => {
                // Say nobody holds it, then release (closing the file would release it too).
                let _ = file.set_len(0);
                let _ = file.unlock();
            }
            // Ending the session would release it too (once the last journal bound to the
            // session is gone); the holder row is left to the next holder otherwise.
            LockKind::Db(session) => {
                let _ = session.unlock();
            }
        }
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

impl NodeRecord {
    /// A node no run has taken out of service yet: idle since now, first met by `apply`
    /// (an owed restart or a balancer state found there).
    fn untouched() -> NodeRecord {
        NodeRecord {
            phase: Phase::Idle,
            since: now(),
            by: "apply".into(),
            run: None,
            was: None,
            reason: None,
            last_rollout: None,
            owed: Vec::new(),
            balancer: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lock_path(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rollout-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d.join("pool.lock")
    }

    #[test]
    fn one_holder_at_a_time_and_the_waiter_is_told_who() {
        let path = lock_path("one");
        let first = Lock::acquire_at(path.clone(), "upgrade", None).unwrap();
        // A second open file description of the same file: flock refuses it as it would
        // another process.
        let Err(JournalError::Locked { holder, .. }) =
            Lock::acquire_at(path.clone(), "drain", None)
        else {
            panic!("the lock was taken twice");
        };
        assert!(holder.starts_with("`rollout upgrade` by "), "{holder}");
        assert!(
            holder.contains(&format!("(pid {})", std::process::id())),
            "{holder}"
        );
        drop(first);
        let second = Lock::acquire_at(path.clone(), "drain", None).unwrap();
        drop(second);
    }

    #[test]
    fn wait_takes_the_lock_once_it_is_released() {
        let path = lock_path("wait");
        let first = Lock::acquire_at(path.clone(), "upgrade", None).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
        });
        let got = Lock::acquire_at(path.clone(), "drain", Some(Duration::from_secs(10)));
        assert!(got.is_ok(), "{:?}", got.err());
        releaser.join().unwrap();
        // A wait that ends first fails, naming the holder.
        let _held = got.unwrap();
        let started = std::time::Instant::now();
        let e = Lock::acquire_at(path, "undrain", Some(Duration::from_millis(300)));
        assert!(matches!(e, Err(JournalError::Locked { .. })));
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    #[test]
    fn a_lock_file_left_by_a_killed_rollout_does_not_hold() {
        // The file with a holder's text but no process holding the kernel lock.
        let path = lock_path("stale");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{\"user\":\"x\",\"host\":\"y\",\"pid\":1,\"command\":\"rollout upgrade\",\"since\":0}\n").unwrap();
        assert!(Lock::acquire_at(path, "upgrade", None).is_ok());
    }

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
