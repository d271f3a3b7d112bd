//! The fault suite on the loopback emulators (issue 12, item 6, the part without lab hosts):
//! faults injected into a running `rollout upgrade` / `apply` on a pool of BBB node emulators
//! behind a Scalelite or b3scale emulator, each a few times, every run bounded in time and
//! stopping by itself:
//!
//! - the controller killed (SIGKILL) in every phase of an upgrade (cordoning, waiting,
//!   applying, health check, enabling), the phase read from the journal and the emulators'
//!   records (a request held at the [`Gate`], a node's API stopped), then the same command run
//!   again;
//! - the balancer answering 502 or closing connections unanswered for a while, mid-drain and
//!   mid-registration;
//! - a node's BBB API stopped (slow) or restarted (bbb-web forgets its classes) during drain;
//! - two controllers at once on one pool, with the local lock and with the PostgreSQL state
//!   backend (a real PostgreSQL started by the test, `pool_support/pg.rs`);
//! - on lab hosts (only with ROLLOUT_LAB_TESTS=1; otherwise the table lists these rows as
//!   skipped, never as survived): a BBB node (the lab's stand-in bbb-install.sh, its API
//!   emulator as bbb-web.service) cut off the network during its drain (`lab/lab cut`: its
//!   veth on the lab bridge down), and the disk filling up during a file write (a 1 MiB tmpfs
//!   inside the lab host over the target folder).
//!
//! After every run the invariants are checked from the emulators' own records: no meeting
//! ended but by the test's own moderator `end` calls (each node's emulator log) and no
//! service restart under a class (the node's `restarts` file); never more than the batch out
//! of service at once (the balancer emulator's state history); no node out of service
//! without `rollout status` saying so; and a re-run converges (every node upgraded and
//! enabled, a further `apply` changes nothing at the balancer). The table (fault, runs,
//! survived) goes to stdout and `target/fault-suite.txt`.

mod common;
#[path = "pool_support/lab.rs"]
mod lab_pool;
#[path = "pool_support/pg.rs"]
mod pg;
#[path = "pool_support/mod.rs"]
mod support;

use lab_pool::LabPool;
use pg::Postgres;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{Kind, Pool, finish, wait_until};

/// What the [`Gate`] does with a request.
const PASS: u8 = 0;
/// Answers `502 Bad Gateway` (nginx before a balancer that is down).
const FAIL: u8 = 1;
/// Closes the connection unanswered (the balancer dying under the request).
const DOWN: u8 = 2;
/// Holds every state-changing request (Scalelite's `updateServer`, b3scale's `PATCH` of a
/// backend) until the mode changes; other requests pass.
const HOLD: u8 = 3;
/// Drops held requests unanswered (they never reach the balancer); others pass.
const DROP: u8 = 4;

/// A request-level HTTP proxy on loopback in front of the balancer emulator: each request
/// (head and `Content-Length` body) is read, judged by the mode, and forwarded on a fresh
/// connection; the answer goes back with `Connection: close`. Stops with the test process.
struct Gate {
    port: u16,
    mode: Arc<AtomicU8>,
    /// State-changing requests now held.
    held: Arc<AtomicUsize>,
    /// Requests answered 502 or closed unanswered.
    failed: Arc<AtomicUsize>,
    /// State-changing requests that came while holding, numbered from 0 ...
    tickets: Arc<AtomicUsize>,
    /// ... of which those numbered below this one pass ([`Gate::release_one`]).
    released: Arc<AtomicUsize>,
}

impl Gate {
    fn start(upstream: String) -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let gate = Gate {
            port,
            mode: Arc::new(AtomicU8::new(PASS)),
            held: Arc::new(AtomicUsize::new(0)),
            failed: Arc::new(AtomicUsize::new(0)),
            tickets: Arc::new(AtomicUsize::new(0)),
            released: Arc::new(AtomicUsize::new(0)),
        };
        let counters = Counters {
            mode: gate.mode.clone(),
            held: gate.held.clone(),
            failed: gate.failed.clone(),
            tickets: gate.tickets.clone(),
            released: gate.released.clone(),
        };
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (c, up) = (counters.clone(), upstream.clone());
                std::thread::spawn(move || serve(conn, &up, &c));
            }
        });
        gate
    }

    /// Sets the mode; HOLD holds the state-changing requests that come from now on.
    fn set(&self, mode: u8) {
        if mode == HOLD {
            self.released
                .store(self.tickets.load(Ordering::SeqCst), Ordering::SeqCst);
        }
        self.mode.store(mode, Ordering::SeqCst);
    }

    /// Lets the oldest held request pass and waits until it has left the gate; later ones
    /// stay held. Toggling HOLD/PASS instead raced the controller: a request could slip
    /// through between "the previous one passed" and "hold again".
    fn release_one(&self) {
        let before = self.held.load(Ordering::SeqCst);
        self.released.fetch_add(1, Ordering::SeqCst);
        wait_fast("the released request to pass", || {
            self.held.load(Ordering::SeqCst) < before
        });
    }
}

/// The gate's shared counters, as each connection's thread sees them.
#[derive(Clone)]
struct Counters {
    mode: Arc<AtomicU8>,
    held: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    tickets: Arc<AtomicUsize>,
    released: Arc<AtomicUsize>,
}

/// Reads one request (head and body) off `r`; None at the end of the stream.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        let end = line == "\r\n";
        // One request per upstream connection.
        if !line.to_ascii_lowercase().starts_with("connection:") {
            head.push_str(&line);
        }
        if end {
            break;
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    Some((head, body))
}

