//! When a drain is over. A drained node is watched through its own BBB API until it lists no
//! meeting; the wait may give up after `--timeout` (the node stays cordoned), and with
//! `--force` the meetings left are ended once, when the timeout expires (at once without
//! one), after which the wait lasts at most [`FORCE_GRACE`] more for the API to agree.
//!
//! The API alone does not prove a node empty: bbb-web keeps its meetings only in memory,
//! and a bbb-web restarted under a class (by hand, or after a crash) lists none of the
//! meetings akka-apps and FreeSWITCH carry on with, for the rest of their lives
//! (docs/sources.md, "bbb-web restarted under a class"). So an empty `getMeetings` is
//! checked against akka-apps' own count ([`Meetings::Forgotten`]); a count that cannot be
//! read is no proof either ([`Meetings::Unreadable`]).

use crate::balancer::State;
use std::time::Duration;

/// How to wait.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    /// Between two looks at the node's meetings (`balancer.poll_interval`).
    pub poll: Duration,
    /// Give up after this long; `None` waits for as long as it takes.
    pub timeout: Option<Duration>,
    /// End the meetings left (`--force`).
    pub force: bool,
}

/// After `--force` ended the meetings, how long the node's API may still list some before
/// the drain gives up (an end request the node accepted but did not carry out).
pub const FORCE_GRACE: Duration = Duration::from_secs(30);

/// The shortest pause between looks, so a deadline a few milliseconds away is not a busy loop.
const MIN_PAUSE: Duration = Duration::from_millis(50);

/// The pause between looks once the meetings were ended: the API should agree quickly.
const FORCED_PAUSE: Duration = Duration::from_millis(500);

/// What the node's API said on the last look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meetings {
    /// No meeting left.
    NoneLeft,
    /// Meetings still run.
    Running,
    /// The meetings could not be read (also: bbb-web lists none, but akka-apps' count of
    /// them could not be read).
    Unreadable,
    /// bbb-web lists no meeting, but akka-apps still holds some: classes a restarted bbb-web
    /// forgot. They run on; the API can neither list nor end them.
    Forgotten,
}

/// How long asking the node for akka-apps' count of meetings may take (one SSH round trip
/// and a database query) before the look counts as [`Meetings::Unreadable`].
pub const AKKA_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the look saw, from `getMeetings` (`listed`: how many meetings it lists, `None` when
/// it could not be read) and, when it lists none, akka-apps' count (`akka`: `None` when
/// the node has no `bbb_akka_meetings_command`, `Some(Err)` when the count could not be
/// read).
pub fn seen(listed: Option<usize>, akka: Option<Result<u64, ()>>) -> Meetings {
    match (listed, akka) {
        (None, _) => Meetings::Unreadable,
        (Some(n), _) if n > 0 => Meetings::Running,
        (Some(_), None | Some(Ok(0))) => Meetings::NoneLeft,
        (Some(_), Some(Ok(_))) => Meetings::Forgotten,
        (Some(_), Some(Err(()))) => Meetings::Unreadable,
    }
}

/// A node the balancer sends no meetings to (not registered, or disabled) need not be waited
/// for when its API does not answer: waiting would only stall the upgrade that repairs it.
/// `entry` is its balancer state, `None` when it is not registered. A cordoned node may
/// still carry meetings, so it is always waited for.
pub fn may_skip_wait(entry: Option<State>) -> bool {
    matches!(entry, None | Some(State::Disabled))
}

/// What the wait does after a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Look again after [`pause`].
    Continue,
    /// Drained: no meeting left.
    Done,
    /// Give up; the node stays cordoned.
    TimedOut,
    /// End the meetings left (once), then look again.
    ForceEnd,
}

/// The rule: `seen` after `waited` since the drain began; `since_forced` is how long ago the
/// meetings were ended, when they were. Only [`Meetings::NoneLeft`] ends a drain; only
/// meetings the API lists can be ended with `--force` (a forgotten class is waited for like
/// one whose meetings cannot be read).
pub fn verdict(
    w: &Watch,
    seen: Meetings,
    waited: Duration,
    since_forced: Option<Duration>,
) -> Decision {
    if seen == Meetings::NoneLeft {
        return Decision::Done;
    }
    let expired = w.timeout.is_none_or(|t| waited >= t);
    let timed_out = w.timeout.is_some_and(|t| waited >= t);
    let forced = since_forced.is_some();
    let force_gave_up = since_forced.is_some_and(|f| f >= FORCE_GRACE);
    if w.force && expired && !forced && seen == Meetings::Running {
        Decision::ForceEnd
    } else if (timed_out && !forced) || force_gave_up {
        Decision::TimedOut
    } else {
        Decision::Continue
    }
}

/// How long to wait before the next look: the poll interval, but not past the timeout, and
/// shorter once the meetings were ended (`forced`).
pub fn pause(w: &Watch, waited: Duration, forced: bool) -> Duration {
    let mut pause = w.poll;
    if let Some(t) = w.timeout {
        pause = pause.min(t.saturating_sub(waited).max(MIN_PAUSE));
    }
    if forced {
        pause = pause.min(FORCED_PAUSE);
    }
    pause
}

#[cfg(test)]
mod tests {
    use super::*;
    use Decision::{Continue, Done, ForceEnd, TimedOut};
    use Meetings::{Forgotten, NoneLeft, Running, Unreadable};

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn watch(poll: f64, timeout: Option<f64>, force: bool) -> Watch {
        Watch {
            poll: secs(poll),
            timeout: timeout.map(secs),
            force,
        }
    }

