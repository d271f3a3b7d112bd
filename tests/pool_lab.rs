//! End to end on lab hosts (real sshd, real SSH, the lab's stand-in bbb-install.sh running a
//! BBB API emulator on each node), with the Scalelite emulator on the controller polling the
//! nodes over the lab bridge: apply registers the nodes; drain of a node with a running class
//! waits and times out with the class alive; a rolling upgrade in batches of 2 re-runs the
//! installer on every node with never more than 2 out of service, and enables them again.
//!
//! Runs only with ROLLOUT_LAB_TESTS=1 (and root; ignored otherwise); fails if the lab cannot start then.

mod common;
#[path = "pool_support/lab.rs"]
mod lab_pool;
#[path = "pool_support/mod.rs"]
mod support;

use lab_pool::LabPool;
use std::time::Duration;
use support::finish;

const LAB: &str = "rolling";
const N: usize = 4;

/// Takes the lab down however the test ends.
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        common::note_proxy_races(LAB);
        let _ = std::process::Command::new(common::repo().join("lab/lab"))
            .args(["down", "--name", LAB])
            .output();
    }
}

#[test]
#[cfg_attr(
    not(lab_tests),
    ignore = "needs the lab: run as root with ROLLOUT_LAB_TESTS=1 (see README)"
)]
fn lab_drain_and_rolling_upgrade_over_ssh() {
    let pool = LabPool::start(LAB, N, 60);
    let _down = Down;
    let (lab, balancer) = (&pool.lab, &pool.balancer);
    let run = |args: &[&str], limit: u64| pool.run(args, limit);

    // 1. Install and register.
    let out = run(&["apply", "--output", "plain"], 600);
    assert_eq!(out.code, 0, "{}", out.all());
    for h in lab.hosts.iter() {
        assert!(
            out.stdout
                .contains(&format!("  {h}  registered and enabled")),
            "{}",
            out.all()
        );
    }
    let out = run(&["apply", "--output", "plain"], 300);
    assert_eq!(
        common::summary_counts(&out.stdout).1,
        0,
        "second apply changes nothing:\n{}",
        out.all()
    );
    assert!(
        out.stdout.contains("h01  unchanged (enabled)"),
        "{}",
        out.all()
    );
    balancer.wait_polled();

    // 2. A class on h02: the drain waits, times out, the class goes on.
    let h02 = &pool.ip("h02");
    let ep = rollout::bbb_api::Endpoint::new(
        &format!("http://{h02}/bigbluebutton/api"),
        support::BBB_SECRET,
    );
    assert!(
        support::get(&ep.signed(
            "create",
            "meetingID=lab-class&name=lab-class&moderatorPW=mp"
        ))
        .contains("SUCCESS")
    );
    assert!(
        support::get(&ep.signed(
            "join",
            "meetingID=lab-class&fullName=pupil&role=VIEWER&redirect=false"
        ))
        .contains("SUCCESS")
    );
    let out = run(
        &[
            "drain",
            "--limit",
            "h02",
            "--timeout",
            "3s",
            "--output",
            "plain",
        ],
        120,
    );
    println!(
        "$ rollout drain pool.yml --limit h02 --timeout 3s\n{}",
        out.stdout
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("h02: still cordoned after 3s: 1 meeting(s) with 1 participant(s) left"),
        "{}",
        out.all()
    );
    assert!(
        support::get(&ep.signed("isMeetingRunning", "meetingID=lab-class"))
            .contains("<running>true</running>")
    );
    // Without a timeout the drain waits until the class ends, however long that takes.
    let child = pool
        .command(&["drain", "--limit", "h02", "--output", "plain"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        support::get(&ep.signed("isMeetingRunning", "meetingID=lab-class"))
            .contains("<running>true</running>")
    );
    assert!(support::get(&ep.signed("end", "meetingID=lab-class&password=mp")).contains("SUCCESS"));
    let out = finish(child, Duration::from_secs(60));
    println!("$ rollout drain pool.yml --limit h02\n{}", out.stdout);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("h02: drained: no meetings left"),
        "{}",
        out.all()
    );
    let out = run(&["undrain", "--limit", "h02", "--output", "plain"], 120);
    assert_eq!(out.code, 0, "{}", out.all());
    balancer.wait_polled();

    // 3. Rolling upgrade in batches of 2.
    let from = balancer.history().len();
    let out = run(&["upgrade", "--batch-size", "2", "--output", "plain"], 900);
    println!("$ rollout upgrade pool.yml --batch-size 2\n{}", out.stdout);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains(&format!("upgrade: {N} node(s) upgraded")),
        "{}",
        out.all()
    );
    assert_eq!(
        balancer.max_out_of_service(from),
        2,
        "{:?}",
        &balancer.history()[from..]
    );
    for (h, s) in balancer.states() {
        assert_eq!(s, "enabled", "{h}");
    }
    let out = run(&["status"], 120);
    assert_eq!(out.code, 0, "{}", out.all());
    println!("$ rollout status pool.yml\n{}", out.stdout);
}
