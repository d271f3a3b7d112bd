//! Scalelite without a reachable API: rollout falls back to rake on the balancer host (here
//! the controller itself, `connection: local`, with a stand-in for `docker exec
//! scalelite-api bundle exec rake` that keeps its state in the Scalelite emulator). The
//! same registration, update, drain and re-enable work, `servers:disable` is never run, and
//! the BBB secret is never a task argument (the balancer host's process list would show it).

#[path = "pool_support/mod.rs"]
mod support;

use std::time::Duration;
use support::{Kind, Pool, finish, repo};

#[test]
fn scalelite_through_rake_when_the_api_is_unreachable() {
    let mut pool = Pool::new("rake", Kind::Scalelite, 2, &[]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    pool.url = Some(format!("http://127.0.0.1:{closed}/scalelite/api"));
    pool.top_hosts = "  hosts:\n    lb:\n      connection: local\n".into();
    let fake = repo().join("tests/fixtures/pool/fake-rake.py");
    pool.extra.push_str(&format!(
        "  host: lb\n  rake_command: python3 {}\n",
        fake.display()
    ));
    pool.write();
    let log = pool.dir.join("rake.log");
    let run = |pool: &Pool, args: &[&str]| {
        let inv = pool.inventory();
        let mut all = vec![args[0], inv.to_str().unwrap()];
        all.extend(&args[1..]);
        let mut cmd = pool.rollout(&all);
        cmd.env("FAKE_SCALELITE_URL", pool.balancer.url())
            .env("LOADBALANCER_SECRET", support::LB_SECRET)
            .env("FAKE_RAKE_LOG", &log);
        finish(cmd.spawn().unwrap(), Duration::from_secs(60))
    };

    let out = run(&pool, &["apply", "--limit", "bbb", "--output", "plain"]);
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("unreachable: connection refused; using rake on lb over SSH instead"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("h01  registered and enabled"),
        "{}",
        out.all()
    );
    pool.balancer
        .assert_state(pool.node("h02"), Some("enabled"));

    let out = run(&pool, &["apply", "--limit", "bbb", "--output", "plain"]);
    assert!(
        out.stdout.contains("h01  unchanged (enabled)"),
        "{}",
        out.all()
    );

    // A changed load multiplier and tag: updated in place, still enabled.
    pool.set_host_var("h02", "bbb_load_multiplier: 2.5");
    pool.set_host_var("h02", "bbb_balancer_tag: big");
    let out = run(&pool, &["apply", "--limit", "bbb", "--output", "plain"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("h02  updated load multiplier, tag; enabled"),
        "{}",
        out.all()
    );
    let out = run(&pool, &["apply", "--limit", "bbb", "--output", "plain"]);
    assert!(
        out.stdout.contains("h02  unchanged (enabled)"),
        "{}",
        out.all()
    );

    pool.balancer.wait_polled();
    pool.node("h01").meeting("bio", 1);
    let out = run(
        &pool,
        &[
            "drain",
            "--limit",
            "h01",
            "--timeout",
            "1s",
            "--output",
            "plain",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.all());
    pool.balancer
        .assert_state(pool.node("h01"), Some("cordoned"));
    assert_eq!(pool.node("h01").meetings().len(), 1);
    pool.node("h01").end("bio");
    let out = run(&pool, &["undrain", "--limit", "h01", "--output", "plain"]);
    assert_eq!(out.code, 0, "{}", out.all());
    pool.balancer
        .assert_state(pool.node("h01"), Some("enabled"));

    let tasks = std::fs::read_to_string(&log).unwrap();
    assert!(!tasks.contains(support::BBB_SECRET), "{tasks}");
    assert!(
        !tasks.contains("servers:add[") && !tasks.contains("servers:update["),
        "{tasks}"
    );
    assert_eq!(
        tasks
            .lines()
            .filter(|t| t.starts_with("servers:sync["))
            .collect::<Vec<_>>(),
        ["servers:sync[-,keep]"; 3],
        "two adds and one update, each with the secret on stdin: {tasks}"
    );
    // h02's tag, by the id rollout gave it: its host name and port.
    let h02 = pool.node("h02");
    assert!(
        tasks.contains(&format!(
            "servers:tag[{}-{},big]",
            h02.address, h02.proc.port
        )),
        "{tasks}"
    );
    assert!(
        tasks.lines().any(|t| t.starts_with("servers:cordon[")),
        "{tasks}"
    );
    assert!(
        tasks.lines().any(|t| t.starts_with("servers:enable[")),
        "{tasks}"
    );
    assert!(!tasks.contains("servers:disable"), "{tasks}");
}
