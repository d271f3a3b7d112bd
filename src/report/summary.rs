//! Every command's result as one typed value: what `plan`/`apply`, the balancer registration
//! of `apply`, `drain`, `undrain` and `upgrade` report at their end (`status` is in
//! [`super::status`]). Each type is rendered here, as the plain text the operator reads or as
//! one JSON object of schema [`SCHEMA`] (documented in `docs/json.md`), and says which exit
//! the command ends with, so no command picks its own exit code or output shape.

use super::{Format, HostOutcome, HostResult};
use crate::error::Exit;
use serde::Serialize;

/// The version of the JSON objects (summaries and errors); raised when a field changes
/// meaning or goes away, not when one is added.
pub const SCHEMA: u32 = 1;

/// A command's typed result.
pub trait Summary: Serialize {
    /// The `event` field of the JSON object.
    const EVENT: &'static str;
    /// The plain text for stdout (may be empty).
    fn plain(&self) -> String;
    /// Text for stderr, shown before [`Summary::plain`] (plain output only).
    fn plain_errors(&self) -> Option<String> {
        None
    }
    /// How the command ends.
    fn exit(&self) -> Exit;
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    event: &'static str,
    schema: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// The JSON object of a summary, one line.
pub fn json<S: Summary>(s: &S) -> String {
    let e = Envelope {
        event: S::EVENT,
        schema: SCHEMA,
        body: s,
    };
    // Summaries are plain data (strings, numbers, lists): serializing cannot fail.
    serde_json::to_string(&e).unwrap_or_default()
}

/// Prints a summary in `format`: one JSON line on stdout, or the plain text.
pub fn render<S: Summary>(format: Format, s: &S) {
    if crate::log_file::is_open() {
        crate::log_file::lines(&s.plain_errors().unwrap_or_default());
        crate::log_file::lines(&s.plain());
    }
    if format == Format::Json {
        println!("{}", json(s));
        return;
    }
    if let Some(e) = s.plain_errors() {
        eprint!("{e}");
    }
    print!("{}", s.plain());
}

/// Prints an error that ended a command (balancer unreachable, journal, capacity) the same
/// way in every format: on stderr, and as an `error` object on stdout with `--output json`.
pub fn error(format: Format, message: &str) {
    // Through the one redaction point for error texts (see `secret::redact_known`).
    let message = crate::secret::redact_known(message);
    let message = message.as_str();
    if format == Format::Json {
        println!(
            "{}",
            serde_json::json!({"event": "error", "schema": SCHEMA, "message": message})
        );
    }
    eprintln!("error: {message}");
    crate::log_file::lines(&format!("error: {message}"));
}

/// `rollout plan` / `rollout apply`: one result per host.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub hosts: Vec<HostResult>,
    /// Whether the run was an apply (else a plan): what a failed preflight is said to mean.
    #[serde(skip)]
    pub applied: bool,
}

impl RunSummary {
    /// Whether a host failed an `assert` step (preflight): then no host was changed.
    pub fn preflight_failed(&self) -> bool {
        self.hosts.iter().any(|r| !r.preflight.is_empty())
    }
}

impl Summary for RunSummary {
    const EVENT: &'static str = "summary";
    fn plain(&self) -> String {
        super::summary(&self.hosts)
    }
    /// A failed preflight: the run stopped before any host changed; each failed `assert`
    /// named as `host: role: step: message`.
    fn plain_errors(&self) -> Option<String> {
        if !self.preflight_failed() {
            return None;
        }
        let failing: Vec<&HostResult> = self
            .hosts
            .iter()
            .filter(|r| !r.preflight.is_empty())
            .collect();
        let mut out = format!(
            "error: preflight failed on {} host{}: {} (a pool is one system: every selected host's `assert` steps must pass before any host changes)\n",
            failing.len(),
            if failing.len() == 1 { "" } else { "s" },
            if self.applied {
                "no host was changed"
            } else {
                "`rollout apply` would change no host"
            }
        );
        for r in failing {
            for f in &r.preflight {
                out.push_str(&format!("  {}: {f}\n", r.host));
            }
        }
        Some(out)
    }
    /// A failed preflight is bad input found before anything changed (2); then failed over
    /// held: a failure is the louder news.
    fn exit(&self) -> Exit {
        if self.preflight_failed() {
            Exit::Input
        } else if self.hosts.iter().any(|r| r.outcome != HostOutcome::Ok) {
            Exit::Failed
        } else if self.hosts.iter().any(|r| r.held.is_some()) {
            Exit::Held
        } else {
            Exit::Ok
        }
    }
}

