//! `rollout apply` never ends a class: before a BBB node runs a step or handler marked
//! `ends_meetings` (a restart of bbb-web, FreeSWITCH, akka-apps, the SFU or nginx, a reboot,
//! an upgrade of BBB's packages), the [`Guard`] asks the node's own API for its meetings
//! (`getMeetings` with the node's secret, as `rollout drain` does). On a node with meetings
//! those items are held back (the executor runs everything else, config-only changes
//! included); what a held handler owed the node is kept in the pool's journal ([`owe`]) and
//! run by the next apply that finds the node free ([`fill_owed`]). `--force` cordons the
//! node in the balancer first, then ends the meetings, as `rollout drain --force` does, and
//! puts the node back after its health check, so no new class lands on it in between.
//!
//! A node whose meetings cannot be read counts as busy, never as free, unless nothing
//! listens at its API address (the connection is refused or its name does not resolve: a
//! blank node before BBB is installed; no client can reach a class there either), or the
//! balancer (read then, once per run) lists it in no state that gets classes (not
//! registered, or disabled): that is a node being installed, as the upgrade's drain decides
//! too ([`rules::drain::may_skip_wait`]). A node that does not answer in time, answers
//! with an error or with a wrong checksum counts as busy.
//!
//! An empty `getMeetings` is checked against akka-apps' own count when the node has a
//! `bbb_akka_meetings_command` (as the drain does, [`rules::drain`]): a bbb-web restarted
//! under a class lists none of it, and restarting the services would end that class. Such
//! a node is held (`--drain` waits for the forgotten class to end; `--force` goes ahead
//! after cordoning, its restart ending the class), as is one whose count cannot be read.
//!
//! A node whose API refuses the inventory's secret (`checksumError`) while it has a
//! `bbb_akka_meetings_command` is asked akka-apps' count instead, which needs no secret: a
//! `bbb_secret` being changed is refused until the restart this apply would run, and without
//! this such a change would be held on every node, class or not. A count of 0 lets the
//! change go through; any other answer holds it.

use super::drain::{
    Drained, MeetingApi, Watch, akka_meetings, check_capacity, cordon, meetings, wait_empty,
};
use super::error::PoolError;
use super::health;
use super::journal::{Journal, JournalError, Lock, Phase};
use super::rules::{self, enable::Back};
use super::state::Backend;
use super::{Node, human, nodes, retry_notes};
use crate::app::{self, Prepared};
use crate::balancer::{self, Balancer, BalancerConfig, Product, Server, State};
use crate::exec::{Clearance, ClearanceFuture, Goal, MeetingGuard};
use crate::http::Http;
use crate::plan::HostPlan;
use crate::report::{Event, HostResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

/// What `rollout apply` does on a BBB node with meetings when a change would end them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Meetings {
    /// Hold the change back: the node is reported as held, its restarts stay pending.
    #[default]
    Hold,
    /// `--force`: end the meetings (as `rollout drain --force` does), then apply.
    Force,
    /// `--drain`: take the node out of service first (cordon, wait until its meetings have
    /// ended), apply, health check, back in service: the upgrade's path for just the nodes
    /// that need it, at most `batch` of them at once and never below `min_in_service`.
    Drain {
        /// How many nodes may be out of service at once for this apply.
        batch: usize,
        /// Give up waiting for a node's meetings after this long: the node goes back into
        /// service and its change is held. `None`: wait as long as it takes.
        timeout: Option<Duration>,
    },
}

/// What `--drain` shares between the nodes of one apply.
struct Drainer {
    /// One permit per node that may be out of service at once.
    batch: Arc<Semaphore>,
    /// Capacity is checked and the node cordoned by one node at a time.
    cordoning: tokio::sync::Mutex<()>,
    timeout: Option<Duration>,
    journal: Mutex<Journal>,
    /// The pool's lock, held from the start of the apply until its hosts are done.
    lock: Mutex<Option<Lock>>,
    /// The nodes taken out of service, by host, until their apply has finished.
    taken: Mutex<HashMap<String, Taken>>,
}

/// A node `--drain` took out of service.
struct Taken {
    _permit: OwnedSemaphorePermit,
    /// Its balancer state before (`enabled`, `cordoned`, `disabled`, `unregistered`).
    was: String,
}

