//! `property`: one `key=value` line in a Java-properties or shell-variable style file such as
//! `/etc/bigbluebutton/bbb-web.properties` or `/etc/cron.daily/bigbluebutton`. Every line
//! that sets the key gets the value (a later line would win in Java properties); a missing
//! key is appended. Values travel in environment variables and heredocs, never in argv.
//!
//! Like Ansible's `lineinfile`, the step may also set the file's `owner`, `group` and
//! `mode`: a file that holds a secret (akka-apps' `bbb-apps-akka.conf`, which its package
//! creates 0644) is closed by the step that writes the secret into it. The check then also
//! sends the file's stat, and a change of owner, group or mode alone is a change of its own
//! ("mode 0644 -> 0640"), applied by rewriting the file with the wanted metadata.

use super::args::{Flag, Num, Ownership, absolute, account, flag_or, mode, present};
use super::error::{ArgError, StepError, Field};
use super::facts::{CheckOutput, Gather, Gathered, PathStat, STAT_FORMAT};
use super::file::gatherable;
use super::kind::{Context, Kind, Resolve, Verdict};
use crate::script::{env_line, quote, sha256_hex};
use crate::secret::REDACTED;
use serde::Deserialize;

/// The arguments of a `property` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PropertyArgs {
    pub path: String,
    pub key: String,
    /// Scalars are taken as their text (`true`, `14`).
    pub value: Option<serde_json::Value>,
    /// `present` (default) or `absent`.
    pub state: Option<String>,
    /// The separator written between key and value; default `=`.
    pub separator: Option<String>,
    /// Never show old or new values (auto when the value contains a secret).
    pub sensitive: Option<Flag>,
    /// The file's owner (a user name or numeric id); left as found when unset.
    pub owner: Option<String>,
    /// The file's group (a group name or numeric id); left as found when unset.
    pub group: Option<String>,
    /// The file's mode, octal (`0640`, `"0640"` or `640`); left as found when unset (a file
    /// the step creates: as the login shell's umask makes it).
    pub mode: Option<Num>,
}

/// A property step for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub path: String,
    pub key: String,
    /// None: the key must be absent.
    pub value: Option<String>,
    pub separator: String,
    pub sensitive: bool,
    /// Wanted owner, group and mode of the file (None each: left as found).
    pub ownership: Ownership,
}

/// A value the check found for the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyValue {
    Plain(String),
    /// The sha256 of the value (sensitive properties never send the value itself).
    Hashed(String),
}

/// What a property's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyFacts {
    pub file_exists: bool,
    /// The file's stat (not following a link); checked only when the step sets an owner,
    /// group or mode, else None.
    pub stat: Option<PathStat>,
    /// One per line that sets the key, in file order.
    pub values: Vec<PropertyValue>,
}

fn value_text(v: serde_json::Value) -> Result<String, ArgError> {
    match v {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Bool(_) | serde_json::Value::Number(_) => Ok(v.to_string()),
        other => Err(ArgError::PropertyValueType(other)),
    }
}

impl Property {
    fn line(&self, value: &str) -> String {
        format!("{}{}{value}\n", self.key, self.separator)
    }

    /// Whether the step sets an owner, group or mode (and so needs the file's stat).
    fn wants_ownership(&self) -> bool {
        self.ownership != Ownership::default()
    }
}

impl Kind for Property {
    const NAME: &'static str = "property";
    const MAY_BLOCK: bool = false;
    type Args = PropertyArgs;
    type Facts = PropertyFacts;

    fn new(a: PropertyArgs, _: &Resolve) -> Result<Property, StepError> {
        let path = absolute("path", a.path)?;
        if a.key.is_empty() || a.key.contains(['=', '\n']) {
            return Err(ArgError::PropertyKey(a.key).into());
        }
        let value = match (present(a.state.as_deref())?, a.value) {
            (true, Some(v)) => Some(value_text(v)?),
            (true, None) => return Err(ArgError::PropertyNoValue.into()),
            (false, _) => None,
        };
        if value.as_deref().is_some_and(|v| v.contains('\n')) {
            return Err(ArgError::PropertyNewline.into());
        }
        let ownership = Ownership {
            owner: account("owner", a.owner)?,
            group: account("group", a.group)?,
            mode: mode(&a.mode)?,
        };
        Ok(Property {
            ownership,
            sensitive: flag_or(&a.sensitive, false).field("sensitive")?,
            path,
            key: a.key,
            value,
            separator: match a.separator {
                None => "=".into(),
                Some(s) if s.is_empty() || s.contains('\n') => {
                    return Err(ArgError::Separator.into());
                }
                Some(s) => s,
            },
        })
    }