/// What registration did to one node.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub host: String,
    pub ok: bool,
    /// What was done, or why not (redacted).
    pub text: String,
    /// Left out of service because someone outside rollout set it so: who set which state
    /// (`cordoned outside rollout (found so in the balancer 2026-12-06 21:50 UTC)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outside: Option<String>,
}

/// The balancer block of `rollout apply`.
#[derive(Debug, Clone, Serialize)]
pub struct RegistrationSummary {
    /// The balancer (kind and URL, with a note such as a rake fallback), or why it could not
    /// be used.
    pub balancer: String,
    pub nodes: Vec<Registered>,
    /// False when the balancer or the journal could not be used: no node was touched.
    #[serde(skip)]
    pub reached: bool,
}

impl Summary for RegistrationSummary {
    const EVENT: &'static str = "balancer";
    fn plain(&self) -> String {
        let mut out = format!("balancer: {}\n", self.balancer);
        let w = self.nodes.iter().map(|n| n.host.len()).max().unwrap_or(4);
        for n in &self.nodes {
            out.push_str(&format!("  {:<w$}  {}\n", n.host, n.text));
        }
        let outside: Vec<&str> = self
            .nodes
            .iter()
            .filter(|n| n.outside.is_some())
            .map(|n| n.host.as_str())
            .collect();
        if !outside.is_empty() {
            out.push_str(&format!(
                "{} node(s) left out of service as someone outside rollout set them: {}\n",
                outside.len(),
                outside.join(", ")
            ));
        }
        out
    }
    fn exit(&self) -> Exit {
        Exit::failed_if(!self.reached || self.nodes.iter().any(|n| !n.ok))
    }
}

/// `rollout drain`.
#[derive(Debug, Clone, Serialize)]
pub struct DrainSummary {
    /// How many nodes are drained and out of service.
    pub drained: usize,
    /// The nodes left cordoned with meetings (or unreadable), in inventory order.
    pub not_drained: Vec<String>,
}

impl Summary for DrainSummary {
    const EVENT: &'static str = "summary";
    fn plain(&self) -> String {
        let total = self.drained + self.not_drained.len();
        if self.not_drained.is_empty() {
            format!(
                "drain: {total} node(s) drained and out of service; `rollout undrain` puts them back\n"
            )
        } else {
            format!(
                "drain: {} of {total} node(s) not drained: {} (left cordoned)\n",
                self.not_drained.len(),
                self.not_drained.join(", ")
            )
        }
    }
    fn exit(&self) -> Exit {
        Exit::failed_if(!self.not_drained.is_empty())
    }
}

/// `rollout undrain`. Plain output has no summary: every node's line says it.
#[derive(Debug, Clone, Serialize)]
pub struct UndrainSummary {
    /// Nodes enabled again (or already enabled).
    pub enabled: Vec<String>,
    /// Nodes left out of service.
    pub failed: Vec<String>,
    /// Nodes left out of service as someone outside rollout set them, because `--limit`
    /// selected them only through a group (see `docs/pool.md`, "Hands off").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left: Vec<String>,
}

impl Summary for UndrainSummary {
    const EVENT: &'static str = "summary";
    fn plain(&self) -> String {
        if self.left.is_empty() {
            return String::new();
        }
        format!(
            "undrain: {} node(s) left out of service as someone outside rollout set them: {}\n",
            self.left.len(),
            self.left.join(", ")
        )
    }
    fn exit(&self) -> Exit {
        Exit::failed_if(!self.failed.is_empty())
    }
}

/// A node that failed, and why (redacted).
#[derive(Debug, Clone, Serialize)]
pub struct NodeFailure {
    pub host: String,
    pub reason: String,
}

/// `rollout upgrade`.
#[derive(Debug, Clone, Serialize)]
pub struct UpgradeSummary {
    /// Upgraded by this invocation.
    pub upgraded: Vec<String>,
    /// Upgraded earlier in the same (resumed) run.
    pub already_upgraded: Vec<String>,
    /// Failed and left cordoned.
    pub failed: Vec<NodeFailure>,
    /// Not reached before the run stopped.
    pub not_started: Vec<String>,
    /// Not upgraded because someone outside rollout took them out of service (left so),
    /// with who set which state.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<NodeFailure>,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// How long each node upgraded by this invocation spent in each state, in seconds.
    pub times: Vec<NodeTimes>,
}

