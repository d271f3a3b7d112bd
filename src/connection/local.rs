//! The controller's own shell: for `address: local` hosts and for tests that run real
//! step scripts against temporary folders.

use super::{BoxFuture, ConnError, Connection, Connector, Finished, Stdin, pump, shell_argv};
use crate::inventory::Host;
use std::process::Stdio;

/// Connects every host to the controller's own `sh`; connecting cannot fail. `become` is
/// honoured as over SSH ([`shell_argv`]: root runs the script itself, another user through
/// sudo), the become password included: sent on stdin before the script, as over SSH, to
/// the hosts that [`super::sends_become_password`].
#[derive(Default)]
pub struct LocalConnector {
    /// The run's become password (a secret), if one was given.
    pub become_password: Option<std::sync::Arc<str>>,
}

impl LocalConnector {
    /// The connection for `host`: its shell (with become's wrapper) and, where sudo will ask
    /// for it, the become password.
    fn connection(&self, host: &Host) -> LocalConnection {
        LocalConnection {
            argv: shell_argv(host, self.become_password.is_some()),
            become_password: self
                .become_password
                .clone()
                .filter(|_| super::sends_become_password(host, true)),
        }
    }
}

impl Connector for LocalConnector {
    fn connect<'a>(
        &'a self,
        host: &'a Host,
    ) -> BoxFuture<'a, Result<Box<dyn Connection>, ConnError>> {
        let c = self.connection(host);
        Box::pin(async move { Ok(Box::new(c) as Box<dyn Connection>) })
    }
}

/// One script at a time on a new local shell (the script on its stdin; through sudo for
/// `become` when not root), killed when the run is dropped.
pub struct LocalConnection {
    argv: Vec<&'static str>,
    /// Sent before every script, on two lines (see [`super::BECOME_WITH_PASSWORD`]).
    become_password: Option<std::sync::Arc<str>>,
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
            let script = super::stdin_text(self.become_password.as_ref(), script);
            let (_, stdout, stderr) = pump(&script, hold, stdin, stdout, stderr, on_line).await;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::BECOME_WITH_PASSWORD;

    /// A become password reaches local hosts as it reaches SSH hosts: only where sudo asks,
    /// as the two lines before the script (found by a fresh-user trial: it was never sent,
    /// and sudo said a password is required).
    #[test]
    fn the_become_password_goes_before_the_script_where_sudo_asks() {
        let c = LocalConnector {
            become_password: Some("pw 'x".into()),
        };
        let deploy = Host {
            user: Some("deploy".into()),
            become_root: true,
            ..Host::named("h")
        };
        let with = c.connection(&deploy);
        assert_eq!(with.argv, ["sh", "-c", BECOME_WITH_PASSWORD]);
        assert_eq!(with.become_password.as_deref(), Some("pw 'x"));
        for other in [
            Host::named("h"),
            Host {
                user: Some("root".into()),
                become_root: true,
                ..Host::named("h")
            },
        ] {
            let c = c.connection(&other);
            assert_eq!(c.argv, ["sh", "-s"]);
            assert_eq!(c.become_password, None);
        }
        // What the shell reads first: the password twice, then the script.
        let check = LocalConnection {
            argv: vec![
                "sh",
                "-c",
                "IFS= read -r a; IFS= read -r b; [ \"$a\" = \"pw 'x\" ] && [ \"$b\" = \"$a\" ] && exec sh -s",
            ],
            become_password: with.become_password.clone(),
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut ignore = |_: &str| {};
        let out = rt.block_on(check.run("echo ran\n", &mut ignore)).unwrap();
        assert_eq!((out.code, out.stdout.as_str()), (Some(0), "ran\n"));
    }
}