/// The meeting guard of one `rollout plan` or `rollout apply`.
pub struct Guard {
    prepared: Arc<Prepared>,
    cfg: Option<BalancerConfig>,
    nodes: Vec<Node>,
    api: MeetingApi,
    policy: Meetings,
    poll: Duration,
    verbose: bool,
    /// The balancer's client, opened at most once and only when needed (a node whose
    /// meetings cannot be read, `--drain`); the error text when it cannot be opened.
    client: OnceCell<Result<Arc<dyn Balancer>, String>>,
    drain: Option<Drainer>,
}

impl Guard {
    /// The guard for the run's BBB nodes: with a `balancer:` section its group's selected
    /// hosts, without one every host whose variables set `bbb_api_url` and `bbb_secret`.
    ///
    /// With `--drain`, or `--force` and a `balancer:` section, it takes the pool's lock
    /// (waiting `run.lock_wait`) and holds it until [`Guard::release`].
    ///
    /// Errors: a node's balancer variables cannot be used (located diagnostics); `--drain`
    /// without a `balancer:` section; the pool's lock or journal.
    pub fn new(
        run: &app::Options,
        prepared: Arc<Prepared>,
        policy: Meetings,
    ) -> Result<Guard, PoolError> {
        let cfg = balancer::config::load(&prepared.inventory).map_err(|d| vec![d])?;
        let found = match &cfg {
            Some(cfg) => nodes(&prepared, cfg)?,
            None => {
                let mut found = Vec::new();
                for p in prepared.plans.iter().filter(|p| {
                    p.vars.contains_key("bbb_api_url") && p.vars.contains_key("bbb_secret")
                }) {
                    match super::node(p, Product::Scalelite, &prepared.inventory) {
                        Ok(n) => found.push(n),
                        // A node whose CA cannot be read would go unchecked: bad input.
                        Err(e @ super::NodeVarError::CaFile(_)) => {
                            let message = format!("host {}: {e}", p.host.name);
                            let inv = &prepared.inventory;
                            return Err(vec![
                                inv.var_at(&p.host, e.variable(), (1, 1), message.clone())
                                    .unwrap_or_else(|| {
                                        crate::error::Diagnostic::file(&inv.path, message)
                                    }),
                            ]
                            .into());
                        }
                        Err(_) => {}
                    }
                }
                found
            }
        };
        let timeout = cfg.as_ref().map_or(10, |c| c.request_timeout);
        let poll = cfg.as_ref().map_or(5.0, |c| c.poll_interval);
        let drain = match policy {
            Meetings::Drain { batch, timeout } => {
                if cfg.is_none() {
                    return Err(PoolError::Usage(
                        "`rollout apply --drain` needs a `balancer:` section in the inventory: it drains nodes there".into(),
                    ));
                }
                let lock = Lock::acquire(&prepared.state, "apply --drain", run.lock_wait)?;
                Some(Drainer {
                    batch: Arc::new(Semaphore::new(batch.max(1))),
                    cordoning: tokio::sync::Mutex::new(()),
                    timeout,
                    journal: Mutex::new(lock.journal()?),
                    lock: Mutex::new(Some(lock)),
                    taken: Mutex::new(HashMap::new()),
                })
            }
            // `--force` cordons a busy node before it ends its meetings, and puts it back
            // after its health check, as `--drain` does: no new class lands on it between
            // the end and the restart. Its meetings end anyway, so no capacity limit.
            Meetings::Force if cfg.is_some() => {
                let lock = Lock::acquire(&prepared.state, "apply --force", run.lock_wait)?;
                Some(Drainer {
                    batch: Arc::new(Semaphore::new(Semaphore::MAX_PERMITS)),
                    cordoning: tokio::sync::Mutex::new(()),
                    timeout: None,
                    journal: Mutex::new(lock.journal()?),
                    lock: Mutex::new(Some(lock)),
                    taken: Mutex::new(HashMap::new()),
                })
            }
            _ => None,
        };
        Ok(Guard {
            api: MeetingApi {
                http: Http::new(Duration::from_secs(timeout)),
                secrets: prepared.inventory.secrets.clone(),
                connector: prepared.connector.clone(),
            },
            prepared,
            cfg,
            nodes: found,
            policy,
            poll: Duration::from_secs_f64(poll),
            verbose: run.verbose,
            client: OnceCell::new(),
            drain,
        })
    }

