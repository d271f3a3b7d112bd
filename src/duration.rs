//! Durations as the operator writes them on the command line: `90` (seconds), `90s`, `5m`,
//! `2h`, `1.5h`, `1h30m`, `2 hours 30 minutes`. The grammar is jiff's "friendly" format, so
//! combined units and spellings work as they do in other tools; rollout adds only the bare
//! number of seconds. Units stop at hours: a day is not always 24 hours, and no pool
//! operation waits that long on purpose.

use jiff::fmt::friendly::SpanParser;
use std::time::Duration;

static PARSER: SpanParser = SpanParser::new();

/// Why a duration was refused; the text names what was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a duration such as 90s, 30m, 2h or 1h30m ({why})")]
pub struct DurationError {
    /// What the operator wrote.
    pub text: String,
    /// jiff's reason, without its preamble.
    pub why: String,
}

/// Parses a duration of hours, minutes and seconds (fractions allowed: `1.5h`).
///
/// # Errors
/// Text that is not a duration, a negative one, units of days or more, or a value beyond
/// what [`Duration`] holds (about 584 billion years).
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let bare = !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let with_unit = match (bare, trimmed.starts_with('.')) {
        (true, true) => format!("0{trimmed}s"),
        (true, false) => format!("{trimmed}s"),
        (false, true) => format!("0{trimmed}"),
        (false, false) => trimmed.to_string(),
    };
    PARSER
        .parse_unsigned_duration(&with_unit)
        .map_err(|e| DurationError {
            text: trimmed.to_string(),
            why: reason(&e),
        })
}

/// jiff's message after its "failed to parse input in the ... format: " preamble.
fn reason(e: &jiff::Error) -> String {
    let full = e.to_string();
    match full.split_once("format: ") {
        Some((_, why)) => why.to_string(),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_it_always_did() {
        for (text, secs) in [
            ("90", 90.0),
            ("90s", 90.0),
            ("5m", 300.0),
            ("2h", 7200.0),
            ("1.5h", 5400.0),
            ("0.5", 0.5),
            (".5m", 30.0),
            (" 30m ", 1800.0),
        ] {
            assert_eq!(parse(text), Ok(Duration::from_secs_f64(secs)), "{text}");
        }
    }

    #[test]
    fn accepts_combined_units() {
        // The hand-written parser took one number and one unit: `1h30m` was refused.
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1h 30m 15s"), Ok(Duration::from_secs(5415)));
        assert_eq!(parse("2 hours 5 minutes"), Ok(Duration::from_secs(7500)));
    }

    #[test]
    fn refuses_out_of_range_without_panicking() {
        // `Duration::from_secs_f64` panicked on these.
        for text in ["99999999999999999999999h", "18446744073709551616", "-5m"] {
            let e = parse(text).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("`{text}` is not a duration")),
                "{e}"
            );
        }
        for text in ["", "5d", "1w", "abc", "5 parsecs", "1.2.3s"] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
