//! System OpenSSH through the `openssh` crate's native multiplexing: one ControlMaster per
//! host, every script a new channel on it. Respects `~/.ssh/config` (or the inventory's
//! `ssh_config`), the agent, ProxyJump and known_hosts; host keys are checked strictly unless
//! the operator opts in to accepting new ones.

use super::{BoxFuture, ConnError, Connection, Connector, Finished, Stdin, pump, shell_argv};
use crate::inventory::Host;
use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use std::path::PathBuf;
use std::time::Duration;

/// Opens an SSH ControlMaster per connect; see the module doc.
pub struct SshConnector {
    /// An ssh_config file used instead of `~/.ssh/config`, when the inventory names one.
    pub ssh_config: Option<PathBuf>,
    /// Adds unknown host keys to known_hosts (`StrictHostKeyChecking=accept-new`) instead of
    /// refusing them; a changed key is refused either way.
    pub accept_new_host_keys: bool,
    /// How long connecting may take (ssh's `ConnectTimeout`; 10 s from [`SshConnector::new`]).
    pub connect_timeout: Duration,
    /// Limits concurrent handshakes (sshd's MaxStartups, CPU on 2-core controllers).
    pub handshakes: tokio::sync::Semaphore,
    /// The become password (a secret), sent as the first two lines on stdin to the hosts that
    /// [`super::sends_become_password`]; `None` from [`SshConnector::new`].
    pub become_password: Option<std::sync::Arc<str>>,
}

impl SshConnector {
    /// A connector with a 10 s connect timeout and at most 32 handshakes at once.
    pub fn new(ssh_config: Option<PathBuf>, accept_new_host_keys: bool) -> SshConnector {
        SshConnector {
            ssh_config,
            accept_new_host_keys,
            connect_timeout: Duration::from_secs(10),
            handshakes: tokio::sync::Semaphore::new(32),
            become_password: None,
        }
    }
}

impl Connector for SshConnector {
    fn connect<'a>(
        &'a self,
        host: &'a Host,
    ) -> BoxFuture<'a, Result<Box<dyn Connection>, ConnError>> {
        Box::pin(async move {
            let mut b = SessionBuilder::default();
            b.known_hosts_check(if self.accept_new_host_keys {
                KnownHosts::Add
            } else {
                KnownHosts::Strict
            })
            .connect_timeout(self.connect_timeout)
            .server_alive_interval(Duration::from_secs(5))
            .control_directory(std::env::temp_dir())
            // A master outlives rollout only briefly if rollout is killed.
            .control_persist(ControlPersist::IdleFor(
                std::num::NonZeroUsize::new(30).expect("non-zero"),
            ));
            if let Some(c) = &self.ssh_config {
                b.config_file(c);
            }
            if let Some(u) = &host.user {
                b.user(u.clone());
            }
            if let Some(p) = host.port {
                b.port(p);
            }
            let _permit = self
                .handshakes
                .acquire()
                .await
                .expect("semaphore never closed");
            let session = b
                .connect_mux(
                    crate::inventory::ssh_destination(&host.address)
                        .map_err(ConnError::Unreachable)?,
                )
                .await
                .map_err(|e| ConnError::Unreachable(describe(&e)))?;
            Ok(Box::new(SshConnection {
                session,
                argv: shell_argv(host, self.become_password.is_some()),
                become_password: self
                    .become_password
                    .clone()
                    .filter(|_| super::sends_become_password(host, true)),
            }) as Box<dyn Connection>)
        })
    }
}

struct SshConnection {
    session: Session,
    argv: Vec<&'static str>,
    /// Sent before every script, on two lines (see [`super::BECOME_WITH_PASSWORD`]).
    become_password: Option<std::sync::Arc<str>>,
}

impl SshConnection {
    /// Runs `script`, its stdin closed or held as `hold` says.
    fn run_with<'a>(
        &'a self,
        script: &'a str,
        hold: Stdin,
        on_line: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<Finished, ConnError>> {
        Box::pin(async move {
            let lost = |e: openssh::Error| {
                ConnError::Unreachable(format!("connection lost: {}", describe(&e)))
            };
            let mut cmd = self.session.command(self.argv[0]);
            cmd.args(&self.argv[1..])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().await.map_err(lost)?;
            let stdin = child.stdin().take().expect("piped");
            let stdout = child.stdout().take().expect("piped");
            let stderr = child.stderr().take().expect("piped");
            let script = super::stdin_text(self.become_password.as_ref(), script);
            let (w, stdout, stderr) = pump(&script, hold, stdin, stdout, stderr, on_line).await;
            let status = child.wait().await.map_err(lost)?;
            if let Err(e) = w
                && status.code().is_none()
            {
                return Err(ConnError::Unreachable(format!(
                    "connection lost while sending the script: {e}"
                )));
            }
            Ok(Finished {
                code: status.code(),
                stdout,
                stderr,
            })
        })
    }
}

impl Connection for SshConnection {
    fn run<'a>(
        &'a self,
        script: &'a str,
        on_line: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<Finished, ConnError>> {
        self.run_with(script, Stdin::Close, on_line)
    }

    fn run_attached<'a>(
        &'a self,
        script: &'a str,
        on_line: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<Finished, ConnError>> {
        self.run_with(script, Stdin::Hold, on_line)
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = self.session.close().await;
        })
    }
}

/// openssh's errors wrap ssh's own message; show the innermost cause.
fn describe(e: &openssh::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !t.is_empty() && !msg.contains(&t) {
            msg = format!("{msg}: {t}");
        }
        src = s.source();
    }
    msg.trim().replace('\n', " ")
}
