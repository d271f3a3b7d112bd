//! The check script of one host and its reader.
//!
//! A no-op run is nothing but checks, and on a host every process the script starts costs more
//! than anything rollout does locally. So the facts many steps need alike are *gathered* once
//! for all of them (a step says which with [`Gather`]): one `stat` for every file and
//! directory path (and every properties file whose step sets an owner, group or mode), one
//! `sha256sum` for every file and download, one `awk` per properties file, one `awk` for
//! every file of `line` steps, one `dpkg-query` (and one `apt-cache policy` for `latest`) for
//! every package, one `systemctl is-enabled` and one `is-active` for every unit, one `bash`
//! for every port. So the cost of a no-op on a host hardly depends on which kinds its steps
//! use. Only a file whose hash differs costs more (its content, for the diff). Steps that
//! need their own check (commands, asserts, URLs to wait for, symlinks where a file should
//! be, sensitive properties) run their fragment in a section of their own.
//!
//! The reader parses the output once: gathered facts into a map by key (`step::Gathered`), each
//! own section into its kind's typed facts. Each step then takes its `step::Facts` from one or
//! the other, so every kind has one evaluation.
//!
//! Output grammar (every marker line starts with the run's nonce marker `M`):
//! `M s` then `stat` lines `TYPE|USER|GROUP|MODE|SIZE|PATH`; `M h` then `sha256sum` lines;
//! `M c J BASE64` the content of hashed file J; `M p J` then `N VALUE` lines of properties
//! file J (N: the key's place in its list, from 1), or `M P J` when that file is missing;
//! `M l` then `K exact` or `K match` lines of line check K, `M L F` when line file F is
//! missing; `M k` then dpkg's `package NAME STATUS VERSION` lines; `M a` then `candidate NAME
//! VERSION` lines; `M A SECONDS` the age of the package lists; `M u` then one `is-enabled`
//! line per unit, `M v` one `is-active` line per unit; `M w` then the numbers of the ports
//! that answered; `M b I` … `M e I RC` step I's own section; `M z` the end (a cut connection must not look
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
    /// Files that `line` steps read, once each.
    line_files: Vec<&'a str>,
    /// What `line` steps look for, once each: (file index, line, regexp).
    line_checks: Vec<(usize, &'a str, &'a str)>,
    /// Packages that apt steps name, once each; those of `latest` steps; whether any step
    /// wants the age of the package lists.
    packages: Vec<&'a str>,
    latest: Vec<&'a str>,
    cache_age: bool,
    /// Units that service steps name, once each.
    units: Vec<&'a str>,
    /// Ports that wait_for steps wait for, once each.
    ports: Vec<(&'a str, u16)>,
}

impl<'a> Gathering<'a> {
    fn of(steps: &[&'a Action]) -> Gathering<'a> {
        let gathers: Vec<Option<Gather>> = steps.iter().map(|a| a.gather()).collect();
        let mut g = Gathering {
            gathers: Vec::new(),
            stat_paths: Vec::new(),
            hash_paths: Vec::new(),
            prop_files: Vec::new(),
            line_files: Vec::new(),
            line_checks: Vec::new(),
            packages: Vec::new(),
            latest: Vec::new(),
            cache_age: false,
            units: Vec::new(),
            ports: Vec::new(),
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
                Gather::Line { path, line, regexp } => {
                    add(&mut g.line_files, path);
                    let f = g.line_files.iter().position(|p| p == path).unwrap_or(0);
                    if !g.line_checks.contains(&(f, line, regexp)) {
                        g.line_checks.push((f, line, regexp));
                    }
                }
                Gather::Packages {
                    names,
                    latest,
                    cache_age,
                } => {
                    for n in names {
                        add(&mut g.packages, n);
                        if *latest {
                            add(&mut g.latest, n);
                        }
                    }
                    g.cache_age |= cache_age;
                }
                Gather::Unit { name } => add(&mut g.units, name),
                Gather::Download { path } => {
                    add(&mut g.stat_paths, path);
                    add(&mut g.hash_paths, path);
                }
                Gather::Port { host, port } => {
                    if !g.ports.contains(&(host, *port)) {
                        g.ports.push((host, *port));
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
