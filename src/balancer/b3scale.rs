//! b3scale's REST API (`/api/v1/backends`). Requests carry `Authorization: Bearer <JWT>`, a
//! short-lived HS384 token (claims `sub`, `scope: b3scale:admin`, `iat`, `exp`) signed with
//! `B3SCALE_API_JWT_SECRET`, as `b3scalectl auth create_access_token` makes them. A backend's
//! `admin_state` is the drain switch: `ready` takes new meetings, `stopped` does not while its
//! meetings continue (`b3scalectl disable backend`).
//!
//! Upstream: b3scale's `pkg/http/auth/jwt.go` (HS384, scope `b3scale:admin`),
//! `pkg/http/api/backends.go` (the endpoints) and `pkg/store/backend_state.go` (the backend
//! JSON: `admin_state`, `node_state`, `load_factor`, `meetings_count`, `attendees_count`).

use super::{BalancerError, Desired, ErrorKind, Result, Server, State, SyncBalancer};
use crate::http::{Http, HttpError, Reply};
use base64::Engine;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

/// A client of one b3scale's REST API. Calls block (see [`super::Blocking`]); each request
/// carries a fresh token valid for 300 seconds.
pub struct B3scale {
    base: String,
    secret: String,
    http: Http,
}

/// A signed HS384 JWT for `sub` with `scope`, valid for `ttl` seconds from `now` (Unix
/// seconds): the form b3scale's `pkg/http/auth/jwt.go` checks against `secret`.
pub fn token(secret: &str, sub: &str, scope: &str, now: u64, ttl: u64) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let header = b64(br#"{"alg":"HS384","typ":"JWT"}"#);
    let claims = b64(
        json!({"sub": sub, "scope": scope, "iat": now, "exp": now + ttl})
            .to_string()
            .as_bytes(),
    );
    let signing_input = format!("{header}.{claims}");
    let mut mac = hmac::Hmac::<sha2::Sha384>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(signing_input.as_bytes());
    format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
}

impl B3scale {
    /// `base` is b3scale's base URL; the API is under `/api/v1`. `secret` is its
    /// `B3SCALE_API_JWT_SECRET`. No request is made yet.
    pub fn new(base: &str, secret: &str, http: Http) -> B3scale {
        B3scale {
            base: base.trim_end_matches('/').to_string(),
            secret: secret.to_string(),
            http,
        }
    }

    fn err(&self, kind: ErrorKind, msg: String) -> BalancerError {
        BalancerError::new(kind, format!("b3scale at {}: {msg}", self.base))
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let bearer = format!(
            "Bearer {}",
            token(&self.secret, "rollout", "b3scale:admin", now, 300)
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
        })?;
        if reply.is_unavailable() {
            return Err(self.err(
                ErrorKind::Unavailable,
                format!("{what}: HTTP {} with {}", reply.status, reply.excerpt()),
            ));
        }
        self.read(&what, &reply)
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

    fn add(&self, d: &Desired) -> Result<Server> {
        let body = json!({"bbb": {"host": d.url, "secret": d.secret}, "load_factor": d.load_multiplier,
            "settings": {"tags": tags(&d.tag)}, "admin_state": "stopped"});
        let v = self.call("POST", "/backends", Some(body))?;
        self.backend("POST /api/v1/backends", &v)
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
