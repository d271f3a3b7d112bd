//! A template whose value grows without bound (issue 8, kinds 2 and 3) stops rollout with a
//! clear error and exit 2, within seconds and bounded memory, instead of exhausting the
//! machine: the binary's allocator counts what one render grows the heap by and a watchdog
//! bounds its time (`rollout::bounded::render`). Run under `ulimit -v` (2 GiB), so a
//! regression shows as an allocation failure (exit 134), not as a machine out of memory.
//! The message names where the value was written (file:line:column) and the host.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

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

/// A fresh scratch folder for the test `name`.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rollout-budget-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs `rollout plan` on a project whose variable `big` is `value` (see [`plan_in`]).
fn plan(value: &str, name: &str) -> (i32, String, Duration) {
    let dir = scratch(name);
    project(&dir, value);
    plan_in(&dir)
}

/// Runs `rollout plan inventory.yml` in `dir` under `ulimit -v` (2 GiB), then removes `dir`;
/// returns the exit code, stderr and the CPU time (user + system) the process used. CPU time,
/// not wall time: the budget is the rendering thread's CPU time, and on a loaded machine wall
/// time says nothing about it.
// The child is reaped by wait4 (for its rusage), not by Child::wait.
#[allow(clippy::zombie_processes)]
fn plan_in(dir: &Path) -> (i32, String, Duration) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2097152; exec \"$0\" plan inventory.yml")
        .arg(env!("CARGO_BIN_EXE_rollout"))
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child spawned above (not yet reaped: `child` is never waited on).
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    let cpu = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    let _ = std::fs::remove_dir_all(dir);
    let status = std::process::ExitStatus::from_raw(status);
    (
        status.code().unwrap_or(-1),
        err,
        cpu(usage.ru_utime) + cpu(usage.ru_stime),
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
    assert!(took < Duration::from_secs(15), "used {took:?} of CPU time");
    // The variable's value in the inventory (line 8, column 14), for host h1.
    assert!(
        err.starts_with(
            "error: inventory.yml:8:14: rendering a templated value for host h1 needs more than"
        ),
        "{err}"
    );
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
    assert!(took < Duration::from_secs(15), "used {took:?} of CPU time");
    // Stopped by the watchdog thread (time), which names the place all the same.
    assert!(
        err.starts_with(
            "error: inventory.yml:8:14: rendering a templated value for host h1 needs more than"
        ),
        "{err}"
    );
}

/// A step's argument and a template file that grow without bound are placed at the argument
/// (the step's `template:` for a file) in `steps.yml`, for the host.
#[test]
fn a_step_argument_and_a_template_are_named_with_their_place_and_host() {
    let double = r#"{% set ns = namespace(x="ab") %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x | length }}"#;
    for (name, step, templ, at) in [
        (
            "arg",
            format!("- name: show\n  command: {{run: \"echo x\", creates: '{double}'}}\n"),
            None,
            "./roles/r/steps.yml:2:37: rendering a templated value for host h1",
        ),
        (
            "template",
            "- name: conf\n  file: {path: /etc/x, template: x.j2}\n".to_string(),
            Some(double),
            "./roles/r/steps.yml:2:34: rendering template x.j2 for host h1",
        ),
    ] {
        let dir = scratch(name);
        project(&dir, "small");
        std::fs::write(dir.join("roles/r/steps.yml"), step).unwrap();
        if let Some(t) = templ {
            std::fs::create_dir_all(dir.join("templates")).unwrap();
            std::fs::write(dir.join("templates/x.j2"), t).unwrap();
        }
        let (code, err, _) = plan_in(&dir);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(
            err.starts_with(&format!("error: {at} needs more than")),
            "{name}: {err}"
        );
    }
}
