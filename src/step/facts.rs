//! Facts: what a check found on a host, typed, parsed once from the check output.
//!
//! A step's own check fragment prints *fact lines*: a word naming the fact, then its value.
//! Each word means one thing in every kind (`absent` is always "no such path", `hash`
//! always a sha256 of a file's content); each kind reads its lines into its own typed facts
//! ([`super::Kind::Facts`]), which its pure `evaluate` judges.
//!
//! Facts that many steps need alike are *gathered* once for all steps of a host (see
//! the `check` module): the stat of every path, the hash of every file, the values of every
//! properties file. [`Gathered`] holds them by [`FactKey`]; a kind that can use them says so
//! with [`Gather`] and builds its facts from the map, never from forged text.

use std::collections::HashMap;

/// The fact lines of one step's own check fragment, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOutput {
    pub lines: Vec<String>,
}

impl CheckOutput {
    /// Output from fact lines (tests and fixtures).
    pub fn of(lines: &[&str]) -> CheckOutput {
        CheckOutput {
            lines: lines.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The values of the lines naming `fact` (`fact VALUE`, or a bare `fact`: "").
    pub fn values<'a>(&'a self, fact: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lines.iter().filter_map(move |l| {
            let r = l.strip_prefix(fact)?;
            if r.is_empty() {
                Some("")
            } else {
                r.strip_prefix(' ')
            }
        })
    }

    /// The value of the first line naming `fact`.
    pub fn first<'a>(&'a self, fact: &'a str) -> Option<&'a str> {
        self.values(fact).next()
    }

    /// Whether a line names `fact`.
    pub fn has(&self, fact: &str) -> bool {
        self.first(fact).is_some()
    }
}

/// What `stat` (not following a symbolic link) says a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Directory,
    Symlink,
    /// A regular file or anything else that is neither a directory nor a link.
    File,
}

/// `stat -c STAT_FORMAT` of an existing path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    pub file_type: FileType,
    pub owner: String,
    pub group: String,
    /// Octal permission digits as stat prints them ("644").
    pub mode: String,
    /// Bytes.
    pub size: u64,
}

/// The `stat -c` format that [`PathStat::parse`] reads; the gathered stat appends `|%n`.
pub const STAT_FORMAT: &str = "%F|%U|%G|%a|%s";

impl PathStat {
    /// Reads a [`STAT_FORMAT`] line; None when it is not one.
    pub fn parse(line: &str) -> Option<PathStat> {
        let mut f = line.splitn(5, '|');
        let file_type = match f.next()? {
            "directory" => FileType::Directory,
            "symbolic link" => FileType::Symlink,
            _ => FileType::File,
        };
        Some(PathStat {
            file_type,
            owner: f.next()?.to_string(),
            group: f.next()?.to_string(),
            mode: f.next()?.to_string(),
            size: f.next()?.trim().parse().unwrap_or(0),
        })
    }
}

/// The gathered facts a step of some kind can use instead of running its own fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gather<'a> {
    /// A file: its stat; its hash when content is wanted (`want`, a sha256); its content
    /// when the hash is not `want` (for the diff).
    File { path: &'a str, want: Option<String> },
    /// A directory: its stat.
    Directory { path: &'a str },
    /// One key of a properties file: the values of the lines that set it; the file's stat
    /// too when `stat` (the step sets an owner, group or mode).
    Property {
        path: &'a str,
        key: &'a str,
        stat: bool,
    },
    /// A `line` step: whether the file exists, whether `line` is one of its lines, how many
    /// other lines match `regexp` ("" each: none); one `awk` pass reads every such file.
    Line {
        path: &'a str,
        line: &'a str,
        regexp: &'a str,
    },
    /// An `apt` step: dpkg's status of its packages (names without `=version`), their
    /// candidate versions when `latest`, the age of the package lists when `cache_age`.
    Packages {
        names: Vec<&'a str>,
        latest: bool,
        cache_age: bool,
    },
    /// A `service` step: what `systemctl is-enabled` and `is-active` say of the unit.
    Unit { name: &'a str },
    /// A `download` step: the stat of its destination and the hash of what it points to.
    Download { path: &'a str },
    /// A `wait_for` port: whether a TCP connection opens within 3 s.
    Port { host: &'a str, port: u16 },
}

/// Which gathered fact, of which path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FactKey {
    /// The path's [`PathStat`]; no entry when the path does not exist.
    Stat(String),
    /// The sha256 of a file's content.
    Hash(String),
    /// A file's content (only of files whose hash was not the wanted one, and small).
    Content(String),
    /// The `key=value` lines of a properties file.
    Properties(String),
    /// What a `line` step looks for: (path, line, regexp), "" for an unset one.
    Line(String, String, String),
    /// dpkg's status of every package the host's apt steps name.
    Packages,
    /// The candidate versions of the packages of `latest` apt steps.
    Candidates,
    /// Seconds since the package lists were refreshed.
    CacheAge,
    /// A systemd unit, by the name a step gives.
    Unit(String),
    /// A TCP port on a host, as a step names them.
    Port(String, u16),
}

/// What one `line` step's pass over its file found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineHits {
    pub file_exists: bool,
    /// The exact line is there.
    pub exact: bool,
    /// Lines other than the exact one that match the regexp.
    pub matches: usize,
}

/// One gathered fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    Stat(PathStat),
    /// Lowercase hex.
    Hash(String),
    Content(Vec<u8>),
    /// (key, value) per line that sets one of the wanted keys, in file order; None when
    /// the file does not exist.
    Properties(Option<Vec<(String, String)>>),
    Line(LineHits),
    /// (name, dpkg's abbreviated status, version) per package dpkg knows, in its order.
    Packages(Vec<(String, String, String)>),
    /// (name, candidate version), in `apt-cache policy`'s order.
    Candidates(Vec<(String, String)>),
    /// Seconds; None when unreadable.
    Seconds(Option<u64>),
    /// `systemctl is-enabled` and `is-active` of a unit, as printed ("" for nothing).
    Unit {
        enabled: String,
        active: String,
    },
    /// Whether a port accepted a connection.
    Ready(bool),
}

/// Facts gathered for all steps of a host, by key. Only complete output (the check script
/// reached its end) becomes a `Gathered`, so a missing stat means a missing path.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    facts: HashMap<FactKey, Fact>,
}

