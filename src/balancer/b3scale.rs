//! b3scale's REST API (`/api/v1/backends`). Requests carry `Authorization: Bearer <JWT>`, a
//! short-lived HS384 token (claims `sub`, `scope: b3scale:admin`, `iat`, `exp`) signed with
//! `B3SCALE_API_JWT_SECRET`, as `b3scalectl auth create_access_token` makes them. A backend's
//! `admin_state` is the drain switch: `ready` takes new meetings, `stopped` does not while its
//! meetings continue (`b3scalectl disable backend`).
//!
//! Backends come from their node agent, not from rollout: `b3scaleagent -a` on the BBB node,
//! with a node token (scope `b3scale:node`, `sub` the agent's ref), registers the node's
//! backend itself, and b3scale ties it to the token's ref (`agent_ref`). Only such a backend
//! can receive the agent's heartbeats, and b3scale's router takes only backends whose agent
//! beat within [`AGENT_ALIVE`]. So [`SyncBalancer::add`] waits for the agent's backend
//! instead of creating one (an admin-created backend would never be routable, and its `host`,
//! unique in b3scale's table, would make the agent's own registration fail), and
//! [`SyncBalancer::routable`] waits for a recent heartbeat, both bounded by `health_timeout`.
//!
//! Upstream: b3scale's `pkg/http/auth/jwt.go` (HS384, scope `b3scale:admin`),
//! `pkg/http/api/backends.go` (the endpoints), `pkg/http/api/agents.go` (agent backend and
//! heartbeat by `agent_ref`), `pkg/cluster/router.go` (`SelectBackend`: heartbeat within 5 s,
//! admin and node state `ready`), `cmd/b3scaleagent` (registration with `-a`, a heartbeat
//! every second) and `pkg/store/backend_state.go` (the backend JSON: `admin_state`,
//! `node_state`, `agent_ref`, `agent_heartbeat`, `load_factor`, `meetings_count`,
//! `attendees_count`).

use super::{BalancerError, Desired, ErrorKind, Result, Server, State, SyncBalancer};
use crate::http::{Http, HttpError, Reply};
pub use crate::jwt::{static_token, token};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How recent an agent's heartbeat must be for b3scale to route to its backend:
/// `pkg/store/backend_state.go` `IsAgentAlive` and `pkg/cluster/router.go` `SelectBackend`
/// (`5 * time.Second`).
pub const AGENT_ALIVE: Duration = Duration::from_secs(5);

/// How long each token rollout signs is valid, in seconds. b3scale checks `exp` with no
/// leeway and does not check `iat` (golang-jwt v5's default validator, through echo-jwt in
/// `pkg/http/auth/jwt.go`): a b3scale whose clock is this far ahead of the controller's sees
/// every token expired; one whose clock is behind accepts them.
pub const TOKEN_TTL: u64 = 300;

/// How many seconds the clock of a server that answered with the HTTP `Date` header `date`
/// is ahead of `now` (Unix seconds); negative when it is behind, `None` when `date` is no
/// date (RFC 9110's IMF-fixdate is read as RFC 2822).
pub fn clock_ahead(date: &str, now: u64) -> Option<i64> {
    let t = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(date)
        .ok()?;
    Some(t.as_second() - i64::try_from(now).ok()?)
}

/// A client of one b3scale's REST API. Calls block (see [`super::Blocking`]); each request
/// carries a fresh token valid for [`TOKEN_TTL`] seconds.
pub struct B3scale {
    base: String,
    secret: String,
    http: Http,
    /// How long `add` waits for the agent's backend and `routable` for a heartbeat.
    wait: Duration,
    /// Pause between two looks while waiting.
    poll: Duration,
}

impl B3scale {
    /// `base` is b3scale's base URL; the API is under `/api/v1`. `secret` is its
    /// `B3SCALE_API_JWT_SECRET`. No request is made yet.
    pub fn new(base: &str, secret: &str, http: Http) -> B3scale {
        B3scale {
            base: base.trim_end_matches('/').to_string(),
            secret: secret.to_string(),
            http,
            wait: Duration::from_secs(60),
            poll: Duration::from_secs(1),
        }
    }