fn serve(conn: TcpStream, upstream: &str, c: &Counters) {
    let (mode, held, failed) = (&*c.mode, &*c.held, &*c.failed);
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let Some((head, body)) = read_request(&mut r) else {
        return;
    };
    let changes = head.starts_with("POST /scalelite/api/updateServer")
        || head.starts_with("PATCH /api/v1/backends/");
    let mut m = mode.load(Ordering::SeqCst);
    if m == HOLD && changes {
        let ticket = c.tickets.fetch_add(1, Ordering::SeqCst);
        held.fetch_add(1, Ordering::SeqCst);
        while mode.load(Ordering::SeqCst) == HOLD && c.released.load(Ordering::SeqCst) <= ticket {
            std::thread::sleep(Duration::from_millis(10));
        }
        held.fetch_sub(1, Ordering::SeqCst);
        m = mode.load(Ordering::SeqCst);
        if m == DROP {
            return;
        }
    }
    match m {
        FAIL => {
            failed.fetch_add(1, Ordering::SeqCst);
            // The request is read already: answer 502 at once.
            let page = "<html><head><title>502 Bad Gateway</title></head></html>";
            let mut w = conn;
            let _ = write!(
                w,
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            return;
        }
        DOWN => {
            failed.fetch_add(1, Ordering::SeqCst);
            return;
        }
        _ => {}
    }
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    let head = head.trim_end_matches("\r\n").to_string();
    let _ = write!(up, "{head}\r\nConnection: close\r\n\r\n");
    let _ = up.write_all(&body);
    let mut answer = Vec::new();
    let _ = up.read_to_end(&mut answer);
    // The answer's head without its own Connection header, closing the client's connection.
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(answer.len());
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let mut out = String::new();
    for line in head.split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n");
    let mut w = conn;
    let _ = w.write_all(out.as_bytes());
    // `answer[split..]` is the blank line's `\r\n\r\n`, the first `\r\n` written already.
    let _ = w.write_all(answer.get(split + 2..).unwrap_or_default());
}

/// Polls every 10 ms (at most 60 s) until `f` holds: fast enough to catch a phase that
/// lasts a few hundred milliseconds.
fn wait_fast(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A running rollout, killed if the run ends (a failed check) before it is waited for.
struct Guard(Option<std::process::Child>);

impl Guard {
    /// Waits for it (at most `limit`, see [`finish`]).
    fn finish(mut self, limit: Duration) -> support::Output {
        finish(self.0.take().unwrap(), limit)
    }

    /// SIGKILL, as the OOM killer or a lost SSH session's controller meets it.
    fn kill(mut self) {
        let mut c = self.0.take().unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A pool of `n` nodes behind a [`Gate`], applied (registered, enabled, polled once).
struct Rig {
    pool: Pool,
    gate: Gate,
    /// Moderator `end` calls the test made, per node.
    ended: BTreeMap<String, usize>,
    /// Each node's service restarts (lines of its `restarts` file) when no class ran.
    restarts: BTreeMap<String, usize>,
}

impl Rig {
    fn new(name: &str, kind: Kind, n: usize, apply: bool) -> Rig {
        let mut pool = Pool::new(name, kind, n, &[]);
        let direct = pool.balancer.url();
        let rest = direct.strip_prefix("http://").unwrap();
        let (upstream, path) = match rest.split_once('/') {
            Some((u, p)) => (u, format!("/{p}")),
            None => (rest, String::new()),
        };
        let gate = Gate::start(upstream.to_string());
        pool.url = Some(format!("http://127.0.0.1:{}{path}", gate.port));
        // A node's health check waits long enough for a node stopped for a while.
        pool.extra = "  health_timeout: 10\n  poll_interval: 0.2\n".into();
        pool.write();
        let mut rig = Rig {
            pool,
            gate,
            ended: BTreeMap::new(),
            restarts: BTreeMap::new(),
        };
        if apply {
            let out = rig
                .pool
                .run("apply", &["--output", "plain"], Duration::from_secs(60));
            assert_eq!(out.code, 0, "{}", out.all());
            rig.pool.balancer.wait_polled();
            rig.restarts = rig.restarts();
        }
        rig
    }

    /// Each node's service restarts so far (the fixture role's handler counts them).
    fn restarts(&self) -> BTreeMap<String, usize> {
        self.pool
            .nodes
            .iter()
            .map(|(h, b)| {
                let r = std::fs::read_to_string(b.dir.join("restarts")).unwrap_or_default();
                (h.clone(), r.lines().count())
            })
            .collect()
    }

    /// The test ends meeting `id` on `h` as its moderator would; it must still be running.
    fn end(&mut self, h: &str, id: &str) {
        let bbb = self.pool.node(h);
        assert!(
            bbb.meetings()
                .iter()
                .any(|m| m["meetingID"] == id && m["forciblyEnded"] != true),
            "{h}: meeting {id} is gone before its moderator ended it"
        );
        bbb.end(id);
        *self.ended.entry(h.to_string()).or_default() += 1;
    }

    fn upgrades(&self) -> BTreeMap<String, usize> {
        self.pool
            .nodes
            .iter()
            .map(|(h, b)| (h.clone(), b.upgrades()))
            .collect()
    }

    /// `rollout upgrade` in the inventory's order (`--order inventory`): the rows name the
    /// node whose phase they kill in (h02, after h01), which the default order, reading each
    /// node's meetings, would put after the empty h03 whenever h02 holds a class.
    fn upgrade(&self, batch: &str) -> Guard {
        Guard(Some(self.pool.spawn(
            "upgrade",
            &[
                "--batch-size",
                batch,
                "--order",
                "inventory",
                "--output",
                "plain",
            ],
        )))
    }

    /// The node's API process (bbb-web) by its pid file.
    fn signal(&self, h: &str, sig: &str) {
        let pid = std::fs::read_to_string(self.pool.node(h).dir.join("pid")).unwrap();
        let ok = std::process::Command::new("kill")
            .args([sig, pid.trim()])
            .status()
            .unwrap();
        assert!(ok.success(), "kill {sig} {pid}");
    }

    /// No node out of service at the balancer without `rollout status` saying why.
    fn status_tells_every_node_out(&self) {
        let out = self
            .pool
            .run("status", &["--output", "json"], Duration::from_secs(30));
        assert_eq!(out.code, 0, "status: {}", out.all());
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let rows = v["nodes"].as_array().unwrap();
        for (h, bbb) in &self.pool.nodes {
            let state = self.pool.balancer.state_of(bbb);
            if state.as_deref() == Some("enabled") {
                continue;
            }
            let row = rows
                .iter()
                .find(|r| r["host"] == h.as_str())
                .unwrap_or_else(|| panic!("status lists no {h}: {v}"));
            assert!(
                row["note"].as_str().is_some_and(|n| !n.is_empty()),
                "{h} is {state:?} at the balancer, status says nothing: {row}"
            );
        }
    }

    /// The invariants after a run, from the emulators' records, `from` the balancer history
    /// index before the run: at most `batch` out of service at once, no meeting ended but by
    /// the test, no service restart; then a re-run converges: every node enabled, a further
    /// `apply` changes nothing at the balancer, status shows no open run and no note.
    fn check(&self, from: usize, batch: usize) {
        let max = self.pool.balancer.max_out_of_service(from);
        assert!(
            max <= batch,
            "{max} nodes out of service at once (batch {batch})"
        );
        for (h, bbb) in &self.pool.nodes {
            // rollout's health check ends the probe meeting it made itself.
            let ends = bbb
                .log()
                .lines()
                .filter(|l| l.contains(": end ") && !l.contains(": end rollout-health-"))
                .count();
            let mine = self.ended.get(h).copied().unwrap_or(0);
            assert_eq!(
                ends,
                mine,
                "{h}: {ends} meeting(s) ended, {mine} by their moderator\n{}",
                bbb.log()
            );
            assert_eq!(
                self.restarts()[h],
                self.restarts.get(h).copied().unwrap_or(0),
                "{h}: services restarted"
            );
        }
        let changes = self.pool.balancer.changes();
        let out = self
            .pool
            .run("apply", &["--output", "plain"], Duration::from_secs(60));
        assert_eq!(out.code, 0, "re-run: {}", out.all());
        assert_eq!(
            self.pool.balancer.changes(),
            changes,
            "a re-run changed the balancer:\n{}",
            out.all()
        );
        for (_, bbb) in &self.pool.nodes {
            self.pool.balancer.assert_state(bbb, Some("enabled"));
        }
        let out = self
            .pool
            .run("status", &["--output", "json"], Duration::from_secs(30));
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(v["upgrade_run"], serde_json::Value::Null, "{v}");
        for row in v["nodes"].as_array().unwrap() {
            assert_eq!(row["note"], serde_json::Value::Null, "{row}");
        }
    }
}

/// The outcome of one fault's runs.
struct Row {
    fault: String,
    runs: usize,
    survived: usize,
    failures: Vec<String>,
    /// Not run, and why (a lab row without the lab).
    skipped: Option<&'static str>,
}

/// A fault: its name in the table, how many runs, and one run on the rig `R` (its index).
type FaultOn<R> = (String, usize, Box<dyn Fn(&mut R, usize) + Send>);
/// A fault on an emulator pool's [`Rig`].
type Fault = FaultOn<Rig>;

/// Runs every fault's runs in turn on the rig `setup` makes (a pool of 3 nodes of `kind`,
/// applied first unless `apply` is false, for [`Rig`]), each run caught: a panic is a run not
/// survived, and leaves the pool in a state no later run may build on, so the rest count as
/// run and not survived.
fn suite<R>(setup: impl FnOnce() -> R, faults: Vec<FaultOn<R>>) -> Vec<Row> {
    let mut rows: Vec<Row> = faults
        .iter()
        .map(|(name, count, _)| Row {
            fault: name.clone(),
            runs: *count,
            survived: 0,
            failures: Vec::new(),
            skipped: (!selected(name)).then_some("not selected by ROLLOUT_FAULTS"),
        })
        .collect();
    if rows.iter().all(|r| r.skipped.is_some()) {
        return rows;
    }
    let mut rig = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(setup)) {
        Ok(r) => r,
        Err(e) => {
            rows[0].failures.push(format!("setup: {}", message(&e)));
            return rows;
        }
    };
    for (row, (_, count, f)) in rows.iter_mut().zip(&faults) {
        if row.skipped.is_some() {
            continue;
        }
        let started = Instant::now();
        for i in 0..*count {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut rig, i)));
            match r {
                Ok(()) => row.survived += 1,
                Err(e) => {
                    row.failures.push(format!("run {}: {}", i + 1, message(&e)));
                    return rows;
                }
            }
        }
        eprintln!("{}: {:.1} s", row.fault, started.elapsed().as_secs_f64());
    }
    rows
}

