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

/// Whether the host has role `role`.
fn has_role(p: &HostPlan, role: &str) -> bool {
    p.host.roles.iter().any(|r| r == role)
}

/// No two planned BBB nodes share one `bbb_secret` (the resolved value): every API client
/// and the balancer sign a node's calls with that node's own secret, so one shared secret,
/// leaked from one node, opens every node of the pool, and Scalelite tells servers apart by
/// URL and secret. The message names both hosts and the variable, never the value.
pub fn shared_bbb_secrets(
    inv: &crate::inventory::Inventory,
    plans: &[HostPlan],
    roles: &BTreeMap<String, Role>,
    run_vars: &Map<String, Value>,
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for p in plans.iter().filter(|p| has_role(p, "bbb")) {
        let Some(secret) = p.vars.get(BBB_SECRET).and_then(Value::as_str) else {
            continue;
        };
        if secret.is_empty() {
            continue;
        }
        match seen.get(secret) {
            Some(other) => errors.push(var_diagnostic(
                inv,
                &p.host,
                roles,
                run_vars,
                BBB_SECRET,
                None,
                format!(
                    "hosts {other} and {} have the same {BBB_SECRET}: every API call to a \
                     node carries a checksum made with that node's shared secret, and the \
                     balancer keeps each server's URL and secret, so one node's leaked secret \
                     would open both; give every node its own (`openssl rand -hex 32` for each, \
                     in the host's vars)",
                    p.host.name
                ),
            )),
            None => {
                seen.insert(secret, &p.host.name);
            }
        }
    }
    errors
}

/// A host name as DNS compares it: case-insensitive, without a trailing dot.
fn dns_name(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `address` is one of coturn's `allowed-peer-ip` entries: an address, or a range
/// `A-B` (both ends of one family, inclusive), as coturn reads them.
fn allowed_peer(entry: &str, address: &str) -> bool {
    let Ok(a) = address.parse::<std::net::IpAddr>() else {
        return entry.trim() == address;
    };
    match entry.split_once('-') {
        None => entry.trim().parse::<std::net::IpAddr>() == Ok(a),
        Some((lo, hi)) => match (lo.trim().parse(), hi.trim().parse(), a) {
            (
                Ok(std::net::IpAddr::V4(lo)),
                Ok(std::net::IpAddr::V4(hi)),
                std::net::IpAddr::V4(a),
            ) => lo <= a && a <= hi,
            (
                Ok(std::net::IpAddr::V6(lo)),
                Ok(std::net::IpAddr::V6(hi)),
                std::net::IpAddr::V6(a),
            ) => lo <= a && a <= hi,
            _ => false,
        },
    }
}

/// The TURN servers and the BBB nodes agree. A planned TURN host (role `turn`) that no BBB
/// node hands out (`bbb_turn_hostname` equal to its `turn_hostname`) is an error, checked
/// only when every BBB node of the inventory is planned (under `--limit` the others' values
/// are not known); a node pointing at a TURN server outside the inventory is fine (an
/// external TURN server). A node pointing at a planned TURN host must be one of that host's
/// allowed peers (`turn_peer_group`'s members, or its `address:` in
/// `turn_allowed_peer_ips`): coturn refuses relays to every other address, so firewalled
/// users of that node could not reach its media.
pub fn turn_servers(
    inv: &crate::inventory::Inventory,
    plans: &[HostPlan],
    roles: &BTreeMap<String, Role>,
    run_vars: &Map<String, Value>,
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let nodes: Vec<&HostPlan> = plans.iter().filter(|p| has_role(p, "bbb")).collect();
    let every_node_planned = inv
        .hosts
        .iter()
        .filter(|h| h.roles.iter().any(|r| r == "bbb"))
        .all(|h| nodes.iter().any(|p| p.host.name == h.name));
    for t in plans.iter().filter(|p| has_role(p, "turn")) {
        let name = dns_name(&text(t, "turn_hostname"));
        if name.is_empty() {
            continue;
        }
        let users: Vec<&&HostPlan> = nodes
            .iter()
            .filter(|n| dns_name(&text(n, "bbb_turn_hostname")) == name)
            .collect();
        if users.is_empty() && every_node_planned {
            errors.push(var_diagnostic(
                inv,
                &t.host,
                roles,
                run_vars,
                "turn_hostname",
                None,
                format!(
                    "host {}: no BBB node hands out this TURN server ({name}): no node's \
                     bbb_turn_hostname names it, so it would relay for no meeting while the \
                     nodes' users get another server; point the nodes at it (turn_hostname in \
                     all: vars) or remove the host from the turn role",
                    t.host.name
                ),
            ));
        }
        let group = text(t, "turn_peer_group");
        let members = inv.groups.get(&group).cloned().unwrap_or_default();
        let listed: Vec<String> = match t.vars.get("turn_allowed_peer_ips") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        for n in users {
            let allowed = (!group.is_empty() && members.contains(&n.host.name))
                || listed.iter().any(|e| allowed_peer(e, &n.host.address));
            if !allowed {
                errors.push(var_diagnostic(
                    inv,
                    &n.host,
                    roles,
                    run_vars,
                    "bbb_turn_hostname",
                    None,
                    format!(
                        "host {}: its TURN server {name} (host {}) does not relay to it: the \
                         node is not in that host's turn_peer_group `{group}` and its address \
                         {} is not in turn_allowed_peer_ips, so coturn would refuse every relay \
                         to the node's media and firewalled users could not join",
                        n.host.name, t.host.name, n.host.address
                    ),
                ));
            }
        }
    }
    errors
}

/// Why `value` cannot be one line `NAME=value` of an environment file as docker compose
/// (`.env`, `env_file:`) and systemd (`EnvironmentFile=`) read it, if it cannot: a line ends
/// at a line break, both trim or split at whitespace, read quotes and backslashes as quoting,
/// and compose replaces `$NAME` and `${NAME}`.
pub fn env_file_problem(value: &str) -> Option<&'static str> {
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("contains whitespace, a line break or a control character");
    }
    if value.contains(['$', '"', '\'', '\\', '`']) {
        return Some(
            "contains one of $ \" ' \\ ` (docker compose replaces $NAME in its .env file, and \
             compose and systemd read quotes and backslashes as quoting)",
        );
    }
    None
}

