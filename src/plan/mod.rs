//! From inventory and roles to per-host work. Everything that can fail without a host is done
//! here, for every selected host, before any host is touched: variables merged and rendered,
//! `when:` evaluated, every step's arguments and templates rendered. Then per host: one check
//! script (all checks in one round trip), its parser, and one apply script with only the steps
//! that change plus the handlers they notify (see the `apply` module).

mod apply;
pub mod pool_checks;

pub use apply::{
    Item, Mark, add_owed, apply_items, apply_script, display_script, item_planned, parse_mark,
    secret_fragments,
};

use crate::bounded::render::{self as budget, Place};
use crate::check::CheckError;
use crate::error::Diagnostic;
use crate::inventory::{Host, Inventory};
use crate::role::{Role, StepSpec};
use crate::script::Nonce;
use crate::secret::Secrets;
use crate::step::{self, Action, Context, Facts, Resolve, Use, Verdict};
use crate::template::{Templates, Tracked, render_json, render_json_each};
use crate::vars::Taint;
use crate::yaml::Pos;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Each role's steps and handlers, shared by all hosts.
type RoleSpecs<'a> = BTreeMap<&'a str, (Vec<Arc<StepSpec>>, Vec<Arc<StepSpec>>)>;

/// Which steps a run includes.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
}

impl Filter {
    fn selects(&self, s: &StepSpec) -> bool {
        let has = |t: &String| s.tags.contains(t) || *t == s.role;
        (self.tags.is_empty() || self.tags.iter().any(has)) && !self.skip_tags.iter().any(has)
    }
}

/// One step ready for a host.
#[derive(Debug, Clone)]
pub struct Planned {
    pub spec: Arc<StepSpec>,
    pub action: Action,
    pub timeout: u64,
    /// Whether rendering the step (an argument, its template) read a secret: its diff and
    /// its script are not shown (see [`crate::secret::DEPENDS_ON_SECRET`]).
    pub depends_on_secret: bool,
}

impl Planned {
    pub fn label(&self) -> String {
        self.spec.label()
    }
}

/// All the work for one host.
#[derive(Debug, Clone)]
pub struct HostPlan {
    pub host: Host,
    pub steps: Vec<Planned>,
    /// Handlers by (role, name), in the order they are defined.
    pub handlers: Vec<Planned>,
    /// Steps skipped by `when:`.
    pub skipped: usize,
    /// Handlers (indices into `handlers`) an earlier apply held back because the host had
    /// meetings: owed to the host, they run with the next apply that is allowed to run them,
    /// even though no step notifies them any more (the pool fills this in from its journal).
    pub owed: Vec<usize>,
    /// The variables the host was rendered with (for the balancer and health checks).
    pub vars: Map<String, Value>,
}