/// Whether the fault named `name` runs: every fault unless ROLLOUT_FAULTS is set, then those
/// whose name contains it (to repeat one fault; the others are listed as skipped).
fn selected(name: &str) -> bool {
    std::env::var("ROLLOUT_FAULTS").map_or(true, |f| name.contains(&f))
}

fn message(e: &Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// The phases the controller is killed in, and how each is recognized.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Cordoning,
    Waiting,
    Applying,
    HealthCheck,
    Enabling,
}

/// The controller killed in `phase` on node h02 (the second of a batch-1 upgrade of 3
/// nodes), then the same command run again; `i` alternates whether a request held at the
/// kill reaches the balancer afterwards.
fn kill_in(rig: &mut Rig, phase: Phase, i: usize) {
    let t = "h02";
    if !rig.pool.host_vars[1].contains("upgrade_seconds") {
        // Its apply lasts a second: long enough to see the phase and stop its API in it.
        rig.pool.set_host_var(t, "upgrade_seconds: 1");
    }
    let pool_from = rig.pool.balancer.history().len();
    let before = rig.upgrades();
    if matches!(phase, Phase::Waiting) {
        rig.pool.node(t).meeting("class", 2);
    }
    if matches!(phase, Phase::Cordoning | Phase::Enabling) {
        rig.gate.set(HOLD);
    }
    let child = rig.upgrade("1");
    let phase_of = |rig: &Rig| {
        rig.pool
            .journal_phases()
            .get(t)
            .cloned()
            .unwrap_or_default()
    };
    // h01 is done first: the journal of this run then names h02.
    let done_first =
        |rig: &Rig| rig.pool.journal_phases().get("h01").map(String::as_str) == Some("done");
    match phase {
        Phase::Cordoning => {
            // Every state change is held from the start: h01's pass one by one until h01 is
            // done; the next one held is h02's cordon.
            loop {
                wait_fast("a state change held", || {
                    rig.gate.held.load(Ordering::SeqCst) == 1
                });
                if done_first(rig) {
                    break;
                }
                rig.gate.release_one();
            }
            wait_fast("h02 draining with its cordon held", || {
                phase_of(rig) == "draining" && rig.gate.held.load(Ordering::SeqCst) == 1
            });
        }
        Phase::Waiting => {
            let bbb = rig.pool.node(t);
            wait_fast("h02 cordoned and waiting", || {
                phase_of(rig) == "draining"
                    && rig.pool.balancer.state_of(bbb).as_deref() == Some("cordoned")
            });
            // A few of the drain's polls.
            std::thread::sleep(Duration::from_millis(500));
        }
        Phase::Applying => {
            wait_fast("h02 applying", || phase_of(rig) == "applying");
        }
        Phase::HealthCheck => {
            wait_fast("h02 applying", || phase_of(rig) == "applying");
            // bbb-web stops answering: the health check waits.
            rig.signal(t, "-STOP");
            wait_fast("h02 in its health check", || {
                phase_of(rig) == "health_check"
            });
        }
        Phase::Enabling => {
            // As for Cordoning: every state change before h02's enable passes one by one.
            loop {
                wait_fast("a state change held", || {
                    rig.gate.held.load(Ordering::SeqCst) == 1
                });
                if phase_of(rig) == "enabling" {
                    break;
                }
                rig.gate.release_one();
            }
        }
    }
    child.kill();
    let killed_in = phase_of(rig);
    let want = match phase {
        Phase::Cordoning | Phase::Waiting => "draining",
        Phase::Applying => "applying",
        Phase::HealthCheck => "health_check",
        Phase::Enabling => "enabling",
    };
    assert_eq!(killed_in, want, "the kill missed its phase ({phase:?})");
    // What the controller's death left: a held request reaches the balancer late, or never.
    rig.gate.set(if i.is_multiple_of(2) { DROP } else { PASS });
    wait_until(Duration::from_secs(5), "held requests released", || {
        rig.gate.held.load(Ordering::SeqCst) == 0
    });
    rig.gate.set(PASS);
    if matches!(phase, Phase::HealthCheck) {
        rig.signal(t, "-CONT");
    }
    let now = rig.upgrades();
    assert_eq!(
        now["h01"],
        before["h01"] + 1,
        "h01 upgraded before the kill"
    );
    assert_eq!(now["h03"], before["h03"], "h03 untouched before the kill");
    if matches!(phase, Phase::Waiting | Phase::Cordoning) {
        assert_eq!(now[t], before[t], "h02 upgraded before its drain ended");
    }
    rig.status_tells_every_node_out();
    if matches!(phase, Phase::Waiting) {
        let ms = rig.pool.node(t).meetings();
        assert!(
            ms.len() == 1 && ms[0]["participantCount"] == 2,
            "the class goes on: {ms:?}"
        );
        rig.end(t, "class");
    }
    let out = rig.upgrade("1").finish(Duration::from_secs(60));
    out.assert_no_secrets();
    assert_eq!(
        out.code,
        0,
        "resumed after a kill in {killed_in}: {}",
        out.all()
    );
    assert!(
        out.stdout.contains("resuming the upgrade started"),
        "{}",
        out.all()
    );
    let after = rig.upgrades();
    assert_eq!(
        after["h01"],
        before["h01"] + 1,
        "h01 upgraded once:\n{}",
        out.all()
    );
    assert!(after[t] > before[t], "h02 upgraded:\n{}", out.all());
    assert_eq!(
        after["h03"],
        before["h03"] + 1,
        "h03 upgraded once:\n{}",
        out.all()
    );
    rig.check(pool_from, 1);
}