/// Every planned balancer's database settings survive the environment file they are written
/// to: Scalelite's `scalelite_postgres_password` goes raw into `POSTGRES_PASSWORD=` of
/// `/opt/scalelite/.env` (and percent-encoded into `DATABASE_URL`), b3scale's `b3scale_db_url`
/// into `/etc/default/b3scale` (the role's default percent-encodes `b3scale_db_password`
/// there). See [`env_file_problem`]; the message names host and variable, never the value.
pub fn database_passwords(
    inv: &crate::inventory::Inventory,
    plans: &[HostPlan],
    roles: &BTreeMap<String, Role>,
    run_vars: &Map<String, Value>,
) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for p in plans {
        let kind = p.vars.get("balancer_kind").and_then(Value::as_str);
        let name = match kind {
            Some("scalelite") if has_role(p, "scalelite") => "scalelite_postgres_password",
            Some("b3scale") if has_role(p, "b3scale") => "b3scale_db_url",
            _ => continue,
        };
        let Some(why) = p
            .vars
            .get(name)
            .and_then(Value::as_str)
            .and_then(env_file_problem)
        else {
            continue;
        };
        errors.push(var_diagnostic(
            inv,
            &p.host,
            roles,
            run_vars,
            name,
            None,
            format!(
                "host {}: variable {name} {why}: it cannot be written into the balancer's \
                 environment file intact; use letters, digits and URL-safe punctuation \
                 (e.g. `openssl rand -hex 32`)",
                p.host.name
            ),
        ));
    }
    errors
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
    fn env_file_values_that_would_not_arrive_intact_are_named() {
        assert_eq!(env_file_problem("Ab3-dE.f_9@:/?#%+="), None);
        for bad in [
            "a b", "a\nb", "a\tb", "a$b", "a\"b", "a'b", "a\\b", "a`b", " ab",
        ] {
            assert!(env_file_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn allowed_peers_match_addresses_and_ranges_as_coturn_reads_them() {
        assert!(allowed_peer("192.0.2.10", "192.0.2.10"));
        assert!(allowed_peer("192.0.2.0-192.0.2.255", "192.0.2.10"));
        assert!(!allowed_peer("192.0.2.11-192.0.2.255", "192.0.2.10"));
        assert!(allowed_peer("2001:db8::1-2001:db8::ff", "2001:db8::10"));
        assert!(!allowed_peer("192.0.2.0-192.0.2.255", "2001:db8::10"));
        assert!(!allowed_peer("192.0.2.10", "bbb1.school.test"));
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
