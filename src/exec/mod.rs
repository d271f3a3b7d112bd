//! The executor: every selected host runs its own pipeline (connect, one check script, then
//! for apply one script with only the changed steps) with at most `forks` hosts at once.
//! Hosts never wait for each other, and a failing or unreachable host never stops the rest.
//! Work is kept apart from display: everything the operator sees goes out as [`Event`]s.

mod converge;

use crate::connection::Connector;
use crate::plan::HostPlan;
use crate::report::{Event, HostOutcome, HostResult};
use crate::secret::Secrets;
use converge::converge;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Semaphore, mpsc::UnboundedSender};

/// What a run is for: showing the plan, or converging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    Plan,
    Apply,
}

/// How a run goes: its goal, how many hosts at once, what it shows, and who is asked before a
/// step or handler that ends meetings runs.
pub struct Options {
    pub goal: Goal,
    pub forks: usize,
    pub verbose: bool,
    pub secrets: Secrets,
    /// Asked, per host, before anything marked `ends_meetings` runs there (or, for a plan,
    /// would run); `None`: nothing is held (the upgrade, which drained the node itself).
    pub guard: Option<Arc<dyn MeetingGuard>>,
}

/// Whether a host may now run the steps and handlers of its apply that end meetings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clearance {
    /// Run them: the host has no meetings, is no BBB node, or its meetings were ended
    /// (`--force`) or drained (`--drain`).
    Go,
    /// Hold them back; the reason (redacted), such as `1 meeting running`.
    Hold(String),
}

/// The future a [`MeetingGuard`] answers with.
pub type ClearanceFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Clearance> + Send + 'a>>;

/// Decides, for one host at a time, whether what ends meetings may run there. The executor
/// asks only hosts whose apply has such an item, once, after their check and before their
/// apply; it knows nothing of BBB or balancers (the pool implements this).
pub trait MeetingGuard: Send + Sync {
    /// Whether `host` may run `items` (their labels), which end meetings, for `goal`. With
    /// [`Goal::Plan`] nothing may be changed: the guard only looks.
    /// What it does on the way (ending meetings, reading the balancer) goes to `events`.
    fn clear<'a>(
        &'a self,
        host: &'a str,
        goal: Goal,
        items: &'a [String],
        events: &'a UnboundedSender<Event>,
    ) -> ClearanceFuture<'a>;

    /// Told when `host`'s apply has ended (`ok`: it succeeded), so that a guard that took
    /// the host out of service to clear it (`--drain`) can put it back. The default does
    /// nothing.
    fn finished<'a>(
        &'a self,
        host: &'a str,
        ok: bool,
        events: &'a UnboundedSender<Event>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        let _ = (host, ok, events);
        Box::pin(async {})
    }
}

/// Runs all plans; returns one result per host, in plan order.
pub async fn run(
    plans: Vec<HostPlan>,
    connector: Arc<dyn Connector>,
    opts: Arc<Options>,
    events: UnboundedSender<Event>,
) -> Vec<HostResult> {
    let forks = Arc::new(Semaphore::new(opts.forks.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let n = plans.len();
    for (i, plan) in plans.into_iter().enumerate() {
        let (forks, connector, opts, events) = (
            forks.clone(),
            connector.clone(),
            opts.clone(),
            events.clone(),
        );
        set.spawn(async move {
            let _permit = forks.acquire_owned().await.expect("semaphore never closed");
            (i, run_host(plan, connector.as_ref(), &opts, &events).await)
        });
    }
    let mut results: Vec<Option<HostResult>> = vec![None; n];
    while let Some(r) = set.join_next().await {
        let (i, res) = r.expect("host task panicked");
        results[i] = Some(res);
    }
    results
        .into_iter()
        .map(|r| r.expect("every host reports"))
        .collect()
}

async fn run_host(
    plan: HostPlan,
    connector: &dyn Connector,
    opts: &Options,
    events: &UnboundedSender<Event>,
) -> HostResult {
    let started = Instant::now();
    let host = plan.host.name.clone();
    let mut res = HostResult {
        host: host.clone(),
        outcome: HostOutcome::Ok,
        ok: 0,
        changed: 0,
        failed: 0,
        skipped: plan.skipped,
        seconds: 0.0,
        held: None,
    };
    let send = |e: Event| {
        let _ = events.send(e);
    };
    send(Event::HostStarted {
        host: host.clone(),
        steps: plan.steps.len(),
    });
    if plan.steps.is_empty() {
        res.seconds = started.elapsed().as_secs_f64();
        send(Event::HostFinished(res.clone()));
        return res;
    }
    let conn = match connector.connect(&plan.host).await {
        Ok(c) => c,
        Err(e) => {
            res.outcome = HostOutcome::Unreachable(opts.secrets.redact(&e.to_string()));
            res.seconds = started.elapsed().as_secs_f64();
            send(Event::HostFinished(res.clone()));
            return res;
        }
    };
    let outcome = converge(&plan, conn.as_ref(), opts, (&send, events), &mut res).await;
    conn.close().await;
    if let Some(guard) = opts.guard.as_ref().filter(|_| opts.goal == Goal::Apply) {
        guard
            .finished(&host, outcome == HostOutcome::Ok, events)
            .await;
    }
    res.outcome = outcome;
    res.seconds = started.elapsed().as_secs_f64();
    send(Event::HostFinished(res.clone()));
    res
}
