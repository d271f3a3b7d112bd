//! The inventory's `balancer:` section, validated before anything runs:
//!
//! ```yaml
//! balancer:
//!   kind: scalelite                 # or b3scale
//!   url: https://lb.example.org/scalelite/api   # b3scale: its base URL (rollout adds /api/v1)
//!   secret: {secret: "env:LOADBALANCER_SECRET"} # b3scale: B3SCALE_API_JWT_SECRET
//!   group: bbb                      # the inventory group of the BBB nodes (default bbb)
//!   host: lb1                       # Scalelite's inventory host, for rake over SSH
//!   min_in_service: 1               # never drain below this many enabled nodes (default 1)
//!   poll_interval: 5                # seconds between meeting checks while draining (default 5)
//! ```
//!
//! Also `online_timeout` (seconds an upgraded node may take to be listed online again,
//! default 180), `request_timeout` (seconds per HTTP request, default 10), `health_timeout`
//! (seconds a node may take to pass its health check after an apply, default 60),
//! `rake_command` (default `docker exec -i scalelite-api bundle exec rake`) and `ca_file` (a PEM
//! file of the CA certificates the balancer's HTTPS certificate must chain to, instead of the
//! built-in web roots; relative to the inventory's folder). Unknown keys are errors.

mod keys;

use crate::error::{Diagnostic, did_you_mean};
use crate::inventory::Inventory;
use keys::key_positions;
use serde_json::Value;
use std::collections::HashMap;

/// Which balancer product the inventory's `kind:` names (the Rust type is not called "kind":
/// that word is the step kind's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// Scalelite (`kind: scalelite`): its server API or rake over SSH.
    Scalelite,
    /// b3scale (`kind: b3scale`): its REST API.
    B3scale,
}

impl Product {
    /// The product's name as messages spell it (`Scalelite`, `b3scale`).
    pub fn name(self) -> &'static str {
        match self {
            Product::Scalelite => "Scalelite",
            Product::B3scale => "b3scale",
        }
    }
}

/// A validated `balancer:` section.
#[derive(Debug, Clone)]
pub struct BalancerConfig {
    /// Which balancer.
    pub kind: Product,
    /// Scalelite: the `/scalelite/api` base; b3scale: the base URL. Without a trailing slash.
    /// `None` only for Scalelite with `host`, which then is reached by rake alone.
    pub url: Option<String>,
    /// The resolved secret: Scalelite's `LOADBALANCER_SECRET` or b3scale's
    /// `B3SCALE_API_JWT_SECRET`. Never printed.
    pub secret: String,
    /// The inventory group of the BBB nodes (default `bbb`); checked to exist.
    pub group: String,
    /// Scalelite's inventory host, for rake over SSH; checked to exist. Never set for b3scale.
    pub host: Option<String>,
    /// Drains and upgrades never leave fewer nodes in service than this (default 1).
    pub min_in_service: usize,
    /// Seconds between meeting checks while draining (default 5, at least 0.05).
    pub poll_interval: f64,
    /// Seconds each HTTP request may take (default 10, at least 1).
    pub request_timeout: u64,
    /// Seconds a node may take to pass its health check after an apply (default 60).
    pub health_timeout: u64,
    /// Seconds an upgraded, enabled node may take until the balancer reports it in service
    /// (Scalelite: `online` after its next poll, every 60 s by default; b3scale: its node
    /// state `ready`); default 180. Until then the next batch counts it out of service.
    pub online_timeout: u64,
    /// The command that runs Scalelite's rake on `host` (default
    /// `docker exec -i scalelite-api bundle exec rake`).
    pub rake_command: String,
    /// The CA certificates the API's HTTPS certificate must chain to (`ca_file:`), read and
    /// checked at load; `None`: the built-in web roots.
    pub ca_file: Option<crate::http::CaFile>,
}

