//! `rollout exec`: Ansible's ad-hoc command (`ansible PATTERN -m command -a 'CMD ARGS'`).
//! One command runs on every selected host, at most `--forks` hosts at once, over the same
//! connections as `apply` (SSH with one ControlMaster per host, or the local shell; `sudo -n`
//! when the host's settings say `become`). As with Ansible's `command` module, no shell
//! re-reads the command: each word is quoted ([`crate::script::quote`]) into the script sent
//! on stdin, so `$(...)`, `*`, `;` and spaces reach the program as typed. The command gets no
//! stdin. Its output is shown per host, as each host ends, in the shape Ansible's ad-hoc
//! output has (`h01 | CHANGED | rc=0 >>`), every known secret redacted.
//!
//! Exit codes (rollout's, not Ansible's): 0 every host ran the command with rc 0; 1 at least
//! one host failed (rc other than 0) or was unreachable (Ansible: 2 and 4, from ansible-core's
//! `TaskQueueManager.RUN_FAILED_HOSTS`/`RUN_UNREACHABLE_HOSTS`); 2 bad input (inventory, an
//! empty command, a limit that selects no host) before any host is contacted.

use crate::app;
use crate::connection::{ConnError, Connector};
use crate::error::{Diagnostic, Exit};
use crate::inventory::Host;
use crate::report::summary::Summary;
use crate::script::{quote, whole_or_nothing};
use crate::secret::{Secrets, redact_known};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The most bytes of a command's stdout, and of its stderr, brought back from a host (1 MiB
/// each): the rest stays on the host and a line says it was cut.
pub const MAX_OUTPUT_BYTES: u64 = 1 << 20;

/// `rollout exec` stopped by Ctrl-C (SIGINT): exit 130, as shells report it. What it did to
/// the command still running on hosts, see [`script`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "rollout: interrupted. The command is stopped on the hosts where it still ran (SIGTERM \
     to its process group, SIGKILL {STOP_GRACE_SECONDS} s later); their output is lost."
)]
pub struct Interrupted;

/// What `rollout exec` runs and where.
#[derive(Debug, Clone)]
pub struct Request {
    /// The inventory, `--limit`, `--forks`, `--output` and connection options; tags and
    /// `--wait` do not apply.
    pub options: app::Options,
    /// The command and its arguments, each passed to the program as one word.
    pub argv: Vec<String>,
    /// `--retry-file`: where to write the hosts that failed (see [`crate::retry_file`]).
    pub retry_file: Option<PathBuf>,
}

/// How the command ended on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Ran with exit code 0 (Ansible: `CHANGED`, as the `command` module always reports).
    Changed,
    /// Ran with another exit code, or was killed by a signal (`rc` null).
    Failed,
    /// The host could not be reached, or the connection was lost.
    Unreachable,
}

/// One host's run of the command; all text redacted.
#[derive(Debug, Clone, Serialize)]
pub struct HostRun {
    pub host: String,
    pub status: Status,
    /// The command's exit code; `None` when it did not run to an end (unreachable, signal).
    pub rc: Option<i32>,
    /// Its standard output (at most [`MAX_OUTPUT_BYTES`], then a line saying it was cut).
    pub stdout: String,
    /// Its standard error, likewise.
    pub stderr: String,
    /// Why the host is unreachable, or why the command has no exit code (the remote side
    /// could not run it, such as sudo refusing; a signal ended it); `None` otherwise.
    pub reason: Option<String>,
    /// Wall time on this host, in seconds.
    pub seconds: f64,
}

impl HostRun {
    /// The block shown for the host, as Ansible's ad-hoc output (minimal callback) shows a
    /// `command` result: `HOST | CHANGED | rc=0 >>`, then stdout, then stderr.
    pub fn plain(&self) -> String {
        let head = match self.status {
            Status::Changed => format!("{} | CHANGED | rc=0 >>\n", self.host),
            Status::Failed => match (self.rc, &self.reason) {
                (Some(rc), _) => format!("{} | FAILED | rc={rc} >>\n", self.host),
                (None, Some(why)) => format!("{} | FAILED | rc=-1 >>\n{why}\n", self.host),
                (None, None) => format!("{} | FAILED | rc=-1 >>\n", self.host),
            },
            Status::Unreachable => {
                let reason = self.reason.as_deref().unwrap_or_default();
                return format!("{} | UNREACHABLE! >>\n{reason}\n", self.host);
            }
        };
        let mut out = head + &self.stdout;
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&self.stderr);
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

/// `rollout exec`'s result: every host in inventory order (JSON event `exec`).
#[derive(Debug, Clone, Serialize)]
pub struct ExecSummary {
    pub hosts: Vec<HostRun>,
}

impl Summary for ExecSummary {
    const EVENT: &'static str = "exec";
    /// The count line after the per-host blocks (which were shown as each host ended).
    fn plain(&self) -> String {
        let count = |s: Status| self.hosts.iter().filter(|h| h.status == s).count();
        let n = self.hosts.len();
        format!(
            "{n} host{}: {} ok, {} failed, {} unreachable\n",
            if n == 1 { "" } else { "s" },
            count(Status::Changed),
            count(Status::Failed),
            count(Status::Unreachable)
        )
    }
    fn exit(&self) -> Exit {
        Exit::failed_if(self.hosts.iter().any(|h| h.status != Status::Changed))
    }
}

impl ExecSummary {
    /// The hosts that failed or were unreachable, in inventory order (for the retry file).
    pub fn failed_hosts(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|h| h.status != Status::Changed)
            .map(|h| h.host.clone())
            .collect()
    }
}

