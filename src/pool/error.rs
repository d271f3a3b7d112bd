//! Why a pool command (`drain`, `undrain`, `upgrade`, `status`) stopped before it could
//! report on its nodes. A node's own failure is not here: it is part of the command's
//! summary. The command layer maps these to exit codes and text in one place.

use super::batch::BatchSizeError;
use super::journal::JournalError;
use crate::balancer::BalancerError;
use crate::error::Diagnostic;

/// A pool command's error.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Bad inventory, roles or templates (exit 2, nothing contacted).
    #[error("{} input error(s)", .0.len())]
    Input(Vec<Diagnostic>),
    /// A command-line value the command cannot use (exit 2, nothing contacted).
    #[error("{0}")]
    Usage(String),
    /// `--batch-size` (exit 2, nothing contacted).
    #[error(transparent)]
    BatchSize(#[from] BatchSizeError),
    /// The journal or its lock (exit 1, nothing changed).
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The balancer could not be opened (exit 1, nothing changed).
    #[error("{0}; nothing was changed")]
    Balancer(#[from] BalancerError),
    /// Taking the nodes out would leave too few in service (exit 1, nothing changed).
    /// The text says what was refused and why (from the capacity rule).
    #[error("{0}")]
    Capacity(String),
    /// Ctrl-C during an upgrade (exit 130); `held` are the nodes left out of service.
    #[error(
        "interrupted; out of service: {}; `rollout upgrade` resumes where this stopped",
        if held.is_empty() { "none".to_string() } else { held.join(", ") }
    )]
    Interrupted { held: Vec<String> },
    /// The connection to the state database (and with it the pool's lock) was lost during
    /// an upgrade (exit 1); `held` are the nodes the journal says are out, as `host (phase)`.
    #[error(
        "lost the connection to the state database ({reason}), and with it the pool's lock: \
         the upgrade stopped and takes no further node out of service. Out of service, as the \
         journal says: {}. `rollout upgrade` resumes where this stopped once the database is back",
        if held.is_empty() { "none".to_string() } else { held.join(", ") }
    )]
    StateLost { reason: String, held: Vec<String> },
}

impl From<Vec<Diagnostic>> for PoolError {
    fn from(ds: Vec<Diagnostic>) -> PoolError {
        PoolError::Input(ds)
    }
}

/// Why one node's part of a pool command failed; shown on the node's line, counted in the
/// command's summary.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Balancer(#[from] BalancerError),
    /// Text already worded for the node's line (redacted).
    #[error("{0}")]
    Other(String),
}

impl From<String> for NodeError {
    fn from(text: String) -> NodeError {
        NodeError::Other(text)
    }
}

/// Why one node's upgrade stopped. The node stays out of service (cordoned) and the journal
/// records it as failed with this text.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeFailure {
    /// A phase failed: `phase` as the operator reads it ("drain", "apply failed", "health
    /// check failed", "enabling", ...), `reason` already in words.
    #[error("{phase}: {reason}; left out of service")]
    Phase {
        /// The phase, in words.
        phase: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A step marked `stage: true` failed before the node was cordoned: the node was not
    /// taken out of service and still serves classes; what failed, in words.
    #[error(
        "staging failed before the cordon: {0}; the node was not taken out and still serves classes"
    )]
    Staging(String),
    /// The journal could not be written, so the run cannot go on safely.
    #[error(transparent)]
    Journal(#[from] JournalError),
}
