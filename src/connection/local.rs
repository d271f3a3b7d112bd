//! The controller's own shell: for `address: local` hosts and for tests that run real
//! step scripts against temporary folders.

use super::{BoxFuture, ConnError, Connection, Connector, Finished, pump};
use crate::inventory::Host;
use std::process::Stdio;

/// Connects every host to the controller's own `sh`; connecting cannot fail.
pub struct LocalConnector;

impl Connector for LocalConnector {
    fn connect<'a>(
        &'a self,
        _host: &'a Host,
    ) -> BoxFuture<'a, Result<Box<dyn Connection>, ConnError>> {
        Box::pin(async { Ok(Box::new(LocalConnection) as Box<dyn Connection>) })
    }
}

/// One script at a time on a new local `sh -s` (the script on its stdin), killed when the
/// run is dropped.
pub struct LocalConnection;

impl Connection for LocalConnection {
    fn run<'a>(
        &'a self,
        script: &'a str,
        on_line: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<Finished, ConnError>> {
        Box::pin(async move {
            let mut child = tokio::process::Command::new("sh")
                .arg("-s")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| ConnError::Remote(format!("cannot start sh: {e}")))?;
            let stdin = child.stdin.take().expect("piped");
            let stdout = child.stdout.take().expect("piped");
            let stderr = child.stderr.take().expect("piped");
            let (_, stdout, stderr) = pump(script, stdin, stdout, stderr, on_line).await;
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

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}
