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
    /// Who set that state, as far as rollout's journal knows: `rollout drain, alice@ctl1,
    /// 2026-12-06 21:50 UTC`, or `outside rollout (found 2026-12-06 21:50 UTC)` for a state
    /// someone else set; `None` for an enabled node rollout has no record of.
    pub set_by: Option<String>,
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
    let cells: Vec<[String; 9]> = rows
        .iter()
        .map(|r| {
            [
                r.host.clone(),
                r.state.clone(),
                opt(r.set_by.clone()),
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
        "SET BY",
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
            if i == 8 {
                s.push_str(v);
            } else if (4..=5).contains(&i) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::json;

    fn row(host: &str, state: &str, note: Option<&str>) -> Row {
        Row {
            host: host.into(),
            state: state.into(),
            set_by: None,
            online: Some(true),
            meetings: Some(2),
            participants: Some(17),
            bbb_version: None,
            last_rollout: Some(0),
            last_rollout_text: Some("1970-01-01 00:00 UTC".into()),
            note: note.map(str::to_string),
        }
    }

    #[test]
    fn table_aligns_counts_right_and_json_keeps_raw_values() {
        let s = StatusSummary {
            balancer: "Scalelite at https://lb/scalelite/api".into(),
            error: None,
            upgrade_run: Some("42".into()),
            upgrade_started: Some("1970-01-01 00:00 UTC".into()),
            nodes: vec![
                row("bbb1", "enabled", None),
                row("bbb22", "cordoned", Some("x")),
            ],
        };
        assert_eq!(
            s.plain(),
            "an upgrade started 1970-01-01 00:00 UTC has not finished; `rollout upgrade` resumes it\n\
             HOST   STATE     SET BY  ONLINE  MEETINGS  PARTICIPANTS  VERSION  LAST ROLLOUT          NOTE\n\
             bbb1   enabled   -       online         2            17  -        1970-01-01 00:00 UTC\n\
             bbb22  cordoned  -       online         2            17  -        1970-01-01 00:00 UTC  x\n"
        );
        let v: serde_json::Value = serde_json::from_str(&json(&s)).unwrap();
        assert_eq!(v["event"], "status");
        assert_eq!(v["schema"], 1);
        assert_eq!(v["nodes"][0]["last_rollout"], 0);
        assert!(v["nodes"][0].get("last_rollout_text").is_none());
        assert!(v.get("upgrade_started").is_none());
        assert_eq!(s.exit(), Exit::Ok);
    }
}
