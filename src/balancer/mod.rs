//! The load balancer a pool's BBB nodes register with: Scalelite (its server API, or rake on
//! its host over SSH when the API cannot be reached from the controller) or b3scale (its REST
//! API). Each speaks its own protocol; the pool code sees one [`Balancer`] with three states
//! (`enabled`, `cordoned`: no new meetings while running ones continue, `disabled`).
//!
//! Rules every client keeps: the first call of a command is a read (so a wrong secret or a
//! down balancer is an error before anything changes); secrets and checksums never appear in
//! a message; a loaded server is never disabled (that ends or cuts off its meetings).

pub mod b3scale;
pub mod config;
pub mod rake;
pub mod retry;
pub mod scalelite;
mod server;

/// The HTTP client moved down to [`crate::http`] (the BBB API uses it too); this path stays
/// for callers not yet moved.
pub use crate::http;
pub use config::{BalancerConfig, Product};
pub use server::{Desired, Server, State, find, same_url};

use crate::connection::BoxFuture;
use std::sync::Arc;

/// What kind of failure, for callers that react differently (fallback to rake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Nothing answered.
    Unreachable,
    /// Something answered "not now": HTTP 429, 502, 503 or 504 (the balancer restarting, or
    /// the proxy before it). Retried (see [`retry`]).
    Unavailable,
    /// Wrong secret or token.
    Auth,
    /// An answer we cannot read.
    Malformed,
    /// The balancer said no to this request.
    Refused,
}

/// A balancer failure, its message ready for the operator (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BalancerError {
    /// What kind of failure, for callers that react to it.
    pub kind: ErrorKind,
    /// The whole text shown to the operator, naming the balancer; never a secret.
    pub message: String,
}

impl BalancerError {
    /// An error of `kind` with `message` as its whole text.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        BalancerError {
            kind,
            message: message.into(),
        }
    }
}

/// The result of every balancer call.
pub type Result<T> = std::result::Result<T, BalancerError>;

/// A blocking client (the HTTP ones); [`Blocking`] runs it on tokio's blocking pool.
///
/// Each method does and fails as [`Balancer`]'s of the same name, on the calling thread,
/// blocking up to the HTTP client's timeout per request.
pub trait SyncBalancer: Send + Sync + 'static {
    /// See [`Balancer::describe`].
    fn describe(&self) -> String;
    /// See [`Balancer::list`].
    fn list(&self) -> Result<Vec<Server>>;
    /// Adds a server out of service (Scalelite: disabled; b3scale: stopped).
    fn add(&self, d: &Desired) -> Result<Server>;
    /// Brings secret, load multiplier and tag to `d`.
    fn update(&self, s: &Server, d: &Desired) -> Result<Server>;
    /// See [`Balancer::set_state`].
    fn set_state(&self, s: &Server, to: State) -> Result<Server>;
    /// See [`Balancer::routable`]; by default at once `Ok`.
    fn routable(&self, _s: &Server) -> Result<()> {
        Ok(())
    }
}

/// The interface the pool code uses.
///
/// Every method's error is a [`BalancerError`]: [`ErrorKind::Unreachable`] when nothing
/// answered, [`ErrorKind::Auth`] for a wrong secret, [`ErrorKind::Malformed`] for an answer
/// that cannot be read, [`ErrorKind::Refused`] when the balancer (or rollout's own guard)
/// said no.
pub trait Balancer: Send + Sync {
    /// `Scalelite at https://lb.example.org/scalelite/api`, for messages.
    fn describe(&self) -> String;
    /// Every server the balancer knows, in its order. Read-only.
    ///
    /// # Errors
    /// See the trait.
    fn list(&self) -> BoxFuture<'_, Result<Vec<Server>>>;
    /// Registers the node `d` out of service (Scalelite: disabled; b3scale: stopped) and
    /// returns it as the balancer now knows it.
    ///
    /// # Errors
    /// See the trait; rake also refuses an id already taken by another URL, and a tag with a
    /// comma or bracket.
    fn add<'a>(&'a self, d: &'a Desired) -> BoxFuture<'a, Result<Server>>;
    /// Brings `s`'s secret, load multiplier and tag to `d`'s (its URL and state stay) and
    /// returns it as the balancer now knows it.
    ///
    /// # Errors
    /// See the trait; rake also refuses a tag with a comma or bracket.
    fn update<'a>(&'a self, s: &'a Server, d: &'a Desired) -> BoxFuture<'a, Result<Server>>;
    /// Moves `s` to state `to` and returns it as the balancer now knows it. b3scale has no
    /// separate disabled state: `Disabled` stops the backend like `Cordoned`.
    ///
    /// # Errors
    /// See the trait; Scalelite (API and rake) refuses `Disabled` while `s` carries load.
    fn set_state<'a>(&'a self, s: &'a Server, to: State) -> BoxFuture<'a, Result<Server>>;
    /// Waits, bounded by the client's own timeout, until the balancer would send a new
    /// meeting to the enabled server `s`. b3scale routes only to backends whose node agent
    /// (tied to the backend by its token's ref) sent a heartbeat in the last 5 s; Scalelite
    /// and rake have no such condition and answer at once.
    ///
    /// # Errors
    /// [`ErrorKind::Refused`] naming why the balancer would not route to `s` (no agent, no
    /// recent heartbeat, its node or admin state), or the error of a call.
    fn routable<'a>(&'a self, _s: &'a Server) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Adapts a blocking client to [`Balancer`] by running each call on tokio's blocking pool.
