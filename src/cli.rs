//! The command line: `rollout plan`, `apply`, `drain`, `undrain`, `upgrade`, `status`,
//! `inventory`, `exec`, `completions`, `man`. Only
//! here do clap's types exist: arguments are turned into the application's own options
//! ([`crate::app::Options`], the pool's option structs) at the door, the command runs
//! ([`crate::subcommand`]), and its end becomes the process exit code (0 ok, 1 a host or node
//! failed, 2 bad input before any host was touched, 3 a BBB node with meetings held back a
//! change that would end them, 130 interrupted).

use crate::app;
use crate::error::Exit;
use crate::exec::Goal;
use crate::extra_vars::{self, ExtraVars};
use crate::pool::hold::Meetings;
use crate::pool::{DrainOptions, UpgradeOptions, parse_duration};
use crate::report::Format;
use crate::subcommand;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "rollout",
    version,
    about = "Turn blank machines into a BigBlueButton pool and keep it upgraded without ending a class"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Also append every line the command prints (steps, notes, warnings, errors, the
    /// summary), each behind its time and the process id, to this file, redacted as the
    /// terminal's text; created with mode 0600, never truncated (Ansible's `log_path`).
    #[arg(long, global = true, value_name = "PATH", env = "ROLLOUT_LOG_FILE")]
    log_file: Option<PathBuf>,
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
        /// On a BBB node with meetings, end them (as `drain --force` does) before running
        /// what would end them anyway (restarts, upgrades). Without it, such changes are held
        /// back on that node and stay pending (exit code 3).
        #[arg(long, conflicts_with = "drain")]
        force: bool,
        /// On a BBB node with meetings, drain it first (cordon, wait until its meetings have
        /// ended), then apply, health check and put it back, `--batch-size` nodes at a time
        /// and never below `balancer.min_in_service`.
        #[arg(long)]
        drain: bool,
        /// With --drain: how many nodes may be out of service at once.
        #[arg(long, default_value_t = 1, requires = "drain", value_parser = batch_range())]
        batch_size: usize,
        /// With --drain: stop waiting for a node's meetings after this long (e.g. 30m); the
        /// node goes back into service and its change stays pending.
        #[arg(long, requires = "drain", value_parser = parse_duration)]
        drain_timeout: Option<Duration>,
        /// Write the hosts that failed or were unreachable to FILE, one a line, for
        /// `--limit @FILE` on the next run (Ansible's retry file). A host stays in it until a
        /// run that selects it passes; the file goes once none is left.
        #[arg(long, value_name = "FILE")]
        retry_file: Option<PathBuf>,
    },
    // Pool commands (src/pool/).
    /// Cordon nodes in the balancer and wait until their meetings have ended.
    Drain(DrainArgs),
    /// Enable drained nodes in the balancer again, after a health check.
    Undrain(PoolArgs),
    /// Rolling upgrade of the BBB nodes: drain, apply, health check, enable, batch by batch.
    Upgrade(UpgradeArgs),
    /// The pool as the balancer and the nodes see it.
    Status(PoolArgs),
    /// Show an Ansible inventory as ansible-core reads it (`ansible-inventory`); contacts no
    /// host. Secrets are shown as `<redacted>`.
    Inventory(InventoryArgs),
    /// Run one command on the hosts `--limit` selects, in parallel, as Ansible's ad-hoc
    /// `ansible PATTERN -m command -a ...`: `rollout exec pool.yml -l bbb -- uptime`.
    /// Everything after `--` is the command, each word passed as it is (no shell).
    Exec(ExecArgs),
    /// Print the shell completion script for SHELL on stdout, e.g.
    /// `rollout completions bash > /etc/bash_completion.d/rollout`.
    Completions {
        /// The shell the script is for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout, e.g. `rollout man | man -l -`.
    Man,
}

