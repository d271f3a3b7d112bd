//! The health check of a BBB node: its API answers and accepts its secret. Asked before a
//! node goes (back) into the balancer, after `rollout apply`, `undrain` and each upgrade, and
//! once per node by `rollout status`.

use super::{Node, Pool};
use crate::bbb_api::{BbbError, Health};
use crate::http::Http;
use crate::report::Event;
use crate::secret::Secrets;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

impl Pool {
    /// The health check, retried until it passes or `balancer.health_timeout` runs out.
    ///
    /// Errors: the last failure, as redacted text for the node's line.
    pub async fn health(
        &self,
        node: &Node,
        events: Option<&UnboundedSender<Event>>,
    ) -> Result<Health, String> {
        wait(
            &self.http,
            Duration::from_secs(self.cfg.health_timeout),
            self.secrets(),
            node,
            events,
        )
        .await
    }
}

/// The health check, once.
///
/// Errors: the node's API is unreachable, refuses the secret, or answers what we cannot read.
pub async fn probe(http: &Http, node: &Node) -> Result<Health, BbbError> {
    let (http, ep) = (http.clone(), node.endpoint.clone());
    tokio::task::spawn_blocking(move || ep.health(&http))
        .await
        .unwrap_or_else(|e| {
            Err(BbbError::Unreachable {
                url: node.endpoint.url.clone(),
                why: e.to_string(),
            })
        })
}

/// The health check, retried until it passes or `timeout` runs out (services take a while
/// to answer after an install or a restart); each failed try is a progress event.
///
/// Errors: the last failure, as redacted text.
pub async fn wait(
    http: &Http,
    timeout: Duration,
    secrets: &Secrets,
    node: &Node,
    events: Option<&UnboundedSender<Event>>,
) -> Result<Health, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match probe(http, node).await {
            Ok(h) => return Ok(h),
            Err(e) => {
                let msg = secrets.redact(&e.to_string());
                if Instant::now() >= deadline {
                    return Err(msg);
                }
                if let Some(tx) = events {
                    let _ = tx.send(Event::Progress {
                        host: node.host.clone(),
                        text: format!("health check: {msg}; retrying"),
                    });
                }
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep(
                    Duration::from_secs(2)
                        .min(left)
                        .max(Duration::from_millis(100)),
                )
                .await;
            }
        }
    }
}
