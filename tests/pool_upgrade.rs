//! `rollout upgrade`: a rolling upgrade of 6 nodes in batches of 2 never has more than 2 out
//! of service (read from the balancer emulator's state history), enables each node again
//! after its health check, leaves a node whose health check fails cordoned, and stops at
//! --max-failures (refusing a budget capacity would cut short). A controller killed at a phase
//! read from the journal resumes with the next run, which upgrades every node exactly once.

#[path = "pool_support/mod.rs"]
mod support;

use std::time::Duration;
use support::{Kind, Pool, finish, wait_until};

fn pool(name: &str, kind: Kind, n: usize, broken: &[&str], seconds: u32) -> Pool {
    let mut pool = Pool::new(name, kind, n, &[]);
    for i in 1..=n {
        let h = format!("h{i:02}");
        pool.set_host_var(&h, &format!("upgrade_seconds: {seconds}"));
        if broken.contains(&h.as_str()) {
            pool.set_host_var(&h, "break_on_upgrade: true");
        }
    }
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    pool.balancer.wait_polled();
    pool
}

fn rolling_upgrade(kind: Kind) {
    let pool = pool("upgrade", kind, 6, &[], 1);
    // A class on h04: its drain waits for it.
    pool.node("h04").meeting("art", 2);
    let from = pool.balancer.history().len();
    let child = pool.spawn("upgrade", &["--batch-size", "2", "--output", "plain"]);
    let h04 = pool.node("h04");
    wait_until(Duration::from_secs(60), "h04 cordoned", || {
        pool.balancer.state_of(h04).as_deref() == Some("cordoned")
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        h04.meetings().len(),
        1,
        "the class on h04 goes on while it drains"
    );
    h04.end("art");
    let out = finish(child, Duration::from_secs(120));
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("batch 1: h01, h02 (4 left after it)"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("batch 3: h05, h06 (0 left after it)"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout
            .contains("h04: cordoned, 1 meeting(s), 2 participant(s) left"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("upgrade: 6 node(s) upgraded"),
        "{}",
        out.all()
    );
    for (h, bbb) in &pool.nodes {
        assert_eq!(bbb.upgrades(), 1, "{h} upgraded once");
        assert_eq!(
            pool.balancer.state_of(bbb).as_deref(),
            Some("enabled"),
            "{h} enabled again"
        );
        assert!(
            out.stdout
                .contains(&format!("{h}: upgraded, healthy and enabled")),
            "{}",
            out.all()
        );
    }
    let max = pool.balancer.max_out_of_service(from);
    assert_eq!(
        max, 2,
        "at most the batch size out of service at once (and the batches did run in pairs)"
    );

    // The journal is closed: status shows the last rollout and no node held.
    let out = pool.run("status", &["--output", "json"], Duration::from_secs(30));
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["upgrade_run"], serde_json::Value::Null);
    for row in v["nodes"].as_array().unwrap() {
        assert!(row["last_rollout"].as_u64().is_some(), "{row}");
        assert_eq!(row["note"], serde_json::Value::Null, "{row}");
    }
}

#[test]
fn scalelite_rolling_upgrade_in_batches_of_two() {
    rolling_upgrade(Kind::Scalelite);
}

#[test]
fn b3scale_rolling_upgrade_in_batches_of_two() {
    rolling_upgrade(Kind::B3scale);
}

fn failed_health_check_stops_the_rollout(kind: Kind) {
    let pool = pool("upgrade-fail", kind, 6, &["h03"], 1);
    let from = pool.balancer.history().len();
    let out = pool.run(
        "upgrade",
        &["--batch-size", "2", "--output", "plain"],
        Duration::from_secs(120),
    );
    out.assert_no_secrets();
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("h03: FAILED: health check failed: BBB API at"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout
            .contains("stopped: 1 node(s) failed, more than --max-failures 0"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout
            .contains("not started: h05, h06; `rollout upgrade` continues with them"),
        "{}",
        out.all()
    );
    assert_ne!(
        pool.balancer.state_of(pool.node("h03")).as_deref(),
        Some("enabled"),
        "h03 stays out of service"
    );
    for h in ["h01", "h02", "h04"] {
        pool.balancer.assert_state(pool.node(h), Some("enabled"));
    }
    for h in ["h05", "h06"] {
        assert_eq!(pool.node(h).upgrades(), 0, "{h} not touched");
    }
    assert!(pool.balancer.max_out_of_service(from) <= 2);
    let out = pool.run("status", &["--output", "plain"], Duration::from_secs(30));
    assert!(
        out.stdout
            .contains("left out of service by an interrupted upgrade (failed)"),
        "{}",
        out.all()
    );
}

#[test]
fn scalelite_failed_health_check_stops_the_rollout() {
    failed_health_check_stops_the_rollout(Kind::Scalelite);
}

#[test]
fn b3scale_failed_health_check_stops_the_rollout() {
    failed_health_check_stops_the_rollout(Kind::B3scale);
}

#[test]
fn max_failures_lets_the_rollout_go_on_with_full_batches() {
    let pool = pool("upgrade-maxfail", Kind::Scalelite, 6, &["h02", "h05"], 1);
    let from = pool.balancer.history().len();
    let out = pool.run(
        "upgrade",
        &[
            "--batch-size",
            "2",
            "--max-failures",
            "1",
            "--output",
            "plain",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(out.code, 1, "{}", out.all());
    // h02 fails in batch 1 and stays cordoned; the batches keep their size (as Ansible's
    // `serial` with `max_fail_percentage`), and h05's failure in batch 3 breaks the budget.
    for line in [
        "batch 2: h03, h04 (2 left after it)",
        "batch 3: h05, h06 (0 left after it)",
        "stopped: 2 node(s) failed, more than --max-failures 1",
    ] {
        assert!(out.stdout.contains(line), "{line}\n{}", out.all());
    }
    assert_eq!(pool.node("h06").upgrades(), 1);
    assert_ne!(
        pool.balancer.state_of(pool.node("h02")).as_deref(),
        Some("enabled"),
        "the failed h02 stays out of service"
    );
    // Out of service at once: a batch of 2 plus the 1 failed node the budget allows.
    assert!(pool.balancer.max_out_of_service(from) <= 3);
}

#[test]
fn max_failures_takes_effect_with_batch_size_one() {
    let pool = pool("upgrade-maxfail1", Kind::Scalelite, 4, &["h02"], 1);
    let out = pool.run(
        "upgrade",
        &["--max-failures", "1", "--output", "plain"],
        Duration::from_secs(120),
    );
    // One node failed (exit 1), within the budget: every other node was upgraded.
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(!out.stdout.contains("stopped:"), "{}", out.all());
    for h in ["h01", "h03", "h04"] {
        assert_eq!(pool.node(h).upgrades(), 1, "{h}\n{}", out.all());
    }
    assert_ne!(
        pool.balancer.state_of(pool.node("h02")).as_deref(),
        Some("enabled"),
        "the failed h02 stays out of service"
    );
}

#[test]
fn a_budget_capacity_would_cut_short_is_refused_before_anything_changes() {
    let mut pool = pool("upgrade-budget", Kind::Scalelite, 3, &[], 1);
    pool.extra.push_str("  min_in_service: 2\n");
    pool.write();
    let changes = pool.balancer.changes();
    let out = pool.run(
        "upgrade",
        &["--max-failures", "1", "--output", "plain"],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stderr.contains("--max-failures 1 cannot take effect"),
        "{}",
        out.all()
    );
    assert_eq!(pool.balancer.changes(), changes, "nothing was changed");
    for h in ["h01", "h02", "h03"] {
        assert_eq!(pool.node(h).upgrades(), 0);
    }
    // The journal got no run: the default budget then upgrades as usual.
    let out = pool.run("upgrade", &["--output", "plain"], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.stdout.contains("resuming"), "{}", out.all());
}

/// Killed once the journal shows the first batch finished and the second one draining (a
/// class on each of its nodes holds it there), the next run resumes with the second batch
/// and never upgrades a finished node again: every node is upgraded exactly once.
fn killed_controller_resumes(kind: Kind) {
    let pool = pool("upgrade-kill", kind, 4, &[], 1);
    pool.node("h03").meeting("maths", 3);
    pool.node("h04").meeting("music", 2);
    let from = pool.balancer.history().len();
    let mut child = pool.spawn("upgrade", &["--batch-size", "2", "--output", "plain"]);
    let want = |p: &std::collections::BTreeMap<String, String>| {
        p.get("h01").map(String::as_str) == Some("done")
            && p.get("h02").map(String::as_str) == Some("done")
            && p.get("h03").map(String::as_str) == Some("draining")
            && p.get("h04").map(String::as_str) == Some("draining")
    };
    wait_until(
        Duration::from_secs(60),
        "the journal shows h01, h02 done and h03, h04 draining",
        || want(&pool.journal_phases()),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(want(&pool.journal_phases()), "{:?}", pool.journal_phases());
    for (h, n) in [("h01", 1), ("h02", 1), ("h03", 0), ("h04", 0)] {
        assert_eq!(pool.node(h).upgrades(), n, "{h} before the kill");
    }

    let out = pool.run("status", &["--output", "plain"], Duration::from_secs(30));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("an upgrade started"), "{}", out.all());
    for h in ["h03", "h04"] {
        let line = out.stdout.lines().find(|l| l.starts_with(h)).unwrap();
        assert!(
            line.contains("left out of service by an interrupted upgrade (draining)"),
            "{line}"
        );
    }

    pool.node("h03").end("maths");
    pool.node("h04").end("music");
    let out = pool.run(
        "upgrade",
        &["--batch-size", "2", "--output", "plain"],
        Duration::from_secs(120),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("resuming the upgrade started"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout
            .contains("continuing with h03 (draining), h04 (draining)"),
        "{}",
        out.all()
    );
    for (h, bbb) in &pool.nodes {
        assert_eq!(
            bbb.upgrades(),
            1,
            "{h} is upgraded exactly once:\n{}",
            out.all()
        );
        pool.balancer.assert_state(bbb, Some("enabled"));
    }
    assert!(pool.balancer.max_out_of_service(from) <= 2);
    let out = pool.run("status", &["--output", "plain"], Duration::from_secs(30));
    assert!(!out.stdout.contains("interrupted"), "{}", out.all());
    assert!(!out.stdout.contains("an upgrade started"), "{}", out.all());
}

#[test]
fn scalelite_killed_controller_resumes() {
    killed_controller_resumes(Kind::Scalelite);
}

#[test]
fn b3scale_killed_controller_resumes() {
    killed_controller_resumes(Kind::B3scale);
}

#[test]
fn broken_node_out_of_the_pool_does_not_stall_the_upgrade() {
    // h02's API refuses our secret: apply leaves it unregistered; the upgrade has nothing to
    // drain there, applies, and reports the failed health check instead of waiting forever.
    let pool = Pool::new("upgrade-broken", Kind::Scalelite, 2, &["h02"]);
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert_eq!(out.code, 1, "{}", out.all());
    let out = pool.run(
        "upgrade",
        &["--limit", "h02", "--output", "plain"],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("h02: its API does not answer and it is not in service: nothing to drain"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("h02: FAILED: health check failed:"),
        "{}",
        out.all()
    );
    assert_eq!(pool.node("h02").upgrades(), 1);
    pool.balancer.assert_state(pool.node("h02"), None);
}

#[test]
fn pause_asks_before_each_further_batch_and_a_no_stops_the_rollout() {
    let pool = pool("pause", Kind::Scalelite, 3, &[], 0);
    let inv = pool.inventory();
    let mut cmd = pool.rollout(&[
        "upgrade",
        inv.to_str().unwrap(),
        "--batch-size",
        "1",
        "--pause",
        "--output",
        "plain",
    ]);
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Yes to batch 2, no to batch 3. The first batch starts without a question.
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"y\nn\n").unwrap();
    let out = finish(child, Duration::from_secs(120));
    out.assert_no_secrets();
    assert!(
        out.stderr.contains("continue with batch 2 (h02)? [y/N]")
            && out.stderr.contains("continue with batch 3 (h03)? [y/N]")
            && !out.stderr.contains("continue with batch 1"),
        "{}",
        out.all()
    );
    assert!(
        out.all().contains("stopped at the operator's request"),
        "{}",
        out.all()
    );
    let upgrades: Vec<usize> = pool.nodes.iter().map(|(_, b)| b.upgrades()).collect();
    assert_eq!(upgrades, [1, 1, 0], "h03 was not touched");
    for (_, bbb) in &pool.nodes {
        pool.balancer.assert_state(bbb, Some("enabled"));
    }
}

#[test]
fn an_upgraded_node_counts_as_back_only_once_the_balancer_reports_it_online() {
    // Scalelite polls every 4 s, each poll giving up after 1 s (CONNECT_TIMEOUT): h01's
    // services are down for 11 s of its upgrade, two polls fail, and Scalelite takes it
    // offline; after its enable it is offline until the next poll. Two nodes and
    // min_in_service 1: counting h01 as back at once would leave none to take h02 out.
    let mut pool = Pool::new("upgrade-online", Kind::Scalelite, 2, &[]);
    pool.balancer = support::Balancer::scalelite_with("4", &[("CONNECT_TIMEOUT", "1")]);
    pool.write();
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    pool.balancer.wait_polled();
    pool.set_host_var("h01", "upgrade_downtime: 11");
    let history = pool.balancer.history().len();
    let out = pool.run("upgrade", &["--output", "plain"], Duration::from_secs(120));
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("h01: enabled, waiting for the balancer to report it online"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("upgrade: 2 node(s) upgraded"),
        "{}",
        out.all()
    );
    // Scalelite did take h01 offline, and never had both nodes out of service at once.
    let h = pool.balancer.history();
    assert!(
        h.iter().skip(history).any(|e| e["online"] == false),
        "h01 never went offline: {h:?}"
    );
    let mut out_of_service: std::collections::BTreeMap<String, bool> = Default::default();
    for e in h.iter().skip(history) {
        let id = e["id"].as_str().unwrap().to_string();
        out_of_service.insert(id, e["state"] != "enabled" || e["online"] == false);
        assert!(
            out_of_service.values().filter(|o| **o).count() <= 1,
            "two nodes out of service at once: {h:?}"
        );
    }
}

/// The upgrade's drain phase waits for a class a restarted bbb-web no longer lists (it goes
/// on in akka-apps): the node is not upgraded under it; at `--drain-timeout` it fails,
/// staying out of service, and says why.
#[test]
fn the_drain_phase_waits_for_a_class_bbb_web_forgot() {
    let pool = pool("upgrade-forgotten", Kind::Scalelite, 2, &[], 0);
    let h01 = pool.node("h01");
    h01.meeting("art", 2);
    h01.restart_bbb_web();
    let out = pool.run(
        "upgrade",
        &[
            "--limit",
            "h01",
            "--drain-timeout",
            "2s",
            "--output",
            "plain",
        ],
        Duration::from_secs(60),
    );
    out.assert_no_secrets();
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.lines().any(|l| l.starts_with("h01: FAILED")
            && l.contains("bbb-web lists no meeting, but akka-apps holds 1: a class bbb-web forgot when it restarted goes on")),
        "{}",
        out.all()
    );
    assert_eq!(h01.upgrades(), 0, "h01 was upgraded under a class");
    assert_ne!(pool.balancer.state_of(h01).as_deref(), Some("enabled"));
    let ms = h01.meetings();
    assert_eq!(ms.len(), 1, "the class must go on: {ms:?}");
    assert_eq!(ms[0]["participantCount"], 2);
}