/// `rollout exec`.
#[derive(Args, Clone)]
struct ExecArgs {
    /// The inventory file (YAML), as for `rollout apply`; may be left out when `-i` names
    /// an Ansible inventory (`rollout exec -i hosts.ini -l all -- uptime`).
    // The index is explicit: `without_empty_env` re-adds the argument, which would otherwise
    // put it after the command.
    #[arg(
        index = 1,
        env = "ROLLOUT_INVENTORY",
        required_unless_present = "ansible_inventory"
    )]
    inventory: Option<PathBuf>,
    /// An Ansible inventory (INI or YAML file, a folder, or `host1,host2,`) instead of the
    /// rollout file's `inventory:`. Repeat for several.
    #[arg(
        short = 'i',
        long = "inventory",
        id = "ansible_inventory",
        value_name = "PATH"
    )]
    ansible_inventory: Vec<PathBuf>,
    /// The file holding the vault password (else $ANSIBLE_VAULT_PASSWORD_FILE).
    #[arg(long, value_name = "FILE", env = "ROLLOUT_VAULT_PASSWORD_FILE")]
    vault_password_file: Option<PathBuf>,
    /// Ask once on the terminal, without echo, for the password sudo asks for `become`
    /// (Ansible's `-K`); it goes to each host on stdin before the script (two lines), never on a command
    /// line, and is redacted from all output. Wins over `--become-password-file`.
    #[arg(short = 'K', long)]
    ask_become_pass: bool,
    /// The file whose first line is the become password (as `--ask-become-pass`, for runs
    /// without a terminal).
    #[arg(long, value_name = "FILE", env = "ROLLOUT_BECOME_PASSWORD_FILE")]
    become_password_file: Option<PathBuf>,
    /// A vault secret as ansible-core's `--vault-id [LABEL@]SOURCE`: SOURCE is a password
    /// file, an executable script (its output is the password) or `prompt`. Repeat for
    /// several; tried after $ANSIBLE_VAULT_IDENTITY_LIST, the vault's own label first.
    #[arg(long = "vault-id", value_name = "[LABEL@]SOURCE")]
    vault_id: Vec<String>,
    /// Ask for the vault password on the terminal (not echoed), as `--vault-id @prompt`,
    /// tried last.
    #[arg(long)]
    ask_vault_pass: bool,
    /// The hosts to run on, as Ansible's host patterns (as for `apply`). Required: use
    /// `-l all` for every host.
    #[arg(short, long, value_name = "PATTERN", required = true)]
    limit: String,
    /// How many hosts to run on at once (1 to 10000).
    #[arg(short, long, default_value_t = 50, value_parser = forks_range(), env = "ROLLOUT_FORKS")]
    forks: usize,
    /// Extra variables, as for `apply` (they can set a host's connection variables).
    #[arg(short = 'e', long = "extra-vars", value_parser = extra_vars::parse_arg)]
    extra_vars: Vec<ExtraVars>,
    /// auto/plain: each host's output as it ends; json: one `exec` object at the end.
    #[arg(short, long, value_enum, default_value_t = Output::Auto)]
    output: Output,
    /// Accept and remember host keys of hosts not yet in known_hosts (default: refuse).
    #[arg(long)]
    accept_new_host_keys: bool,
    /// Write the hosts that failed or were unreachable to FILE, one a line, for
    /// `--limit @FILE` (Ansible's retry file). A host stays in it until a run that selects it
    /// passes; the file goes once none is left.
    #[arg(long, value_name = "FILE")]
    retry_file: Option<PathBuf>,
    /// The command and its arguments, after `--`.
    #[arg(index = 2, last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

impl From<ExecArgs> for crate::adhoc::Request {
    fn from(a: ExecArgs) -> crate::adhoc::Request {
        crate::adhoc::Request {
            options: app::Options {
                inventory: a.inventory.unwrap_or_default(),
                ansible_inventory: a.ansible_inventory,
                vault_password_file: a.vault_password_file.or_else(ansible_vault_password_file),
                become_password: become_password(a.ask_become_pass, a.become_password_file),
                vault_ids: vault_ids(a.vault_id, a.ask_vault_pass),
                limit: Some(a.limit),
                tags: vec![],
                skip_tags: vec![],
                forks: a.forks,
                extra_vars: a.extra_vars,
                output: a.output.into(),
                verbose: false,
                accept_new_host_keys: a.accept_new_host_keys,
                lock_wait: None,
            },
            argv: a.command,
            retry_file: a.retry_file,
        }
    }
}

/// `rollout inventory`.
#[derive(Args, Clone)]
#[command(group(clap::ArgGroup::new("show").required(true).args(["list", "graph", "host"])))]
struct InventoryArgs {
    /// A rollout file whose `inventory:` names the Ansible inventory to show, as the other
    /// commands' INVENTORY; `-i` replaces it.
    #[arg(
        env = "ROLLOUT_INVENTORY",
        required_unless_present = "ansible_inventory"
    )]
    inventory: Option<PathBuf>,
    /// An Ansible inventory: an INI or YAML file, a folder of them, or `host1,host2,`.
    /// Repeat for several, read in order.
    #[arg(
        short = 'i',
        long = "inventory",
        id = "ansible_inventory",
        value_name = "PATH"
    )]
    ansible_inventory: Vec<PathBuf>,
    /// All groups and every host's merged variables, as `ansible-inventory --list` (JSON).
    #[arg(long)]
    list: bool,
    /// The group tree under GROUP (default `all`), as `ansible-inventory --graph`.
    #[arg(long, value_name = "GROUP", num_args = 0..=1, default_missing_value = "all")]
    graph: Option<String>,
    /// One host's merged variables (JSON), as `ansible-inventory --host`.
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// The file holding the vault password (else $ANSIBLE_VAULT_PASSWORD_FILE).
    #[arg(long, value_name = "FILE", env = "ROLLOUT_VAULT_PASSWORD_FILE")]
    vault_password_file: Option<PathBuf>,
    /// A vault secret as ansible-core's `--vault-id [LABEL@]SOURCE`: SOURCE is a password
    /// file, an executable script (its output is the password) or `prompt`. Repeat for
    /// several; tried after $ANSIBLE_VAULT_IDENTITY_LIST, the vault's own label first.
    #[arg(long = "vault-id", value_name = "[LABEL@]SOURCE")]
    vault_id: Vec<String>,
    /// Ask for the vault password on the terminal (not echoed), as `--vault-id @prompt`,
    /// tried last.
    #[arg(long)]
    ask_vault_pass: bool,
    /// With --list: only the hosts these Ansible host patterns choose, as
    /// `ansible-inventory --limit` (--graph and --host ignore it there too).
    #[arg(short, long, value_name = "PATTERN")]
    limit: Option<String>,
}

