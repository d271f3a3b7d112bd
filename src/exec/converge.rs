//! One host's pipeline once it is connected: the check phase (one round trip that checks
//! every step), the report of its verdicts, and for apply the apply phase (one round trip that
//! runs only what changes, read back through its marks). Split out of the executor so that each
//! phase reads on its own; the order of events and the two round trips per host are the
//! executor's promises (tests/engine.rs).

use super::{Clearance, Goal, Options, Preflight};
use crate::connection::{ConnError, Connection, Finished};
use crate::plan::{self, HostPlan, Item, Mark};
use crate::report::{Event, Held, HostOutcome, HostResult, StepStatus};
use crate::script::Nonce;
use crate::secret::Secrets;
use crate::step::Verdict;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

/// How long the check script may run, in seconds.
const CHECK_TIMEOUT_SECS: u64 = 300;

/// What every phase of one host's run shares: its plan, its connection, the run's options,
/// where its events go, and the nonce its scripts' marks carry.
struct HostRun<'a> {
    plan: &'a HostPlan,
    conn: &'a dyn Connection,
    opts: &'a Options,
    send: &'a (dyn Fn(Event) + Sync),
    /// The channel behind `send`, for the meeting guard.
    events: &'a UnboundedSender<Event>,
    nonce: Nonce,
}

/// Converges one connected host: checks, reports the verdicts and, for apply, applies what
/// changes. Counts go into `res`; the outcome is returned.
pub(super) async fn converge(
    plan: &HostPlan,
    conn: &dyn Connection,
    opts: &Options,
    (send, events): (&(dyn Fn(Event) + Sync), &UnboundedSender<Event>),
    mut pre: Preflight<'_>,
    res: &mut HostResult,
) -> HostOutcome {
    let run = HostRun {
        plan,
        conn,
        opts,
        send,
        events,
        nonce: Nonce::new(),
    };
    // 1. One round trip checks every step.
    let verdicts = match run.check().await {
        Ok(v) => v,
        Err(outcome) => return outcome,
    };
    // A failed assertion stops the host before anything changes, and (at the gate) every
    // other host too.
    let failure = run.report_verdicts(&verdicts, res);
    pre.arrive(&plan.host.name, !res.preflight.is_empty());
    if let Some(f) = failure {
        return HostOutcome::Failed(opts.secrets.redact(&f));
    }
    let mut items = plan::apply_items(plan, &verdicts);
    plan::add_owed(plan, &mut items);
    run.report_owed(&items);
    // Nothing changes, meetings are not even looked at, before every preflight passed.
    if opts.goal == Goal::Apply
        && !items.is_empty()
        && let Err(failed) = pre.pass().await
    {
        return HostOutcome::Failed(format!(
            "not changed: preflight failed on {}",
            failed.join(", ")
        ));
    }
    // What would end meetings runs only where the guard allows it.
    res.held = run.hold(&mut items).await;
    if opts.goal == Goal::Plan {
        return HostOutcome::Ok;
    }
    // 2. One round trip applies exactly what changes.
    if items.is_empty() {
        return HostOutcome::Ok;
    }
    run.apply(&items, &verdicts, res).await
}

