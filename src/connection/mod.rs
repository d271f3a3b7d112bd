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

    /// As [`Connection::run`], but the script's stdin stays open until its output has ended,
    /// so that the remote side sees the end of stdin when rollout goes away (Ctrl-C, killed,
    /// the connection lost) and can stop what it started: `rollout exec` ([`crate::adhoc`]).
    /// The script must not read stdin itself. The default is [`Connection::run`], for
    /// connections with no remote side.
    fn run_attached<'a>(
        &'a self,
        script: &'a str,
        on_line: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<Finished, ConnError>> {
        self.run(script, on_line)
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// How long the child's stdin stays open in [`pump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdin {
    /// Closed once the script is written (the script may read what follows it: nothing).
    Close,
    /// Held open until stdout and stderr have ended (see [`Connection::run_attached`]).
    Hold,
}

/// Sends `script` to a child's stdin while reading its stdout line by line (calling
/// `on_line` as each arrives) and its stderr (first MiB); returns the write result, the
/// stdout text and the stderr text once all three are done. `hold` says when stdin closes.
pub async fn pump(
    script: &str,
    hold: Stdin,
    mut stdin: impl tokio::io::AsyncWrite + Unpin,
    stdout: impl tokio::io::AsyncRead + Unpin,
    stderr: impl tokio::io::AsyncRead + Unpin,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> (std::io::Result<()>, String, String) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let write = async move {
        let r = stdin.write_all(script.as_bytes()).await;
        let _ = stdin.flush().await;
        // Held, it is dropped when `pump` returns: after both readers have ended.
        (r, (hold == Stdin::Hold).then_some(stdin))
    };
    let read_out = async move {
        // Bytes, not `lines()`: that ends at the first line that is not UTF-8, dropping the
        // rest and leaving the remote side writing into a pipe nobody reads. A byte that is
        // not UTF-8 becomes U+FFFD, as in stderr.
        let mut out = String::new();
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            }
            let l = String::from_utf8_lossy(&buf);
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
    let ((w, held), out, err) = tokio::join!(write, read_out, read_err);
    drop(held);
    (w, out, err)
}

/// The remote shell for `become`, when the login user is not named in the inventory: ssh
/// takes it from `ssh_config` (`User`, `Match` blocks) or the local user, so only the host
/// knows. Root runs the script itself; anyone else through `sudo -n`.
const BECOME_UNLESS_ROOT: &str =
    "if [ \"$(id -u)\" -eq 0 ]; then exec sh -s; fi; exec sudo -n -- sh -s";

/// The remote shell for `become` with a become password, which comes twice, as the first two
/// lines on stdin ([`password_lines`]; never in argv or the environment: `printf` is a shell
/// builtin, so the password is in no process's argv). Root needs no sudo; a user sudo lets
/// in without a password (`NOPASSWD`) goes through `sudo -n`: both drop the second line
/// unrun. Otherwise sudo checks the first line alone (`-v`: a wrong password ends here with
/// one clear line, no retry on the script's lines), then `exec sudo -S` reads the second line
/// itself: sudo reads its password from a non-tty byte by byte up to the newline (`getln` in
/// sudo's `src/tgetpass.c`), so the rest of stdin is the script, read by `sh -s`. Nothing
/// stands between stdin and the script's shell (an earlier `printf | cat` pipe kept running
/// after the script ended while rollout held stdin open: [`Connection::run_attached`]). `-k`
/// makes both calls ask whatever sudo's timestamp says, so the line is always consumed, with
/// `timestamp_timeout=0` too.
pub const BECOME_WITH_PASSWORD: &str = "IFS= read -r p || { echo 'rollout: no become password on stdin' >&2; exit 1; }; \
if [ \"$(id -u)\" -eq 0 ]; then IFS= read -r p; unset p; exec sh -s; fi; \
if sudo -k -n true 2>/dev/null </dev/null; then IFS= read -r p; unset p; exec sudo -n -- sh -s; fi; \
printf '%s\\n' \"$p\" | sudo -k -S -p '' -v 2>/dev/null || { unset p; echo 'sudo: the become password was refused' >&2; exit 1; }; \
unset p; exec sudo -k -S -p '' -- sh -s";

/// What goes on stdin before the script for [`BECOME_WITH_PASSWORD`]: the password on each
/// of two lines (a secret: never logged or shown).
pub fn password_lines(password: &str) -> String {
    format!("{password}\n{password}\n")
}