/// Validates the inventory's `balancer:`; `Ok(None)` when there is none.
///
/// # Errors
/// The first problem of the section, located at its key (or at the section when a key is
/// missing), with a hint where one helps.
pub fn load(inv: &Inventory) -> Result<Option<BalancerConfig>, Diagnostic> {
    let Some((value, line, col)) = &inv.balancer else {
        return Ok(None);
    };
    let Value::Object(map) = value else {
        return Err(inv.source.at(*line, *col, "balancer: expected a mapping with kind, url, secret").with_hint(
            "balancer:\n      kind: scalelite\n      url: https://lb.example.org/scalelite/api\n      secret: {secret: \"env:LOADBALANCER_SECRET\"}",
        ));
    };
    let s = Section {
        inv,
        map,
        positions: key_positions(inv)?,
        line: *line,
        col: *col,
    };
    let kind = s.kind()?;
    let host = s.host(kind)?;
    let url = s.url(kind, host.is_some())?;
    let secret = s.secret()?;
    let group = s.group()?;
    Ok(Some(BalancerConfig {
        kind,
        url,
        secret,
        group,
        host,
        min_in_service: usize::try_from(s.integer("min_in_service", 1, 0)?).unwrap_or(usize::MAX),
        poll_interval: s.number("poll_interval", 5.0, 0.05)?,
        request_timeout: s.integer("request_timeout", 10, 1)?,
        health_timeout: s.integer("health_timeout", 60, 0)?,
        online_timeout: s.integer("online_timeout", 180, 0)?,
        rake_command: s
            .string("rake_command")?
            .unwrap_or_else(|| "docker exec -i scalelite-api bundle exec rake".into()),
        ca_file: s.ca_file()?,
    }))
}

/// The `balancer:` mapping under validation (secrets already resolved), with where its
/// keys and the section itself are written.
struct Section<'a> {
    inv: &'a Inventory,
    map: &'a serde_json::Map<String, Value>,
    positions: HashMap<&'static str, (u64, u64)>,
    line: u64,
    col: u64,
}

