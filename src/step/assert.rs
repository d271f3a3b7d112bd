//! `assert`: a read-only shell test that must succeed, else the host fails in the check
//! phase with the given message (preflight: OS release, CPU, memory, hostname).

use super::{Probe, Verdict};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertArgs {
    pub that: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assert {
    pub that: String,
    pub message: String,
}

impl Assert {
    pub fn new(a: AssertArgs) -> Assert {
        Assert {
            that: a.that,
            message: a.message,
        }
    }

    /// Prints `OK`, or `NO` followed by the test's own output (for the message).
    pub fn check(&self) -> String {
        format!(
            "if o=$( ( {}\n) 2>&1 </dev/null); then echo OK; else echo NO; printf '%s\\n' \"$o\" | tail -n 3 | sed 's/^/O /'; fi\n",
            self.that
        )
    }

    pub fn evaluate(&self, probe: &Probe) -> Verdict {
        if probe.first("OK").is_some() {
            return Verdict::Unchanged;
        }
        let detail: Vec<&str> = probe.tagged("O").filter(|l| !l.is_empty()).collect();
        if detail.is_empty() {
            Verdict::Fail(self.message.clone())
        } else {
            Verdict::Fail(format!("{} ({})", self.message, detail.join("; ")))
        }
    }

    pub fn apply(&self) -> String {
        String::new()
    }
}
