//! Roles: a folder `roles/NAME/` with `steps.yml` (the steps, in order), optional
//! `handlers.yml` (steps run once at the end when a changed step notified them) and
//! optional `defaults.yml` (variables with the lowest precedence). Every step is checked
//! when the role loads: its keys, its kind, the shape of its arguments.

use crate::error::{Diagnostic, did_you_mean};
use crate::step::{self, Use};
use indexmap::IndexMap;
use serde_json::{Map, Value};
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Keys every step may have besides its kind.
const COMMON: &[&str] = &["name", "when", "tags", "notify", "timeout"];

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
    /// A diagnostic at default `name`'s value, or `None` if the role has no such default.
    pub fn at(&self, name: &str, message: impl Into<String>) -> Option<Diagnostic> {
        let (line, col) = self.positions.get(name)?;
        Some(self.source.at(*line, *col, message))
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
    pub file: PathBuf,
    pub line: u64,
}

impl StepSpec {
    /// "role/step name" for messages.
    pub fn label(&self) -> String {
        format!("{}: {}", self.role, self.name)
    }
}

type RawStep = Spanned<IndexMap<Spanned<String>, Spanned<Value>>>;

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
        return Err(Diagnostic::file(
            &steps_path,
            format!("role `{name}` has no steps.yml"),
        ));
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
        for n in &s.notify {
            if !names.contains(&n.as_str()) {
                let src = crate::yaml::Source::read(&s.file)?;
                let mut d = src.at(
                    s.line,
                    0,
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
    let src = crate::yaml::Source::read(path)?;
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

fn parse_steps(role: &str, path: &Path, usage: Use) -> Result<Vec<StepSpec>, Diagnostic> {
    let src = crate::yaml::Source::read(path)?;
    let raw: Vec<RawStep> = src.parse()?;
    let mut out: Vec<StepSpec> = Vec::new();
    for (i, step) in raw.into_iter().enumerate() {
        let (line, col) = (step.referenced.line(), step.referenced.column());
        let mut kind: Option<(String, Value, u64, u64)> = None;
        let mut common: IndexMap<&str, Spanned<Value>> = IndexMap::new();
        for (k, v) in step.value {
            let key = k.value.as_str();
            if let Some(c) = COMMON.iter().find(|c| **c == key) {
                common.insert(c, v);
            } else if step::KINDS.contains(&key) {
                if let Some((other, ..)) = &kind {
                    return Err(src.at(
                        k.referenced.line(),
                        k.referenced.column(),
                        format!("a step has one kind, but this one has `{other}` and `{key}`"),
                    ));
                }
                kind = Some((
                    key.to_string(),
                    v.value,
                    k.referenced.line(),
                    k.referenced.column(),
                ));
            } else {
                let mut d = src.at(
                    k.referenced.line(),
                    k.referenced.column(),
                    format!("unknown step key `{key}`"),
                );
                let all = COMMON.iter().chain(step::KINDS.iter()).copied();
                d.hint = Some(match did_you_mean(key, all) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "step keys are {} and one kind of {}",
                        COMMON.join(", "),
                        step::KINDS.join(", ")
                    ),
                });
                return Err(d);
            }
        }
        let Some((kind, args, kline, kcol)) = kind else {
            return Err(src
                .at(line, col, "this step has no kind")
                .with_hint(format!("add one of {}", step::KINDS.join(", "))));
        };
        step::validate(&kind, &args, usage).map_err(|e| {
            let e = e.to_string();
            let mut d = src.at(kline, kcol, format!("{kind}: {e}"));
            d.hint = crate::yaml::unknown_field_hint(&e);
            d
        })?;
        let text = |key: &str| -> Result<Option<String>, Diagnostic> {
            match common.get(key) {
                None => Ok(None),
                Some(v) => match &v.value {
                    Value::String(s) => Ok(Some(s.clone())),
                    Value::Bool(b) => Ok(Some(b.to_string())),
                    other => Err(src.at(
                        v.referenced.line(),
                        v.referenced.column(),
                        format!("`{key}` must be a string, got {other}"),
                    )),
                },
            }
        };
        let list = |key: &str| -> Result<Vec<String>, Diagnostic> {
            match common
                .get(key)
                .map(|v| (&v.value, v.referenced.line(), v.referenced.column()))
            {
                None => Ok(vec![]),
                Some((Value::String(s), ..)) => Ok(vec![s.clone()]),
                Some((Value::Array(a), l, c)) => a
                    .iter()
                    .map(|x| {
                        x.as_str().map(String::from).ok_or_else(|| {
                            src.at(l, c, format!("`{key}` must be a list of strings"))
                        })
                    })
                    .collect(),
                Some((_, l, c)) => Err(src.at(
                    l,
                    c,
                    format!("`{key}` must be a string or a list of strings"),
                )),
            }
        };
        let name = text("name")?.unwrap_or_else(|| format!("{kind} #{}", i + 1));
        if usage == Use::Handler && out.iter().any(|h| h.name == name) {
            return Err(src.at(line, col, format!("handler `{name}` is defined twice")));
        }
        let timeout = match common.get("timeout") {
            None => None,
            Some(v) => Some(v.value.as_u64().filter(|t| *t > 0).ok_or_else(|| {
                src.at(
                    v.referenced.line(),
                    v.referenced.column(),
                    "`timeout` must be a whole number of seconds",
                )
            })?),
        };
        if let Some(w) = common.get("when") {
            let expr = text("when")?.unwrap_or_default();
            if let Err(e) = minijinja::Environment::new().compile_expression(&expr) {
                return Err(src.at(
                    w.referenced.line(),
                    w.referenced.column(),
                    format!("`when` is not a valid expression: {e}"),
                ));
            }
        }
        out.push(StepSpec {
            role: role.to_string(),
            name,
            kind,
            args,
            when: text("when")?,
            tags: list("tags")?,
            notify: list("notify")?,
            timeout,
            file: path.to_path_buf(),
            line,
        });
    }
    Ok(out)
}
