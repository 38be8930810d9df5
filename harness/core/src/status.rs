//! Live progress of long steps (building MinIO, fetching Kafka's jars, making a root
//! filesystem): the time so far and the step's latest output, so a newcomer can tell
//! progress from a hang. On a terminal it is one live line (indicatif); elsewhere (CI
//! logs, `2>file`) a plain line every [`PLAIN_EVERY`] through the caller's progress.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain progress line is written when there is no live line.
pub const PLAIN_EVERY: Duration = Duration::from_secs(30);

static LIVE: AtomicBool = AtomicBool::new(false);

/// Whether long steps may draw a live line on stderr. The binary decides (stderr is
/// a terminal and the user did not ask for quiet); the library never draws by itself.
pub fn set_live(on: bool) {
    LIVE.store(on, Ordering::Relaxed);
}

/// Watches one long step; [`StepWatch::update`] is called about once a second.
pub(crate) struct StepWatch {
    label: String,
    started: Instant,
    last_plain: Instant,
    bar: Option<ProgressBar>,
}

impl StepWatch {
    pub(crate) fn start(label: &str) -> Self {
        let bar = LIVE.load(Ordering::Relaxed).then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix} {elapsed} · {wide_msg}") {
                bar.set_style(style);
            }
            bar.set_prefix(label.to_string());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        StepWatch { label: label.to_string(), started: now, last_plain: now, bar }
    }

    /// `lines` of output so far, the latest being `last`.
    pub(crate) fn update(&mut self, lines: u64, last: &str, progress: &dyn Fn(&str)) {
        let last = last.trim();
        match &self.bar {
            Some(bar) => bar.set_message(format!("{lines} lines of output · {last}")),
            None if self.last_plain.elapsed() >= PLAIN_EVERY => {
                self.last_plain = Instant::now();
                let last: String = last.chars().take(120).collect();
                progress(&format!(
                    "  … {}: {} so far, {lines} lines of output (latest: {last})",
                    self.label,
                    elapsed(self.started.elapsed())
                ));
            }
            None => {}
        }
    }

    /// Clears the live line; says how long the step took.
    pub(crate) fn finish(self, ok: bool, progress: &dyn Fn(&str)) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let how = if ok { "done" } else { "failed" };
        progress(&format!("  … {}: {how} after {}", self.label, elapsed(self.started.elapsed())));
    }
}

/// `3m 08s`, `42s`.
pub(crate) fn elapsed(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn plain_lines_come_at_most_every_interval_and_the_end_is_said() {
        let said = RefCell::new(Vec::new());
        let progress = |m: &str| said.borrow_mut().push(m.to_string());
        let mut w = StepWatch::start("go install x");
        w.update(3, "pkg/a", &progress);
        assert!(said.borrow().is_empty(), "nothing before the first interval: {:?}", said.borrow());
        w.last_plain -= PLAIN_EVERY;
        w.started -= Duration::from_secs(95);
        w.update(412, "github.com/minio/minio/cmd\n", &progress);
        w.update(413, "next", &progress);
        w.finish(true, &progress);
        let said = said.borrow();
        assert_eq!(said.len(), 2, "{said:?}");
        assert_eq!(said[0], "  … go install x: 1m 35s so far, 412 lines of output (latest: github.com/minio/minio/cmd)");
        assert_eq!(said[1], "  … go install x: done after 1m 35s");
    }
}
