//! `--output json` against its documentation (`docs/json.md`): every event type the
//! reporter can write is in the events table with exactly its fields, every result object
//! (summaries, `balancer`, `status`, `error`) has exactly the fields of its documented
//! example, and a real `apply -v` on a local host writes only documented objects, each with
//! exactly its documented fields, covering every event of a `plan`/`apply`.

use rollout::report::status::{Row, StatusSummary};
use rollout::report::summary::{
    self, DrainSummary, NodeFailure, Registered, RegistrationSummary, RunSummary, UndrainSummary,
    UpgradeSummary,
};
use rollout::report::{Event, Held, HostOutcome, HostResult, StepStatus};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

fn docs() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json.md")).unwrap()
}

/// The JSON code blocks of the document, in order (placeholders such as
/// `[HOST RESULT, ...]` replaced by the host result example).
fn json_blocks(doc: &str) -> Vec<String> {
    doc.split("```json\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap().to_string())
        .collect()
}

/// The host result example (the first JSON block under "### Host result"), with `held`
/// (documented as a fragment after it) added.
fn host_result_doc(doc: &str) -> Value {
    let section = doc
        .split("### Host result")
        .nth(1)
        .expect("a Host result section");
    let blocks = json_blocks(section);
    let mut v: Value = serde_json::from_str(&blocks[0]).expect("host result example");
    let held: Value = serde_json::from_str(&format!("{{{}}}", blocks[1].trim())).unwrap();
    v["held"] = held["held"].clone();
    v
}

/// The documented result objects, by `event` and the first field after `schema` (which
/// tells the summaries apart).
fn result_docs(doc: &str) -> BTreeMap<String, Value> {
    let host = host_result_doc(doc);
    let mut out = BTreeMap::new();
    for b in json_blocks(doc) {
        let b = b.replace("HOST RESULT, ...", &host.to_string());
        let Ok(v) = serde_json::from_str::<Value>(&b) else {
            continue;
        };
        if v.get("event").is_none() {
            continue;
        }
        out.insert(key_of(&v), v);
    }
    out
}

/// `event` plus the names of the fields, sorted: what tells two result objects apart.
fn key_of(v: &Value) -> String {
    format!("{} {:?}", v["event"].as_str().unwrap(), fields(v))
}

/// The events table: `event` -> its documented fields (`host_finished`: the host result's).
fn event_docs(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    let table = doc
        .split("## Events")
        .nth(1)
        .unwrap()
        .split("\n\n")
        .find(|p| p.starts_with("| `event`"))
        .expect("the events table");
    let host: BTreeSet<String> = host_result_doc(doc)
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let mut out = BTreeMap::new();
    for row in table.lines().skip(2) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`').to_string();
        let fields = if cells[2].contains("host result") {
            host.clone()
        } else {
            backticked(&without_parentheses(cells[2]))
        };
        out.insert(name, fields);
    }
    out
}

fn without_parentheses(s: &str) -> String {
    let mut depth = 0;
    s.chars()
        .filter(|c| {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    return false;
                }
                _ => {}
            }
            depth == 0
        })
        .collect()
}

fn backticked(s: &str) -> BTreeSet<String> {
    s.split('`').skip(1).step_by(2).map(String::from).collect()
}

fn fields(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// Every object within `got` has the same fields as the one at the same place in `want`
/// (lists: each element against the documented first; `null` in either: any), recursively.
fn same_shape(got: &Value, want: &Value, at: &str) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let mut want_fields = fields(want);
            // `outcome`: "the latter two [failed, unreachable] carry `outcome.reason`".
            if at.ends_with(".outcome") && g.get("status").is_some_and(|s| s != "ok") {
                want_fields.insert("reason".into());
            }
            // `held`: "absent otherwise".
            if !g.contains_key("held") {
                want_fields.remove("held");
            }
            assert_eq!(
                fields(got),
                want_fields,
                "{at}: fields differ from docs/json.md"
            );
            for (k, gv) in g {
                same_shape(gv, w.get(k).unwrap_or(&Value::Null), &format!("{at}.{k}"));
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            if let Some(w) = w.first() {
                for (i, g) in g.iter().enumerate() {
                    same_shape(g, w, &format!("{at}[{i}]"));
                }
            }
        }
        _ => {}
    }
}

