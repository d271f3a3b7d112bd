//! `apt`: Debian/Ubuntu packages present, absent or latest, with an optional cache refresh
//! when the cache is older than `cache_valid_time`. Waits for the dpkg lock (unattended
//! upgrades on a fresh machine) and retries, instead of failing the host.

use super::args::{Flag, Num, flag_or};
use super::error::{ArgError, StepError, Field};
use super::facts::{CheckOutput, Gather, Gathered};
use super::kind::{Context, Kind, Resolve, Verdict};
use crate::script::quote;
use serde::Deserialize;

/// The arguments of an `apt` step.
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

/// Package names as written: none, one string (comma or space separated), or a list.
#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
pub enum Names {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

/// What the packages should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Present,
    Absent,
    Latest,
}

/// An apt step for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Apt {
    pub packages: Vec<String>,
    pub state: State,
    pub update_cache: bool,
    pub cache_valid_time: u64,
    pub recommends: bool,
}

/// A package dpkg knows (installed or not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    /// dpkg's abbreviated status, e.g. `ii` (installed) or `rc` (removed, config left).
    pub status: String,
    pub version: String,
}

/// What an apt step's check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AptFacts {
    pub packages: Vec<Package>,
    /// (package, candidate version) for `state: latest`.
    pub candidates: Vec<(String, String)>,
    /// Seconds since the package lists were refreshed (when `update_cache`).
    pub cache_age: Option<u64>,
}

impl AptFacts {
    /// The installed version of `p` (a name, or `name=version`).
    fn installed(&self, p: &str) -> Option<&str> {
        let name = p.split('=').next().unwrap_or(p);
        self.packages
            .iter()
            .find(|k| k.name == name && k.status.starts_with("ii"))
            .map(|k| k.version.as_str())
    }
}

impl Apt {
    /// The package names without `=version`, as dpkg and apt-cache are asked about them.
    fn names(&self) -> Vec<&str> {
        self.packages
            .iter()
            .map(|p| p.split('=').next().unwrap_or(p))
            .collect()
    }

    fn packages_where(&self, facts: &AptFacts, installed: bool) -> Vec<&str> {
        self.packages
            .iter()
            .filter(|p| facts.installed(p).is_some() == installed)
            .map(String::as_str)
            .collect()
    }

    fn latest(&self, facts: &AptFacts, todo: &mut Vec<String>) {
        for p in &self.packages {
            let cand = facts
                .candidates
                .iter()
                .find(|(n, _)| n == p)
                .map(|(_, v)| v.as_str());
            match (facts.installed(p), cand) {
                (None, _) => todo.push(format!("install {p}")),
                (Some(v), Some(c)) if c != v && c != "(none)" => {
                    todo.push(format!("upgrade {p} {v} -> {c}"))
                }
                _ => {}
            }
        }
    }
}

impl Kind for Apt {
    const NAME: &'static str = "apt";
    const MAY_BLOCK: bool = true;
    type Args = AptArgs;
    type Facts = AptFacts;

    fn new(a: AptArgs, _: &Resolve) -> Result<Apt, StepError> {
        let packages = match a.name {
            Names::None => vec![],
            Names::One(s) => s
                .split([',', ' '])
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect(),
            Names::Many(v) => v,
        };
        // Debian package names start with a letter or digit; one starting with `-` would be
        // an option to apt-get (`-oAPT::...`).
        if let Some(bad) = packages.iter().find(|p| {
            !p.starts_with(|c: char| c.is_ascii_alphanumeric())
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.:=_~".contains(c))
        }) {
            return Err(ArgError::PackageName(bad.clone()).into());
        }
        let state = match a.state.as_deref() {
            None | Some("present") => State::Present,
            Some("absent") => State::Absent,
            Some("latest") => State::Latest,
            Some(s) => {
                return Err(ArgError::State {
                    value: s.to_string(),
                    allowed: "present, absent or latest",
                }
                .into());
            }
        };
        let update_cache = flag_or(&a.update_cache, false).field("update_cache")?;
        if packages.is_empty() && !update_cache {
            return Err(ArgError::AptNothing.into());
        }
        Ok(Apt {
            packages,
            state,
            update_cache,
            cache_valid_time: a
                .cache_valid_time
                .map(|n| n.get())
                .transpose()
                .field("cache_valid_time")?
                .unwrap_or(3600),
            recommends: flag_or(&a.recommends, true).field("recommends")?,
        })
    }

