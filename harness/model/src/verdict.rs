//! Verdicts: each expectation judged against the ledger and the metrics.
//!
//! Pass, Fail or Unknown. Unknown outranks Pass: a run that could not be judged
//! (no uploads, failed uploads, a checker crash) is never reported as passing.

use serde::Serialize;

use crate::check::{Findings, Ledger};
use crate::history::{DrainEnd, GroupOffsets, History};
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
    // With bounds on lost notifications, the scenario judges notification-stage
    // losses there (named, within bounds); exactly-once then covers the rest.
    let losses_judged_apart = expectations.iter().any(|e| matches!(e, Expectation::NotificationsLost { .. }));
    expectations
        .iter()
        .map(|e| {
            let (verdict, detail) = match e {
                Expectation::ExactlyOnce => exactly_once(history, ledger, losses_judged_apart),
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
                    Some(r) if r >= *min_per_second => {
                        (Verdict::Pass, format!("{r:.1} thumbnails/s over {:.1}s", metrics.throughput.window_seconds))
                    }
                    Some(r) => (
                        Verdict::Fail,
                        format!("{r:.1} thumbnails/s over {:.1}s, below the minimum {min_per_second}/s", metrics.throughput.window_seconds),
                    ),
                },
                Expectation::NotificationsLost { at_least, at_most } => notifications_lost(history, ledger, *at_least, *at_most),
                Expectation::FaultsTookEffect { planned } => faults_took_effect(history, *planned),
                // Judged by the run from the environment's diagnosis; a history
                // means the environment started, so nothing was diagnosed.
                Expectation::MisconfigurationReported => {
                    (Verdict::Fail, "the environment started and notifications arrived: the misconfiguration was not detected".to_string())
                }
                Expectation::SkippedInputs { planned } => skipped_inputs(history, ledger, *planned),
            };
            ExpectationResult { id: e.id(), expected: e.describe(), verdict, detail }
        })
        .collect()
}

/// Damage judged against the ledger: the uploads with no event on the topic, named.
fn notifications_lost(history: &History, ledger: &Ledger, at_least: Option<u32>, at_most: Option<u32>) -> (Verdict, String) {
    if ledger.entries.is_empty() {
        return (Verdict::Unknown, "no uploads were acknowledged: nothing to judge".to_string());
    }
    let lost = &ledger.findings.lost_events;
    let n = lost.len() as u32;
    let keys = if lost.is_empty() { String::new() } else { format!(": {}", list(lost.iter().map(String::as_str))) };
    let what = format!("{n} of {} uploads lost at the notification stage (no event on the topic){keys}", ledger.entries.len());
    let low = at_least.is_some_and(|lo| n < lo);
    let high = at_most.is_some_and(|hi| n > hi);
    if low || high {
        let bound =
            if low { format!("expected at least {}", at_least.unwrap_or(0)) } else { format!("expected at most {}", at_most.unwrap_or(0)) };
        return (Verdict::Fail, format!("{what}; {bound}"));
    }
    // Damage that the harness could not have observed (no drain) is not proof.
    if n > 0 && !history.drained && at_least.is_some() {
        return (Verdict::Pass, format!("{what}; note: the drain timeout ran out, so late events were given their chance"));
    }
    (Verdict::Pass, what)
}

