//! `rollout status` as a typed result: one row per node (balancer state, online, meetings,
//! participants, version, last rollout, a note when rollout holds the node out of service),
//! shown as a table like Scalelite's `rake status`, or as one JSON object.

use super::summary::Summary;
use crate::error::Exit;
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
    /// `last_rollout` as the table shows it (`2026-11-22 10:04 UTC`).
    #[serde(skip)]
    pub last_rollout_text: Option<String>,
    pub note: Option<String>,
}

/// `rollout status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusSummary {
    /// The balancer (kind and URL); empty when it could not be reached.
    pub balancer: String,
    /// Why the balancer could not be reached.
    pub error: Option<String>,
    /// The id of an unfinished upgrade run.
    pub upgrade_run: Option<String>,
    /// When that run started, as shown (`2026-11-22 10:04 UTC`).
    #[serde(skip)]
    pub upgrade_started: Option<String>,
    pub nodes: Vec<Row>,
}

impl Summary for StatusSummary {
    const EVENT: &'static str = "status";
    fn plain(&self) -> String {
        let mut out = String::new();
        if let Some(started) = &self.upgrade_started {
            out.push_str(&format!(
                "an upgrade started {started} has not finished; `rollout upgrade` resumes it\n"
            ));
        }
        out.push_str(&table(&self.nodes));
        out
    }
    fn plain_errors(&self) -> Option<String> {
        self.error.as_ref().map(|e| format!("error: {e}\n"))
    }
    fn exit(&self) -> Exit {
        Exit::failed_if(self.error.is_some())
    }
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
                opt(r.last_rollout_text.clone()),
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
