//! The checker: a pure function from the history to a per-upload ledger and findings.
//!
//! The output stage (thumbnails) is what "exactly once" is judged on; the notification
//! stage (events on the topic) explains where a failure came from.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::history::{EventSeen, GroupOffsets, History, Inspection, Micros};
use crate::scenario::{HostileKind, HostileRule};
use crate::HARNESS_KEY_PREFIX;

/// What the checker needs to know besides the history.
#[derive(Clone, Debug)]
pub struct CheckSpec {
    pub thumbnail_width: u32,
}

/// One upload's row: how many events and output versions it got.
#[derive(Clone, Debug, Serialize)]
pub struct LedgerEntry {
    pub key: String,
    pub acked_at: Micros,
    pub events: u32,
    pub first_event_at: Option<Micros>,
    pub outputs: u32,
    pub valid_outputs: u32,
    pub first_output_at: Option<Micros>,
    /// For an upload with no thumbnail: why, as far as the harness can tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<Missing>,
    /// A hostile input that is a valid image (`huge`, `long_key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostile: Option<HostileKind>,
}

/// A hostile input that is not a valid image (judged by `skipped_inputs`, not
/// `exactly_once`): what the processor made of it.
#[derive(Clone, Debug, Serialize)]
pub struct HostileEntry {
    pub key: String,
    pub kind: HostileKind,
    pub events: u32,
    pub outputs: u32,
    pub valid_outputs: u32,
    /// Why each invalid thumbnail is invalid.
    pub invalid: Vec<String>,
}

/// Why an upload has no thumbnail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// No event for it reached the topic: lost at the notification stage.
    NoEvent,
    /// The processor's group committed its event, yet no thumbnail exists: the
    /// processor took it and dropped it.
    Lost,
    /// Its event was not committed when the drain ended: a backlog, or a stuck or
    /// slow processor.
    Unprocessed,
    /// The group's offsets could not be read.
    Unclassified,
}

/// Why `key`'s thumbnail is missing, given its events on the topic and the
/// processor group's committed offsets. One committed copy of a duplicated event is
/// enough: the processor had it.
pub fn classify_missing<'a>(events: impl IntoIterator<Item = &'a EventSeen>, group: Option<&GroupOffsets>) -> Missing {
    let mut any = false;
    let mut unknown = false;
    for e in events {
        any = true;
        match group.and_then(|g| g.covers(e.partition, e.offset)) {
            Some(true) => return Missing::Lost,
            Some(false) => {}
            None => unknown = true,
        }
    }
    match (any, unknown) {
        (false, _) => Missing::NoEvent,
        (true, true) => Missing::Unclassified,
        (true, false) => Missing::Unprocessed,
    }
}

/// An anomaly, with the keys it concerns.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Findings {
    /// Uploads with no event on the topic: lost at the notification stage.
    pub lost_events: Vec<String>,
    /// Uploads with more than one event: duplicated at the notification stage.
    pub duplicate_events: Vec<(String, u32)>,
    /// Uploads with no thumbnail (all of them; the two lists below split those
    /// whose event reached the topic by the processor group's committed offsets).
    pub lost_outputs: Vec<String>,
    /// No thumbnail, though the processor's group committed the event: dropped by
    /// the processor.
    #[serde(default)]
    pub lost_by_processor: Vec<String>,
    /// No thumbnail, and the event was not committed when the drain ended.
    #[serde(default)]
    pub unprocessed: Vec<String>,
    /// Uploads whose thumbnail was written more than once (versions).
    pub duplicate_outputs: Vec<(String, u32)>,
    /// Thumbnails with no matching upload.
    pub phantom_outputs: Vec<String>,
    /// Thumbnails that are not an image or have the wrong width.
    pub invalid_outputs: Vec<(String, String)>,
    /// Events on the topic for keys that were never uploaded.
    pub stray_events: Vec<String>,
}