/// Each hostile input, named with what became of it: not an image → no thumbnail;
/// a truncated JPEG → none or one valid one; a valid image (huge, long key) → one
/// valid thumbnail. And the processor never exited on its own (exits the
/// scenario's `processor_crash` faults caused are theirs).
fn skipped_inputs(history: &History, ledger: &Ledger, planned: u32) -> (Verdict, String) {
    use crate::scenario::HostileRule;
    let mut named = Vec::new();
    let mut wrong = Vec::new();
    for h in &ledger.hostile {
        let seen = match (h.kind.rule(), h.outputs, h.valid_outputs) {
            (_, 0, _) => Ok("skipped".to_string()),
            (HostileRule::SkipOrThumbnail, 1, 1) => Ok("one valid thumbnail".to_string()),
            (HostileRule::Skip, n, _) => Err(format!("{n} thumbnail version(s), though it is not an image")),
            (_, n, v) => Err(format!("{n} thumbnail versions, {v} valid{}", invalid_note(&h.invalid))),
        };
        match seen {
            Ok(s) => named.push(format!("{} {} {s}", h.kind.key(), short(&h.key))),
            Err(s) => wrong.push(format!("{} {}: {s}", h.kind.key(), short(&h.key))),
        }
    }
    for e in ledger.entries.iter() {
        let Some(kind) = e.hostile else { continue };
        match (e.outputs, e.valid_outputs) {
            (1, 1) => named.push(format!("{} {} one valid thumbnail", kind.key(), short(&e.key))),
            (0, _) => wrong.push(format!("{} {}: no thumbnail, though it is a valid image", kind.key(), short(&e.key))),
            (n, v) => wrong.push(format!("{} {}: {n} thumbnail versions, {v} valid", kind.key(), short(&e.key))),
        }
    }
    let crashes = history.faults.iter().filter(|f| f.kind == "processor_crash").count();
    let exits: Vec<String> = history.processor_exits.iter().skip(crashes).map(|x| x.status.clone()).collect();
    if !exits.is_empty() {
        wrong.push(format!("the processor exited {} time(s) on its own ({})", exits.len(), list(exits.iter())));
    }
    let recorded = (ledger.hostile.len() + ledger.entries.iter().filter(|e| e.hostile.is_some()).count()) as u32;
    let all = named.iter().chain(wrong.iter()).cloned().collect::<Vec<_>>();
    if !wrong.is_empty() {
        return (Verdict::Fail, format!("{}; all hostile inputs: {}", wrong.join("; "), all.join(", ")));
    }
    if recorded < planned {
        return (
            Verdict::Unknown,
            format!("only {recorded} of the {planned} hostile inputs were uploaded (see the failed uploads): {}", all.join(", ")),
        );
    }
    (Verdict::Pass, format!("{recorded} hostile inputs, the processor never exited: {}", all.join(", ")))
}

fn invalid_note(invalid: &[String]) -> String {
    if invalid.is_empty() {
        String::new()
    } else {
        format!(" ({})", list(invalid.iter()))
    }
}

/// A key for a message: the long one is cut down to its ends.
fn short(key: &str) -> String {
    if key.len() <= 60 {
        return key.to_string();
    }
    let head: String = key.chars().take(28).collect();
    let tail: String = key.chars().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
    format!("{head}…{tail} ({} bytes)", key.len())
}

/// Every planned fault must have a window with a proven effect and a proven heal;
/// a fault that did not take effect makes the run Unknown, never Pass.
fn faults_took_effect(history: &History, planned: u32) -> (Verdict, String) {
    let mut problems = Vec::new();
    let injected = history.faults.len() as u32;
    if injected < planned {
        problems.push(format!("only {injected} of {planned} faults were injected (the workload ended before the others were due)"));
    }
    for f in &history.faults {
        let name = format!("fault #{} {} on {}", f.index, f.kind, f.target);
        if f.effect_seen_at.is_none() {
            problems.push(format!("{name} was never shown to take effect ({})", f.proof));
        } else if f.healed_at.is_none() {
            problems.push(format!("{name} was not healed"));
        } else if f.recovered_at.is_none() {
            problems.push(format!("{name} was healed but traffic was not shown to recover"));
        }
    }
    if !problems.is_empty() {
        return (Verdict::Unknown, format!("the faults cannot be relied on: {}", problems.join("; ")));
    }
    let shown: Vec<String> = history
        .faults
        .iter()
        .map(|f| {
            let ms = |a: Option<u64>, b: u64| a.map_or(0.0, |a| a.saturating_sub(b) as f64 / 1000.0);
            format!(
                "#{} {} (effect after {:.0}ms, recovered {:.0}ms after heal)",
                f.index,
                f.kind,
                ms(f.effect_seen_at, f.injected_at),
                ms(f.recovered_at, f.healed_at.unwrap_or(0))
            )
        })
        .collect();
    (Verdict::Pass, format!("{injected} faults injected and proven: {}", shown.join(", ")))
}

