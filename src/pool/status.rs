//! `rollout status`: one table for the pool, like Scalelite's `rake status`: per node its
//! balancer state, whether the balancer sees it online, meetings and participants (asked
//! from the node's own API), BBB version and last completed upgrade, plus a note for any
//! node a rollout left out of service. `--output json` prints the same as one object.

use super::journal::{Journal, format_time};
use super::{Pool, PoolArgs, print_error, probe};
use crate::balancer::{Server, find};
use crate::bbb_api::participants;
use crate::error::{EXIT_FAILED, EXIT_INPUT};
use crate::report::Format;
use serde::Serialize;

/// One row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub host: String,
    /// enabled, cordoned, disabled, unregistered, or unknown (balancer unreachable).
    pub state: String,
    pub online: Option<bool>,
    pub meetings: Option<usize>,
    pub participants: Option<u64>,
    pub bbb_version: Option<String>,
    /// Unix seconds of the last completed upgrade.
    pub last_rollout: Option<u64>,
    pub note: Option<String>,
}

pub async fn main(a: PoolArgs) -> i32 {
    let pool = match Pool::load(&a.run, &Default::default(), "status") {
        Ok(p) => p,
        Err(ds) => {
            crate::cli::print_diagnostics(&ds);
            return EXIT_INPUT;
        }
    };
    let fmt = a.run.output;
    let journal = Journal::load(&a.run.inventory).unwrap_or_else(|e| {
        print_error(fmt, &e);
        Journal::default()
    });
    let (servers, balancer_error, describe) = match pool.open().await {
        Ok(o) => (Some(o.servers), None, o.client.describe()),
        Err(e) => (None, Some(e.to_string()), String::new()),
    };
    let mut probes = tokio::task::JoinSet::new();
    for (i, node) in pool.nodes.iter().enumerate() {
        let (http, node) = (pool.http.clone(), node.clone());
        probes.spawn(async move { (i, probe(&http, &node).await) });
    }
    let mut health = vec![None; pool.nodes.len()];
    while let Some(Ok((i, h))) = probes.join_next().await {
        health[i] = Some(h);
    }
    let mut rows = Vec::new();
    for (node, h) in pool.nodes.iter().zip(health) {
        let server: Option<&Server> = servers.as_deref().and_then(|s| find(s, &node.desired.url));
        let rec = journal.nodes.get(&node.host);
        let mut notes = Vec::new();
        if let Some(r) = rec.filter(|r| r.phase.holds_node()) {
            let open_run = journal
                .open_run()
                .is_some_and(|run| r.run.as_deref() == Some(run.id.as_str()));
            let since = format_time(r.since);
            notes.push(match (r.by.as_str(), r.phase.name()) {
                ("upgrade", p) if open_run => format!(
                    "left out of service by an interrupted upgrade ({p}) since {since}; `rollout upgrade` resumes it"
                ),
                ("upgrade", p) => format!("left out of service by an upgrade ({p}) since {since}"),
                (_, "drained") => format!(
                    "drained by `rollout drain` since {since}; `rollout undrain` puts it back"
                ),
                (by, p) => format!("{p} by `rollout {by}` since {since}"),
            });
            if let Some(reason) = &r.reason {
                notes.push(reason.clone());
            }
        }
        let (meetings, parts, version) = match &h {
            Some(Ok(h)) => (
                Some(h.meetings.len()),
                Some(participants(&h.meetings)),
                h.version.clone(),
            ),
            Some(Err(e)) => {
                notes.push(pool.secrets().redact(&e.to_string()));
                (None, None, None)
            }
            None => (None, None, None),
        };
        rows.push(Row {
            host: node.host.clone(),
            state: match (&servers, server) {
                (None, _) => "unknown".into(),
                (Some(_), None) => "unregistered".into(),
                (Some(_), Some(s)) => s.state.to_string(),
            },
            online: server.and_then(|s| s.online),
            meetings: meetings.or(server.and_then(|s| s.meetings.map(|m| m as usize))),
            participants: parts.or(server.and_then(|s| s.participants)),
            bbb_version: server.and_then(|s| s.bbb_version.clone()).or(version),
            last_rollout: rec.and_then(|r| r.last_rollout),
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        });
    }
    // Servers the balancer has that no selected node accounts for (all of them without --limit).
    if a.run.limit.is_none()
        && let Some(servers) = &servers
    {
        for s in servers.iter().filter(|s| {
            !pool
                .nodes
                .iter()
                .any(|n| crate::balancer::same_url(&n.desired.url, &s.url))
        }) {
            rows.push(Row {
                host: format!("({})", host_of(&s.url)),
                state: s.state.to_string(),
                online: s.online,
                meetings: s.meetings.map(|m| m as usize),
                participants: s.participants,
                bbb_version: s.bbb_version.clone(),
                last_rollout: None,
                note: Some("in the balancer but not in the inventory".into()),
            });
        }
    }
    if fmt == Format::Json {
        println!(
            "{}",
            serde_json::json!({"event": "status", "balancer": describe, "error": balancer_error, "upgrade_run": journal.open_run().map(|r| &r.id), "nodes": rows})
        );
    } else {
        if let Some(e) = &balancer_error {
            eprintln!("error: {e}");
        }
        if let Some(r) = journal.open_run() {
            println!(
                "an upgrade started {} has not finished; `rollout upgrade` resumes it",
                format_time(r.started)
            );
        }
        print!("{}", table(&rows));
    }
    if balancer_error.is_some() {
        EXIT_FAILED
    } else {
        0
    }
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// The table as printed.
pub fn table(rows: &[Row]) -> String {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.host.clone(),
                r.state.clone(),
                opt(r
                    .online
                    .map(|o| if o { "online".into() } else { "offline".into() })),
                opt(r.meetings.map(|m| m.to_string())),
                opt(r.participants.map(|p| p.to_string())),
                opt(r.bbb_version.clone()),
                opt(r.last_rollout.map(format_time)),
                r.note.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let head = [
        "HOST",
        "STATE",
        "ONLINE",
        "MEETINGS",
        "PARTICIPANTS",
        "VERSION",
        "LAST ROLLOUT",
        "NOTE",
    ];
    let mut w = head.map(str::len);
    for c in &cells {
        for (i, v) in c.iter().enumerate() {
            w[i] = w[i].max(v.chars().count());
        }
    }
    let line = |c: &[String]| {
        let mut s = String::new();
        for (i, v) in c.iter().enumerate() {
            if i == 7 {
                s.push_str(v);
            } else if (3..=4).contains(&i) {
                s.push_str(&format!("{v:>width$}  ", width = w[i]));
            } else {
                s.push_str(&format!("{v:<width$}  ", width = w[i]));
            }
        }
        format!("{}\n", s.trim_end())
    };
    let mut out = line(&head.map(String::from));
    for c in &cells {
        out.push_str(&line(c));
    }
    out
}
