//! Registration at the end of `rollout apply`: every node of the balancer's group that
//! converged and passed its health check is registered (found by its API URL; secret, load
//! multiplier and tag updated when they differ) and enabled. A node that fails stays
//! unregistered, or is cordoned so it gets no new meetings; the summary says which and why.
//! A node that rollout holds out of service on purpose (`rollout drain`, an unfinished
//! upgrade) is updated but not enabled. What to do with each node is decided by
//! [`super::rules::registration`]; this module observes and carries it out. A node that ends
//! enabled counts as registered only once the balancer would route to it
//! ([`Balancer::routable`]: for b3scale, a heartbeat of the node's agent in the last 5 s,
//! waited for at most `health_timeout`); otherwise its line is a failure naming the cause.

use super::health::wait as health;
use super::journal::{Journal, Lock};
use super::rules::registration::{self, Applied, Decision, Entry, Held, Report, Seen};
use super::{Node, nodes};
use crate::app::{self, Prepared};
use crate::balancer::{self, Balancer, BalancerConfig, Server, State};
use crate::error::Diagnostic;
use crate::http::Http;
use crate::report::summary::{Registered, RegistrationSummary};
use crate::report::{HostOutcome, HostResult};
use crate::secret::Secrets;
use std::time::Duration;

/// Validated before the apply, run after it.
pub struct Registration {
    cfg: BalancerConfig,
    nodes: Vec<Node>,
    /// `-v`: retried balancer calls are told.
    verbose: bool,
    /// How long to wait for the pool's lock (`--wait`; 60 s when not given).
    lock_wait: Option<Duration>,
}

/// The registration of an apply, validated before any host is touched: `Ok(None)` when the
/// inventory has no balancer.
///
/// Errors: bad `balancer:` section or node variables, as diagnostics.
pub fn prepare(run: &app::Options, p: &Prepared) -> Result<Option<Registration>, Vec<Diagnostic>> {
    let Some(cfg) = balancer::config::load(&p.inventory).map_err(|d| vec![d])? else {
        return Ok(None);
    };
    let nodes = nodes(p, &cfg)?;
    Ok(Some(Registration {
        cfg,
        nodes,
        verbose: run.verbose,
        lock_wait: run.lock_wait,
    }))
}

/// Nothing could be registered: the balancer or the journal could not be used.
fn unreached(why: impl std::fmt::Display) -> RegistrationSummary {
    RegistrationSummary {
        balancer: format!("{why}; no node was registered or changed in the balancer"),
        nodes: Vec::new(),
        reached: false,
    }
}

impl Registration {
    /// Registers the nodes after the apply gave `results`; `None` when the balancer's group
    /// has no selected host.
    pub async fn run(&self, p: &Prepared, results: &[HostResult]) -> Option<RegistrationSummary> {
        if self.nodes.is_empty() {
            return None;
        }
        let secrets = &p.inventory.secrets;
        let opened = match balancer::open(
            &self.cfg,
            &p.inventory,
            p.connector.clone(),
            super::retry_notes(self.verbose),
        )
        .await
        {
            Ok(o) => o,
            Err(e) => return Some(unreached(e)),
        };
        // The journal says which nodes `rollout drain` or an unfinished upgrade holds out,
        // and which states rollout set (a node someone else took out stays out); without it
        // we cannot know what must stay out, so change nothing. Every state rollout sets is
        // written to it first, under the pool's lock.
        let lock = match Lock::acquire(
            &p.state,
            "apply",
            Some(self.lock_wait.unwrap_or(Duration::from_secs(60))),
        ) {
            Ok(l) => l,
            Err(e) => return Some(unreached(e)),
        };
        let mut journal = match lock.journal() {
            Ok(j) => j,
            Err(e) => return Some(unreached(e)),
        };
        let mut out = Vec::new();
        for (i, applied, healthy) in self.check_health(p, results).await {
            let node = &self.nodes[i];
            let server = balancer::find(&opened.servers, &node.desired.url).cloned();
            let outside = server
                .as_ref()
                .and_then(|s| super::set_outside(&mut journal, &node.host, s));
            if outside.as_ref().is_some_and(|(_, changed)| *changed)
                && let Err(e) = journal.save()
            {
                out.push(Registered {
                    host: node.host.clone(),
                    ok: false,
                    text: format!("left as it is: {e}"),
                    outside: None,
                });
                continue;
            }
            let outside = outside.map(|(words, _)| words);
            let outside_text = outside
                .as_ref()
                .map(|w| format!("{w}; `rollout undrain --limit {}` puts it back", node.host));
            let rec = journal.nodes.get(&node.host).cloned();
            let held = rec.as_ref().filter(|r| r.phase.holds_node()).map(|r| Held {
                phase: r.phase,
                by: r.by.as_str(),
            });
            let seen = Seen {
                health: healthy.as_ref().copied().map_err(String::as_str),
                applied,
                entry: server.as_ref().map_or(Entry::Absent, |s| Entry::Listed {
                    state: s.state,
                    differences: s.differences(&node.desired),
                }),
                held,
                outside: outside_text.as_deref(),
            };
            let r = carry_out(opened.client.as_ref(), &mut journal, node, server, seen).await;
            out.push(Registered {
                host: node.host.clone(),
                ok: r.is_ok(),
                text: r.unwrap_or_else(|e| secrets.redact(&e)),
                outside,
            });
        }
        let balancer = match &opened.note {
            Some(n) => format!("{} ({n})", opened.client.describe()),
            None => opened.client.describe(),
        };
        Some(RegistrationSummary {
            balancer,
            nodes: out,
            reached: true,
        })
    }
}

