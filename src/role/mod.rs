//! Roles: a folder `roles/NAME/` with `steps.yml` (the steps, in order), optional
//! `handlers.yml` (steps run once at the end when a changed step notified them) and
//! optional `defaults.yml` (variables with the lowest precedence). Every step is checked
//! when the role loads: its keys, its kind, the shape of its arguments.

use crate::error::{Diagnostic, did_you_mean};
use crate::step::{self, Use};
use crate::yaml::{Node, Pos};
use indexmap::IndexMap;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Keys every step may have besides its kind.
const COMMON: &[&str] = &[
    "name",
    "when",
    "tags",
    "notify",
    "timeout",
    "ends_meetings",
    "stage",
];

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub defaults: Map<String, Value>,
    /// `defaults.yml` as read, with the line and column of each default, so an error in a
    /// default's value points there (not at the inventory). `None` without a defaults file.
    pub defaults_source: Option<Defaults>,
    pub steps: Vec<StepSpec>,
    pub handlers: Vec<StepSpec>,
}

/// Where a role's defaults were written.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// The `defaults.yml` file, for snippets.
    pub source: crate::yaml::Source,
    /// Line and column of each default's value.
    pub positions: BTreeMap<String, (u64, u64)>,
}

impl Defaults {
    /// A diagnostic at default `name`'s value (at `within`, line and column in the value,
    /// where that can be shown), or `None` if the role has no such default.
    pub fn at(
        &self,
        name: &str,
        value: Option<&Value>,
        within: Pos,
        message: impl Into<String>,
    ) -> Option<Diagnostic> {
        let at = *self.positions.get(name)?;
        let text = value.and_then(Value::as_str).unwrap_or("");
        Some(self.source.at_in_scalar(at, text, within, message))
    }
}

/// A step as written: its kind's arguments are still templates.
#[derive(Debug, Clone)]
pub struct StepSpec {
    pub role: String,
    pub name: String,
    pub kind: String,
    pub args: Value,
    pub when: Option<String>,
    pub tags: Vec<String>,
    pub notify: Vec<String>,
    pub timeout: Option<u64>,
    /// `ends_meetings: true`: running this step or handler restarts or replaces something a
    /// running class needs (bbb-web, FreeSWITCH, akka-apps, the SFU, nginx, a reboot, BBB
    /// packages), so it ends the node's meetings. `rollout apply` holds it back on a node
    /// with meetings (see `docs/roles.md` and `docs/pool.md`).
    pub ends_meetings: bool,
    /// `stage: true`: the step prepares an upgrade without touching anything a running class
    /// uses (a download, `apt-get --download-only`, a disk-space check), so `rollout upgrade`
    /// runs it while the node still serves classes, before it cordons the node (see
    /// `docs/pool.md`, "Staging"). Such a step may neither end meetings nor notify a
    /// handler (checked when the role loads); only steps, not handlers, are staged.
    pub stage: bool,
    pub file: PathBuf,
    /// Where the step's parts were written in `file`.
    pub places: Places,
}

/// Where a step's parts were written (line and column, 1-based), so that an error found
/// only when the step is resolved for a host (an argument that is wrong once rendered, a
/// `when:` that fails, a `notify:` naming no handler) points at the part itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Places {
    /// The step (its first key).
    pub step: Pos,
    /// The kind's key (`file:`).
    pub kind: Pos,
    /// Each argument's value, by argument name.
    pub args: IndexMap<String, Pos>,
    /// The `when:` value.
    pub when: Option<Pos>,
    /// Each `notify:` entry, in order (one for a plain string).
    pub notify: Vec<Pos>,
}

impl Places {
    /// Where argument `name` was written, else the kind's key.
    pub fn arg(&self, name: Option<&str>) -> Pos {
        name.and_then(|n| self.args.get(n).copied())
            .unwrap_or(self.kind)
    }
}

