//! `directory`: a directory with owner, group and mode, or its absence.

use super::{Num, Probe, Verdict, meta_changes, mode};
use crate::script::quote;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryArgs {
    pub path: String,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<Num>,
    pub state: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Directory {
    pub path: String,
    pub present: bool,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<String>,
}

impl Directory {
    pub fn new(a: DirectoryArgs) -> Result<Directory, String> {
        if !a.path.starts_with('/') || a.path.trim_end_matches('/').is_empty() {
            return Err(format!("path `{}` must be absolute and not /", a.path));
        }
        let present = match a.state.as_deref() {
            None | Some("present") => true,
            Some("absent") => false,
            Some(s) => return Err(format!("state `{s}` must be present or absent")),
        };
        Ok(Directory {
            path: a.path,
            present,
            owner: a.owner,
            group: a.group,
            mode: mode(&a.mode)?,
        })
    }

    pub fn check(&self) -> String {
        format!(
            "p={}\nif [ -d \"$p\" ] && [ ! -L \"$p\" ]; then stat -c 'S %U %G %a' \"$p\"; elif [ -e \"$p\" ]; then echo F; else echo A; fi\n",
            quote(&self.path)
        )
    }

    pub fn evaluate(&self, probe: &Probe) -> Verdict {
        if probe.first("F").is_some() {
            return Verdict::Fail(format!("{} exists and is not a directory", self.path));
        }
        let exists = probe.first("A").is_none();
        match (self.present, exists) {
            (false, false) => Verdict::Unchanged,
            (false, true) => Verdict::change("remove"),
            (true, false) => Verdict::change("create"),
            (true, true) => {
                let s: Vec<&str> = probe.first("S").unwrap_or("").split(' ').collect();
                let cur = (s.len() >= 3).then(|| (s[0], s[1], s[2]));
                let c = meta_changes(cur, &self.owner, &self.group, &self.mode);
                if c.is_empty() {
                    Verdict::Unchanged
                } else {
                    Verdict::change(c.join(", "))
                }
            }
        }
    }

    pub fn apply(&self) -> String {
        let p = quote(&self.path);
        if !self.present {
            return format!("rm -rf -- {p}\n");
        }
        let mut s = format!("mkdir -p -- {p}\n");
        match (&self.owner, &self.group) {
            (Some(o), Some(g)) => {
                s.push_str(&format!("chown {} {p}\n", quote(&format!("{o}:{g}"))))
            }
            (Some(o), None) => s.push_str(&format!("chown {} {p}\n", quote(o))),
            (None, Some(g)) => s.push_str(&format!("chgrp {} {p}\n", quote(g))),
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

    fn dir() -> Directory {
        Directory::new(DirectoryArgs {
            path: "/opt/x".into(),
            owner: Some("app".into()),
            group: None,
            mode: Some(Num::Int(750)),
            state: None,
        })
        .unwrap()
    }

    #[test]
    fn fixtures() {
        let p = |l: &[&str]| Probe {
            lines: l.iter().map(|s| s.to_string()).collect(),
            rc: 0,
        };
        assert_eq!(dir().evaluate(&p(&["A"])), Verdict::change("create"));
        assert_eq!(dir().evaluate(&p(&["S app root 750"])), Verdict::Unchanged);
        assert_eq!(
            dir().evaluate(&p(&["S root root 755"])),
            Verdict::change("owner root -> app, mode 0755 -> 0750")
        );
        assert!(matches!(dir().evaluate(&p(&["F"])), Verdict::Fail(_)));
        assert_eq!(
            dir().apply(),
            "mkdir -p -- /opt/x\nchown app /opt/x\nchmod 0750 /opt/x\n"
        );
    }
}