    /// Gives up the pool's lock that `--drain` or `--force` took (after the run's hosts are
    /// done).
    pub fn release(&self) {
        if let Some(d) = &self.drain {
            d.lock.lock().expect("lock slot").take();
        }
    }

    /// The balancer's client, opened once.
    ///
    /// Errors: no balancer section, or it cannot be opened (redacted text).
    async fn client(&self) -> Result<Arc<dyn Balancer>, String> {
        let Some(cfg) = &self.cfg else {
            return Err("the inventory names no balancer".into());
        };
        self.client
            .get_or_init(|| async {
                balancer::open(
                    cfg,
                    &self.prepared.inventory,
                    self.prepared.connector.clone(),
                    retry_notes(self.verbose),
                )
                .await
                .map(|o| o.client)
                .map_err(|e| self.api.secrets.redact(&e.to_string()))
            })
            .await
            .clone()
    }

    /// Whether the balancer may send `node` classes: `Ok(false)` only when it lists the node
    /// as not registered or disabled.
    ///
    /// Errors: there is no balancer section, or the balancer cannot be read.
    async fn gets_classes(&self, node: &Node) -> Result<bool, String> {
        if self.cfg.is_none() {
            return Err(
                "the inventory names no balancer that could say the node gets no classes".into(),
            );
        }
        let servers = self
            .client()
            .await?
            .list()
            .await
            .map_err(|e| self.api.secrets.redact(&e.to_string()))?;
        let state = balancer::find(&servers, &node.desired.url).map(|s| s.state);
        Ok(!rules::drain::may_skip_wait(state))
    }

    /// The decision for one node (see the module's text).
    async fn decide(&self, node: &Node, goal: Goal, events: &UnboundedSender<Event>) -> Clearance {
        let note = |text: String| {
            let _ = events.send(Event::Note {
                host: Some(node.host.clone()),
                text,
            });
        };
        let forcing = self.policy == Meetings::Force && goal == Goal::Apply;
        let clearance = self.look(node, forcing, &note, events).await;
        match (&self.drain, clearance) {
            (Some(d), Clearance::Hold(why))
                if goal == Goal::Apply && matches!(self.policy, Meetings::Drain { .. }) =>
            {
                self.drain_node(d, node, why, events).await
            }
            (_, c) => c,
        }
    }

    /// `--force` on a busy node (`busy`: its meetings, `None` when they cannot be read):
    /// cordon it first (with a `balancer:` section and the node registered), then end its
    /// meetings, then let its apply run; it goes back into service in
    /// [`MeetingGuard::finished`] after its health check. A node that cannot be cordoned is
    /// held: ending its classes while new ones may land on it would cut those off too.
    async fn force(
        &self,
        node: &Node,
        busy: Option<Vec<crate::bbb_api::Meeting>>,
        events: &UnboundedSender<Event>,
    ) -> Clearance {
        let host = node.host.as_str();
        let what = busy.as_ref().map_or_else(
            || "its meetings (unreadable)".to_string(),
            |ms| format!("its {}", running(ms.len())),
        );
        let taken = match &self.drain {
            Some(d) => match self.cordon_first(d, node, events).await {
                Ok(t) => t.map(|t| (d, t)),
                Err(e) => {
                    return Clearance::Hold(format!(
                        "--force: it must be cordoned before {what} are ended, and {e}"
                    ));
                }
            },
            None => None,
        };
        if busy.is_some() {
            let watch = Watch {
                poll: self.poll,
                timeout: None,
                force: true,
            };
            let state = "ending its meetings before the restart (--force)";
            if let t @ Drained::TimedOut { .. } =
                wait_empty(&self.api, node, watch, state, events).await
            {
                let back = match (&taken, self.client().await) {
                    (Some((d, t)), Ok(c)) => {
                        let back = self.back_in_service(d, c.as_ref(), node, &t.was).await;
                        let _ = self.journal(d, host, Phase::Idle, None, None);
                        format!("; {back}")
                    }
                    _ => String::new(),
                };
                return Clearance::Hold(format!(
                    "--force could not end {what}: {}{back}",
                    t.describe()
                ));
            }
        }
        if let Some((d, t)) = taken {
            let _ = self.journal(d, host, Phase::Applying, None, None);
            d.taken.lock().expect("taken").insert(host.to_string(), t);
        }
        Clearance::Go
    }

