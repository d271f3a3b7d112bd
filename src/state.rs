//! Where a pool's lock and journal live: the inventory's `state:` section, validated before
//! anything runs.
//!
//! ```yaml
//! state:
//!   backend: postgresql                     # or local (the default without the section)
//!   url: {secret: "env:ROLLOUT_STATE_URL"}  # postgresql://USER:PASSWORD@HOST/DB?sslmode=require
//!   pool: bbb-berlin                        # the pool's name in the database (default: the
//!                                           # inventory file's name without .yml)
//! ```
//!
//! `local` keeps them on the controller ([`crate::pool::journal`]: a kernel file lock and a JSON
//! file). `postgresql` keeps them in a PostgreSQL database shared by every controller of a
//! team ([`crate::pool::state::postgres`]): a session-level advisory lock per pool and the journal in tables.
//! The URL is a secret (it carries the password): a plain string is refused, and neither the
//! URL nor its password is ever printed, errors included.

use crate::error::{Diagnostic, did_you_mean};
use crate::inventory::Inventory;
use postgres::config::{Host, SslMode};
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;
use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The keys of `state:`, in the order of [`Key`].
const KEYS: &[&str] = &["backend", "url", "pool"];

/// A key of `state:`; any other key is the YAML parser's error at its own line:column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Key {
    Backend,
    Url,
    Pool,
}

/// The inventory file as far as the `state:` keys go.
#[derive(Deserialize)]
struct StateKeys {
    #[serde(default)]
    state: Option<indexmap::IndexMap<Spanned<Key>, serde::de::IgnoredAny>>,
}

/// The state backend of an inventory's pool.
#[derive(Clone)]
pub enum Backend {
    /// On this controller, under the state folder, keyed by the inventory's path.
    Local {
        /// The inventory file.
        inventory: PathBuf,
    },
    /// In a PostgreSQL database.
    Postgres(Box<Settings>),
}

impl std::fmt::Debug for Backend {
    // Never the URL: it carries the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Local { inventory } => write!(f, "Local({})", inventory.display()),
            Backend::Postgres(s) => write!(f, "Postgres(pool {})", s.pool),
        }
    }
}

impl Backend {
    /// The local backend of `inventory` (no `state:` section).
    pub fn local(inventory: &std::path::Path) -> Backend {
        Backend::Local {
            inventory: inventory.to_path_buf(),
        }
    }

    /// Validates the inventory's `state:`; the local backend when there is none.
    ///
    /// # Errors
    /// The first problem of the section, located at its key (or at the section when a key
    /// is missing), with a hint where one helps. Never shows the URL.
    pub fn load(inv: &Inventory) -> Result<Backend, Diagnostic> {
        let Some((value, line, col)) = &inv.state else {
            return Ok(Backend::local(&inv.path));
        };
        let hint =
            "state:\n      backend: postgresql\n      url: {secret: \"env:ROLLOUT_STATE_URL\"}";
        let Value::Object(map) = value else {
            return Err(inv
                .source
                .at(
                    *line,
                    *col,
                    "state: expected a mapping with backend and url",
                )
                .with_hint(hint));
        };
        let keys: StateKeys = inv.source.parse_typed().map_err(|e| {
            let (l, c) = e
                .location()
                .map_or((*line, *col), |l| (l.line(), l.column()));
            let word = match crate::yaml::original(&e) {
                serde_saphyr::Error::SerdeUnknownVariant { variant, .. } => variant.clone(),
                other => other.to_string(),
            };
            let d = inv.source.at(l, c, format!("state: unknown key `{word}`"));
            d.with_hint(match did_you_mean(&word, KEYS.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("known keys: {}", KEYS.join(", ")),
            })
        })?;
        let positions: HashMap<Key, (u64, u64)> = keys
            .state
            .unwrap_or_default()
            .into_keys()
            .map(|k| (k.value, (k.referenced.line(), k.referenced.column())))
            .collect();
        let at = |key: Key, msg: String| {
            let (l, c) = positions.get(&key).copied().unwrap_or((*line, *col));
            inv.source.at(l, c, format!("state: {msg}"))
        };
        let backend = match map.get("backend") {
            None | Some(Value::Null) => {
                return Err(inv
                    .source
                    .at(*line, *col, "state: `backend` is missing")
                    .with_hint("backend: local or backend: postgresql"));
            }
            Some(Value::String(s)) => s.trim().to_string(),
            Some(_) => {
                return Err(at(
                    Key::Backend,
                    "`backend` must be local or postgresql".into(),
                ));
            }
        };
        match backend.as_str() {
            "local" => {
                for k in [Key::Url, Key::Pool] {
                    if positions.contains_key(&k) {
                        return Err(at(
                            k,
                            format!(
                                "`{}` is for `backend: postgresql`; the local backend has none",
                                KEYS[k as usize]
                            ),
                        ));
                    }
                }
                Ok(Backend::local(&inv.path))
            }
            "postgresql" => {
                let url = match map.get("url") {
                    Some(Value::String(s)) if inv.secrets.contains_secret(s) => s.clone(),
                    Some(Value::String(_)) => {
                        return Err(at(
                            Key::Url,
                            "`url` must be a secret reference, not the URL itself (it carries the database password)".into(),
                        )
                        .with_hint("url: {secret: \"env:ROLLOUT_STATE_URL\"} or {secret: \"file:secrets/state-url\"}"));
                    }
                    Some(_) => {
                        return Err(at(Key::Url, "`url` must be a secret reference".into())
                            .with_hint("url: {secret: \"env:ROLLOUT_STATE_URL\"}"));
                    }
                    None => {
                        return Err(inv
                            .source
                            .at(*line, *col, "state: `url` is missing")
                            .with_hint("url: {secret: \"env:ROLLOUT_STATE_URL\"}"));
                    }
                };
                let pool = match map.get("pool") {
                    None | Some(Value::Null) => inv
                        .path
                        .file_stem()
                        .map_or_else(|| "pool".into(), |s| s.to_string_lossy().into_owned()),
                    Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
                    Some(_) => {
                        return Err(at(Key::Pool, "`pool` must be a non-empty name".into()));
                    }
                };
                let settings =
                    Settings::parse(&url, pool).map_err(|e| at(Key::Url, format!("`url`: {e}")))?;
                // Its password may show up alone (a driver's message): redact it too.
                inv.secrets.add_derived(settings.password_spellings());
                Ok(Backend::Postgres(Box::new(settings)))
            }
            other => {
                let d = at(Key::Backend, format!("unknown backend `{other}`"));
                Err(
                    d.with_hint(did_you_mean(other, ["local", "postgresql"]).map_or_else(
                        || "backend is local or postgresql".into(),
                        |s| format!("did you mean `{s}`?"),
                    )),
                )
            }
        }
    }
}

