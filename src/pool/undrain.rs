//! `rollout undrain`: puts nodes that `rollout drain` (or a failed upgrade) left out of
//! service back into the balancer, each only after its health check passes, and marks them
//! idle in the journal. A node someone outside rollout took out of service
//! ([`super::rules::hands_off`]) is put back only when `--limit` names it itself; one it
//! selects through a group is reported and left.

use super::error::{NodeError, PoolError};
use super::journal::{Lock, Phase};
use super::{Pool, need_limit, rules};
use crate::app;
use crate::balancer::State;
use crate::report::summary::UndrainSummary;
use crate::report::{Event, Reporter, Settings};

/// `rollout undrain`: enables drained nodes again, each after its health check.
///
/// Errors: bad input, no `--limit`, the journal or its lock, or the balancer; nothing is
/// changed then. A node that cannot be enabled is in the summary.
pub async fn main(a: &app::Options) -> Result<UndrainSummary, PoolError> {
    need_limit(a, "undrain")?;
    let pool = Pool::load(a, &Default::default(), "undrain")?;
    let lock = Lock::acquire(&pool.prepared.state, "undrain", a.lock_wait)?;
    let mut journal = lock.journal()?;
    let opened = pool.open().await?;
    let rep = Reporter::start(Settings::new(
        a.output,
        a.verbose,
        pool.nodes.len(),
        "undrain",
    ));
    let mut out = UndrainSummary {
        enabled: Vec::new(),
        failed: Vec::new(),
        left: Vec::new(),
    };
    for node in &pool.nodes {
        // A person's state stays unless the operator named this node.
        let outside = crate::balancer::find(&opened.servers, &node.desired.url)
            .and_then(|s| super::set_outside(&mut journal, &node.host, s).map(|w| (s, w)));
        if let Some((server, (words, changed))) = outside {
            if changed {
                journal.save()?;
            }
            if !rules::hands_off::names(a.limit.as_deref(), &node.host) {
                rep.send(Event::NodeFinished {
                    host: node.host.clone(),
                    ok: true,
                    text: format!(
                        "left {}: {words}; selected only through a group, so not changed (`rollout undrain --limit {}` names it)",
                        server.state, node.host
                    ),
                });
                out.left.push(node.host.clone());
                continue;
            }
        }
        let result: Result<String, NodeError> = async {
            let server =
                crate::balancer::find(&opened.servers, &node.desired.url).ok_or_else(|| {
                    NodeError::Other(
                        "not registered in the balancer; `rollout apply` registers it".into(),
                    )
                })?;
            rep.send(Event::Progress {
                host: node.host.clone(),
                text: "health check".into(),
            });
            pool.health(node, Some(&rep.tx)).await.map_err(|e| {
                NodeError::Other(format!("health check failed, left {}: {e}", server.state))
            })?;
            let enabled = if server.state != State::Enabled {
                journal.mark_set(&node.host, State::Enabled, "undrain");
                journal.save()?;
                opened.client.set_state(server, State::Enabled).await?
            } else {
                server.clone()
            };
            // Back in service only once the balancer would route to it (b3scale: a recent
            // heartbeat of the node's agent).
            opened
                .client
                .routable(&enabled)
                .await
                .map_err(|e| NodeError::Other(format!("enabled, but NOT routable: {e}")))?;
            journal.set(&node.host, Phase::Idle, "drain", None)?;
            Ok(if server.state == State::Enabled {
                "already enabled".into()
            } else {
                format!("enabled (was {})", server.state)
            })
        }
        .await;
        let (ok, text) = match result {
            Ok(t) => (true, t),
            Err(e) => (false, format!("FAILED: {e}")),
        };
        rep.send(Event::NodeFinished {
            host: node.host.clone(),
            ok,
            text,
        });
        if ok {
            &mut out.enabled
        } else {
            &mut out.failed
        }
        .push(node.host.clone());
    }
    rep.finish().await;
    Ok(out)
}
