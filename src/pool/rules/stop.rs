//! Why an upgrade stops before its queue is empty. The text is what `rollout upgrade`
//! prints after `stopped: `, so it is part of the output contract.

use std::fmt;

/// A reason for the upgrade to take no further batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Taking the next node would leave fewer nodes in service than the minimum.
    MinInService {
        /// The node at the front of the queue.
        host: String,
        /// `balancer.min_in_service`.
        min: usize,
    },
    /// More nodes failed than `--max-failures` allows.
    TooManyFailures {
        /// Nodes failed so far in this run.
        failed: usize,
        /// `--max-failures`.
        max: usize,
    },
    /// The balancer could not be read; its message, without secrets.
    Balancer(String),
    /// The operator answered no to `--pause`.
    Operator,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::MinInService { host, min } => write!(
                f,
                "draining {host} would leave fewer than balancer.min_in_service ({min}) node(s) in service"
            ),
            Stop::TooManyFailures { failed, max } => {
                write!(f, "{failed} node(s) failed, more than --max-failures {max}")
            }
            Stop::Balancer(e) => f.write_str(e),
            Stop::Operator => f.write_str("stopped at the operator's request"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_as_before() {
        let rows = [
            (
                Stop::MinInService {
                    host: "h03".into(),
                    min: 2,
                },
                "draining h03 would leave fewer than balancer.min_in_service (2) node(s) in service",
            ),
            (
                Stop::TooManyFailures { failed: 2, max: 1 },
                "2 node(s) failed, more than --max-failures 1",
            ),
            (
                Stop::Balancer("Scalelite: timed out".into()),
                "Scalelite: timed out",
            ),
            (Stop::Operator, "stopped at the operator's request"),
        ];
        for (stop, text) in rows {
            assert_eq!(stop.to_string(), text);
        }
    }
}