/// The balancer fails (`i` even: 502, odd: connections closed unanswered) for `secs`
/// seconds once h01 is cordoned and waiting for its class, which ends meanwhile: the
/// upgrade's enable meets the outage.
fn balancer_out_mid_drain(rig: &mut Rig, i: usize, secs: f64) {
    let from = rig.pool.balancer.history().len();
    let before = rig.upgrades()["h01"];
    rig.pool.node("h01").meeting("class", 2);
    let child = rig.upgrade("1");
    let bbb = rig.pool.node("h01");
    wait_fast("h01 cordoned", || {
        rig.pool.balancer.state_of(bbb).as_deref() == Some("cordoned")
    });
    rig.gate.set(if i.is_multiple_of(2) { FAIL } else { DOWN });
    let failed = rig.gate.failed.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        rig.upgrades()["h01"],
        before,
        "h01 upgraded under its class"
    );
    rig.end("h01", "class");
    std::thread::sleep(Duration::from_secs_f64(secs));
    // On a loaded machine the upgrade may not have reached its enable yet: the outage lasts
    // until it has met a request.
    wait_until(
        Duration::from_secs(30),
        "the outage to meet a request",
        || rig.gate.failed.load(Ordering::SeqCst) > failed,
    );
    rig.gate.set(PASS);
    let out = child.finish(Duration::from_secs(60));
    out.assert_no_secrets();
    assert!(
        rig.gate.failed.load(Ordering::SeqCst) > failed,
        "the outage met no request:\n{}",
        out.all()
    );
    assert_eq!(out.code, 0, "{}", out.all());
    rig.check(from, 1);
}

/// Registration (`apply`) meets the balancer failing for `secs` seconds from its start: a
/// changed load multiplier is to be written to every node's registration.
fn balancer_out_mid_registration(rig: &mut Rig, i: usize, secs: f64) {
    let from = rig.pool.balancer.history().len();
    let names: Vec<String> = rig.pool.nodes.iter().map(|(h, _)| h.clone()).collect();
    for (k, h) in names.into_iter().enumerate() {
        let vars = &mut rig.pool.host_vars[k];
        *vars = vars
            .lines()
            .filter(|l| !l.contains("bbb_load_multiplier"))
            .map(|l| format!("{l}\n"))
            .collect();
        rig.pool
            .set_host_var(&h, &format!("bbb_load_multiplier: {}", i + 2));
    }
    // A class on h02 that the registration must leave alone (after the first apply, whose
    // roles' first run is held on a node with a class).
    if i > 0 {
        rig.pool.node("h02").meeting(&format!("reg{i}"), 1);
    }
    rig.gate.set(if i.is_multiple_of(2) { FAIL } else { DOWN });
    let child = Guard(Some(rig.pool.spawn("apply", &["--output", "plain"])));
    std::thread::sleep(Duration::from_secs_f64(secs));
    rig.gate.set(PASS);
    let out = child.finish(Duration::from_secs(60));
    out.assert_no_secrets();
    if i == 0 {
        // The roles' first run restarted the services, with no class anywhere.
        rig.restarts = rig.restarts();
    }
    // A brief outage is ridden out; a longer one is reported (exit 1): the re-run converges.
    assert!(out.code == 0 || out.code == 1, "{}", out.all());
    rig.status_tells_every_node_out();
    // The first run adds the nodes (out of service until enabled); later ones take none out.
    rig.check(from, if i == 0 { rig.pool.nodes.len() } else { 0 });
    if i > 0 {
        rig.end("h02", &format!("reg{i}"));
    }
}

