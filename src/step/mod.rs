//! Step kinds. A step is data from a role's YAML turned into a typed [`Action`] per host. It
//! has a *check* (a shell fragment whose output a pure parser reads into a [`Verdict`]) and
//! an *apply* (a shell fragment that converges, whatever the state it finds). The engine, not
//! the step, decides to apply: only steps whose check said "change" are sent.

mod apt;
mod assert;
mod command;
mod directory;
mod download;
mod file;
mod line;
mod property;
mod service;
mod wait_for;

use crate::secret::Secrets;
use serde::Deserialize;
use serde_json::Value;

pub use file::{DIFF_LIMIT, FileArgs};
pub use property::AWK_FIND_MANY;

/// The step kinds, as written in roles.
pub const KINDS: &[&str] = &[
    "apt",
    "file",
    "directory",
    "property",
    "line",
    "service",
    "command",
    "download",
    "wait_for",
    "assert",
];

/// A step resolved for one host: every value rendered, ready to check and apply.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Apt(apt::Apt),
    File(file::File),
    Directory(directory::Directory),
    Property(property::Property),
    Line(line::Line),
    Service(service::Service),
    Command(command::Command),
    Download(download::Download),
    WaitFor(wait_for::WaitFor),
    Assert(assert::Assert),
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Unchanged,
    Change {
        /// One line for the plan, e.g. "install coturn" or "content, mode 0644 -> 0640".
        summary: String,
        /// A unified diff for files and properties, secrets already masked.
        diff: Option<String>,
    },
    /// The check itself says the host is not fit (assert, impossible state).
    Fail(String),
}

impl Verdict {
    pub fn change(summary: impl Into<String>) -> Verdict {
        Verdict::Change {
            summary: summary.into(),
            diff: None,
        }
    }
}

/// The output of one step's check fragment.
#[derive(Debug, Clone, Default)]
pub struct Probe {
    pub lines: Vec<String>,
    /// Exit status of the fragment's subshell.
    pub rc: i32,
}

impl Probe {
    /// Lines starting with `tag ` (tag stripped).
    pub fn tagged<'a>(&'a self, tag: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lines.iter().filter_map(move |l| {
            l.strip_prefix(tag).and_then(|r| {
                r.strip_prefix(' ')
                    .or(if r.is_empty() { Some("") } else { None })
            })
        })
    }

    pub fn first<'a>(&'a self, tag: &'a str) -> Option<&'a str> {
        self.tagged(tag).next()
    }
}

/// A probe the check script gathers for many steps at once: one `stat` for every file and
/// directory path, one `sha256sum` for every file, one `awk` per properties file. Every
/// process started on a host costs more than anything rollout does locally, and a no-op run
/// is nothing but checks. `crate::check` turns the shared output back into each step's
/// [`Probe`], line for line what the step's own fragment ([`Action::check`]) prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch<'a> {
    /// A file step: type, owner, group, mode and size; its hash; its old content when the hash
    /// is not `want` (for the diff).
    File {
        path: &'a str,
        want: Option<String>,
    },
    Dir {
        path: &'a str,
    },
    Prop {
        path: &'a str,
        key: &'a str,
    },
}

/// Paths the batched probes can carry: `sha256sum` escapes names with a backslash or a
/// newline, and a newline would split `stat`'s output line.
fn batchable(path: &str) -> bool {
    !path.contains(['\\', '\n'])
}

/// Where an action is used: handlers may restart services and run unguarded commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Step,
    Handler,
}

/// Context a kind needs to resolve its arguments.
pub struct Resolve<'a> {
    pub templates: &'a crate::template::Templates,
    pub ctx: &'a minijinja::Value,
    pub usage: Use,
}

/// Checks a kind's arguments as written (before rendering): field names and shapes.
pub fn validate(kind: &str, args: &Value, usage: Use) -> Result<(), String> {
    match kind {
        "apt" => shape::<apt::AptArgs>(args),
        "file" => shape::<file::FileArgs>(args),
        "directory" => shape::<directory::DirectoryArgs>(args),
        "property" => shape::<property::PropertyArgs>(args),
        "line" => shape::<line::LineArgs>(args),
        "service" => {
            shape::<service::ServiceArgs>(args).and_then(|_| service::validate_use(args, usage))
        }
        "command" => {
            shape::<command::CommandArgs>(args).and_then(|_| command::validate_use(args, usage))
        }
        "download" => shape::<download::DownloadArgs>(args),
        "wait_for" => shape::<wait_for::WaitForArgs>(args),
        "assert" => shape::<assert::AssertArgs>(args),
        other => Err(format!("unknown step kind `{other}`")),
    }
}

fn shape<T: for<'de> Deserialize<'de>>(args: &Value) -> Result<(), String> {
    T::deserialize(args).map(|_| ()).map_err(|e| e.to_string())
}

/// Why a step could not be resolved for a host.
#[derive(Debug, Clone)]
pub enum StepError {
    Invalid(String),
    /// A template file failed to render (located in that file).
    Template(crate::template::RenderError),
}

impl From<String> for StepError {
    fn from(s: String) -> Self {
        StepError::Invalid(s)
    }
}

