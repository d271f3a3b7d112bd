//! In which order the upgrade takes its queued nodes: the one that drains fastest first, so
//! the pool spends less time with nodes cordoned and waiting. Before each batch the upgrade
//! reads every queued node's meetings (`getMeetings`: `participantCount`, and `startTime` +
//! `duration` for the end BBB itself gives a meeting) and asks [`order`]; the batch rules
//! ([`super::next_batch`]) then take nodes from the front of that order as before.
//!
//! The order, first to last:
//!
//! | rank | the node | among equals |
//! |---|---|---|
//! | 0 | left out of service by an earlier, killed invocation ([`super::resume`]) | queue order |
//! | 1 | no meeting | queue order |
//! | 2 | every meeting has a scheduled end (`duration` > 0, started) | latest end first to come, then fewest participants |
//! | 3 | a meeting without a scheduled end | fewest participants, then fewest meetings |
//! | 4 | its meetings could not be read | queue order |
//!
//! A meeting with an end in sight ends at the latest then (BBB ends it when its duration is
//! over), while one without may go on all day; among those, fewer participants means a
//! smaller class, which ends (or is ended by its teacher) sooner on average, and a drain that
//! still has to wait cuts off fewer people when `--drain-timeout --force` ends it.

use std::cmp::Ordering;
use std::time::Duration;

/// What the last look at a queued node saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Left out of service by an earlier invocation of the same run: finish it first.
    Held,
    /// Its meetings, as `getMeetings` lists them.
    Meetings {
        /// How many meetings.
        meetings: usize,
        /// Their participants, all together (`participantCount`).
        participants: u64,
        /// How long until the last of them reaches its scheduled end (`startTime` +
        /// `duration`); `None` when any of them has none.
        last_end: Option<Duration>,
    },
    /// `getMeetings` could not be read.
    Unreadable,
}

impl Load {
    /// The rank of the table in the module's text, and what orders nodes within it.
    fn key(&self) -> (u8, Duration, u64, usize) {
        match *self {
            Load::Held => (0, Duration::ZERO, 0, 0),
            Load::Meetings { meetings: 0, .. } => (1, Duration::ZERO, 0, 0),
            Load::Meetings {
                meetings,
                participants,
                last_end: Some(end),
            } => (2, end, participants, meetings),
            Load::Meetings {
                meetings,
                participants,
                last_end: None,
            } => (3, Duration::ZERO, participants, meetings),
            Load::Unreadable => (4, Duration::ZERO, 0, 0),
        }
    }
}

/// The queue's indices, fastest to drain first; a stable order (equals keep their place).
pub fn order(loads: &[Load]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..loads.len()).collect();
    idx.sort_by(|&a, &b| cmp(&loads[a], &loads[b]).then(a.cmp(&b)));
    idx
}

fn cmp(a: &Load, b: &Load) -> Ordering {
    a.key().cmp(&b.key())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Load::{Held, Unreadable};

    fn busy(meetings: usize, participants: u64, end_min: Option<u64>) -> Load {
        Load::Meetings {
            meetings,
            participants,
            last_end: end_min.map(|m| Duration::from_secs(m * 60)),
        }
    }

    fn free() -> Load {
        busy(0, 0, None)
    }

    #[test]
    fn order_table() {
        // (queue, as loads) -> order of indices
        let rows: Vec<(Vec<Load>, Vec<usize>)> = vec![
            // empty nodes first, in queue order
            (vec![busy(1, 3, None), free(), free()], vec![1, 2, 0]),
            // fewest participants first
            (
                vec![busy(1, 30, None), busy(2, 4, None), busy(1, 12, None)],
                vec![1, 2, 0],
            ),
            // equal participants: fewer meetings first
            (vec![busy(3, 6, None), busy(1, 6, None)], vec![1, 0]),
            // a scheduled end comes before no end, whatever the class size
            (vec![busy(1, 2, None), busy(1, 40, Some(20))], vec![1, 0]),
            // the end closest first
            (
                vec![
                    busy(1, 5, Some(45)),
                    busy(2, 50, Some(10)),
                    busy(1, 1, Some(30)),
                ],
                vec![1, 2, 0],
            ),
            // same end: fewest participants
            (vec![busy(1, 9, Some(10)), busy(1, 3, Some(10))], vec![1, 0]),
            // a node held by a killed run stays first, even when it is busy
            (vec![free(), Held, busy(1, 1, Some(1))], vec![1, 0, 2]),
            // unreadable last
            (vec![Unreadable, busy(4, 200, None), free()], vec![2, 1, 0]),
            // all equal: queue order
            (vec![free(), free(), free()], vec![0, 1, 2]),
            (vec![], vec![]),
        ];
        for (loads, want) in rows {
            assert_eq!(order(&loads), want, "{loads:?}");
        }
    }
}