/// Every upload has exactly one valid thumbnail and there are no others. With
/// `losses_judged_apart`, uploads whose event never reached the topic are left to
/// `notifications_lost` (noted here, not failed twice).
/// The width every thumbnail has, when the invalid ones are exactly the images and all
/// are that wide: a processor built for another size (a student's own, making 200-pixel
/// thumbnails), not a broken one.
fn one_wrong_width(history: &History, invalid: usize) -> Option<u32> {
    let widths: Vec<u32> = history
        .outputs
        .iter()
        .filter(|o| !o.key.starts_with(crate::HARNESS_KEY_PREFIX))
        .filter_map(|o| match o.inspection {
            crate::history::Inspection::Image { width, .. } => Some(width),
            _ => None,
        })
        .collect();
    let first = *widths.first()?;
    (widths.len() == invalid && widths.iter().all(|&w| w == first)).then_some(first)
}

fn exactly_once(history: &History, ledger: &Ledger, losses_judged_apart: bool) -> (Verdict, String) {
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
    let mut excused = Vec::new();
    let lost_outputs: Vec<&String> = f
        .lost_outputs
        .iter()
        .filter(|k| {
            let excuse = losses_judged_apart && f.lost_events.contains(k);
            if excuse {
                excused.push(k.as_str());
            }
            !excuse
        })
        .collect();
    if !lost_outputs.is_empty() {
        parts.push(missing_thumbnails(history, f, &lost_outputs, n));
    }
    if !f.duplicate_outputs.is_empty() {
        parts.push(format!(
            "{} images have more than one thumbnail version: {}",
            f.duplicate_outputs.len(),
            list(f.duplicate_outputs.iter().map(|(k, c)| format!("{k} (×{c})")))
        ));
    }
    // An upload that failed on the client (e.g. MinIO went down mid-request) may
    // still have been stored; its thumbnail is then correct work, not a phantom.
    let (ambiguous, phantoms): (Vec<&String>, Vec<&String>) =
        f.phantom_outputs.iter().partition(|k| history.upload_failures.iter().any(|u| &u.key == *k));
    if !phantoms.is_empty() {
        parts.push(format!("{} thumbnails have no matching upload: {}", phantoms.len(), list(phantoms.iter().map(|k| k.as_str()))));
    }
    if !f.invalid_outputs.is_empty() {
        let mut part = format!(
            "{} thumbnails are invalid: {}",
            f.invalid_outputs.len(),
            list(f.invalid_outputs.iter().map(|(k, why)| format!("{k} ({why})")))
        );
        if let Some(w) = one_wrong_width(history, f.invalid_outputs.len()) {
            part.push_str(&format!(
                "; every thumbnail is {w} pixels wide: if the processor makes {w}-pixel thumbnails on purpose, \
                 say so in the scenario with `pipeline: {{ thumbnail_width: {w} }}`"
            ));
        }
        parts.push(part);
    }
    let mut notes = notification_notes(f, history);
    if !excused.is_empty() {
        notes.push(format!(
            "note: {} uploads never had an event on the topic and are judged by notifications_lost, not here: {}",
            excused.len(),
            list(excused.iter().copied())
        ));
    }
    if !ambiguous.is_empty() {
        notes.push(format!(
            "note: {} uploads failed on the client but MinIO stored them and they got a thumbnail: {}",
            ambiguous.len(),
            list(ambiguous.iter().map(|k| k.as_str()))
        ));
    }
    if !parts.is_empty() {
        return (Verdict::Fail, join_sentences(parts, notes));
    }
    // Uploads refused while a fault had MinIO down were refused to the client, which
    // knows; they are expected, not a reason the run cannot be judged.
    let (during_fault, unexplained): (Vec<_>, Vec<_>) =
        history.upload_failures.iter().partition(|u| failed_during_minio_fault(history, u.at));
    if !during_fault.is_empty() {
        notes.push(format!(
            "note: {} uploads were refused while MinIO was down (fault), as expected: {}",
            during_fault.len(),
            list(during_fault.iter().map(|u| u.key.as_str()))
        ));
    }
    if !unexplained.is_empty() {
        let keys = list(unexplained.iter().map(|u| u.key.as_str()));
        return (
            Verdict::Unknown,
            join_sentences(
                vec![format!(
                    "all {n} acknowledged images have exactly one thumbnail, but {} uploads failed and cannot be judged: {keys}",
                    unexplained.len()
                )],
                notes,
            ),
        );
    }
    let judged = if excused.is_empty() {
        format!("all {n} images have exactly one valid thumbnail")
    } else {
        format!("all {} images whose event reached the topic have exactly one valid thumbnail", n - excused.len())
    };
    (Verdict::Pass, join_sentences(vec![judged], notes))
}

