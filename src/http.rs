//! The one HTTP client rollout uses, for the balancers and the nodes' BBB API alike (ureq,
//! blocking; callers run it on tokio's blocking pool).
//!
//! Every request has a timeout and never goes through a proxy. HTTPS is verified against
//! the built-in web roots (Mozilla's, from `webpki-roots`) or, where the inventory names a
//! `ca_file:`, against the CA certificates of that file instead (as curl's `--cacert` does);
//! verification cannot be turned off.
//!
//! Redirects are followed only while the request stays with the same server: to the same
//! host, either on the same scheme and port or upgraded from `http://` to `https://` (what
//! nginx in front of Scalelite, b3scale and BBB answers to plain HTTP), at most
//! [`MAX_REDIRECTS`] times, keeping the method and body (RFC 9110 15.4 allows it; 303 is
//! followed for GET only). A redirect to another host or port, or from HTTPS down to HTTP,
//! is refused before anything is sent there: the request carries a checksum or a token.
//!
//! Errors name what failed but never a URL's query, which may carry a checksum; callers
//! add a printable URL themselves.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Bodies larger than this are refused: no balancer or BBB answer we read is near it.
const BODY_LIMIT: u64 = 8 << 20;

/// A `ca_file:` larger than this (1 MiB) is refused: a bundle of every public CA is ~200 KiB.
const CA_FILE_LIMIT: u64 = 1 << 20;

/// Redirects followed for one request at most; nginx's http-to-https is one.
pub const MAX_REDIRECTS: usize = 5;

/// CA certificates read from a PEM file (a `ca_file:` of the inventory): one CA or a
/// bundle. An HTTPS server is then trusted when its certificate chains to one of them, and
/// only then (the built-in roots are not used beside them). Cheap to clone.
#[derive(Clone)]
pub struct CaFile {
    path: PathBuf,
    certs: Arc<Vec<ureq::tls::Certificate<'static>>>,
}

impl std::fmt::Debug for CaFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CaFile({}, {} certificates)",
            self.path.display(),
            self.certs.len()
        )
    }
}

impl CaFile {
    /// Reads every `-----BEGIN CERTIFICATE-----` block of the PEM file at `path`.
    ///
    /// # Errors
    /// A sentence naming the file (callers add the setting's place): it cannot be read or is
    /// larger than 1 MiB, is not PEM, holds no certificate, holds a private key (a CA file
    /// is public; a key there is a mistake to stop at), or a block is not an X.509
    /// certificate.
    pub fn read(path: &Path) -> Result<CaFile, String> {
        let shown = path.display();
        let bytes = crate::bounded::read(path, CA_FILE_LIMIT)
            .map_err(|e| format!("cannot read the CA file {shown}: {e}"))?;
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(&bytes) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => {
                    let der = rustls::pki_types::CertificateDer::from(c.der().to_vec());
                    rustls::RootCertStore::empty().add(der).map_err(|e| {
                        format!(
                            "the CA file {shown}: certificate {} is not a valid X.509 certificate ({e})",
                            certs.len() + 1
                        )
                    })?;
                    certs.push(c);
                }
                Ok(ureq::tls::PemItem::PrivateKey(_)) => {
                    return Err(format!(
                        "the CA file {shown} holds a private key; it must hold only the CA's certificate"
                    ));
                }
                Ok(_) => {}
                Err(e) => return Err(format!("the CA file {shown} is not PEM: {e}")),
            }
        }
        if certs.is_empty() {
            return Err(format!(
                "the CA file {shown} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)"
            ));
        }
        Ok(CaFile {
            path: path.to_path_buf(),
            certs: Arc::new(certs),
        })
    }

    /// The file it was read from, as the inventory named it (joined to the inventory's folder).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many certificates it holds.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    /// Never true: [`CaFile::read`] refuses a file without a certificate.
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }
}

/// What an agent trusts, and the inventory setting that changes it, for messages.
#[derive(Clone, Debug)]
struct Trust {
    ca: Option<CaFile>,
    setting: &'static str,
}

impl Trust {
    fn describe(&self) -> String {
        match &self.ca {
            Some(ca) => format!("the CA file {} of `{}`", ca.path.display(), self.setting),
            None => format!(
                "the built-in web roots; set `{}` to trust an internal CA",
                self.setting
            ),
        }
    }
}

/// A configured agent; cheap to clone.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
    trust: Trust,
    timeout: Duration,
    /// Agents for endpoints with a CA file of their own (a node's `bbb_api_ca_file`), by path.
    others: Arc<Mutex<HashMap<PathBuf, ureq::Agent>>>,
}
/// An answer of any status.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status code; errors (4xx, 5xx) are replies too, for the caller to read.
    pub status: u16,
    /// The `Content-Type` header, lowercased; empty when absent.
    pub content_type: String,
    /// The body as text, at most 8 MiB.
    pub body: String,
    /// The `Date` header (the server's clock, RFC 9110 IMF-fixdate), when sent.
    pub date: Option<String>,
}