    /// `absent` when the file is missing, else (when the step sets an owner, group or mode)
    /// `stat` of the file, and `value V` (or `hashed SHA256` when sensitive) for every line
    /// that sets the key.
    fn check(&self) -> String {
        // One awk process prints the `value` lines; only sensitive values are hashed.
        let hash = if self.sensitive {
            " | while IFS= read -r v; do printf '%s' \"${v#value }\" | sha256sum | sed 's/ .*//; s/^/hashed /'; done"
        } else {
            ""
        };
        let stat = if self.wants_ownership() {
            format!("s=$(stat -c '{STAT_FORMAT}' -- \"$p\"); echo \"stat $s\"\n")
        } else {
            String::new()
        };
        format!(
            "p={p}\nif [ ! -e \"$p\" ]; then echo absent; else\n{stat}K={k} awk '{AWK_FIND}' \"$p\"{hash}\nfi\n",
            p = quote(&self.path),
            k = quote(&self.key),
        )
    }

    fn read(&self, out: &CheckOutput) -> PropertyFacts {
        let plain = out.values("value").map(|v| PropertyValue::Plain(v.into()));
        let hashed = out
            .values("hashed")
            .map(|v| PropertyValue::Hashed(v.into()));
        PropertyFacts {
            file_exists: !out.has("absent"),
            stat: out.first("stat").and_then(PathStat::parse),
            values: plain.chain(hashed).collect(),
        }
    }

    fn gather(&self) -> Option<Gather<'_>> {
        (!self.sensitive && gatherable(&self.path)).then_some(Gather::Property {
            path: &self.path,
            key: &self.key,
            stat: self.wants_ownership(),
        })
    }

    fn gathered(&self, g: &Gathered) -> Option<PropertyFacts> {
        let lines = g.properties(&self.path)?;
        Some(PropertyFacts {
            file_exists: lines.is_some(),
            stat: if self.wants_ownership() && lines.is_some() {
                g.stat(&self.path).cloned()
            } else {
                None
            },
            values: lines
                .unwrap_or_default()
                .iter()
                .filter(|(k, _)| *k == self.key)
                .map(|(_, v)| PropertyValue::Plain(v.clone()))
                .collect(),
        })
    }

    fn evaluate(&self, facts: &PropertyFacts, cx: &Context) -> Verdict {
        let sensitive = self.sensitive
            || self
                .value
                .as_deref()
                .is_some_and(|v| cx.secrets.contains_secret(v));
        // A sensitive step compares hashes, another one values.
        let current: Vec<&str> = facts
            .values
            .iter()
            .filter_map(|v| match v {
                PropertyValue::Hashed(h) if self.sensitive => Some(h.as_str()),
                PropertyValue::Plain(p) if !self.sensitive => Some(p.as_str()),
                _ => None,
            })
            .collect();
        let show = |v: &str| {
            if sensitive {
                REDACTED.to_string()
            } else {
                cx.secrets.redact(v)
            }
        };
        // Owner, group and mode of an existing file; a file the step creates gets them whole.
        let metadata = self.ownership.changes(facts.stat.as_ref());
        let Some(want) = &self.value else {
            return match current.first() {
                None => Verdict::changes(&metadata),
                Some(c) => Verdict::Change {
                    summary: [format!("remove {}", self.key)]
                        .into_iter()
                        .chain(metadata)
                        .collect::<Vec<_>>()
                        .join(", "),
                    diff: Some(format!("-{}", self.line(&show(c)))),
                },
            };
        };
        let want_cmp = if self.sensitive {
            sha256_hex(want.as_bytes())
        } else {
            want.clone()
        };
        if !current.is_empty() && current.iter().all(|c| *c == want_cmp) {
            return Verdict::changes(&metadata);
        }
        let mut diff = String::new();
        if let Some(c) = current.first() {
            diff.push_str(&format!("-{}", self.line(&show(c))));
        }
        diff.push_str(&format!("+{}", self.line(&show(want))));
        let set = if facts.file_exists {
            format!("set {}", self.key)
        } else {
            format!("create file, set {}", self.key)
        };
        Verdict::Change {
            summary: [set]
                .into_iter()
                .chain(metadata)
                .collect::<Vec<_>>()
                .join(", "),
            diff: Some(diff),
        }
    }

    /// Rewrites the file through a temporary one beside it, which gets the wanted owner,
    /// group and mode (else the file's own) before it is renamed over the file.
    fn apply(&self) -> String {
        let p = quote(&self.path);
        let k = quote(&self.key);
        let sep = quote(&self.separator);
        let o = &self.ownership;
        let meta = [&o.owner, &o.group, &o.mode]
            .map(|x| quote(x.as_deref().unwrap_or("")))
            .join(" ");
        match &self.value {
            None => format!(
                "[ -e {p} ] || exit 0\nt=$(__rl_tmp {p})\nK={k} awk '{AWK_REMOVE}' {p} > \"$t\" || {{ rm -f \"$t\"; exit 1; }}\n__rl_commit \"$t\" {p} {meta}\n"
            ),
            Some(v) => format!(
                "{v}[ -e {p} ] || : > {p}\nt=$(__rl_tmp {p})\nK={k} S={sep} awk '{AWK_SET}' {p} > \"$t\" || {{ rm -f \"$t\"; exit 1; }}\n__rl_commit \"$t\" {p} {meta}\n",
                v = env_line("V", v)
            ),
        }
    }
}

