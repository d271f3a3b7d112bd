//! `property`: one `key=value` line in a Java-properties or shell-variable style file such as
//! `/etc/bigbluebutton/bbb-web.properties` or `/etc/cron.daily/bigbluebutton`. Every line
//! that sets the key gets the value (a later line would win in Java properties); a missing
//! key is appended. Values travel in environment variables and heredocs, never in argv.

use super::{Flag, Probe, Verdict};
use crate::script::{quote, sha256_hex};
use crate::secret::{REDACTED, Secrets};
use serde::Deserialize;

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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    pub path: String,
    pub key: String,
    /// None: the key must be absent.
    pub value: Option<String>,
    pub separator: String,
    pub sensitive: bool,
}

impl Property {
    pub fn new(a: PropertyArgs) -> Result<Property, String> {
        if !a.path.starts_with('/') {
            return Err(format!("path `{}` must be absolute", a.path));
        }
        if a.key.is_empty() || a.key.contains(['=', '\n']) {
            return Err(format!("key `{}` must be non-empty without `=`", a.key));
        }
        let value = match (a.state.as_deref(), a.value) {
            (None | Some("present"), Some(v)) => Some(match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Bool(_) | serde_json::Value::Number(_) => v.to_string(),
                other => {
                    return Err(format!(
                        "value must be a string, number or boolean, got {other}"
                    ));
                }
            }),
            (None | Some("present"), None) => {
                return Err("a property needs a value (or state: absent)".into());
            }
            (Some("absent"), _) => None,
            (Some(s), _) => return Err(format!("state `{s}` must be present or absent")),
        };
        if value.as_deref().is_some_and(|v| v.contains('\n')) {
            return Err("a property value cannot contain a newline".into());
        }
        Ok(Property {
            path: a.path,
            key: a.key,
            value,
            separator: a.separator.unwrap_or_else(|| "=".into()),
            sensitive: a.sensitive.map(|f| f.get()).transpose()?.unwrap_or(false),
        })
    }

    /// Prints `A` when the file is missing, else `V <value>` (or `H <sha256>` when sensitive)
    /// for every line that sets the key.
    pub fn check(&self) -> String {
        // One awk process prints the `V value` lines; only sensitive values are hashed.
        let hash = if self.sensitive {
            " | while IFS= read -r v; do printf '%s' \"${v#V }\" | sha256sum | sed 's/ .*//; s/^/H /'; done"
        } else {
            ""
        };
        format!(
            "p={p}\nif [ ! -e \"$p\" ]; then echo A; else\nK={k} awk '{AWK_FIND}' \"$p\"{hash}\nfi\n",
            p = quote(&self.path),
            k = quote(&self.key),
        )
    }

    pub fn evaluate(&self, probe: &Probe, secrets: &Secrets) -> Verdict {
        let sensitive = self.sensitive
            || self
                .value
                .as_deref()
                .is_some_and(|v| secrets.contains_secret(v));
        let missing_file = probe.first("A").is_some();
        let current: Vec<&str> = if self.sensitive {
            probe.tagged("H").collect()
        } else {
            probe.tagged("V").collect()
        };
        let show = |v: &str| {
            if sensitive {
                REDACTED.to_string()
            } else {
                secrets.redact(v)
            }
        };
        match &self.value {
            None if current.is_empty() => Verdict::Unchanged,
            None => Verdict::Change {
                summary: format!("remove {}", self.key),
                diff: Some(format!(
                    "-{}{}{}\n",
                    self.key,
                    self.separator,
                    show(current[0])
                )),
            },
            Some(want) => {
                let want_cmp = if self.sensitive {
                    sha256_hex(want.as_bytes())
                } else {
                    want.clone()
                };
                if !current.is_empty() && current.iter().all(|c| *c == want_cmp) {
                    return Verdict::Unchanged;
                }
                let mut diff = String::new();
                if let Some(c) = current.first() {
                    diff.push_str(&format!("-{}{}{}\n", self.key, self.separator, show(c)));
                }
                diff.push_str(&format!("+{}{}{}\n", self.key, self.separator, show(want)));
                let summary = if missing_file {
                    format!("create file, set {}", self.key)
                } else {
                    format!("set {}", self.key)
                };
                Verdict::Change {
                    summary,
                    diff: Some(diff),
                }
            }
        }
    }

    pub fn apply(&self) -> String {
        let p = quote(&self.path);
        let k = quote(&self.key);
        let sep = quote(&self.separator);
        match &self.value {
            None => format!(
                "[ -e {p} ] || exit 0\nt=$(__rl_tmp {p})\nK={k} awk '{AWK_REMOVE}' {p} > \"$t\" || {{ rm -f \"$t\"; exit 1; }}\n__rl_commit \"$t\" {p} '' '' ''\n"
            ),
            Some(v) => format!(
                "IFS= read -r V <<'__RL_V__' || true\n{v}\n__RL_V__\nexport V\n[ -e {p} ] || : > {p}\nt=$(__rl_tmp {p})\nK={k} S={sep} awk '{AWK_SET}' {p} > \"$t\" || {{ rm -f \"$t\"; exit 1; }}\n__rl_commit \"$t\" {p} '' '' ''\n",
            ),
        }
    }
}

