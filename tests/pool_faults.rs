//! Transient balancer faults are retried, lasting ones reported: the balancer's emulator sits
//! behind a proxy that answers `502 Bad Gateway` (as nginx in front of a restarting Scalelite
//! or b3scale does) to a given number of requests before it passes them on.

#[path = "pool_support/mod.rs"]
mod support;

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::{Kind, Pool, bad_gateway};

/// A proxy on loopback in front of `upstream` (`127.0.0.1:PORT`): the first `fail` requests
/// get a 502 and a closed connection, later connections are piped to `upstream`. Stops with
/// the test process.
struct Flaky {
    port: u16,
    failed: Arc<AtomicUsize>,
}

impl Flaky {
    fn start(upstream: String, fail: usize) -> Flaky {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let failed = Arc::new(AtomicUsize::new(0));
        let count = failed.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                if count.load(Ordering::SeqCst) < fail {
                    count.fetch_add(1, Ordering::SeqCst);
                    bad_gateway(conn);
                    continue;
                }
                let Ok(up) = TcpStream::connect(&upstream) else {
                    continue;
                };
                pipe(conn.try_clone().unwrap(), up.try_clone().unwrap());
                pipe(up, conn);
            }
        });
        Flaky { port, failed }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

/// A pool of `n` nodes whose balancer is reached through a [`Flaky`] proxy.
fn behind_proxy(name: &str, kind: Kind, n: usize, fail: usize) -> (Pool, Flaky) {
    let mut pool = Pool::new(name, kind, n, &[]);
    let direct = pool.balancer.url();
    let rest = direct.strip_prefix("http://").unwrap();
    let (upstream, path) = match rest.split_once('/') {
        Some((u, p)) => (u, format!("/{p}")),
        None => (rest, String::new()),
    };
    let flaky = Flaky::start(upstream.to_string(), fail);
    pool.url = Some(format!("http://127.0.0.1:{}{path}", flaky.port));
    pool.write();
    (pool, flaky)
}

fn registration_rides_out_a_brief_outage(kind: Kind) {
    let (pool, flaky) = behind_proxy("fault-502", kind, 2, 2);
    let out = pool.run(
        "apply",
        &["-v", "--output", "plain"],
        Duration::from_secs(90),
    );
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(flaky.failed.load(Ordering::SeqCst), 2);
    assert!(
        out.stderr.contains("HTTP 502") && out.stderr.contains("retrying in"),
        "-v tells of each retry\n{}",
        out.all()
    );
    for (_, bbb) in &pool.nodes {
        pool.balancer.assert_state(bbb, Some("enabled"));
    }
}

#[test]
fn scalelite_registration_rides_out_a_brief_outage() {
    registration_rides_out_a_brief_outage(Kind::Scalelite);
}

#[test]
fn b3scale_registration_rides_out_a_brief_outage() {
    registration_rides_out_a_brief_outage(Kind::B3scale);
}

#[test]
fn a_lasting_outage_is_reported_after_a_bounded_number_of_attempts() {
    let (pool, flaky) = behind_proxy("fault-502-lasting", Kind::Scalelite, 1, usize::MAX);
    let started = std::time::Instant::now();
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(90));
    out.assert_no_secrets();
    assert_eq!(out.code, 1, "{}", out.all());
    assert_eq!(flaky.failed.load(Ordering::SeqCst), 4, "4 attempts in all");
    assert!(out.all().contains("HTTP 502"), "{}", out.all());
    assert!(
        out.all().contains("no node was registered or changed"),
        "{}",
        out.all()
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(pool.balancer.changes(), 0);
}

/// Two rollouts on one pool: the second is refused with the holder's name, or waits with
/// `--wait` and goes on once the first is done (a kernel lock: nothing stale is left).
#[test]
fn a_second_rollout_on_the_pool_names_the_holder_or_waits() {
    use support::{finish, wait_until};
    let pool = Pool::new("lock", Kind::Scalelite, 3, &[]);
    let out = pool.run("apply", &["--output", "plain"], Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    let h01 = pool.node("h01");
    h01.meeting("art", 2);
    let first = pool.spawn("drain", &["--limit", "h01", "--output", "plain"]);
    wait_until(Duration::from_secs(30), "h01 cordoned", || {
        pool.balancer.state_of(h01).as_deref() == Some("cordoned")
    });
    let out = pool.run(
        "drain",
        &["--limit", "h02", "--output", "plain"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("another rollout is working on this pool: `rollout drain` by "),
        "{}",
        out.all()
    );
    assert_eq!(
        pool.balancer.state_of(pool.node("h02")).as_deref(),
        Some("enabled"),
        "the refused rollout changed nothing"
    );
    let second = pool.spawn(
        "drain",
        &["--limit", "h02", "--wait", "60s", "--output", "plain"],
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        pool.balancer.state_of(pool.node("h02")).as_deref(),
        Some("enabled"),
        "the waiting rollout waits"
    );
    h01.end("art");
    let out = finish(first, Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    let out = finish(second, Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr
            .contains("waiting up to 1m00s for the pool's lock, held by `rollout drain`"),
        "{}",
        out.all()
    );
}
