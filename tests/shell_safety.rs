//! Shell that cannot be broken out of: every step kind's check and apply fragment, built from
//! adversarial values (quotes, `$()`, backticks, the heredoc delimiters, `\`, a leading `-`),
//! is run on the local `sh` (dash, as on Debian hosts) in a temporary directory, and what
//! lands (a file's bytes, a property, a line, the argv a program received, recorded by a stub
//! on PATH) must be the value, byte for byte, with nothing run that the value carried. A NUL,
//! which no shell word can carry, must be refused. The generated scripts of a host with steps
//! of every kind must pass `sh -n` and shellcheck (`lint` module).
//!
//! Values are Rust strings (UTF-8) in every argument type, so non-UTF-8 cannot be written;
//! a file's content is sent as base64 and may hold any byte, NUL included.

#[path = "shell_safety/lint.rs"]
mod lint;
#[path = "shell_safety/sandbox.rs"]
mod sandbox;

use rollout::script::sha256_hex;
use sandbox::{NASTY, Sandbox, action, argv, error, owner, refused_owner};
use serde_json::json;

#[test]
fn file_content_and_owner_arrive_byte_identical() {
    let sb = Sandbox::new("file");
    sb.stub("chown", 0, "");
    // Content may hold any byte (it travels as base64); an owner cannot hold a NUL.
    let binary = "\0\n\r\n\u{7f}__RL_B64__\n\\";
    for (i, v) in NASTY.iter().chain([&binary]).enumerate() {
        let path = sb.path(&format!("f{i}"));
        let content = format!("{v}\n{v}");
        let v = if v.contains('\0') { "o" } else { v };
        let path = format!("{path} {v}");
        refused_owner("file", json!({"path": path, "content": "x"}), v);
        let v = owner(v);
        let a = action(
            "file",
            json!({"path": path, "content": content, "owner": v, "group": v}),
        );
        sb.apply_ok(&a);
        assert_eq!(std::fs::read(&path).unwrap(), content.as_bytes(), "{v:?}");
        assert_eq!(
            sb.calls("chown").last().unwrap()[..2],
            argv(&["--", &format!("{v}:{v}")])
        );
        let want = format!("hash {}", sha256_hex(content.as_bytes()));
        assert!(sb.check(&a).lines().any(|l| l == want), "{v:?}");
    }
}

#[test]
fn directory_path_owner_and_group_arrive_byte_identical() {
    let sb = Sandbox::new("directory");
    sb.stub("chown", 0, "");
    sb.stub("chgrp", 0, "");
    for (i, v) in NASTY.iter().enumerate() {
        let path = sb.path(&format!("d{i} {v}"));
        refused_owner("directory", json!({"path": path}), v);
        let v = owner(v);
        sb.apply_ok(&action("directory", json!({"path": path, "owner": v})));
        assert!(std::fs::metadata(&path).unwrap().is_dir(), "{v:?}");
        assert_eq!(sb.calls("chown").last().unwrap(), &argv(&["--", v, &path]));
        let a = action("directory", json!({"path": path, "group": v}));
        sb.apply_ok(&a);
        assert_eq!(sb.calls("chgrp").last().unwrap(), &argv(&["--", v, &path]));
        assert!(sb.check(&a).starts_with("stat directory|"), "{v:?}");
    }
}

