//! The run history: everything the harness saw, with monotonic timestamps.
//!
//! Times are microseconds since the run's epoch (one `Instant` taken before the
//! environment started), so every recorder in the process shares one clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Microseconds since the run's epoch.
pub type Micros = u64;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct History {
    pub uploads: Vec<Upload>,
    pub upload_failures: Vec<UploadFailure>,
    /// Records on the events topic, as seen by the harness's own consumer.
    pub events: Vec<EventSeen>,
    /// Versions in the target bucket (final listing), with when each was first seen.
    pub outputs: Vec<OutputVersion>,
    pub processor_exits: Vec<ProcessorExit>,
    /// Faults injected during the run, with when they took effect and healed.
    #[serde(default)]
    pub faults: Vec<FaultWindow>,
    pub workload_started: Micros,
    pub workload_finished: Micros,
    pub drain_finished: Micros,
    /// True when drain ended because every upload was accounted for, false when the
    /// drain timeout ran out first.
    pub drained: bool,
    /// Why the drain ended (`drained` is true only for `Complete`).
    #[serde(default)]
    pub drain_end: DrainEnd,
    /// The processor's consumer group's committed offsets on the events topic when
    /// the processor had stopped: what tells a thumbnail the processor dropped from
    /// one it never got to. `None` when the run ended before they were read.
    #[serde(default)]
    pub group: Option<GroupOffsets>,
}

/// How the drain ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrainEnd {
    /// Every acknowledged upload had a thumbnail.
    Complete,
    /// The processor's group had committed every event of the missing thumbnails and
    /// none arrived for the quiet period: waiting longer would change nothing.
    Settled,
    /// The drain timeout ran out.
    #[default]
    Timeout,
    /// Ctrl-C: the drain was skipped.
    Interrupted,
}

impl DrainEnd {
    pub fn describe(self) -> &'static str {
        match self {
            DrainEnd::Complete => "every upload accounted for",
            DrainEnd::Settled => "settled: the processor's group committed every event, no thumbnail arrived for the quiet period",
            DrainEnd::Timeout => "drain timeout ran out",
            DrainEnd::Interrupted => "interrupted",
        }
    }
}

/// A consumer group's committed offsets on one topic.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GroupOffsets {
    pub group: String,
    pub topic: String,
    /// Partition → the next offset the group reads (Kafka's committed offset): every
    /// record below it is done, as far as the group is concerned. Partitions the group
    /// never committed are absent.
    pub committed: BTreeMap<i32, i64>,
    /// Why the offsets could not be read; missing thumbnails are then not classified.
    pub error: Option<String>,
}

impl GroupOffsets {
    /// Whether the group has committed past `offset` in `partition`. `None` when the
    /// offsets could not be read.
    pub fn covers(&self, partition: i32, offset: i64) -> Option<bool> {
        if self.error.is_some() {
            return None;
        }
        Some(self.committed.get(&partition).is_some_and(|c| *c > offset))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Upload {
    pub key: String,
    /// ETag as MinIO returned it, without quotes.
    pub etag: String,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub format: String,
    pub scheduled_at: Micros,
    pub acked_at: Micros,
    /// Set for a hostile input (`workload.hostile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostile: Option<crate::scenario::HostileKind>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UploadFailure {
    pub key: String,
    pub error: String,
    pub at: Micros,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventSeen {
    /// Decoded object key (MinIO sends it URL-encoded).
    pub key: String,
    pub bucket: String,
    pub event_name: String,
    pub etag: String,
    pub partition: i32,
    pub offset: i64,
    pub at: Micros,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputVersion {
    pub key: String,
    pub version_id: String,
    pub bytes: u64,
    /// When the harness first saw this version (its notification), if it did.
    pub seen_at: Option<Micros>,
    /// What the harness found when it read the version back.
    pub inspection: Inspection,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Inspection {
    Image {
        width: u32,
        height: u32,
        format: String,
    },
    NotAnImage {
        reason: String,
    },
    /// The version could not be read back (deleted meanwhile, or a read error).
    Unreadable {
        reason: String,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessorExit {
    pub at: Micros,
    /// `exit code 1`, `signal 9`, ...
    pub status: String,
    /// Whether the harness started it again.
    pub restarted: bool,
}

/// One injected fault: when it was applied, when a probe through the real client path
/// proved it took effect, and when it was healed and traffic recovered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FaultWindow {
    /// Position in the scenario's fault list (or in the generated random schedule).
    pub index: u32,
    /// `broker_kill`, `processor_crash`, `partition`, ...
    pub kind: String,
    /// What it was applied to: `kafka`, `broker-1`, `minio`, `processor`, `minio->kafka`.
    pub target: String,
    pub injected_at: Micros,
    /// When a probe first showed the fault's effect; `None` means it was never shown,
    /// and the run cannot pass.
    pub effect_seen_at: Option<Micros>,
    /// How the effect was proven (the probe and what it saw).
    pub proof: String,
    pub healed_at: Option<Micros>,
    /// When a probe first succeeded again after the heal.
    pub recovered_at: Option<Micros>,
    /// `queue_dir_loss`: the source objects whose queued events it wiped, as MinIO's
    /// queued events name them (the first [`WIPED_KEYS_MAX`]); each must be lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wiped_events: Vec<String>,
}

/// How many wiped events' keys a [`FaultWindow`] names at most.
pub const WIPED_KEYS_MAX: usize = 1000;
