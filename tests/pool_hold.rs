//! `rollout apply` never ends a class: a change whose handler restarts bbb-web (marked
//! `ends_meetings`) is written on every node, but the restart is held back on a node whose
//! own API lists a meeting, runs on the free node, is shown as pending by `plan` and
//! `status`, and runs with the first apply after the class ended. `--force` ends the class
//! first. A node whose meetings cannot be read counts as busy. Against the BBB API and
//! Scalelite emulators on loopback (no lab): the fixture role's handler restarts the node's
//! API emulator the way restarting bbb-web, FreeSWITCH and akka-apps does (its meetings
//! end), and counts restarts in the node's `restarts` file. A class that a restarted bbb-web
//! no longer lists holds the restart too.

#[path = "pool_support/mod.rs"]
mod support;

use std::time::Duration;
use support::{Bbb, Kind, Pool, wait_until};

const DIALIN: &str = "dialin_number='+49 30 999999'";
const T: Duration = Duration::from_secs(60);

fn registered(name: &str, n: usize) -> Pool {
    registered_with(name, Kind::Scalelite, n)
}

fn registered_with(name: &str, kind: Kind, n: usize) -> Pool {
    registered_pool(Pool::new(name, kind, n, &[]))
}

fn registered_pool(pool: Pool) -> Pool {
    let out = pool.run("apply", &["--output", "plain"], T);
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    // The balancer's poller sees the new nodes online (in service).
    pool.balancer.wait_polled();
    pool
}

