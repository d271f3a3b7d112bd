//! The PostgreSQL state backend: the pool's lock is a session-level advisory lock
//! (`pg_advisory_lock` on a key derived from the pool's name), so the database releases it
//! when the holder's connection ends in any way (a killed or crashed controller included),
//! and the journal is in tables, each journal write one transaction made on the lock's own
//! session after checking that the session still holds the lock. The tables are created
//! (and later migrated) by rollout on first use, under a transaction-level advisory lock,
//! with their version in `rollout_schema`.
//!
//! The client is the synchronous `postgres` crate on a thread of its own (its calls must not
//! run on the async runtime's threads). That thread also checks the connection every second
//! while idle; once it is lost, [`Session::lost`] fires and every call fails with
//! [`JournalError::StateLost`].
//!
//! TLS (`sslmode` in the URL): `disable` connects without TLS; `require` connects with TLS
//! only and verifies the server's certificate and host name against the Mozilla roots
//! (stricter than libpq's `require`, which does not verify: as libpq's `verify-full`);
//! without `sslmode` a Unix socket needs none, and a TCP host must say which.

use crate::pool::journal::{Holder, JournalError, NodeRecord, Run};
use postgres::Client;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The schema version this rollout writes; a database with a newer one is refused.
pub const SCHEMA_VERSION: i32 = 1;

/// The migrations, the first creating version 1. Each runs once, in a transaction.
const MIGRATIONS: &[&str] = &[
    // 1: who holds each pool's lock, the open upgrade run, every node's record.
    "CREATE TABLE rollout_lock_holders (
        pool text PRIMARY KEY,
        holder_user text NOT NULL,
        holder_host text NOT NULL,
        holder_pid integer NOT NULL,
        command text NOT NULL,
        since bigint NOT NULL,
        backend_pid integer NOT NULL);
     CREATE TABLE rollout_runs (
        pool text PRIMARY KEY,
        id text NOT NULL,
        started bigint NOT NULL,
        finished bigint);
     CREATE TABLE rollout_nodes (
        pool text NOT NULL,
        host text NOT NULL,
        phase text NOT NULL,
        since bigint NOT NULL,
        by_command text NOT NULL,
        record text NOT NULL,
        PRIMARY KEY (pool, host));",
];

/// How long a call may wait for the database's answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often an idle session checks its connection.
const HEARTBEAT: Duration = Duration::from_secs(1);

pub use crate::state::{Settings, pool_key};

/// The key of the transaction lock under which the schema is created or migrated.
fn schema_key() -> i64 {
    pool_key("\0schema")
}

type Job = Box<dyn FnOnce(&mut Client) + Send>;

/// A pool's journal as stored: the upgrade run and each node's record.
pub type Stored = (Option<Run>, Vec<(String, NodeRecord)>);

/// One connection to the state database, on its own thread.
pub struct Session {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    lost: tokio::sync::watch::Receiver<Option<String>>,
    /// The pool's name.
    pub pool: String,
    /// The pool's lock key.
    pub key: i64,
}

/// A database error in words (redacted: a driver's message may quote what it was given).
fn words(e: &postgres::Error) -> String {
    use std::error::Error;
    let mut s = e.to_string();
    if let Some(db) = e.as_db_error() {
        s = format!("{}: {}", db.severity(), db.message());
    } else if let Some(src) = e.source()
        && !s.contains(&src.to_string())
    {
        s = format!("{s}: {src}");
    }
    crate::secret::redact_known(&s)
}

