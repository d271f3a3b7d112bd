//! The failure budget of an upgrade (`--max-failures`), as Ansible's `max_fail_percentage`
//! works with `serial`: a node that fails stays cordoned (out of service, reported) and
//! counts against the budget; the following batches keep their full size, and the run goes
//! on while no more than `--max-failures` nodes failed and capacity
//! (`balancer.min_in_service`, which counts the failed nodes as out of service) allows.
//!
//! So at most `batch size + --max-failures` nodes are out of service because of one run,
//! and never fewer than `min_in_service` nodes are in service.

use super::stop::Stop;

/// After a batch: [`Stop::TooManyFailures`] once `failed` exceeds `--max-failures`.
pub fn check(failed: usize, max_failures: usize) -> Result<(), Stop> {
    if failed > max_failures {
        return Err(Stop::TooManyFailures {
            failed,
            max: max_failures,
        });
    }
    Ok(())
}

/// What the pool looks like before an upgrade starts, for [`reachable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outlook {
    /// Servers the balancer has in service now, plus the queued nodes that are out of
    /// service now and come back once upgraded: the most that can ever be in service.
    pub potential_in_service: usize,
    /// `balancer.min_in_service`.
    pub min_in_service: usize,
    /// Nodes the run still has to upgrade.
    pub queued: usize,
}

/// Why a `--max-failures` value is refused before anything is touched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--max-failures {max} cannot take effect: with {potential} node(s) in service at most and \
     balancer.min_in_service {min}, the upgrade stops for capacity once {capacity} node(s) failed \
     (failed nodes stay cordoned) while {queued} node(s) are queued; use --max-failures {fit} \
     or less, or lower balancer.min_in_service"
)]
pub struct Unreachable {
    /// `--max-failures`.
    pub max: usize,
    /// [`Outlook::potential_in_service`].
    pub potential: usize,
    /// `balancer.min_in_service`.
    pub min: usize,
    /// Failures after which no node can be taken out any more.
    pub capacity: usize,
    /// [`Outlook::queued`].
    pub queued: usize,
    /// The largest budget that can take effect.
    pub fit: usize,
}

/// Whether a budget of `max_failures` can take effect: after `k` failed nodes (cordoned for
/// the rest of the run) the next batch needs `potential - k > min_in_service`, so the run
/// goes on after at most `potential - min - 1` failures. A larger budget that the queue could
/// use up (capacity runs out while nodes are still queued) would be a promise the run cannot
/// keep: refused (exit 2). `0` (the default) is always accepted: a pool with no capacity
/// left stops on `min_in_service` with its own reason.
pub fn reachable(max_failures: usize, o: Outlook) -> Result<(), Unreachable> {
    let capacity = o.potential_in_service.saturating_sub(o.min_in_service);
    if max_failures == 0 || max_failures < capacity || capacity >= o.queued {
        return Ok(());
    }
    Err(Unreachable {
        max: max_failures,
        potential: o.potential_in_service,
        min: o.min_in_service,
        capacity,
        queued: o.queued,
        fit: capacity.saturating_sub(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_table() {
        // (failed so far, --max-failures) -> the run goes on
        let rows: &[(usize, usize, bool)] = &[
            (0, 0, true),
            (1, 0, false), // the default stops at the first failure
            (1, 1, true),
            (2, 1, false),
            (2, 3, true),
            (3, 3, true),
            (4, 3, false),
        ];
        for &(failed, max, goes_on) in rows {
            let got = check(failed, max);
            if goes_on {
                assert_eq!(got, Ok(()), "failed {failed}, max {max}");
            } else {
                assert_eq!(
                    got,
                    Err(Stop::TooManyFailures { failed, max }),
                    "failed {failed}, max {max}"
                );
            }
        }
    }

    #[test]
    fn reachable_table() {
        // (--max-failures, potential in service, min_in_service, queued) -> accepted
        let rows: &[(usize, usize, usize, usize, bool)] = &[
            (0, 6, 6, 6, true), // the default: capacity stops the run with its own reason
            (1, 6, 0, 6, true),
            (5, 6, 0, 6, true),  // after 5 failures one node is still in service
            (6, 6, 0, 6, true),  // every node may fail: nothing is left queued to stop for
            (9, 6, 0, 6, true),  // a budget larger than the queue never stops the run
            (2, 6, 4, 6, false), // 2 failures leave 4 = min in service: no node can go
            (1, 6, 4, 6, true),
            (3, 4, 1, 4, false),
            (2, 4, 1, 4, true),
            (1, 2, 1, 2, false), // a 2-node pool with min 1 cannot go on after a failure
            (1, 2, 0, 2, true),
            (3, 10, 8, 2, true), // servers outside the queue count as capacity
            (2, 10, 9, 2, false),
            (1, 10, 0, 2, true),
            (4, 3, 3, 2, false), // no capacity at all
        ];
        for &(max, potential, min, queued, ok) in rows {
            let got = reachable(
                max,
                Outlook {
                    potential_in_service: potential,
                    min_in_service: min,
                    queued,
                },
            );
            assert_eq!(
                got.is_ok(),
                ok,
                "max {max}, potential {potential}, min {min}, queued {queued}: {got:?}"
            );
        }
        let e = reachable(
            2,
            Outlook {
                potential_in_service: 6,
                min_in_service: 4,
                queued: 6,
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--max-failures 2 cannot take effect: with 6 node(s) in service at most and \
             balancer.min_in_service 4, the upgrade stops for capacity once 2 node(s) failed \
             (failed nodes stay cordoned) while 6 node(s) are queued; use --max-failures 1 or \
             less, or lower balancer.min_in_service"
        );
    }
}