/// Tests: `f` with a resolve context that has no templates and no variables.
#[cfg(test)]
pub fn with_plain_resolve<T>(f: impl FnOnce(&Resolve) -> T) -> T {
    let t = crate::template::Templates::empty();
    let ctx = minijinja::Value::from(());
    f(&Resolve {
        templates: &t,
        ctx: &ctx,
        usage: Use::Step,
    })
}

/// Builds the host's action from rendered arguments.
pub fn resolve(kind: &str, args: Value, r: &Resolve) -> Result<Action, StepError> {
    fn typed<T: for<'de> Deserialize<'de>>(args: Value) -> Result<T, String> {
        T::deserialize(args).map_err(|e| e.to_string())
    }
    Ok(match kind {
        "apt" => Action::Apt(apt::Apt::new(typed(args)?)?),
        "file" => Action::File(file::File::new(typed(args)?, r)?),
        "directory" => Action::Directory(directory::Directory::new(typed(args)?)?),
        "property" => Action::Property(property::Property::new(typed(args)?)?),
        "line" => Action::Line(line::Line::new(typed(args)?)?),
        "service" => Action::Service(service::Service::new(typed(args)?)?),
        "command" => Action::Command(command::Command::new(typed(args)?)?),
        "download" => Action::Download(download::Download::new(typed(args)?)?),
        "wait_for" => Action::WaitFor(wait_for::WaitFor::new(typed(args)?)?),
        "assert" => Action::Assert(assert::Assert::new(typed(args)?)),
        other => return Err(format!("unknown step kind `{other}`").into()),
    })
}

impl Action {
    /// Shell that prints what the parser needs; runs in its own subshell, read-only.
    pub fn check(&self) -> String {
        match self {
            Action::Apt(a) => a.check(),
            Action::File(a) => a.check(),
            Action::Directory(a) => a.check(),
            Action::Property(a) => a.check(),
            Action::Line(a) => a.check(),
            Action::Service(a) => a.check(),
            Action::Command(a) => a.check(),
            Action::Download(a) => a.check(),
            Action::WaitFor(a) => a.check(),
            Action::Assert(a) => a.check(),
        }
    }

    /// How the check script may gather this step's probe with other steps' (None: the step's
    /// own fragment runs).
    pub fn batch(&self) -> Option<Batch<'_>> {
        match self {
            Action::File(f) if batchable(&f.path) => Some(Batch::File {
                path: &f.path,
                want: f
                    .content
                    .as_deref()
                    .map(|c| crate::script::sha256_hex(c.as_bytes())),
            }),
            Action::Directory(d) if batchable(&d.path) => Some(Batch::Dir { path: &d.path }),
            Action::Property(p) if !p.sensitive && batchable(&p.path) => Some(Batch::Prop {
                path: &p.path,
                key: &p.key,
            }),
            _ => None,
        }
    }

    /// Pure: what the check output means. `host` only labels diffs.
    pub fn evaluate(&self, probe: &Probe, secrets: &Secrets, host: &str) -> Verdict {
        match self {
            Action::Apt(a) => a.evaluate(probe),
            Action::File(a) => a.evaluate(probe, secrets, host),
            Action::Directory(a) => a.evaluate(probe),
            Action::Property(a) => a.evaluate(probe, secrets),
            Action::Line(a) => a.evaluate(probe),
            Action::Service(a) => a.evaluate(probe),
            Action::Command(a) => a.evaluate(probe),
            Action::Download(a) => a.evaluate(probe),
            Action::WaitFor(a) => a.evaluate(probe),
            Action::Assert(a) => a.evaluate(probe),
        }
    }

    /// Shell that converges; runs with `sh -e` after the shared library (`LIB`).
    pub fn apply(&self) -> String {
        match self {
            Action::Apt(a) => a.apply(),
            Action::File(a) => a.apply(),
            Action::Directory(a) => a.apply(),
            Action::Property(a) => a.apply(),
            Action::Line(a) => a.apply(),
            Action::Service(a) => a.apply(),
            Action::Command(a) => a.apply(),
            Action::Download(a) => a.apply(),
            Action::WaitFor(a) => a.apply(),
            Action::Assert(a) => a.apply(),
        }
    }

    /// Whether applying this step may wait on something outside the host's files (the
    /// network, a package manager, a service, a user's command): such steps run under
    /// `timeout`. The others only touch files and run inline.
    pub fn may_block(&self) -> bool {
        !matches!(
            self,
            Action::File(_)
                | Action::Directory(_)
                | Action::Property(_)
                | Action::Line(_)
                | Action::Assert(_)
        )
    }

    /// A barrier (wait_for) also runs in apply after any earlier change, reported as ok.
    pub fn is_barrier(&self) -> bool {
        matches!(self, Action::WaitFor(_))
    }

    /// The default timeout of a step of this kind, in seconds.
    pub fn default_timeout(&self) -> u64 {
        match self {
            Action::Apt(_) => 1800,
            Action::Command(_) | Action::Download(_) => 600,
            Action::WaitFor(w) => w.timeout + 10,
            _ => 120,
        }
    }
}

