//! The command line: `rollout plan`, `rollout apply`. Parses arguments, loads and validates
//! everything (exit 2 on bad input, before any host is touched), runs the executor and
//! prints the summary (exit 1 when any host failed or was unreachable).

use crate::connection::local::LocalConnector;
use crate::connection::ssh::SshConnector;
use crate::connection::{ByHost, Connector};
use crate::error::{Diagnostic, EXIT_FAILED, EXIT_INPUT};
use crate::exec::{self, Goal};
use crate::inventory::{self, Host, Inventory};
use crate::plan::{self, Filter, HostPlan};
use crate::report::{self, Format, HostOutcome, HostResult};
use crate::role;
use crate::template::Templates;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "rollout",
    version,
    about = "Turn blank machines into a BigBlueButton pool and keep it upgraded without ending a class"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Show, per host, every step that would change, with diffs. Changes nothing.
    Plan(RunArgs),
    /// Converge the hosts: check every step, apply only what changes.
    Apply {
        #[command(flatten)]
        run: RunArgs,
        /// Only check and show the plan (same as `rollout plan`).
        #[arg(long)]
        check: bool,
        /// Show diffs of what is about to change.
        #[arg(long)]
        diff: bool,
    },
    // Pool commands (src/pool/).
    /// Cordon nodes in the balancer and wait until their meetings have ended.
    Drain(crate::pool::DrainArgs),
    /// Enable drained nodes in the balancer again, after a health check.
    Undrain(crate::pool::PoolArgs),
    /// Rolling upgrade of the BBB nodes: drain, apply, health check, enable, batch by batch.
    Upgrade(crate::pool::UpgradeArgs),
    /// The pool as the balancer and the nodes see it.
    Status(crate::pool::PoolArgs),
}

#[derive(Args, Clone)]
pub struct RunArgs {
    /// The inventory file (YAML).
    pub inventory: PathBuf,
    /// Hosts or groups, comma-separated; `!name` excludes.
    #[arg(short, long)]
    pub limit: Option<String>,
    /// Only steps with one of these tags (a role's name is a tag of all its steps).
    #[arg(short, long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Leave out steps with one of these tags.
    #[arg(long, value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// How many hosts to work on at once.
    #[arg(short, long, default_value_t = 50)]
    pub forks: usize,
    /// Extra variables KEY=VALUE, highest precedence.
    #[arg(short = 'e', long = "extra-vars", value_parser = parse_kv)]
    pub extra_vars: Vec<(String, String)>,
    /// auto: bars on a terminal, plain lines otherwise; json: one event per line.
    #[arg(short, long, value_enum, default_value_t = Format::Auto)]
    pub output: Format,
    /// Show the remote scripts (secrets redacted) and every step.
    #[arg(short, long)]
    pub verbose: bool,
    /// Accept and remember host keys of hosts not yet in known_hosts (default: refuse).
    #[arg(long)]
    pub accept_new_host_keys: bool,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Plan(a) => run(a, Goal::Plan, true).await,
            Cmd::Apply {
                run: a,
                check,
                diff,
            } => {
                run(
                    a,
                    if check { Goal::Plan } else { Goal::Apply },
                    diff || check,
                )
                .await
            }
            Cmd::Drain(a) => crate::pool::drain::main(a).await,
            Cmd::Undrain(a) => crate::pool::drain::undrain(a).await,
            Cmd::Upgrade(a) => crate::pool::upgrade::main(a).await,
            Cmd::Status(a) => crate::pool::status::main(a).await,
        }
    })
}

/// Everything loaded and validated for a run.
pub struct Prepared {
    pub inventory: Inventory,
    pub plans: Vec<HostPlan>,
}

/// Loads the inventory, roles and templates and plans every selected host; prints the
/// errors and returns None on bad input.
pub fn prepare(
    a: &RunArgs,
    run_vars: &serde_json::Map<String, serde_json::Value>,
) -> Result<Prepared, Vec<Diagnostic>> {
    let inv = inventory::load(&a.inventory, &a.extra_vars).map_err(|d| vec![d])?;
    let hosts: Vec<&Host> = inventory::select(&inv, a.limit.as_deref())
        .map_err(|e| vec![Diagnostic::file(&a.inventory, e)])?;
    let role_names: Vec<&String> = hosts.iter().flat_map(|h| h.roles.iter()).collect();
    let roles = role::load_all(&inv.roles_dir, role_names).map_err(|d| vec![d])?;
    let templates = Templates::load(&inv.templates_dir).map_err(|d| vec![d])?;
    let filter = Filter {
        tags: a.tags.clone(),
        skip_tags: a.skip_tags.clone(),
    };
    let plans = plan::build(&inv, &hosts, &roles, &templates, &filter, run_vars)?;
    Ok(Prepared {
        inventory: inv,
        plans,
    })
}

pub fn print_diagnostics(ds: &[Diagnostic]) {
    for d in ds {
        eprintln!("{d}");
    }
}

async fn run(a: RunArgs, goal: Goal, show_diff: bool) -> i32 {
    let prepared = match prepare(&a, &serde_json::Map::new()) {
        Ok(p) => p,
        Err(ds) => {
            print_diagnostics(&ds);
            return EXIT_INPUT;
        }
    };
    // The balancer section is validated before any host is touched; nodes register after.
    let registration = match crate::pool::register::prepare(&a, &prepared) {
        Ok(r) => r.filter(|_| goal == Goal::Apply),
        Err(ds) => {
            print_diagnostics(&ds);
            return EXIT_INPUT;
        }
    };
    let results = execute(&a, &prepared, goal, show_diff).await;
    let code = finish(&a, &results);
    match registration {
        Some(r) => code.max(r.run(&prepared, &results, a.output).await),
        None => code,
    }
}

/// Runs the executor with a reporter; returns per-host results.
pub async fn execute(a: &RunArgs, p: &Prepared, goal: Goal, show_diff: bool) -> Vec<HostResult> {
    let connector: Arc<dyn Connector> = Arc::new(ByHost {
        ssh: SshConnector::new(p.inventory.ssh_config.clone(), a.accept_new_host_keys),
        local: LocalConnector,
    });
    let opts = Arc::new(exec::Options {
        goal,
        forks: a.forks,
        verbose: a.verbose,
        secrets: p.inventory.secrets.clone(),
    });
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let settings = report::Settings {
        format: a.output,
        show_diff,
        verbose: a.verbose,
        hosts: p.plans.len(),
        title: if goal == Goal::Plan {
            "plan".into()
        } else {
            "apply".into()
        },
    };
    let reporter = tokio::spawn(report::report(rx, settings));
    let results = tokio::select! {
        r = exec::run(p.plans.clone(), connector, opts, tx) => r,
        _ = tokio::signal::ctrl_c() => {
            // Dropping the run closes every SSH channel: a step already running on a host
            // finishes there (its file writes are atomic), no further step starts.
            eprintln!(
                "\nrollout: interrupted. Steps already running on hosts finish; no further steps start.\n\
                 Run the same command again: it checks every host and applies only what is still missing."
            );
            std::process::exit(130);
        }
    };
    let _ = reporter.await;
    results
}

/// Prints the summary; exit code 1 when any host failed.
pub fn finish(a: &RunArgs, results: &[HostResult]) -> i32 {
    if a.output == Format::Json {
        println!(
            "{}",
            serde_json::json!({"event": "summary", "hosts": results})
        );
    } else {
        print!("{}", report::summary(results));
    }
    if results.iter().any(|r| r.outcome != HostOutcome::Ok) {
        EXIT_FAILED
    } else {
        0
    }
}