impl From<InventoryArgs> for app::InventoryQuery {
    fn from(a: InventoryArgs) -> app::InventoryQuery {
        let show = match (a.graph, a.host) {
            (Some(g), _) => app::InventoryShow::Graph(g),
            (None, Some(h)) => app::InventoryShow::Host(h),
            (None, None) => app::InventoryShow::List,
        };
        app::InventoryQuery {
            // `-i` replaces the rollout file, as for the other commands.
            rollout_file: a.inventory.filter(|_| a.ansible_inventory.is_empty()),
            sources: a.ansible_inventory,
            limit: a.limit,
            show,
            vault_password_file: a.vault_password_file.or_else(ansible_vault_password_file),
            vault_ids: vault_ids(a.vault_id, a.ask_vault_pass),
        }
    }
}

/// The arguments every command shares: which hosts and steps, and how to show them.
#[derive(Args, Clone)]
struct RunArgs {
    /// The inventory file (YAML): rollout's own hosts under `all:`, or a rollout file that
    /// names an Ansible inventory (`inventory:`) and gives its groups' roles.
    #[arg(env = "ROLLOUT_INVENTORY")]
    inventory: PathBuf,
    /// An Ansible inventory (INI or YAML file, a folder, or `host1,host2,`) giving the hosts,
    /// groups and variables, instead of the rollout file's `inventory:`. Repeat for several.
    #[arg(
        short = 'i',
        long = "inventory",
        id = "ansible_inventory",
        value_name = "PATH"
    )]
    ansible_inventory: Vec<PathBuf>,
    /// The file holding the vault password for the Ansible inventory's vaults (else
    /// $ANSIBLE_VAULT_PASSWORD_FILE).
    #[arg(long, value_name = "FILE", env = "ROLLOUT_VAULT_PASSWORD_FILE")]
    vault_password_file: Option<PathBuf>,
    /// Ask once on the terminal, without echo, for the password sudo asks for `become`
    /// (Ansible's `-K`); it goes to each host on stdin before the script (two lines), never on a command
    /// line, and is redacted from all output. Wins over `--become-password-file`.
    #[arg(short = 'K', long)]
    ask_become_pass: bool,
    /// The file whose first line is the become password (as `--ask-become-pass`, for runs
    /// without a terminal).
    #[arg(long, value_name = "FILE", env = "ROLLOUT_BECOME_PASSWORD_FILE")]
    become_password_file: Option<PathBuf>,
    /// A vault secret as ansible-core's `--vault-id [LABEL@]SOURCE`: SOURCE is a password
    /// file, an executable script (its output is the password) or `prompt`. Repeat for
    /// several; tried after $ANSIBLE_VAULT_IDENTITY_LIST, the vault's own label first.
    #[arg(long = "vault-id", value_name = "[LABEL@]SOURCE")]
    vault_id: Vec<String>,
    /// Ask for the vault password on the terminal (not echoed), as `--vault-id @prompt`,
    /// tried last.
    #[arg(long)]
    ask_vault_pass: bool,
    /// Hosts to run on, as Ansible's host patterns: names, groups, globs (`web*`), `~regex`,
    /// subscripts (`bbb[0]`, `bbb[1:3]`), `a,b` or `a:b` (union), `&g` (and), `!g` (not),
    /// `@FILE` (one pattern a line, e.g. a retry file).
    #[arg(short, long, value_name = "PATTERN")]
    limit: Option<String>,
    /// Only steps with one of these tags (a role's name is a tag of all its steps).
    #[arg(short, long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Leave out steps with one of these tags.
    #[arg(long, value_delimiter = ',')]
    skip_tags: Vec<String>,
    /// How many hosts to work on at once (1 to 10000).
    #[arg(short, long, default_value_t = 50, value_parser = forks_range(), env = "ROLLOUT_FORKS")]
    forks: usize,
    /// Extra variables, highest precedence, as Ansible reads them: `k=v k2=v2` (values are
    /// strings), a YAML/JSON mapping (`{"k": 1}`), or `@FILE` (YAML/JSON). Repeatable.
    #[arg(short = 'e', long = "extra-vars", value_parser = extra_vars::parse_arg)]
    extra_vars: Vec<ExtraVars>,
    /// auto: bars on a terminal, plain lines otherwise; json: one event per line.
    #[arg(short, long, value_enum, default_value_t = Output::Auto)]
    output: Output,
    /// Show the remote scripts (secrets redacted) and every step.
    #[arg(short, long)]
    verbose: bool,
    /// Accept and remember host keys of hosts not yet in known_hosts (default: refuse).
    #[arg(long)]
    accept_new_host_keys: bool,
    /// Pool commands: wait up to this long (`90s`, `10m`) for another rollout working on the
    /// same pool to finish, instead of stopping at once.
    #[arg(long, value_name = "DURATION", value_parser = wait_duration)]
    wait: Option<Duration>,
}

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Progress bars on a terminal, plain lines otherwise.
    Auto,
    Plain,
    Json,
}

impl From<Output> for Format {
    fn from(o: Output) -> Format {
        match o {
            Output::Auto => Format::Auto,
            Output::Plain => Format::Plain,
            Output::Json => Format::Json,
        }
    }
}