/// What a connection writes on the remote shell's stdin: the script, after the become
/// password's two lines ([`password_lines`]) when the host is sent one.
fn stdin_text<'a>(
    become_password: Option<&std::sync::Arc<str>>,
    script: &'a str,
) -> std::borrow::Cow<'a, str> {
    match become_password {
        Some(p) => std::borrow::Cow::Owned(password_lines(p) + script),
        None => std::borrow::Cow::Borrowed(script),
    }
}

/// Whether a connection to `host` sends the become password as the first line of every
/// script's stdin: with `become`, a password given, and a login user that is not known to
/// be root (root needs no sudo).
pub fn sends_become_password(host: &Host, have_password: bool) -> bool {
    have_password && host.become_root && host.user.as_deref() != Some("root")
}

/// The remote program: the script comes on stdin, never in argv. With `become`, the script
/// runs as root: directly when the inventory's login user is root, through `sudo -n` when it
/// is another user, and when the inventory names no user (ssh takes it from `ssh_config`)
/// the host decides by its `id -u`, so become is never skipped for a user the inventory did
/// not spell out (issue 7 item 3). With a become password (`have_password`), every host that
/// [`sends_become_password`] runs [`BECOME_WITH_PASSWORD`].
pub fn shell_argv(host: &Host, have_password: bool) -> Vec<&'static str> {
    if sends_become_password(host, have_password) {
        return vec!["sh", "-c", BECOME_WITH_PASSWORD];
    }
    match (host.become_root, host.user.as_deref()) {
        (false, _) | (true, Some("root")) => vec!["sh", "-s"],
        (true, Some(_)) => vec!["sudo", "-n", "--", "sh", "-s"],
        (true, None) => vec!["sh", "-c", BECOME_UNLESS_ROOT],
    }
}

/// Where the become password of a run comes from (Ansible's `-K` and
/// `--become-password-file`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BecomePassword {
    /// `--ask-become-pass`: asked once on the terminal, without echo.
    Ask,
    /// `--become-password-file`: the file's first line (a trailing newline is not part of
    /// the password, as in Ansible).
    File(std::path::PathBuf),
}

impl BecomePassword {
    /// Reads the password: from the terminal (prompt `BECOME password: `, as Ansible) or the
    /// file.
    ///
    /// Errors: no terminal, a file that cannot be read, an empty password, or one of several
    /// lines (sudo reads one line), as a message naming the file; never the password.
    pub fn read(&self) -> Result<String, String> {
        let (text, origin) = match self {
            BecomePassword::Ask => (
                rpassword::prompt_password("BECOME password: ").map_err(|e| {
                    format!(
                        "cannot ask for the become password ({e}): without a terminal, use \
                         --become-password-file"
                    )
                })?,
                "the become password".to_string(),
            ),
            BecomePassword::File(f) => (
                std::fs::read_to_string(f)
                    .map_err(|e| format!("cannot read the become password file: {e}"))?,
                "the become password file".to_string(),
            ),
        };
        let pw = text
            .strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text);
        if pw.is_empty() {
            return Err(format!("{origin} is empty"));
        }
        if pw.contains(['\n', '\r']) {
            return Err(format!(
                "{origin} holds more than one line; sudo reads one line"
            ));
        }
        Ok(pw.to_string())
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
///
/// `become_password`: sent as the first line on stdin to the hosts that
/// [`sends_become_password`]; the caller registers it as a secret.
pub fn for_hosts(
    ssh_config: Option<std::path::PathBuf>,
    accept_new_host_keys: bool,
    become_password: Option<std::sync::Arc<str>>,
) -> std::sync::Arc<dyn Connector> {
    let mut ssh = ssh::SshConnector::new(ssh_config, accept_new_host_keys);
    ssh.become_password = become_password.clone();
    std::sync::Arc::new(ByHost {
        ssh,
        local: local::LocalConnector { become_password },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(become_root: bool, user: Option<&str>) -> Host {
        Host {
            user: user.map(String::from),
            become_root,
            ..Host::named("h01")
        }
    }

    fn shell_argv_np(h: &Host) -> Vec<&'static str> {
        shell_argv(h, false)
    }

    /// A `connection: local` host with `become` goes through the same wrappers as over SSH:
    /// never the controller's own user silently (found by a fresh-user trial: `exec` and
    /// `apply` ran as `nobody`).
    #[test]
    fn local_hosts_become_as_ssh_hosts_do() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let run = |h: Host, script: &str| {
            rt.block_on(async {
                let c = local::LocalConnector::default().connect(&h).await.unwrap();
                let mut ignore = |_: &str| {};
                c.run(script, &mut ignore).await
            })
        };
        let uid = std::process::Command::new("id").arg("-u").output().unwrap();
        let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        // No user named: the host decides; as root the script runs without sudo.
        if root {
            assert_eq!(run(host(true, None), "id -u\n").unwrap().stdout, "0\n");
        }
        // Another login user: through `sudo -n` (which sets SUDO_UID), or a failure where
        // sudo is missing or refuses; never the controller's own shell.
        match run(host(true, Some("deploy")), "echo ${SUDO_UID:-none}\n") {
            Ok(f) => assert_ne!(f.stdout, "none\n", "ran without sudo"),
            Err(e) => assert!(e.to_string().contains("sudo"), "{e}"),
        }
        // Without become: the controller's own shell.
        let f = run(host(false, Some("deploy")), "echo ${SUDO_UID:-none}\n").unwrap();
        assert_eq!(f.stdout, "none\n");
    }

    /// Output that is not UTF-8 is kept (U+FFFD for the bad byte), every line after it too.
    #[test]
    fn stdout_lines_after_a_byte_that_is_not_utf8_are_kept() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut seen = Vec::new();
        let mut on_line = |l: &str| seen.push(l.to_string());
        let (w, out, err) = rt.block_on(pump(
            "",
            Stdin::Close,
            tokio::io::sink(),
            &b"line1\r\ncaf\xe9 ok\nline3\nlast"[..],
            &b""[..],
            &mut on_line,
        ));
        assert!(w.is_ok());
        assert_eq!(out, "line1\ncaf\u{fffd} ok\nline3\nlast\n");
        assert_eq!(seen, ["line1", "caf\u{fffd} ok", "line3", "last"]);
        assert_eq!(err, "");
    }