/// Prints the value of every line that sets ENVIRON["K"] (ignoring comments, whitespace).
const AWK_FIND: &str = r#"BEGIN{k=ENVIRON["K"]} /^[ \t]*[#!]/{next} { i=index($0,"="); if(i==0) next; key=substr($0,1,i-1); gsub(/^[ \t]+|[ \t]+$/,"",key); if(key==k){ v=substr($0,i+1); gsub(/^[ \t]+|[ \t]+$/,"",v); print "value " v } }"#;
/// `AWK_FIND` for several keys of one file at once (the gathered check): `KS` holds the keys,
/// one per line; prints `N value` for each line whose key is the N-th (from 1).
pub const AWK_FIND_MANY: &str = r#"BEGIN{n=split(ENVIRON["KS"],ks,"\n"); for(j=1;j<=n;j++) w[ks[j]]=j} /^[ \t]*[#!]/{next} { i=index($0,"="); if(i==0) next; key=substr($0,1,i-1); gsub(/^[ \t]+|[ \t]+$/,"",key); if(key in w){ v=substr($0,i+1); gsub(/^[ \t]+|[ \t]+$/,"",v); print w[key] " " v } }"#;
/// Replaces every line setting K with K S V; appends it when absent.
const AWK_SET: &str = r#"BEGIN{k=ENVIRON["K"]; s=ENVIRON["S"]; v=ENVIRON["V"]} /^[ \t]*[#!]/{print; next} { i=index($0,"="); if(i>0){ key=substr($0,1,i-1); gsub(/^[ \t]+|[ \t]+$/,"",key); if(key==k){ print k s v; done=1; next } } print } END{ if(!done) print k s v }"#;
/// Drops every line setting K.
const AWK_REMOVE: &str = r#"BEGIN{k=ENVIRON["K"]} /^[ \t]*[#!]/{print; next} { i=index($0,"="); if(i>0){ key=substr($0,1,i-1); gsub(/^[ \t]+|[ \t]+$/,"",key); if(key==k) next } print }"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secrets;
    use crate::step::with_plain_resolve;

    fn prop(key: &str, v: &str) -> Property {
        let a = PropertyArgs {
            path: "/etc/b.properties".into(),
            key: key.into(),
            value: Some(serde_json::json!(v)),
            state: None,
            separator: None,
            sensitive: None,
            owner: None,
            group: None,
            mode: None,
        };
        with_plain_resolve(|r| Property::new(a, r)).unwrap()
    }

    fn eval(p: &Property, lines: &[&str], s: &Secrets) -> Verdict {
        p.evaluate(
            &p.read(&CheckOutput::of(lines)),
            &Context {
                secrets: s,
                host: "h",
            },
        )
    }

    #[test]
    fn fixtures() {
        let s = Secrets::default();
        let p = prop("disableRecordingDefault", "true");
        assert_eq!(eval(&p, &["value true"], &s), Verdict::Unchanged);
        assert_eq!(
            eval(&p, &["value false"], &s),
            Verdict::Change {
                summary: "set disableRecordingDefault".into(),
                diff: Some(
                    "-disableRecordingDefault=false\n+disableRecordingDefault=true\n".into()
                )
            }
        );
        assert_eq!(
            eval(&p, &[], &s),
            Verdict::Change {
                summary: "set disableRecordingDefault".into(),
                diff: Some("+disableRecordingDefault=true\n".into())
            }
        );
        // Two lines set the key and one is wrong: change.
        assert!(matches!(
            eval(&p, &["value true", "value false"], &s),
            Verdict::Change { .. }
        ));
    }

    fn owned(mode: &str) -> Property {
        let mut p = prop("sharedSecret", "\"s3cr3t\"");
        p.ownership = Ownership {
            owner: Some("root".into()),
            group: Some("bigbluebutton".into()),
            mode: Some(mode.into()),
        };
        p
    }

    #[test]
    fn owner_group_and_mode_alone_are_a_change_without_a_diff() {
        let s = Secrets::default();
        let p = owned("0640");
        let value = "value \"s3cr3t\"";
        assert_eq!(
            eval(&p, &["stat regular file|root|root|644|90", value], &s),
            Verdict::Change {
                summary: "group root -> bigbluebutton, mode 0644 -> 0640".into(),
                diff: None
            }
        );
        assert_eq!(
            eval(&p, &["stat regular file|root|bigbluebutton|640|90", value], &s),
            Verdict::Unchanged
        );
        // With the value: both, the value's first.
        let Verdict::Change { summary, diff } = eval(
            &p,
            &["stat regular file|root|root|644|90", "value changeme"],
            &s,
        ) else {
            panic!()
        };
        assert_eq!(
            summary,
            "set sharedSecret, group root -> bigbluebutton, mode 0644 -> 0640"
        );
        assert!(diff.is_some());
        // A file the step creates gets them whole: no stat to compare.
        assert_eq!(
            eval(&p, &["absent"], &s),
            Verdict::Change {
                summary: "create file, set sharedSecret".into(),
                diff: Some("+sharedSecret=\"s3cr3t\"\n".into())
            }
        );
    }

    /// On a real file with the local `sh`: apply leaves the value and the wanted mode (owner
    /// and group as they are: the test does not run as root), and a second check finds
    /// nothing to do.
    #[test]
    fn apply_sets_the_mode_and_a_second_run_is_a_no_op() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("rollout-prop-mode-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("bbb-apps-akka.conf");
        std::fs::write(&target, "services {\n  sharedSecret=\"changeme\"\n}\n").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut p = owned("0640");
        p.ownership.owner = None;
        p.ownership.group = None;
        p.path = target.display().to_string();
        let run = |script: String| {
            let out = std::process::Command::new("sh")
                .args(["-e", "-c", &script])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let s = Secrets::default();
        let check = |p: &Property| {
            let out = run(p.check());
            let lines: Vec<&str> = out.lines().collect();
            eval(p, &lines, &s)
        };
        assert!(matches!(check(&p), Verdict::Change { .. }));
        run(format!("{}{}", crate::step::LIB, p.apply()));
        let meta = std::fs::metadata(&target).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            // The key's line is written as `key=value` (its indentation is not kept).
            "services {\nsharedSecret=\"s3cr3t\"\n}\n"
        );
        assert_eq!(check(&p), Verdict::Unchanged);
        // Only the mode off: the change is the mode alone, and apply restores it.
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(check(&p), Verdict::change("mode 0644 -> 0640"));
        run(format!("{}{}", crate::step::LIB, p.apply()));
        assert_eq!(check(&p), Verdict::Unchanged);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn secret_values_never_shown_old_or_new() {
        let s = Secrets::new(vec!["s3cr3t-salt".into()]);
        let v = prop("securitySalt", "s3cr3t-salt");
        let Verdict::Change { diff, .. } = eval(&v, &["value oldrandomsalt"], &s) else {
            panic!()
        };
        assert_eq!(
            diff.unwrap(),
            "-securitySalt=<redacted>\n+securitySalt=<redacted>\n"
        );
    }

    /// The value never reaches a command line: the apply fragment runs on the local `sh` with
    /// every program it starts replaced by a wrapper that logs its arguments; the file ends
    /// up with the value, and no logged argument holds it.
    #[test]
    fn the_value_is_in_no_command_line() {
        let dir = std::env::temp_dir().join(format!("rollout-prop-argv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let log = dir.join("argv.log");
        let programs = [
            "awk", "mktemp", "mv", "chown", "chmod", "sync", "find", "cat", "rm",
        ];
        for prog in programs {
            let real = std::process::Command::new("sh")
                .args(["-c", &format!("command -v {prog}")])
                .output()
                .unwrap();
            let real = String::from_utf8(real.stdout).unwrap();
            let wrapper = bin.join(prog);
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\nprintf '%s\\n' \"{prog} $*\" >> {}\nexec {} \"$@\"\n",
                    log.display(),
                    real.trim()
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let target = dir.join("bbb-web.properties");
        std::fs::write(&target, "securitySalt=old\nother=1\n").unwrap();
        let value = "s3cr3t-salt-in-no-argv";
        let mut p = prop("securitySalt", value);
        p.path = target.display().to_string();
        p.ownership.mode = Some("0640".into());
        let script = format!("{}{}", crate::step::LIB, p.apply());
        let out = std::process::Command::new("sh")
            .args(["-e", "-c", &script])
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            format!("securitySalt={value}\nother=1\n")
        );
        let argv = std::fs::read_to_string(&log).unwrap();
        assert!(argv.contains("awk "), "the wrappers saw awk run:\n{argv}");
        assert!(argv.contains("mv "), "the wrappers saw mv run:\n{argv}");
        assert!(
            argv.contains("chmod 0640 "),
            "the wrappers saw the mode set:\n{argv}"
        );
        assert!(!argv.contains(value), "the value was on a command line:\n{argv}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