/// h01's API during its drain: stopped for 2 s (`i` even: slow, answering nothing), or
/// restarted (`i` odd: bbb-web forgets its classes, which go on in akka-apps). The class
/// ends (its participants leave); the node must not be upgraded under it.
fn node_api_fault_mid_drain(rig: &mut Rig, i: usize) {
    let from = rig.pool.balancer.history().len();
    let before = rig.upgrades();
    rig.pool.node("h01").meeting("class", 2);
    let child = rig.upgrade("1");
    let bbb = rig.pool.node("h01");
    wait_fast("h01 cordoned", || {
        rig.pool.balancer.state_of(bbb).as_deref() == Some("cordoned")
    });
    if i.is_multiple_of(2) {
        rig.signal("h01", "-STOP");
        std::thread::sleep(Duration::from_secs(2));
        rig.signal("h01", "-CONT");
    } else {
        bbb.restart_bbb_web();
    }
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        rig.upgrades()["h01"],
        before["h01"],
        "h01 upgraded under its class"
    );
    let ms = bbb.meetings();
    assert!(
        ms.len() == 1 && ms[0]["participantCount"] == 2,
        "the class goes on: {ms:?}"
    );
    bbb.leave("class");
    bbb.leave("class");
    if i.is_multiple_of(2) {
        // bbb-web still lists the empty class: its moderator ends it.
        rig.end("h01", "class");
    }
    let out = child.finish(Duration::from_secs(60));
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    rig.check(from, 1);
}

/// Two controllers on one pool: the second is refused naming the holder; a third waits
/// (`--wait`) and runs after the first; never more than the batch out at once.
fn two_controllers(rig: &mut Rig, _i: usize) {
    let from = rig.pool.balancer.history().len();
    let before = rig.upgrades()["h01"];
    rig.pool.node("h01").meeting("class", 1);
    let first = rig.upgrade("1");
    let bbb = rig.pool.node("h01");
    wait_fast("h01 cordoned", || {
        rig.pool.balancer.state_of(bbb).as_deref() == Some("cordoned")
    });
    let changes = rig.pool.balancer.changes();
    let out = rig.pool.run(
        "upgrade",
        &["--batch-size", "1", "--output", "plain"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("another rollout is working on this pool: `rollout upgrade` by "),
        "{}",
        out.all()
    );
    assert_eq!(
        rig.pool.balancer.changes(),
        changes,
        "the refused run changed nothing"
    );
    let third = Guard(Some(rig.pool.spawn(
        "upgrade",
        &["--batch-size", "1", "--wait", "60s", "--output", "plain"],
    )));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        rig.pool.balancer.changes(),
        changes,
        "the waiting run waits"
    );
    assert_eq!(
        rig.upgrades()["h01"],
        before,
        "h01 upgraded under its class"
    );
    rig.end("h01", "class");
    let out = first.finish(Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    let out = third.finish(Duration::from_secs(60));
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr
            .contains("waiting up to 1m00s for the pool's lock, held by `rollout upgrade`"),
        "{}",
        out.all()
    );
    rig.check(from, 1);
}

/// Meetings ended on a node by anyone but rollout's own health probe: the `end` lines of
/// the BBB API emulator's log `log`.
fn ends_in(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(": end ") && !l.contains(": end rollout-health-"))
        .count()
}

/// A pool of 4 emulated nodes whose lock and journal are in a PostgreSQL of the test's own
/// (`pool_support/pg.rs`): two controllers on two "machines" (separate local state folders).
struct PgRig {
    // Dropped after the pool: the controllers' last sessions end before the server.
    pool: Pool,
    pg: Postgres,
    /// Moderator `end` calls the test made, per node.
    ended: BTreeMap<String, usize>,
}

impl PgRig {
    fn new() -> PgRig {
        let pg = Postgres::start("faults");
        let pool = pg::pool("faults-pg", 4, 1);
        let out = finish(
            pg::controller(&pool, &pg, "a", "apply", &["--output", "plain"]),
            Duration::from_secs(60),
        );
        pg::no_secrets(&out, &pg);
        assert_eq!(out.code, 0, "{}", out.all());
        pool.balancer.wait_polled();
        PgRig {
            pool,
            pg,
            ended: BTreeMap::new(),
        }
    }
}

