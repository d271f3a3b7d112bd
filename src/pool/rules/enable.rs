//! Whether an upgraded, healthy node goes back into service. The upgrade enables a node again
//! only when it found it enabled, or not registered at all (a new node joins the pool); a
//! node an operator had cordoned or disabled before the run stays that way.

use crate::balancer::State;

/// What to do with an upgraded node's balancer entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Back {
    /// Set it to enabled.
    Enable,
    /// It is enabled already.
    Enabled,
    /// Leave its state as the operator had it.
    AsBefore,
}

/// The rule: `was` is the state the run found the node in (`enabled`, `cordoned`,
/// `disabled`, `unregistered`, as the journal keeps it), `now` its state after the upgrade
/// registered it.
pub fn after_upgrade(was: &str, now: State) -> Back {
    match (was, now) {
        ("enabled" | "unregistered", State::Enabled) => Back::Enabled,
        ("enabled" | "unregistered", _) => Back::Enable,
        _ => Back::AsBefore,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::{Cordoned, Disabled, Enabled};

    #[test]
    fn after_upgrade_table() {
        // (state the run found, state after the upgrade) -> what to do
        #[rustfmt::skip]
        let rows = [
            ("enabled", Enabled, Back::Enabled),
            ("enabled", Cordoned, Back::Enable),
            ("enabled", Disabled, Back::Enable),
            ("unregistered", Enabled, Back::Enabled),
            ("unregistered", Cordoned, Back::Enable),
            ("unregistered", Disabled, Back::Enable),
            ("cordoned", Enabled, Back::AsBefore),
            ("cordoned", Cordoned, Back::AsBefore),
            ("cordoned", Disabled, Back::AsBefore),
            ("disabled", Enabled, Back::AsBefore),
            ("disabled", Disabled, Back::AsBefore),
            ("", Disabled, Back::AsBefore),
        ];
        for (was, now, want) in rows {
            assert_eq!(after_upgrade(was, now), want, "was {was}, now {now}");
        }
    }
}
