//! `wait_for`: a TCP port that accepts connections or a URL that answers with a status.
//! It is a barrier: after any earlier change in the same run it waits again (a restart may
//! have closed the port), and it reports "ok", never "changed", when it succeeds.

use super::{Num, Probe, Verdict};
use crate::script::quote;
use serde::Deserialize;

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

#[derive(Debug, Clone, PartialEq)]
pub struct WaitFor {
    pub target: Target,
    pub timeout: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Port { host: String, port: u16 },
    Url { url: String, status: u16 },
}

impl WaitFor {
    pub fn new(a: WaitForArgs) -> Result<WaitFor, String> {
        let timeout = a.timeout.map(|t| t.get()).transpose()?.unwrap_or(60);
        let target = match (a.port, a.url) {
            (Some(p), None) => {
                let port =
                    u16::try_from(p.get()?).map_err(|_| "port must be 1-65535".to_string())?;
                Target::Port {
                    host: a.host.unwrap_or_else(|| "127.0.0.1".into()),
                    port,
                }
            }
            (None, Some(url)) => {
                let status = u16::try_from(a.status.map(|s| s.get()).transpose()?.unwrap_or(200))
                    .map_err(|_| "bad status".to_string())?;
                Target::Url { url, status }
            }
            _ => return Err("wait_for needs either `port` or `url`".into()),
        };
        Ok(WaitFor { target, timeout })
    }

    fn probe(&self) -> String {
        match &self.target {
            Target::Port { host, port } => format!(
                "timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/{port}' 2>/dev/null",
                host = host.replace('\'', "")
            ),
            Target::Url { url, status } => {
                format!(
                    "[ \"$(curl -ks -o /dev/null -w '%{{http_code}}' --max-time 5 {})\" = {status} ]",
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

    pub fn check(&self) -> String {
        format!("if {}; then echo R; fi\n", self.probe())
    }

    pub fn evaluate(&self, probe: &Probe) -> Verdict {
        if probe.first("R").is_some() {
            Verdict::Unchanged
        } else {
            Verdict::change(format!("wait for {}", self.what()))
        }
    }

    pub fn apply(&self) -> String {
        format!(
            "end=$(( $(date +%s) + {t} ))\nuntil {p}; do\n  [ \"$(date +%s)\" -lt \"$end\" ] || __rl_fail \"{w} did not come up within {t} s\"\n  sleep 1\ndone\n",
            t = self.timeout,
            p = self.probe(),
            w = self.what().replace('"', "")
        )
    }
}
