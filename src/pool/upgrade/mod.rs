//! `rollout upgrade`: a rolling upgrade of the BBB nodes, batch by batch. For each node:
//! drain (cordon, wait until no meeting is left) -> apply the roles with `rollout_upgrade:
//! true` (the bbb role re-runs the pinned bbb-install.sh) -> health check -> enable again.
//!
//! Guarantees: never more nodes upgraded at once than the batch size; a node that failed
//! stays cordoned and counts against `--max-failures` and, being out of service, against
//! `balancer.min_in_service`; never fewer nodes in service than that minimum; the rollout
//! stops once more than `--max-failures` nodes failed. A budget that capacity would cut
//! short is refused before anything is touched.
//! Every phase is in the journal before it starts, so a killed rollout resumes with the nodes
//! it left out of service, and skips the ones it finished.
//!
//! The rules behind these guarantees are pure functions in [`super::rules`] (`resume`,
//! `next_batch`, `failures`, `enable`); this module observes, asks them, and acts.

use super::batch::Batches;
use super::drain::Watch;
use super::error::{PoolError, UpgradeFailure};
use super::journal::{JournalError, Lock, Phase, Run, format_time, now};
use super::rules::next_batch::{Capacity, Queued};
use super::rules::order::Load;
use super::rules::stop::Stop;
use super::rules::{self, failures, resume};
use super::{Node, Pool, UpgradeOptions, human};
use crate::balancer::{Balancer, Server, find};
use crate::report::summary::{self, NodeFailure, NodeTimes, UpgradeSummary};
use crate::report::{Event, Format, Reporter, Settings};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod node;

/// One node's upgrade: its closing message and times, or why it failed.
type NodeResult = Result<(String, NodeTimes), UpgradeFailure>;

use node::{NodeOpts, SharedJournal, upgrade_node};

/// `rollout upgrade`: the rolling upgrade, resumed when the journal has an unfinished run.
///
/// Errors: bad input or `--batch-size`, the journal or its lock, the balancer (nothing is
/// changed then), or Ctrl-C (with the nodes left out of service). A node that fails and
/// a run that stops early are in the summary.
pub async fn main(a: UpgradeOptions) -> Result<UpgradeSummary, PoolError> {
    let batches = Batches::parse(&a.batch_size)?;
    let mut run_vars = serde_json::Map::new();
    run_vars.insert("rollout_upgrade".into(), serde_json::Value::Bool(true));
    let mut pool = Pool::load(&a.run, &run_vars, "upgrade")?;
    let lock = Lock::acquire(&pool.prepared.state, "upgrade", a.run.lock_wait)?;
    let journal = lock.journal()?;
    // Restarts an apply held back on a busy node run with its upgrade, now that it is drained.
    for node in &mut pool.nodes {
        node.plan.owed = super::hold::owed(&journal, &node.plan);
    }
    let pool = Arc::new(pool);
    let journal = Arc::new(Mutex::new(journal));
    let lost = lock.lost();
    tokio::select! {
        biased;
        // The state database is gone, and with it the pool's lock: stop at once, taking no
        // further node out; the nodes out stay as the journal last recorded them.
        reason = lost => {
            let j = journal.lock().expect("journal lock");
            Err(PoolError::StateLost { reason, held: j.written_out("upgrade") })
        }
        summary = run(&a, batches, pool, journal.clone()) => {
            drop(lock);
            summary
        }
        _ = tokio::signal::ctrl_c() => {
            let j = journal.lock().expect("journal lock");
            let held = j.nodes.iter().filter(|(_, r)| r.phase.holds_node() && r.by == "upgrade").map(|(h, _)| h.clone()).collect();
            Err(PoolError::Interrupted { held })
        }
    }
}