#[test]
fn property_key_and_value_arrive_byte_identical() {
    let sb = Sandbox::new("property");
    for (i, v) in NASTY.iter().enumerate() {
        let path = sb.path(&format!("p{i} {v}"));
        // A key has no `=`; one starting with `#` or `!` would be a comment.
        let key = format!("k{i}{}", v.replace('=', "_"));
        let set = |value: &str, sensitive: bool| {
            let args = json!({"path": path, "key": key, "value": value, "sensitive": sensitive});
            action("property", args)
        };
        sb.apply_ok(&set("old", false));
        sb.apply_ok(&set(v, false));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{key}={v}\n")
        );
        assert_eq!(sb.check(&set(v, false)), format!("value {v}\n"));
        let hashed = format!("hashed {}\n", sha256_hex(v.as_bytes()));
        assert_eq!(sb.check(&set(v, true)), hashed);
        sb.apply_ok(&action(
            "property",
            json!({"path": path, "key": key, "state": "absent"}),
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }
}

/// A property's owner and group arrive as one `chown` operand, its mode lands on the file,
/// and the value still reaches no command line.
#[test]
fn property_owner_group_and_mode_arrive_byte_identical() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new("property-owner");
    sb.stub("chown", 0, "");
    for (i, v) in NASTY.iter().enumerate() {
        let path = sb.path(&format!("o{i} {v}"));
        refused_owner(
            "property",
            json!({"path": path, "key": "k", "value": "x"}),
            v,
        );
        let o = owner(v);
        let value = format!("value {v}");
        let a = action(
            "property",
            json!({"path": path, "key": "k", "value": value, "owner": o, "group": o, "mode": "0640"}),
        );
        sb.apply_ok(&a);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("k={value}\n")
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640, "{v:?}");
        let chown = sb.calls("chown").last().unwrap().clone();
        assert_eq!(chown[..2], argv(&["--", &format!("{o}:{o}")]), "{v:?}");
        assert!(
            sb.calls("chown")
                .iter()
                .flatten()
                .all(|arg| !arg.contains(&value))
        );
        let check = sb.check(&a);
        assert!(check.starts_with("stat regular file|"), "{check}");
        assert!(check.contains("|640|"), "{check}");
        assert!(check.ends_with(&format!("value {value}\n")), "{check}");
    }
}

#[test]
fn line_arrives_byte_identical() {
    let sb = Sandbox::new("line");
    for (i, v) in NASTY.iter().enumerate() {
        let path = sb.path(&format!("l{i} {v}"));
        let a = action("line", json!({"path": path, "line": v}));
        sb.apply_ok(&a);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{v}\n"));
        assert_eq!(sb.check(&a), "exact\n", "{v:?}");
        let replace = json!({"path": path, "line": format!("new {v}"), "regexp": "^it's"});
        sb.apply_ok(&action("line", replace));
        let absent = json!({"path": path, "line": format!("new {v}"), "state": "absent"});
        sb.apply_ok(&action("line", absent));
        // The regexp matched the value's line (replaced, then removed) or not (appended,
        // then removed), so the value's own line is left exactly when it did not match.
        let left = if v.starts_with("it's") {
            String::new()
        } else {
            format!("{v}\n")
        };
        assert_eq!(std::fs::read_to_string(&path).unwrap(), left, "{v:?}");
    }
}

#[test]
fn command_guard_and_directory_arrive_byte_identical() {
    let sb = Sandbox::new("command");
    for (i, v) in NASTY.iter().enumerate() {
        let creates = sb.path(&format!("c{i} {v}"));
        let chdir = sb.path(&format!("w{i} {v}"));
        std::fs::create_dir(&chdir).unwrap();
        // A relative `chdir` or `creates` would depend on where the script starts.
        for (key, rel) in [
            ("chdir", format!("-w{i} {v}")),
            ("creates", format!("c{i}")),
        ] {
            let mut args = json!({"run": "true", "creates": creates, "chdir": chdir});
            args[key] = json!(rel);
            assert!(
                error("command", args).ends_with("must be absolute"),
                "{v:?}"
            );
        }
        let a = action(
            "command",
            json!({"run": "pwd > \"$OLDPWD/pwd.out\"", "creates": creates, "chdir": chdir}),
        );
        assert_eq!(sb.check(&a), "", "{v:?}");
        sb.apply_ok(&a);
        let pwd = std::fs::read_to_string(sb.path("pwd.out")).unwrap();
        assert_eq!(pwd, format!("{chdir}\n"));
        std::fs::write(&creates, "").unwrap();
        assert_eq!(sb.check(&a), "created\n", "{v:?}");
    }
}

#[test]
fn assert_runs_its_test_as_written() {
    let sb = Sandbox::new("assert");
    let that = "printf '%s\\n' \"it's\" `echo b` $(echo c) # )\nfalse";
    let a = action("assert", json!({"that": that, "message": "m"}));
    assert_eq!(sb.check(&a), "failed\noutput it's\noutput b\noutput c\n");
    assert_eq!(a.apply(), "");
}

