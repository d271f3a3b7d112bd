//! From inventory and roles to per-host work. Everything that can fail without a host is done
//! here, for every selected host, before any host is touched: variables merged and rendered,
//! `when:` evaluated, every step's arguments and templates rendered. Then per host: one check
//! script (all checks in one round trip), its parser, and one apply script with only the steps
//! that change plus the handlers they notify.

use crate::error::Diagnostic;
use crate::inventory::{Host, Inventory};
use crate::role::{Role, StepSpec};
use crate::script::{Nonce, whole_or_nothing};
use crate::secret::Secrets;
use crate::step::{self, Action, Probe, Resolve, Use, Verdict};
use crate::template::{Templates, render_json};
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
    for host in hosts {
        match plan_host(inv, host, roles, &specs, templates, filter, run_vars) {
            Ok(p) => plans.push(p),
            Err(mut e) => errors.append(&mut e),
        }
        if errors.len() >= 20 {
            break;
        }
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

fn plan_host(
    inv: &Inventory,
    host: &Host,
    roles: &BTreeMap<String, Role>,
    specs: &RoleSpecs<'_>,
    templates: &Templates,
    filter: &Filter,
    run_vars: &Map<String, Value>,
) -> Result<HostPlan, Vec<Diagnostic>> {
    let mut vars = host_vars(inv, host, roles, run_vars);
    if let Err((keys, e)) = templates.resolve_vars(&mut vars) {
        return Err(vec![Diagnostic::file(
            &inv.path,
            format!("host {}: variable {keys}: {e}", host.name),
        )]);
    }
    let ctx = minijinja::Value::from(minijinja::value::Serde(&vars));
    let mut errors = Vec::new();
    let mut steps = Vec::new();
    let mut handlers = Vec::new();
    let mut skipped = 0;
    for role in &host.roles {
        let Some((role_steps, role_handlers)) = specs.get(role.as_str()) else {
            continue;
        };
        for spec in role_steps.iter().filter(|s| filter.selects(s)) {
            match resolve(spec, templates, &ctx, host, Use::Step) {
                Ok(Some(p)) => steps.push(p),
                Ok(None) => skipped += 1,
                Err(e) => errors.push(e),
            }
        }
        for spec in role_handlers {
            match resolve(spec, templates, &ctx, host, Use::Handler) {
                Ok(Some(p)) => handlers.push(p),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(HostPlan {
        host: host.clone(),
        steps,
        handlers,
        skipped,
        vars,
    })
}

fn resolve(
    spec: &Arc<StepSpec>,
    templates: &Templates,
    ctx: &minijinja::Value,
    host: &Host,
    usage: Use,
) -> Result<Option<Planned>, Diagnostic> {
    let fail = |msg: String| {
        let text = std::fs::read_to_string(&spec.file).unwrap_or_default();
        Diagnostic::at(
            &spec.file,
            &text,
            spec.line,
            0,
            format!("step `{}` on host {}: {msg}", spec.name, host.name),
        )
    };
    if let Some(w) = &spec.when
        && !templates
            .eval_bool(w, ctx)
            .map_err(|e| fail(format!("when: {e}")))?
    {
        return Ok(None);
    }
    let mut args = spec.args.clone();
    render_json(templates, &mut args, ctx).map_err(|e| fail(e.to_string()))?;
    let r = Resolve {
        templates,
        ctx,
        usage,
    };
    let action = step::resolve(&spec.kind, args, &r).map_err(|e| match e {
        step::StepError::Invalid(m) => fail(format!("{}: {m}", spec.kind)),
        step::StepError::Template(t) => {
            let context = format!(
                "host {}, step `{}` of role {}",
                host.name, spec.name, spec.role
            );
            templates
                .diagnostic(&t, &context)
                .unwrap_or_else(|| fail(t.to_string()))
        }
    })?;
    let timeout = spec.timeout.unwrap_or_else(|| action.default_timeout());
    Ok(Some(Planned {
        spec: spec.clone(),
        action,
        timeout,
    }))
}

/// The one script that checks every step of a host (see [`crate::check`]).
pub fn check_script(plan: &HostPlan, nonce: &Nonce) -> String {
    crate::check::script(plan, nonce)
}

/// Splits check output into each step's probe.
pub fn parse_check(plan: &HostPlan, output: &str, nonce: &Nonce) -> Result<Vec<Probe>, String> {
    crate::check::parse(plan, output, nonce)
}

/// What the check found for every step.
pub fn evaluate(plan: &HostPlan, probes: &[Probe], secrets: &Secrets) -> Vec<Verdict> {
    plan.steps
        .iter()
        .zip(probes)
        .map(|(s, p)| s.action.evaluate(p, secrets, &plan.host.name))
        .collect()
}

/// One entry of an apply script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Step(usize),
    Handler(usize),
}

/// Steps to apply (changed ones, and barriers after the first change) and the handlers the
/// changed steps notify, in order.
pub fn apply_items(plan: &HostPlan, verdicts: &[Verdict]) -> Vec<Item> {
    let mut items = Vec::new();
    let mut notified: Vec<(&str, &str)> = Vec::new();
    let mut seen_change = false;
    for (i, (s, v)) in plan.steps.iter().zip(verdicts).enumerate() {
        let change = matches!(v, Verdict::Change { .. });
        if change || (seen_change && s.action.is_barrier()) {
            items.push(Item::Step(i));
        }
        if change {
            seen_change = true;
            notified.extend(
                s.spec
                    .notify
                    .iter()
                    .map(|n| (s.spec.role.as_str(), n.as_str())),
            );
        }
    }
    for (i, h) in plan.handlers.iter().enumerate() {
        if notified
            .iter()
            .any(|(r, n)| *r == h.spec.role && *n == h.spec.name)
        {
            items.push(Item::Handler(i));
        }
    }
    items
}

/// The apply script: each item's fragment is written to a private work directory first and
/// then run under `timeout`, so its text (which may carry secrets) never shows up in a
/// process list; progress markers stream back as each item starts and ends.
pub fn apply_script(plan: &HostPlan, items: &[Item], nonce: &Nonce) -> String {
    let m = nonce.marker();
    let mut body = String::new();
    body.push_str("export LC_ALL=C\numask 077\ntrap 'exit 143' INT TERM HUP\n");
    body.push_str(step::LIB);
    // Steps that may wait on the network, a package manager, a service or a user's command
    // run under `timeout`, in a shell of their own that reads the step from a private file.
    // Steps that only touch files (or that have no timeout of their own) run inline, as
    // functions in a subshell: one process instead of three.
    let timed = |p: &Planned| p.action.may_block() || p.spec.timeout.is_some();
    let planned: Vec<&Planned> = items.iter().map(|i| item_planned(plan, i)).collect();
    if planned.iter().any(|p| timed(p)) {
        body.push_str(&format!(
            "d=$(mktemp -d /run/rollout.XXXXXX 2>/dev/null || mktemp -d) || {{ echo '{m} x cannot create a private work directory'; exit 1; }}\ntrap 'rm -rf \"$d\"' EXIT\n"
        ));
        body.push_str(&format!(
            "cat > \"$d/lib\" {}",
            nonce.heredoc("LIB", step::LIB)
        ));
    }
    for (n, p) in planned.iter().enumerate() {
        if timed(p) {
            body.push_str(&format!(
                "cat > \"$d/{n}\" {}",
                nonce.heredoc("S", &p.action.apply())
            ));
        } else {
            body.push_str(&format!("__rl_s{n}() {{\n{}}}\n", p.action.apply()));
        }
    }
    // The end of a step: its marker, and on failure the tail of its output (in $3, or in the
    // file $4).
    body.push_str(&format!(
        "__rl_end() {{\n  if [ \"$2\" = 0 ]; then echo \"{m} e $1 0\"; return 0; fi\n  if [ -n \"$4\" ]; then __o=$(tail -c 4000 \"$4\"); else __o=$3; fi\n  echo \"{m} e $1 $2 $(printf '%s\\n' \"$__o\" | tail -c 4000 | base64 -w0)\"\n  return 1\n}}\n"
    ));
    // Not inside `if` or `||`: there `set -e` would be ignored in the step.
    for (n, p) in planned.iter().enumerate() {
        body.push_str(&format!("echo '{m} b {n}'\n"));
        if timed(p) {
            // Output to a file, not a pipe: a command may leave a daemon behind that holds
            // its output open.
            body.push_str(&format!(
                "timeout -k 10 {} sh -e -c '. \"$1/lib\"; umask 022; . \"$1/$2\"' rollout-step \"$d\" {n} </dev/null >\"$d/{n}.out\" 2>&1\n__rl_end {n} $? '' \"$d/{n}.out\" || exit 0\n",
                p.timeout
            ));
        } else {
            body.push_str(&format!(
                "__o=$( {{ set -e; umask 022; __rl_s{n}; }} </dev/null 2>&1 )\n__rl_end {n} $? \"$__o\" || exit 0\n"
            ));
        }
    }
    whole_or_nothing(&body)
}

pub fn item_planned<'a>(plan: &'a HostPlan, item: &Item) -> &'a Planned {
    match item {
        Item::Step(i) => &plan.steps[*i],
        Item::Handler(i) => &plan.handlers[*i],
    }
}

/// A progress line of the apply script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Begin(usize),
    Ok(usize),
    Failed {
        item: usize,
        rc: i32,
        output: String,
    },
    Fatal(String),
}

