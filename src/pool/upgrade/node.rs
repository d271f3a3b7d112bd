//! One node of `rollout upgrade`, from cordon to enabled again: drain, apply the roles,
//! health check, back into the pool as the inventory registers it. Every phase is journaled
//! before it starts; an error leaves the node cordoned and says in which phase it failed.

use crate::balancer::{Balancer, Server, State, find};
use crate::bbb_api::Health;
use crate::exec::{self, Goal};
use crate::plan::HostPlan;
use crate::pool::drain::{Drained, Watch, cordon, wait_empty};
use crate::pool::error::UpgradeFailure;
use crate::pool::journal::{Journal, JournalError, Phase};
use crate::pool::rules;
use crate::pool::rules::enable::{self, Back};
use crate::pool::{Node, Pool, health};
use crate::report::summary::NodeTimes;
use crate::report::{Event, HostOutcome, HostResult};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// The journal, shared by the nodes of a batch.
pub(super) type SharedJournal = Arc<Mutex<Journal>>;

/// Settings for every node of the run.
#[derive(Clone, Copy)]
pub(super) struct NodeOpts {
    pub(super) watch: Watch,
    pub(super) verbose: bool,
    /// Run the node's `stage: true` steps before its cordon (not `--no-stage`).
    pub(super) stage: bool,
}

/// The node's plan split for staging: the steps marked `stage: true`, to run while the node
/// still serves classes (no handlers, nothing owed: nothing in it may restart a service),
/// and the rest, to run once it is drained. `None` for the first when nothing is staged
/// (`stage` false, `--no-stage`, or no such step): then the second is the whole plan.
pub(super) fn split_for_staging(plan: &HostPlan, stage: bool) -> (Option<HostPlan>, HostPlan) {
    if !stage || !plan.steps.iter().any(|s| s.spec.stage) {
        return (None, plan.clone());
    }
    let (staged, rest): (Vec<_>, Vec<_>) = plan.steps.iter().cloned().partition(|s| s.spec.stage);
    let staging = HostPlan {
        steps: staged,
        handlers: Vec::new(),
        owed: Vec::new(),
        skipped: 0,
        ..plan.clone()
    };
    let after = HostPlan {
        steps: rest,
        ..plan.clone()
    };
    (Some(staging), after)
}

/// When the node's phases began and ended, on the controller's monotonic clock.
#[derive(Default)]
struct Clock {
    staging: Option<std::time::Duration>,
    cordoned: Option<Instant>,
    drained: Option<Instant>,
    last_busy: Option<Instant>,
    touched: Option<Instant>,
    /// When the apply of its roles (install, restarts) returned.
    applied: Option<Instant>,
}