    /// Takes a node out of service for `--force`: `None` when it is not registered (the
    /// balancer sends it nothing).
    ///
    /// Errors: the balancer or the journal, in words.
    async fn cordon_first(
        &self,
        d: &Drainer,
        node: &Node,
        events: &UnboundedSender<Event>,
    ) -> Result<Option<Taken>, String> {
        let permit = d
            .batch
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let client = self.client().await.map_err(|e| format!("cannot: {e}"))?;
        let servers = client
            .list()
            .await
            .map_err(|e| self.api.secrets.redact(&format!("cannot: {e}")))?;
        let Some(server) = balancer::find(&servers, &node.desired.url).cloned() else {
            return Ok(None);
        };
        let was = server.state.to_string();
        self.take_out(d, client.as_ref(), &node.host, Some(&server), &was, events)
            .await?;
        let _ = events.send(Event::Progress {
            host: node.host.clone(),
            text: "cordoned".into(),
        });
        Ok(Some(Taken {
            _permit: permit,
            was,
        }))
    }

    /// The decision without `--drain`: whether the node is free, or its meetings were ended.
    async fn look(
        &self,
        node: &Node,
        forcing: bool,
        note: &(dyn Fn(String) + Sync),
        events: &UnboundedSender<Event>,
    ) -> Clearance {
        match meetings(&self.api, node).await {
            Ok(ms) if ms.is_empty() => self.look_at_akka(node, forcing, note, events).await,
            Ok(ms) if forcing => self.force(node, Some(ms), events).await,
            Ok(ms) => Clearance::Hold(running(ms.len())),
            Err(e) if e.nothing_listens => {
                // A blank node (BBB not installed yet, nothing on its API port) or one whose
                // name does not resolve: no client can be in a class there.
                note(format!(
                    "its meetings cannot be read ({e}): nothing listens there, so no class can run on it: not held"
                ));
                Clearance::Go
            }
            Err(e) if e.secret_refused && node.akka_meetings.is_some() => {
                // A secret being changed: bbb-web still has the old one until the restart
                // this apply would run. akka-apps' count needs no secret (see the module's
                // text): no meeting there is no class.
                self.look_without_secret(node, &e, forcing, note, events)
                    .await
            }
            Err(e) => match self.gets_classes(node).await {
                Ok(false) => {
                    note(format!(
                        "its meetings cannot be read ({e}), but the balancer sends it no classes (not registered, or disabled): not held"
                    ));
                    Clearance::Go
                }
                _ if forcing => {
                    note(format!(
                        "--force: its meetings cannot be read ({e}); going ahead"
                    ));
                    self.force(node, None, events).await
                }
                Ok(true) => Clearance::Hold(format!(
                    "its meetings cannot be read ({e}), so it counts as busy"
                )),
                Err(why) => Clearance::Hold(format!(
                    "its meetings cannot be read ({e}), so it counts as busy ({why})"
                )),
            },
        }
    }
}

impl Guard {
    /// A node whose API refuses the inventory's secret (`e`): free when akka-apps holds no
    /// meeting (its count, run on the node, needs no secret), else held as busy.
    async fn look_without_secret(
        &self,
        node: &Node,
        e: &super::drain::Unread,
        forcing: bool,
        note: &(dyn Fn(String) + Sync),
        events: &UnboundedSender<Event>,
    ) -> Clearance {
        const REFUSED: &str =
            "its API refuses the inventory's secret (a changed bbb_secret not yet in use?)";
        let why = match self.akka_count(node).await {
            None => format!("its meetings cannot be read ({e}), so it counts as busy"),
            Some(Ok(0)) => {
                note(format!(
                    "{REFUSED}, but akka-apps holds no meeting: not held"
                ));
                return Clearance::Go;
            }
            Some(Ok(n)) => format!("{REFUSED}, and akka-apps holds {n} meeting(s)"),
            Some(Err(a)) => format!(
                "its meetings cannot be read ({e}), nor akka-apps' count ({a}), so it counts as busy"
            ),
        };
        self.hold_or_force(node, why, forcing, note, events).await
    }

