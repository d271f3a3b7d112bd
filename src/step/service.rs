//! `service`: a systemd unit enabled/disabled and started/stopped; in handlers also
//! restarted or reloaded.

use super::args::{Flag, flag_or};
use super::error::{ArgError, StepError, Field};
use super::facts::{CheckOutput, Gather, Gathered};
use super::kind::{Context, Kind, Resolve, Use, Verdict};
use crate::script::quote;
use serde::Deserialize;

/// The arguments of a `service` step.
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

/// A service step for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub enabled: Option<bool>,
    pub state: Option<String>,
    pub daemon_reload: bool,
}

/// What systemd says of the unit (`systemctl is-enabled`, `is-active`; empty when unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFacts {
    pub enabled: String,
    pub active: String,
}

impl Service {
    fn enable_change(&self, enabled: &str) -> Option<String> {
        match self.enabled {
            Some(true)
                if !matches!(
                    enabled,
                    "enabled" | "static" | "alias" | "indirect" | "generated" | "enabled-runtime"
                ) =>
            {
                Some(format!("enable {}", self.name))
            }
            Some(false) if matches!(enabled, "enabled" | "enabled-runtime") => {
                Some(format!("disable {}", self.name))
            }
            _ => None,
        }
    }

    fn state_change(&self, active: &str) -> Option<String> {
        match self.state.as_deref() {
            Some("started") if active != "active" => Some(format!("start {}", self.name)),
            Some("stopped") if matches!(active, "active" | "activating" | "reloading") => {
                Some(format!("stop {}", self.name))
            }
            Some("restarted") => Some(format!("restart {}", self.name)),
            Some("reloaded") => Some(format!("reload {}", self.name)),
            _ => None,
        }
    }
}

impl Kind for Service {
    const NAME: &'static str = "service";
    const MAY_BLOCK: bool = true;
    type Args = ServiceArgs;
    type Facts = UnitFacts;

    fn validate_use(a: &ServiceArgs, usage: Use) -> Result<(), ArgError> {
        let state = a.state.as_deref().unwrap_or("");
        if usage == Use::Step && (state == "restarted" || state == "reloaded") {
            return Err(ArgError::StateOutsideHandler(state.to_string()));
        }
        Ok(())
    }

    fn new(a: ServiceArgs, _: &Resolve) -> Result<Service, StepError> {
        if let Some(s) = a.state.as_deref()
            && !["started", "stopped", "restarted", "reloaded"].contains(&s)
        {
            return Err(ArgError::State {
                value: s.to_string(),
                allowed: "started, stopped, restarted or reloaded",
            }
            .into());
        }
        Ok(Service {
            name: a.name,
            enabled: a.enabled.map(|f| f.get()).transpose().field("enabled")?,
            state: a.state,
            daemon_reload: flag_or(&a.daemon_reload, false).field("daemon_reload")?,
        })
    }

    /// `enabled STATE` and `active STATE`, as systemctl says them.
    fn check(&self) -> String {
        let n = quote(&self.name);
        format!(
            "echo \"enabled $(systemctl is-enabled -- {n} 2>/dev/null)\"\necho \"active $(systemctl is-active -- {n} 2>/dev/null)\"\n"
        )
    }

    /// Gathered unless the name is a pattern (`systemctl` would answer for each unit it
    /// matches).
    fn gather(&self) -> Option<Gather<'_>> {
        (!self.name.contains(['*', '?', '[', '\n'])).then_some(Gather::Unit { name: &self.name })
    }

    fn gathered(&self, g: &Gathered) -> Option<UnitFacts> {
        g.unit(&self.name).map(|(enabled, active)| UnitFacts {
            enabled: enabled.trim().to_string(),
            active: active.trim().to_string(),
        })
    }

    fn read(&self, out: &CheckOutput) -> UnitFacts {
        UnitFacts {
            enabled: out.first("enabled").unwrap_or("").trim().to_string(),
            active: out.first("active").unwrap_or("").trim().to_string(),
        }
    }

    fn evaluate(&self, facts: &UnitFacts, _: &Context) -> Verdict {
        let changes: Vec<String> = [
            self.enable_change(&facts.enabled),
            self.state_change(&facts.active),
        ]
        .into_iter()
        .flatten()
        .collect();
        Verdict::changes(&changes)
    }

    fn apply(&self) -> String {
        let n = quote(&self.name);
        let mut s = String::new();
        if self.daemon_reload {
            s.push_str("systemctl daemon-reload\n");
        }
        match self.enabled {
            Some(true) => s.push_str(&format!("systemctl enable -- {n}\n")),
            Some(false) => s.push_str(&format!("systemctl disable -- {n}\n")),
            None => {}
        }
        match self.state.as_deref() {
            Some("started") => s.push_str(&format!("systemctl start -- {n}\n")),
            Some("stopped") => s.push_str(&format!("systemctl stop -- {n}\n")),
            Some("restarted") => s.push_str(&format!("systemctl restart -- {n}\n")),
            Some("reloaded") => s.push_str(&format!("systemctl reload-or-restart -- {n}\n")),
            _ => {}
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secrets;
    use crate::step::with_plain_resolve;

    #[test]
    fn fixtures() {
        let a = ServiceArgs {
            name: "coturn".into(),
            enabled: Some(Flag::Bool(true)),
            state: Some("started".into()),
            daemon_reload: None,
        };
        let s = with_plain_resolve(|r| Service::new(a, r)).unwrap();
        let secrets = Secrets::default();
        let eval = |l: &[&str]| {
            s.evaluate(
                &s.read(&CheckOutput::of(l)),
                &Context {
                    secrets: &secrets,
                    host: "h",
                },
            )
        };
        assert_eq!(
            eval(&["enabled enabled", "active active"]),
            Verdict::Unchanged
        );
        assert_eq!(
            eval(&["enabled disabled", "active inactive"]),
            Verdict::change("enable coturn, start coturn")
        );
        assert_eq!(
            eval(&["enabled ", "active "]),
            Verdict::change("enable coturn, start coturn")
        );
        assert_eq!(
            s.apply(),
            "systemctl enable -- coturn\nsystemctl start -- coturn\n"
        );
        let restarted = || ServiceArgs {
            name: "x".into(),
            enabled: None,
            state: Some("restarted".into()),
            daemon_reload: None,
        };
        assert!(Service::validate_use(&restarted(), Use::Step).is_err());
        assert!(Service::validate_use(&restarted(), Use::Handler).is_ok());
    }
}
