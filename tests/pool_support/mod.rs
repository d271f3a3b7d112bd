//! Helpers for the pool tests: the lab's emulators (BBB API, Scalelite, b3scale) as child
//! processes on loopback (127.0.0.1; each BBB node on its own 127.0.0.N) with free ports,
//! inventories written for them, and the rollout binary run with a time limit. Everything is
//! killed when the test's values drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BBB_SECRET: &str = "bbb-node-secret-0123456789";

/// Node `host`'s own shared secret (BBB_SECRET and the host's name): every node of a pool has
/// its own, as rollout's pool checks demand. A leak of one still contains BBB_SECRET.
pub fn node_secret(host: &str) -> String {
    format!("{BBB_SECRET}-{host}")
}

/// The environment variable the test inventories read node `host`'s secret from.
pub fn node_secret_env(host: &str) -> String {
    let h: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("ROLLOUT_TEST_BBB_SECRET_{h}")
}
pub const LB_SECRET: &str = "balancer-secret-9876543210";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A certificate authority made for the test process (rcgen), as a university's internal CA:
/// its certificate in `ca.pem`, server certificates signed by it on demand.
pub struct TestCa {
    pub dir: PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    der: Vec<u8>,
}

/// A server's certificate and key as PEM files.
pub struct ServerCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

static TEST_CA: std::sync::OnceLock<TestCa> = std::sync::OnceLock::new();

/// The test process's CA (made once); every pool served over HTTPS uses it.
pub fn test_ca() -> &'static TestCa {
    TEST_CA.get_or_init(|| TestCa::new("rollout test CA"))
}