async fn run(
    a: &UpgradeOptions,
    batches: Batches,
    pool: Arc<Pool>,
    journal: SharedJournal,
) -> Result<UpgradeSummary, PoolError> {
    let fmt = a.run.output;
    let opened = pool.open().await?;
    let client = opened.client.clone();
    // Nodes someone outside rollout took out of service are skipped, as they are.
    let mut skipped = outside(&opened.servers, &journal, pool.nodes.iter())?;
    check_budget(a.max_failures, &pool, &opened.servers, &journal, &skipped)?;
    let mut begun = begin(&pool, &journal)?;
    begun
        .queue
        .retain(|n| !skipped.iter().any(|(h, _)| *h == n.host));
    let rep = Reporter::start(Settings::new(
        fmt,
        a.run.verbose,
        begun.queue.len(),
        "upgrade",
    ));
    if let Some(n) = &opened.note {
        rep.note(None, n.clone());
    }
    if let Some(note) = begun.resume_note() {
        rep.note(None, note);
    }
    let mut tally = Tally::default();
    tally.skip(&rep, std::mem::take(&mut skipped));
    let opts = NodeOpts {
        watch: Watch {
            poll: Duration::from_secs_f64(pool.cfg.poll_interval),
            timeout: a.drain_timeout,
            force: a.force,
        },
        verbose: a.run.verbose,
        stage: a.stage,
    };
    // Nodes an earlier, killed invocation left out of service: finished first.
    let held: Vec<String> = begun
        .held
        .iter()
        .filter_map(|h| h.split(' ').next().map(str::to_string))
        .collect();
    let mut queue = begun.queue;
    let mut index = 0;
    while !queue.is_empty() {
        let next = next_batch(
            &pool,
            client.as_ref(),
            &journal,
            &batches,
            index,
            &held,
            a.order,
            &mut queue,
        )
        .await;
        let batch = match next {
            Ok((b, skipped)) => {
                tally.skip(&rep, skipped);
                b
            }
            Err(stop) => {
                tally.stop = Some(stop);
                break;
            }
        };
        if batch.is_empty() {
            continue;
        }
        let names: Vec<&str> = batch.iter().map(|(n, _)| n.host.as_str()).collect();
        let names = names.join(", ");
        if a.pause
            && index > 0
            && !confirm(&format!("continue with batch {} ({names})?", index + 1)).await
        {
            tally.stop = Some(Stop::Operator);
            break;
        }
        let left = queue.len();
        rep.note(
            None,
            format!("batch {}: {names} ({left} left after it)", index + 1),
        );
        let results = run_batch(&pool, &client, &journal, &rep, batch, opts).await;
        tally.record(&pool, &rep, results);
        if let Err(stop) = failures::check(tally.failed.len(), a.max_failures) {
            tally.stop = Some(stop);
            break;
        }
        index += 1;
    }
    rep.finish().await;
    Ok(finish(fmt, &journal, tally, begun.done, &queue))
}

/// The nodes among `nodes` that someone outside rollout took out of service
/// ([`super::set_outside`]), with who set which state, in words; the journal records them
/// as found so.
///
/// Errors: the journal cannot be written.
fn outside<'a>(
    servers: &[Server],
    journal: &SharedJournal,
    nodes: impl Iterator<Item = &'a Node>,
) -> Result<Vec<(String, String)>, JournalError> {
    let mut j = journal.lock().expect("journal lock");
    let mut out = Vec::new();
    let mut changed = false;
    for n in nodes {
        let Some(server) = find(servers, &n.desired.url) else {
            continue;
        };
        if let Some((words, c)) = super::set_outside(&mut j, &n.host, server) {
            changed |= c;
            out.push((
                n.host.clone(),
                format!(
                    "skipped, left {}: {words}; `rollout undrain --limit {}` puts it back",
                    server.state, n.host
                ),
            ));
        }
    }
    if changed {
        j.save()?;
    }
    Ok(out)
}

/// Refuses (exit 2, before the journal or the balancer is changed) a `--max-failures` that
/// capacity would cut short; see [`failures::reachable`]. Nodes `skipped` (out of service
/// by someone else's doing) are not queued and stay out of service.
fn check_budget(
    max_failures: usize,
    pool: &Pool,
    servers: &[Server],
    journal: &SharedJournal,
    skipped: &[(String, String)],
) -> Result<(), PoolError> {
    let j = journal.lock().expect("journal lock");
    let queued: Vec<&Node> = pool
        .nodes
        .iter()
        .filter(|n| j.in_open_run(&n.host).map(|r| r.phase) != Some(Phase::Done))
        .filter(|n| !skipped.iter().any(|(h, _)| *h == n.host))
        .collect();
    let out_but_queued = queued
        .iter()
        .filter(|n| !find(servers, &n.desired.url).is_some_and(Server::in_service))
        .count();
    let outlook = failures::Outlook {
        potential_in_service: servers.iter().filter(|s| s.in_service()).count() + out_but_queued,
        min_in_service: pool.cfg.min_in_service,
        queued: queued.len(),
    };
    failures::reachable(max_failures, outlook).map_err(|e| PoolError::Usage(e.to_string()))
}

/// Where the run begins: the nodes it still has to upgrade, in order, and what an earlier,
/// killed invocation of the same run left.
struct Begun {
    /// The unfinished run this continues, if any.
    resumed: Option<Run>,
    queue: VecDeque<Node>,
    /// `host (phase)` of the nodes the killed invocation left out of service.
    held: Vec<String>,
    /// Nodes the run upgraded already.
    done: Vec<String>,
}