    /// Waits at most `wait` for an agent's backend or heartbeat (default 60 s), looking
    /// every `poll` (at most every second, at least every 50 ms).
    pub fn with_wait(mut self, wait: Duration, poll: Duration) -> B3scale {
        self.wait = wait;
        self.poll = poll.clamp(Duration::from_millis(50), Duration::from_secs(1));
        self
    }

    /// The backend `id` and b3scale's clock at the time of the answer (its `Date` header;
    /// this machine's clock when there is none).
    fn fetch(&self, id: &str) -> Result<(Value, jiff::Timestamp)> {
        let (v, date) = self.call_dated("GET", &format!("/backends/{id}"), None)?;
        Ok((v, date.unwrap_or_else(jiff::Timestamp::now)))
    }

    fn err(&self, kind: ErrorKind, msg: String) -> BalancerError {
        BalancerError::new(kind, format!("b3scale at {}: {msg}", self.base))
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        self.call_dated(method, path, body).map(|(v, _)| v)
    }

    fn call_dated(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<(Value, Option<jiff::Timestamp>)> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let bearer = format!(
            "Bearer {}",
            token(&self.secret, "rollout", "b3scale:admin", now, TOKEN_TTL)
        );
        let url = format!("{}/api/v1{path}", self.base);
        let headers = [("Authorization", bearer.as_str())];
        let what = format!("{method} /api/v1{}", path.split('?').next().unwrap_or(path));
        let reply = match &body {
            None => self.http.get(&url, &headers),
            Some(b) => self.http.send_json(method, &url, &headers, b),
        }
        .map_err(|e| match e {
            HttpError::NothingListens(m) | HttpError::Unreachable(m) => {
                self.err(ErrorKind::Unreachable, format!("unreachable: {m}"))
            }
            HttpError::Broken(m) => self.err(ErrorKind::Malformed, format!("{what}: {m}")),
            HttpError::Refused(m) => self.err(ErrorKind::Refused, format!("{what}: {m}")),
        })?;
        if let Some(e) = self.clock_skew(&what, &reply, now) {
            return Err(e);
        }
        if reply.is_unavailable() {
            return Err(self.err(
                ErrorKind::Unavailable,
                format!("{what}: HTTP {} with {}", reply.status, reply.excerpt()),
            ));
        }
        let date = reply
            .date
            .as_deref()
            .and_then(|d| jiff::fmt::rfc2822::parse(d).ok())
            .map(|z| z.timestamp());
        self.read(&what, &reply).map(|v| (v, date))
    }

    /// A refused token that b3scale's clock explains: a 401 whose `Date` header is at least
    /// [`TOKEN_TTL`] seconds ahead of `now`, when the token was expired on arrival whatever
    /// the secret. The error names the skew instead of suspecting the secret.
    fn clock_skew(&self, what: &str, reply: &Reply, now: u64) -> Option<BalancerError> {
        if reply.status != 401 {
            return None;
        }
        let date = reply.date.as_deref()?;
        let ahead = clock_ahead(date, now)?;
        if ahead < i64::try_from(TOKEN_TTL).unwrap_or(i64::MAX) {
            return None;
        }
        let message = serde_json::from_str::<Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(String::from))
            .unwrap_or_default();
        Some(self.err(
            ErrorKind::Auth,
            format!(
                "{what} was refused: {message}: b3scale's clock is {ahead} s ahead of this machine's (its answer is dated {}); rollout's token is valid for {TOKEN_TTL} s from this machine's time and b3scale allows no clock skew: set both clocks right (NTP)",
                jiff::Timestamp::from_second(now as i64 + ahead).unwrap_or_default()
            ),
        ))
    }

    fn read(&self, what: &str, reply: &Reply) -> Result<Value> {
        let value: Option<Value> = serde_json::from_str(&reply.body).ok();
        let message = value
            .as_ref()
            .and_then(|v| v.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match (reply.status, value) {
            (200..=299, Some(v)) => Ok(v),
            (200..=299, None) => {
                Err(self.err(ErrorKind::Malformed, format!("{what}: HTTP {} with {} instead of JSON", reply.status, reply.excerpt())))
            }
            (401, _) => Err(self.err(
                ErrorKind::Auth,
                format!("{what} was refused: {message}; is `balancer.secret` b3scale's B3SCALE_API_JWT_SECRET?"),
            )),
            (403, _) => Err(self.err(ErrorKind::Auth, format!("{what} was refused: {message}"))),
            (404, _) if what.ends_with("/backends") => Err(self.err(
                ErrorKind::Malformed,
                format!("{what}: HTTP 404; is `balancer.url` b3scale's base URL (rollout adds /api/v1)?"),
            )),
            (status, Some(v)) => {
                let fields = v.get("fields").map(|f| format!(" {f}")).unwrap_or_default();
                let why = if message.is_empty() { reply.excerpt() } else { message };
                Err(self.err(ErrorKind::Refused, format!("{what} was refused (HTTP {status}): {why}{fields}")))
            }
            (status, None) => Err(self.err(ErrorKind::Malformed, format!("{what}: HTTP {status} with {}", reply.excerpt()))),
        }
    }

    fn backend(&self, what: &str, v: &Value) -> Result<Server> {
        parse_backend(v).map_err(|m| {
            self.err(
                ErrorKind::Malformed,
                format!("{what} answered a backend {m}"),
            )
        })
    }
}