/// `rollout drain`.
#[derive(Args, Clone)]
struct DrainArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Stop waiting after this long (e.g. 90s, 30m, 2h); the node stays cordoned.
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<Duration>,
    /// End the meetings that are left (at once, or when --timeout expires).
    #[arg(long)]
    force: bool,
}

/// `rollout undrain` and `rollout status`.
#[derive(Args, Clone)]
struct PoolArgs {
    #[command(flatten)]
    run: RunArgs,
}

/// `rollout upgrade`.
#[derive(Args, Clone)]
struct UpgradeArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Nodes per batch: a number (2), a percentage (25%), or growing batches (1,10%,50%,100%)
    /// whose last size repeats. Never more nodes than this are out of service at once.
    #[arg(long, default_value = "1")]
    batch_size: String,
    /// Ask for confirmation before each batch after the first.
    #[arg(long)]
    pause: bool,
    /// Stop once more nodes than this have failed (default 0: at the first failure; at most
    /// 10000).
    #[arg(long, default_value_t = 0, value_parser = max_failures_range())]
    max_failures: usize,
    /// Give up draining a node after this long (the node fails and stays cordoned).
    #[arg(long, value_parser = parse_duration)]
    drain_timeout: Option<Duration>,
    /// End the meetings still running when --drain-timeout expires.
    #[arg(long)]
    force: bool,
    /// Do not stage: run the steps marked `stage: true` (downloads, package fetches) with the
    /// rest, after the cordon, instead of before it while the node still serves classes.
    #[arg(long)]
    no_stage: bool,
    /// Which node goes next: `drain-fastest` (empty nodes first, then those whose classes end
    /// soonest, then the smallest; read before every batch) or `inventory` (the inventory's
    /// order, as Ansible's `serial`: a canary node first).
    #[arg(long, value_enum, default_value_t = crate::pool::Order::DrainFastest)]
    order: crate::pool::Order,
}

/// The most hosts worked on at once, and the most failures `--max-failures` allows: far more
/// than any pool, far below what the semaphore behind `--forks` can count (it panicked above
/// `usize::MAX >> 3`).
const MAX_HOSTS: u64 = 10_000;

/// `--forks`: 1..=[`MAX_HOSTS`]; 0 would wait forever, so it is an error, not 1.
fn forks_range() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..=MAX_HOSTS)
}

/// `--wait`: a duration of at most a day.
fn wait_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > Duration::from_secs(86_400) {
        return Err("at most 24h".into());
    }
    Ok(d)
}

/// `$ANSIBLE_VAULT_PASSWORD_FILE`, the default of `--vault-password-file` after
/// `$ROLLOUT_VAULT_PASSWORD_FILE`; empty counts as unset.
fn ansible_vault_password_file() -> Option<PathBuf> {
    std::env::var_os("ANSIBLE_VAULT_PASSWORD_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `command` with the `env` of every option whose variable is set but empty taken away, in
/// every subcommand: an empty `ROLLOUT_LOG_FILE=` or `ROLLOUT_INVENTORY=` counts as unset, as
/// Ansible treats an empty `ANSIBLE_LOG_PATH`, instead of clap's "a value is required".
fn without_empty_env(mut command: clap::Command) -> clap::Command {
    let empty: Vec<clap::Id> = command
        .get_arguments()
        .filter(|a| {
            a.get_env()
                .is_some_and(|var| std::env::var_os(var).is_some_and(|v| v.is_empty()))
        })
        .map(|a| a.get_id().clone())
        .collect();
    for id in empty {
        command = command.mut_arg(id, |a| a.env(None::<&'static str>));
    }
    let subcommands: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for name in subcommands {
        command = command.mut_subcommand(name, without_empty_env);
    }
    command
}

/// When the rollout file came from `$ROLLOUT_INVENTORY` (and no `-i` replaces it, for
/// `rollout inventory`): it must be there, and the error names the variable, which the
/// command line does not show.
///
/// # Errors
/// `error: PATH (from $ROLLOUT_INVENTORY): cannot read file: WHY`.
fn check_inventory_from_env(sub: &clap::ArgMatches) -> Result<(), String> {
    use clap::parser::ValueSource;
    // `try_contains_id` first: `value_source` panics on an id the subcommand lacks.
    if !matches!(sub.try_contains_id("inventory"), Ok(true))
        || sub.value_source("inventory") != Some(ValueSource::EnvVariable)
    {
        return Ok(());
    }
    if let Ok(Some(mut i)) = sub.try_get_many::<PathBuf>("ansible_inventory")
        && i.next().is_some()
        && sub.try_get_one::<bool>("list").is_ok()
    {
        // `rollout inventory -i ...`: the rollout file is not read.
        return Ok(());
    }
    let Ok(Some(path)) = sub.try_get_one::<PathBuf>("inventory") else {
        return Ok(());
    };
    match std::fs::metadata(path) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "error: {} (from $ROLLOUT_INVENTORY): cannot read file: {e}",
            path.display()
        )),
    }
}

/// `$ROLLOUT_INVENTORY` naming an Ansible INI inventory (as `ANSIBLE_INVENTORY` does for
/// Ansible) rather than a rollout file: `rollout exec` and `rollout inventory` read it as if
/// it were given with `-i` (and a `-i` on the command line replaces it, as in Ansible);
/// `plan`, `apply` and the pool commands need the rollout file, which names the groups'
/// roles, so for them it is an error that says so.
///
/// # Errors
/// `error: PATH (from $ROLLOUT_INVENTORY) is an Ansible INI inventory; ...` for the commands
/// that need a rollout file.
fn ansible_inventory_from_env(cmd: &mut Cmd, sub: &clap::ArgMatches) -> Result<(), String> {
    use clap::parser::ValueSource;
    if !matches!(sub.try_contains_id("inventory"), Ok(true))
        || sub.value_source("inventory") != Some(ValueSource::EnvVariable)
    {
        return Ok(());
    }
    let Ok(Some(path)) = sub.try_get_one::<PathBuf>("inventory") else {
        return Ok(());
    };
    let path = path.clone();
    let text =
        crate::bounded::read_to_string(&path, crate::bounded::MAX_FILE_BYTES).unwrap_or_default();
    if !crate::inventory::looks_like_ansible_ini(&path, &text) {
        return Ok(());
    }
    let take = |inventory: &mut Option<PathBuf>, ansible: &mut Vec<PathBuf>| {
        *inventory = None;
        if ansible.is_empty() {
            ansible.push(path.clone());
        }
    };
    match cmd {
        Cmd::Exec(a) => take(&mut a.inventory, &mut a.ansible_inventory),
        Cmd::Inventory(a) => take(&mut a.inventory, &mut a.ansible_inventory),
        _ => {
            return Err(format!(
                "error: {} (from $ROLLOUT_INVENTORY) is an Ansible INI inventory, but this \
                 command needs the rollout file (the YAML file that gives the groups their roles \
                 and names the Ansible inventory with `inventory: {}`); unlike \
                 $ANSIBLE_INVENTORY, $ROLLOUT_INVENTORY names that file. `rollout exec` and \
                 `rollout inventory` read an Ansible inventory from it directly \
                 (docs/from-ansible.md)",
                path.display(),
                path.display()
            ));
        }
    }
    Ok(())
}

/// ansible-core's vault ids of a run: `ANSIBLE_VAULT_IDENTITY_LIST` (comma-separated
/// `LABEL@SOURCE`), then `--vault-id` in order, then `--ask-vault-pass` as
/// `@prompt_ask_vault_pass` (ansible-core's `CLI.build_vault_ids`).
fn vault_ids(given: Vec<String>, ask_vault_pass: bool) -> Vec<String> {
    use crate::inventory::ansible::vault::ASK_VAULT_PASS;
    let mut ids: Vec<String> = std::env::var("ANSIBLE_VAULT_IDENTITY_LIST")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    ids.extend(given);
    if ask_vault_pass {
        ids.push(format!("@{ASK_VAULT_PASS}"));
    }
    ids
}

/// `apply --batch-size`: 1..=[`MAX_HOSTS`].
fn batch_range() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..=MAX_HOSTS)
}

