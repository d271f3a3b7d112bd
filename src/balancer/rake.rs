//! Scalelite through its rake tasks on the balancer host, over SSH: for pools whose
//! `/scalelite/api` is not reachable from the controller. Each operation is one script on
//! the host: the task (`servers:add`, `servers:update`, `servers:tag`, `servers:enable`,
//! `servers:cordon`), then `servers` to read the result back.
//!
//! Never `servers:disable` on a loaded server: it prompts for `yes` and then ends every
//! meeting. rollout cordons instead; Scalelite's poller disables a cordoned server itself once
//! its load is 0. Caveat: rake takes the BBB secret as a task argument, so it is visible in
//! the balancer host's process list while the task runs.

use super::{BalancerError, Desired, ErrorKind, Result, Server, State};
use crate::connection::{BoxFuture, Connector};
use crate::inventory::Host;
use crate::script::quote;
use crate::secret::Secrets;
use std::sync::Arc;

pub struct Rake {
    host: Host,
    command: String,
    connector: Arc<dyn Connector>,
    secrets: Secrets,
}

const MARK: &str = "__rollout_rake_servers__";

impl Rake {
    pub fn new(
        host: Host,
        command: String,
        connector: Arc<dyn Connector>,
        secrets: Secrets,
    ) -> Rake {
        Rake {
            host,
            command,
            connector,
            secrets,
        }
    }

    fn err(&self, kind: ErrorKind, msg: String) -> BalancerError {
        BalancerError::new(kind, format!("Scalelite rake on {}: {msg}", self.host.name))
    }

    /// Runs `tasks` (each one rake invocation), then `servers`; returns the parsed list.
    async fn run(&self, tasks: &[String]) -> Result<(String, Vec<Server>)> {
        let mut script = String::from("set -e\nexport LC_ALL=C\n");
        for t in tasks {
            script.push_str(&format!("{} {} </dev/null\n", self.command, quote(t)));
        }
        script.push_str(&format!(
            "echo {MARK}\n{} servers </dev/null\n",
            self.command
        ));
        let conn =
            self.connector.connect(&self.host).await.map_err(|e| {
                self.err(ErrorKind::Unreachable, self.secrets.redact(&e.to_string()))
            })?;
        let out = conn.run(&script, &mut |_| {}).await;
        conn.close().await;
        let out =
            out.map_err(|e| self.err(ErrorKind::Unreachable, self.secrets.redact(&e.to_string())))?;
        let (before, after) = out.stdout.split_once(MARK).unwrap_or((&out.stdout, ""));
        if out.code != Some(0) {
            let detail = sanitize(&format!("{before}\n{after}\n{}", out.stderr), &self.secrets);
            let what = tasks.first().map_or("servers".to_string(), |t| {
                t.split('[').next().unwrap_or(t).to_string()
            });
            return Err(self.err(
                ErrorKind::Refused,
                format!("rake {what} failed (exit code {:?}): {detail}", out.code),
            ));
        }
        let servers = parse_servers(after).map_err(|m| {
            self.err(
                ErrorKind::Malformed,
                format!("cannot read the output of rake servers: {m}"),
            )
        })?;
        Ok((before.to_string(), servers))
    }

    fn by_id(&self, servers: Vec<Server>, id: &str) -> Result<Server> {
        servers.into_iter().find(|s| s.id == id).ok_or_else(|| {
            self.err(
                ErrorKind::Malformed,
                format!("server {id} is missing from rake servers"),
            )
        })
    }
}

/// Rake arguments are split at commas and end at `]`.
fn arg(s: &str) -> std::result::Result<&str, String> {
    if s.contains([',', '[', ']']) {
        Err("contains a comma or a bracket, which rake task arguments cannot carry".into())
    } else {
        Ok(s)
    }
}

fn multiplier(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.1}")
    } else {
        x.to_string()
    }
}

impl super::Balancer for Rake {
    fn describe(&self) -> String {
        format!("Scalelite via rake on {}", self.host.name)
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Server>>> {
        Box::pin(async move { Ok(self.run(&[]).await?.1) })
    }

    fn add<'a>(&'a self, d: &'a Desired) -> BoxFuture<'a, Result<Server>> {
        Box::pin(async move {
            let (url, secret, tag) = (arg(&d.url), arg(&d.secret), arg(&d.tag));
            let (url, secret, tag) = match (url, secret, tag) {
                (Ok(u), Ok(s), Ok(t)) => (u, s, t),
                (Err(e), _, _) => return Err(self.err(ErrorKind::Refused, format!("the URL {e}"))),
                (_, Err(e), _) => {
                    return Err(self.err(ErrorKind::Refused, format!("the secret {e}")));
                }
                (_, _, Err(e)) => return Err(self.err(ErrorKind::Refused, format!("the tag {e}"))),
            };
            let mut tasks = vec![format!(
                "servers:add[{url},{secret},{}]",
                multiplier(d.load_multiplier)
            )];
            let (out, servers) = self.run(&tasks).await?;
            let id = out
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("id:"))
                .map(|s| s.trim().to_string());
            let Some(id) = id else {
                return Err(self.err(
                    ErrorKind::Malformed,
                    "rake servers:add printed no id".into(),
                ));
            };
            if !tag.is_empty() {
                tasks = vec![format!("servers:tag[{id},{tag}]")];
                let (_, servers) = self.run(&tasks).await?;
                return self.by_id(servers, &id);
            }
            self.by_id(servers, &id)
        })
    }

