//! The subcommands (`plan`, `apply`, `drain`, `undrain`, `upgrade`, `status`, `inventory`,
//! `exec`), free of the
//! command-line parser: each runs on the application core
//! ([`crate::app`]) or the pool, renders its typed summary (`report::summary`), and ends as
//! an [`Exit`]. Errors that stop a command are one type, [`Error`], with the one mapping to
//! exit codes and text, so no command prints its own errors or picks its own exit code.

use crate::adhoc;
use crate::app::{self, Interrupted};
use crate::error::printable;
use crate::error::{Diagnostic, Exit};
use crate::exec::Goal;
use crate::pool::error::PoolError;
use crate::pool::hold::{self, Meetings};
use crate::pool::{self, DrainOptions, UpgradeOptions, register};
use crate::report::summary::{self, Summary};
use crate::report::{Format, HostOutcome};
use crate::retry_file;
use crate::secret::redact_known;
use std::path::Path;
use std::sync::Arc;

/// A subcommand to run.
#[derive(Debug, Clone)]
pub enum Subcommand {
    /// `rollout plan`, `rollout apply`: converge (`Goal::Apply`) or only check
    /// (`Goal::Plan`), showing diffs when `show_diff`.
    Run {
        options: app::Options,
        goal: Goal,
        show_diff: bool,
        /// What to do on a BBB node with meetings when a change would end them.
        meetings: Meetings,
        /// `--retry-file`: where to write the hosts that failed (see [`crate::retry_file`]).
        retry_file: Option<std::path::PathBuf>,
    },
    /// `rollout drain`.
    Drain(DrainOptions),
    /// `rollout undrain`.
    Undrain(app::Options),
    /// `rollout upgrade`.
    Upgrade(UpgradeOptions),
    /// `rollout status`.
    Status(app::Options),
    /// `rollout inventory`: an Ansible inventory as ansible-core reads it.
    Inventory(app::InventoryQuery),
    /// `rollout exec`: an ad-hoc command on the selected hosts.
    Exec(adhoc::Request),
    /// `rollout completions SHELL`, `rollout man`: a text the command line itself makes,
    /// printed on stdout as it is; contacts nothing.
    Print(String),
}

impl Subcommand {
    /// The output format the command was given.
    pub fn format(&self) -> Format {
        match self {
            Subcommand::Run { options, .. }
            | Subcommand::Undrain(options)
            | Subcommand::Status(options) => options.output,
            Subcommand::Drain(d) => d.run.output,
            Subcommand::Upgrade(u) => u.run.output,
            Subcommand::Inventory(_) | Subcommand::Print(_) => Format::Plain,
            Subcommand::Exec(r) => r.options.output,
        }
    }
}

/// Why a command stopped before its summary.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad inventory, roles or templates.
    #[error("{} input error(s)", .0.len())]
    Input(Vec<Diagnostic>),
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    /// `rollout exec` stopped by Ctrl-C.
    #[error(transparent)]
    ExecInterrupted(#[from] adhoc::Interrupted),
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl Error {
    /// The one mapping from an error to the exit code's meaning.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Input(_)
            | Error::Pool(PoolError::Input(_) | PoolError::Usage(_) | PoolError::BatchSize(_)) => {
                Exit::Input
            }
            Error::Interrupted(_)
            | Error::ExecInterrupted(_)
            | Error::Pool(PoolError::Interrupted { .. }) => Exit::Interrupted,
            Error::Pool(_) => Exit::Failed,
        }
    }

    /// Shows the error as its exit says: bad input and interruptions on stderr only (nothing
    /// has run, or the run was cut short); a failure also as an `error` object in JSON. Every
    /// text passes through [`redact_known`]: a diagnostic may quote a value that came from a
    /// secret, and the error may come before the run's `Secrets` exist; then through
    /// [`printable`], so that no control character reaches the terminal.
    pub fn print(&self, format: Format) {
        match (self.exit(), self) {
            (_, Error::Input(ds) | Error::Pool(PoolError::Input(ds))) => {
                for d in ds {
                    let text = printable(&redact_known(&d.to_string()));
                    eprintln!("{text}");
                    crate::log_file::lines(&text);
                }
            }
            (Exit::Input, e) => {
                let text = printable(&redact_known(&e.to_string()));
                eprintln!("error: {text}");
                crate::log_file::lines(&format!("error: {text}"));
            }
            (Exit::Interrupted, e) => {
                let text = printable(&redact_known(&e.to_string()));
                eprintln!("\n{text}");
                crate::log_file::lines(&text);
            }
            (_, e) => summary::error(format, &e.to_string()),
        }
    }
}

