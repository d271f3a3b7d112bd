//! A secret that templates transform (`replace`, `b64encode`, `shell_quote`, `xml_escape`,
//! `lower`, `upper`, `reverse`, concatenation into a URL) must not show up, in any spelling, in
//! anything rollout prints: plain lines, `-v` scripts, `--diff`, `--output json`, a failing
//! step's host output. Runs plan and apply on the recording fake, no host contacted.

use rollout::app::{self, Options};
use rollout::connection::ConnError;
use rollout::connection::fake::FakeConnector;
use rollout::exec::{self, Goal};
use rollout::report::{Event, Format, Settings, plain_line};
use std::path::PathBuf;
use std::sync::Arc;

const SECRET: &str = "Pa'ss-W0rd&<x>-Zq9";

const STEPS: &str = r#"
- name: env file
  file: {path: /etc/app.env, template: app.env.j2, mode: "0600"}
- name: inline content
  file: {path: /etc/app.url, content: "{{ db_url }}\n"}
- name: url line
  line: {path: /etc/app.conf, line: "DATABASE_URL={{ db_url }}"}
- name: property
  property: {path: /etc/app.properties, key: salt, value: "{{ pw | b64encode }}"}
- name: database
  command:
    run: |
      psql -c "CREATE ROLE app PASSWORD '{{ pw | replace("'", "''") }}'"
      echo {{ pw | lower | shell_quote }} {{ pw | reverse }}
    unless: "test -e /x{{ pw | sha1 }}"
"#;

const TEMPLATE: &str = "name={{ inventory_hostname }}\nurl=postgres://app:{{ pw | replace(\"'\", \"''\") }}@db/app\nb64={{ pw | b64encode }}\nq={{ pw | shell_quote }}\nx={{ pw | xml_escape }}\nl={{ pw | lower }}\nu={{ pw | upper }}\n";

fn project() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollout-taint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("roles/app")).unwrap();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    let inv = "all:\n  vars:\n    pw: {secret: \"file:secret.txt\"}\n    db_url: \"postgres://app:{{ pw | b64encode }}@db/app\"\n  children:\n    apps:\n      roles: [app]\n      hosts:\n        a: {}\n";
    std::fs::write(dir.join("inventory.yml"), inv).unwrap();
    std::fs::write(dir.join("secret.txt"), format!("{SECRET}\n")).unwrap();
    std::fs::write(dir.join("roles/app/steps.yml"), STEPS).unwrap();
    std::fs::write(dir.join("templates/app.env.j2"), TEMPLATE).unwrap();
    dir
}

/// The spellings a scan must not find, computed here independently of the code under test.
fn forms() -> Vec<String> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let s = SECRET;
    vec![
        s.into(),
        s.to_lowercase(),
        s.to_uppercase(),
        s.replace('\'', "''"),
        s.replace('\'', r"'\''"),
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\'', "&apos;"),
        s.chars().rev().collect(),
        b64(s),
        b64(&format!("postgres://app:{}@db/app", b64(s))),
        format!("postgres://app:{}@db/app", b64(s)),
        serde_json::to_string(s).unwrap().trim_matches('"').into(),
        serde_json::to_string(&s.to_lowercase())
            .unwrap()
            .trim_matches('"')
            .into(),
        b64(&s.to_lowercase()),
    ]
}

/// Every event as plain text (with `-v` and `--diff`) and as JSON.
fn printed(events: &[Event]) -> String {
    let mut settings = Settings::new(Format::Plain, true, 1, "t");
    settings.show_diff = true;
    let mut out = String::new();
    for e in events {
        if let Some(l) = plain_line(e, &settings) {
            out.push_str(&l);
            out.push('\n');
        }
        out.push_str(&serde_json::to_string(e).unwrap());
        out.push('\n');
    }
    out
}

/// A host where nothing exists; `fail` makes every applied item fail, its output echoing the
/// transformed secret as psql would echo the statement.
fn host(fail: bool) -> impl Fn(&str, &str) -> Result<String, ConnError> {
    move |_h, script| {
        let m = script
            .split(['\'', '"', ' ', '\n'])
            .find(|w| w.starts_with("@@rollout-"))
            .expect("marker")
            .to_string();
        let mut out = String::new();
        if script.contains("__rl_end") {
            let n = script.matches(&format!("\necho '{m} b ")).count();
            for i in 0..n {
                if fail {
                    use base64::Engine;
                    let said = format!(
                        "ERROR: near \"{}\"\npostgres://app:{}@db/app\n{}\n",
                        SECRET.replace('\'', "''"),
                        base64::engine::general_purpose::STANDARD.encode(SECRET),
                        SECRET.to_lowercase()
                    );
                    let b = base64::engine::general_purpose::STANDARD.encode(said);
                    out.push_str(&format!("{m} b {i}\n{m} e {i} 1 {b}\n"));
                    return Ok(out);
                }
                out.push_str(&format!("{m} b {i}\n{m} e {i} 0\n"));
            }
            return Ok(out);
        }
        for w in script.split(&format!("echo '{m} ")).skip(1) {
            let mut f = w.split(['\'', ' ']);
            match (f.next(), f.next()) {
                (Some("b"), Some(i)) => out.push_str(&format!("{m} b {i}\nA\n{m} e {i} 0\n")),
                (Some("P"), Some(j)) => out.push_str(&format!("{m} P {j}\n")),
                _ => {}
            }
        }
        out.push_str(&format!("{m} z\n"));
        Ok(out)
    }
}

async fn run(dir: &std::path::Path, goal: Goal, fail: bool) -> String {
    let o = Options {
        inventory: dir.join("inventory.yml"),
        limit: None,
        tags: vec![],
        skip_tags: vec![],
        forks: 1,
        extra_vars: vec![],
        output: Format::Plain,
        verbose: true,
        accept_new_host_keys: false,
        lock_wait: None,
        ansible_inventory: vec![],
        vault_password_file: None,
    };
    let prepared = app::load(&o, &serde_json::Map::new()).unwrap_or_else(|e| panic!("{e:?}"));
    let opts = Arc::new(exec::Options {
        goal,
        forks: 1,
        verbose: true,
        secrets: prepared.inventory.secrets.clone(),
        guard: None,
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let conn = Arc::new(FakeConnector::new(host(fail)));
    let results = exec::run(prepared.plans, conn, opts, tx).await;
    let mut events = vec![];
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let mut text = printed(&events);
    text.push_str(&serde_json::to_string(&results).unwrap());
    text.push_str(&rollout::report::summary(&results));
    text
}

#[tokio::test]
async fn transformed_secrets_never_show_in_any_output_mode() {
    let dir = project();
    for (goal, fail) in [
        (Goal::Plan, false),
        (Goal::Apply, false),
        (Goal::Apply, true),
    ] {
        let text = run(&dir, goal, fail).await;
        for f in forms() {
            assert!(
                !text.contains(&f),
                "{goal:?} fail={fail}: `{f}` shown in:\n{text}"
            );
        }
        if goal == Goal::Plan {
            assert!(text.contains("a: ~ app: env file (create)"), "{text}");
            assert!(text.contains("content depends on a secret"), "{text}");
            assert!(
                text.contains("name=a") || text.contains("a: check script"),
                "{text}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
