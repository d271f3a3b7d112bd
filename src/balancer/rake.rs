//! Scalelite through its rake tasks on the balancer host, over SSH: for pools whose
//! `/scalelite/api` is not reachable from the controller. Each operation is one script on
//! the host: the tasks, then `servers` to read the result back.
//!
//! Adding a node and changing its secret or load multiplier go through
//! `servers:sync[-,keep]` with a one-server document on rake's stdin, never through
//! `servers:add[url,secret]` / `servers:update[id,secret]`: those take the BBB secret as a
//! task argument, which every user of the balancer host could read in its process list. The
//! `keep` mode leaves every server missing from the document alone (the default mode,
//! `cordon`, would drain the rest of the pool). The document is JSON, which Scalelite's YAML
//! loader reads; it travels inside the script on the SSH session's stdin.
//!
//! Never `servers:disable` on a loaded server: it prompts for `yes` and then ends every
//! meeting. rollout cordons instead; Scalelite's poller disables a cordoned server itself once
//! its load is 0.

use super::{BalancerError, Desired, ErrorKind, Result, Server, State};
use crate::connection::{BoxFuture, Connector};
use crate::inventory::Host;
use crate::script::quote;
use crate::secret::Secrets;
use std::sync::Arc;

/// Scalelite driven by rake on its host over SSH. Each script (the tasks, then `servers`)
/// gets its own connection; `add` runs two, a read and then the change.
pub struct Rake {
    host: Host,
    command: String,
    connector: Arc<dyn Connector>,
    secrets: Secrets,
}

const MARK: &str = "__rollout_rake_servers__";
/// Ends a task's stdin document; a JSON document is one line and cannot contain it.
const EOF_MARK: &str = "__rollout_rake_stdin__";

/// One rake invocation: its task argument (never a secret) and what it reads on stdin.
struct Task {
    arg: String,
    stdin: Option<String>,
}

impl Task {
    fn plain(arg: String) -> Task {
        Task { arg, stdin: None }
    }

    /// `servers:sync[-,keep]` for one server: created with `id` when missing, else its url,
    /// secret, load multiplier and `enabled` set. `enabled: false` leaves a cordoned or
    /// disabled server as it is and keeps a new one disabled (Scalelite's `ServerSync`).
    fn sync(id: &str, url: &str, secret: &str, load_multiplier: f64, enabled: bool) -> Task {
        let doc = serde_json::json!({
            "servers": {
                id: {
                    "url": url,
                    "secret": secret,
                    "load_multiplier": load_multiplier,
                    "enabled": enabled,
                }
            }
        });
        Task {
            arg: "servers:sync[-,keep]".into(),
            stdin: Some(doc.to_string()),
        }
    }

    fn name(&self) -> &str {
        self.arg.split('[').next().unwrap_or(&self.arg)
    }
}

impl Rake {
    /// A client for Scalelite on `host`, running `command` (e.g. `docker exec -i
    /// scalelite-api bundle exec rake`) through `connector`; `secrets` redacts SSH and rake
    /// output. No connection is made yet.
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
    async fn run(&self, tasks: &[Task]) -> Result<(String, Vec<Server>)> {
        let mut script = String::from("set -e\nexport LC_ALL=C\n");
        for t in tasks {
            match &t.stdin {
                None => {
                    script.push_str(&format!("{} {} </dev/null\n", self.command, quote(&t.arg)))
                }
                Some(doc) => script.push_str(&format!(
                    "{} {} <<'{EOF_MARK}'\n{doc}\n{EOF_MARK}\n",
                    self.command,
                    quote(&t.arg)
                )),
            }
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
            let what = tasks.first().map_or("servers", Task::name);
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

/// The id a node gets when rollout adds it: its URL's host name, as Scalelite names servers
/// with `SERVER_ID_IS_HOSTNAME=true`, and `-PORT` when the URL has a port. `servers:sync`
/// accepts ids of `[a-zA-Z0-9_.-]` only; anything else becomes `-`.
fn server_id(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => (v6, None),
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let mut id: String = host
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '.' | '-' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    if let Some(p) = port.filter(|p| !p.is_empty()) {
        id.push('-');
        id.push_str(p);
    }
    id
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
            let tag =
                arg(&d.tag).map_err(|e| self.err(ErrorKind::Refused, format!("the tag {e}")))?;
            let id = server_id(&d.url);
            // servers:sync updates a server that already has this id: never take over
            // another node's entry.
            let (_, servers) = self.run(&[]).await?;
            if let Some(other) = servers.iter().find(|s| s.id == id && s.url != d.url) {
                return Err(self.err(
                    ErrorKind::Refused,
                    format!(
                        "cannot add {}: Scalelite already has a server with id {id} for {}; remove or rename it first",
                        d.url, other.url
                    ),
                ));
            }
            let mut tasks = vec![Task::sync(&id, &d.url, &d.secret, d.load_multiplier, false)];
            if !tag.is_empty() {
                tasks.push(Task::plain(format!("servers:tag[{id},{tag}]")));
            }
            let (_, servers) = self.run(&tasks).await?;
            self.by_id(servers, &id)
        })
    }

    fn update<'a>(&'a self, s: &'a Server, d: &'a Desired) -> BoxFuture<'a, Result<Server>> {
        Box::pin(async move {
            let tag =
                arg(&d.tag).map_err(|e| self.err(ErrorKind::Refused, format!("the tag {e}")))?;
            let mut tasks = vec![Task::sync(
                &s.id,
                &s.url,
                &d.secret,
                d.load_multiplier,
                s.state == State::Enabled,
            )];
            if s.tag != d.tag {
                tasks.push(Task::plain(if tag.is_empty() {
                    format!("servers:tag[{}]", s.id)
                } else {
                    format!("servers:tag[{},{tag}]", s.id)
                }));
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
            let task = Task::plain(format!("servers:{task}[{}]", s.id));
            let (_, servers) = self.run(&[task]).await?;
            self.by_id(servers, &s.id)
        })
    }
}

/// Reads `rake servers` (Scalelite's lib/tasks/servers.rake): `id: X`, then tab-indented `url: U`,
/// `secret: S`, the state, `load: L`, `load multiplier: M`, `online`/`offline` and, in
/// newer versions, `tag: T`. Unknown lines are skipped.
///
/// # Errors
/// A server without a `url:` line.
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
            servers.push(Server::new(id.trim(), "", State::Disabled));
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
        assert!(arg("a,b").is_err());
    }

    #[test]
    fn ids_come_from_the_url_host() {
        assert_eq!(
            server_id("https://BBB1.example.org/bigbluebutton/api"),
            "bbb1.example.org"
        );
        assert_eq!(
            server_id("http://127.0.0.1:18001/bigbluebutton/api/"),
            "127.0.0.1-18001"
        );
        assert_eq!(server_id("https://[fd00::5]:8443/b/api"), "fd00--5-8443");
        assert_eq!(server_id("https://u@x.example/api"), "x.example");
    }

    #[test]
    fn secrets_travel_on_stdin_not_in_arguments() {
        let t = Task::sync("n1", "https://n1/bigbluebutton/api", "s3cr,et]", 2.5, false);
        assert_eq!(t.arg, "servers:sync[-,keep]");
        let doc: serde_json::Value = serde_json::from_str(t.stdin.as_deref().unwrap()).unwrap();
        assert_eq!(doc["servers"]["n1"]["secret"], "s3cr,et]");
        assert_eq!(doc["servers"]["n1"]["load_multiplier"], 2.5);
        assert_eq!(doc["servers"]["n1"]["enabled"], false);
        assert!(!t.stdin.unwrap().contains('\n'));
    }
}
