//! Draining: cordon a node in the balancer (no new meetings; running ones continue), then
//! watch the node's own BBB API until no meeting is left, and akka-apps agrees (a bbb-web
//! restarted under a class lists none of it, see [`rules::drain`]). Meetings are ended only on
//! `--force`. `rollout drain` is here (`rollout undrain` in [`super::undrain`]); the upgrade
//! drains through [`wait_empty`].

use super::error::{NodeError, PoolError};
use super::journal::{Journal, Lock, Phase};
use super::rules::{self, drain::Decision};
use super::{DrainOptions, Node, Pool, human, need_limit};
use crate::balancer::{Balancer, BalancerError, Server, State};
use crate::bbb_api::{Meeting, participants};
use crate::connection::{Connection, Connector, Finished};
use crate::report::summary::DrainSummary;
use crate::report::{Event, Reporter, Settings};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

pub use super::rules::drain::Watch;

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drained {
    Empty {
        waited: Duration,
        ended: usize,
        /// When the last look that still saw a meeting (or could not tell) began: the last
        /// meeting ended after it, so the time from then until the node is touched bounds the
        /// time from the end of the last meeting to the touch. `None` when the first look
        /// found the node empty.
        last_busy: Option<Instant>,
    },
    TimedOut {
        meetings: usize,
        participants: u64,
        waited: Duration,
        unreadable: Option<String>,
        ended: usize,
        /// Meetings akka-apps holds that bbb-web does not list (a class it forgot when it
        /// restarted); 0 when it lists some, or akka-apps was not asked.
        forgotten: u64,
    },
}

impl Drained {
    pub fn describe(&self) -> String {
        match self {
            Drained::Empty {
                waited, ended: 0, ..
            } => {
                format!("drained: no meetings left (waited {})", human(*waited))
            }
            Drained::Empty { waited, ended, .. } => format!(
                "drained: {ended} meeting(s) ended with --force (after {})",
                human(*waited)
            ),
            Drained::TimedOut {
                unreadable: Some(e),
                waited,
                ..
            } => {
                format!(
                    "still cordoned after {}: its meetings could not be read ({e})",
                    human(*waited)
                )
            }
            Drained::TimedOut {
                forgotten,
                waited,
                ended: 0,
                ..
            } if *forgotten > 0 => format!(
                "still cordoned after {}: bbb-web lists no meeting, but akka-apps holds {forgotten}: a class bbb-web forgot when it restarted goes on; no meeting was ended (--force cannot end it: bbb-web does not know it)",
                human(*waited)
            ),
            Drained::TimedOut {
                forgotten,
                waited,
                ended,
                ..
            } if *forgotten > 0 => format!(
                "still cordoned after {}: {ended} meeting(s) were ended with --force, yet akka-apps holds {forgotten} that bbb-web does not list (forgotten when it restarted)",
                human(*waited)
            ),
            Drained::TimedOut {
                meetings,
                participants,
                waited,
                ended: 0,
                ..
            } => format!(
                "still cordoned after {}: {meetings} meeting(s) with {participants} participant(s) left; no meeting was ended (--force ends them)",
                human(*waited)
            ),
            Drained::TimedOut {
                meetings,
                participants,
                waited,
                ended,
                ..
            } => format!(
                "still cordoned after {}: {ended} meeting(s) were ended with --force, yet {meetings} meeting(s) with {participants} participant(s) are left",
                human(*waited)
            ),
        }
    }
}

fn counts(ms: &[Meeting]) -> String {
    format!(
        "{} meeting(s), {} participant(s) left",
        ms.len(),
        participants(ms)
    )
}

/// What reading and ending a node's meetings needs: the HTTP client (with
/// `balancer.request_timeout`), the secrets to redact from what a node answers, and the
/// run's connector, to ask the node itself how many meetings akka-apps holds.
#[derive(Clone)]
pub struct MeetingApi {
    pub http: crate::http::Http,
    pub secrets: crate::secret::Secrets,
    pub connector: Arc<dyn Connector>,
}

impl Pool {
    /// The pool's way to read and end its nodes' meetings.
    pub fn meeting_api(&self) -> MeetingApi {
        MeetingApi {
            http: self.http.clone(),
            secrets: self.secrets().clone(),
            connector: self.prepared.connector.clone(),
        }
    }
}