    /// A node whose `getMeetings` lists none: free unless akka-apps holds classes bbb-web
    /// forgot, or cannot say (see the module's text).
    async fn look_at_akka(
        &self,
        node: &Node,
        forcing: bool,
        note: &(dyn Fn(String) + Sync),
        events: &UnboundedSender<Event>,
    ) -> Clearance {
        let why = match self.akka_count(node).await {
            None | Some(Ok(0)) => return Clearance::Go,
            Some(Ok(n)) => format!(
                "bbb-web lists no meeting, but akka-apps holds {n}: a class bbb-web forgot when it restarted"
            ),
            Some(Err(e)) => format!(
                "bbb-web lists no meeting, but whether akka-apps holds one cannot be read ({e}), so it counts as busy"
            ),
        };
        self.hold_or_force(node, why, forcing, note, events).await
    }

    /// akka-apps' count of the node's meetings (`bbb_akka_meetings_command`, run on the node
    /// over its own connection, closed after); `None` when the node has no such command.
    async fn akka_count(&self, node: &Node) -> Option<Result<u64, String>> {
        let command = node.akka_meetings.as_ref()?;
        let mut conn = None;
        let count = akka_meetings(&self.api, node, command, &mut conn).await;
        if let Some(c) = conn {
            c.close().await;
        }
        Some(count)
    }

    /// A busy node (`why`): held, or with `--force` cordoned and its meetings ended.
    async fn hold_or_force(
        &self,
        node: &Node,
        why: String,
        forcing: bool,
        note: &(dyn Fn(String) + Sync),
        events: &UnboundedSender<Event>,
    ) -> Clearance {
        if forcing {
            note(format!("--force: {why}; the restart ends it"));
            return self.force(node, None, events).await;
        }
        Clearance::Hold(why)
    }