impl StepSpec {
    /// "role/step name" for messages.
    pub fn label(&self) -> String {
        format!("{}: {}", self.role, self.name)
    }
}

type RawStep = Spanned<IndexMap<Spanned<String>, Spanned<Node>>>;

/// A step's common keys by name, their values as written.
type CommonKeys = IndexMap<&'static str, Spanned<Node>>;

/// Loads the named roles from `dir`, each once.
pub fn load_all<'a>(
    dir: &Path,
    names: impl IntoIterator<Item = &'a String>,
) -> Result<BTreeMap<String, Role>, Diagnostic> {
    let mut out = BTreeMap::new();
    for n in names {
        if !out.contains_key(n) {
            out.insert(n.clone(), load(dir, n)?);
        }
    }
    Ok(out)
}

pub fn load(dir: &Path, name: &str) -> Result<Role, Diagnostic> {
    let root = dir.join(name);
    let steps_path = root.join("steps.yml");
    if !steps_path.exists() {
        let d = Diagnostic::file(&steps_path, format!("role `{name}` has no steps.yml"));
        let ansible = ["tasks/main.yml", "tasks/main.yaml"]
            .iter()
            .map(|f| root.join(f))
            .find(|p| p.exists());
        return Err(match ansible {
            Some(tasks) => d.with_hint(format!(
                "this is an Ansible role ({}): rollout reads roles/{name}/steps.yml, \
                 handlers.yml and defaults.yml, with rollout's step kinds \
                 (docs/from-ansible.md shows each module's counterpart)",
                tasks.display()
            )),
            None => d,
        });
    }
    let handlers_path = root.join("handlers.yml");
    // `exists`, not `is_file`: a FIFO or device there is an error, not a missing file.
    let handlers = if handlers_path.exists() {
        parse_steps(name, &handlers_path, Use::Handler)?
    } else {
        vec![]
    };
    let steps = parse_steps(name, &steps_path, Use::Step)?;
    let defaults_path = root.join("defaults.yml");
    let (defaults, defaults_source) = if defaults_path.exists() {
        let (d, source) = read_defaults(&defaults_path)?;
        (d, Some(source))
    } else {
        (Map::new(), None)
    };
    // Every notify, of a step or of a handler, must name a handler of this role.
    let names: Vec<&str> = handlers.iter().map(|h| h.name.as_str()).collect();
    for s in steps.iter().chain(&handlers) {
        for (i, n) in s.notify.iter().enumerate() {
            if !names.contains(&n.as_str()) {
                let src = crate::yaml::Source::read(&s.file)?;
                let (line, col) = s.places.notify.get(i).copied().unwrap_or(s.places.step);
                let mut d = src.at(
                    line,
                    col,
                    format!(
                        "step `{}` notifies `{n}`, which is not a handler of role {name}",
                        s.name
                    ),
                );
                d.hint =
                    did_you_mean(n, names.iter().copied()).map(|h| format!("did you mean `{h}`?"));
                return Err(d);
            }
        }
    }
    Ok(Role {
        name: name.to_string(),
        defaults,
        defaults_source,
        steps,
        handlers,
    })
}

/// A role's defaults. Secret references are refused: defaults are shared by every inventory
/// and never resolved, so `{secret: ...}` here would reach hosts as a literal mapping.
fn read_defaults(path: &Path) -> Result<(Map<String, Value>, Defaults), Diagnostic> {
    let src = crate::yaml::Source::read_or_hint(
        path,
        Some(
            "defaults.yml maps variable names to values (`name: value`); delete it if the role has none",
        ),
    )?;
    let m: IndexMap<String, Spanned<Value>> = src.parse()?;
    let mut out = Map::new();
    let mut positions = BTreeMap::new();
    for (k, v) in m {
        positions.insert(k.clone(), (v.referenced.line(), v.referenced.column()));
        if crate::secret::contains_reference(&v.value) {
            let (line, col) = (v.referenced.line(), v.referenced.column());
            return Err(src
                .at(
                    line,
                    col,
                    format!("variable `{k}`: a role's defaults cannot hold a secret reference"),
                )
                .with_hint(format!(
                    "set `{k}: {{secret: ...}}` in the inventory's vars"
                )));
        }
        out.insert(k, v.value);
    }
    Ok((
        out,
        Defaults {
            source: src,
            positions,
        },
    ))
}

