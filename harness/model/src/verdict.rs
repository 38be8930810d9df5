//! Verdicts: each expectation judged against the ledger and the metrics.
//!
//! Pass, Fail or Unknown. Unknown outranks Pass: a run that could not be judged
//! (no uploads, failed uploads, a checker crash) is never reported as passing.

use serde::Serialize;

use crate::check::{Findings, Ledger};
use crate::history::History;
use crate::metrics::Metrics;
use crate::scenario::{units::format_duration, Expectation};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Unknown,
    Fail,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Unknown => "UNKNOWN",
        }
    }
}

/// One expectation's outcome; becomes one JUnit testcase.
#[derive(Clone, Debug, Serialize)]
pub struct ExpectationResult {
    pub id: String,
    pub expected: String,
    pub verdict: Verdict,
    /// What was found, where and how many, in one or two sentences.
    pub detail: String,
}

/// The run's verdict: Fail if any failed, else Unknown if any is unknown or there
/// are none, else Pass.
pub fn overall(results: &[ExpectationResult]) -> Verdict {
    results.iter().map(|r| r.verdict).max().unwrap_or(Verdict::Unknown)
}

/// How many keys a message lists before "and N more".
const KEYS_SHOWN: usize = 10;

pub fn judge(expectations: &[Expectation], history: &History, ledger: &Ledger, metrics: &Metrics) -> Vec<ExpectationResult> {
    expectations
        .iter()
        .map(|e| {
            let (verdict, detail) = match e {
                Expectation::ExactlyOnce => exactly_once(history, ledger),
                Expectation::Latency { stage, quantile, bound } => match metrics.latency(*stage) {
                    None => (Verdict::Unknown, format!("no {} latency samples: nothing arrived at that stage", stage.label())),
                    Some(s) => {
                        let got_ms = s.get_ms(*quantile);
                        let bound_ms = bound.as_secs_f64() * 1000.0;
                        let got = format_duration(std::time::Duration::from_secs_f64(got_ms / 1000.0));
                        if got_ms <= bound_ms {
                            (Verdict::Pass, format!("{} {} latency {got} (n={})", quantile.key(), stage.label(), s.count))
                        } else {
                            (
                                Verdict::Fail,
                                format!(
                                    "{} {} latency {got} exceeds {} (n={})",
                                    quantile.key(),
                                    stage.label(),
                                    format_duration(*bound),
                                    s.count
                                ),
                            )
                        }
                    }
                },
                Expectation::Throughput { min_per_second } => match metrics.throughput.outputs_per_second {
                    None => (Verdict::Unknown, "fewer than two thumbnails: no throughput to measure".to_string()),
                    Some(r) if r >= *min_per_second => (
                        Verdict::Pass,
                        format!("{r:.1} thumbnails/s over {:.1}s", metrics.throughput.window_seconds),
                    ),
                    Some(r) => (
                        Verdict::Fail,
                        format!(
                            "{r:.1} thumbnails/s over {:.1}s, below the minimum {min_per_second}/s",
                            metrics.throughput.window_seconds
                        ),
                    ),
                },
            };
            ExpectationResult { id: e.id(), expected: e.describe(), verdict, detail }
        })
        .collect()
}

fn exactly_once(history: &History, ledger: &Ledger) -> (Verdict, String) {
    let n = ledger.entries.len();
    if n == 0 {
        let why = if history.upload_failures.is_empty() {
            "no uploads were acknowledged: nothing to judge".to_string()
        } else {
            format!("no uploads were acknowledged ({} failed): nothing to judge", history.upload_failures.len())
        };
        return (Verdict::Unknown, why);
    }
    let f = &ledger.findings;
    let mut parts = Vec::new();
    if !f.lost_outputs.is_empty() {
        let lost_at_notification = f.lost_outputs.iter().filter(|k| f.lost_events.contains(k)).count();
        let mut s = format!(
            "{} of {n} images have no thumbnail: {}",
            f.lost_outputs.len(),
            list(f.lost_outputs.iter().map(String::as_str))
        );
        if lost_at_notification > 0 {
            s.push_str(&format!(
                " ({lost_at_notification} of them never had an event on the topic: lost at the notification stage)"
            ));
        }
        parts.push(s);
    }
    if !f.duplicate_outputs.is_empty() {
        parts.push(format!(
            "{} images have more than one thumbnail version: {}",
            f.duplicate_outputs.len(),
            list(f.duplicate_outputs.iter().map(|(k, c)| format!("{k} (×{c})")))
        ));
    }
    if !f.phantom_outputs.is_empty() {
        parts.push(format!(
            "{} thumbnails have no matching upload: {}",
            f.phantom_outputs.len(),
            list(f.phantom_outputs.iter().map(String::as_str))
        ));
    }
    if !f.invalid_outputs.is_empty() {
        parts.push(format!(
            "{} thumbnails are invalid: {}",
            f.invalid_outputs.len(),
            list(f.invalid_outputs.iter().map(|(k, why)| format!("{k} ({why})")))
        ));
    }
    let notes = notification_notes(f, history);
    if !parts.is_empty() {
        return (Verdict::Fail, join_sentences(parts, notes));
    }
    if !history.upload_failures.is_empty() {
        let keys = list(history.upload_failures.iter().map(|u| u.key.as_str()));
        return (
            Verdict::Unknown,
            join_sentences(
                vec![format!(
                    "all {n} acknowledged images have exactly one thumbnail, but {} uploads failed and cannot be judged: {keys}",
                    history.upload_failures.len()
                )],
                notes,
            ),
        );
    }
    (Verdict::Pass, join_sentences(vec![format!("all {n} images have exactly one valid thumbnail")], notes))
}

/// Notification-stage observations that did not break the output stage but are
/// worth a line (e.g. duplicates MinIO sent that the processor absorbed).
fn notification_notes(f: &Findings, history: &History) -> Vec<String> {
    let mut notes = Vec::new();
    if !f.duplicate_events.is_empty() {
        notes.push(format!(
            "note: {} images had duplicate events on the topic: {}",
            f.duplicate_events.len(),
            list(f.duplicate_events.iter().map(|(k, c)| format!("{k} (×{c})")))
        ));
    }
    let lost_but_output: Vec<&str> =
        f.lost_events.iter().filter(|k| !f.lost_outputs.contains(k)).map(String::as_str).collect();
    if !lost_but_output.is_empty() {
        notes.push(format!(
            "note: {} images got a thumbnail although the harness saw no event for them: {}",
            lost_but_output.len(),
            list(lost_but_output.into_iter())
        ));
    }
    if !history.drained {
        notes.push("note: the drain timeout ran out before every upload was accounted for".to_string());
    }
    notes
}

fn join_sentences(mut parts: Vec<String>, notes: Vec<String>) -> String {
    parts.extend(notes);
    parts.join("; ")
}

/// `a, b, c and 7 more`
pub fn list<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    let all: Vec<S> = items.collect();
    let shown: Vec<&str> = all.iter().take(KEYS_SHOWN).map(AsRef::as_ref).collect();
    let mut s = shown.join(", ");
    if all.len() > KEYS_SHOWN {
        s.push_str(&format!(" and {} more", all.len() - KEYS_SHOWN));
    }
    s
}