pub fn parse_progress(line: &str, nonce: &Nonce) -> Option<Progress> {
    let rest = line.strip_prefix(&nonce.marker())?.strip_prefix(' ')?;
    let mut f = rest.splitn(4, ' ');
    match f.next()? {
        "b" => Some(Progress::Begin(f.next()?.parse().ok()?)),
        "e" => {
            let item = f.next()?.parse().ok()?;
            let rc: i32 = f.next()?.parse().ok()?;
            if rc == 0 {
                return Some(Progress::Ok(item));
            }
            let output = f
                .next()
                .and_then(crate::script::unbase64)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            Some(Progress::Failed { item, rc, output })
        }
        "x" => Some(Progress::Fatal(rest[2..].to_string())),
        _ => None,
    }
}

/// A script as shown with `-v`: file contents elided (they are base64 and would hide secrets
/// from redaction), then every secret value redacted.
pub fn display_script(script: &str, secrets: &Secrets) -> String {
    let mut out = String::new();
    let mut in_blob = false;
    let mut blob_lines = 0;
    for line in script.lines() {
        if in_blob {
            if line == "__RL_B64__" {
                out.push_str(&format!(
                    "  [{blob_lines} lines of base64 content elided]\n{line}\n"
                ));
                in_blob = false;
            } else {
                blob_lines += 1;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
        if line.ends_with("<<'__RL_B64__'") {
            in_blob = true;
            blob_lines = 0;
        }
    }
    secrets.redact(&out)
}
