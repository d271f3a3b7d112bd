//! How scripts reach hosts. A [`Connector`] opens one [`Connection`] per host; a connection
//! runs a whole script sent on stdin and streams its stdout lines back. Implementations:
//! system OpenSSH with one ControlMaster per host (`ssh`), the local shell (`local`), and a
//! recording fake for tests (`fake`).

pub mod fake;
pub mod local;
pub mod ssh;

use crate::inventory::Host;
use std::future::Future;
use std::pin::Pin;

/// A boxed future, for the object-safe connector traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a host could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// Could not connect, or the connection was lost.
    #[error("{0}")]
    Unreachable(String),
    /// Connected, but the remote side could not run our script (sudo refused, no sh).
    #[error("{0}")]
    Remote(String),
}

/// The end of a script.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Opens connections to hosts.
pub trait Connector: Send + Sync {
    fn connect<'a>(
        &'a self,
        host: &'a Host,
    ) -> BoxFuture<'a, Result<Box<dyn Connection>, ConnError>>;
}

/// An open connection to one host, running one script at a time.
pub trait Connection: Send + Sync {
    /// Runs `script` with `sh -s` (through `sudo -n` for `become`), calling `on_line` for
    /// every stdout line as it arrives.
    fn run<'a>(
        &'a self,
        script: &'a str,
        on_line: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<Finished, ConnError>>;

    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// Sends `script` to a child's stdin while reading its stdout line by line (calling
/// `on_line` as each arrives) and its stderr (first MiB); returns the write result, the
/// stdout text and the stderr text once all three are done.
pub async fn pump(
    script: &str,
    mut stdin: impl tokio::io::AsyncWrite + Unpin,
    stdout: impl tokio::io::AsyncRead + Unpin,
    stderr: impl tokio::io::AsyncRead + Unpin,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> (std::io::Result<()>, String, String) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let write = async move {
        let r = stdin.write_all(script.as_bytes()).await;
        drop(stdin);
        r
    };
    let read_out = async move {
        let mut out = String::new();
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(l)) = lines.next_line().await {
            on_line(&l);
            out.push_str(&l);
            out.push('\n');
        }
        out
    };
    let read_err = async move {
        let mut buf = Vec::new();
        let _ = stderr.take(1 << 20).read_to_end(&mut buf).await;
        String::from_utf8_lossy(&buf).into_owned()
    };
    tokio::join!(write, read_out, read_err)
}

/// The remote shell for `become`, when the login user is not named in the inventory: ssh
/// takes it from `ssh_config` (`User`, `Match` blocks) or the local user, so only the host
/// knows. Root runs the script itself; anyone else through `sudo -n`.
const BECOME_UNLESS_ROOT: &str =
    "if [ \"$(id -u)\" -eq 0 ]; then exec sh -s; fi; exec sudo -n -- sh -s";

/// The remote program: the script comes on stdin, never in argv. With `become`, the script
/// runs as root: directly when the inventory's login user is root, through `sudo -n` when it
/// is another user, and when the inventory names no user (ssh takes it from `ssh_config`)
/// the host decides by its `id -u`, so become is never skipped for a user the inventory did
/// not spell out (issue 7 item 3).
pub fn shell_argv(host: &Host) -> Vec<&'static str> {
    match (host.become_root, host.user.as_deref()) {
        (false, _) | (true, Some("root")) => vec!["sh", "-s"],
        (true, Some(_)) => vec!["sudo", "-n", "--", "sh", "-s"],
        (true, None) => vec!["sh", "-c", BECOME_UNLESS_ROOT],
    }
}

/// Dispatches each host to SSH or the local shell, by its `connection:`.
pub struct ByHost<S: Connector, L: Connector> {
    pub ssh: S,
    pub local: L,
}

impl<S: Connector, L: Connector> Connector for ByHost<S, L> {
    fn connect<'a>(
        &'a self,
        host: &'a Host,
    ) -> BoxFuture<'a, Result<Box<dyn Connection>, ConnError>> {
        match host.connection {
            crate::inventory::Connection::Ssh => self.ssh.connect(host),
            crate::inventory::Connection::Local => self.local.connect(host),
        }
    }
}

/// The connector of a run: SSH (with the inventory's `ssh_config`, host keys checked
/// strictly unless `accept_new_host_keys`) or the local shell, per host. Built once per run,
/// so the apply, the registration and the balancer's rake fallback share one handshake limit.
pub fn for_hosts(
    ssh_config: Option<std::path::PathBuf>,
    accept_new_host_keys: bool,
) -> std::sync::Arc<dyn Connector> {
    std::sync::Arc::new(ByHost {
        ssh: ssh::SshConnector::new(ssh_config, accept_new_host_keys),
        local: local::LocalConnector,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(become_root: bool, user: Option<&str>) -> Host {
        Host {
            name: "h01".into(),
            address: "h01".into(),
            port: None,
            user: user.map(String::from),
            connection: crate::inventory::Connection::Ssh,
            become_root,
            groups: vec![],
            roles: vec![],
            vars: Default::default(),
        }
    }

    #[test]
    fn become_goes_through_sudo_unless_the_login_user_is_root() {
        assert_eq!(shell_argv(&host(false, None)), ["sh", "-s"]);
        assert_eq!(shell_argv(&host(false, Some("deploy"))), ["sh", "-s"]);
        assert_eq!(shell_argv(&host(true, Some("root"))), ["sh", "-s"]);
        assert_eq!(
            shell_argv(&host(true, Some("deploy"))),
            ["sudo", "-n", "--", "sh", "-s"]
        );
        // No user in the inventory: ssh_config's `User` decides, which only the host knows.
        assert_eq!(
            shell_argv(&host(true, None)),
            ["sh", "-c", BECOME_UNLESS_ROOT]
        );
    }

    /// As root, the become wrapper runs the script from stdin itself (no sudo needed).
    #[test]
    fn the_become_wrapper_runs_the_script_from_stdin() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("sh")
            .args(["-c", BECOME_UNLESS_ROOT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"echo \"ran as $(id -u)\"\n")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let uid = String::from_utf8_lossy(&Command::new("id").arg("-u").output().unwrap().stdout)
            .trim()
            .to_string();
        if uid == "0" {
            assert_eq!(text, "ran as 0\n");
        } else {
            // Not root: the wrapper asked sudo -n, which either ran it as root or refused.
            assert!(text.is_empty() || text == "ran as 0\n", "{text}");
        }
    }
}