impl Gathered {
    /// Records a fact (a later one for the same key replaces it).
    pub fn insert(&mut self, key: FactKey, fact: Fact) {
        self.facts.insert(key, fact);
    }

    /// The stat of `path`; None when it does not exist.
    pub fn stat(&self, path: &str) -> Option<&PathStat> {
        match self.facts.get(&FactKey::Stat(path.to_string())) {
            Some(Fact::Stat(s)) => Some(s),
            _ => None,
        }
    }

    /// The hash of `path`, when gathered.
    pub fn hash(&self, path: &str) -> Option<&str> {
        match self.facts.get(&FactKey::Hash(path.to_string())) {
            Some(Fact::Hash(h)) => Some(h),
            _ => None,
        }
    }

    /// The content of `path`, when gathered.
    pub fn content(&self, path: &str) -> Option<&[u8]> {
        match self.facts.get(&FactKey::Content(path.to_string())) {
            Some(Fact::Content(c)) => Some(c),
            _ => None,
        }
    }

    /// The lines of properties file `path`: None when not gathered, Some(None) when the file
    /// does not exist.
    pub fn properties(&self, path: &str) -> Option<Option<&[(String, String)]>> {
        match self.facts.get(&FactKey::Properties(path.to_string())) {
            Some(Fact::Properties(p)) => Some(p.as_deref()),
            _ => None,
        }
    }

    /// What the pass over `path` found for `line` and `regexp`, when gathered.
    pub fn line(&self, path: &str, line: &str, regexp: &str) -> Option<LineHits> {
        let key = FactKey::Line(path.into(), line.into(), regexp.into());
        match self.facts.get(&key) {
            Some(Fact::Line(h)) => Some(*h),
            _ => None,
        }
    }

    /// dpkg's status lines of the host's apt packages, when gathered.
    pub fn packages(&self) -> Option<&[(String, String, String)]> {
        match self.facts.get(&FactKey::Packages) {
            Some(Fact::Packages(p)) => Some(p),
            _ => None,
        }
    }

    /// Candidate versions, when gathered.
    pub fn candidates(&self) -> Option<&[(String, String)]> {
        match self.facts.get(&FactKey::Candidates) {
            Some(Fact::Candidates(c)) => Some(c),
            _ => None,
        }
    }

    /// The package lists' age in seconds: None when not gathered, Some(None) unreadable.
    pub fn cache_age(&self) -> Option<Option<u64>> {
        match self.facts.get(&FactKey::CacheAge) {
            Some(Fact::Seconds(s)) => Some(*s),
            _ => None,
        }
    }

    /// (is-enabled, is-active) of unit `name`, when gathered.
    pub fn unit(&self, name: &str) -> Option<(&str, &str)> {
        match self.facts.get(&FactKey::Unit(name.into())) {
            Some(Fact::Unit { enabled, active }) => Some((enabled, active)),
            _ => None,
        }
    }

    /// Whether `host`:`port` accepted a connection, when gathered.
    pub fn port(&self, host: &str, port: u16) -> Option<bool> {
        match self.facts.get(&FactKey::Port(host.into(), port)) {
            Some(Fact::Ready(r)) => Some(*r),
            _ => None,
        }
    }
}