/// The gathered checks (one awk pass for all line steps, one `systemctl` per verb for all
/// units, one `bash` for all ports, the shared hash for downloads) carry every value as its
/// own word or environment value: the facts are those of each step's own check.
#[test]
fn batched_checks_carry_values_byte_identical() {
    let sb = Sandbox::new("batched");
    sb.stub("systemctl", 0, "");
    sb.stub("timeout", 1, "");
    let sha = sha256_hex(b"x");
    let mut steps = Vec::new();
    for (i, v) in NASTY.iter().enumerate() {
        let path = sb.path(&format!("b{i} {v}"));
        std::fs::write(&path, format!("{v}\nx{v}\n")).unwrap();
        steps.extend([
            action("line", json!({"path": path, "line": v, "regexp": "^x"})),
            action("line", json!({"path": path, "line": format!("x{v}"), "regexp": v.replace(['(', ')', '[', '{', '*', '$', '\\', '`', '|'], "")})),
            action("service", json!({"name": v, "enabled": true})),
            action("download", json!({"url": "u", "dest": path, "sha256": sha})),
            action("wait_for", json!({"port": 9, "host": v, "timeout": 0})),
        ]);
    }
    let facts = sb.check_all(&steps);
    for (a, f) in steps.iter().zip(&facts) {
        assert_eq!(
            f,
            &a.read(&rollout::step::CheckOutput {
                lines: sb.check(a).lines().map(String::from).collect(),
            }),
            "{a:?}"
        );
    }
    // A pattern (`*`) is not gathered: systemctl would answer for every unit it matches.
    let mut units: Vec<&str> = NASTY.iter().copied().filter(|v| !v.contains('*')).collect();
    units.sort();
    units.dedup();
    for verb in ["is-enabled", "is-active"] {
        let calls = sb.calls("systemctl");
        let batched: Vec<&Vec<String>> = calls
            .iter()
            .filter(|c| c[0] == verb && c.len() > 3)
            .collect();
        assert_eq!(batched.len(), 1);
        let mut named: Vec<&str> = batched[0][2..].iter().map(String::as_str).collect();
        named.sort();
        assert_eq!(named, units);
    }
    let timeout = sb.calls("timeout");
    let batched = timeout.iter().find(|c| c.len() > 8).unwrap();
    let hosts: Vec<&str> = batched[5..].chunks(3).map(|c| c[1].as_str()).collect();
    assert_eq!(hosts, NASTY);
    assert!(batched[5..].chunks(3).all(|c| c[2] == "9"));
}

#[test]
fn service_name_arrives_as_an_operand() {
    let sb = Sandbox::new("service");
    sb.stub("systemctl", 0, "");
    for v in NASTY.iter().chain(&["-.mount"]) {
        let a = action(
            "service",
            json!({"name": v, "enabled": true, "state": "started"}),
        );
        sb.check(&a);
        sb.apply_ok(&a);
        let calls = sb.calls("systemctl");
        let tail: Vec<&[String]> = calls[calls.len() - 4..].iter().map(|c| &c[..]).collect();
        for (c, verb) in tail
            .iter()
            .zip(["is-enabled", "is-active", "enable", "start"])
        {
            assert_eq!(c.to_vec(), argv(&[verb, "--", v]), "{v:?}");
        }
    }
}

#[test]
fn apt_names_arrive_as_operands_and_others_are_refused() {
    let sb = Sandbox::new("apt");
    sb.stub("dpkg-query", 0, "");
    sb.stub("apt-get", 0, "");
    let names = ["g++", "libc6:amd64", "a=1.0~b+c"];
    let a = action("apt", json!({"name": names}));
    sb.check(&a);
    assert_eq!(
        sb.calls("dpkg-query")[0][2..],
        argv(&["g++", "libc6:amd64", "a"])
    );
    sb.apply_ok(&a);
    assert!(sb.calls("apt-get")[0].ends_with(&argv(&names)));
    for v in NASTY {
        let e = sandbox::error("apt", json!({"name": [v]}));
        assert_eq!(e, format!("`{v}` is not a package name"));
    }
}

