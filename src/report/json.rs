//! `--output json`: one JSON object per event, on stdout.

use super::Event;

/// Prints `e` as one JSON line on stdout (its `event` field names its kind).
pub fn event(e: &Event) {
    if let Ok(s) = serde_json::to_string(e) {
        println!("{s}");
    }
}
