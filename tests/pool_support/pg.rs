//! A PostgreSQL server of a test's own for the PostgreSQL state backend (issue 12, item 3):
//! Debian's `postgresql` package (initdb and pg_ctl from /usr/lib/postgresql/*/bin, as the
//! unprivileged user `nobody` when run as root), data and Unix socket in a temporary folder,
//! password-protected (SCRAM), stopped when the value drops; and rollout run as one of several
//! controllers sharing it. Shared by `pool_state_pg` and `fault_suite`; included with `#[path]`
//! next to `support` (pool_support/mod.rs).
#![allow(dead_code)]

use crate::support::{Kind, Output, Pool, tempdir};
use std::path::PathBuf;
use std::process::Command;

pub const PG_PASSWORD: &str = "pg-state-password-31415926";

/// A PostgreSQL server of the test's own: data and socket in one temporary folder.
pub struct Postgres {
    pub dir: PathBuf,
    bin: PathBuf,
    /// Also on 127.0.0.1 at this port, with TLS on (a self-signed certificate).
    tcp: Option<u16>,
}

/// The newest PostgreSQL under /usr/lib/postgresql.
pub fn pg_bin() -> PathBuf {
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

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Postgres {
    /// initdb and start; at most about 60 s.
    pub fn start(name: &str) -> Postgres {
        Postgres::start_with(name, false)
    }

    /// With `tcp`, also on a free port of 127.0.0.1 with TLS on (a self-signed certificate).
    pub fn start_with(name: &str, tcp: bool) -> Postgres {
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
    pub fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
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
    pub fn up(&self) {
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
    pub fn down(&self) {
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
    pub fn url(&self) -> String {
        // The socket's name carries the port (.s.PGSQL.PORT).
        format!(
            "host={} port={} user=rollout password={PG_PASSWORD} dbname=postgres",
            self.dir.display(),
            self.tcp.unwrap_or(5432)
        )
    }

    /// The URL over TCP to 127.0.0.1 with `sslmode`.
    pub fn tcp_url(&self, sslmode: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=rollout password={PG_PASSWORD} dbname=postgres sslmode={sslmode}",
            self.tcp.unwrap()
        )
    }

    /// A query's rows, through the client library, as text.
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
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

/// `rollout SUB INVENTORY ARGS` as a controller with its own local state folder `who`.
pub fn controller(
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

pub fn no_secrets(out: &Output, pg: &Postgres) {
    out.assert_no_secrets();
    for s in [PG_PASSWORD.to_string(), pg.url()] {
        assert!(
            !out.all().contains(&s),
            "the state URL or its password was printed:\n{}",
            out.all()
        );
    }
}

/// A pool of `n` nodes whose upgrade takes `seconds`, its state in the PostgreSQL backend
/// (`ROLLOUT_TEST_STATE_URL`, pool `berlin`); not applied yet.
pub fn pool(name: &str, n: usize, seconds: u32) -> Pool {
    let mut pool = Pool::new(name, Kind::Scalelite, n, &[]);
    for i in 1..=n {
        pool.set_host_var(&format!("h{i:02}"), &format!("upgrade_seconds: {seconds}"));
    }
    pool.tail = "state:\n  backend: postgresql\n  url: {secret: \"env:ROLLOUT_TEST_STATE_URL\"}\n  pool: berlin\n".into();
    pool.write();
    pool
}
