//! Executor tests without SSH: the recording fake checks the round-trip budget (one check
//! script per host, one apply script only when something changes) and that one bad host
//! never stops the others; the local shell runs the real generated scripts against a
//! temporary folder to prove convergence, idempotence, handlers and failure reporting.

use rollout::app::{self, Options};
use rollout::connection::fake::FakeConnector;
use rollout::connection::local::LocalConnector;
use rollout::connection::{ConnError, Connector};
use rollout::exec::{self, Goal};
use rollout::report::{Event, Format, HostOutcome, HostResult, StepStatus};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A throwaway project: inventory, one role, one template, an output folder.
struct Project {
    dir: PathBuf,
}

impl Project {
    fn new(name: &str, hosts: &[&str], steps: &str, handlers: &str) -> Project {
        let dir =
            std::env::temp_dir().join(format!("rollout-engine-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("roles/app")).unwrap();
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::create_dir_all(dir.join("out")).unwrap();
        let mut inv = format!(
            "all:\n  vars:\n    out: {}\n    app_secret: {{secret: \"file:secret.txt\"}}\n  children:\n    apps:\n      roles: [app]\n      hosts:\n",
            dir.join("out").display()
        );
        for h in hosts {
            inv.push_str(&format!("        {h}:\n          connection: local\n"));
        }
        std::fs::write(dir.join("inventory.yml"), inv).unwrap();
        std::fs::write(dir.join("secret.txt"), "s3cr3t-value-42\n").unwrap();
        std::fs::write(dir.join("roles/app/steps.yml"), steps).unwrap();
        std::fs::write(dir.join("roles/app/handlers.yml"), handlers).unwrap();
        std::fs::write(
            dir.join("templates/app.conf.j2"),
            "name={{ inventory_hostname }}\nsecret={{ app_secret }}\n",
        )
        .unwrap();
        Project { dir }
    }

    fn args(&self) -> Options {
        Options {
            inventory: self.dir.join("inventory.yml"),
            limit: None,
            tags: vec![],
            skip_tags: vec![],
            forks: 10,
            extra_vars: vec![],
            output: Format::Plain,
            verbose: false,
            accept_new_host_keys: false,
            lock_wait: None,
            ansible_inventory: vec![],
            vault_password_file: None,
            become_password: None,
            vault_ids: vec![],
        }
    }

    fn out(&self, f: &str) -> PathBuf {
        self.dir.join("out").join(f)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const STEPS: &str = r#"
- name: config
  file: {path: "{{ out }}/{{ inventory_hostname }}.conf", template: app.conf.j2, mode: "0640"}
  notify: reload
- name: data dir
  directory: {path: "{{ out }}/{{ inventory_hostname }}.d", mode: "0750"}
- name: recordings off
  property: {path: "{{ out }}/{{ inventory_hostname }}.properties", key: disableRecordingDefault, value: true}
- name: salt
  property: {path: "{{ out }}/{{ inventory_hostname }}.properties", key: securitySalt, value: "{{ app_secret }}"}
- name: hosts line
  line: {path: "{{ out }}/{{ inventory_hostname }}.hosts", line: "10.0.0.5 turn.example.org", regexp: "turn\\.example\\.org$"}
- name: init
  command: {run: "echo initialised > {{ out }}/{{ inventory_hostname }}.init", creates: "{{ out }}/{{ inventory_hostname }}.init"}
"#;

const HANDLERS: &str = r#"
- name: reload
  command: {run: "echo reload >> {{ out }}/{{ inventory_hostname }}.reloads"}
"#;

async fn run(
    p: &Project,
    goal: Goal,
    connector: Arc<dyn Connector>,
) -> (Vec<HostResult>, Vec<Event>) {
    run_guarded(p, goal, connector, None, &[], 10).await
}

/// [`run`] with `forks` hosts at once.
async fn run_forks(
    p: &Project,
    goal: Goal,
    connector: Arc<dyn Connector>,
    forks: usize,
) -> (Vec<HostResult>, Vec<Event>) {
    run_guarded(p, goal, connector, None, &[], forks).await
}

/// [`run`] with a meeting guard, and `owed` handlers (host, handler index) as an earlier
/// held apply leaves them.
async fn run_guarded(
    p: &Project,
    goal: Goal,
    connector: Arc<dyn Connector>,
    guard: Option<Arc<dyn exec::MeetingGuard>>,
    owed: &[(&str, usize)],
    forks: usize,
) -> (Vec<HostResult>, Vec<Event>) {
    let mut prepared = app::load(&p.args(), &serde_json::Map::new()).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    for plan in &mut prepared.plans {
        plan.owed = owed
            .iter()
            .filter(|(h, _)| *h == plan.host.name)
            .map(|(_, i)| *i)
            .collect();
    }
    let secrets = prepared.inventory.secrets.clone();
    let opts = Arc::new(exec::Options {
        goal,
        forks,
        verbose: true,
        secrets,
        guard,
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let results = exec::run(prepared.plans, connector, opts, tx).await;
    let mut events = vec![];
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    (results, events)
}

fn changed(results: &[HostResult]) -> usize {
    results.iter().map(|r| r.changed).sum()
}

#[tokio::test]
async fn converges_then_changes_nothing_on_the_real_shell() {
    let p = Project::new("converge", &["a", "b"], STEPS, HANDLERS);
    let (plan, _) = run(&p, Goal::Plan, Arc::new(LocalConnector::default())).await;
    assert_eq!(
        changed(&plan),
        12,
        "plan: 6 steps would change on each host"
    );
    assert!(!p.out("a.conf").exists(), "plan changes nothing");

    let (first, events) = run(&p, Goal::Apply, Arc::new(LocalConnector::default())).await;
    assert!(
        first.iter().all(|r| r.outcome == HostOutcome::Ok),
        "{first:?}"
    );
    assert_eq!(changed(&first), 12);
    assert_eq!(
        std::fs::read_to_string(p.out("a.conf")).unwrap(),
        "name=a\nsecret=s3cr3t-value-42\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.out("a.properties")).unwrap(),
        "disableRecordingDefault=true\nsecuritySalt=s3cr3t-value-42\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.out("b.reloads")).unwrap(),
        "reload\n",
        "the handler runs once"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(p.out("a.conf"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    // Nothing the operator sees carries the secret (scripts are shown with -v here).
    let shown = format!("{events:?}");
    assert!(
        !shown.contains("s3cr3t-value-42"),
        "secret leaked into events"
    );

    let (second, _) = run(&p, Goal::Apply, Arc::new(LocalConnector::default())).await;
    assert_eq!(
        changed(&second),
        0,
        "a second apply changes nothing: {second:?}"
    );
    assert_eq!(
        std::fs::read_to_string(p.out("b.reloads")).unwrap(),
        "reload\n",
        "no handler without a change"
    );

    // Drift is detected and repaired, and only the drifted step is applied.
    std::fs::write(
        p.out("a.properties"),
        "disableRecordingDefault=false\nsecuritySalt=s3cr3t-value-42\n",
    )
    .unwrap();
    let (third, events) = run(&p, Goal::Apply, Arc::new(LocalConnector::default())).await;
    assert_eq!(changed(&third), 1);
    let applied: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Step {
                label,
                status: StepStatus::Changed,
                ..
            } => Some(label),
            _ => None,
        })
        .collect();
    assert_eq!(applied, vec!["app: recordings off"]);
}

#[tokio::test]
async fn a_failing_step_stops_its_host_with_the_step_and_output_named() {
    let steps = format!(
        "{STEPS}\n- name: broken\n  command: {{run: \"echo boom >&2; exit 3\", creates: /nonexistent/rollout/x}}\n- name: after\n  directory: {{path: \"{{{{ out }}}}/never\"}}\n"
    );
    let p = Project::new("fail", &["a"], &steps, HANDLERS);
    let (res, _) = run(&p, Goal::Apply, Arc::new(LocalConnector::default())).await;
    match &res[0].outcome {
        HostOutcome::Failed(m) => assert_eq!(m, "app: broken: exit code 3: boom"),
        o => panic!("expected failure, got {o:?}"),
    }
    assert!(!p.out("never").exists(), "steps after a failure do not run");
    assert!(
        !p.out("a.reloads").exists(),
        "handlers do not run after a failure"
    );
}

#[tokio::test]
async fn a_failing_file_step_is_named_with_its_error() {
    // File steps run inline (no `timeout`, no shell of their own): their failure reads the
    // same as any other step's.
    let steps = format!(
        "{STEPS}\n- name: nowhere\n  file: {{path: \"{{{{ out }}}}/missing-dir/x.conf\", content: \"x\"}}\n- name: after\n  directory: {{path: \"{{{{ out }}}}/never\"}}\n"
    );
    let p = Project::new("failfile", &["a"], &steps, HANDLERS);
    let (res, _) = run(&p, Goal::Apply, Arc::new(LocalConnector::default())).await;
    match &res[0].outcome {
        HostOutcome::Failed(m) => assert!(
            m.starts_with("app: nowhere: exit code 1: directory ")
                && m.ends_with("/missing-dir does not exist"),
            "{m}"
        ),
        o => panic!("expected failure, got {o:?}"),
    }
    assert!(!p.out("never").exists(), "steps after a failure do not run");
}

/// Answers like a host where nothing exists yet: every check finds a change; every apply
/// item succeeds.
fn blank_host(_host: &str, script: &str) -> Result<String, ConnError> {
    let marker = script
        .split_whitespace()
        .find(|w| w.starts_with("'@@rollout-"))
        .map(|w| w.trim_matches('\'').to_string());
    let marker = marker
        .or_else(|| {
            script
                .split('"')
                .find(|w| w.starts_with("@@rollout-"))
                .map(|w| w.split(' ').next().unwrap().to_string())
        })
        .expect("marker");
    let is_apply = script.contains("__rl_end");
    let mut out = String::new();
    if is_apply {
        for i in 0..script.matches(&format!("\necho '{marker} b ")).count() {
            out.push_str(&format!("{marker} b {i}\n{marker} e {i} 0\n"));
        }
        return Ok(out);
    }
    // Nothing exists: `stat` and `sha256sum` print nothing, every properties and line file
    // is missing, every step's own probe finds nothing.
    for w in script.split(&format!("echo '{marker} ")).skip(1) {
        let mut f = w.split(['\'', ' ']);
        match (f.next(), f.next()) {
            (Some("b"), Some(i)) => out.push_str(&format!("{marker} b {i}\nA\n{marker} e {i} 0\n")),
            (Some(tag @ ("P" | "L")), Some(j)) => out.push_str(&format!("{marker} {tag} {j}\n")),
            // The line pass, packages, units and ports: sections with nothing in them.
            (Some(tag @ ("l" | "k" | "a" | "u" | "v" | "w")), _) => {
                out.push_str(&format!("{marker} {tag}\n"))
            }
            _ => {}
        }
    }
    out.push_str(&format!("{marker} z\n"));
    Ok(out)
}

#[tokio::test]
async fn one_check_and_one_apply_round_trip_per_host() {
    let p = Project::new("roundtrips", &["a", "b", "c"], STEPS, HANDLERS);
    let fake = FakeConnector::new(blank_host);
    let (res, _) = run(&p, Goal::Apply, Arc::new(fake.clone())).await;
    assert!(res.iter().all(|r| r.outcome == HostOutcome::Ok), "{res:?}");
    for h in ["a", "b", "c"] {
        let scripts = fake.scripts(h);
        assert_eq!(
            scripts.len(),
            2,
            "host {h}: exactly one check and one apply script"
        );
        assert!(
            !scripts[0].contains("s3cr3t-value-42"),
            "the check script carries hashes, not content"
        );
        assert!(scripts[1].contains("__rl_write"), "apply writes the file");
        assert!(
            scripts[1].ends_with("__rollout_main\n"),
            "nothing runs unless the whole script arrived"
        );
    }
    let fake = FakeConnector::new(blank_host);
    let (_, _) = run(&p, Goal::Plan, Arc::new(fake.clone())).await;
    assert_eq!(fake.scripts("a").len(), 1, "plan is one round trip");
}

#[tokio::test]
async fn an_unreachable_host_never_stops_the_others() {
    let p = Project::new("unreachable", &["a", "b", "c"], STEPS, HANDLERS);
    let mut fake = FakeConnector::new(blank_host);
    fake.unreachable.push("b".into());
    let (res, _) = run(&p, Goal::Apply, Arc::new(fake)).await;
    assert_eq!(res[0].outcome, HostOutcome::Ok);
    assert_eq!(
        res[1].outcome,
        HostOutcome::Unreachable("ssh: connect to host: Connection refused".into())
    );
    assert_eq!(res[2].outcome, HostOutcome::Ok);
    let summary = rollout::report::summary(&res);
    assert!(
        summary.contains("b: UNREACHABLE: ssh: connect to host: Connection refused"),
        "{summary}"
    );
}

#[test]
fn interrupted_scripts_run_nothing() {
    // A script cut off anywhere before its last line defines a function but never calls it.
    let p = Project::new("cut", &["a"], STEPS, HANDLERS);
    let prepared = app::load(&p.args(), &serde_json::Map::new()).unwrap();
    let plan = &prepared.plans[0];
    let nonce = rollout::script::Nonce::new();
    let items: Vec<_> = (0..plan.steps.len())
        .map(rollout::plan::Item::Step)
        .collect();
    let script = rollout::plan::apply_script(plan, &items, &nonce);
    for cut in [script.len() / 3, script.len() / 2, script.len() - 2] {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script[..cut])
            .output()
            .unwrap();
        let _ = out;
        assert!(
            !Path::new(&p.out("a.conf")).exists(),
            "a script cut at byte {cut} ran something"
        );
    }
}

/// Holds every host named in `busy`, lets the others go, and counts the questions.
struct TestGuard {
    busy: Vec<&'static str>,
    asked: std::sync::Mutex<Vec<(String, Vec<String>)>>,
}

impl exec::MeetingGuard for TestGuard {
    fn clear<'a>(
        &'a self,
        host: &'a str,
        _goal: Goal,
        items: &'a [String],
        _events: &'a tokio::sync::mpsc::UnboundedSender<Event>,
    ) -> exec::ClearanceFuture<'a> {
        self.asked
            .lock()
            .unwrap()
            .push((host.to_string(), items.to_vec()));
        let busy = self.busy.contains(&host);
        Box::pin(async move {
            if busy {
                exec::Clearance::Hold("2 meetings running".into())
            } else {
                exec::Clearance::Go
            }
        })
    }
}

const HOLD_HANDLERS: &str = r#"
- name: reload
  command: {run: "echo reload >> {{ out }}/{{ inventory_hostname }}.reloads"}
- name: restart
  ends_meetings: true
  command: {run: "echo restart >> {{ out }}/{{ inventory_hostname }}.restarts"}
"#;

const HOLD_STEPS: &str = r#"
- name: config
  file: {path: "{{ out }}/{{ inventory_hostname }}.conf", content: "x\n"}
  notify: [reload, restart]
- name: other
  file: {path: "{{ out }}/{{ inventory_hostname }}.other", content: "y\n"}
"#;

fn lines(p: &Project, f: &str) -> usize {
    std::fs::read_to_string(p.out(f))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[tokio::test]
async fn what_ends_meetings_is_held_on_a_busy_host_and_owed_handlers_run_later() {
    let p = Project::new("hold", &["a", "b"], HOLD_STEPS, HOLD_HANDLERS);
    let guard = Arc::new(TestGuard {
        busy: vec!["a"],
        asked: Default::default(),
    });
    let (results, events) = run_guarded(
        &p,
        Goal::Apply,
        Arc::new(LocalConnector::default()),
        Some(guard.clone()),
        &[],
        10,
    )
    .await;
    // The config change and the harmless handler run everywhere; the restart only on b.
    assert!(p.out("a.conf").exists() && p.out("a.other").exists());
    assert_eq!((lines(&p, "a.reloads"), lines(&p, "a.restarts")), (1, 0));
    assert_eq!((lines(&p, "b.reloads"), lines(&p, "b.restarts")), (1, 1));
    assert_eq!(results[0].outcome, HostOutcome::Ok);
    let held = results[0].held.as_ref().expect("a is held");
    assert_eq!(held.reason, "2 meetings running");
    assert_eq!(held.pending, vec!["app: restart".to_string()]);
    assert_eq!(held.handlers, vec![("app".into(), "restart".into())]);
    assert!(results[1].held.is_none());
    assert!(events.iter().any(|e| matches!(e,
        Event::Note { host: Some(h), text } if h == "a" && text == "held: 2 meetings running; restart pending: app: restart")));
    // Asked once per host, about the restart only.
    let mut asked = guard.asked.lock().unwrap().clone();
    asked.sort();
    assert_eq!(
        asked,
        vec![
            ("a".to_string(), vec!["app: restart".to_string()]),
            ("b".to_string(), vec!["app: restart".to_string()])
        ]
    );

    // Nothing changes any more: the guard is not asked, nothing runs.
    let (results, _) = run_guarded(
        &p,
        Goal::Apply,
        Arc::new(LocalConnector::default()),
        Some(guard.clone()),
        &[],
        10,
    )
    .await;
    assert_eq!(guard.asked.lock().unwrap().len(), 2);
    assert!(results.iter().all(|r| r.held.is_none() && r.changed == 0));

    // a is free now and owed its restart (handler index 1): it runs, once, with no change.
    let free = Arc::new(TestGuard {
        busy: vec![],
        asked: Default::default(),
    });
    let (results, _) = run_guarded(
        &p,
        Goal::Apply,
        Arc::new(LocalConnector::default()),
        Some(free),
        &[("a", 1)],
        10,
    )
    .await;
    assert_eq!(results[0].outcome, HostOutcome::Ok);
    assert!(results[0].held.is_none());
    assert_eq!((lines(&p, "a.reloads"), lines(&p, "a.restarts")), (1, 1));
    assert_eq!(lines(&p, "b.restarts"), 1);
}

/// A `wait_for` barrier reports ok, never changed (README: "a barrier … reports ok"), also
/// when the check found its port closed and the apply had to wait for it.
#[tokio::test]
async fn a_barrier_that_had_to_wait_reports_ok_not_changed() {
    let steps = format!("{STEPS}\n- name: port open\n  wait_for: {{port: 1, timeout: 5}}\n");
    let p = Project::new("barrier", &["a"], &steps, HANDLERS);
    // blank_host: the check finds every step to do, the port closed; every apply item succeeds.
    let (plan, events) = run(&p, Goal::Plan, Arc::new(FakeConnector::new(blank_host))).await;
    assert_eq!((plan[0].changed, plan[0].ok), (6, 1), "{plan:?}");
    let status_of = |events: &[Event]| -> Vec<StepStatus> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Step { label, status, .. } if label == "app: port open" => Some(*status),
                _ => None,
            })
            .collect()
    };
    assert_eq!(status_of(&events), [StepStatus::Ok]);

    let fake = FakeConnector::new(blank_host);
    let (res, events) = run(&p, Goal::Apply, Arc::new(fake.clone())).await;
    assert_eq!(res[0].outcome, HostOutcome::Ok);
    assert_eq!((res[0].changed, res[0].ok), (6, 1), "{res:?}");
    assert!(
        fake.scripts("a")[1].contains("/dev/tcp/$1/$2"),
        "the barrier waits in apply"
    );
    assert_eq!(
        status_of(&events),
        [StepStatus::Pending, StepStatus::Ok],
        "checked, then waited and reported ok"
    );
}

/// Files the out folder holds, sorted (temporary files included).
fn listing(p: &Project) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(p.dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `download` verifies the pinned sha256 before it replaces `dest`: a file whose checksum
/// differs fails the host naming both checksums, and `dest` keeps its old content, with no
/// temporary file left beside it.
#[tokio::test]
async fn a_download_with_another_checksum_is_refused_and_dest_kept() {
    let steps = "- name: fetch\n  download: {url: \"file://{{ out }}/../served.bin\", dest: \"{{ out }}/a.bin\", sha256: \"{{ pin }}\"}\n";
    let p = Project::new("download", &["a"], steps, HANDLERS);
    let served = p.dir.join("served.bin");
    std::fs::write(&served, "the file as served today\n").unwrap();
    std::fs::write(p.out("a.bin"), "old content\n").unwrap();
    let good = rollout::script::sha256_hex(b"the file as served today\n");
    let pinned = rollout::script::sha256_hex(b"the file as reviewed\n");
    let inv = std::fs::read_to_string(p.dir.join("inventory.yml")).unwrap();
    std::fs::write(
        p.dir.join("inventory.yml"),
        inv.replace("  vars:\n", &format!("  vars:\n    pin: {pinned}\n")),
    )
    .unwrap();
    let (res, _) = run(&p, Goal::Apply, Arc::new(LocalConnector::default())).await;
    match &res[0].outcome {
        HostOutcome::Failed(m) => assert!(
            m.contains("checksum mismatch for file://")
                && m.contains(&format!("got {good}, pinned {pinned}")),
            "{m}"
        ),
        o => panic!("a wrong checksum must fail the host, got {o:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(p.out("a.bin")).unwrap(),
        "old content\n"
    );
    assert_eq!(listing(&p), ["a.bin"], "no temporary file is left");

    // The same download with the right pin replaces the file.
    std::fs::write(
        p.dir.join("inventory.yml"),
        inv.replace("  vars:\n", &format!("  vars:\n    pin: {good}\n")),
    )
    .unwrap();
    let (res, _) = run(&p, Goal::Apply, Arc::new(LocalConnector::default())).await;
    assert_eq!(res[0].outcome, HostOutcome::Ok);
    assert_eq!(
        std::fs::read_to_string(p.out("a.bin")).unwrap(),
        "the file as served today\n"
    );
}

/// A failed `assert` stops its host in the check phase: the steps before it that would
/// change (a file, a property, a command) are not applied, and no apply script is sent.
#[tokio::test]
async fn a_failed_assert_stops_the_host_before_anything_changes() {
    let steps = format!(
        "{STEPS}\n- name: preflight\n  assert: {{that: \"test -e {{{{ out }}}}/go-ahead\", message: \"no go-ahead file\"}}\n"
    );
    let p = Project::new("assert", &["a"], &steps, HANDLERS);
    let (res, _) = run(&p, Goal::Apply, Arc::new(LocalConnector::default())).await;
    assert_eq!(
        res[0].outcome,
        HostOutcome::Failed("app: preflight: no go-ahead file".into())
    );
    assert_eq!(res[0].changed, 0);
    assert_eq!(listing(&p), Vec::<String>::new(), "nothing changed");

    let fake = FakeConnector::new(blank_host);
    let (res, _) = run(&p, Goal::Apply, Arc::new(fake.clone())).await;
    // blank_host answers `A` for every probe: the assert's test printed nothing, so failed.
    assert!(matches!(res[0].outcome, HostOutcome::Failed(_)), "{res:?}");
    assert_eq!(fake.scripts("a").len(), 1, "only the check script was sent");

    // With the file there the same run converges.
    std::fs::write(p.out("go-ahead"), "").unwrap();
    let (res, _) = run(&p, Goal::Apply, Arc::new(LocalConnector::default())).await;
    assert_eq!(res[0].outcome, HostOutcome::Ok);
    assert!(p.out("a.conf").exists());
}

/// The preflight gate: one host's failed `assert` stops the whole apply before any host
/// changes (a pool is one system). Host `a` passes its preflight and has files to write; `b`
/// fails it. Neither writes a thing, `a` says why, and the command exits 2 naming `b`, the
/// step and its message. It holds with `--forks 1` (a host waiting at the gate gives its
/// slot back), costs no extra round trip, and once `b` passes the same run converges.
#[tokio::test]
async fn a_failed_assert_on_one_host_changes_no_host() {
    let steps = format!(
        "{STEPS}\n- name: preflight\n  assert: {{that: \"test -e {{{{ out }}}}/go-{{{{ inventory_hostname }}}}\", message: \"no go-ahead for {{{{ inventory_hostname }}}}\"}}\n"
    );
    let p = Project::new("gate", &["a", "b"], &steps, HANDLERS);
    std::fs::write(p.out("go-a"), "").unwrap();
    for forks in [10, 1] {
        let run = run_forks(&p, Goal::Apply, Arc::new(LocalConnector::default()), forks);
        let (res, _) = tokio::time::timeout(std::time::Duration::from_secs(60), run)
            .await
            .expect("the gate never deadlocks");
        assert_eq!(
            res[0].outcome,
            HostOutcome::Failed("not changed: preflight failed on b".into()),
            "forks {forks}"
        );
        assert!(res[0].preflight.is_empty());
        assert_eq!(
            res[1].outcome,
            HostOutcome::Failed("app: preflight: no go-ahead for b".into())
        );
        assert_eq!(res[1].preflight, ["app: preflight: no go-ahead for b"]);
        assert_eq!(changed(&res), 0);
        assert_eq!(listing(&p), ["go-a"], "no host was changed (forks {forks})");
    }
    // One check script per host, no apply script: the gate adds no round trip.
    let fake = FakeConnector::new(blank_host);
    let (res, _) = run(&p, Goal::Apply, Arc::new(fake.clone())).await;
    assert!(res.iter().all(|r| !r.preflight.is_empty()), "{res:?}");
    assert_eq!(fake.scripts("a").len(), 1);
    assert_eq!(fake.scripts("b").len(), 1);

    // The command: exit 2, each failing host, step and message named, nothing changed.
    let cli = |cmd: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rollout"))
            .args([cmd, p.dir.join("inventory.yml").to_str().unwrap()])
            .args(["--output", "plain"])
            .env_remove("TERM")
            .output()
            .unwrap()
    };
    for cmd in ["apply", "plan"] {
        let out = cli(cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        let said = if cmd == "apply" {
            "no host was changed"
        } else {
            "`rollout apply` would change no host"
        };
        assert!(
            err.contains(&format!("error: preflight failed on 1 host: {said}"))
                && err.contains("\n  b: app: preflight: no go-ahead for b\n"),
            "{cmd}: {err}"
        );
        assert_eq!(listing(&p), ["go-a"], "{cmd} changed nothing");
    }

    // Once `b` passes, the same apply converges both hosts.
    std::fs::write(p.out("go-b"), "").unwrap();
    let (res, _) = run(&p, Goal::Apply, Arc::new(LocalConnector::default())).await;
    assert!(res.iter().all(|r| r.outcome == HostOutcome::Ok), "{res:?}");
    assert!(p.out("a.conf").exists() && p.out("b.conf").exists());
}

/// What a failing step prints is redacted: a command that prints a file holding the secret
/// to stderr and fails shows `<redacted>` in the host's reason and in every event.
#[tokio::test]
async fn a_failing_steps_output_is_redacted() {
    let steps = format!(
        "{STEPS}\n- name: leak\n  command: {{run: \"cat {{{{ out }}}}/{{{{ inventory_hostname }}}}.conf >&2; exit 4\", creates: /nonexistent/rollout/x}}\n"
    );
    let p = Project::new("redact", &["a"], &steps, HANDLERS);
    let (res, events) = run(&p, Goal::Apply, Arc::new(LocalConnector::default())).await;
    match &res[0].outcome {
        HostOutcome::Failed(m) => {
            assert_eq!(m, "app: leak: exit code 4: name=a | <redacted>")
        }
        o => panic!("expected failure, got {o:?}"),
    }
    let shown = format!("{events:?}{:?}", rollout::report::summary(&res));
    assert!(!shown.contains("s3cr3t-value-42"), "{shown}");
    assert!(shown.contains("name=a | <redacted>"), "{shown}");
}

/// A template error on one host stops the whole run before any host is touched: exit 2,
/// the template and host named, and the other hosts' files are not written either.
#[test]
fn a_bad_template_for_one_host_leaves_every_host_untouched() {
    let p = Project::new("badtemplate", &["a", "b", "c"], STEPS, HANDLERS);
    std::fs::write(
        p.dir.join("templates/app.conf.j2"),
        "name={{ inventory_hostname }}\nsecret={{ app_secret }}\n{% if inventory_hostname == 'b' %}{{ undefined_for_b }}{% endif %}\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollout"))
        .args([
            "apply",
            p.dir.join("inventory.yml").to_str().unwrap(),
            "--output",
            "plain",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("app.conf.j2") && err.contains("host b") && err.contains("undefined"),
        "{err}"
    );
    assert_eq!(listing(&p), Vec::<String>::new(), "no host was touched");
}

/// A file write killed by a signal (the remote shell's process group on a lost connection or
/// a shutdown) leaves the target as it was and removes its temporary file, for each of the
/// signals a dying session gets. The lab test `killing_the_remote_shell_mid_write...` does
/// the same through SSH with a large file.
#[test]
fn a_write_killed_by_a_signal_leaves_the_target_and_no_temp_file() {
    for signal in ["TERM", "HUP", "INT"] {
        let dir = std::env::temp_dir().join(format!(
            "rollout-engine-killwrite-{signal}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("app.conf");
        std::fs::write(&target, "old\n").unwrap();
        // The content arrives, then the sender stalls: the write is in progress when the
        // signal comes.
        let script = format!(
            "{}{{ printf 'bmV3Cg==\\n'; sleep 30; }} | __rl_write {} '' '' ''\n",
            rollout::step::LIB,
            rollout::script::quote(target.to_str().unwrap())
        );
        let mut child = std::process::Command::new("setsid")
            .args(["sh", "-c", &script])
            .spawn()
            .unwrap();
        let temp = || {
            std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(".rollout."))
                .collect::<Vec<_>>()
        };
        let start = std::time::Instant::now();
        while temp().is_empty() {
            assert!(start.elapsed().as_secs() < 10, "the write never started");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let pgid = format!("-{}", child.id());
        let killed = std::process::Command::new("kill")
            .args(["-s", signal, "--", &pgid])
            .status()
            .unwrap();
        assert!(killed.success());
        let _ = child.wait();
        // The shell is gone; its subshell may still be running the trap: wait for the group.
        let start = std::time::Instant::now();
        while std::process::Command::new("kill")
            .args(["-0", "--", &pgid])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            assert!(start.elapsed().as_secs() < 10, "the writer did not end");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old\n");
        assert_eq!(
            temp(),
            Vec::<String>::new(),
            "SIG{signal} left a temporary file"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The table at the end of a run, exactly: the host column as wide as the longest name,
/// counts right-aligned, seconds to one decimal, the totals line (with the held count), then
/// each host that failed, was unreachable or was held, with why. Hosts: `a` converges,
/// `b`'s first change fails on the host, `longer-host` is held by a meeting, `d` cannot be
/// reached. Wall times vary and are set before the table is drawn.
#[tokio::test]
async fn the_summary_table_reads_exactly() {
    let p = Project::new(
        "table",
        &["a", "b", "longer-host", "d"],
        HOLD_STEPS,
        HOLD_HANDLERS,
    );
    let mut fake = FakeConnector::new(|host: &str, script: &str| {
        let out = blank_host(host, script)?;
        if host == "b" && script.contains("__rl_end") {
            // The first apply item exits 1 with nothing on stderr, and the script stops.
            let cut = out.find(" e 0 0\n").expect("item 0") + " e 0 0\n".len();
            return Ok(out[..cut].replace(" e 0 0\n", " e 0 1\n"));
        }
        Ok(out)
    });
    fake.unreachable.push("d".into());
    let guard = Arc::new(TestGuard {
        busy: vec!["longer-host"],
        asked: Default::default(),
    });
    let (mut res, _) = run_guarded(&p, Goal::Apply, Arc::new(fake), Some(guard), &[], 10).await;
    for (r, s) in res.iter_mut().zip([0.04, 1.26, 12.0, 123.449]) {
        r.seconds = s;
    }
    assert_eq!(
        rollout::report::summary(&res),
        "\
HOST            OK  CHANGED  FAILED  UNREACHABLE  SECONDS
a                0        2       0            0      0.0
b                0        0       1            0      1.3
longer-host      0        2       0            0     12.0
d                0        0       0            1    123.4
4 hosts, 4 changes, 2 failed or unreachable, 1 held (meetings running; restart pending)
  b: FAILED: app: config: exit code 1
  longer-host: held: 2 meetings running; restart pending: app: restart
  d: UNREACHABLE: ssh: connect to host: Connection refused
"
    );
}

/// Handlers run once, at the end of the host's run, in the order of `handlers.yml`, and only
/// when a changed step notified them: two steps notifying one handler run it once; a step
/// that did not change notifies nothing.
#[tokio::test]
async fn notified_handlers_run_once_at_the_end_in_file_order() {
    let steps = r#"
- name: first
  command: {run: "echo first >> {{ out }}/log; touch {{ out }}/first", creates: "{{ out }}/first"}
  notify: [second handler, first handler]
- name: second
  command: {run: "echo second >> {{ out }}/log; touch {{ out }}/second", creates: "{{ out }}/second"}
  notify: first handler
- name: unchanged
  directory: {path: "{{ out }}"}
  notify: never notified
"#;
    let handlers = r#"
- name: first handler
  command: {run: "echo first handler >> {{ out }}/log"}
- name: second handler
  command: {run: "echo second handler >> {{ out }}/log"}
- name: never notified
  command: {run: "echo never >> {{ out }}/log"}
"#;
    let p = Project::new("handlers", &["a"], steps, handlers);
    let (res, _) = run(&p, Goal::Apply, Arc::new(LocalConnector::default())).await;
    assert_eq!(res[0].outcome, HostOutcome::Ok, "{res:?}");
    assert_eq!(
        std::fs::read_to_string(p.out("log")).unwrap(),
        "first\nsecond\nfirst handler\nsecond handler\n"
    );
    // Nothing changes: no handler runs.
    run(&p, Goal::Apply, Arc::new(LocalConnector::default())).await;
    assert_eq!(lines(&p, "log"), 4);
}