/// A call whose blocking task panics or is cancelled fails as [`ErrorKind::Unreachable`].
pub struct Blocking<T: SyncBalancer>(pub Arc<T>);

async fn blocking<T: SyncBalancer, R: Send + 'static>(
    c: &Arc<T>,
    f: impl FnOnce(&T) -> Result<R> + Send + 'static,
) -> Result<R> {
    let c = c.clone();
    tokio::task::spawn_blocking(move || f(&c))
        .await
        .unwrap_or_else(|e| {
            Err(BalancerError::new(
                ErrorKind::Unreachable,
                format!("balancer call aborted: {e}"),
            ))
        })
}

impl<T: SyncBalancer> Balancer for Blocking<T> {
    fn describe(&self) -> String {
        self.0.describe()
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<Server>>> {
        Box::pin(blocking(&self.0, |c| c.list()))
    }
    fn add<'a>(&'a self, d: &'a Desired) -> BoxFuture<'a, Result<Server>> {
        let d = d.clone();
        Box::pin(blocking(&self.0, move |c| c.add(&d)))
    }
    fn update<'a>(&'a self, s: &'a Server, d: &'a Desired) -> BoxFuture<'a, Result<Server>> {
        let (s, d) = (s.clone(), d.clone());
        Box::pin(blocking(&self.0, move |c| c.update(&s, &d)))
    }
    fn set_state<'a>(&'a self, s: &'a Server, to: State) -> BoxFuture<'a, Result<Server>> {
        let s = s.clone();
        Box::pin(blocking(&self.0, move |c| c.set_state(&s, to)))
    }
    fn routable<'a>(&'a self, s: &'a Server) -> BoxFuture<'a, Result<()>> {
        let s = s.clone();
        Box::pin(blocking(&self.0, move |c| c.routable(&s)))
    }
}

/// An open balancer: the client, the servers its first (read-only) call found, and a note
/// when rollout fell back to rake over SSH.
pub struct Opened {
    /// The client every later call of the command goes through.
    pub client: Arc<dyn Balancer>,
    /// What [`Balancer::list`] answered when the balancer was opened.
    pub servers: Vec<Server>,
    /// Why rake is used instead of the API (the API's error), for the operator; `None` when
    /// the configured client answered.
    pub note: Option<String>,
}

/// Connects: reads the server list first, so errors surface before any change. For
/// Scalelite with `host:`, an unreachable API falls back to rake on that host. Each HTTP
/// request may take up to `cfg.request_timeout` seconds; every client retries transient
/// faults as [`retry::Policy::default`] says, telling `notify` of each retry.
///
/// # Errors
/// The first list call's error (after its retries); for a fallback, the API's error and
/// rake's together.
pub async fn open(
    cfg: &BalancerConfig,
    inv: &crate::inventory::Inventory,
    ssh: Arc<dyn crate::connection::Connector>,
    notify: retry::Notify,
) -> Result<Opened> {
    let http = http::Http::with_ca(
        std::time::Duration::from_secs(cfg.request_timeout),
        cfg.ca_file.clone(),
        "balancer: ca_file",
    );
    let retrying = |inner: Arc<dyn Balancer>| -> Arc<dyn Balancer> {
        Arc::new(retry::Retrying::new(
            inner,
            retry::Policy::default(),
            notify.clone(),
        ))
    };
    let api: Option<Arc<dyn Balancer>> = match (cfg.kind, &cfg.url) {
        (Product::Scalelite, Some(url)) => Some(retrying(Arc::new(Blocking(Arc::new(
            scalelite::Scalelite::new(url, &cfg.secret, http),
        ))))),
        (Product::B3scale, Some(url)) => Some(retrying(Arc::new(Blocking(Arc::new(
            b3scale::B3scale::new(url, &cfg.secret, http).with_wait(
                std::time::Duration::from_secs(cfg.health_timeout),
                std::time::Duration::from_secs_f64(cfg.poll_interval),
            ),
        ))))),
        (_, None) => None,
    };
    let rake_client = || -> Option<Arc<dyn Balancer>> {
        let host = inv.host(cfg.host.as_deref()?)?.clone();
        Some(retrying(Arc::new(rake::Rake::new(
            host,
            cfg.rake_command.clone(),
            ssh.clone(),
            inv.secrets.clone(),
        ))))
    };
    let err = match &api {
        Some(client) => match client.list().await {
            Ok(servers) => {
                return Ok(Opened {
                    client: client.clone(),
                    servers,
                    note: None,
                });
            }
            Err(e) => e,
        },
        None => {
            let client = rake_client().expect("config validation requires url or host");
            let servers = client.list().await?;
            return Ok(Opened {
                client,
                servers,
                note: None,
            });
        }
    };
    if err.kind != ErrorKind::Unreachable || cfg.kind != Product::Scalelite {
        return Err(err);
    }
    let Some(client) = rake_client() else {
        return Err(err);
    };
    let note = format!(
        "{err}; using rake on {} over SSH instead",
        cfg.host.as_deref().unwrap_or_default()
    );
    let servers = client.list().await.map_err(|e| {
        BalancerError::new(e.kind, format!("{err}; the rake fallback failed too: {e}"))
    })?;
    Ok(Opened {
        client,
        servers,
        note: Some(note),
    })
}
