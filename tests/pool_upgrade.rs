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
    // h04's class puts it last: the nodes that drain at once go first (rules::order).
    assert!(
        out.stdout.contains("batch 2: h03, h05 (2 left after it)"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("batch 3: h06, h04 (0 left after it)"),
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

/// The JSON summary line of an `--output json` run.
fn summary_json(stdout: &str) -> serde_json::Value {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary in {stdout}"))
}

/// The times (seconds since the epoch) a node's file of `date +%s.%N` lines holds.
fn stamps(bbb: &support::Bbb, file: &str) -> Vec<f64> {
    std::fs::read_to_string(bbb.dir.join(file))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// When the balancer's history (entries after `from`) first shows `bbb` out of service.
fn first_out(pool: &Pool, bbb: &support::Bbb, from: usize) -> f64 {
    let api = bbb.api();
    let listed = pool.balancer.listed();
    let id = listed
        .iter()
        .find(|s| s["url"].as_str().unwrap().trim_end_matches('/') == api)
        .and_then(|s| s["id"].as_str())
        .unwrap_or_else(|| panic!("{api} not in {listed:?}"))
        .to_string();
    pool.balancer
        .history()
        .iter()
        .skip(from)
        .find(|e| e["id"] == id.as_str() && e["state"] != "enabled")
        .and_then(|e| e["t"].as_f64())
        .unwrap_or_else(|| panic!("{} never went out of service", bbb.address))
}

/// Staging (issue 9 item 4): the steps marked `stage: true` run before the node is
/// cordoned, while the balancer still has it enabled; only the rest runs out of service.
/// The same upgrade with `--no-stage` runs them after the cordon. The summary reports, per
/// node, the time staged, cordoned, draining and out of service; the pool's total
/// node-seconds out of service with and without staging are printed (bench/README.md).
#[test]
fn staging_runs_before_the_cordon_and_shortens_the_time_out_of_service() {
    const STAGE: u32 = 3;
    const INSTALL: u32 = 1;
    let mut pool = Pool::new("upgrade-stage", Kind::Scalelite, 3, &[]);
    for h in ["h01", "h02", "h03"] {
        pool.set_host_var(h, &format!("upgrade_seconds: {INSTALL}"));
        pool.set_host_var(h, &format!("stage_seconds: {STAGE}"));
    }
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    pool.balancer.wait_polled();
    let mut totals = Vec::new();
    for staged in [true, false] {
        let from = pool.balancer.history().len();
        let before: Vec<usize> = pool
            .nodes
            .iter()
            .map(|(_, b)| stamps(b, "staged").len())
            .collect();
        let mut args = vec!["--output", "json"];
        if !staged {
            args.push("--no-stage");
        }
        let out = pool.run("upgrade", &args, Duration::from_secs(120));
        out.assert_no_secrets();
        assert_eq!(out.code, 0, "{}", out.all());
        let summary = summary_json(&out.stdout);
        let times = summary["times"].as_array().unwrap().clone();
        assert_eq!(times.len(), 3, "{summary}");
        let mut total = 0.0;
        for (i, (h, bbb)) in pool.nodes.iter().enumerate() {
            let s = stamps(bbb, "staged");
            assert_eq!(s.len(), before[i] + 1, "{h} staged once per upgrade");
            let ran = s.last().unwrap();
            let out_at = first_out(&pool, bbb, from);
            let t = times.iter().find(|t| t["host"] == h.as_str()).unwrap();
            let oos = t["out_of_service_s"].as_f64().unwrap();
            total += oos;
            if staged {
                assert!(
                    *ran < out_at,
                    "{h}: staged at {ran}, after it was cordoned at {out_at}"
                );
                assert!(t["staging_s"].as_f64().unwrap() >= STAGE as f64, "{t}");
                // Out of service: the install, the health check and the enable only.
                assert!(
                    oos <= (INSTALL + 10) as f64,
                    "{h}: {oos} s out of service, more than install + 10 s: {t}"
                );
                assert!(
                    oos < (STAGE + INSTALL) as f64,
                    "{h}: the staging ran out of service: {t}"
                );
            } else {
                assert!(*ran > out_at, "{h}: --no-stage staged before the cordon");
                assert_eq!(t["staging_s"], serde_json::Value::Null, "{t}");
                assert!(oos >= (STAGE + INSTALL) as f64, "{t}");
            }
            assert!(t["cordoned_s"].as_f64().unwrap() >= oos, "{t}");
            assert!(t["draining_s"].as_f64().unwrap() >= 0.0, "{t}");
        }
        totals.push(total);
    }
    eprintln!(
        "out of service, 3 nodes (stage {STAGE} s, install {INSTALL} s each): {:.1} node-seconds staged, {:.1} with --no-stage",
        totals[0], totals[1]
    );
    assert!(
        totals[0] + 3.0 * STAGE as f64 - 1.0 <= totals[1],
        "{totals:?}"
    );
    // The same times in plain output: a table per node and the pool's total.
    let out = pool.run("upgrade", &["--output", "plain"], Duration::from_secs(120));
    assert_eq!(out.code, 0, "{}", out.all());
    eprintln!("{}", out.stdout);
    assert!(
        out.stdout.contains("h01: staging (still in service)")
            && out.stdout.contains(
                "  HOST  STAGING  CORDONED  DRAINING  APPLYING  OUT OF SERVICE    END NOTICED\n"
            )
            && out.stdout.contains("node-seconds in all\n"),
        "{}",
        out.all()
    );
}

/// The order that drains fastest (issue 9 item 4): an empty node first, then one whose
/// class has a scheduled end (BBB's `duration`), then the smaller of two classes without.
#[test]
fn nodes_are_taken_in_the_order_that_drains_fastest() {
    let pool = pool("upgrade-order", Kind::Scalelite, 4, &[], 0);
    pool.node("h01").meeting("big", 4);
    pool.node("h02").meeting("small", 1);
    pool.node("h03").meeting_for("scheduled", 10, 30);
    let child = pool.spawn("upgrade", &["--output", "plain"]);
    for (h, id) in [("h03", "scheduled"), ("h02", "small"), ("h01", "big")] {
        let bbb = pool.node(h);
        wait_until(Duration::from_secs(60), &format!("{h} cordoned"), || {
            pool.balancer.state_of(bbb).as_deref() == Some("cordoned")
        });
        bbb.end(id);
    }
    let out = finish(child, Duration::from_secs(120));
    assert_eq!(out.code, 0, "{}", out.all());
    let batches: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("batch "))
        .collect();
    assert_eq!(
        batches,
        [
            "batch 1: h04 (3 left after it)",
            "batch 2: h03 (2 left after it)",
            "batch 3: h02 (1 left after it)",
            "batch 4: h01 (0 left after it)",
        ],
        "{}",
        out.all()
    );
}

/// A drain notices the end of the last meeting within one poll interval plus a second
/// (issue 9 item 5): the class on h01 ends (its moderator's `end`, read back from the BBB
/// API emulator), and the node's first step after the drain runs within `poll_interval` +
/// 1 s of it; the summary's `end_noticed_within_s` bounds that time, and no look comes more
/// often than the poll interval.
#[test]
fn a_drain_notices_the_end_of_the_last_meeting_within_one_poll() {
    const POLL: f64 = 2.0;
    let mut pool = Pool::new("upgrade-notice", Kind::Scalelite, 2, &[]);
    pool.extra = format!("  health_timeout: 2\n  poll_interval: {POLL}\n");
    pool.write();
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    pool.balancer.wait_polled();
    let h01 = pool.node("h01");
    h01.meeting("art", 2);
    let child = pool.spawn("upgrade", &["--limit", "h01", "--output", "json"]);
    wait_until(Duration::from_secs(60), "h01 cordoned", || {
        pool.balancer.state_of(h01).as_deref() == Some("cordoned")
    });
    // Let a look or two pass, then end the class at a moment unrelated to the polls.
    std::thread::sleep(Duration::from_secs_f64(POLL * 1.3));
    let ended = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    h01.end("art");
    let out = finish(child, Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    let touched = *stamps(h01, "touched").last().expect("h01 touched");
    let latency = touched - ended;
    let summary = summary_json(&out.stdout);
    let t = &summary["times"][0];
    let bound = t["end_noticed_within_s"].as_f64().unwrap();
    eprintln!(
        "last meeting ended -> node touched: {latency:.2} s (reported bound {bound:.1} s, poll {POLL} s)"
    );
    assert!(latency > 0.0, "touched before the class ended: {latency}");
    assert!(
        latency <= POLL + 1.0,
        "touched {latency:.2} s after the class ended, more than one poll + 1 s"
    );
    assert!(
        bound + 0.1 >= latency,
        "the bound {bound} is below the time {latency}"
    );
    assert!(bound <= POLL + 1.0, "{t}");
}