/// Runs a command: renders its summary and returns how it ended.
///
/// Errors: see [`Error`]; the caller shows them with [`Error::print`].
pub async fn run(cmd: Subcommand) -> Result<Exit, Error> {
    match cmd {
        Subcommand::Run {
            options,
            goal,
            show_diff,
            meetings,
            retry_file,
        } => converge(&options, goal, show_diff, meetings, retry_file.as_deref()).await,
        Subcommand::Exec(r) => exec(r).await,
        Subcommand::Drain(o) => {
            let format = o.run.output;
            Ok(rendered(format, pool::drain::main(o).await?))
        }
        Subcommand::Undrain(o) => Ok(rendered(o.output, pool::undrain::main(&o).await?)),
        Subcommand::Upgrade(o) => {
            let format = o.run.output;
            Ok(rendered(format, pool::upgrade::main(o).await?))
        }
        Subcommand::Status(o) => Ok(rendered(o.output, pool::status::main(&o).await?)),
        Subcommand::Print(text) => {
            // A closed pipe (`| head`) is not an error.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
            Ok(Exit::Ok)
        }
        Subcommand::Inventory(q) => {
            let text = app::inventory(&q).map_err(Error::Input)?;
            // A closed pipe (`| head`) is not an error of the inventory.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes());
            Ok(Exit::Ok)
        }
    }
}

fn rendered<S: Summary>(format: Format, s: S) -> Exit {
    summary::render(format, &s);
    s.exit()
}

/// `plan`/`apply`: load, validate the balancer section, run (holding back on BBB nodes with
/// meetings what would end them, see [`pool::hold`]), summarise, remember what was held,
/// then (apply only) register the nodes in the balancer.
async fn converge(
    o: &app::Options,
    goal: Goal,
    show_diff: bool,
    meetings: Meetings,
    retry_file: Option<&Path>,
) -> Result<Exit, Error> {
    let mut prepared = app::load(o, &serde_json::Map::new()).map_err(Error::Input)?;
    if let Some(path) = retry_file {
        retry_file::check(path).map_err(|d| Error::Input(vec![d]))?;
    }
    // The balancer section is validated before any host is touched; nodes register after.
    let registration = register::prepare(o, &prepared)
        .map_err(Error::Input)?
        .filter(|_| goal == Goal::Apply);
    hold::fill_owed(&mut prepared).map_err(PoolError::from)?;
    let prepared = Arc::new(prepared);
    let guard = Arc::new(hold::Guard::new(o, prepared.clone(), meetings)?);
    let results = app::execute(o, &prepared, goal, show_diff, Some(guard.clone())).await;
    guard.release();
    let results = results?;
    let run = app::finish(o, results.clone(), goal == Goal::Apply);
    let mut exit = run.exit();
    if let Some(path) = retry_file {
        let ran: Vec<String> = results.iter().map(|r| r.host.clone()).collect();
        let failed: Vec<String> = results
            .iter()
            .filter(|r| r.outcome != HostOutcome::Ok)
            .map(|r| r.host.clone())
            .collect();
        let known = |h: &str| prepared.inventory.host(h).is_some();
        exit = exit.max(retry(o.output, path, &ran, &failed, &known));
    }
    if goal == Goal::Apply
        && let Err(e) = hold::owe(&prepared.state, &results, o.lock_wait)
    {
        summary::error(
            o.output,
            &format!("the restarts held back could not be recorded: {e}"),
        );
        exit = exit.max(Exit::Failed);
    }
    // A failed preflight changed no host: nor is the balancer touched.
    let Some(registration) = registration.filter(|_| !run.preflight_failed()) else {
        return Ok(exit);
    };
    Ok(match registration.run(&prepared, &results).await {
        Some(s) => exit.max(rendered(o.output, s)),
        None => exit,
    })
}

