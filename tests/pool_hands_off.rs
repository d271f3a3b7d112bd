//! Hands off what a person did: a node someone took out of service in the balancer by hand
//! (Scalelite's `updateServer state=disable`, b3scale's `admin_state: stopped`, as their
//! tools send them) stays so through `rollout apply`, an `undrain` of other nodes and an
//! `upgrade` (which skips it), is reported each time, and `status` shows the balancer's
//! state with who set it. Only `rollout undrain --limit NODE` puts it back. Against the
//! BBB API, Scalelite and b3scale emulators on loopback (no lab).

#[path = "pool_support/mod.rs"]
mod support;

use std::time::Duration;
use support::{Kind, Pool};

const T: Duration = Duration::from_secs(90);

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn status(pool: &Pool) -> serde_json::Value {
    let out = pool.run("status", &["--output", "json"], T);
    out.assert_no_secrets();
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.all()))
}

fn hands_off(kind: Kind) {
    let pool = Pool::new("hands-off", kind, 3, &[]);
    let out = pool.run("apply", &["--output", "plain"], T);
    assert_eq!(out.code, 0, "{}", out.all());
    pool.balancer.wait_polled();
    let (h01, h02, h03) = (pool.node("h01"), pool.node("h02"), pool.node("h03"));
    let by_hand = pool.balancer.by_hand_state();

    // Someone takes h02 out by hand (hardware trouble).
    pool.balancer.take_out_by_hand(h02);
    pool.balancer.assert_state(h02, Some(by_hand));

    // apply leaves it, says so on its line and in the summary, and exits 0.
    let out = pool.run("apply", &["--output", "plain"], T);
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    let line =
        format!("h02  left {by_hand}: set outside rollout (found {by_hand} in the balancer ");
    assert!(out.stdout.contains(&line), "{}", out.all());
    assert!(
        out.stdout
            .contains("; `rollout undrain --limit h02` puts it back"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout
            .contains("1 node(s) left out of service as someone outside rollout set them: h02"),
        "{}",
        out.all()
    );
    pool.balancer.assert_state(h02, Some(by_hand));
    // The JSON result carries who set it.
    let out = pool.run("apply", &["--output", "json"], T);
    assert_eq!(out.code, 0, "{}", out.all());
    let balancer = json_lines(&out.stdout)
        .into_iter()
        .find(|v| v["event"] == "balancer")
        .unwrap_or_else(|| panic!("no balancer object: {}", out.all()));
    let outside = balancer["nodes"][1]["outside"].as_str().unwrap_or_default();
    assert!(
        outside.starts_with(&format!(
            "set outside rollout (found {by_hand} in the balancer "
        )),
        "{balancer}"
    );
    assert!(balancer["nodes"][0].get("outside").is_none(), "{balancer}");
    pool.balancer.assert_state(h02, Some(by_hand));

    // status: the balancer's state and who set it.
    let v = status(&pool);
    assert_eq!(v["nodes"][1]["state"], by_hand, "{v}");
    let set_by = v["nodes"][1]["set_by"].as_str().unwrap_or_default();
    assert!(set_by.starts_with("outside rollout (found "), "{v}");
    assert!(
        v["nodes"][1]["note"]
            .as_str()
            .unwrap_or_default()
            .contains("taken out of service outside rollout"),
        "{v}"
    );

    // A drain of h01 is rollout's doing, and status says whose.
    let out = pool.run("drain", &["--limit", "h01", "--output", "plain"], T);
    assert_eq!(out.code, 0, "{}", out.all());
    let v = status(&pool);
    let set_by = v["nodes"][0]["set_by"].as_str().unwrap_or_default();
    assert!(set_by.starts_with("rollout drain, "), "{v}");

    // undrain of the group puts h01 back and leaves h02.
    let out = pool.run("undrain", &["--limit", "bbb", "--output", "json"], T);
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    let summary = json_lines(&out.stdout)
        .into_iter()
        .find(|v| v["event"] == "summary")
        .unwrap();
    assert_eq!(summary["left"], serde_json::json!(["h02"]), "{}", out.all());
    assert!(
        out.stdout
            .contains("selected only through a group, so not changed"),
        "{}",
        out.all()
    );
    pool.balancer.assert_state(h01, Some("enabled"));
    pool.balancer.assert_state(h02, Some(by_hand));
    pool.balancer.wait_polled();

    // upgrade skips h02 and upgrades the others.
    let out = pool.run("upgrade", &["--output", "plain"], T);
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains(
            "upgrade: 2 node(s) upgraded, 1 skipped (out of service as someone outside rollout set it)"
        ),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains(&format!(
            "  h02: skipped, left {by_hand}: set outside rollout"
        )),
        "{}",
        out.all()
    );
    assert_eq!((h01.upgrades(), h02.upgrades(), h03.upgrades()), (1, 0, 1));
    pool.balancer.assert_state(h02, Some(by_hand));

    // Named, it goes back, and the journal says rollout did it.
    let out = pool.run("undrain", &["--limit", "h02", "--output", "plain"], T);
    assert_eq!(out.code, 0, "{}", out.all());
    pool.balancer.assert_state(h02, Some("enabled"));
    let v = status(&pool);
    let set_by = v["nodes"][1]["set_by"].as_str().unwrap_or_default();
    assert!(set_by.starts_with("rollout undrain, "), "{v}");
}

#[test]
fn scalelite_a_node_disabled_by_hand_stays_disabled() {
    hands_off(Kind::Scalelite);
}

#[test]
fn b3scale_a_backend_stopped_by_hand_stays_stopped() {
    hands_off(Kind::B3scale);
}
