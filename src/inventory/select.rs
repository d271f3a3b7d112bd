//! `--limit`: Ansible's host patterns, evaluated as ansible-core 2.19 evaluates `--limit`
//! (lib/ansible/inventory/manager.py: `split_host_pattern`, `order_patterns`,
//! `_evaluate_patterns`, `_match_one_pattern`, `_split_subscript`, `_apply_subscript`,
//! `_enumerate_matches`, `subset`):
//!
//! - patterns are separated by commas; a text without a comma that is not one address
//!   (`parse_address`: a host name, IPv4 or IPv6 address, with ranges and a port) is
//!   split at colons instead (`a:b`, `web:&bbb:!bbb3`), so `::1` and `host:2222` stay whole;
//! - `@FILE` reads one pattern per line (a retry file), each line whole;
//! - each pattern is a name, an fnmatch glob (`web*`, `bbb-?.example.org`, `[ab]*`), or a
//!   regular expression after `~` (matched from the start of the name, as Python's
//!   `re.match`); it matches the groups it names (all their hosts, children's included)
//!   and, when it names no group or is a glob or regex or has a `.`, the hosts it names;
//!   a pattern that is exactly a host's name is that host, even if a group has the name;
//! - a subscript picks from what the pattern matched: `web[0]`, `web[-1]`, `web[1:3]`
//!   (inclusive), `web[2:]`;
//! - `&` before a pattern intersects, `!` excludes; all plain patterns are added first,
//!   then the intersections apply, then the exclusions (with none plain, `all` is implied);
//! - the hosts chosen are listed in inventory order.
//!
//! Where rollout differs from ansible-core, on purpose: a pattern that matches nothing is an
//! error (ansible-core warns and goes on), a limit that names nothing (`,,,`) is an error
//! (ansible-core then applies no limit at all), and `localhost` is not added implicitly.

use super::{Host, Inventory};
use crate::error::did_you_mean;
use regex::Regex;
use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;

/// The largest `@FILE` of patterns rollout reads, in bytes (1 MiB: a retry file of a pool
/// has a few hundred lines).
const MAX_LIMIT_FILE_BYTES: u64 = 1024 * 1024;

/// The hosts `limit` selects, in inventory order. `None` selects all hosts.
///
/// # Errors
/// See [`choose`].
pub fn select<'a>(inv: &'a Inventory, limit: Option<&str>) -> Result<Vec<&'a Host>, String> {
    let Some(limit) = limit else {
        return Ok(inv.hosts.iter().collect());
    };
    let chosen: HashSet<&str> = choose(&View::of(inv), limit, &inv.path)?
        .into_iter()
        .collect();
    Ok(inv
        .hosts
        .iter()
        .filter(|h| chosen.contains(h.name.as_str()))
        .collect())
}

/// The hosts of `view` that `limit` chooses, in `all` order (ansible-core's
/// `subset(limit)` then `get_hosts('all')`). `source` names the inventory in errors.
///
/// # Errors
/// The limit names nothing; an `@FILE` cannot be read; a pattern is not a valid glob or
/// regular expression, or matches no host or group (with the nearest name when it looks
/// like a typo); a subscript is out of range; or the hosts chosen are none.
pub fn choose<'a>(view: &View<'a>, limit: &str, source: &Path) -> Result<Vec<&'a str>, String> {
    let patterns = limit_patterns(limit)?;
    if patterns.is_empty() {
        return Err(format!("--limit `{limit}` names no host or group"));
    }
    let chosen: HashSet<&str> = evaluate(view, &patterns, source)?.into_iter().collect();
    let out: Vec<&str> = view
        .all
        .iter()
        .copied()
        .filter(|h| chosen.contains(h))
        .collect();
    if out.is_empty() {
        return Err(format!("--limit `{limit}` selects no hosts"));
    }
    Ok(out)
}

/// Whether `limit` names `host` itself as one of its plain patterns (not only through a
/// group, a glob or a file), as `rollout undrain --limit NODE` must.
pub fn names_host(limit: Option<&str>, host: &str) -> bool {
    limit.is_some_and(|l| split_host_pattern(l).iter().any(|p| p == host))
}

