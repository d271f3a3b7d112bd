//! Variables that refer to themselves, caught where the operator wrote them: the planner
//! would stop on a cycle too, but only the inventory knows the file, line and column of each
//! variable (and that `-e` set it).

use super::file::Vars;
use crate::error::Diagnostic;
use crate::template::describe;
use crate::vars::{cycle_message, json_has_syntax, order, references};
use crate::yaml::Source;
use indexmap::IndexMap;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// Where a variable's value was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Line and column in the inventory.
    At(u64, u64),
    /// `-e NAME=VALUE` on the command line.
    Extra,
}

/// Refuses a host's variables when one refers to itself, directly or through others, or
/// when a templated value does not parse.
pub(super) fn check(
    source: &Source,
    vars: &Map<String, Value>,
    origins: &HashMap<String, Origin>,
) -> Result<(), Diagnostic> {
    let mut deps = IndexMap::new();
    for (k, v) in vars.iter().filter(|(_, v)| json_has_syntax(v)) {
        let refs = references(v).map_err(|e| {
            let message = format!("variable `{k}`: template syntax error: {}", describe(&e));
            locate(source, k, origins, message)
        })?;
        deps.insert(k.clone(), refs);
    }
    if let Err(chain) = order(&deps) {
        let k = &chain[0];
        let message = format!("variable `{k}` {}", cycle_message(&chain));
        return Err(locate(source, k, origins, message));
    }
    Ok(())
}

/// Where each of `vars` was set in the inventory.
pub(super) fn positions(vars: &Vars) -> impl Iterator<Item = (String, Origin)> + '_ {
    vars.iter().map(|(k, v)| {
        let at = Origin::At(v.referenced.line(), v.referenced.column());
        (k.clone(), at)
    })
}

fn locate(
    source: &Source,
    key: &str,
    origins: &HashMap<String, Origin>,
    message: String,
) -> Diagnostic {
    match origins.get(key) {
        Some(Origin::At(line, column)) => source.at(*line, *column, message),
        _ => Diagnostic::file(Path::new(&format!("-e {key}")), message),
    }
}
