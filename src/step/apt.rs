//! `apt`: Debian/Ubuntu packages present, absent or latest, with an optional cache refresh
//! when the cache is older than `cache_valid_time`. Waits for the dpkg lock (unattended
//! upgrades on a fresh machine) and retries, instead of failing the host.

use super::{Flag, Num, Probe, Verdict};
use crate::script::quote;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AptArgs {
    /// One package or a list.
    #[serde(default)]
    pub name: Names,
    /// present (default) | absent | latest
    pub state: Option<String>,
    /// Refresh the package lists when they are older than `cache_valid_time`.
    pub update_cache: Option<Flag>,
    /// Seconds; default 3600.
    pub cache_valid_time: Option<Num>,
    /// Install recommended packages too; default true (apt's own default).
    pub recommends: Option<Flag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub enum Names {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Absent,
    Latest,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Apt {
    pub packages: Vec<String>,
    pub state: State,
    pub update_cache: bool,
    pub cache_valid_time: u64,
    pub recommends: bool,
}

impl Apt {
    pub fn new(a: AptArgs) -> Result<Apt, String> {
        let packages = match a.name {
            Names::None => vec![],
            Names::One(s) => s
                .split([',', ' '])
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
            Names::Many(v) => v,
        };
        if let Some(bad) = packages.iter().find(|p| {
            !p.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.:=_~".contains(c))
        }) {
            return Err(format!("`{bad}` is not a package name"));
        }
        let state = match a.state.as_deref() {
            None | Some("present") => State::Present,
            Some("absent") => State::Absent,
            Some("latest") => State::Latest,
            Some(s) => return Err(format!("state `{s}` must be present, absent or latest")),
        };
        let update_cache = a
            .update_cache
            .map(|f| f.get())
            .transpose()?
            .unwrap_or(false);
        if packages.is_empty() && !update_cache {
            return Err("apt needs `name` (packages) or `update_cache: true`".into());
        }
        Ok(Apt {
            packages,
            state,
            update_cache,
            cache_valid_time: a
                .cache_valid_time
                .map(|n| n.get())
                .transpose()?
                .unwrap_or(3600),
            recommends: a.recommends.map(|f| f.get()).transpose()?.unwrap_or(true),
        })
    }

    /// `D <pkg> <status> <version>` per known package, `C <pkg> <candidate>` for latest,
    /// `A <seconds>` for the age of the package lists.
    pub fn check(&self) -> String {
        let mut s = String::new();
        let names: Vec<String> = self
            .packages
            .iter()
            .map(|p| quote(p.split('=').next().unwrap_or(p)))
            .collect();
        let names = names.join(" ");
        if !self.packages.is_empty() {
            s.push_str(&format!("dpkg-query -W -f='D ${{Package}} ${{db:Status-Abbrev}} ${{Version}}\\n' {names} 2>/dev/null || true\n"));
        }
        if self.state == State::Latest {
            s.push_str(&format!("LC_ALL=C apt-cache policy {names} 2>/dev/null | awk '/^[^ ]/{{p=$1; sub(/:$/,\"\",p)}} /^  Candidate:/{{print \"C \" p \" \" $2}}'\n"));
        }
        if self.update_cache {
            s.push_str("if [ -e /var/cache/apt/pkgcache.bin ]; then echo \"A $(( $(date +%s) - $(stat -c %Y /var/cache/apt/pkgcache.bin) ))\"; else echo 'A 999999999'; fi\n");
        }
        s
    }

    pub fn evaluate(&self, probe: &Probe) -> Verdict {
        let installed = |p: &str| -> Option<String> {
            let name = p.split('=').next().unwrap_or(p);
            probe.tagged("D").find_map(|l| {
                let mut f = l.split_whitespace();
                let (n, st, v) = (f.next()?, f.next()?, f.next().unwrap_or(""));
                (n == name && st.starts_with("ii")).then(|| v.to_string())
            })
        };
        let mut todo = Vec::new();
        match self.state {
            State::Present => {
                let missing: Vec<&str> = self
                    .packages
                    .iter()
                    .filter(|p| installed(p).is_none())
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() {
                    todo.push(format!("install {}", missing.join(" ")));
                }
            }
            State::Absent => {
                let there: Vec<&str> = self
                    .packages
                    .iter()
                    .filter(|p| installed(p).is_some())
                    .map(String::as_str)
                    .collect();
                if !there.is_empty() {
                    todo.push(format!("remove {}", there.join(" ")));
                }
            }
            State::Latest => {
                for p in &self.packages {
                    let cand = probe.tagged("C").find_map(|l| {
                        l.strip_prefix(p.as_str())
                            .and_then(|r| r.strip_prefix(' '))
                            .map(String::from)
                    });
                    match (installed(p), cand) {
                        (None, _) => todo.push(format!("install {p}")),
                        (Some(v), Some(c)) if c != v && c != "(none)" => {
                            todo.push(format!("upgrade {p} {v} -> {c}"))
                        }
                        _ => {}
                    }
                }
            }
        }
        if self.update_cache {
            let age: u64 = probe
                .first("A")
                .and_then(|a| a.trim().parse().ok())
                .unwrap_or(u64::MAX);
            if age > self.cache_valid_time {
                todo.insert(0, "update package lists".into());
            }
        }
        if todo.is_empty() {
            Verdict::Unchanged
        } else {
            Verdict::change(todo.join(", "))
        }
    }

    pub fn apply(&self) -> String {
        let mut s = String::from(
            // Behind apt-cacher-ng (what `bbb-install.sh -p` points hosts at), many hosts
            // updating at once can make it answer some requests with an error and close the
            // connection; apt's http method then waited forever (no Acquire timeout ends it).
            // On the lab, after the first round, 9 of 72 parallel updates hung with pipelining
            // and 1 of 84 without; right after the proxy started, 7 of 12 hung either way. So
            // no pipelining, and `update` gets a watchdog: a hung update becomes a failure and
            // is retried.
            "export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a\n__rl_apt() { n=0; w=; [ \"$1\" != update ] || w='timeout -k 10 300'; until $w apt-get -q -y -o DPkg::Lock::Timeout=600 -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30 -o Acquire::http::Pipeline-Depth=0 -o Acquire::Retries=3 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \"$@\"; do rc=$?; n=$((n+1)); [ $n -lt 3 ] || return 1; if [ $rc = 124 ]; then rc='timed out after 300 s'; else rc=\"exit code $rc\"; fi; echo \"apt-get $1 failed ($rc), retrying ($n)\" >&2; sleep 10; done; }\n",
        );
        let pkgs: Vec<String> = self.packages.iter().map(|p| quote(p)).collect();
        let pkgs = pkgs.join(" ");
        let update_first = self.update_cache || self.state == State::Latest;
        if update_first {
            s.push_str(&format!(
                "if [ ! -e /var/cache/apt/pkgcache.bin ] || [ $(( $(date +%s) - $(stat -c %Y /var/cache/apt/pkgcache.bin) )) -gt {} ]; then __rl_apt update; fi\n",
                if self.update_cache { self.cache_valid_time } else { 3600 }
            ));
        }
        if !self.packages.is_empty() {
            let rec = if self.recommends {
                ""
            } else {
                " --no-install-recommends"
            };
            match self.state {
                State::Present => s.push_str(&format!("__rl_apt install{rec} {pkgs} || {{ __rl_apt update && __rl_apt install{rec} {pkgs}; }}\n")),
                State::Latest => s.push_str(&format!("__rl_apt install --only-upgrade{rec} {pkgs} 2>/dev/null; __rl_apt install{rec} {pkgs}\n")),
                State::Absent => s.push_str(&format!("__rl_apt remove {pkgs}\n")),
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apt(state: &str) -> Apt {
        Apt::new(AptArgs {
            name: Names::Many(vec!["coturn".into(), "curl".into()]),
            state: Some(state.into()),
            update_cache: None,
            cache_valid_time: None,
            recommends: None,
        })
        .unwrap()
    }
    fn p(l: &[&str]) -> Probe {
        Probe {
            lines: l.iter().map(|s| s.to_string()).collect(),
            rc: 0,
        }
    }

    #[test]
    fn fixtures() {
        assert_eq!(
            apt("present").evaluate(&p(&["D coturn ii  4.6.1-1", "D curl ii  7.88"])),
            Verdict::Unchanged
        );
        assert_eq!(
            apt("present").evaluate(&p(&["D coturn un  ", "D curl ii  7.88"])),
            Verdict::change("install coturn")
        );
        assert_eq!(
            apt("present").evaluate(&p(&[])),
            Verdict::change("install coturn curl")
        );
        assert_eq!(
            apt("absent").evaluate(&p(&["D coturn rc  4.6.1-1"])),
            Verdict::Unchanged
        );
        assert_eq!(
            apt("latest").evaluate(&p(&[
                "D coturn ii  1",
                "D curl ii  2",
                "C coturn 1",
                "C curl 3"
            ])),
            Verdict::change("upgrade curl 2 -> 3")
        );
        assert!(
            apt("present")
                .apply()
                .contains("__rl_apt install coturn curl")
        );
        assert!(
            Apt::new(AptArgs {
                name: Names::One("x;rm".into()),
                state: None,
                update_cache: None,
                cache_valid_time: None,
                recommends: None
            })
            .is_err()
        );
    }
}
