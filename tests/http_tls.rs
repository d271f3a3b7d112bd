//! HTTPS and redirects of every HTTP call rollout makes (the balancers' APIs and the nodes'
//! BBB API go through one client, `rollout::http::Http`): a certificate from an internal CA is
//! trusted through a `ca_file`, and only then; an expired certificate or one for another name
//! is refused; nginx's http-to-https redirect is followed; a redirect to another host or down
//! to plain HTTP is refused before anything is sent there. Against the lab's BBB API emulator
//! serving HTTPS with certificates of a CA made here (rcgen), and a stand-in of nginx's
//! redirect (`lab/emulators/redirector.py`). No error shows a checksum or a secret.

#[path = "pool_support/mod.rs"]
mod support;

use rollout::bbb_api::{BbbError, Endpoint};
use rollout::http::{CaFile, Http};
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::{BBB_SECRET, Bbb, TestCa, counting_listener, redirector, tempdir, test_ca};

fn http() -> Http {
    Http::new(Duration::from_secs(5))
}

fn ca_file(ca: &TestCa) -> Option<CaFile> {
    Some(CaFile::read(&ca.ca_file()).unwrap())
}

/// A BBB node serving HTTPS with `cert`.
fn node(name: &str, cert: &support::ServerCert) -> Bbb {
    Bbb::start_with(&tempdir(name), BBB_SECRET, "127.0.0.1", Some(cert))
}

/// The error of a health check (its first call is the version call, the API's base URL),
/// which must show neither the secret nor a checksum nor any query.
#[track_caller]
fn refused(ep: &Endpoint) -> String {
    let e = ep.health(&http()).unwrap_err().to_string();
    assert!(!e.contains(BBB_SECRET), "{e}");
    assert!(!e.contains("checksum=") && !e.contains('?'), "{e}");
    e
}

#[test]
fn https_with_the_internal_ca_in_ca_file_works() {
    let bbb = node("tls-ok", &test_ca().loopback());
    let ep = Endpoint::new(&bbb.api(), BBB_SECRET).with_ca(ca_file(test_ca()));
    assert!(bbb.api().starts_with("https://"));
    let h = ep.health(&http()).expect("HTTPS with the CA in ca_file");
    assert_eq!(h.version.as_deref(), Some("3.0.99-emulated"));
}

#[test]
fn a_certificate_of_another_ca_is_refused() {
    let bbb = node("tls-wrong-ca", &test_ca().loopback());
    // Without a ca_file: the built-in web roots do not know the internal CA.
    let e = refused(&Endpoint::new(&bbb.api(), BBB_SECRET));
    assert!(
        e.contains("TLS: 127.0.0.1's certificate is not issued by a CA rollout trusts (the built-in web roots; set `bbb_api_ca_file` to trust an internal CA)"),
        "{e}"
    );
    // With the ca_file of another CA: refused too, naming that file.
    let other = TestCa::new("another CA");
    let e = refused(&Endpoint::new(&bbb.api(), BBB_SECRET).with_ca(ca_file(&other)));
    assert!(
        e.contains(&format!(
            "is not issued by a CA rollout trusts (the CA file {} of `bbb_api_ca_file`)",
            other.ca_file().display()
        )),
        "{e}"
    );
    assert!(matches!(
        Endpoint::new(&bbb.api(), BBB_SECRET)
            .with_ca(ca_file(&other))
            .health(&http()),
        Err(BbbError::Unreachable { .. })
    ));
}

#[test]
fn an_expired_certificate_is_refused() {
    let cert = test_ca().server("expired", &["127.0.0.1"], true);
    let bbb = node("tls-expired", &cert);
    let e = refused(&Endpoint::new(&bbb.api(), BBB_SECRET).with_ca(ca_file(test_ca())));
    assert!(
        e.contains("TLS: 127.0.0.1's certificate has expired"),
        "{e}"
    );
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let cert = test_ca().server("other-name", &["bbb.example.invalid"], false);
    let bbb = node("tls-name", &cert);
    let e = refused(&Endpoint::new(&bbb.api(), BBB_SECRET).with_ca(ca_file(test_ca())));
    assert!(
        e.contains("TLS: 127.0.0.1's certificate is not valid for the name 127.0.0.1"),
        "{e}"
    );
}

#[test]
fn nginx_redirect_from_http_to_https_is_followed() {
    let bbb = node("tls-redirect", &test_ca().loopback());
    let port = bbb.proc.port;
    let nginx = redirector(&format!("https://127.0.0.1:{port}"), None);
    let plain = format!("http://127.0.0.1:{}/bigbluebutton/api", nginx.port);
    let ep = Endpoint::new(&plain, BBB_SECRET).with_ca(ca_file(test_ca()));
    // getMeetings carries its checksum through the redirect: the node accepts it.
    let h = ep
        .health(&http())
        .expect("the redirect to https is followed");
    assert_eq!(h.version.as_deref(), Some("3.0.99-emulated"));
    assert!(h.meetings.is_empty());
}

#[test]
fn a_redirect_to_another_host_is_refused_and_nothing_is_sent_there() {
    // localhost is another host name than 127.0.0.1, on the same loopback.
    let (port, hits) = counting_listener("127.0.0.1:0");
    let nginx = redirector(&format!("https://localhost:{port}"), None);
    let url = format!("http://127.0.0.1:{}/bigbluebutton/api", nginx.port);
    let e = refused(&Endpoint::new(&url, BBB_SECRET));
    assert!(
        e.contains(&format!(
            "http://127.0.0.1:{}/bigbluebutton/api redirects to https://localhost:{port}/bigbluebutton/api: another host",
            nginx.port
        )),
        "{e}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a request went to the other host"
    );
}

#[test]
fn a_redirect_from_https_down_to_http_is_refused() {
    let (port, hits) = counting_listener("127.0.0.1:0");
    let nginx = redirector(
        &format!("http://127.0.0.1:{port}"),
        Some(&test_ca().loopback()),
    );
    let url = format!("https://127.0.0.1:{}/bigbluebutton/api", nginx.port);
    let e = refused(&Endpoint::new(&url, BBB_SECRET).with_ca(ca_file(test_ca())));
    assert!(
        e.contains(&format!(
            "https://127.0.0.1:{}/bigbluebutton/api redirects to http://127.0.0.1:{port}/bigbluebutton/api: from HTTPS down to plain HTTP; refused",
            nginx.port
        )),
        "{e}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a request went over plain HTTP"
    );
}

#[test]
fn a_ca_file_that_is_missing_or_not_pem_is_an_error_naming_it() {
    let dir = tempdir("ca-files");
    let missing = dir.join("missing.pem");
    let e = CaFile::read(&missing).unwrap_err();
    assert!(
        e.starts_with(&format!("cannot read the CA file {}: ", missing.display())),
        "{e}"
    );
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a certificate\n").unwrap();
    let e = CaFile::read(&text).unwrap_err();
    assert_eq!(
        e,
        format!(
            "the CA file {} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
            text.display()
        )
    );
    let cert = test_ca().loopback();
    let e = CaFile::read(&cert.key).unwrap_err();
    assert!(e.contains("holds a private key"), "{e}");
    let bad = dir.join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = CaFile::read(&bad).unwrap_err();
    assert!(
        e.contains("certificate 1 is not a valid X.509 certificate"),
        "{e}"
    );
}
