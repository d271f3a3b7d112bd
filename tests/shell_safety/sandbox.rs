//! A temporary directory to run fragments in with the local `sh`, with recording stubs of
//! programs on PATH; and the adversarial values.

use rollout::step::{self, Action, Resolve, Use};
use rollout::template::Templates;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// Values that break hand-built shell: quotes, expansions, each heredoc delimiter, options,
/// backslashes, globs, non-ASCII. None holds `/` (they are also file names) or a newline
/// (line and property values are one line; file content gets newlines of its own).
pub const NASTY: &[&str] = &[
    "it's",
    "say \"hi\"",
    "$(touch PWNED)",
    "`touch PWNED`",
    "${PWNED:=x}$1$@",
    "a\\b\\\\c\\",
    "-rf",
    "--",
    "__RL_V__",
    "__RL_L__",
    "__RL_B64__",
    "*",
    "~root",
    "a;b|c&d<e>f",
    "tab\there",
    "é日本",
    "'\"'$`\\",
    "!x",
    "#x",
    "%s%n\\n",
];

/// Builds a step with no templates and no variables; panics on an error.
pub fn action(kind: &str, args: Value) -> Action {
    resolve(kind, args).unwrap_or_else(|e| panic!("{kind}: {e}"))
}

/// `v` when the step kinds accept it as an owner or group name, else a plain name: an owner
/// with a space, `:`, a leading `-` or non-ASCII can name no account and is refused before any
/// shell sees it (`refused_owner` checks that).
pub fn owner(v: &str) -> &str {
    if resolve("directory", serde_json::json!({"path": "/x", "owner": v})).is_ok() {
        v
    } else {
        "www-data"
    }
}

/// Asserts that `v`, when it is no account name, is refused as an owner and as a group.
pub fn refused_owner(kind: &str, mut args: Value, v: &str) {
    if owner(v) == v {
        return;
    }
    for field in ["owner", "group"] {
        args[field] = Value::from(v);
        let e = error(kind, args.clone());
        assert!(e.ends_with("is not a user or group name"), "{e}");
        args.as_object_mut().map(|m| m.remove(field));
    }
}

/// The error the arguments give; panics when they are accepted.
pub fn error(kind: &str, args: Value) -> String {
    resolve(kind, args)
        .err()
        .unwrap_or_else(|| panic!("{kind}: accepted"))
}

fn resolve(kind: &str, args: Value) -> Result<Action, String> {
    let t = Templates::empty();
    let ctx = minijinja::Value::from(());
    let r = Resolve {
        templates: &t,
        ctx: &ctx,
        usage: Use::Step,
    };
    step::validate(kind, &args, Use::Step).map_err(|e| e.to_string())?;
    step::resolve(kind, args, &r).map_err(|e| e.to_string())
}

/// A temporary working directory with a `bin` of stubs first on PATH and a `log` of calls.
pub struct Sandbox {
    dir: PathBuf,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        let dir = std::env::temp_dir().join(format!("rollout-shell-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["bin", "log", "w"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        Sandbox { dir }
    }

    /// `name` under the working directory, as a string.
    pub fn path(&self, name: &str) -> String {
        self.dir.join("w").join(name).to_str().unwrap().to_string()
    }

    /// A stub of `prog` that records its argv, prints `out` and exits with `rc`.
    pub fn stub(&self, prog: &str, rc: i32, out: &str) {
        let out = rollout::script::quote(out);
        self.stub_script(prog, &format!("printf '%s' {out}; exit {rc}"));
    }

    /// A stub of `prog` that records its argv, then runs `body`.
    pub fn stub_script(&self, prog: &str, body: &str) {
        let log = self.dir.join("log").join(prog);
        let script = format!(
            "#!/bin/sh\ni=0; while [ -e '{log}.'$i ]; do i=$((i+1)); done\nfor a in \"$@\"; do printf '%s\\000' \"$a\"; done > '{log}.'$i\n{body}\n",
            log = log.display()
        );
        let bin = self.dir.join("bin").join(prog);
        std::fs::write(&bin, script).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Every recorded call of `prog`, oldest first: its arguments.
    pub fn calls(&self, prog: &str) -> Vec<Vec<String>> {
        (0..)
            .map(|i| self.dir.join("log").join(format!("{prog}.{i}")))
            .take_while(|p| p.exists())
            .map(|p| {
                let bytes = std::fs::read(p).unwrap();
                let text = String::from_utf8(bytes).unwrap();
                text.split_terminator('\0').map(String::from).collect()
            })
            .collect()
    }

    /// Runs `script` with `sh` (as `sh -e` when `strict`) in the working directory.
    fn sh(&self, script: &str, strict: bool) -> Output {
        let file = self.dir.join("script.sh");
        std::fs::write(&file, script).unwrap();
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap()
        );
        let mut cmd = Command::new("sh");
        if strict {
            cmd.arg("-e");
        }
        let out = cmd
            .arg(&file)
            .current_dir(self.dir.join("w"))
            .env("PATH", path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        for pwned in ["PWNED", "x"] {
            assert!(
                !self.dir.join("w").join(pwned).exists(),
                "a value ran: {script}"
            );
        }
        out
    }

    /// The output of the step's check fragment, run in a brace group as the check script
    /// does.
    pub fn check(&self, a: &Action) -> String {
        let out = self.sh(&format!("{{\n{}}} </dev/null\n", a.check()), false);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// The facts of `steps` from one check script (the gathered forms), as the engine reads
    /// them.
    pub fn check_all(&self, steps: &[Action]) -> Vec<step::Facts> {
        let refs: Vec<&Action> = steps.iter().collect();
        let nonce = rollout::script::Nonce::new();
        let script = rollout::check::script(&refs, &nonce);
        let out = self.sh(&script, false);
        let text = String::from_utf8(out.stdout).unwrap();
        rollout::check::parse(&refs, &text, &nonce).unwrap_or_else(|e| panic!("{e}: {text}"))
    }

    fn apply(&self, a: &Action) -> Output {
        self.sh(&format!("{}{}", step::LIB, a.apply()), true)
    }

    /// Applies the step; panics when it fails.
    pub fn apply_ok(&self, a: &Action) {
        let out = self.apply(a);
        assert!(
            out.status.success(),
            "{}\n{}",
            a.apply(),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Applies a step that must fail; its standard error.
    pub fn apply_err(&self, a: &Action) -> String {
        let out = self.apply(a);
        assert!(!out.status.success(), "{}", a.apply());
        String::from_utf8(out.stderr).unwrap()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Arguments as recorded, for comparing with a call.
pub fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}