    /// `--drain` for a busy node (`why` it is busy): within the batch and `min_in_service`,
    /// cordon it, wait until its meetings have ended, and let its apply run; it goes back
    /// into service in [`MeetingGuard::finished`]. A drain that cannot be started or times
    /// out holds the change instead (the node back in service as it was).
    async fn drain_node(
        &self,
        d: &Drainer,
        node: &Node,
        why: String,
        events: &UnboundedSender<Event>,
    ) -> Clearance {
        let host = node.host.as_str();
        let progress = |text: &str| {
            let _ = events.send(Event::Progress {
                host: host.to_string(),
                text: text.to_string(),
            });
        };
        progress(&format!(
            "{why}; waiting for a place in the batch to drain it"
        ));
        let permit = match d.batch.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => return Clearance::Hold(why),
        };
        let client = match self.client().await {
            Ok(c) => c,
            Err(e) => return Clearance::Hold(format!("{why}; cannot drain it: {e}")),
        };
        let cfg = self.cfg.as_ref().expect("--drain has a balancer");
        let was = {
            let _one = d.cordoning.lock().await;
            let servers = match client.list().await {
                Ok(s) => s,
                Err(e) => {
                    let e = self.api.secrets.redact(&e.to_string());
                    return Clearance::Hold(format!("{why}; cannot drain it: {e}"));
                }
            };
            let server = balancer::find(&servers, &node.desired.url).cloned();
            let taking: Vec<&Server> = server.iter().collect();
            if let Err(e) = check_capacity(
                &servers,
                &taking,
                cfg.min_in_service,
                &format!("drain {host}"),
            ) {
                return Clearance::Hold(format!("{why}; {e}"));
            }
            let was = server
                .as_ref()
                .map_or("unregistered".to_string(), |s| s.state.to_string());
            if let Err(e) = self
                .take_out(d, client.as_ref(), host, server.as_ref(), &was, events)
                .await
            {
                return Clearance::Hold(format!("{why}; {e}"));
            }
            was
        };
        progress("cordoned, waiting for its meetings to end");
        let watch = Watch {
            poll: self.poll,
            timeout: d.timeout,
            force: false,
        };
        match wait_empty(&self.api, node, watch, "cordoned", events).await {
            Drained::Empty { waited, .. } => {
                let _ = self.journal(d, host, Phase::Applying, None, None);
                progress(&format!("drained (waited {}), applying", human(waited)));
                d.taken.lock().expect("taken").insert(
                    host.to_string(),
                    Taken {
                        _permit: permit,
                        was,
                    },
                );
                Clearance::Go
            }
            t @ Drained::TimedOut { .. } => {
                let back = self.back_in_service(d, client.as_ref(), node, &was).await;
                let _ = self.journal(d, host, Phase::Idle, None, None);
                Clearance::Hold(format!(
                    "{why}; the drain gave up: {}; {back}",
                    t.describe()
                ))
            }
        }
    }

    /// Journals the node as draining (with the state it `was` in) and cordons `server`
    /// (`None`: not registered, nothing to cordon), the cordon journaled first.
    ///
    /// Errors: the journal cannot be written, or the balancer refused (the node is journaled
    /// idle again), in words.
    async fn take_out(
        &self,
        d: &Drainer,
        client: &dyn Balancer,
        host: &str,
        server: Option<&Server>,
        was: &str,
        events: &UnboundedSender<Event>,
    ) -> Result<(), String> {
        self.journal(d, host, Phase::Draining, None, Some(was))
            .map_err(|e| format!("cannot drain it: {e}"))?;
        let Some(s) = server else {
            return Ok(());
        };
        if s.state == State::Enabled {
            self.mark(d, host, State::Cordoned)
                .map_err(|e| format!("cannot drain it: {e}"))?;
        }
        let _ = events.send(Event::Progress {
            host: host.to_string(),
            text: "cordoning".into(),
        });
        if let Err(e) = cordon(client, s).await {
            let e = self.api.secrets.redact(&e.to_string());
            let _ = self.journal(d, host, Phase::Idle, None, None);
            return Err(format!("cannot cordon it: {e}"));
        }
        Ok(())
    }

    /// Journals that this apply is about to set `host`'s balancer state to `to`.
    fn mark(&self, d: &Drainer, host: &str, to: State) -> Result<(), JournalError> {
        let mut j = d.journal.lock().expect("journal");
        j.mark_set(host, to, self.command());
        j.save()
    }

    /// `apply --drain` or `apply --force`, as the journal names the command.
    fn command(&self) -> &'static str {
        match self.policy {
            Meetings::Force => "apply --force",
            _ => "apply --drain",
        }
    }

    /// Puts a node `--drain` cordoned back as it was before (`was`); what was done, in words.
    async fn back_in_service(
        &self,
        d: &Drainer,
        client: &dyn Balancer,
        node: &Node,
        was: &str,
    ) -> String {
        let servers = match client.list().await {
            Ok(s) => s,
            Err(e) => return self.api.secrets.redact(&format!("left cordoned: {e}")),
        };
        let Some(s) = balancer::find(&servers, &node.desired.url) else {
            return "not registered".into();
        };
        match rules::enable::after_upgrade(was, s.state) {
            Back::Enable if self.mark(d, &node.host, State::Enabled).is_err() => {
                "left cordoned: the journal could not be written".into()
            }
            Back::Enable => match client.set_state(s, State::Enabled).await {
                Ok(_) => "enabled again".into(),
                Err(e) => self.api.secrets.redact(&format!("left cordoned: {e}")),
            },
            Back::Enabled => "enabled".into(),
            Back::AsBefore => format!("left {} as it was", s.state),
        }
    }

    /// Journals a node's phase as `rollout apply --drain` sets it (and, first time, the
    /// state it was in).
    fn journal(
        &self,
        d: &Drainer,
        host: &str,
        phase: Phase,
        reason: Option<String>,
        was: Option<&str>,
    ) -> Result<(), JournalError> {
        let mut j = d.journal.lock().expect("journal");
        j.set(host, phase, "apply", reason)?;
        if let Some(was) = was {
            j.remember_was(host, was);
            j.save()?;
        }
        Ok(())
    }

    /// After the apply of a node `--drain` took out: health check, back in service.
    async fn put_back(&self, d: &Drainer, host: &str, ok: bool, events: &UnboundedSender<Event>) {
        let Some(taken) = d.taken.lock().expect("taken").remove(host) else {
            return;
        };
        let Some(node) = self.nodes.iter().find(|n| n.host == host) else {
            return;
        };
        let note = |text: String| {
            let _ = events.send(Event::Note {
                host: Some(host.to_string()),
                text,
            });
        };
        if !ok {
            let why = "its apply failed; left cordoned (`rollout undrain` puts it back)";
            let _ = self.journal(d, host, Phase::Failed, Some(why.into()), None);
            note(why.into());
            return;
        }
        let _ = self.journal(d, host, Phase::HealthCheck, None, None);
        let timeout = Duration::from_secs(self.cfg.as_ref().map_or(60, |c| c.health_timeout));
        if let Err(e) = health::wait(
            &self.api.http,
            &self.prepared.connector,
            timeout,
            &self.api.secrets,
            node,
            Some(events),
        )
        .await
        {
            let why =
                format!("health check failed: {e}; left cordoned (`rollout undrain` puts it back)");
            let _ = self.journal(d, host, Phase::Failed, Some(why.clone()), None);
            note(why);
            return;
        }
        let _ = self.journal(d, host, Phase::Enabling, None, None);
        let back = match self.client().await {
            Ok(c) => self.back_in_service(d, c.as_ref(), node, &taken.was).await,
            Err(e) => format!("left cordoned: {e}"),
        };
        let _ = self.journal(d, host, Phase::Idle, None, None);
        let how = match self.policy {
            Meetings::Force => "cordoned, meetings ended (--force), applied and healthy",
            _ => "drained, applied and healthy",
        };
        note(format!("{how}; {back}"));
    }
}

