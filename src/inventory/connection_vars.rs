//! Ansible's connection variables in a rollout inventory: `ansible_host`, `ansible_port`,
//! `ansible_user`, `ansible_become` and `ansible_connection`, set in `vars:` of a host or a
//! group (or with `-e`), after precedence, stand for the host's `address`, `port`, `user`,
//! `become` and `connection`. Written both ways for one host (`address:` on the host and
//! `ansible_host` in its variables) is an error naming both places: one would silently win.
//! A variable given with `-e` is not such a conflict: extra variables outrank everything in
//! Ansible, and `-e ansible_connection=local` overrides the host's `connection:` for the run.

use super::file::{Connection, HostFile};
use super::refs::Origin;
use crate::error::Diagnostic;
use crate::yaml::Source;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// The connection settings the variables give (`None`: not set there).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConnectionVars {
    pub address: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub become_root: Option<bool>,
    pub connection: Option<Connection>,
}

/// Reads the connection variables of host `name` from its merged `vars`; `origins` says
/// where each was set, for messages.
///
/// # Errors
/// A value of the wrong type or out of range (an address ssh could read as an option, a
/// port outside 1-65535, a connection other than `ssh`/`local`), or a setting given both as
/// the host's own key and as its Ansible variable.
pub fn read(
    source: &Source,
    name: &str,
    hf: &HostFile,
    vars: &Map<String, Value>,
    origins: &HashMap<String, Origin>,
) -> Result<ConnectionVars, Diagnostic> {
    let at = |key: &str, message: String| match origins.get(key) {
        Some(Origin::At(line, column)) => source.at(*line, *column, message),
        Some(Origin::Extra) => {
            Diagnostic::file(std::path::Path::new(&format!("-e {key}")), message)
        }
        Some(Origin::Ansible(at)) => Origin::ansible_diagnostic(at, message),
        None => Diagnostic::file(&source.path, message),
    };
    let both = |key: &str, own: &str| {
        at(
            key,
            format!("host `{name}` sets both `{own}` and `{key}`: keep one of them"),
        )
        .with_hint(format!("`{key}` is Ansible's name for rollout's `{own}`"))
    };
    // `-e` outranks everything in Ansible, a host's own keys included: no conflict then.
    let own = |key: &str, set: bool| set && !matches!(origins.get(key), Some(Origin::Extra));
    let text = |key: &str| -> Result<Option<String>, Diagnostic> {
        match vars.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(at(key, format!("`{key}` must be a string, not {other}"))),
        }
    };
    let mut out = ConnectionVars::default();
    if let Some(a) = text("ansible_host")? {
        if own("ansible_host", hf.address.is_some()) {
            return Err(both("ansible_host", "address"));
        }
        if let Some(why) = super::address::problem(&a) {
            return Err(at(
                "ansible_host",
                format!("ansible_host `{}` {why}", a.escape_debug()),
            )
            .with_hint("an address is a host name or an IP address"));
        }
        out.address = Some(a);
    }
    if let Some(p) = vars.get("ansible_port").filter(|v| !v.is_null()) {
        if own("ansible_port", hf.port.is_some()) {
            return Err(both("ansible_port", "port"));
        }
        let port = match p {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        }
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0);
        out.port = Some(port.ok_or_else(|| {
            at(
                "ansible_port",
                format!("ansible_port must be a port number (1-65535), not {p}"),
            )
        })?);
    }
    if let Some(u) = text("ansible_user")? {
        if own("ansible_user", hf.user.is_some()) {
            return Err(both("ansible_user", "user"));
        }
        if u.is_empty()
            || u.starts_with('-')
            || u.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(at(
                "ansible_user",
                format!("ansible_user `{}` is not a user name", u.escape_debug()),
            ));
        }
        out.user = Some(u);
    }
    if let Some(b) = vars.get("ansible_become").filter(|v| !v.is_null()) {
        if own("ansible_become", hf.become_root.is_some()) {
            return Err(both("ansible_become", "become"));
        }
        out.become_root = Some(boolean(b).ok_or_else(|| {
            at(
                "ansible_become",
                format!("ansible_become must be true or false, not {b}"),
            )
        })?);
    }
    if let Some(c) = text("ansible_connection")? {
        if own("ansible_connection", hf.connection.is_some()) {
            return Err(both("ansible_connection", "connection"));
        }
        out.connection = Some(match c.as_str() {
            "ssh"
            | "ansible.builtin.ssh"
            | "smart"
            | "paramiko"
            | "ansible.builtin.paramiko_ssh" => Connection::Ssh,
            "local" | "ansible.builtin.local" => Connection::Local,
            other => {
                return Err(at(
                    "ansible_connection",
                    format!(
                        "ansible_connection `{other}` is not one rollout has: use `ssh` or `local`"
                    ),
                ));
            }
        });
    }
    for (key, value) in vars {
        if let Some(why) = unhonoured(key, value) {
            return Err(at(
                key,
                format!("host `{name}`: `{key}` changes how Ansible connects, and rollout does not read it"),
            )
            .with_hint(why));
        }
    }
    Ok(out)
}

