//! End to end on a lab (`lab/lab up --name pool --hosts 6`): `lab/pool.yml`, the example pool
//! mapped onto lab hosts, is applied twice and the second run changes nothing; then what the
//! roles promise is checked on the hosts themselves:
//! - coturn on h05 answers TLS on 443; `turnutils_uclient` on h06 allocates a relay with a
//!   REST-API credential derived from the shared secret, is refused with a wrong one, relays
//!   to every BBB node of the pool and refuses (403) every other peer: a lab host outside the
//!   pool, coturn's own host, loopback, a private and a public address;
//! - ufw is active with the roles' rules, SSH first, and really filters: a port nobody allowed
//!   is unreachable from the next host while it answers on the host itself;
//! - each BBB stand-in node's API answers getMeetings with SUCCESS for the inventory secret,
//!   with recordings off in bbb-web.properties;
//! - before anything: a `turn_relay_ip` that h05 does not have stops the whole apply in the
//!   preflight (exit 2, h05's step and the address named) and no host is changed; with
//!   `lab/pool.yml`'s address (h05's own) the first apply converges, coturn bound to it;
//! - bbb-webhooks (the lab's stand-in for the optional package, as strict about checksums as
//!   bbb-webhooks 3.x) installed on h01 after the first apply: the next apply gives it the node's
//!   secret (closed to other users), `hooks/create` and `hooks/list` succeed with it; with its
//!   copy tampered with, the health check fails naming its file; after a secret rotation
//!   (`apply` with another `bbb_secret`) the new secret works there and the old one is refused;
//! - a class on h02 survives `apply` of a change whose restart would end it (a pool-wide dial-in
//!   number): held by default (exit 3) while the other nodes restart, drained and then
//!   restarted with `--drain` once its moderator ended it, ended only by `--force`; bbb-web's
//!   journal on h02 lists no other end;
//! - a node off the pool's pinned build fails `rollout plan`; `rollout_upgrade=true` with a new
//!   pin keeps BigBlueButton's packages out of the base role's dist-upgrade (held, though a
//!   newer build is offered) and runs the pinned bbb-install.sh, which brings the node to
//!   exactly the pin; an upgrade at the pin does not run it again, and the next apply changes
//!   nothing.
//!
//! Runs only with ROLLOUT_LAB_TESTS=1 (and root; ignored otherwise); fails if the lab cannot start then. The lab
//! (`pool`, or `ROLLOUT_LAB_NAME`) is taken down at the end unless ROLLOUT_LAB_KEEP=1.

mod common;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Fake secrets for the lab pool (environment variable, value), as `lab/pool.yml` names them.
const SECRETS: &[(&str, &str)] = &[
    ("POOL_BBB_SECRET_H01", "lab-h01-secret-3c9a51e0d7"),
    ("POOL_BBB_SECRET_H02", "lab-h02-secret-74b2f06a1e"),
    ("POOL_BBB_SECRET_H03", "lab-h03-secret-a8d3197c52"),
    ("POOL_BBB_SECRET_H04", "lab-h04-secret-05e6c4b8f9"),
    ("POOL_TURN_SECRET", "lab-turn-secret-6f1d2e8a40"),
    ("POOL_LB_SECRET", "lab-lb-secret-92c07b3de1"),
    ("POOL_SECRET_KEY_BASE", "lab-secret-key-base-1a2b3c4d"),
    ("POOL_POSTGRES_PASSWORD", "lab-postgres-password-5e6f"),
    ("POOL_SIP_PASSWORD", "lab-sip-password-7a8b9c"),
];

fn secret(var: &str) -> &'static str {
    SECRETS
        .iter()
        .find(|(k, _)| *k == var)
        .map(|(_, v)| *v)
        .expect("known secret")
}

/// Runs rollout with the pool's secrets in its environment; kills it after `limit`.
fn rollout(args: &[&str], limit: Duration) -> (i32, String) {
    rollout_with(args, limit, &[])
}

/// [`rollout`] with some of the secrets replaced (`env`: variable, value; the values are
/// checked not to be printed either).
fn rollout_with(args: &[&str], limit: Duration, env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollout"));
    cmd.args(args)
        .envs(SECRETS.iter().copied())
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    let out = common::run_with_limit(cmd, limit);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.1),
        String::from_utf8_lossy(&out.2)
    );
    for (_, s) in SECRETS.iter().chain(env) {
        assert!(!text.contains(s), "rollout printed a secret:\n{text}");
    }
    (out.0, text)
}