impl Clock {
    /// The node's times once it is back (`back`: enabled, or its health check passed).
    fn times(&self, host: &str, back: Instant) -> NodeTimes {
        let secs = |d: std::time::Duration| (d.as_secs_f64() * 10.0).round() / 10.0;
        let cordoned = self.cordoned.unwrap_or(back);
        let drained = self.drained.unwrap_or(cordoned);
        NodeTimes {
            host: host.to_string(),
            staging_s: self.staging.map(secs),
            cordoned_s: secs(back.saturating_duration_since(cordoned)),
            draining_s: secs(drained.saturating_duration_since(cordoned)),
            applying_s: self
                .touched
                .zip(self.applied)
                .map_or(0.0, |(t, a)| secs(a.saturating_duration_since(t))),
            out_of_service_s: secs(back.saturating_duration_since(drained)),
            end_noticed_within_s: self
                .last_busy
                .zip(self.touched)
                .map(|(b, t)| secs(t.saturating_duration_since(b))),
        }
    }
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

/// One node: stage, drain, apply, health check, enable; its closing message and how long it
/// spent in each state. Errors after the staging leave the node cordoned; a staging error
/// leaves it as it was, in service.
pub(super) async fn upgrade_node(
    pool: &Pool,
    client: &dyn Balancer,
    node: &Node,
    server: Option<Server>,
    journal: &SharedJournal,
    tx: &UnboundedSender<Event>,
    opts: NodeOpts,
) -> Result<(String, NodeTimes), UpgradeFailure> {
    let run = NodeRun {
        pool,
        client,
        node,
        journal,
        tx,
        opts,
    };
    let mut clock = Clock::default();
    // A node an interrupted invocation left out of service is out already: nothing to stage.
    let out_already = journal
        .lock()
        .expect("journal lock")
        .in_open_run(node.host.as_str())
        .is_some_and(|r| r.phase.holds_node());
    let (staging, plan) = split_for_staging(&node.plan, opts.stage && !out_already);
    // 0. Stage, while the node still serves classes: nothing is journaled, nothing is out.
    if let Some(staging) = staging {
        let start = Instant::now();
        run.stage(staging).await?;
        clock.staging = Some(start.elapsed());
    }
    let was = run.record_was(server.as_ref())?;
    // 1. Drain.
    clock.cordoned = Some(Instant::now());
    clock.last_busy = run.drain(server.as_ref()).await?;
    clock.drained = Some(Instant::now());
    // 2. Apply the roles (what was staged is done).
    clock.touched = Some(Instant::now());
    let result = run.apply_roles(plan).await?;
    clock.applied = Some(Instant::now());
    // 3. Health check.
    let health = run.health_check().await?;
    // 4. Back into the pool, registered as the inventory says.
    let (text, back) = run.enable(&was, &health, &result).await?;
    let times = clock.times(node.host.as_str(), back);
    mark(journal, node.host.as_str(), Phase::Done, None)?;
    // Its apply ran whatever an earlier apply held back and owed it.
    {
        let mut j = journal.lock().expect("journal lock");
        if j.nodes.get(&node.host).is_some_and(|r| !r.owed.is_empty()) {
            j.set_owed(&node.host, &[], "");
            j.save()?;
        }
    }
    Ok((text, times))
}

/// What every phase of one node's upgrade shares.
struct NodeRun<'a> {
    pool: &'a Pool,
    client: &'a dyn Balancer,
    node: &'a Node,
    journal: &'a SharedJournal,
    tx: &'a UnboundedSender<Event>,
    opts: NodeOpts,
}