fn host_result(held: bool) -> HostResult {
    HostResult {
        host: "bbb1".into(),
        outcome: HostOutcome::Ok,
        ok: 1,
        changed: 2,
        failed: 1,
        skipped: 0,
        seconds: 1.5,
        held: held.then(|| Held {
            reason: "1 meeting running".into(),
            pending: vec!["bbb: restart".into()],
            handlers: vec![],
        }),
        preflight: vec![],
    }
}

/// One event of every variant; the match makes a new variant a compile error here until it
/// is added (and documented).
fn every_event() -> Vec<Event> {
    let all = vec![
        Event::HostStarted {
            host: "h".into(),
            steps: 3,
        },
        Event::Phase {
            host: "h".into(),
            phase: "checking",
        },
        Event::StepBegin {
            host: "h".into(),
            label: "app: x".into(),
            index: 0,
            total: 3,
        },
        Event::Step {
            host: "h".into(),
            label: "app: x".into(),
            status: StepStatus::Changed,
            summary: Some("s".into()),
            diff: None,
        },
        Event::Script {
            host: "h".into(),
            what: "check",
            text: "true\n".into(),
        },
        Event::HostFinished(host_result(true)),
        Event::Note {
            host: None,
            text: "t".into(),
        },
        Event::Progress {
            host: "h".into(),
            text: "t".into(),
        },
        Event::NodeFinished {
            host: "h".into(),
            ok: true,
            text: "t".into(),
        },
    ];
    for e in &all {
        match e {
            Event::HostStarted { .. }
            | Event::Phase { .. }
            | Event::StepBegin { .. }
            | Event::Step { .. }
            | Event::Script { .. }
            | Event::HostFinished(_)
            | Event::Note { .. }
            | Event::Progress { .. }
            | Event::NodeFinished { .. } => {}
        }
    }
    all
}

#[test]
fn every_event_type_has_exactly_its_documented_fields() {
    let doc = docs();
    let documented = event_docs(&doc);
    let mut seen = BTreeSet::new();
    for e in every_event() {
        let v = serde_json::to_value(&e).unwrap();
        let name = v["event"].as_str().unwrap().to_string();
        let want = documented
            .get(&name)
            .unwrap_or_else(|| panic!("event `{name}` is not in docs/json.md's table"));
        let mut got = fields(&v);
        got.remove("event");
        assert_eq!(
            &got, want,
            "event `{name}`: fields differ from docs/json.md"
        );
        seen.insert(name);
    }
    let documented: BTreeSet<String> = documented.into_keys().collect();
    assert_eq!(
        seen, documented,
        "docs/json.md documents events the reporter never writes"
    );
    // A step's status and a phase take the documented values.
    let statuses = [
        StepStatus::Ok,
        StepStatus::Pending,
        StepStatus::WouldChange,
        StepStatus::Changed,
        StepStatus::Failed,
    ]
    .map(|s| {
        serde_json::to_value(s)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    });
    let para = doc.split("`status` of a `step` is one of").nth(1).unwrap();
    let para = para.split("\n\n").next().unwrap();
    assert_eq!(
        backticked(para),
        statuses.into_iter().collect(),
        "step statuses"
    );
}