/// How long one node of `rollout upgrade` spent in each state, in seconds (the controller's
/// monotonic clock, to a tenth of a second).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeTimes {
    pub host: String,
    /// The steps marked `stage: true` (downloads, package fetches, disk checks), run before the
    /// cordon while the node still served classes; `null` with `--no-stage` or when its roles
    /// stage nothing.
    pub staging_s: Option<f64>,
    /// From the cordon until the node was enabled again (or, left out of service as it was
    /// before, its health check passed): no new meetings in that time.
    pub cordoned_s: f64,
    /// From the cordon until the drain saw its last meeting gone: its running classes went on.
    pub draining_s: f64,
    /// The apply of its roles alone, after the drain (the install and the restarts, and the
    /// steps left after staging): the part of `out_of_service_s` the node's own work takes.
    pub applying_s: f64,
    /// From the end of the drain until it was enabled again: no class at all, the apply
    /// (install and restarts) and the health check. The balancer may add its own poll
    /// (Scalelite: up to its poll interval) before it sends meetings again.
    pub out_of_service_s: f64,
    /// At most this long passed between the last meeting ending and the node being touched
    /// (its apply beginning): from the last look that still saw a meeting to the touch.
    /// `null` when it had no meeting at the first look.
    pub end_noticed_within_s: Option<f64>,
}

impl Summary for UpgradeSummary {
    const EVENT: &'static str = "summary";
    fn plain(&self) -> String {
        let mut out = format!("upgrade: {} node(s) upgraded", self.upgraded.len());
        if !self.already_upgraded.is_empty() {
            out.push_str(&format!(
                ", {} already upgraded earlier in this run",
                self.already_upgraded.len()
            ));
        }
        if !self.failed.is_empty() {
            out.push_str(&format!(", {} failed and left cordoned", self.failed.len()));
        }
        if !self.not_started.is_empty() {
            out.push_str(&format!(", {} not started", self.not_started.len()));
        }
        if !self.skipped.is_empty() {
            out.push_str(&format!(
                ", {} skipped (out of service as someone outside rollout set it)",
                self.skipped.len()
            ));
        }
        out.push('\n');
        if !self.times.is_empty() {
            out.push_str(&times_table(&self.times));
            let total: f64 = self.times.iter().map(|t| t.out_of_service_s).sum();
            out.push_str(&format!("out of service: {total:.1} node-seconds in all\n"));
        }
        for f in &self.failed {
            out.push_str(&format!("  {}: FAILED: {}\n", f.host, f.reason));
        }
        for f in &self.skipped {
            out.push_str(&format!("  {}: {}\n", f.host, f.reason));
        }
        if let Some(s) = &self.stopped {
            out.push_str(&format!("stopped: {s}\n"));
            if !self.not_started.is_empty() {
                out.push_str(&format!(
                    "not started: {}; `rollout upgrade` continues with them\n",
                    self.not_started.join(", ")
                ));
            }
        }
        out
    }
    fn exit(&self) -> Exit {
        Exit::failed_if(self.stopped.is_some() || !self.failed.is_empty())
    }
}

