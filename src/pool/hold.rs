//! `rollout apply` never ends a class: before a BBB node runs a step or handler marked
//! `ends_meetings` (a restart of bbb-web, FreeSWITCH, akka-apps, the SFU or nginx, a reboot,
//! an upgrade of BBB's packages), the [`Guard`] asks the node's own API for its meetings
//! (`getMeetings` with the node's secret, as `rollout drain` does). On a node with meetings
//! those items are held back (the executor runs everything else, config-only changes
//! included); what a held handler owed the node is kept in the pool's journal ([`owe`]) and
//! run by the next apply that finds the node free ([`fill_owed`]). `--force` ends the
//! meetings first, as `rollout drain --force` does.
//!
//! A node whose meetings cannot be read counts as busy, never as free, unless the balancer
//! (read then, once per run) lists it in no state that gets classes (not registered, or
//! disabled): that is a node being installed, as the upgrade's drain decides too
//! ([`rules::drain::may_skip_wait`]).

use super::drain::{Drained, MeetingApi, Watch, meetings, wait_empty};
use super::journal::{Journal, JournalError, Lock};
use super::rules;
use super::{Node, nodes, retry_notes};
use crate::app::{self, Prepared};
use crate::balancer::{self, BalancerConfig, Product, Server};
use crate::error::Diagnostic;
use crate::exec::{Clearance, ClearanceFuture, Goal, MeetingGuard};
use crate::http::Http;
use crate::report::{Event, HostResult};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::sync::mpsc::UnboundedSender;

/// What `rollout apply` does on a BBB node with meetings when a change would end them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Meetings {
    /// Hold the change back: the node is reported as held, its restarts stay pending.
    #[default]
    Hold,
    /// `--force`: end the meetings (as `rollout drain --force` does), then apply.
    Force,
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
    /// The balancer's servers, read at most once, and only for a node whose meetings
    /// cannot be read; the error text when the balancer cannot be read.
    servers: OnceCell<Result<Vec<Server>, String>>,
}

impl Guard {
    /// The guard for the run's BBB nodes: with a `balancer:` section its group's selected
    /// hosts, without one every host whose variables set `bbb_api_url` and `bbb_secret`.
    ///
    /// Errors: a node's balancer variables cannot be used (located diagnostics).
    pub fn new(
        run: &app::Options,
        prepared: Arc<Prepared>,
        policy: Meetings,
    ) -> Result<Guard, Vec<Diagnostic>> {
        let cfg = balancer::config::load(&prepared.inventory).map_err(|d| vec![d])?;
        let found = match &cfg {
            Some(cfg) => nodes(&prepared, cfg)?,
            None => prepared
                .plans
                .iter()
                .filter(|p| p.vars.contains_key("bbb_api_url") && p.vars.contains_key("bbb_secret"))
                .filter_map(|p| super::node(p, Product::Scalelite).ok())
                .collect(),
        };
        let timeout = cfg.as_ref().map_or(10, |c| c.request_timeout);
        let poll = cfg.as_ref().map_or(5.0, |c| c.poll_interval);
        Ok(Guard {
            api: MeetingApi {
                http: Http::new(Duration::from_secs(timeout)),
                secrets: prepared.inventory.secrets.clone(),
            },
            prepared,
            cfg,
            nodes: found,
            policy,
            poll: Duration::from_secs_f64(poll),
            verbose: run.verbose,
            servers: OnceCell::new(),
        })
    }

    /// Whether the balancer may send `node` classes: `Ok(false)` only when it lists the node
    /// as not registered or disabled.
    ///
    /// Errors: there is no balancer section, or the balancer cannot be read.
    async fn gets_classes(&self, node: &Node) -> Result<bool, String> {
        let Some(cfg) = &self.cfg else {
            return Err(
                "the inventory names no balancer that could say the node gets no classes".into(),
            );
        };
        let servers = self
            .servers
            .get_or_init(|| async {
                balancer::open(
                    cfg,
                    &self.prepared.inventory,
                    self.prepared.connector.clone(),
                    retry_notes(self.verbose),
                )
                .await
                .map(|o| o.servers)
                .map_err(|e| self.api.secrets.redact(&e.to_string()))
            })
            .await;
        let servers = servers.as_ref().map_err(Clone::clone)?;
        let state = balancer::find(servers, &node.desired.url).map(|s| s.state);
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
        match meetings(&self.api, node).await {
            Ok(ms) if ms.is_empty() => Clearance::Go,
            Ok(ms) if forcing => {
                let watch = Watch {
                    poll: self.poll,
                    timeout: None,
                    force: true,
                };
                match wait_empty(&self.api, node, watch, events).await {
                    Drained::Empty { .. } => Clearance::Go,
                    d @ Drained::TimedOut { .. } => Clearance::Hold(format!(
                        "--force could not end its {}: {}",
                        running(ms.len()),
                        d.describe()
                    )),
                }
            }
            Ok(ms) => Clearance::Hold(running(ms.len())),
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
                    Clearance::Go
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
}

/// Gives each plan the handlers an earlier, held apply owes its host (from the journal).
///
/// Errors: the journal cannot be read.
pub fn fill_owed(inventory: &Path, prepared: &mut Prepared) -> Result<(), JournalError> {
    let journal = Journal::load(inventory)?;
    for plan in &mut prepared.plans {
        let Some(rec) = journal.nodes.get(&plan.host.name) else {
            continue;
        };
        plan.owed = plan
            .handlers
            .iter()
            .enumerate()
            .filter(|(_, h)| {
                rec.owed
                    .iter()
                    .any(|o| o.role == h.spec.role && o.handler == h.spec.name)
            })
            .map(|(i, _)| i)
            .collect();
    }
    Ok(())
}

/// Records in the journal, after an apply, what each host is owed now: the handlers held
/// back on it, or nothing once an apply ran on it without holding anything. A host whose
/// apply failed keeps what it was owed. Waits up to `wait` (default 60 s) for the pool's
/// lock; the journal is written only when something changes.
///
/// Errors: the lock or the journal.
pub fn owe(
    inventory: &Path,
    results: &[HostResult],
    wait: Option<Duration>,
) -> Result<(), JournalError> {
    let before = Journal::load(inventory)?;
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
    let _lock = Lock::acquire(
        inventory,
        "apply",
        Some(wait.unwrap_or(Duration::from_secs(60))),
    )?;
    let mut journal = Journal::load(inventory)?;
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