    fn update<'a>(&'a self, s: &'a Server, d: &'a Desired) -> BoxFuture<'a, Result<Server>> {
        Box::pin(async move {
            let secret = arg(&d.secret)
                .map_err(|e| self.err(ErrorKind::Refused, format!("the secret {e}")))?;
            let tag =
                arg(&d.tag).map_err(|e| self.err(ErrorKind::Refused, format!("the tag {e}")))?;
            let mut tasks = vec![format!(
                "servers:update[{},{secret},{}]",
                s.id,
                multiplier(d.load_multiplier)
            )];
            if s.tag != d.tag {
                tasks.push(if tag.is_empty() {
                    format!("servers:tag[{}]", s.id)
                } else {
                    format!("servers:tag[{},{tag}]", s.id)
                });
            }
            let (_, servers) = self.run(&tasks).await?;
            self.by_id(servers, &s.id)
        })
    }

    fn set_state<'a>(&'a self, s: &'a Server, to: State) -> BoxFuture<'a, Result<Server>> {
        Box::pin(async move {
            let task = match to {
                State::Enabled => "enable",
                State::Cordoned => "cordon",
                State::Disabled if s.load.is_some_and(|l| l > 0.0) => {
                    return Err(self.err(
                        ErrorKind::Refused,
                        format!("refusing rake servers:disable on server {} while it carries load (it would end every meeting); cordon it instead", s.id),
                    ));
                }
                State::Disabled => "disable",
            };
            let (_, servers) = self.run(&[format!("servers:{task}[{}]", s.id)]).await?;
            self.by_id(servers, &s.id)
        })
    }
}

/// Reads `rake servers` (lib/tasks/servers.rake): `id: X`, then tab-indented `url: U`,
/// `secret: S`, the state, `load: L`, `load multiplier: M`, `online`/`offline` and, in
/// newer versions, `tag: T`.
pub fn parse_servers(out: &str) -> std::result::Result<Vec<Server>, String> {
    let mut servers: Vec<Server> = Vec::new();
    for line in out.lines() {
        let t = line.trim();
        if t.is_empty() || t == "No servers are configured" {
            continue;
        }
        if let Some(id) = t
            .strip_prefix("id:")
            .filter(|_| !line.starts_with(char::is_whitespace))
        {
            servers.push(Server {
                id: id.trim().to_string(),
                url: String::new(),
                secret: String::new(),
                state: State::Disabled,
                online: None,
                load: None,
                load_multiplier: 1.0,
                tag: String::new(),
                bbb_version: None,
                meetings: None,
                participants: None,
            });
            continue;
        }
        let Some(s) = servers.last_mut() else {
            continue;
        };
        match t.split_once(':').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("url", v)) => s.url = v.to_string(),
            Some(("secret", v)) => s.secret = v.to_string(),
            Some(("load", v)) => s.load = v.parse().ok(),
            Some(("load multiplier", v)) => s.load_multiplier = v.parse().unwrap_or(1.0),
            Some(("tag", v)) => s.tag = v.to_string(),
            Some(_) => {}
            None => match t {
                "enabled" => s.state = State::Enabled,
                "cordoned" => s.state = State::Cordoned,
                "disabled" => s.state = State::Disabled,
                "online" => s.online = Some(true),
                "offline" => s.online = Some(false),
                _ => {}
            },
        }
    }
    if let Some(s) = servers.iter().find(|s| s.url.is_empty()) {
        return Err(format!("server {} has no url line", s.id));
    }
    Ok(servers)
}

/// The last lines of rake's output for an error message: no line that names a secret.
fn sanitize(out: &str, secrets: &Secrets) -> String {
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.to_lowercase().contains("secret"))
        .collect();
    secrets.redact(&lines[lines.len().saturating_sub(4)..].join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rake_servers_output() {
        let out = "id: a1\n\turl: https://n1/bigbluebutton/api\n\tsecret: s\n\tcordoned\n\tload: 12.0\n\tload multiplier: 2.0\n\tonline\n\
                   id: b2\n\turl: https://n2/bigbluebutton/api\n\tsecret: t\n\tenabled\n\tload: unavailable\n\tload multiplier: 1.0\n\toffline\n\ttag: x\n";
        let s = parse_servers(out).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].state, s[0].load, s[0].load_multiplier, s[0].online),
            (State::Cordoned, Some(12.0), 2.0, Some(true))
        );
        assert_eq!(
            (s[1].state, s[1].load, s[1].online, s[1].tag.as_str()),
            (State::Enabled, None, Some(false), "x")
        );
        assert!(
            parse_servers("No servers are configured\n")
                .unwrap()
                .is_empty()
        );
        assert_eq!(multiplier(1.0), "1.0");
        assert!(arg("a,b").is_err());
    }
}