/// Why an Ansible connection or privilege variable rollout does not honour cannot be
/// ignored, and what to write instead; `None` for every other variable (and for values
/// that mean what rollout does anyway: `ansible_become_user: root`,
/// `ansible_become_method: sudo`). Ignoring one would connect or escalate differently from
/// what the operator wrote (Ansible's names: the `ssh` connection and `sudo` become plugins'
/// documented variables).
fn unhonoured(key: &str, value: &Value) -> Option<&'static str> {
    let is = |want: &str| value.as_str().is_some_and(|v| v == want);
    Some(match key {
        "ansible_ssh_host" | "ansible_ssh_port" | "ansible_ssh_user" => {
            "write `ansible_host`, `ansible_port`, `ansible_user` (or rollout's `address`, `port`, `user`)"
        }
        "ansible_ssh_private_key_file" | "ansible_private_key_file" => {
            "name the key in the inventory's `ssh_config:` file (`IdentityFile`)"
        }
        "ansible_ssh_common_args"
        | "ansible_ssh_extra_args"
        | "ansible_ssh_args"
        | "ansible_ssh_executable" => {
            "put ssh options in the inventory's `ssh_config:` file (a `Host` block per host or group)"
        }
        "ansible_password" | "ansible_ssh_pass" | "ansible_ssh_password" => {
            "rollout logs in with keys only (an agent or `IdentityFile` in `ssh_config:`)"
        }
        "ansible_become_user" if !is("root") => "rollout becomes root only",
        "ansible_become_method" if !is("sudo") => "rollout becomes root with `sudo -n` only",
        "ansible_become_pass" | "ansible_become_password" | "ansible_sudo_pass" => {
            "give the become password with `--become-password-file FILE` or `-K` (never in the \
             inventory), or allow the login user passwordless sudo"
        }
        "ansible_become_exe" | "ansible_become_flags" => {
            "rollout becomes root with `sudo -n`: allow the login user passwordless sudo"
        }
        _ => return None,
    })
}

/// Ansible's `boolean()` filter as connection settings use it: true/false, yes/no, on/off,
/// 1/0 (any case).
fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "y" | "t" | "1" => Some(true),
            "false" | "no" | "off" | "n" | "f" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::inventory::{Connection, load};

    fn inventory(name: &str, text: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("rollout-connvars-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("inv.yml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn ansible_connection_variables_set_the_host() {
        let p = inventory(
            "ok",
            "all:\n  vars:\n    ansible_user: deploy\n    ansible_become: 'yes'\n  hosts:\n    web[1]:\n      vars:\n        ansible_host: 192.0.2.7\n        ansible_port: '2222'\n    here:\n      vars: {ansible_connection: local}\n",
        );
        let inv = load(&p, &Default::default()).unwrap();
        let web = inv.host("web[1]").unwrap();
        assert_eq!(
            (
                web.address.as_str(),
                web.port,
                web.user.as_deref(),
                web.become_root
            ),
            ("192.0.2.7", Some(2222), Some("deploy"), true)
        );
        assert_eq!(inv.host("here").unwrap().connection, Connection::Local);
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn connection_variables_rollout_does_not_read_are_located_errors() {
        let p = inventory(
            "unread",
            "all:\n  hosts:\n    h1:\n      vars:\n        ansible_become_user: root\n        ansible_python_interpreter: /usr/bin/python3\n        ansible_ssh_private_key_file: ~/.ssh/pool\n",
        );
        let e = load(&p, &Default::default()).unwrap_err().to_string();
        assert!(e.contains("inv.yml:7:39"), "{e}");
        assert!(
            e.contains("`ansible_ssh_private_key_file` changes how Ansible connects"),
            "{e}"
        );
        assert!(e.contains("IdentityFile"), "{e}");
        let p = inventory(
            "ok-values",
            "all:\n  hosts:\n    h1:\n      vars:\n        ansible_become_user: root\n        ansible_become_method: sudo\n        ansible_python_interpreter: /usr/bin/python3\n",
        );
        assert!(load(&p, &Default::default()).is_ok());
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn extra_vars_outrank_the_hosts_own_keys_without_a_conflict() {
        let p = inventory(
            "extra",
            "all:\n  hosts:\n    h1:\n      connection: ssh\n      address: 192.0.2.1\n      user: deploy\n",
        );
        let mut extra = serde_json::Map::new();
        extra.insert("ansible_connection".into(), "local".into());
        extra.insert("ansible_host".into(), "192.0.2.9".into());
        let inv = load(&p, &extra).unwrap();
        let h1 = inv.host("h1").unwrap();
        assert_eq!(h1.connection, Connection::Local);
        assert_eq!(h1.address, "192.0.2.9");
        assert_eq!(h1.user.as_deref(), Some("deploy"));
        std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
    }

    #[test]
    fn both_spellings_or_bad_values_are_located_errors() {
        for (name, text, want) in [
            (
                "both",
                "all:\n  hosts:\n    h1:\n      address: 192.0.2.1\n      vars:\n        ansible_host: 192.0.2.2\n",
                (
                    6,
                    23,
                    "host `h1` sets both `address` and `ansible_host`: keep one of them",
                ),
            ),
            (
                "option",
                "all:\n  vars:\n    ansible_host: -oProxyCommand=x\n  hosts:\n    h1: {}\n",
                (
                    3,
                    19,
                    "ansible_host `-oProxyCommand=x` starts with `-` (ssh would read it as an option)",
                ),
            ),
            (
                "port",
                "all:\n  hosts:\n    h1:\n      vars: {ansible_port: 70000}\n",
                (
                    4,
                    28,
                    "ansible_port must be a port number (1-65535), not 70000",
                ),
            ),
            (
                "conn",
                "all:\n  hosts:\n    h1:\n      vars: {ansible_connection: winrm}\n",
                (
                    4,
                    34,
                    "ansible_connection `winrm` is not one rollout has: use `ssh` or `local`",
                ),
            ),
        ] {
            let p = inventory(name, text);
            let d = load(&p, &Default::default()).unwrap_err();
            assert_eq!((d.line, d.column, d.message.as_str()), want, "{name}");
            std::fs::remove_dir_all(p.parent().unwrap()).unwrap();
        }
    }
}
