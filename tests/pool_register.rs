//! `rollout apply` registers the healthy BBB nodes with the balancer, enables them, and a
//! second apply changes nothing there. Against the Scalelite and b3scale emulators, with the
//! nodes as BBB API emulators on loopback (no SSH).

#[path = "pool_support/mod.rs"]
mod support;

use std::time::Duration;
use support::{Kind, Pool};

fn registers_only_healthy_nodes(kind: Kind, tls: bool) {
    // h03's API secret is not the one in the inventory: its health check fails.
    let pool = if tls {
        Pool::new_tls("register-tls", kind, 3, &["h03"])
    } else {
        Pool::new("register", kind, 3, &["h03"])
    };
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    out.assert_no_secrets();
    assert_eq!(out.code, 1, "{}", out.all());
    let text = out.all();
    // b3scale: each node's agent registered its backend (admin_state init) before the apply.
    let (enabled, failed, left) = match kind {
        Kind::Scalelite => (
            "registered and enabled",
            "h03  NOT registered: health check failed:",
            None,
        ),
        Kind::B3scale => (
            "enabled (was disabled)",
            "h03  left disabled: health check failed:",
            Some("disabled"),
        ),
    };
    assert!(text.contains(&format!("h01  {enabled}")), "{text}");
    assert!(text.contains(&format!("h02  {enabled}")), "{text}");
    assert!(text.contains(failed), "{text}");
    assert!(text.contains("checksumError"), "{text}");
    pool.balancer
        .assert_state(pool.node("h01"), Some("enabled"));
    pool.balancer
        .assert_state(pool.node("h02"), Some("enabled"));
    pool.balancer.assert_state(pool.node("h03"), left);

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
    registers_only_healthy_nodes(Kind::Scalelite, false);
}

#[test]
fn b3scale_apply_registers_only_healthy_nodes() {
    registers_only_healthy_nodes(Kind::B3scale, false);
}

/// The same over HTTPS: the balancer's API and every node's API serve certificates of an
/// internal CA (made by the test), which the inventory trusts through `balancer: ca_file`
/// and `bbb_api_ca_file`; the balancer emulator polls the nodes over HTTPS too.
#[test]
fn scalelite_apply_registers_only_healthy_nodes_over_https() {
    registers_only_healthy_nodes(Kind::Scalelite, true);
}

#[test]
fn b3scale_apply_registers_only_healthy_nodes_over_https() {
    registers_only_healthy_nodes(Kind::B3scale, true);
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

/// b3scale: a node whose agent starts late is registered once the agent has registered its
/// backend and sent a heartbeat (bounded by `health_timeout`); then it is routable.
#[test]
fn b3scale_registration_waits_for_the_agent() {
    let mut pool = Pool::with_agents("b3-wait", Kind::B3scale, 2, &[], Some(&["h01"]));
    pool.extra = "  health_timeout: 15\n  poll_interval: 0.2\n".into();
    pool.write();
    let child = pool.spawn("apply", &["--output", "plain"]);
    std::thread::sleep(Duration::from_secs(2));
    assert!(pool.balancer.backend_of(pool.node("h02")).is_none());
    pool.start_agent("h02");
    let out = support::finish(child, Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.all().contains("h02  registered and enabled"),
        "{}",
        out.all()
    );
    let b = pool.balancer.backend_of(pool.node("h02")).unwrap();
    assert_eq!(b["agent_ref"], "h02");
    assert_eq!(
        (b["admin_state"].as_str(), b["node_state"].as_str()),
        (Some("ready"), Some("ready"))
    );
}

/// b3scale: a node without an agent never counts as registered; the line names the node and
/// the cause. A backend an admin added (no agent_ref) is enabled but reported unroutable.
#[test]
fn b3scale_node_without_agent_is_not_registered() {
    let pool = Pool::with_agents("b3-noagent", Kind::B3scale, 2, &[], Some(&["h01"]));
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    out.assert_no_secrets();
    assert_eq!(out.code, 1, "{}", out.all());
    let text = out.all();
    assert!(text.contains("h01  enabled (was disabled)"), "{text}");
    assert!(
        text.contains("h02  b3scale at ")
            && text.contains("is b3scaleagent installed and running on the node"),
        "{text}"
    );
    assert!(pool.balancer.backend_of(pool.node("h02")).is_none());
}

/// b3scale: once a node's agent stops, its heartbeat expires after b3scale's 5 s and the next
/// apply reports the node as not routable, naming the agent and the cause.
#[test]
fn b3scale_heartbeat_expiry_makes_the_node_unroutable() {
    let mut pool = Pool::new("b3-expiry", Kind::B3scale, 2, &[]);
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    pool.stop_agent("h02");
    std::thread::sleep(Duration::from_secs(6));
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert_eq!(out.code, 1, "{}", out.all());
    let text = out.all();
    assert!(text.contains("h01  unchanged (enabled)"), "{text}");
    assert!(
        text.contains("h02  unchanged (enabled), but NOT routable:")
            && text.contains("no heartbeat from its node agent `h02` within the last 5 s"),
        "{text}"
    );
}

/// Scalelite as the roles deploy it (`SERVER_ID_IS_HOSTNAME=true`): a node's server id is its
/// URL's host name (app/models/server.rb v1.8.5). A second node whose URL has the same host
/// (another port) cannot be added (Scalelite would answer a bare 500): rollout says so for
/// that node, naming the server that holds the id, sends nothing, and leaves the others as
/// they are.
#[test]
fn scalelite_server_ids_are_host_names_and_one_host_holds_one_id() {
    let mut pool = Pool::new("register-hostname", Kind::Scalelite, 2, &[]);
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    let mut ids: Vec<String> = pool
        .balancer
        .listed()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["127.0.0.11", "127.0.0.12"]);

    // h03 runs on h01's host, on another port.
    let address = pool.node("h01").address.clone();
    let h03 = support::Bbb::start(
        &pool.dir.join("h03"),
        &support::node_secret("h03"),
        &address,
    );
    pool.nodes.push(("h03".into(), h03));
    pool.host_vars.push(String::new());
    pool.write();
    let changes = pool.balancer.changes();
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    out.assert_no_secrets();
    assert_eq!(out.code, 1, "{}", out.all());
    let text = out.all();
    assert!(text.contains("h01  unchanged (enabled)"), "{text}");
    assert!(
        text.contains(&format!(
            "h03  {}: cannot add {}: Scalelite already has a server with id `{address}`, this URL's host name (SERVER_ID_IS_HOSTNAME=true), at {}; remove that server or give this node its own host name",
            pool.balancer.describe(),
            pool.node("h03").api(),
            pool.node("h01").api()
        )),
        "{text}"
    );
    assert_eq!(pool.balancer.changes(), changes, "the balancer changed");
    assert_eq!(pool.balancer.listed().len(), 2);
}
