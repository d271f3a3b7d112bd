//! On a terminal: an overall bar plus one spinner line per active host; everything else is
//! printed above the bars.

use super::{Event, Settings, plain};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::HashMap;
use std::time::Duration;

/// The bars on a terminal.
pub struct Tty {
    multi: MultiProgress,
    overall: ProgressBar,
    hosts: HashMap<String, ProgressBar>,
}

impl Tty {
    pub fn new(total: usize, title: &str) -> Tty {
        let multi = MultiProgress::new();
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template("{prefix:.bold} [{bar:30}] {pos}/{len} hosts {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        overall.set_prefix(title.to_string());
        overall.enable_steady_tick(Duration::from_millis(200));
        Tty {
            multi,
            overall,
            hosts: HashMap::new(),
        }
    }

    pub fn event(&mut self, e: &Event, s: &Settings) {
        match e {
            Event::HostStarted { host, .. } => {
                let pb = self.multi.add(ProgressBar::new_spinner());
                pb.set_style(
                    ProgressStyle::with_template("  {spinner} {prefix:<16} {msg}")
                        .expect("valid template"),
                );
                pb.set_prefix(host.clone());
                pb.set_message("connecting");
                pb.enable_steady_tick(Duration::from_millis(120));
                self.hosts.insert(host.clone(), pb);
            }
            Event::Phase { host, phase } => {
                if let Some(pb) = self.hosts.get(host) {
                    pb.set_message(phase.to_string());
                }
            }
            Event::StepBegin {
                host,
                label,
                index,
                total,
            } => {
                if let Some(pb) = self.hosts.get(host) {
                    pb.set_message(format!("[{}/{}] {label}", index + 1, total));
                }
            }
            Event::Progress { host, text } => {
                // Pool operations: the spinner line is the display; no extra line.
                if !self.hosts.contains_key(host) {
                    let pb = self.multi.add(ProgressBar::new_spinner());
                    pb.set_style(
                        ProgressStyle::with_template("  {spinner} {prefix:<16} {msg}")
                            .expect("valid template"),
                    );
                    pb.set_prefix(host.clone());
                    pb.enable_steady_tick(Duration::from_millis(120));
                    self.hosts.insert(host.clone(), pb);
                }
                if let Some(pb) = self.hosts.get(host) {
                    pb.set_message(text.clone());
                }
                return;
            }
            Event::NodeFinished { host, .. } => {
                if let Some(pb) = self.hosts.remove(host) {
                    pb.finish_and_clear();
                    self.multi.remove(&pb);
                }
                self.overall.inc(1);
            }
            Event::HostFinished(r) => {
                if let Some(pb) = self.hosts.remove(&r.host) {
                    pb.finish_and_clear();
                    self.multi.remove(&pb);
                }
                self.overall.inc(1);
            }
            _ => {}
        }
        if let Some(line) = plain::line(e, s) {
            let _ = self.multi.println(line.trim_end_matches('\n'));
        }
    }

    pub fn finish(self) {
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}
