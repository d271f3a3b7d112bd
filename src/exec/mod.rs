//! The executor: every selected host runs its own pipeline (connect, one check script, then
//! for apply one script with only the changed steps) with at most `forks` hosts at once.
//! Hosts never wait for each other, and a failing or unreachable host never stops the rest.
//! Work is kept apart from display: everything the operator sees goes out as [`Event`]s.

use crate::connection::{ConnError, Connection, Connector};
use crate::plan::{self, HostPlan, Item, Mark};
use crate::report::{Event, HostOutcome, HostResult, StepStatus};
use crate::script::Nonce;
use crate::secret::Secrets;
use crate::step::Verdict;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc::UnboundedSender};

/// What a run is for: showing the plan, or converging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    Plan,
    Apply,
}

pub struct Options {
    pub goal: Goal,
    pub forks: usize,
    pub verbose: bool,
    pub secrets: Secrets,
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
    let outcome = converge(&plan, conn.as_ref(), opts, &send, &mut res).await;
    conn.close().await;
    res.outcome = outcome;
    res.seconds = started.elapsed().as_secs_f64();
    send(Event::HostFinished(res.clone()));
    res
}

async fn converge(
    plan: &HostPlan,
    conn: &dyn Connection,
    opts: &Options,
    send: &(dyn Fn(Event) + Sync),
    res: &mut HostResult,
) -> HostOutcome {
    let host = &plan.host.name;
    let secrets = &opts.secrets;
    let nonce = Nonce::new();

    // 1. One round trip checks every step.
    send(Event::Phase {
        host: host.clone(),
        phase: "checking",
    });
    let script = plan::check_script(plan, &nonce);
    if opts.verbose {
        send(Event::Script {
            host: host.clone(),
            what: "check",
            text: plan::display_script(&script, secrets),
        });
    }
    let check_timeout = Duration::from_secs(300);
    let out = match tokio::time::timeout(check_timeout, conn.run(&script, &mut |_| {})).await {
        Err(_) => {
            return HostOutcome::Failed(format!(
                "the check script did not finish within {} s",
                check_timeout.as_secs()
            ));
        }
        Ok(Err(e)) => return outcome_of(e, secrets),
        Ok(Ok(f)) => f,
    };
    let facts = match plan::parse_check(plan, &out.stdout, &nonce) {
        Ok(f) => f,
        Err(e) => {
            let why = if out.stderr.trim().is_empty() {
                e.to_string()
            } else {
                format!("{e}: {}", last_lines(&out.stderr, 5))
            };
            return HostOutcome::Failed(secrets.redact(&why));
        }
    };
    let verdicts = plan::evaluate(plan, &facts, secrets);

    // Report the check; a failed assertion stops the host before anything changes.
    let mut failure = None;
    for (s, v) in plan.steps.iter().zip(&verdicts) {
        let (status, summary, diff) = match v {
            Verdict::Unchanged => (StepStatus::Ok, None, None),
            Verdict::Change { summary, diff } => (
                if opts.goal == Goal::Plan {
                    StepStatus::WouldChange
                } else {
                    StepStatus::Pending
                },
                Some(summary.clone()),
                diff.clone(),
            ),
            Verdict::Fail(m) => {
                failure.get_or_insert_with(|| format!("{}: {m}", s.label()));
                (StepStatus::Failed, Some(m.clone()), None)
            }
        };
        match status {
            StepStatus::Ok => res.ok += 1,
            StepStatus::WouldChange => res.changed += 1,
            StepStatus::Failed => res.failed += 1,
            _ => {}
        }
        send(Event::Step {
            host: host.clone(),
            label: s.label(),
            status,
            summary: summary.map(|x| secrets.redact(&x)),
            diff,
        });
    }
    if let Some(f) = failure {
        return HostOutcome::Failed(secrets.redact(&f));
    }
    if opts.goal == Goal::Plan {
        return HostOutcome::Ok;
    }

    // 2. One round trip applies exactly what changes.
    let items = plan::apply_items(plan, &verdicts);
    if items.is_empty() {
        return HostOutcome::Ok;
    }
    let script = plan::apply_script(plan, &items, &nonce);
    if opts.verbose {
        send(Event::Script {
            host: host.clone(),
            what: "apply",
            text: plan::display_script(&script, secrets),
        });
    }
    send(Event::Phase {
        host: host.clone(),
        phase: "applying",
    });
    let total: u64 = items
        .iter()
        .map(|i| plan::item_planned(plan, i).timeout)
        .sum();
    let mut failed: Option<String> = None;
    let mut done = vec![false; items.len()];
    let mut on_line = |line: &str| match plan::parse_mark(line, &nonce) {
        Some(Mark::Begin(n)) if n < items.len() => {
            let p = plan::item_planned(plan, &items[n]);
            send(Event::StepBegin {
                host: host.clone(),
                label: p.label(),
                index: n,
                total: items.len(),
            });
        }
        Some(Mark::Ok(n)) if n < items.len() => {
            done[n] = true;
            let p = plan::item_planned(plan, &items[n]);
            let changed = match &items[n] {
                Item::Step(i) => matches!(verdicts[*i], Verdict::Change { .. }),
                Item::Handler(_) => true,
            };
            send(Event::Step {
                host: host.clone(),
                label: p.label(),
                status: if changed {
                    StepStatus::Changed
                } else {
                    StepStatus::Ok
                },
                summary: None,
                diff: None,
            });
        }
        Some(Mark::Failed { item, rc, output }) if item < items.len() => {
            let p = plan::item_planned(plan, &items[item]);
            let why = if rc == 124 || rc == 137 {
                format!("timed out after {} s", p.timeout)
            } else {
                format!("exit code {rc}")
            };
            let detail = last_lines(&output, 8);
            let msg = secrets.redact(&if detail.is_empty() {
                why
            } else {
                format!("{why}: {detail}")
            });
            send(Event::Step {
                host: host.clone(),
                label: p.label(),
                status: StepStatus::Failed,
                summary: Some(msg.clone()),
                diff: None,
            });
            failed = Some(format!("{}: {msg}", p.label()));
        }
        Some(Mark::Fatal(m)) => failed = Some(m),
        _ => {}
    };
    let r = tokio::time::timeout(
        Duration::from_secs(total + 60),
        conn.run(&script, &mut on_line),
    )
    .await;
    for (n, item) in items.iter().enumerate() {
        if done[n] {
            let Item::Step(i) = item else { continue };
            if matches!(verdicts[*i], Verdict::Change { .. }) {
                res.changed += 1;
            }
        }
    }
    // Barriers that ran count as ok; they were counted as ok by the check already.
    match r {
        Err(_) => HostOutcome::Failed("the apply script did not finish in time".into()),
        Ok(Err(e)) => {
            let at = items
                .iter()
                .zip(&done)
                .find(|(_, d)| !**d)
                .map(|(i, _)| plan::item_planned(plan, i).label());
            match (outcome_of(e, secrets), at) {
                (HostOutcome::Unreachable(m), Some(step)) => {
                    HostOutcome::Unreachable(format!("{m} (during `{step}`)"))
                }
                (o, _) => o,
            }
        }
        Ok(Ok(f)) => {
            if let Some(msg) = failed {
                res.failed += 1;
                HostOutcome::Failed(msg)
            } else if done.iter().all(|d| *d) {
                HostOutcome::Ok
            } else {
                let why = if f.stderr.trim().is_empty() {
                    format!("exit code {:?}", f.code)
                } else {
                    last_lines(&f.stderr, 5)
                };
                HostOutcome::Failed(
                    secrets.redact(&format!("the apply script stopped early: {why}")),
                )
            }
        }
    }
}

fn outcome_of(e: ConnError, secrets: &Secrets) -> HostOutcome {
    match e {
        ConnError::Unreachable(m) => HostOutcome::Unreachable(secrets.redact(&m)),
        ConnError::Remote(m) => HostOutcome::Failed(secrets.redact(&m)),
    }
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
