//! Vault ids as ansible-core reads them (`--vault-id [LABEL@]SOURCE`, repeatable,
//! `ANSIBLE_VAULT_IDENTITY_LIST`, `ANSIBLE_VAULT_ID_MATCH`), through the built binary. The
//! fixture (tests/fixtures/vault_ids, written with ansible-vault of ansible-core 2.19.14)
//! holds a 1.2 `!vault` value labelled `dev` and a vault-encrypted `group_vars/bbb/vault.yml`
//! labelled `prod`, with different passwords, on one host with `ansible_connection: local`.
//! `rollout exec pool.yml -l all -- true` opens both vaults before it runs `true` on this
//! machine (no network): it succeeds only when both decrypt. The library's load gives the
//! plaintexts ansible-vault encrypted. A value no password decrypts is exit 2 naming the
//! file, line and column and the labels tried; a failing password script is exit 2 naming it
//! and its exit code; no password or plaintext ever shows.

use std::path::PathBuf;
use std::process::{Command, Output};

const HOST: &str = "bbb1.example.invalid";
const SECRETS: [&str; 4] = [
    "dev-vault-pass",
    "prod-vault-pass",
    "dev-plaintext-token-17",
    "prod-plaintext-secret-42",
];

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault_ids")
}

/// `rollout exec pool.yml -l all ARGS -- true` in the fixture folder, with no vault setting
/// from the environment but `env`.
fn host(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rollout"));
    c.current_dir(fixture())
        .args(["exec", "pool.yml", "-l", "all"])
        .args(args)
        .args(["--", "true"]);
    for v in [
        "ANSIBLE_VAULT_PASSWORD_FILE",
        "ROLLOUT_VAULT_PASSWORD_FILE",
        "ANSIBLE_VAULT_IDENTITY_LIST",
        "ANSIBLE_VAULT_ID_MATCH",
    ] {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    c.output().expect("rollout runs")
}

/// Both vaults decrypted (the command ran on the host), nothing secret anywhere.
fn assert_both_open(out: &Output) {
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(text.contains(&format!("{HOST} | CHANGED | rc=0")), "{text}");
    assert_no_secret(out);
}

fn assert_no_secret(out: &Output) {
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for s in SECRETS {
        assert!(!all.contains(s), "{s} shows in: {all}");
    }
}

/// The located exit-2 error: its text.
fn exit_2(out: &Output) -> String {
    assert_no_secret(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn two_labelled_passwords_open_both_vaults() {
    let out = host(
        &[
            "--vault-id",
            "dev@dev-pass.txt",
            "--vault-id",
            "prod@prod-pass.txt",
        ],
        &[],
    );
    assert_both_open(&out);
    // The same from ANSIBLE_VAULT_IDENTITY_LIST.
    let out = host(
        &[],
        &[(
            "ANSIBLE_VAULT_IDENTITY_LIST",
            "dev@dev-pass.txt, prod@prod-pass.txt",
        )],
    );
    assert_both_open(&out);
}

#[test]
fn a_password_under_the_wrong_label_still_decrypts_as_ansible_falls_back() {
    // Labels swapped: each vault's own label has the wrong password; the others are tried.
    let out = host(
        &[
            "--vault-id",
            "dev@prod-pass.txt",
            "--vault-id",
            "prod@dev-pass.txt",
        ],
        &[],
    );
    assert_both_open(&out);
    // Unlabelled (`default`) and `--vault-password-file` too.
    let out = host(
        &[
            "--vault-id",
            "dev-pass.txt",
            "--vault-password-file",
            "prod-pass.txt",
        ],
        &[],
    );
    assert_both_open(&out);
    // ANSIBLE_VAULT_ID_MATCH: only the vault's own label is tried.
    let out = host(
        &[
            "--vault-id",
            "dev@prod-pass.txt",
            "--vault-id",
            "prod@dev-pass.txt",
        ],
        &[("ANSIBLE_VAULT_ID_MATCH", "yes")],
    );
    let err = exit_2(&out);
    assert!(err.contains("wrong vault password"), "{err}");
}

#[test]
fn a_short_wrong_password_does_not_redact_rollouts_own_words() {
    // A 5-byte password `wrong`: too short to be redacted as a value (it is never printed),
    // so "wrong vault password" reads as written, not "<redacted> vault password".
    let dir = std::env::temp_dir().join(format!("rollout-short-pass-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let short = dir.join("short-pass.txt");
    std::fs::write(&short, "wrong\n").unwrap();
    let slug = format!("prod@{}", short.display());
    let out = host(
        &["--vault-id", "dev@dev-pass.txt", "--vault-id", &slug],
        &[],
    );
    let err = exit_2(&out);
    assert!(
        err.contains("wrong vault password: none of vault ids") && !err.contains("<redacted>"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_password_file_given_on_the_command_line_must_exist_at_start() {
    let marker = std::env::temp_dir().join(format!("rollout-vault-ran-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rollout"));
        c.current_dir(fixture())
            .args(["exec", "pool.yml", "-l", "all"])
            .args(args)
            .args(["--", "touch", marker.to_str().unwrap()]);
        for v in [
            "ANSIBLE_VAULT_PASSWORD_FILE",
            "ROLLOUT_VAULT_PASSWORD_FILE",
            "ANSIBLE_VAULT_IDENTITY_LIST",
            "ANSIBLE_VAULT_ID_MATCH",
        ] {
            c.env_remove(v);
        }
        c.envs(env.iter().copied()).output().expect("rollout runs")
    };
    let both = [
        "--vault-id",
        "dev@dev-pass.txt",
        "--vault-id",
        "prod@prod-pass.txt",
    ];
    // A third id whose file is missing, needed by no vault: exit 2 at start as ansible-core
    // does, naming the option, label and file; nothing run.
    let mut args = both.to_vec();
    args.extend(["--vault-id", "staging@nosuch-pass.txt"]);
    let err = exit_2(&run(&args, &[]));
    assert!(
        err.starts_with(
            "error: --vault-id staging@nosuch-pass.txt: vault id `staging`: the vault password file nosuch-pass.txt was not found"
        ),
        "{err}"
    );
    assert!(!marker.exists(), "the command ran");
    // --vault-password-file: the same; a folder is not a password file.
    let err = exit_2(&run(&["--vault-password-file", "nosuch-pass.txt"], &[]));
    assert!(
        err.contains("--vault-password-file nosuch-pass.txt: vault id `default`: the vault password file nosuch-pass.txt was not found"),
        "{err}"
    );
    let mut args = both.to_vec();
    args.extend(["--vault-id", "x@inventory"]);
    let err = exit_2(&run(&args, &[]));
    assert!(
        err.contains(
            "--vault-id x@inventory: vault id `x`: the vault password file inventory cannot be read"
        ),
        "{err}"
    );
    assert!(!marker.exists(), "the command ran");
    // From the environment it matters only to a vault (a shell may set it for every
    // project): both vaults open from the command line, the run works.
    let out = run(
        &both,
        &[
            ("ANSIBLE_VAULT_IDENTITY_LIST", "staging@nosuch-pass.txt"),
            ("ROLLOUT_VAULT_PASSWORD_FILE", "nosuch-pass.txt"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(marker.exists(), "the command did not run");
    let _ = std::fs::remove_file(&marker);
}

#[test]
fn a_script_source_gives_the_password() {
    // A plain script: its output is the password.
    let out = host(
        &[
            "--vault-id",
            "dev@dev-pass.txt",
            "--vault-id",
            "prod@prod-pass.sh",
        ],
        &[],
    );
    assert_both_open(&out);
    // A client script: asked once per label with `--vault-id LABEL`.
    let out = host(
        &[
            "--vault-id",
            "dev@vault-pass-client.sh",
            "--vault-id",
            "prod@vault-pass-client.sh",
        ],
        &[],
    );
    assert_both_open(&out);
}

#[test]
fn a_failing_script_is_exit_2_naming_it_and_its_code() {
    let out = host(
        &[
            "--vault-id",
            "dev@dev-pass.txt",
            "--vault-id",
            "prod@failing-pass.sh",
        ],
        &[],
    );
    let err = exit_2(&out);
    assert!(
        err.contains("failing-pass.sh") && err.contains("code 7") && err.contains("`prod`"),
        "{err}"
    );
    // A client script that knows no such label: exit 2 naming it.
    let out = host(&["--vault-id", "staging@vault-pass-client.sh"], &[]);
    let err = exit_2(&out);
    assert!(
        err.contains("vault-pass-client.sh") && err.contains("`staging`"),
        "{err}"
    );
}

#[test]
fn a_value_no_password_opens_is_located_and_names_the_labels_tried() {
    // Only prod's password: the `dev` value in hosts.yml cannot be opened.
    let out = host(&["--vault-id", "prod@prod-pass.txt"], &[]);
    let err = exit_2(&out);
    assert!(
        err.contains("inventory/hosts.yml:8:22")
            && err.contains("bbb_dev_token")
            && err.contains("`prod`")
            && err.contains("labelled `dev`"),
        "{err}"
    );
    // Only dev's: the `prod` file cannot.
    let out = host(&["--vault-id", "dev@dev-pass.txt"], &[]);
    let err = exit_2(&out);
    assert!(
        err.contains("group_vars/bbb/vault.yml")
            && err.contains("`dev`")
            && err.contains("labelled `prod`"),
        "{err}"
    );
    // None at all.
    let out = host(&[], &[]);
    let err = exit_2(&out);
    assert!(err.contains("no vault password"), "{err}");
}

#[test]
fn the_plaintexts_are_what_ansible_vault_encrypted() {
    let dir = fixture();
    let load = |ids: &[(&str, &str)]| {
        let ansible = rollout::inventory::AnsibleSources {
            sources: vec![],
            vault_password_file: None,
            vault_ids: ids
                .iter()
                .map(|(label, file)| format!("{label}@{}", dir.join(file).display()))
                .collect(),
        };
        rollout::inventory::load_with(&dir.join("pool.yml"), &Default::default(), &ansible)
    };
    for ids in [
        [("dev", "dev-pass.txt"), ("prod", "prod-pass.txt")],
        [("prod", "dev-pass.txt"), ("dev", "prod-pass.sh")],
    ] {
        let inv = load(&ids).unwrap_or_else(|d| panic!("{ids:?}: {d:?}"));
        let vars = &inv.hosts[0].vars;
        assert_eq!(vars["bbb_dev_token"], "dev-plaintext-token-17", "{ids:?}");
        assert_eq!(
            vars["bbb_prod_secret"], "prod-plaintext-secret-42",
            "{ids:?}"
        );
    }
}

/// Runs `rollout ARGS` on a terminal (util-linux `script` gives it a pseudo-terminal) in the
/// fixture folder, answering each prompt of `answers` once it shows; all the terminal showed.
fn on_a_terminal(args: &str, answers: &[(&str, &str)]) -> (Option<i32>, String) {
    use std::io::{Read, Write};
    let cmd = format!("{} {args}", env!("CARGO_BIN_EXE_rollout"));
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .current_dir(fixture())
        .env_remove("ANSIBLE_VAULT_PASSWORD_FILE")
        .env_remove("ROLLOUT_VAULT_PASSWORD_FILE")
        .env_remove("ANSIBLE_VAULT_IDENTITY_LIST")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let mut stdin = child.stdin.take().unwrap();
    for (prompt, answer) in answers {
        while !seen.contains(prompt) {
            let chunk = rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no `{prompt}` in: {seen}"));
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        // The prompt shows before the terminal's echo is off: give rpassword a moment.
        std::thread::sleep(std::time::Duration::from_millis(300));
        stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
    }
    while let Ok(chunk) = rx.recv_timeout(std::time::Duration::from_secs(30)) {
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(stdin);
    let status = child.wait().unwrap();
    (status.code(), seen)
}

#[test]
fn ask_vault_pass_and_prompt_ask_on_the_terminal_without_echo() {
    let (code, seen) = on_a_terminal(
        "exec pool.yml -l all --vault-id prod@prompt --ask-vault-pass -- true",
        &[
            ("Vault password (prod): ", "prod-vault-pass"),
            ("Vault password: ", "dev-vault-pass"),
        ],
    );
    assert_eq!(code, Some(0), "{seen}");
    assert!(seen.contains(&format!("{HOST} | CHANGED | rc=0")), "{seen}");
    for s in SECRETS {
        assert!(!seen.contains(s), "{s} shows in: {seen}");
    }
    // No terminal to ask on (`setsid`: none even when the tests run on one): exit 2 at the
    // first vault, naming the prompt and what to give instead.
    let err = exit_2(&without_a_terminal(&["--ask-vault-pass"]));
    assert!(
        err.contains("(prompt)")
            && err.contains(
                "--ask-vault-pass needs a terminal; give --vault-password-file or --vault-id LABEL@FILE"
            )
            && !err.contains("os error"),
        "{err}"
    );
    let err = exit_2(&without_a_terminal(&["--vault-id", "prod@prompt"]));
    assert!(
        err.contains("--vault-id prod@prompt needs a terminal"),
        "{err}"
    );
}

/// `rollout exec pool.yml -l all ARGS -- true` with no controlling terminal (`setsid`: none
/// even when the tests run on one).
fn without_a_terminal(args: &[&str]) -> Output {
    Command::new("setsid")
        .arg(env!("CARGO_BIN_EXE_rollout"))
        .args(["exec", "pool.yml", "-l", "all"])
        .args(args)
        .args(["--", "true"])
        .current_dir(fixture())
        .env_remove("ANSIBLE_VAULT_PASSWORD_FILE")
        .env_remove("ROLLOUT_VAULT_PASSWORD_FILE")
        .env_remove("ANSIBLE_VAULT_IDENTITY_LIST")
        .env_remove("ANSIBLE_VAULT_ID_MATCH")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("setsid runs")
}

#[test]
fn a_prompt_without_a_terminal_does_not_matter_when_other_ids_open_every_vault() {
    // `--ask-vault-pass` in a script's alias, both vaults opened by files: the run works.
    let out = without_a_terminal(&[
        "--vault-id",
        "dev@dev-pass.txt",
        "--vault-id",
        "prod@prod-pass.txt",
        "--ask-vault-pass",
    ]);
    assert_both_open(&out);
    // Only one opened by a file: the other vault needs the prompt, and says so.
    let err = exit_2(&without_a_terminal(&[
        "--vault-id",
        "prod@prod-pass.txt",
        "--ask-vault-pass",
    ]));
    assert!(
        err.contains("inventory/hosts.yml:8:22")
            && err.contains("--ask-vault-pass needs a terminal"),
        "{err}"
    );
}

#[test]
fn passwords_are_secrets_like_the_values() {
    // The host's output carries both passwords and both plaintexts: all redacted.
    let mut c = Command::new(env!("CARGO_BIN_EXE_rollout"));
    c.current_dir(fixture()).args([
        "exec",
        "pool.yml",
        "-l",
        "all",
        "--vault-id",
        "dev@dev-pass.txt",
        "--vault-id",
        "prod@prod-pass.sh",
        "--",
        "echo",
    ]);
    c.args(SECRETS).env_remove("ANSIBLE_VAULT_IDENTITY_LIST");
    let out = c.output().expect("rollout runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("<redacted> <redacted> <redacted> <redacted>"),
        "{text}"
    );
    assert_no_secret(&out);
}
