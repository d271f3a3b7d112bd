//! Step kinds as data, in the manner of pyinfra's operation tests: for every kind, a folder
//! `tests/fixtures/steps/KIND/` with one case per file (`CASE.json`): arguments and the fact
//! lines a host's check would print, with the verdict they must give and, where pinned, the
//! exact check and apply fragments, or the exact error the arguments must give. No host and
//! no shell needed.
//!
//! A case: `{"name", "args", "use"?: "handler", "check_output"?: [lines], "verdict"?:
//! "unchanged" | {"change": summary, "diff"?: text} | {"fail": message}, "check"?: text,
//! "apply"?: text, "error"?: text, "secrets"?: [values]}`. A key outside these is refused (a
//! misspelled `verdict` would otherwise check nothing), and so is a case that asserts nothing.

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

/// The keys a case may have.
const KEYS: &[&str] = &[
    "name",
    "args",
    "use",
    "check_output",
    "verdict",
    "check",
    "apply",
    "error",
    "secrets",
];

/// Whether the case expects the step to fail: bad arguments, or a check that fails the host.
fn is_failure(case: &Value) -> bool {
    case.get("error").is_some() || case.get("verdict").is_some_and(|v| v.get("fail").is_some())
}

fn run_case(kind: &str, name: &str, case: &Value) {
    if let Some(k) = case
        .as_object()
        .and_then(|o| o.keys().find(|k| !KEYS.contains(&k.as_str())))
    {
        panic!("{kind}: {name}: unknown key `{k}`");
    }
    assert!(
        ["verdict", "check", "apply", "error"]
            .iter()
            .any(|k| case.get(k).is_some()),
        "{kind}: {name}: the case asserts nothing"
    );
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

/// The cases of `kind`, as (file name without `.json`, case), sorted by file name.
fn cases(kind: &str) -> Vec<(String, Value)> {
    let dir = format!("tests/fixtures/steps/{kind}");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let shown = path.display().to_string();
            assert_eq!(
                path.extension().and_then(|e| e.to_str()),
                Some("json"),
                "{shown}: only CASE.json files in a kind's folder"
            );
            let case: Value = serde_json::from_str(
                &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{shown}: {e}")),
            )
            .unwrap_or_else(|e| panic!("{shown}: {e}"));
            assert!(case.is_object(), "{shown}: one case, an object");
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            (stem, case)
        })
        .collect()
}

/// Every kind has a folder of cases, a few at least and one failure case at least, and
/// every case holds. Nothing else sits in `tests/fixtures/steps/`.
#[test]
fn every_kind_against_its_cases() {
    let mut total = 0;
    let mut failed = vec![];
    for kind in step::KINDS {
        let cases = cases(kind);
        assert!(
            cases.len() >= 3,
            "tests/fixtures/steps/{kind}/: a few cases at least"
        );
        assert!(
            cases.iter().any(|(_, c)| is_failure(c)),
            "tests/fixtures/steps/{kind}/: a failure case at least (an `error` or a `fail` verdict)"
        );
        for (name, case) in &cases {
            let run = std::panic::catch_unwind(|| run_case(kind, name, case));
            if let Err(e) = run {
                let why = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failed.push(format!("tests/fixtures/steps/{kind}/{name}.json: {why}"));
            }
        }
        total += cases.len();
    }
    for entry in std::fs::read_dir("tests/fixtures/steps").unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            step::KINDS.contains(&name.as_str()),
            "tests/fixtures/steps/{name}: not a step kind's folder"
        );
    }
    assert!(
        failed.is_empty(),
        "{} of {total} cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert!(total >= 127, "{total} cases: cases were lost");
}
