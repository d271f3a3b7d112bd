//! A wrong balancer secret, a balancer that is down, and answers that are not what the API
//! returns: every pool command stops with a clear error, exit code 1, no secret in the output
//! and nothing changed, neither in the balancer nor on a node. Bad `balancer:` input is exit
//! code 2 with the file, line and a hint.

#[path = "pool_support/mod.rs"]
mod support;

use std::time::Duration;
use support::{Kind, Output, Pool, finish, garbage_server};

const T: Duration = Duration::from_secs(60);

fn registered(name: &str, kind: Kind) -> Pool {
    let pool = Pool::new(name, kind, 2, &[]);
    let out = pool.run("apply", &["--output", "plain"], T);
    assert_eq!(out.code, 0, "{}", out.all());
    pool.balancer.wait_polled();
    pool
}

/// Runs every pool command; each must fail with `expected` in stderr and change nothing.
fn every_command_fails(pool: &Pool, expected: &str, env: &[(&str, &str)]) {
    let inv = pool.inventory();
    let inv = inv.to_str().unwrap();
    let changes = pool.balancer.changes();
    let commands: [&[&str]; 5] = [
        &["status", inv],
        &["drain", inv, "--limit", "h01", "--output", "plain"],
        &["undrain", inv, "--limit", "h01", "--output", "plain"],
        &["upgrade", inv, "--output", "plain"],
        &["apply", inv, "--output", "plain"],
    ];
    for args in commands {
        let mut cmd = pool.rollout(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out: Output = finish(cmd.spawn().unwrap(), T);
        out.assert_no_secrets();
        assert!(
            !out.all().contains("wrong-balancer-secret"),
            "{}",
            out.all()
        );
        assert_eq!(out.code, 1, "{args:?}: {}", out.all());
        assert!(
            out.all().contains(expected),
            "{args:?}: expected `{expected}` in\n{}",
            out.all()
        );
        if args[0] != "apply" {
            assert!(
                out.all().contains("nothing was changed") || args[0] == "status",
                "{args:?}: {}",
                out.all()
            );
        } else {
            assert!(
                out.all()
                    .contains("no node was registered or changed in the balancer"),
                "{}",
                out.all()
            );
        }
    }
    for (h, bbb) in &pool.nodes {
        assert_eq!(bbb.upgrades(), 0, "{h} was upgraded");
    }
    if pool.url.is_none() && pool.balancer.proc.port != 0 {
        assert_eq!(pool.balancer.changes(), changes, "the balancer changed");
    }
}

#[test]
fn scalelite_wrong_secret() {
    let pool = registered("err-secret", Kind::Scalelite);
    every_command_fails(
        &pool,
        "getServers was refused: checksumError (You did not pass the checksum security check); is `balancer.secret` Scalelite's LOADBALANCER_SECRET?",
        &[("ROLLOUT_TEST_LB_SECRET", "wrong-balancer-secret")],
    );
}

#[test]
fn b3scale_wrong_secret() {
    let pool = registered("err-secret", Kind::B3scale);
    every_command_fails(
        &pool,
        "GET /api/v1/backends was refused: invalid or expired jwt; is `balancer.secret` b3scale's B3SCALE_API_JWT_SECRET?",
        &[("ROLLOUT_TEST_LB_SECRET", "wrong-balancer-secret")],
    );
}

fn balancer_down(kind: Kind) {
    let mut pool = registered("err-down", kind);
    // A port where nothing listens: bind, remember, close.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    pool.url = Some(match kind {
        Kind::Scalelite => format!("http://127.0.0.1:{closed}/scalelite/api"),
        Kind::B3scale => format!("http://127.0.0.1:{closed}"),
    });
    pool.write();
    every_command_fails(&pool, &format!("at http://127.0.0.1:{closed}"), &[]);
    every_command_fails(&pool, "unreachable: connection refused", &[]);
}

#[test]
fn scalelite_down() {
    balancer_down(Kind::Scalelite);
}

#[test]
fn b3scale_down() {
    balancer_down(Kind::B3scale);
}

