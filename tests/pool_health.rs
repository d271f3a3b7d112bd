//! The health gate's API round trip, against BBB API emulators on loopback (no SSH: these
//! nodes have `connection: local`, so the service half of the gate is the lab test's,
//! `tests/lab_health.rs`): before a node goes into the balancer, rollout creates a meeting
//! `rollout-health-HOST-MILLIS`, joins it (`redirect=false`) and ends it, leaves no meeting
//! behind and never touches a class; a node whose API answers but cannot create a meeting
//! stays out, the failing call named.

#[path = "pool_support/mod.rs"]
mod support;

use std::time::Duration;
use support::{Kind, Pool, wait_until};

/// The health meetings the emulator's log shows, in order, as (call, meeting ID) pairs.
fn health_calls(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|l| {
            let rest = l.split_once(": ")?.1;
            let mut words = rest.split_whitespace();
            let call = words.next()?;
            let id = words.next()?;
            (["create", "join", "end"].contains(&call) && id.starts_with("rollout-health-"))
                .then(|| (call.to_string(), id.to_string()))
        })
        .collect()
}

#[test]
fn the_gate_creates_joins_and_ends_its_own_meeting_and_nothing_else() {
    let pool = Pool::new("health-trip", Kind::Scalelite, 1, &[]);
    let h01 = pool.node("h01");
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.all().contains("h01  registered and enabled"),
        "{}",
        out.all()
    );
    let calls = health_calls(&h01.log());
    assert_eq!(
        calls.len(),
        3,
        "one create, join, end: {calls:?}\n{}",
        h01.log()
    );
    let id = &calls[0].1;
    assert!(id.starts_with("rollout-health-h01-"), "{id}");
    let order: Vec<&str> = calls.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(order, ["create", "join", "end"]);
    assert!(calls.iter().all(|(_, m)| m == id), "{calls:?}");
    // rollout waited until the node dropped it: nothing is left when it returns.
    assert!(h01.meetings().is_empty(), "{:?}", h01.meetings());

    // With a class running, the gate (here `undrain` of the enabled node) adds its own
    // meeting beside it and ends only that one.
    h01.meeting("class", 2);
    let out = pool.run(
        "undrain",
        &["--limit", "h01", "--output", "plain"],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let calls = health_calls(&h01.log());
    assert_eq!(calls.len(), 6, "a second round trip: {calls:?}");
    assert_ne!(calls[3].1, *id, "every round trip has its own meeting ID");
    assert!(
        !h01.log().lines().any(|l| l.contains(": end class")),
        "the class was ended:\n{}",
        h01.log()
    );
    let ms = h01.meetings();
    assert_eq!(ms.len(), 1, "{ms:?}");
    assert_eq!(ms[0]["meetingID"], "class");
    assert_eq!(ms[0]["participantCount"], 2);
}

#[test]
fn a_node_that_cannot_create_a_meeting_stays_out() {
    let pool = Pool::new("health-create", Kind::Scalelite, 2, &[]);
    // h02's FreeSWITCH dialplan reads 9-digit PINs while bbb-web makes 5-digit voice
    // bridges: its API answers and accepts the secret, but refuses every create.
    let h02 = pool.node("h02");
    std::fs::write(
        h02.dir.join("dialplan-public/pin.xml"),
        "<include><extension name=\"pin\"><condition><action application=\"play_and_get_digits\" data=\"9 9 3 7000 # conference/conf-pin.wav ivr/ivr-that_was_an_invalid_entry.wav pin \\d+\"/></condition></extension></include>\n",
    )
    .unwrap();
    let pid = std::fs::read_to_string(h02.dir.join("pid")).unwrap();
    std::process::Command::new("kill")
        .arg(pid.trim())
        .status()
        .unwrap();
    wait_until(Duration::from_secs(10), "h02's API to restart", || {
        std::fs::read_to_string(h02.dir.join("pid")).is_ok_and(|p| p != pid)
    });
    support::wait_listening(&h02.address, h02.proc.port);
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    out.assert_no_secrets();
    assert_eq!(out.code, 1, "{}", out.all());
    let text = out.all();
    assert!(text.contains("h01  registered and enabled"), "{text}");
    assert!(
        text.contains("h02  NOT registered: health check failed: health meeting: BBB API at")
            && text.contains("refused create: emulatorVoiceBridgeNotDialable"),
        "{text}"
    );
    pool.balancer
        .assert_state(pool.node("h01"), Some("enabled"));
    pool.balancer.assert_state(h02, None);
    assert!(h02.meetings().is_empty(), "{:?}", h02.meetings());
}
