//! The registration rule, one row per situation that reads differently.

use super::*;
use State::{Cordoned, Disabled, Enabled};

const DRAIN: Option<Held<'static>> = Some(Held {
    phase: Phase::Drained,
    by: "drain",
});
const UPGRADE: Option<Held<'static>> = Some(Held {
    phase: Phase::Applying,
    by: "upgrade",
});
const HEALTHY: Result<(), &str> = Ok(());
const DOWN: Result<(), &str> = Err("down");

fn listed(state: State, differences: &[&'static str]) -> Entry {
    Entry::Listed {
        state,
        differences: differences.to_vec(),
    }
}

fn updated(state: State, fields: &[&'static str]) -> Entry {
    Entry::Updated {
        state,
        fields: fields.to_vec(),
    }
}

fn ok(text: &str) -> Decision {
    Decision::Report(Ok(text.into()))
}

fn failed(text: &str) -> Decision {
    Decision::Report(Err(text.into()))
}

fn enable(then: &str, failed: &str) -> Decision {
    Decision::SetState {
        to: Enabled,
        then: Ok(then.into()),
        failed: failed.into(),
    }
}

fn cordon_down() -> Decision {
    Decision::SetState {
        to: Cordoned,
        then: Err("cordoned (no new meetings): health check failed: down".into()),
        failed: "health check failed: down; cordoning failed too: ".into(),
    }
}

#[test]
fn registration_table() {
    use Applied::{Failed, Unreachable};
    const APPLIED: Applied = Applied::Ok;
    type Row = (
        Result<(), &'static str>,
        Applied,
        Entry,
        Option<Held<'static>>,
        Decision,
    );
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        // not registered yet
        (HEALTHY, APPLIED, Entry::Absent, None, Decision::Add),
        (HEALTHY, APPLIED, Entry::Absent, DRAIN, Decision::Add),
        (DOWN, APPLIED, Entry::Absent, None, failed("NOT registered: health check failed: down")),
        (DOWN, Failed, Entry::Absent, DRAIN, failed("NOT registered: health check failed: down")),
        (HEALTHY, Failed, Entry::Absent, None, failed("NOT registered: apply failed")),
        (HEALTHY, Unreachable, Entry::Absent, UPGRADE, failed("NOT registered: host unreachable")),
        // just added: enabled unless held
        (HEALTHY, APPLIED, Entry::Added { state: Disabled }, None, enable("registered and enabled", "registered, but not enabled: ")),
        (HEALTHY, APPLIED, Entry::Added { state: Enabled }, None, enable("registered and enabled", "registered, but not enabled: ")),
        (HEALTHY, APPLIED, Entry::Added { state: Disabled }, UPGRADE, ok("registered, left disabled: applying by rollout upgrade")),
        (HEALTHY, APPLIED, Entry::Added { state: Cordoned }, DRAIN, ok("registered, left cordoned: drained by rollout drain")),
        // registered, fields right
        (HEALTHY, APPLIED, listed(Enabled, &[]), None, ok("unchanged (enabled)")),
        (HEALTHY, APPLIED, listed(Enabled, &[]), DRAIN, ok("unchanged (enabled)")),
        (HEALTHY, APPLIED, listed(Cordoned, &[]), None, enable("enabled (was cordoned)", "")),
        (HEALTHY, APPLIED, listed(Disabled, &[]), None, enable("enabled (was disabled)", "")),
        (HEALTHY, APPLIED, listed(Cordoned, &[]), DRAIN, ok("left cordoned: drained by rollout drain")),
        (HEALTHY, APPLIED, listed(Disabled, &[]), UPGRADE, ok("left disabled: applying by rollout upgrade")),
        // registered, fields differ: update first, whatever the state or hold
        (HEALTHY, APPLIED, listed(Enabled, &["secret"]), None, Decision::Update(vec!["secret"])),
        (HEALTHY, APPLIED, listed(Cordoned, &["load multiplier", "tag"]), DRAIN, Decision::Update(vec!["load multiplier", "tag"])),
        // just updated
        (HEALTHY, APPLIED, updated(Enabled, &["secret"]), None, ok("updated secret; enabled")),
        (HEALTHY, APPLIED, updated(Enabled, &["secret", "tag"]), DRAIN, ok("updated secret, tag; enabled")),
        (HEALTHY, APPLIED, updated(Cordoned, &["tag"]), None, enable("updated tag; enabled (was cordoned)", "")),
        (HEALTHY, APPLIED, updated(Disabled, &["secret"]), DRAIN, ok("updated secret; left disabled: drained by rollout drain")),
        // registered, health check failed: an enabled node is cordoned, others left
        (DOWN, APPLIED, listed(Enabled, &[]), None, cordon_down()),
        (DOWN, Failed, listed(Enabled, &["secret"]), DRAIN, cordon_down()),
        (DOWN, APPLIED, listed(Cordoned, &[]), None, failed("left cordoned: health check failed: down")),
        (DOWN, Unreachable, listed(Disabled, &["tag"]), UPGRADE, failed("left disabled: health check failed: down")),
        // registered, healthy, apply failed: nothing changes
        (HEALTHY, Failed, listed(Enabled, &[]), None, failed("left enabled and unchanged: apply failed")),
        (HEALTHY, Unreachable, listed(Cordoned, &["secret"]), DRAIN, failed("left cordoned and unchanged: host unreachable")),
        (HEALTHY, Failed, listed(Disabled, &[]), None, failed("left disabled and unchanged: apply failed")),
    ];
    for (health, applied, entry, held, want) in rows {
        let seen = Seen {
            health,
            applied,
            entry,
            held,
            outside: None,
        };
        assert_eq!(decide(&seen), want, "{seen:?}");
    }
}

#[test]
fn a_node_someone_else_took_out_is_updated_but_left_out() {
    const BY_HAND: Option<&str> = Some("cordoned outside rollout (found so)");
    #[rustfmt::skip]
    let rows: Vec<(Entry, Option<Held<'static>>, Decision)> = vec![
        (listed(Cordoned, &[]), None, ok("left cordoned: cordoned outside rollout (found so)")),
        (listed(Disabled, &[]), None, ok("left disabled: cordoned outside rollout (found so)")),
        (listed(Cordoned, &["tag"]), None, Decision::Update(vec!["tag"])),
        (updated(Cordoned, &["tag"]), None, ok("updated tag; left cordoned: cordoned outside rollout (found so)")),
        // a hold of rollout's own reads first
        (listed(Cordoned, &[]), DRAIN, ok("left cordoned: drained by rollout drain")),
        // enabled again by the person: nothing to keep
        (listed(Enabled, &[]), None, ok("unchanged (enabled)")),
    ];
    for (entry, held, want) in rows {
        let seen = Seen {
            health: HEALTHY,
            applied: Applied::Ok,
            entry,
            held,
            outside: BY_HAND,
        };
        assert_eq!(decide(&seen), want, "{seen:?}");
    }
}

#[test]
fn a_hold_names_its_phase_and_command() {
    let h = Held {
        phase: Phase::Failed,
        by: "upgrade",
    };
    assert_eq!(h.to_string(), "failed by rollout upgrade");
}