/// Seconds between the SIGTERM and the SIGKILL a command gets when rollout goes away while it
/// runs (see [`script`]).
pub const STOP_GRACE_SECONDS: u32 = 5;

/// The script sent on the host's stdin: the command, each word quoted, without stdin, its
/// stdout and stderr kept in a private temporary folder and sent back at most
/// [`MAX_OUTPUT_BYTES`] each, then its exit code as the script's.
///
/// The command runs in a session (and process group) of its own (`setsid`, util-linux; where
/// it is missing, the command alone), and a watcher waits for the end of the script's stdin,
/// which rollout holds open while the command runs ([`Connection::run_attached`]). When rollout
/// goes away (Ctrl-C, killed, the connection lost), stdin ends, and the watcher sends SIGTERM
/// to the command's process group, then SIGKILL [`STOP_GRACE_SECONDS`] later: an ad-hoc
/// command (`tail -f`, `sleep`) never keeps running on the hosts after rollout has stopped.
/// When the command ends by itself, the watcher is stopped first.
///
/// [`Connection::run_attached`]: crate::connection::Connection::run_attached
pub fn script(argv: &[String]) -> String {
    let words: Vec<String> = argv.iter().map(|w| quote(w)).collect();
    let cut = |file: &str, to: &str| {
        format!(
            "head -c {MAX_OUTPUT_BYTES} \"$__rl_d/{file}\"{to}\n\
             if [ \"$(wc -c <\"$__rl_d/{file}\")\" -gt {MAX_OUTPUT_BYTES} ]; then printf '\\n[rollout: cut after {MAX_OUTPUT_BYTES} bytes]\\n'{to}; fi\n"
        )
    };
    let body = format!(
        "__rl_d=$(umask 077 && mktemp -d) || {{ echo 'rollout: cannot create a temporary folder for the output' >&2; exit 125; }}\n\
         __rl_w=\n\
         trap '[ -n \"$__rl_w\" ] && kill \"$__rl_w\" 2>/dev/null; rm -rf \"$__rl_d\"' EXIT\n\
         command -v {} >/dev/null 2>&1 || {{ printf '%s: command not found\\n' {} >&2; exit 127; }}\n\
         __rl_s=; command -v setsid >/dev/null 2>&1 && __rl_s=setsid\n\
         $__rl_s {} </dev/null >\"$__rl_d/o\" 2>\"$__rl_d/e\" &\n\
         __rl_p=$!\n\
         __rl_g=$__rl_p; [ -n \"$__rl_s\" ] && __rl_g=-$__rl_p\n\
         exec 3<&0\n\
         {{ IFS= read -r __rl_x; kill -TERM \"$__rl_g\" 2>/dev/null; sleep {STOP_GRACE_SECONDS}; kill -KILL \"$__rl_g\" 2>/dev/null; }} <&3 >/dev/null 2>&1 &\n\
         __rl_w=$!\n\
         exec 3<&-\n\
         wait \"$__rl_p\"\n\
         __rl_rc=$?\n\
         {}{}exit \"$__rl_rc\"",
        words[0],
        words[0],
        words.join(" "),
        cut("o", ""),
        cut("e", " >&2"),
    );
    whole_or_nothing(&body)
}

