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

/// The remote program: the script comes on stdin, never in argv.
pub fn shell_argv(host: &Host) -> Vec<&'static str> {
    let is_root = host.user.as_deref().is_none_or(|u| u == "root");
    if host.become_root && !is_root {
        vec!["sudo", "-n", "--", "sh", "-s"]
    } else {
        vec!["sh", "-s"]
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
