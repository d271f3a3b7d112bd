//! The PostgreSQL state backend (issue 12, item 3), against a real PostgreSQL that this test
//! starts itself (Debian's `postgresql` package: initdb and pg_ctl from
//! /usr/lib/postgresql/*/bin, as the unprivileged user `nobody` when run as root), on a Unix
//! socket in a temporary folder, password-protected (SCRAM), stopped when the test ends.
//!
//! Two controllers (two rollout processes with separate local state folders, as on two
//! machines) upgrading one pool at once never have more than one batch out of service
//! (read from the Scalelite emulator's own history); the one that waits names the holder;
//! a lost connection mid-upgrade stops the run, takes no further node out and says so, and a
//! later run resumes; the URL and its password are never printed.

#[path = "pool_support/pg.rs"]
mod pg;
#[path = "pool_support/mod.rs"]
mod support;

use pg::{PG_PASSWORD, Postgres, controller, no_secrets, pool};
use std::path::Path;
use std::time::Duration;
use support::{Kind, Pool, finish, tempdir, wait_until};

fn dir_of(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn two_controllers_share_one_lock_and_never_exceed_the_batch() {
    let pg = Postgres::start("two");
    let pool = pool("pg-two", 4, 1);
    let out = finish(
        controller(&pool, &pg, "a", "apply", &["--output", "plain"]),
        Duration::from_secs(60),
    );
    no_secrets(&out, &pg);
    assert_eq!(out.code, 0, "{}", out.all());
    pool.balancer.wait_polled();
    // A class on h01 keeps the first controller's first batch out for a while.
    pool.node("h01").meeting("art", 2);
    let from = pool.balancer.history().len();
    // In the inventory's order: h01 first, whatever its meetings.
    let a = controller(
        &pool,
        &pg,
        "a",
        "upgrade",
        &[
            "--batch-size",
            "1",
            "--order",
            "inventory",
            "--output",
            "plain",
        ],
    );
    let h01 = pool.node("h01");
    wait_until(Duration::from_secs(60), "h01 cordoned", || {
        pool.balancer.state_of(h01).as_deref() == Some("cordoned")
    });
    // A third controller that does not wait is refused, naming the holder.
    let c = finish(
        controller(
            &pool,
            &pg,
            "c",
            "drain",
            &["--limit", "h04", "--output", "plain"],
        ),
        Duration::from_secs(30),
    );
    no_secrets(&c, &pg);
    assert_eq!(c.code, 1, "{}", c.all());
    let apid = a.id();
    assert!(
        c.all()
            .contains("another rollout is working on pool `berlin`: `rollout upgrade` by ")
            && c.all().contains(&format!("(pid {apid}) since ")),
        "{}",
        c.all()
    );
    // The second controller waits for the first, told whom it waits for.
    let b = controller(
        &pool,
        &pg,
        "b",
        "upgrade",
        &["--batch-size", "1", "--wait", "3m", "--output", "plain"],
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        pool.balancer.max_out_of_service(from),
        1,
        "only the first controller's batch is out"
    );
    h01.end("art");
    let a = finish(a, Duration::from_secs(120));
    let b = finish(b, Duration::from_secs(180));
    no_secrets(&a, &pg);
    no_secrets(&b, &pg);
    assert_eq!(a.code, 0, "{}", a.all());
    assert_eq!(b.code, 0, "{}", b.all());
    assert!(
        b.stderr.contains(
            "waiting up to 3m00s for the lock of pool `berlin`, held by `rollout upgrade` by "
        ) && b.stderr.contains(&format!("(pid {apid})")),
        "{}",
        b.all()
    );
    eprintln!(
        "--- the refused controller:\n{}\n--- the waiting controller:\n{}",
        c.all(),
        b.all()
    );
    assert!(
        a.stdout.contains("upgrade: 4 node(s) upgraded"),
        "{}",
        a.all()
    );
    assert!(
        b.stdout.contains("upgrade: 4 node(s) upgraded"),
        "{}",
        b.all()
    );
    for (h, bbb) in &pool.nodes {
        assert_eq!(bbb.upgrades(), 2, "{h}: upgraded once by each controller");
        assert_eq!(
            pool.balancer.state_of(bbb).as_deref(),
            Some("enabled"),
            "{h}"
        );
    }
    assert_eq!(
        pool.balancer.max_out_of_service(from),
        1,
        "never more than the batch (1) out of service, across both controllers"
    );
    // The journal is in the tables, of schema version 1, and nobody holds the lock.
    assert_eq!(
        pg.query("SELECT max(version) FROM rollout_schema"),
        vec![vec!["1".to_string()]]
    );
    let phases =
        pg.query("SELECT host, phase FROM rollout_nodes WHERE pool = 'berlin' ORDER BY host");
    assert_eq!(phases.len(), 4, "{phases:?}");
    assert!(phases.iter().all(|r| r[1] == "done"), "{phases:?}");
    assert!(pg.query("SELECT pool FROM rollout_lock_holders").is_empty());
    // status on a third machine reads the shared journal.
    let s = finish(
        controller(&pool, &pg, "c", "status", &["--output", "json"]),
        Duration::from_secs(30),
    );
    no_secrets(&s, &pg);
    let v: serde_json::Value = serde_json::from_str(s.stdout.trim()).unwrap();
    for row in v["nodes"].as_array().unwrap() {
        assert!(row["last_rollout"].as_u64().is_some(), "{row}");
    }
    let _ = dir_of(&pool.dir);
}

#[test]
fn a_lost_connection_stops_the_upgrade_and_a_later_run_resumes() {
    let pg = Postgres::start("lost");
    let pool = pool("pg-lost", 3, 4);
    let out = finish(
        controller(&pool, &pg, "a", "apply", &["--output", "plain"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    pool.balancer.wait_polled();
    let from = pool.balancer.history().len();
    let a = controller(
        &pool,
        &pg,
        "a",
        "upgrade",
        &["--batch-size", "1", "--output", "plain"],
    );
    let h01 = pool.node("h01");
    // Its apply (4 s), as the shared journal says: not earlier (the upgrade stages h01 and
    // checks its meetings after the cordon; a database lost then fails h01 differently).
    wait_until(Duration::from_secs(60), "h01 applying", || {
        pg.query("SELECT phase FROM rollout_nodes WHERE pool = 'berlin' AND host = 'h01'")
            .first()
            .is_some_and(|r| r[0] == "applying")
    });
    let state = pool.balancer.state_of(h01);
    assert!(
        matches!(state.as_deref(), Some("cordoned" | "disabled")),
        "h01 is out of service while it applies: {state:?}"
    );
    // The database goes away while h01 is being upgraded (4 s).
    pg.down();
    let started = std::time::Instant::now();
    let a = finish(a, Duration::from_secs(60));
    no_secrets(&a, &pg);
    assert_eq!(a.code, 1, "{}", a.all());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "it stops at once"
    );
    assert!(
        a.all()
            .contains("lost the connection to the state database")
            && a.all().contains("takes no further node out of service")
            && a.all()
                .contains("Out of service, as the journal says: h01 ("),
        "{}",
        a.all()
    );
    // No node but h01 was ever taken out.
    std::thread::sleep(Duration::from_secs(2));
    for h in ["h02", "h03"] {
        let id = pool.node(h);
        assert_eq!(
            pool.balancer.state_of(id).as_deref(),
            Some("enabled"),
            "{h}"
        );
    }
    assert_eq!(pool.balancer.max_out_of_service(from), 1);
    // Out of service (a cordoned server without load turns disabled, as in Scalelite).
    let h01_state = pool.balancer.state_of(h01);
    assert!(
        matches!(h01_state.as_deref(), Some("cordoned" | "disabled")),
        "h01 is left out of service, as the journal says: {h01_state:?}"
    );
    eprintln!("--- the stopped controller:\n{}", a.all());
    // Without the database, nothing can take the lock.
    let b = finish(
        controller(&pool, &pg, "b", "upgrade", &["--output", "plain"]),
        Duration::from_secs(30),
    );
    no_secrets(&b, &pg);
    assert_eq!(b.code, 1, "{}", b.all());
    assert!(
        b.all().contains("state database: connecting: "),
        "{}",
        b.all()
    );
    // Back up: another controller resumes the run where it stopped.
    pg.up();
    let b = finish(
        controller(
            &pool,
            &pg,
            "b",
            "upgrade",
            &["--batch-size", "1", "--output", "plain"],
        ),
        Duration::from_secs(120),
    );
    no_secrets(&b, &pg);
    assert_eq!(b.code, 0, "{}", b.all());
    assert!(
        b.stdout.contains("resuming the upgrade started "),
        "{}",
        b.all()
    );
    eprintln!("--- the resumed run:\n{}", b.all());
    for (h, bbb) in &pool.nodes {
        assert_eq!(
            pool.balancer.state_of(bbb).as_deref(),
            Some("enabled"),
            "{h}"
        );
    }
    assert_eq!(pool.balancer.max_out_of_service(from), 1);
}

#[test]
fn bad_state_settings_are_located_and_never_show_the_url() {
    let mut pool = Pool::new("pg-bad", Kind::Scalelite, 1, &[]);
    let secret_url = format!("postgresql://rollout:{PG_PASSWORD}@db.example.org/rollout");
    let cases: &[(&str, &str)] = &[
        (
            "state:\n  backend: postgresql\n  url: \"postgresql://u@h/d\"\n",
            "state: `url` must be a secret reference, not the URL itself",
        ),
        (
            "state:\n  backend: postgres\n  url: {secret: \"env:ROLLOUT_TEST_STATE_URL\"}\n",
            "state: unknown backend `postgres`",
        ),
        (
            "state:\n  backend: postgresql\n  urll: {secret: \"env:ROLLOUT_TEST_STATE_URL\"}\n",
            "state: unknown key `urll`",
        ),
        (
            "state:\n  backend: postgresql\n  url: {secret: \"env:ROLLOUT_TEST_STATE_URL\"}\n",
            "state: `url`: says neither sslmode=require",
        ),
        (
            "state:\n  backend: local\n  pool: x\n",
            "state: `pool` is for `backend: postgresql`",
        ),
    ];
    for (tail, want) in cases {
        pool.tail = (*tail).into();
        pool.write();
        let inv = pool.inventory();
        let out = finish(
            pool.rollout(&["upgrade", inv.to_str().unwrap()])
                .env("ROLLOUT_TEST_STATE_URL", &secret_url)
                .spawn()
                .unwrap(),
            Duration::from_secs(30),
        );
        assert_eq!(out.code, 2, "{tail}: {}", out.all());
        assert!(out.stderr.contains(want), "{tail}: {}", out.all());
        assert!(
            out.stderr.contains(&format!("{}:", inv.display())),
            "located: {}",
            out.all()
        );
        assert!(!out.all().contains(PG_PASSWORD), "{}", out.all());
    }
    // Nothing was touched: no node left the pool.
    assert_eq!(pool.balancer.changes(), 0);
    // A database that cannot be reached: exit 1, before anything changes, without the URL.
    pool.tail =
        "state:\n  backend: postgresql\n  url: {secret: \"env:ROLLOUT_TEST_STATE_URL\"}\n".into();
    pool.write();
    let inv = pool.inventory();
    let dir = tempdir("pg-none");
    let url = format!(
        "host={} user=rollout password={PG_PASSWORD} dbname=x",
        dir.display()
    );
    let out = finish(
        pool.rollout(&["upgrade", inv.to_str().unwrap()])
            .env("ROLLOUT_TEST_STATE_URL", &url)
            .spawn()
            .unwrap(),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.all().contains("state database: connecting: "),
        "{}",
        out.all()
    );
    assert!(!out.all().contains(PG_PASSWORD), "{}", out.all());
    assert!(!out.all().contains(&url), "{}", out.all());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sslmode_require_uses_tls_and_verifies_the_certificate() {
    let pg = Postgres::start_with("tls", true);
    let mut pool = Pool::new("pg-tls", Kind::Scalelite, 2, &[]);
    pool.tail =
        "state:\n  backend: postgresql\n  url: {secret: \"env:ROLLOUT_TEST_STATE_URL\"}\n".into();
    pool.write();
    let out = finish(
        controller(&pool, &pg, "a", "apply", &["--output", "plain"]),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    pool.balancer.wait_polled();
    let drain = |url: String| {
        let inv = pool.inventory();
        finish(
            pool.rollout(&[
                "drain",
                inv.to_str().unwrap(),
                "--limit",
                "h01",
                "--output",
                "plain",
            ])
            .env("ROLLOUT_TEST_STATE_URL", &url)
            .spawn()
            .unwrap(),
            Duration::from_secs(60),
        )
    };
    // The server's certificate is self-signed: `require` refuses it, before anything changes.
    let out = drain(pg.tcp_url("require"));
    no_secrets(&out, &pg);
    assert!(!out.all().contains(&pg.tcp_url("require")), "{}", out.all());
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.all().contains("state database: connecting: ") && out.all().contains("certificate"),
        "{}",
        out.all()
    );
    assert_eq!(
        pool.balancer.state_of(pool.node("h01")).as_deref(),
        Some("enabled")
    );
    // `disable` over TCP: no TLS, and the drain goes through.
    let out = drain(pg.tcp_url("disable"));
    no_secrets(&out, &pg);
    assert_eq!(out.code, 0, "{}", out.all());
    eprintln!(
        "--- sslmode=require against a self-signed certificate:\n{}",
        drain(pg.tcp_url("require")).all()
    );
}