impl TestCa {
    /// A new CA named `name`, in its own temporary folder.
    pub fn new(name: &str) -> TestCa {
        let dir = tempdir("ca");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        TestCa {
            dir,
            der: cert.der().to_vec(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// The CA's certificate (PEM), what an inventory's `ca_file:` names.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A server certificate for `names` (IP addresses or DNS names), signed by this CA, valid
    /// now (rcgen's default span) unless `expired` (then valid only during 2019); written as
    /// `LABEL.crt` and `LABEL.key`.
    pub fn server(&self, label: &str, names: &[&str], expired: bool) -> ServerCert {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, label);
        if expired {
            params.not_before = rcgen::date_time_ymd(2019, 1, 1);
            params.not_after = rcgen::date_time_ymd(2020, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let out = ServerCert {
            cert: self.dir.join(format!("{label}.crt")),
            key: self.dir.join(format!("{label}.key")),
        };
        std::fs::write(&out.cert, cert.pem()).unwrap();
        std::fs::write(&out.key, key.serialize_pem()).unwrap();
        out
    }

    /// A certificate for 127.0.0.1, localhost and the nodes' addresses 127.0.0.11 to
    /// 127.0.0.60, as the stand-ins on loopback serve.
    pub fn loopback(&self) -> ServerCert {
        let nodes: Vec<String> = (11..=60).map(|i| format!("127.0.0.{i}")).collect();
        let mut names = vec!["127.0.0.1", "localhost"];
        names.extend(nodes.iter().map(String::as_str));
        self.server("loopback", &names, false)
    }
}

/// The agent the tests' own calls use: no proxy, statuses as answers, trusting the test CA
/// (and nothing else).
pub fn agent() -> ureq::Agent {
    let ca = ureq::tls::Certificate::from_der(&test_ca().der).to_owned();
    ureq::Agent::config_builder()
        .proxy(None)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
                .build(),
        )
        .build()
        .new_agent()
}

/// A child process killed on drop; a process group (a supervisor and what it started) is
/// killed whole.
pub struct Proc {
    pub child: Child,
    pub port: u16,
    /// The child leads its own process group.
    pub group: bool,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.group {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (at most 10 s) until something accepts connections on `address:port`.
pub fn wait_listening(address: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect((address, port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listens on {address}:{port} after 10 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts a lab emulator and reads the port from its "listening on ADDR:PORT" line; with
/// `tls`, it serves HTTPS with that certificate.
pub fn spawn<S: AsRef<std::ffi::OsStr>>(
    script: &str,
    args: &[S],
    env: &[(&str, &str)],
    tls: Option<&ServerCert>,
) -> Proc {
    let mut cmd = Command::new("python3");
    cmd.arg(repo().join(script)).args(args);
    if let Some(t) = tls {
        cmd.arg("--tls-cert")
            .arg(&t.cert)
            .arg("--tls-key")
            .arg(&t.key);
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("python3 runs the emulators");
    let out = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the emulator starts within 10 s");
    let port = line
        .split(" listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok());
    let port = port.unwrap_or_else(|| panic!("no port in `{line}`"));
    Proc {
        child,
        port,
        group: false,
    }
}

/// A BBB node: the API emulator with its own properties file and pid file in `dir`,
/// listening on its own loopback address (`127.0.0.N`), so that each node's URL has its own
/// host name, as the nodes of a real pool do (Scalelite with `SERVER_ID_IS_HOSTNAME=true`
/// makes the host name the server's id). It runs under a supervisor that starts it again on
/// the same address and port when it exits, as systemd's `Restart=` does: a restart is a
/// `kill` of the pid in `dir/pid`. The meetings themselves, which in BBB live on in
/// akka-apps and FreeSWITCH, are kept in `dir/akka-meetings.json` (the emulator's `--state`):
/// a restart of the process alone is a restart of bbb-web under its classes, which go on
/// unseen by the API ([`Bbb::restart_bbb_web`]); removing that file first ends them, as a
/// restart of all the services does (the fixture role's `restart bbb-web` handler).
pub struct Bbb {
    pub proc: Proc,
    pub dir: PathBuf,
    pub secret: String,
    /// The loopback address the API listens on (`127.0.0.N`).
    pub address: String,
    /// `http` or `https`.
    pub scheme: &'static str,
}

impl Bbb {
    pub fn start(dir: &Path, secret: &str, address: &str) -> Bbb {
        Bbb::start_with(dir, secret, address, None)
    }

    /// A node serving its API over HTTPS with `tls` when given.
    pub fn start_with(dir: &Path, secret: &str, address: &str, tls: Option<&ServerCert>) -> Bbb {
        std::fs::create_dir_all(dir).unwrap();
        let props = dir.join("bbb-web.properties");
        std::fs::write(&props, format!("securitySalt={secret}\nbigbluebutton.web.serverURL=http://{address}\nallowRevealOfBBBVersion=true\n")).unwrap();
        let release = dir.join("release");
        std::fs::write(&release, "BIGBLUEBUTTON_RELEASE=3.0.99-emulated\n").unwrap();
        // akka-apps' copy of the secret, equal as rollout and bbb-conf keep it; no dial-in.
        let akka = dir.join("bbb-apps-akka.conf");
        std::fs::write(
            &akka,
            format!("services {{\n  sharedSecret=\"{secret}\"\n}}\n"),
        )
        .unwrap();
        let dialplans = dir.join("dialplan-public");
        std::fs::create_dir_all(&dialplans).unwrap();
        // A free port on the node's own address, kept across restarts.
        let port = std::net::TcpListener::bind((address, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let q = |p: &Path| rollout::script::quote(p.to_str().unwrap());
        let emulator = format!(
            "python3 {} --listen {address}:{port} --properties {} --state {} --defaults /nonexistent --release-file {} --akka-conf {} --dialplan-dir {} --end-delay 0.2 --quiet{tls}",
            q(&repo().join("lab/bbb/bbb-api-emulator.py")),
            q(&props),
            q(&dir.join("akka-meetings.json")),
            q(&release),
            q(&akka),
            q(&dialplans),
            tls = tls.map_or(String::new(), |t| format!(
                " --tls-cert {} --tls-key {}",
                q(&t.cert),
                q(&t.key)
            ))
        );
        let pid = dir.join("pid");
        // Its own messages (`create ID`, `join ID as ROLE`, `end ID`) go to `emulator.log`.
        let supervisor = format!(
            "while :; do {emulator} >/dev/null 2>>{log} </dev/null & echo $! > {pid}.new; mv {pid}.new {pid}; wait $!; sleep 0.1; done",
            pid = q(&pid),
            log = q(&dir.join("emulator.log"))
        );
        use std::os::unix::process::CommandExt;
        let child = Command::new("sh")
            .args(["-c", &supervisor])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("sh runs the supervisor");
        let proc = Proc {
            child,
            port,
            group: true,
        };
        wait_listening(address, port);
        Bbb {
            proc,
            dir: dir.to_path_buf(),
            secret: secret.to_string(),
            address: address.to_string(),
            scheme: if tls.is_some() { "https" } else { "http" },
        }
    }

    pub fn api(&self) -> String {
        format!(
            "{}://{}:{}/bigbluebutton/api",
            self.scheme, self.address, self.proc.port
        )
    }

    fn endpoint(&self) -> rollout::bbb_api::Endpoint {
        rollout::bbb_api::Endpoint::new(&self.api(), &self.secret)
    }

    /// Creates a meeting and joins `n` participants.
    pub fn meeting(&self, id: &str, n: usize) {
        self.meeting_for(id, n, 0);
    }

    /// Creates a meeting scheduled for `minutes` (create's `duration`; 0: no limit) and joins
    /// `n` participants.
    pub fn meeting_for(&self, id: &str, n: usize, minutes: u64) {
        let ep = self.endpoint();
        let q = format!("meetingID={id}&name={id}&moderatorPW=mp&attendeePW=ap&duration={minutes}");
        let body = get(&ep.signed("create", &q));
        assert!(body.contains("SUCCESS"), "create: {body}");
        for i in 0..n {
            let q = format!("meetingID={id}&fullName=user{i}&role=VIEWER&redirect=false");
            let body = get(&ep.signed("join", &q));
            assert!(body.contains("SUCCESS"), "join: {body}");
        }
    }

    /// Restarts bbb-web alone (`systemctl restart bbb-web`, or bbb-web dying and systemd
    /// starting it again), with akka-apps and FreeSWITCH running on: the node's classes go
    /// on, but the new bbb-web lists none of them. Returns once the new process answers.
    pub fn restart_bbb_web(&self) {
        let pid = self.dir.join("pid");
        let old = std::fs::read_to_string(&pid).unwrap();
        let status = Command::new("kill").arg(old.trim()).status().unwrap();
        assert!(status.success(), "kill bbb-web {old}");
        wait_until(Duration::from_secs(10), "bbb-web to start again", || {
            std::fs::read_to_string(&pid).is_ok_and(|p| p != old)
                && std::net::TcpStream::connect((self.address.as_str(), self.proc.port)).is_ok()
        });
    }

    /// A participant leaves meeting `id` (also one bbb-web forgot).
    pub fn leave(&self, id: &str) {
        let body = get(&format!(
            "{}://{}:{}/emulator/leave?meetingID={id}",
            self.scheme, self.address, self.proc.port
        ));
        assert!(body.contains("\"left\""), "leave: {body}");
    }

    /// Ends a meeting through the API (as its moderator would).
    pub fn end(&self, id: &str) {
        let body = get(&self
            .endpoint()
            .signed("end", &format!("meetingID={id}&password=mp")));
        assert!(body.contains("SUCCESS"), "end: {body}");
    }

    /// The emulator's meetings (JSON).
    pub fn meetings(&self) -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_str(&get(&format!(
            "{}://{}:{}/emulator/state",
            self.scheme, self.address, self.proc.port
        )))
        .unwrap();
        v["meetings"].as_array().cloned().unwrap_or_default()
    }

    /// The emulator's own messages so far (`create ID (voiceBridge N)`, `join ID as ROLE
    /// (N participants)`, `end ID (removed in S)`), one per line, across restarts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("emulator.log")).unwrap_or_default()
    }

    pub fn upgrades(&self) -> usize {
        std::fs::read_to_string(self.dir.join("upgrades"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

pub fn get(url: &str) -> String {
    agent()
        .get(url)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

pub fn post(url: &str) -> String {
    agent()
        .post(url)
        .send_empty()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// A stand-in b3scale node agent (`lab/emulators/b3scaleagent.py -a`, speaking the real
/// agent's protocol) for one node, killed on drop. Its log is `b3scaleagent.log` in the
/// node's folder.
pub struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Agent {
    /// Starts the agent of node `h` (ref `h`, a node token minted by the emulator's own
    /// `mint-token`, as `b3scalectl auth authorize_node_agent --ref h` makes it) against
    /// b3scale at `api`. It reads the node's `bbb-web.properties` as the real agent reads
    /// `BBB_CONFIG`: a copy whose `bigbluebutton.web.serverURL` carries the emulator's port.
    pub fn start(h: &str, bbb: &Bbb, api: &str, token: &str) -> Agent {
        let props = bbb.dir.join("b3scaleagent-bbb-web.properties");
        std::fs::write(
            &props,
            format!(
                "securitySalt={}\nbigbluebutton.web.serverURL={}://{}:{}\n",
                bbb.secret, bbb.scheme, bbb.address, bbb.proc.port
            ),
        )
        .unwrap();
        let log = std::fs::File::create(bbb.dir.join("b3scaleagent.log")).unwrap();
        let child = Command::new("python3")
            .arg(repo().join("lab/emulators/b3scaleagent.py"))
            .arg("-a")
            .env("B3SCALE_API_URL", api)
            .env("B3SCALE_API_ACCESS_TOKEN", token)
            .env("BBB_CONFIG", &props)
            .env("B3SCALE_LOAD_FACTOR", "1.0")
            // b3scale's API over HTTPS in a `Pool::new_tls` pool: the test CA, as Go reads it.
            .env("SSL_CERT_FILE", test_ca().ca_file())
            .env_remove("http_proxy")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("python3 runs the b3scale agent stand-in");
        let _ = h;
        Agent(child)
    }
}

/// Which balancer a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Scalelite,
    B3scale,
}

/// A balancer emulator.
pub struct Balancer {
    pub kind: Kind,
    pub proc: Proc,
    /// b3scale's admin token, minted once (see `admin_token`).
    token: std::sync::OnceLock<String>,
    /// `http` or `https`.
    pub scheme: &'static str,
}

impl Balancer {
    /// A Scalelite emulator polling every `poll_interval` seconds, with extra settings `env`
    /// (its real configuration variables, e.g. `CONNECT_TIMEOUT`).
    pub fn scalelite_with(poll_interval: &str, env: &[(&str, &str)]) -> Balancer {
        // As the roles deploy it (`scalelite_server_id_is_hostname: true`).
        let mut all = vec![
            ("LOADBALANCER_SECRET", LB_SECRET),
            ("SERVER_ID_IS_HOSTNAME", "true"),
        ];
        all.extend_from_slice(env);
        let proc = spawn(
            "lab/emulators/scalelite.py",
            &[
                "--listen",
                "127.0.0.1:0",
                "--poll-interval",
                poll_interval,
                "--quiet",
            ],
            &all,
            None,
        );
        Balancer {
            kind: Kind::Scalelite,
            proc,
            token: std::sync::OnceLock::new(),
            scheme: "http",
        }
    }

    pub fn start(kind: Kind) -> Balancer {
        Balancer::start_with(kind, &[], None)
    }

    /// A balancer emulator started with `args` added to its command line (its
    /// configuration, such as b3scale's `--clock-offset`), serving its API over HTTPS with
    /// `tls` when given. It trusts the test CA for its own calls to the nodes through
    /// `SSL_CERT_FILE`, which the real ones read too (OpenSSL under Scalelite's Ruby, Go's
    /// crypto/x509 under b3scale).
    pub fn start_with(kind: Kind, args: &[&str], tls: Option<&ServerCert>) -> Balancer {
        let with = |base: &[&'static str]| -> Vec<String> {
            base.iter().chain(args).map(|a| a.to_string()).collect()
        };
        let ca = test_ca().ca_file();
        let ca = ca.to_str().unwrap();
        let proc = match kind {
            Kind::Scalelite => spawn(
                "lab/emulators/scalelite.py",
                &with(&[
                    "--listen",
                    "127.0.0.1:0",
                    "--poll-interval",
                    "0.3",
                    "--quiet",
                ]),
                // As the roles deploy it (`scalelite_server_id_is_hostname: true`).
                &[
                    ("LOADBALANCER_SECRET", LB_SECRET),
                    ("SERVER_ID_IS_HOSTNAME", "true"),
                    ("SSL_CERT_FILE", ca),
                ],
                tls,
            ),
            Kind::B3scale => spawn(
                "lab/emulators/b3scale.py",
                &with(&[
                    "--listen",
                    "127.0.0.1:0",
                    "--poll-interval",
                    "0.3",
                    "--quiet",
                ]),
                &[("B3SCALE_API_JWT_SECRET", LB_SECRET), ("SSL_CERT_FILE", ca)],
                tls,
            ),
        };
        Balancer {
            kind,
            proc,
            token: std::sync::OnceLock::new(),
            scheme: if tls.is_some() { "https" } else { "http" },
        }
    }

    pub fn base(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.proc.port)
    }

    /// The `url:` of the inventory's balancer section.
    pub fn url(&self) -> String {
        match self.kind {
            Kind::Scalelite => format!("{}/scalelite/api", self.base()),
            Kind::B3scale => self.base(),
        }
    }

    /// How rollout names this balancer in its output (`Scalelite at URL`, `b3scale at URL`).
    pub fn describe(&self) -> String {
        match self.kind {
            Kind::Scalelite => format!("Scalelite at {}", self.url()),
            Kind::B3scale => format!("b3scale at {}", self.url()),
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Scalelite => "scalelite",
            Kind::B3scale => "b3scale",
        }
    }

    pub fn history(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&get(&format!("{}/emulator/history", self.base()))).unwrap()
    }

    /// The servers as the balancer's own API lists them, as a client of the real system reads
    /// them: Scalelite's `GET /scalelite/api/getServers` with a SHA256 checksum (404 "No servers
    /// are configured" is an empty list), b3scale's `GET /api/v1/backends` with an admin token.
    /// Nothing forces a poll: the emulator polls on its own `--poll-interval` (0.3 s here), as
    /// the real poller does on its `INTERVAL`.
    pub fn listed(&self) -> Vec<serde_json::Value> {
        let agent = agent();
        let (status, body) = match self.kind {
            Kind::Scalelite => {
                use sha2::Digest;
                let sum = sha2::Sha256::digest(format!("getServers{LB_SECRET}").as_bytes());
                let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
                let url = format!("{}/scalelite/api/getServers?checksum={hex}", self.base());
                let mut r = agent.get(&url).call().unwrap();
                (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
            }
            Kind::B3scale => {
                let url = format!("{}/api/v1/backends", self.base());
                let mut r = agent
                    .get(&url)
                    .header("Authorization", &format!("Bearer {}", self.admin_token()))
                    .call()
                    .unwrap();
                (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
            }
        };
        if self.kind == Kind::Scalelite
            && status == 404
            && body.contains("No servers are configured")
        {
            return Vec::new();
        }
        assert_eq!(status, 200, "listing the balancer's servers: {body}");
        serde_json::from_str::<serde_json::Value>(&body)
            .unwrap_or_else(|e| panic!("listing the balancer's servers: {e}: {body}"))
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("listing the balancer's servers: not a list: {body}"))
    }

    /// An admin token for b3scale, minted by the emulator's own `mint-token` (as
    /// `b3scalectl auth create_access_token` does for the real one), not by rollout's code.
    fn admin_token(&self) -> &str {
        self.token
            .get_or_init(|| mint_token("tests", "b3scale:admin", "3600"))
    }

    /// `b3scalectl db migrate`: b3scale answers nothing about backends before it (as the
    /// role does on the balancer host).
    pub fn migrate(&self) {
        let mut r = agent()
            .post(&format!("{}/api/v1/ctrl/migrate", self.base()))
            .header("Authorization", &format!("Bearer {}", self.admin_token()))
            .send_empty()
            .unwrap();
        let body = r.body_mut().read_to_string().unwrap();
        assert!(body.contains("\"migrated\":true"), "migrate: {body}");
    }

    /// The backend b3scale lists for the node, as JSON (None: none).
    pub fn backend_of(&self, bbb: &Bbb) -> Option<serde_json::Value> {
        self.listed().into_iter().find(|s| {
            s["bbb"]["host"].as_str().map(|h| h.trim_end_matches('/')) == Some(&bbb.api())
        })
    }

    /// A person takes `bbb` out of service through the balancer's own API, as its tools do:
    /// Scalelite's `POST updateServer` with `state: disable` (what the API offers for
    /// `rake servers:disable`), b3scale's `PATCH /api/v1/backends/ID` with `admin_state:
    /// stopped` (what `b3scalectl disable backend` sends). Not rollout's code.
    pub fn take_out_by_hand(&self, bbb: &Bbb) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent();
        let me = self
            .listed()
            .into_iter()
            .find(|s| {
                let url = match self.kind {
                    Kind::Scalelite => s["url"].as_str(),
                    Kind::B3scale => s["bbb"]["host"].as_str(),
                };
                url.map(|u| u.trim_end_matches('/')) == Some(bbb.api().as_str())
            })
            .expect("the node is registered");
        let id = me["id"].as_str().unwrap().to_string();
        let (status, body) = match self.kind {
            Kind::Scalelite => {
                use sha2::Digest;
                let sum = sha2::Sha256::digest(format!("updateServer{LB_SECRET}").as_bytes());
                let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
                let url = format!("{}/scalelite/api/updateServer?checksum={hex}", self.base());
                let body = serde_json::json!({"id": id, "server": {"state": "disable"}});
                let mut r = agent
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .send(body.to_string())
                    .unwrap();
                (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
            }
            Kind::B3scale => {
                let url = format!("{}/api/v1/backends/{id}", self.base());
                let body = serde_json::json!({"admin_state": "stopped"});
                let mut r = agent
                    .patch(&url)
                    .header("Authorization", &format!("Bearer {}", self.admin_token()))
                    .header("Content-Type", "application/json")
                    .send(body.to_string())
                    .unwrap();
                (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
            }
        };
        assert_eq!(status, 200, "taking the node out by hand: {body}");
    }

    /// The state a person's `take_out_by_hand` leaves, as `states` names it.
    pub fn by_hand_state(&self) -> &'static str {
        match self.kind {
            Kind::Scalelite => "disabled",
            Kind::B3scale => "cordoned",
        }
    }

    /// The balancer's states by BBB API URL (normalized: enabled, cordoned, disabled), read
    /// once through its real API (see `listed`).
    pub fn states(&self) -> Vec<(String, String)> {
        self.listed()
            .iter()
            .map(|s| match self.kind {
                Kind::Scalelite => (
                    s["url"].as_str().unwrap().trim_end_matches('/').to_string(),
                    s["state"].as_str().unwrap().to_string(),
                ),
                Kind::B3scale => {
                    let st = match s["admin_state"].as_str().unwrap() {
                        "ready" => "enabled",
                        "stopped" => "cordoned",
                        _ => "disabled",
                    };
                    (
                        s["bbb"]["host"]
                            .as_str()
                            .unwrap()
                            .trim_end_matches('/')
                            .to_string(),
                        st.to_string(),
                    )
                }
            })
            .collect()
    }

    /// A node's state as the balancer's API shows it now (None: not registered).
    pub fn state_of(&self, bbb: &Bbb) -> Option<String> {
        self.states()
            .into_iter()
            .find(|(u, _)| *u == bbb.api())
            .map(|(_, s)| s)
    }

    /// Waits (at most 10 s, i.e. many poll intervals) until the balancer's API shows `want`
    /// for the node (None: not registered); fails the test with the last state seen.
    #[track_caller]
    pub fn assert_state(&self, bbb: &Bbb, want: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = self.state_of(bbb);
            if seen.as_deref() == want {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}: the balancer shows {seen:?}, expected {want:?} (waited 10 s)",
                    bbb.api()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (at most 10 s) until the balancer's own poller has reached every listed server,
    /// as its API shows: Scalelite's `online` is "online", b3scale's backend has left
    /// node_state "init". The real systems offer nothing to poll on demand through their API.
    pub fn wait_polled(&self) {
        wait_until(
            Duration::from_secs(10),
            "the balancer's poller to reach every node",
            || {
                self.listed().iter().all(|s| match self.kind {
                    Kind::Scalelite => s["online"] == "online",
                    Kind::B3scale => s["node_state"] != "init",
                })
            },
        );
    }

    /// History entries that change the registration or the state (not the poller's).
    pub fn changes(&self) -> usize {
        self.history()
            .iter()
            .filter(|h| h["event"] != "poll" && h["event"] != "refresh")
            .count()
    }

    /// The most servers out of service at once (not enabled) after history entry `from`,
    /// starting from all `ids` enabled.
    pub fn max_out_of_service(&self, from: usize) -> usize {
        let mut out: std::collections::BTreeMap<String, bool> = Default::default();
        let mut max = 0;
        for h in self.history().iter().skip(from) {
            let id = h["id"].as_str().unwrap().to_string();
            let enabled = match self.kind {
                Kind::Scalelite => h["state"] == "enabled",
                Kind::B3scale => h["admin_state"] == "ready",
            };
            out.insert(id, !enabled);
            max = max.max(out.values().filter(|o| **o).count());
        }
        max
    }
}

/// A token signed with the balancer's secret by the b3scale emulator's `mint-token`.
pub fn mint_token(sub: &str, scopes: &str, ttl: &str) -> String {
    let out = Command::new("python3")
        .arg(repo().join("lab/emulators/b3scale.py"))
        .args(["mint-token", "--sub", sub, "--scopes", scopes, "--ttl", ttl])
        .env("B3SCALE_API_JWT_SECRET", LB_SECRET)
        .output()
        .expect("python3 runs the b3scale emulator");
    assert!(out.status.success(), "mint-token: {:?}", out);
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A test's folder with nodes, a balancer and an inventory.
pub struct Pool {
    /// b3scale: each node's running agent stand-in (started by [`Pool::new`]).
    pub agents: Vec<(String, Agent)>,
    pub dir: PathBuf,
    pub nodes: Vec<(String, Bbb)>,
    /// Every node the inventory was ever written with: their secrets stay in rollout's
    /// environment when a test takes a node's emulator away (the inventory still names it).
    pub secret_hosts: Vec<String>,
    pub balancer: Balancer,
    pub extra: String,
    pub host_vars: Vec<String>,
    /// Another `url:` for the balancer (a fake answering garbage, a closed port).
    pub url: Option<String>,
    /// Lines under `all:` before `children:` (e.g. `  hosts:` with a balancer host).
    pub top_hosts: String,
    /// Top-level sections after `balancer:` (e.g. a `state:` section).
    pub tail: String,
    /// The folder with `roles/` and `templates/` (default `tests/fixtures/pool`).
    pub fixtures: PathBuf,
    /// The nodes serve HTTPS (with a certificate of [`test_ca`]): `bbb_scheme: https`.
    pub tls: bool,
    /// `balancer: ca_file` (the test CA's file in a [`Pool::new_tls`] pool).
    pub lb_ca_file: Option<String>,
    /// `bbb_api_ca_file` of the `bbb` group (the test CA's file in a [`Pool::new_tls`] pool).
    pub bbb_ca_file: Option<String>,
}

pub fn tempdir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let d = std::env::temp_dir().join(format!("rollout-{name}-{}-{nanos}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl Pool {
    /// Every node's phase in the pool's journal (empty until the journal is written).
    pub fn journal_phases(&self) -> std::collections::BTreeMap<String, String> {
        let mut phases = std::collections::BTreeMap::new();
        let Ok(dir) = std::fs::read_dir(self.dir.join("state")) else {
            return phases;
        };
        for e in dir.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("json") {
                continue;
            }
            // Written by rename: a file read here is whole.
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let Ok(j) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            if let Some(nodes) = j["nodes"].as_object() {
                for (h, r) in nodes {
                    phases.insert(h.clone(), r["phase"].as_str().unwrap_or("").to_string());
                }
            }
        }
        phases
    }

    /// `n` nodes h01.. (each a BBB emulator whose secret is its [`node_secret`] unless listed in
    /// `wrong_secret`), a balancer of `kind`, and an inventory with `extra` balancer keys.
    pub fn new(name: &str, kind: Kind, n: usize, wrong_secret: &[&str]) -> Pool {
        Pool::build(name, Balancer::start(kind), n, wrong_secret, None, false)
    }

    /// As [`Pool::new`]; for b3scale only the nodes in `agents` run an agent (`None`: all).
    pub fn with_agents(
        name: &str,
        kind: Kind,
        n: usize,
        wrong_secret: &[&str],
        agents: Option<&[&str]>,
    ) -> Pool {
        Pool::build(name, Balancer::start(kind), n, wrong_secret, agents, false)
    }

    /// As [`Pool::new`], every API (balancer and nodes) over HTTPS with the test CA's
    /// certificates, the inventory trusting the test CA.
    pub fn new_tls(name: &str, kind: Kind, n: usize, wrong_secret: &[&str]) -> Pool {
        let cert = test_ca().loopback();
        let balancer = Balancer::start_with(kind, &[], Some(&cert));
        Pool::build(name, balancer, n, wrong_secret, None, true)
    }

    /// As [`Pool::new`], with a balancer the test started (configured its own way).
    pub fn with_balancer(name: &str, balancer: Balancer, n: usize, wrong_secret: &[&str]) -> Pool {
        Pool::build(name, balancer, n, wrong_secret, None, false)
    }

    fn build(
        name: &str,
        balancer: Balancer,
        n: usize,
        wrong_secret: &[&str],
        agents: Option<&[&str]>,
        tls: bool,
    ) -> Pool {
        let kind = balancer.kind;
        let cert = tls.then(|| test_ca().loopback());
        let dir = tempdir(name);
        let nodes = (1..=n)
            .map(|i| {
                let h = format!("h{i:02}");
                let secret = if wrong_secret.contains(&h.as_str()) {
                    "some-other-secret".to_string()
                } else {
                    node_secret(&h)
                };
                let bbb = Bbb::start_with(
                    &dir.join(&h),
                    &secret,
                    &format!("127.0.0.{}", 10 + i),
                    cert.as_ref(),
                );
                (h, bbb)
            })
            .collect();
        let secret_hosts = (1..=n).map(|i| format!("h{i:02}")).collect();
        let mut pool = Pool {
            agents: Vec::new(),
            dir,
            nodes,
            secret_hosts,
            balancer,
            extra: "  health_timeout: 2\n  poll_interval: 0.2\n".into(),
            host_vars: vec![String::new(); n],
            url: None,
            top_hosts: String::new(),
            tail: String::new(),
            fixtures: repo().join("tests/fixtures/pool"),
            tls,
            lb_ca_file: tls.then(|| test_ca().ca_file().display().to_string()),
            bbb_ca_file: tls.then(|| test_ca().ca_file().display().to_string()),
        };
        pool.write();
        if kind == Kind::B3scale {
            // As the roles leave a b3scale pool: the schema migrated, an agent on every node
            // that has registered the node's backend.
            pool.balancer.migrate();
            let names: Vec<String> = pool
                .nodes
                .iter()
                .map(|(h, _)| h.clone())
                .filter(|h| agents.is_none_or(|a| a.contains(&h.as_str())))
                .collect();
            for h in &names {
                pool.start_agent(h);
            }
            for h in &names {
                wait_until(
                    Duration::from_secs(10),
                    &format!("{h}'s agent to register its backend"),
                    || pool.balancer.backend_of(pool.node(h)).is_some(),
                );
            }
        }
        pool
    }

    /// b3scale: starts node `h`'s agent stand-in (see [`Agent::start`]).
    pub fn start_agent(&mut self, h: &str) {
        let token = mint_token(h, "b3scale:node", "0");
        let agent = Agent::start(h, self.node(h), &self.balancer.base(), &token);
        self.agents.push((h.to_string(), agent));
    }

    /// b3scale: stops node `h`'s agent (its heartbeats stop).
    pub fn stop_agent(&mut self, h: &str) {
        self.agents.retain(|(n, _)| n != h);
    }

    pub fn inventory(&self) -> PathBuf {
        self.dir.join("inventory.yml")
    }

    pub fn node(&self, h: &str) -> &Bbb {
        &self.nodes.iter().find(|(n, _)| n == h).unwrap().1
    }

    pub fn set_host_var(&mut self, host: &str, line: &str) {
        let i = self.nodes.iter().position(|(n, _)| n == host).unwrap();
        self.host_vars[i].push_str(&format!("            {line}\n"));
        self.write();
    }

    pub fn write(&self) {
        let fixtures = &self.fixtures;
        let mut bbb_tls = String::new();
        if self.tls {
            bbb_tls.push_str("        bbb_scheme: https\n");
        }
        if let Some(ca) = &self.bbb_ca_file {
            bbb_tls.push_str(&format!("        bbb_api_ca_file: {ca}\n"));
        }
        let lb_tls = self
            .lb_ca_file
            .as_ref()
            .map_or(String::new(), |ca| format!("  ca_file: {ca}\n"));
        let bbb_vars = if bbb_tls.is_empty() {
            String::new()
        } else {
            format!("      vars:\n{bbb_tls}")
        };
        let mut y = format!(
            "roles_path: {}\ntemplates_path: {}\nall:\n{}  children:\n    bbb:\n      roles: [bbb]\n{bbb_vars}      hosts:\n",
            fixtures.join("roles").display(),
            fixtures.join("templates").display(),
            self.top_hosts
        );
        for (i, (h, bbb)) in self.nodes.iter().enumerate() {
            y.push_str(&format!(
                "        {h}:\n          connection: local\n          vars:\n            bbb_secret: {{secret: \"env:{}\"}}\n            bbb_address: {}\n            bbb_port: {}\n            node_dir: {}\n{}",
                node_secret_env(h),
                bbb.address,
                bbb.proc.port,
                bbb.dir.display(),
                self.host_vars[i]
            ));
        }
        y.push_str(&format!(
            "balancer:\n  kind: {}\n  url: {}\n  secret: {{secret: \"env:ROLLOUT_TEST_LB_SECRET\"}}\n{lb_tls}{}",
            self.balancer.kind_name(),
            self.url.clone().unwrap_or_else(|| self.balancer.url()),
            self.extra
        ));
        y.push_str(&self.tail);
        std::fs::write(self.inventory(), y).unwrap();
    }

    /// A `rollout` command for this pool, with the secrets in the environment and its own
    /// journal folder.
    pub fn rollout(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollout"));
        cmd.args(args)
            .envs(
                self.nodes
                    .iter()
                    .map(|(h, _)| h)
                    .chain(&self.secret_hosts)
                    .map(|h| (node_secret_env(h), node_secret(h))),
            )
            .env("ROLLOUT_TEST_LB_SECRET", LB_SECRET)
            .env("ROLLOUT_STATE_DIR", self.dir.join("state"))
            // For the fixture role's restart handler (python3 on the controller), not rollout.
            .env("SSL_CERT_FILE", test_ca().ca_file())
            .env_remove("TERM")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `rollout SUB INVENTORY ARGS...` to the end (at most `limit`).
    pub fn run(&self, sub: &str, args: &[&str], limit: Duration) -> Output {
        let inv = self.inventory();
        let mut all = vec![sub, inv.to_str().unwrap()];
        all.extend(args);
        finish(self.rollout(&all).spawn().unwrap(), limit)
    }

    pub fn spawn(&self, sub: &str, args: &[&str]) -> Child {
        let inv = self.inventory();
        let mut all = vec![sub, inv.to_str().unwrap()];
        all.extend(args);
        self.rollout(&all).spawn().unwrap()
    }
}

/// What a run printed.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Fails the test if a secret shows up.
    pub fn assert_no_secrets(&self) {
        for s in [BBB_SECRET, LB_SECRET] {
            assert!(
                !self.all().contains(s),
                "a secret was printed:\n{}",
                self.all()
            );
        }
    }
}

/// Waits for `child` at most `limit`; kills it and fails the test when it takes longer.
pub fn finish(mut child: Child, limit: Duration) -> Output {
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let t2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rollout did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = t1.join().unwrap();
    let stderr = t2.join().unwrap();
    Output {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

/// Polls `f` until it is true (at most `limit`).
pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// nginx's `return 301 https://...$request_uri` in front of a service, as a stand-in: answers
/// every request (after reading its body) with `301` to `to` + the request's path and query.
/// Serves HTTPS with `tls` when given. `lab/emulators/redirector.py`.
pub fn redirector(to: &str, tls: Option<&ServerCert>) -> Proc {
    spawn("lab/emulators/redirector.py", &["--to", to], &[], tls)
}

/// A listener on `addr` that counts the connections made to it (and answers none), to
/// prove that nothing was sent somewhere. Runs until the test process ends.
pub fn counting_listener(addr: &str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(conn);
        }
    });
    (port, count)
}

/// A one-request-at-a-time HTTP server answering every request with `response` (raw HTTP),
/// for malformed-answer tests. Runs until the test process ends.
pub fn garbage_server(response: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 8192];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let _ = std::io::Write::write_all(&mut s, response.as_bytes());
        }
    });
    port
}

/// Reads one request (headers and a `Content-Length` body) and answers `502 Bad Gateway`,
/// as nginx does in front of a service that is down.
pub fn bad_gateway(conn: std::net::TcpStream) {
    use std::io::{BufRead, BufReader, Read, Write};
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok();
    let page = "<html><head><title>502 Bad Gateway</title></head></html>";
    let mut w = conn;
    let _ = write!(
        w,
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
}

/// Answers every request on `address:port` with [`bad_gateway`] (nginx up, the service
/// behind it down), until the test process ends.
pub fn serve_bad_gateway(address: &str, port: u16) {
    // The killed emulator may hold the port for a moment after the kill (at most 5 s).
    let deadline = Instant::now() + Duration::from_secs(5);
    let listener = loop {
        match std::net::TcpListener::bind((address, port)) {
            Ok(l) => break l,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("{address}:{port}: {e}"),
        }
    };
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            bad_gateway(conn);
        }
    });
}
