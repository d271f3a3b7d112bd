//! Host addresses and ports, checked when the inventory loads: an address is handed to ssh
//! as its destination, so one starting with `-` would be read as an option
//! (`-oProxyCommand=...` runs a command on the controller), and an empty address, spaces or
//! port 0 would only fail later, at connect time, with a misleading message.

use super::Connection;
use super::file::HostFile;
use crate::error::Diagnostic;
use crate::yaml::Source;
use std::net::IpAddr;

/// Why `address` cannot be a host's address, if it cannot: it must be an IP address or a host
/// name (an ssh_config alias is one): letters, digits, `.`, `-`, `_`, not starting with `-`.
pub fn problem(address: &str) -> Option<&'static str> {
    if address.is_empty() {
        return Some("is empty");
    }
    if address.starts_with('-') {
        return Some("starts with `-` (ssh would read it as an option)");
    }
    if address.parse::<IpAddr>().is_ok() {
        return None;
    }
    if address.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("contains spaces or control characters");
    }
    if address.len() > 253 {
        return Some("is longer than a host name may be (253 characters)");
    }
    if !address
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Some("is not a host name or IP address");
    }
    None
}

/// `address` as ssh's destination argument. The openssh crate places it last without `--`,
/// so this is the last guard that it can never be read as an option, even for a `Host` that
/// did not come from [`crate::inventory::load`].
///
/// # Errors
/// The address and why it cannot be a destination.
pub fn ssh_destination(address: &str) -> Result<&str, String> {
    match problem(address) {
        None => Ok(address),
        Some(why) => Err(format!("address `{}` {why}", address.escape_debug())),
    }
}

/// Refuses an address ssh could take for an option or that cannot be a host (the port is
/// checked as it is read: [`super::file::Port`]).
/// A host without `address:` is reached by its name (`by_name`: nothing else, such as
/// `ansible_host`, gives its address), so then the name must be an address.
pub(super) fn check(
    source: &Source,
    name: &str,
    hf: &HostFile,
    at: (u64, u64),
    by_name: bool,
) -> Result<(), Diagnostic> {
    match &hf.address {
        Some(a) => match problem(&a.value) {
            Some(why) => Err(source
                .at(
                    a.referenced.line(),
                    a.referenced.column(),
                    format!("address `{}` {why}", a.value.escape_debug()),
                )
                .with_hint("an address is a host name or an IP address")),
            None => Ok(()),
        },
        None if by_name && hf.connection.unwrap_or_default() == Connection::Ssh => {
            match problem(name) {
                Some(why) => Err(source
                    .at(
                        at.0,
                        at.1,
                        format!(
                            "host `{}` has no `address:` and its name {why}",
                            name.escape_debug()
                        ),
                    )
                    .with_hint("set `address:` to the host's name or IP address")),
                None => Ok(()),
            }
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_and_ips_refuses_options_and_spaces() {
        for ok in [
            "bbb1",
            "bbb1.example.org",
            "10.0.0.1",
            "::1",
            "fe80::1",
            "my_alias",
        ] {
            assert_eq!(problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "-oProxyCommand=x",
            "127.0.0.1 -p 22",
            "a\nb",
            "user@host",
            "[::1]",
        ] {
            assert!(problem(bad).is_some(), "{bad:?}");
        }
    }
}
