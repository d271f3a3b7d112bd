//! The contract every step kind fulfils ([`Kind`]), and what a check concludes ([`Verdict`]).
//! The table in `step/mod.rs` (`kinds!`) turns the kinds into [`super::Action`] and derives
//! from this trait everything that dispatches on a kind, so the compiler checks the contract.

use super::error::{ArgError, StepError};
use super::facts::{CheckOutput, Gather, Gathered};
use crate::secret::Secrets;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt::Debug;

/// A step kind (Ansible's module): arguments in, a check fragment, a pure judgement of its
/// facts, an apply fragment.
pub trait Kind: Sized + Debug + Clone + PartialEq {
    /// The kind's key in a role's step, e.g. `file`.
    const NAME: &'static str;
    /// Whether applying may wait on something outside the host's files (the network, a
    /// package manager, a service, a user's command): such steps run under `timeout`.
    const MAY_BLOCK: bool;
    /// A barrier also runs in apply after any earlier change, reported as ok (`wait_for`).
    const BARRIER: bool = false;
    /// Arguments that reach the host encoded (base64), where a NUL byte is fine; a NUL in
    /// any other argument is refused ([`ArgError::Nul`]).
    const NUL_OK: &'static [&'static str] = &[];

    /// The arguments as written (`deny_unknown_fields`); templates not yet rendered.
    type Args: DeserializeOwned;
    /// What the check found, typed.
    type Facts: Debug + Clone + PartialEq;

    /// Rules on the arguments as written that depend on where the step is used.
    fn validate_use(_args: &Self::Args, _usage: Use) -> Result<(), ArgError> {
        Ok(())
    }

    /// The step for one host from its rendered arguments.
    fn new(args: Self::Args, r: &Resolve) -> Result<Self, StepError>;

    /// Seconds an apply may take unless the step sets `timeout:`.
    fn default_timeout(&self) -> u64 {
        120
    }

    /// Shell that prints the kind's fact lines; read-only, runs in a brace group.
    fn check(&self) -> String;

    /// Pure: the facts in the output of [`Kind::check`].
    fn read(&self, out: &CheckOutput) -> Self::Facts;

    /// Which gathered facts can stand in for the step's own check (None: it runs its own).
    fn gather(&self) -> Option<Gather<'_>> {
        None
    }

    /// Pure: the facts from gathered ones, equal to what [`Kind::read`] makes of the step's
    /// own check; None when the facts it needs were not gathered.
    fn gathered(&self, _facts: &Gathered) -> Option<Self::Facts> {
        None
    }

    /// Pure: what the facts mean for this step.
    fn evaluate(&self, facts: &Self::Facts, cx: &Context) -> Verdict;

    /// Shell that converges; runs with `sh -e` after the shared library (`step::LIB`).
    fn apply(&self) -> String;
}

/// Checks arguments as written against kind `K` (see [`super::validate`]).
pub(super) fn validate_as<K: Kind>(args: &Value, usage: Use) -> Result<(), ArgError> {
    let a = deserialize::<K>(args)?;
    K::validate_use(&a, usage)
}

/// The kind's arguments from `args`; a shape error names the argument it is about (the
/// first segment of serde's path to the fault), or the unknown one.
fn deserialize<K: Kind>(args: &Value) -> Result<K::Args, ArgError> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let field = match e.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => Some(key.clone()),
            _ => None,
        };
        let error = ArgError::shape(e.inner());
        // An unknown field's text names it already.
        let named = error.to_string().starts_with("unknown field");
        match field {
            Some(field) if named => ArgError::In {
                field,
                error: Box::new(error),
            },
            Some(field) => ArgError::In {
                error: Box::new(ArgError::Shape(format!("`{field}`: {error}"))),
                field,
            },
            None => error,
        }
    })
}

/// Builds a step of kind `K` from rendered arguments (see [`super::resolve`]).
pub(super) fn resolve_as<K: Kind>(args: Value, r: &Resolve) -> Result<K, StepError> {
    let a = deserialize::<K>(&args)?;
    if let Value::Object(fields) = &args {
        // Checked here, for every kind, so that no kind can forget it; after deserializing,
        // so that an unknown or misshapen field keeps its own error.
        if let Some((name, _)) = fields
            .iter()
            .find(|(name, v)| !K::NUL_OK.contains(&name.as_str()) && has_nul(v))
        {
            return Err(ArgError::Nul(name.clone()).into());
        }
    }
    K::new(a, r)
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.values().any(has_nul),
        _ => false,
    }
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
    /// A change without a diff.
    pub fn change(summary: impl Into<String>) -> Verdict {
        Verdict::Change {
            summary: summary.into(),
            diff: None,
        }
    }

    /// Unchanged when there is nothing to do, else a change summed up as `todo`, joined.
    pub fn changes(todo: &[String]) -> Verdict {
        if todo.is_empty() {
            Verdict::Unchanged
        } else {
            Verdict::change(todo.join(", "))
        }
    }
}

/// What a judgement may need besides the facts.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Values to mask in summaries and diffs.
    pub secrets: &'a Secrets,
    /// The host's name; labels diffs.
    pub host: &'a str,
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