/// Continues the open run, or starts (and journals) a new one; orders its nodes by
/// [`resume::order`]. Errors: the journal cannot be written.
fn begin(pool: &Pool, journal: &SharedJournal) -> Result<Begun, JournalError> {
    let mut j = journal.lock().expect("journal lock");
    let resumed = j.open_run().cloned();
    if resumed.is_none() {
        j.run = Some(Run {
            id: now().to_string(),
            started: now(),
            finished: None,
        });
        j.save()?;
    }
    let phases: Vec<Option<Phase>> = pool
        .nodes
        .iter()
        .map(|n| j.in_open_run(&n.host).map(|r| r.phase))
        .collect();
    let order = resume::order(&phases);
    let host = |&i: &usize| pool.nodes[i].host.clone();
    Ok(Begun {
        held: order
            .held
            .iter()
            .filter_map(|&i| phases[i].map(|p| format!("{} ({})", host(&i), p.name())))
            .collect(),
        done: order.done.iter().map(host).collect(),
        queue: order.queue.iter().map(|&i| pool.nodes[i].clone()).collect(),
        resumed,
    })
}

impl Begun {
    /// What the operator is told when the run continues an earlier one.
    fn resume_note(&self) -> Option<String> {
        let r = self.resumed.as_ref()?;
        Some(format!(
            "resuming the upgrade started {}: {} node(s) already upgraded{}",
            format_time(r.started),
            self.done.len(),
            if self.held.is_empty() {
                String::new()
            } else {
                format!("; continuing with {}", self.held.join(", "))
            }
        ))
    }
}

/// What the batches did so far.
#[derive(Default)]
struct Tally {
    upgraded: Vec<String>,
    /// How long each upgraded node spent in each state.
    times: Vec<NodeTimes>,
    /// Host and why it was skipped (out of service by someone else's doing).
    skipped: Vec<(String, String)>,
    /// Host and the redacted reason.
    failed: Vec<(String, String)>,
    stop: Option<Stop>,
}

impl Tally {
    /// Reports and counts nodes skipped because someone outside rollout took them out.
    fn skip(&mut self, rep: &Reporter, skipped: Vec<(String, String)>) {
        for (host, text) in skipped {
            rep.send(Event::NodeFinished {
                host: host.clone(),
                ok: true,
                text: text.clone(),
            });
            self.skipped.push((host, text));
        }
    }

    /// Reports a batch's results (in inventory order) and counts them.
    fn record(&mut self, pool: &Pool, rep: &Reporter, results: Vec<(String, NodeResult)>) {
        for (host, r) in results {
            match r {
                Ok((text, times)) => {
                    self.times.push(times);
                    rep.send(Event::NodeFinished {
                        host: host.clone(),
                        ok: true,
                        text,
                    });
                    self.upgraded.push(host);
                }
                Err(e) => {
                    let e = pool.secrets().redact(&e.to_string());
                    rep.send(Event::NodeFinished {
                        host: host.clone(),
                        ok: false,
                        text: format!("FAILED: {e}"),
                    });
                    self.failed.push((host, e));
                }
            }
        }
    }
}

/// Takes the next batch off the front of `queue`, as the batch size and
/// [`rules::next_batch::next_batch`] allow, with each node's balancer entry, and the queued
/// nodes someone outside rollout took out of service since the run began (taken off the
/// queue, skipped); the reason to stop when it can take none. The queue is put in the order
/// that drains fastest first ([`rules::order`], from each node's meetings now; nodes in
/// `held`, left out by a killed invocation, first).
#[allow(clippy::too_many_arguments)]
async fn next_batch(
    pool: &Pool,
    client: &dyn Balancer,
    journal: &SharedJournal,
    batches: &Batches,
    index: usize,
    held: &[String],
    order: super::Order,
    queue: &mut VecDeque<Node>,
) -> Result<(Vec<(Node, Option<Server>)>, Vec<(String, String)>), Stop> {
    let size = batches.size(index, pool.nodes.len());
    let servers = client
        .list()
        .await
        .map_err(|e| Stop::Balancer(e.to_string()))?;
    let skipped =
        outside(&servers, journal, queue.iter()).map_err(|e| Stop::Balancer(e.to_string()))?;
    queue.retain(|n| !skipped.iter().any(|(h, _)| *h == n.host));
    if queue.is_empty() {
        return Ok((Vec::new(), skipped));
    }
    let loads = match order {
        super::Order::DrainFastest => loads(pool, held, queue).await,
        // Only what puts an interrupted run's nodes first; no node is asked.
        super::Order::Inventory => queue
            .iter()
            .map(|n| {
                if held.contains(&n.host) {
                    Load::Held
                } else {
                    Load::Meetings {
                        meetings: 0,
                        participants: 0,
                        last_end: None,
                    }
                }
            })
            .collect(),
    };
    let order = rules::order::order(&loads);
    let mut by_order: Vec<Option<Node>> = queue.drain(..).map(Some).collect();
    queue.extend(order.iter().filter_map(|&i| by_order[i].take()));
    let capacity = Capacity {
        in_service: servers.iter().filter(|s| s.in_service()).count(),
        min_in_service: pool.cfg.min_in_service,
    };
    let queued: Vec<Queued> = queue
        .iter()
        .take(size)
        .map(|n| Queued {
            host: &n.host,
            in_service: find(&servers, &n.desired.url).is_some_and(Server::in_service),
        })
        .collect();
    let taken = rules::next_batch::next_batch(size, capacity, &queued)?;
    let batch = queue
        .drain(..taken)
        .map(|node| {
            let server = find(&servers, &node.desired.url).cloned();
            (node, server)
        })
        .collect();
    Ok((batch, skipped))
}

