//! `download`: a file fetched by the host from a URL and verified against a pinned sha256
//! before it replaces the target (so a changed upstream never runs unreviewed).

use super::{Num, Probe, Verdict, mode};
use crate::script::quote;
use serde::Deserialize;

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

#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    pub url: String,
    pub dest: String,
    pub sha256: String,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<String>,
}

impl Download {
    pub fn new(a: DownloadArgs) -> Result<Download, String> {
        let sha = a.sha256.trim().to_ascii_lowercase();
        if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("sha256 `{}` is not 64 hex digits", a.sha256));
        }
        if !a.dest.starts_with('/') {
            return Err(format!("dest `{}` must be absolute", a.dest));
        }
        Ok(Download {
            url: a.url,
            dest: a.dest,
            sha256: sha,
            owner: a.owner,
            group: a.group,
            mode: mode(&a.mode)?,
        })
    }

    pub fn check(&self) -> String {
        format!(
            "p={}\nif [ -f \"$p\" ]; then h=$(sha256sum < \"$p\"); echo \"H ${{h%% *}}\"; stat -c 'S %U %G %a' \"$p\"; else echo A; fi\n",
            quote(&self.dest)
        )
    }

    pub fn evaluate(&self, probe: &Probe) -> Verdict {
        if probe.first("A").is_some() {
            return Verdict::change(format!("download {}", self.url));
        }
        if probe.first("H") != Some(self.sha256.as_str()) {
            return Verdict::change(format!("download {} (checksum differs)", self.url));
        }
        let s: Vec<&str> = probe.first("S").unwrap_or("").split(' ').collect();
        let c = super::meta_changes(
            (s.len() >= 3).then(|| (s[0], s[1], s[2])),
            &self.owner,
            &self.group,
            &self.mode,
        );
        if c.is_empty() {
            Verdict::Unchanged
        } else {
            Verdict::change(c.join(", "))
        }
    }

    pub fn apply(&self) -> String {
        let d = quote(&self.dest);
        format!(
            "t=$(__rl_tmp {d})\nif command -v curl >/dev/null 2>&1; then curl -fsSL --retry 3 --connect-timeout 20 -o \"$t\" {u} || {{ rm -f \"$t\"; __rl_fail \"download of {u} failed\"; }}\nelse wget -q -O \"$t\" {u} || {{ rm -f \"$t\"; __rl_fail \"download of {u} failed\"; }}; fi\ngot=$(sha256sum < \"$t\" | cut -d' ' -f1)\nif [ \"$got\" != {sha} ]; then rm -f \"$t\"; __rl_fail \"checksum mismatch for {u}: got $got, pinned {sha}\"; fi\n__rl_commit \"$t\" {d} {o} {g} {m}\n",
            u = quote(&self.url),
            sha = self.sha256,
            o = quote(self.owner.as_deref().unwrap_or("")),
            g = quote(self.group.as_deref().unwrap_or("")),
            m = quote(self.mode.as_deref().unwrap_or("")),
        )
    }
}
