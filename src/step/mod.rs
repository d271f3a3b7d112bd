//! Step kinds. A step is data from a role's YAML turned into a typed [`Action`] per host. It
//! has a *check* (a shell fragment whose fact lines are read once into typed [`Facts`], which
//! a pure evaluation judges into a [`Verdict`]) and an *apply* (a shell fragment that
//! converges, whatever the state it finds). The engine, not the step, decides to apply: only
//! steps whose check said "change" are sent.
//!
//! Every kind implements [`Kind`] in a file of its own; the one table below (`kinds!`) names
//! them and derives [`KINDS`], [`validate`], [`resolve`], [`Action`], [`Facts`] and all
//! dispatch. A new kind is one file plus one line in the table. This module is the lower
//! layer: the check script (the `check` module) and the plan are built on it, not the reverse.

mod args;
mod diff;
mod error;
mod facts;
mod kind;

pub use args::{Flag, Num, Ownership};
pub use error::{ArgError, StepError};
pub use facts::{
    CheckOutput, Fact, FactKey, FileType, Gather, Gathered, LineHits, PathStat, STAT_FORMAT,
};
pub use file::{DIFF_LIMIT, FileArgs};
pub use kind::{Context, Kind, Resolve, Use, Verdict};
pub use property::AWK_FIND_MANY;

use serde_json::Value;

/// Derives, from one list of `Variant(module::Type)`, everything that depends on the set of
/// kinds, the kinds' modules included.
macro_rules! kinds {
    ($($variant:ident($module:ident :: $kind:ident)),* $(,)?) => {
        $(mod $module;)*

        /// The step kinds, as written in roles.
        pub const KINDS: &[&str] = &[$(<$module::$kind as Kind>::NAME),*];

        /// A step resolved for one host: every value rendered, ready to check and apply.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Action {
            $($variant($module::$kind)),*
        }

        /// The facts a step's check found, typed by its kind.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Facts {
            $($variant(<$module::$kind as Kind>::Facts)),*
        }

        /// Checks a kind's arguments as written (before rendering): field names and shapes,
        /// and the rules that depend on `usage`.
        pub fn validate(kind: &str, args: &Value, usage: Use) -> Result<(), ArgError> {
            $(if kind == <$module::$kind as Kind>::NAME {
                return kind::validate_as::<$module::$kind>(args, usage);
            })*
            Err(ArgError::UnknownKind(kind.to_string()))
        }

        /// Builds the host's action from rendered arguments.
        pub fn resolve(kind: &str, args: Value, r: &Resolve) -> Result<Action, StepError> {
            $(if kind == <$module::$kind as Kind>::NAME {
                return kind::resolve_as::<$module::$kind>(args, r).map(Action::$variant);
            })*
            Err(ArgError::UnknownKind(kind.to_string()).into())
        }

        impl Action {
            /// The kind's name, as written in roles.
            pub fn kind(&self) -> &'static str {
                match self { $(Action::$variant(_) => <$module::$kind as Kind>::NAME),* }
            }

            /// Shell that prints the step's fact lines; read-only.
            pub fn check(&self) -> String {
                match self { $(Action::$variant(k) => k.check()),* }
            }

            /// Pure: the facts in the output of [`Action::check`].
            pub fn read(&self, out: &CheckOutput) -> Facts {
                match self { $(Action::$variant(k) => Facts::$variant(k.read(out))),* }
            }

            /// Which gathered facts can stand in for the step's own check.
            pub fn gather(&self) -> Option<Gather<'_>> {
                match self { $(Action::$variant(k) => k.gather()),* }
            }

            /// Pure: the step's facts from gathered ones (None: not gathered).
            pub fn gathered(&self, g: &Gathered) -> Option<Facts> {
                match self { $(Action::$variant(k) => k.gathered(g).map(Facts::$variant)),* }
            }

            /// Pure: what the facts mean. Facts of another kind are a bug in the caller and
            /// fail the step rather than the run.
            pub fn evaluate(&self, facts: &Facts, cx: &Context) -> Verdict {
                match (self, facts) {
                    $((Action::$variant(k), Facts::$variant(f)) => k.evaluate(f, cx),)*
                    #[allow(unreachable_patterns)]
                    _ => Verdict::Fail(format!("facts of another kind for a {} step", self.kind())),
                }
            }

            /// Shell that converges; runs with `sh -e` after the shared library ([`LIB`]).
            pub fn apply(&self) -> String {
                match self { $(Action::$variant(k) => k.apply()),* }
            }

            /// Whether applying may wait on something outside the host's files: such steps
            /// run under `timeout`. The others only touch files and run inline.
            pub fn may_block(&self) -> bool {
                match self { $(Action::$variant(_) => <$module::$kind as Kind>::MAY_BLOCK),* }
            }

            /// A barrier (wait_for) also runs in apply after any earlier change, reported as
            /// ok.
            pub fn is_barrier(&self) -> bool {
                match self { $(Action::$variant(_) => <$module::$kind as Kind>::BARRIER),* }
            }

            /// The default timeout of the step, in seconds.
            pub fn default_timeout(&self) -> u64 {
                match self { $(Action::$variant(k) => k.default_timeout()),* }
            }
        }
    };
}

// The table of kinds, in the order role errors list them. A new kind: its file, one line here.
kinds! {
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

/// Shell functions shared by apply fragments (written once per apply script). Every process
/// they start is paid per step on every host, so they use the shell's own parameter
/// expansion and tests where a program is not needed.
pub const LIB: &str = r#"
# rollout apply library
# printf, not echo: dash's echo turns a value's backslashes into escapes.
__rl_fail() { printf '%s\n' "$*" >&2; exit 1; }
# __rl_commit TMP PATH OWNER GROUP MODE: set metadata on TMP (from PATH if unset), then rename.
__rl_commit() {
  if [ -n "$3" ] && [ -n "$4" ]; then chown -- "$3:$4" "$1"
  else
    if [ -e "$2" ]; then chown --reference="$2" "$1"; fi
    if [ -n "$3$4" ]; then chown -- "$3${4:+:$4}" "$1"; fi
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
# __rl_write PATH OWNER GROUP MODE < base64: atomic write of the decoded stdin. Killed by a
# signal (the session's process group on a lost connection or a shutdown), it removes its
# temporary file; the target is either untouched or already renamed.
__rl_write() {
  t=
  trap 'rm -f "$t"; exit 129' HUP
  trap 'rm -f "$t"; exit 130' INT
  trap 'rm -f "$t"; exit 143' TERM
  t=$(__rl_tmp "$1") || exit 1
  # A failed write (a full disk, a quota) left a partial temporary file: removed, $1 untouched.
  if ! base64 -d > "$t"; then rm -f "$t"; __rl_fail "cannot write the new content of $1 (left unchanged)"; fi
  __rl_commit "$t" "$1" "$2" "$3" "$4" || { rm -f "$t"; exit 1; }
  trap - HUP INT TERM
}
"#;