#[test]
fn every_result_object_has_exactly_its_documented_fields() {
    let doc = docs();
    let documented = result_docs(&doc);
    let held = host_result(true);
    let results: Vec<String> = vec![
        summary::json(&RunSummary {
            hosts: vec![held],
            applied: true,
        }),
        summary::json(&RegistrationSummary {
            balancer: "Scalelite at https://lb/scalelite/api".into(),
            nodes: vec![Registered {
                host: "bbb1".into(),
                ok: true,
                text: "registered and enabled".into(),
                outside: None,
            }],
            reached: true,
        }),
        summary::json(&DrainSummary {
            drained: 1,
            not_drained: vec!["bbb3".into()],
        }),
        summary::json(&UndrainSummary {
            enabled: vec!["bbb1".into()],
            failed: vec![],
            left: vec![],
        }),
        summary::json(&UpgradeSummary {
            upgraded: vec!["bbb1".into()],
            already_upgraded: vec![],
            failed: vec![NodeFailure {
                host: "bbb3".into(),
                reason: "health check failed".into(),
            }],
            not_started: vec![],
            skipped: vec![],
            stopped: None,
            times: vec![summary::NodeTimes {
                host: "bbb1".into(),
                staging_s: Some(41.2),
                cordoned_s: 395.0,
                draining_s: 212.4,
                applying_s: 151.9,
                out_of_service_s: 182.6,
                end_noticed_within_s: Some(5.3),
            }],
        }),
        summary::json(&StatusSummary {
            balancer: "Scalelite at https://lb/scalelite/api".into(),
            error: None,
            upgrade_run: None,
            upgrade_started: None,
            nodes: vec![Row {
                host: "bbb1".into(),
                state: "enabled".into(),
                online: Some(true),
                meetings: Some(3),
                participants: Some(41),
                bbb_version: Some("3.0.4".into()),
                last_rollout: Some(1764410640),
                last_rollout_text: None,
                set_by: None,
                note: None,
            }],
        }),
        summary::json(&rollout::adhoc::ExecSummary {
            hosts: vec![rollout::adhoc::HostRun {
                host: "bbb1".into(),
                status: rollout::adhoc::Status::Changed,
                rc: Some(0),
                stdout: " 10:02:11 up 41 days\n".into(),
                stderr: String::new(),
                reason: None,
                seconds: 0.4,
            }],
        }),
        serde_json::json!({"event": "error", "schema": summary::SCHEMA, "message": "m"})
            .to_string(),
    ];
    let mut matched = BTreeSet::new();
    for text in results {
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["schema"], 1, "{text}");
        let key = key_of(&v);
        let want = documented
            .get(&key)
            .unwrap_or_else(|| panic!("no example in docs/json.md has the fields of {text}"));
        same_shape(&v, want, &key);
        matched.insert(key);
    }
    let documented: BTreeSet<String> = documented.into_keys().collect();
    assert_eq!(
        matched, documented,
        "docs/json.md shows result objects that no command writes"
    );
}

/// A real `apply -v` on a local host (one step changes, one fails on a second host) writes
/// only documented objects, each with exactly its documented fields, and every event of a
/// plan/apply appears.
#[test]
fn a_real_apply_writes_only_documented_objects() {
    let doc = docs();
    let events = event_docs(&doc);
    let results = result_docs(&doc);
    let dir = std::env::temp_dir().join(format!("rollout-json-apply-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("roles/app")).unwrap();
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::fs::write(
        dir.join("inventory.yml"),
        format!(
            "all:\n  vars:\n    out: {}\n  children:\n    g:\n      roles: [app]\n      hosts:\n        a: {{connection: local}}\n        b: {{connection: local}}\n",
            dir.join("out").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("roles/app/steps.yml"),
        "- name: mark\n  file: {path: \"{{ out }}/{{ inventory_hostname }}\", content: \"x\\n\"}\n- name: same\n  directory: {path: \"{{ out }}\"}\n- name: broken\n  command: {run: \"exit 3\", creates: /nonexistent/rollout}\n  when: inventory_hostname == 'b'\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollout"))
        .args(["apply", dir.join("inventory.yml").to_str().unwrap()])
        .args(["--output", "json", "-v"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let mut seen = BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let name = v["event"].as_str().expect("an `event` field").to_string();
        if let Some(want) = events.get(&name) {
            let mut got = fields(&v);
            got.remove("event");
            if name == "host_finished" {
                // `held` is documented as absent when nothing was held.
                let mut want = want.clone();
                want.remove("held");
                assert_eq!(got, want, "{line}");
            } else {
                assert_eq!(&got, want, "{line}");
            }
        } else {
            let key = key_of(&v);
            let want = results
                .get(&key)
                .unwrap_or_else(|| panic!("{line}: not a documented object"));
            same_shape(&v, want, &key);
        }
        seen.insert(name);
    }
    let want: BTreeSet<String> = [
        "host_started",
        "phase",
        "step_begin",
        "step",
        "script",
        "host_finished",
        "summary",
    ]
    .map(String::from)
    .into();
    assert_eq!(seen, want);
}
