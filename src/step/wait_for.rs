//! `wait_for`: a TCP port that accepts connections or a URL that answers with a status.
//! It is a barrier: after any earlier change in the same run it waits again (a restart may
//! have closed the port), and it reports "ok", never "changed", when it succeeds.

use super::args::Num;
use super::error::{ArgError, StepError, Field};
use super::facts::{CheckOutput, Gather, Gathered};
use super::kind::{Context, Kind, Resolve, Verdict};
use crate::script::quote;
use serde::Deserialize;

/// The longest a barrier may wait, in seconds (a day): longer is a typo, and far longer
/// would overflow the step's own timeout.
const MAX_WAIT: u64 = 86_400;

/// The arguments of a `wait_for` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitForArgs {
    pub port: Option<Num>,
    pub host: Option<String>,
    pub url: Option<String>,
    /// Expected HTTP status for `url`; default 200.
    pub status: Option<Num>,
    /// Seconds; default 60.
    pub timeout: Option<Num>,
}

/// A wait_for step for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitFor {
    pub target: Target,
    /// Seconds.
    pub timeout: u64,
}

/// What to wait for.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Port { host: String, port: u16 },
    Url { url: String, status: u16 },
}

/// What the check found: whether the target is ready.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitForFacts {
    pub ready: bool,
}

impl WaitFor {
    /// A test that succeeds when the target answers. The host and the URL are words of
    /// their own: the host a positional parameter of the inner bash (its `/dev/tcp`), the
    /// URL after `--url`, so neither is parsed as shell or taken for an option.
    fn ready_test(&self) -> String {
        match &self.target {
            Target::Port { host, port } => format!(
                "timeout 3 bash -c 'exec 3<>\"/dev/tcp/$1/$2\"' rollout-wait {} {port} 2>/dev/null",
                quote(host)
            ),
            Target::Url { url, status } => {
                format!(
                    "[ \"$(curl -ks -o /dev/null -w '%{{http_code}}' --max-time 5 --url {})\" = {status} ]",
                    quote(url)
                )
            }
        }
    }

    fn what(&self) -> String {
        match &self.target {
            Target::Port { host, port } => format!("port {port} on {host}"),
            Target::Url { url, status } => format!("{url} to answer {status}"),
        }
    }
}

impl Kind for WaitFor {
    const NAME: &'static str = "wait_for";
    const MAY_BLOCK: bool = true;
    const BARRIER: bool = true;
    type Args = WaitForArgs;
    type Facts = WaitForFacts;

    fn new(a: WaitForArgs, _: &Resolve) -> Result<WaitFor, StepError> {
        let timeout = a.timeout.map(|t| t.get()).transpose().field("timeout")?.unwrap_or(60);
        if timeout > MAX_WAIT {
            return Err(ArgError::Seconds {
                field: "timeout",
                value: timeout,
                min: 0,
                max: MAX_WAIT,
            }
            .into());
        }
        let target = match (a.port, a.url) {
            (Some(p), None) => Target::Port {
                port: p
                    .get()
                    .ok()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        ArgError::Port(match p {
                            Num::Int(n) => n.to_string(),
                            Num::Text(t) => t,
                        })
                    })?,
                host: a.host.unwrap_or_else(|| "127.0.0.1".into()),
            },
            (None, Some(url)) => {
                let status = a.status.map(|s| s.get()).transpose().field("status")?.unwrap_or(200);
                let status = u16::try_from(status).map_err(|_| ArgError::Status)?;
                Target::Url { url, status }
            }
            _ => return Err(ArgError::WaitForTarget.into()),
        };
        Ok(WaitFor { target, timeout })
    }

    fn default_timeout(&self) -> u64 {
        self.timeout.saturating_add(10)
    }

    /// `ready` when the target answers.
    fn check(&self) -> String {
        format!("if {}; then echo ready; fi\n", self.ready_test())
    }

    /// A port is gathered (one `bash` tries all of a host's ports at once); a URL runs its
    /// own check.
    fn gather(&self) -> Option<Gather<'_>> {
        match &self.target {
            Target::Port { host, port } => Some(Gather::Port { host, port: *port }),
            Target::Url { .. } => None,
        }
    }

    fn gathered(&self, g: &Gathered) -> Option<WaitForFacts> {
        match &self.target {
            Target::Port { host, port } => g.port(host, *port).map(|ready| WaitForFacts { ready }),
            Target::Url { .. } => None,
        }
    }

    fn read(&self, out: &CheckOutput) -> WaitForFacts {
        WaitForFacts {
            ready: out.has("ready"),
        }
    }

    fn evaluate(&self, facts: &WaitForFacts, _: &Context) -> Verdict {
        if facts.ready {
            Verdict::Unchanged
        } else {
            Verdict::change(format!("wait for {}", self.what()))
        }
    }

    fn apply(&self) -> String {
        format!(
            "end=$(( $(date +%s) + {t} ))\nuntil {p}; do\n  [ \"$(date +%s)\" -lt \"$end\" ] || __rl_fail {w}\n  sleep 1\ndone\n",
            t = self.timeout,
            p = self.ready_test(),
            w = quote(&format!("{} did not come up within {} s", self.what(), self.timeout))
        )
    }
}