impl Reply {
    /// Whether the `Content-Type` names JSON.
    pub fn is_json(&self) -> bool {
        self.content_type.contains("json")
    }

    /// Whether the status says "not now" rather than "no": 429 (too many requests), 502 (bad
    /// gateway), 503 (unavailable), 504 (gateway timeout), as a proxy in front of a
    /// restarting service answers. Callers may retry such a request.
    pub fn is_unavailable(&self) -> bool {
        matches!(self.status, 429 | 502 | 503 | 504)
    }

    /// The first line of the body, shortened, for error messages (callers redact it).
    pub fn excerpt(&self) -> String {
        let line = self.body.trim().lines().next().unwrap_or("").trim();
        if line.is_empty() {
            return "an empty body".into();
        }
        let short: String = line.chars().take(120).collect();
        if short.len() < line.len() {
            format!("`{short}...`")
        } else {
            format!("`{short}`")
        }
    }
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// Nothing listens there: the connection was refused or the host name does not
    /// resolve (as opposed to a peer that is there but does not answer in time).
    #[error("{0}")]
    NothingListens(String),
    /// Nothing answered: timed out, the connection was lost.
    #[error("{0}")]
    Unreachable(String),
    /// Something answered but not with HTTP we could read.
    #[error("{0}")]
    Broken(String),
    /// Something answered and rollout refuses it: its certificate failed verification (not
    /// from a trusted CA, expired, for another name), or it redirected where rollout does not
    /// follow (another host or port, HTTPS to HTTP, too many hops). Retrying cannot help;
    /// the message says what to fix and names URLs without their query.
    #[error("{0}")]
    Refused(String),
}

impl Http {
    /// A client whose every request must finish within `timeout` (connecting within
    /// `timeout` or 10 s, whichever is less), trusting the built-in web roots.
    pub fn new(timeout: Duration) -> Http {
        Http::with_ca(timeout, None, "ca_file")
    }

    /// As [`Http::new`], trusting the certificates of `ca` instead when there is one;
    /// `setting` names the inventory setting that sets it (`balancer: ca_file`), for messages.
    pub fn with_ca(timeout: Duration, ca: Option<CaFile>, setting: &'static str) -> Http {
        Http {
            agent: agent(timeout, ca.as_ref()),
            trust: Trust { ca, setting },
            timeout,
            others: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// GET `url` with `headers`; blocks up to the timeout per request (a followed redirect
    /// is one more request).
    ///
    /// # Errors
    /// [`HttpError`] when no readable HTTP answer came (a status of 4xx or 5xx is a
    /// [`Reply`]), when the body is larger than 8 MiB, or when the server's certificate or
    /// redirect is refused ([`HttpError::Refused`]).
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Reply, HttpError> {
        self.request("GET", url, headers, None, None)
    }

    /// As [`Http::get`], trusting `ca` instead of this client's own trust when it is given
    /// (a node's `bbb_api_ca_file`); `setting` is the setting messages name (also when `ca`
    /// is `None` and a certificate is refused).
    ///
    /// # Errors
    /// As [`Http::get`].
    pub fn get_trusting(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        ca: Option<&CaFile>,
        setting: &'static str,
    ) -> Result<Reply, HttpError> {
        self.request(
            "GET",
            url,
            headers,
            None,
            Some(Trust {
                ca: ca.cloned(),
                setting,
            }),
        )
    }

    /// Sends `body` as JSON with `method` (`PATCH`, `PUT`, anything else is POST); blocks up
    /// to the timeout per request.
    ///
    /// # Errors
    /// As [`Http::get`].
    pub fn send_json(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
    ) -> Result<Reply, HttpError> {
        let method = match method {
            "PATCH" | "PUT" => method,
            _ => "POST",
        };
        self.request(method, url, headers, Some(&body.to_string()), None)
    }

    /// The agent for `trust` (this client's own when `None`).
    fn agent_for(&self, trust: Option<&Trust>) -> ureq::Agent {
        let Some(Trust { ca: Some(ca), .. }) = trust else {
            return self.agent.clone();
        };
        // A poisoned lock only means another thread panicked while inserting: the map is intact.
        let mut others = self.others.lock().unwrap_or_else(|e| e.into_inner());
        others
            .entry(ca.path.clone())
            .or_insert_with(|| agent(self.timeout, Some(ca)))
            .clone()
    }

    /// Sends the request and follows the redirects [`follow`] allows.
    fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
        trust: Option<Trust>,
    ) -> Result<Reply, HttpError> {
        let agent = self.agent_for(trust.as_ref());
        let trust = trust.as_ref().unwrap_or(&self.trust);
        let mut method = method;
        let mut body = body;
        let mut current = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let resp = send(&agent, method, &current, headers, body)
                .map_err(|e| self.describe(e, &current, trust))?;
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let location = match (status, location) {
                (301 | 302 | 303 | 307 | 308, Some(l)) => l,
                _ => return self.finish(resp, trust),
            };
            let next = follow(&current, &location).map_err(HttpError::Refused)?;
            if status == 303 {
                if method != "GET" {
                    return Err(HttpError::Refused(format!(
                        "{} answered a {method} with 303 See Other to {}; rollout does not turn an API call into a GET",
                        bare_url(&current),
                        bare_url(&next)
                    )));
                }
                (method, body) = ("GET", None);
            }
            current = next;
        }
        Err(HttpError::Refused(format!(
            "{} redirected more than {MAX_REDIRECTS} times",
            bare_url(url)
        )))
    }

