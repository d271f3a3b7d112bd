//! `directory`: a directory with owner, group and mode, or its absence.

use super::args::{Num, Ownership, account, mode, present};
use super::error::{ArgError, StepError};
use super::facts::{CheckOutput, FileType, Gather, Gathered, PathStat, STAT_FORMAT};
use super::file::gatherable;
use super::kind::{Context, Kind, Resolve, Verdict};
use crate::script::quote;
use serde::Deserialize;

/// The arguments of a `directory` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryArgs {
    pub path: String,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<Num>,
    /// `present` (default) or `absent`.
    pub state: Option<String>,
}

/// A directory step for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Directory {
    pub path: String,
    pub present: bool,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<String>,
}

/// The stat of the path itself (a link is not a directory); None when nothing is there.
pub type DirectoryFacts = Option<PathStat>;

impl Kind for Directory {
    const NAME: &'static str = "directory";
    const MAY_BLOCK: bool = false;
    type Args = DirectoryArgs;
    type Facts = DirectoryFacts;

    fn new(a: DirectoryArgs, _: &Resolve) -> Result<Directory, StepError> {
        if !a.path.starts_with('/') || a.path.trim_end_matches('/').is_empty() {
            return Err(ArgError::DirectoryPath(a.path).into());
        }
        if a.path.contains('\n') {
            return Err(ArgError::PathNewline("path").into());
        }
        Ok(Directory {
            present: present(a.state.as_deref())?,
            mode: mode(&a.mode)?,
            path: a.path,
            owner: account("owner", a.owner)?,
            group: account("group", a.group)?,
        })
    }

    /// `stat` of the path itself, or `absent`.
    fn check(&self) -> String {
        format!(
            "p={}\nif [ -e \"$p\" ] || [ -L \"$p\" ]; then stat -c 'stat {STAT_FORMAT}' -- \"$p\"; else echo absent; fi\n",
            quote(&self.path)
        )
    }

    fn read(&self, out: &CheckOutput) -> DirectoryFacts {
        out.first("stat").and_then(PathStat::parse)
    }

    fn gather(&self) -> Option<Gather<'_>> {
        gatherable(&self.path).then_some(Gather::Directory { path: &self.path })
    }

    fn gathered(&self, g: &Gathered) -> Option<DirectoryFacts> {
        Some(g.stat(&self.path).cloned())
    }

    fn evaluate(&self, facts: &DirectoryFacts, _: &Context) -> Verdict {
        match (self.present, facts) {
            (_, Some(s)) if s.file_type != FileType::Directory => {
                Verdict::Fail(format!("{} exists and is not a directory", self.path))
            }
            (false, None) => Verdict::Unchanged,
            (false, Some(_)) => Verdict::change("remove"),
            (true, None) => Verdict::change("create"),
            (true, Some(s)) => {
                let own = Ownership {
                    owner: self.owner.clone(),
                    group: self.group.clone(),
                    mode: self.mode.clone(),
                };
                Verdict::changes(&own.changes(Some(s)))
            }
        }
    }

    fn apply(&self) -> String {
        let p = quote(&self.path);
        if !self.present {
            return format!("rm -rf -- {p}\n");
        }
        let mut s = format!("mkdir -p -- {p}\n");
        match (&self.owner, &self.group) {
            (Some(o), Some(g)) => {
                s.push_str(&format!("chown -- {} {p}\n", quote(&format!("{o}:{g}"))))
            }
            (Some(o), None) => s.push_str(&format!("chown -- {} {p}\n", quote(o))),
            (None, Some(g)) => s.push_str(&format!("chgrp -- {} {p}\n", quote(g))),
            (None, None) => {}
        }
        if let Some(m) = &self.mode {
            s.push_str(&format!("chmod {m} {p}\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secrets;
    use crate::step::with_plain_resolve;

    fn dir() -> Directory {
        let a = DirectoryArgs {
            path: "/opt/x".into(),
            owner: Some("app".into()),
            group: None,
            mode: Some(Num::Int(750)),
            state: None,
        };
        with_plain_resolve(|r| Directory::new(a, r)).unwrap()
    }

    #[test]
    fn fixtures() {
        let s = Secrets::default();
        let cx = Context {
            secrets: &s,
            host: "h",
        };
        let st = |l: &str| dir().read(&CheckOutput::of(&[&format!("stat {l}")]));
        let absent = dir().read(&CheckOutput::of(&["absent"]));
        assert_eq!(dir().evaluate(&absent, &cx), Verdict::change("create"));
        assert_eq!(
            dir().evaluate(&st("directory|app|root|750|4096"), &cx),
            Verdict::Unchanged
        );
        assert_eq!(
            dir().evaluate(&st("directory|root|root|755|4096"), &cx),
            Verdict::change("owner root -> app, mode 0755 -> 0750")
        );
        assert!(matches!(
            dir().evaluate(&st("regular file|root|root|644|1"), &cx),
            Verdict::Fail(_)
        ));
        assert_eq!(
            dir().apply(),
            "mkdir -p -- /opt/x\nchown -- app /opt/x\nchmod 0750 /opt/x\n"
        );
    }
}
