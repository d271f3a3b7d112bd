//! The health check of a BBB node. [`probe`] (`rollout status`, and a drain deciding
//! whether there is anything to wait for) asks only whether its API answers and accepts its
//! secret. The gate before a node goes (back) into the balancer ([`gate`]: after `rollout
//! apply`, `undrain`, `apply --drain`/`--force` and each upgrade's health-check phase) asks
//! more:
//! 1. every BBB service is up ([`super::services`]: `systemctl is-active` over the node's
//!    SSH connection, naming each unit that is not); nodes with `connection: local` skip
//!    this part, their "node" being the controller itself;
//! 2. the API answers and accepts the secret ([`probe`]);
//! 3. a class could be held: a meeting `rollout-health-HOST-MILLIS` is created, joined
//!    (`redirect=false`, the join URL must come back) and ended
//!    ([`crate::bbb_api::Endpoint::round_trip`]); no other meeting is touched.

use super::{Node, Pool};
use crate::bbb_api::{BbbError, HEALTH_MEETING_PREFIX, Health};
use crate::connection::Connector;
use crate::http::Http;
use crate::report::Event;
use crate::secret::Secrets;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// How long the round trip waits after `end` for the node to drop its health meeting.
const SETTLE: Duration = Duration::from_secs(5);
/// How long the service check may take, connecting included (ssh's connect timeout is 10 s).
const SERVICE_CHECK_LIMIT: Duration = Duration::from_secs(30);

impl Pool {
    /// The gate ([`gate`]), retried until it passes or `balancer.health_timeout` runs out.
    ///
    /// Errors: the last failure, as redacted text for the node's line.
    pub async fn health(
        &self,
        node: &Node,
        events: Option<&UnboundedSender<Event>>,
    ) -> Result<Health, String> {
        wait(
            &self.http,
            &self.prepared.connector,
            Duration::from_secs(self.cfg.health_timeout),
            self.secrets(),
            node,
            events,
        )
        .await
    }
}

/// The API part of the health check, once: the version call and getMeetings (what `rollout
/// status` and a drain ask; it creates no meeting).
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

/// The gate, once: the node's services (over its SSH connection), its API ([`probe`]) and
/// the create/join/end round trip, in this order; what the API said.
///
/// Errors: the first part that fails, as text naming it (a service by its unit name, a
/// call by its API name); not yet redacted.
pub async fn gate(
    http: &Http,
    connector: &Arc<dyn Connector>,
    node: &Node,
) -> Result<Health, String> {
    let host = &node.plan.host;
    if host.connection == crate::inventory::Connection::Ssh {
        // A systemctl waiting on a stuck D-Bus must not hold the gate forever.
        tokio::time::timeout(
            SERVICE_CHECK_LIMIT,
            super::services::check(connector.as_ref(), host),
        )
        .await
        .map_err(|_| {
            format!(
                "service check: no answer within {} s",
                SERVICE_CHECK_LIMIT.as_secs()
            )
        })??;
    }
    let health = probe(http, node).await.map_err(|e| e.to_string())?;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let id = format!("{HEALTH_MEETING_PREFIX}{}-{millis}", node.host);
    let (http, ep) = (http.clone(), node.endpoint.clone());
    tokio::task::spawn_blocking(move || ep.round_trip(&http, &id, SETTLE))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("health meeting: {e}"))?;
    Ok(health)
}

/// The gate ([`gate`]), retried until it passes or `timeout` runs out (services take a
/// while to answer after an install or a restart); each failed try is a progress event.
///
/// Errors: the last failure, as redacted text.
pub async fn wait(
    http: &Http,
    connector: &Arc<dyn Connector>,
    timeout: Duration,
    secrets: &Secrets,
    node: &Node,
    events: Option<&UnboundedSender<Event>>,
) -> Result<Health, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match gate(http, connector, node).await {
            Ok(h) => return Ok(h),
            Err(e) => {
                let msg = secrets.redact(&e);
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
