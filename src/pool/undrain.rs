//! `rollout undrain`: puts nodes that `rollout drain` (or a failed upgrade) left out of
//! service back into the balancer, each only after its health check passes, and marks them
//! idle in the journal.

use super::error::{NodeError, PoolError};
use super::journal::{Lock, Phase};
use super::{Pool, need_limit};
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
    };
    for node in &pool.nodes {
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
