//! `command`: a shell script guarded by `creates` (a path that exists once it ran) or
//! `unless` (a read-only shell check that succeeds when nothing needs doing). Unguarded
//! commands are only allowed as handlers, so a re-run reports zero changes.

use super::{Probe, Use, Verdict};
use crate::script::quote;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandArgs {
    pub run: String,
    pub creates: Option<String>,
    pub unless: Option<String>,
    pub chdir: Option<String>,
}

pub fn validate_use(args: &serde_json::Value, usage: Use) -> Result<(), String> {
    if usage == Use::Step && args.get("creates").is_none() && args.get("unless").is_none() {
        return Err("a command step needs `creates:` or `unless:` so that a second run changes nothing (unguarded commands belong in handlers)".into());
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub run: String,
    pub creates: Option<String>,
    pub unless: Option<String>,
    pub chdir: Option<String>,
}

impl Command {
    pub fn new(a: CommandArgs) -> Result<Command, String> {
        Ok(Command {
            run: a.run,
            creates: a.creates,
            unless: a.unless,
            chdir: a.chdir,
        })
    }

    pub fn check(&self) -> String {
        let mut s = String::new();
        if let Some(c) = &self.creates {
            s.push_str(&format!("if [ -e {} ]; then echo C; fi\n", quote(c)));
        }
        if let Some(u) = &self.unless {
            s.push_str(&format!("( {u}\n) >/dev/null 2>&1 </dev/null && echo U\n"));
        }
        s.push_str("true\n");
        s
    }

    pub fn evaluate(&self, probe: &Probe) -> Verdict {
        if probe.first("C").is_some() || probe.first("U").is_some() {
            return Verdict::Unchanged;
        }
        let first = self
            .run
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let more = if self.run.trim().lines().count() > 1 {
            " ..."
        } else {
            ""
        };
        Verdict::change(format!("run `{first}`{more}"))
    }

    pub fn apply(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.chdir {
            s.push_str(&format!("cd {}\n", quote(d)));
        }
        s.push_str(&self.run);
        s.push('\n');
        s
    }
}