/// `--max-failures`: 0..=[`MAX_HOSTS`].
fn max_failures_range() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(0..=MAX_HOSTS)
}

/// `-K` (asked on the terminal) wins over a password file (option or environment).
fn become_password(ask: bool, file: Option<PathBuf>) -> Option<crate::connection::BecomePassword> {
    use crate::connection::BecomePassword;
    if ask {
        Some(BecomePassword::Ask)
    } else {
        file.map(BecomePassword::File)
    }
}

impl From<RunArgs> for app::Options {
    fn from(a: RunArgs) -> app::Options {
        app::Options {
            inventory: a.inventory,
            ansible_inventory: a.ansible_inventory,
            vault_password_file: a.vault_password_file.or_else(ansible_vault_password_file),
            become_password: become_password(a.ask_become_pass, a.become_password_file),
            vault_ids: vault_ids(a.vault_id, a.ask_vault_pass),
            limit: a.limit,
            tags: a.tags,
            skip_tags: a.skip_tags,
            forks: a.forks,
            extra_vars: a.extra_vars,
            output: a.output.into(),
            verbose: a.verbose,
            accept_new_host_keys: a.accept_new_host_keys,
            lock_wait: a.wait,
        }
    }
}

impl From<Cmd> for subcommand::Subcommand {
    fn from(cmd: Cmd) -> subcommand::Subcommand {
        match cmd {
            Cmd::Plan(a) => subcommand::Subcommand::Run {
                options: a.into(),
                goal: Goal::Plan,
                show_diff: true,
                meetings: Meetings::Hold,
                retry_file: None,
            },
            Cmd::Apply {
                run,
                check,
                diff,
                force,
                drain,
                batch_size,
                drain_timeout,
                retry_file,
            } => subcommand::Subcommand::Run {
                options: run.into(),
                goal: if check { Goal::Plan } else { Goal::Apply },
                show_diff: diff || check,
                meetings: match (force, drain) {
                    (true, _) => Meetings::Force,
                    (false, true) => Meetings::Drain {
                        batch: batch_size,
                        timeout: drain_timeout,
                    },
                    (false, false) => Meetings::Hold,
                },
                retry_file,
            },
            Cmd::Drain(a) => subcommand::Subcommand::Drain(DrainOptions {
                run: a.run.into(),
                timeout: a.timeout,
                force: a.force,
            }),
            Cmd::Undrain(a) => subcommand::Subcommand::Undrain(a.run.into()),
            Cmd::Upgrade(a) => subcommand::Subcommand::Upgrade(UpgradeOptions {
                run: a.run.into(),
                batch_size: a.batch_size,
                pause: a.pause,
                max_failures: a.max_failures,
                drain_timeout: a.drain_timeout,
                force: a.force,
                stage: !a.no_stage,
                order: a.order,
            }),
            Cmd::Status(a) => subcommand::Subcommand::Status(a.run.into()),
            Cmd::Inventory(a) => subcommand::Subcommand::Inventory(a.into()),
            Cmd::Exec(a) => subcommand::Subcommand::Exec(a.into()),
            Cmd::Completions { shell } => subcommand::Subcommand::Print(completions(shell)),
            Cmd::Man => subcommand::Subcommand::Print(man_page()),
        }
    }
}

