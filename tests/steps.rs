//! Step kinds as data, in the manner of pyinfra's operation tests: for every kind, a table
//! in `tests/fixtures/steps/KIND.json` of arguments and the fact lines a host's check would
//! print, with the verdict they must give and, where pinned, the exact check and apply
//! fragments, or the exact error the arguments must give. No host and no shell needed.
//!
//! A case: `{"name", "args", "use"?: "handler", "check_output"?: [lines], "verdict"?:
//! "unchanged" | {"change": summary, "diff"?: text} | {"fail": message}, "check"?: text,
//! "apply"?: text, "error"?: text, "secrets"?: [values]}`.

use rollout::secret::Secrets;
use rollout::step::{self, CheckOutput, Context, Resolve, Use, Verdict};
use rollout::template::Templates;
use serde_json::Value;

fn verdict(v: &Value) -> Verdict {
    match v {
        Value::String(s) if s == "unchanged" => Verdict::Unchanged,
        Value::Object(o) if o.contains_key("change") => Verdict::Change {
            summary: o["change"].as_str().unwrap_or_default().to_string(),
            diff: o.get("diff").and_then(Value::as_str).map(String::from),
        },
        Value::Object(o) if o.contains_key("fail") => {
            Verdict::Fail(o["fail"].as_str().unwrap_or_default().to_string())
        }
        other => panic!("not a verdict: {other}"),
    }
}

fn text(case: &Value, key: &str) -> Option<String> {
    case.get(key).map(|v| match v {
        Value::Array(lines) => lines.iter().filter_map(Value::as_str).collect(),
        other => other.as_str().unwrap_or_default().to_string(),
    })
}

fn run_case(kind: &str, case: &Value) {
    let name = case["name"].as_str().unwrap_or("?");
    let usage = match case.get("use").and_then(Value::as_str) {
        Some("handler") => Use::Handler,
        _ => Use::Step,
    };
    let args = case["args"].clone();
    let templates = Templates::empty();
    let ctx = minijinja::Value::from(());
    let r = Resolve {
        templates: &templates,
        ctx: &ctx,
        usage,
    };
    let built = step::validate(kind, &args, usage)
        .map_err(|e| e.to_string())
        .and_then(|()| step::resolve(kind, args, &r).map_err(|e| e.to_string()));
    if let Some(want) = text(case, "error") {
        assert_eq!(built.err(), Some(want), "{kind}: {name}");
        return;
    }
    let action = built.unwrap_or_else(|e| panic!("{kind}: {name}: {e}"));
    if let Some(want) = text(case, "check") {
        assert_eq!(action.check(), want, "{kind}: {name}: check");
    }
    if let Some(want) = text(case, "apply") {
        assert_eq!(action.apply(), want, "{kind}: {name}: apply");
    }
    if let Some(want) = case.get("verdict") {
        let lines: Vec<&str> = case["check_output"]
            .as_array()
            .map(|l| l.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let secrets = Secrets::new(
            case.get("secrets")
                .and_then(Value::as_array)
                .map(|s| {
                    s.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
        );
        let cx = Context {
            secrets: &secrets,
            host: "h1",
        };
        let facts = action.read(&CheckOutput::of(&lines));
        assert_eq!(
            action.evaluate(&facts, &cx),
            verdict(want),
            "{kind}: {name}"
        );
    }
}

/// Every kind has a table, and every case of it holds.
#[test]
fn every_kind_against_its_table() {
    for kind in step::KINDS {
        let path = format!("tests/fixtures/steps/{kind}.json");
        let table: Value = serde_json::from_str(
            &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")),
        )
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        let cases = table.as_array().unwrap_or_else(|| panic!("{path}: a list"));
        assert!(cases.len() >= 3, "{path}: a table of a few cases at least");
        for case in cases {
            run_case(kind, case);
        }
    }
}