/// `1 meeting running`, `2 meetings running`.
fn running(n: usize) -> String {
    if n == 1 {
        "1 meeting running".into()
    } else {
        format!("{n} meetings running")
    }
}

impl MeetingGuard for Guard {
    fn clear<'a>(
        &'a self,
        host: &'a str,
        goal: Goal,
        _items: &'a [String],
        events: &'a UnboundedSender<Event>,
    ) -> ClearanceFuture<'a> {
        Box::pin(async move {
            match self.nodes.iter().find(|n| n.host == host) {
                // Not a BBB node: it has no meetings to end.
                None => Clearance::Go,
                Some(node) => self.decide(node, goal, events).await,
            }
        })
    }

    fn finished<'a>(
        &'a self,
        host: &'a str,
        ok: bool,
        events: &'a UnboundedSender<Event>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            if let Some(d) = &self.drain {
                self.put_back(d, host, ok, events).await;
            }
        })
    }
}

/// Gives each plan the handlers an earlier, held apply owes its host (from the journal).
///
/// Errors: the journal cannot be read.
pub fn fill_owed(prepared: &mut Prepared) -> Result<(), JournalError> {
    let journal = Journal::load(&prepared.state)?;
    for plan in &mut prepared.plans {
        plan.owed = owed(&journal, plan);
    }
    Ok(())
}

/// The handlers (indices into `plan.handlers`) the journal says an apply owes `plan`'s host.
pub fn owed(journal: &Journal, plan: &HostPlan) -> Vec<usize> {
    let Some(rec) = journal.nodes.get(&plan.host.name) else {
        return Vec::new();
    };
    plan.handlers
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            rec.owed
                .iter()
                .any(|o| o.role == h.spec.role && o.handler == h.spec.name)
        })
        .map(|(i, _)| i)
        .collect()
}

/// Records in the journal, after an apply, what each host is owed now: the handlers held
/// back on it, or nothing once an apply ran on it without holding anything. A host whose
/// apply failed keeps what it was owed. Waits up to `wait` (default 60 s) for the pool's
/// lock; the journal is written only when something changes.
///
/// Errors: the lock or the journal.
pub fn owe(
    state: &Backend,
    results: &[HostResult],
    wait: Option<Duration>,
) -> Result<(), JournalError> {
    let before = Journal::load(state)?;
    let changes = |j: &Journal| {
        results.iter().any(|r| {
            let owed = j.nodes.get(&r.host).is_some_and(|n| !n.owed.is_empty());
            r.held.as_ref().is_some_and(|h| !h.handlers.is_empty())
                || (owed && r.outcome == crate::report::HostOutcome::Ok)
        })
    };
    if !changes(&before) {
        return Ok(());
    }
    let lock = Lock::acquire(
        state,
        "apply",
        Some(wait.unwrap_or(Duration::from_secs(60))),
    )?;
    let mut journal = lock.journal()?;
    for r in results {
        match &r.held {
            Some(h) if !h.handlers.is_empty() => journal.set_owed(&r.host, &h.handlers, &h.reason),
            Some(_) => {}
            None if r.outcome == crate::report::HostOutcome::Ok => {
                journal.set_owed(&r.host, &[], "")
            }
            None => {}
        }
    }
    journal.save()
}
