//! Checks of the planned hosts' variables once they are known: values that must agree
//! between hosts of one pool, and values the node's own tools would garble, so such a pool
//! fails before anything runs (exit 2, at the place that set the value).

use super::{HostPlan, var_diagnostic};
use crate::error::Diagnostic;
use crate::role::Role;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The variable the BBB nodes' dialplan and Scalelite's `VOICE_BRIDGE_LEN` both read.
pub const VOICE_BRIDGE_LENGTH: &str = "bbb_voice_bridge_length";

/// Fewest and most digits of a voice bridge (the dial-in PIN): the range Scalelite v1.8.5's own
/// FreeSWITCH PIN prompt accepts (`VOICE_BRIDGE_MIN` 5 … `VOICE_BRIDGE_MAX` 9,
/// `config/application.rb`); fewer digits are easy to guess by random tries.
pub const VOICE_BRIDGE_DIGITS: std::ops::RangeInclusive<u64> = 5..=9;

/// Whether the host's voice bridge length matters: a BBB node (its dialplan reads the PIN)
/// or the Scalelite balancer (it hands the voice bridges out). b3scale keeps the nodes' own.
fn reads_voice_bridge_length(p: &HostPlan) -> bool {
    let scalelite = p.host.roles.iter().any(|r| r == "scalelite")
        && p.vars.get("balancer_kind").and_then(Value::as_str) == Some("scalelite");
    scalelite || p.host.roles.iter().any(|r| r == "bbb")
}

/// The length as a number of digits, or why it is not one.
fn digits(v: &Value) -> Result<u64, String> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if VOICE_BRIDGE_DIGITS.contains(&n) => Ok(n),
        _ => Err(format!(
            "must be a whole number of digits from {} to {}, not {v}",
            VOICE_BRIDGE_DIGITS.start(),
            VOICE_BRIDGE_DIGITS.end()
        )),
    }
}

/// Every planned BBB node and Scalelite host reads one valid `bbb_voice_bridge_length`: a
/// PIN length outside 5…9, or one that differs between hosts (callers behind Scalelite would
/// be asked for a PIN of the wrong length), is an error at the place that set it.
pub fn voice_bridge_length(
    inv: &crate::inventory::Inventory,
    plans: &[HostPlan],
    roles: &BTreeMap<String, Role>,
    run_vars: &Map<String, Value>,
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let mut first: Option<(&str, u64)> = None;
    for p in plans.iter().filter(|p| reads_voice_bridge_length(p)) {
        let at = |message: String| {
            var_diagnostic(
                inv,
                &p.host,
                roles,
                run_vars,
                VOICE_BRIDGE_LENGTH,
                None,
                message,
            )
        };
        let Some(v) = p.vars.get(VOICE_BRIDGE_LENGTH) else {
            continue;
        };
        match digits(v) {
            Err(why) => errors.push(at(format!(
                "host {}: variable {VOICE_BRIDGE_LENGTH} {why}",
                p.host.name
            ))),
            Ok(n) => match first {
                None => first = Some((&p.host.name, n)),
                Some((h0, n0)) if n0 != n => errors.push(at(format!(
                    "host {}: variable {VOICE_BRIDGE_LENGTH} is {n} here but {n0} on host {h0}: \
                     the BBB nodes' dialplan must read as many digits as the balancer hands out \
                     (set it once for the pool, in all: vars)",
                    p.host.name
                ))),
                Some(_) => {}
            },
        }
    }
    errors
}

/// The text of a host's variable, or "" when unset or not a scalar.
fn text(p: &HostPlan, name: &str) -> String {
    match p.vars.get(name) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
        _ => String::new(),
    }
}

