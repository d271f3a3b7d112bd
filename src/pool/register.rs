//! Registration at the end of `rollout apply`: every node of the balancer's group that
//! converged and passed its health check is registered (found by its API URL; secret, load
//! multiplier and tag updated when they differ) and enabled. A node that fails stays
//! unregistered, or is cordoned so it gets no new meetings; the summary says which and why.
//! A node that rollout holds out of service on purpose (`rollout drain`, an unfinished
//! upgrade) is updated but not enabled.

use super::health::wait as health;
use super::journal::Journal;
use super::{Node, nodes};
use crate::app::{self, Prepared};
use crate::balancer::{self, BalancerConfig, State};
use crate::error::Diagnostic;
use crate::http::Http;
use crate::report::summary::{Registered, RegistrationSummary};
use crate::report::{HostOutcome, HostResult};
use std::time::Duration;

/// Validated before the apply, run after it.
pub struct Registration {
    cfg: BalancerConfig,
    nodes: Vec<Node>,
    inventory: std::path::PathBuf,
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
        inventory: run.inventory.clone(),
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
        let opened = match balancer::open(&self.cfg, &p.inventory, p.connector.clone()).await {
            Ok(o) => o,
            Err(e) => return Some(unreached(e)),
        };
        // The journal says which nodes `rollout drain` or an unfinished upgrade holds out;
        // without it we cannot know what must stay out, so change nothing.
        let journal = match Journal::load(&self.inventory) {
            Ok(j) => j,
            Err(e) => return Some(unreached(e)),
        };
        let http = Http::new(Duration::from_secs(self.cfg.request_timeout));
        let timeout = Duration::from_secs(self.cfg.health_timeout);
        let mut checks = tokio::task::JoinSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let applied = results
                .iter()
                .find(|r| r.host == node.host)
                .map(|r| r.outcome.clone());
            let (http, secrets, node) = (http.clone(), secrets.clone(), node.clone());
            checks.spawn(async move {
                let h = match &applied {
                    Some(HostOutcome::Ok) | None => health(&http, timeout, &secrets, &node, None)
                        .await
                        .map(|_| ()),
                    // Do not wait for a node whose apply failed: one check says whether it serves.
                    Some(_) => health(&http, Duration::ZERO, &secrets, &node, None)
                        .await
                        .map(|_| ()),
                };
                (i, applied, h)
            });
        }
        let mut checked = Vec::new();
        while let Some(Ok(c)) = checks.join_next().await {
            checked.push(c);
        }
        checked.sort_by_key(|c| c.0);
        let mut out = Vec::new();
        for (i, applied, healthy) in checked {
            let node = &self.nodes[i];
            let server = balancer::find(&opened.servers, &node.desired.url).cloned();
            let held = journal
                .nodes
                .get(&node.host)
                .filter(|r| r.phase.holds_node())
                .map(|r| format!("{} by rollout {}", r.phase.name(), r.by));
            let apply_failed = match applied {
                Some(HostOutcome::Failed(_)) => Some("apply failed"),
                Some(HostOutcome::Unreachable(_)) => Some("host unreachable"),
                _ => None,
            };
            let client = opened.client.as_ref();
            let r: Result<String, String> = async {
                match (healthy, apply_failed, server) {
                    (Ok(()), None, None) => {
                        let s = client.add(&node.desired).await.map_err(|e| e.to_string())?;
                        if let Some(h) = held {
                            return Ok(format!("registered, left {}: {h}", s.state));
                        }
                        client
                            .set_state(&s, State::Enabled)
                            .await
                            .map_err(|e| format!("registered, but not enabled: {e}"))?;
                        Ok("registered and enabled".into())
                    }
                    (Ok(()), None, Some(s)) => {
                        let diffs = s.differences(&node.desired);
                        let mut text = Vec::new();
                        let s = if diffs.is_empty() {
                            s
                        } else {
                            text.push(format!("updated {}", diffs.join(", ")));
                            client
                                .update(&s, &node.desired)
                                .await
                                .map_err(|e| e.to_string())?
                        };
                        match (s.state, held) {
                            (State::Enabled, _) => text.push(if text.is_empty() {
                                "unchanged (enabled)".into()
                            } else {
                                "enabled".into()
                            }),
                            (st, Some(h)) => text.push(format!("left {st}: {h}")),
                            (st, None) => {
                                client
                                    .set_state(&s, State::Enabled)
                                    .await
                                    .map_err(|e| e.to_string())?;
                                text.push(format!("enabled (was {st})"));
                            }
                        }
                        Ok(text.join("; "))
                    }
                    (Err(e), _, None) => Err(format!("NOT registered: health check failed: {e}")),
                    (Ok(()), Some(why), None) => Err(format!("NOT registered: {why}")),
                    (Err(e), _, Some(s)) if s.state == State::Enabled => {
                        client.set_state(&s, State::Cordoned).await.map_err(|c| {
                            format!("health check failed: {e}; cordoning failed too: {c}")
                        })?;
                        Err(format!(
                            "cordoned (no new meetings): health check failed: {e}"
                        ))
                    }
                    (Err(e), _, Some(s)) => {
                        Err(format!("left {}: health check failed: {e}", s.state))
                    }
                    (Ok(()), Some(why), Some(s)) => {
                        Err(format!("left {} and unchanged: {why}", s.state))
                    }
                }
            }
            .await;
            out.push(match r {
                Ok(text) => Registered {
                    host: node.host.clone(),
                    ok: true,
                    text,
                },
                Err(text) => Registered {
                    host: node.host.clone(),
                    ok: false,
                    text: secrets.redact(&text),
                },
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
