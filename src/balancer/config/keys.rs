//! Which keys `balancer:` may have and where each is written. The section's keys are read
//! as an enum so that the YAML parser itself rejects an unknown key at its line:column; kept
//! apart from the values' validation in the parent module.

use crate::error::{Diagnostic, did_you_mean};
use crate::inventory::Inventory;
use crate::yaml;
use indexmap::IndexMap;
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::HashMap;

/// The keys of `balancer:`, in the order of [`Key`].
const KEYS: &[&str] = &[
    "kind",
    "url",
    "secret",
    "group",
    "host",
    "min_in_service",
    "poll_interval",
    "request_timeout",
    "health_timeout",
    "online_timeout",
    "rake_command",
    "ca_file",
];

/// A key of `balancer:`. Reading the section's keys as this enum makes any other key a
/// typed error of the YAML parser at its own line:column, and gives every key's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Key {
    Kind,
    Url,
    Secret,
    Group,
    Host,
    MinInService,
    PollInterval,
    RequestTimeout,
    HealthTimeout,
    OnlineTimeout,
    RakeCommand,
    CaFile,
}

impl Key {
    fn name(self) -> &'static str {
        // Invariant: KEYS lists the variants' snake_case names in declaration order.
        KEYS[self as usize]
    }
}

/// The inventory file as far as the `balancer:` keys go (everything else is read by
/// the inventory and ignored here).
#[derive(Deserialize)]
struct BalancerKeys {
    #[serde(default)]
    balancer: Option<IndexMap<Spanned<Key>, serde::de::IgnoredAny>>,
}

/// Where each key of `balancer:` is written (line, column), as the parser saw it.
///
/// # Errors
/// An unknown key, located, with a did-you-mean hint.
pub(super) fn key_positions(
    inv: &Inventory,
) -> Result<HashMap<&'static str, (u64, u64)>, Diagnostic> {
    let keys: BalancerKeys = inv.source.parse_typed().map_err(|e| unknown_key(inv, &e))?;
    Ok(keys
        .balancer
        .unwrap_or_default()
        .into_keys()
        .map(|k| (k.value.name(), (k.referenced.line(), k.referenced.column())))
        .collect())
}

fn unknown_key(inv: &Inventory, e: &serde_saphyr::Error) -> Diagnostic {
    let fallback = inv.balancer.as_ref().map_or((0, 0), |(_, l, c)| (*l, *c));
    let (line, column) = e.location().map_or(fallback, |l| (l.line(), l.column()));
    let word = match yaml::original(e) {
        serde_saphyr::Error::SerdeUnknownVariant { variant, .. } => variant.clone(),
        // Not a word at all (a number, a list): name it as the parser does.
        other => other.to_string(),
    };
    let mut d = inv
        .source
        .at(line, column, format!("balancer: unknown key `{word}`"));
    d.hint = Some(match did_you_mean(&word, KEYS.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("known keys: {}", KEYS.join(", ")),
    });
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_enum_variants_in_the_order_of_keys() {
        let k: Key = serde_json::from_value(serde_json::json!("min_in_service")).unwrap();
        assert_eq!(k.name(), "min_in_service");
        let k: Key = serde_json::from_value(serde_json::json!("rake_command")).unwrap();
        assert_eq!(k.name(), "rake_command");
        assert_eq!(Key::Kind.name(), "kind");
    }
}
