//! `service`: a systemd unit enabled/disabled and started/stopped; in handlers also
//! restarted or reloaded.

use super::{Flag, Probe, Use, Verdict};
use crate::script::quote;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceArgs {
    pub name: String,
    pub enabled: Option<Flag>,
    /// started | stopped | restarted | reloaded (the last two only in handlers)
    pub state: Option<String>,
    /// Run `systemctl daemon-reload` first (after unit files or drop-ins changed).
    pub daemon_reload: Option<Flag>,
}

pub fn validate_use(args: &serde_json::Value, usage: Use) -> Result<(), String> {
    let state = args.get("state").and_then(|s| s.as_str()).unwrap_or("");
    if usage == Use::Step && (state == "restarted" || state == "reloaded") {
        return Err(format!(
            "state `{state}` would change on every run; use it in a handler and `notify:` it"
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub enabled: Option<bool>,
    pub state: Option<String>,
    pub daemon_reload: bool,
}

impl Service {
    pub fn new(a: ServiceArgs) -> Result<Service, String> {
        if let Some(s) = a.state.as_deref()
            && !["started", "stopped", "restarted", "reloaded"].contains(&s)
        {
            return Err(format!(
                "state `{s}` must be started, stopped, restarted or reloaded"
            ));
        }
        Ok(Service {
            name: a.name,
            enabled: a.enabled.map(|f| f.get()).transpose()?,
            state: a.state,
            daemon_reload: a
                .daemon_reload
                .map(|f| f.get())
                .transpose()?
                .unwrap_or(false),
        })
    }

    pub fn check(&self) -> String {
        let n = quote(&self.name);
        format!(
            "echo \"E $(systemctl is-enabled {n} 2>/dev/null)\"\necho \"S $(systemctl is-active {n} 2>/dev/null)\"\n"
        )
    }

    pub fn evaluate(&self, probe: &Probe) -> Verdict {
        let enabled = probe.first("E").unwrap_or("").trim();
        let active = probe.first("S").unwrap_or("").trim();
        let mut changes = Vec::new();
        match self.enabled {
            Some(true)
                if !matches!(
                    enabled,
                    "enabled" | "static" | "alias" | "indirect" | "generated" | "enabled-runtime"
                ) =>
            {
                changes.push(format!("enable {}", self.name))
            }
            Some(false) if matches!(enabled, "enabled" | "enabled-runtime") => {
                changes.push(format!("disable {}", self.name))
            }
            _ => {}
        }
        match self.state.as_deref() {
            Some("started") if active != "active" => changes.push(format!("start {}", self.name)),
            Some("stopped") if matches!(active, "active" | "activating" | "reloading") => {
                changes.push(format!("stop {}", self.name))
            }
            Some("restarted") => changes.push(format!("restart {}", self.name)),
            Some("reloaded") => changes.push(format!("reload {}", self.name)),
            _ => {}
        }
        if changes.is_empty() {
            Verdict::Unchanged
        } else {
            Verdict::change(changes.join(", "))
        }
    }

    pub fn apply(&self) -> String {
        let n = quote(&self.name);
        let mut s = String::new();
        if self.daemon_reload {
            s.push_str("systemctl daemon-reload\n");
        }
        match self.enabled {
            Some(true) => s.push_str(&format!("systemctl enable {n}\n")),
            Some(false) => s.push_str(&format!("systemctl disable {n}\n")),
            None => {}
        }
        match self.state.as_deref() {
            Some("started") => s.push_str(&format!("systemctl start {n}\n")),
            Some("stopped") => s.push_str(&format!("systemctl stop {n}\n")),
            Some("restarted") => s.push_str(&format!("systemctl restart {n}\n")),
            Some("reloaded") => s.push_str(&format!("systemctl reload-or-restart {n}\n")),
            _ => {}
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures() {
        let s = Service::new(ServiceArgs {
            name: "coturn".into(),
            enabled: Some(Flag::Bool(true)),
            state: Some("started".into()),
            daemon_reload: None,
        })
        .unwrap();
        let p = |l: &[&str]| Probe {
            lines: l.iter().map(|s| s.to_string()).collect(),
            rc: 0,
        };
        assert_eq!(
            s.evaluate(&p(&["E enabled", "S active"])),
            Verdict::Unchanged
        );
        assert_eq!(
            s.evaluate(&p(&["E disabled", "S inactive"])),
            Verdict::change("enable coturn, start coturn")
        );
        assert_eq!(
            s.evaluate(&p(&["E ", "S "])),
            Verdict::change("enable coturn, start coturn")
        );
        assert_eq!(
            s.apply(),
            "systemctl enable coturn\nsystemctl start coturn\n"
        );
        assert!(
            validate_use(
                &serde_json::json!({"name": "x", "state": "restarted"}),
                Use::Step
            )
            .is_err()
        );
        assert!(
            validate_use(
                &serde_json::json!({"name": "x", "state": "restarted"}),
                Use::Handler
            )
            .is_ok()
        );
    }
}
