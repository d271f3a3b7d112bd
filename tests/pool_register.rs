//! `rollout apply` registers the healthy BBB nodes with the balancer, enables them, and a
//! second apply changes nothing there. Against the Scalelite and b3scale emulators, with the
//! nodes as BBB API emulators on loopback (no SSH).

#[path = "pool_support/mod.rs"]
mod support;

use std::time::Duration;
use support::{Kind, Pool};

fn registers_only_healthy_nodes(kind: Kind) {
    // h03's API secret is not the one in the inventory: its health check fails.
    let pool = Pool::new("register", kind, 3, &["h03"]);
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    out.assert_no_secrets();
    assert_eq!(out.code, 1, "{}", out.all());
    let text = out.all();
    assert!(text.contains("h01  registered and enabled"), "{text}");
    assert!(text.contains("h02  registered and enabled"), "{text}");
    assert!(
        text.contains("h03  NOT registered: health check failed:"),
        "{text}"
    );
    assert!(text.contains("checksumError"), "{text}");
    pool.balancer
        .assert_state(pool.node("h01"), Some("enabled"));
    pool.balancer
        .assert_state(pool.node("h02"), Some("enabled"));
    pool.balancer.assert_state(pool.node("h03"), None);

    // Again: nothing changes in the balancer.
    let changes = pool.balancer.changes();
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert!(
        out.all().contains("h01  unchanged (enabled)"),
        "{}",
        out.all()
    );
    assert!(
        out.all().contains("h02  unchanged (enabled)"),
        "{}",
        out.all()
    );
    assert_eq!(
        pool.balancer.changes(),
        changes,
        "a second apply changed the balancer"
    );
}

#[test]
fn scalelite_apply_registers_only_healthy_nodes() {
    registers_only_healthy_nodes(Kind::Scalelite);
}

#[test]
fn b3scale_apply_registers_only_healthy_nodes() {
    registers_only_healthy_nodes(Kind::B3scale);
}

fn updates_what_differs(kind: Kind) {
    let mut pool = Pool::new("update", kind, 2, &[]);
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    pool.set_host_var("h02", "bbb_load_multiplier: 2.5");
    pool.set_host_var("h02", "bbb_balancer_tag: big");
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.all().contains("h01  unchanged (enabled)"),
        "{}",
        out.all()
    );
    assert!(
        out.all()
            .contains("h02  updated load multiplier, tag; enabled"),
        "{}",
        out.all()
    );
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert!(
        out.all().contains("h02  unchanged (enabled)"),
        "{}",
        out.all()
    );
}

#[test]
fn scalelite_apply_updates_what_differs() {
    updates_what_differs(Kind::Scalelite);
}

#[test]
fn b3scale_apply_updates_what_differs() {
    updates_what_differs(Kind::B3scale);
}