    fn finish(
        &self,
        mut resp: ureq::http::Response<ureq::Body>,
        trust: &Trust,
    ) -> Result<Reply, HttpError> {
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let date = resp
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .map_err(|e| self.describe(e, "", trust))?;
        Ok(Reply {
            status,
            content_type,
            body,
            date,
        })
    }

    fn describe(&self, e: ureq::Error, url: &str, trust: &Trust) -> HttpError {
        let secs = self.timeout.as_secs_f64();
        let host = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "the server".into());
        match e {
            ureq::Error::Timeout(_) => HttpError::Unreachable(format!("no answer within {secs} s")),
            ureq::Error::HostNotFound => HttpError::NothingListens("host name not found".into()),
            ureq::Error::ConnectionFailed => HttpError::Unreachable("connection failed".into()),
            ureq::Error::Io(io) => {
                if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    return tls_error(tls, &host, trust);
                }
                match io.kind() {
                    ErrorKind::ConnectionRefused => {
                        HttpError::NothingListens("connection refused".into())
                    }
                    ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                        HttpError::Unreachable(format!("no answer within {secs} s"))
                    }
                    ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::UnexpectedEof
                    | ErrorKind::BrokenPipe => {
                        HttpError::Unreachable(format!("connection lost: {io}"))
                    }
                    ErrorKind::NotFound => HttpError::NothingListens("host name not found".into()),
                    _ => HttpError::Unreachable(strip_urls(&io.to_string())),
                }
            }
            ureq::Error::Tls(m) => HttpError::Unreachable(format!("TLS: {m}")),
            ureq::Error::Rustls(e) => tls_error(&e, &host, trust),
            ureq::Error::BodyExceedsLimit(n) => {
                HttpError::Broken(format!("the answer is larger than {n} bytes"))
            }
            ureq::Error::BadUri(_) => HttpError::Broken("the URL is not valid".into()),
            ureq::Error::Protocol(p) => HttpError::Broken(format!("not HTTP: {p}")),
            other => HttpError::Broken(strip_urls(&other.to_string())),
        }
    }
}