/// A validated `state:` of `backend: postgresql`.
#[derive(Clone)]
pub struct Settings {
    /// The client's connection settings (the URL, read).
    pub(crate) config: postgres::Config,
    /// Whether the connection uses TLS.
    pub(crate) tls: bool,
    /// The pool's name in the database.
    pub pool: String,
}

impl Settings {
    /// Reads the connection URL (`postgresql://...` or `key=value ...`, as libpq) of pool
    /// `pool`.
    ///
    /// # Errors
    /// Not a URL the client can use, no host, or a TCP host without `sslmode`; the text
    /// never repeats the URL.
    pub fn parse(url: &str, pool: String) -> Result<Settings, String> {
        let mut config = postgres::Config::from_str(url).map_err(|_| {
            "not a PostgreSQL connection URL (postgresql://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require, or host=/run/postgresql user=... for a Unix socket)".to_string()
        })?;
        if config.get_hosts().is_empty() {
            return Err("names no host (postgresql://USER@HOST/DATABASE, or `host=/run/postgresql` for a Unix socket)".into());
        }
        let all_sockets = config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, Host::Unix(_)));
        let tls = match config.get_ssl_mode() {
            SslMode::Disable => false,
            SslMode::Require => true,
            // `prefer` (also the default): silently without TLS when the server has none.
            _ if all_sockets => false,
            _ => return Err("says neither sslmode=require (TLS, the server's certificate verified) nor sslmode=disable (no TLS: a trusted network only) for a TCP host".into()),
        };
        if config.get_user().is_none() {
            return Err("names no user (postgresql://USER@HOST/DATABASE)".into());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("rollout");
        }
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        Ok(Settings { config, tls, pool })
    }

    /// The password, in the spellings it may show up in (for redaction); none without one.
    pub fn password_spellings(&self) -> Vec<String> {
        self.config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .filter(|p| p.len() >= 4)
            .map(|p| crate::secret::spellings(&p))
            .unwrap_or_default()
    }

    /// The advisory lock key of the pool: the first 8 bytes of SHA-256 of
    /// `rollout pool NAME`, as a signed 64-bit number.
    pub fn key(&self) -> i64 {
        pool_key(&self.pool)
    }
}

/// See [`Settings::key`].
pub fn pool_key(pool: &str) -> i64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(format!("rollout pool {pool}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    i64::from_be_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_enum_variants_in_the_order_of_keys() {
        assert_eq!(KEYS[Key::Backend as usize], "backend");
        assert_eq!(KEYS[Key::Url as usize], "url");
        assert_eq!(KEYS[Key::Pool as usize], "pool");
    }
}