impl HostRun<'_> {
    fn host(&self) -> String {
        self.plan.host.name.clone()
    }

    fn secrets(&self) -> &Secrets {
        &self.opts.secrets
    }

    /// Shows a script in verbose mode (secrets hidden); `what` is "check" or "apply".
    fn show_script(&self, what: &'static str, script: &str) {
        if self.opts.verbose {
            (self.send)(Event::Script {
                host: self.host(),
                what,
                text: plan::display_script(
                    script,
                    &plan::secret_fragments(self.plan),
                    self.secrets(),
                ),
            });
        }
    }

    /// The check phase: runs the check script and turns its facts into one verdict per step.
    /// Errors are the host's outcome (unreachable, timed out, unreadable output).
    async fn check(&self) -> Result<Vec<Verdict>, HostOutcome> {
        (self.send)(Event::Phase {
            host: self.host(),
            phase: "checking",
        });
        let script = plan::check_script(self.plan, &self.nonce);
        self.show_script("check", &script);
        let timeout = Duration::from_secs(CHECK_TIMEOUT_SECS);
        let out = match tokio::time::timeout(timeout, self.conn.run(&script, &mut |_| {})).await {
            Err(_) => {
                return Err(HostOutcome::Failed(format!(
                    "the check script did not finish within {} s",
                    timeout.as_secs()
                )));
            }
            Ok(Err(e)) => return Err(outcome_of(e, self.secrets())),
            Ok(Ok(f)) => f,
        };
        let facts = plan::parse_check(self.plan, &out.stdout, &self.nonce).map_err(|e| {
            let why = if out.stderr.trim().is_empty() {
                e.to_string()
            } else {
                format!("{e}: {}", last_lines(&out.stderr, 5))
            };
            HostOutcome::Failed(self.secrets().redact(&why))
        })?;
        Ok(plan::evaluate(self.plan, &facts, self.secrets()))
    }

    /// Tells of handlers an earlier, held apply left owed to the host, which this run runs
    /// (or holds again).
    fn report_owed(&self, items: &[Item]) {
        let owed: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                Item::Handler(h) if self.plan.owed.contains(h) => {
                    Some(self.plan.handlers[*h].label())
                }
                _ => None,
            })
            .collect();
        if !owed.is_empty() {
            (self.send)(Event::Note {
                host: Some(self.host()),
                text: format!("owed by an earlier apply that held it: {}", owed.join(", ")),
            });
        }
    }

    /// Asks the guard whether the items that end meetings may run; if not, takes them out of
    /// `items`, tells so, and returns what was held.
    async fn hold(&self, items: &mut Vec<Item>) -> Option<Held> {
        let guard = self.opts.guard.as_ref()?;
        let ends = |i: &Item| plan::item_planned(self.plan, i).spec.ends_meetings;
        let labels: Vec<String> = items
            .iter()
            .filter(|i| ends(i))
            .map(|i| plan::item_planned(self.plan, i).label())
            .collect();
        if labels.is_empty() {
            return None;
        }
        let host = self.host();
        match guard
            .clear(&host, self.opts.goal, &labels, self.events)
            .await
        {
            Clearance::Go => None,
            Clearance::Hold(reason) => {
                let handlers = items
                    .iter()
                    .filter_map(|i| match i {
                        Item::Handler(h) if ends(i) => {
                            let spec = &self.plan.handlers[*h].spec;
                            Some((spec.role.clone(), spec.name.clone()))
                        }
                        _ => None,
                    })
                    .collect();
                items.retain(|i| !ends(i));
                let held = Held {
                    reason: self.secrets().redact(&reason),
                    pending: labels,
                    handlers,
                };
                (self.send)(Event::Note {
                    host: Some(host),
                    text: held.describe(),
                });
                Some(held)
            }
        }
    }

    /// The verdict report: one step event per step, counted into `res`, the failed `assert`
    /// steps into `res.preflight` ("label: message", redacted). Returns the first failed
    /// step ("label: message"), unredacted.
    fn report_verdicts(&self, verdicts: &[Verdict], res: &mut HostResult) -> Option<String> {
        let mut failure = None;
        for (s, v) in self.plan.steps.iter().zip(verdicts) {
            let (status, summary, diff) = match v {
                Verdict::Unchanged => (StepStatus::Ok, None, None),
                // A barrier that is not ready yet will wait in apply; it changes nothing, so
                // plan shows it as ok (with what it will wait for), never as a change.
                Verdict::Change { summary, .. }
                    if s.action.is_barrier() && self.opts.goal == Goal::Plan =>
                {
                    (StepStatus::Ok, Some(summary.clone()), None)
                }
                Verdict::Change { summary, diff } => (
                    if self.opts.goal == Goal::Plan {
                        StepStatus::WouldChange
                    } else {
                        StepStatus::Pending
                    },
                    Some(summary.clone()),
                    diff.clone(),
                ),
                Verdict::Fail(m) => {
                    failure.get_or_insert_with(|| format!("{}: {m}", s.label()));
                    if matches!(s.action, crate::step::Action::Assert(_)) {
                        res.preflight
                            .push(self.secrets().redact(&format!("{}: {m}", s.label())));
                    }
                    (StepStatus::Failed, Some(m.clone()), None)
                }
            };
            match status {
                StepStatus::Ok => res.ok += 1,
                StepStatus::WouldChange => res.changed += 1,
                StepStatus::Failed => res.failed += 1,
                _ => {}
            }
            // A diff of content rendered from a secret would show what the template made of
            // it (`b64encode`, a URL with it): never shown, the change itself is.
            let diff = match diff {
                Some(_) if s.depends_on_secret => {
                    Some(format!("{}\n", crate::secret::DEPENDS_ON_SECRET))
                }
                d => d,
            };
            (self.send)(Event::Step {
                host: self.host(),
                label: s.label(),
                status,
                summary: summary.map(|x| self.secrets().redact(&x)),
                diff,
            });
        }
        failure
    }

    /// The apply phase: runs the apply script for `items`, turning its marks into step events
    /// as they arrive, and counts the steps that changed into `res`.
    async fn apply(
        &self,
        items: &[Item],
        verdicts: &[Verdict],
        res: &mut HostResult,
    ) -> HostOutcome {
        let script = plan::apply_script(self.plan, items, &self.nonce);
        self.show_script("apply", &script);
        (self.send)(Event::Phase {
            host: self.host(),
            phase: "applying",
        });
        let total: u64 = items
            .iter()
            .map(|i| plan::item_planned(self.plan, i).timeout)
            .sum();
        let mut marks = MarkReader {
            run: self,
            items,
            verdicts,
            done: vec![false; items.len()],
            failed: None,
        };
        let r = tokio::time::timeout(
            Duration::from_secs(total + 60),
            self.conn.run(&script, &mut |line| marks.on_line(line)),
        )
        .await;
        for (n, item) in items.iter().enumerate() {
            if marks.done[n] {
                let Item::Step(i) = item else { continue };
                if changes(self.plan, item, verdicts) {
                    res.changed += 1;
                } else if matches!(verdicts[*i], Verdict::Change { .. }) {
                    // A barrier the check found not ready waited and reports ok (one that was
                    // ready at the check was counted as ok there already).
                    res.ok += 1;
                }
            }
        }
        match r {
            Err(_) => HostOutcome::Failed("the apply script did not finish in time".into()),
            Ok(Err(e)) => marks.interrupted(e),
            Ok(Ok(f)) => marks.finished(&f, res),
        }
    }
}

