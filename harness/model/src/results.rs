//! `results.json`: every number of a run, in a versioned schema for regression
//! tracking. Bump [`SCHEMA_VERSION`] on any change that is not a pure addition.

use serde::Serialize;

use crate::check::{Findings, LedgerEntry};
use crate::history::FaultWindow;
use crate::history::History;
use crate::metrics::Metrics;
use crate::verdict::{ExpectationResult, Verdict};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct RunResults {
    pub schema_version: u32,
    pub harness_version: String,
    pub run_id: String,
    pub scenario: ScenarioInfo,
    /// Wall-clock start, RFC 3339 UTC.
    pub started_at: String,
    pub duration_seconds: f64,
    pub outcome: Verdict,
    pub exit_code: u8,
    /// Set when the run stopped before it could be judged (e.g. the environment
    /// did not start); the expectations are then Unknown.
    pub error: Option<String>,
    pub expectations: Vec<ExpectationResult>,
    pub counts: Counts,
    pub metrics: Metrics,
    pub timings: Timings,
    pub environment: EnvironmentInfo,
    pub findings: Findings,
    pub ledger: Vec<LedgerEntry>,
    /// Faults injected, with when each took effect, was healed and recovered
    /// (microseconds since the run's epoch, like the history).
    #[serde(default)]
    pub faults: Vec<FaultWindow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: String,
    pub description: Option<String>,
    pub seed: u64,
    pub images: u32,
    pub rate_per_second: f64,
    pub thumbnail_width: u32,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub uploads: u64,
    pub upload_failures: u64,
    pub events: u64,
    pub output_versions: u64,
    pub lost_events: u64,
    pub duplicate_events: u64,
    pub lost_outputs: u64,
    /// Of `lost_outputs`: the event was committed by the processor's group.
    pub lost_by_processor: u64,
    /// Of `lost_outputs`: the event was not committed when the drain ended.
    pub unprocessed: u64,
    pub duplicate_outputs: u64,
    pub phantom_outputs: u64,
    pub invalid_outputs: u64,
    pub processor_restarts: u64,
}

impl Counts {
    /// The counts of a recorded history and its findings. Harness-internal keys
    /// (canary, probes) are not counted, as the checker does not count them.
    pub fn from_history(h: &History, f: &Findings) -> Counts {
        let ours = |k: &str| k.starts_with(crate::HARNESS_KEY_PREFIX);
        Counts {
            uploads: h.uploads.len() as u64,
            upload_failures: h.upload_failures.len() as u64,
            events: h.events.iter().filter(|e| !ours(&e.key)).count() as u64,
            output_versions: h.outputs.iter().filter(|o| !ours(&o.key)).count() as u64,
            lost_events: f.lost_events.len() as u64,
            duplicate_events: f.duplicate_events.len() as u64,
            lost_outputs: f.lost_outputs.len() as u64,
            lost_by_processor: f.lost_by_processor.len() as u64,
            unprocessed: f.unprocessed.len() as u64,
            duplicate_outputs: f.duplicate_outputs.len() as u64,
            phantom_outputs: f.phantom_outputs.len() as u64,
            invalid_outputs: f.invalid_outputs.len() as u64,
            processor_restarts: h.processor_exits.iter().filter(|x| x.restarted).count() as u64,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Timings {
    pub provision_seconds: f64,
    pub ready_seconds: ReadySeconds,
    pub workload_seconds: f64,
    pub drain_seconds: f64,
    pub drained: bool,
    /// `complete`, `settled`, `timeout` or `interrupted`.
    pub drain_end: crate::history::DrainEnd,
    /// What this run fetched or built into the cache (a first run's cost; empty once
    /// cached).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provisioned: Vec<Provisioned>,
}

/// One thing fetched or built into the cache, once: what, how long, where.
#[derive(Clone, Debug, Serialize)]
pub struct Provisioned {
    /// e.g. "fetched Kafka 4.1.1's jars from Maven Central".
    pub what: String,
    pub seconds: f64,
    pub into: String,
}

/// `12.3 s`, or `3 min 05 s` from a minute on.
fn human_seconds(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else {
        let whole = seconds.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

/// One line for the end of a run (or `harness provision`) that provisioned anything:
/// each step's time and the cache, so the next run's speed is no surprise. None when
/// nothing was provisioned.
pub fn provisioned_line(steps: &[Provisioned]) -> Option<String> {
    if steps.is_empty() {
        return None;
    }
    let each: Vec<String> = steps.iter().map(|p| format!("{} in {} (into {})", p.what, human_seconds(p.seconds), p.into)).collect();
    Some(format!("first run: {}; later runs reuse them (the cache: HARNESS_CACHE_DIR, else ~/.cache/harness)", each.join(", ")))
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ReadySeconds {
    pub kafka: f64,
    pub minio: f64,
    pub canary: f64,
    pub total: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct EnvironmentInfo {
    pub kind: String,
    pub processor: String,
    pub services: Vec<ServiceVersion>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServiceVersion {
    pub name: String,
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provisioning_line_names_each_step_its_time_and_the_cache() {
        assert_eq!(provisioned_line(&[]), None);
        let steps = [
            Provisioned { what: "fetched Kafka 4.1.1's jars".into(), seconds: 9.84, into: "/c/kafka".into() },
            Provisioned { what: "built MinIO".into(), seconds: 185.2, into: "/c/minio".into() },
        ];
        assert_eq!(
            provisioned_line(&steps).unwrap(),
            "first run: fetched Kafka 4.1.1's jars in 9.8 s (into /c/kafka), built MinIO in 3 min 05 s (into /c/minio); \
             later runs reuse them (the cache: HARNESS_CACHE_DIR, else ~/.cache/harness)"
        );
    }
}
