//! `rollout drain` cordons a node and waits, with the class still running, until its last
//! meeting ends; `--timeout` stops with the node still cordoned; only `--force` ends
//! meetings; `rollout undrain` enables it again; `balancer.min_in_service` keeps capacity.
//! A class that a restarted bbb-web no longer lists is waited for all the same.

#[path = "pool_support/mod.rs"]
mod support;

use std::time::Duration;
use support::{Kind, Pool, finish, wait_until};

fn registered(name: &str, kind: Kind, n: usize) -> Pool {
    registered_with(Pool::new(name, kind, n, &[]))
}

fn registered_with(pool: Pool) -> Pool {
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    // One poll round: the balancer sees the new nodes online.
    pool.balancer.wait_polled();
    pool
}

fn waits_for_the_last_meeting(kind: Kind) {
    waits_for_the_last_meeting_in(registered("drain-wait", kind, 2));
}

fn waits_for_the_last_meeting_in(pool: Pool) {
    let h01 = pool.node("h01");
    h01.meeting("math", 3);
    let child = pool.spawn("drain", &["--limit", "h01", "--output", "plain"]);
    wait_until(Duration::from_secs(20), "h01 cordoned", || {
        pool.balancer.state_of(h01).as_deref() == Some("cordoned")
    });
    // The drain keeps waiting and the class goes on.
    std::thread::sleep(Duration::from_secs(2));
    let meetings = h01.meetings();
    assert_eq!(meetings.len(), 1);
    assert_eq!(meetings[0]["participantCount"], 3);
    assert_eq!(meetings[0]["hasBeenForciblyEnded"], false);
    pool.balancer
        .assert_state(pool.node("h02"), Some("enabled"));
    // The teacher ends the class; the drain finishes.
    h01.end("math");
    let out = finish(child, Duration::from_secs(30));
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("h01: cordoned, 1 meeting(s), 3 participant(s) left"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("h01: drained: no meetings left"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout
            .contains("drain: 1 node(s) drained and out of service"),
        "{}",
        out.all()
    );
    assert_ne!(pool.balancer.state_of(h01).as_deref(), Some("enabled"));

    // status says rollout holds it; undrain puts it back.
    let out = pool.run("status", &["--output", "plain"], Duration::from_secs(30));
    assert!(
        out.stdout.contains("drained by `rollout drain`"),
        "{}",
        out.all()
    );
    let out = pool.run(
        "undrain",
        &["--limit", "h01", "--output", "plain"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("h01: enabled (was "), "{}", out.all());
    pool.balancer.assert_state(h01, Some("enabled"));
    let out = pool.run("status", &["--output", "plain"], Duration::from_secs(30));
    assert!(!out.stdout.contains("rollout drain"), "{}", out.all());
}

#[test]
fn scalelite_drain_waits_for_the_last_meeting() {
    waits_for_the_last_meeting(Kind::Scalelite);
}

#[test]
fn b3scale_drain_waits_for_the_last_meeting() {
    waits_for_the_last_meeting(Kind::B3scale);
}

/// The same over HTTPS with an internal CA (see `Pool::new_tls`).
#[test]
fn scalelite_drain_waits_for_the_last_meeting_over_https() {
    waits_for_the_last_meeting_in(registered_with(Pool::new_tls(
        "drain-wait-tls",
        Kind::Scalelite,
        2,
        &[],
    )));
}

#[test]
fn b3scale_drain_waits_for_the_last_meeting_over_https() {
    waits_for_the_last_meeting_in(registered_with(Pool::new_tls(
        "drain-wait-tls",
        Kind::B3scale,
        2,
        &[],
    )));
}

fn timeout_leaves_the_node_cordoned(kind: Kind) {
    let pool = registered("drain-timeout", kind, 2);
    let h01 = pool.node("h01");
    h01.meeting("history", 2);
    let out = pool.run(
        "drain",
        &["--limit", "h01", "--timeout", "2s", "--output", "plain"],
        Duration::from_secs(30),
    );
    out.assert_no_secrets();
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains("h01: still cordoned after 2s: 1 meeting(s) with 2 participant(s) left; no meeting was ended (--force ends them)"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout
            .contains("drain: 1 of 1 node(s) not drained: h01 (left cordoned)"),
        "{}",
        out.all()
    );
    pool.balancer.assert_state(h01, Some("cordoned"));
    assert_eq!(h01.meetings().len(), 1, "the meeting must go on");
    let out = pool.run("status", &["--output", "json"], Duration::from_secs(30));
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let row = &v["nodes"][0];
    assert_eq!(row["host"], "h01");
    assert_eq!(row["state"], "cordoned");
    assert_eq!(row["meetings"], 1);
    assert_eq!(row["participants"], 2);
    assert!(
        row["note"]
            .as_str()
            .unwrap()
            .contains("draining by `rollout drain`"),
        "{row}"
    );

    // --force ends what is left.
    let out = pool.run(
        "drain",
        &[
            "--limit",
            "h01",
            "--timeout",
            "1s",
            "--force",
            "--output",
            "plain",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("--force: ending 1 meeting(s), 2 participant(s)"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout
            .contains("h01: drained: 1 meeting(s) ended with --force"),
        "{}",
        out.all()
    );
    // BBB's `end` is asynchronous: the meeting is listed as hasBeenForciblyEnded (over: the
    // drain counts it as gone) until the node removes it, a moment later.
    let left = h01.meetings();
    assert!(
        left.iter().all(|m| m["hasBeenForciblyEnded"] == true),
        "{left:?}"
    );
    wait_until(Duration::from_secs(10), "the ended meeting removed", || {
        h01.meetings().is_empty()
    });
}

#[test]
fn scalelite_drain_timeout_leaves_the_node_cordoned() {
    timeout_leaves_the_node_cordoned(Kind::Scalelite);
}

#[test]
fn b3scale_drain_timeout_leaves_the_node_cordoned() {
    timeout_leaves_the_node_cordoned(Kind::B3scale);
}

#[test]
fn drain_keeps_the_minimum_in_service() {
    let pool = registered("drain-min", Kind::Scalelite, 2);
    let changes = pool.balancer.changes();
    let out = pool.run(
        "drain",
        &["--limit", "bbb", "--output", "plain"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("refusing to drain h01, h02: it would leave 0 node(s) in service, fewer than balancer.min_in_service (1); nothing was changed"),
        "{}",
        out.all()
    );
    assert_eq!(pool.balancer.changes(), changes);
}

#[test]
fn drain_needs_a_limit() {
    let pool = Pool::new("drain-limit", Kind::Scalelite, 1, &[]);
    let out = pool.run("drain", &[], Duration::from_secs(30));
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: `rollout drain` needs --limit HOSTS: name the nodes to drain\n"
    );
}

/// b3scale: `undrain` puts a node back in service only once b3scale would route to it; with
/// its agent stopped (heartbeat older than 5 s) the node's line fails, naming the cause.
#[test]
fn b3scale_undrain_needs_the_agents_heartbeat() {
    let mut pool = registered("undrain-agent", Kind::B3scale, 2);
    let out = pool.run(
        "drain",
        &["--limit", "h02", "--output", "plain"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    pool.stop_agent("h02");
    std::thread::sleep(Duration::from_secs(6));
    let out = pool.run(
        "undrain",
        &["--limit", "h02", "--output", "plain"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("h02: FAILED: enabled, but NOT routable:")
            && out
                .stdout
                .contains("no heartbeat from its node agent `h02` within the last 5 s"),
        "{}",
        out.all()
    );
}

/// bbb-web restarts under a running class during the drain (as `systemctl restart bbb-web`
/// or a crash does): the new bbb-web's `getMeetings` lists nothing, but the class goes on in
/// akka-apps. The drain does not take that for an empty node: it keeps waiting, saying why,
/// until the class's participants have left and akka-apps has ended it.
fn waits_for_a_class_bbb_web_forgot(kind: Kind) {
    let pool = registered("drain-forgotten", kind, 2);
    let h01 = pool.node("h01");
    h01.meeting("math", 3);
    let mut child = pool.spawn("drain", &["--limit", "h01", "--output", "plain"]);
    wait_until(Duration::from_secs(20), "h01 cordoned", || {
        pool.balancer.state_of(h01).as_deref() == Some("cordoned")
    });
    h01.restart_bbb_web();
    // Ten looks and more (poll_interval 0.2 s): the drain goes on, and so does the class.
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the drain ended while the class bbb-web forgot still runs:\n{}",
        finish(child, Duration::from_secs(5)).all()
    );
    let meetings = h01.meetings();
    assert_eq!(meetings.len(), 1, "{meetings:?}");
    assert_eq!(meetings[0]["forgottenByBbbWeb"], true);
    assert_eq!(meetings[0]["participantCount"], 3);
    // Out of service (Scalelite's poller, seeing no meeting, turns a cordoned server into a
    // disabled one, as it does for any cordoned server that looks empty).
    assert_ne!(pool.balancer.state_of(h01).as_deref(), Some("enabled"));
    // The class ends: its participants leave, and akka-apps ends the meeting.
    for _ in 0..3 {
        h01.leave("math");
    }
    let out = finish(child, Duration::from_secs(30));
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains(
            "h01: cordoned, bbb-web lists no meeting, but akka-apps holds 1: a class bbb-web forgot when it restarted; waiting for it to end"
        ),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("h01: drained: no meetings left"),
        "{}",
        out.all()
    );
    assert!(h01.meetings().is_empty());
}

#[test]
fn scalelite_drain_waits_for_a_class_bbb_web_forgot() {
    waits_for_a_class_bbb_web_forgot(Kind::Scalelite);
}

#[test]
fn b3scale_drain_waits_for_a_class_bbb_web_forgot() {
    waits_for_a_class_bbb_web_forgot(Kind::B3scale);
}

/// A drain that times out on a forgotten class says so, leaves the node cordoned and the
/// class running; `--force` cannot end what bbb-web does not know, so it does not claim to.
#[test]
fn drain_timeout_names_a_forgotten_class() {
    let pool = registered("drain-forgotten-timeout", Kind::Scalelite, 2);
    let h01 = pool.node("h01");
    h01.meeting("art", 2);
    h01.restart_bbb_web();
    for force in [false, true] {
        let mut args = vec!["--limit", "h01", "--timeout", "2s", "--output", "plain"];
        if force {
            args.push("--force");
        }
        let out = pool.run("drain", &args, Duration::from_secs(30));
        out.assert_no_secrets();
        assert_eq!(out.code, 1, "{}", out.all());
        // "after 2s", or a little more on a busy machine.
        assert!(
            out.stdout.lines().any(|l| l.starts_with("h01: still cordoned after ")
                && l.ends_with("s: bbb-web lists no meeting, but akka-apps holds 1: a class bbb-web forgot when it restarted goes on; no meeting was ended (--force cannot end it: bbb-web does not know it)")),
            "{}",
            out.all()
        );
        assert_ne!(pool.balancer.state_of(h01).as_deref(), Some("enabled"));
        let meetings = h01.meetings();
        assert_eq!(meetings.len(), 1, "the class must go on: {meetings:?}");
        assert_eq!(meetings[0]["participantCount"], 2);
    }
}