/// Reads a `steps.yml` or `handlers.yml` file into its steps, each checked: its keys, its
/// kind's arguments (for `usage`), and its common keys' types.
///
/// Errors: the file cannot be read or parsed, or a step is invalid (at the offending key).
fn parse_steps(role: &str, path: &Path, usage: Use) -> Result<Vec<StepSpec>, Diagnostic> {
    let hint = match usage {
        Use::Step => {
            "steps.yml lists the role's steps: `- name: ...` with one kind such as `file:`"
        }
        Use::Handler => {
            "handlers.yml lists steps that run when notified (`- name: ...` with one kind); delete it if the role has none"
        }
    };
    let src = crate::yaml::Source::read_or_hint(path, Some(hint))?;
    let raw: Vec<RawStep> = src.parse()?;
    let mut out: Vec<StepSpec> = Vec::new();
    for (i, step) in raw.into_iter().enumerate() {
        let (line, col) = (step.referenced.line(), step.referenced.column());
        let (common, kind) = split_keys(&src, step.value)?;
        let Some(kind) = kind else {
            return Err(src
                .at(line, col, "this step has no kind")
                .with_hint(format!("add one of {}", step::KINDS.join(", "))));
        };
        kind.validate(&src, usage)?;
        let common = Common {
            src: &src,
            keys: common,
        };
        let name = common
            .text("name")?
            .unwrap_or_else(|| format!("{} #{}", kind.name, i + 1));
        if usage == Use::Handler && out.iter().any(|h| h.name == name) {
            return Err(src.at(line, col, format!("handler `{name}` is defined twice")));
        }
        let timeout = common.timeout()?;
        let ends_meetings = common.flag("ends_meetings")?;
        let stage = common.flag("stage")?;
        if stage {
            let bad = if usage == Use::Handler {
                Some((
                    "a handler runs only after a change, never before the cordon",
                    "remove `stage: true` from the handler",
                ))
            } else if ends_meetings {
                Some((
                    "a step that ends meetings cannot run while the node serves classes",
                    "remove `stage: true` or `ends_meetings: true`",
                ))
            } else if common.keys.contains_key("notify") {
                Some((
                    "a staged step runs while the node serves classes, and may not notify a handler (a handler could restart a service a class uses)",
                    "remove `notify:`, or `stage: true`",
                ))
            } else {
                None
            };
            if let Some((why, hint)) = bad {
                let at = common.keys.get("stage").map(pos).unwrap_or((line, col));
                return Err(src
                    .at(at.0, at.1, format!("`stage: true`: {why}"))
                    .with_hint(hint));
            }
        }
        common.check_when()?;
        let places = Places {
            step: (line, col),
            kind: (kind.line, kind.column),
            args: kind
                .keys
                .iter()
                .map(|(k, (_, v))| (k.clone(), *v))
                .collect(),
            when: common.keys.get("when").map(pos),
            notify: common.places("notify"),
        };
        out.push(StepSpec {
            role: role.to_string(),
            name,
            kind: kind.name,
            args: kind.args,
            when: common.text("when")?,
            tags: common.list("tags")?,
            notify: common.list("notify")?,
            timeout,
            ends_meetings,
            stage,
            file: path.to_path_buf(),
            places,
        });
    }
    Ok(out)
}

/// A step's kind as written: the kind's name, its arguments and the key's line and column.
struct KindKey {
    name: String,
    args: Value,
    /// Where each argument's key and value were written.
    keys: IndexMap<String, (Pos, Pos)>,
    line: u64,
    column: u64,
}