/// Two controllers sharing the PostgreSQL state backend start `rollout upgrade --batch-size
/// B --wait 3m` at the same moment (B = 1, then 2) while a class runs on h01: one takes the
/// pool's advisory lock, the other waits for it; never more than B out of service across both
/// (the Scalelite emulator's history), the class is not cut off (ended only by its
/// moderator), every node upgraded once by each and enabled, nothing left open.
fn two_controllers_pg(r: &mut PgRig, i: usize) {
    let batch = (i + 1).to_string();
    let from = r.pool.balancer.history().len();
    let before: BTreeMap<String, usize> = r
        .pool
        .nodes
        .iter()
        .map(|(h, b)| (h.clone(), b.upgrades()))
        .collect();
    let class = format!("pg{i}");
    r.pool.node("h01").meeting(&class, 2);
    let args = [
        "--batch-size",
        batch.as_str(),
        "--wait",
        "3m",
        "--output",
        "plain",
    ];
    let a = Guard(Some(pg::controller(&r.pool, &r.pg, "a", "upgrade", &args)));
    let b = Guard(Some(pg::controller(&r.pool, &r.pg, "b", "upgrade", &args)));
    let h01 = r.pool.node("h01");
    wait_until(Duration::from_secs(60), "h01 cordoned", || {
        r.pool.balancer.state_of(h01).as_deref() == Some("cordoned")
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        h01.upgrades(),
        before["h01"],
        "h01 upgraded under its class"
    );
    let ms = h01.meetings();
    assert!(
        ms.len() == 1 && ms[0]["participantCount"] == 2,
        "the class goes on: {ms:?}"
    );
    h01.end(&class);
    *r.ended.entry("h01".into()).or_default() += 1;
    let a = a.finish(Duration::from_secs(180));
    let b = b.finish(Duration::from_secs(180));
    pg::no_secrets(&a, &r.pg);
    pg::no_secrets(&b, &r.pg);
    assert_eq!(a.code, 0, "{}", a.all());
    assert_eq!(b.code, 0, "{}", b.all());
    assert!(
        a.stderr
            .contains("waiting up to 3m00s for the lock of pool `berlin`")
            || b.stderr
                .contains("waiting up to 3m00s for the lock of pool `berlin`"),
        "one controller waited for the other:\n{}\n{}",
        a.all(),
        b.all()
    );
    let max = r.pool.balancer.max_out_of_service(from);
    assert!(
        max <= i + 1,
        "{max} nodes out of service at once across both controllers (batch {batch})"
    );
    for (h, bbb) in &r.pool.nodes {
        assert_eq!(bbb.upgrades(), before[h] + 2, "{h}: upgraded once by each");
        r.pool.balancer.assert_state(bbb, Some("enabled"));
        let mine = r.ended.get(h).copied().unwrap_or(0);
        assert_eq!(
            ends_in(&bbb.log()),
            mine,
            "{h}: meeting(s) ended, {mine} by their moderator\n{}",
            bbb.log()
        );
    }
    let s = finish(
        pg::controller(&r.pool, &r.pg, "c", "status", &["--output", "json"]),
        Duration::from_secs(30),
    );
    let v: serde_json::Value = serde_json::from_str(s.stdout.trim()).unwrap();
    assert_eq!(v["upgrade_run"], serde_json::Value::Null, "{v}");
    for row in v["nodes"].as_array().unwrap() {
        assert_eq!(row["note"], serde_json::Value::Null, "{row}");
    }
    assert!(
        r.pg.query("SELECT pool FROM rollout_lock_holders")
            .is_empty(),
        "nobody holds the lock"
    );
}

/// The PostgreSQL row, on a pool and a database of its own.
fn pg_rows() -> Vec<Row> {
    suite(
        PgRig::new,
        vec![(
            "two controllers at once (PostgreSQL state)".into(),
            2,
            Box::new(two_controllers_pg) as Box<dyn Fn(&mut PgRig, usize) + Send>,
        )],
    )
}

/// The lab the lab rows run on (2 hosts), unless ROLLOUT_LAB_NAME says otherwise.
const LAB: &str = "faults";

/// Two lab hosts as a Scalelite pool (`pool_support/lab.rs`: the stand-in bbb-install.sh,
/// its API emulator as bbb-web.service, the Scalelite emulator on the controller), applied.
/// Heals a cut host and takes the lab down when dropped.
struct LabRig {
    pool: LabPool,
    /// Moderator `end` calls the test made on h01.
    ended: usize,
}

impl LabRig {
    fn new() -> LabRig {
        let pool = LabPool::start(&common::lab_name(LAB), 2, 30);
        let rig = LabRig { pool, ended: 0 };
        let out = rig.pool.run(&["apply", "--output", "plain"], 600);
        assert_eq!(out.code, 0, "{}", out.all());
        rig.pool.balancer.wait_polled();
        rig
    }

    /// `host`'s state at the balancer (by its lab address).
    fn state(&self, host: &str) -> String {
        let ip = self.pool.ip(host);
        self.pool
            .balancer
            .states()
            .into_iter()
            .find(|(u, _)| u.contains(&format!("//{ip}/")))
            .map(|(_, s)| s)
            .unwrap_or_default()
    }

    /// `host`'s BBB API (the stand-in's emulator behind nginx), signed with the test secret.
    fn api(&self, host: &str) -> rollout::bbb_api::Endpoint {
        rollout::bbb_api::Endpoint::new(
            &format!("http://{}/bigbluebutton/api", self.pool.ip(host)),
            support::BBB_SECRET,
        )
    }

    /// The invariants from the emulators' and hosts' own records, `from` the balancer history
    /// index before the run: at most one node out of service at once; no meeting ended on h01
    /// but by the test (bbb-web's journal on the host); a further `apply` changes nothing and
    /// `status` shows no open run and no note.
    fn check(&self, from: usize) {
        let max = self.pool.balancer.max_out_of_service(from);
        assert!(
            max <= 1,
            "{max} nodes out of service at once (drain of one)"
        );
        let log = self
            .pool
            .lab
            .ssh_ok("h01", "journalctl -q -o cat -u bbb-web --no-pager");
        assert_eq!(
            ends_in(&log),
            self.ended,
            "h01: meeting(s) ended, {} by their moderator\n{log}",
            self.ended
        );
        let changes = self.pool.balancer.changes();
        let out = self.pool.run(&["apply", "--output", "plain"], 300);
        assert_eq!(out.code, 0, "re-run: {}", out.all());
        assert_eq!(
            common::summary_counts(&out.stdout).1,
            0,
            "a re-run changed something:\n{}",
            out.all()
        );
        assert_eq!(self.pool.balancer.changes(), changes, "{}", out.all());
        for h in &self.pool.lab.hosts {
            assert_eq!(self.state(h), "enabled", "{h}");
        }
        let out = self.pool.run(&["status", "--output", "json"], 60);
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(v["upgrade_run"], serde_json::Value::Null, "{v}");
        for row in v["nodes"].as_array().unwrap() {
            assert_eq!(row["note"], serde_json::Value::Null, "{row}");
        }
    }
}

impl Drop for LabRig {
    fn drop(&mut self) {
        let name = self.pool.lab.name.clone();
        common::note_proxy_races(&name);
        let _ = std::process::Command::new(common::repo().join("lab/lab"))
            .args(["down", "--name", &name])
            .output();
    }
}

/// Puts a cut lab host back on the network however the run ends.
struct Heal<'a>(&'a common::Lab, &'static str, bool);

impl Heal<'_> {
    fn now(&mut self) {
        self.0.lab_cmd(&["heal", self.1]);
        self.2 = false;
    }
}