/// ansible-core's `split_host_pattern`: the single patterns of `text`, trimmed, empty ones
/// dropped. With a comma anywhere, commas alone separate; otherwise the text is one pattern
/// if it reads as one address (`::1`, `[::1]:22`, `web[01:09]`, `host:2222`), else it is
/// split at colons outside brackets.
pub fn split_host_pattern(text: &str) -> Vec<String> {
    /// `(?:[^\s:\[\]]|\[[^\]]*\])+`: runs of non-colon text or whole bracketed expressions.
    static COLON_PARTS: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?:[^\s:\[\]]|\[[^\]]*\])+").expect("valid regex"));
    let parts: Vec<&str> = if text.contains(',') {
        text.split(',').collect()
    } else if super::ansible::ranges::is_address(text) {
        vec![text]
    } else {
        COLON_PARTS.find_iter(text).map(|m| m.as_str()).collect()
    };
    parts
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect()
}

/// ansible-core's `subset`: the patterns of `limit`, each `@FILE` replaced by the file's
/// lines (trimmed, each one whole pattern; empty lines dropped).
///
/// # Errors
/// An `@FILE` that does not exist, is not a regular file, is too large or is not UTF-8.
fn limit_patterns(limit: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for p in split_host_pattern(limit) {
        let Some(file) = p.strip_prefix('@') else {
            out.push(p);
            continue;
        };
        let text =
            crate::bounded::read_to_string(Path::new(file), MAX_LIMIT_FILE_BYTES).map_err(|e| {
                format!("--limit: cannot read the limit file `{file}` (`@{file}`): {e}")
            })?;
        out.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from),
        );
    }
    Ok(out)
}

/// ansible-core's `order_patterns`: plain patterns, then `&` ones, then `!` ones; `all`
/// when there is no plain one.
fn order_patterns(patterns: &[String]) -> Vec<&str> {
    let (mut plain, mut and, mut not) = (Vec::new(), Vec::new(), Vec::new());
    for p in patterns.iter().map(String::as_str) {
        match p.chars().next() {
            Some('!') => not.push(p),
            Some('&') => and.push(p),
            Some(_) => plain.push(p),
            None => {}
        }
    }
    if plain.is_empty() {
        plain.push("all");
    }
    plain.into_iter().chain(and).chain(not).collect()
}

/// An inventory as host patterns see it.
pub struct View<'a> {
    /// Host names in the order chosen hosts are given: ansible-core's `all` order.
    pub all: Vec<&'a str>,
    /// Host names in the order the inventory first names them (ansible-core's
    /// `InventoryData.hosts`), the order globs and regexes match hosts in.
    pub hosts: Vec<&'a str>,
    /// Groups in the order they were made (`all` and `ungrouped` first), each with its hosts,
    /// children's included, in ansible-core's order (`Group.get_hosts`).
    pub groups: Vec<(&'a str, Vec<&'a str>)>,
}

impl<'a> View<'a> {
    /// rollout's validated inventory as patterns see it; rollout's own format, which has no
    /// `ungrouped`, gets it as ansible-core would have it.
    pub fn of(inv: &'a Inventory) -> Self {
        let mut groups: Vec<(&str, Vec<&str>)> = inv
            .groups
            .iter()
            .map(|(g, m)| (g.as_str(), m.iter().map(String::as_str).collect()))
            .collect();
        // ansible-core always has `ungrouped` (second, after `all`): the hosts of no other
        // group. rollout's own inventory format only has the groups it names.
        if !inv.groups.contains_key("ungrouped") {
            let lonely = inv
                .hosts
                .iter()
                .filter(|h| h.groups.iter().all(|g| g == "all"))
                .map(|h| h.name.as_str())
                .collect();
            let at = usize::from(inv.groups.contains_key("all")).min(groups.len());
            groups.insert(at, ("ungrouped", lonely));
        }
        View {
            all: inv.hosts.iter().map(|h| h.name.as_str()).collect(),
            hosts: inv.host_order.iter().map(String::as_str).collect(),
            groups,
        }
    }
}

/// ansible-core's `_evaluate_patterns`: the hosts the ordered patterns leave.
fn evaluate<'a>(
    view: &View<'a>,
    patterns: &[String],
    source: &Path,
) -> Result<Vec<&'a str>, String> {
    let mut hosts: Vec<&'a str> = Vec::new();
    for p in order_patterns(patterns) {
        if let Some(h) = view.hosts.iter().find(|h| **h == p) {
            if !hosts.contains(h) {
                hosts.push(h);
            }
            continue;
        }
        let that = match_one_pattern(view, p, source)?;
        match p.chars().next() {
            Some('!') => {
                let that: HashSet<&str> = that.into_iter().collect();
                hosts.retain(|h| !that.contains(h));
            }
            Some('&') => {
                let that: HashSet<&str> = that.into_iter().collect();
                hosts.retain(|h| that.contains(h));
            }
            _ => {
                for h in that {
                    if !hosts.contains(&h) {
                        hosts.push(h);
                    }
                }
            }
        }
    }
    Ok(hosts)
}