/// Prints the value of every line that sets ENVIRON["K"] (ignoring comments, whitespace).
const AWK_FIND: &str = r#"BEGIN{k=ENVIRON["K"]} /^[ \t]*[#!]/{next} { i=index($0,"="); if(i==0) next; key=substr($0,1,i-1); gsub(/^[ \t]+|[ \t]+$/,"",key); if(key==k){ v=substr($0,i+1); gsub(/^[ \t]+|[ \t]+$/,"",v); print "V " v } }"#;
/// Replaces every line setting K with K S V; appends it when absent.
/// [`AWK_FIND`] for several keys of one file at once (the batched check): `KS` holds the keys,
/// one per line; prints `N value` for each line whose key is the N-th (from 1).
pub const AWK_FIND_MANY: &str = r#"BEGIN{n=split(ENVIRON["KS"],ks,"\n"); for(j=1;j<=n;j++) w[ks[j]]=j} /^[ \t]*[#!]/{next} { i=index($0,"="); if(i==0) next; key=substr($0,1,i-1); gsub(/^[ \t]+|[ \t]+$/,"",key); if(key in w){ v=substr($0,i+1); gsub(/^[ \t]+|[ \t]+$/,"",v); print w[key] " " v } }"#;
const AWK_SET: &str = r#"BEGIN{k=ENVIRON["K"]; s=ENVIRON["S"]; v=ENVIRON["V"]} /^[ \t]*[#!]/{print; next} { i=index($0,"="); if(i>0){ key=substr($0,1,i-1); gsub(/^[ \t]+|[ \t]+$/,"",key); if(key==k){ print k s v; done=1; next } } print } END{ if(!done) print k s v }"#;
/// Drops every line setting K.
const AWK_REMOVE: &str = r#"BEGIN{k=ENVIRON["K"]} /^[ \t]*[#!]/{print; next} { i=index($0,"="); if(i>0){ key=substr($0,1,i-1); gsub(/^[ \t]+|[ \t]+$/,"",key); if(key==k) next } print }"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(v: &str) -> Property {
        Property::new(PropertyArgs {
            path: "/etc/b.properties".into(),
            key: "disableRecordingDefault".into(),
            value: Some(serde_json::json!(v)),
            state: None,
            separator: None,
            sensitive: None,
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
        let s = Secrets::default();
        assert_eq!(
            prop("true").evaluate(&p(&["V true"]), &s),
            Verdict::Unchanged
        );
        assert_eq!(
            prop("true").evaluate(&p(&["V false"]), &s),
            Verdict::Change {
                summary: "set disableRecordingDefault".into(),
                diff: Some(
                    "-disableRecordingDefault=false\n+disableRecordingDefault=true\n".into()
                )
            }
        );
        assert_eq!(
            prop("true").evaluate(&p(&[]), &s),
            Verdict::Change {
                summary: "set disableRecordingDefault".into(),
                diff: Some("+disableRecordingDefault=true\n".into())
            }
        );
        // Two lines set the key and one is wrong: change.
        assert!(matches!(
            prop("true").evaluate(&p(&["V true", "V false"]), &s),
            Verdict::Change { .. }
        ));
    }

    #[test]
    fn secret_values_never_shown_old_or_new() {
        let s = Secrets::new(vec!["s3cr3t-salt".into()]);
        let v = Property::new(PropertyArgs {
            path: "/etc/b".into(),
            key: "securitySalt".into(),
            value: Some(serde_json::json!("s3cr3t-salt")),
            state: None,
            separator: None,
            sensitive: None,
        })
        .unwrap();
        let Verdict::Change { diff, .. } = v.evaluate(&p(&["V oldrandomsalt"]), &s) else {
            panic!()
        };
        assert_eq!(
            diff.unwrap(),
            "-securitySalt=<redacted>\n+securitySalt=<redacted>\n"
        );
        assert!(!v.apply().contains("awk") || v.apply().contains("ENVIRON"));
    }
}