/// Builds plans for `hosts`; collects every error (up to 20) rather than stopping at the first.
pub fn build(
    inv: &Inventory,
    hosts: &[&Host],
    roles: &BTreeMap<String, Role>,
    templates: &Templates,
    filter: &Filter,
    run_vars: &Map<String, Value>,
) -> Result<Vec<HostPlan>, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut plans = Vec::new();
    let specs: RoleSpecs<'_> = roles
        .iter()
        .map(|(n, r)| {
            (
                n.as_str(),
                (
                    r.steps.iter().cloned().map(Arc::new).collect(),
                    r.handlers.iter().cloned().map(Arc::new).collect(),
                ),
            )
        })
        .collect();
    // Every host's variables, in every host's context: built only when something reads them
    // (at 1000 hosts, building and passing them costs minutes).
    let hostvars = if mentions_hostvars(inv, roles, templates, run_vars) {
        Some(hostvars(inv, roles, templates, run_vars))
    } else {
        None
    };
    for host in hosts {
        match plan_host(
            inv,
            host,
            roles,
            &specs,
            templates,
            filter,
            run_vars,
            hostvars.as_ref(),
        ) {
            Ok(p) => plans.push(p),
            Err(mut e) => errors.append(&mut e),
        }
        if errors.len() >= 20 {
            break;
        }
    }
    // Before any rendered value or error is shown: what lookups read from secret sources.
    let looked_up = templates.take_secret_lookups();
    inv.secrets.add_derived(
        looked_up
            .iter()
            .flat_map(|v| crate::secret::spellings(v))
            .collect(),
    );
    for w in templates.take_warnings() {
        let text = format!("warning: {}", inv.secrets.redact(&w));
        eprintln!("{text}");
        crate::log_file::lines(&text);
    }
    if errors.is_empty() {
        errors = pool_checks::voice_bridge_length(inv, &plans, roles, run_vars);
        errors.extend(pool_checks::bbb_secrets(inv, &plans, roles, run_vars));
        errors.extend(pool_checks::dialin_accounts(inv, &plans, roles, run_vars));
        errors.extend(pool_checks::bbb_build_pin(inv, &plans, roles, run_vars));
        errors.extend(pool_checks::shared_bbb_secrets(
            inv, &plans, roles, run_vars,
        ));
        errors.extend(pool_checks::turn_servers(inv, &plans, roles, run_vars));
        errors.extend(pool_checks::database_passwords(
            inv, &plans, roles, run_vars,
        ));
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(errors)
    }
}

/// The variables a host's templates see.
pub fn host_vars(
    inv: &Inventory,
    host: &Host,
    roles: &BTreeMap<String, Role>,
    run_vars: &Map<String, Value>,
) -> Map<String, Value> {
    let mut vars = Map::new();
    for r in &host.roles {
        if let Some(role) = roles.get(r) {
            vars.extend(role.defaults.clone());
        }
    }
    vars.extend(host.vars.clone());
    vars.extend(run_vars.clone());
    vars.insert(
        "inventory_hostname".into(),
        Value::String(host.name.clone()),
    );
    vars.insert("ansible_host".into(), Value::String(host.address.clone()));
    vars.insert(
        "group_names".into(),
        Value::from(
            host.groups
                .iter()
                .filter(|g| *g != "all")
                .cloned()
                .collect::<Vec<_>>(),
        ),
    );
    let groups: Map<String, Value> = inv
        .groups
        .iter()
        .map(|(g, m)| (g.clone(), Value::from(m.clone())))
        .collect();
    vars.insert("groups".into(), Value::Object(groups));
    let addrs: Map<String, Value> = inv
        .hosts
        .iter()
        .map(|h| (h.name.clone(), Value::String(h.address.clone())))
        .collect();
    vars.insert("host_addresses".into(), Value::Object(addrs));
    vars
}

/// Whether any role (steps, handlers, defaults), template, inventory variable or run
/// variable mentions `hostvars`: only then is [`hostvars`] built. A mention in a comment or
/// a longer word builds it needlessly, which costs time, never correctness.
fn mentions_hostvars(
    inv: &Inventory,
    roles: &BTreeMap<String, Role>,
    templates: &Templates,
    run_vars: &Map<String, Value>,
) -> bool {
    const WORD: &str = crate::vars::HOSTVARS;
    let in_value = |v: &Value| match v {
        Value::String(s) => s.contains(WORD),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
        other => other.to_string().contains(WORD),
    };
    let in_step = |s: &crate::role::StepSpec| {
        in_value(&s.args) || s.when.as_deref().is_some_and(|w| w.contains(WORD))
    };
    templates.mention(WORD)
        || run_vars.values().any(in_value)
        || roles.values().any(|r| {
            r.steps.iter().chain(&r.handlers).any(in_step) || r.defaults.values().any(in_value)
        })
        || inv.hosts.iter().any(|h| h.vars.values().any(in_value))
}

