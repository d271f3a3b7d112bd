//! One plain line per event, for CI logs and pipes.

use super::{Event, HostOutcome, Settings, StepStatus, indent};

/// Writes the plain line(s) of `e` through `out`, if it has any.
pub fn event(e: &Event, s: &Settings, out: &mut dyn FnMut(&str)) {
    if let Some(text) = line(e, s) {
        out(text.trim_end_matches('\n'));
    }
}

/// The text for an event, shared with the terminal reporter.
pub fn line(e: &Event, s: &Settings) -> Option<String> {
    match e {
        Event::HostStarted { .. } | Event::StepBegin { .. } => None,
        Event::Phase { host, phase } => s.verbose.then(|| format!("{host}: {phase}")),
        Event::Step {
            host,
            label,
            status,
            summary,
            diff,
        } => {
            let summary = summary
                .as_deref()
                .map(|x| format!(" ({x})"))
                .unwrap_or_default();
            let head = match status {
                StepStatus::Ok if !s.verbose => return None,
                StepStatus::Ok => format!("{host}: ok       {label}"),
                StepStatus::Pending => {
                    if !s.show_diff && !s.verbose {
                        return None;
                    }
                    format!("{host}: change   {label}{summary}")
                }
                StepStatus::WouldChange => format!("{host}: ~ {label}{summary}"),
                StepStatus::Changed => format!("{host}: changed  {label}{summary}"),
                StepStatus::Failed => format!("{host}: FAILED   {label}{summary}"),
            };
            let show_diff =
                s.show_diff && matches!(status, StepStatus::WouldChange | StepStatus::Pending);
            Some(match diff {
                Some(d) if show_diff => format!("{head}\n{}", indent(d, "    ")),
                _ => head,
            })
        }
        Event::Script { host, what, text } => Some(format!(
            "{host}: {what} script:\n{}",
            indent(text, "    | ")
        )),
        Event::HostFinished(r) => Some(match &r.outcome {
            HostOutcome::Ok => format!(
                "{}: done, ok={} changed={} ({:.1} s)",
                r.host, r.ok, r.changed, r.seconds
            ),
            HostOutcome::Failed(m) => format!("{}: FAILED: {m}", r.host),
            HostOutcome::Unreachable(m) => format!("{}: UNREACHABLE: {m}", r.host),
        }),
        Event::Note {
            host: Some(h),
            text,
        } => Some(format!("{h}: {text}")),
        Event::Note { host: None, text } => Some(text.clone()),
        Event::Progress { host, text } | Event::NodeFinished { host, text, .. } => {
            Some(format!("{host}: {text}"))
        }
    }
}
