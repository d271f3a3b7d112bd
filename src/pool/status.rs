//! `rollout status`: one table for the pool, like Scalelite's `rake status`: per node its
//! balancer state, whether the balancer sees it online, meetings and participants (asked
//! from the node's own API), BBB version and last completed upgrade, plus a note for any
//! node a rollout left out of service. `--output json` prints the same as one object.

use super::error::PoolError;
use super::health::probe;
use super::journal::{Journal, NodeRecord, format_time};
use super::{Node, Pool, rules};
use crate::app;
use crate::balancer::{Server, find};
use crate::bbb_api::{BbbError, Health, participants};
use crate::report::status::{Row, StatusSummary};
use crate::report::summary;

/// `rollout status`: asks the balancer and every node, reads the journal, changes nothing.
///
/// Errors: bad input only. An unreachable balancer is in the summary (and fails the
/// command); an unreadable journal is shown as an error and the table is shown without it.
pub async fn main(a: &app::Options) -> Result<StatusSummary, PoolError> {
    let pool = Pool::load(a, &Default::default(), "status")?;
    let journal = Journal::load(&pool.prepared.state).unwrap_or_else(|e| {
        summary::error(a.output, &e.to_string());
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
        rows.push(row(&pool, &journal, node, servers.is_some(), server, h));
    }
    // Servers the balancer has that no selected node accounts for (all of them without --limit).
    if a.limit.is_none()
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
                set_by: None,
                online: s.online,
                meetings: s.meetings.map(|m| m as usize),
                participants: s.participants,
                bbb_version: s.bbb_version.clone(),
                last_rollout: None,
                last_rollout_text: None,
                note: Some("in the balancer but not in the inventory".into()),
            });
        }
    }
    let open_run = journal.open_run();
    Ok(StatusSummary {
        balancer: describe,
        error: balancer_error,
        upgrade_run: open_run.map(|r| r.id.clone()),
        upgrade_started: open_run.map(|r| format_time(r.started)),
        nodes: rows,
    })
}

/// Why rollout holds a node out of service, from its journal record.
fn held_note(journal: &Journal, r: &NodeRecord) -> String {
    let open_run = journal
        .open_run()
        .is_some_and(|run| r.run.as_deref() == Some(run.id.as_str()));
    let since = format_time(r.since);
    match (r.by.as_str(), r.phase.name()) {
        ("upgrade", p) if open_run => format!(
            "left out of service by an interrupted upgrade ({p}) since {since}; `rollout upgrade` resumes it"
        ),
        ("upgrade", p) => format!("left out of service by an upgrade ({p}) since {since}"),
        (_, "drained") => {
            format!("drained by `rollout drain` since {since}; `rollout undrain` puts it back")
        }
        (by, p) => format!("{p} by `rollout {by}` since {since}"),
    }
}

/// What `rollout apply` held back on a node and still owes it.
pub fn owed_note(r: &NodeRecord) -> String {
    let names: Vec<String> = r
        .owed
        .iter()
        .map(|o| format!("{}: {}", o.role, o.handler))
        .collect();
    let since = r.owed.iter().map(|o| o.since).min().unwrap_or(r.since);
    let reason = r.owed.first().map_or("", |o| o.reason.as_str());
    format!(
        "restart pending since {} (held: {reason}): {}; the next `rollout apply` runs it once the node is free (`--drain` drains it, `--force` ends its meetings)",
        format_time(since),
        names.join(", ")
    )
}

/// A node's row: the balancer's view (`reached`: the balancer answered; `server`: its entry),
/// the node's own API (`h`), and the journal.
fn row(
    pool: &Pool,
    journal: &Journal,
    node: &Node,
    reached: bool,
    server: Option<&Server>,
    h: Option<Result<Health, BbbError>>,
) -> Row {
    let rec = journal.nodes.get(&node.host);
    let mut notes = Vec::new();
    if let Some(r) = rec.filter(|r| r.phase.holds_node()) {
        notes.push(held_note(journal, r));
        if let Some(reason) = &r.reason {
            notes.push(reason.clone());
        }
    }
    if let Some(r) = rec.filter(|r| !r.owed.is_empty()) {
        notes.push(owed_note(r));
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
    let last_rollout = rec.and_then(|r| r.last_rollout);
    let set_by = server.and_then(|s| set_by(rec, s));
    if server.is_some_and(|s| {
        !s.unadmitted
            && rules::hands_off::owner(
                s.state,
                rec.and_then(|r| r.balancer.as_ref()),
                rec.is_some_and(|r| r.phase.holds_node()),
            ) == rules::hands_off::Owner::Person
    }) {
        notes.push(format!(
            "taken out of service outside rollout: rollout leaves it so; `rollout undrain --limit {}` puts it back",
            node.host
        ));
    }
    Row {
        host: node.host.clone(),
        set_by,
        state: match (reached, server) {
            (false, _) => "unknown".into(),
            (true, None) => "unregistered".into(),
            (true, Some(s)) => s.state.to_string(),
        },
        online: server.and_then(|s| s.online),
        meetings: meetings.or(server.and_then(|s| s.meetings.map(|m| m as usize))),
        participants: parts.or(server.and_then(|s| s.participants)),
        bbb_version: server.and_then(|s| s.bbb_version.clone()).or(version),
        last_rollout,
        last_rollout_text: last_rollout.map(format_time),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    }
}

/// Who set `server`'s state, from the node's journal record (see [`Row::set_by`]).
fn set_by(rec: Option<&NodeRecord>, server: &Server) -> Option<String> {
    let mark = rec.and_then(|r| r.balancer.as_ref());
    match mark {
        Some(m) if m.explains(server.state) => Some(m.short()),
        _ if server.unadmitted => None,
        _ => {
            let owner = rules::hands_off::owner(
                server.state,
                mark,
                rec.is_some_and(|r| r.phase.holds_node()),
            );
            match owner {
                rules::hands_off::Owner::Person => Some("outside rollout".into()),
                rules::hands_off::Owner::Rollout => rec.map(|r| format!("rollout {}", r.by)),
                rules::hands_off::Owner::InService => None,
            }
        }
    }
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}
