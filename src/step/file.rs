//! `file`: a file's whole content (from a template or inline), owner, group and mode. The
//! check sends back only a hash unless the content differs; apply writes a temporary file
//! beside the target, sets owner and mode, and renames it over the target.

use super::args::{Flag, Num, Ownership, absolute, account, flag_or, mode, present};
use super::diff::diff_text;
use super::error::{ArgError, StepError, Field};
use super::facts::{CheckOutput, FileType, Gather, Gathered, PathStat, STAT_FORMAT};
use super::kind::{Context, Kind, Resolve, Verdict};
use crate::script::{quote, sha256_hex};
use serde::Deserialize;

/// Files larger than this (bytes) are compared by hash only; no diff is shown.
pub const DIFF_LIMIT: u64 = 256 * 1024;

/// The arguments of a `file` step.
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

/// A file step for one host.
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

/// What a file's check found at its path (following a symbolic link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFacts {
    /// Nothing there (or a link to nothing).
    Absent,
    /// A directory, or a link to one.
    Directory,
    /// Something else: its own stat (a link's, for a link), and when content is wanted the
    /// hash of what it holds and, when that hash is not the wanted one, the content itself
    /// (None past [`DIFF_LIMIT`]).
    Present {
        stat: PathStat,
        hash: Option<String>,
        content: Option<Vec<u8>>,
    },
}

/// Paths the gathered facts can carry: `sha256sum` escapes names with a backslash or a
/// newline, and a newline would split `stat`'s output line.
pub(super) fn gatherable(path: &str) -> bool {
    !path.contains(['\\', '\n'])
}

impl File {
    fn ownership(&self) -> Ownership {
        Ownership {
            owner: self.owner.clone(),
            group: self.group.clone(),
            mode: self.mode.clone(),
        }
    }

    /// The sha256 of the wanted content (None: the file must be absent).
    fn want(&self) -> Option<String> {
        self.content.as_deref().map(|c| sha256_hex(c.as_bytes()))
    }

    fn content(a: &FileArgs, r: &Resolve, present: bool) -> Result<Option<String>, StepError> {
        Ok(match (present, &a.content, &a.template) {
            (false, None, None) => None,
            (false, _, _) => return Err(ArgError::ContentOfAbsent.into()),
            (true, Some(c), None) => Some(c.clone()),
            (true, None, Some(t)) => {
                if !r.templates.exists(t) {
                    return Err(ArgError::TemplateNotFound {
                        name: t.clone(),
                        dir: r.templates.dir().to_path_buf(),
                        similar: crate::error::did_you_mean(t, r.templates.names())
                            .map(String::from),
                    }
                    .into());
                }
                Some(
                    r.templates
                        .render_file(t, r.ctx)
                        .map_err(StepError::Template)?,
                )
            }
            (true, Some(_), Some(_)) => return Err(ArgError::ContentAndTemplate.into()),
            (true, None, None) => return Err(ArgError::NoContent.into()),
        })
    }

    /// The diff of a content change (None: the content is the wanted one).
    fn diff(&self, facts: &FileFacts, want: &str, same: bool, cx: &Context) -> Option<String> {
        if same {
            return None;
        }
        if self.sensitive {
            return Some("(sensitive content changed; diff not shown)\n".to_string());
        }
        let old = match facts {
            FileFacts::Present {
                content: Some(c), ..
            } => Some(String::from_utf8(c.clone()).ok()),
            FileFacts::Present { .. } => None,
            _ => Some(Some(String::new())),
        };
        Some(match old {
            Some(Some(old)) => diff_text(
                &old,
                want,
                &format!("{}:{}", cx.host, self.path),
                cx.secrets,
            ),
            Some(None) => "(binary content differs)\n".to_string(),
            None => "(file too large to diff)\n".to_string(),
        })
    }
}