/// No two BBB nodes with dial-in register the same SIP account (proxy and user name) or take
/// calls for the same DID: the provider delivers a call to one registration only, so callers
/// would land on a node that does not hold their meeting.
pub fn dialin_accounts(
    inv: &crate::inventory::Inventory,
    plans: &[HostPlan],
    roles: &BTreeMap<String, Role>,
    run_vars: &Map<String, Value>,
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let mut accounts: BTreeMap<(String, String), &str> = BTreeMap::new();
    let mut dids: BTreeMap<String, &str> = BTreeMap::new();
    let dialin = plans.iter().filter(|p| {
        p.host.roles.iter().any(|r| r == "bbb")
            && text(p, "bbb_dialin_enabled").eq_ignore_ascii_case("true")
    });
    for p in dialin {
        let at = |name: &str, message: String| {
            var_diagnostic(inv, &p.host, roles, run_vars, name, None, message)
        };
        let account = (
            text(p, "bbb_dialin_provider_proxy"),
            text(p, "bbb_dialin_username"),
        );
        if !account.1.is_empty() {
            if let Some(other) = accounts.get(&account) {
                errors.push(at(
                    "bbb_dialin_username",
                    format!(
                        "host {}: SIP account {} at {} is also host {other}'s: the provider \
                         delivers each call to one registration, so callers would reach a node \
                         without their meeting; give every node its own account and DID",
                        p.host.name, account.1, account.0
                    ),
                ));
            } else {
                accounts.insert(account, &p.host.name);
            }
        }
        let did = text(p, "bbb_dialin_extension");
        if !did.is_empty() {
            if let Some(other) = dids.get(&did) {
                errors.push(at(
                    "bbb_dialin_extension",
                    format!(
                        "host {}: DID {did} is also host {other}'s: calls to it reach only one \
                         of them; give every node its own DID",
                        p.host.name
                    ),
                ));
            } else {
                dids.insert(did, &p.host.name);
            }
        }
    }
    errors
}

/// The variable pinning the pool's BigBlueButton release (`BIGBLUEBUTTON_RELEASE`, e.g. `3.0.14`).
pub const BBB_VERSION: &str = "bbb_version";

/// The variable holding bbb-install.sh's `-v` argument.
pub const BBB_INSTALL_VERSION: &str = "bbb_install_version";

/// Why `release` is not a BigBlueButton release number such as `3.0.14`, if it is not.
fn release_problem(release: &str) -> Option<String> {
    let parts: Vec<&str> = release.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if parts.len() == 3 && parts.iter().all(numeric) {
        None
    } else {
        Some(format!(
            "is `{release}`, not a BigBlueButton release such as 3.0.14 (BIGBLUEBUTTON_RELEASE \
             in /etc/bigbluebutton/bigbluebutton-release)"
        ))
    }
}

/// Why `-v install_version` would not install exactly `release`, if it would not:
/// bbb-install.sh writes `deb https://REPOSITORY/<-v> bigbluebutton-<line> main`, and only a
/// per-release repository (`jammy-300-3.0.14`, BigBlueButton's release notes) holds one
/// build; the release line (`jammy-300`) always offers the newest.
fn install_version_problem(install_version: &str, release: &str) -> Option<String> {
    let pinned = install_version
        .strip_suffix(release)
        .and_then(|rest| rest.strip_suffix('-'))
        .is_some_and(|line| {
            !line.is_empty() && line.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if pinned {
        return None;
    }
    Some(format!(
        "is `{install_version}`, which does not pin the pool's release {release} \
         ({BBB_VERSION}): bbb-install.sh would install whatever build that repository offers \
         when it runs, so nodes upgraded at different times would end on different builds; \
         use the release line with the release, e.g. `jammy-300-{release}` (the default)"
    ))
}

/// Every planned BBB node pins one BigBlueButton build: `bbb_version` is a release number,
/// `bbb_install_version` is bbb-install's repository of exactly that release, and both are
/// the same on every node (set once for the pool, in all: vars). Errors at the place that set
/// the value.
pub fn bbb_build_pin(
    inv: &crate::inventory::Inventory,
    plans: &[HostPlan],
    roles: &BTreeMap<String, Role>,
    run_vars: &Map<String, Value>,
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let mut first: Option<(&str, String)> = None;
    for p in plans
        .iter()
        .filter(|p| p.host.roles.iter().any(|r| r == "bbb"))
    {
        let at = |name: &str, message: String| {
            var_diagnostic(inv, &p.host, roles, run_vars, name, None, message)
        };
        // A role of the same name that pins nothing (a test fixture's, a site's own).
        if !p.vars.contains_key(BBB_VERSION) && !p.vars.contains_key(BBB_INSTALL_VERSION) {
            continue;
        }
        let release = text(p, BBB_VERSION);
        let install_version = text(p, BBB_INSTALL_VERSION);
        if let Some(why) = release_problem(&release) {
            errors.push(at(
                BBB_VERSION,
                format!("host {}: variable {BBB_VERSION} {why}", p.host.name),
            ));
            continue;
        }
        if let Some(why) = install_version_problem(&install_version, &release) {
            errors.push(at(
                BBB_INSTALL_VERSION,
                format!("host {}: variable {BBB_INSTALL_VERSION} {why}", p.host.name),
            ));
            continue;
        }
        match &first {
            None => first = Some((&p.host.name, install_version)),
            Some((h0, v0)) if *v0 != install_version => errors.push(at(
                BBB_VERSION,
                format!(
                    "host {}: BigBlueButton is pinned to `{install_version}` here but to `{v0}` \
                     on host {h0}: a pool runs one build, so a rolling upgrade never ends with \
                     nodes on different builds (set {BBB_VERSION} once for the pool, in all: vars)",
                    p.host.name
                ),
            )),
            Some(_) => {}
        }
    }
    errors
}

/// The variable holding a BBB node's shared secret.
pub const BBB_SECRET: &str = "bbb_secret";

/// Why a shared secret would not arrive intact everywhere it is written, if it would not.
/// `securitySalt` is read through Java properties escaping (a backslash changes it);
/// `sharedSecret` in bbb-apps-akka.conf is a double-quoted HOCON string (`"` and `\`), and
/// bbb-conf --setip, which bbb-install.sh runs on every install and upgrade, copies it there
/// with `sed "s/…/sharedSecret=\"$SECRET\"/g"` (`/` and `&` break or change it).
pub fn secret_problem(secret: &str) -> Option<&'static str> {
    if secret.is_empty() {
        return Some("is empty");
    }
    if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("contains whitespace or a control character");
    }
    if secret.contains(['"', '\\', '/', '&']) {
        return Some(
            "contains one of \" \\ / & (bbb-web reads a backslash as an escape, akka-apps' \
             quoted sharedSecret ends at a quote, and bbb-conf --setip's sed breaks on / and &); \
             use letters and digits, e.g. `openssl rand -hex 32`",
        );
    }
    None
}