impl Session {
    /// Connects and brings the schema up to date.
    ///
    /// # Errors
    /// The database cannot be reached or refuses, or its schema is newer than this rollout's.
    pub fn open(s: &Settings) -> Result<Arc<Session>, JournalError> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (lost_tx, lost_rx) = tokio::sync::watch::channel(None);
        let (config, tls) = (s.config.clone(), s.tls);
        std::thread::Builder::new()
            .name("rollout-state-db".into())
            .spawn(move || {
                let client = if tls {
                    config.connect(tls_connector())
                } else {
                    config.connect(postgres::NoTls)
                };
                let mut client = match client {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(words(&e)));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                serve(&mut client, &jobs_rx, &lost_tx);
            })
            .map_err(|e| JournalError::Database {
                what: "starting its thread".into(),
                message: e.to_string(),
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                return Err(JournalError::Database {
                    what: "connecting".into(),
                    message,
                });
            }
            Err(_) => {
                return Err(JournalError::Database {
                    what: "connecting".into(),
                    message: "the connection thread ended".into(),
                });
            }
        }
        let session = Arc::new(Session {
            jobs: Mutex::new(Some(jobs_tx)),
            lost: lost_rx,
            pool: s.pool.clone(),
            key: s.key(),
        });
        session.migrate()?;
        Ok(session)
    }

    /// Runs `f` with the client on the session's thread; `what` names it in errors.
    ///
    /// # Errors
    /// [`JournalError::StateLost`] when the connection is gone (or the database does not
    /// answer within a minute), [`JournalError::Database`] when it refuses.
    pub fn call<R: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Client) -> Result<R, JournalError> + Send + 'static,
    ) -> Result<R, JournalError> {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |c| {
            let r = match f(c) {
                Err(JournalError::Database { message, .. }) if c.is_closed() => {
                    Err(JournalError::StateLost { reason: message })
                }
                r => r,
            };
            let _ = tx.send(r);
        });
        let sent = {
            let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
            jobs.as_ref().is_some_and(|j| j.send(job).is_ok())
        };
        if !sent {
            return Err(self.lost_error());
        }
        match rx.recv_timeout(CALL_TIMEOUT) {
            Ok(r) => r.map_err(|e| match e {
                JournalError::Database { message, .. } => JournalError::Database {
                    what: what.to_string(),
                    message,
                },
                other => other,
            }),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(JournalError::StateLost {
                reason: format!("no answer within {} s", CALL_TIMEOUT.as_secs()),
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(self.lost_error()),
        }
    }

    fn lost_error(&self) -> JournalError {
        JournalError::StateLost {
            reason: self
                .lost
                .borrow()
                .clone()
                .unwrap_or_else(|| "the connection is closed".into()),
        }
    }

    /// Resolves once the connection is lost, with why.
    pub fn lost(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut rx = self.lost.clone();
        async move {
            let seen = rx
                .wait_for(Option::is_some)
                .await
                .map(|v| v.clone().unwrap_or_default());
            match seen {
                Ok(reason) => reason,
                // The session ended on purpose (the lock released): never fires.
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Creates or migrates the tables, one migration at a time, under a transaction lock.
    fn migrate(&self) -> Result<(), JournalError> {
        self.call("creating its tables", |c| {
            let mut t = c.transaction().map_err(db)?;
            t.execute("SELECT pg_advisory_xact_lock($1)", &[&schema_key()])
                .map_err(db)?;
            t.batch_execute("CREATE TABLE IF NOT EXISTS rollout_schema (version integer NOT NULL)")
                .map_err(db)?;
            let found: i32 = t
                .query_one("SELECT coalesce(max(version), 0) FROM rollout_schema", &[])
                .map_err(db)?
                .get(0);
            if found > SCHEMA_VERSION {
                return Err(JournalError::Schema {
                    found,
                    known: SCHEMA_VERSION,
                });
            }
            for (i, m) in MIGRATIONS.iter().enumerate().skip(found as usize) {
                t.batch_execute(m).map_err(db)?;
                let v = i32::try_from(i + 1).unwrap_or(i32::MAX);
                t.execute("INSERT INTO rollout_schema (version) VALUES ($1)", &[&v])
                    .map_err(db)?;
            }
            t.commit().map_err(db)
        })
    }

    /// Tries the pool's lock once; on success writes `me` as its holder.
    pub fn try_lock(&self, me: &Holder) -> Result<bool, JournalError> {
        let (pool, key, me) = (self.pool.clone(), self.key, me.clone());
        self.call("taking the pool's lock", move |c| {
            let got: bool = c
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .map_err(db)?
                .get(0);
            if got {
                c.execute(
                    "INSERT INTO rollout_lock_holders
                       (pool, holder_user, holder_host, holder_pid, command, since, backend_pid)
                     VALUES ($1, $2, $3, $4, $5, $6, pg_backend_pid())
                     ON CONFLICT (pool) DO UPDATE SET holder_user = $2, holder_host = $3,
                       holder_pid = $4, command = $5, since = $6, backend_pid = pg_backend_pid()",
                    &[
                        &pool,
                        &me.user,
                        &me.host,
                        &i32::try_from(me.pid).unwrap_or(i32::MAX),
                        &me.command,
                        &i64::try_from(me.since).unwrap_or(i64::MAX),
                    ],
                )
                .map_err(db)?;
            }
            Ok(got)
        })
    }

    /// Who holds the pool's lock: the holder row whose session holds an advisory lock now
    /// (a row left by a holder whose session ended is not shown).
    pub fn holder(&self) -> Result<Option<Holder>, JournalError> {
        let pool = self.pool.clone();
        self.call("reading the lock's holder", move |c| {
            let row = c
                .query_opt(
                    "SELECT h.holder_user, h.holder_host, h.holder_pid, h.command, h.since
                       FROM rollout_lock_holders h
                      WHERE h.pool = $1 AND EXISTS (SELECT 1 FROM pg_locks l
                            WHERE l.locktype = 'advisory' AND l.granted AND l.pid = h.backend_pid)",
                    &[&pool],
                )
                .map_err(db)?;
            Ok(row.map(|r| Holder {
                user: r.get(0),
                host: r.get(1),
                pid: u32::try_from(r.get::<_, i32>(2)).unwrap_or(0),
                command: r.get(3),
                since: u64::try_from(r.get::<_, i64>(4)).unwrap_or(0),
            }))
        })
    }

    /// Releases the pool's lock and forgets its holder row.
    pub fn unlock(&self) -> Result<(), JournalError> {
        let (pool, key) = (self.pool.clone(), self.key);
        self.call("releasing the pool's lock", move |c| {
            c.execute(
                "DELETE FROM rollout_lock_holders WHERE pool = $1 AND backend_pid = pg_backend_pid()",
                &[&pool],
            )
            .map_err(db)?;
            c.execute("SELECT pg_advisory_unlock($1)", &[&key])
                .map_err(db)?;
            Ok(())
        })
    }

    /// The pool's open run and node records.
    pub fn read(&self) -> Result<Stored, JournalError> {
        let pool = self.pool.clone();
        self.call("reading the journal", move |c| {
            let run = c
                .query_opt(
                    "SELECT id, started, finished FROM rollout_runs WHERE pool = $1",
                    &[&pool],
                )
                .map_err(db)?
                .map(|r| Run {
                    id: r.get(0),
                    started: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
                    finished: r
                        .get::<_, Option<i64>>(2)
                        .map(|f| u64::try_from(f).unwrap_or(0)),
                });
            let mut nodes = Vec::new();
            for r in c
                .query(
                    "SELECT host, record FROM rollout_nodes WHERE pool = $1 ORDER BY host",
                    &[&pool],
                )
                .map_err(db)?
            {
                let host: String = r.get(0);
                let text: String = r.get(1);
                let rec: NodeRecord =
                    serde_json::from_str(&text).map_err(|e| JournalError::Database {
                        what: "reading the journal".into(),
                        message: format!("the record of {host} is damaged ({e})"),
                    })?;
                nodes.push((host, rec));
            }
            Ok((run, nodes))
        })
    }

    /// Writes the run and the node records in one transaction, after checking that this
    /// session still holds the pool's lock.
    ///
    /// # Errors
    /// [`JournalError::LockLost`] when another session holds it now; the database.
    pub fn write(
        &self,
        run: Option<Run>,
        nodes: Vec<(String, NodeRecord)>,
    ) -> Result<(), JournalError> {
        let pool = self.pool.clone();
        self.call("writing the journal", move |c| {
            let mut t = c.transaction().map_err(db)?;
            let ours: bool = t
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM rollout_lock_holders
                      WHERE pool = $1 AND backend_pid = pg_backend_pid())",
                    &[&pool],
                )
                .map_err(db)?
                .get(0);
            if !ours {
                return Err(JournalError::LockLost { pool: pool.clone() });
            }
            match &run {
                Some(r) => {
                    t.execute(
                        "INSERT INTO rollout_runs (pool, id, started, finished)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (pool) DO UPDATE SET id = $2, started = $3, finished = $4",
                        &[
                            &pool,
                            &r.id,
                            &i64::try_from(r.started).unwrap_or(i64::MAX),
                            &r.finished.map(|f| i64::try_from(f).unwrap_or(i64::MAX)),
                        ],
                    )
                    .map_err(db)?;
                }
                None => {
                    t.execute("DELETE FROM rollout_runs WHERE pool = $1", &[&pool])
                        .map_err(db)?;
                }
            }
            for (host, rec) in &nodes {
                // Invariant: a record is plain data.
                let text = serde_json::to_string(rec).expect("record serializes");
                t.execute(
                    "INSERT INTO rollout_nodes (pool, host, phase, since, by_command, record)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (pool, host) DO UPDATE SET phase = $3, since = $4,
                       by_command = $5, record = $6",
                    &[
                        &pool,
                        host,
                        &rec.phase.name(),
                        &i64::try_from(rec.since).unwrap_or(i64::MAX),
                        &rec.by,
                        &text,
                    ],
                )
                .map_err(db)?;
            }
            t.commit().map_err(db)
        })
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session(pool {})", self.pool)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Closing the job channel ends the thread, which closes the connection.
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// A database error as a journal error (the caller names what it was doing).
fn db(e: postgres::Error) -> JournalError {
    JournalError::Database {
        what: String::new(),
        message: words(&e),
    }
}

/// The session thread: runs jobs; while idle, checks the connection every second. Ends when
/// the session is dropped or the connection is lost (then says why on `lost`).
fn serve(
    client: &mut Client,
    jobs: &mpsc::Receiver<Job>,
    lost: &tokio::sync::watch::Sender<Option<String>>,
) {
    loop {
        match jobs.recv_timeout(HEARTBEAT) {
            Ok(job) => {
                job(client);
                if client.is_closed() {
                    let _ = lost.send(Some("the server closed the connection".into()));
                    return;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Err(e) = client.is_valid(Duration::from_secs(5)) {
                    let _ = lost.send(Some(words(&e)));
                    return;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// TLS for `sslmode=require`: rustls with the Mozilla roots, host name verified.
fn tls_connector() -> tokio_postgres_rustls::MakeRustlsConnect {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        // Invariant: ring supports the default protocol versions.
        .expect("ring supports TLS 1.2 and 1.3");
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_pool_and_are_stable() {
        assert_ne!(pool_key("a"), pool_key("b"));
        assert_eq!(pool_key("a"), pool_key("a"));
        assert_ne!(pool_key("a"), schema_key());
    }

    #[test]
    fn urls_are_checked_without_being_repeated() {
        let secret = "postgresql://rollout:hunter2-secret@db.example.org/rollout";
        let e = Settings::parse(secret, "p".into()).err().unwrap();
        assert!(e.contains("sslmode=require"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = Settings::parse(
            "postgresql://u:hunter2-secret@h/d?sslmode=bogus",
            "p".into(),
        )
        .err()
        .unwrap();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.starts_with("not a PostgreSQL connection URL"), "{e}");
        let ok = Settings::parse(&format!("{secret}?sslmode=require"), "p".into()).unwrap();
        assert!(ok.tls);
        assert!(
            ok.password_spellings()
                .iter()
                .any(|s| s == "hunter2-secret"),
            "the password is redacted as it is written"
        );
        let ok = Settings::parse("host=/tmp/pg user=rollout dbname=rollout", "p".into()).unwrap();
        assert!(!ok.tls, "a Unix socket needs no TLS");
        let e = Settings::parse("postgresql:///rollout", "p".into())
            .err()
            .unwrap();
        assert!(e.contains("no host") || e.contains("no user"), "{e}");
    }
}