/// A ureq agent with rollout's settings, trusting `ca` (else the built-in web roots).
/// Redirects are not ureq's to follow: [`Http`] checks each one first (see [`follow`]).
fn agent(timeout: Duration, ca: Option<&CaFile>) -> ureq::Agent {
    let roots = match ca {
        Some(ca) => ureq::tls::RootCerts::Specific(ca.certs.clone()),
        None => ureq::tls::RootCerts::WebPki,
    };
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .user_agent(concat!("rollout/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// One request, no redirect followed.
fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    if method == "GET" {
        let mut req = agent.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        return req.call();
    }
    let mut req = match method {
        "PATCH" => agent.patch(url),
        "PUT" => agent.put(url),
        _ => agent.post(url),
    };
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.content_type("application/json")
        .send(body.unwrap_or_default())
}

/// A refused certificate, said so that the operator knows what to fix.
fn tls_error(e: &rustls::Error, host: &str, trust: &Trust) -> HttpError {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(c) = e else {
        return HttpError::Unreachable(format!("TLS with {host} failed: {e}"));
    };
    HttpError::Refused(match c {
        C::UnknownIssuer => format!(
            "TLS: {host}'s certificate is not issued by a CA rollout trusts ({})",
            trust.describe()
        ),
        C::Expired | C::ExpiredContext { .. } => {
            format!("TLS: {host}'s certificate has expired ({e})")
        }
        C::NotValidYet | C::NotValidYetContext { .. } => format!(
            "TLS: {host}'s certificate is not valid yet; is this machine's clock right? ({e})"
        ),
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            format!("TLS: {host}'s certificate is not valid for the name {host} ({e})")
        }
        _ => format!("TLS: {host}'s certificate is refused: {e}"),
    })
}

/// Where a redirect from `from` to `location` (as the `Location` header says, absolute or
/// relative) leads, if rollout follows it: the same host, either on the same scheme and
/// port or from `http` up to `https` (any port).
///
/// # Errors
/// Why it is not followed, naming both URLs without their query.
pub fn follow(from: &str, location: &str) -> Result<String, String> {
    let base = url::Url::parse(from).map_err(|_| "the URL is not valid".to_string())?;
    let Ok(to) = base.join(location) else {
        return Err(format!(
            "{} redirects to a location that is not a URL",
            bare_url(from)
        ));
    };
    let what = format!("{} redirects to {}", bare_url(from), bare(&to));
    let (fs, ts) = (base.scheme(), to.scheme());
    if ts != "http" && ts != "https" {
        return Err(format!("{what}; rollout follows HTTP redirects only"));
    }
    if fs == "https" && ts == "http" {
        return Err(format!(
            "{what}: from HTTPS down to plain HTTP; refused (the request carries a checksum or token)"
        ));
    }
    if !base
        .host_str()
        .zip(to.host_str())
        .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
    {
        return Err(format!(
            "{what}: another host; rollout follows a redirect only to the same host (the request carries a checksum or token); write the URL to use in the inventory"
        ));
    }
    if fs == ts && base.port_or_known_default() != to.port_or_known_default() {
        return Err(format!(
            "{what}: another port of the same host; rollout follows a redirect only to the same server; write the URL to use in the inventory"
        ));
    }
    Ok(to.to_string())
}

/// `url` without user, password, query and fragment: all a message may show of it.
pub fn bare_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => bare(&u),
        Err(_) => url.split(['?', '#']).next().unwrap_or_default().to_string(),
    }
}

fn bare(u: &url::Url) -> String {
    let mut u = u.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// Drops anything after `?` in URLs inside `text`, so a checksum never reaches a message.
pub fn strip_urls(text: &str) -> String {
    text.split(' ')
        .map(printable_url)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A URL as it may be printed: the query (checksums, ids) replaced.
pub fn printable_url(url: &str) -> String {
    match url.split_once('?') {
        Some((base, q)) if q.contains("checksum=") => format!("{base}?…"),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_url_hides_checksums() {
        assert_eq!(
            printable_url("http://x/api/getMeetings?checksum=abc"),
            "http://x/api/getMeetings?…"
        );
        assert_eq!(printable_url("http://x/api"), "http://x/api");
        assert_eq!(
            strip_urls("error for http://x/a?checksum=1 now"),
            "error for http://x/a?… now"
        );
    }

    #[test]
    fn follows_an_upgrade_to_https_on_the_same_host() {
        assert_eq!(
            follow(
                "http://lb.example.org/scalelite/api/getServers?checksum=abc",
                "https://lb.example.org/scalelite/api/getServers?checksum=abc"
            )
            .unwrap(),
            "https://lb.example.org/scalelite/api/getServers?checksum=abc"
        );
        // Another port on an upgrade (http on 8080, https on 8443), a relative location,
        // and the same host in other case.
        assert!(follow("http://lb:8080/a", "https://LB:8443/a").is_ok());
        assert_eq!(follow("https://lb/a/b?x=1", "/c").unwrap(), "https://lb/c");
    }

    #[test]
    fn refuses_downgrades_other_hosts_and_ports_without_the_query() {
        let down = follow(
            "https://lb/api/x?checksum=s3cr3t",
            "http://lb/api/x?checksum=s3cr3t",
        )
        .unwrap_err();
        assert!(down.contains("from HTTPS down to plain HTTP"), "{down}");
        let other = follow(
            "http://lb/api/x?checksum=s3cr3t",
            "https://evil/api/x?checksum=s3cr3t",
        )
        .unwrap_err();
        assert!(other.contains("another host"), "{other}");
        assert!(other.contains("https://evil/api/x"), "{other}");
        let port = follow("https://lb/a?checksum=s3cr3t", "https://lb:8443/a").unwrap_err();
        assert!(port.contains("another port"), "{port}");
        let scheme = follow("https://lb/a", "ftp://lb/a").unwrap_err();
        assert!(scheme.contains("HTTP redirects only"), "{scheme}");
        for e in [down, other, port] {
            assert!(!e.contains("s3cr3t") && !e.contains('?'), "{e}");
        }
    }

    #[test]
    fn bare_url_drops_query_and_credentials() {
        assert_eq!(
            bare_url("https://u:p@lb/api/x?checksum=1#f"),
            "https://lb/api/x"
        );
        assert_eq!(bare_url("not a url?checksum=1"), "not a url");
    }
}
