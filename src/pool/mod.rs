//! Pool operations on the balancer and the BBB nodes: registration after `rollout apply`,
//! `rollout drain`/`undrain`, the rolling `rollout upgrade` and `rollout status`. Nodes are
//! the hosts of the balancer's group; their API URL, secret, load multiplier and tag come
//! from their rendered variables (`bbb_api_url`, `bbb_secret`, `bbb_load_multiplier`,
//! `bbb_balancer_tag`), exactly as the roles see them.

pub mod batch;
pub mod drain;
pub mod error;
pub mod health;
pub mod hold;
pub mod journal;
pub mod register;
pub mod rules;
pub mod services;
pub mod state;
pub mod status;
pub mod undrain;
pub mod upgrade;

use crate::app::{self, Prepared};
use crate::balancer::{self, BalancerConfig, Desired, Product};
use crate::bbb_api::Endpoint;
use crate::error::Diagnostic;
use crate::http::Http;
use crate::plan::HostPlan;
use error::PoolError;
use serde_json::{Map, Value};
use std::time::Duration;

/// Whether `host`'s balancer entry `server` is out of service by someone other than rollout
/// ([`rules::hands_off::owner`]); if so, records that in the journal (found so, now, unless
/// recorded already; the caller saves when this returns `Some((_, true))`) and returns the
/// words for it (`cordoned outside rollout (found so in the balancer 2026-12-06 21:50 UTC)`)
/// and whether the journal changed.
pub fn set_outside(
    journal: &mut journal::Journal,
    host: &str,
    server: &balancer::Server,
) -> Option<(String, bool)> {
    // A backend its node agent registered and nobody has admitted yet is rollout's to admit.
    if server.unadmitted {
        return None;
    }
    let rec = journal.nodes.get(host);
    let owner = rules::hands_off::owner(
        server.state,
        rec.and_then(|r| r.balancer.as_ref()),
        rec.is_some_and(|r| r.phase.holds_node()),
    );
    if owner != rules::hands_off::Owner::Person {
        return None;
    }
    let changed = journal.mark_found(host, server.state);
    let words = journal
        .nodes
        .get(host)
        .and_then(|r| r.balancer.as_ref())
        .map_or_else(|| server.state.to_string(), ToString::to_string);
    Some((words, changed))
}

/// `rollout drain`: which nodes (`run.limit` is required), how long to wait for their
/// meetings, and whether to end the meetings that are left.
#[derive(Debug, Clone)]
pub struct DrainOptions {
    pub run: app::Options,
    /// Stop waiting after this long; the node stays cordoned. None: wait as long as it takes.
    pub timeout: Option<Duration>,
    /// End the meetings that are left (at once, or when `timeout` expires).
    pub force: bool,
}

/// `rollout upgrade`.
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    pub run: app::Options,
    /// Nodes per batch, as given: `2`, `25%`, or growing `1,10%,50%,100%` (see [`batch`]).
    pub batch_size: String,
    /// Ask for confirmation before each batch after the first.
    pub pause: bool,
    /// Stop once more nodes than this have failed.
    pub max_failures: usize,
    /// Give up draining a node after this long (the node fails and stays cordoned).
    pub drain_timeout: Option<Duration>,
    /// End the meetings still running when `drain_timeout` expires.
    pub force: bool,
    /// Run the steps marked `stage: true` before the node is cordoned, while it still serves
    /// classes (`false`: `--no-stage`, they run with the rest after the drain).
    pub stage: bool,
    /// Which queued node goes next (`--order`).
    pub order: Order,
}

/// The order in which `rollout upgrade` takes the pool's nodes (`--order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Order {
    /// The node that drains fastest first, from each node's meetings before every batch
    /// ([`rules::order`]): empty nodes, then those whose meetings end soonest, then the
    /// smallest classes; nodes whose meetings cannot be read last.
    #[default]
    DrainFastest,
    /// The inventory's order, as Ansible's `serial` takes hosts: for a canary node that must
    /// go first, or a pool whose order matters for another reason. Nodes an interrupted run
    /// left out of service still go first.
    Inventory,
}

/// `90`, `90s`, `5m`, `2h`, `1h30m` (see [`crate::duration::parse`]).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::duration::parse(s).map_err(|e| e.to_string())
}

/// `1m20s`.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// `rollout {cmd}` works only on nodes the operator names.
///
/// Errors: no `--limit`.
fn need_limit(a: &app::Options, cmd: &str) -> Result<(), PoolError> {
    if a.limit.is_none() {
        return Err(PoolError::Usage(format!(
            "`rollout {cmd}` needs --limit HOSTS: name the nodes to {cmd}"
        )));
    }
    Ok(())
}

