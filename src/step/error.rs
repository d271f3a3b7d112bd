//! Why a step could not be built from its arguments. The text of every variant is part of
//! the command-line contract (tests/fixtures/errors pin it): role loading prints it after
//! `KIND: `, planning after `step `NAME` on host H: KIND: `.

use std::path::PathBuf;

/// A step's arguments are wrong: misshapen as written, or invalid once rendered.
/// [`ArgError::field`] names the argument at fault, so the error is shown where that
/// argument was written.
#[derive(Debug, thiserror::Error)]
pub enum ArgError {
    /// An error about argument `field` whose variant does not name it (see [`Field`]).
    #[error("{error}")]
    In { field: String, error: Box<ArgError> },
    /// The arguments do not fit the kind's fields: serde's text (e.g. "unknown field"), with
    /// Rust's type names put in the operator's words ([`ArgError::shape`]).
    #[error("{0}")]
    Shape(String),
    /// No kind of that name.
    #[error("unknown step kind `{0}`")]
    UnknownKind(String),
    /// A path argument (named by `field`) is relative.
    #[error("{field} `{value}` must be absolute")]
    NotAbsolute { field: &'static str, value: String },
    /// A directory path that is relative or `/` itself.
    #[error("path `{0}` must be absolute and not /")]
    DirectoryPath(String),
    /// A `state` outside the kind's states (`allowed` lists them, in words).
    #[error("state `{value}` must be {allowed}")]
    State {
        value: String,
        allowed: &'static str,
    },
    /// A state that changes on every run (restarted, reloaded) used outside a handler.
    #[error("state `{0}` would change on every run; use it in a handler and `notify:` it")]
    StateOutsideHandler(String),
    /// A flag that is not true or false.
    #[error("expected true or false, got `{0}`")]
    Flag(String),
    /// A number that is not one.
    #[error("expected a number, got `{0}`")]
    Number(String),
    /// A file mode that is not octal.
    #[error("mode `{0}` is not an octal file mode such as 0644")]
    Mode(String),
    /// A file step with both `content` and `template`.
    #[error("give either content or template, not both")]
    ContentAndTemplate,
    /// A file step with neither `content` nor `template` nor `state: absent`.
    #[error("a file needs content or template (or state: absent)")]
    NoContent,
    /// A file that must be absent, with content.
    #[error("a file with state absent takes no content or template")]
    ContentOfAbsent,
    /// `template:` names no file in the templates folder.
    #[error("template `{name}` not found in {}{}", .dir.display(), suggestion(.similar))]
    TemplateNotFound {
        name: String,
        dir: PathBuf,
        /// The closest existing template name, if any is close.
        similar: Option<String>,
    },
    /// A package name with characters apt does not allow (and a shell would read).
    #[error("`{0}` is not a package name")]
    PackageName(String),
    /// An apt step with nothing to do.
    #[error("apt needs `name` (packages) or `update_cache: true`")]
    AptNothing,
    /// A property key that is empty or contains `=` or a newline.
    #[error("key `{0}` must be non-empty without `=`")]
    PropertyKey(String),
    /// A property value that is a list or a map.
    #[error("value must be a string, number or boolean, got {0}")]
    PropertyValueType(serde_json::Value),
    /// A present property without a value.
    #[error("a property needs a value (or state: absent)")]
    PropertyNoValue,
    /// A property value spanning lines.
    #[error("a property value cannot contain a newline")]
    PropertyNewline,
    /// A present line step without `line`.
    #[error("a present line needs `line`")]
    LineMissing,
    /// An absent line step with neither `line` nor `regexp`.
    #[error("an absent line needs `line` or `regexp`")]
    LineNothing,
    /// A `line` spanning lines.
    #[error("`line` cannot contain a newline")]
    LineNewline,
    /// A command step (not a handler) with neither guard.
    #[error(
        "a command step needs `creates:` or `unless:` so that a second run changes nothing (unguarded commands belong in handlers)"
    )]
    Unguarded,
    /// A pinned checksum that is not a sha256.
    #[error("sha256 `{0}` is not 64 hex digits")]
    Sha256(String),
    /// A wait_for with both or neither of `port` and `url`.
    #[error("wait_for needs either `port` or `url`")]
    WaitForTarget,
    /// A port outside 1-65535.
    #[error("`{0}` is not a port number (1-65535)")]
    Port(String),
    /// An HTTP status outside u16.
    #[error("bad status")]
    Status,
    /// An argument (after rendering) with a NUL byte: no shell word, variable or heredoc line
    /// can carry one, so the host would get another value than the one written.
    #[error("`{0}` contains a NUL byte, which cannot be passed to the host's shell")]
    Nul(String),
    /// A path with a newline: the check reads one path per line, so the host would be asked
    /// about another path than the one written.
    #[error("{0} must be on one line (it contains a newline)")]
    PathNewline(&'static str),
    /// An owner or group that no system can have (`useradd`/`groupadd` accept letters, digits,
    /// `.`, `_`, `-`, a trailing `$`, not a leading `-`; or a numeric id).
    #[error("{field} `{value}` is not a user or group name")]
    Account { field: &'static str, value: String },
    /// A property separator that is empty or spans lines.
    #[error("separator must be at least one character, on one line")]
    Separator,
    /// A `regexp` that awk cannot use: not a regular expression, or one written with
    /// constructs of other dialects that POSIX extended regular expressions lack.
    #[error("regexp `{value}` {why}")]
    Regexp {
        value: String,
        why: String,
        /// Character position of the fault in `value` (1-based).
        column: usize,
    },
    /// A number of seconds outside what the kind accepts.
    #[error("{field} must be {min} to {max} seconds, not {value}")]
    Seconds {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
}

impl ArgError {
    /// serde's error about the arguments' shape, without Rust's type names: "expected struct
    /// FileArgs" and "data did not match any variant of untagged enum Num" say nothing to
    /// the author of a role.
    pub fn shape(e: &serde_json::Error) -> ArgError {
        let text = e.to_string();
        let words = match text.strip_prefix("data did not match any variant of untagged enum ") {
            Some("Num") => "expected a number".to_string(),
            Some("Flag") => "expected true or false".to_string(),
            Some("Names") => "expected a package name or a list of them".to_string(),
            Some(_) => "not a value this argument takes".to_string(),
            None => match text.split_once(", expected struct ") {
                Some((head, _)) => format!("{head}, expected a mapping of arguments"),
                None => text,
            },
        };
        ArgError::Shape(words)
    }

    /// Where in the argument's (rendered) value the fault is, as line and column (1-based),
    /// when the error knows; with the value itself, to tell whether it reads as written.
    pub fn within(&self) -> Option<(&str, (u64, u64))> {
        match self {
            ArgError::In { error, .. } => error.within(),
            ArgError::Regexp { value, column, .. } => Some((value, (1, *column as u64))),
            _ => None,
        }
    }

    /// The argument at fault, as written in the step (`mode`, `path`, ...); `None` when the
    /// fault is the combination of arguments (the step's kind key is the place then).
    pub fn field(&self) -> Option<&str> {
        use ArgError as E;
        Some(match self {
            E::In { field, .. } | E::Nul(field) => field,
            E::NotAbsolute { field, .. }
            | E::PathNewline(field)
            | E::Account { field, .. }
            | E::Seconds { field, .. } => field,
            E::DirectoryPath(_) => "path",
            E::State { .. } | E::StateOutsideHandler(_) => "state",
            E::Mode(_) => "mode",
            E::TemplateNotFound { .. } | E::ContentAndTemplate => "template",
            E::PackageName(_) => "name",
            E::PropertyKey(_) => "key",
            E::PropertyValueType(_) | E::PropertyNewline => "value",
            E::LineNewline => "line",
            E::Regexp { .. } => "regexp",
            E::Sha256(_) => "sha256",
            E::Port(_) => "port",
            E::Status => "status",
            E::Separator => "separator",
            E::Shape(_)
            | E::UnknownKind(_)
            | E::Flag(_)
            | E::Number(_)
            | E::NoContent
            | E::ContentOfAbsent
            | E::AptNothing
            | E::PropertyNoValue
            | E::LineMissing
            | E::LineNothing
            | E::Unguarded
            | E::WaitForTarget => return None,
        })
    }
}

/// Names the argument an error is about, for errors whose variant cannot know it (a flag,
/// a number, serde's shape errors): `flag_or(&a.sensitive, false).field("sensitive")?`.
pub trait Field<T> {
    /// The error, if any, as being about argument `field`.
    fn field(self, field: &str) -> Result<T, ArgError>;
}

impl<T, E: Into<ArgError>> Field<T> for Result<T, E> {
    fn field(self, field: &str) -> Result<T, ArgError> {
        self.map_err(|e| ArgError::In {
            field: field.to_string(),
            error: Box::new(e.into()),
        })
    }
}

fn suggestion(similar: &Option<String>) -> String {
    similar
        .as_ref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

/// Why a step could not be resolved for a host.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Its arguments are wrong.
    #[error(transparent)]
    Args(#[from] ArgError),
    /// A template file failed to render (located in that file).
    #[error("{0}")]
    Template(crate::template::RenderError),
}