/// The meetings the node's own API lists (`getMeetings` with the node's secret).
///
/// Errors: the API cannot be read, as redacted text.
pub async fn meetings(api: &MeetingApi, node: &Node) -> Result<Vec<Meeting>, Unread> {
    let (http, ep) = (api.http.clone(), node.endpoint.clone());
    match tokio::task::spawn_blocking(move || ep.meetings(&http)).await {
        Ok(Ok(ms)) => Ok(ms),
        Ok(Err(e)) => Err(Unread {
            nothing_listens: matches!(e, crate::bbb_api::BbbError::NothingListens { .. }),
            secret_refused: matches!(
                &e,
                crate::bbb_api::BbbError::Failed { key, .. } if key == "checksumError"
            ),
            text: api.secrets.redact(&e.to_string()),
        }),
        Err(e) => Err(Unread {
            nothing_listens: false,
            secret_refused: false,
            text: e.to_string(),
        }),
    }
}

/// Why a node's meetings could not be read.
#[derive(Debug, Clone)]
pub struct Unread {
    /// Nothing listens at the node's API address (connection refused, host name unknown):
    /// no client can reach a class there either.
    pub nothing_listens: bool,
    /// The node's API answers but refuses the inventory's secret (`checksumError`): the node
    /// still has another one, as while `bbb_secret` is being changed and bbb-web has not yet
    /// restarted with the new one.
    pub secret_refused: bool,
    /// What failed, secrets redacted.
    pub text: String,
}

impl std::fmt::Display for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// akka-apps' count of the node's meetings: `command` (`bbb_akka_meetings_command`) run
/// over the node's connection (opened once per wait, kept in `conn`); its last stdout line
/// is the number.
///
/// Errors: the node cannot be reached, the command fails or prints no number, or the whole
/// takes longer than [`rules::drain::AKKA_PROBE_TIMEOUT`]; as redacted text. The
/// connection is dropped then (the next look opens a new one).
pub async fn akka_meetings(
    api: &MeetingApi,
    node: &Node,
    command: &str,
    conn: &mut Option<Box<dyn Connection>>,
) -> Result<u64, String> {
    let ask = async {
        if conn.is_none() {
            let c = api
                .connector
                .connect(&node.plan.host)
                .await
                .map_err(|e| e.to_string())?;
            *conn = Some(c);
        }
        let c = conn.as_ref().expect("connected just now");
        let mut ignore = |_: &str| {};
        let done = c
            .run(command, &mut ignore)
            .await
            .map_err(|e| e.to_string())?;
        count_of(&done)
    };
    let r = match tokio::time::timeout(rules::drain::AKKA_PROBE_TIMEOUT, ask).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer within {}",
            human(rules::drain::AKKA_PROBE_TIMEOUT)
        )),
    };
    if r.is_err() {
        *conn = None;
    }
    r.map_err(|e| {
        api.secrets
            .redact(&format!("bbb_akka_meetings_command: {e}"))
    })
}

/// The number a finished `bbb_akka_meetings_command` printed (its last non-empty line).
///
/// Errors: it exited with another code than 0 (with its last line of stderr), or the line
/// is no number.
fn count_of(done: &Finished) -> Result<u64, String> {
    let last = |text: &str| {
        let line = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        line.trim().chars().take(120).collect::<String>()
    };
    if done.code != Some(0) {
        let code = done
            .code
            .map_or("a signal".to_string(), |c| format!("code {c}"));
        return Err(format!("exited with {code}: {}", last(&done.stderr)));
    }
    let line = last(&done.stdout);
    line.parse::<u64>()
        .map_err(|_| format!("printed `{line}`, not a number of meetings"))
}

/// Waits until the node's API lists no meeting and akka-apps holds none either (see
/// [`rules::drain`]); with `force`, ends what is left once the timeout expires (at once
/// without a timeout). When to stop is [`rules::drain::verdict`]. Its progress lines begin
/// with `state` (`cordoned`).
pub async fn wait_empty(
    pool: &MeetingApi,
    node: &Node,
    w: Watch,
    state: &str,
    tx: &UnboundedSender<Event>,
) -> Drained {
    let mut conn = None;
    let r = look_until_empty(pool, node, w, state, tx, &mut conn).await;
    if let Some(c) = conn {
        c.close().await;
    }
    r
}