/// Every planned BBB node's `bbb_secret` survives Java properties, HOCON and bbb-conf's sed
/// (see [`secret_problem`]). The message names the problem, never the value.
pub fn bbb_secrets(
    inv: &crate::inventory::Inventory,
    plans: &[HostPlan],
    roles: &BTreeMap<String, Role>,
    run_vars: &Map<String, Value>,
) -> Vec<Diagnostic> {
    plans
        .iter()
        .filter(|p| p.host.roles.iter().any(|r| r == "bbb"))
        .filter_map(|p| {
            let why = secret_problem(p.vars.get(BBB_SECRET)?.as_str()?)?;
            Some(var_diagnostic(
                inv,
                &p.host,
                roles,
                run_vars,
                BBB_SECRET,
                None,
                format!("host {}: variable {BBB_SECRET} {why}", p.host.name),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_that_would_not_arrive_intact_are_named() {
        assert_eq!(secret_problem("Ab3dEf9"), None);
        for bad in ["", "a b", "a\\b", "a\"b", "a/b", "a&b", "a\nb"] {
            assert!(secret_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn only_a_per_release_repository_pins_the_build() {
        assert_eq!(release_problem("3.0.14"), None);
        for bad in [
            "", "3.0", "3.0.x", "3.0.14 ", "v3.0.14", "3..14", "3.0.14.1",
        ] {
            assert!(release_problem(bad).is_some(), "{bad:?}");
        }
        assert_eq!(install_version_problem("jammy-300-3.0.14", "3.0.14"), None);
        // The release line follows the newest build: not a pin.
        for bad in [
            "jammy-300",
            "jammy-300-3.0.13",
            "-3.0.14",
            "jammy 300-3.0.14",
            "3.0.14",
        ] {
            assert!(install_version_problem(bad, "3.0.14").is_some(), "{bad:?}");
        }
    }

    #[test]
    fn digits_accepts_5_to_9_as_number_or_text() {
        assert_eq!(digits(&serde_json::json!(9)), Ok(9));
        assert_eq!(digits(&serde_json::json!("5")), Ok(5));
        for bad in [
            serde_json::json!(4),
            serde_json::json!(10),
            serde_json::json!("nine"),
            serde_json::json!(7.5),
            serde_json::json!(true),
        ] {
            assert!(digits(&bad).is_err(), "{bad}");
        }
    }
}