/// A BBB node of the pool: its host, API endpoint, desired balancer entry and plan.
#[derive(Clone)]
pub struct Node {
    pub host: String,
    pub endpoint: Endpoint,
    pub desired: Desired,
    pub plan: HostPlan,
    /// `bbb_akka_meetings_command`: a shell command run on the node (over its connection)
    /// that prints how many meetings akka-apps holds, the classes bbb-web's `getMeetings`
    /// may have forgotten (see [`drain::wait_empty`]); `None` when the variable is unset or
    /// empty (`getMeetings` alone is trusted).
    pub akka_meetings: Option<String>,
}

/// Everything a pool command needs, loaded and validated.
pub struct Pool {
    pub prepared: Prepared,
    pub cfg: BalancerConfig,
    /// The selected hosts that are in the balancer's group, in inventory order.
    pub nodes: Vec<Node>,
    pub http: Http,
    /// `-v`: retried balancer calls are told (see [`retry_notes`]).
    pub verbose: bool,
}

impl Pool {
    /// Loads inventory, roles and plans for `rollout {command}` (nothing is contacted).
    ///
    /// Errors: bad input as diagnostics, also when the inventory has no `balancer:` section
    /// or no selected host is in the balancer's group.
    pub fn load(
        run: &app::Options,
        run_vars: &Map<String, Value>,
        command: &str,
    ) -> Result<Pool, Vec<Diagnostic>> {
        let prepared = app::load(run, run_vars)?;
        let Some(cfg) = balancer::config::load(&prepared.inventory).map_err(|d| vec![d])? else {
            return Err(vec![Diagnostic::file(&run.inventory, format!("`rollout {command}` needs a `balancer:` section in the inventory")).with_hint(
                "balancer:\n      kind: scalelite\n      url: https://lb.example.org/scalelite/api\n      secret: {secret: \"env:LOADBALANCER_SECRET\"}",
            )]);
        };
        let nodes = nodes(&prepared, &cfg)?;
        if nodes.is_empty() {
            let which = run
                .limit
                .as_deref()
                .map_or(String::new(), |l| format!(" selected by --limit {l}"));
            return Err(vec![Diagnostic::file(
                &run.inventory,
                format!("no host{which} is in the balancer's group `{}`", cfg.group),
            )]);
        }
        Ok(Pool {
            verbose: run.verbose,
            http: Http::new(Duration::from_secs(cfg.request_timeout)),
            prepared,
            cfg,
            nodes,
        })
    }

    /// The inventory's secrets, for redacting what nodes and the balancer answer.
    pub fn secrets(&self) -> &crate::secret::Secrets {
        &self.prepared.inventory.secrets
    }

    /// Connects to the balancer and reads its server list.
    ///
    /// Errors: the balancer cannot be reached, refuses, or answers what we cannot read.
    pub async fn open(&self) -> balancer::Result<balancer::Opened> {
        balancer::open(
            &self.cfg,
            &self.prepared.inventory,
            self.prepared.connector.clone(),
            retry_notes(self.verbose),
        )
        .await
    }
}

/// Where a pool command tells of balancer calls it retries: with `-v`, a line on stderr
/// (`balancer: listing the servers: ...; retrying in 0.5 s`), redacted; else nowhere (a
/// retry that fails for good is reported as the call's error).
pub fn retry_notes(verbose: bool) -> balancer::retry::Notify {
    std::sync::Arc::new(move |note: String| {
        if verbose {
            let text = format!("balancer: {}", crate::secret::redact_known(&note));
            eprintln!("{text}");
            crate::log_file::lines(&text);
        }
    })
}

