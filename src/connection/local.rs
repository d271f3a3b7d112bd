//! The controller's own shell: for `address: local` hosts and for tests that run real
//! step scripts against temporary folders.

use super::{BoxFuture, ConnError, Connection, Connector, Finished, Stdin, pump, shell_argv};
use crate::inventory::Host;
use std::process::Stdio;

/// Connects every host to the controller's own `sh`; connecting cannot fail. `become` is
/// honoured as over SSH ([`shell_argv`]: root runs the script itself, another user through
/// `sudo -n`); a become password is not sent to local hosts, so one whose sudo asks for it
/// fails with sudo's "a password is required" rather than running the steps unprivileged.
pub struct LocalConnector;

impl Connector for LocalConnector {
    fn connect<'a>(
        &'a self,
        host: &'a Host,
    ) -> BoxFuture<'a, Result<Box<dyn Connection>, ConnError>> {
        let argv = shell_argv(host, false);
        Box::pin(async move { Ok(Box::new(LocalConnection { argv }) as Box<dyn Connection>) })
    }
}

/// One script at a time on a new local shell (the script on its stdin; through sudo for
/// `become` when not root), killed when the run is dropped.
pub struct LocalConnection {
    argv: Vec<&'static str>,
}

impl LocalConnection {
    /// Runs `script`, its stdin closed or held as `hold` says.
    fn run_with<'a>(
        &'a self,
        script: &'a str,
        hold: Stdin,
        on_line: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<Finished, ConnError>> {
        Box::pin(async move {
            let mut child = tokio::process::Command::new(self.argv[0])
                .args(&self.argv[1..])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| ConnError::Remote(format!("cannot start {}: {e}", self.argv[0])))?;
            let stdin = child.stdin.take().expect("piped");
            let stdout = child.stdout.take().expect("piped");
            let stderr = child.stderr.take().expect("piped");
            let (_, stdout, stderr) = pump(script, hold, stdin, stdout, stderr, on_line).await;
            let status = child
                .wait()
                .await
                .map_err(|e| ConnError::Remote(e.to_string()))?;
            Ok(Finished {
                code: status.code(),
                stdout,
                stderr,
            })
        })
    }
}

impl Connection for LocalConnection {
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
        Box::pin(async {})
    }
}