impl Findings {
    /// True when the output stage is exactly-once.
    pub fn output_clean(&self) -> bool {
        self.lost_outputs.is_empty()
            && self.duplicate_outputs.is_empty()
            && self.phantom_outputs.is_empty()
            && self.invalid_outputs.is_empty()
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Ledger {
    pub entries: Vec<LedgerEntry>,
    pub findings: Findings,
    /// Hostile inputs that are not valid images, apart from the entries.
    pub hostile: Vec<HostileEntry>,
}

/// Builds the ledger. Total: any history gives a ledger, never a panic.
pub fn check(history: &History, spec: &CheckSpec) -> Ledger {
    let mut rows: BTreeMap<&str, LedgerEntry> = BTreeMap::new();
    let mut hostile: BTreeMap<&str, HostileEntry> = BTreeMap::new();
    for u in history.uploads.iter().filter(|u| !u.key.starts_with(HARNESS_KEY_PREFIX)) {
        if let Some(kind) = u.hostile.filter(|k| k.rule() != HostileRule::Thumbnail) {
            hostile.insert(
                u.key.as_str(),
                HostileEntry { key: u.key.clone(), kind, events: 0, outputs: 0, valid_outputs: 0, invalid: Vec::new() },
            );
            continue;
        }
        // A key uploaded twice is one row; the later ack wins, since that upload's
        // output is the one that can appear after it.
        let row = rows.entry(u.key.as_str()).or_insert_with(|| LedgerEntry {
            key: u.key.clone(),
            acked_at: u.acked_at,
            events: 0,
            first_event_at: None,
            outputs: 0,
            valid_outputs: 0,
            first_output_at: None,
            missing: None,
            hostile: u.hostile,
        });
        row.acked_at = row.acked_at.max(u.acked_at);
    }

    let mut findings = Findings::default();
    let mut stray: BTreeMap<&str, ()> = BTreeMap::new();
    let mut events_of: BTreeMap<&str, Vec<&EventSeen>> = BTreeMap::new();
    for e in &history.events {
        if e.key.starts_with(HARNESS_KEY_PREFIX) {
            continue;
        }
        if let Some(h) = hostile.get_mut(e.key.as_str()) {
            h.events += 1;
            continue;
        }
        match rows.get_mut(e.key.as_str()) {
            Some(row) => {
                events_of.entry(e.key.as_str()).or_default().push(e);
                row.events += 1;
                row.first_event_at = Some(row.first_event_at.map_or(e.at, |t| t.min(e.at)));
            }
            None => {
                stray.insert(e.key.as_str(), ());
            }
        }
    }
    findings.stray_events = stray.into_keys().map(str::to_string).collect();

    let mut phantom: BTreeMap<&str, ()> = BTreeMap::new();
    for o in &history.outputs {
        if o.key.starts_with(HARNESS_KEY_PREFIX) {
            continue;
        }
        if let Some(h) = hostile.get_mut(o.key.as_str()) {
            h.outputs += 1;
            match invalid_reason(&o.inspection, spec.thumbnail_width) {
                None => h.valid_outputs += 1,
                Some(reason) => h.invalid.push(reason),
            }
            continue;
        }
        let Some(row) = rows.get_mut(o.key.as_str()) else {
            phantom.insert(o.key.as_str(), ());
            continue;
        };
        row.outputs += 1;
        if let Some(t) = o.seen_at {
            row.first_output_at = Some(row.first_output_at.map_or(t, |f| f.min(t)));
        }
        match invalid_reason(&o.inspection, spec.thumbnail_width) {
            None => row.valid_outputs += 1,
            Some(reason) => findings.invalid_outputs.push((o.key.clone(), reason)),
        }
    }
    findings.phantom_outputs = phantom.into_keys().map(str::to_string).collect();

    for row in rows.values_mut() {
        if row.outputs == 0 {
            let class = classify_missing(events_of.get(row.key.as_str()).into_iter().flatten().copied(), history.group.as_ref());
            row.missing = Some(class);
            match class {
                Missing::Lost => findings.lost_by_processor.push(row.key.clone()),
                Missing::Unprocessed => findings.unprocessed.push(row.key.clone()),
                Missing::NoEvent | Missing::Unclassified => {}
            }
        }
        match row.events {
            0 => findings.lost_events.push(row.key.clone()),
            1 => {}
            n => findings.duplicate_events.push((row.key.clone(), n)),
        }
        match row.outputs {
            0 => findings.lost_outputs.push(row.key.clone()),
            1 => {}
            n => findings.duplicate_outputs.push((row.key.clone(), n)),
        }
    }
    Ledger { entries: rows.into_values().collect(), findings, hostile: hostile.into_values().collect() }
}

fn invalid_reason(inspection: &Inspection, width: u32) -> Option<String> {
    match inspection {
        Inspection::Image { width: w, .. } if *w == width => None,
        Inspection::Image { width: w, height: h, .. } => Some(format!("{w}x{h}, expected {width} pixels wide")),
        Inspection::NotAnImage { reason } => Some(format!("not an image: {reason}")),
        Inspection::Unreadable { reason } => Some(format!("could not be read back: {reason}")),
    }
}

#[cfg(test)]
mod tests;