/// The completion script of `rollout` for `shell`, as clap_complete writes it from the
/// command line's definition (so it always knows every subcommand and option).
fn completions(shell: clap_complete::Shell) -> String {
    let mut command = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "rollout", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The manual page of `rollout` in roff (section 1): clap_mangen's title, name, synopsis,
/// description and options from the command line's definition; then the subcommands, a
/// section each (`ROLLOUT PLAN`, ...) with its synopsis and options, on this one page (there
/// are no `rollout-plan(1)` pages); then ENVIRONMENT (every variable an option reads, and
/// the Ansible ones rollout honours), EXIT STATUS ([`Exit`]) and VERSION.
fn man_page() -> String {
    use roff::{Roff, bold, roman};
    let command = <Cli as clap::CommandFactory>::command();
    let man = clap_mangen::Man::new(command.clone());
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    let subs: Vec<&clap::Command> = command.get_subcommands().collect();
    let mut r = Roff::new();
    r.control("SH", ["SUBCOMMANDS"]);
    for sub in &subs {
        r.control("TP", []);
        r.text([bold(format!("rollout {}", sub.get_name()))]);
        r.text([roman(
            sub.get_about().map(|a| a.to_string()).unwrap_or_default(),
        )]);
    }
    r.control("PP", []);
    r.text([roman(
        "Each is described in its section below; `rollout SUBCOMMAND --help` shows the same.",
    )]);
    let _ = r.to_writer(&mut out);
    for sub in &subs {
        let mut r = Roff::new();
        r.control(
            "SH",
            [format!("ROLLOUT {}", sub.get_name().to_uppercase()).as_str()],
        );
        if let Some(about) = sub.get_about() {
            r.text([roman(about.to_string())]);
        }
        let _ = r.to_writer(&mut out);
        let man = clap_mangen::Man::new(
            (*sub)
                .clone()
                .bin_name(format!("rollout {}", sub.get_name())),
        );
        let mut part = Vec::new();
        let _ = man.render_synopsis_section(&mut part);
        let _ = man.render_options_section(&mut part);
        // Subsections of the subcommand's section, not sections of the page.
        for line in String::from_utf8_lossy(&part).lines() {
            match line.strip_prefix(".SH ") {
                Some(title) => out.extend(format!(".SS {title}\n").bytes()),
                None => out.extend(format!("{line}\n").bytes()),
            }
        }
    }
    let mut r = Roff::new();
    r.control("SH", ["ENVIRONMENT"]);
    for (var, what) in environment(&command) {
        r.control("TP", []);
        r.text([bold(var)]);
        r.text([roman(what)]);
    }
    r.control("SH", ["EXIT STATUS"]);
    for (exit, what) in [
        (Exit::Ok, "every host ok"),
        (
            Exit::Failed,
            "a host failed or was unreachable (the others still finish), or a pool command failed",
        ),
        (
            Exit::Input,
            "bad input (inventory, role, template or command line): nothing was touched",
        ),
        (
            Exit::Held,
            "plan/apply: nothing failed, but on a BBB node with meetings the steps that would \
             end them were held back (restart pending)",
        ),
        (Exit::Interrupted, "interrupted (Ctrl-C)"),
    ] {
        r.control("TP", []);
        r.text([bold(exit.code().to_string())]);
        r.text([roman(what)]);
    }
    let _ = r.to_writer(&mut out);
    let _ = man.render_version_section(&mut out);
    // Each part wrote roff's apostrophe preamble (two lines); it belongs once, at the top.
    let text = String::from_utf8_lossy(&out);
    let is_preamble = |l: &&str| l.starts_with(".ie \\n(.g .ds Aq") || l.starts_with(".el .ds Aq");
    let preamble: Vec<&str> = text.lines().filter(is_preamble).take(2).collect();
    let body: Vec<&str> = text.lines().filter(|l| !is_preamble(l)).collect();
    let mut page = preamble.join("\n");
    page.push('\n');
    page.push_str(&body.join("\n"));
    page.push('\n');
    page
}

/// The environment variables the man page names: every one an option of `command` (or of a
/// subcommand) reads through clap, with the options it stands for, then those rollout reads
/// itself as ansible-core does.
fn environment(command: &clap::Command) -> Vec<(String, String)> {
    let mut vars: Vec<(String, Vec<String>)> = Vec::new();
    for arg in std::iter::once(command)
        .chain(command.get_subcommands())
        .flat_map(|c| c.get_arguments())
    {
        let Some(var) = arg.get_env() else { continue };
        let var = var.to_string_lossy().into_owned();
        let name = match arg.get_long() {
            Some(long) => format!("--{long}"),
            None => arg.get_id().as_str().to_uppercase(),
        };
        match vars.iter_mut().find(|(v, _)| *v == var) {
            Some((_, names)) if !names.contains(&name) => names.push(name),
            Some(_) => {}
            None => vars.push((var, vec![name])),
        }
    }
    let mut out: Vec<(String, String)> = vars
        .into_iter()
        .map(|(var, names)| {
            (
                var,
                format!(
                    "the value of {} when not given on the command line",
                    names.join(", ")
                ),
            )
        })
        .collect();
    for (var, what) in [
        (
            "ANSIBLE_VAULT_PASSWORD_FILE",
            "the vault password file when neither --vault-password-file nor \
             ROLLOUT_VAULT_PASSWORD_FILE gives one (as ansible-core)",
        ),
        (
            "ANSIBLE_VAULT_IDENTITY_LIST",
            "vault ids (LABEL@SOURCE, comma-separated), tried before each --vault-id (as ansible-core)",
        ),
        (
            "ANSIBLE_VAULT_ID_MATCH",
            "when true, a vault is opened only with the secret of its own label (as ansible-core)",
        ),
        (
            "ROLLOUT_STATE_DIR",
            "where the local state backend keeps each pool's journal and lock (else \
             $XDG_STATE_HOME/rollout, else ~/.local/state/rollout)",
        ),
        (
            "XDG_STATE_HOME",
            "the state folder's parent when ROLLOUT_STATE_DIR is not set",
        ),
        (
            "PATH",
            "where rollout finds ssh (OpenSSH; `rollout --version` names the one found) and, \
             for local hosts, sh and sudo",
        ),
        (
            "NAME",
            "any variable an inventory names in a secret reference, `{secret: \"env:NAME\"}`: \
             its value is the secret, redacted from everything rollout prints",
        ),
    ] {
        out.push((var.to_string(), what.to_string()));
    }
    out
}

/// Turns a command line (program name first) into the subcommand it asks for, exactly as
/// [`main`] does, without running it: for harnesses that drive the command line in-process
/// (the fuzz targets under `fuzz/`).
///
/// # Errors
/// clap's error for a command line it refuses, also for `--help` and `--version` (whose
/// text is the error's rendering, exit code 0).
pub fn parse<I, T>(args: I) -> Result<subcommand::Subcommand, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args).map(|c| subcommand::Subcommand::from(c.cmd))
}