impl KindKey {
    /// Checks the arguments' shape for the kind; an error points at the argument it is about
    /// (an unknown one at its key, a misshapen one at its value), else at the kind's key.
    fn validate(&self, src: &crate::yaml::Source, usage: Use) -> Result<(), Diagnostic> {
        step::validate(&self.name, &self.args, usage).map_err(|e| {
            let text = e.to_string();
            let hint = crate::yaml::unknown_field_hint(&text);
            let unknown = text
                .strip_prefix("unknown field `")
                .and_then(|r| r.split_once('`'))
                .and_then(|(k, _)| self.keys.get(k))
                .map(|(key, _)| *key);
            let value = e.field().and_then(|f| self.keys.get(f)).map(|(_, v)| *v);
            let (line, column) = unknown.or(value).unwrap_or((self.line, self.column));
            let mut d = src.at(line, column, format!("{}: {text}", self.name));
            d.hint = hint.or_else(|| crate::yaml::leading_zero_hint(&src.text, line, column));
            d
        })
    }
}

/// What to write in rollout for an Ansible module or task keyword used as a step key
/// (`lineinfile:` → `line:`), for the hint of the error: an operator moving a role over
/// writes Ansible's names first (issue 7 item 6; the table in docs/from-ansible.md).
fn ansible_equivalent(key: &str) -> Option<String> {
    let key = key
        .strip_prefix("ansible.builtin.")
        .or_else(|| key.strip_prefix("ansible.posix."))
        .unwrap_or(key);
    let say = match key {
        "template" => {
            "Ansible's `template:` is rollout's `file:` with `template:` (the template under templates/)"
        }
        "copy" => "Ansible's `copy:` is rollout's `file:` with `content:` (or `template:`)",
        "lineinfile" => {
            "Ansible's `lineinfile:` is rollout's `line:` (`path`, `regexp`, `line`); for key=value files, `property:`"
        }
        "blockinfile" => "rollout has no `blockinfile:`: manage the whole file with `file:`",
        "shell" | "raw" | "script" => {
            "Ansible's `shell:`/`command:` is rollout's `command:` with `run:` and a guard (`creates:` or `unless:`), so a second run changes nothing"
        }
        "systemd" | "systemd_service" => {
            "Ansible's `systemd:`/`service:` is rollout's `service:` (`name`, `state`, `enabled`)"
        }
        "get_url" => {
            "Ansible's `get_url:` is rollout's `download:` (`url`, `dest`, `sha256` required)"
        }
        "package" | "apt_repository" => {
            "rollout's `apt:` installs packages; a repository is a `file:` under /etc/apt/sources.list.d/ and an `apt:` with `update_cache: true`"
        }
        "debug" => {
            "rollout has no `debug:`: `rollout plan` shows what each step would change, `-v` its scripts"
        }
        "loop" | "with_items" | "with_dict" | "loop_control" => {
            "rollout steps have no loops: write one step per item, or template the list into one file"
        }
        "become" | "become_user" => {
            "`become` is set per host or group in the inventory, not per step"
        }
        "register" | "changed_when" | "failed_when" | "ignore_errors" => {
            "rollout steps are declarative kinds: no `register:`/`changed_when:`/`failed_when:`; a `command:` step's guard (`creates:`/`unless:`) decides whether it runs"
        }
        "listen" => "a handler is notified by its `name:`",
        "include_tasks" | "import_tasks" | "include_role" | "import_role" => {
            "a host runs every role its groups name in the inventory (`roles:`), each role's steps.yml whole"
        }
        "vars" => "variables live in the inventory or the role's defaults.yml",
        "delegate_to" | "run_once" => "steps run on each selected host; nothing is delegated",
        _ => return None,
    };
    Some(format!("{say} (docs/from-ansible.md)"))
}