    #[test]
    fn become_goes_through_sudo_unless_the_login_user_is_root() {
        assert_eq!(shell_argv_np(&host(false, None)), ["sh", "-s"]);
        assert_eq!(shell_argv_np(&host(false, Some("deploy"))), ["sh", "-s"]);
        assert_eq!(shell_argv_np(&host(true, Some("root"))), ["sh", "-s"]);
        assert_eq!(
            shell_argv_np(&host(true, Some("deploy"))),
            ["sudo", "-n", "--", "sh", "-s"]
        );
        // No user in the inventory: ssh_config's `User` decides, which only the host knows.
        assert_eq!(
            shell_argv_np(&host(true, None)),
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

    /// A fresh scratch folder for one test (parallel tests never share one).
    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("rollout-become-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_become_password_goes_on_stdin_only_where_sudo_runs() {
        let wrapper = vec!["sh", "-c", BECOME_WITH_PASSWORD];
        assert_eq!(shell_argv(&host(false, Some("deploy")), true), ["sh", "-s"]);
        assert_eq!(shell_argv(&host(true, Some("root")), true), ["sh", "-s"]);
        assert_eq!(shell_argv(&host(true, Some("deploy")), true), wrapper);
        assert_eq!(shell_argv(&host(true, None), true), wrapper);
        assert!(!sends_become_password(&host(false, Some("deploy")), true));
        assert!(!sends_become_password(&host(true, Some("root")), true));
        assert!(!sends_become_password(&host(true, Some("deploy")), false));
        assert!(sends_become_password(&host(true, Some("deploy")), true));
        assert!(sends_become_password(&host(true, None), true));
    }

    /// A `sudo` as strict as the real one about its password: `-n` fails unless `NOPASSWD`
    /// is set, `-S` reads exactly one line from stdin (as sudo's `getln`, byte by byte) and
    /// refuses anything but `$PASSWORD`, `-v` stops there, else it runs the command after
    /// `--`. It records its argv to `$ARGV_LOG`.
    const FAKE_SUDO: &str = include_str!("../../tests/fixtures/fake_sudo.sh");

    /// Runs [`BECOME_WITH_PASSWORD`] with the fake `sudo` and an `id` printing `uid` first
    /// on PATH, `input` on stdin: (exit code, stdout, stderr, sudo's recorded argv).
    fn run_wrapper(
        name: &str,
        input: &str,
        uid: &str,
        nopasswd: bool,
    ) -> (i32, String, String, String) {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        use std::process::{Command, Stdio};
        let dir = scratch(name);
        let bin = dir.join("bin");
        std::fs::create_dir(&bin).unwrap();
        for (name, text) in [
            ("sudo", FAKE_SUDO.to_string()),
            ("id", format!("#!/bin/sh\necho {uid}\n")),
        ] {
            let f = bin.join(name);
            std::fs::write(&f, text).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let log = dir.join("argv.log");
        std::fs::write(&log, "").unwrap();
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let mut cmd = Command::new("sh");
        cmd.args(["-c", BECOME_WITH_PASSWORD])
            .env("PATH", path)
            .env("ARGV_LOG", &log)
            .env("PASSWORD", "s3cret pass'word")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if nopasswd {
            cmd.env("NOPASSWD", "1");
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let argv = std::fs::read_to_string(&log).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            argv,
        )
    }

    /// A script that reads from stdin itself (a here-document) and ends with its own code.
    const SCRIPT: &str = "echo first\nread -r x <<EOF\nhere\nEOF\necho \"second $x\"\nexit 3\n";

    #[test]
    fn the_password_wrapper_feeds_sudo_one_line_and_the_script_the_rest() {
        let input = format!("{}{SCRIPT}", password_lines("s3cret pass'word"));
        let (code, out, err, argv) = run_wrapper("right", &input, "1000", false);
        assert_eq!((code, out.as_str()), (3, "first\nsecond here\n"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        // Checked alone first, then the script through sudo; never on a command line.
        assert!(argv.contains("-k -S -p  -v\n"), "{argv}");
        assert!(argv.ends_with("-k -S -p  -- sh -s\n"), "{argv}");
        assert!(!argv.contains("s3cret"), "{argv}");
    }

    /// rollout holds stdin open while `rollout exec` runs (so the host sees when rollout goes
    /// away): the wrapper must end with the script, not wait for the end of stdin.
    #[test]
    fn the_password_wrapper_ends_with_the_script_while_stdin_stays_open() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let dir = scratch("held");
        let bin = dir.join("bin");
        std::fs::create_dir(&bin).unwrap();
        for (name, text) in [("sudo", FAKE_SUDO), ("id", "#!/bin/sh\necho 1000\n")] {
            use std::os::unix::fs::PermissionsExt;
            let f = bin.join(name);
            std::fs::write(&f, text).unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
        let mut child = Command::new("sh")
            .args(["-c", BECOME_WITH_PASSWORD])
            .env("PATH", path)
            .env("ARGV_LOG", dir.join("argv.log"))
            .env("PASSWORD", "pw")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{}exit 4\n", password_lines("pw")).as_bytes())
            .unwrap();
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed().as_secs() >= 10 {
                let _ = child.kill();
                panic!("the wrapper still runs 10 s after its script ended");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        drop(stdin);
        assert_eq!(status.code(), Some(4));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_refused_become_password_stops_with_one_clear_line() {
        let input = format!("{}{SCRIPT}", password_lines("wrong"));
        let (code, out, err, argv) = run_wrapper("wrong", &input, "1000", false);
        assert_eq!(code, 1);
        assert_eq!(out, "", "the script must not run");
        assert_eq!(err, "sudo: the become password was refused\n");
        assert!(!argv.contains("wrong") && !argv.contains("sh -s"), "{argv}");
    }

    #[test]
    fn without_a_password_rule_or_as_root_the_password_line_is_dropped() {
        let input = format!("{}{SCRIPT}", password_lines("s3cret pass'word"));
        // NOPASSWD: sudo -n, the password line is not run as a command.
        let (code, out, err, argv) = run_wrapper("nopasswd", &input, "1000", true);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (3, "first\nsecond here\n", "")
        );
        assert!(argv.ends_with("-n -- sh -s\n"), "{argv}");
        // Root (the login user ssh_config chose): no sudo at all.
        let (code, out, err, argv) = run_wrapper("root", &input, "0", false);
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (3, "first\nsecond here\n", "")
        );
        assert_eq!(argv, "");
    }

    #[test]
    fn a_become_password_file_gives_its_first_line() {
        let dir = scratch("file");
        let f = dir.join("pw");
        let read = |text: &str| {
            std::fs::write(&f, text).unwrap();
            BecomePassword::File(f.clone()).read()
        };
        assert_eq!(read("hunter2\n").unwrap(), "hunter2");
        assert_eq!(read("hunter2\r\n").unwrap(), "hunter2");
        assert_eq!(read(" spaced \n").unwrap(), " spaced ");
        assert!(read("").unwrap_err().contains("empty"));
        let e = read("hunter2\nsecond\n").unwrap_err();
        assert!(
            e.contains("more than one line") && !e.contains("hunter2"),
            "{e}"
        );
        let e = BecomePassword::File(dir.join("missing"))
            .read()
            .unwrap_err();
        assert!(e.starts_with("cannot read the become password file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