    fn default_timeout(&self) -> u64 {
        1800
    }

    /// `package NAME STATUS VERSION` per known package, `candidate NAME VERSION` for
    /// latest, `cache-age SECONDS` for the age of the package lists.
    fn check(&self) -> String {
        let mut s = String::new();
        let names: Vec<String> = self
            .packages
            .iter()
            .map(|p| quote(p.split('=').next().unwrap_or(p)))
            .collect();
        let names = names.join(" ");
        if !self.packages.is_empty() {
            s.push_str(&format!("dpkg-query -W -f='package ${{Package}} ${{db:Status-Abbrev}} ${{Version}}\\n' {names} 2>/dev/null || true\n"));
        }
        if self.state == State::Latest {
            s.push_str(&format!("LC_ALL=C apt-cache policy {names} 2>/dev/null | awk '/^[^ ]/{{p=$1; sub(/:$/,\"\",p)}} /^  Candidate:/{{print \"candidate \" p \" \" $2}}'\n"));
        }
        if self.update_cache {
            s.push_str("if [ -e /var/cache/apt/pkgcache.bin ]; then echo \"cache-age $(( $(date +%s) - $(stat -c %Y /var/cache/apt/pkgcache.bin) ))\"; else echo 'cache-age 999999999'; fi\n");
        }
        s
    }

