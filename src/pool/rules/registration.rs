//! What registration after `rollout apply` does with one node of the balancer's group, from
//! what it saw: the node's health check, how its apply went, its entry in the balancer, and
//! whether rollout's journal holds it out of service (`rollout drain`, an unfinished upgrade).
//!
//! A healthy, converged node is registered (added, or its secret, load multiplier and tag
//! updated) and enabled, unless the journal holds it: then it is left as it is, so a
//! registration never undoes a drain. A node that failed is never added; an enabled one
//! whose health check failed is cordoned so it gets no new meetings.
//!
//! The rule is asked again after each write, with the entry the balancer returned, because
//! the balancer has the last word on a server's state (an added server arrives out of
//! service; Scalelite's poller may turn a cordoned server into a disabled one).

use crate::balancer::State;
use crate::pool::journal::Phase;
use std::fmt;

/// How the node's apply ended (a node the apply did not report counts as [`Applied::Ok`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Ok,
    Failed,
    Unreachable,
}

impl Applied {
    /// Why the node is not registered, when the apply failed.
    fn failure(self) -> Option<&'static str> {
        match self {
            Applied::Ok => None,
            Applied::Failed => Some("apply failed"),
            Applied::Unreachable => Some("host unreachable"),
        }
    }
}

/// The journal holds the node out of service: in `phase`, set by `rollout {by}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held<'a> {
    pub phase: Phase,
    /// The command that set the phase (`drain`, `upgrade`).
    pub by: &'a str,
}

impl fmt::Display for Held<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} by rollout {}", self.phase.name(), self.by)
    }
}

/// The node's entry in the balancer, as last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Not registered.
    Absent,
    /// Listed by the balancer, with the fields that differ from the inventory.
    Listed {
        state: State,
        differences: Vec<&'static str>,
    },
    /// Just added by this registration.
    Added { state: State },
    /// Just updated by this registration (`fields` were brought to the inventory's values).
    Updated {
        state: State,
        fields: Vec<&'static str>,
    },
}

/// What registration knows about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen<'a> {
    /// The health check; the error is its redacted message.
    pub health: Result<(), &'a str>,
    pub applied: Applied,
    pub entry: Entry,
    pub held: Option<Held<'a>>,
    /// The node is out of service by someone else's doing ([`super::hands_off`]): who set it,
    /// in words, with how to put it back. Such a node is updated but left out of service.
    pub outside: Option<&'a str>,
}

/// The line reported for the node: `Ok` when it is registered as it should be, `Err` the
/// failure (both are printed after the host name).
pub type Report = Result<String, String>;

/// What to do next with the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Add it to the balancer (it arrives out of service), then decide again with
    /// [`Entry::Added`]; a balancer error is the report.
    Add,
    /// Bring these fields to the inventory's values, then decide again with
    /// [`Entry::Updated`]; a balancer error is the report.
    Update(Vec<&'static str>),
    /// Set the state; `then` is the report when that works; when it does not, the report is
    /// the failure `failed` followed by the balancer's error.
    SetState {
        to: State,
        then: Report,
        failed: String,
    },
    /// Nothing (more) to do.
    Report(Report),
}

/// The rule: what to do with a node given what was seen.
pub fn decide(seen: &Seen<'_>) -> Decision {
    let held = seen.held.as_ref().map(Held::to_string);
    match (&seen.entry, seen.health, seen.applied.failure()) {
        (Entry::Added { state }, ..) => match held {
            Some(h) => Decision::Report(Ok(format!("registered, left {state}: {h}"))),
            None => Decision::SetState {
                to: State::Enabled,
                then: Ok("registered and enabled".into()),
                failed: "registered, but not enabled: ".into(),
            },
        },
        (Entry::Updated { state, fields }, ..) => settle(*state, held, seen.outside, Some(fields)),
        (Entry::Listed { differences, .. }, Ok(()), None) if !differences.is_empty() => {
            Decision::Update(differences.clone())
        }
        (Entry::Listed { state, .. }, Ok(()), None) => settle(*state, held, seen.outside, None),
        (Entry::Absent, Ok(()), None) => Decision::Add,
        (Entry::Absent, Err(e), _) => {
            Decision::Report(Err(format!("NOT registered: health check failed: {e}")))
        }
        (Entry::Absent, Ok(()), Some(why)) => {
            Decision::Report(Err(format!("NOT registered: {why}")))
        }
        (
            Entry::Listed {
                state: State::Enabled,
                ..
            },
            Err(e),
            _,
        ) => Decision::SetState {
            to: State::Cordoned,
            then: Err(format!(
                "cordoned (no new meetings): health check failed: {e}"
            )),
            failed: format!("health check failed: {e}; cordoning failed too: "),
        },
        (Entry::Listed { state, .. }, Err(e), _) => {
            Decision::Report(Err(format!("left {state}: health check failed: {e}")))
        }
        (Entry::Listed { state, .. }, Ok(()), Some(why)) => {
            Decision::Report(Err(format!("left {state} and unchanged: {why}")))
        }
    }
}

/// A registered, healthy node whose fields are right: enabled unless the journal holds it or
/// someone outside rollout took it out (`outside`).
fn settle(
    state: State,
    held: Option<String>,
    outside: Option<&str>,
    updated: Option<&[&str]>,
) -> Decision {
    let mut text: Vec<String> = updated
        .map(|f| format!("updated {}", f.join(", ")))
        .into_iter()
        .collect();
    match (state, held) {
        (State::Enabled, _) => {
            text.push(if text.is_empty() {
                "unchanged (enabled)".into()
            } else {
                "enabled".into()
            });
            Decision::Report(Ok(text.join("; ")))
        }
        (st, Some(h)) => {
            text.push(format!("left {st}: {h}"));
            Decision::Report(Ok(text.join("; ")))
        }
        (st, None) if outside.is_some() => {
            text.push(format!("left {st}: {}", outside.unwrap_or_default()));
            Decision::Report(Ok(text.join("; ")))
        }
        (st, None) => {
            text.push(format!("enabled (was {st})"));
            Decision::SetState {
                to: State::Enabled,
                then: Ok(text.join("; ")),
                failed: String::new(),
            }
        }
    }
}

#[cfg(test)]
#[path = "registration_tests.rs"]
mod tests;
