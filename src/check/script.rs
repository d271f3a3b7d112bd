//! Writes the check script: the gathered facts first, then each step's own section.

use super::Gathering;
use crate::script::{Nonce, env_line, quote, whole_or_nothing};
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
    body.push_str(&lines_section(&g, &m));
    body.push_str(&packages_section(&g, &m));
    body.push_str(&units_section(&g, &m));
    body.push_str(&ports_section(&g, &m));
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

/// One `awk` pass over every file that `line` steps read (regular files only, as `[ -f ]`
/// says; a missing one is reported, anything else is read by no one, as the step's own
/// `awk` could not read it either). Lines, regexps and paths travel in the environment.
fn lines_section(g: &Gathering, m: &str) -> String {
    if g.line_checks.is_empty() {
        return String::new();
    }
    let mut s = String::from("__rl_lines() {\nset --\n");
    for (j, path) in g.line_files.iter().enumerate() {
        let q = quote(path);
        s.push_str(&format!(
            "if [ -f {q} ]; then set -- \"$@\" {q}; elif [ ! -e {q} ]; then echo '{m} L {j}'; fi\n"
        ));
    }
    s.push_str(&format!("echo '{m} l'\n[ $# -gt 0 ] || return 0\n"));
    for (k, (f, line, regexp)) in g.line_checks.iter().enumerate() {
        s.push_str(&env_line(&format!("__rlF{k}"), g.line_files[*f]));
        s.push_str(&env_line(&format!("__rlL{k}"), line));
        s.push_str(&env_line(&format!("__rlR{k}"), regexp));
    }
    let n = g.line_checks.len();
    s.push_str(&format!(
        "awk 'BEGIN{{n={n}; for(k=0;k<n;k++){{f[k]=ENVIRON[\"__rlF\" k]; l[k]=ENVIRON[\"__rlL\" k]; r[k]=ENVIRON[\"__rlR\" k]}}}} {{for(k=0;k<n;k++) if(f[k]==FILENAME){{if(l[k]!=\"\" && $0==l[k]) print k \" exact\"; if(r[k]!=\"\" && $0 ~ r[k] && $0!=l[k]) print k \" match\"}}}}' \"$@\" </dev/null\n}}\n__rl_lines\n"
    ));
    s
}

/// One `dpkg-query` for every package, one `apt-cache policy` for those of `latest` steps,
/// the package lists' age once: what the apt steps' own checks print, for all at once.
fn packages_section(g: &Gathering, m: &str) -> String {
    let mut s = String::new();
    let names = |list: &[&str]| list.iter().map(|p| quote(p)).collect::<Vec<_>>().join(" ");
    if !g.packages.is_empty() {
        s.push_str(&format!(
            "echo '{m} k'\ndpkg-query -W -f='package ${{Package}} ${{db:Status-Abbrev}} ${{Version}}\\n' {} 2>/dev/null </dev/null\n",
            names(&g.packages)
        ));
    }
    if !g.latest.is_empty() {
        s.push_str(&format!(
            "echo '{m} a'\nLC_ALL=C apt-cache policy {} 2>/dev/null </dev/null | awk '/^[^ ]/{{p=$1; sub(/:$/,\"\",p)}} /^  Candidate:/{{print \"candidate \" p \" \" $2}}'\n",
            names(&g.latest)
        ));
    }
    if g.cache_age {
        s.push_str(&format!(
            "if [ -e /var/cache/apt/pkgcache.bin ]; then echo \"{m} A $(( $(date +%s) - $(stat -c %Y /var/cache/apt/pkgcache.bin) ))\"; else echo '{m} A 999999999'; fi\n"
        ));
    }
    s
}

/// `systemctl is-enabled` and `is-active` once for all units: each prints one line per unit,
/// in order. Where that cannot hold, each unit is asked alone, as its own check would:
/// `is-enabled` stops at a unit it cannot find, `systemctl` refuses every name when it cannot
/// read one, and `is-enabled` answers for SysV scripts (`/etc/init.d/NAME` without a native
/// unit of that name) before the others. A line per unit is never empty, so fewer lines than units is the sign.
fn units_section(g: &Gathering, m: &str) -> String {
    if g.units.is_empty() {
        return String::new();
    }
    let units = g
        .units
        .iter()
        .map(|u| quote(u))
        .collect::<Vec<_>>()
        .join(" ");
    // A SysV script answers first only where no native unit of that name exists (systemctl's
    // `enable_sysv_units`); with one unit, order cannot matter.
    let sysv: Vec<String> = g
        .units
        .iter()
        .filter(|_| g.units.len() > 1)
        .filter_map(|u| {
            let base = match u.strip_suffix(".service") {
                Some(b) => b,
                None if !u.contains('.') => u,
                None => return None,
            };
            let unit = format!("{base}.service");
            let native = [
                "/etc/systemd/system",
                "/run/systemd/system",
                "/usr/lib/systemd/system",
                "/lib/systemd/system",
            ]
            .iter()
            .map(|d| format!(" && [ ! -e {} ]", quote(&format!("{d}/{unit}"))))
            .collect::<String>();
            Some(format!(
                "{{ [ -e {} ]{native}; }}",
                quote(&format!("/etc/init.d/{base}"))
            ))
        })
        .collect();
    let sysv = if sysv.is_empty() {
        "false".to_string()
    } else {
        sysv.join(" || ")
    };
    // `?*` per unit, newline-separated: at least one line per unit.
    let all = vec!["?*"; g.units.len()].join("'\n'");
    let mut s = String::new();
    for (verb, var, tag, guard) in [
        (
            "is-enabled",
            "__e",
            "u",
            format!("if {sysv}; then :; else "),
        ),
        ("is-active", "__a", "v", String::from("if :; then ")),
    ] {
        s.push_str(&format!(
            "{var}=$({guard}systemctl {verb} -- {units} 2>/dev/null; fi </dev/null)\ncase \"${var}\" in {all}) ;; *) {var}=$(for __u in {units}; do printf '%s\\n' \"$(systemctl {verb} -- \"$__u\" 2>/dev/null)\"; done </dev/null) ;; esac\necho '{m} {tag}'\nprintf '%s\\n' \"${var}\"\n"
        ));
    }
    s
}

/// One `bash` tries every port at once, each in a child of its own, within 3 s as each own
/// check would (`timeout` ends them all); a port that answered prints its number.
fn ports_section(g: &Gathering, m: &str) -> String {
    if g.ports.is_empty() {
        return String::new();
    }
    let args: Vec<String> = g
        .ports
        .iter()
        .enumerate()
        .map(|(j, (host, port))| format!("{j} {} {port}", quote(host)))
        .collect();
    format!(
        "echo '{m} w'\ntimeout 3 bash -c 'while [ $# -gt 2 ]; do {{ {{ exec 3<>\"/dev/tcp/$2/$3\"; }} 2>/dev/null && echo \"$1\"; }} & shift 3; done; wait' rollout-wait {} 2>/dev/null </dev/null\n",
        args.join(" ")
    )
}
