//! Latency per stage (HDR histogram percentiles) and steady-state throughput.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::check::Ledger;
use crate::history::Micros;
use crate::scenario::{Quantile, Stage};

/// Percentiles of one stage's latency, in milliseconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl LatencySummary {
    pub fn get_ms(&self, q: Quantile) -> f64 {
        match q {
            Quantile::P50 => self.p50_ms,
            Quantile::P90 => self.p90_ms,
            Quantile::P95 => self.p95_ms,
            Quantile::P99 => self.p99_ms,
            Quantile::Max => self.max_ms,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Throughput {
    /// Thumbnails per second over the steady window, if there were enough of them.
    pub outputs_per_second: Option<f64>,
    /// The window: the middle 90 % of first-seen output times.
    pub window_seconds: f64,
    pub outputs_in_window: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Metrics {
    /// Keyed by stage (`end_to_end`, `upload_to_event`, `event_to_output`); a stage
    /// with no samples is absent.
    pub latency: BTreeMap<&'static str, LatencySummary>,
    pub throughput: Throughput,
}

impl Metrics {
    pub fn latency(&self, stage: Stage) -> Option<&LatencySummary> {
        self.latency.get(stage.key())
    }
}

/// Latency samples in microseconds for each stage, from the ledger's rows.
pub fn samples(ledger: &Ledger, stage: Stage) -> Vec<Micros> {
    ledger
        .entries
        .iter()
        .filter_map(|r| match stage {
            Stage::EndToEnd => r.first_output_at.map(|o| o.saturating_sub(r.acked_at)),
            Stage::UploadToEvent => r.first_event_at.map(|e| e.saturating_sub(r.acked_at)),
            Stage::EventToOutput => match (r.first_event_at, r.first_output_at) {
                (Some(e), Some(o)) => Some(o.saturating_sub(e)),
                _ => None,
            },
        })
        .collect()
}

/// Highest latency the histogram tracks: one day, in microseconds.
const MAX_TRACKED_US: u64 = 86_400_000_000;

/// Summarises samples (µs) with an HDR histogram at 3 significant digits.
pub fn summarize(samples_us: &[Micros]) -> Option<LatencySummary> {
    if samples_us.is_empty() {
        return None;
    }
    let mut h = Histogram::<u64>::new_with_bounds(1, MAX_TRACKED_US, 3).ok()?;
    for &s in samples_us {
        h.saturating_record(s.clamp(1, MAX_TRACKED_US));
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Some(LatencySummary {
        count: h.len(),
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p95_ms: ms(h.value_at_quantile(0.95)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        // The exact maximum, not the histogram's bucket edge.
        max_ms: ms(samples_us.iter().copied().max().unwrap_or(0)),
        mean_ms: h.mean() / 1000.0,
    })
}

/// Thumbnails per second between the 5th and 95th percentile of first-seen times, so
/// warm-up and the drain tail do not flatter or hide the steady rate.
pub fn throughput(ledger: &Ledger) -> Throughput {
    let mut t: Vec<Micros> = ledger.entries.iter().filter_map(|r| r.first_output_at).collect();
    t.sort_unstable();
    if t.len() < 2 {
        return Throughput::default();
    }
    let trim = t.len() / 20;
    let (lo, hi) = (trim, t.len() - 1 - trim);
    let (lo, hi) = if hi > lo { (lo, hi) } else { (0, t.len() - 1) };
    let window_us = t[hi] - t[lo];
    let outputs = (hi - lo) as u64;
    Throughput {
        outputs_per_second: (window_us > 0).then(|| outputs as f64 / (window_us as f64 / 1e6)),
        window_seconds: window_us as f64 / 1e6,
        outputs_in_window: outputs + 1,
    }
}

pub fn compute(ledger: &Ledger) -> Metrics {
    let latency = Stage::ALL.iter().filter_map(|&s| summarize(&samples(ledger, s)).map(|sum| (s.key(), sum))).collect();
    Metrics { latency, throughput: throughput(ledger) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::LedgerEntry;

    fn row(ack: u64, ev: Option<u64>, out: Option<u64>) -> LedgerEntry {
        LedgerEntry {
            key: format!("k{ack}"),
            acked_at: ack,
            events: ev.is_some() as u32,
            first_event_at: ev,
            outputs: out.is_some() as u32,
            valid_outputs: out.is_some() as u32,
            first_output_at: out,
            missing: None,
            hostile: None,
        }
    }

    #[test]
    fn percentiles_of_known_samples() {
        let samples: Vec<u64> = (1..=1000).map(|i| i * 1000).collect(); // 1..1000 ms
        let s = summarize(&samples).unwrap();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() <= 1.0, "{}", s.p50_ms);
        assert!((s.p95_ms - 950.0).abs() <= 1.0, "{}", s.p95_ms);
        assert!((s.p99_ms - 990.0).abs() <= 1.0, "{}", s.p99_ms);
        assert_eq!(s.max_ms, 1000.0);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn stages_from_ledger() {
        let ledger = Ledger { entries: vec![row(0, Some(10_000), Some(30_000)), row(5_000, None, None)], ..Default::default() };
        assert_eq!(samples(&ledger, Stage::EndToEnd), vec![30_000]);
        assert_eq!(samples(&ledger, Stage::UploadToEvent), vec![10_000]);
        assert_eq!(samples(&ledger, Stage::EventToOutput), vec![20_000]);
    }

    #[test]
    fn steady_throughput() {
        // 101 outputs, one every 100 ms: 10/s whatever the trimming.
        let entries = (0..=100).map(|i| row(0, None, Some(i * 100_000))).collect();
        let t = throughput(&Ledger { entries, ..Default::default() });
        let r = t.outputs_per_second.unwrap();
        assert!((r - 10.0).abs() < 1e-9, "{r}");
        assert!(throughput(&Ledger::default()).outputs_per_second.is_none());
    }
}