/// What each queued node carries now, for [`rules::order`]: its meetings as its own API
/// lists them (all nodes read at once), or [`Load::Held`] for the nodes in `held`.
async fn loads(pool: &Pool, held: &[String], queue: &VecDeque<Node>) -> Vec<Load> {
    let api = pool.meeting_api();
    let mut set = tokio::task::JoinSet::new();
    for (i, node) in queue.iter().enumerate() {
        if held.contains(&node.host) {
            continue;
        }
        let (api, node) = (api.clone(), node.clone());
        set.spawn(async move { (i, super::drain::meetings(&api, &node).await) });
    }
    let mut loads = vec![Load::Held; queue.len()];
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    while let Some(joined) = set.join_next().await {
        let Ok((i, found)) = joined else { continue };
        loads[i] = match found {
            Err(_) => Load::Unreadable,
            Ok(ms) => Load::Meetings {
                meetings: ms.len(),
                participants: crate::bbb_api::participants(&ms),
                last_end: ms
                    .iter()
                    .map(|m| m.scheduled_end_ms())
                    .collect::<Option<Vec<u64>>>()
                    .map(|ends| {
                        let last = ends.into_iter().max().unwrap_or(now_ms);
                        Duration::from_millis(last.saturating_sub(now_ms))
                    }),
            },
        };
    }
    loads
}

/// Upgrades the nodes of one batch at once; their results in inventory order.
async fn run_batch(
    pool: &Arc<Pool>,
    client: &Arc<dyn Balancer>,
    journal: &SharedJournal,
    rep: &Reporter,
    batch: Vec<(Node, Option<Server>)>,
    opts: NodeOpts,
) -> Vec<(String, NodeResult)> {
    let mut set = tokio::task::JoinSet::new();
    for (node, server) in batch {
        let (pool, client, journal, tx) = (
            pool.clone(),
            client.clone(),
            journal.clone(),
            rep.tx.clone(),
        );
        set.spawn(async move {
            let started = Instant::now();
            let r = upgrade_node(&pool, client.as_ref(), &node, server, &journal, &tx, opts).await;
            let r = r.map(|(t, times)| (format!("{t}, {}", human(started.elapsed())), times));
            (node.host.clone(), r)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(r) = joined {
            results.push(r);
        }
    }
    results.sort_by_key(|(h, _)| pool.nodes.iter().position(|n| &n.host == h));
    results
}

/// Closes the run in the journal when it finished; the summary.
fn finish(
    fmt: Format,
    journal: &SharedJournal,
    tally: Tally,
    done: Vec<String>,
    queue: &VecDeque<Node>,
) -> UpgradeSummary {
    let finished = tally.stop.is_none() && tally.failed.is_empty();
    if finished {
        let mut j = journal.lock().expect("journal lock");
        if let Some(r) = j.run.as_mut() {
            r.finished = Some(now());
        }
        if let Err(e) = j.save() {
            summary::error(fmt, &e.to_string());
        }
    }
    let not_started: Vec<String> = queue.iter().map(|n| n.host.clone()).collect();
    UpgradeSummary {
        upgraded: tally.upgraded,
        already_upgraded: done,
        failed: tally
            .failed
            .into_iter()
            .map(|(host, reason)| NodeFailure { host, reason })
            .collect(),
        not_started,
        skipped: tally
            .skipped
            .into_iter()
            .map(|(host, reason)| NodeFailure { host, reason })
            .collect(),
        stopped: tally.stop.map(|s| s.to_string()),
        times: tally.times,
    }
}

async fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let answer = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        std::io::stdin()
            .read_line(&mut s)
            .map(|_| s)
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}
