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

#[path = "pool_support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::{Kind, Output, Pool, finish, tempdir, wait_until};

const PG_PASSWORD: &str = "pg-state-password-31415926";

/// A PostgreSQL server of the test's own: data and socket in one temporary folder.
struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    /// Also on 127.0.0.1 at this port, with TLS on (a self-signed certificate).
    tcp: Option<u16>,
}

/// The newest PostgreSQL under /usr/lib/postgresql.
fn pg_bin() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, b)| b)
        .expect("PostgreSQL is not installed: `apt-get install -y postgresql` (.ci/run does it)")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Postgres {
    /// initdb and start; at most about 60 s.
    fn start(name: &str) -> Postgres {
        Postgres::start_with(name, false)
    }

    /// With `tcp`, also on a free port of 127.0.0.1 with TLS on (a self-signed certificate).
    fn start_with(name: &str, tcp: bool) -> Postgres {
        let dir = tempdir(&format!("pg-{name}"));
        let tcp = tcp.then(|| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        });
        let pg = Postgres {
            dir,
            bin: pg_bin(),
            tcp,
        };
        std::fs::write(pg.dir.join("pw"), format!("{PG_PASSWORD}\n")).unwrap();
        if tcp.is_some() {
            let ok = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .args(["-subj", "/CN=localhost", "-keyout"])
                .arg(pg.dir.join("server.key"))
                .arg("-out")
                .arg(pg.dir.join("server.crt"))
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(ok.success(), "openssl makes a self-signed certificate");
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                pg.dir.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        if is_root() {
            // PostgreSQL refuses to run as root.
            let ok = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(&pg.dir)
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let data = pg.dir.join("data");
        let out = pg.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "rollout",
                "--auth=scram-sha-256",
                "--pwfile",
                pg.dir.join("pw").to_str().unwrap(),
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.up();
        pg
    }

    /// Runs a PostgreSQL program as the server's user.
    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let exe = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    /// Starts the server (waits up to 30 s for it).
    fn up(&self) {
        let opts = match self.tcp {
            None => format!(
                "-k {} -c listen_addresses='' -c fsync=off",
                self.dir.display()
            ),
            Some(port) => format!(
                "-k {d} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off -c ssl=on -c ssl_cert_file={d}/server.crt -c ssl_key_file={d}/server.key",
                d = self.dir.display()
            ),
        };
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                self.dir.join("data").to_str().unwrap(),
                "-l",
                self.dir.join("log").to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    /// Stops the server, ending every session at once (`-m fast`).
    fn down(&self) {
        let _ = self.run(
            "pg_ctl",
            &[
                "-D",
                self.dir.join("data").to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "-t",
                "30",
                "stop",
            ],
        );
    }

    /// The connection URL (libpq's key=value form): the secret of the inventory.
    fn url(&self) -> String {
        // The socket's name carries the port (.s.PGSQL.PORT).
        format!(
            "host={} port={} user=rollout password={PG_PASSWORD} dbname=postgres",
            self.dir.display(),
            self.tcp.unwrap_or(5432)
        )
    }

    /// The URL over TCP to 127.0.0.1 with `sslmode`.
    fn tcp_url(&self, sslmode: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=rollout password={PG_PASSWORD} dbname=postgres sslmode={sslmode}",
            self.tcp.unwrap()
        )
    }

    /// A query's rows, through the client library, as text.
    fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let mut c = postgres::Client::connect(&self.url(), postgres::NoTls).unwrap();
        c.simple_query(sql)
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).unwrap_or("").to_string())
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                self.dir.join("data").to_str().unwrap(),
                "-m",
                "immediate",
                "-t",
                "20",
                "stop",
            ],
        );
        let _ = out;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A pool of `n` nodes whose upgrade takes `seconds`, its state in `pg`, applied.
fn pool(name: &str, n: usize, seconds: u32) -> Pool {
    let mut pool = Pool::new(name, Kind::Scalelite, n, &[]);
    for i in 1..=n {
        pool.set_host_var(&format!("h{i:02}"), &format!("upgrade_seconds: {seconds}"));
    }
    pool.tail = "state:\n  backend: postgresql\n  url: {secret: \"env:ROLLOUT_TEST_STATE_URL\"}\n  pool: berlin\n".into();
    pool.write();
    pool
}

/// `rollout SUB INVENTORY ARGS` as a controller with its own local state folder `who`.
fn controller(
    pool: &Pool,
    pg: &Postgres,
    who: &str,
    sub: &str,
    args: &[&str],
) -> std::process::Child {
    let inv = pool.inventory();
    let mut all = vec![sub, inv.to_str().unwrap()];
    all.extend(args);
    pool.rollout(&all)
        .env("ROLLOUT_TEST_STATE_URL", pg.url())
        .env("ROLLOUT_STATE_DIR", pool.dir.join(format!("state-{who}")))
        .spawn()
        .unwrap()
}

fn no_secrets(out: &Output, pg: &Postgres) {
    out.assert_no_secrets();
    for s in [PG_PASSWORD.to_string(), pg.url()] {
        assert!(
            !out.all().contains(&s),
            "the state URL or its password was printed:\n{}",
            out.all()
        );
    }
}

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
    let a = controller(
        &pool,
        &pg,
        "a",
        "upgrade",
        &["--batch-size", "1", "--output", "plain"],
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
    wait_until(Duration::from_secs(60), "h01 cordoned", || {
        pool.balancer.state_of(h01).as_deref() == Some("cordoned")
    });
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
