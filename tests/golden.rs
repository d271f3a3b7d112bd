//! Golden files: what the roles render for the sample pool `tests/golden/pool.yml` must match
//! the reviewed files `tests/golden/<name>.expected` byte for byte, and the XML files must parse
//! as the XML BigBlueButton and FreeSWITCH expect. No host is contacted: the plan is built with
//! the library, exactly as `rollout plan` builds it.
//!
//! After an intended change to a role or template, rewrite the expected files with
//! `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff before committing.

use rollout::inventory::Inventory;
use rollout::plan::{self, Filter, HostPlan};
use rollout::role;
use rollout::step::Action;
use rollout::template::Templates;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The fake secrets of the sample pool (environment variable, value).
const SECRETS: &[(&str, &str)] = &[
    ("GOLDEN_TURN_SECRET", "golden-turn-secret-5f3a9c"),
    ("GOLDEN_BBB1_SECRET", "golden-bbb1-secret-8d21e7"),
    ("GOLDEN_BBB2_SECRET", "golden-bbb2-secret-0c44b1"),
    ("GOLDEN_SIP_PASSWORD", "golden-sip-password-<&>"),
    ("GOLDEN_METRICS_PASSWORD", "golden-metrics-password-71"),
    ("GOLDEN_LB_SECRET", "golden-lb-secret-a93f20"),
    ("GOLDEN_SECRET_KEY_BASE", "golden-secret-key-base-6b5e"),
    ("GOLDEN_POSTGRES_PASSWORD", "golden-postgres-password-19"),
    ("GOLDEN_B3SCALE_JWT_SECRET", "golden-b3scale-jwt-secret-2d"),
    ("GOLDEN_B3SCALE_DB_PASSWORD", "golden-b3scale-db-password"),
];

/// Fake values for the secrets `inventories/example-pool.yml` references.
const EXAMPLE_SECRETS: &[(&str, &str)] = &[
    ("TURN_SECRET", "example-turn-secret"),
    ("BBB1_SECRET", "example-bbb1-secret"),
    ("BBB2_SECRET", "example-bbb2-secret"),
    ("BBB3_SECRET", "example-bbb3-secret"),
    ("BBB4_SECRET", "example-bbb4-secret"),
    ("LOADBALANCER_SECRET", "example-lb-secret"),
    ("SCALELITE_SECRET_KEY_BASE", "example-secret-key-base"),
    ("SCALELITE_POSTGRES_PASSWORD", "example-postgres-password"),
];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

struct Pool {
    inventory: Inventory,
    plans: Vec<HostPlan>,
}

/// The sample pool, planned once for all tests of this file.
fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        for (k, v) in SECRETS.iter().chain(EXAMPLE_SECRETS) {
            // SAFETY: runs once, inside OnceLock's initialiser, before any test of this
            // binary reads the environment (they all wait for this initialiser).
            unsafe { std::env::set_var(k, v) };
        }
        let inventory = rollout::inventory::load(&dir().join("pool.yml"), &Default::default())
            .unwrap_or_else(|d| panic!("sample inventory: {d}"));
        let hosts: Vec<_> = inventory.hosts.iter().collect();
        let names: Vec<&String> = hosts.iter().flat_map(|h| h.roles.iter()).collect();
        let roles =
            role::load_all(&inventory.roles_dir, names).unwrap_or_else(|d| panic!("roles: {d}"));
        let templates =
            Templates::load(&inventory.templates_dir).unwrap_or_else(|d| panic!("templates: {d}"));
        let plans = plan::build(
            &inventory,
            &hosts,
            &roles,
            &templates,
            &Filter::default(),
            &serde_json::Map::new(),
        )
        .unwrap_or_else(|ds| {
            panic!(
                "plan: {}",
                ds.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        Pool { inventory, plans }
    })
}

fn host(name: &str) -> &'static HostPlan {
    pool()
        .plans
        .iter()
        .find(|p| p.host.name == name)
        .unwrap_or_else(|| panic!("no host {name} in the sample pool"))
}

/// Every action of a host: steps, then handlers.
fn actions(h: &HostPlan) -> impl Iterator<Item = &Action> {
    h.steps.iter().chain(h.handlers.iter()).map(|p| &p.action)
}

/// The content a `file` step writes to `path` on `host`.
fn file(host_name: &str, path: &str) -> String {
    let h = host(host_name);
    let found: Vec<&String> = actions(h)
        .filter_map(|a| match a {
            Action::File(f) if f.path == path => f.content.as_ref(),
            _ => None,
        })
        .collect();
    match found.as_slice() {
        [one] => (*one).clone(),
        [] => panic!("{host_name}: no file step writes {path}"),
        _ => panic!("{host_name}: {} file steps write {path}", found.len()),
    }
}

/// The `key=value` lines the property steps set in `path` on `host`, in step order.
fn properties(host_name: &str, path: &str) -> String {
    let h = host(host_name);
    let mut out = String::new();
    for a in actions(h) {
        if let Action::Property(p) = a
            && p.path == path
            && let Some(v) = &p.value
        {
            out.push_str(&format!("{}{}{}\n", p.key, p.separator, v));
        }
    }
    assert!(
        !out.is_empty(),
        "{host_name}: no property step sets anything in {path}"
    );
    out
}

/// Compares `actual` with `tests/golden/<name>.expected`, or rewrites it with UPDATE_GOLDEN=1.
fn golden(name: &str, actual: &str) {
    let path = dir().join(format!("{name}.expected"));
    if std::env::var("UPDATE_GOLDEN").as_deref() == Ok("1") {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (create it with UPDATE_GOLDEN=1 cargo test --test golden)",
            path.display()
        )
    });
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual)
            .unified_diff()
            .header(&format!("{name}.expected"), "rendered")
            .to_string();
        panic!(
            "{name} differs from its golden file (UPDATE_GOLDEN=1 rewrites it after review):\n{diff}"
        );
    }
}

fn secret(var: &str) -> &'static str {
    SECRETS
        .iter()
        .find(|(k, _)| *k == var)
        .map(|(_, v)| *v)
        .expect("a known secret")
}

#[test]
fn turnserver_conf() {
    golden(
        "turnserver.conf",
        &file("turn.golden.test", "/etc/turnserver.conf"),
    );
}

/// The `that` of the turn host's `preflight TURN addresses on this host` with `vars` set
/// (as `-e` would), or None when the step is skipped.
fn turn_address_check(vars: &[(&str, &str)]) -> Option<String> {
    let run_vars: serde_json::Map<String, serde_json::Value> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    let (_, plans) =
        plan_with(&dir().join("pool.yml"), &run_vars).unwrap_or_else(|e| panic!("{e}"));
    let turn = plans
        .iter()
        .find(|p| p.host.name == "turn.golden.test")
        .expect("the turn host");
    turn.steps.iter().find_map(|p| match &p.action {
        Action::Assert(a) if p.spec.name == "preflight TURN addresses on this host" => {
            Some(a.that.clone())
        }
        _ => None,
    })
}

