//! Reads the check script's output once: gathered facts into a map by key, each own section
//! into its step's typed facts.

use super::Gathering;
use crate::script::{Nonce, unbase64};
use crate::step::{Action, CheckOutput, Fact, FactKey, Facts, Gathered, LineHits, PathStat};

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
    Lines,
    Packages,
    Candidates,
    Enabled,
    Active,
    Ports,
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
    /// The line pass: per line file whether it is missing, per check its hits; None until
    /// its section began.
    line_missing: Vec<bool>,
    line_hits: Option<Vec<LineHits>>,
    packages: Option<Vec<(String, String, String)>>,
    candidates: Option<Vec<(String, String)>>,
    /// `is-enabled` and `is-active` lines, in unit order; None until their section began.
    enabled: Option<Vec<String>>,
    active: Option<Vec<String>>,
    ready: Option<Vec<bool>>,
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
        line_missing: vec![false; g.line_files.len()],
        line_hits: None,
        packages: None,
        candidates: None,
        enabled: None,
        active: None,
        ready: None,
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
    r.finish(&g);
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
            ("l", None) => {
                let hits = LineHits {
                    file_exists: true,
                    ..LineHits::default()
                };
                self.line_hits = Some(vec![hits; g.line_checks.len()]);
                Section::Lines
            }
            ("L", Some(j)) if j < g.line_files.len() => {
                self.line_missing[j] = true;
                Section::None
            }
            ("k", None) => {
                self.packages = Some(Vec::new());
                Section::Packages
            }
            ("a", None) => {
                self.candidates = Some(Vec::new());
                Section::Candidates
            }
            ("A", age) => {
                // A negative age (a clock set back) is unreadable, as in the own check.
                let age = age.map(|a| a as u64);
                self.gathered.insert(FactKey::CacheAge, Fact::Seconds(age));
                Section::None
            }
            ("u", None) => {
                self.enabled = Some(Vec::new());
                Section::Enabled
            }
            ("v", None) => {
                self.active = Some(Vec::new());
                Section::Active
            }
            ("w", None) => {
                self.ready = Some(vec![false; g.ports.len()]);
                Section::Ports
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
            Section::Lines => {
                let hit = line.split_once(' ').and_then(|(k, what)| {
                    let k = k.parse::<usize>().ok()?;
                    Some((self.line_hits.as_mut()?.get_mut(k)?, what))
                });
                match hit {
                    Some((h, "exact")) => h.exact = true,
                    Some((h, "match")) => h.matches += 1,
                    _ => {}
                }
            }
            Section::Packages => {
                let mut f = line
                    .strip_prefix("package ")
                    .unwrap_or("")
                    .split_whitespace();
                if let (Some(name), Some(status), Some(list)) =
                    (f.next(), f.next(), self.packages.as_mut())
                {
                    let version = f.next().unwrap_or("").to_string();
                    list.push((name.to_string(), status.to_string(), version));
                }
            }
            Section::Candidates => {
                let c = line
                    .strip_prefix("candidate ")
                    .and_then(|c| c.split_once(' '));
                if let (Some((n, v)), Some(list)) = (c, self.candidates.as_mut()) {
                    list.push((n.to_string(), v.to_string()));
                }
            }
            Section::Enabled | Section::Active => {
                let list = if section == Section::Enabled {
                    &mut self.enabled
                } else {
                    &mut self.active
                };
                if let Some(list) = list {
                    list.push(line.trim().to_string());
                }
            }
            Section::Ports => {
                if let (Some(j), Some(ready)) =
                    (line.trim().parse::<usize>().ok(), self.ready.as_mut())
                    && let Some(r) = ready.get_mut(j)
                {
                    *r = true;
                }
            }
            Section::Step(_) => self.lines.push(line.to_string()),
            Section::None => {}
        }
    }

    /// The facts of the sections that end only with the output: the line pass, packages,
    /// units and ports, each recorded only when its section was reached.
    fn finish(&mut self, g: &Gathering) {
        if let Some(hits) = self.line_hits.take() {
            for ((f, line, regexp), mut h) in g.line_checks.iter().zip(hits) {
                if self.line_missing[*f] {
                    h = LineHits::default();
                }
                let key = FactKey::Line(
                    g.line_files[*f].into(),
                    line.to_string(),
                    regexp.to_string(),
                );
                self.gathered.insert(key, Fact::Line(h));
            }
        }
        if let Some(p) = self.packages.take() {
            self.gathered.insert(FactKey::Packages, Fact::Packages(p));
        }
        if let Some(c) = self.candidates.take() {
            self.gathered
                .insert(FactKey::Candidates, Fact::Candidates(c));
        }
        if let (Some(enabled), Some(active)) = (self.enabled.take(), self.active.take()) {
            for (i, u) in g.units.iter().enumerate() {
                let fact = Fact::Unit {
                    enabled: enabled.get(i).cloned().unwrap_or_default(),
                    active: active.get(i).cloned().unwrap_or_default(),
                };
                self.gathered.insert(FactKey::Unit(u.to_string()), fact);
            }
        }
        if let Some(ready) = self.ready.take() {
            for ((host, port), r) in g.ports.iter().zip(ready) {
                self.gathered
                    .insert(FactKey::Port(host.to_string(), *port), Fact::Ready(r));
            }
        }
    }
}