/// The per-node times as a table, seconds with one decimal; `-` where there is none.
fn times_table(times: &[NodeTimes]) -> String {
    let w = times.iter().map(|t| t.host.len()).max().unwrap_or(0).max(4);
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    let mut out = format!(
        "  {:<w$}  {:>7}  {:>8}  {:>8}  {:>8}  {:>14}  {:>13}\n",
        "HOST", "STAGING", "CORDONED", "DRAINING", "APPLYING", "OUT OF SERVICE", "END NOTICED"
    );
    for t in times {
        out.push_str(&format!(
            "  {:<w$}  {:>7}  {:>8.1}  {:>8.1}  {:>8.1}  {:>14.1}  {:>13}\n",
            t.host,
            opt(t.staging_s),
            t.cordoned_s,
            t.draining_s,
            t.applying_s,
            t.out_of_service_s,
            opt(t.end_noticed_within_s)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_carries_event_and_schema_first() {
        let s = DrainSummary {
            drained: 1,
            not_drained: vec!["h2".into()],
        };
        assert_eq!(
            json(&s),
            r#"{"event":"summary","schema":1,"drained":1,"not_drained":["h2"]}"#
        );
        assert_eq!(
            s.plain(),
            "drain: 1 of 2 node(s) not drained: h2 (left cordoned)\n"
        );
        assert_eq!(s.exit(), Exit::Failed);
    }

    #[test]
    fn upgrade_exits_ok_only_when_finished() {
        let mut s = UpgradeSummary {
            upgraded: vec!["h1".into()],
            already_upgraded: vec![],
            failed: vec![],
            not_started: vec![],
            skipped: vec![],
            stopped: None,
            times: vec![],
        };
        assert_eq!(s.exit(), Exit::Ok);
        assert_eq!(s.plain(), "upgrade: 1 node(s) upgraded\n");
        s.times = vec![NodeTimes {
            host: "h1".into(),
            staging_s: Some(3.0),
            cordoned_s: 12.0,
            draining_s: 4.0,
            applying_s: 6.5,
            out_of_service_s: 8.0,
            end_noticed_within_s: None,
        }];
        assert_eq!(
            s.plain(),
            "upgrade: 1 node(s) upgraded\n\
             \x20 HOST  STAGING  CORDONED  DRAINING  APPLYING  OUT OF SERVICE    END NOTICED\n\
             \x20 h1        3.0      12.0       4.0       6.5             8.0              -\n\
             out of service: 8.0 node-seconds in all\n"
        );
        s.stopped = Some("stopped at the operator's request".into());
        assert_eq!(s.exit(), Exit::Failed);
    }

    #[test]
    fn a_held_host_exits_3_unless_another_failed() {
        let host = |name: &str, outcome: HostOutcome, held: bool| HostResult {
            host: name.into(),
            outcome,
            ok: 1,
            changed: 1,
            failed: 0,
            skipped: 0,
            seconds: 0.0,
            held: held.then(|| super::super::Held {
                reason: "1 meeting running".into(),
                pending: vec!["bbb: restart changed services".into()],
                handlers: vec![("bbb".into(), "restart changed services".into())],
            }),
            preflight: vec![],
        };
        let mut s = RunSummary {
            hosts: vec![
                host("h1", HostOutcome::Ok, true),
                host("h2", HostOutcome::Ok, false),
            ],
            applied: true,
        };
        assert_eq!(s.exit(), Exit::Held);
        assert_eq!(s.exit().code(), 3);
        assert!(
            s.plain().contains(
                "  h1: held: 1 meeting running; restart pending: bbb: restart changed services\n"
            ),
            "{}",
            s.plain()
        );
        assert!(json(&s).contains(
            r#""held":{"reason":"1 meeting running","pending":["bbb: restart changed services"]}"#
        ));
        s.hosts[1].outcome = HostOutcome::Failed("x".into());
        assert_eq!(s.exit(), Exit::Failed);
        assert_eq!(s.plain_errors(), None);
    }

    #[test]
    fn a_failed_preflight_exits_2_and_names_host_step_and_message() {
        let host = |name: &str, preflight: Vec<String>| HostResult {
            host: name.into(),
            outcome: HostOutcome::Failed("x".into()),
            ok: 0,
            changed: 0,
            failed: preflight.len(),
            skipped: 0,
            seconds: 0.0,
            held: None,
            preflight,
        };
        let mut s = RunSummary {
            hosts: vec![
                host("h1", vec![]),
                host(
                    "h5",
                    vec!["turn: preflight TURN addresses: not here".into()],
                ),
            ],
            applied: true,
        };
        assert_eq!(s.exit(), Exit::Input);
        assert_eq!(s.exit().code(), 2);
        let e = s.plain_errors().unwrap_or_default();
        assert!(
            e.starts_with("error: preflight failed on 1 host: no host was changed")
                && e.ends_with("\n  h5: turn: preflight TURN addresses: not here\n"),
            "{e}"
        );
        assert!(json(&s).contains(r#""preflight":["turn: preflight TURN addresses: not here"]"#));
        s.applied = false;
        let e = s.plain_errors().unwrap_or_default();
        assert!(e.contains("`rollout apply` would change no host"), "{e}");
    }
}
