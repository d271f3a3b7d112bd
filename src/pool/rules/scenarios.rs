//! Whole upgrades played through the rules alone, as `upgrade::run` chains them (batch size,
//! next batch, failure check, batch after batch): the batches the lab tests expect come out
//! without a lab.

use super::failures;
use super::next_batch::{Capacity, Queued, next_batch};
use super::stop::Stop;
use crate::pool::batch::Batches;

const HOSTS: [&str; 8] = ["h01", "h02", "h03", "h04", "h05", "h06", "h07", "h08"];

/// Plays an upgrade of `n` nodes, all in service, where the nodes in `failing` fail (and stay
/// out of service); the batches (node indices) and why it stopped.
fn play(
    n: usize,
    spec: &str,
    min: usize,
    failing: &[usize],
    max_failures: usize,
) -> (Vec<Vec<usize>>, Option<Stop>) {
    let batches = Batches::parse(spec).unwrap();
    let mut queue: Vec<usize> = (0..n).collect();
    let mut failed: Vec<usize> = Vec::new();
    let mut played = Vec::new();
    let mut index = 0;
    while !queue.is_empty() {
        let capacity = Capacity {
            in_service: n - failed.len(),
            min_in_service: min,
        };
        let queued: Vec<Queued> = queue
            .iter()
            .map(|&i| Queued {
                host: HOSTS[i],
                in_service: true,
            })
            .collect();
        let step = next_batch(batches.size(index, n), capacity, &queued);
        let taken = match step {
            Ok(t) => t,
            Err(stop) => return (played, Some(stop)),
        };
        let batch: Vec<usize> = queue.drain(..taken).collect();
        failed.extend(batch.iter().filter(|i| failing.contains(i)));
        played.push(batch);
        if let Err(stop) = failures::check(failed.len(), max_failures) {
            return (played, Some(stop));
        }
        index += 1;
    }
    (played, None)
}

#[test]
fn batches_of_two_go_through() {
    let (played, stop) = play(6, "2", 0, &[], 0);
    assert_eq!(played, vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
    assert_eq!(stop, None);
}

#[test]
fn the_first_failure_stops_by_default() {
    // tests/pool_upgrade.rs: h03 fails; h05 and h06 are not started.
    let (played, stop) = play(6, "2", 0, &[2], 0);
    assert_eq!(played, vec![vec![0, 1], vec![2, 3]]);
    assert_eq!(stop, Some(Stop::TooManyFailures { failed: 1, max: 0 }));
}

#[test]
fn batches_keep_their_size_after_a_failure() {
    // tests/pool_upgrade.rs: h02 and h05 fail with --max-failures 1.
    let (played, stop) = play(6, "2", 0, &[1, 4], 1);
    assert_eq!(played, vec![vec![0, 1], vec![2, 3], vec![4, 5]]);
    assert_eq!(stop, Some(Stop::TooManyFailures { failed: 2, max: 1 }));
}

#[test]
fn max_failures_takes_effect_with_batch_size_one() {
    let (played, stop) = play(4, "1", 0, &[1], 3);
    assert_eq!(played, vec![vec![0], vec![1], vec![2], vec![3]]);
    assert_eq!(stop, None);
    let (played, stop) = play(4, "1", 0, &[0, 1], 1);
    assert_eq!(played, vec![vec![0], vec![1]]);
    assert_eq!(stop, Some(Stop::TooManyFailures { failed: 2, max: 1 }));
}

#[test]
fn failed_nodes_count_against_the_minimum_in_service() {
    // 4 nodes, min 2, budget 1: h01 fails and stays cordoned (3 in service); each later node
    // leaves 2 in service while it is upgraded, then comes back.
    let (played, stop) = play(4, "1", 2, &[0], 1);
    assert_eq!(played, vec![vec![0], vec![1], vec![2], vec![3]]);
    assert_eq!(stop, None);
    // With min 3 the failed h01 leaves no capacity: the run would stop for capacity, so the
    // budget of 1 cannot take effect and is refused before anything is touched.
    let (played, stop) = play(4, "1", 3, &[0], 1);
    assert_eq!(played, vec![vec![0]]);
    assert_eq!(
        stop,
        Some(Stop::MinInService {
            host: "h02".into(),
            min: 3
        })
    );
    let outlook = failures::Outlook {
        potential_in_service: 4,
        min_in_service: 3,
        queued: 4,
    };
    assert!(failures::reachable(1, outlook).is_err());
    assert!(failures::reachable(0, outlook).is_ok());
}

#[test]
fn the_minimum_in_service_shrinks_batches() {
    let (played, stop) = play(6, "3", 5, &[], 0);
    assert_eq!(played, (0..6).map(|i| vec![i]).collect::<Vec<_>>());
    assert_eq!(stop, None);
    let (played, stop) = play(2, "1", 2, &[], 0);
    assert!(played.is_empty());
    assert_eq!(
        stop,
        Some(Stop::MinInService {
            host: "h01".into(),
            min: 2
        })
    );
}

#[test]
fn growing_batches_start_with_a_canary() {
    let (played, stop) = play(8, "1,50%", 0, &[], 0);
    assert_eq!(played, vec![vec![0], vec![1, 2, 3, 4], vec![5, 6, 7]]);
    assert_eq!(stop, None);
}