impl Kind for File {
    const NAME: &'static str = "file";
    const MAY_BLOCK: bool = false;
    const NUL_OK: &'static [&'static str] = &["content"];
    type Args = FileArgs;
    type Facts = FileFacts;

    fn new(a: FileArgs, r: &Resolve) -> Result<File, StepError> {
        let path = absolute("path", a.path.clone())?;
        let present = present(a.state.as_deref())?;
        let content = File::content(&a, r, present)?;
        Ok(File {
            mode: mode(&a.mode)?,
            sensitive: flag_or(&a.sensitive, false).field("sensitive")?,
            path,
            content,
            owner: account("owner", a.owner)?,
            group: account("group", a.group)?,
        })
    }

    /// `directory`, `absent`, or `stat` (of the path itself, not following a link), then,
    /// when content is wanted, `hash` and, if that differs and the file is small, `content`.
    fn check(&self) -> String {
        let mut s = format!(
            "p={}\nif [ -d \"$p\" ]; then echo directory; elif [ -e \"$p\" ]; then\n  s=$(stat -c '{STAT_FORMAT}' -- \"$p\"); echo \"stat $s\"\n",
            quote(&self.path)
        );
        if let Some(want) = self.want() {
            s.push_str(&format!(
                "  h=$(sha256sum < \"$p\"); h=${{h%% *}}; echo \"hash $h\"\n  if [ \"$h\" != {want} ] && [ \"${{s##*|}}\" -le {DIFF_LIMIT} ]; then printf 'content '; base64 -w0 < \"$p\"; echo; fi\n"
            ));
        }
        s.push_str("else echo absent; fi\n");
        s
    }

    fn read(&self, out: &CheckOutput) -> FileFacts {
        if out.has("directory") {
            return FileFacts::Directory;
        }
        match out.first("stat").and_then(PathStat::parse) {
            None => FileFacts::Absent,
            Some(stat) => FileFacts::Present {
                stat,
                hash: out
                    .first("hash")
                    .filter(|h| !h.is_empty())
                    .map(String::from),
                content: out.first("content").and_then(crate::script::unbase64),
            },
        }
    }

    fn gather(&self) -> Option<Gather<'_>> {
        gatherable(&self.path).then(|| Gather::File {
            path: &self.path,
            want: self.want(),
        })
    }

    /// A symbolic link is not gathered: its own check says what it points to.
    fn gathered(&self, g: &Gathered) -> Option<FileFacts> {
        let Some(stat) = g.stat(&self.path) else {
            return Some(FileFacts::Absent);
        };
        match stat.file_type {
            FileType::Directory => Some(FileFacts::Directory),
            FileType::Symlink => None,
            FileType::File => {
                let want = self.want();
                let hash = want.as_ref().and_then(|_| g.hash(&self.path));
                let content = match (&want, hash) {
                    (Some(w), Some(h)) if w != h => g.content(&self.path).map(<[u8]>::to_vec),
                    _ => None,
                };
                Some(FileFacts::Present {
                    stat: stat.clone(),
                    hash: hash.map(String::from),
                    content,
                })
            }
        }
    }

    fn evaluate(&self, facts: &FileFacts, cx: &Context) -> Verdict {
        let (stat, hash) = match facts {
            FileFacts::Directory => {
                return Verdict::Fail(format!("{} is a directory", self.path));
            }
            FileFacts::Absent => (None, None),
            FileFacts::Present { stat, hash, .. } => (Some(stat), hash.as_deref()),
        };
        let exists = stat.is_some();
        let Some(want) = &self.content else {
            return if exists {
                Verdict::change("remove")
            } else {
                Verdict::Unchanged
            };
        };
        let mut changes = self.ownership().changes(stat);
        let link = stat.is_some_and(|s| s.file_type == FileType::Symlink);
        let same = hash == Some(sha256_hex(want.as_bytes()).as_str()) && !link;
        if exists && same && changes.is_empty() {
            return Verdict::Unchanged;
        }
        if !exists {
            changes.insert(0, "create".into());
        } else if !same {
            changes.insert(0, "content".into());
        }
        Verdict::Change {
            summary: changes.join(", "),
            diff: self.diff(facts, want, same, cx),
        }
    }

    fn apply(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secrets;
    use crate::step::with_plain_resolve;

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

    fn present(mode: &str, content: &str) -> FileFacts {
        FileFacts::Present {
            stat: PathStat::parse(&format!("regular file|root|root|{mode}|2")).unwrap(),
            hash: Some(sha256_hex(content.as_bytes())),
            content: None,
        }
    }

    fn eval(f: &File, facts: &FileFacts) -> Verdict {
        let s = Secrets::default();
        f.evaluate(
            facts,
            &Context {
                secrets: &s,
                host: "h1",
            },
        )
    }

    #[test]
    fn unchanged_when_hash_and_metadata_match() {
        assert_eq!(
            eval(&file("a\n", Some(644)), &present("644", "a\n")),
            Verdict::Unchanged
        );
    }

    #[test]
    fn missing_file_is_created_with_full_diff() {
        let v = eval(&file("a\n", None), &FileFacts::Absent);
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
        assert_eq!(
            eval(&file("a\n", Some(640)), &present("644", "a\n")),
            Verdict::Change {
                summary: "mode 0644 -> 0640".into(),
                diff: None
            }
        );
    }

    #[test]
    fn check_output_is_read_into_facts() {
        let f = file("a\n", None);
        let h = sha256_hex(b"a\n");
        let out = CheckOutput::of(&["stat regular file|root|root|644|2", &format!("hash {h}")]);
        assert_eq!(f.read(&out), present("644", "a\n"));
        assert_eq!(f.read(&CheckOutput::of(&["absent"])), FileFacts::Absent);
        assert_eq!(
            f.read(&CheckOutput::of(&["directory"])),
            FileFacts::Directory
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