/// Takes the named lab down however the test ends, unless ROLLOUT_LAB_KEEP=1 (to look around
/// after a failure: `lab/lab ssh --name pool h01`).
struct Down(String);

impl Drop for Down {
    fn drop(&mut self) {
        common::note_proxy_races(&self.0);
        if std::env::var("ROLLOUT_LAB_KEEP").as_deref() == Ok("1") {
            eprintln!("lab_pool: leaving lab `{}` up (ROLLOUT_LAB_KEEP=1)", self.0);
            return;
        }
        let _ = Command::new(common::repo().join("lab/lab"))
            .args(["down", "--name", &self.0])
            .output();
    }
}

/// A TURN REST-API credential: username `<expiry>:user`, password base64(hmac-sha1(secret, username)).
fn turn_credential(secret: &str) -> (String, String) {
    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let user = format!("{expiry}:user");
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(user.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (user, password)
}

/// A plain HTTP GET from the controller to a lab host; returns the body.
fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect((addr, 80)).unwrap_or_else(|e| panic!("connect {addr}:80: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(resp)
}

fn sha256_hex(s: &str) -> String {
    rollout::script::sha256_hex(s.as_bytes())
}

/// Runs turnutils_uclient on `host` for `secs` seconds and returns its output (it waits for
/// echoes from the peer, which never come, so it is always stopped by `timeout`).
fn uclient(lab: &common::Lab, host: &str, secs: u32, args: &str) -> String {
    let cmd = format!(
        "timeout {secs} stdbuf -o0 -e0 turnutils_uclient {args} > /tmp/uclient.out 2>&1; cat /tmp/uclient.out"
    );
    let o = lab.ssh(host, &cmd);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A BBB API call to the node at `addr` (the stand-in's API behind its nginx, port 80), signed
/// with `secret` by rollout's own [`rollout::bbb_api::Endpoint::signed`]. Returns the body.
fn bbb_api(addr: &str, call: &str, query: &str, secret: &str) -> String {
    let base = format!("http://{addr}");
    let url = rollout::bbb_api::Endpoint::new(&format!("{base}/bigbluebutton/api"), secret)
        .signed(call, query);
    http_get(
        addr,
        url.strip_prefix(&base).expect("the endpoint's own URL"),
    )
}

/// A bbb-webhooks API call on `host` (its stand-in listens on 127.0.0.1:3005, as the package's
/// API does), signed with `secret` by `algo` (`sha1`, `sha256`) as BBB's API checksums are:
/// hash(call + query + secret). Returns the response body.
fn hooks(
    lab: &common::Lab,
    host: &str,
    call: &str,
    query: &str,
    secret: &str,
    algo: &str,
) -> String {
    let data = format!("{call}{query}{secret}");
    let checksum = match algo {
        "sha1" => {
            use sha1::Digest;
            hex::encode(sha1::Sha1::digest(data.as_bytes()))
        }
        _ => sha256_hex(&data),
    };
    let sep = if query.is_empty() { "" } else { "&" };
    lab.ssh_ok(
        host,
        &format!(
            "curl -sS --retry 10 --retry-connrefused --retry-delay 1 'http://127.0.0.1:3005/bigbluebutton/api/{call}?{query}{sep}checksum={checksum}'"
        ),
    )
}

#[test]
#[cfg_attr(
    not(lab_tests),
    ignore = "needs the lab: run as root with ROLLOUT_LAB_TESTS=1 (see README)"
)]
fn example_pool_converges_on_the_lab_and_does_what_it_promises() {
    let name = common::lab_name("pool");
    let lab = common::lab(&name, 6);
    let _down = Down(name);
    common::check_standin_pin();
    let net = format!("10.77.{}", common::lab_index(&lab.state));
    let port = common::free_port();
    let _emulator = common::start_scalelite_emulator(port, secret("POOL_LB_SECRET"));
    let inv = common::pool_inventory(&lab.state, &net, port);
    let inv = inv.to_str().unwrap();
    let t0 = Instant::now();
    let phase =
        |what: &str| eprintln!("lab_pool: {what} after {:.0} s", t0.elapsed().as_secs_f64());

    // 0. coturn must bind h05's own address (lab/pool.yml: turn_listening_ip, turn_relay_ip):
    //    the preflight checks it on h05, and a wrong one stops the whole run before any host
    //    changes (exit 2), although every other host has everything still to do.
    let wrong = format!("turn_relay_ip={net}.99");
    let (code, out) = rollout(
        &["apply", inv, "--output", "plain", "-e", &wrong],
        Duration::from_secs(300),
    );
    assert_eq!(
        code, 2,
        "a TURN relay address not on h05 must stop the run:\n{out}"
    );
    assert!(
        out.contains("error: preflight failed on 1 host: no host was changed")
            && out.contains("  h05: turn: preflight TURN addresses on this host: ")
            && out.contains(&format!(
                "turn_relay_ip {net}.99 is not an address of this host"
            )),
        "{out}"
    );
    assert_eq!(common::summary_counts(&out).1, 0, "{out}");
    for h in ["h01", "h02", "h03", "h04", "h06"] {
        assert!(
            out.contains(&format!(
                "{h}: FAILED: not changed: preflight failed on h05"
            )),
            "{h}: {out}"
        );
    }
    lab.ssh_ok("h01", "test ! -e /etc/bigbluebutton/bbb-web.properties");
    lab.ssh_ok("h05", "test ! -e /etc/turnserver.conf");
    phase("wrong TURN address refused");

    // 1. The first apply converges every role on every host and registers the nodes.
    let (code, out) = rollout(
        &["apply", inv, "--output", "plain"],
        Duration::from_secs(900),
    );
    assert_eq!(code, 0, "first apply failed:\n{out}");
    let (hosts, _, failed) = common::summary_counts(&out);
    assert_eq!((hosts, failed), (6, 0), "{out}");
    for h in ["h01", "h02", "h03", "h04"] {
        assert!(
            out.contains(&format!("{h}  registered and enabled")),
            "{h} not registered:\n{out}"
        );
    }

    phase("first apply");
    // 2. The second apply changes nothing, on the hosts and in the balancer.
    let (code, out) = rollout(
        &["apply", inv, "--output", "plain"],
        Duration::from_secs(300),
    );
    assert_eq!(code, 0, "second apply failed:\n{out}");
    assert_eq!(
        common::summary_counts(&out),
        (6, 0, 0),
        "the second apply changed something:\n{out}"
    );
    for h in ["h01", "h02", "h03", "h04"] {
        assert!(out.contains(&format!("{h}  unchanged (enabled)")), "{out}");
    }

    phase("second apply");
    // 3. coturn listens on 443 with TLS (self-signed lab certificate) through its ambient
    //    capability, not a file capability.
    let turn_addr = format!("{net}.15");
    let listen = lab.ssh_ok("h05", "ss -Hltnp 'sport = :443'");
    assert!(
        listen.contains("turnserver") && listen.contains(&format!("{turn_addr}:443")),
        "nothing of coturn's on {turn_addr}:443 (turn_listening_ip):\n{listen}"
    );
    let conf = lab.ssh_ok(
        "h05",
        "grep -E '^(listening|relay)-ip=' /etc/turnserver.conf",
    );
    assert_eq!(
        conf.lines().collect::<Vec<_>>(),
        [
            format!("listening-ip={turn_addr}"),
            format!("relay-ip={turn_addr}")
        ],
    );
    let caps = lab.ssh_ok(
        "h05",
        "getcap /usr/bin/turnserver 2>/dev/null; grep CapAmb /proc/$(pgrep -o turnserver)/status",
    );
    assert!(
        caps.contains("CapAmb:\t0000000000000400"),
        "coturn should hold only CAP_NET_BIND_SERVICE as ambient capability:\n{caps}"
    );
    let tls = lab.ssh_ok(
        "h06",
        &format!("openssl s_client -connect {turn_addr}:443 -brief </dev/null 2>&1 | head -5"),
    );
    assert!(
        tls.contains("Protocol version: TLSv1.") && tls.contains("CN = h05"),
        "no TLS on {turn_addr}:443:\n{tls}"
    );

    // 4. turnutils_uclient from h06 (installed there without starting its coturn). Over TLS
    //    it is given one suite of the configured Mozilla list: with its own default suites
    //    uclient 4.6.1 stalls in SSL_connect against this coturn (openssl s_client, like a
    //    browser, completes the handshake in 0.15 s either way).
    lab.ssh_ok(
        "h06",
        "command -v turnutils_uclient >/dev/null || { systemctl mask coturn.service && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends coturn >/dev/null; }",
    );
    let (user, pass) = turn_credential(secret("POOL_TURN_SECRET"));
    let node = format!("{net}.11");
    let over_tls = uclient(
        &lab,
        "h06",
        10,
        &format!(
            "-t -S -F ECDHE-RSA-AES128-GCM-SHA256 -p 443 -v -n 1 -c -u '{user}' -w '{pass}' -e {node} {turn_addr}"
        ),
    );
    assert!(
        over_tls.contains("tls_connect: client session connected")
            && over_tls.contains("Received relay addr"),
        "no relay allocated over TLS on 443:\n{over_tls}"
    );
    let wrong = uclient(
        &lab,
        "h06",
        6,
        &format!("-v -n 1 -c -u '{user}' -w 'not-the-password' -e {node} {turn_addr}"),
    );
    assert!(
        !wrong.contains("Received relay addr"),
        "a wrong credential got a relay:\n{wrong}"
    );
    // A firewalled user reaches every BBB node of the pool through the relay (the permission
    // for the node's address is granted)...
    for i in 11..=14 {
        let peer = format!("{net}.{i}");
        let o = uclient(
            &lab,
            "h06",
            6,
            &format!("-v -n 1 -c -u '{user}' -w '{pass}' -e {peer} {turn_addr}"),
        );
        assert!(
            o.contains("Received relay addr")
                && o.contains("success: 0x")
                && !o.contains("error 403"),
            "no relay to the pool's node {peer}:\n{o}"
        );
    }
    // ...and nothing else: not the balancer host (a lab address outside the pool), not
    // coturn's own host or loopback, not a private or a public address.
    for peer in [
        format!("{net}.16"),
        turn_addr.clone(),
        "127.0.0.1".to_string(),
        "192.168.1.10".to_string(),
        "1.2.3.4".to_string(),
    ] {
        let o = uclient(
            &lab,
            "h06",
            6,
            &format!("-v -n 1 -c -u '{user}' -w '{pass}' -e {peer} {turn_addr}"),
        );
        assert!(o.contains("Received relay addr"), "allocation failed:\n{o}");
        assert!(
            o.contains("error 403 (Forbidden IP)"),
            "coturn relayed to {peer}, which is not a node of the pool:\n{o}"
        );
    }

    phase("TURN checks");
    // 5. ufw is on, with the rules in order, SSH first, and the kernel enforces them.
    let rules = lab.ssh_ok("h01", "ufw show added 2>/dev/null");
    let rules: Vec<&str> = rules.lines().filter(|l| l.starts_with("ufw ")).collect();
    assert_eq!(
        rules,
        [
            "ufw allow 22/tcp",
            "ufw allow 80/tcp",
            "ufw allow 443/tcp",
            "ufw allow 16384:32768/udp",
            "ufw allow from 192.0.2.50 to any port 5060 proto udp"
        ],
    );
    for h in ["h01", "h05"] {
        let status = lab.ssh_ok(h, "ufw status");
        assert!(status.starts_with("Status: active"), "{h}: {status}");
    }
    lab.ssh_ok(
        "h01",
        "systemd-run --unit rollout-probe python3 -m http.server --bind 0.0.0.0 8999 >/dev/null 2>&1; for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8999/ && break; sleep 0.1; done",
    );
    assert_eq!(
        lab.ssh_ok(
            "h01",
            "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8999/"
        ),
        "200",
        "the probe listens on h01"
    );
    let from_h02 = lab.ssh(
        "h02",
        "curl -s -m 3 -o /dev/null -w '%{http_code}' http://h01:8999/",
    );
    assert_eq!(
        from_h02.status.code(),
        Some(28),
        "ufw on h01 drops a port nobody allowed (curl from h02 times out): {:?}",
        from_h02
    );
    lab.ssh_ok("h01", "systemctl stop rollout-probe");
    let turn_rules = lab.ssh_ok("h05", "ufw show added 2>/dev/null");
    for r in [
        "ufw allow 22/tcp",
        "ufw allow 3478",
        "ufw allow 443",
        "ufw allow 32769:65535/udp",
    ] {
        assert!(
            turn_rules.lines().any(|l| l == r),
            "h05 lacks `{r}`:\n{turn_rules}"
        );
    }

    // 6. Every BBB stand-in answers getMeetings for its inventory secret; a wrong checksum fails.
    for (i, h) in ["h01", "h02", "h03", "h04"].iter().enumerate() {
        let addr = format!("{net}.{}", 11 + i);
        let s = secret(&format!("POOL_BBB_SECRET_{}", h.to_uppercase()));
        let ok = bbb_api(&addr, "getMeetings", "", s);
        assert!(ok.contains("<returncode>SUCCESS</returncode>"), "{h}: {ok}");
        let bad = bbb_api(&addr, "getMeetings", "", "wrong");
        assert!(
            bad.contains("checksumError"),
            "{h} accepted a wrong checksum: {bad}"
        );
        let props = lab.ssh_ok(h, "cat /etc/bigbluebutton/bbb-web.properties");
        for line in [
            "disableRecordingDefault=true",
            "breakoutRoomsRecord=false",
            "allowStartStopRecording=false",
            "autoStartRecording=false",
            "defaultKeepEvents=false",
        ] {
            assert!(
                props.lines().any(|l| l == line),
                "{h}: `{line}` missing from bbb-web.properties:\n{props}"
            );
        }
    }
    let files = lab.ssh_ok(
        "h01",
        "stat -c '%n %U:%G %a' /etc/bigbluebutton/turn-stun-servers.xml /opt/freeswitch/conf/sip_profiles/external/labsip.xml /opt/freeswitch/conf/dialplan/public/labsip.xml",
    );
    assert!(
        files.contains("/etc/bigbluebutton/turn-stun-servers.xml root:bigbluebutton 640"),
        "{files}"
    );
    assert!(
        files.contains("external/labsip.xml freeswitch:daemon 640"),
        "{files}"
    );
    assert!(
        files.contains("public/labsip.xml freeswitch:daemon 640"),
        "{files}"
    );
    let xml = lab.ssh_ok("h01", "cat /etc/bigbluebutton/turn-stun-servers.xml");
    assert!(
        xml.contains(secret("POOL_TURN_SECRET")) && xml.contains("turns:h05:443?transport=tcp"),
        "{xml}"
    );

    phase("ufw and BBB checks");
    // 6b. bbb-webhooks on h01: the operator installs the optional package (the lab's stand-in
    //     for `apt-get install bbb-webhooks`: its postinst copies bbb-conf's secret into the
    //     packaged config, 0644). The next apply closes that file and restarts bbb-webhooks;
    //     hooks/create and hooks/list succeed with the node's secret (sha256 and sha1) and a
    //     wrong one gets checksumError.
    let h01 = secret("POOL_BBB_SECRET_H01");
    let callback = "callbackURL=http%3A%2F%2Fhooks.lab.rollout.test%2Fbbb";
    lab.ssh_ok("h01", "/usr/local/sbin/lab-standin-install-bbb-webhooks");
    let h01_apply = |env: &[(&str, &str)], extra: &[&str]| {
        let mut args = vec!["apply", inv, "--output", "plain", "-l", "h01"];
        args.extend_from_slice(extra);
        let (code, out) = rollout_with(&args, Duration::from_secs(300), env);
        assert_eq!(code, 0, "apply on h01 failed:\n{out}");
        out
    };
    let out = h01_apply(&[], &[]);
    assert!(
        out.contains("changed  bbb: shared secret for bbb-webhooks"),
        "{out}"
    );
    let webhooks_conf = "/usr/local/bigbluebutton/bbb-webhooks/config/default.yml";
    assert_eq!(
        lab.ssh_ok("h01", &format!("stat -c '%U:%G %a' {webhooks_conf}"))
            .trim(),
        "bigbluebutton:bigbluebutton 640"
    );
    let created = hooks(&lab, "h01", "hooks/create", callback, h01, "sha256");
    assert!(
        created.contains("<returncode>SUCCESS</returncode><hookID>"),
        "hooks/create with the node's secret: {created}"
    );
    let listed = hooks(&lab, "h01", "hooks/list", "", h01, "sha1");
    assert!(
        listed.contains("<returncode>SUCCESS</returncode>")
            && listed.contains("hooks.lab.rollout.test"),
        "hooks/list with the node's secret: {listed}"
    );
    let bad = hooks(&lab, "h01", "hooks/list", "", "not-the-secret", "sha256");
    assert!(bad.contains("checksumError"), "a wrong secret: {bad}");
    // The health check compares bbb-webhooks' copy with securitySalt, on the node.
    lab.ssh_ok(
        "h01",
        &format!("sed -i 's/^  sharedSecret: .*/  sharedSecret: \"tampered-by-the-test\"/' {webhooks_conf}"),
    );
    let health = lab.ssh("h01", "/usr/local/sbin/rollout-bbb-health 0");
    let said = String::from_utf8_lossy(&health.stderr);
    assert!(
        !health.status.success()
            && said.contains(&format!("bbb.sharedSecret differs in {webhooks_conf}"))
            && said.contains("the shared secret of bbb-webhooks"),
        "the health check let a different bbb-webhooks secret pass: {health:?}"
    );
    assert!(!said.contains("tampered-by-the-test") && !said.contains(h01));
    // A secret rotation: the apply puts the new secret everywhere (the tampered copy too) and
    // restarts bbb-webhooks; the new secret works there, the old one is refused. It needs
    // `--force` (no class runs on h01): the meeting guard asks the node's API with the new
    // secret, which the node refuses until its restart, so it would count h01 as busy and
    // hold the restart (docs/roles.md, `bbb_secret`).
    let rotated = "lab-h01-rotated-secret-b41c9e27d0";
    h01_apply(&[("POOL_BBB_SECRET_H01", rotated)], &["--force"]);
    let created = hooks(&lab, "h01", "hooks/create", callback, rotated, "sha256");
    assert!(
        created.contains("<returncode>SUCCESS</returncode><hookID>"),
        "hooks/create with the rotated secret: {created}"
    );
    let old = hooks(&lab, "h01", "hooks/list", "", h01, "sha256");
    assert!(
        old.contains("checksumError"),
        "the old secret still works: {old}"
    );
    lab.ssh_ok("h01", "/usr/local/sbin/rollout-bbb-health 0");
    // Back to the inventory's secret for what follows.
    h01_apply(&[], &["--force"]);
    phase("bbb-webhooks");
    // 6c. A class never ends under `apply` (docs/pool.md, "apply never ends a class"). A class
    //     runs on h02 (created and joined through its API, as Greenlight would). A dial-in
    //     number for the whole pool changes bbb-web's and FreeSWITCH's configuration, which
    //     `rollout-bbb-restart` applies by restarting them: on the lab stand-in, as with
    //     `bbb-conf --restart` on a real node, that ends every meeting of the node.
    //     (a) default: written everywhere, restarted on h01, h03, h04 only; h02 held (exit 3),
    //         its class runs on, `status` shows the restart pending;
    //     (b) `--drain`: h02 cordoned, the others untouched; its moderator ends the class; the
    //         restart runs, h02 healthy and enabled again;
    //     (c) `--force`, with a new class on h02: the only way rollout ends a meeting.
    //     Throughout: bbb-web's own journal on h02 lists no end but the moderator's and the
    //     forced one (and rollout's health-check meetings, which it makes and ends itself).
    let h02_addr = format!("{net}.12");
    let h02_secret = secret("POOL_BBB_SECRET_H02");
    let api = |call: &str, query: &str| bbb_api(&h02_addr, call, query, h02_secret);
    let class = |id: &str| {
        let created = api(
            "create",
            &format!("meetingID={id}&name={id}&moderatorPW=mp&attendeePW=ap"),
        );
        assert!(created.contains("SUCCESS"), "create {id} on h02: {created}");
        let joined = api(
            "join",
            &format!("meetingID={id}&fullName=pupil&role=VIEWER&redirect=false"),
        );
        assert!(joined.contains("SUCCESS"), "join {id} on h02: {joined}");
    };
    let running = |id: &str| {
        api("isMeetingRunning", &format!("meetingID={id}")).contains("<running>true</running>")
    };
    let started = |h: &str| lab.ssh_ok(h, "systemctl show -p InvocationID --value bbb-web");
    let ends_on_h02 = || {
        lab.ssh_ok("h02", "journalctl -q -o cat -u bbb-web --no-pager")
            .lines()
            .filter(|l| l.contains(": end ") && !l.contains(": end rollout-health-"))
            .count()
    };
    let node_row = |h: &str| {
        let (code, out) = rollout(
            &["status", inv, "--output", "json"],
            Duration::from_secs(120),
        );
        assert_eq!(code, 0, "{out}");
        let v: serde_json::Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("status --output json: {e}: {out}"));
        v["nodes"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["host"] == h).cloned())
            .unwrap_or_else(|| panic!("status lists no {h}: {v}"))
    };
    let dialin = "bbb_dialin_number='+49 30 999999'";
    let ends_before = ends_on_h02();
    class("lab-maths");
    let before: Vec<String> = ["h01", "h02"].iter().map(|h| started(h)).collect();
    // (a) held.
    let (code, out) = rollout(
        &["apply", inv, "--output", "plain", "-e", dialin],
        Duration::from_secs(600),
    );
    eprintln!("$ rollout apply lab/pool.yml -e \"{dialin}\" (a class on h02)\n{out}");
    assert_eq!(code, 3, "held nodes exit 3:\n{out}");
    assert!(
        out.contains(
            "h02: held: 1 meeting running; restart pending: bbb: restart changed services"
        ),
        "{out}"
    );
    assert!(
        out.contains("1 held (meetings running; restart pending)"),
        "{out}"
    );
    assert_ne!(
        started("h01"),
        before[0],
        "h01 (no class) was not restarted"
    );
    assert_eq!(started("h02"), before[1], "h02 restarted under its class");
    assert!(running("lab-maths"), "the class on h02 ended");
    assert!(
        lab.ssh_ok("h02", "cat /etc/bigbluebutton/bbb-web.properties")
            .lines()
            .any(|l| l == "defaultDialAccessNumber=+49 30 999999"),
        "h02: the new configuration is written, only its restart held back"
    );
    let row = node_row("h02");
    let note = row["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("restart pending since") && note.contains("bbb: restart changed services"),
        "{row}"
    );
    assert_eq!(row["state"], "enabled", "{row}");
    phase("apply held h02 under its class");
    // (b) --drain: h02 cordoned, the class waited for; its moderator ends it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollout"));
    child
        .args(["apply", inv, "--output", "plain", "--drain", "-e", dialin])
        .envs(SECRETS.iter().copied())
        .stdin(Stdio::null());
    let drain = std::thread::spawn(move || common::run_with_limit(child, Duration::from_secs(600)));
    let deadline = Instant::now() + Duration::from_secs(300);
    while node_row("h02")["state"] != "cordoned" {
        assert!(
            Instant::now() < deadline,
            "h02 never cordoned by apply --drain"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(started("h02"), before[1], "h02 restarted under its class");
    assert!(
        running("lab-maths"),
        "the class on h02 ended while draining"
    );
    let ended = api("end", "meetingID=lab-maths&password=mp");
    assert!(ended.contains("SUCCESS"), "{ended}");
    let (code, stdout, stderr) = drain.join().unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    for (_, s) in SECRETS {
        assert!(!out.contains(s), "rollout printed a secret:\n{out}");
    }
    eprintln!(
        "$ rollout apply lab/pool.yml --drain -e \"{dialin}\" (the moderator ends the class on h02 meanwhile)\n{out}"
    );
    assert_eq!(code, 0, "apply --drain:\n{out}");
    assert!(
        out.contains("h02: drained, applied and healthy; enabled again"),
        "{out}"
    );
    assert_ne!(
        started("h02"),
        before[1],
        "h02 not restarted after its class"
    );
    let row = node_row("h02");
    assert_eq!(row["state"], "enabled", "{row}");
    assert!(row["note"].is_null(), "{row}");
    assert_eq!(
        ends_on_h02(),
        ends_before + 1,
        "only the moderator ended a meeting"
    );
    phase("apply --drain waited for the class on h02");
    // (c) --force: back to the inventory's numbers with a new class on h02.
    class("lab-history");
    let (code, out) = rollout(
        &["apply", inv, "--output", "plain"],
        Duration::from_secs(600),
    );
    assert_eq!(code, 3, "{out}");
    assert!(running("lab-history"), "the class on h02 ended");
    let (code, out) = rollout(
        &["apply", inv, "--output", "plain", "--force"],
        Duration::from_secs(600),
    );
    eprintln!("$ rollout apply lab/pool.yml --force (a class on h02)\n{out}");
    assert_eq!(code, 0, "apply --force:\n{out}");
    assert!(
        out.contains("h02: --force: ending 1 meeting(s), 1 participant(s)"),
        "{out}"
    );
    assert!(!running("lab-history"), "--force left the class running");
    assert_eq!(
        ends_on_h02(),
        ends_before + 2,
        "the moderator's end and --force's"
    );
    let (code, out) = rollout(
        &["apply", inv, "--output", "plain"],
        Duration::from_secs(300),
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(common::summary_counts(&out).1, 0, "{out}");
    phase("apply --force ended the class on h02");
    // 7. The pool's pin moves on (3.0.14, the default, to 3.0.15) while h01's BigBlueButton
    //    repository already offers a newer build (3.0.16: as for a node installed from the
    //    release line jammy-300). `rollout plan` fails every node off the pin. The upgrade's
    //    base role dist-upgrades with BBB's packages held, so they stay 3.0.14 although 3.0.16
    //    is offered; then the pinned bbb-install.sh alone brings h01 to exactly 3.0.15 (apt
    //    never downgrades: had the base role taken 3.0.16, h01 would stay there and fail).
    let release = |lab: &common::Lab| {
        lab.ssh_ok(
            "h01",
            "sed -n 's/^BIGBLUEBUTTON_RELEASE=//p' /etc/bigbluebutton/bigbluebutton-release",
        )
    };
    let build = |lab: &common::Lab| {
        lab.ssh_ok(
            "h01",
            "sed -n 's/^BBB_LAB_BUILD=//p' /etc/bigbluebutton/bigbluebutton-release",
        )
    };
    assert_eq!(release(&lab).trim(), "3.0.14", "not the default pin");
    lab.ssh_ok(
        "h01",
        "echo 'deb [trusted=yes] file:/var/lib/bbb-lab-repo/jammy-300 bigbluebutton-jammy main' \
         > /etc/apt/sources.list.d/bigbluebutton.list",
    );
    let (code, out) = rollout(
        &["plan", inv, "--output", "plain", "-e", "bbb_version=3.0.15"],
        Duration::from_secs(300),
    );
    // A failed preflight: exit 2, nothing would change anywhere.
    assert_eq!(code, 2, "a plan with nodes off the pin must fail:\n{out}");
    assert!(
        out.contains("error: preflight failed on 4 hosts: `rollout apply` would change no host"),
        "{out}"
    );
    for h in ["h01", "h02", "h03", "h04"] {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{h}: FAILED"))
                && l.contains("not the pool's build 3.0.15")
                && l.contains("this node runs 3.0.14")),
            "plan does not report {h} off the pin:\n{out}"
        );
    }
    let before = build(&lab);
    let upgrade = || {
        let (code, out) = rollout(
            &[
                "apply",
                inv,
                "--output",
                "plain",
                "-l",
                "h01",
                "-e",
                "rollout_upgrade=true",
                "-e",
                "bbb_version=3.0.15",
            ],
            Duration::from_secs(900),
        );
        assert_eq!(code, 0, "upgrade apply failed:\n{out}");
        out
    };
    let out = upgrade();
    assert!(out.contains("changed  base: package upgrades"), "{out}");
    assert!(out.contains("changed  bbb: upgrade BigBlueButton"), "{out}");
    assert_ne!(build(&lab), before, "bbb-install.sh did not run again");
    assert_eq!(
        release(&lab).trim(),
        "3.0.15",
        "h01 is not on the pin after the upgrade"
    );
    let log = lab.ssh_ok("h01", "cat /var/log/rollout-bbb-install.log");
    assert!(
        log.contains("running bbb-install.sh jammy-300-3.0.15 for h01"),
        "{log}"
    );
    let held = lab.ssh_ok("h01", "apt-mark showhold");
    for p in ["bbb-config", "bbb-web", "bigbluebutton"] {
        assert!(
            held.lines().any(|l| l == p),
            "{p} not held after the upgrade:\n{held}"
        );
    }
    // At the pin, an upgrade leaves BigBlueButton alone, and an apply changes nothing.
    let at_pin = build(&lab);
    let out = upgrade();
    assert!(!out.contains("bbb: upgrade BigBlueButton"), "{out}");
    assert_eq!(build(&lab), at_pin, "bbb-install.sh ran at the pin");
    assert_eq!(release(&lab).trim(), "3.0.15");
    let (code, out) = rollout(
        &[
            "apply",
            inv,
            "--output",
            "plain",
            "-l",
            "h01",
            "-e",
            "bbb_version=3.0.15",
        ],
        Duration::from_secs(300),
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        common::summary_counts(&out),
        (1, 0, 0),
        "an apply after the upgrade changed something:\n{out}"
    );
    phase("upgrade and re-apply");
}