impl NodeRun<'_> {
    fn host(&self) -> &str {
        self.node.host.as_str()
    }

    /// Shows `text` on the node's progress line.
    fn progress(&self, text: &str) {
        let _ = self.tx.send(Event::Progress {
            host: self.host().to_string(),
            text: text.to_string(),
        });
    }

    /// Journals that this upgrade is about to set the node's balancer state to `to`.
    fn mark_set(&self, to: State) -> Result<(), JournalError> {
        let mut j = self.journal.lock().expect("journal lock");
        j.mark_set(self.host(), to, "upgrade");
        j.save()
    }

    /// Journals the node as failed in `phase` and returns the failure saying so.
    fn fail(&self, phase: &'static str, reason: String) -> UpgradeFailure {
        let failure = UpgradeFailure::Phase { phase, reason };
        let _ = mark(
            self.journal,
            self.host(),
            Phase::Failed,
            Some(failure.to_string()),
        );
        failure
    }

    /// Journals the drain phase with the state before this run took the node out (kept when
    /// resuming); returns that state.
    fn record_was(&self, server: Option<&Server>) -> Result<String, JournalError> {
        let host = self.host();
        let mut j = self.journal.lock().expect("journal lock");
        let resumed_was = j.in_open_run(host).and_then(|r| r.was.clone());
        let was = resumed_was
            .unwrap_or_else(|| server.map_or("unregistered".into(), |s| s.state.to_string()));
        j.set(host, Phase::Draining, "upgrade", None)?;
        if let Some(rec) = j.nodes.get_mut(host) {
            rec.was = Some(was.clone());
        }
        if server.is_some_and(|s| s.state == State::Enabled) {
            j.mark_set(host, State::Cordoned, "upgrade");
        }
        j.save()?;
        Ok(was)
    }

    /// The staging phase, before the cordon: runs the node's `stage: true` steps (`plan`),
    /// which touch nothing a class uses. The node stays in service whatever happens.
    async fn stage(&self, plan: HostPlan) -> Result<(), UpgradeFailure> {
        self.progress("staging (still in service)");
        let result = apply(self.pool, plan, self.opts.verbose, self.tx).await;
        match result.outcome {
            HostOutcome::Ok => {
                self.progress(&format!(
                    "staged: ok={} changed={}",
                    result.ok, result.changed
                ));
                Ok(())
            }
            HostOutcome::Failed(m) | HostOutcome::Unreachable(m) => Err(UpgradeFailure::Staging(m)),
        }
    }

    /// The drain phase: cordons the node and waits until its meetings are over; when the
    /// last look that still saw a meeting began (see [`Drained::Empty`]).
    async fn drain(&self, server: Option<&Server>) -> Result<Option<Instant>, UpgradeFailure> {
        if let Some(s) = server {
            self.progress("cordoning");
            cordon(self.client, s)
                .await
                .map_err(|e| self.fail("cordon failed", e.to_string()))?;
        }
        self.progress("cordoned, checking meetings");
        // A node the balancer sends no classes to (unregistered, disabled) whose API does not
        // answer has nothing to wait for: waiting would only stall the upgrade that repairs it.
        let out_of_pool = rules::drain::may_skip_wait(server.map(|s| s.state));
        let unreadable = out_of_pool && health::probe(&self.pool.http, self.node).await.is_err();
        if unreadable {
            self.progress("its API does not answer and it is not in service: nothing to drain");
            return Ok(None);
        }
        match wait_empty(
            &self.pool.meeting_api(),
            self.node,
            self.opts.watch,
            "cordoned",
            self.tx,
        )
        .await
        {
            Drained::Empty { last_busy, .. } => Ok(last_busy),
            d @ Drained::TimedOut { .. } => Err(self.fail("drain", d.describe())),
        }
    }

    /// The apply phase: converges the node's roles (`plan`: without what was staged).
    async fn apply_roles(&self, plan: HostPlan) -> Result<HostResult, UpgradeFailure> {
        mark(self.journal, self.host(), Phase::Applying, None)?;
        self.progress("applying the roles");
        let result = apply(self.pool, plan, self.opts.verbose, self.tx).await;
        match &result.outcome {
            HostOutcome::Ok => Ok(result),
            HostOutcome::Failed(m) => Err(self.fail("apply failed", m.clone())),
            HostOutcome::Unreachable(m) => Err(self.fail("host unreachable", m.clone())),
        }
    }

    /// The health-check phase: waits until the node's API answers healthy.
    async fn health_check(&self) -> Result<Health, UpgradeFailure> {
        mark(self.journal, self.host(), Phase::HealthCheck, None)?;
        self.progress("health check");
        self.pool
            .health(self.node, Some(self.tx))
            .await
            .map_err(|e| self.fail("health check failed", e))
    }

    /// The enable phase: registers the node as the inventory says and enables it again unless
    /// it was out of service before (`was`); returns the node's closing message and when it
    /// was back (enabled, or registered as it was before).
    async fn enable(
        &self,
        was: &str,
        health: &Health,
        result: &HostResult,
    ) -> Result<(String, Instant), UpgradeFailure> {
        mark(self.journal, self.host(), Phase::Enabling, None)?;
        self.progress("enabling");
        let server = self.register().await?;
        let version = health
            .version
            .as_ref()
            .map(|v| format!(", BBB {v}"))
            .unwrap_or_default();
        let back_to = enable::after_upgrade(was, server.state);
        if back_to == Back::Enable {
            self.mark_set(State::Enabled)
                .map_err(|e| self.fail("enabling", e.to_string()))?;
            let enabled = self
                .client
                .set_state(&server, State::Enabled)
                .await
                .map_err(|e| self.fail("enabling", e.to_string()))?;
            // In service only once the balancer would route to it (b3scale: a recent
            // heartbeat of the node's agent).
            self.client
                .routable(&enabled)
                .await
                .map_err(|e| self.fail("enabling", format!("enabled, but NOT routable: {e}")))?;
        }
        let back = Instant::now();
        let online = if back_to != Back::AsBefore {
            self.wait_online().await
        } else {
            String::new()
        };
        let text = if back_to != Back::AsBefore {
            format!(
                "upgraded, healthy and enabled; {} step(s) changed{version}{online}",
                result.changed
            )
        } else {
            format!(
                "upgraded and healthy; left {} as it was before; {} step(s) changed{version}",
                server.state, result.changed
            )
        };
        Ok((text, back))
    }

    /// Waits until the balancer lists the enabled node in service (enabled and not offline:
    /// Scalelite marks it online only at its next poll), reading its list every
    /// `poll_interval` for up to `online_timeout`, so the next batch counts it as back only
    /// when the balancer does. Returns what the node's closing message adds: nothing, or
    /// that the balancer has not reported it online yet (the next batch then counts it out
    /// of service, as the balancer lists it).
    async fn wait_online(&self) -> String {
        let cfg = &self.pool.cfg;
        let limit = std::time::Duration::from_secs(cfg.online_timeout);
        let pause = std::time::Duration::from_secs_f64(cfg.poll_interval);
        let start = std::time::Instant::now();
        let mut told = false;
        loop {
            if let Ok(servers) = self.client.list().await
                && find(&servers, &self.node.desired.url).is_some_and(Server::in_service)
            {
                return String::new();
            }
            if start.elapsed() >= limit {
                return format!(
                    "; the balancer has not reported it online within {}: the next batch counts it out of service",
                    crate::pool::human(limit)
                );
            }
            if !told {
                self.progress("enabled, waiting for the balancer to report it online");
                told = true;
            }
            tokio::time::sleep(pause.min(limit.saturating_sub(start.elapsed()))).await;
        }
    }

    /// Brings the node's registration in line with the inventory: kept, updated or added.
    async fn register(&self) -> Result<Server, UpgradeFailure> {
        let servers = self
            .client
            .list()
            .await
            .map_err(|e| self.fail("enabling", e.to_string()))?;
        let desired = &self.node.desired;
        match find(&servers, &desired.url) {
            Some(s) if s.differences(desired).is_empty() => Ok(s.clone()),
            Some(s) => self
                .client
                .update(s, desired)
                .await
                .map_err(|e| self.fail("updating the registration", e.to_string())),
            None => {
                // Added out of service (Scalelite: disabled; b3scale: stopped).
                self.mark_set(State::Disabled)
                    .map_err(|e| self.fail("registering", e.to_string()))?;
                self.client
                    .add(desired)
                    .await
                    .map_err(|e| self.fail("registering", e.to_string()))
            }
        }
    }
}

/// Applies `plan` (the node's roles, or a part of them), showing the executor's events on
/// the node's progress line.
async fn apply(
    pool: &Pool,
    plan: HostPlan,
    verbose: bool,
    tx: &UnboundedSender<Event>,
) -> HostResult {
    let opts = Arc::new(exec::Options {
        goal: Goal::Apply,
        forks: 1,
        verbose,
        secrets: pool.secrets().clone(),
        // The node was drained before its apply: nothing to hold.
        guard: None,
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
    let mut results = exec::run(vec![plan], pool.prepared.connector.clone(), opts, etx).await;
    let _ = forward.await;
    results.pop().expect("one result per plan")
}
