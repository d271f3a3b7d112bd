//! Which nodes go into the upgrade's next batch. The batch takes nodes from the front of the
//! queue, up to its slots (the batch size: failed nodes do not shrink it, see
//! [`super::failures`]); a node the balancer has in
//! service costs one node of capacity, and the pool never drops below
//! `balancer.min_in_service`. A node out of service already (cordoned, disabled, offline,
//! unregistered) costs nothing. The queue keeps its order: the batch ends at the first node
//! that would cost too much, even when a later one would cost nothing.

use super::stop::Stop;

/// A queued node as the balancer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued<'a> {
    /// The inventory name.
    pub host: &'a str,
    /// Its balancer entry takes new meetings and is not offline (see `Server::in_service`).
    pub in_service: bool,
}

/// The pool's capacity as the balancer lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Servers the balancer has in service, all of them, not only the queued ones.
    pub in_service: usize,
    /// `balancer.min_in_service`.
    pub min_in_service: usize,
}

/// How many nodes from the front of `queue` the next batch takes, given its `slots`;
/// [`Stop::MinInService`] when it can take none.
pub fn next_batch(slots: usize, capacity: Capacity, queue: &[Queued<'_>]) -> Result<usize, Stop> {
    let mut in_service = capacity.in_service;
    let mut taken = 0;
    for node in queue.iter().take(slots) {
        if node.in_service {
            if in_service <= capacity.min_in_service {
                break;
            }
            in_service -= 1;
        }
        taken += 1;
    }
    if taken == 0 {
        return Err(Stop::MinInService {
            host: queue.first().map_or("", |n| n.host).to_string(),
            min: capacity.min_in_service,
        });
    }
    Ok(taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `"ioi"`: three queued nodes, in service, out of service, in service.
    fn queue(flags: &str) -> Vec<Queued<'static>> {
        const HOSTS: [&str; 6] = ["h01", "h02", "h03", "h04", "h05", "h06"];
        flags
            .chars()
            .zip(HOSTS)
            .map(|(c, host)| Queued {
                host,
                in_service: c == 'i',
            })
            .collect()
    }

    #[test]
    fn next_batch_table() {
        // (slots, in service in the balancer, min_in_service, queue) -> nodes taken (0: stop)
        let rows: &[(usize, usize, usize, &str, usize)] = &[
            // slots bound the batch
            (1, 6, 0, "iiiiii", 1),
            (2, 6, 0, "iiiiii", 2),
            (6, 6, 0, "iiiiii", 6),
            (8, 6, 0, "iiiiii", 6),
            (2, 6, 0, "i", 1),
            // the minimum bounds it
            (2, 6, 5, "iiiiii", 1),
            (3, 6, 4, "iiiiii", 2),
            (2, 6, 6, "iiiiii", 0),
            (2, 2, 2, "ii", 0),
            (2, 1, 1, "i", 0),
            (1, 1, 0, "i", 1), // min 0: the last node in service may go
            // nodes out of service cost nothing
            (2, 4, 4, "oo", 2),
            (3, 4, 4, "ooi", 2),
            (3, 5, 4, "oio", 3),
            (2, 0, 3, "oo", 2),
            // the batch ends at the first node that costs too much
            (3, 4, 4, "ioo", 0),
            (3, 5, 4, "iio", 1),
            // the count includes servers outside the queue
            (2, 10, 8, "ii", 2),
            (2, 9, 8, "ii", 1),
        ];
        for &(slots, in_service, min, flags, want) in rows {
            let q = queue(flags);
            let capacity = Capacity {
                in_service,
                min_in_service: min,
            };
            let got = next_batch(slots, capacity, &q);
            let row = format!("slots {slots}, in service {in_service}, min {min}, {flags}");
            if want == 0 {
                assert_eq!(
                    got,
                    Err(Stop::MinInService {
                        host: "h01".into(),
                        min
                    }),
                    "{row}"
                );
            } else {
                assert_eq!(got, Ok(want), "{row}");
            }
        }
    }
}
