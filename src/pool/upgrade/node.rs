//! One node of `rollout upgrade`, from cordon to enabled again: drain, apply the roles,
//! health check, back into the pool as the inventory registers it. Every phase is journaled
//! before it starts; an error leaves the node cordoned and says in which phase it failed.

use crate::balancer::{Balancer, Server, State, find};
use crate::exec::{self, Goal};
use crate::pool::drain::{Drained, Watch, cordon, wait_empty};
use crate::pool::journal::{Journal, JournalError, Phase};
use crate::pool::rules;
use crate::pool::rules::enable::{self, Back};
use crate::pool::{Node, Pool, health};
use crate::report::{Event, HostOutcome, HostResult};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedSender;

/// The journal, shared by the nodes of a batch.
pub(super) type SharedJournal = Arc<Mutex<Journal>>;

/// Settings for every node of the run.
#[derive(Clone, Copy)]
pub(super) struct NodeOpts {
    pub(super) watch: Watch,
    pub(super) verbose: bool,
}

/// Journals the node's phase, as `rollout upgrade` sets it.
fn mark(
    journal: &SharedJournal,
    host: &str,
    phase: Phase,
    reason: Option<String>,
) -> Result<(), JournalError> {
    journal
        .lock()
        .expect("journal lock")
        .set(host, phase, "upgrade", reason)
}

/// One node: drain, apply, health check, enable. Errors leave the node cordoned.
pub(super) async fn upgrade_node(
    pool: &Pool,
    client: &dyn Balancer,
    node: &Node,
    server: Option<Server>,
    journal: &SharedJournal,
    tx: &UnboundedSender<Event>,
    opts: NodeOpts,
) -> Result<String, String> {
    let host = node.host.as_str();
    let progress = |text: &str| {
        let _ = tx.send(Event::Progress {
            host: host.to_string(),
            text: text.to_string(),
        });
    };
    // Remember the state before this run took the node out (kept when resuming).
    let was = {
        let mut j = journal.lock().expect("journal lock");
        let resumed_was = j.in_open_run(host).and_then(|r| r.was.clone());
        let was = resumed_was.unwrap_or_else(|| {
            server
                .as_ref()
                .map_or("unregistered".into(), |s| s.state.to_string())
        });
        j.set(host, Phase::Draining, "upgrade", None)?;
        if let Some(rec) = j.nodes.get_mut(host) {
            rec.was = Some(was.clone());
        }
        j.save()?;
        was
    };
    let fail = |phase: &str, e: String| -> String {
        let msg = format!("{phase}: {e}; left out of service");
        let _ = mark(journal, host, Phase::Failed, Some(msg.clone()));
        msg
    };

    // 1. Drain.
    if let Some(s) = &server {
        progress("cordoning");
        cordon(client, s)
            .await
            .map_err(|e| fail("cordon failed", e))?;
    }
    progress("cordoned, checking meetings");
    // A node the balancer sends no classes to (unregistered, disabled) whose API does not
    // answer has nothing to wait for: waiting would only stall the upgrade that repairs it.
    let out_of_pool = rules::drain::may_skip_wait(server.as_ref().map(|s| s.state));
    let unreadable = out_of_pool && health::probe(&pool.http, node).await.is_err();
    if unreadable {
        progress("its API does not answer and it is not in service: nothing to drain");
    } else {
        match wait_empty(pool, node, opts.watch, tx).await {
            Drained::Empty { .. } => {}
            d @ Drained::TimedOut { .. } => return Err(fail("drain", d.describe())),
        }
    }

    // 2. Apply the roles.
    mark(journal, host, Phase::Applying, None)?;
    progress("applying the roles");
    let result = apply(pool, node, opts.verbose, tx).await;
    match &result.outcome {
        HostOutcome::Ok => {}
        HostOutcome::Failed(m) => return Err(fail("apply failed", m.clone())),
        HostOutcome::Unreachable(m) => return Err(fail("host unreachable", m.clone())),
    }

    // 3. Health check.
    mark(journal, host, Phase::HealthCheck, None)?;
    progress("health check");
    let health = pool
        .health(node, Some(tx))
        .await
        .map_err(|e| fail("health check failed", e))?;

    // 4. Back into the pool, registered as the inventory says.
    mark(journal, host, Phase::Enabling, None)?;
    progress("enabling");
    let servers = client
        .list()
        .await
        .map_err(|e| fail("enabling", e.to_string()))?;
    let server = match find(&servers, &node.desired.url) {
        Some(s) if s.differences(&node.desired).is_empty() => s.clone(),
        Some(s) => client
            .update(s, &node.desired)
            .await
            .map_err(|e| fail("updating the registration", e.to_string()))?,
        None => client
            .add(&node.desired)
            .await
            .map_err(|e| fail("registering", e.to_string()))?,
    };
    let version = health
        .version
        .map(|v| format!(", BBB {v}"))
        .unwrap_or_default();
    let back = enable::after_upgrade(&was, server.state);
    if back == Back::Enable {
        client
            .set_state(&server, State::Enabled)
            .await
            .map_err(|e| fail("enabling", e.to_string()))?;
    }
    let text = if back != Back::AsBefore {
        format!(
            "upgraded, healthy and enabled; {} step(s) changed{version}",
            result.changed
        )
    } else {
        format!(
            "upgraded and healthy; left {} as it was before; {} step(s) changed{version}",
            server.state, result.changed
        )
    };
    mark(journal, host, Phase::Done, None)?;
    Ok(text)
}

/// Applies the node's roles, showing the executor's events on the node's progress line.
async fn apply(pool: &Pool, node: &Node, verbose: bool, tx: &UnboundedSender<Event>) -> HostResult {
    let opts = Arc::new(exec::Options {
        goal: Goal::Apply,
        forks: 1,
        verbose,
        secrets: pool.secrets().clone(),
    });
    let (etx, mut erx) = tokio::sync::mpsc::unbounded_channel();
    let out = tx.clone();
    // Step-by-step progress only where it updates a progress line (or with -v).
    let live = verbose || std::io::IsTerminal::is_terminal(&std::io::stderr());
    let forward = tokio::spawn(async move {
        while let Some(e) = erx.recv().await {
            let e = match e {
                Event::HostStarted { .. } | Event::Phase { .. } | Event::StepBegin { .. }
                    if !live =>
                {
                    continue;
                }
                Event::HostStarted { host, .. } => Event::Progress {
                    host,
                    text: "applying: connecting".into(),
                },
                Event::Phase { host, phase } => Event::Progress {
                    host,
                    text: format!("applying: {phase}"),
                },
                Event::StepBegin {
                    host,
                    label,
                    index,
                    total,
                } => Event::Progress {
                    host,
                    text: format!("applying [{}/{total}] {label}", index + 1),
                },
                Event::HostFinished(r) => match &r.outcome {
                    HostOutcome::Ok => Event::Progress {
                        host: r.host.clone(),
                        text: format!("applied: ok={} changed={}", r.ok, r.changed),
                    },
                    _ => continue,
                },
                other => other,
            };
            let _ = out.send(e);
        }
    });
    let mut results = exec::run(
        vec![node.plan.clone()],
        pool.prepared.connector.clone(),
        opts,
        etx,
    )
    .await;
    let _ = forward.await;
    results.pop().expect("one result per plan")
}
