//! The executor: every selected host runs its own pipeline (connect, one check script, then
//! for apply one script with only the changed steps) with at most `forks` hosts at once.
//! A failing or unreachable host never stops the rest, and hosts never wait for each other,
//! with one exception: the preflight gate ([`Gate`]). When a selected host has `assert`
//! steps, an apply changes nothing anywhere until every such host's check has run, and
//! nothing at all if one of their asserts failed (a pool is one system; Ansible's
//! `any_errors_fatal` for the preflight). Work is kept apart from display: everything the
//! operator sees goes out as [`Event`]s.

mod converge;

use crate::connection::Connector;
use crate::plan::HostPlan;
use crate::report::{Event, HostOutcome, HostResult};
use crate::secret::Secrets;
use converge::converge;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc::UnboundedSender, watch};

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
    // Only an apply whose plans have asserts waits; a plan only reports.
    let gate = Gate::new(plans.iter().filter(|p| has_assert(p)).count())
        .filter(|_| opts.goal == Goal::Apply)
        .map(Arc::new);
    let mut set = tokio::task::JoinSet::new();
    let n = plans.len();
    for (i, plan) in plans.into_iter().enumerate() {
        let (forks, connector, opts, events, gate) = (
            forks.clone(),
            connector.clone(),
            opts.clone(),
            events.clone(),
            gate.clone(),
        );
        set.spawn(async move {
            let mut slot = Slot::take(forks).await;
            let arrival = gate
                .as_ref()
                .filter(|_| has_assert(&plan))
                .map(|g| Arrival(Some(g.clone())));
            let pre = Preflight {
                gate: gate.as_deref(),
                arrival,
                slot: &mut slot,
            };
            (
                i,
                run_host(plan, connector.as_ref(), &opts, &events, pre).await,
            )
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

/// Whether a host's plan has an `assert` step (a preflight).
fn has_assert(plan: &HostPlan) -> bool {
    plan.steps
        .iter()
        .any(|s| matches!(s.action, crate::step::Action::Assert(_)))
}

/// The preflight gate of an apply: opens once every host with `assert` steps has arrived
/// (its check ran, or it could not be checked: an unreachable host stops no other), telling
/// the hosts that failed an assert. A host waits at it only when it has something to apply,
/// and gives its fork slot back meanwhile, so that `--forks` below the number of hosts
/// cannot deadlock it: the checks still waiting for a slot get one first.
struct Gate {
    /// Hosts still to arrive, and those that failed an assert so far.
    state: Mutex<(usize, Vec<String>)>,
    /// `Some(failed hosts)` once open.
    open: watch::Sender<Option<Arc<Vec<String>>>>,
}

impl Gate {
    /// A gate for `hosts` hosts with asserts; `None` without any (nothing waits).
    fn new(hosts: usize) -> Option<Gate> {
        (hosts > 0).then(|| Gate {
            state: Mutex::new((hosts, Vec::new())),
            open: watch::Sender::new(None),
        })
    }

    fn arrive(&self, host: Option<&str>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0 = st.0.saturating_sub(1);
        if let Some(h) = host {
            st.1.push(h.to_string());
        }
        if st.0 == 0 {
            self.open.send_replace(Some(Arc::new(st.1.clone())));
        }
    }

    /// Waits until the gate opens; the hosts that failed an assert (empty: go on).
    async fn wait(&self) -> Arc<Vec<String>> {
        let mut rx = self.open.subscribe();
        let open = rx.wait_for(Option::is_some).await;
        // The sender lives in `self`, so the channel cannot close while we wait.
        open.map(|v| v.clone().unwrap_or_default())
            .unwrap_or_default()
    }
}

/// A host's due arrival at the gate: made once, by [`Preflight::arrive`] or, for a host
/// that never got that far (unreachable, check failed), when dropped.
struct Arrival(Option<Arc<Gate>>);

impl Arrival {
    fn arrive(&mut self, failed: Option<&str>) {
        if let Some(g) = self.0.take() {
            g.arrive(failed);
        }
    }
}

impl Drop for Arrival {
    fn drop(&mut self) {
        self.arrive(None);
    }
}

/// A host's place among the `--forks` hosts that run at once.
struct Slot {
    forks: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Slot {
    async fn take(forks: Arc<Semaphore>) -> Slot {
        let permit = forks.clone().acquire_owned().await.ok();
        Slot { forks, permit }
    }
}

/// What one host's run has to do with the preflight gate.
pub(crate) struct Preflight<'a> {
    gate: Option<&'a Gate>,
    /// Set for a host with asserts in a gated apply.
    arrival: Option<Arrival>,
    slot: &'a mut Slot,
}

impl Preflight<'_> {
    /// The host's check ran: `failed` when one of its asserts failed.
    pub(crate) fn arrive(&mut self, host: &str, failed: bool) {
        if let Some(a) = self.arrival.as_mut() {
            a.arrive(failed.then_some(host));
        }
    }

    /// Before a host changes anything: waits for the gate, its fork slot given back
    /// meanwhile. `Err(hosts)`: a host failed its preflight, change nothing.
    pub(crate) async fn pass(&mut self) -> Result<(), Arc<Vec<String>>> {
        let Some(gate) = self.gate else {
            return Ok(());
        };
        self.slot.permit = None;
        let failed = gate.wait().await;
        if !failed.is_empty() {
            return Err(failed);
        }
        self.slot.permit = self.slot.forks.clone().acquire_owned().await.ok();
        Ok(())
    }
}

async fn run_host(
    plan: HostPlan,
    connector: &dyn Connector,
    opts: &Options,
    events: &UnboundedSender<Event>,
    pre: Preflight<'_>,
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
        preflight: Vec::new(),
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
    let outcome = converge(&plan, conn.as_ref(), opts, (&send, events), pre, &mut res).await;
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