    #[test]
    fn verdict_table() {
        // (timeout, --force, seen, waited, since forced) -> verdict
        type Row = (Option<f64>, bool, Meetings, f64, Option<f64>, Decision);
        #[rustfmt::skip]
        let rows: &[Row] = &[
            // no meeting left ends the drain, whatever else holds
            (None, false, NoneLeft, 0.0, None, Done),
            (Some(60.0), false, NoneLeft, 90.0, None, Done),
            (None, true, NoneLeft, 5.0, Some(1.0), Done),
            (Some(60.0), true, NoneLeft, 200.0, Some(40.0), Done),
            // without --force: wait, give up at the timeout
            (None, false, Running, 10.0, None, Continue),
            (None, false, Running, 36_000.0, None, Continue),
            (Some(60.0), false, Running, 10.0, None, Continue),
            (Some(60.0), false, Running, 60.0, None, TimedOut),
            (Some(60.0), false, Running, 90.0, None, TimedOut),
            (None, false, Unreadable, 10.0, None, Continue),
            (Some(60.0), false, Unreadable, 10.0, None, Continue),
            (Some(60.0), false, Unreadable, 60.0, None, TimedOut),
            // --force ends the meetings once the timeout expires (at once without one)
            (None, true, Running, 0.0, None, ForceEnd),
            (Some(60.0), true, Running, 10.0, None, Continue),
            (Some(60.0), true, Running, 60.0, None, ForceEnd),
            (Some(60.0), true, Running, 90.0, None, ForceEnd),
            // ... but only meetings it could read
            (None, true, Unreadable, 10.0, None, Continue),
            (Some(60.0), true, Unreadable, 10.0, None, Continue),
            (Some(60.0), true, Unreadable, 60.0, None, TimedOut),
            // after ending them: wait up to the grace, past the timeout too
            (None, true, Running, 10.0, Some(10.0), Continue),
            (None, true, Running, 40.0, Some(30.0), TimedOut),
            (Some(60.0), true, Running, 90.0, Some(10.0), Continue),
            (Some(60.0), true, Running, 120.0, Some(31.0), TimedOut),
            (None, true, Unreadable, 20.0, Some(10.0), Continue),
            (Some(60.0), true, Unreadable, 100.0, Some(40.0), TimedOut),
            // a class bbb-web forgot is never an empty node, and --force cannot end it
            (None, false, Forgotten, 36_000.0, None, Continue),
            (Some(60.0), false, Forgotten, 10.0, None, Continue),
            (Some(60.0), false, Forgotten, 60.0, None, TimedOut),
            (None, true, Forgotten, 0.0, None, Continue),
            (Some(60.0), true, Forgotten, 60.0, None, TimedOut),
            (None, true, Forgotten, 40.0, Some(31.0), TimedOut),
        ];
        for &(timeout, force, seen, waited, since_forced, want) in rows {
            let w = watch(5.0, timeout, force);
            let got = verdict(&w, seen, secs(waited), since_forced.map(secs));
            assert_eq!(
                got, want,
                "timeout {timeout:?}, force {force}, {seen:?} after {waited}s, forced {since_forced:?}"
            );
        }
    }

    #[test]
    fn seen_table() {
        // (getMeetings lists, akka-apps holds) -> seen
        type Row = (Option<usize>, Option<Result<u64, ()>>, Meetings);
        #[rustfmt::skip]
        let rows: &[Row] = &[
            (Some(0), None, NoneLeft),
            (Some(0), Some(Ok(0)), NoneLeft),
            (Some(0), Some(Ok(2)), Forgotten),
            (Some(0), Some(Err(())), Unreadable),
            (Some(1), None, Running),
            (Some(1), Some(Ok(0)), Running),
            (Some(3), Some(Ok(5)), Running),
            (None, None, Unreadable),
            (None, Some(Ok(0)), Unreadable),
        ];
        for &(listed, akka, want) in rows {
            assert_eq!(seen(listed, akka), want, "{listed:?} listed, akka {akka:?}");
        }
    }

    #[test]
    fn may_skip_wait_table() {
        let rows = [
            (None, true),
            (Some(State::Disabled), true),
            (Some(State::Cordoned), false),
            (Some(State::Enabled), false),
        ];
        for (entry, want) in rows {
            assert_eq!(may_skip_wait(entry), want, "{entry:?}");
        }
    }

    #[test]
    fn pause_table() {
        // (poll, timeout, waited, forced) -> pause, seconds
        #[rustfmt::skip]
        let rows: &[(f64, Option<f64>, f64, bool, f64)] = &[
            (5.0, None, 10.0, false, 5.0),
            (5.0, Some(60.0), 10.0, false, 5.0),
            (5.0, Some(60.0), 58.0, false, 2.0),
            (5.0, Some(60.0), 60.0, false, 0.05),
            (5.0, Some(60.0), 90.0, false, 0.05),
            (5.0, None, 10.0, true, 0.5),
            (0.2, None, 10.0, true, 0.2),
            (5.0, Some(60.0), 59.9, true, 0.1),
            (5.0, Some(60.0), 90.0, true, 0.05),
        ];
        for &(poll, timeout, waited, forced, want) in rows {
            let got = pause(&watch(poll, timeout, false), secs(waited), forced);
            assert!(
                got.abs_diff(secs(want)) < Duration::from_micros(1),
                "poll {poll}, timeout {timeout:?}, waited {waited}, forced {forced}: {got:?}"
            );
        }
    }
}