fn tags(tag: &str) -> Value {
    let list: Vec<&str> = tag
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if list.is_empty() {
        Value::Null
    } else {
        json!(list)
    }
}

impl SyncBalancer for B3scale {
    fn describe(&self) -> String {
        format!("b3scale at {}", self.base)
    }

    fn list(&self) -> Result<Vec<Server>> {
        let v = self.call("GET", "/backends", None)?;
        let Value::Array(items) = v else {
            return Err(self.err(
                ErrorKind::Malformed,
                "GET /api/v1/backends answered JSON that is not a list".into(),
            ));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, b)| {
                parse_backend(b).map_err(|m| {
                    self.err(
                        ErrorKind::Malformed,
                        format!("GET /api/v1/backends: backend {} {m}", i + 1),
                    )
                })
            })
            .collect()
    }

    /// Waits for the node's agent to register its backend (see the module): b3scale's
    /// backends come from `b3scaleagent -a`, never from an admin.
    fn add(&self, d: &Desired) -> Result<Server> {
        let deadline = Instant::now() + self.wait;
        loop {
            if let Some(s) = super::find(&self.list()?, &d.url) {
                return Ok(s.clone());
            }
            if Instant::now() >= deadline {
                return Err(self.err(
                    ErrorKind::Refused,
                    format!(
                        "no backend for {} after {} s: b3scale takes a node's backend from its node agent (b3scaleagent -a, with the node's token, registers it), and none registered it; is b3scaleagent installed and running on the node (role bbb with b3scale_api_url)?",
                        crate::http::printable_url(&d.url),
                        self.wait.as_secs()
                    ),
                ));
            }
            std::thread::sleep(self.poll);
        }
    }

    fn routable(&self, s: &Server) -> Result<()> {
        let deadline = Instant::now() + self.wait;
        loop {
            let (v, now) = self.fetch(&s.id)?;
            let why = match unroutable(&v, now) {
                None => return Ok(()),
                Some(Why::NoAgent) => {
                    return Err(self.err(
                        ErrorKind::Refused,
                        format!(
                            "backend {} has no node agent (agent_ref is null: an admin added it, not b3scaleagent with the node's token), so no heartbeat can ever count for it and b3scale never routes a meeting to it; delete it (b3scalectl) so that the node's agent registers the node",
                            crate::http::printable_url(&s.url)
                        ),
                    ));
                }
                Some(Why::Other(why)) => why,
            };
            if Instant::now() >= deadline {
                return Err(self.err(
                    ErrorKind::Refused,
                    format!(
                        "backend {} is not routable after {} s: {why}",
                        crate::http::printable_url(&s.url),
                        self.wait.as_secs()
                    ),
                ));
            }
            std::thread::sleep(self.poll);
        }
    }

    fn update(&self, s: &Server, d: &Desired) -> Result<Server> {
        let body = json!({"bbb": {"host": s.url, "secret": d.secret}, "load_factor": d.load_multiplier, "settings": {"tags": tags(&d.tag)}});
        let v = self.call("PATCH", &format!("/backends/{}", s.id), Some(body))?;
        self.backend("PATCH /api/v1/backends/ID", &v)
    }

    fn set_state(&self, s: &Server, to: State) -> Result<Server> {
        let admin_state = match to {
            State::Enabled => "ready",
            State::Cordoned | State::Disabled => "stopped",
        };
        let v = self.call(
            "PATCH",
            &format!("/backends/{}", s.id),
            Some(json!({"admin_state": admin_state})),
        )?;
        self.backend("PATCH /api/v1/backends/ID", &v)
    }
}

