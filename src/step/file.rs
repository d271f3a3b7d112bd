//! `file`: a file's whole content (from a template or inline), owner, group and mode. The
//! check sends back only a hash unless the content differs; apply writes a temporary file
//! beside the target, sets owner and mode, and renames it over the target.

use super::{Flag, Num, Probe, Resolve, StepError, Verdict, meta_changes, mode};
use crate::script::{quote, sha256_hex};
use crate::secret::{REDACTED, Secrets};
use serde::Deserialize;

/// Files larger than this are compared by hash only; no diff is shown.
pub const DIFF_LIMIT: u64 = 256 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileArgs {
    pub path: String,
    /// Inline content (templated like every value).
    pub content: Option<String>,
    /// A template under `templates/`.
    pub template: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<Num>,
    /// `present` (default) or `absent`.
    pub state: Option<String>,
    /// Treat the content as secret: no diff, only "content changed".
    pub sensitive: Option<Flag>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct File {
    pub path: String,
    /// None when the file must be absent.
    pub content: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<String>,
    pub sensitive: bool,
}

impl File {
    pub fn new(a: FileArgs, r: &Resolve) -> Result<File, StepError> {
        if !a.path.starts_with('/') {
            return Err(format!("path `{}` must be absolute", a.path).into());
        }
        let absent = match a.state.as_deref() {
            None | Some("present") => false,
            Some("absent") => true,
            Some(s) => return Err(format!("state `{s}` must be present or absent").into()),
        };
        let content = match (absent, a.content, a.template) {
            (true, None, None) => None,
            (true, _, _) => {
                return Err(StepError::Invalid(
                    "a file with state absent takes no content or template".into(),
                ));
            }
            (false, Some(c), None) => Some(c),
            (false, None, Some(t)) => {
                if !r.templates.exists(&t) {
                    let hint = crate::error::did_you_mean(&t, r.templates.names())
                        .map(|s| format!(" (did you mean `{s}`?)"))
                        .unwrap_or_default();
                    return Err(format!(
                        "template `{t}` not found in {}{hint}",
                        r.templates.dir().display()
                    )
                    .into());
                }
                Some(
                    r.templates
                        .render_file(&t, r.ctx)
                        .map_err(StepError::Template)?,
                )
            }
            (false, Some(_), Some(_)) => {
                return Err(StepError::Invalid(
                    "give either content or template, not both".into(),
                ));
            }
            (false, None, None) => {
                return Err(StepError::Invalid(
                    "a file needs content or template (or state: absent)".into(),
                ));
            }
        };
        Ok(File {
            path: a.path,
            content,
            owner: a.owner,
            group: a.group,
            mode: mode(&a.mode)?,
            sensitive: a.sensitive.map(|f| f.get()).transpose()?.unwrap_or(false),
        })
    }

    pub fn check(&self) -> String {
        let p = quote(&self.path);
        let want = self
            .content
            .as_deref()
            .map(|c| sha256_hex(c.as_bytes()))
            .unwrap_or_default();
        format!(
            "p={p}\nif [ -L \"$p\" ]; then echo L; fi\nif [ -d \"$p\" ]; then echo D; elif [ -e \"$p\" ]; then\n  stat -c 'S %U %G %a %s' \"$p\"\n  h=$(sha256sum < \"$p\"); h=${{h%% *}}; echo \"H $h\"\n  if [ \"$h\" != {want} ] && [ \"$(stat -c %s \"$p\")\" -le {DIFF_LIMIT} ]; then printf 'B '; base64 -w0 < \"$p\"; echo; fi\nelse echo A; fi\n",
            want = if want.is_empty() { "''".into() } else { want }
        )
    }

    pub fn evaluate(&self, probe: &Probe, secrets: &Secrets, host: &str) -> Verdict {
        if probe.first("D").is_some() {
            return Verdict::Fail(format!("{} is a directory", self.path));
        }
        let exists = probe.first("A").is_none();
        let Some(want) = &self.content else {
            return if exists {
                Verdict::change("remove")
            } else {
                Verdict::Unchanged
            };
        };
        let stat: Option<Vec<&str>> = probe.first("S").map(|s| s.split(' ').collect());
        let current = stat
            .as_ref()
            .filter(|s| s.len() >= 3)
            .map(|s| (s[0], s[1], s[2]));
        let mut changes = meta_changes(current, &self.owner, &self.group, &self.mode);
        let same = probe.first("H") == Some(sha256_hex(want.as_bytes()).as_str())
            && probe.first("L").is_none();
        if exists && same && changes.is_empty() {
            return Verdict::Unchanged;
        }
        if !exists {
            changes.insert(0, "create".into());
        } else if !same {
            changes.insert(0, "content".into());
        }
        let diff = if same {
            None
        } else if self.sensitive {
            Some("(sensitive content changed; diff not shown)\n".to_string())
        } else {
            let old = match probe.first("B") {
                Some(b) => crate::script::unbase64(b).map(|v| String::from_utf8(v).ok()),
                None if !exists => Some(Some(String::new())),
                None => None,
            };
            Some(match old {
                Some(Some(old)) => diff_text(&old, want, &format!("{host}:{}", self.path), secrets),
                Some(None) => "(binary content differs)\n".to_string(),
                None => "(file too large to diff)\n".to_string(),
            })
        };
        Verdict::Change {
            summary: changes.join(", "),
            diff,
        }
    }

    pub fn apply(&self) -> String {
        let p = quote(&self.path);
        match &self.content {
            None => format!("rm -f -- {p}\n"),
            Some(c) => {
                let o = quote(self.owner.as_deref().unwrap_or(""));
                let g = quote(self.group.as_deref().unwrap_or(""));
                let m = quote(self.mode.as_deref().unwrap_or(""));
                format!(
                    "__rl_write {p} {o} {g} {m} <<'__RL_B64__'\n{}__RL_B64__\n",
                    crate::script::base64(c.as_bytes())
                )
            }
        }
    }
}

/// A unified diff of `old` to `new`. Secrets are masked: known values in both versions, and
/// in removed lines whatever follows the prefix at which a new line carries a secret (so an
/// old, unknown `static-auth-secret=...` does not leak either).
pub fn diff_text(old: &str, new: &str, label: &str, secrets: &Secrets) -> String {
    let prefixes: Vec<&str> = new
        .lines()
        .filter_map(|l| secrets.first_secret_at(l).map(|i| &l[..i]))
        .filter(|p| !p.trim().is_empty())
        .collect();
    let mask_old = |line: &str| -> String {
        if secrets.contains_secret(line) {
            return secrets.redact(line);
        }
        match prefixes.iter().find(|p| line.starts_with(**p)) {
            Some(p) => format!("{p}{REDACTED} (old value)"),
            None => line.to_string(),
        }
    };
    let old_masked: String = old.lines().map(|l| mask_old(l) + "\n").collect();
    let new_masked = secrets.redact(new);
    let d = similar::TextDiff::from_lines(&old_masked, &new_masked);
    d.unified_diff()
        .context_radius(3)
        .header(&format!("{label} (current)"), &format!("{label} (wanted)"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::{Probe, with_plain_resolve};

    fn file(content: &str, mode: Option<u64>) -> File {
        let args = FileArgs {
            path: "/etc/x.conf".into(),
            content: Some(content.into()),
            template: None,
            owner: Some("root".into()),
            group: None,
            mode: mode.map(Num::Int),
            state: None,
            sensitive: None,
        };
        with_plain_resolve(|r| File::new(args, r)).unwrap()
    }

    fn probe(lines: &[&str]) -> Probe {
        Probe {
            lines: lines.iter().map(|s| s.to_string()).collect(),
            rc: 0,
        }
    }

    #[test]
    fn unchanged_when_hash_and_metadata_match() {
        let f = file("a\n", Some(644));
        let h = format!("H {}", sha256_hex(b"a\n"));
        assert_eq!(
            f.evaluate(
                &probe(&["S root root 644 2", &h]),
                &Secrets::default(),
                "h1"
            ),
            Verdict::Unchanged
        );
    }

    #[test]
    fn missing_file_is_created_with_full_diff() {
        let f = file("a\n", None);
        let v = f.evaluate(&probe(&["A"]), &Secrets::default(), "h1");
        let Verdict::Change { summary, diff } = v else {
            panic!("{v:?}")
        };
        assert_eq!(summary, "create");
        assert_eq!(
            diff.unwrap(),
            "--- h1:/etc/x.conf (current)\n+++ h1:/etc/x.conf (wanted)\n@@ -0,0 +1 @@\n+a\n"
        );
    }

    #[test]
    fn mode_only_change_has_no_diff() {
        let f = file("a\n", Some(640));
        let h = format!("H {}", sha256_hex(b"a\n"));
        assert_eq!(
            f.evaluate(&probe(&["S root root 644 2", &h]), &Secrets::default(), "h"),
            Verdict::Change {
                summary: "mode 0644 -> 0640".into(),
                diff: None
            }
        );
    }

    #[test]
    fn old_secret_values_are_masked_in_diffs() {
        let secrets = Secrets::new(vec!["NEWSECRET".into()]);
        let d = diff_text(
            "static-auth-secret=OLDVALUE\nrealm=x\n",
            "static-auth-secret=NEWSECRET\nrealm=x\n",
            "t:/etc/turnserver.conf",
            &secrets,
        );
        assert!(!d.contains("OLDVALUE") && !d.contains("NEWSECRET"), "{d}");
        assert!(
            d.contains(
                "-static-auth-secret=<redacted> (old value)\n+static-auth-secret=<redacted>\n"
            ),
            "{d}"
        );
    }

    #[test]
    fn apply_writes_atomically_through_the_library() {
        let f = file("a\n", Some(600));
        assert_eq!(
            f.apply(),
            "__rl_write /etc/x.conf root '' 0600 <<'__RL_B64__'\nYQo=\n__RL_B64__\n"
        );
    }
}
