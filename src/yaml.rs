//! Reading YAML files the operator wrote: one place that turns serde-saphyr's errors into
//! [`Diagnostic`]s with the file's name, a snippet and a did-you-mean hint, and that guards
//! against empty files, non-UTF-8 bytes and alias bombs.

use crate::error::{Diagnostic, did_you_mean};
use serde::de::DeserializeOwned;
use std::path::Path;

/// A source file kept in memory so later validation errors can show snippets.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: std::path::PathBuf,
    pub text: String,
}

impl Source {
    /// Reads a file, refusing empty and non-UTF-8 files with a clear message.
    pub fn read(path: &Path) -> Result<Source, Diagnostic> {
        let bytes = std::fs::read(path)
            .map_err(|e| Diagnostic::file(path, format!("cannot read file: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = upto.iter().filter(|b| **b == b'\n').count() as u64 + 1;
            let col = upto.iter().rev().take_while(|b| **b != b'\n').count() as u64 + 1;
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            Diagnostic::at(path, &text, line, col, "file is not valid UTF-8")
                .with_hint("save the file as UTF-8")
        })?;
        if text
            .trim()
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Err(Diagnostic::file(path, "file is empty")
                .with_hint("an inventory needs at least `all:` with `hosts:` or `children:`"));
        }
        Ok(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    /// Parses the whole file as `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Diagnostic> {
        serde_saphyr::from_str_with_options(&self.text, options()).map_err(|e| self.diagnose(&e))
    }

    /// A diagnostic at a line/column of this file.
    pub fn at(&self, line: u64, column: u64, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(&self.path, &self.text, line, column, message)
    }

    fn diagnose(&self, e: &serde_saphyr::Error) -> Diagnostic {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let message = clean_message(&e.without_snippet().to_string());
        let mut d = if line > 0 {
            self.at(line, column, message.clone())
        } else {
            Diagnostic::file(&self.path, message.clone())
        };
        d.hint = hint_for(&message);
        d
    }
}

/// Options for every YAML file we read: duplicate keys are errors (the default) and a
/// budget stops alias bombs long before they eat memory.
fn options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.budget = serde_saphyr::budget! { max_aliases: 10_000, max_nodes: 200_000, max_depth: 128 };
    o
}

/// serde-saphyr appends or prepends the position; we print it ourselves.
fn clean_message(raw: &str) -> String {
    let mut m = raw.trim();
    if let Some(rest) = m.strip_prefix("error: ") {
        m = rest;
    }
    if m.starts_with("line ")
        && let Some(i) = m.find(": ")
    {
        m = &m[i + 2..];
    }
    if let Some(i) = m.rfind(" at line ")
        && m[i + 9..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    {
        m = &m[..i];
    }
    let m = m.replace(", set DuplicateKeyPolicy in Options if acceptable", "");
    if m.starts_with("budget breached") {
        return "document expands to too many nodes (alias bomb?)".to_string();
    }
    m
}

/// For "unknown field `x`, expected one of a, b" suggest the closest field.
fn hint_for(message: &str) -> Option<String> {
    if let Some(t) = message.strip_prefix("invalid ")
        && (t.starts_with('u') || t.starts_with('i'))
    {
        return Some("expected a whole number here".into());
    }
    let rest = message.strip_prefix("unknown field `")?;
    let (word, rest) = rest.split_once('`')?;
    let list = rest
        .split_once("expected one of ")
        .map(|(_, l)| l)
        .or_else(|| rest.split_once("expected ").map(|(_, l)| l))?;
    let candidates: Vec<&str> = list.split(", ").map(|c| c.trim_matches('`')).collect();
    did_you_mean(word, candidates.iter().copied()).map(|c| format!("did you mean `{c}`?"))
}