#[test]
fn download_url_and_dest_arrive_byte_identical() {
    let sb = Sandbox::new("download");
    let sha = sha256_hex(b"pinned");
    for (i, v) in NASTY.iter().enumerate() {
        let dest = sb.path(&format!("dl{i} {v}"));
        for url in [format!("file:///x/{v}"), v.to_string()] {
            let a = action("download", json!({"url": url, "dest": dest, "sha256": sha}));
            sb.stub("curl", 22, "");
            let err = sb.apply_err(&a);
            assert_eq!(err, format!("download of {url} failed\n"));
            assert!(
                sb.calls("curl")
                    .last()
                    .unwrap()
                    .ends_with(&["--url".into(), url.clone()])
            );
            // A download of other bytes: the message names the URL and both hashes.
            sb.stub_script(
                "curl",
                "while [ $# -gt 1 ]; do [ \"$1\" != -o ] || o=$2; shift; done; printf x > \"$o\"",
            );
            let err = sb.apply_err(&a);
            let got = sha256_hex(b"x");
            assert_eq!(
                err,
                format!("checksum mismatch for {url}: got {got}, pinned {sha}\n")
            );
        }
        std::fs::write(&dest, "pinned").unwrap();
        let a = action("download", json!({"url": "u", "dest": dest, "sha256": sha}));
        assert!(
            sb.check(&a).starts_with(&format!("hash {sha}\nstat ")),
            "{v:?}"
        );
    }
}

#[test]
fn wait_for_host_and_url_arrive_as_operands() {
    let sb = Sandbox::new("wait_for");
    sb.stub("timeout", 1, "");
    sb.stub("curl", 0, "000");
    for v in NASTY {
        let a = action("wait_for", json!({"port": 9, "host": v, "timeout": 0}));
        assert_eq!(sb.check(&a), "");
        let script = "exec 3<>\"/dev/tcp/$1/$2\"";
        let want = ["3", "bash", "-c", script, "rollout-wait", v, "9"];
        assert_eq!(sb.calls("timeout").last().unwrap(), &argv(&want));
        let err = sb.apply_err(&a);
        assert_eq!(err, format!("port 9 on {v} did not come up within 0 s\n"));
        for url in [format!("http://x/{v}"), v.to_string()] {
            let a = action("wait_for", json!({"url": url, "timeout": 0}));
            assert_eq!(sb.check(&a), "");
            let call = sb.calls("curl").last().unwrap().clone();
            assert!(call.ends_with(&["--url".into(), url.clone()]), "{call:?}");
            let err = sb.apply_err(&a);
            assert_eq!(
                err,
                format!("{url} to answer 200 did not come up within 0 s\n")
            );
        }
    }
}

#[test]
fn wait_for_reaches_a_real_port_through_its_positional_host() {
    let sb = Sandbox::new("wait_for_real");
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = open.local_addr().unwrap().port();
    let a = action("wait_for", json!({"port": port, "host": "127.0.0.1"}));
    assert_eq!(sb.check(&a), "ready\n");
    // (That a closed port is not ready is not checked here: children that other tests
    // start at the same time may hold the listener open.)
    drop(open);
}

#[test]
fn a_nul_is_refused_in_every_kind() {
    let cases = [
        ("apt", json!({"name": ["a\0b"]}), "name"),
        ("file", json!({"path": "/a\0b", "content": "x"}), "path"),
        ("directory", json!({"path": "/a", "owner": "a\0b"}), "owner"),
        (
            "property",
            json!({"path": "/a", "key": "k\0", "value": "v"}),
            "key",
        ),
        ("line", json!({"path": "/a", "line": "a\0b"}), "line"),
        ("service", json!({"name": "a\0b"}), "name"),
        (
            "command",
            json!({"run": "true", "creates": "/a\0"}),
            "creates",
        ),
        (
            "download",
            json!({"url": "u\0", "dest": "/a", "sha256": "0"}),
            "url",
        ),
        ("wait_for", json!({"url": "http://a\0b"}), "url"),
        ("assert", json!({"that": "true\0", "message": "m"}), "that"),
    ];
    for (kind, args, field) in cases {
        let want =
            format!("`{field}` contains a NUL byte, which cannot be passed to the host's shell");
        assert_eq!(sandbox::error(kind, args), want, "{kind}");
    }
}

