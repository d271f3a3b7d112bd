//! The health gate on lab hosts (real sshd, real SSH, the lab's stand-in bbb-install.sh with
//! its services as systemd units), with the Scalelite emulator on the controller: apply
//! registers both nodes after their services and the create/join/end round trip pass, and
//! leaves no meeting; a stopped service (`systemctl stop bbb-webrtc-sfu`) keeps a drained
//! node out of the pool on `undrain`, the service named on its line.
//!
//! Runs only with ROLLOUT_LAB_TESTS=1 (and root; ignored otherwise); fails if the lab cannot
//! start then. Lab name `hgate`.

mod common;
#[path = "pool_support/lab.rs"]
mod lab_pool;
#[path = "pool_support/mod.rs"]
mod support;

use lab_pool::LabPool;

const LAB: &str = "hgate";

#[test]
#[cfg_attr(
    not(lab_tests),
    ignore = "needs the lab: run as root with ROLLOUT_LAB_TESTS=1 (see README)"
)]
fn a_stopped_service_keeps_the_node_out_of_the_pool() {
    let pool = LabPool::start(LAB, 2, 30);
    let (lab, balancer) = (&pool.lab, &pool.balancer);
    let ip = |h: &str| pool.ip(h);
    let run = |args: &[&str], limit: u64| pool.run(args, limit);

    // 1. Install and register: the gate passes on both nodes (every service up, the round
    // trip done) and leaves no meeting.
    let out = run(&["apply", "--output", "plain"], 600);
    println!("$ rollout apply pool-test.yml\n{}", out.stdout);
    assert_eq!(out.code, 0, "{}", out.all());
    for h in &lab.hosts {
        assert!(
            out.stdout
                .contains(&format!("  {h}  registered and enabled")),
            "{}",
            out.all()
        );
    }
    println!(
        "$ bbb-conf --status (h02)\n{}",
        lab.ssh_ok("h02", "bbb-conf --status")
    );
    let h02 = rollout::bbb_api::Endpoint::new(
        &format!("http://{}/bigbluebutton/api", ip("h02")),
        support::BBB_SECRET,
    );
    let meetings = support::get(&h02.signed("getMeetings", ""));
    assert!(meetings.contains("noMeetings"), "{meetings}");

    // 2. A service dies on a drained node: undrain refuses it, naming the service, and
    // leaves it out of service.
    let out = run(&["drain", "--limit", "h02", "--output", "plain"], 120);
    assert_eq!(out.code, 0, "{}", out.all());
    let state_of_h02 = || {
        balancer
            .states()
            .into_iter()
            .find(|(u, _)| u.contains(&ip("h02")))
            .expect("h02 is registered")
            .1
    };
    let drained = state_of_h02();
    assert_ne!(drained, "enabled");
    lab.ssh_ok("h02", "systemctl stop bbb-webrtc-sfu");
    let out = run(&["undrain", "--limit", "h02", "--output", "plain"], 180);
    println!(
        "$ rollout undrain pool-test.yml --limit h02\n{}",
        out.stdout
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains("h02: FAILED: health check failed")
            && out
                .stdout
                .contains("BBB services not running: bbb-webrtc-sfu (inactive)"),
        "{}",
        out.all()
    );
    // Still out of service. (Scalelite's poller turns a cordoned server without meetings
    // into a disabled one by itself, so the state may have moved from the drain's.)
    assert_ne!(state_of_h02(), "enabled");
}
