//! A secret that templates transform (`replace`, `b64encode`, `shell_quote`, `xml_escape`,
//! `lower`, `upper`, `reverse`, concatenation into a URL, and each of Ansible's filters and
//! Python's methods: `regex_replace`, `regex_search`, `to_json`, `tojson`, `b64decode`,
//! `hash`, `combine`, `dict2items`, `ternary`, `mandatory`, `urlencode`, `.split()`,
//! `.upper()`) must not show up, in any spelling (hex dumps of it included), in
//! anything rollout prints: plain lines, `-v` scripts, `--diff`, `--output json`, a failing
//! step's host output. Runs plan and apply on the recording fake, no host contacted.
//!
//! The second test runs the rollout binary against the lab's emulators (BBB API nodes with
//! `connection: local`, Scalelite) through every subcommand and output mode: plain, JSON,
//! a terminal (under `script`), `-v`, `--diff`, `apply --check`, a failing run, an input
//! error, `status`, drain, undrain and upgrade, and then reads the journal files under the
//! state folder: no spelling of any secret anywhere.

mod common;
#[path = "pool_support/mod.rs"]
mod support;

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

const TEMPLATE: &str = "name={{ inventory_hostname }}\nurl=postgres://app:{{ pw | replace(\"'\", \"''\") }}@db/app\nb64={{ pw | b64encode }}\nq={{ pw | shell_quote }}\nx={{ pw | xml_escape }}\nl={{ pw | lower }}\nu={{ pw | upper }}\n\
r1={{ pw | regex_replace('-', '_') }}\nr2={{ pw | regex_search('W0.*') }}\n\
j={{ {'p': pw} | to_json }}\ntj={{ pw | tojson }}\nd={{ pw | b64encode | b64decode }}\n\
h={{ pw | hash('sha512') }}\nc={{ ({'a': 1} | combine({'p': pw}, recursive=true)).p }}\n\
di={{ ({'p': pw} | dict2items)[0].value }}\nt={{ true | ternary(pw, 'x') }}\n\
m={{ pw | mandatory }}\nsp={{ pw.split('-') | join('+') }}\nue={{ pw | urlencode }}\n\
py={{ pw.upper() }}\n";

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