/// "7 of 30 images have no thumbnail: …", split by why: dropped by the processor
/// (its group committed the event), unprocessed (not committed when the drain
/// ended), never announced (no event on the topic).
fn missing_thumbnails(history: &History, f: &Findings, missing: &[&String], n: usize) -> String {
    let of = |class: &[String]| -> Vec<&str> { missing.iter().filter(|k| class.contains(k)).map(|k| k.as_str()).collect() };
    let (lost, unprocessed, no_event) = (of(&f.lost_by_processor), of(&f.unprocessed), of(&f.lost_events));
    let unclassified: Vec<&str> =
        missing.iter().map(|k| k.as_str()).filter(|k| !lost.contains(k) && !unprocessed.contains(k) && !no_event.contains(k)).collect();
    let group = history.group.as_ref();
    let name = group.map_or_else(|| "the processor's group".to_string(), |g| format!("group {}", g.group));
    let mut why = Vec::new();
    if !lost.is_empty() {
        why.push(format!(
            "{} lost ({name} committed their events, yet no thumbnail exists: the processor dropped them): {}",
            lost.len(),
            list(lost.iter())
        ));
    }
    if !unprocessed.is_empty() {
        let when = if history.drain_end == DrainEnd::Interrupted { "when the run was interrupted" } else { "when the drain ended" };
        let nothing = match group {
            Some(g) if g.committed.is_empty() => format!(
                "; {name} has committed nothing on topic {}: a processor that reads with another group id than KAFKA_GROUP_ID looks like this",
                g.topic
            ),
            _ => String::new(),
        };
        why.push(format!(
            "{} unprocessed ({name} had not committed their events {when}: a backlog, or a stuck or slow processor{nothing}): {}",
            unprocessed.len(),
            list(unprocessed.iter())
        ));
    }
    if !no_event.is_empty() {
        why.push(format!("{} never had an event on the topic (lost at the notification stage): {}", no_event.len(), list(no_event.iter())));
    }
    if !unclassified.is_empty() {
        let reason = match group {
            Some(GroupOffsets { error: Some(e), .. }) => format!("{name}'s committed offsets could not be read: {e}"),
            _ => "the processor's committed offsets were not read".to_string(),
        };
        why.push(format!("{} not told lost from unprocessed ({reason}): {}", unclassified.len(), list(unclassified.iter())));
    }
    format!("{} of {n} images have no thumbnail: {}", missing.len(), why.join("; "))
}

/// Slack after a MinIO fault's recovery during which a refused upload still counts
/// as refused by the fault (requests in flight when it came back).
const MINIO_FAULT_SLACK_MICROS: u64 = 2_000_000;

fn failed_during_minio_fault(history: &History, at: u64) -> bool {
    history.faults.iter().any(|f| {
        f.target == "minio"
            && at >= f.injected_at
            && at <= f.recovered_at.or(f.healed_at).map_or(u64::MAX, |t| t + MINIO_FAULT_SLACK_MICROS)
    })
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
    let lost_but_output: Vec<&str> = f.lost_events.iter().filter(|k| !f.lost_outputs.contains(k)).map(String::as_str).collect();
    if !lost_but_output.is_empty() {
        notes.push(format!(
            "note: {} images got a thumbnail although the harness saw no event for them: {}",
            lost_but_output.len(),
            list(lost_but_output.into_iter())
        ));
    }
    match if history.drained { DrainEnd::Complete } else { history.drain_end } {
        DrainEnd::Complete => {}
        DrainEnd::Settled => notes.push(
            "note: the drain ended early: the processor's group had committed every event and no thumbnail arrived for the quiet period"
                .to_string(),
        ),
        DrainEnd::Timeout => notes.push("note: the drain timeout ran out before every upload was accounted for".to_string()),
        DrainEnd::Interrupted => notes.push("note: the run was interrupted before the drain".to_string()),
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