/// `exec`: checks the command and loads the inventory (bad input: exit 2, nothing
/// contacted), runs the command on every selected host, shows each host's output as it ends
/// (plain) or one `exec` object (JSON), then the retry file.
async fn exec(r: adhoc::Request) -> Result<Exit, Error> {
    adhoc::validate(&r).map_err(Error::Input)?;
    let o = &r.options;
    let (inv, hosts) = app::load_hosts(o).map_err(Error::Input)?;
    if let Some(path) = &r.retry_file {
        retry_file::check(path).map_err(|d| Error::Input(vec![d]))?;
    }
    let refs: Vec<&crate::inventory::Host> = hosts.iter().collect();
    let connector = app::connector(o, &inv, &refs).map_err(Error::Input)?;
    let format = o.output;
    let run = adhoc::run(hosts, connector, &r.argv, o.forks, &inv.secrets, |h| {
        let text = h.plain();
        if format != Format::Json {
            print!("{text}");
        }
        crate::log_file::lines(&text);
    });
    let s = tokio::select! {
        s = run => s,
        _ = tokio::signal::ctrl_c() => return Err(Error::ExecInterrupted(adhoc::Interrupted)),
    };
    summary::render(format, &s);
    let mut exit = s.exit();
    if let Some(path) = &r.retry_file {
        let ran: Vec<String> = s.hosts.iter().map(|h| h.host.clone()).collect();
        let known = |h: &str| inv.host(h).is_some();
        exit = exit.max(retry(format, path, &ran, &s.failed_hosts(), &known));
    }
    Ok(exit)
}

/// Brings the retry file at `path` up to date for a run over `ran` in which `failed` failed
/// ([`retry_file::update`]) and says so on stderr; a file that cannot be written is an error
/// (exit 1), shown as one.
fn retry(
    format: Format,
    path: &Path,
    ran: &[String],
    failed: &[String],
    known: &dyn Fn(&str) -> bool,
) -> Exit {
    match retry_file::update(path, ran, failed, known) {
        Ok(outcome) => {
            let text = printable(&redact_known(&retry_file::describe(path, &outcome)));
            eprintln!("{text}");
            crate::log_file::lines(&text);
            Exit::Ok
        }
        Err(e) => {
            summary::error(format, &e);
            Exit::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::batch::BatchSizeError;
    use crate::pool::journal::JournalError;

    #[test]
    fn every_error_maps_to_one_exit_code() {
        let cases: Vec<(Error, i32)> = vec![
            (Error::Input(vec![]), 2),
            (Error::Pool(PoolError::Input(vec![])), 2),
            (Error::Pool(PoolError::Usage("no --limit".into())), 2),
            (Error::Pool(BatchSizeError::Zero.into()), 2),
            (Error::Pool(PoolError::Capacity("refusing".into())), 1),
            (
                Error::Pool(
                    JournalError::Locked {
                        holder: "another rollout".into(),
                        path: "x.lock".into(),
                    }
                    .into(),
                ),
                1,
            ),
            (Error::Interrupted(Interrupted), 130),
            (Error::Pool(PoolError::Interrupted { held: vec![] }), 130),
        ];
        for (e, code) in cases {
            assert_eq!(e.exit().code(), code, "{e:?}");
        }
        assert_eq!(Exit::Ok.code(), 0);
    }

    #[test]
    fn interrupted_upgrade_names_what_is_out_of_service() {
        let e = PoolError::Interrupted {
            held: vec!["h1".into(), "h2".into()],
        };
        assert_eq!(
            e.to_string(),
            "interrupted; out of service: h1, h2; `rollout upgrade` resumes where this stopped"
        );
        let none = PoolError::Interrupted { held: vec![] };
        assert!(none.to_string().contains("out of service: none;"));
    }
}