    fn gather(&self) -> Option<Gather<'_>> {
        Some(Gather::Packages {
            names: self.names(),
            latest: self.state == State::Latest,
            cache_age: self.update_cache,
        })
    }

    /// The host's lines for this step's names, in dpkg's (and apt-cache's) order, as its
    /// own check would have printed them.
    fn gathered(&self, g: &Gathered) -> Option<AptFacts> {
        let names = self.names();
        let packages = if names.is_empty() {
            vec![]
        } else {
            g.packages()?
                .iter()
                .filter(|(n, _, _)| names.contains(&n.as_str()))
                .map(|(name, status, version)| Package {
                    name: name.clone(),
                    status: status.clone(),
                    version: version.clone(),
                })
                .collect()
        };
        let candidates = if self.state == State::Latest {
            g.candidates()?
                .iter()
                .filter(|(n, _)| names.contains(&n.as_str()))
                .cloned()
                .collect()
        } else {
            vec![]
        };
        let cache_age = if self.update_cache {
            g.cache_age()?
        } else {
            None
        };
        Some(AptFacts {
            packages,
            candidates,
            cache_age,
        })
    }

    fn read(&self, out: &CheckOutput) -> AptFacts {
        let packages = out
            .values("package")
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some(Package {
                    name: f.next()?.to_string(),
                    status: f.next()?.to_string(),
                    version: f.next().unwrap_or("").to_string(),
                })
            })
            .collect();
        let candidates = out
            .values("candidate")
            .filter_map(|l| l.split_once(' '))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        AptFacts {
            packages,
            candidates,
            cache_age: out.first("cache-age").and_then(|a| a.trim().parse().ok()),
        }
    }

    fn evaluate(&self, facts: &AptFacts, _: &Context) -> Verdict {
        let mut todo = Vec::new();
        match self.state {
            State::Present => {
                let missing = self.packages_where(facts, false);
                if !missing.is_empty() {
                    todo.push(format!("install {}", missing.join(" ")));
                }
            }
            State::Absent => {
                let there = self.packages_where(facts, true);
                if !there.is_empty() {
                    todo.push(format!("remove {}", there.join(" ")));
                }
            }
            State::Latest => self.latest(facts, &mut todo),
        }
        if self.update_cache && facts.cache_age.unwrap_or(u64::MAX) > self.cache_valid_time {
            todo.insert(0, "update package lists".into());
        }
        Verdict::changes(&todo)
    }

    fn apply(&self) -> String {
        let mut s = String::from(
            // Behind apt-cacher-ng (what `bbb-install.sh -p` points hosts at), many hosts
            // asking for one index at once can get `503` for some of them: apt-cacher-ng 3.7.4
            // takes a download registered a moment ago (start time still 0) for a stuck one and
            // moves it aside (acregistry.cc `TFileItemRegistry::Create`, docs/sources.md): 7 of 180
            // answers in lab/acng-race were 503 or never came. apt's http method then waited forever
            // (no Acquire timeout ends it). So no pipelining, and every network phase gets a
            // watchdog: `update` 120 s, the `install --download-only` that fetches the packages
            // first 300 s. A hung or failed fetch is retried after 10-29 s, a random delay
            // (Ansible's apt module backs off with jitter too), so hosts that failed together
            // do not ask again together; apt resumes partial downloads. dpkg then installs
            // from the local archive, so the watchdog never kills apt while dpkg runs.
            "export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a\n__rl_apt() { n=0; t=; [ \"$1\" != update ] || t=120; [ \"$2\" != --download-only ] || t=300; until ${t:+timeout -k 10 $t} apt-get -q -y -o DPkg::Lock::Timeout=600 -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30 -o Acquire::http::Pipeline-Depth=0 -o Acquire::Retries=3 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \"$@\"; do rc=$?; n=$((n+1)); [ $n -lt 3 ] || return 1; if [ $rc = 124 ]; then rc=\"timed out after $t s\"; else rc=\"exit code $rc\"; fi; d=$((10 + $(od -An -N1 -tu1 /dev/urandom 2>/dev/null || echo 0) % 20)); echo \"apt-get $1 failed ($rc), retrying ($n) in $d s\" >&2; sleep $d; done; }\n__rl_get() { __rl_apt install --download-only \"$@\" && __rl_apt install \"$@\"; }\n",
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
                State::Present => s.push_str(&format!("__rl_get{rec} {pkgs} || {{ __rl_apt update && __rl_get{rec} {pkgs}; }}\n")),
                State::Latest => s.push_str(&format!("__rl_get --only-upgrade{rec} {pkgs} 2>/dev/null; __rl_get{rec} {pkgs}\n")),
                State::Absent => s.push_str(&format!("__rl_apt remove {pkgs}\n")),
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secrets;
    use crate::step::with_plain_resolve;

    fn apt(state: &str) -> Apt {
        let a = AptArgs {
            name: Names::Many(vec!["coturn".into(), "curl".into()]),
            state: Some(state.into()),
            update_cache: None,
            cache_valid_time: None,
            recommends: None,
        };
        with_plain_resolve(|r| Apt::new(a, r)).unwrap()
    }

    fn eval(a: &Apt, lines: &[&str]) -> Verdict {
        let s = Secrets::default();
        a.evaluate(
            &a.read(&CheckOutput::of(lines)),
            &Context {
                secrets: &s,
                host: "h",
            },
        )
    }

    #[test]
    fn fixtures() {
        assert_eq!(
            eval(
                &apt("present"),
                &["package coturn ii  4.6.1-1", "package curl ii  7.88"]
            ),
            Verdict::Unchanged
        );
        assert_eq!(
            eval(
                &apt("present"),
                &["package coturn un  ", "package curl ii  7.88"]
            ),
            Verdict::change("install coturn")
        );
        assert_eq!(
            eval(&apt("present"), &[]),
            Verdict::change("install coturn curl")
        );
        assert_eq!(
            eval(&apt("absent"), &["package coturn rc  4.6.1-1"]),
            Verdict::Unchanged
        );
        assert_eq!(
            eval(
                &apt("latest"),
                &[
                    "package coturn ii  1",
                    "package curl ii  2",
                    "candidate coturn 1",
                    "candidate curl 3"
                ]
            ),
            Verdict::change("upgrade curl 2 -> 3")
        );
        assert!(
            apt("present")
                .apply()
                .contains("__rl_get coturn curl")
        );
        let bad = AptArgs {
            name: Names::One("x;rm".into()),
            state: None,
            update_cache: None,
            cache_valid_time: None,
            recommends: None,
        };
        assert!(with_plain_resolve(|r| Apt::new(bad, r)).is_err());
    }
}