/// What the apply script has reported so far, read from its marks line by line.
struct MarkReader<'r, 'a> {
    run: &'r HostRun<'a>,
    items: &'r [Item],
    verdicts: &'r [Verdict],
    /// Which items reported success.
    done: Vec<bool>,
    /// The failure that stops the host ("label: message", or the script's fatal message).
    failed: Option<String>,
}

impl MarkReader<'_, '_> {
    /// Reads one stdout line of the apply script; lines without this run's mark are ignored.
    fn on_line(&mut self, line: &str) {
        let n = self.items.len();
        match plan::parse_mark(line, &self.run.nonce) {
            Some(Mark::Begin(i)) if i < n => {
                let p = plan::item_planned(self.run.plan, &self.items[i]);
                (self.run.send)(Event::StepBegin {
                    host: self.run.host(),
                    label: p.label(),
                    index: i,
                    total: n,
                });
            }
            Some(Mark::Ok(i)) if i < n => self.item_ok(i),
            Some(Mark::Failed { item, rc, output }) if item < n => {
                self.item_failed(item, rc, &output)
            }
            Some(Mark::Fatal(m)) => self.failed = Some(m),
            _ => {}
        }
    }

    fn item_ok(&mut self, n: usize) {
        self.done[n] = true;
        let p = plan::item_planned(self.run.plan, &self.items[n]);
        let changed = changes(self.run.plan, &self.items[n], self.verdicts);
        (self.run.send)(Event::Step {
            host: self.run.host(),
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

    /// An item exited non-zero: `rc` 124 or 137 means its timeout killed it.
    fn item_failed(&mut self, n: usize, rc: i32, output: &str) {
        let p = plan::item_planned(self.run.plan, &self.items[n]);
        let why = if rc == 124 || rc == 137 {
            format!("timed out after {} s", p.timeout)
        } else {
            format!("exit code {rc}")
        };
        let detail = last_lines(output, 8);
        let msg = self.run.secrets().redact(&if detail.is_empty() {
            why
        } else {
            format!("{why}: {detail}")
        });
        (self.run.send)(Event::Step {
            host: self.run.host(),
            label: p.label(),
            status: StepStatus::Failed,
            summary: Some(msg.clone()),
            diff: None,
        });
        self.failed = Some(format!("{}: {msg}", p.label()));
    }

    /// The connection broke during the apply script: an unreachable host names the first item
    /// that had not finished.
    fn interrupted(&self, e: ConnError) -> HostOutcome {
        let at = self
            .items
            .iter()
            .zip(&self.done)
            .find(|(_, d)| !**d)
            .map(|(i, _)| plan::item_planned(self.run.plan, i).label());
        match (outcome_of(e, self.run.secrets()), at) {
            (HostOutcome::Unreachable(m), Some(step)) => {
                HostOutcome::Unreachable(format!("{m} (during `{step}`)"))
            }
            (o, _) => o,
        }
    }

    /// The apply script ended: ok only if every item reported success.
    fn finished(&self, f: &Finished, res: &mut HostResult) -> HostOutcome {
        if let Some(msg) = &self.failed {
            res.failed += 1;
            HostOutcome::Failed(msg.clone())
        } else if self.done.iter().all(|d| *d) {
            HostOutcome::Ok
        } else {
            let why = if f.stderr.trim().is_empty() {
                format!("exit code {:?}", f.code)
            } else {
                last_lines(&f.stderr, 5)
            };
            HostOutcome::Failed(
                self.run
                    .secrets()
                    .redact(&format!("the apply script stopped early: {why}")),
            )
        }
    }
}

/// Whether an applied item counts as a change: a handler always does, a step when its check
/// found a change, except a barrier (`wait_for`), which only waits and reports ok.
fn changes(plan: &HostPlan, item: &Item, verdicts: &[Verdict]) -> bool {
    match item {
        Item::Step(i) => {
            matches!(verdicts[*i], Verdict::Change { .. }) && !plan.steps[*i].action.is_barrier()
        }
        Item::Handler(_) => true,
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