/// The loop of [`wait_empty`]; `conn` is the node's connection, once akka-apps was asked.
async fn look_until_empty(
    pool: &MeetingApi,
    node: &Node,
    w: Watch,
    state: &str,
    tx: &UnboundedSender<Event>,
    conn: &mut Option<Box<dyn Connection>>,
) -> Drained {
    let start = Instant::now();
    let mut last = String::new();
    let mut ended = 0;
    let mut forced_at: Option<Instant> = None;
    let mut last_busy = None;
    loop {
        let look = Instant::now();
        // A meeting BBB lists as `hasBeenForciblyEnded` is over (its `end` was accepted; BBB
        // lists it until it is removed): no class to wait for, and nothing to end again.
        let found = meetings(pool, node)
            .await
            .map(|ms| ms.into_iter().filter(|m| !m.ended).collect::<Vec<_>>());
        // An empty list is no proof: akka-apps may run classes a restarted bbb-web forgot.
        let akka = match (&found, &node.akka_meetings) {
            (Ok(ms), Some(command)) if ms.is_empty() => {
                Some(akka_meetings(pool, node, command, conn).await)
            }
            _ => None,
        };
        let waited = start.elapsed();
        let seen = rules::drain::seen(
            found.as_ref().ok().map(Vec::len),
            akka.as_ref().map(|a| a.as_ref().copied().map_err(|_| ())),
        );
        let verdict = rules::drain::verdict(&w, seen, waited, forced_at.map(|f| f.elapsed()));
        if verdict == Decision::Done {
            return Drained::Empty {
                waited,
                ended,
                last_busy,
            };
        }
        last_busy = Some(look);
        let text = match (&found, &akka) {
            (Err(e), _) => format!("{state}, cannot read its meetings: {e}"),
            (Ok(_), Some(Ok(n))) if *n > 0 => format!(
                "{state}, bbb-web lists no meeting, but akka-apps holds {n}: a class bbb-web forgot when it restarted; waiting for it to end"
            ),
            (Ok(_), Some(Err(e))) => format!(
                "{state}, bbb-web lists no meeting, but whether akka-apps holds one cannot be read ({e}); waiting"
            ),
            (Ok(ms), _) => format!("{state}, {}", counts(ms)),
        };
        if text != last {
            let _ = tx.send(Event::Progress {
                host: node.host.clone(),
                text: text.clone(),
            });
            last = text;
        }
        match (verdict, found) {
            (Decision::ForceEnd, Ok(ms)) => {
                ended += end_meetings(pool, node, &ms, tx).await;
                forced_at = Some(Instant::now());
            }
            (Decision::TimedOut, found) => {
                let (meetings, participants, unreadable) = match (found, &akka) {
                    (Err(e), _) => (0, 0, Some(e.text)),
                    (Ok(_), Some(Err(e))) => (
                        0,
                        0,
                        Some(format!(
                            "bbb-web lists none, and whether akka-apps holds one cannot be read: {e}"
                        )),
                    ),
                    (Ok(ms), _) => (ms.len(), participants(&ms), None),
                };
                return Drained::TimedOut {
                    meetings,
                    participants,
                    waited,
                    unreadable,
                    ended,
                    forgotten: match akka {
                        Some(Ok(n)) => n,
                        _ => 0,
                    },
                };
            }
            _ => {}
        }
        // The next look one pause after this one began (not after it ended), so slow looks
        // do not stretch the interval; never sooner than 50 ms from now.
        let next = look + rules::drain::pause(&w, waited, forced_at.is_some());
        let soonest = Instant::now() + Duration::from_millis(50);
        tokio::time::sleep_until(next.max(soonest).into()).await;
    }
}

