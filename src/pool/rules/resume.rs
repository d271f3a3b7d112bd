//! The order an upgrade takes its nodes in. A run killed part-way left some nodes out of
//! service (draining, applying, failed, ...): they go first, so capacity comes back before
//! more nodes leave; nodes the run already finished are skipped; the rest follow in
//! inventory order.

use crate::pool::journal::Phase;

/// The nodes of one upgrade run, as indices into the pool's nodes (inventory order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Nodes still to upgrade, in the order the batches take them.
    pub queue: Vec<usize>,
    /// The nodes at the front of `queue` that the run left out of service.
    pub held: Vec<usize>,
    /// Nodes this run upgraded already.
    pub done: Vec<usize>,
}

/// Orders the nodes given each one's phase in the open run (`None`: not touched by it).
pub fn order(phases: &[Option<Phase>]) -> Order {
    let mut held = Vec::new();
    let mut rest = Vec::new();
    let mut done = Vec::new();
    for (i, phase) in phases.iter().enumerate() {
        match phase {
            Some(Phase::Done) => done.push(i),
            Some(p) if p.holds_node() => held.push(i),
            _ => rest.push(i),
        }
    }
    let mut queue = held.clone();
    queue.extend(rest);
    Order { queue, held, done }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase::*;

    #[test]
    fn every_phase_has_its_place() {
        // one node in the given phase, between two untouched ones -> (queue, held, done)
        type Row<'a> = (Option<Phase>, &'a [usize], &'a [usize], &'a [usize]);
        let rows: &[Row] = &[
            (None, &[0, 1, 2], &[], &[]),
            (Some(Idle), &[0, 1, 2], &[], &[]),
            (Some(Draining), &[1, 0, 2], &[1], &[]),
            (Some(Drained), &[1, 0, 2], &[1], &[]),
            (Some(Applying), &[1, 0, 2], &[1], &[]),
            (Some(HealthCheck), &[1, 0, 2], &[1], &[]),
            (Some(Enabling), &[1, 0, 2], &[1], &[]),
            (Some(Failed), &[1, 0, 2], &[1], &[]),
            (Some(Done), &[0, 2], &[], &[1]),
        ];
        for (phase, queue, held, done) in rows {
            let got = order(&[None, *phase, None]);
            let want = Order {
                queue: queue.to_vec(),
                held: held.to_vec(),
                done: done.to_vec(),
            };
            assert_eq!(got, want, "{phase:?}");
        }
    }

    #[test]
    fn held_nodes_keep_inventory_order_among_themselves() {
        let got = order(&[
            None,
            Some(Done),
            Some(Failed),
            None,
            Some(Applying),
            Some(Done),
        ]);
        assert_eq!(got.queue, vec![2, 4, 0, 3]);
        assert_eq!(got.held, vec![2, 4]);
        assert_eq!(got.done, vec![1, 5]);
        assert_eq!(order(&[]).queue, Vec::<usize>::new());
    }
}
