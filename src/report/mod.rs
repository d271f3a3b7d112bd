//! What the operator sees. The executor sends [`Event`]s; one reporter turns them into
//! progress bars on a terminal, plain lines elsewhere (CI, pipes), or one JSON object per
//! line. Text has been redacted before it becomes an event. At the end every command's
//! typed result ([`summary`]) is rendered here too, as plain text or as one JSON object of
//! the versioned schema documented in `docs/json.md`.

mod json;
mod plain;
pub mod status;
pub mod summary;
mod tty;

pub use plain::line as plain_line;

use serde::Serialize;
use std::io::IsTerminal;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// A step's result as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Ok,
    /// Apply: the check found a change, about to be applied.
    Pending,
    /// Plan: would change.
    WouldChange,
    Changed,
    Failed,
}

/// How a host's run ended; the reason is redacted text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum HostOutcome {
    Ok,
    Failed(String),
    Unreachable(String),
}

/// One host's run: its outcome, step counts and wall time in seconds.
#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    pub host: String,
    pub outcome: HostOutcome,
    pub ok: usize,
    pub changed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub seconds: f64,
    /// Steps and handlers that end meetings and were held back on this host because it has
    /// meetings (or they cannot be read); `None` when nothing was held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
    /// The host's failed `assert` steps (preflight), each `role: step: message`, redacted;
    /// empty when they all passed. Any at all, on any host, stops an apply before a single
    /// host changes, and the command exits 2 (see `exec`'s preflight gate).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preflight: Vec<String>,
}

/// What a host's run held back because it would end meetings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    /// Why, redacted: `1 meeting running`, or why its meetings cannot be read.
    pub reason: String,
    /// The steps and handlers not run, as `role: name` labels, in run order.
    pub pending: Vec<String>,
    /// The held handlers as (role, name): owed to the host until an apply runs them (a
    /// held step is found again by the next check; a handler would not be notified again).
    #[serde(skip)]
    pub handlers: Vec<(String, String)>,
}

impl Held {
    /// The line shown for the host: `held: 1 meeting running; restart pending: ...`.
    pub fn describe(&self) -> String {
        format!(
            "held: {}; restart pending: {}",
            self.reason,
            self.pending.join(", ")
        )
    }
}

/// What happens during a run, as the reporter shows it (fields in `docs/json.md`).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    HostStarted {
        host: String,
        steps: usize,
    },
    Phase {
        host: String,
        phase: &'static str,
    },
    StepBegin {
        host: String,
        label: String,
        index: usize,
        total: usize,
    },
    Step {
        host: String,
        label: String,
        status: StepStatus,
        summary: Option<String>,
        diff: Option<String>,
    },
    Script {
        host: String,
        what: &'static str,
        text: String,
    },
    HostFinished(HostResult),
    /// Anything else worth a line (balancer registration, drain progress).
    Note {
        host: Option<String>,
        text: String,
    },
    /// Pool operations (drain, upgrade): a node's current state, shown on its progress
    /// line on a terminal and as a line elsewhere.
    Progress {
        host: String,
        text: String,
    },
    /// Pool operations: a node is done (drained, upgraded, or failed).
    NodeFinished {
        host: String,
        ok: bool,
        text: String,
    },
}

/// How results are shown (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Progress bars on a terminal, plain lines otherwise.
    Auto,
    Plain,
    Json,
}

/// What a reporter shows and how.
pub struct Settings {
    pub format: Format,
    pub show_diff: bool,
    pub verbose: bool,
    pub hosts: usize,
    pub title: String,
}

impl Settings {
    /// Settings without diffs, for `hosts` hosts (the size of the overall bar), the bar
    /// titled `title`.
    pub fn new(format: Format, verbose: bool, hosts: usize, title: &str) -> Settings {
        Settings {
            format,
            show_diff: false,
            verbose,
            hosts,
            title: title.into(),
        }
    }
}

/// A running reporter: events sent to it are shown until [`Reporter::finish`].
pub struct Reporter {
    pub tx: UnboundedSender<Event>,
    handle: tokio::task::JoinHandle<()>,
}