impl Section<'_> {
    /// A diagnostic at `key` (at the section if the key is not written).
    fn at(&self, key: &str, msg: String) -> Diagnostic {
        let (l, c) = self
            .positions
            .get(key)
            .copied()
            .unwrap_or((self.line, self.col));
        self.inv.source.at(l, c, format!("balancer: {msg}"))
    }

    /// A diagnostic at the section (a key is missing).
    fn whole(&self, msg: &str) -> Diagnostic {
        self.inv
            .source
            .at(self.line, self.col, format!("balancer: {msg}"))
    }

    fn string(&self, key: &str) -> Result<Option<String>, Diagnostic> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
            Some(Value::String(_)) => Err(self.at(key, format!("`{key}` is empty"))),
            Some(other) => Err(self.at(
                key,
                format!("`{key}` must be a string, not {}", type_name(other)),
            )),
        }
    }

    fn number(&self, key: &str, default: f64, min: f64) -> Result<f64, Diagnostic> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) if n.as_f64().is_some_and(|v| v >= min) => {
                Ok(n.as_f64().unwrap_or(default))
            }
            Some(other) => Err(self.at(
                key,
                format!(
                    "`{key}` must be a number of at least {min}, not {}",
                    short(other)
                ),
            )),
        }
    }

    fn integer(&self, key: &str, default: u64, min: u64) -> Result<u64, Diagnostic> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v >= min) => {
                Ok(n.as_u64().unwrap_or(default))
            }
            Some(other) => Err(self.at(
                key,
                format!(
                    "`{key}` must be a whole number of at least {min}, not {}",
                    short(other)
                ),
            )),
        }
    }

    fn ca_file(&self) -> Result<Option<crate::http::CaFile>, Diagnostic> {
        let Some(name) = self.string("ca_file")? else {
            return Ok(None);
        };
        let path = crate::inventory::relative_to(self.inv, &name);
        crate::http::CaFile::read(&path).map(Some).map_err(|e| {
            self.at("ca_file", e).with_hint(
                "ca_file is a PEM file of the CA certificate(s) that issued the balancer's HTTPS certificate, relative to the inventory's folder",
            )
        })
    }

    fn kind(&self) -> Result<Product, Diagnostic> {
        match self.string("kind")?.as_deref() {
            Some("scalelite") => Ok(Product::Scalelite),
            Some("b3scale") => Ok(Product::B3scale),
            Some(other) => {
                let mut d = self.at("kind", format!("unknown kind `{other}`"));
                d.hint = Some(
                    did_you_mean(other, ["scalelite", "b3scale"])
                        .map_or("kind is scalelite or b3scale".into(), |s| {
                            format!("did you mean `{s}`?")
                        }),
                );
                Err(d)
            }
            None => Err(self
                .whole("`kind` is missing")
                .with_hint("add `kind: scalelite` or `kind: b3scale`")),
        }
    }

    fn host(&self, kind: Product) -> Result<Option<String>, Diagnostic> {
        let host = self.string("host")?;
        if let Some(h) = &host {
            if self.inv.host(h).is_none() {
                let mut d = self.at(
                    "host",
                    format!("`host: {h}` is not a host of this inventory"),
                );
                d.hint = did_you_mean(h, self.inv.hosts.iter().map(|h| h.name.as_str()))
                    .map(|s| format!("did you mean `{s}`?"));
                return Err(d);
            }
            if kind == Product::B3scale {
                return Err(self.at(
                    "host",
                    "`host` (rake over SSH) is for Scalelite only; b3scale is managed through its API"
                        .into(),
                ));
            }
        }
        Ok(host)
    }

    fn url(&self, kind: Product, has_host: bool) -> Result<Option<String>, Diagnostic> {
        let Some(u) = self.string("url")? else {
            return if kind == Product::Scalelite && has_host {
                Ok(None)
            } else {
                Err(self.whole("`url` is missing"))
            };
        };
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(self.at(
                "url",
                format!("`url` must start with http:// or https://, not `{u}`"),
            ));
        }
        let u = u.trim_end_matches('/').to_string();
        if kind == Product::Scalelite && !u.ends_with("/scalelite/api") {
            return Err(self.at("url", format!("`url` of Scalelite must be its server API base, ending in /scalelite/api (got `{u}`)"))
                .with_hint(format!("url: {}/scalelite/api", base_of(&u))));
        }
        if kind == Product::B3scale && u.ends_with("/api/v1") {
            return Err(self
                .at(
                    "url",
                    "`url` of b3scale is its base URL; rollout adds /api/v1 itself".into(),
                )
                .with_hint(format!("url: {}", u.trim_end_matches("/api/v1"))));
        }
        Ok(Some(u))
    }

    fn secret(&self) -> Result<String, Diagnostic> {
        match self.map.get("secret") {
            Some(Value::String(s)) if self.inv.secrets.contains_secret(s) => Ok(s.clone()),
            Some(Value::String(_)) => Err(self.at("secret", "`secret` must be a secret reference, not the secret itself".into())
                .with_hint("secret: {secret: \"env:LOADBALANCER_SECRET\"} or {secret: \"file:secrets/balancer\"}")),
            Some(other) => Err(self.at(
                "secret",
                format!(
                    "`secret` must be a secret reference, not {}",
                    type_name(other)
                ),
            )),
            None => Err(self
                .whole("`secret` is missing")
                .with_hint("secret: {secret: \"env:LOADBALANCER_SECRET\"}")),
        }
    }

    fn group(&self) -> Result<String, Diagnostic> {
        let group = self.string("group")?.unwrap_or_else(|| "bbb".into());
        match self.inv.groups.get(&group) {
            Some(members) if members.is_empty() => {
                let msg = format!(
                    "group `{group}` has no hosts: the balancer would have no BBB node to send \
                     a meeting to"
                );
                let mut d = match self.map.get("group") {
                    Some(_) => self.at("group", msg),
                    None => self.whole(&msg),
                };
                d.hint = Some(format!("add the BBB nodes to group `{group}`"));
                return Err(d);
            }
            Some(_) => return Ok(group),
            None => {}
        }
        let mut d = match self.map.get("group") {
            Some(_) => self.at(
                "group",
                format!("group `{group}` is not defined in this inventory"),
            ),
            None => self.whole("the BBB nodes' group `bbb` is not defined in this inventory"),
        };
        d.hint = Some(
            match did_you_mean(&group, self.inv.groups.keys().map(String::as_str)) {
                Some(s) => format!("did you mean `group: {s}`?"),
                None => "set `group:` to the group of the BBB nodes".into(),
            },
        );
        Err(d)
    }
}

fn base_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    url[after_scheme..]
        .find('/')
        .map_or(url, |i| &url[..after_scheme + i])
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("`{s}`"),
        other => type_name(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_of_keeps_scheme_and_host() {
        assert_eq!(
            base_of("https://lb.example.org/x/y"),
            "https://lb.example.org"
        );
    }
}