/// Ansible's `hostvars`: every inventory host's variables (as [`host_vars`] gives them
/// without role defaults, which Ansible's `hostvars` does not hold either; templated values
/// rendered for that host), by host name. Ansible renders them when they are
/// read; here in two rounds: first each host's variables that render without `hostvars`,
/// then all of them again with the first round's `hostvars`. A variable that needs `hostvars`
/// of a variable that itself needs `hostvars`, or that fails to render (the host's own plan
/// says why), is not in it: reading it is an undefined variable.
fn hostvars(
    inv: &Inventory,
    roles: &BTreeMap<String, Role>,
    templates: &Templates,
    run_vars: &Map<String, Value>,
) -> Value {
    let resolve = |host: &Host, vars: &mut Map<String, Value>| {
        let mut taint = Taint::of(vars, &inv.secrets);
        let r = crate::vars::resolve(templates, vars, &mut taint, &|key| {
            var_place(inv, host, roles, run_vars, key)
        });
        inv.secrets.add_derived(std::mem::take(&mut taint.derived));
        r
    };
    let no_roles = BTreeMap::new();
    let mut first = Map::new();
    for host in &inv.hosts {
        let mut vars = host_vars(inv, host, &no_roles, run_vars);
        // Without the variables that fail (those that read `hostvars` among them).
        for _ in 0..=vars.len() {
            match resolve(host, &mut vars) {
                Ok(()) => break,
                Err((key, _)) => {
                    vars.remove(&key);
                }
            }
        }
        first.insert(host.name.clone(), Value::Object(vars));
    }
    let first = Value::Object(first);
    let mut second = Map::new();
    for host in &inv.hosts {
        let mut vars = host_vars(inv, host, &no_roles, run_vars);
        vars.insert(crate::vars::HOSTVARS.into(), first.clone());
        let vars = match resolve(host, &mut vars) {
            Ok(()) => {
                vars.remove(crate::vars::HOSTVARS);
                Value::Object(vars)
            }
            Err(_) => first[host.name.as_str()].clone(),
        };
        second.insert(host.name.clone(), vars);
    }
    Value::Object(second)
}