/// Shell functions shared by apply fragments (written once per apply script). Every process
/// they start is paid per step on every host, so they use the shell's own parameter
/// expansion and tests where a program is not needed.
pub const LIB: &str = r#"
# rollout apply library
__rl_fail() { echo "$*" >&2; exit 1; }
# __rl_commit TMP PATH OWNER GROUP MODE: set metadata on TMP (from PATH if unset), then rename.
__rl_commit() {
  if [ -n "$3" ] && [ -n "$4" ]; then chown "$3:$4" "$1"
  else
    if [ -e "$2" ]; then chown --reference="$2" "$1"; fi
    if [ -n "$3$4" ]; then chown "$3${4:+:$4}" "$1"; fi
  fi
  if [ -n "$5" ]; then chmod "$5" "$1"; elif [ -e "$2" ]; then chmod --reference="$2" "$1"; else chmod 0644 "$1"; fi
  sync "$1" 2>/dev/null || true
  mv -f "$1" "$2"
}
# __rl_tmp PATH: a temporary file beside PATH (same filesystem, so the rename is atomic).
__rl_tmp() {
  __d=${1%/*}; [ -n "$__d" ] || __d=/
  [ -d "$__d" ] || __rl_fail "directory $__d does not exist"
  # Leftovers of a run whose controller was killed mid-write; the target was never touched.
  for __f in "$__d"/.rollout.??????; do
    if [ -f "$__f" ]; then find "$__d" -maxdepth 1 -name '.rollout.??????' -type f -mmin +10 -delete 2>/dev/null || true; fi
    break
  done
  mktemp "$__d/.rollout.XXXXXX"
}
# __rl_write PATH OWNER GROUP MODE < base64: atomic write of the decoded stdin.
__rl_write() {
  t=$(__rl_tmp "$1") || exit 1
  if ! base64 -d > "$t"; then rm -f "$t"; __rl_fail "cannot decode content for $1"; fi
  __rl_commit "$t" "$1" "$2" "$3" "$4" || { rm -f "$t"; exit 1; }
}
"#;

/// Accepts `true`/`false` or a rendered string such as "True" or "yes".
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Flag {
    Bool(bool),
    Text(String),
}

impl Flag {
    pub fn get(&self) -> Result<bool, String> {
        match self {
            Flag::Bool(b) => Ok(*b),
            Flag::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" | "" => Ok(false),
                other => Err(format!("expected true or false, got `{other}`")),
            },
        }
    }
}

/// Accepts a number or a rendered string of digits.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Num {
    Int(u64),
    Text(String),
}

impl Num {
    pub fn get(&self) -> Result<u64, String> {
        match self {
            Num::Int(n) => Ok(*n),
            Num::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("expected a number, got `{s}`")),
        }
    }
}

/// File modes are octal; YAML may give `0644` as the number 644, so digits are read as octal.
pub fn mode(m: &Option<Num>) -> Result<Option<String>, String> {
    let Some(m) = m else { return Ok(None) };
    let s = match m {
        Num::Int(n) => n.to_string(),
        Num::Text(s) => s.trim().trim_start_matches("0o").to_string(),
    };
    if s.is_empty() || s.len() > 4 || !s.chars().all(|c| ('0'..='7').contains(&c)) {
        return Err(format!("mode `{s}` is not an octal file mode such as 0644"));
    }
    let v = u32::from_str_radix(&s, 8).expect("checked octal");
    Ok(Some(format!("{v:04o}")))
}

/// Normalizes `stat -c %a` output ("644") to the form of [`mode`] ("0644").
pub fn stat_mode(s: &str) -> String {
    u32::from_str_radix(s.trim(), 8)
        .map(|v| format!("{v:04o}"))
        .unwrap_or_else(|_| s.to_string())
}

/// Owner/group/mode differences between what a stat line says and what is wanted.
pub fn meta_changes(
    current: Option<(&str, &str, &str)>,
    owner: &Option<String>,
    group: &Option<String>,
    mode: &Option<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let Some((o, g, m)) = current else { return out };
    if let Some(w) = owner.as_deref().filter(|w| *w != o) {
        out.push(format!("owner {o} -> {w}"));
    }
    if let Some(w) = group.as_deref().filter(|w| *w != g) {
        out.push(format!("group {g} -> {w}"));
    }
    let m = stat_mode(m);
    if let Some(w) = mode.as_deref().filter(|w| **w != m) {
        out.push(format!("mode {m} -> {w}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal_digits() {
        assert_eq!(mode(&Some(Num::Int(644))).unwrap(), Some("0644".into()));
        assert_eq!(
            mode(&Some(Num::Text("0640".into()))).unwrap(),
            Some("0640".into())
        );
        assert_eq!(
            mode(&Some(Num::Text("0o755".into()))).unwrap(),
            Some("0755".into())
        );
        assert!(mode(&Some(Num::Int(999))).is_err());
    }

    #[test]
    fn flags_accept_rendered_text() {
        assert!(Flag::Text("True".into()).get().unwrap());
        assert!(!Flag::Text("no".into()).get().unwrap());
        assert!(Flag::Text("maybe".into()).get().is_err());
    }
}