/// `--force`: ends the meetings `ms`; returns how many ended (the others are notes).
async fn end_meetings(
    pool: &MeetingApi,
    node: &Node,
    ms: &[Meeting],
    tx: &UnboundedSender<Event>,
) -> usize {
    let _ = tx.send(Event::Note {
        host: Some(node.host.clone()),
        text: format!("--force: ending {}", counts(ms).replace(" left", "")),
    });
    let mut ended = 0;
    for m in ms {
        let (http, ep, m) = (pool.http.clone(), node.endpoint.clone(), m.clone());
        match tokio::task::spawn_blocking(move || ep.end(&http, &m)).await {
            Ok(Ok(())) => ended += 1,
            Ok(Err(e)) => {
                let _ = tx.send(Event::Note {
                    host: Some(node.host.clone()),
                    text: pool
                        .secrets
                        .redact(&format!("could not end a meeting: {e}")),
                });
            }
            Err(_) => {}
        }
    }
    ended
}

/// Cordons `server` unless it is already out of service.
///
/// Errors: the balancer refused or could not be reached.
pub async fn cordon(client: &dyn Balancer, server: &Server) -> Result<(), BalancerError> {
    if server.state == State::Enabled {
        client.set_state(server, State::Cordoned).await?;
    }
    Ok(())
}

/// Enabled nodes left after taking `taking` out; an error when that is below the minimum.
pub fn check_capacity(
    servers: &[Server],
    taking: &[&Server],
    min: usize,
    what: &str,
) -> Result<(), String> {
    let in_service = servers.iter().filter(|s| s.in_service()).count();
    let taken = taking.iter().filter(|s| s.in_service()).count();
    let left = in_service.saturating_sub(taken);
    if taken > 0 && left < min {
        return Err(format!(
            "refusing to {what}: it would leave {left} node(s) in service, fewer than balancer.min_in_service ({min}); nothing was changed"
        ));
    }
    Ok(())
}

/// `rollout drain`: cordons the selected nodes and waits until their meetings have ended.
///
/// Errors: bad input, no `--limit`, the journal or its lock, the balancer, or a drain that
/// would leave fewer than `balancer.min_in_service` nodes in service; nothing is changed
/// then. A node that does not drain is in the summary.
pub async fn main(a: DrainOptions) -> Result<DrainSummary, PoolError> {
    need_limit(&a.run, "drain")?;
    let pool = Arc::new(Pool::load(&a.run, &Default::default(), "drain")?);
    let lock = Lock::acquire(&pool.prepared.state, "drain", a.run.lock_wait)?;
    let journal = lock.journal()?;
    let opened = pool.open().await?;
    let servers: Vec<Option<Server>> = pool
        .nodes
        .iter()
        .map(|n| crate::balancer::find(&opened.servers, &n.desired.url).cloned())
        .collect();
    let taking: Vec<&Server> = servers.iter().flatten().collect();
    let names: Vec<&str> = pool.nodes.iter().map(|n| n.host.as_str()).collect();
    check_capacity(
        &opened.servers,
        &taking,
        pool.cfg.min_in_service,
        &format!("drain {}", names.join(", ")),
    )
    .map_err(PoolError::Capacity)?;
    let rep = Reporter::start(Settings::new(
        a.run.output,
        a.run.verbose,
        pool.nodes.len(),
        "drain",
    ));
    if let Some(n) = &opened.note {
        rep.note(None, n.clone());
    }
    let journal = Arc::new(Mutex::new(journal));
    let watch = Watch {
        poll: Duration::from_secs_f64(pool.cfg.poll_interval),
        timeout: a.timeout,
        force: a.force,
    };
    let mut set = tokio::task::JoinSet::new();
    for (i, (node, server)) in pool.nodes.iter().zip(servers).enumerate() {
        let job = DrainJob {
            pool: pool.clone(),
            journal: journal.clone(),
            tx: rep.tx.clone(),
            client: opened.client.clone(),
            node: node.clone(),
            server,
            watch,
        };
        set.spawn(async move { (i, job.run().await) });
    }
    let mut drained = vec![false; pool.nodes.len()];
    while let Some(Ok((i, r))) = set.join_next().await {
        let host = pool.nodes[i].host.clone();
        let (ok, text) = match &r {
            Ok(d @ Drained::Empty { .. }) => (true, d.describe()),
            Ok(d) => (false, d.describe()),
            Err(e) => (false, format!("FAILED: {e}")),
        };
        rep.send(Event::NodeFinished { host, ok, text });
        drained[i] = ok;
    }
    rep.finish().await;
    let not_drained: Vec<String> = pool
        .nodes
        .iter()
        .zip(&drained)
        .filter(|(_, ok)| !**ok)
        .map(|(n, _)| n.host.clone())
        .collect();
    Ok(DrainSummary {
        drained: pool.nodes.len() - not_drained.len(),
        not_drained,
    })
}