/// What `rollout --version` shows after `rollout `: the versions that matter when reporting a
/// problem. The commit and minijinja's version come from the build (build.rs); the OpenSSH
/// is the `ssh` on PATH that connections will run, as `ssh -V` reports it (on stderr).
fn long_version() -> String {
    let ssh = std::process::Command::new("ssh")
        .arg("-V")
        .stdin(std::process::Stdio::null())
        .output();
    let ssh = match ssh {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            match text.lines().next().map(str::trim) {
                Some(l) if !l.is_empty() => l.to_string(),
                _ => "`ssh -V` printed nothing".to_string(),
            }
        }
        Err(e) => format!("not found (`ssh -V`: {e})"),
    };
    format!(
        "{}\ncommit: {}\nminijinja: {}\nssh: {ssh}",
        env!("CARGO_PKG_VERSION"),
        option_env!("ROLLOUT_GIT_COMMIT").unwrap_or("unknown (not built from a git checkout)"),
        option_env!("ROLLOUT_MINIJINJA_VERSION").unwrap_or("unknown"),
    )
}

/// The environment variable a refused value came from, when clap refused a value (`e`) that
/// an option's `env` gave, not the command line: clap's own message names only the option.
fn from_env(e: &clap::Error, command: &clap::Command) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let Some(ContextValue::String(value)) = e.get(ContextKind::InvalidValue) else {
        return None;
    };
    let commands = std::iter::once(command).chain(command.get_subcommands());
    commands
        .flat_map(|c| c.get_arguments())
        .filter(|a| match a.get_long() {
            Some(long) => arg == &format!("--{long}") || arg.starts_with(&format!("--{long} ")),
            None => a
                .get_value_names()
                .is_some_and(|n| n.iter().any(|n| arg == &format!("<{n}>"))),
        })
        .filter_map(|a| a.get_env())
        .find(|var| std::env::var_os(var).is_some_and(|v| v.to_string_lossy() == *value))
        .map(|var| var.to_string_lossy().into_owned())
}

/// Adds a tip to two of clap's errors an Ansible user meets: "unexpected argument" in
/// `rollout exec`, whose usual cause is a command given without the `--` in front of it
/// (`rollout exec pool.yml -l all uptime -p`), and `--limit` given twice (Ansible keeps the
/// last one silently; rollout refuses, and says how to write both in one pattern).
fn usage_tip(mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let in_exec = matches!(
        e.get(ContextKind::Usage),
        Some(ContextValue::StyledStr(u)) if u.to_string().contains("rollout exec ")
    );
    let limit_twice = e.kind() == ErrorKind::ArgumentConflict
        && matches!(
            e.get(ContextKind::InvalidArg),
            Some(ContextValue::String(a)) if a.starts_with("--limit")
        );
    // `rollout exec -i hosts.ini -l all uptime`: the command taken as INVENTORY.
    let no_command = e.kind() == ErrorKind::MissingRequiredArgument
        && in_exec
        && e.to_string().contains("<COMMAND>");
    let tip = if (e.kind() == ErrorKind::UnknownArgument || no_command) && in_exec {
        "write the command after `--`: rollout exec INVENTORY -l PATTERN -- COMMAND [ARG]..."
    } else if limit_twice {
        "give one pattern: `-l 'bbb01,bbb02'` (either), `-l 'bbb:&berlin'` (both), \
         `-l 'bbb:!bbb03'` (not)"
    } else {
        return e;
    };
    e.insert(
        ContextKind::Suggested,
        ContextValue::StyledStrs(vec![tip.to_string().into()]),
    );
    e
}

