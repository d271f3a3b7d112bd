//! Reads the check script's output once: gathered facts into a map by key, each own section
//! into its step's typed facts.

use super::Gathering;
use crate::script::{Nonce, unbase64};
use crate::step::{Action, CheckOutput, Fact, FactKey, Facts, Gathered, PathStat};

/// Why a check output cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    /// A marker line out of place or unknown: the output is not this script's.
    #[error("unexpected marker line `{0}`")]
    Marker(String),
    /// No end marker: the connection or the shell was cut.
    #[error("the check script stopped before its end")]
    Cut,
    /// Neither an own section nor gathered facts for step N (from 1).
    #[error("the check script stopped before step {0}")]
    StoppedBefore(usize),
}

#[derive(Clone, Copy, PartialEq)]
enum Section {
    None,
    Stat,
    Hash,
    Props(usize),
    Step(usize),
}

/// What the reader collected from the output.
struct Reading {
    gathered: Gathered,
    /// Per properties file, its lines while they are read.
    props: Vec<Option<Vec<(String, String)>>>,
    /// Per step: the lines of its own section, when it ran one.
    own: Vec<Option<CheckOutput>>,
    lines: Vec<String>,
    ended: bool,
}

/// Splits check output into each step's facts (`steps` as given to [`super::script`]).
pub fn parse(steps: &[&Action], output: &str, nonce: &Nonce) -> Result<Vec<Facts>, CheckError> {
    let m = nonce.marker();
    let g = Gathering::of(steps);
    let mut r = Reading {
        gathered: Gathered::default(),
        props: vec![None; g.prop_files.len()],
        own: vec![None; steps.len()],
        lines: Vec::new(),
        ended: false,
    };
    let mut section = Section::None;
    for line in output.lines() {
        match line.strip_prefix(&m).and_then(|r| r.strip_prefix(' ')) {
            Some(rest) => section = r.marker(line, rest, section, &g)?,
            None => r.fact_line(line, section, &g),
        }
    }
    if !r.ended {
        return Err(CheckError::Cut);
    }
    steps
        .iter()
        .zip(r.own)
        .enumerate()
        .map(|(i, (a, own))| match own {
            Some(out) => Ok(a.read(&out)),
            None => a
                .gathered(&r.gathered)
                .ok_or(CheckError::StoppedBefore(i + 1)),
        })
        .collect()
}

impl Reading {
    /// A marker line: the section it opens (or the one it ends).
    fn marker(
        &mut self,
        line: &str,
        rest: &str,
        section: Section,
        g: &Gathering,
    ) -> Result<Section, CheckError> {
        let mut f = rest.splitn(3, ' ');
        let tag = f.next().unwrap_or("");
        let num = f.next().and_then(|x| x.parse::<usize>().ok());
        let (n, files) = (self.own.len(), g.prop_files.len());
        let next = match (tag, num) {
            ("s", None) => Section::Stat,
            ("h", None) => Section::Hash,
            ("z", None) => {
                self.ended = true;
                Section::None
            }
            ("c", Some(j)) if j < g.hash_paths.len() => {
                if let Some(c) = unbase64(f.next().unwrap_or("")) {
                    let key = FactKey::Content(g.hash_paths[j].to_string());
                    self.gathered.insert(key, Fact::Content(c));
                }
                Section::None
            }
            ("p", Some(j)) if j < files => {
                self.props[j] = Some(Vec::new());
                Section::Props(j)
            }
            ("P", Some(j)) if j < files => {
                let key = FactKey::Properties(g.prop_files[j].0.to_string());
                self.gathered.insert(key, Fact::Properties(None));
                Section::None
            }
            ("b", Some(i)) if i < n => {
                self.lines.clear();
                Section::Step(i)
            }
            ("e", Some(i)) if i < n && section == Section::Step(i) => {
                let lines = std::mem::take(&mut self.lines);
                self.own[i] = Some(CheckOutput { lines });
                Section::None
            }
            _ => return Err(CheckError::Marker(line.to_string())),
        };
        self.close_props(section, next, g);
        Ok(next)
    }

    /// A properties section ends at the next marker: its lines become one fact.
    fn close_props(&mut self, section: Section, next: Section, g: &Gathering) {
        if let Section::Props(j) = section
            && next != section
            && let Some(lines) = self.props[j].take()
        {
            let key = FactKey::Properties(g.prop_files[j].0.to_string());
            self.gathered.insert(key, Fact::Properties(Some(lines)));
        }
    }

    /// A line inside a section.
    fn fact_line(&mut self, line: &str, section: Section, g: &Gathering) {
        match section {
            Section::Stat => {
                // The path is last and may hold `|`: split after the fifth.
                if let Some((at, _)) = line.match_indices('|').nth(4)
                    && let Some(stat) = PathStat::parse(&line[..at])
                {
                    let key = FactKey::Stat(line[at + 1..].to_string());
                    self.gathered.insert(key, Fact::Stat(stat));
                }
            }
            Section::Hash => {
                if let Some((h, p)) = line.split_once("  ") {
                    let key = FactKey::Hash(p.to_string());
                    self.gathered.insert(key, Fact::Hash(h.to_string()));
                }
            }
            Section::Props(j) => {
                let keys = &g.prop_files[j].1;
                let named = line.split_once(' ').and_then(|(n, v)| {
                    let k = keys.get(n.parse::<usize>().ok()?.checked_sub(1)?)?;
                    Some((k.to_string(), v.to_string()))
                });
                if let (Some(kv), Some(lines)) = (named, self.props[j].as_mut()) {
                    lines.push(kv);
                }
            }
            Section::Step(_) => self.lines.push(line.to_string()),
            Section::None => {}
        }
    }
}
