//! The check script of one host and its reader.
//!
//! A no-op run is nothing but checks, and on a host every process the script starts costs more
//! than anything rollout does locally. So the facts many steps need alike are *gathered* once
//! for all of them (a step says which with [`Gather`]): one `stat` for every file and
//! directory path (and every properties file whose step sets an owner, group or mode), one `sha256sum` for every file, one `awk` per properties file. Only a file
//! whose hash differs costs more (its content, for the diff). Steps that need their own check
//! (apt, services, commands, symlinks where a file should be) run their fragment in a
//! section of their own.
//!
//! The reader parses the output once: gathered facts into a map by key (`step::Gathered`), each
//! own section into its kind's typed facts. Each step then takes its `step::Facts` from one or
//! the other, so every kind has one evaluation.
//!
//! Output grammar (every marker line starts with the run's nonce marker `M`):
//! `M s` then `stat` lines `TYPE|USER|GROUP|MODE|SIZE|PATH`; `M h` then `sha256sum` lines;
//! `M c J BASE64` the content of hashed file J; `M p J` then `N VALUE` lines of properties
//! file J (N: the key's place in its list, from 1), or `M P J` when that file is missing;
//! `M b I` … `M e I RC` step I's own section; `M z` the end (a cut connection must not look
//! like a host where nothing exists).

mod read;
mod script;

pub use read::{CheckError, parse};
pub use script::script;

use crate::step::{Action, Gather};

/// What the check script gathers for a host's steps, in script order.
struct Gathering<'a> {
    /// Per step: the gathered facts it uses (None: it runs its own check).
    gathers: Vec<Option<Gather<'a>>>,
    /// Every file and directory path, once.
    stat_paths: Vec<&'a str>,
    /// Every path whose content is wanted, once.
    hash_paths: Vec<&'a str>,
    /// Properties files in the order of their first step, each with its keys (unique, in
    /// order).
    prop_files: Vec<(&'a str, Vec<&'a str>)>,
}

impl<'a> Gathering<'a> {
    fn of(steps: &[&'a Action]) -> Gathering<'a> {
        let gathers: Vec<Option<Gather>> = steps.iter().map(|a| a.gather()).collect();
        let mut g = Gathering {
            gathers: Vec::new(),
            stat_paths: Vec::new(),
            hash_paths: Vec::new(),
            prop_files: Vec::new(),
        };
        let add = |list: &mut Vec<&'a str>, p: &'a str| {
            if !list.contains(&p) {
                list.push(p);
            }
        };
        for b in gathers.iter().flatten() {
            match b {
                Gather::File { path, want } => {
                    add(&mut g.stat_paths, path);
                    if want.is_some() {
                        add(&mut g.hash_paths, path);
                    }
                }
                Gather::Directory { path } => add(&mut g.stat_paths, path),
                Gather::Property { path, key, stat } => {
                    if *stat {
                        add(&mut g.stat_paths, path);
                    }
                    match g.prop_files.iter_mut().find(|(p, _)| p == path) {
                        Some((_, keys)) => add(keys, key),
                        None => g.prop_files.push((path, vec![key])),
                    }
                }
            }
        }
        g.gathers = gathers;
        g
    }
}

#[cfg(test)]
mod tests;
