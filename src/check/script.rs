//! Writes the check script: the gathered facts first, then each step's own section.

use super::Gathering;
use crate::script::{Nonce, quote, whole_or_nothing};
use crate::step::{AWK_FIND_MANY, Action, DIFF_LIMIT, Gather, STAT_FORMAT};

/// The one script that checks every step of a host (`steps` in plan order).
pub fn script(steps: &[&Action], nonce: &Nonce) -> String {
    let m = nonce.marker();
    let g = Gathering::of(steps);
    let mut body = String::from("export LC_ALL=C\n");
    let args = |paths: &[&str]| paths.iter().map(|p| quote(p)).collect::<Vec<_>>().join(" ");
    if !g.stat_paths.is_empty() {
        body.push_str(&format!(
            "echo '{m} s'\nstat -c '{STAT_FORMAT}|%n' -- {} 2>/dev/null </dev/null\n",
            args(&g.stat_paths)
        ));
    }
    if !g.hash_paths.is_empty() {
        // The hashes go to a variable too: a file whose hash is not the wanted one sends its
        // content (for the diff), found with `case` alone, without a process.
        body.push_str(&format!(
            "__h=$(sha256sum -- {} 2>/dev/null </dev/null)\necho '{m} h'\nprintf '%s\\n' \"$__h\"\n",
            args(&g.hash_paths)
        ));
        body.push_str(&format!(
            "__rl_content() {{ if [ \"$(stat -c %s -- \"$2\")\" -le {DIFF_LIMIT} ]; then printf '%s c %s ' '{m}' \"$1\"; base64 -w0 < \"$2\"; echo; fi; }}\n"
        ));
    }
    for (i, b) in g.gathers.iter().enumerate() {
        if let Some(Gather::File { path, want }) = b {
            body.push_str(&file_section(steps[i], i, path, want.as_deref(), &g, &m));
        }
    }
    for (j, (path, keys)) in g.prop_files.iter().enumerate() {
        let q = quote(path);
        body.push_str(&format!(
            "if [ -e {q} ]; then echo '{m} p {j}'; KS={} awk '{AWK_FIND_MANY}' {q} </dev/null; else echo '{m} P {j}'; fi\n",
            quote(&keys.join("\n"))
        ));
    }
    for (i, a) in steps.iter().enumerate() {
        if g.gathers[i].is_none() {
            body.push_str(&own_section(a, i, &m));
        }
    }
    body.push_str(&format!("echo '{m} z'\n"));
    whole_or_nothing(&body)
}

/// A file step: a symbolic link runs the step's own check (which follows it); a regular file
/// whose hash is not the wanted one sends its content.
fn file_section(
    step: &Action,
    i: usize,
    path: &str,
    want: Option<&str>,
    g: &Gathering,
    m: &str,
) -> String {
    let q = quote(path);
    let mut s = format!("if [ -L {q} ]; then {}", own_section(step, i, m));
    if let Some(w) = want {
        let j = g.hash_paths.iter().position(|p| *p == path).unwrap_or(0);
        s.push_str(&format!(
            "elif [ -f {q} ]; then case \"$__h\n\" in *{w}'  '{q}'\n'*) ;; *) __rl_content {j} {q} </dev/null ;; esac\n"
        ));
    }
    s.push_str("fi\n");
    s
}

/// A step's own check in a section of its own. A brace group, not a subshell: every fork
/// counts (the fragments are rollout's own read-only checks; user-written `unless`/`assert`
/// tests run in their own subshells inside them).
fn own_section(step: &Action, i: usize, m: &str) -> String {
    format!(
        "echo '{m} b {i}'\n{{\n{}}} </dev/null\necho \"{m} e {i} $?\"\n",
        step.check()
    )
}