/// A subscript: `[i]` (`Index`, negative counts from the end) or `[start:end]` (`Range`,
/// inclusive; `end` `None` for `[start:]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subscript {
    Index(i64),
    Range(i64, Option<i64>),
}

/// ansible-core's `_split_subscript`: the pattern without its subscript, and the subscript
/// (none for a `~regex`). `[x-y]`, which ansible-core still reads as `[x:y]` with a warning,
/// is read the same way.
fn split_subscript(pattern: &str) -> (&str, Option<Subscript>) {
    /// ansible-core's `PATTERN_WITH_SUBSCRIPT`.
    static SUBSCRIPT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(?s)(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$").expect("valid regex")
    });
    if pattern.starts_with('~') {
        return (pattern, None);
    }
    let Some(c) = SUBSCRIPT.captures(pattern) else {
        return (pattern, None);
    };
    // Digits beyond i64 are out of every range, as Python's big integers would be.
    let int = |s: &str| {
        s.parse::<i64>().unwrap_or(if s.starts_with('-') {
            i64::MIN
        } else {
            i64::MAX
        })
    };
    let base = c.get(1).map_or("", |m| m.as_str());
    let sub = match c.get(2) {
        Some(i) => Subscript::Index(int(i.as_str())),
        None => {
            let start = int(c.get(3).map_or("0", |m| m.as_str()));
            let end = c.get(5).map(|m| m.as_str()).filter(|e| !e.is_empty());
            Subscript::Range(start, end.map(int))
        }
    };
    (base, Some(sub))
}

/// ansible-core's `_apply_subscript`: `None` when an index is out of range. As there,
/// `[x:0]` is `[x]` (an end of 0 is read as no end, and the start taken alone), while
/// `[x:]` is a slice to the end, empty when `x` is past it.
fn apply_subscript(hosts: Vec<&str>, sub: Option<Subscript>) -> Option<Vec<&str>> {
    let Some(sub) = sub else { return Some(hosts) };
    if hosts.is_empty() {
        return Some(hosts);
    }
    let len = i64::try_from(hosts.len()).unwrap_or(i64::MAX);
    let index = |i: i64| {
        let i = if i < 0 { i.checked_add(len)? } else { i };
        usize::try_from(i)
            .ok()
            .and_then(|i| hosts.get(i))
            .map(|h| vec![*h])
    };
    let (start, end) = match sub {
        Subscript::Index(i) | Subscript::Range(i, Some(0)) => return index(i),
        Subscript::Range(s, None) => (s, len - 1),
        Subscript::Range(s, Some(e)) => (s, e),
    };
    // Python's slice `hosts[start:end + 1]`: bounds clamped, empty when start passes end.
    let clamp = |v: i64| usize::try_from(v.clamp(0, len)).unwrap_or(0);
    let (from, to) = (clamp(start), clamp(end.saturating_add(1)));
    Some(if from < to {
        hosts[from..to].to_vec()
    } else {
        Vec::new()
    })
}

/// How one pattern matches a name: an fnmatch glob (the `glob` crate, with `*` and `?`
/// matching any character, `/` and a leading `.` included, case-sensitive as Python's
/// `fnmatch.translate`), or after `~` a regular expression matched from the start of the
/// name (Python's `re.match`).
enum Matcher {
    Glob(glob::Pattern),
    Regex(Regex),
}

impl Matcher {
    /// ansible-core's `_match_list` compilation.
    ///
    /// # Errors
    /// An invalid regular expression, or a glob the `glob` crate refuses (a `[` without its
    /// `]`, which Python's fnmatch would take literally; no host name has one).
    fn new(pattern: &str) -> Result<Self, String> {
        if let Some(re) = pattern.strip_prefix('~') {
            return Regex::new(re).map(Matcher::Regex).map_err(|e| {
                format!("--limit: `{pattern}` is not a valid regular expression: {e}")
            });
        }
        // Python's fnmatch reads `**` as `*`; the glob crate gives it a path meaning.
        let mut glob = String::with_capacity(pattern.len());
        for c in pattern.chars() {
            if !(c == '*' && glob.ends_with('*')) {
                glob.push(c);
            }
        }
        glob::Pattern::new(&glob).map(Matcher::Glob).map_err(|e| {
            format!(
                "--limit: `{pattern}` is not a valid host pattern: {} at character {}",
                e.msg,
                e.pos + 1
            )
        })
    }

