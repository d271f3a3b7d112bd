//! `--output json`: one JSON object per event, on stdout.

use super::Event;

pub fn event(e: &Event) {
    if let Ok(s) = serde_json::to_string(e) {
        println!("{s}");
    }
}