fn malformed(kind: Kind) {
    let mut pool = registered("err-garbage", kind);
    let html = garbage_server(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 17\r\nConnection: close\r\n\r\n<html>oops</html>",
    );
    let json = garbage_server(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"servers\":1}",
    );
    let url = |port: u16| match kind {
        Kind::Scalelite => format!("http://127.0.0.1:{port}/scalelite/api"),
        Kind::B3scale => format!("http://127.0.0.1:{port}"),
    };
    pool.url = Some(url(html));
    pool.write();
    let expected = match kind {
        Kind::Scalelite => "getServers: HTTP 200 with `<html>oops</html>` instead of JSON",
        Kind::B3scale => "GET /api/v1/backends: HTTP 200 with `<html>oops</html>` instead of JSON",
    };
    every_command_fails(&pool, expected, &[]);
    pool.url = Some(url(json));
    pool.write();
    let expected = match kind {
        Kind::Scalelite => "getServers answered JSON that is not a list of servers",
        Kind::B3scale => "GET /api/v1/backends answered JSON that is not a list",
    };
    every_command_fails(&pool, expected, &[]);
}

#[test]
fn scalelite_malformed_answers() {
    malformed(Kind::Scalelite);
}

#[test]
fn b3scale_malformed_answers() {
    malformed(Kind::B3scale);
}