impl Registration {
    /// Health-checks every node at once; per node (by index, in order) how its apply went
    /// and the check's redacted error.
    async fn check_health(
        &self,
        p: &Prepared,
        results: &[HostResult],
    ) -> Vec<(usize, Applied, Result<(), String>)> {
        let secrets: &Secrets = &p.inventory.secrets;
        let http = Http::new(Duration::from_secs(self.cfg.request_timeout));
        let timeout = Duration::from_secs(self.cfg.health_timeout);
        let mut checks = tokio::task::JoinSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let applied = match results.iter().find(|r| r.host == node.host) {
                Some(HostResult {
                    outcome: HostOutcome::Failed(_),
                    ..
                }) => Applied::Failed,
                Some(HostResult {
                    outcome: HostOutcome::Unreachable(_),
                    ..
                }) => Applied::Unreachable,
                _ => Applied::Ok,
            };
            // Do not wait for a node whose apply failed: one check says whether it serves.
            let timeout = if applied == Applied::Ok {
                timeout
            } else {
                Duration::ZERO
            };
            let (http, secrets, node) = (http.clone(), secrets.clone(), node.clone());
            let connector = p.connector.clone();
            checks.spawn(async move {
                let h = health(&http, &connector, timeout, &secrets, &node, None).await;
                (i, applied, h.map(|_| ()))
            });
        }
        let mut checked = Vec::new();
        while let Some(Ok(c)) = checks.join_next().await {
            checked.push(c);
        }
        checked.sort_by_key(|c| c.0);
        checked
    }
}

/// Carries out [`registration::decide`] for one node until it reports: `server` is its
/// balancer entry (`None`: not registered), `seen` what the rule needs to know. Every state
/// it sets, and every add, is written to `journal` first. A success that leaves the node
/// enabled stands only once the balancer would route to it.
async fn carry_out(
    client: &dyn Balancer,
    journal: &mut Journal,
    node: &Node,
    server: Option<Server>,
    seen: Seen<'_>,
) -> Report {
    let (report, last) = decide_and_write(client, journal, node, server, seen).await;
    match (report, last) {
        (Ok(text), Some(s)) if s.state == State::Enabled => match client.routable(&s).await {
            Ok(()) => Ok(text),
            Err(e) => Err(format!("{text}, but NOT routable: {e}")),
        },
        (report, _) => report,
    }
}

/// The rule's writes for one node: its report and the entry as the balancer last returned
/// it.
async fn decide_and_write(
    client: &dyn Balancer,
    journal: &mut Journal,
    node: &Node,
    mut server: Option<Server>,
    mut seen: Seen<'_>,
) -> (Report, Option<Server>) {
    loop {
        let action = registration::decide(&seen);
        let mark = |journal: &mut Journal, to: State| {
            journal.mark_set(&node.host, to, "apply");
            journal.save().map_err(|e| format!("left as it is: {e}"))
        };
        let step: std::result::Result<Server, String> = match (action, &server) {
            (Decision::Report(r), _) => return (r, server),
            (Decision::SetState { to, then, failed }, Some(s)) => {
                if let Err(e) = mark(journal, to) {
                    return (Err(e), server);
                }
                return match client.set_state(s, to).await {
                    Ok(s) => (then, Some(s)),
                    Err(e) => (Err(format!("{failed}{e}")), server),
                };
            }
            (Decision::Add, _) => {
                // Added out of service (Scalelite: disabled; b3scale: stopped).
                if let Err(e) = mark(journal, State::Disabled) {
                    return (Err(e), server);
                }
                client.add(&node.desired).await.inspect(|s| {
                    seen.entry = Entry::Added { state: s.state };
                })
            }
            (Decision::Update(fields), Some(s)) => {
                client.update(s, &node.desired).await.inspect(|s| {
                    seen.entry = Entry::Updated {
                        state: s.state,
                        fields,
                    };
                })
            }
            // The rule sets a state or updates only what the balancer listed or returned.
            (Decision::SetState { .. } | Decision::Update(_), None) => {
                return (
                    Err("internal error: no balancer entry to change".into()),
                    server,
                );
            }
        }
        .map_err(|e| e.to_string());
        match step {
            Ok(s) => server = Some(s),
            Err(e) => return (Err(e), server),
        }
    }
}