/// Separates a step's common keys (`COMMON`) from its kind, if it has one.
///
/// Errors: a second kind, or a key that is neither common nor a kind (with a did-you-mean).
fn split_keys(
    src: &crate::yaml::Source,
    step: IndexMap<Spanned<String>, Spanned<Node>>,
) -> Result<(CommonKeys, Option<KindKey>), Diagnostic> {
    let mut kind: Option<KindKey> = None;
    let mut common: CommonKeys = IndexMap::new();
    for (k, v) in step {
        let key = k.value.as_str();
        let (line, column) = (k.referenced.line(), k.referenced.column());
        if let Some(c) = COMMON.iter().find(|c| **c == key) {
            common.insert(c, v);
        } else if step::KINDS.contains(&key) {
            if let Some(other) = &kind {
                return Err(src.at(
                    line,
                    column,
                    format!(
                        "a step has one kind, but this one has `{}` and `{key}`",
                        other.name
                    ),
                ));
            }
            kind = Some(KindKey {
                name: key.to_string(),
                args: v.value.value,
                keys: v.value.keys,
                line,
                column,
            });
        } else {
            let mut d = src.at(line, column, format!("unknown step key `{key}`"));
            let all = COMMON.iter().chain(step::KINDS.iter()).copied();
            d.hint = Some(match (ansible_equivalent(key), did_you_mean(key, all)) {
                (Some(e), _) => e,
                (None, Some(s)) => format!("did you mean `{s}`?"),
                (None, None) => format!(
                    "step keys are {} and one kind of {}",
                    COMMON.join(", "),
                    step::KINDS.join(", ")
                ),
            });
            return Err(d);
        }
    }
    Ok((common, kind))
}

/// A step's common keys (`name`, `when`, `tags`, `notify`, `timeout`, `ends_meetings`), typed on demand;
/// errors point at the key's value.
struct Common<'s> {
    src: &'s crate::yaml::Source,
    keys: CommonKeys,
}