/// Writes `inventory` (rollout file text after `roles_path`/`templates_path` of the pool
/// test roles) and runs each of `subs` on it with `args`; each must stop before contacting
/// anything with exit code 2. Returns (the inventory's path, each run's stderr).
fn refused(inventory: &str, subs: &[&str], args: &[&str]) -> (String, Vec<String>) {
    let dir = support::tempdir("err-input");
    let fixtures = support::repo().join("tests/fixtures/pool");
    let inv = dir.join("inventory.yml");
    std::fs::write(
        &inv,
        format!(
            "roles_path: {}\ntemplates_path: {}\n{inventory}",
            fixtures.join("roles").display(),
            fixtures.join("templates").display()
        ),
    )
    .unwrap();
    let inv = inv.to_str().unwrap().to_string();
    let mut errs = Vec::new();
    for sub in subs {
        let out = finish(
            std::process::Command::new(env!("CARGO_BIN_EXE_rollout"))
                .arg(sub)
                .arg(&inv)
                .args(args)
                .env("ROLLOUT_TEST_LB_SECRET", support::LB_SECRET)
                .env("ROLLOUT_STATE_DIR", dir.join("state"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
            T,
        );
        assert_eq!(out.code, 2, "{sub}: {}", out.all());
        errs.push(out.stderr);
    }
    (inv, errs)
}

/// One node h01 with `balancer` as the balancer section: apply, status and drain each print
/// exactly `expected` (INV: the inventory's path).
fn check_input(balancer: &str, expected: &str) {
    let (inv, errs) = refused(
        &format!(
            "all:\n  children:\n    bbb:\n      roles: [bbb]\n      hosts:\n        h01:\n          connection: local\n          vars: {{bbb_port: 1, node_dir: /nonexistent, bbb_secret: x}}\nbalancer:\n{balancer}"
        ),
        &["apply", "status", "drain"],
        &["--limit", "h01"],
    );
    for e in errs {
        assert_eq!(e, expected.replace("INV", &inv));
    }
}

#[test]
fn unknown_balancer_key_is_located_with_a_hint() {
    check_input(
        "  kind: scalelite\n  urll: http://127.0.0.1:1/scalelite/api\n  secret: {secret: \"env:ROLLOUT_TEST_LB_SECRET\"}\n",
        "error: INV:13:3: balancer: unknown key `urll`\n   |\n12 |   kind: scalelite\n13 |   urll: http://127.0.0.1:1/scalelite/api\n   |   ^\n  = hint: did you mean `url`?\n",
    );
}

#[test]
fn inline_balancer_secret_is_refused() {
    check_input(
        "  kind: b3scale\n  url: http://127.0.0.1:1\n  secret: plain-text\n",
        "error: INV:14:3: balancer: `secret` must be a secret reference, not the secret itself\n   |\n13 |   url: http://127.0.0.1:1\n14 |   secret: plain-text\n   |   ^\n  = hint: secret: {secret: \"env:LOADBALANCER_SECRET\"} or {secret: \"file:secrets/balancer\"}\n",
    );
}

#[test]
fn scalelite_url_must_be_the_api_base() {
    check_input(
        "  kind: scalelite\n  url: https://lb.example.org/\n  secret: {secret: \"env:ROLLOUT_TEST_LB_SECRET\"}\n",
        "error: INV:13:3: balancer: `url` of Scalelite must be its server API base, ending in /scalelite/api (got `https://lb.example.org`)\n   |\n12 |   kind: scalelite\n13 |   url: https://lb.example.org/\n   |   ^\n  = hint: url: https://lb.example.org/scalelite/api\n",
    );
}

#[test]
fn unknown_key_in_a_flow_mapping_is_located_at_the_key() {
    // Found by searching the text for `key:` at a line start, a key in a flow mapping was
    // located at the start of the mapping; the parser knows where it is.
    check_input(
        "  {kind: scalelite, urll: http://127.0.0.1:1/scalelite/api}\n",
        "error: INV:12:21: balancer: unknown key `urll`\n   |\n11 | balancer:\n12 |   {kind: scalelite, urll: http://127.0.0.1:1/scalelite/api}\n   |                     ^\n  = hint: did you mean `url`?\n",
    );
}

/// b3scale checks a token's `exp` with no leeway and ignores `iat` (golang-jwt v5 through
/// echo-jwt): rollout's tokens live 300 s from the controller's clock. A b3scale whose clock
/// is behind, or ahead by less than that, accepts them; one ahead by more refuses every
/// token, and every command says that the clocks differ, by how much, instead of suspecting
/// the secret. The emulator's clock is set by its configuration (`--clock-offset`), as a
/// host's clock is.
#[test]
fn b3scale_with_a_skewed_clock() {
    for offset in ["-3600", "200"] {
        let balancer =
            support::Balancer::start_with(Kind::B3scale, &["--clock-offset", offset], None);
        let pool = Pool::with_balancer("err-clock-ok", balancer, 2, &[]);
        let out = pool.run("apply", &["--output", "plain"], T);
        assert_eq!(out.code, 0, "clock off by {offset} s: {}", out.all());
    }
    let balancer = support::Balancer::start_with(Kind::B3scale, &["--clock-offset", "600"], None);
    let pool = Pool::with_balancer("err-clock-ahead", balancer, 2, &[]);
    every_command_fails(
        &pool,
        "GET /api/v1/backends was refused: invalid or expired jwt: b3scale's clock is ",
        &[],
    );
    let out = pool.run("status", &[], T);
    let text = out.all();
    let ahead: i64 = text
        .split("b3scale's clock is ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!((598..=602).contains(&ahead), "{text}");
    assert!(
        text.contains(" s ahead of this machine's (its answer is dated ")
            && text.contains("rollout's token is valid for 300 s from this machine's time and b3scale allows no clock skew: set both clocks right (NTP)"),
        "{text}"
    );
    assert!(!text.contains("balancer.secret"), "{text}");
}

/// Runs `apply`, `status` and `upgrade` on `inventory` (see [`refused`]); each stderr must
/// hold every line of `expected` (INV: the inventory's path).
fn check_pool(inventory: &str, expected: &[&str]) {
    let (inv, errs) = refused(inventory, &["apply", "status", "upgrade"], &[]);
    for e in errs {
        for want in expected {
            let want = want.replace("INV", &inv);
            assert!(e.contains(&want), "`{want}` in\n{e}");
        }
    }
}

/// A node whose b3scale agent would report to another b3scale than the pool's balancer.
#[test]
fn a_b3scale_agent_pointed_at_another_balancer_is_refused() {
    check_pool(
        "all:\n  children:\n    bbb:\n      roles: [bbb]\n      hosts:\n        h01:\n          connection: local\n          vars: {bbb_port: 1, node_dir: /nonexistent, bbb_secret: a1, b3scale_api_url: \"http://127.0.0.1:9/\"}\nbalancer:\n  kind: b3scale\n  url: http://127.0.0.1:1\n  secret: {secret: \"env:ROLLOUT_TEST_LB_SECRET\"}\n",
        &[
            "error: INV:10:88:",
            "host h01: b3scale_api_url `http://127.0.0.1:9/` is not the balancer's url `http://127.0.0.1:1`",
        ],
    );
}

/// The balancer's group exists but has no hosts: no node could take a meeting.
#[test]
fn a_balancer_group_without_hosts_is_refused() {
    check_pool(
        "all:\n  children:\n    bbb:\n      hosts: {}\n    other:\n      roles: [bbb]\n      hosts:\n        h01:\n          connection: local\n          vars: {bbb_port: 1, node_dir: /nonexistent, bbb_secret: a1}\nbalancer:\n  kind: scalelite\n  url: http://127.0.0.1:1/scalelite/api\n  secret: {secret: \"env:ROLLOUT_TEST_LB_SECRET\"}\n  group: bbb\n",
        &[
            "error: INV:17:3: balancer: group `bbb` has no hosts",
            "hint: add the BBB nodes to group `bbb`",
        ],
    );
}