impl Reporter {
    /// Starts the one reporter of a command (a tokio task; needs a runtime).
    pub fn start(settings: Settings) -> Reporter {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        Reporter {
            tx,
            handle: tokio::spawn(report(rx, settings)),
        }
    }

    /// Shows an event (dropped when the reporter has stopped).
    pub fn send(&self, e: Event) {
        let _ = self.tx.send(e);
    }

    /// Shows a line, about `host` or about the whole run.
    pub fn note(&self, host: Option<&str>, text: impl Into<String>) {
        self.send(Event::Note {
            host: host.map(str::to_string),
            text: text.into(),
        });
    }

    /// Waits until every event sent so far is shown and the bars are cleared.
    pub async fn finish(self) {
        drop(self.tx);
        let _ = self.handle.await;
    }
}

/// Consumes events until the channel closes.
pub async fn report(mut rx: UnboundedReceiver<Event>, s: Settings) {
    let fmt = match s.format {
        Format::Auto
            if std::io::stderr().is_terminal()
                && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(false) =>
        {
            Printer::Tty(tty::Tty::new(s.hosts, &s.title))
        }
        Format::Auto | Format::Plain => Printer::Plain,
        Format::Json => Printer::Json,
    };
    let mut fmt = fmt;
    while let Some(e) = rx.recv().await {
        if crate::log_file::is_open()
            && let Some(l) = plain::line(&e, &s)
        {
            crate::log_file::lines(&l);
        }
        match &mut fmt {
            Printer::Tty(t) => t.event(&e, &s),
            Printer::Plain => plain::event(&e, &s, &mut |l| println!("{l}")),
            Printer::Json => json::event(&e),
        }
    }
    if let Printer::Tty(t) = fmt {
        t.finish();
    }
}

/// Which printer turns events into output (not called "kind": that is the step kind's word).
enum Printer {
    Tty(tty::Tty),
    Plain,
    Json,
}

/// The table printed at the end of every run (not in JSON mode: there it is an event).
pub fn summary(results: &[HostResult]) -> String {
    let w = results
        .iter()
        .map(|r| r.host.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:<w$}  {:>5}  {:>7}  {:>6}  {:>11}  {:>7}\n",
        "HOST", "OK", "CHANGED", "FAILED", "UNREACHABLE", "SECONDS"
    );
    let mut problems = String::new();
    for r in results {
        let unreachable = usize::from(matches!(r.outcome, HostOutcome::Unreachable(_)));
        let failed = if matches!(r.outcome, HostOutcome::Failed(_)) {
            r.failed.max(1)
        } else {
            r.failed
        };
        out.push_str(&format!(
            "{:<w$}  {:>5}  {:>7}  {:>6}  {:>11}  {:>7.1}\n",
            r.host, r.ok, r.changed, failed, unreachable, r.seconds
        ));
        match &r.outcome {
            HostOutcome::Ok => {
                if let Some(h) = &r.held {
                    problems.push_str(&format!("  {}: {}\n", r.host, h.describe()));
                }
            }
            HostOutcome::Failed(m) => problems.push_str(&format!("  {}: FAILED: {m}\n", r.host)),
            HostOutcome::Unreachable(m) => {
                problems.push_str(&format!("  {}: UNREACHABLE: {m}\n", r.host))
            }
        }
    }
    let failed = results
        .iter()
        .filter(|r| r.outcome != HostOutcome::Ok)
        .count();
    let changed: usize = results.iter().map(|r| r.changed).sum();
    let held = results.iter().filter(|r| r.held.is_some()).count();
    out.push_str(&format!(
        "{} hosts, {changed} changes, {failed} failed or unreachable{}\n",
        results.len(),
        if held > 0 {
            format!(", {held} held (meetings running; restart pending)")
        } else {
            String::new()
        }
    ));
    if !problems.is_empty() {
        out.push_str(&problems);
    }
    out
}

/// `text` with every line prefixed by `by`.
pub fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}
