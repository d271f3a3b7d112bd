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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Line and column in the inventory.
    At(u64, u64),
    /// `-e NAME=VALUE` on the command line.
    Extra,
    /// A file of an Ansible inventory (an inventory file, `group_vars/` or `host_vars/`).
    Ansible(crate::inventory::ansible::data::At),
}

impl Origin {
    /// A diagnostic at an Ansible inventory's place, with the line of the file shown when
    /// it can be read again (line 0: the file only).
    pub fn ansible_diagnostic(
        at: &crate::inventory::ansible::data::At,
        message: String,
    ) -> Diagnostic {
        if at.line == 0 {
            return Diagnostic::file(&at.file, message);
        }
        match crate::inventory::ansible::read_text(&at.file) {
            Ok(text) => Diagnostic::at(&at.file, &text, at.line, at.column, message),
            Err(_) => {
                let mut d = Diagnostic::file(&at.file, message);
                (d.line, d.column) = (at.line, at.column);
                d
            }
        }
    }
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
            let text = v.as_str().unwrap_or("");
            let within = e
                .range()
                .and_then(|r| text.get(..r.start))
                .map_or((1, 1), position_of_end);
            locate(source, k, v, within, origins, message)
        })?;
        deps.insert(k.clone(), refs);
    }
    if let Err(chain) = order(&deps) {
        let k = &chain[0];
        let message = format!("variable `{k}` {}", cycle_message(&chain));
        let value = &vars[k.as_str()];
        // At the reference that closes the cycle, where it can be found.
        let within = chain
            .get(1)
            .and_then(|next| mention(value.as_str().unwrap_or(""), next))
            .map_or((1, 1), |at| {
                position_of_end(&value.as_str().unwrap_or("")[..at])
            });
        return Err(locate(source, k, value, within, origins, message));
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

/// A diagnostic at `within` (line, column) of variable `key`'s value, where it was set.
fn locate(
    source: &Source,
    key: &str,
    value: &Value,
    within: (u64, u64),
    origins: &HashMap<String, Origin>,
    message: String,
) -> Diagnostic {
    let text = value.as_str().unwrap_or("");
    match origins.get(key) {
        Some(Origin::At(line, column)) => {
            source.at_in_scalar((*line, *column), text, within, message)
        }
        Some(Origin::Ansible(at)) => Origin::ansible_diagnostic(at, message),
        None => Diagnostic::file(&source.path, message),
        Some(Origin::Extra) => Diagnostic::at(
            Path::new(&format!("-e {key}")),
            text,
            within.0,
            within.1,
            message,
        ),
    }
}

/// Line and column (1-based) just after `before`, the text preceding a position.
fn position_of_end(before: &str) -> (u64, u64) {
    let line = before.matches('\n').count() as u64 + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
    (line, col)
}

/// The byte offset of the first mention of variable `name` inside a template tag of `text`
/// (a whole word after `{{` or `{%`), if any.
fn mention(text: &str, name: &str) -> Option<usize> {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let tag = text.find("{{").into_iter().chain(text.find("{%")).min()?;
    text.match_indices(name).map(|(i, _)| i).find(|&i| {
        i > tag && !text[..i].ends_with(word) && !text[i + name.len()..].starts_with(word)
    })
}

#[cfg(test)]
mod mention_tests {
    use super::mention;

    #[test]
    fn a_mention_is_a_whole_word_inside_a_tag() {
        assert_eq!(mention("https://{{ c }}/api", "c"), Some(11));
        assert_eq!(mention("c {{ abc }} {{ c }}", "c"), Some(15));
        assert_eq!(mention("no tags c", "c"), None);
    }
}
