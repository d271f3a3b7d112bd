//! The command line of an Ansible user, through the real binary (issue 7, item 5): shell
//! completions and a man page made by clap, options from environment variables
//! (`ROLLOUT_FORKS`, `ROLLOUT_INVENTORY`, `ROLLOUT_VAULT_PASSWORD_FILE`, `ROLLOUT_LOG_FILE`;
//! the command line beats the environment, a bad value names its variable, an empty one
//! counts as unset, `rollout inventory` reads `ROLLOUT_INVENTORY` too), and
//! `--log-file` (Ansible's `log_path`): the run's lines with timestamps, no secret in any
//! spelling, mode 0600, appended, and an unwritable path stopping the command before any
//! host is touched. Hosts are `connection: local` (no SSH); nothing leaves this machine.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

const SECRET: &str = "Lg-S3cr'et&<v>-Kq7";

/// A throwaway project: two local hosts, one role writing a file whose content holds a
/// secret (read from `secret.txt`) into `out/`.
struct Project {
    dir: PathBuf,
}

impl Project {
    fn new(name: &str) -> Project {
        let dir = std::env::temp_dir().join(format!("rollout-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("roles/app")).unwrap();
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::create_dir_all(dir.join("out")).unwrap();
        let inv = format!(
            "all:\n  vars:\n    out: {}\n    pw: {{secret: \"file:secret.txt\"}}\n  children:\n    web:\n      roles: [app]\n      hosts:\n        web1: {{connection: local}}\n        web2: {{connection: local}}\n",
            dir.join("out").display()
        );
        std::fs::write(dir.join("inventory.yml"), inv).unwrap();
        std::fs::write(dir.join("secret.txt"), format!("{SECRET}\n")).unwrap();
        std::fs::write(
            dir.join("roles/app/steps.yml"),
            "- name: app env\n  file: {path: \"{{ out }}/{{ inventory_hostname }}.env\", content: \"PASSWORD={{ pw }}\\nB64={{ pw | b64encode }}\\n\"}\n",
        )
        .unwrap();
        Project { dir }
    }

    /// `rollout ARGS...` with the given environment (and no TERM: plain lines); (exit code,
    /// stdout, stderr).
    fn rollout(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollout"));
        cmd.args(args).env_remove("TERM");
        for var in [
            "ROLLOUT_FORKS",
            "ROLLOUT_INVENTORY",
            "ROLLOUT_LOG_FILE",
            "ROLLOUT_VAULT_PASSWORD_FILE",
            "ROLLOUT_BECOME_PASSWORD_FILE",
            "ANSIBLE_VAULT_PASSWORD_FILE",
            "ANSIBLE_VAULT_IDENTITY_LIST",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn inventory(&self) -> String {
        self.dir.join("inventory.yml").display().to_string()
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.join(p)
    }

    /// The files the run wrote on its hosts.
    fn written(&self) -> usize {
        std::fs::read_dir(self.dir.join("out")).unwrap().count()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const SUBCOMMANDS: [&str; 10] = [
    "plan",
    "apply",
    "drain",
    "undrain",
    "upgrade",
    "status",
    "inventory",
    "exec",
    "completions",
    "man",
];

#[test]
fn completions_know_the_subcommands_and_options_and_bash_accepts_the_script() {
    let p = Project::new("compl");
    let (code, bash, err) = p.rollout(&["completions", "bash"], &[]);
    assert_eq!(code, 0, "{err}");
    for sub in SUBCOMMANDS {
        assert!(bash.contains(sub), "bash completion lacks `{sub}`");
    }
    for opt in ["--limit", "--forks", "--log-file", "--extra-vars"] {
        assert!(bash.contains(opt), "bash completion lacks `{opt}`");
    }
    // bash itself parses the script (`-n`: read, do not run), where bash exists.
    if Command::new("bash").arg("--version").output().is_ok() {
        let script = p.path("rollout.bash");
        std::fs::write(&script, &bash).unwrap();
        let out = Command::new("bash")
            .arg("-n")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bash -n refuses the completion script: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let (code, text, err) = p.rollout(&["completions", shell], &[]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(text.contains("--limit"), "{shell} completion lacks --limit");
    }
    let (code, _, err) = p.rollout(&["completions", "tcsh"], &[]);
    assert_eq!(code, 2, "an unknown shell is a usage error: {err}");
}

#[test]
fn man_page_is_roff_with_every_subcommand() {
    let p = Project::new("man");
    let (code, man, err) = p.rollout(&["man"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(man.contains(".TH rollout"), "no .TH rollout in:\n{man}");
    for sub in SUBCOMMANDS {
        assert!(
            man.contains(&format!(".SH \"ROLLOUT {}\"", sub.to_uppercase())),
            "the man page has no section for `{sub}`"
        );
    }
    assert!(
        man.contains("ROLLOUT_FORKS"),
        "the man page names the environment"
    );
    for section in [".SH ENVIRONMENT", ".SH \"EXIT STATUS\"", ".SH SUBCOMMANDS"] {
        assert!(man.contains(section), "no {section} in the man page");
    }
    for var in [
        "ROLLOUT_INVENTORY",
        "ANSIBLE_VAULT_IDENTITY_LIST",
        "ROLLOUT_STATE_DIR",
        "XDG_STATE_HOME",
    ] {
        assert!(
            man.contains(&format!("\\fB{var}\\fR")),
            "{var} not in ENVIRONMENT"
        );
    }
    for code in ["0", "1", "2", "3", "130"] {
        assert!(
            man.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "exit {code} missing"
        );
    }
    // One page: no references to per-subcommand pages that do not exist.
    assert!(
        !man.contains("rollout\\-exec(1)"),
        "refers to rollout-exec(1)"
    );
    assert_eq!(man.matches(".ds Aq").count(), 2, "roff's preamble once");
}

#[test]
fn help_names_the_environment_variables() {
    let p = Project::new("help");
    let (code, help, _) = p.rollout(&["plan", "--help"], &[]);
    assert_eq!(code, 0);
    for var in [
        "ROLLOUT_FORKS",
        "ROLLOUT_INVENTORY",
        "ROLLOUT_VAULT_PASSWORD_FILE",
        "ROLLOUT_LOG_FILE",
    ] {
        assert!(
            help.contains(&format!("[env: {var}=")),
            "--help lacks {var}:\n{help}"
        );
    }
}

#[test]
fn options_come_from_the_environment_and_the_command_line_wins() {
    let p = Project::new("env");
    let inv = p.inventory();
    // ROLLOUT_INVENTORY stands for the positional inventory.
    let (code, out, err) = p.rollout(&["plan"], &[("ROLLOUT_INVENTORY", &inv)]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(common::summary_counts(&out).0 == 2, "{out}");
    // Without it, the inventory is still required (exit 2).
    let (code, _, err) = p.rollout(&["plan"], &[]);
    assert_eq!(code, 2, "{err}");
    // The command line's inventory wins over the environment's.
    let (code, out, err) = p.rollout(
        &["plan", &inv],
        &[("ROLLOUT_INVENTORY", "/nonexistent/rollout.yml")],
    );
    assert_eq!(code, 0, "{out}\n{err}");

    // A bad ROLLOUT_FORKS is a usage error naming the variable.
    for bad in ["0", "many", "100000"] {
        let (code, _, err) = p.rollout(&["plan", &inv], &[("ROLLOUT_FORKS", bad)]);
        assert_eq!(code, 2, "ROLLOUT_FORKS={bad}: {err}");
        assert!(err.contains("ROLLOUT_FORKS"), "ROLLOUT_FORKS={bad}: {err}");
    }
    // --forks on the command line wins (the bad environment value is not even read).
    let (code, out, err) = p.rollout(&["plan", &inv, "--forks", "2"], &[("ROLLOUT_FORKS", "0")]);
    assert_eq!(code, 0, "{out}\n{err}");
    // A good one is taken.
    let (code, out, err) = p.rollout(&["plan", &inv], &[("ROLLOUT_FORKS", "1")]);
    assert_eq!(code, 0, "{out}\n{err}");
    // A bad value given on the command line is not blamed on the environment.
    let (code, _, err) = p.rollout(&["plan", &inv, "--forks", "0"], &[("ROLLOUT_FORKS", "3")]);
    assert_eq!(code, 2);
    assert!(!err.contains("ROLLOUT_FORKS"), "{err}");

    // ROLLOUT_VAULT_PASSWORD_FILE reaches the inventory reader: a missing file is named.
    let (code, _, err) = p.rollout(
        &["inventory", "-i", &inv, "--list"],
        &[("ROLLOUT_VAULT_PASSWORD_FILE", "/nonexistent/vault-pass")],
    );
    // The inventory has no vault: the file is not needed, and the listing works.
    assert_eq!(code, 0, "{err}");
}

#[test]
fn environment_values_are_named_empty_ones_unset_and_rollout_inventory_reads_them_too() {
    let p = Project::new("envvals");
    let inv = p.inventory();
    // A missing file from ROLLOUT_INVENTORY: the error names the variable, for every command
    // that reads the rollout file.
    for cmd in [
        &["plan"][..],
        &["apply"],
        &["status"],
        &["exec", "-l", "all", "--", "true"],
        &["inventory", "--list"],
    ] {
        let (code, _, err) = p.rollout(cmd, &[("ROLLOUT_INVENTORY", "nosuch.yml")]);
        assert_eq!(code, 2, "{cmd:?}: {err}");
        assert!(
            err.starts_with("error: nosuch.yml (from $ROLLOUT_INVENTORY): cannot read file:"),
            "{cmd:?}: {err}"
        );
    }
    // Empty values count as unset: the command runs as without them.
    let empty = [
        ("ROLLOUT_LOG_FILE", ""),
        ("ROLLOUT_FORKS", ""),
        ("ROLLOUT_VAULT_PASSWORD_FILE", ""),
        ("ROLLOUT_BECOME_PASSWORD_FILE", ""),
        ("ANSIBLE_VAULT_PASSWORD_FILE", ""),
    ];
    let (code, out, err) = p.rollout(&["plan", &inv], &empty);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(p.written(), 0);
    // An empty ROLLOUT_INVENTORY is no inventory: the usual usage error, not "a value is
    // required (from $ROLLOUT_INVENTORY)".
    let (code, _, err) = p.rollout(&["plan"], &[("ROLLOUT_INVENTORY", "")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("required arguments were not provided") && !err.contains("from $"),
        "{err}"
    );

    // `rollout inventory` reads the Ansible inventory the rollout file of ROLLOUT_INVENTORY
    // names, as the other commands do; `-i` replaces it.
    let hosts = p.path("hosts.ini");
    std::fs::write(&hosts, "[bbb]\nbbb1 ansible_connection=local\n").unwrap();
    std::fs::write(p.path("pool.yml"), "inventory: hosts.ini\n").unwrap();
    let pool = p.path("pool.yml").display().to_string();
    let (code, out, err) = p.rollout(&["inventory", "--graph"], &[("ROLLOUT_INVENTORY", &pool)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("@bbb:") && out.contains("bbb1"), "{out}");
    let (code, out, err) = p.rollout(&["inventory", &pool, "--graph"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("bbb1"), "{out}");
    let (code, out, err) = p.rollout(
        &["inventory", "-i", "web9,", "--graph"],
        &[("ROLLOUT_INVENTORY", "nosuch.yml")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("web9") && !out.contains("bbb1"), "{out}");
    // A rollout file with its own hosts names no Ansible inventory: said so, exit 2.
    let (code, _, err) = p.rollout(&["inventory", "--list"], &[("ROLLOUT_INVENTORY", &inv)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("names no Ansible inventory"), "{err}");

    // ROLLOUT_INVENTORY naming an Ansible INI inventory, as ANSIBLE_INVENTORY would:
    // `exec` and `inventory` read it as with `-i`; a `-i` replaces it; the commands that need
    // the rollout file say what the variable names, exit 2.
    let ini = hosts.display().to_string();
    let (code, out, err) = p.rollout(
        &["exec", "-l", "bbb", "--", "echo", "from-ini"],
        &[("ROLLOUT_INVENTORY", &ini)],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("bbb1") && out.contains("from-ini"), "{out}");
    let (code, out, err) = p.rollout(&["inventory", "--graph"], &[("ROLLOUT_INVENTORY", &ini)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("@bbb:") && out.contains("bbb1"), "{out}");
    let (code, out, err) = p.rollout(
        &["inventory", "-i", "web9,", "--graph"],
        &[("ROLLOUT_INVENTORY", &ini)],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("web9") && !out.contains("bbb1"), "{out}");
    for cmd in [&["plan"][..], &["apply"], &["status"]] {
        let (code, _, err) = p.rollout(cmd, &[("ROLLOUT_INVENTORY", &ini)]);
        assert_eq!(code, 2, "{cmd:?}: {err}");
        assert!(
            err.starts_with(&format!(
                "error: {ini} (from $ROLLOUT_INVENTORY) is an Ansible INI inventory"
            )),
            "{cmd:?}: {err}"
        );
    }
}

/// The log's lines without their `TIME p=PID | ` prefix, checking that every line has one.
fn log_lines(log: &str) -> Vec<String> {
    log.lines()
        .map(|l| {
            let (head, text) = l
                .split_once(" | ")
                .unwrap_or_else(|| panic!("a log line without its prefix: {l}"));
            let (time, pid) = head.split_once(' ').unwrap();
            assert!(
                time.len() >= 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
                "not an RFC 3339 UTC time: {time}"
            );
            assert!(pid.starts_with("p="), "{head}");
            text.to_string()
        })
        .collect()
}

#[test]
fn log_file_holds_the_run_redacted_is_private_and_appended() {
    let p = Project::new("log");
    let inv = p.inventory();
    let log = p.path("rollout.log");
    let log_s = log.display().to_string();

    let (code, out, err) = p.rollout(&["plan", &inv, "--log-file", &log_s], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let first = std::fs::read_to_string(&log).unwrap();
    let lines = log_lines(&first);
    for l in out.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            lines.iter().any(|x| x == l),
            "the log lacks the printed line `{l}`:\n{first}"
        );
    }
    assert!(first.contains("web1: ~ app: app env"), "{first}");
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the log file's mode");

    // Appended, not truncated; through the environment too; -v shows the scripts.
    let (code, out, err) = p.rollout(&["apply", &inv, "-v"], &[("ROLLOUT_LOG_FILE", &log_s)]);
    assert_eq!(code, 0, "{out}\n{err}");
    let both = std::fs::read_to_string(&log).unwrap();
    assert!(both.starts_with(&first), "the second run truncated the log");
    assert!(both.len() > first.len());
    log_lines(&both);
    assert!(both.contains("web2: changed  app: app env"), "{both}");
    assert!(both.contains("script:"), "-v's scripts are logged:\n{both}");
    assert_eq!(p.written(), 2);

    // An ad-hoc command's per-host output is logged too.
    let (code, out, err) = p.rollout(
        &[
            "exec",
            &inv,
            "-l",
            "all",
            "--log-file",
            &log_s,
            "--",
            "echo",
            "hello-log",
        ],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let with_exec = log_lines(&std::fs::read_to_string(&log).unwrap());
    assert!(out.contains("hello-log"), "{out}");
    for l in out.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            with_exec.iter().any(|x| x == l),
            "the log lacks the exec line `{l}`"
        );
    }

    // A failing run's error is logged too, redacted: it quotes the secret's value.
    std::fs::write(
        p.path("roles/app/steps.yml"),
        "- name: broken\n  file: {path: \"{{ out }}/x\", content: a, mode: \"{{ pw }}\"}\n",
    )
    .unwrap();
    let (code, _, err) = p.rollout(&["plan", &inv, "--log-file", &log_s], &[]);
    assert_eq!(code, 2, "{err}");
    let all = std::fs::read_to_string(&log).unwrap();
    let leaks = common::secrets_in(&all, &[SECRET]);
    assert!(leaks.is_empty(), "the log holds the secret: {leaks:?}");
    let last = log_lines(&all);
    for l in err.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            last.iter().any(|x| x == l),
            "the log lacks the error line `{l}`"
        );
    }
    assert!(all.contains("mode `<redacted>`"), "{all}");
}

#[test]
fn an_unwritable_log_file_stops_before_any_host() {
    let p = Project::new("logbad");
    let inv = p.inventory();
    for bad in [
        p.path("no/such/folder/rollout.log"),
        p.path("out"), // a directory
    ] {
        let bad = bad.display().to_string();
        let (code, out, err) = p.rollout(&["apply", &inv, "--log-file", &bad], &[]);
        assert_eq!(code, 2, "{bad}: {out}\n{err}");
        assert!(err.contains(&bad), "the error names the path: {err}");
        let (code, _, err) = p.rollout(&["apply", &inv], &[("ROLLOUT_LOG_FILE", &bad)]);
        assert_eq!(code, 2, "{bad} from the environment: {err}");
        assert_eq!(p.written(), 0, "a host was touched");
    }
}

#[test]
fn log_file_given_twice_is_refused_before_any_host() {
    let p = Project::new("logtwice");
    let inv = p.inventory();
    let a = p.path("a.log").display().to_string();
    let b = p.path("b.log").display().to_string();
    let (code, out, err) = p.rollout(&["--log-file", &a, "apply", &inv, "--log-file", &b], &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("--log-file given more than once"), "{err}");
    assert_eq!(p.written(), 0, "a host was touched");
    assert!(!p.path("a.log").exists() && !p.path("b.log").exists());
    // Once, before or after the subcommand, is fine.
    let (code, _, err) = p.rollout(&["--log-file", &a, "plan", &inv], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(p.path("a.log").exists());
}

#[test]
fn limit_given_twice_is_refused_with_a_tip_for_one_pattern() {
    let p = Project::new("limittwice");
    let inv = p.inventory();
    let (code, out, err) = p.rollout(&["apply", &inv, "-l", "a", "--limit", "b"], &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("cannot be used multiple times"), "{err}");
    assert!(err.contains("tip: give one pattern"), "{err}");
    assert_eq!(p.written(), 0, "a host was touched");
}

/// A strict stand-in for sudo (shared with `src/connection/mod.rs`'s tests).
const FAKE_SUDO: &str = include_str!("fixtures/fake_sudo.sh");

/// `-K` on a real terminal (a pty from util-linux `script`): rollout prompts `BECOME
/// password: `, the typed password is not echoed, and it reaches sudo on the host (a local
/// host whose login user is not root; a strict fake `sudo` and an `id` saying uid 1000 on
/// PATH). A wrong one fails the host with one clear line. The password shows nowhere.
#[test]
fn ask_become_pass_prompts_on_a_terminal_without_echo_and_reaches_sudo() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::process::Stdio;
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let p = Project::new("askbecome");
    const PASSWORD: &str = "Typed-pw 42'x";
    std::fs::create_dir_all(p.path("bin")).unwrap();
    for (name, text) in [
        ("sudo", FAKE_SUDO.to_string()),
        ("id", "#!/bin/sh\necho 1000\n".to_string()),
    ] {
        let f = p.path("bin").join(name);
        std::fs::write(&f, text).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        p.path("become.yml"),
        "all:\n  hosts:\n    here: {connection: local, user: deploy, become: true}\n",
    )
    .unwrap();
    let run = |typed: &str| -> String {
        let cmd = format!(
            "{} exec {} -l all -K -- echo ran-as-root",
            env!("CARGO_BIN_EXE_rollout"),
            p.path("become.yml").display()
        );
        let path = std::env::var("PATH").unwrap_or_default();
        let mut child = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("PATH", format!("{}:{path}", p.path("bin").display()))
            .env("PASSWORD", PASSWORD)
            .env("SHELL", "/bin/sh")
            .env_remove("ROLLOUT_INVENTORY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        // Type the password only once the prompt is there (echo is off then), as a person.
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !String::from_utf8_lossy(&seen).contains("BECOME password: ") {
            assert!(std::time::Instant::now() < deadline, "no prompt: {seen:?}");
            let n = stdout.read(&mut buf).unwrap();
            assert!(
                n > 0,
                "ended before the prompt: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
        // rpassword prints the prompt, then turns echo off: a person types after that.
        std::thread::sleep(std::time::Duration::from_secs(1));
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{typed}\r").as_bytes()).unwrap();
        stdout.read_to_end(&mut seen).unwrap();
        drop(stdin);
        child.wait().unwrap();
        String::from_utf8_lossy(&seen).into_owned()
    };
    let out = run(PASSWORD);
    assert!(out.contains("here | CHANGED | rc=0 >>"), "{out}");
    assert!(out.contains("ran-as-root"), "{out}");
    assert!(!out.contains("Typed-pw"), "the password was shown: {out}");
    let out = run("wrong-typed-pw");
    assert!(
        out.contains("sudo: the become password was refused"),
        "{out}"
    );
    assert!(
        !out.contains("ran-as-root") && !out.contains("wrong-typed"),
        "{out}"
    );
}

/// A `cmd:` secret reference (`pass show ...`, `sops -d ...`): run without a shell in the
/// inventory's folder, its output the secret: written to the host, shown nowhere.
#[test]
fn a_cmd_secret_is_the_commands_output_and_never_shown() {
    let p = Project::new("cmdsecret");
    let inv = std::fs::read_to_string(p.path("inventory.yml"))
        .unwrap()
        .replace("file:secret.txt", "cmd:cat secret.txt");
    std::fs::write(p.path("inventory.yml"), inv).unwrap();
    let (code, out, err) = p.rollout(&["apply", &p.inventory()], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let written = std::fs::read_to_string(p.path("out/web1.env")).unwrap();
    assert!(
        written.starts_with(&format!("PASSWORD={SECRET}\n")),
        "{written}"
    );
    assert!(
        !out.contains(SECRET) && !err.contains(SECRET),
        "{out}\n{err}"
    );
}

/// A secret reference may use the host's variables (issue 7 item 2): each host reads its own
/// file, `file:secrets/{{ inventory_hostname }}`, and neither value is shown.
#[test]
fn a_secret_reference_may_use_the_hosts_variables() {
    let p = Project::new("hostsecret");
    let inv = std::fs::read_to_string(p.path("inventory.yml"))
        .unwrap()
        .replace(
            "file:secret.txt",
            "file:secrets/{{ inventory_hostname }}.txt",
        );
    std::fs::write(p.path("inventory.yml"), inv).unwrap();
    std::fs::create_dir_all(p.path("secrets")).unwrap();
    for h in ["web1", "web2"] {
        std::fs::write(
            p.path(&format!("secrets/{h}.txt")),
            format!("Own-{h}-Zq81\n"),
        )
        .unwrap();
    }
    let (code, out, err) = p.rollout(&["apply", &p.inventory()], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    for h in ["web1", "web2"] {
        let written = std::fs::read_to_string(p.path(&format!("out/{h}.env"))).unwrap();
        assert!(
            written.starts_with(&format!("PASSWORD=Own-{h}-Zq81\n")),
            "{written}"
        );
        assert!(!out.contains(&format!("Own-{h}")) && !err.contains(&format!("Own-{h}")));
    }
}

/// The preflight gate through the binary (issue 10): `web2` fails an `assert`, so neither
/// host is changed; `--output json` carries the failure in `web2`'s `preflight` and the
/// command exits 2; `--log-file` gets the same error lines as stderr.
#[test]
fn a_failed_preflight_exits_2_in_json_and_changes_no_host() {
    let p = Project::new("preflight");
    let steps = std::fs::read_to_string(p.path("roles/app/steps.yml")).unwrap();
    std::fs::write(
        p.path("roles/app/steps.yml"),
        format!(
            "{steps}- name: preflight\n  assert: {{that: \"test {{{{ inventory_hostname }}}} != web2\", message: \"web2 is not ready\"}}\n"
        ),
    )
    .unwrap();
    let inv = p.inventory();
    let log = p.path("rollout.log").display().to_string();
    let (code, out, err) = p.rollout(
        &["apply", &inv, "--output", "json", "--log-file", &log],
        &[],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    assert_eq!(p.written(), 0, "a host was changed");
    let summary: serde_json::Value = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary: {out}"));
    let hosts = summary["hosts"].as_array().unwrap();
    assert_eq!(
        hosts[1]["preflight"],
        serde_json::json!(["app: preflight: web2 is not ready"])
    );
    assert!(hosts[0].get("preflight").is_none(), "{out}");
    assert_eq!(
        hosts[0]["outcome"]["reason"],
        "not changed: preflight failed on web2"
    );
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("error: preflight failed on 1 host: no host was changed")
            && log.contains("  web2: app: preflight: web2 is not ready"),
        "{log}"
    );
}