impl Common<'_> {
    /// A string key (a YAML boolean is taken as its text); `None` if absent.
    fn text(&self, key: &str) -> Result<Option<String>, Diagnostic> {
        match self.keys.get(key) {
            None => Ok(None),
            Some(v) => match &v.value.value {
                Value::String(s) => Ok(Some(s.clone())),
                Value::Bool(b) => Ok(Some(b.to_string())),
                other => Err(self.src.at(
                    v.referenced.line(),
                    v.referenced.column(),
                    format!("`{key}` must be a string, got {other}"),
                )),
            },
        }
    }

    /// A key holding a string or a list of strings; empty if absent.
    fn list(&self, key: &str) -> Result<Vec<String>, Diagnostic> {
        match self
            .keys
            .get(key)
            .map(|v| (&v.value.value, v.referenced.line(), v.referenced.column()))
        {
            None => Ok(vec![]),
            Some((Value::String(s), ..)) => Ok(vec![s.clone()]),
            Some((Value::Array(a), l, c)) => {
                let items = self.places(key);
                a.iter()
                    .enumerate()
                    .map(|(i, x)| {
                        x.as_str().map(String::from).ok_or_else(|| {
                            let (l, c) = items.get(i).copied().unwrap_or((l, c));
                            self.src
                                .at(l, c, format!("`{key}` must be a list of strings"))
                        })
                    })
                    .collect()
            }
            Some((_, l, c)) => Err(self.src.at(
                l,
                c,
                format!("`{key}` must be a string or a list of strings"),
            )),
        }
    }

    /// A key holding `true` or `false` (written as a YAML boolean, not a template: whether a
    /// step ends meetings is a fact about the step, known before any host is planned);
    /// `false` if absent.
    fn flag(&self, key: &str) -> Result<bool, Diagnostic> {
        match self.keys.get(key) {
            None => Ok(false),
            Some(v) => v.value.value.as_bool().ok_or_else(|| {
                self.src.at(
                    v.referenced.line(),
                    v.referenced.column(),
                    format!("`{key}` must be true or false"),
                )
            }),
        }
    }

    /// `timeout:` in seconds, a whole number above zero; `None` if absent.
    fn timeout(&self) -> Result<Option<u64>, Diagnostic> {
        let Some(v) = self.keys.get("timeout") else {
            return Ok(None);
        };
        let t = v.value.value.as_u64().filter(|t| *t > 0).ok_or_else(|| {
            self.src.at(
                v.referenced.line(),
                v.referenced.column(),
                "`timeout` must be a whole number of seconds",
            )
        })?;
        Ok(Some(t))
    }

    /// Where the entries of a string-or-list key were written: the value's own position for
    /// a plain string, each item's for a list; empty if absent.
    fn places(&self, key: &str) -> Vec<Pos> {
        match self.keys.get(key) {
            None => vec![],
            Some(v) if v.value.value.is_array() => v.value.items.clone(),
            Some(v) => vec![pos(v)],
        }
    }

    /// Refuses a `when:` that does not compile as an expression, when the role loads rather
    /// than when the step runs.
    fn check_when(&self) -> Result<(), Diagnostic> {
        let Some(w) = self.keys.get("when") else {
            return Ok(());
        };
        let expr = self.text("when")?.unwrap_or_default();
        if let Err(e) = minijinja::Environment::new().compile_expression(&expr) {
            let within = e
                .range()
                .and_then(|r| expr.get(..r.start))
                .map_or((1, 1), |before| {
                    let line = before.matches('\n').count() as u64 + 1;
                    let col = before.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
                    (line, col)
                });
            return Err(self.src.at_in_scalar(
                pos(w),
                &expr,
                within,
                format!(
                    "`when` is not a valid expression: {}",
                    crate::template::describe(&e)
                ),
            ));
        }
        Ok(())
    }
}

fn pos<T>(s: &Spanned<T>) -> Pos {
    (s.referenced.line(), s.referenced.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads a role `r` whose steps.yml is `steps`, in a folder of its own.
    fn load_steps(tag: &str, steps: &str) -> Result<Role, Diagnostic> {
        let dir = std::env::temp_dir().join(format!("rollout-role-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("r")).unwrap();
        std::fs::write(dir.join("r/steps.yml"), steps).unwrap();
        let r = load(&dir, "r");
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    #[test]
    fn stage_marks_a_step_that_may_run_before_the_cordon() {
        let role = load_steps(
            "stage",
            "- name: fetch\n  stage: true\n  command: {run: \"true\", unless: \"false\"}\n- name: install\n  command: {run: \"true\", unless: \"false\"}\n",
        )
        .unwrap();
        assert!(role.steps[0].stage);
        assert!(!role.steps[1].stage);
    }

    #[test]
    fn a_staged_step_may_not_notify_or_end_meetings() {
        // (steps.yml, what the error says)
        let rows = [
            (
                "- name: fetch\n  stage: true\n  notify: [restart]\n  command: {run: \"true\", unless: \"false\"}\n",
                "2:10: `stage: true`: a staged step runs while the node serves classes, and may not notify a handler",
            ),
            (
                "- name: fetch\n  stage: true\n  ends_meetings: true\n  command: {run: \"true\", unless: \"false\"}\n",
                "2:10: `stage: true`: a step that ends meetings cannot run while the node serves classes",
            ),
            (
                "- name: fetch\n  stage: yes please\n  command: {run: \"true\", unless: \"false\"}\n",
                "`stage` must be true or false",
            ),
        ];
        for (i, (steps, want)) in rows.into_iter().enumerate() {
            let e = load_steps(&format!("bad{i}"), steps).expect_err(steps);
            let text = e.to_string();
            assert!(text.contains(want), "{steps}: {text}");
        }
    }
}