/// `apt` waits for the dpkg lock (unattended-upgrades on a fresh machine) and retries: every
/// apt-get call asks apt itself to wait up to 600 s for the lock, and a call that still fails
/// is retried after 10 s, three attempts in all, before the step fails. Here apt-get is a
/// stub that finds the lock held for its first calls, and `sleep` a stub that only records.
#[test]
fn apt_waits_for_the_dpkg_lock_and_retries() {
    let held_for = |calls: usize| {
        format!(
            "[ $i -ge {calls} ] || {{ echo 'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 812 (unattended-upgr)' >&2; exit 100; }}"
        )
    };
    let a = action("apt", json!({"name": ["coturn"]}));
    let waits_for_the_lock = |call: &Vec<String>| {
        call.windows(2)
            .any(|w| w[0] == "-o" && w[1] == "DPkg::Lock::Timeout=600")
    };

    // The lock is released after two attempts: the third succeeds.
    let sb = Sandbox::new("apt-lock");
    sb.stub_script("apt-get", &held_for(2));
    sb.stub("sleep", 0, "");
    sb.stub("od", 0, "    247\n");
    sb.apply_ok(&a);
    let calls = sb.calls("apt-get");
    // Three tries to fetch the package (the third succeeds), then the install.
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert!(calls.iter().all(|c| c.contains(&"install".to_string())));
    assert!(
        calls[..3]
            .iter()
            .all(|c| c.contains(&"--download-only".to_string()))
    );
    assert!(!calls[3].contains(&"--download-only".to_string()));
    assert!(calls.iter().all(waits_for_the_lock), "{calls:?}");
    // Retries wait 10-29 s, 10 plus a random byte (`od` on /dev/urandom, stubbed here to
    // 247) mod 20, so hosts that failed together retry apart.
    assert_eq!(sb.calls("sleep"), [argv(&["17"]), argv(&["17"])]);
    drop(sb);

    // Never released: three attempts to install, then three to update, and the step fails
    // naming why, instead of retrying forever.
    let sb = Sandbox::new("apt-lock-held");
    sb.stub_script("apt-get", &held_for(1000));
    sb.stub("sleep", 0, "");
    let err = sb.apply_err(&a);
    let calls = sb.calls("apt-get");
    let verbs: Vec<&str> = calls
        .iter()
        .map(|c| {
            if c.contains(&"update".to_string()) {
                "update"
            } else {
                "install"
            }
        })
        .collect();
    assert_eq!(
        verbs,
        [
            "install", "install", "install", "update", "update", "update"
        ]
    );
    assert!(calls.iter().all(waits_for_the_lock), "{calls:?}");
    assert_eq!(sb.calls("sleep").len(), 4);
    for n in [1, 2] {
        assert!(
            err.contains(&format!(
                "apt-get install failed (exit code 100), retrying ({n})"
            )),
            "{err}"
        );
    }
    assert!(err.contains("Could not get lock"), "{err}");
}

/// Every network phase of `apt` runs under a watchdog (`timeout`: 120 s for `update`, 300 s
/// for the download), so a fetch that
/// hangs behind a proxy (apt's http method can wait forever) fails and is retried; the
/// install itself, where dpkg runs, never does: a killed dpkg would leave half-configured
/// packages. Here `timeout` is a stub that records and runs the command it guards.
#[test]
fn apt_fetches_under_a_watchdog_and_installs_without_one() {
    let sb = Sandbox::new("apt-watchdog");
    sb.stub("apt-get", 0, "");
    sb.stub_script("timeout", "shift 3; exec \"$@\"");
    let a = action(
        "apt",
        json!({"name": ["coturn"], "update_cache": true, "cache_valid_time": 0}),
    );
    sb.apply_ok(&a);
    let guarded: Vec<String> = sb
        .calls("timeout")
        .iter()
        .map(|c| {
            assert_eq!(c[3], "apt-get");
            let verb = c.iter().find(|w| *w == "update" || *w == "install");
            let dl = c.iter().any(|w| w == "--download-only");
            let limit = if dl { "300" } else { "120" };
            assert_eq!(c[..3], argv(&["-k", "10", limit]), "{c:?}");
            format!(
                "{}{}",
                verb.unwrap(),
                if dl { " --download-only" } else { "" }
            )
        })
        .collect();
    assert_eq!(guarded, ["update", "install --download-only"]);
    let installs: Vec<_> = sb
        .calls("apt-get")
        .into_iter()
        .filter(|c| c.contains(&"install".to_string()))
        .collect();
    assert_eq!(installs.len(), 2, "{installs:?}");
    assert!(!installs[1].contains(&"--download-only".to_string()));
}