#[allow(clippy::too_many_arguments)]
fn plan_host(
    inv: &Inventory,
    host: &Host,
    roles: &BTreeMap<String, Role>,
    specs: &RoleSpecs<'_>,
    templates: &Templates,
    filter: &Filter,
    run_vars: &Map<String, Value>,
    hostvars: Option<&Value>,
) -> Result<HostPlan, Vec<Diagnostic>> {
    let mut vars = host_vars(inv, host, roles, run_vars);
    // Already rendered, each for its own host: `resolve` leaves it as it is.
    if let Some(hostvars) = hostvars {
        vars.insert(crate::vars::HOSTVARS.into(), hostvars.clone());
    }
    let mut taint = Taint::of(&vars, &inv.secrets);
    let resolved = crate::vars::resolve(templates, &mut vars, &mut taint, &|key| {
        var_place(inv, host, roles, run_vars, key)
    });
    inv.secrets.add_derived(std::mem::take(&mut taint.derived));
    if let Err((key, e)) = resolved {
        let message = format!(
            "host {}: variable {key}: {}",
            host.name,
            e.in_placed_value()
        );
        let mut d = var_diagnostic(inv, host, roles, run_vars, &key, Some(&e), message);
        d.hint = undefined_hint(&e.message, &vars);
        return Err(vec![d]);
    }
    // What the host's values look like with canaries for secrets; only hosts with secrets
    // pay for it.
    let canary = (!taint.names.is_empty())
        .then(|| minijinja::Value::from(minijinja::value::Serde(taint.canary_vars(&vars))));
    let ctx = Tracked::new(
        minijinja::Value::from(minijinja::value::Serde(&vars)),
        Arc::new(std::mem::take(&mut taint.names)),
    );
    let r = Render {
        templates,
        ctx: &ctx,
        canary: canary.as_ref(),
        secrets: &inv.secrets,
        vars: &vars,
    };
    let mut errors = Vec::new();
    let mut steps = Vec::new();
    let mut handlers = Vec::new();
    let mut skipped = 0;
    for role in &host.roles {
        let Some((role_steps, role_handlers)) = specs.get(role.as_str()) else {
            continue;
        };
        for spec in role_steps.iter().filter(|s| filter.selects(s)) {
            match resolve(spec, &r, host, Use::Step) {
                Ok(Some(p)) => steps.push(p),
                Ok(None) => skipped += 1,
                Err(e) => errors.push(e),
            }
        }
        for spec in role_handlers {
            match resolve(spec, &r, host, Use::Handler) {
                Ok(Some(p)) => handlers.push(p),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Every host's variables: not kept with each plan.
    vars.remove(crate::vars::HOSTVARS);
    Ok(HostPlan {
        host: host.clone(),
        steps,
        handlers,
        skipped,
        owed: Vec::new(),
        vars,
    })
}

/// An error in variable `key`'s value, at the place that set it for `host` after
/// precedence: the command's own variables, the inventory (line:col) or `-e NAME`, else the
/// last of the host's roles whose `defaults.yml` has it (line:col there, not the inventory).
fn var_diagnostic(
    inv: &Inventory,
    host: &Host,
    roles: &BTreeMap<String, Role>,
    run_vars: &Map<String, Value>,
    key: &str,
    e: Option<&crate::template::RenderError>,
    message: String,
) -> Diagnostic {
    // Inside the value at the failing expression for a render error, else at its start.
    let within = |value: Option<&Value>| e.map_or((1, 1), |e| position_in_value(value, e));
    let within_inv = within(host.vars.get(key));
    if run_vars.contains_key(key) {
        return Diagnostic::file(&inv.path, message);
    }
    if let Some(d) = inv.var_at(host, key, within_inv, message.clone()) {
        return d;
    }
    host.roles
        .iter()
        .rev()
        .filter_map(|r| roles.get(r))
        .find_map(|r| {
            let value = r.defaults.get(key);
            r.defaults_source
                .as_ref()?
                .at(key, value, within(value), message.clone())
        })
        .unwrap_or_else(|| Diagnostic::file(&inv.path, message))
}

/// Where variable `key`'s value was set for `host` (as [`var_diagnostic`] finds it, without
/// reading a file or allocating), for the render budget's message.
/// `true` with it: the value came from `-e NAME` (the caller appends the name).
fn var_place<'a>(
    inv: &'a Inventory,
    host: &'a Host,
    roles: &'a BTreeMap<String, Role>,
    run_vars: &Map<String, Value>,
    key: &str,
) -> (Place<'a>, bool) {
    let whole = Place {
        file: &inv.path,
        host: &host.name,
        ..Place::default()
    };
    if run_vars.contains_key(key) {
        return (whole, false);
    }
    let place = match inv.var_origins.get(&host.name).and_then(|o| o.get(key)) {
        Some(crate::inventory::Origin::At(line, column)) => Place {
            file: &inv.source.path,
            line: *line,
            column: *column,
            ..whole
        },
        Some(crate::inventory::Origin::Ansible(at)) => Place {
            file: &at.file,
            line: at.line,
            column: at.column,
            ..whole
        },
        Some(crate::inventory::Origin::Extra) => {
            let e = Place {
                file: std::path::Path::new("-e "),
                ..whole
            };
            return (e, true);
        }
        None => host
            .roles
            .iter()
            .rev()
            .filter_map(|r| roles.get(r)?.defaults_source.as_ref())
            .find_map(|d| {
                let (line, column) = *d.positions.get(key)?;
                Some(Place {
                    file: &d.source.path,
                    line,
                    column,
                    ..whole
                })
            })
            .unwrap_or(whole),
    };
    (place, false)
}

/// Line and column (1-based) of a render error inside a string value: from the failing
/// expression's byte range where known, else its line, else the start.
fn position_in_value(value: Option<&Value>, e: &crate::template::RenderError) -> (u64, u64) {
    let text = value.and_then(Value::as_str).unwrap_or("");
    match e.range.as_ref().filter(|r| text.is_char_boundary(r.start)) {
        Some(r) => {
            let before = &text[..r.start];
            let line = before.matches('\n').count() as u64 + 1;
            let col = before.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
            (line, col)
        }
        None => (e.line.map_or(1, |l| l as u64), 1),
    }
}

/// What rendering a host's steps needs: the templates, the host's variables (tracking reads
/// of secrets) and the run's secrets (which learn what was rendered from them).
struct Render<'a> {
    templates: &'a Templates,
    ctx: &'a Arc<Tracked>,
    /// The variables with canaries for secrets (see [`Taint::canary`]); None without secrets.
    canary: Option<&'a minijinja::Value>,
    secrets: &'a Secrets,
    /// The host's variables, for a did-you-mean on an undefined one.
    vars: &'a Map<String, Value>,
}

/// For "undefined variable `x`", the nearest of the host's variable names (a typo), as a
/// hint.
fn undefined_hint(message: &str, vars: &Map<String, Value>) -> Option<String> {
    let name = message
        .split_once("undefined variable `")?
        .1
        .split_once('`')?
        .0;
    crate::error::did_you_mean(name, vars.keys().map(String::as_str))
        .map(|n| format!("did you mean `{n}`?"))
}

fn resolve(
    spec: &Arc<StepSpec>,
    render: &Render<'_>,
    host: &Host,
    usage: Use,
) -> Result<Option<Planned>, Diagnostic> {
    let templates = render.templates;
    let ctx = &render.ctx.value();
    // The role file was read when the role loaded; read again (bounded) only on an error.
    let source = || crate::yaml::Source::read(&spec.file);
    let message =
        |msg: &dyn std::fmt::Display| format!("step `{}` on host {}: {msg}", spec.name, host.name);
    // An error at a part of the step (`at`), inside a string written there when `within`
    // (line, column in the value) is known.
    let fail = |at: Pos, written: Option<&Value>, within: Pos, msg: String| {
        let hint = undefined_hint(&msg, render.vars);
        let msg = message(&msg);
        let d = match source() {
            Ok(src) => match written.and_then(Value::as_str) {
                Some(text) => src.at_in_scalar(at, text, within, msg),
                None => src.at(at.0, at.1, msg),
            },
            Err(_) => Diagnostic::file(&spec.file, msg),
        };
        Diagnostic { hint, ..d }
    };
    // Where a render that spends the budget came from (bounded::render): borrowed, no copy.
    let place = |at: Pos| Place {
        file: &spec.file,
        line: at.0,
        column: at.1,
        host: &host.name,
        ..Place::default()
    };
    if let Some(w) = &spec.when
        && !budget::at(place(spec.places.when.unwrap_or(spec.places.step)), || {
            templates.eval_bool(w, ctx)
        })
        .map_err(|e| {
            let at = spec.places.when.unwrap_or(spec.places.step);
            let written = Value::String(w.clone());
            let within = position_in_value(Some(&written), &e);
            fail(
                at,
                Some(&written),
                within,
                format!("when: {}", e.in_placed_value()),
            )
        })?
    {
        return Ok(None);
    }
    // Whether `when:` read a secret does not matter: it chooses, it shows nothing.
    render.ctx.take_read();
    let mut args = spec.args.clone();
    let mut depends_on_secret = false;
    // Argument by argument, so that an error names the one that failed.
    let mut failed_arg = None;
    let rendered = match &mut args {
        Value::Object(m) => m.iter_mut().try_for_each(|(k, v)| {
            failed_arg = Some(k.clone());
            budget::at(place(spec.places.arg(Some(k))), || {
                render_json_each(templates, v, ctx, &mut |_| {
                    depends_on_secret |= render.ctx.take_read();
                })
            })
        }),
        other => budget::at(place(spec.places.kind), || {
            render_json_each(templates, other, ctx, &mut |_| {
                depends_on_secret |= render.ctx.take_read();
            })
        }),
    };
    if depends_on_secret && let Some(c) = render.canary {
        // Before any error is worded: it may quote a rendered value.
        let mut canary = spec.args.clone();
        let ok = budget::at(place(spec.places.kind), || {
            render_json(templates, &mut canary, c).is_ok()
        });
        let mut t = Taint::default();
        t.compare(&args, ok.then_some(&canary));
        render.secrets.add_derived(t.derived);
    }
    rendered.map_err(|e| {
        let name = failed_arg.as_deref();
        let written = name.and_then(|n| spec.args.get(n));
        let within = position_in_value(written, &e);
        fail(spec.places.arg(name), written, within, e.in_placed_value())
    })?;
    // An argument that is Ansible's `omit` is left out, as Ansible leaves it out of a module's.
    crate::template::drop_omitted(&mut args);
    let r = Resolve {
        templates,
        ctx,
        usage,
    };
    let template = args
        .get("template")
        .and_then(Value::as_str)
        .map(String::from);
    // A template file is rendered here: placed at the step's `template:`.
    let template_at = place(spec.places.arg(Some("template")));
    let action = budget::at(template_at, || step::resolve(&spec.kind, args, &r));
    // A template file the step rendered (its own source is not at hand: each line counts).
    if render.ctx.take_read() {
        depends_on_secret = true;
        if let Ok(a) = &action {
            let canary = template
                .zip(render.canary)
                .and_then(|(t, c)| budget::at(template_at, || templates.render_file(&t, c).ok()));
            render
                .secrets
                .add_derived(rendered_from_secret(a, canary.as_deref()));
        }
    }
    let action = action.map_err(|e| match e {
        step::StepError::Args(m) => {
            let written = m.field().and_then(|f| spec.args.get(f));
            // Inside the value only when it reads as written (no template changed it).
            let within = m
                .within()
                .filter(|(v, _)| written.and_then(Value::as_str) == Some(*v))
                .map_or((1, 1), |(_, w)| w);
            fail(
                spec.places.arg(m.field()),
                written,
                within,
                format!("{}: {m}", spec.kind),
            )
        }
        step::StepError::Template(t) => {
            let context = format!(
                "host {}, step `{}` of role {}",
                host.name, spec.name, spec.role
            );
            let hint = undefined_hint(&t.message, render.vars);
            let d = templates
                .diagnostic(&t, &context)
                .map(|d| Diagnostic { hint, ..d });
            d.unwrap_or_else(|| {
                let at = spec.places.arg(Some("template"));
                fail(at, None, (1, 1), t.to_string())
            })
        }
    })?;
    let timeout = spec.timeout.unwrap_or_else(|| action.default_timeout());
    Ok(Some(Planned {
        spec: spec.clone(),
        action,
        timeout,
        depends_on_secret,
    }))
}

/// The lines of a file step's content that its template rendered from a secret (`canary`: the
/// same template rendered with canaries).
fn rendered_from_secret(a: &Action, canary: Option<&str>) -> Vec<String> {
    match a {
        Action::File(f) => f
            .content
            .as_deref()
            .map(|c| crate::secret::worth_redacting(c, canary))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The steps' actions, in plan order.
fn actions(plan: &HostPlan) -> Vec<&Action> {
    plan.steps.iter().map(|s| &s.action).collect()
}

/// The one script that checks every step of a host (see [`crate::check`]).
pub fn check_script(plan: &HostPlan, nonce: &Nonce) -> String {
    crate::check::script(&actions(plan), nonce)
}

/// Reads check output into each step's facts.
pub fn parse_check(plan: &HostPlan, output: &str, nonce: &Nonce) -> Result<Vec<Facts>, CheckError> {
    crate::check::parse(&actions(plan), output, nonce)
}

/// What the check found for every step.
pub fn evaluate(plan: &HostPlan, facts: &[Facts], secrets: &Secrets) -> Vec<Verdict> {
    let cx = Context {
        secrets,
        host: &plan.host.name,
    };
    plan.steps
        .iter()
        .zip(facts)
        .map(|(s, f)| s.action.evaluate(f, &cx))
        .collect()
}
