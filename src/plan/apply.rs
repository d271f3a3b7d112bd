//! The apply script of one host: only the steps whose check said "change", the barriers
//! after them and the handlers they notify; and the reader of its progress lines.

use super::{HostPlan, Planned};
use crate::script::{Nonce, whole_or_nothing};
use crate::secret::Secrets;
use crate::step::{self, Verdict};

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

/// Adds the handlers owed by an earlier, held apply (`plan.owed`) to `items`, keeping the
/// handlers in the order they are defined and each once.
pub fn add_owed(plan: &HostPlan, items: &mut Vec<Item>) {
    if plan.owed.is_empty() {
        return;
    }
    let mut handlers: Vec<usize> = items
        .iter()
        .filter_map(|i| match i {
            Item::Handler(h) => Some(*h),
            Item::Step(_) => None,
        })
        .chain(
            plan.owed
                .iter()
                .copied()
                .filter(|h| *h < plan.handlers.len()),
        )
        .collect();
    handlers.sort_unstable();
    handlers.dedup();
    items.retain(|i| matches!(i, Item::Step(_)));
    items.extend(handlers.into_iter().map(Item::Handler));
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
            // A function body cannot be empty (an assert applies nothing).
            let f = p.action.apply();
            let f = if f.is_empty() { ":\n".into() } else { f };
            body.push_str(&format!("__rl_s{n}() {{\n{f}}}\n"));
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

/// The step or handler an apply item stands for.
pub fn item_planned<'a>(plan: &'a HostPlan, item: &Item) -> &'a Planned {
    match item {
        Item::Step(i) => &plan.steps[*i],
        Item::Handler(i) => &plan.handlers[*i],
    }
}

/// A mark: a line the apply script prints as an item (step or handler, by its index in the
/// script) begins, succeeds or fails, or when the script stops for a reason of its own. The
/// executor turns marks into step events. (Not called "progress": that is the reporter's
/// word for a node's status line.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// Item N begins.
    Begin(usize),
    /// Item N succeeded.
    Ok(usize),
    /// An item failed with exit code `rc`; `output` is the end of its output.
    Failed {
        /// The item's index.
        item: usize,
        /// Its exit code.
        rc: i32,
        /// The end of its output (not yet redacted).
        output: String,
    },
    /// The script stopped outside any item (a message of its own).
    Fatal(String),
}

/// Reads a line of the apply script's output; None when it is not a mark.
pub fn parse_mark(line: &str, nonce: &Nonce) -> Option<Mark> {
    let rest = line.strip_prefix(&nonce.marker())?.strip_prefix(' ')?;
    let mut f = rest.splitn(4, ' ');
    match f.next()? {
        "b" => Some(Mark::Begin(f.next()?.parse().ok()?)),
        "e" => {
            let item = f.next()?.parse().ok()?;
            let rc: i32 = f.next()?.parse().ok()?;
            if rc == 0 {
                return Some(Mark::Ok(item));
            }
            let output = f
                .next()
                .and_then(crate::script::unbase64)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            Some(Mark::Failed { item, rc, output })
        }
        "x" => Some(Mark::Fatal(rest[2..].to_string())),
        _ => None,
    }
}

/// The script fragments (checks and applies) of the steps and handlers of `plan` that were
/// rendered from a secret, longest first: [`display_script`] does not show them.
pub fn secret_fragments(plan: &HostPlan) -> Vec<String> {
    let mut out: Vec<String> = plan
        .steps
        .iter()
        .chain(&plan.handlers)
        .filter(|p| p.depends_on_secret)
        .flat_map(|p| [p.action.check(), p.action.apply()])
        .filter(|f| !f.trim().is_empty())
        .collect();
    out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    out.dedup();
    out
}

/// A script as shown with `-v`: the fragments of steps rendered from a secret (`hidden`, see
/// [`secret_fragments`]) replaced by a line that says so, file contents elided (they are
/// base64 and would hide secrets from redaction), then every secret value redacted.
pub fn display_script(script: &str, hidden: &[String], secrets: &Secrets) -> String {
    let mut script = script.to_string();
    for f in hidden {
        let line = format!("# {}\n", crate::secret::DEPENDS_ON_SECRET);
        script = script.replace(f.as_str(), &line);
    }
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