/// coturn's listening-ip, relay-ip and the PRIVATE part of external-ip PUBLIC/PRIVATE must be
/// addresses of the TURN host, which only the host knows: a preflight assert compares them
/// with `ip -o addr` there, before turnserver.conf is written. The step's test runs here in
/// `sh` against a fake `ip` printing a host's addresses.
#[test]
fn turn_addresses_must_be_on_the_turn_host() {
    let tmp = std::env::temp_dir().join(format!("rollout-golden-turn-ip-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let ip = tmp.join("ip");
    std::fs::write(
        &ip,
        "#!/bin/sh\n[ \"$*\" = '-o addr show' ] || { echo \"unexpected: ip $*\" >&2; exit 2; }\ncat <<'EOF'\n1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n1: lo    inet6 ::1/128 scope host noprefixroute \\       valid_lft forever preferred_lft forever\n2: eth0    inet 10.20.0.5/24 brd 10.20.0.255 scope global eth0\\       valid_lft forever preferred_lft forever\n2: eth0    inet6 2001:db8::5/64 scope global \\       valid_lft forever preferred_lft forever\nEOF\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ip, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", tmp.display(), std::env::var("PATH").unwrap());
    let run = |vars: &[(&str, &str)]| -> (bool, String) {
        let that = turn_address_check(vars).unwrap_or_else(|| panic!("skipped with {vars:?}"));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&that)
            .env("PATH", &path)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    // Nothing set, or a lone external-ip (the public address of a NAT setup): no check.
    assert_eq!(turn_address_check(&[]), None);
    assert_eq!(
        turn_address_check(&[("turn_external_ip", "203.0.113.7")]),
        None
    );
    for ok in [
        vec![("turn_relay_ip", "10.20.0.5")],
        vec![("turn_listening_ip", "2001:DB8::5")],
        vec![("turn_listening_ip", "0.0.0.0")],
        vec![("turn_external_ip", "203.0.113.7/10.20.0.5")],
        vec![
            ("turn_listening_ip", "10.20.0.5"),
            ("turn_relay_ip", "10.20.0.5"),
            ("turn_external_ip", "203.0.113.7/10.20.0.5"),
        ],
    ] {
        let (passed, out) = run(&ok);
        assert!(passed, "{ok:?}: {out}");
    }
    for (bad, said) in [
        (
            vec![("turn_relay_ip", "203.0.113.7")],
            "turn_relay_ip 203.0.113.7 is not an address of this host",
        ),
        (
            vec![("turn_relay_ip", "10.20.0")],
            "turn_relay_ip 10.20.0 is not an address of this host",
        ),
        (
            vec![("turn_listening_ip", "10.20.0.6")],
            "turn_listening_ip 10.20.0.6 is not an address of this host",
        ),
        (
            vec![("turn_external_ip", "203.0.113.7/10.20.0.9")],
            "the private part of turn_external_ip 10.20.0.9 is not an address of this host",
        ),
    ] {
        let (passed, out) = run(&bad);
        assert!(!passed, "{bad:?} passed: {out}");
        assert!(out.contains(said), "{bad:?}: {out}");
        assert!(
            out.contains("(it has: 127.0.0.1 ::1 10.20.0.5 2001:db8::5 )"),
            "{out}"
        );
    }
    // It runs before coturn's configuration is written.
    let (_, plans) = plan_with(
        &dir().join("pool.yml"),
        &[(
            "turn_relay_ip".to_string(),
            serde_json::Value::from("10.20.0.5"),
        )]
        .into_iter()
        .collect(),
    )
    .unwrap();
    let turn = plans
        .iter()
        .find(|p| p.host.name == "turn.golden.test")
        .unwrap();
    let at = |name: &str| turn.steps.iter().position(|p| p.spec.name == name).unwrap();
    assert!(at("preflight TURN addresses on this host") < at("turnserver.conf"));
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn coturn_systemd_drop_in() {
    let text = file(
        "turn.golden.test",
        "/etc/systemd/system/coturn.service.d/override.conf",
    );
    assert!(
        text.contains("\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n"),
        "{text}"
    );
    golden("coturn-override.conf", &text);
}

#[test]
fn coturn_certificate_hook() {
    // certbot mode: the deploy hook and rollout's own copy step are the same script.
    let hook = file(
        "turn.golden.test",
        "/etc/letsencrypt/renewal-hooks/deploy/coturn",
    );
    assert_eq!(
        hook,
        file("turn.golden.test", "/usr/local/sbin/rollout-coturn-cert")
    );
    golden("coturn-cert-hook.sh", &hook);
}

#[test]
fn turn_stun_servers_xml() {
    let text = file(
        "bbb1.golden.test",
        "/etc/bigbluebutton/turn-stun-servers.xml",
    );
    golden("turn-stun-servers.xml", &text);
    let doc = roxmltree::Document::parse(&text).expect("turn-stun-servers.xml is well-formed XML");
    let beans = doc.root_element();
    assert_eq!(beans.tag_name().name(), "beans");
    assert_eq!(
        beans.tag_name().namespace(),
        Some("http://www.springframework.org/schema/beans")
    );
    let args = |id: &str| -> Vec<String> {
        let bean = beans
            .children()
            .find(|n| n.has_tag_name("bean") && n.attribute("id") == Some(id))
            .unwrap_or_else(|| panic!("no bean {id}"));
        bean.children()
            .filter(|n| n.has_tag_name("constructor-arg"))
            .map(|n| n.attribute("value").unwrap().to_string())
            .collect()
    };
    // As bbb-install.sh 3.0 writes it: UDP 3478 first (Firefox's ICE needs it), then TLS
    // on 443; no turn:…:443?transport=tcp and no STUN bean.
    let s = secret("GOLDEN_TURN_SECRET");
    assert_eq!(args("turn0"), [s, "turn:turn.golden.test:3478", "86400"]);
    assert_eq!(
        args("turn1"),
        [s, "turns:turn.golden.test:443?transport=tcp", "86400"]
    );
    assert!(!text.contains("\"turn:turn.golden.test:443"), "{text}");
    assert!(!text.contains("stun:"), "{text}");
    let service = beans
        .children()
        .find(|n| n.attribute("id") == Some("stunTurnService"))
        .expect("stunTurnService");
    let refs: Vec<&str> = service
        .descendants()
        .filter(|n| n.has_tag_name("ref"))
        .filter_map(|n| n.attribute("bean"))
        .collect();
    assert_eq!(refs, ["turn0", "turn1"]);
    // The same file, root-only, is what apply-config.sh restores after an upgrade.
    assert_eq!(
        text,
        file(
            "bbb1.golden.test",
            "/etc/bigbluebutton/rollout/turn-stun-servers.xml"
        )
    );
}

#[test]
fn bbb_web_properties_recordings_off() {
    let text = properties("bbb1.golden.test", "/etc/bigbluebutton/bbb-web.properties");
    for line in [
        "disableRecordingDefault=true",
        "breakoutRoomsRecord=false",
        "allowStartStopRecording=false",
        "autoStartRecording=false",
        "defaultKeepEvents=false",
        "defaultNumDigitsForTelVoice=9",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert!(text.contains(&format!("securitySalt={}\n", secret("GOLDEN_BBB1_SECRET"))));
    golden("bbb-web.properties", &text);
}

/// akka-apps signs breakout join URLs with its own copy of the secret: rollout writes it in
/// bbb-apps-akka.conf in the form bbb-conf --setsecret writes (`sharedSecret="…"`).
#[test]
fn akka_shared_secret_equals_security_salt() {
    for (h, var) in [
        ("bbb1.golden.test", "GOLDEN_BBB1_SECRET"),
        ("bbb2.golden.test", "GOLDEN_BBB2_SECRET"),
    ] {
        assert_eq!(
            properties(h, "/etc/bigbluebutton/bbb-apps-akka.conf"),
            format!("sharedSecret=\"{}\"\n", secret(var))
        );
    }
}

/// The file holding akka-apps' copy of the secret is closed to other local users: its
/// package creates it 0644 root:root, and the step that writes the secret makes it 0640
/// root:bigbluebutton (akka-apps runs as bigbluebutton). `lab_watch` checks the file itself.
#[test]
fn akka_secret_file_is_root_bigbluebutton_0640() {
    for h in ["bbb1.golden.test", "bbb2.golden.test"] {
        let owned: Vec<_> = actions(host(h))
            .filter_map(|a| match a {
                Action::Property(p) if p.path == "/etc/bigbluebutton/bbb-apps-akka.conf" => {
                    Some(p.ownership.clone())
                }
                _ => None,
            })
            .collect();
        let want = rollout::step::Ownership {
            owner: Some("root".into()),
            group: Some("bigbluebutton".into()),
            mode: Some("0640".into()),
        };
        assert_eq!(owned, [want], "{h}");
    }
}

/// The health check refuses a node whose akka-apps secret differs from bbb-web's (every
/// breakout join would fail), without printing either secret. The rendered script runs here
/// on copies of the two files; its API URL points at a closed loopback port.
#[test]
fn health_check_compares_the_shared_secrets() {
    let script = file("bbb1.golden.test", "/usr/local/sbin/rollout-bbb-health");
    let tmp = std::env::temp_dir().join(format!("rollout-golden-health-{}", std::process::id()));
    let etc = tmp.join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let script = script
        .replace("/etc/bigbluebutton/", &format!("{}/", etc.display()))
        .replace(
            "https://bbb1.golden.test/bigbluebutton/api",
            "http://127.0.0.1:9/bigbluebutton/api",
        );
    let path = tmp.join("health");
    std::fs::write(&path, &script).unwrap();
    let s = secret("GOLDEN_BBB1_SECRET");
    std::fs::write(
        etc.join("bbb-web.properties"),
        format!("bigbluebutton.web.serverURL=https://bbb1.golden.test\nsecuritySalt={s}\n"),
    )
    .unwrap();
    let run = |akka: &str| {
        std::fs::write(
            etc.join("bbb-apps-akka.conf"),
            format!("include \"/usr/share/bbb-apps-akka/conf/application.conf\"\n\nservices {{\n  bbbWebAPI=\"https://bbb1.golden.test/bigbluebutton/api\"\n{akka}}}\n"),
        )
        .unwrap();
        let out = std::process::Command::new("sh")
            .arg(&path)
            .arg("0")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !err.contains(s),
            "the health check printed the secret: {err}"
        );
        (out.status.success(), err)
    };
    // As the package installs it, and as bbb-conf leaves it after rollout changed only securitySalt.
    for akka in [
        "  sharedSecret=\"changeme\"\n".to_string(),
        "  sharedSecret=\"golden-bbb2-secret-0c44b1\"\n".to_string(),
        String::new(),
    ] {
        let (ok, err) = run(&akka);
        assert!(
            !ok && err.contains("shared secret differs"),
            "{akka}: {err}"
        );
    }
    // Equal (as rollout's step writes it, and as the package's indented form): the secrets
    // pass, and the check goes on to the API (refused here).
    for akka in [
        format!("sharedSecret=\"{s}\"\n"),
        format!("  sharedSecret = \"{s}\"\n"),
    ] {
        let (ok, err) = run(&akka);
        assert!(!ok, "{err}");
        assert!(!err.contains("shared secret differs"), "{akka}: {err}");
        assert!(err.contains("did not answer getMeetings"), "{err}");
    }
    std::fs::remove_dir_all(&tmp).unwrap();
}

/// A scratch copy of a node's files for running rendered scripts: `etc` stands for
/// /etc/bigbluebutton, `webhooks` for bbb-webhooks' config folder, `overrides` for
/// /etc/bigbluebutton/bbb-webhooks and `sbin/` for /usr/local/sbin.
struct Node {
    root: PathBuf,
}

impl Node {
    fn new(tag: &str) -> Node {
        let root =
            std::env::temp_dir().join(format!("rollout-golden-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["etc/bbb-webhooks", "webhooks", "sbin"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let node = Node { root };
        // rollout's helper, as the role writes it.
        let helper = node.paths(&file(
            "bbb1.golden.test",
            "/usr/local/sbin/rollout-bbb-webhooks-secret",
        ));
        let path = node.root.join("sbin/rollout-bbb-webhooks-secret");
        std::fs::write(&path, helper).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        node
    }

    /// `text` with the node's paths pointing into the scratch copy.
    fn paths(&self, text: &str) -> String {
        let r = self.root.display();
        text.replace(
            "/usr/local/bigbluebutton/bbb-webhooks/config/",
            &format!("{r}/webhooks/"),
        )
        .replace("/etc/bigbluebutton/", &format!("{r}/etc/"))
        .replace("/usr/local/sbin/", &format!("{r}/sbin/"))
    }

    /// Runs `script` (paths rewritten) in sh with `args`: (success, stdout, stderr).
    fn sh(&self, script: &str, args: &[&str]) -> (bool, String, String) {
        let path = self.root.join("script");
        std::fs::write(&path, self.paths(script)).unwrap();
        let out = std::process::Command::new("sh")
            .arg(&path)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    fn write(&self, rel: &str, text: &str, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.root.join(rel);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap()
    }

    fn mode(&self, rel: &str) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(self.root.join(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// bbb-webhooks' config/default.yml in the shape its package writes it (the package's
/// default.example.yml with bbb.sharedSecret set by its postinst): `secret` as written there.
fn webhooks_default_yml(secret: &str) -> String {
    format!(
        "log:\n  level: info\n\n# Shared secret of your BigBlueButton server.\nbbb:\n  serverDomain: bbb1.golden.test\n  sharedSecret: {secret}\n  # Whether to use Auth2.0 or not\n  auth2_0: true\n  apiPath: /bigbluebutton/api\n\nredis:\n  host: 127.0.0.1\n"
    )
}

/// bbb-webhooks keeps its own copy of the shared secret (bbb.sharedSecret, which bbb-conf
/// --setsecret rewrites): the role's step writes it when the package is installed, through a
/// helper that reads the secret on stdin, and does nothing on a node without the package.
#[test]
fn webhooks_shared_secret_step() {
    golden(
        "bbb-webhooks-secret.sh",
        &file(
            "bbb1.golden.test",
            "/usr/local/sbin/rollout-bbb-webhooks-secret",
        ),
    );
    let (run, unless) = command_of(host("bbb1.golden.test"), "shared secret for bbb-webhooks");
    let unless = unless.as_str();
    let s = secret("GOLDEN_BBB1_SECRET");
    // The secret reaches the helper on stdin (a here-document), never on a command line, and
    // the plan's one-line summary of the step (its first line) does not show it.
    for script in [run.as_str(), unless] {
        assert!(
            script
                .lines()
                .filter(|l| l.contains(s))
                .all(|l| l.trim() == s),
            "{script}"
        );
    }
    assert!(!run.lines().next().unwrap().contains(s));
    let node = Node::new("webhooks-step");
    // Not installed: nothing to do.
    assert!(node.sh(unless, &[]).0);
    // As the package leaves it after rollout set securitySalt only, and 0644.
    node.write(
        "webhooks/default.yml",
        &webhooks_default_yml("mysharedsecret"),
        0o644,
    );
    let (ok, _, err) = node.sh(unless, &[]);
    assert!(!ok && !err.contains(s), "{err}");
    let (ok, out, err) = node.sh(&run, &[]);
    assert!(ok, "{err}");
    assert!(!out.contains(s) && !err.contains(s), "{out}{err}");
    assert_eq!(
        node.read("webhooks/default.yml"),
        webhooks_default_yml(&format!("\"{s}\"")),
        "only bbb.sharedSecret changes"
    );
    assert_eq!(node.mode("webhooks/default.yml"), 0o640);
    assert!(node.sh(unless, &[]).0, "converged");
    // Equal, but open to every local user again (the postinst's chmod 644 on an upgrade).
    node.write("webhooks/default.yml", &webhooks_default_yml(s), 0o644);
    assert!(!node.sh(unless, &[]).0);
    assert!(node.sh(&run, &[]).0);
    assert_eq!(node.mode("webhooks/default.yml"), 0o640);
    assert_eq!(node.read("webhooks/default.yml"), webhooks_default_yml(s));
    // An override (bbb-webhooks reads /etc/bigbluebutton/bbb-webhooks/production.yml after
    // the packaged file) that sets its own secret is kept equal too; one that sets none is
    // left alone.
    node.write(
        "etc/bbb-webhooks/production.yml",
        "bbb:\n  serverDomain: x\n",
        0o644,
    );
    assert!(node.sh(unless, &[]).0);
    node.write(
        "etc/bbb-webhooks/production.yml",
        "bbb:\n  sharedSecret: 'old-secret' # set by hand\nmodules: {}\n",
        0o644,
    );
    let (ok, _, err) = node.sh(unless, &[]);
    assert!(!ok, "{err}");
    assert!(node.sh(&run, &[]).0);
    assert_eq!(
        node.read("etc/bbb-webhooks/production.yml"),
        format!("bbb:\n  sharedSecret: \"{s}\"\nmodules: {{}}\n")
    );
    assert!(node.sh(unless, &[]).0);
    // A file without the key gets it in its bbb block.
    node.write(
        "webhooks/default.yml",
        "bbb:\n  serverDomain: x\nredis:\n  host: 127.0.0.1\n",
        0o640,
    );
    assert!(node.sh(&run, &[]).0);
    assert_eq!(
        node.read("webhooks/default.yml"),
        format!("bbb:\n  serverDomain: x\n  sharedSecret: \"{s}\"\nredis:\n  host: 127.0.0.1\n")
    );
    // The change restarts bbb-webhooks (a handler that ends no meeting).
    let plan = host("bbb1.golden.test");
    let step_spec = plan
        .steps
        .iter()
        .find(|p| p.spec.name == "shared secret for bbb-webhooks")
        .unwrap();
    assert_eq!(step_spec.spec.notify, ["restart bbb-webhooks"]);
    let handler = plan
        .handlers
        .iter()
        .find(|p| p.spec.name == "restart bbb-webhooks")
        .expect("handler restart bbb-webhooks");
    assert!(!handler.spec.ends_meetings);
}

/// apply-config.sh (which bbb-conf runs before it starts BBB, bbb-webhooks among it) copies
/// securitySalt into bbb-webhooks' file too, and `--check` reports it as drift.
#[test]
fn apply_config_keeps_the_webhooks_secret() {
    let script = file(
        "bbb1.golden.test",
        "/etc/bigbluebutton/bbb-conf/apply-config.sh",
    );
    let node = Node::new("webhooks-apply-config");
    let s = secret("GOLDEN_BBB1_SECRET");
    node.write(
        "etc/bbb-web.properties",
        &format!("securitySalt={s}\n"),
        0o640,
    );
    node.write(
        "webhooks/default.yml",
        &webhooks_default_yml("mysharedsecret"),
        0o644,
    );
    let run = |args: &[&str]| {
        let path = node.root.join("apply-config.sh");
        std::fs::write(&path, node.paths(&script)).unwrap();
        let out = std::process::Command::new("bash")
            .arg(&path)
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !text.contains(s),
            "apply-config.sh printed the secret: {text}"
        );
        (out.status.success(), text)
    };
    let (ok, text) = run(&["--check"]);
    assert!(!ok && text.contains("bbb-webhooks"), "{text}");
    let (ok, text) = run(&[]);
    assert!(ok, "{text}");
    assert_eq!(
        node.read("webhooks/default.yml"),
        webhooks_default_yml(&format!("\"{s}\""))
    );
    let (ok, text) = run(&["--check"]);
    assert!(!text.contains("bbb-webhooks"), "{text}");
    let _ = ok;
}

/// The health check also refuses a node whose bbb-webhooks holds another secret (every
/// hooks/* call would fail its checksum), naming the file, printing no secret.
#[test]
fn health_check_compares_the_webhooks_secret() {
    let script = file("bbb1.golden.test", "/usr/local/sbin/rollout-bbb-health").replace(
        "https://bbb1.golden.test/bigbluebutton/api",
        "http://127.0.0.1:9/bigbluebutton/api",
    );
    let node = Node::new("webhooks-health");
    let s = secret("GOLDEN_BBB1_SECRET");
    node.write(
        "etc/bbb-web.properties",
        &format!("securitySalt={s}\n"),
        0o640,
    );
    node.write(
        "etc/bbb-apps-akka.conf",
        &format!("services {{\n  sharedSecret=\"{s}\"\n}}\n"),
        0o640,
    );
    let run = || {
        let (ok, out, err) = node.sh(&script, &["0"]);
        assert!(!out.contains(s) && !err.contains(s), "{out}{err}");
        assert!(!ok, "the API is refused here");
        err
    };
    // Without bbb-webhooks: on to the API.
    assert!(run().contains("did not answer getMeetings"));
    for (text, override_yml) in [
        (webhooks_default_yml("mysharedsecret"), None),
        (
            webhooks_default_yml(s),
            Some("bbb:\n  sharedSecret: other-secret\n"),
        ),
    ] {
        node.write("webhooks/default.yml", &text, 0o640);
        if let Some(o) = override_yml {
            node.write("etc/bbb-webhooks/production.yml", o, 0o640);
        }
        let err = run();
        assert!(
            err.contains("the shared secret of bbb-webhooks")
                && err.contains(if override_yml.is_some() {
                    "/etc/bbb-webhooks/production.yml"
                } else {
                    "/webhooks/default.yml"
                }),
            "{err}"
        );
    }
    // Equal in both: on to the API.
    node.write(
        "etc/bbb-webhooks/production.yml",
        &format!("bbb:\n  sharedSecret: \"{s}\"\n"),
        0o640,
    );
    let err = run();
    assert!(
        !err.contains("bbb-webhooks") && err.contains("did not answer getMeetings"),
        "{err}"
    );
}

#[test]
fn bbb_web_properties_recordings_on() {
    let text = properties("bbb2.golden.test", "/etc/bigbluebutton/bbb-web.properties");
    assert!(
        text.contains("disableRecordingDefault=false\n")
            && text.contains("allowStartStopRecording=true\n"),
        "{text}"
    );
    // Breakout rooms and events of unrecorded meetings stay private even then.
    assert!(
        text.contains("breakoutRoomsRecord=false\n") && text.contains("defaultKeepEvents=false\n"),
        "{text}"
    );
    golden("bbb-web.properties-recordings-on", &text);
}

/// Retention goes to the override file BBB supports since 2.6, never into the packaged cron
/// script (a conffile that package upgrades replace).
#[test]
fn retention_in_cron_override() {
    let text = file("bbb1.golden.test", "/etc/default/bigbluebutton-cron-config");
    for line in [
        "history=2",
        "unrecorded_days=3",
        "published_days=7",
        "log_history=7",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
    }
    golden("cron-retention", &text);
    for h in ["bbb1.golden.test", "bbb2.golden.test"] {
        assert!(
            !actions(host(h)).any(|a| match a {
                Action::Property(p) => p.path == "/etc/cron.daily/bigbluebutton",
                Action::File(f) => f.path == "/etc/cron.daily/bigbluebutton",
                _ => false,
            }),
            "{h}: a step edits the packaged cron script"
        );
    }
    assert!(
        !file(
            "bbb1.golden.test",
            "/etc/bigbluebutton/bbb-conf/apply-config.sh"
        )
        .contains("/etc/cron.daily/bigbluebutton"),
        "apply-config.sh edits the packaged cron script"
    );
}

/// Join URLs carry participants' full names: nginx writes no access log on a node, neither
/// for BBB's site (an include at its server level) nor at the http level.
#[test]
fn no_nginx_access_log_on_nodes() {
    for path in [
        "/etc/bigbluebutton/nginx/rollout-no-access-log.nginx",
        "/etc/nginx/conf.d/rollout-no-access-log.conf",
    ] {
        let text = file("bbb1.golden.test", path);
        let directives: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .collect();
        assert_eq!(directives, ["access_log off;"], "{path}");
        golden("nginx-no-access-log", &text);
    }
}

/// The system locale is UTF-8 (bbb-web reads its properties as ISO-8859-1 otherwise).
#[test]
fn system_locale_is_utf8() {
    assert_eq!(
        properties("bbb1.golden.test", "/etc/default/locale"),
        "LANG=C.UTF-8\n"
    );
}

#[test]
fn apply_config_sh() {
    let text = file(
        "bbb1.golden.test",
        "/etc/bigbluebutton/bbb-conf/apply-config.sh",
    );
    golden("apply-config.sh", &text);
    // It re-applies exactly what the property steps set (except the secret, which bbb-conf
    // never touches on an upgrade), so the two never fight.
    for line in properties("bbb1.golden.test", "/etc/bigbluebutton/bbb-web.properties").lines() {
        let (k, v) = line.split_once('=').unwrap();
        if k == "securitySalt" {
            assert!(
                !text.contains(v),
                "apply-config.sh must not carry the shared secret"
            );
            continue;
        }
        let quoted = rollout::script::quote(v);
        assert!(
            text.contains(&format!("set_key \"$props\" {k} {quoted}\n")),
            "apply-config.sh does not set {k}={v}"
        );
    }
}

#[test]
fn bbb_install_command_lines() {
    golden(
        "bbb-install-wrapper-bbb1",
        &file("bbb1.golden.test", "/usr/local/sbin/rollout-bbb-install"),
    );
    golden(
        "bbb-install-wrapper-bbb2",
        &file("bbb2.golden.test", "/usr/local/sbin/rollout-bbb-install"),
    );
}

#[test]
fn freeswitch_dial_in_xml() {
    let gw = file(
        "bbb1.golden.test",
        "/opt/freeswitch/conf/sip_profiles/external/sipgate.xml",
    );
    golden("freeswitch-gateway.xml", &gw);
    let doc = roxmltree::Document::parse(&gw).expect("the gateway file is well-formed XML");
    let gateway = doc
        .root_element()
        .children()
        .find(|n| n.has_tag_name("gateway"))
        .expect("<include><gateway>");
    assert_eq!(gateway.attribute("name"), Some("sipgate"));
    let param = |name: &str| {
        gateway
            .children()
            .find(|n| n.attribute("name") == Some(name))
            .and_then(|n| n.attribute("value"))
    };
    assert_eq!(param("proxy"), Some("sipconnect.sipgate.de"));
    assert_eq!(param("username"), Some("1234567t0"));
    // Escaped in the file, the exact password once parsed.
    assert_eq!(param("password"), Some(secret("GOLDEN_SIP_PASSWORD")));
    assert_eq!(param("extension"), Some("4930123456"));
    assert_eq!(param("register"), Some("true"));
    assert_eq!(param("context"), Some("public"));

    let dp = file(
        "bbb1.golden.test",
        "/opt/freeswitch/conf/dialplan/public/sipgate.xml",
    );
    golden("freeswitch-dialplan.xml", &dp);
    let doc = roxmltree::Document::parse(&dp).expect("the dialplan file is well-formed XML");
    let names: Vec<&str> = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("extension"))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert_eq!(
        names,
        ["from_sipgate", "check_if_conference_active", "conf_bad_pin"]
    );
    let first = doc
        .descendants()
        .find(|n| n.has_tag_name("condition"))
        .unwrap();
    assert_eq!(first.attribute("expression"), Some("^4930123456"));
    let apps: Vec<&str> = first
        .children()
        .filter(|n| n.has_tag_name("action"))
        .filter_map(|n| n.attribute("application"))
        .collect();
    assert_eq!(
        apps,
        [
            "start_dtmf",
            "answer",
            "sleep",
            "play_and_get_digits",
            "set_profile_var",
            "set_profile_var",
            "transfer"
        ]
    );
    assert!(dp.contains("bbb_authorized=true"));
    // The PIN is the meeting's voice bridge: as many digits as Scalelite's VOICE_BRIDGE_LEN
    // (9 by default, its v1.8.5 code default), not BBB's own 5.
    let pin_prompts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.attribute("application") == Some("play_and_get_digits"))
        .filter_map(|n| n.attribute("data"))
        .collect();
    assert_eq!(pin_prompts.len(), 2);
    for data in pin_prompts {
        assert!(data.starts_with("9 9 3 30000 # "), "{data}");
    }
    assert!(dp.contains(r#"expression="^\d{9}$""#), "{dp}");
    assert!(
        file("lb.golden.test", "/opt/scalelite/.env")
            .lines()
            .any(|l| l == "VOICE_BRIDGE_LEN=9"),
        "Scalelite hands out as many digits as the dialplan reads"
    );
}

#[test]
fn exporter_files() {
    golden(
        "bbb-exporter-compose.yml",
        &file(
            "bbb1.golden.test",
            "/opt/bigbluebutton-exporter/docker-compose.yml",
        ),
    );
    golden(
        "monitoring.nginx",
        &file(
            "bbb1.golden.test",
            "/etc/bigbluebutton/nginx/monitoring.nginx",
        ),
    );
}

#[test]
fn firewall_rules() {
    let bbb = file("bbb1.golden.test", "/etc/rollout/ufw-rules");
    let rules: Vec<&str> = bbb.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rules[0], "allow 22/tcp", "the SSH rule comes first");
    assert!(
        rules.contains(&"allow from 192.0.2.44 to any port 5060 proto udp"),
        "{bbb}"
    );
    assert!(
        !file("bbb2.golden.test", "/etc/rollout/ufw-rules").contains("5060"),
        "no SIP port without dial-in"
    );
    golden("ufw-rules-bbb", &bbb);
    golden(
        "ufw-rules-turn",
        &file("turn.golden.test", "/etc/rollout/ufw-rules"),
    );
    golden(
        "ufw-rules-balancer",
        &file("lb.golden.test", "/etc/rollout/ufw-rules"),
    );
}

#[test]
fn scalelite_files() {
    let compose = file("lb.golden.test", "/opt/scalelite/docker-compose.yml");
    golden("scalelite-docker-compose.yml", &compose);
    // Every container's log is rotated: as many `logging:` as services.
    let services = compose
        .lines()
        .filter(|l| l.starts_with("    container_name: "))
        .count();
    assert!(services >= 5, "{compose}");
    assert_eq!(
        compose.matches("\n    logging: *logging\n").count(),
        services,
        "{compose}"
    );
    assert!(compose.contains("max-size: \"10m\"") && compose.contains("max-file: \"3\""));
    let env = file("lb.golden.test", "/opt/scalelite/.env");
    for line in [
        format!("LOADBALANCER_SECRET={}", secret("GOLDEN_LB_SECRET")),
        format!("SECRET_KEY_BASE={}", secret("GOLDEN_SECRET_KEY_BASE")),
        "SERVER_ID_IS_HOSTNAME=true".to_string(),
        "REDIS_URL=redis://redis:6379".to_string(),
        "VOICE_BRIDGE_LEN=9".to_string(),
        // Privacy: Scalelite's default is debug, which logs join requests with full names.
        "RAILS_LOG_LEVEL=warn".to_string(),
    ] {
        assert!(env.lines().any(|l| l == line), "missing `{line}` in .env");
    }
    assert!(
        env.lines()
            .any(|l| l.starts_with("DATABASE_URL=postgres://"))
    );
    golden("scalelite.env", &env);
    golden(
        "scalelite-nginx.conf",
        &file("lb.golden.test", "/opt/scalelite/nginx.conf"),
    );
    // balancer_kind picks the role: no b3scale files on the Scalelite host, and vice versa.
    assert!(
        !actions(host("lb.golden.test"))
            .any(|a| matches!(a, Action::File(f) if f.path == "/etc/default/b3scale"))
    );
    assert!(
        !actions(host("lb2.golden.test"))
            .any(|a| matches!(a, Action::File(f) if f.path.starts_with("/opt/scalelite")))
    );
}

/// The proxy's volumes (`source:target[:mode]`) in a rendered compose file.
fn proxy_volumes(compose: &str) -> Vec<String> {
    let doc: serde_json::Value =
        serde_saphyr::from_str(compose).unwrap_or_else(|e| panic!("compose YAML: {e}\n{compose}"));
    doc["services"]["scalelite-proxy"]["volumes"]
        .as_array()
        .expect("the proxy's volumes")
        .iter()
        .map(|v| v.as_str().expect("short volume syntax").to_string())
        .collect()
}

/// Every `ssl_certificate`/`ssl_certificate_key` path and `root` in a rendered nginx.conf.
fn nginx_paths(conf: &str, directive: &str) -> Vec<String> {
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix(&format!("{directive} ")))
        .map(|v| v.trim_end_matches(';').to_string())
        .collect()
}

/// The proxy reaches its certificate through a mounted folder, never a single file: certbot's
/// `live/HOST/*.pem` are symlinks that each renewal points at new files in `archive/`, which a
/// single-file bind mount (pinned to the old inode, or a dangling link) never shows. Every
/// path nginx reads its certificate, key or ACME webroot from lies under a folder mount.
fn assert_certificate_through_folder_mounts(host: &str) {
    let compose = file(host, "/opt/scalelite/docker-compose.yml");
    let conf = file(host, "/opt/scalelite/nginx.conf");
    let volumes = proxy_volumes(&compose);
    for v in &volumes {
        let source = v.split(':').next().unwrap();
        assert!(
            !source.ends_with(".pem") && !source.contains("/live/"),
            "{host}: single-file certificate mount `{v}`"
        );
    }
    let mut read = nginx_paths(&conf, "ssl_certificate");
    read.extend(nginx_paths(&conf, "ssl_certificate_key"));
    assert_eq!(read.len(), 2, "{conf}");
    read.extend(nginx_paths(&conf, "root").iter().map(|r| format!("{r}/")));
    for path in &read {
        let mounted = volumes.iter().any(|v| {
            let parts: Vec<&str> = v.split(':').collect();
            let target = parts[1].trim_end_matches('/');
            parts[0] != "./nginx.conf" && path.starts_with(&format!("{target}/"))
        });
        assert!(
            mounted,
            "{host}: nginx reads {path}, under no folder mount of {volumes:?}"
        );
    }
}

/// Let's Encrypt (scalelite_certificate: certbot, the default): the whole /etc/letsencrypt and
/// certbot's webroot are mounted, the proxy serves the HTTP-01 challenge from it, certbot on
/// the host obtains the certificate through that webroot before the containers are checked,
/// its timer renews it, and the deploy hook reloads the proxy.
#[test]
fn scalelite_certificate_from_certbot() {
    assert_certificate_through_folder_mounts("lb.golden.test");
    let volumes = proxy_volumes(&file("lb.golden.test", "/opt/scalelite/docker-compose.yml"));
    assert!(volumes.contains(&"/etc/letsencrypt:/etc/letsencrypt:ro".to_string()));
    assert!(volumes.contains(&"/var/www/certbot:/var/www/certbot:ro".to_string()));
    let conf = file("lb.golden.test", "/opt/scalelite/nginx.conf");
    assert!(conf.contains("ssl_certificate /etc/letsencrypt/live/lb.golden.test/fullchain.pem;"));
    assert!(
        conf.contains("location /.well-known/acme-challenge/ {\n        root /var/www/certbot;")
    );
    let hook = file(
        "lb.golden.test",
        "/etc/letsencrypt/renewal-hooks/deploy/rollout-scalelite-proxy",
    );
    golden("scalelite-certbot-deploy-hook.sh", &hook);
    assert!(hook.contains("docker exec scalelite-proxy nginx -s reload"));
    let obtain = file("lb.golden.test", "/usr/local/sbin/rollout-scalelite-cert");
    golden("scalelite-certbot-obtain.sh", &obtain);
    assert!(
        obtain.contains("certbot certonly --webroot -w \"$webroot\"")
            && obtain.contains("-m admin@golden.test")
            && !obtain.contains("--staging"),
        "{obtain}"
    );
    let h = host("lb.golden.test");
    let names: Vec<&str> = h.steps.iter().map(|s| s.spec.name.as_str()).collect();
    let at = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("step {n} in {names:?}"))
    };
    assert!(at("certbot deploy hook reloads the proxy") < at("certbot certificate"));
    assert!(at("certbot first certificate script") < at("certbot certificate"));
    assert!(at("certbot certificate") < at("Scalelite containers running"));
    let cert = format!("{:?}", h.steps[at("certbot certificate")].action);
    assert!(
        cert.contains("authenticator = webroot") && cert.contains("! grep -q acme-staging"),
        "{cert}"
    );
    let timer = format!("{:?}", h.steps[at("certbot renewal timer")].action);
    assert!(timer.contains("certbot.timer"), "{timer}");
    for n in ["proxy certificate", "preflight TLS certificate"] {
        assert!(
            !names.contains(&n),
            "{n} runs only for scalelite_certificate: path"
        );
    }
}

/// A certificate brought by the operator (scalelite_certificate: path): copied into
/// /opt/scalelite/tls, mounted as a folder; a changed source is copied and the proxy reloads.
#[test]
fn scalelite_certificate_from_path() {
    assert_certificate_through_folder_mounts("lb3.golden.test");
    let compose = file("lb3.golden.test", "/opt/scalelite/docker-compose.yml");
    golden("scalelite-docker-compose-path.yml", &compose);
    assert!(proxy_volumes(&compose).contains(&"./tls:/etc/nginx/tls:ro".to_string()));
    assert!(!compose.contains("letsencrypt"), "{compose}");
    let conf = file("lb3.golden.test", "/opt/scalelite/nginx.conf");
    golden("scalelite-nginx-path.conf", &conf);
    assert!(!conf.contains("acme-challenge"), "{conf}");
    let h = host("lb3.golden.test");
    let copy = h
        .steps
        .iter()
        .find(|s| s.spec.name == "proxy certificate")
        .expect("the copy step");
    let text = format!("{:?}", copy.action);
    assert!(
        text.contains("/etc/ssl/golden/fullchain.pem") && text.contains("cmp -s"),
        "{text}"
    );
    assert_eq!(copy.spec.notify, vec!["reload the proxy".to_string()]);
    assert!(!h.steps.iter().any(|s| s.spec.name.starts_with("certbot")));
}

/// b3scale's node agent on a b3scale node: its environment carries the node's own token
/// (scope b3scale:node, sub the inventory name), the package keeps rollout's conffile, and
/// the agent runs; a node of a Scalelite pool gets none of it.
#[test]
fn b3scale_agent_files() {
    let env = file("bbb2.golden.test", "/etc/default/b3scaleagent");
    golden("b3scaleagent.env", &env);
    let token = env
        .lines()
        .find_map(|l| l.strip_prefix("B3SCALE_API_ACCESS_TOKEN="))
        .expect("a token");
    use base64::Engine;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(claims).unwrap(),
        r#"{"scope":"b3scale:node","sub":"bbb2.golden.test"}"#
    );
    let h = host("bbb2.golden.test");
    let step = |name: &str| {
        h.steps
            .iter()
            .find(|s| s.spec.name == name)
            .unwrap_or_else(|| panic!("step {name}"))
    };
    assert!(step("b3scale node agent environment").depends_on_secret);
    let install = format!("{:?}", step("b3scale node agent installed").action);
    assert!(
        install.contains("--force-confold") && install.contains("--force-confdef"),
        "{install}"
    );
    assert!(
        !actions(host("bbb1.golden.test"))
            .any(|a| matches!(a, Action::File(f) if f.path == "/etc/default/b3scaleagent"))
    );
}

/// The b3scale host migrates the schema through the running daemon's API, with the admin
/// token only inside a here-document (curl's stdin), never on a command line; its package
/// install keeps rollout's /etc/default/b3scale.
#[test]
fn b3scale_migrates_and_keeps_its_conffile() {
    let h = host("lb2.golden.test");
    let names: Vec<&str> = h.steps.iter().map(|s| s.spec.name.as_str()).collect();
    let at = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    assert!(at("b3scale answers") < at("b3scale database migrated"));
    assert!(at("b3scale database migrated") < at("nginx site for b3scale"));
    let migrate = &h.steps[at("b3scale database migrated")];
    assert!(migrate.depends_on_secret);
    let text = format!("{:?}", migrate.action);
    assert!(text.contains("/api/v1/ctrl/migrate"), "{text}");
    let install = format!("{:?}", h.steps[at("b3scale installed")].action);
    assert!(install.contains("--force-confold"), "{install}");
}

#[test]
fn b3scale_files() {
    golden(
        "b3scale.env",
        &file("lb2.golden.test", "/etc/default/b3scale"),
    );
    golden(
        "b3scale-nginx-site",
        &file("lb2.golden.test", "/etc/nginx/sites-enabled/b3scale"),
    );
}

/// A database password with the characters that end a URL's user info (`@ : / ? # %`) keeps
/// both database URLs intact: it is percent-encoded there (every byte but letters, digits and
/// `- . _`, which Rails' and Go's URL parsers decode), and written raw where the raw value is
/// read (Scalelite's POSTGRES_PASSWORD, which the postgres container sets).
#[test]
fn database_passwords_are_percent_encoded_in_their_urls() {
    let password = "p@ss:w/rd?#%~x_y.z-1";
    let encoded = "p%40ss%3Aw%2Frd%3F%23%25%7Ex_y.z-1";
    let text = std::fs::read_to_string(dir().join("pool.yml"))
        .unwrap()
        .replace(
            "{secret: \"env:GOLDEN_POSTGRES_PASSWORD\"}",
            &format!("\"{password}\""),
        )
        .replace(
            "{secret: \"env:GOLDEN_B3SCALE_DB_PASSWORD\"}",
            &format!("\"{password}\""),
        );
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("golden-db-password.yml");
    std::fs::write(&path, text).unwrap();
    let (_, plans) = plan_with(&path, &serde_json::Map::new()).unwrap_or_else(|e| panic!("{e}"));
    let content = |host: &str, file: &str| -> String {
        let h = plans.iter().find(|p| p.host.name == host).unwrap();
        actions(h)
            .find_map(|a| match a {
                Action::File(f) if f.path == file => f.content.clone(),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{host}: no {file}"))
    };
    let env = content("lb.golden.test", "/opt/scalelite/.env");
    let lines: Vec<&str> = env.lines().collect();
    assert!(
        lines.contains(
            &format!("DATABASE_URL=postgres://scalelite:{encoded}@postgres:5432/scalelite?pool=5")
                .as_str()
        ),
        "{env}"
    );
    assert!(
        lines.contains(&format!("POSTGRES_PASSWORD={password}").as_str()),
        "{env}"
    );
    let b3 = content("lb2.golden.test", "/etc/default/b3scale");
    assert!(
        b3.lines()
            .any(|l| l
                == format!("B3SCALE_DB_URL=postgres://b3scale:{encoded}@localhost:5432/b3scale")),
        "{b3}"
    );
}

/// b3scale's host nginx reads certbot's live/ folder itself (no container, no mount); certbot
/// obtains the certificate through nginx's webroot before the site that needs it is written,
/// its timer renews it, and the deploy hook reloads nginx.
#[test]
fn b3scale_certificate_from_certbot() {
    let site = file("lb2.golden.test", "/etc/nginx/sites-enabled/b3scale");
    assert!(
        site.contains("ssl_certificate /etc/letsencrypt/live/lb2.golden.test/fullchain.pem;"),
        "{site}"
    );
    assert!(site.contains("location /.well-known/acme-challenge/ {\n        root /var/www/html;"));
    let hook = file(
        "lb2.golden.test",
        "/etc/letsencrypt/renewal-hooks/deploy/rollout-b3scale-nginx",
    );
    golden("b3scale-certbot-deploy-hook.sh", &hook);
    assert!(hook.contains("systemctl reload nginx"));
    let h = host("lb2.golden.test");
    let names: Vec<&str> = h.steps.iter().map(|s| s.spec.name.as_str()).collect();
    let at = |n: &str| {
        names
            .iter()
            .position(|x| *x == n)
            .unwrap_or_else(|| panic!("step {n} in {names:?}"))
    };
    assert!(at("PostgreSQL and nginx") < at("certbot certificate"));
    assert!(at("certbot deploy hook reloads nginx") < at("certbot certificate"));
    assert!(at("certbot certificate") < at("nginx site for b3scale"));
    let cert = format!("{:?}", h.steps[at("certbot certificate")].action);
    assert!(
        cert.contains("certbot certonly --webroot -w /var/www/html")
            && cert.contains("-m admin@golden.test")
            && cert.contains("authenticator = webroot"),
        "{cert}"
    );
    assert!(names.contains(&"certbot renewal timer"));
    assert!(!names.contains(&"preflight TLS certificate"));
}

/// The lines of a shell script that are not here-document bodies (what becomes argv).
fn outside_heredocs(script: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut end: Option<String> = None;
    for line in script.lines() {
        if let Some(e) = &end {
            if line.trim() == e {
                end = None;
            }
            continue;
        }
        out.push(line);
        if let Some(i) = line.find("<<") {
            let word: String = line[i + 2..]
                .trim_start_matches('-')
                .trim()
                .trim_matches(|c| c == '\'' || c == '"')
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != ')')
                .collect();
            if !word.is_empty() {
                end = Some(word);
            }
        }
    }
    out
}

#[test]
fn secrets_never_on_a_command_line() {
    let secrets: Vec<&str> = SECRETS.iter().map(|(_, v)| *v).collect();
    // Every fake secret is a secret of the inventory (redacted from all output).
    for s in &secrets {
        assert!(
            pool().inventory.secrets.contains_secret(s),
            "{s} is not a secret of the sample pool"
        );
    }
    for h in &pool().plans {
        for p in h.steps.iter().chain(h.handlers.iter()) {
            let texts: Vec<&str> = match &p.action {
                Action::Command(c) => [
                    Some(c.run.as_str()),
                    c.unless.as_deref(),
                    c.creates.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect(),
                Action::Download(d) => vec![d.url.as_str(), d.dest.as_str()],
                Action::Assert(a) => vec![a.that.as_str()],
                _ => vec![],
            };
            for text in texts {
                for line in outside_heredocs(text) {
                    for s in &secrets {
                        assert!(
                            !line.contains(s),
                            "{}: `{}` puts a secret on a command line: {line}",
                            h.host.name,
                            p.label()
                        );
                    }
                }
            }
        }
        // bbb-install.sh is run from this wrapper: its whole command line is in the file.
        if let Some(Action::File(f)) = actions(h).find(
            |a| matches!(a, Action::File(f) if f.path == "/usr/local/sbin/rollout-bbb-install"),
        ) {
            let text = f.content.as_deref().unwrap();
            for s in &secrets {
                assert!(
                    !text.contains(s),
                    "{}: the bbb-install.sh command line carries a secret",
                    h.host.name
                );
            }
            assert!(
                text.contains("-c turn.golden.test:rollout-sets-the-turn-secret"),
                "{text}"
            );
        }
    }
}

/// Plans an inventory the way `rollout plan` does, without contacting any host.
fn plan_file(path: &std::path::Path) -> (Inventory, Vec<HostPlan>) {
    plan_with(path, &serde_json::Map::new()).unwrap_or_else(|errors| panic!("{errors}"))
}

/// Plans an inventory with the variables a command sets (`rollout_upgrade`); the plan's
/// errors as the lines `rollout plan` prints.
fn plan_with(
    path: &std::path::Path,
    run_vars: &serde_json::Map<String, serde_json::Value>,
) -> Result<(Inventory, Vec<HostPlan>), String> {
    pool(); // sets the fake secrets
    let inventory =
        rollout::inventory::load(path, &Default::default()).unwrap_or_else(|d| panic!("{d}"));
    let hosts: Vec<_> = inventory.hosts.iter().collect();
    let names: Vec<&String> = hosts.iter().flat_map(|h| h.roles.iter()).collect();
    let roles = role::load_all(&inventory.roles_dir, names).unwrap_or_else(|d| panic!("{d}"));
    let templates = Templates::load(&inventory.templates_dir).unwrap_or_else(|d| panic!("{d}"));
    let plans = plan::build(
        &inventory,
        &hosts,
        &roles,
        &templates,
        &Filter::default(),
        run_vars,
    )
    .map_err(|ds| {
        ds.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok((inventory, plans))
}

/// The command a host's step `name` runs, and its `unless` guard.
fn command_of(h: &HostPlan, name: &str) -> (String, String) {
    h.steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Command(c) if s.spec.name == name => {
                Some((c.run.clone(), c.unless.clone().unwrap_or_default()))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{}: no command step `{name}`", h.host.name))
}

/// Upgrades are the pinned bbb-install.sh's (issue 10 item 8): under `rollout upgrade` the base
/// role holds BigBlueButton's packages before its dist-upgrade, so they never move off the
/// pool's pin there; the bbb role runs the installer only on a node whose release is not the
/// pin (bbb-install's per-release repository `jammy-300-3.0.14`, not the release line), and
/// its wrapper lifts the holds only while the installer runs. Outside an upgrade, a node off
/// the pin fails the plan.
#[test]
fn upgrades_leave_bbb_packages_to_the_pinned_installer() {
    let mut run_vars = serde_json::Map::new();
    run_vars.insert("rollout_upgrade".into(), serde_json::Value::Bool(true));
    let (_, plans) =
        plan_with(&dir().join("pool.yml"), &run_vars).unwrap_or_else(|e| panic!("{e}"));
    for name in ["bbb1.golden.test", "bbb2.golden.test", "turn.golden.test"] {
        let h = plans.iter().find(|p| p.host.name == name).unwrap();
        let (run, _) = command_of(h, "package upgrades");
        let hold = run.find("apt-mark hold $held").expect("a hold");
        let upgrade = run.find(" dist-upgrade").expect("a dist-upgrade");
        assert!(hold < upgrade, "{name}: held after the upgrade:\n{run}");
        assert!(run.contains(" bigbluebutton 'bbb-*' "), "{run}");
        assert!(!run.contains("unhold"), "{run}");
    }
    let bbb1 = plans
        .iter()
        .find(|p| p.host.name == "bbb1.golden.test")
        .unwrap();
    let (run, unless) = command_of(bbb1, "upgrade BigBlueButton");
    assert_eq!(run, "/usr/local/sbin/rollout-bbb-install");
    assert!(
        unless.contains("BIGBLUEBUTTON_RELEASE") && unless.ends_with(" = 3.0.14"),
        "{unless}"
    );
    assert!(
        !bbb1
            .steps
            .iter()
            .any(|s| s.spec.name == "BigBlueButton is the pool's build"),
        "the pin check runs during an upgrade"
    );
    // A plain plan checks the pin on every node rollout installed.
    let check = host("bbb2.golden.test")
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Assert(a) if s.spec.name == "BigBlueButton is the pool's build" => {
                Some(a.clone())
            }
            _ => None,
        })
        .expect("a pin check");
    assert!(
        check.that.contains("test \"$r\" = 3.0.14"),
        "{}",
        check.that
    );
    assert!(
        check.message.contains("jammy-300-3.0.14"),
        "{}",
        check.message
    );
    let wrapper = file("bbb1.golden.test", "/usr/local/sbin/rollout-bbb-install");
    let unhold = wrapper.find("apt-mark unhold").expect("unhold");
    let run = wrapper
        .find("bash /usr/local/lib/rollout/bbb-install.sh")
        .unwrap();
    assert!(
        unhold < run && wrapper.contains("trap hold EXIT"),
        "{wrapper}"
    );
    assert!(wrapper.contains("-v jammy-300-3.0.14 "), "{wrapper}");
}

/// An empty `bbb_packages` holds nothing: the wrapper never calls dpkg-query without a pattern,
/// which would list (and so hold) every installed package.
#[test]
fn empty_bbb_packages_hold_nothing() {
    let pool = std::fs::read_to_string(dir().join("pool.yml")).unwrap();
    let after = "    turn_hostname: turn.golden.test\n";
    let at = pool.find(after).expect("the sample pool's shape") + after.len();
    let text = format!("{}    bbb_packages: []\n{}", &pool[..at], &pool[at..]);
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("golden-no-packages.yml");
    std::fs::write(&path, &text).unwrap();
    let (_, plans) = plan_with(&path, &serde_json::Map::new()).unwrap_or_else(|e| panic!("{e}"));
    let bbb1 = plans
        .iter()
        .find(|p| p.host.name == "bbb1.golden.test")
        .unwrap();
    let wrapper = actions(bbb1)
        .find_map(|a| match a {
            Action::File(f) if f.path == "/usr/local/sbin/rollout-bbb-install" => f.content.clone(),
            _ => None,
        })
        .expect("the wrapper");
    assert!(!wrapper.contains("dpkg-query -W"), "{wrapper}");
    assert!(
        wrapper.contains("bbb_packages is empty: nothing is held"),
        "{wrapper}"
    );
}

/// A pool runs one pinned build: a node pinned differently, or a `-v` that names the release
/// line (which follows the newest build), is refused before anything runs, at the place that
/// set it.
#[test]
fn a_pool_pins_one_bbb_build() {
    let pool = std::fs::read_to_string(dir().join("pool.yml")).unwrap();
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let cases = [
        (
            "            bbb_secret: {secret: \"env:GOLDEN_BBB2_SECRET\"}\n",
            "            bbb_version: \"3.0.13\"\n",
            "pinned to `jammy-300-3.0.13` here but to `jammy-300-3.0.14` on host bbb1.golden.test",
        ),
        (
            "    turn_hostname: turn.golden.test\n",
            "    bbb_install_version: jammy-300\n",
            "variable bbb_install_version is `jammy-300`, which does not pin the pool's release 3.0.14",
        ),
        (
            "    turn_hostname: turn.golden.test\n",
            "    bbb_version: latest\n",
            "variable bbb_version is `latest`, not a BigBlueButton release",
        ),
    ];
    for (i, (after, line, message)) in cases.iter().enumerate() {
        let at = pool.find(after).expect("the sample pool's shape") + after.len();
        let text = format!("{}{line}{}", &pool[..at], &pool[at..]);
        let lineno = pool[..at].lines().count() + 1;
        let path = tmp.join(format!("golden-pin-{i}.yml"));
        std::fs::write(&path, &text).unwrap();
        let errors = plan_with(&path, &serde_json::Map::new())
            .err()
            .unwrap_or_else(|| panic!("case {i}: planned"));
        assert!(errors.contains(message), "case {i}:\n{errors}");
        assert!(
            errors.contains(&format!("golden-pin-{i}.yml:{lineno}:")),
            "case {i}: not at line {lineno}:\n{errors}"
        );
    }
}

#[test]
fn the_example_pool_plans_and_keeps_the_production_defaults() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("inventories/example-pool.yml");
    let (inventory, plans) = plan_file(&path);
    assert_eq!(plans.len(), 6);
    let cfg = rollout::balancer::config::load(&inventory)
        .unwrap_or_else(|d| panic!("{d}"))
        .expect("a balancer section");
    assert_eq!(cfg.group, "bbb");
    let text = std::fs::read_to_string(&path).unwrap();
    for lab_value in [
        "10.77.",
        "lab_files_url",
        "self_signed",
        "debian",
        "scalelite_start",
    ] {
        assert!(
            !text.contains(lab_value),
            "the production example carries the lab value `{lab_value}`"
        );
    }
    // The production preflight: Ubuntu 22.04, the pinned upstream script.
    let bbb1 = plans
        .iter()
        .find(|p| p.host.name == "bbb1.school.example")
        .unwrap();
    let os = bbb1
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Assert(a) if s.spec.name == "preflight operating system" => {
                Some(a.that.clone())
            }
            _ => None,
        })
        .expect("an OS preflight");
    assert!(os.contains("'ubuntu 22.04'"), "{os}");
    let url = bbb1
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::Download(d) => Some(d.url.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        url.starts_with("https://raw.githubusercontent.com/bigbluebutton/bbb-install/"),
        "{url}"
    );
}

/// The b3scale database password goes through `replace` into psql's input: the step depends
/// on the secret, and neither `-v` script shows it or any spelling of it.
#[test]
fn b3scale_database_password_is_hidden_when_transformed() {
    let h = host("lb2.golden.test");
    let db = h
        .steps
        .iter()
        .find(|s| s.spec.name == "b3scale database")
        .expect("the b3scale database step");
    assert!(db.depends_on_secret);
    let env = h
        .steps
        .iter()
        .find(|s| s.spec.name == "b3scale environment");
    assert!(env.expect("the b3scale environment step").depends_on_secret);
    let nonce = rollout::script::Nonce::new();
    let items: Vec<plan::Item> = (0..h.steps.len()).map(plan::Item::Step).collect();
    let secrets = &pool().inventory.secrets;
    let hidden = plan::secret_fragments(h);
    let shown = [
        plan::display_script(&plan::check_script(h, &nonce), &hidden, secrets),
        plan::display_script(&plan::apply_script(h, &items, &nonce), &hidden, secrets),
    ]
    .concat();
    assert!(shown.contains("content depends on a secret"));
    for (_, v) in SECRETS {
        for f in [v.to_string(), v.replace('-', "_"), v.to_uppercase()] {
            assert!(!shown.contains(&f), "{f} shown");
        }
    }
}

/// The TURN preflight's verdict for one planned TURN host, run on the local `sh`: `Ok` or the
/// output of the failed test.
fn turn_peer_preflight(h: &HostPlan) -> Result<(), String> {
    let that = h
        .steps
        .iter()
        .find(|s| s.spec.name == "preflight TURN peers")
        .map(|s| s.action.check())
        .expect("the TURN peer preflight");
    let out = std::process::Command::new("sh")
        .args(["-c", &that])
        .output()
        .expect("sh runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if text.lines().next() == Some("passed") {
        Ok(())
    } else {
        Err(text)
    }
}

/// coturn relays to the pool's BBB nodes only, and takes only IP addresses for them: the
/// preflight passes for the sample and the example pool (nodes with IP `address:`es) and
/// refuses a node reached by its host name, naming it, before coturn would silently refuse
/// every firewalled user of that node.
#[test]
fn turn_relays_only_to_bbb_nodes_given_by_ip_address() {
    let conf = file("turn.golden.test", "/etc/turnserver.conf");
    let allowed: Vec<&str> = conf
        .lines()
        .filter_map(|l| l.strip_prefix("allowed-peer-ip="))
        .collect();
    assert_eq!(
        allowed,
        ["198.51.100.11", "2001:db8::12", "10.20.0.0-10.20.0.255"]
    );
    assert_eq!(turn_peer_preflight(host("turn.golden.test")), Ok(()));
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("inventories/example-pool.yml");
    let (_, plans) = plan_file(&example);
    let turn = plans
        .iter()
        .find(|p| p.host.name == "turn.school.example")
        .unwrap();
    assert_eq!(turn_peer_preflight(turn), Ok(()));

    // The same pool with bbb2 reached by its name.
    let tmp = std::env::temp_dir().join(format!("rollout-golden-peers-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(dir().join("pool.yml"))
        .unwrap()
        .replace("          address: \"2001:db8::12\"\n", "");
    let text = format!(
        "roles_path: {}\ntemplates_path: {}\n{text}",
        repo.join("roles").display(),
        repo.join("templates").display()
    );
    let path = tmp.join("pool.yml");
    std::fs::write(&path, text).unwrap();
    let (_, plans) = plan_file(&path);
    let _ = std::fs::remove_dir_all(&tmp);
    let turn = plans
        .iter()
        .find(|p| p.host.name == "turn.golden.test")
        .unwrap();
    let err = turn_peer_preflight(turn).unwrap_err();
    assert!(
        err.contains("output bbb2.golden.test is not an IP address"),
        "{err}"
    );
}

/// What `rollout upgrade` stages before the cordon (issue 9 item 4): on a BBB node, the
/// base role's disk check and package downloads (BBB's packages held first, `--download-only`,
/// bounded by `Acquire::http::Dl-Limit`) and the bbb role's installer download; nothing staged
/// restarts a service, ends meetings or notifies a handler.
#[test]
fn upgrades_stage_downloads_and_checks_only() {
    let mut run_vars = serde_json::Map::new();
    run_vars.insert("rollout_upgrade".into(), serde_json::Value::Bool(true));
    let (_, plans) =
        plan_with(&dir().join("pool.yml"), &run_vars).unwrap_or_else(|e| panic!("{e}"));
    let bbb1 = plans
        .iter()
        .find(|p| p.host.name == "bbb1.golden.test")
        .unwrap();
    let staged: Vec<String> = bbb1
        .steps
        .iter()
        .filter(|s| s.spec.stage)
        .map(|s| s.label())
        .collect();
    assert_eq!(
        staged,
        [
            "base: disk space for the upgrade",
            "base: package downloads",
            "bbb: rollout script directory",
            "bbb: bbb-install.sh, pinned",
        ]
    );
    for s in bbb1.steps.iter().filter(|s| s.spec.stage) {
        assert!(
            !s.spec.ends_meetings && s.spec.notify.is_empty(),
            "{}",
            s.label()
        );
    }
    let (run, _) = command_of(bbb1, "package downloads");
    let hold = run.find("apt-mark hold $held").expect("a hold");
    let fetch = run
        .find(" --download-only dist-upgrade")
        .expect("a download-only dist-upgrade");
    assert!(hold < fetch, "held after the download:\n{run}");
    assert!(run.contains("-o Acquire::http::Dl-Limit=4096 "), "{run}");
    assert!(
        run.starts_with("export DEBIAN_FRONTEND=noninteractive\nheld="),
        "{run}"
    );
    assert!(
        !run.contains(" install "),
        "staging installs nothing:\n{run}"
    );
}