impl Drop for Heal<'_> {
    fn drop(&mut self) {
        if self.2 {
            let _ = std::process::Command::new(common::repo().join("lab/lab"))
                .args(["heal", self.1, "--name", &self.0.name])
                .output();
        }
    }
}

/// A class runs on h01; `rollout drain --limit h01 --timeout 5s` cordons it, then h01 is cut
/// off the network (`lab/lab cut h01`: nothing reaches it, requests to its API time out).
/// Its meetings cannot be read: busy, never empty; the drain gives up after its timeout, h01
/// stays cordoned and `status` says so; nothing ends the class. Healed, the class is still
/// running; its moderator ends it, and a re-run of the drain and `undrain` converge.
fn node_cut_mid_drain(r: &mut LabRig, i: usize) {
    let from = r.pool.balancer.history().len();
    let ep = r.api("h01");
    let class = format!("cut{i}");
    assert!(
        support::get(&ep.signed(
            "create",
            &format!("meetingID={class}&name={class}&moderatorPW=mp")
        ))
        .contains("SUCCESS")
    );
    assert!(
        support::get(&ep.signed(
            "join",
            &format!("meetingID={class}&fullName=pupil&role=VIEWER&redirect=false")
        ))
        .contains("SUCCESS")
    );
    let drain = Guard(Some(
        r.pool
            .command(&[
                "drain",
                "--limit",
                "h01",
                "--timeout",
                "5s",
                "--output",
                "plain",
            ])
            .spawn()
            .unwrap(),
    ));
    wait_until(Duration::from_secs(60), "h01 cordoned", || {
        r.state("h01") == "cordoned"
    });
    r.pool.lab.lab_cmd(&["cut", "h01"]);
    let mut heal = Heal(&r.pool.lab, "h01", true);
    let out = drain.finish(Duration::from_secs(120));
    out.assert_no_secrets();
    eprintln!(
        "$ rollout drain --limit h01 --timeout 5s (h01 cut off)\n{}",
        out.all()
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("h01: cordoned, cannot read its meetings: BBB API at ")
            && out.stdout.contains("h01: still cordoned after ")
            && out.stdout.contains("its meetings could not be read"),
        "{}",
        out.all()
    );
    // Still cut off: h01 is out of service, and status says why.
    assert_ne!(r.state("h01"), "enabled");
    let s = r.pool.run(&["status", "--output", "json"], 120);
    let v: serde_json::Value = serde_json::from_str(s.stdout.trim())
        .unwrap_or_else(|e| panic!("status: {e}: {}", s.all()));
    let row = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == "h01")
        .cloned()
        .unwrap_or_else(|| panic!("status lists no h01: {v}"));
    assert!(
        row["note"].as_str().is_some_and(|n| !n.is_empty()),
        "h01 is out of service, status says nothing: {row}"
    );
    heal.now();
    // The class went on through it all.
    wait_until(Duration::from_secs(30), "h01 answering again", || {
        support::get(&ep.signed("isMeetingRunning", &format!("meetingID={class}")))
            .contains("<running>true</running>")
    });
    assert!(
        support::get(&ep.signed("end", &format!("meetingID={class}&password=mp")))
            .contains("SUCCESS")
    );
    r.ended += 1;
    let out = r
        .pool
        .run(&["drain", "--limit", "h01", "--output", "plain"], 120);
    assert_eq!(out.code, 0, "re-run of the drain: {}", out.all());
    let out = r
        .pool
        .run(&["undrain", "--limit", "h01", "--output", "plain"], 180);
    assert_eq!(out.code, 0, "undrain: {}", out.all());
    r.check(from);
}

/// `rollout apply` of a 1.9 MB file onto both hosts while h02's target folder is a 1 MiB
/// tmpfs (mounted inside the lab host) holding the old file: h02 fails, naming the host and
/// the step; its old file is intact and no partial or temporary file is left; h01 gets the
/// new file. Once the space is freed (the tmpfs unmounted: the folder beneath holds the same
/// old file) a re-run converges.
fn disk_full_mid_write(r: &mut LabRig, i: usize) {
    let lab = &r.pool.lab;
    let fixture = common::repo().join("tests/fixtures/fault_lab");
    let inv = |seed: usize, lines: usize| {
        lab.inventory(
            "disk.yml",
            &fixture,
            &["bigfile"],
            &format!("big_seed: {seed}\nbig_lines: {lines}"),
        )
    };
    let apply = |inv: &std::path::Path| {
        let out = finish(
            std::process::Command::new(env!("CARGO_BIN_EXE_rollout"))
                .args(["apply", inv.to_str().unwrap(), "--output", "plain"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
            Duration::from_secs(300),
        );
        out.assert_no_secrets();
        out
    };
    let sha = |h: &str| {
        lab.ssh_ok(h, "sha256sum < /srv/fault/big.bin | cut -d' ' -f1")
            .trim()
            .to_string()
    };
    let listing = |h: &str| lab.ssh_ok(h, "ls -A /srv/fault");
    let content = |seed: usize, lines: usize| format!("{seed}:{}\n", "x".repeat(60)).repeat(lines);
    let (old, new) = (10 * i + 1, 10 * i + 2);
    let out = apply(&inv(old, 1000));
    assert_eq!(out.code, 0, "{}", out.all());
    let old_sha = sha("h02");
    assert_eq!(
        old_sha,
        rollout::script::sha256_hex(content(old, 1000).as_bytes())
    );
    lab.ssh_ok(
        "h02",
        "set -e; rm -rf /run/fault-old; cp -a /srv/fault /run/fault-old; \
         mount -t tmpfs -o size=1m,mode=0755 fault-full /srv/fault; \
         cp -a /run/fault-old/. /srv/fault/; rm -rf /run/fault-old",
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let out = apply(&inv(new, 30_000));
        eprintln!(
            "$ rollout apply disk.yml (h02: 1 MiB free for 1.9 MB)\n{}",
            out.all()
        );
        assert_eq!(out.code, 1, "{}", out.all());
        assert_eq!(sha("h02"), old_sha, "h02's old file intact");
        assert_eq!(listing("h02"), "big.bin\n", "no partial or temporary file");
        // `h02: FAILED: bigfile: big file: exit code 1: base64: write error: No space left
        // on device | ... | cannot write the new content of /srv/fault/big.bin (left unchanged)`
        assert!(
            out.all().lines().any(|l| l.starts_with("h02: FAILED")
                && l.contains("big file")
                && l.contains("No space left on device")
                && l.contains(
                    "cannot write the new content of /srv/fault/big.bin (left unchanged)"
                )),
            "the failure names the host, the step, the cause and the file left as it was:\n{}",
            out.all()
        );
        let new_sha = rollout::script::sha256_hex(content(new, 30_000).as_bytes());
        assert_eq!(sha("h01"), new_sha, "h01 unaffected: the new file");
        assert_eq!(listing("h01"), "big.bin\n");
        new_sha
    }));
    // Space freed, however the checks went.
    lab.ssh_ok("h02", "umount /srv/fault");
    let new_sha = match result {
        Ok(s) => s,
        Err(e) => std::panic::resume_unwind(e),
    };
    let out = apply(&inv(new, 30_000));
    assert_eq!(out.code, 0, "after freeing space: {}", out.all());
    assert_eq!(sha("h02"), new_sha);
    assert_eq!(listing("h02"), "big.bin\n");
    let out = apply(&inv(new, 30_000));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        common::summary_counts(&out.stdout).1,
        0,
        "a re-run changes nothing:\n{}",
        out.all()
    );
}

