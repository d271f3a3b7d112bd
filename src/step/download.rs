//! `download`: a file fetched by the host from a URL and verified against a pinned sha256
//! before it replaces the target (so a changed upstream never runs unreviewed).

use super::args::{Num, Ownership, absolute, account, mode};
use super::error::{ArgError, StepError};
use super::facts::{CheckOutput, FileType, Gather, Gathered, PathStat, STAT_FORMAT};
use super::file::gatherable;
use super::kind::{Context, Kind, Resolve, Verdict};
use crate::script::quote;
use serde::Deserialize;

/// The arguments of a `download` step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DownloadArgs {
    pub url: String,
    pub dest: String,
    pub sha256: String,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<Num>,
}

/// A download step for one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    pub url: String,
    pub dest: String,
    /// Lowercase hex.
    pub sha256: String,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<String>,
}

/// What a download's check found at `dest`: nothing (or not a regular file), or the hash
/// of what is there and its stat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadFacts {
    Absent,
    Present {
        hash: String,
        stat: Option<PathStat>,
    },
}

impl Kind for Download {
    const NAME: &'static str = "download";
    const MAY_BLOCK: bool = true;
    type Args = DownloadArgs;
    type Facts = DownloadFacts;

    fn new(a: DownloadArgs, _: &Resolve) -> Result<Download, StepError> {
        let sha = a.sha256.trim().to_ascii_lowercase();
        if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(ArgError::Sha256(a.sha256).into());
        }
        let dest = absolute("dest", a.dest)?;
        Ok(Download {
            mode: mode(&a.mode)?,
            url: a.url,
            dest,
            sha256: sha,
            owner: account("owner", a.owner)?,
            group: account("group", a.group)?,
        })
    }

    fn default_timeout(&self) -> u64 {
        600
    }

    /// `hash` and `stat` of a regular file at `dest`, else `absent`.
    fn check(&self) -> String {
        format!(
            "p={}\nif [ -f \"$p\" ]; then h=$(sha256sum < \"$p\"); echo \"hash ${{h%% *}}\"; stat -c 'stat {STAT_FORMAT}' -- \"$p\"; else echo absent; fi\n",
            quote(&self.dest)
        )
    }

    fn gather(&self) -> Option<Gather<'_>> {
        gatherable(&self.dest).then_some(Gather::Download { path: &self.dest })
    }

    /// The own check hashes a regular file, following a link: the gathered hash is that
    /// (`sha256sum` follows links and fails on a directory), the stat is the link's own.
    fn gathered(&self, g: &Gathered) -> Option<DownloadFacts> {
        let Some(stat) = g.stat(&self.dest) else {
            return Some(DownloadFacts::Absent);
        };
        match (stat.file_type, g.hash(&self.dest)) {
            (FileType::Directory, _) | (_, None) => Some(DownloadFacts::Absent),
            (_, Some(hash)) => Some(DownloadFacts::Present {
                hash: hash.to_string(),
                stat: Some(stat.clone()),
            }),
        }
    }

    fn read(&self, out: &CheckOutput) -> DownloadFacts {
        if out.has("absent") {
            return DownloadFacts::Absent;
        }
        DownloadFacts::Present {
            hash: out.first("hash").unwrap_or("").to_string(),
            stat: out.first("stat").and_then(PathStat::parse),
        }
    }

    fn evaluate(&self, facts: &DownloadFacts, _: &Context) -> Verdict {
        let DownloadFacts::Present { hash, stat } = facts else {
            return Verdict::change(format!("download {}", self.url));
        };
        if *hash != self.sha256 {
            return Verdict::change(format!("download {} (checksum differs)", self.url));
        }
        let own = Ownership {
            owner: self.owner.clone(),
            group: self.group.clone(),
            mode: self.mode.clone(),
        };
        Verdict::changes(&own.changes(stat.as_ref()))
    }

    /// The URL is a word after `--url` (curl) or `--` (wget); the messages naming it are
    /// built here and quoted whole.
    fn apply(&self) -> String {
        let d = quote(&self.dest);
        let failed = quote(&format!("download of {} failed", self.url));
        format!(
            "t=$(__rl_tmp {d})\nif command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 --connect-timeout 20 -o \"$t\" --url {u} || {{ rm -f \"$t\"; __rl_fail {failed}; }}\nelse wget -q -O \"$t\" -- {u} || {{ rm -f \"$t\"; __rl_fail {failed}; }}; fi\ngot=$(sha256sum < \"$t\" | cut -d' ' -f1)\nif [ \"$got\" != {sha} ]; then rm -f \"$t\"; __rl_fail {mismatch}\"$got\"{pinned}; fi\n__rl_commit \"$t\" {d} {o} {g} {m}\n",
            u = quote(&self.url),
            sha = self.sha256,
            mismatch = quote(&format!("checksum mismatch for {}: got ", self.url)),
            pinned = quote(&format!(", pinned {}", self.sha256)),
            o = quote(self.owner.as_deref().unwrap_or("")),
            g = quote(self.group.as_deref().unwrap_or("")),
            m = quote(self.mode.as_deref().unwrap_or("")),
        )
    }
}