/// Why b3scale would not route to a backend.
#[derive(Debug, PartialEq, Eq)]
enum Why {
    /// `agent_ref` is null: no agent can ever beat for it.
    NoAgent,
    /// Its heartbeat, node state or admin state, worded for the operator.
    Other(String),
}

/// `None` when b3scale's router would take the backend `v` at b3scale's time `now`: an
/// agent is tied to it, its heartbeat is at most [`AGENT_ALIVE`] old (counted from the end
/// of the second `now` names, as an HTTP `Date` is truncated to seconds), and `admin_state`
/// and `node_state` are `ready`.
fn unroutable(v: &Value, now: jiff::Timestamp) -> Option<Why> {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let Some(agent) = s("agent_ref") else {
        return Some(Why::NoAgent);
    };
    let beat = s("agent_heartbeat").and_then(|t| t.parse::<jiff::Timestamp>().ok());
    let latest_now = now + jiff::SignedDuration::from_secs(1);
    let alive = AGENT_ALIVE.as_secs() as i64;
    let fresh = beat.is_some_and(|b| latest_now.duration_since(b).as_secs() < alive);
    if !fresh {
        let last = match beat {
            Some(b) if b.as_second() > 946_684_800 => {
                format!(
                    "its last was at {b}, {} s before b3scale's clock",
                    now.duration_since(b).as_secs()
                )
            }
            _ => "it never sent one".to_string(),
        };
        return Some(Why::Other(format!(
            "no heartbeat from its node agent `{agent}` within the last {alive} s ({last}); b3scale routes only to backends whose agent beat within {alive} s: is b3scaleagent running on the node and can it reach b3scale?"
        )));
    }
    match (s("admin_state"), s("node_state")) {
        (Some("ready"), Some("ready")) => None,
        (Some("ready"), node) => {
            let err = s("last_error")
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            Some(Why::Other(format!(
                "its node_state is {}{err} (b3scale routes only to node_state ready)",
                node.unwrap_or("missing")
            )))
        }
        (admin, _) => Some(Why::Other(format!(
            "its admin_state is {} (b3scale routes only to admin_state ready)",
            admin.unwrap_or("missing")
        ))),
    }
}

