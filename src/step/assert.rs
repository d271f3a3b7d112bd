//! `assert`: a read-only shell test that must succeed, else the host fails in the check
//! phase with the given message (preflight: OS release, CPU, memory, hostname).

use super::error::StepError;
use super::facts::CheckOutput;
use super::kind::{Context, Kind, Resolve, Verdict};
use serde::Deserialize;

/// The arguments of an `assert` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertArgs {
    pub that: String,
    pub message: String,
}

/// An assert step for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Assert {
    pub that: String,
    pub message: String,
}

/// What the test said: whether it passed, and the last lines of its output if not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssertFacts {
    pub passed: bool,
    pub output: Vec<String>,
}

impl Kind for Assert {
    const NAME: &'static str = "assert";
    const MAY_BLOCK: bool = false;
    type Args = AssertArgs;
    type Facts = AssertFacts;

    fn new(a: AssertArgs, _: &Resolve) -> Result<Assert, StepError> {
        Ok(Assert {
            that: a.that,
            message: a.message,
        })
    }

    /// `passed`, or `failed` then `output LINE` per line of the test's last three.
    fn check(&self) -> String {
        format!(
            "if o=$( ( {}\n) 2>&1 </dev/null); then echo passed; else echo failed; printf '%s\\n' \"$o\" | tail -n 3 | sed 's/^/output /'; fi\n",
            self.that
        )
    }

    fn read(&self, out: &CheckOutput) -> AssertFacts {
        AssertFacts {
            passed: out.has("passed"),
            output: out.values("output").map(String::from).collect(),
        }
    }

    fn evaluate(&self, facts: &AssertFacts, _: &Context) -> Verdict {
        if facts.passed {
            return Verdict::Unchanged;
        }
        let detail: Vec<&str> = facts
            .output
            .iter()
            .map(String::as_str)
            .filter(|l| !l.is_empty())
            .collect();
        if detail.is_empty() {
            Verdict::Fail(self.message.clone())
        } else {
            Verdict::Fail(format!("{} ({})", self.message, detail.join("; ")))
        }
    }

    fn apply(&self) -> String {
        String::new()
    }
}
