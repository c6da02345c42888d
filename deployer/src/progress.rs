//! The live display of a stack operation, driven by stack events: on a
//! terminal one spinner line per resource with its status and elapsed time,
//! failure reasons in red; elsewhere (CI, pipes, `--output json`) plain
//! timestamped lines on stderr. The printer decides which
//! ([`crate::output::Printer::progress`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::deploy::stack::{Event, EventSink};

pub struct StackProgress {
    quiet: bool,
    bars: Option<Bars>,
    /// Per resource: when its current operation started.
    since: BTreeMap<String, Instant>,
    pub failures: Vec<Event>,
}

struct Bars {
    multi: MultiProgress,
    lines: BTreeMap<String, ProgressBar>,
    style: ProgressStyle,
    done: ProgressStyle,
    /// Failure reasons in red, unless `NO_COLOR` is set.
    color: bool,
}

impl std::fmt::Debug for StackProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackProgress")
            .field("fancy", &self.bars.is_some())
            .finish_non_exhaustive()
    }
}

impl StackProgress {
    pub fn new(quiet: bool, fancy: bool) -> Self {
        let bars = (fancy && !quiet).then(|| Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            lines: BTreeMap::new(),
            style: ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            done: ProgressStyle::with_template("  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            color: colour_allowed(),
        });
        Self {
            quiet,
            bars,
            since: BTreeMap::new(),
            failures: Vec::new(),
        }
    }

    /// One line per failed resource: `id (type): reason`.
    pub fn failure_lines(&self) -> String {
        use std::fmt::Write as _;
        self.failures.iter().fold(String::new(), |mut out, f| {
            let reason = f.reason.as_deref().unwrap_or(&f.status);
            let _ = write!(out, "\n  {} ({}): {reason}", f.logical_id, f.resource_type);
            out
        })
    }

    /// Leaves every resource's last line on screen.
    pub fn finish(&mut self) {
        if let Some(bars) = &self.bars {
            for line in bars.lines.values() {
                if !line.is_finished() {
                    line.finish();
                }
            }
        }
    }
}

impl EventSink for StackProgress {
    fn event(&mut self, event: &Event) {
        if event.failed() {
            self.failures.push(event.clone());
        }
        if self.quiet {
            return;
        }
        let started = *self
            .since
            .entry(event.logical_id.clone())
            .or_insert_with(Instant::now);
        let elapsed = started.elapsed().as_secs_f64();
        let settled = !event.status.ends_with("_IN_PROGRESS");
        if settled {
            self.since.remove(&event.logical_id);
        }
        let line = format!(
            "{:<24} {:<32} {:<20} {:>6.1}s",
            event.logical_id, event.resource_type, event.status, elapsed
        );
        if let Some(bars) = &mut self.bars {
            let bar = bars
                .lines
                .entry(event.logical_id.clone())
                .or_insert_with(|| {
                    let bar = bars.multi.add(ProgressBar::new_spinner());
                    bar.set_style(bars.style.clone());
                    bar.enable_steady_tick(Duration::from_millis(100));
                    bar
                });
            let text = match &event.reason {
                Some(reason) if event.failed() && bars.color => {
                    format!("{line}\n    \x1b[31m{reason}\x1b[0m")
                }
                Some(reason) if event.failed() => format!("{line}\n    {reason}"),
                _ => line,
            };
            if settled {
                bar.set_style(bars.done.clone());
                bar.finish_with_message(text);
            } else {
                bar.set_message(text);
            }
        } else {
            eprintln!("{} {line}", clock());
            if let (Some(reason), true) = (&event.reason, event.failed()) {
                eprintln!("{}     reason: {reason}", clock());
            }
        }
    }
}

/// Colour unless `NO_COLOR` is set to anything non-empty (no-color.org).
pub fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `HH:MM:SS` in UTC, for plain progress lines.
pub fn clock() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_collected_even_when_quiet() {
        let mut progress = StackProgress::new(true, false);
        progress.event(&Event {
            id: "1".to_owned(),
            logical_id: "PhotoTable".to_owned(),
            resource_type: "AWS::DynamoDB::Table".to_owned(),
            status: "CREATE_FAILED".to_owned(),
            reason: Some("limit exceeded".to_owned()),
        });
        assert_eq!(progress.failures.len(), 1);
        assert_eq!(
            progress.failures[0].reason.as_deref(),
            Some("limit exceeded")
        );
    }

    #[test]
    fn clock_is_hh_mm_ss() {
        let text = clock();
        assert_eq!(text.len(), 8);
        assert_eq!(text.as_bytes()[2], b':');
    }
}
