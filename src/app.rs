//! The application core under every command: which hosts and steps a run covers and how it
//! shows them ([`Options`], free of any command-line parser), [`load`] (inventory, roles,
//! templates, plans: every input error before any host is touched), [`execute`] (the
//! executor with the run's one connector and one reporter) and [`finish`] (the run's typed
//! summary). `cli` turns arguments into these types; the pool commands and the tests use
//! them directly, so nothing below the command line depends on it.

use crate::connection::{self, Connector};
use crate::error::Diagnostic;
use crate::exec::{self, Goal};
use crate::inventory::{self, Host, Inventory};
use crate::plan::{self, Filter, HostPlan};
use crate::report::summary::{self, RunSummary};
use crate::report::{Format, HostResult, Reporter, Settings};
use crate::role;
use crate::template::Templates;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a run covers and how it is shown.
#[derive(Debug, Clone)]
pub struct Options {
    /// The inventory file (YAML): rollout's own format, or a rollout file naming an Ansible
    /// inventory. Empty for `rollout exec -i SOURCE` without one (see [`Options::named`]).
    pub inventory: PathBuf,
    /// Ansible inventory sources (`-i`, in order), replacing the rollout file's `inventory:`.
    pub ansible_inventory: Vec<PathBuf>,
    /// The vault password file for the Ansible inventory's vaults
    /// (`--vault-password-file` or `ANSIBLE_VAULT_PASSWORD_FILE`).
    pub vault_password_file: Option<PathBuf>,
    /// Where the become password comes from (`--ask-become-pass`, `--become-password-file`);
    /// `None`: sudo must not ask for one (`sudo -n`).
    pub become_password: Option<connection::BecomePassword>,
    /// ansible-core's vault ids (`LABEL@SOURCE`), in order: `ANSIBLE_VAULT_IDENTITY_LIST`, each
    /// `--vault-id`, then `@prompt_ask_vault_pass` for `--ask-vault-pass` (see
    /// [`crate::inventory::ansible::vault::VaultIds::load`]).
    pub vault_ids: Vec<String>,
    /// `--limit`: Ansible's host patterns (see [`crate::inventory::select`]).
    pub limit: Option<String>,
    /// Only steps with one of these tags (empty: all).
    pub tags: Vec<String>,
    /// Leave out steps with one of these tags.
    pub skip_tags: Vec<String>,
    /// How many hosts to work on at once.
    pub forks: usize,
    /// Extra variables (`-e`, in order), highest precedence; see [`crate::extra_vars`].
    pub extra_vars: Vec<crate::extra_vars::ExtraVars>,
    pub output: Format,
    /// Show the remote scripts (secrets redacted) and every step.
    pub verbose: bool,
    /// Accept and remember host keys of hosts not yet in known_hosts.
    pub accept_new_host_keys: bool,
    /// Pool commands: how long to wait for another rollout's lock on the pool (`None`: fail
    /// at once, naming the holder).
    pub lock_wait: Option<std::time::Duration>,
}

impl Options {
    /// The file messages about the inventory name: the rollout file, or without one the
    /// first `-i` source.
    pub fn named(&self) -> &Path {
        match self.ansible_inventory.first() {
            Some(first) if self.inventory.as_os_str().is_empty() => first,
            _ => &self.inventory,
        }
    }
}

/// Everything loaded and validated for a run.
pub struct Prepared {
    pub inventory: Inventory,
    /// One plan per selected host, in inventory order.
    pub plans: Vec<HostPlan>,
    /// The run's one connector (SSH or local per host), shared by every part of the run.
    pub connector: Arc<dyn Connector>,
    /// Where the pool's lock and journal live (the inventory's `state:`).
    pub state: crate::state::Backend,
}

/// Why a run stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "rollout: interrupted. Steps already running on hosts finish; no further steps start.\n\
     Run the same command again: it checks every host and applies only what is still missing."
)]
pub struct Interrupted;

/// Loads the inventory, roles and templates and plans every selected host with `run_vars`
/// (variables the command sets, such as `rollout_upgrade`). Contacts nothing.
///
/// Errors: every input problem found, as located diagnostics.
pub fn load(o: &Options, run_vars: &Map<String, Value>) -> Result<Prepared, Vec<Diagnostic>> {
    let ansible = inventory::AnsibleSources {
        sources: o.ansible_inventory.clone(),
        vault_password_file: o.vault_password_file.clone(),
        vault_ids: o.vault_ids.clone(),
    };
    let extra_vars = crate::extra_vars::load(&o.extra_vars).map_err(|d| vec![d])?;
    let inv = inventory::load_with(&o.inventory, &extra_vars, &ansible).map_err(|d| vec![d])?;
    let state = crate::state::Backend::load(&inv).map_err(|d| vec![d])?;
    let hosts: Vec<&Host> = inventory::select(&inv, o.limit.as_deref())
        .map_err(|e| vec![Diagnostic::file(&o.inventory, e)])?;
    let role_names: Vec<&String> = hosts.iter().flat_map(|h| h.roles.iter()).collect();
    let roles = role::load_all(&inv.roles_dir, role_names).map_err(|d| vec![d])?;
    unknown_tags(&o.tags, &hosts, &roles).map_err(|e| vec![Diagnostic::file(&o.inventory, e)])?;
    let templates = Templates::load(&inv.templates_dir).map_err(|d| vec![d])?;
    let filter = Filter {
        tags: o.tags.clone(),
        skip_tags: o.skip_tags.clone(),
    };
    let plans = plan::build(&inv, &hosts, &roles, &templates, &filter, run_vars)?;
    let connector = connector(o, &inv, &hosts)?;
    Ok(Prepared {
        inventory: inv,
        plans,
        connector,
        state,
    })
}