    fn is_match(&self, name: &str) -> bool {
        match self {
            Matcher::Glob(g) => g.matches_with(
                name,
                glob::MatchOptions {
                    case_sensitive: true,
                    require_literal_separator: false,
                    require_literal_leading_dot: false,
                },
            ),
            // The leftmost match starts at 0 exactly when an anchored match exists.
            Matcher::Regex(r) => r.find(name).is_some_and(|m| m.start() == 0),
        }
    }
}

/// ansible-core's `_match_one_pattern` and `_enumerate_matches`: the hosts one pattern
/// (its `&` or `!` ignored) matches, duplicates kept until the subscript is applied.
///
/// # Errors
/// See [`Matcher::new`]; no host or group matched (with a did-you-mean); an index out of
/// range.
fn match_one_pattern<'a>(
    view: &View<'a>,
    pattern: &str,
    source: &Path,
) -> Result<Vec<&'a str>, String> {
    let bare = pattern.strip_prefix(['&', '!']).unwrap_or(pattern);
    if bare.is_empty() {
        return Err(format!(
            "--limit: `{pattern}` has no pattern after its `&` or `!`"
        ));
    }
    let (expr, sub) = split_subscript(bare);
    let matcher = Matcher::new(expr)?;
    let mut results: Vec<&str> = Vec::new();
    let mut matched_group = false;
    for (name, members) in &view.groups {
        if matcher.is_match(name) {
            matched_group = true;
            results.extend(members.iter().copied());
        }
    }
    let special = expr.starts_with('~') || expr.contains(['.', '?', '*', '[']);
    if !matched_group || special {
        results.extend(view.hosts.iter().copied().filter(|h| matcher.is_match(h)));
    }
    if results.is_empty() && !matched_group {
        let hint = if !expr.starts_with('~') && !expr.contains(['?', '*', '[']) {
            // Hosts first: a mistyped host name is offered the host, not a group as far.
            let names = view.hosts.iter().copied().chain(
                view.groups
                    .iter()
                    .map(|(g, _)| *g)
                    .filter(|g| *g != "ungrouped"),
            );
            did_you_mean(expr, names)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default()
        } else {
            String::new()
        };
        return Err(format!(
            "--limit: `{expr}` matches no host or group of {}{hint}",
            source.display()
        ));
    }
    let count = results.len();
    apply_subscript(results, sub).ok_or_else(|| {
        format!(
            "--limit: no host matched the subscripted pattern `{bare}`: `{expr}` matches {count} host{}",
            if count == 1 { "" } else { "s" }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Vec<String> {
        split_host_pattern(s)
    }

    #[test]
    fn commas_then_addresses_then_colons_separate_as_ansible_core() {
        // Each expectation is what ansible-core 2.19.14's `split_host_pattern` returns.
        assert_eq!(split("a,b[1], c[2:3] , d"), ["a", "b[1]", "c[2:3]", "d"]);
        assert_eq!(split("web:&bbb:!bbb3"), ["web", "&bbb", "!bbb3"]);
        // With a comma, colons stay inside the pattern.
        assert_eq!(split("web:&bbb,db"), ["web:&bbb", "db"]);
        // One address: an IPv6 address, a host with a port, a range, a bracketed v6 and port.
        assert_eq!(split("::1"), ["::1"]);
        assert_eq!(split("fe80::1:2"), ["fe80::1:2"]);
        assert_eq!(split("host:2222"), ["host:2222"]);
        assert_eq!(split("host:99999999"), ["host:99999999"]);
        assert_eq!(split("web[01:09]"), ["web[01:09]"]);
        assert_eq!(split("[::1]:22"), ["[::1]:22"]);
        // Not an address: colons separate, brackets are kept whole.
        assert_eq!(split("web[0:1]:db"), ["web[0:1]", "db"]);
        assert_eq!(split("web*:~db.*"), ["web*", "~db.*"]);
        assert_eq!(split(" , ,"), Vec::<String>::new());
        assert_eq!(split("a b"), ["a", "b"]);
        assert_eq!(split("web[1:]"), ["web[1:]"]);
        assert_eq!(split("bbb[0:1]:x"), ["bbb[0:1]", "x"]);
    }

    #[test]
    fn plain_patterns_come_first_then_intersections_then_exclusions() {
        let p: Vec<String> = ["!c", "&b", "a", "&d", "e"].map(String::from).to_vec();
        assert_eq!(order_patterns(&p), ["a", "e", "&b", "&d", "!c"]);
        let only_not: Vec<String> = vec!["!c".into()];
        assert_eq!(order_patterns(&only_not), ["all", "!c"]);
    }

    #[test]
    fn subscripts_read_and_apply_as_ansible_core() {
        use Subscript::{Index, Range};
        assert_eq!(split_subscript("web[0]"), ("web", Some(Index(0))));
        assert_eq!(split_subscript("web[-1]"), ("web", Some(Index(-1))));
        assert_eq!(
            split_subscript("web[1:3]"),
            ("web", Some(Range(1, Some(3))))
        );
        assert_eq!(
            split_subscript("web[1-3]"),
            ("web", Some(Range(1, Some(3))))
        );
        assert_eq!(split_subscript("web[2:]"), ("web", Some(Range(2, None))));
        assert_eq!(split_subscript("web*[0]"), ("web*", Some(Index(0))));
        assert_eq!(split_subscript("~web[0]"), ("~web[0]", None));
        assert_eq!(split_subscript("web[a:c]"), ("web[a:c]", None));
        assert_eq!(split_subscript("[0]"), ("[0]", None));
        let h = vec!["a", "b", "c", "d"];
        let apply = |s| apply_subscript(h.clone(), Some(s));
        assert_eq!(apply(Index(0)), Some(vec!["a"]));
        assert_eq!(apply(Index(-1)), Some(vec!["d"]));
        assert_eq!(apply(Index(4)), None);
        assert_eq!(apply(Index(-5)), None);
        assert_eq!(apply(Range(1, Some(2))), Some(vec!["b", "c"]));
        assert_eq!(apply(Range(2, None)), Some(vec!["c", "d"]));
        assert_eq!(apply(Range(1, Some(99))), Some(vec!["b", "c", "d"]));
        assert_eq!(apply(Range(9, Some(12))), Some(vec![]));
        assert_eq!(apply(Range(3, Some(1))), Some(vec![]));
        // ansible-core's quirk: an end of 0 takes the start alone.
        assert_eq!(apply(Range(2, Some(0))), Some(vec!["c"]));
        assert_eq!(apply(Index(i64::MAX)), None);
        assert_eq!(apply_subscript(vec![], Some(Index(3))), Some(vec![]));
        // `[x:]` on one host is a slice, not `[x:0]`: empty past the end, no error.
        assert_eq!(
            apply_subscript(vec!["a"], Some(Range(1, None))),
            Some(vec![])
        );
        assert_eq!(
            apply_subscript(vec!["a"], Some(Range(0, None))),
            Some(vec!["a"])
        );
    }

    #[test]
    fn globs_are_fnmatch_and_regexes_match_from_the_start() {
        let m = |p: &str, name: &str| Matcher::new(p).unwrap().is_match(name);
        assert!(m("web*", "web1"));
        assert!(m("*.example.org", "bbb1.example.org"));
        assert!(!m("*.example.org", "bbb1.example.net"));
        assert!(m("bbb?", "bbb1"));
        assert!(m("bbb[12]", "bbb2") && !m("bbb[12]", "bbb3"));
        assert!(m("bbb[!12]", "bbb3") && !m("bbb[!12]", "bbb1"));
        assert!(m("a**b", "a/x.b"));
        assert!(
            !m("Web*", "web1"),
            "case-sensitive as Python's fnmatch.translate"
        );
        assert!(!m("web", "web1"), "a glob matches the whole name");
        assert!(m("~web", "web1"), "re.match: anchored at the start only");
        assert!(!m("~eb", "web1"));
        assert!(m("~(web|db)[0-9]$", "db3"));
        assert!(Matcher::new("~(").is_err());
        assert!(Matcher::new("web[").is_err());
    }

    #[test]
    fn names_host_only_for_plain_patterns() {
        assert!(names_host(Some("bbb1:bbb2"), "bbb2"));
        assert!(names_host(Some("bbb, bbb2"), "bbb2"));
        assert!(!names_host(Some("bbb*"), "bbb2"));
        assert!(!names_host(Some("!bbb2"), "bbb2"));
        assert!(!names_host(None, "bbb2"));
    }
}
