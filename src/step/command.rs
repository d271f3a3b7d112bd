//! `command`: a shell script guarded by `creates` (a path that exists once it ran) or
//! `unless` (a read-only shell check that succeeds when nothing needs doing). Unguarded
//! commands are only allowed as handlers, so a re-run reports zero changes.

use super::args::absolute;
use super::error::{ArgError, StepError};
use super::facts::CheckOutput;
use super::kind::{Context, Kind, Resolve, Use, Verdict};
use crate::script::quote;
use serde::Deserialize;

/// The arguments of a `command` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandArgs {
    pub run: String,
    pub creates: Option<String>,
    pub unless: Option<String>,
    pub chdir: Option<String>,
}

/// A command step for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub run: String,
    pub creates: Option<String>,
    pub unless: Option<String>,
    pub chdir: Option<String>,
}

/// What a command's guards found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandFacts {
    /// The `creates` path exists.
    pub created: bool,
    /// The `unless` check succeeded.
    pub unless_passed: bool,
}

impl Kind for Command {
    const NAME: &'static str = "command";
    const MAY_BLOCK: bool = true;
    type Args = CommandArgs;
    type Facts = CommandFacts;

    fn validate_use(a: &CommandArgs, usage: Use) -> Result<(), ArgError> {
        if usage == Use::Step && a.creates.is_none() && a.unless.is_none() {
            return Err(ArgError::Unguarded);
        }
        Ok(())
    }

    fn new(a: CommandArgs, _: &Resolve) -> Result<Command, StepError> {
        Ok(Command {
            run: a.run,
            creates: a.creates.map(|p| absolute("creates", p)).transpose()?,
            unless: a.unless,
            chdir: a.chdir.map(|p| absolute("chdir", p)).transpose()?,
        })
    }

    fn default_timeout(&self) -> u64 {
        600
    }

    /// `created` when the `creates` path exists, `unless-passed` when `unless` succeeds.
    fn check(&self) -> String {
        let mut s = String::new();
        if let Some(c) = &self.creates {
            s.push_str(&format!("if [ -e {} ]; then echo created; fi\n", quote(c)));
        }
        if let Some(u) = &self.unless {
            s.push_str(&format!(
                "( {u}\n) >/dev/null 2>&1 </dev/null && echo unless-passed\n"
            ));
        }
        s.push_str("true\n");
        s
    }

    fn read(&self, out: &CheckOutput) -> CommandFacts {
        CommandFacts {
            created: out.has("created"),
            unless_passed: out.has("unless-passed"),
        }
    }

    fn evaluate(&self, facts: &CommandFacts, _: &Context) -> Verdict {
        if facts.created || facts.unless_passed {
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

    fn apply(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.chdir {
            s.push_str(&format!("cd -- {}\n", quote(d)));
        }
        s.push_str(&self.run);
        s.push('\n');
        s
    }
}