/// The run's one connector for `inv`, after every input check: asks for or reads the become
/// password (if `o` says where from) and registers it, in all its spellings, with the run's
/// secrets and the process's redaction set before any host is contacted. When none of the
/// selected `hosts` would be sent the password (no `become`, or root logs in), says so in a
/// warning: a password given for nothing usually means the wrong inventory or limit.
///
/// Errors: a become password that cannot be read (no terminal, unreadable or empty file), as
/// a diagnostic naming the file (the inventory, for the prompt); never the password.
pub fn connector(
    o: &Options,
    inv: &Inventory,
    hosts: &[&Host],
) -> Result<Arc<dyn Connector>, Vec<Diagnostic>> {
    let password = match &o.become_password {
        None => None,
        Some(source) => {
            let place = match source {
                connection::BecomePassword::File(f) => f.as_path(),
                connection::BecomePassword::Ask => o.named(),
            };
            let pw = source
                .read()
                .map_err(|e| vec![Diagnostic::file(place, e)])?;
            crate::secret::Secrets::new(vec![pw.clone()]);
            inv.secrets.add_derived(crate::secret::spellings(&pw));
            if !hosts
                .iter()
                .any(|h| connection::sends_become_password(h, true))
            {
                let text = "warning: a become password was given, but no selected host uses it \
                            (none has `become` with a login user other than root)";
                eprintln!("{text}");
                crate::log_file::lines(text);
            }
            Some(Arc::<str>::from(pw))
        }
    };
    Ok(connection::for_hosts(
        inv.ssh_config.clone(),
        o.accept_new_host_keys,
        password,
    ))
}

/// The inventory and the hosts `o.limit` selects (in inventory order), without roles,
/// templates or plans: for commands that run no steps (`rollout exec`). Contacts nothing.
///
/// Errors: every input problem of the inventory, and a limit that selects no host, as
/// located diagnostics.
pub fn load_hosts(o: &Options) -> Result<(Inventory, Vec<Host>), Vec<Diagnostic>> {
    let ansible = inventory::AnsibleSources {
        sources: o.ansible_inventory.clone(),
        vault_password_file: o.vault_password_file.clone(),
        vault_ids: o.vault_ids.clone(),
    };
    let extra_vars = crate::extra_vars::load(&o.extra_vars).map_err(|d| vec![d])?;
    let inv = if o.inventory.as_os_str().is_empty() {
        inventory::load_ansible(&extra_vars, &ansible)
    } else {
        inventory::load_with(&o.inventory, &extra_vars, &ansible)
    }
    .map_err(|d| vec![d])?;
    let hosts: Vec<Host> = inventory::select(&inv, o.limit.as_deref())
        .map_err(|e| vec![Diagnostic::file(o.named(), e)])?
        .into_iter()
        .cloned()
        .collect();
    if hosts.is_empty() {
        return Err(vec![Diagnostic::file(o.named(), "no host selected")]);
    }
    Ok((inv, hosts))
}

/// `rollout inventory`: which Ansible inventory sources to read and what to show.
#[derive(Debug, Clone)]
pub struct InventoryQuery {
    /// A rollout file (`rollout inventory pool.yml`, `$ROLLOUT_INVENTORY`) whose
    /// `inventory:` gives the sources when `sources` is empty.
    pub rollout_file: Option<PathBuf>,
    /// Inventory files, folders or `host1,host2,` lists, in order (`-i`).
    pub sources: Vec<PathBuf>,
    /// What to print.
    pub show: InventoryShow,
    /// The vault password file (`--vault-password-file` or `ANSIBLE_VAULT_PASSWORD_FILE`).
    pub vault_password_file: Option<PathBuf>,
    /// ansible-core's vault ids (`LABEL@SOURCE`), in order: `ANSIBLE_VAULT_IDENTITY_LIST`, each
    /// `--vault-id`, then `@prompt_ask_vault_pass` for `--ask-vault-pass` (see
    /// [`crate::inventory::ansible::vault::VaultIds::load`]).
    pub vault_ids: Vec<String>,
    /// `--limit`: Ansible's host patterns; only `--list` observes it, as in
    /// `ansible-inventory`.
    pub limit: Option<String>,
}

/// What `rollout inventory` prints, as `ansible-inventory` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryShow {
    /// `--list`: groups and every host's merged variables, as JSON.
    List,
    /// `--graph [GROUP]`: the group tree under GROUP (default `all`).
    Graph(String),
    /// `--host NAME`: one host's merged variables, as JSON.
    Host(String),
}