/// The planned hosts that belong to the balancer's group, with their balancer values.
pub fn nodes(p: &Prepared, cfg: &BalancerConfig) -> Result<Vec<Node>, Vec<Diagnostic>> {
    let members = p
        .inventory
        .groups
        .get(&cfg.group)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for plan in p.plans.iter().filter(|pl| members.contains(&pl.host.name)) {
        match node(plan, cfg.kind, &p.inventory) {
            Ok(n) => out.push(n),
            Err(m) => {
                let message = format!("host {}: {m}", plan.host.name);
                // At the variable where the inventory or `-e` set it (a role default or an
                // unset variable has no place of the inventory's).
                let at = p
                    .inventory
                    .var_at(&plan.host, m.variable(), (1, 1), message.clone());
                errors.push(at.unwrap_or_else(|| Diagnostic::file(&p.inventory.path, message)));
            }
        }
    }
    for (i, n) in out.iter().enumerate() {
        if let Some(first) = out[..i]
            .iter()
            .find(|m| balancer::same_url(&m.desired.url, &n.desired.url))
        {
            errors.push(Diagnostic::file(
                &p.inventory.path,
                format!("hosts {} and {} have the same bbb_api_url `{}`; the balancer tells nodes apart by it", first.host, n.host, n.desired.url),
            ));
        }
    }
    // b3scale: each node's agent reports to the b3scale the pool registers it with; an agent
    // pointed elsewhere never sends the heartbeat that makes the node routable.
    if let (Product::B3scale, Some(url)) = (cfg.kind, cfg.url.as_deref()) {
        for n in &out {
            let agent = match n.plan.vars.get("b3scale_api_url") {
                Some(Value::String(s)) if !s.trim().is_empty() => s.trim(),
                _ => continue,
            };
            if !balancer::same_url(agent, url) {
                let message = format!(
                    "host {}: b3scale_api_url `{agent}` is not the balancer's url `{url}`: the \
                     node's agent would send its heartbeats to another b3scale, and this one \
                     would never route a meeting to the node",
                    n.host
                );
                let at =
                    p.inventory
                        .var_at(&n.plan.host, "b3scale_api_url", (1, 1), message.clone());
                errors.push(at.unwrap_or_else(|| Diagnostic::file(&p.inventory.path, message)));
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Why a node's balancer variables cannot be used (bad input, located at the inventory).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NodeVarError {
    #[error("`{0}` must be a string")]
    NotString(&'static str),
    #[error("`bbb_api_url` is not set (the bbb role sets it from bbb_hostname)")]
    NoApiUrl,
    #[error("`bbb_api_url` must be http(s)://HOST/bigbluebutton/api, not `{0}`")]
    BadApiUrl(String),
    #[error("`bbb_secret` is not set (the node's BBB API secret)")]
    NoSecret,
    #[error("`bbb_load_multiplier` must be a number, not `{0}`")]
    MultiplierText(String),
    #[error("`bbb_load_multiplier` must be a number")]
    MultiplierType,
    #[error("`bbb_load_multiplier` must be greater than 0")]
    MultiplierNotPositive,
    /// `bbb_api_ca_file` cannot be used; the text names the file and why.
    #[error("`bbb_api_ca_file`: {0}")]
    CaFile(String),
}

impl NodeVarError {
    /// The variable at fault.
    pub fn variable(&self) -> &'static str {
        match self {
            NodeVarError::NotString(name) => name,
            NodeVarError::NoApiUrl | NodeVarError::BadApiUrl(_) => "bbb_api_url",
            NodeVarError::NoSecret => "bbb_secret",
            NodeVarError::MultiplierText(_)
            | NodeVarError::MultiplierType
            | NodeVarError::MultiplierNotPositive => "bbb_load_multiplier",
            NodeVarError::CaFile(_) => "bbb_api_ca_file",
        }
    }
}

/// A planned host as a node: its balancer values from its rendered variables.
///
/// Errors: a variable missing or of the wrong form.
fn node(
    plan: &HostPlan,
    kind: Product,
    inv: &crate::inventory::Inventory,
) -> Result<Node, NodeVarError> {
    let v = &plan.vars;
    let url = match v.get("bbb_api_url") {
        Some(Value::String(s)) => s.trim().trim_end_matches('/').to_string(),
        Some(_) => return Err(NodeVarError::NotString("bbb_api_url")),
        None => return Err(NodeVarError::NoApiUrl),
    };
    if !(url.starts_with("http://") || url.starts_with("https://"))
        || !url.ends_with("/bigbluebutton/api")
    {
        return Err(NodeVarError::BadApiUrl(url));
    }
    let secret = match v.get("bbb_secret") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) | None => return Err(NodeVarError::NoSecret),
        Some(_) => return Err(NodeVarError::NotString("bbb_secret")),
    };
    let load_multiplier = match v.get("bbb_load_multiplier") {
        None | Some(Value::Null) => 1.0,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(1.0),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| NodeVarError::MultiplierText(s.clone()))?,
        Some(_) => return Err(NodeVarError::MultiplierType),
    };
    if load_multiplier <= 0.0 {
        return Err(NodeVarError::MultiplierNotPositive);
    }
    let tag = match v.get("bbb_balancer_tag") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => return Err(NodeVarError::NotString("bbb_balancer_tag")),
    };
    // b3scale keeps a list of tags; compare in its normal form.
    let tag = if kind == Product::B3scale {
        tag.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(",")
    } else {
        tag
    };
    // The CA of the node's HTTPS certificate, read now so that a missing file is an error
    // before anything is contacted.
    let ca = match v.get("bbb_api_ca_file") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(
            crate::http::CaFile::read(&crate::inventory::relative_to(inv, s.trim()))
                .map_err(NodeVarError::CaFile)?,
        ),
        Some(_) => return Err(NodeVarError::NotString("bbb_api_ca_file")),
    };
    let akka_meetings = match v.get("bbb_akka_meetings_command") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(_) => return Err(NodeVarError::NotString("bbb_akka_meetings_command")),
    };
    Ok(Node {
        host: plan.host.name.clone(),
        endpoint: Endpoint::new(&url, &secret).with_ca(ca),
        desired: Desired {
            url,
            secret,
            load_multiplier,
            tag,
        },
        plan: plan.clone(),
        akka_meetings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("5d").is_err());
        assert_eq!(human(Duration::from_secs(80)), "1m20s");
    }
}