fn restarts(bbb: &Bbb) -> usize {
    std::fs::read_to_string(bbb.dir.join("restarts"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn dialin(bbb: &Bbb) -> String {
    std::fs::read_to_string(bbb.dir.join("dialin")).unwrap_or_default()
}

#[test]
fn a_running_class_holds_the_restart_until_it_ends() {
    holds_the_restart_until_the_class_ends(Kind::Scalelite);
}

#[test]
fn b3scale_a_running_class_holds_the_restart_until_it_ends() {
    holds_the_restart_until_the_class_ends(Kind::B3scale);
}

/// The same over HTTPS with an internal CA (see `Pool::new_tls`); the restart handler
/// reaches the node over HTTPS too.
#[test]
fn scalelite_a_running_class_holds_the_restart_until_it_ends_over_https() {
    holds_the_restart_until_the_class_ends_in(registered_pool(Pool::new_tls(
        "hold-tls",
        Kind::Scalelite,
        2,
        &[],
    )));
}

#[test]
fn b3scale_a_running_class_holds_the_restart_until_it_ends_over_https() {
    holds_the_restart_until_the_class_ends_in(registered_pool(Pool::new_tls(
        "hold-tls",
        Kind::B3scale,
        2,
        &[],
    )));
}

fn holds_the_restart_until_the_class_ends(kind: Kind) {
    holds_the_restart_until_the_class_ends_in(registered_with("hold", kind, 2));
}

fn holds_the_restart_until_the_class_ends_in(pool: Pool) {
    let (h01, h02) = (pool.node("h01"), pool.node("h02"));
    assert_eq!((restarts(h01), restarts(h02)), (1, 1), "first install");
    h01.meeting("math", 3);

    // The change is written on both nodes; bbb-web restarts only on the free one.
    let out = pool.run("apply", &["-e", DIALIN, "--output", "plain"], T);
    out.assert_no_secrets();
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(
        out.stdout
            .contains("h01: held: 1 meeting running; restart pending: bbb: restart bbb-web"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout
            .contains("2 hosts, 2 changes, 0 failed or unreachable, 1 held (meetings running; restart pending)"),
        "{}",
        out.all()
    );
    assert_eq!(restarts(h01), 1, "h01 was restarted under a class");
    assert_eq!(restarts(h02), 2, "the free node h02 was not restarted");
    assert_eq!(
        dialin(h01),
        "+49 30 999999\n",
        "config-only change held back"
    );
    let ms = h01.meetings();
    assert_eq!(ms.len(), 1, "the class ended");
    assert_eq!(ms[0]["participantCount"], 3);
    assert_eq!(ms[0]["hasBeenForciblyEnded"], false);

    // plan shows the restart still owed, and held.
    let out = pool.run("plan", &["-e", DIALIN, "--output", "plain"], T);
    out.assert_no_secrets();
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(
        out.stdout
            .contains("h01: owed by an earlier apply that held it: bbb: restart bbb-web"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout
            .contains("h01: held: 1 meeting running; restart pending: bbb: restart bbb-web"),
        "{}",
        out.all()
    );

    // status shows the pending restart.
    let out = pool.run("status", &["--output", "json"], T);
    out.assert_no_secrets();
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let note = v["nodes"][0]["note"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(v["nodes"][0]["host"], "h01");
    assert!(
        note.contains("restart pending since")
            && note.contains("(held: 1 meeting running): bbb: restart bbb-web"),
        "{v}"
    );
    assert!(v["nodes"][1]["note"].is_null(), "{v}");

    // Still in class: the next apply (nothing changed since) holds it again.
    let out = pool.run("apply", &["-e", DIALIN, "--output", "plain"], T);
    assert_eq!(out.code, 3, "{}", out.all());
    assert_eq!(restarts(h01), 1);
    assert_eq!(h01.meetings().len(), 1);

    // The teacher ends the class: the next apply restarts h01, once.
    h01.end("math");
    wait_until(Duration::from_secs(10), "the class ended", || {
        h01.meetings().is_empty()
    });
    let out = pool.run("apply", &["-e", DIALIN, "--output", "plain"], T);
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("h01: owed by an earlier apply that held it: bbb: restart bbb-web"),
        "{}",
        out.all()
    );
    assert_eq!((restarts(h01), restarts(h02)), (2, 2));
    let out = pool.run("status", &["--output", "plain"], T);
    assert!(!out.stdout.contains("restart pending"), "{}", out.all());
    let out = pool.run("apply", &["-e", DIALIN, "--output", "plain"], T);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!((restarts(h01), restarts(h02)), (2, 2), "restarted twice");
}

#[test]
fn force_ends_the_class_then_restarts() {
    let pool = registered("hold-force", 2);
    let h01 = pool.node("h01");
    h01.meeting("history", 2);
    let history = pool.balancer.history().len();
    let out = pool.run("apply", &["-e", DIALIN, "--force", "--output", "plain"], T);
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    // Cordoned first, then the class ended, then back in service after its health check.
    let cordoned = out.stdout.find("h01: cordoned\n");
    let ending = out
        .stdout
        .find("h01: --force: ending 1 meeting(s), 2 participant(s)");
    assert!(
        cordoned.is_some() && ending.is_some() && cordoned < ending,
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains(
            "h01: cordoned, meetings ended (--force), applied and healthy; enabled again"
        ),
        "{}",
        out.all()
    );
    assert!(!out.stdout.contains("held:"), "{}", out.all());
    assert_eq!(restarts(h01), 2);
    assert!(h01.meetings().is_empty());
    assert_eq!(pool.balancer.state_of(h01).as_deref(), Some("enabled"));
    // Only h01 left service, once.
    assert_eq!(pool.balancer.max_out_of_service(history), 1);
}

/// Creates meeting `id` through Scalelite's front API (`/bigbluebutton/api/create`, signed
/// with its LOADBALANCER_SECRET, as a Greenlight or Moodle would); whether it was created.
fn create_via_balancer(pool: &Pool, id: &str) -> bool {
    let front = format!("{}/bigbluebutton/api", pool.balancer.base());
    let ep = rollout::bbb_api::Endpoint::new(&front, support::LB_SECRET);
    let q = format!("meetingID={id}&name={id}&moderatorPW=mp&attendeePW=ap");
    support::get(&ep.signed("create", &q)).contains("SUCCESS")
}

#[test]
fn force_cordons_first_so_no_new_class_lands_between_the_end_and_the_restart() {
    // One node: a class created through the balancer can land only on h01.
    let pool = registered("hold-force-window", 1);
    let h01 = pool.node("h01");
    h01.meeting("physics", 2);
    let child = pool.spawn("apply", &["-e", DIALIN, "--force", "--output", "plain"]);
    // Once --force has ended the class, teachers keep starting classes through the balancer
    // until the apply is over.
    let mut created = Vec::new();
    let mut refused = 0;
    let mut ended = false;
    let mut child = Some(child);
    let mut out = None;
    for i in 0.. {
        ended = ended
            || !h01
                .meetings()
                .iter()
                .any(|m| m["meetingID"] == "physics" && m["hasBeenForciblyEnded"] == false);
        let id = format!("new-{i}");
        if ended {
            if create_via_balancer(&pool, &id) {
                created.push(id);
            } else {
                refused += 1;
            }
        }
        let c = child.as_mut().unwrap();
        if c.try_wait().unwrap().is_some() {
            out = Some(support::finish(child.take().unwrap(), T));
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        assert!(i < 1200, "the apply did not end within a minute");
    }
    let out = out.unwrap();
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(restarts(h01), 2, "{}", out.all());
    // The balancer refused classes while h01 was cordoned (the window was tried) ...
    assert!(ended, "the class was not ended");
    assert!(refused > 0, "no create fell into the window");
    // ... and every class it did create is still running: none was cut off by the restart.
    let running: Vec<String> = h01
        .meetings()
        .iter()
        .filter(|m| m["hasBeenForciblyEnded"] == false)
        .map(|m| m["meetingID"].as_str().unwrap_or_default().to_string())
        .collect();
    for id in &created {
        assert!(
            running.contains(id),
            "{id}, created through the balancer during the apply, was cut off by the restart (running: {running:?}, refused {refused})\n{}",
            out.all()
        );
    }
}

#[test]
fn a_node_whose_meetings_cannot_be_read_counts_as_busy() {
    let mut pool = registered("hold-unreadable", 2);
    // h01's bbb-web goes away behind its nginx (its meetings may still run): a 502 tells
    // rollout nothing about them.
    let (_, h01) = pool.nodes.remove(0);
    let (address, port) = (h01.address.clone(), h01.proc.port);
    drop(h01);
    support::serve_bad_gateway(&address, port);
    let out = pool.run("apply", &["-e", DIALIN, "--output", "plain"], T);
    out.assert_no_secrets();
    assert!(
        out.stdout.contains(&format!(
            "h01: held: its meetings cannot be read (BBB API at http://{address}:{port}/"
        )),
        "{}",
        out.all()
    );
    assert!(
        out.stdout
            .contains("so it counts as busy; restart pending: bbb: restart bbb-web"),
        "{}",
        out.all()
    );
    // Registration fails its health check too (exit 1 outranks 3).
    assert_eq!(out.code, 1, "{}", out.all());
    let restarted = std::fs::read_to_string(pool.dir.join("h01/restarts")).unwrap();
    assert_eq!(restarted.lines().count(), 1, "h01 was restarted");
}

/// bbb-web alone restarted under a class: its `getMeetings` lists nothing, but the class goes
/// on in akka-apps. `apply` asks akka-apps too and holds the restart that would end it; once
/// the class is over, the next apply runs it.
#[test]
fn a_class_bbb_web_forgot_holds_the_restart() {
    let pool = registered("hold-forgotten", 2);
    let h01 = pool.node("h01");
    h01.meeting("math", 3);
    h01.restart_bbb_web();
    let out = pool.run("apply", &["-e", DIALIN, "--output", "plain"], T);
    out.assert_no_secrets();
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(
        out.stdout.contains("h01: held: bbb-web lists no meeting, but akka-apps holds 1: a class bbb-web forgot when it restarted; restart pending: bbb: restart bbb-web"),
        "{}",
        out.all()
    );
    assert_eq!(restarts(h01), 1, "h01 was restarted under a class");
    let ms = h01.meetings();
    assert_eq!(ms.len(), 1, "the class ended: {ms:?}");
    assert_eq!(ms[0]["participantCount"], 3);
    assert_eq!(ms[0]["forgottenByBbbWeb"], true);
    // The class is over: the restart it held runs.
    for _ in 0..3 {
        h01.leave("math");
    }
    let out = pool.run("apply", &["-e", DIALIN, "--output", "plain"], T);
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(restarts(h01), 2, "the held restart ran");
}

/// A `bbb_secret` being changed: the node's API still has the old one and refuses the
/// inventory's, which would count it as busy on every apply. akka-apps' count (no secret
/// needed) decides instead: none → the restart runs; a class → held.
#[test]
fn a_node_refusing_the_new_secret_is_asked_akka_apps() {
    let pool = registered("hold-rotated", 2);
    let h01 = pool.node("h01");
    h01.meeting("math", 2);
    // bbb-web takes another secret (the old one, from the inventory's point of view).
    let props = h01.dir.join("bbb-web.properties");
    let text = std::fs::read_to_string(&props).unwrap();
    let old: String = text
        .lines()
        .map(|l| {
            if l.starts_with("securitySalt=") {
                "securitySalt=the-old-secret-before-rotation".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&props, old + "\n").unwrap();
    h01.restart_bbb_web();
    let out = pool.run("apply", &["-e", DIALIN, "--output", "plain"], T);
    out.assert_no_secrets();
    // Exit 1, not 3: the registration's health check cannot pass with the new secret
    // either, so h01 is also cordoned (no new meetings), which is said.
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains("h01: held: its API refuses the inventory's secret (a changed bbb_secret not yet in use?), and akka-apps holds 1 meeting(s)"),
        "{}",
        out.all()
    );
    assert_eq!(restarts(h01), 1, "h01 was restarted under a class");
    // The class is over (its participants left; akka-apps ends an empty meeting).
    for _ in 0..2 {
        h01.leave("math");
    }
    let out = pool.run("apply", &["-e", DIALIN, "--output", "plain"], T);
    out.assert_no_secrets();
    assert!(
        out.stdout.contains("akka-apps holds no meeting: not held"),
        "{}",
        out.all()
    );
    assert!(!out.stdout.contains("h01: held"), "{}", out.all());
    assert_eq!(restarts(h01), 2, "the restart ran");
}

#[test]
fn a_node_where_nothing_listens_is_not_held() {
    let mut pool = registered("hold-blank", 2);
    // Nothing listens at h01's API address any more (as on a blank node before BBB is
    // installed): no client can be in a class there, so its restart is not held.
    drop(pool.nodes.remove(0));
    let out = pool.run("apply", &["-e", DIALIN, "--output", "plain"], T);
    out.assert_no_secrets();
    assert!(
        out.stdout
            .contains("nothing listens there, so no class can run on it: not held"),
        "{}",
        out.all()
    );
    assert!(!out.stdout.contains("h01: held"), "{}", out.all());
    let restarted = std::fs::read_to_string(pool.dir.join("h01/restarts")).unwrap();
    assert_eq!(restarted.lines().count(), 2, "h01 was not restarted");
}

#[test]
fn drain_cordons_waits_applies_and_puts_the_node_back() {
    drain_round_trip(Kind::Scalelite);
}

#[test]
fn b3scale_drain_cordons_waits_applies_and_puts_the_node_back() {
    drain_round_trip(Kind::B3scale);
}

fn drain_round_trip(kind: Kind) {
    let pool = registered_with("hold-drain", kind, 3);
    let (h01, h02) = (pool.node("h01"), pool.node("h02"));
    h01.meeting("music", 4);
    let history = pool.balancer.history().len();
    let child = pool.spawn("apply", &["-e", DIALIN, "--drain", "--output", "plain"]);
    wait_until(Duration::from_secs(20), "h01 cordoned", || {
        pool.balancer.state_of(h01).as_deref() == Some("cordoned")
    });
    // The free nodes go ahead; h01's class goes on, its restart waits.
    wait_until(Duration::from_secs(20), "h02 restarted", || {
        restarts(h02) == 2
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(restarts(h01), 1, "h01 restarted under its class");
    let ms = h01.meetings();
    assert_eq!(
        (ms.len(), ms[0]["hasBeenForciblyEnded"].clone()),
        (1, false.into())
    );
    assert_eq!(pool.balancer.state_of(h02).as_deref(), Some("enabled"));
    h01.end("music");
    let out = support::finish(child, T);
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("h01: drained, applied and healthy; enabled again"),
        "{}",
        out.all()
    );
    assert_eq!(restarts(h01), 2);
    assert_eq!(pool.balancer.state_of(h01).as_deref(), Some("enabled"));
    // Only h01 left service, once: cordoned, then enabled.
    assert_eq!(pool.balancer.max_out_of_service(history), 1);
    let out = pool.run("status", &["--output", "plain"], T);
    assert!(!out.stdout.contains("restart pending"), "{}", out.all());
    assert!(
        !out.stdout.contains("`rollout apply` since"),
        "{}",
        out.all()
    );
}

#[test]
fn drain_keeps_the_minimum_in_service() {
    let mut pool = registered("hold-drain-min", 2);
    pool.extra.push_str("  min_in_service: 2\n");
    pool.write();
    let h01 = pool.node("h01");
    h01.meeting("art", 1);
    let out = pool.run("apply", &["-e", DIALIN, "--drain", "--output", "plain"], T);
    out.assert_no_secrets();
    assert_eq!(out.code, 3, "{}", out.all());
    assert!(
        out.stdout.contains("h01: held: 1 meeting running; refusing to drain h01: it would leave 1 node(s) in service, fewer than balancer.min_in_service (2); nothing was changed; restart pending: bbb: restart bbb-web"),
        "{}",
        out.all()
    );
    assert_eq!(pool.balancer.state_of(h01).as_deref(), Some("enabled"));
    assert_eq!(restarts(h01), 1);
}

#[test]
fn an_upgrade_runs_the_restart_an_apply_held_back() {
    let pool = registered("hold-upgrade", 2);
    let h01 = pool.node("h01");
    h01.meeting("maths", 2);
    let out = pool.run("apply", &["-e", DIALIN, "--output", "plain"], T);
    assert_eq!(out.code, 3, "{}", out.all());
    h01.end("maths");
    wait_until(Duration::from_secs(10), "the class ended", || {
        h01.meetings().is_empty()
    });
    let out = pool.run("upgrade", &["-e", DIALIN, "--output", "plain"], T);
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(restarts(h01), 2, "{}", out.all());
    let out = pool.run("status", &["--output", "plain"], T);
    assert!(!out.stdout.contains("restart pending"), "{}", out.all());
    let out = pool.run("apply", &["-e", DIALIN, "--output", "plain"], T);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        restarts(h01),
        2,
        "restarted again by the apply after the upgrade"
    );
}