/// Reads the Ansible inventory of `q` and renders what it asks for (the text to print).
/// Contacts nothing; decrypted vault values join the process's redaction set and every
/// secret is shown as `<redacted>`; ansible-core's warnings go to stderr.
///
/// Errors: a source, variable file or vault password that cannot be read, decrypted or
/// parsed, or a group or host that is not in the inventory, as located diagnostics.
pub fn inventory(q: &InventoryQuery) -> Result<String, Vec<Diagnostic>> {
    use crate::inventory::ansible;
    // Read now, needed only if a vault is met (an error then names the file and why).
    let password = ansible::vault::VaultIds::load(
        &q.vault_ids,
        q.vault_password_file.as_deref(),
        ansible::vault::id_match_from_env(),
    );
    crate::secret::Secrets::new(
        password
            .as_ref()
            .map(ansible::vault::VaultIds::passwords)
            .unwrap_or_default(),
    );
    let sources = match (&q.rollout_file, q.sources.is_empty()) {
        (Some(file), true) => crate::inventory::ansible_sources(file).map_err(|d| vec![d])?,
        _ => q.sources.clone(),
    };
    let inv = ansible::read(&sources, password.as_ref()).map_err(|d| vec![d])?;
    // Registered so that an error or any later output redacts them.
    crate::secret::Secrets::new(inv.secrets.clone());
    for w in &inv.warnings {
        let text = format!("warning: {}", crate::secret::redact_known(w));
        eprintln!("{text}");
        crate::log_file::lines(&text);
    }
    let first = sources.first().cloned().unwrap_or_default();
    match &q.show {
        InventoryShow::List => {
            let view = inv.pattern_view();
            let only = match &q.limit {
                Some(l) => Some(
                    crate::inventory::choose(&view, l, &first)
                        .map_err(|e| vec![Diagnostic::file(&first, e)])?
                        .into_iter()
                        .collect(),
                ),
                None => None,
            };
            Ok(ansible::to_json(&inv.list(only.as_ref())) + "\n")
        }
        InventoryShow::Graph(g) => inv.graph(g).map_err(|e| vec![Diagnostic::file(&first, e)]),
        InventoryShow::Host(h) => inv
            .host(h)
            .map(|v| ansible::to_json(&v) + "\n")
            .map_err(|e| vec![Diagnostic::file(&first, e)]),
    }
}

/// Refuses a `--tags` entry that no step or handler of the selected hosts' roles carries (a
/// role's name is a tag of all its steps): a typo would otherwise run nothing and exit 0.
fn unknown_tags(
    tags: &[String],
    hosts: &[&Host],
    roles: &std::collections::BTreeMap<String, role::Role>,
) -> Result<(), String> {
    let selected = || {
        hosts
            .iter()
            .flat_map(|h| h.roles.iter())
            .filter_map(|r| roles.get(r))
    };
    for tag in tags {
        let known = selected().any(|r| {
            r.name == *tag
                || r.steps
                    .iter()
                    .chain(&r.handlers)
                    .any(|s| s.role == *tag || s.tags.contains(tag))
        });
        if !known {
            let names: Vec<&str> = selected()
                .flat_map(|r| r.steps.iter().flat_map(|s| s.tags.iter().chain([&s.role])))
                .map(String::as_str)
                .collect();
            let hint = crate::error::did_you_mean(tag, names.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(format!(
                "--tags: no step of the selected hosts has tag `{tag}`{hint}"
            ));
        }
    }
    Ok(())
}

/// Runs the executor on every plan with the run's reporter; returns per-host results in
/// plan order. `guard` is asked before anything that ends meetings runs on a host.
///
/// Errors: [`Interrupted`] on Ctrl-C. Dropping the run closes every SSH channel: a step
/// already running on a host finishes there (its file writes are atomic), no further step
/// starts.
pub async fn execute(
    o: &Options,
    p: &Prepared,
    goal: Goal,
    show_diff: bool,
    guard: Option<Arc<dyn exec::MeetingGuard>>,
) -> Result<Vec<HostResult>, Interrupted> {
    let opts = Arc::new(exec::Options {
        goal,
        forks: o.forks,
        verbose: o.verbose,
        secrets: p.inventory.secrets.clone(),
        guard,
    });
    let title = if goal == Goal::Plan { "plan" } else { "apply" };
    let mut settings = Settings::new(o.output, o.verbose, p.plans.len(), title);
    settings.show_diff = show_diff;
    let reporter = Reporter::start(settings);
    let results = tokio::select! {
        r = exec::run(p.plans.clone(), p.connector.clone(), opts, reporter.tx.clone()) => r,
        _ = tokio::signal::ctrl_c() => return Err(Interrupted),
    };
    reporter.finish().await;
    Ok(results)
}

/// Prints the run's summary (the host table, or a `summary` object) and returns it;
/// `applied`: the run was an apply, not a plan.
pub fn finish(o: &Options, results: Vec<HostResult>, applied: bool) -> RunSummary {
    let s = RunSummary {
        hosts: results,
        applied,
    };
    summary::render(o.output, &s);
    s
}