/// Text from a host as it may be printed: secrets redacted (the run's set, then every value
/// this process has read, in any case), control characters other than newline and tab shown
/// as escapes (an ESC sequence would repaint the operator's terminal).
fn shown(secrets: &Secrets, text: &str) -> String {
    redact_known(&secrets.redact(text))
        .chars()
        .map(|c| match c {
            '\n' | '\t' => c.to_string(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Runs the command on one host.
async fn run_host(
    host: &Host,
    connector: &dyn Connector,
    script: &str,
    secrets: &Secrets,
) -> HostRun {
    let started = Instant::now();
    let mut run = HostRun {
        host: host.name.clone(),
        status: Status::Unreachable,
        rc: None,
        stdout: String::new(),
        stderr: String::new(),
        reason: None,
        seconds: 0.0,
    };
    let result = match connector.connect(host).await {
        Ok(conn) => {
            let r = conn.run_attached(script, &mut |_| {}).await;
            conn.close().await;
            r
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(f) => {
            run.rc = f.code;
            run.status = if f.code == Some(0) {
                Status::Changed
            } else {
                Status::Failed
            };
            if f.code.is_none() {
                run.reason = Some("the command was ended by a signal".into());
            }
            run.stdout = shown(secrets, &f.stdout);
            run.stderr = shown(secrets, &f.stderr);
        }
        Err(ConnError::Unreachable(m)) => run.reason = Some(shown(secrets, &m)),
        Err(ConnError::Remote(m)) => {
            run.status = Status::Failed;
            run.reason = Some(shown(secrets, &m));
        }
    }
    run.seconds = started.elapsed().as_secs_f64();
    run
}

/// Runs `argv` on `hosts` with `connector`, at most `forks` at once; `each` is called with
/// every host's run as it ends. Returns the runs in the order of `hosts`.
pub async fn run(
    hosts: Vec<Host>,
    connector: Arc<dyn Connector>,
    argv: &[String],
    forks: usize,
    secrets: &Secrets,
    mut each: impl FnMut(&HostRun),
) -> ExecSummary {
    let script = Arc::new(script(argv));
    let forks = Arc::new(tokio::sync::Semaphore::new(forks.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let n = hosts.len();
    for (i, host) in hosts.into_iter().enumerate() {
        let (forks, connector, script, secrets) = (
            forks.clone(),
            connector.clone(),
            script.clone(),
            secrets.clone(),
        );
        set.spawn(async move {
            let _permit = forks.acquire_owned().await.expect("semaphore never closed");
            (
                i,
                run_host(&host, connector.as_ref(), &script, &secrets).await,
            )
        });
    }
    let mut runs: Vec<Option<HostRun>> = vec![None; n];
    while let Some(r) = set.join_next().await {
        let (i, run) = r.expect("host task panicked");
        each(&run);
        runs[i] = Some(run);
    }
    ExecSummary {
        hosts: runs
            .into_iter()
            .map(|r| r.expect("every host reports"))
            .collect(),
    }
}

/// Checks the request before anything is contacted.
///
/// # Errors
/// An empty command (or an empty program name), or a word with a NUL byte, as a diagnostic
/// naming the inventory file the command was given with.
pub fn validate(r: &Request) -> Result<(), Vec<Diagnostic>> {
    let at = |m: &str| vec![Diagnostic::file(r.options.named(), m)];
    match r.argv.first() {
        None => Err(at("exec: no command given (write it after `--`)")),
        Some(p) if p.trim().is_empty() => Err(at("exec: the command's program name is empty")),
        _ if r.argv.iter().any(|w| w.contains('\0')) => {
            Err(at("exec: a word of the command holds a NUL byte"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Format;

    /// Runs the script in `sh` as rollout does: its stdin held open until the script has
    /// ended (a closed stdin means rollout went away, and the watcher stops the command).
    fn run_held(script: &str) -> std::process::Output {
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let held = child.stdin.take();
        let out = child.wait_with_output().unwrap();
        drop(held);
        out
    }

    #[test]
    fn each_word_is_quoted_and_nothing_is_expanded() {
        let s = script(&["echo".into(), "a b".into(), "$(id)".into(), "it's".into()]);
        assert!(
            s.contains("echo 'a b' '$(id)' 'it'\\''s' </dev/null >"),
            "{s}"
        );
    }

    #[test]
    fn the_script_runs_the_words_as_given_in_sh() {
        let argv: Vec<String> = ["printf", "[%s]\\n", "a b", "$(echo x)", "*", ";", "a=b"]
            .map(String::from)
            .to_vec();
        let out = run_held(&script(&argv));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "[a b]\n[$(echo x)]\n[*]\n[;]\n[a=b]\n"
        );
        assert_eq!(out.status.code(), Some(0));
        let out = run_held(&script(&[
            "sh".into(),
            "-c".into(),
            "echo err >&2; exit 7".into(),
        ]));
        assert_eq!(out.status.code(), Some(7));
        assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
        // A program that is not there: one plain line, as a shell says it, and 127.
        let out = run_held(&script(&["rollout-no-such-program".into(), "a".into()]));
        assert_eq!(out.status.code(), Some(127));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "rollout-no-such-program: command not found\n"
        );
    }

    #[test]
    fn output_beyond_the_limit_stays_on_the_host() {
        let argv: Vec<String> = [
            "sh",
            "-c",
            "yes | head -c 1100000; yes | head -c 1100000 >&2",
        ]
        .map(String::from)
        .to_vec();
        let out = run_held(&script(&argv));
        let cut = format!("\n[rollout: cut after {MAX_OUTPUT_BYTES} bytes]\n");
        for stream in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(stream);
            assert_eq!(text.len(), MAX_OUTPUT_BYTES as usize + cut.len());
            assert!(text.ends_with(&cut));
        }
        assert_eq!(out.status.code(), Some(0));
    }

    #[test]
    fn output_is_redacted_and_control_characters_escaped() {
        let secrets = Secrets::new(vec!["hunter2secret".into()]);
        assert_eq!(
            shown(&secrets, "pw=hunter2secret\t\u{1b}[2J\n"),
            "pw=<redacted>\t\\u{1b}[2J\n"
        );
    }

    #[test]
    fn blocks_read_as_ansibles_ad_hoc_output() {
        let run = |status, rc, stdout: &str, stderr: &str, reason: Option<&str>| HostRun {
            host: "h1".into(),
            status,
            rc,
            stdout: stdout.into(),
            stderr: stderr.into(),
            reason: reason.map(String::from),
            seconds: 0.1,
        };
        assert_eq!(
            run(Status::Changed, Some(0), "up 3 days\n", "", None).plain(),
            "h1 | CHANGED | rc=0 >>\nup 3 days\n"
        );
        assert_eq!(
            run(Status::Failed, Some(2), "out", "err\n", None).plain(),
            "h1 | FAILED | rc=2 >>\nout\nerr\n"
        );
        assert_eq!(
            run(
                Status::Failed,
                None,
                "",
                "",
                Some("sudo: a password is required")
            )
            .plain(),
            "h1 | FAILED | rc=-1 >>\nsudo: a password is required\n"
        );
        assert_eq!(
            run(Status::Unreachable, None, "", "", Some("refused")).plain(),
            "h1 | UNREACHABLE! >>\nrefused\n"
        );
    }

    fn host(name: &str) -> Host {
        Host::named(name)
    }

    /// Over the recording fake: every reachable host gets exactly the quoted script, once;
    /// an unreachable host is reported as such; output is redacted; results come back in
    /// host order while `each` sees every host once.
    #[tokio::test]
    async fn runs_the_script_once_per_host_over_the_connector() {
        let mut fake = crate::connection::fake::FakeConnector::new(|host, _script| {
            Ok(format!("{host} says hunter2secret\n"))
        });
        fake.unreachable = vec!["h2".into()];
        let argv: Vec<String> = vec!["echo".into(), "a b".into()];
        let secrets = Secrets::new(vec!["hunter2secret".into()]);
        let mut seen = Vec::new();
        let s = run(
            vec![host("h1"), host("h2"), host("h3")],
            Arc::new(fake.clone()),
            &argv,
            2,
            &secrets,
            |h| seen.push(h.host.clone()),
        )
        .await;
        seen.sort();
        assert_eq!(seen, ["h1", "h2", "h3"]);
        let got: Vec<(&str, Status)> = s
            .hosts
            .iter()
            .map(|h| (h.host.as_str(), h.status))
            .collect();
        assert_eq!(
            got,
            [
                ("h1", Status::Changed),
                ("h2", Status::Unreachable),
                ("h3", Status::Changed)
            ]
        );
        assert_eq!(s.hosts[0].stdout, "h1 says <redacted>\n");
        assert_eq!(fake.scripts("h1"), [script(&argv)]);
        assert!(fake.scripts("h2").is_empty());
        assert_eq!(s.failed_hosts(), ["h2"]);
        assert_eq!(s.exit(), Exit::Failed);
    }

    #[test]
    fn an_empty_command_is_bad_input() {
        let options = crate::app::Options {
            inventory: "inv.yml".into(),
            ansible_inventory: vec![],
            vault_password_file: None,
            become_password: None,
            vault_ids: vec![],
            limit: None,
            tags: vec![],
            skip_tags: vec![],
            forks: 1,
            extra_vars: vec![],
            output: Format::Plain,
            verbose: false,
            accept_new_host_keys: false,
            lock_wait: None,
        };
        let r = |argv: &[&str]| Request {
            options: options.clone(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            retry_file: None,
        };
        assert!(validate(&r(&[])).is_err());
        assert!(validate(&r(&[" "])).is_err());
        assert!(validate(&r(&["uptime"])).is_ok());
    }
}
