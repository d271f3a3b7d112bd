//! A template whose value grows without bound (issue 8, kinds 2 and 3) stops rollout with a
//! clear error and exit 2, within seconds and bounded memory, instead of exhausting the
//! machine: the binary's allocator counts what one render grows the heap by and a watchdog
//! bounds its time (`rollout::bounded::render`). Run under `ulimit -v` (2 GiB), so a
//! regression shows as an allocation failure (exit 134), not as a machine out of memory.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn project(dir: &Path, value: &str) {
    std::fs::create_dir_all(dir.join("roles/r")).unwrap();
    std::fs::write(
        dir.join("roles/r/steps.yml"),
        "- name: show\n  command: {run: \"echo {{ big }}\", creates: /nonexistent}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("inventory.yml"),
        format!(
            "all:\n  hosts:\n    h1:\n      roles: [r]\n      address: 127.0.0.1\n      port: 1\n      vars:\n        big: '{value}'\n"
        ),
    )
    .unwrap();
}

fn plan(value: &str, name: &str) -> (i32, String, Duration) {
    let dir = std::env::temp_dir().join(format!("rollout-budget-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    project(&dir, value);
    let start = Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2097152; exec \"$0\" plan inventory.yml")
        .arg(env!("CARGO_BIN_EXE_rollout"))
        .current_dir(&dir)
        .output()
        .unwrap();
    let took = start.elapsed();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        took,
    )
}

#[test]
fn a_string_doubled_in_a_loop_stops_with_exit_2() {
    let (code, err, took) = plan(
        r#"{% set ns = namespace(x="ab") %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x | length }}"#,
        "string",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs more than 512 MiB or 5 s"), "{err}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn a_string_doubled_by_a_recursive_macro_stops_with_exit_2() {
    let (code, err, _) = plan(
        r#"{% macro d(s, n) %}{% if n > 0 %}{{ d(s ~ s, n - 1) }}{% else %}{{ s | length }}{% endif %}{% endmacro %}{{ d("ab", 40) }}"#,
        "macro",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs more than 512 MiB or 5 s"), "{err}");
}

#[test]
fn a_sequence_doubled_in_a_loop_stops_within_the_time_budget() {
    let (code, err, took) = plan(
        r#"{% set ns = namespace(x=[1]) %}{% for i in range(40) %}{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x | length }}"#,
        "sequence",
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs more than 512 MiB or 5 s"), "{err}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
}