/// Reads one backend object of the API (`pkg/store/backend_state.go`): `id`, `bbb.host`,
/// `admin_state` required. `admin_state` `ready` is enabled, `stopped` cordoned, and `init`,
/// `decommissioned`, `destroyed` disabled; `node_state` `ready`/`error` (or a `last_error`)
/// give `online`. `bbb.secret`, `load_factor` (default 1.0), `settings.tags`, `meetings_count`
/// and `attendees_count` are read when present.
///
/// # Errors
/// What the object lacks, worded to follow "backend": `without `bbb.host``, `with unknown
/// admin_state ...`.
pub fn parse_backend(v: &Value) -> std::result::Result<Server, String> {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let id = s("id").ok_or("without `id`")?.to_string();
    let bbb = v.get("bbb").ok_or("without `bbb`")?;
    let url = bbb
        .get("host")
        .and_then(Value::as_str)
        .ok_or("without `bbb.host`")?
        .to_string();
    let state = match s("admin_state").ok_or("without `admin_state`")? {
        "ready" => State::Enabled,
        "stopped" => State::Cordoned,
        "init" | "decommissioned" | "destroyed" => State::Disabled,
        other => return Err(format!("with unknown admin_state `{other}`")),
    };
    let online = match s("node_state") {
        Some("ready") => Some(true),
        Some("error") => Some(false),
        _ if v.get("last_error").is_some_and(|e| !e.is_null()) => Some(false),
        _ => None,
    };
    let count = |k: &str| v.get(k).and_then(Value::as_u64);
    let tag = match v.get("settings").and_then(|x| x.get("tags")) {
        Some(Value::Array(t)) => t
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    };
    Ok(Server {
        id,
        url,
        secret: bbb
            .get("secret")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        state,
        online,
        load: None,
        load_multiplier: v.get("load_factor").and_then(Value::as_f64).unwrap_or(1.0),
        tag,
        bbb_version: None,
        meetings: count("meetings_count"),
        participants: count("attendees_count"),
        unadmitted: s("admin_state") == Some("init"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use hmac::{KeyInit, Mac};

    #[test]
    fn token_is_hs384_over_header_and_claims() {
        let t = token("k", "rollout", "b3scale:admin", 1000, 300);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let dec = |p: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap()
        };
        let header: Value = serde_json::from_slice(&dec(parts[0])).unwrap();
        assert_eq!(header["alg"], "HS384");
        let claims: Value = serde_json::from_slice(&dec(parts[1])).unwrap();
        assert_eq!(
            claims,
            json!({"sub": "rollout", "scope": "b3scale:admin", "iat": 1000, "exp": 1300})
        );
        let mut mac = hmac::Hmac::<sha2::Sha384>::new_from_slice(b"k").unwrap();
        mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
        assert_eq!(dec(parts[2]), mac.finalize().into_bytes().to_vec());
    }

    #[test]
    fn node_token_is_stable_and_scoped_to_the_node() {
        let t = static_token("k", "bbb01", "b3scale:node").unwrap();
        assert_eq!(t, static_token("k", "bbb01", "b3scale:node").unwrap());
        let claims = t.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(claims)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims, json!({"scope": "b3scale:node", "sub": "bbb01"}));
        assert!(static_token("k", "", "b3scale:node").is_err());
        assert!(static_token("k", &"x".repeat(65), "b3scale:node").is_err());
    }

    #[test]
    fn routable_only_with_a_recent_heartbeat_of_its_agent() {
        let now: jiff::Timestamp = "2026-12-06T20:00:10Z".parse().unwrap();
        let b = |beat: &str, agent: Value, node: &str| json!({"agent_ref": agent, "agent_heartbeat": beat, "admin_state": "ready", "node_state": node});
        // The Date header is truncated to seconds: b3scale's clock may be up to 1 s later.
        assert_eq!(
            unroutable(&b("2026-12-06T20:00:06.1Z", json!("bbb01"), "ready"), now),
            None
        );
        let stale = unroutable(&b("2026-12-06T20:00:05.9Z", json!("bbb01"), "ready"), now);
        assert!(
            matches!(&stale, Some(Why::Other(m)) if m.contains("no heartbeat from its node agent `bbb01` within the last 5 s")),
            "{stale:?}"
        );
        let never = unroutable(&b("2000-01-01T00:00:00Z", json!("bbb01"), "ready"), now);
        assert!(
            matches!(&never, Some(Why::Other(m)) if m.contains("it never sent one")),
            "{never:?}"
        );
        assert_eq!(
            unroutable(&b("2026-12-06T20:00:09Z", Value::Null, "ready"), now),
            Some(Why::NoAgent)
        );
        let init = unroutable(&b("2026-12-06T20:00:09Z", json!("bbb01"), "init"), now);
        assert!(
            matches!(&init, Some(Why::Other(m)) if m.contains("node_state is init")),
            "{init:?}"
        );
    }

    #[test]
    fn clock_ahead_reads_the_date_header() {
        // 1764410640 is 2025-11-29 10:04:00 UTC.
        let date = "Sat, 29 Nov 2025 10:14:00 GMT";
        assert_eq!(clock_ahead(date, 1764410640), Some(600));
        assert_eq!(clock_ahead(date, 1764410640 + 1200), Some(-600));
        assert_eq!(clock_ahead("yesterday", 1764410640), None);
    }

    #[test]
    fn reads_backends() {
        let v = json!({"id":"x","node_state":"error","admin_state":"stopped","last_error":"boom","meetings_count":2,
            "attendees_count":7,"load_factor":1.5,"bbb":{"host":"https://n/bigbluebutton/api/","secret":"s"},"settings":{"tags":["a","b"]}});
        let s = parse_backend(&v).unwrap();
        assert_eq!(
            (s.state, s.online, s.meetings, s.participants),
            (State::Cordoned, Some(false), Some(2), Some(7))
        );
        assert_eq!(s.tag, "a,b");
        assert_eq!(tags("a, b"), json!(["a", "b"]));
        assert_eq!(tags(""), Value::Null);
    }
}
