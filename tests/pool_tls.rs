//! The balancer's API over HTTPS as pool commands use it: a certificate the inventory does
//! not trust (`balancer: ca_file` of another CA, or none) stops the command with an error
//! naming the balancer, the trust and what to set, and nothing changes; the http-to-https
//! redirect of the nginx in front of Scalelite or b3scale is followed for reads and writes
//! alike; a redirect to another host is refused and nothing is sent there; a `ca_file` that
//! cannot be used is bad input (exit 2) at its line, before anything is contacted.

#[path = "pool_support/mod.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;
use support::{Kind, Pool, TestCa, counting_listener, redirector};

const T: Duration = Duration::from_secs(60);

/// `apply` refuses the balancer's certificate with `why` in its error; nothing registered.
fn certificate_refused(kind: Kind, name: &str, lb_ca: Option<String>, why: &str) {
    let mut pool = Pool::new_tls(name, kind, 1, &[]);
    pool.lb_ca_file = lb_ca;
    pool.write();
    // b3scale: the nodes' agents have registered their backends already.
    let before = pool.balancer.changes();
    let out = pool.run("apply", &["--output", "plain", "-v"], T);
    out.assert_no_secrets();
    let text = out.all();
    assert_eq!(out.code, 1, "{text}");
    let (product, call) = match kind {
        Kind::Scalelite => ("Scalelite", "getServers"),
        Kind::B3scale => ("b3scale", "GET /api/v1/backends"),
    };
    let want = format!(
        "{product} at {}: {call}: TLS: 127.0.0.1's certificate is not issued by a CA rollout trusts ({why})",
        pool.balancer.url()
    );
    assert!(text.contains(&want), "expected `{want}` in\n{text}");
    assert!(!text.contains("checksum="), "{text}");
    // A certificate problem is not retried (it is no passing fault).
    assert!(!text.contains("retrying"), "{text}");
    assert!(
        text.contains("no node was registered or changed in the balancer"),
        "{text}"
    );
    assert_eq!(pool.balancer.changes(), before, "the balancer changed");
}

#[test]
fn scalelite_certificate_of_another_ca_is_refused() {
    let other = TestCa::new("another CA");
    let file = other.ca_file().display().to_string();
    certificate_refused(
        Kind::Scalelite,
        "tls-lb-other-ca",
        Some(file.clone()),
        &format!("the CA file {file} of `balancer: ca_file`"),
    );
}

#[test]
fn b3scale_internal_ca_without_ca_file_is_refused() {
    certificate_refused(
        Kind::B3scale,
        "tls-lb-no-ca",
        None,
        "the built-in web roots; set `balancer: ca_file` to trust an internal CA",
    );
}

/// The inventory names `http://`; nginx redirects to the balancer's HTTPS; `apply` registers
/// (b3scale: POST and PATCH with a body; Scalelite: POST) through the redirect.
fn registers_behind_the_redirect(kind: Kind, name: &str) {
    let mut pool = Pool::new_tls(name, kind, 2, &[]);
    let nginx = redirector(&pool.balancer.base(), None);
    pool.url = Some(match kind {
        Kind::Scalelite => format!("http://127.0.0.1:{}/scalelite/api", nginx.port),
        Kind::B3scale => format!("http://127.0.0.1:{}", nginx.port),
    });
    pool.write();
    let out = pool.run("apply", &["--output", "plain"], T);
    out.assert_no_secrets();
    assert_eq!(out.code, 0, "{}", out.all());
    // Scalelite: rollout adds the node; b3scale: the node's agent did, rollout enables it.
    let enabled = match kind {
        Kind::Scalelite => "h01  registered and enabled",
        Kind::B3scale => "h01  enabled (was disabled)",
    };
    assert!(out.all().contains(enabled), "{}", out.all());
    pool.balancer
        .assert_state(pool.node("h01"), Some("enabled"));
    pool.balancer
        .assert_state(pool.node("h02"), Some("enabled"));
}

#[test]
fn scalelite_http_to_https_redirect_is_followed() {
    registers_behind_the_redirect(Kind::Scalelite, "tls-lb-redirect");
}

#[test]
fn b3scale_http_to_https_redirect_is_followed() {
    registers_behind_the_redirect(Kind::B3scale, "tls-lb-redirect");
}

#[test]
fn scalelite_redirect_to_another_host_is_refused() {
    let mut pool = Pool::new_tls("tls-lb-cross", Kind::Scalelite, 1, &[]);
    let (port, hits) = counting_listener("127.0.0.1:0");
    let nginx = redirector(&format!("https://localhost:{port}"), None);
    let url = format!("http://127.0.0.1:{}/scalelite/api", nginx.port);
    pool.url = Some(url.clone());
    pool.write();
    let out = pool.run("status", &[], T);
    out.assert_no_secrets();
    let text = out.all();
    assert_eq!(out.code, 1, "{text}");
    let want = format!(
        "Scalelite at {url}: getServers: {url}/getServers redirects to https://localhost:{port}/scalelite/api/getServers: another host; rollout follows a redirect only to the same host"
    );
    assert!(text.contains(&want), "expected `{want}` in\n{text}");
    assert!(!text.contains("checksum="), "{text}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a request reached localhost"
    );
}

/// The inventory's text and the 1-based line of its first line containing `needle`.
fn line_of(pool: &Pool, needle: &str) -> usize {
    let text = std::fs::read_to_string(pool.inventory()).unwrap();
    1 + text.lines().position(|l| l.contains(needle)).unwrap()
}

#[test]
fn a_missing_balancer_ca_file_is_located_and_nothing_runs() {
    let mut pool = Pool::new("tls-missing-ca", Kind::Scalelite, 1, &[]);
    pool.lb_ca_file = Some("certs/lb-ca.pem".into());
    pool.write();
    let out = pool.run("apply", &["--output", "plain"], T);
    assert_eq!(out.code, 2, "{}", out.all());
    let want = format!(
        "error: {}:{}:3: balancer: cannot read the CA file {}: ",
        pool.inventory().display(),
        line_of(&pool, "ca_file:"),
        pool.dir.join("certs/lb-ca.pem").display()
    );
    assert!(
        out.stderr.starts_with(&want),
        "expected `{want}` in\n{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: ca_file is a PEM file of the CA certificate(s)"),
        "{}",
        out.stderr
    );
    assert!(
        !pool.node("h01").dir.join("installed").exists(),
        "h01 was touched"
    );
    assert_eq!(pool.balancer.changes(), 0);
}

#[test]
fn a_node_ca_file_that_is_not_pem_is_located_and_nothing_runs() {
    let mut pool = Pool::new("tls-bad-node-ca", Kind::B3scale, 1, &[]);
    let file = pool.dir.join("bbb-ca.der");
    std::fs::write(&file, [0x30u8, 0x82, 0x01, 0x0a, 0x02]).unwrap();
    pool.bbb_ca_file = Some(file.display().to_string());
    pool.write();
    let before = pool.balancer.changes();
    let out = pool.run("apply", &["--output", "plain"], T);
    assert_eq!(out.code, 2, "{}", out.all());
    let want = format!(
        "error: {}:{}:",
        pool.inventory().display(),
        line_of(&pool, "bbb_api_ca_file:")
    );
    assert!(
        out.stderr.starts_with(&want),
        "expected `{want}` in\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "host h01: `bbb_api_ca_file`: the CA file {} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            file.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        !pool.node("h01").dir.join("installed").exists(),
        "h01 was touched"
    );
    assert_eq!(pool.balancer.changes(), before);
}