/// The spellings a scan must not find (`common::spellings`, computed independently of the
/// code under test), and what this project's steps make of the secret inside a URL.
fn forms() -> Vec<String> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let s = SECRET;
    let mut v = common::spellings(s);
    v.extend([
        b64(&format!("postgres://app:{}@db/app", b64(s))),
        format!("postgres://app:{}@db/app", b64(s)),
        serde_json::to_string(&s.to_lowercase())
            .unwrap()
            .trim_matches('"')
            .into(),
        // Ansible's filters and Python's methods.
        s.replace('-', "_"),
        "W0rd&<x>-Zq9".into(),
        {
            use sha2::Digest;
            hex::encode(sha2::Sha512::digest(s.as_bytes()))
        },
        s.split('-').collect::<Vec<_>>().join("+"),
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'.' | b'-' | b'_' => {
                    (b as char).to_string()
                }
                b => format!("%{b:02X}"),
            })
            .collect(),
        s.replace('\'', "\\u0027")
            .replace('&', "\\u0026")
            .replace('<', "\\u003c")
            .replace('>', "\\u003e"),
    ]);
    v
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
                    let hex = hex::encode(SECRET);
                    let spaced = hex
                        .as_bytes()
                        .chunks(2)
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ");
                    // As psql echoes the statement, then `xxd -p`, `od -An -tx1` and an
                    // upper-case hex dump of the secret.
                    let said = format!(
                        "ERROR: near \"{}\"\npostgres://app:{}@db/app\n{}\n{hex}\n {spaced}\n{}\n",
                        SECRET.replace('\'', "''"),
                        base64::engine::general_purpose::STANDARD.encode(SECRET),
                        SECRET.to_lowercase(),
                        hex.to_uppercase(),
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
                (Some(tag @ ("P" | "L")), Some(j)) => out.push_str(&format!("{m} {tag} {j}\n")),
                // The line pass, packages, units and ports: empty sections.
                (Some(tag @ ("l" | "k" | "a" | "u" | "v" | "w")), _) => {
                    out.push_str(&format!("{m} {tag}\n"))
                }
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
        become_password: None,
        vault_ids: vec![],
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

/// A third secret, with the characters that quoting and escaping change.
const APP_SECRET: &str = "Ap'p-Pw&<x> $Zq9\"/+";

/// Steps that spread the secrets through filters into files, a property, a command, a
/// failing command's output and an argument error, on the node's own folder.
const POOL_STEPS: &str = r#"
- name: app env
  file: {path: "{{ node_dir }}/app.env", template: app.env.j2, mode: "0600"}
- name: app url
  line: {path: "{{ node_dir }}/app.conf", line: "URL=http://app:{{ app_password | replace('&', '%26') }}@db/?salt={{ bbb_secret | b64encode }}", regexp: "^URL="}
- name: app property
  property: {path: "{{ node_dir }}/app.properties", key: salt, value: "{{ app_password | upper }}{{ bbb_secret | reverse }}"}
- name: app command
  command:
    run: "printf '%s\n' {{ app_password | shell_quote }} {{ bbb_secret | upper | shell_quote }} > {{ node_dir }}/cmd.out"
    unless: "test -e {{ node_dir }}/cmd.out.{{ app_version }}"
- name: failing on purpose
  when: fail_now | bool
  command:
    run: "echo {{ app_password | b64encode }} {{ bbb_secret | upper }} >&2; echo {{ app_password | lower | shell_quote }}; exit 3"
    unless: "false"
- name: bad mode on purpose
  when: bad_mode | bool
  file: {path: "{{ node_dir }}/x", content: "x", mode: "{{ app_password | lower }}"}
"#;

const POOL_TEMPLATE: &str = "url=postgres://app:{{ app_password | replace('&', '%26') }}@db/app\nb64={{ app_password | b64encode }}\nq={{ app_password | shell_quote }}\nx={{ app_password | xml_escape }}\nu={{ bbb_secret | upper }}\nv={{ app_version }}\n";

/// The pool fixtures' role with [`POOL_STEPS`] appended, in the test's folder.
fn pool_fixtures(dir: &std::path::Path) -> PathBuf {
    let from = common::repo().join("tests/fixtures/pool/roles/bbb");
    let to = dir.join("fixtures/roles/bbb");
    std::fs::create_dir_all(&to).unwrap();
    std::fs::create_dir_all(dir.join("fixtures/templates")).unwrap();
    for f in ["steps.yml", "handlers.yml", "defaults.yml"] {
        let mut text = std::fs::read_to_string(from.join(f)).unwrap();
        match f {
            "steps.yml" => text.push_str(POOL_STEPS),
            "defaults.yml" => text.push_str("fail_now: false\nbad_mode: false\napp_version: 1\n"),
            _ => {}
        }
        std::fs::write(to.join(f), text).unwrap();
    }
    std::fs::write(dir.join("fixtures/templates/app.env.j2"), POOL_TEMPLATE).unwrap();
    dir.join("fixtures")
}

/// Every file under `dir`, with its path and content, as one text.
fn files_under(dir: &std::path::Path) -> String {
    let mut text = String::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return text;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            text.push_str(&files_under(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            text.push_str(&format!(
                "== {}\n{}\n",
                p.display(),
                String::from_utf8_lossy(&b)
            ));
        }
    }
    text
}

#[test]
fn every_output_mode_status_and_the_journal_hold_no_spelling_of_a_secret() {
    use std::time::Duration;
    use support::{Kind, Pool};
    let mut pool = Pool::new("taint-pool", Kind::Scalelite, 2, &[]);
    pool.fixtures = pool_fixtures(&pool.dir);
    std::fs::write(pool.dir.join("app.secret"), format!("{APP_SECRET}\n")).unwrap();
    let secret_file = pool.dir.join("app.secret");
    for h in ["h01", "h02"] {
        pool.set_host_var(
            h,
            &format!(
                "app_password: {{secret: \"file:{}\"}}",
                secret_file.display()
            ),
        );
    }
    let (h01, h02) = (support::node_secret("h01"), support::node_secret("h02"));
    let secrets = [
        APP_SECRET,
        support::BBB_SECRET,
        &h01,
        &h02,
        support::LB_SECRET,
    ];
    let mut seen = String::new();
    let mut run = |label: &str, sub: &str, args: &[&str], want: &[i32]| {
        let out = pool.run(sub, args, Duration::from_secs(120));
        assert!(
            want.contains(&out.code),
            "{label}: exit {} (expected {want:?}):\n{}",
            out.code,
            out.all()
        );
        seen.push_str(&format!("#### {label}\n{}\n", out.all()));
        out
    };
    let v = ["-v"];
    // Plan, apply (first and second), check and diff, in plain and JSON.
    for out in ["plain", "json"] {
        let o = ["--output", out];
        run("plan", "plan", &[&o[..], &v].concat(), &[0]);
        run("apply", "apply", &[&o[..], &v, &["--diff"]].concat(), &[0]);
        run(
            "apply changed",
            "apply",
            &[
                &o[..],
                &v,
                &["--diff", "-e", &format!("app_version={out}2")],
            ]
            .concat(),
            &[0],
        );
        run(
            "check",
            "apply",
            &[&o[..], &v, &["--check", "--diff"]].concat(),
            &[0],
        );
        // A failing step whose output echoes the transformed secrets.
        let failed = run(
            "failing apply",
            "apply",
            &[&o[..], &v, &["-e", "fail_now=true"]].concat(),
            &[1, 4],
        );
        assert!(
            failed.all().contains("failing on purpose"),
            "{}",
            failed.all()
        );
        // An argument error on a value rendered from a secret.
        let bad = run(
            "input error",
            "plan",
            &[&o[..], &v, &["-e", "bad_mode=true"]].concat(),
            &[2],
        );
        assert!(bad.all().contains("mode"), "{}", bad.all());
        run("status", "status", &[&o[..], &v].concat(), &[0]);
        run(
            "drain",
            "drain",
            &[&o[..], &v, &["--limit", "h01"]].concat(),
            &[0],
        );
        let st = run("status drained", "status", &o, &[0]);
        assert!(st.all().contains("drain"), "{}", st.all());
        run(
            "undrain",
            "undrain",
            &[&o[..], &v, &["--limit", "h01"]].concat(),
            &[0],
        );
        run("upgrade", "upgrade", &[&o[..], &v].concat(), &[0]);
    }
    // A terminal (progress bars): `script` gives rollout a pseudo-terminal.
    let inv = pool.inventory();
    for (sub, rest) in [
        ("apply", "--diff"),
        ("status", ""),
        ("plan", "-e fail_now=true"),
    ] {
        let line = format!(
            "{} {sub} {} {rest}",
            env!("CARGO_BIN_EXE_rollout"),
            inv.display()
        );
        let env = pool.rollout(&[]);
        let out = std::process::Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .envs(env.get_envs().filter_map(|(k, v)| Some((k, v?))))
            .env("TERM", "xterm")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("script runs");
        seen.push_str(&format!(
            "#### terminal {sub}\n{}{}\n",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // The journal and anything else rollout keeps in its state folder.
    let journal = files_under(&pool.dir.join("state"));
    assert!(
        !journal.is_empty(),
        "no journal under {}",
        pool.dir.display()
    );
    seen.push_str(&format!("#### state folder\n{journal}"));
    let found = common::secrets_in(&seen, &secrets);
    assert!(found.is_empty(), "secrets shown:\n{}", found.join("\n"));
    // The runs did what they say: the secret reached the node's files.
    let env = std::fs::read_to_string(pool.node("h01").dir.join("app.env")).unwrap();
    assert!(
        env.contains(&format!("u={}", support::node_secret("h01").to_uppercase())),
        "{env}"
    );
    let _ = std::fs::remove_dir_all(&pool.dir);
}

/// Every TLS and redirect error of the one HTTP client, as the BBB API and both balancer
/// clients report it: a certificate of an unknown CA (no `ca_file`, another CA's), a redirect
/// to another host, from HTTPS down to HTTP, and in a loop. The requests carry the secret's
/// checksum in their query (Scalelite, BBB) or a token signed with it (b3scale); no error may
/// show the secret in any spelling, a checksum, or a query at all.
#[test]
fn tls_and_redirect_errors_never_show_the_secret_or_a_checksum() {
    use rollout::balancer::SyncBalancer;
    use rollout::balancer::b3scale::B3scale;
    use rollout::balancer::scalelite::Scalelite;
    use rollout::bbb_api::Endpoint;
    use rollout::http::{CaFile, Http};
    use sha2::Digest;
    use std::time::Duration;

    let http = Http::new(Duration::from_secs(5));
    let ca = support::test_ca();
    let trusted = Some(CaFile::read(&ca.ca_file()).unwrap());
    let other = Some(CaFile::read(&support::TestCa::new("another CA").ca_file()).unwrap());
    let cert = ca.loopback();
    let node = support::Bbb::start_with(
        &support::tempdir("taint-tls"),
        SECRET,
        "127.0.0.1",
        Some(&cert),
    );
    let (port, _) = support::counting_listener("127.0.0.1:0");
    let cross = support::redirector(&format!("https://localhost:{port}"), None);
    let down = support::redirector(&format!("http://127.0.0.1:{port}"), Some(&cert));
    let looping = support::redirector("", None);
    let plain = |p: u16| format!("http://127.0.0.1:{p}");
    let api = |base: String| format!("{base}/bigbluebutton/api");

    // getMeetings: the URL carries `checksum=` in its query.
    let mut errors: Vec<String> = [
        Endpoint::new(&node.api(), SECRET).meetings(&http),
        Endpoint::new(&node.api(), SECRET)
            .with_ca(other.clone())
            .meetings(&http),
        Endpoint::new(&api(plain(cross.port)), SECRET).meetings(&http),
        Endpoint::new(&api(format!("https://127.0.0.1:{}", down.port)), SECRET)
            .with_ca(trusted.clone())
            .meetings(&http),
        Endpoint::new(&api(plain(looping.port)), SECRET).meetings(&http),
    ]
    .into_iter()
    .map(|r| r.unwrap_err().to_string())
    .collect();
    let lb_other = Http::with_ca(Duration::from_secs(5), other, "balancer: ca_file");
    let https_lb = format!("https://127.0.0.1:{}", node.proc.port);
    for (base, client) in [
        (https_lb.clone(), lb_other.clone()),
        (plain(cross.port), http.clone()),
        (plain(looping.port), http.clone()),
    ] {
        let s = Scalelite::new(&format!("{base}/scalelite/api"), SECRET, client.clone());
        errors.push(s.list().unwrap_err().to_string());
        let b = B3scale::new(&base, SECRET, client);
        errors.push(b.list().unwrap_err().to_string());
    }

    let hex = |call: &str| {
        let d = sha2::Sha256::digest(format!("{call}{SECRET}").as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let mut banned = forms();
    banned.extend([
        hex("getMeetings"),
        hex("getServers"),
        "checksum=".into(),
        "?".into(),
    ]);
    let expected = [
        "is not issued by a CA rollout trusts",
        "another host",
        "from HTTPS down to plain HTTP",
        "redirected more than 5 times",
    ];
    let all = errors.join("\n");
    for e in &errors {
        for b in &banned {
            assert!(!e.contains(b.as_str()), "`{b}` shown in: {e}");
        }
    }
    for want in expected {
        assert!(all.contains(want), "no error says `{want}`:\n{all}");
    }
}