/// One node of `rollout drain`, run as its own task.
struct DrainJob {
    pool: Arc<Pool>,
    journal: Arc<Mutex<Journal>>,
    tx: UnboundedSender<Event>,
    client: Arc<dyn Balancer>,
    node: Node,
    server: Option<Server>,
    watch: Watch,
}

impl DrainJob {
    /// Journal, cordon, wait. Errors: the journal cannot be written, or cordoning failed.
    async fn run(self) -> Result<Drained, NodeError> {
        let DrainJob {
            pool,
            journal,
            tx,
            client,
            node,
            server,
            watch,
        } = self;
        let was = server
            .as_ref()
            .map_or("unregistered".to_string(), |s| s.state.to_string());
        {
            let mut j = journal.lock().expect("journal lock");
            let already = j
                .nodes
                .get(&node.host)
                .is_some_and(|r| r.phase.holds_node());
            j.set(&node.host, Phase::Draining, "drain", None)?;
            if !already {
                j.remember_was(&node.host, &was);
            }
            if server.as_ref().is_some_and(|s| s.state == State::Enabled) {
                j.mark_set(&node.host, State::Cordoned, "drain");
            }
            j.save()?;
        }
        match &server {
            Some(s) => cordon(client.as_ref(), s).await?,
            None => {
                let _ = tx.send(Event::Note {
                    host: Some(node.host.clone()),
                    text: "not registered in the balancer; waiting for its meetings anyway".into(),
                });
            }
        }
        let _ = tx.send(Event::Progress {
            host: node.host.clone(),
            text: "cordoned".into(),
        });
        let r = wait_empty(&pool.meeting_api(), &node, watch, "cordoned", &tx).await;
        let mut j = journal.lock().expect("journal lock");
        match &r {
            Drained::Empty { .. } => j.set(&node.host, Phase::Drained, "drain", None)?,
            Drained::TimedOut { .. } => {
                j.set(&node.host, Phase::Draining, "drain", Some(r.describe()))?
            }
        };
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(state: State, online: Option<bool>) -> Server {
        Server {
            online,
            ..Server::new("x", "u", state)
        }
    }

    #[test]
    fn akka_count_is_the_last_line_of_a_successful_command() {
        let done = |code: Option<i32>, stdout: &str, stderr: &str| Finished {
            code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        };
        assert_eq!(count_of(&done(Some(0), "2\n", "")), Ok(2));
        assert_eq!(count_of(&done(Some(0), "notice\n 0 \n\n", "")), Ok(0));
        assert_eq!(
            count_of(&done(Some(0), "", "")),
            Err("printed ``, not a number of meetings".into())
        );
        assert_eq!(
            count_of(&done(Some(0), "-1\n", "")),
            Err("printed `-1`, not a number of meetings".into())
        );
        assert_eq!(
            count_of(&done(
                Some(2),
                "",
                "psql: error: FATAL:  database \"bbb_graphql\" does not exist\n"
            )),
            Err(
                "exited with code 2: psql: error: FATAL:  database \"bbb_graphql\" does not exist"
                    .into()
            )
        );
        assert_eq!(
            count_of(&done(None, "3\n", "")),
            Err("exited with a signal: ".into())
        );
    }

    #[test]
    fn capacity_counts_only_nodes_in_service() {
        let pool = vec![
            s(State::Enabled, Some(true)),
            s(State::Enabled, Some(false)),
            s(State::Cordoned, Some(true)),
        ];
        assert!(
            check_capacity(&pool, &[&pool[0]], 1, "drain h1")
                .unwrap_err()
                .contains("leave 0 node(s)")
        );
        assert!(check_capacity(&pool, &[&pool[1], &pool[2]], 1, "drain").is_ok());
        assert!(check_capacity(&pool, &[&pool[0]], 0, "drain").is_ok());
    }
}
