//! The error messages are part of the command-line contract: for every kind of bad input,
//! `rollout plan` must exit with code 2 before touching any host and print exactly the
//! reviewed text in `tests/fixtures/errors/NAME.stderr` (file, line, column, snippet, hint).

use std::process::Command;

fn rollout(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rollout"))
        .args(args)
        .env_remove("ROLLOUT_TEST_UNSET_SECRET")
        .output()
        .expect("rollout runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn expect_error(name: &str, extra: &[&str]) {
    let inv = format!("tests/fixtures/errors/{name}.yml");
    let mut args = vec!["plan", inv.as_str()];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = rollout(&args);
    let expected = std::fs::read_to_string(format!(
        "tests/fixtures/errors/{}.stderr",
        if extra.is_empty() { name } else { "limit" }
    ))
    .expect("expected stderr file");
    assert_eq!(stderr, expected, "stderr of `rollout plan {inv}` changed");
    assert_eq!(code, 2, "bad input must exit 2");
    assert_eq!(stdout, "", "nothing may run on bad input");
}

#[test]
fn misspelled_structural_key_suggests_the_right_one() {
    expect_error("typo", &[]);
}

#[test]
fn wrong_type_names_line_and_column() {
    expect_error("wrong_type", &[]);
}

#[test]
fn duplicate_keys_are_errors() {
    expect_error("duplicate", &[]);
}

#[test]
fn empty_file() {
    expect_error("empty", &[]);
}

#[test]
fn non_utf8_file() {
    expect_error("latin1", &[]);
}

#[test]
fn alias_bomb_is_stopped() {
    let t = std::time::Instant::now();
    expect_error("alias_bomb", &[]);
    assert!(t.elapsed().as_secs() < 30, "an alias bomb must not hang");
}

#[test]
fn undefined_group_reference() {
    expect_error("undefined_group", &[]);
}

#[test]
fn unknown_role() {
    expect_error("unknown_role", &[]);
}

#[test]
fn missing_secret_environment_variable() {
    expect_error("missing_secret", &[]);
}

#[test]
fn misspelled_step_kind() {
    expect_error("role_badstep", &[]);
}

#[test]
fn unguarded_command_step() {
    expect_error("role_unguarded", &[]);
}

#[test]
fn notify_of_unknown_handler() {
    expect_error("role_badnotify", &[]);
}

#[test]
fn undefined_template_variable_names_template_line_and_host() {
    expect_error("role_undef", &[]);
}

#[test]
fn limit_to_unknown_host() {
    expect_error("good", &["--limit", "wbe1"]);
}