/// The lab rows: run with ROLLOUT_LAB_TESTS=1 (root), listed as skipped otherwise.
fn lab_rows() -> Vec<Row> {
    let faults: Vec<FaultOn<LabRig>> = vec![
        (
            "disk full during a file write (lab)".into(),
            2,
            Box::new(disk_full_mid_write),
        ),
        (
            "node cut off the network mid-drain (lab)".into(),
            2,
            Box::new(node_cut_mid_drain),
        ),
    ];
    if !cfg!(lab_tests) {
        return faults
            .into_iter()
            .map(|(fault, runs, _)| Row {
                fault,
                runs,
                survived: 0,
                failures: Vec::new(),
                skipped: Some("needs the lab: root and ROLLOUT_LAB_TESTS=1"),
            })
            .collect();
    }
    suite(LabRig::new, faults)
}

#[test]
fn fault_suite() {
    let started = Instant::now();
    // The controller killed in every phase, once per balancer (Scalelite and b3scale), one
    // thread each; the other faults on a third pool, from its first registration on.
    let kills = |kind: Kind| {
        std::thread::spawn(move || {
            let name = if kind == Kind::Scalelite {
                "Scalelite"
            } else {
                "b3scale"
            };
            let phases = [
                ("cordoning", Phase::Cordoning),
                ("waiting (drain)", Phase::Waiting),
                ("applying", Phase::Applying),
                ("health check", Phase::HealthCheck),
                ("enabling", Phase::Enabling),
            ];
            let faults: Vec<Fault> = phases
                .into_iter()
                .map(|(p, phase)| -> Fault {
                    (
                        format!("controller killed: {p} ({name})"),
                        2,
                        // A request held at the kill never arrives (Scalelite's first run,
                        // b3scale's second) or arrives after the controller's death.
                        Box::new(move |rig: &mut Rig, i| {
                            kill_in(rig, phase, i + usize::from(kind == Kind::B3scale))
                        }),
                    )
                })
                .collect();
            suite(|| Rig::new("faults", kind, 3, true), faults)
        })
    };
    let scalelite = kills(Kind::Scalelite);
    let b3scale = kills(Kind::B3scale);
    let others: Vec<Fault> = vec![
        (
            "balancer 502 / down mid-registration".into(),
            3,
            // The third outage outlasts the retries: reported, then a re-run converges.
            Box::new(|rig: &mut Rig, i| {
                balancer_out_mid_registration(rig, i, if i == 2 { 6.0 } else { 1.0 })
            }),
        ),
        (
            "balancer 502 / down mid-drain".into(),
            2,
            Box::new(|rig: &mut Rig, i| balancer_out_mid_drain(rig, i, 1.5)),
        ),
        (
            "node API slow / restarted mid-drain".into(),
            2,
            Box::new(node_api_fault_mid_drain),
        ),
        (
            "two controllers at once".into(),
            1,
            Box::new(two_controllers),
        ),
    ];
    let postgres = std::thread::spawn(pg_rows);
    let mut all = suite(|| Rig::new("faults", Kind::Scalelite, 3, false), others);
    let mut kills = scalelite.join().unwrap();
    kills.extend(b3scale.join().unwrap());
    kills.append(&mut all);
    kills.extend(postgres.join().unwrap());
    // The lab rows after the others: beside them, the lab's load on the 2 cores stretched
    // the emulator rows' phases past their timing (a 1.5 s balancer outage ended before the
    // upgrade's enable met it).
    kills.extend(lab_rows());
    let all = kills;
    let mut table = format!("{:<52} {:>4} {:>8}\n", "fault", "runs", "survived");
    let (mut total, mut ok, mut skipped) = (0, 0, 0);
    for r in &all {
        match r.skipped {
            None => {
                table.push_str(&format!(
                    "{:<52} {:>4} {:>8}\n",
                    r.fault, r.runs, r.survived
                ));
                total += r.runs;
                ok += r.survived;
            }
            Some(why) => {
                table.push_str(&format!(
                    "{:<52} {:>4} {:>8}  ({why})\n",
                    r.fault, r.runs, "skipped"
                ));
                skipped += r.runs;
            }
        }
    }
    table.push_str(&format!("{:<52} {:>4} {:>8}\n", "total", total, ok));
    if skipped > 0 {
        table.push_str(&format!(
            "{skipped} run(s) skipped, not counted (see each row)\n"
        ));
    }
    table.push_str(&format!("({:.0} s)\n", started.elapsed().as_secs_f64()));
    for r in &all {
        for f in &r.failures {
            table.push_str(&format!("FAILED {}: {f}\n", r.fault));
        }
    }
    println!("{table}");
    let _ = std::fs::write(support::repo().join("target/fault-suite.txt"), &table);
    assert_eq!(ok, total, "not every run survived:\n{table}");
    assert!(
        total > 0,
        "no fault ran (ROLLOUT_FAULTS selects none):\n{table}"
    );
}
