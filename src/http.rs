//! The one HTTP client rollout uses, for the balancers and the nodes' BBB API alike (ureq,
//! blocking; callers run it on tokio's blocking pool).
//! Every request has a timeout, never goes through a proxy and never follows a redirect: a
//! redirect could carry a checksum or a token to another host. Errors name what failed but
//! never the URL, which may carry a checksum; callers add a printable URL themselves.

use std::io::ErrorKind;
use std::time::Duration;

/// Bodies larger than this are refused: no balancer or BBB answer we read is near it.
const BODY_LIMIT: u64 = 8 << 20;

/// A configured agent; cheap to clone.
#[derive(Clone)]
pub struct Http {
    agent: ureq::Agent,
    timeout: Duration,
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
    /// Nothing answered: timed out, the connection was lost, TLS failed.
    #[error("{0}")]
    Unreachable(String),
    /// Something answered but not with HTTP we could read.
    #[error("{0}")]
    Broken(String),
}

impl Http {
    /// A client whose every request must finish within `timeout` (connecting within
    /// `timeout` or 10 s, whichever is less).
    pub fn new(timeout: Duration) -> Http {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(Duration::from_secs(10))))
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .user_agent(concat!("rollout/", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent: config.new_agent(),
            timeout,
        }
    }

    /// GET `url` with `headers`; blocks up to the timeout.
    ///
    /// # Errors
    /// [`HttpError`] when no readable HTTP answer came (a status of 4xx or 5xx is a
    /// [`Reply`]), or when the body is larger than 8 MiB.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Reply, HttpError> {
        let mut req = self.agent.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.finish(req.call())
    }

    /// Sends `body` as JSON with `method` (`PATCH`, `PUT`, anything else is POST); blocks up
    /// to the timeout.
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
        let text = body.to_string();
        let mut req = match method {
            "PATCH" => self.agent.patch(url),
            "PUT" => self.agent.put(url),
            _ => self.agent.post(url),
        };
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.finish(req.content_type("application/json").send(text))
    }

    fn finish(
        &self,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, HttpError> {
        let mut resp = r.map_err(|e| self.describe(e))?;
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
            .map_err(|e| self.describe(e))?;
        Ok(Reply {
            status,
            content_type,
            body,
            date,
        })
    }

    fn describe(&self, e: ureq::Error) -> HttpError {
        let secs = self.timeout.as_secs_f64();
        match e {
            ureq::Error::Timeout(_) => HttpError::Unreachable(format!("no answer within {secs} s")),
            ureq::Error::HostNotFound => HttpError::NothingListens("host name not found".into()),
            ureq::Error::ConnectionFailed => HttpError::Unreachable("connection failed".into()),
            ureq::Error::Io(io) => match io.kind() {
                ErrorKind::ConnectionRefused => {
                    HttpError::NothingListens("connection refused".into())
                }
                ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                    HttpError::Unreachable(format!("no answer within {secs} s"))
                }
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::UnexpectedEof
                | ErrorKind::BrokenPipe => HttpError::Unreachable(format!("connection lost: {io}")),
                ErrorKind::NotFound => HttpError::NothingListens("host name not found".into()),
                _ => HttpError::Unreachable(io.to_string()),
            },
            ureq::Error::Tls(m) => HttpError::Unreachable(format!("TLS: {m}")),
            ureq::Error::Rustls(e) => HttpError::Unreachable(format!("TLS: {e}")),
            ureq::Error::BodyExceedsLimit(n) => {
                HttpError::Broken(format!("the answer is larger than {n} bytes"))
            }
            ureq::Error::BadUri(_) => HttpError::Broken("the URL is not valid".into()),
            ureq::Error::Protocol(p) => HttpError::Broken(format!("not HTTP: {p}")),
            other => HttpError::Broken(strip_urls(&other.to_string())),
        }
    }
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
}
