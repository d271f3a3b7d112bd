//! Hands off what a person did: a node that someone other than rollout cordoned or disabled
//! in the balancer (hardware trouble, an investigation: `rake servers:cordon`,
//! `rake servers:disable`, `b3scalectl disable backend`) stays so after `rollout apply`,
//! after an `undrain` of other nodes and through an `upgrade`, which skips it. Only the
//! operator naming it (`rollout undrain --limit NODE`) puts it back.
//!
//! rollout writes into its journal every cordon, enable and add it does (who, where, which
//! command, when: [`crate::pool::journal::StateMark`]) before doing it; a node out of service
//! in the balancer is rollout's doing only when the journal says so.

use crate::balancer::State;
use crate::pool::journal::{SetBy, StateMark};

/// Whose doing a node's balancer state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Enabled: nothing to keep.
    InService,
    /// Out of service because rollout took it out (a drain, an upgrade, a failed health
    /// check, an add): rollout may put it back.
    Rollout,
    /// Out of service, and rollout did not do it: a person's; left as it is.
    Person,
}

/// The rule. `state`: the node's state in the balancer now; `mark`: the journal's record of
/// who set its state last; `held`: the journal holds the node out of service in a phase of
/// a rollout command (draining, drained, applying, health check, enabling, failed).
///
/// A record of rollout setting `cordoned` or `disabled` covers both states, because
/// Scalelite's poller turns a cordoned server without load into a disabled one and b3scale
/// has one state (`stopped`) for both.
pub fn owner(state: State, mark: Option<&StateMark>, held: bool) -> Owner {
    if state == State::Enabled {
        return Owner::InService;
    }
    if held {
        return Owner::Rollout;
    }
    match mark {
        Some(StateMark {
            state: set,
            by: SetBy::Rollout { .. },
            ..
        }) if set != "enabled" => Owner::Rollout,
        _ => Owner::Person,
    }
}

/// Whether `limit` (`--limit`, Ansible's host patterns) names `host` itself as one of its
/// plain patterns, not only through a group, glob or `@FILE` it is in.
pub fn names(limit: Option<&str>, host: &str) -> bool {
    crate::inventory::names_host(limit, host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::{Cordoned, Disabled, Enabled};

    fn by_rollout(state: &str) -> StateMark {
        StateMark {
            state: state.into(),
            at: 1,
            by: SetBy::Rollout {
                user: "alice".into(),
                host: "ctl1".into(),
                command: "rollout drain".into(),
            },
        }
    }

    fn found(state: &str) -> StateMark {
        StateMark {
            state: state.into(),
            at: 1,
            by: SetBy::Found,
        }
    }

    #[test]
    fn owner_table() {
        // (balancer state, journal's record, held by a rollout phase) -> owner
        #[rustfmt::skip]
        let rows: Vec<(State, Option<StateMark>, bool, Owner)> = vec![
            (Enabled, None, false, Owner::InService),
            (Enabled, Some(found("cordoned")), false, Owner::InService),
            (Enabled, Some(by_rollout("cordoned")), true, Owner::InService),
            // rollout took it out
            (Cordoned, Some(by_rollout("cordoned")), false, Owner::Rollout),
            (Disabled, Some(by_rollout("cordoned")), false, Owner::Rollout), // the poller's step
            (Cordoned, Some(by_rollout("disabled")), false, Owner::Rollout), // added, b3scale
            (Disabled, Some(by_rollout("disabled")), false, Owner::Rollout),
            (Cordoned, None, true, Owner::Rollout),        // a drain or upgrade holds it
            (Disabled, Some(found("disabled")), true, Owner::Rollout),
            // a person's
            (Cordoned, None, false, Owner::Person),         // never set by rollout
            (Disabled, None, false, Owner::Person),
            (Cordoned, Some(by_rollout("enabled")), false, Owner::Person), // after rollout enabled it
            (Disabled, Some(by_rollout("enabled")), false, Owner::Person),
            (Cordoned, Some(found("cordoned")), false, Owner::Person),
            (Disabled, Some(found("cordoned")), false, Owner::Person),
        ];
        for (state, mark, held, want) in rows {
            assert_eq!(
                owner(state, mark.as_ref(), held),
                want,
                "{state}, {mark:?}, held {held}"
            );
        }
    }

    #[test]
    fn a_node_is_named_only_by_its_own_name() {
        assert!(names(Some("h02"), "h02"));
        assert!(names(Some("h01, h02"), "h02"));
        assert!(!names(Some("bbb"), "h02"));
        assert!(!names(Some("!h02,bbb"), "h02"));
        assert!(!names(Some("h020"), "h02"));
        assert!(!names(None, "h02"));
    }
}