/// How many times `--log-file` is given in `args` (the command line without the program
/// name), up to a `--` (after which the words are `exec`'s command). clap keeps only the last
/// of a global option given both before and after the subcommand; rollout refuses that
/// instead of silently dropping a log the operator asked for.
fn log_file_options(args: impl Iterator<Item = std::ffi::OsString>) -> usize {
    args.take_while(|a| a != "--")
        .filter(|a| {
            let a = a.to_string_lossy();
            a == "--log-file" || a.starts_with("--log-file=")
        })
        .count()
}

/// The vault password sources given on the command line (`--vault-id`, and
/// `--vault-password-file` unless it came from `$ROLLOUT_VAULT_PASSWORD_FILE`), checked
/// before anything runs (see [`crate::inventory::ansible::vault::check_given_source`]).
/// Sources from the environment are left to the first vault that needs them: a shell may
/// set them for another project.
///
/// # Errors
/// The first that fails, as `error: OPTION VALUE: vault id `LABEL`: the vault password file
/// FILE was not found`.
fn check_vault_sources(sub: &clap::ArgMatches) -> Result<(), String> {
    use crate::inventory::ansible::vault::{DEFAULT_LABEL, check_given_source, split_vault_id};
    use clap::parser::ValueSource;
    let mut given: Vec<(&str, String)> = Vec::new();
    if let Ok(Some(ids)) = sub.try_get_many::<String>("vault_id") {
        given.extend(ids.map(|s| ("--vault-id", s.clone())));
    }
    // `try_contains_id` first: `value_source` panics on an id the subcommand lacks.
    if matches!(sub.try_contains_id("vault_password_file"), Ok(true))
        && sub.value_source("vault_password_file") == Some(ValueSource::CommandLine)
        && let Ok(Some(file)) = sub.try_get_one::<PathBuf>("vault_password_file")
    {
        given.push(("--vault-password-file", file.to_string_lossy().into_owned()));
    }
    for (option, value) in given {
        let (label, source) = if option == "--vault-id" {
            split_vault_id(&value)
        } else {
            (DEFAULT_LABEL.to_string(), value.clone())
        };
        check_given_source(&source)
            .map_err(|e| format!("error: {option} {value}: vault id `{label}`: {e}"))?;
    }
    Ok(())
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let mut command = <Cli as clap::CommandFactory>::command();
    // Only when asked: every other command must not run `ssh -V` (a recording ssh stand-in
    // would see it). Leaked once per process: clap wants a `'static` text here without its
    // `string` feature.
    if std::env::args_os().skip(1).any(|a| a == "--version") {
        command = command.long_version(&*Box::leak(long_version().into_boxed_str()));
    }
    command = without_empty_env(command);
    let matches = match command.clone().try_get_matches() {
        Ok(m) => m,
        Err(e) => match from_env(&e, &command) {
            // clap's own text, but naming the variable the bad value came from.
            Some(var) => {
                let text = e.render().to_string();
                eprint!(
                    "{}",
                    text.replacen(" for '", &format!(" (from ${var}) for '"), 1)
                );
                return Exit::Input.code();
            }
            None => usage_tip(e).exit(),
        },
    };
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if log_file_options(std::env::args_os().skip(1)) > 1 {
        eprintln!(
            "error: --log-file given more than once (before and after the subcommand?): \
             rollout writes one log; give it once"
        );
        return Exit::Input.code();
    }
    if let Some(path) = &cli.log_file
        && let Err(e) = crate::log_file::open(path)
    {
        eprintln!("error: --log-file (or $ROLLOUT_LOG_FILE): {e}");
        return Exit::Input.code();
    }
    if let Some((_, sub)) = matches.subcommand()
        && let Err(text) = ansible_inventory_from_env(&mut cli.cmd, sub)
            .and_then(|()| check_inventory_from_env(sub))
            .and_then(|()| check_vault_sources(sub))
    {
        eprintln!("{text}");
        crate::log_file::lines(&text);
        return Exit::Input.code();
    }
    let cmd = subcommand::Subcommand::from(cli.cmd);
    let format = cmd.format();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failed.code();
        }
    };
    let exit = rt.block_on(async move {
        subcommand::run(cmd).await.unwrap_or_else(|e| {
            e.print(format);
            e.exit()
        })
    });
    if exit == Exit::Interrupted {
        // Do not wait for what the interruption left behind (a pending stdin read, SSH
        // channels): the process ends now, as it did before the runtime shut down.
        rt.shutdown_background();
    }
    exit.code()
}
