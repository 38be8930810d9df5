//! Regression tracking over results files: loading repeated runs, comparing a
//! baseline with a current set (`harness compare`), summarising repeats
//! (`harness run --repeat`) and exporting for Bencher and github-action-benchmark.
//!
//! The statistics are pure and live in [`harness_model::compare`]; this module reads
//! `results.json` files and formats what comes out.

mod export;
mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use harness_model::compare::{self, Direction, Gate, MetricComparison, MetricSamples, Summary};
use serde::Serialize;

pub use export::{bencher, github_action_benchmark, GabKind};
pub use table::{comparison_table, summary_table};

/// A metric the gate can compare, read from `results.json`.
#[derive(Clone, Copy, Debug)]
pub struct MetricDef {
    pub id: &'static str,
    pub unit: &'static str,
    pub direction: Direction,
    /// JSON pointer into results.json.
    pointer: &'static str,
}

macro_rules! latency {
    ($stage:literal, $q:literal) => {
        MetricDef {
            id: concat!("latency.", $stage, ".", $q),
            unit: "ms",
            direction: Direction::LowerIsBetter,
            pointer: concat!("/metrics/latency/", $stage, "/", $q, "_ms"),
        }
    };
}

/// Every comparable metric.
pub const METRICS: &[MetricDef] = &[
    MetricDef {
        id: "throughput",
        unit: "thumbnails/s",
        direction: Direction::HigherIsBetter,
        pointer: "/metrics/throughput/outputs_per_second",
    },
    latency!("end_to_end", "p50"),
    latency!("end_to_end", "p90"),
    latency!("end_to_end", "p95"),
    latency!("end_to_end", "p99"),
    latency!("end_to_end", "max"),
    latency!("upload_to_event", "p50"),
    latency!("upload_to_event", "p95"),
    latency!("upload_to_event", "p99"),
    latency!("event_to_output", "p50"),
    latency!("event_to_output", "p95"),
    latency!("event_to_output", "p99"),
];

/// What `harness compare` judges unless told otherwise: few metrics keep Holm's
/// correction mild (each extra metric makes every test stricter).
pub const DEFAULT_METRICS: &[&str] = &["throughput", "latency.end_to_end.p50", "latency.end_to_end.p95"];

pub fn metric(id: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.id == id)
}

/// One run's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct RunSample {
    pub file: PathBuf,
    pub scenario: String,
    pub run_id: String,
    pub outcome: String,
    pub values: BTreeMap<&'static str, f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegressError {
    #[error("{path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: not a harness results file: {why}")]
    Parse { path: String, why: String },
    #[error("{path}: no results.json in it or in its subfolders (up to 3 levels)")]
    Empty { path: String },
    #[error("{path}: larger than {limit} MiB, more than any results.json the harness writes; not read")]
    TooLarge { path: String, limit: u64 },
    #[error("{path}: more than {limit} results files below it; name fewer folders")]
    TooMany { path: String, limit: usize },
}

/// The largest results file read: results.json grows with its ledger (one entry
/// per upload, a few hundred bytes), so this is far above any run's. A larger file
/// is refused before it is read.
pub const MAX_RESULTS_BYTES: u64 = 256 << 20;
/// The most results files read for one comparison (a folder of repeats, a reports
/// folder): far more runs than any statistics here need.
pub const MAX_RESULTS_FILES: usize = 10_000;

/// Reads result files: each path is a `results.json` (any file name) or a folder
/// searched for `results.json` up to three levels deep (a repeat folder, a reports
/// folder). Sorted by run id, which starts with the scenario and the start time.
pub fn load(paths: &[PathBuf]) -> Result<Vec<RunSample>, RegressError> {
    let mut out = Vec::new();
    for p in paths {
        let files = if p.is_dir() {
            let mut found = Vec::new();
            find_results(p, 3, &mut found);
            if found.is_empty() {
                return Err(RegressError::Empty { path: p.display().to_string() });
            }
            if found.len() > MAX_RESULTS_FILES {
                return Err(RegressError::TooMany { path: p.display().to_string(), limit: MAX_RESULTS_FILES });
            }
            found
        } else {
            vec![p.clone()]
        };
        for f in files {
            out.push(read_one(&f)?);
        }
    }
    out.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    Ok(out)
}

fn find_results(dir: &Path, depth: u32, found: &mut Vec<PathBuf>) {
    // One more than the bound is enough to refuse the folder.
    if found.len() > MAX_RESULTS_FILES {
        return;
    }
    let direct = dir.join("results.json");
    if direct.is_file() {
        found.push(direct);
        return;
    }
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    dirs.sort();
    for d in dirs {
        find_results(&d, depth - 1, found);
    }
}

fn read_one(path: &Path) -> Result<RunSample, RegressError> {
    let shown = path.display().to_string();
    let text = read_bounded(path, MAX_RESULTS_BYTES).map_err(|e| match e {
        Bounded::Io(source) => RegressError::Read { path: shown.clone(), source },
        Bounded::TooLarge => RegressError::TooLarge { path: shown.clone(), limit: MAX_RESULTS_BYTES >> 20 },
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| RegressError::Parse { path: shown.clone(), why: e.to_string() })?;
    let str_at = |ptr: &str| v.pointer(ptr).and_then(|x| x.as_str()).map(str::to_string);
    let (Some(scenario), Some(run_id)) = (str_at("/scenario/name"), str_at("/run_id")) else {
        return Err(RegressError::Parse { path: shown, why: "no scenario.name or run_id".into() });
    };
    let values = METRICS.iter().filter_map(|m| v.pointer(m.pointer).and_then(|x| x.as_f64()).map(|x| (m.id, x))).collect();
    Ok(RunSample { file: path.to_path_buf(), scenario, run_id, outcome: str_at("/outcome").unwrap_or_default(), values })
}

enum Bounded {
    Io(std::io::Error),
    TooLarge,
}

/// The file's text, if it has at most `limit` bytes: its size is checked before it
/// is read, and the read stops one byte past the bound anyway (a device, a FIFO or
/// a file that grows says nothing true in its size).
fn read_bounded(path: &Path, limit: u64) -> Result<String, Bounded> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(Bounded::Io)?;
    if file.metadata().map_err(Bounded::Io)?.len() > limit {
        return Err(Bounded::TooLarge);
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(Bounded::Io)?;
    if bytes.len() as u64 > limit {
        return Err(Bounded::TooLarge);
    }
    String::from_utf8(bytes).map_err(|e| Bounded::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))
}

/// The values of one metric over runs (runs without it are skipped).
pub fn values(runs: &[RunSample], id: &str) -> Vec<f64> {
    runs.iter().filter_map(|r| r.values.get(id).copied()).collect()
}

/// Medians with confidence intervals of every metric present in `runs`.
#[derive(Clone, Debug, Serialize)]
pub struct RunsSummary {
    pub scenario: String,
    pub runs: usize,
    pub failed_runs: usize,
    pub metrics: Vec<(String, Summary)>,
}

pub fn summarize(runs: &[RunSample], ci_level: f64) -> RunsSummary {
    let metrics = METRICS.iter().filter_map(|m| compare::summarize(&values(runs, m.id), ci_level).map(|s| (m.id.to_string(), s))).collect();
    RunsSummary {
        scenario: scenario_names(runs),
        runs: runs.len(),
        failed_runs: runs.iter().filter(|r| r.outcome != "pass").count(),
        metrics,
    }
}

/// `a` or `a, b` when runs of several scenarios were given.
pub fn scenario_names(runs: &[RunSample]) -> String {
    let mut names: Vec<&str> = runs.iter().map(|r| r.scenario.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

/// The outcome of `harness compare`.
#[derive(Clone, Debug, Serialize)]
pub struct ComparisonReport {
    pub baseline: SideInfo,
    pub current: SideInfo,
    pub gate: Gate,
    pub metrics: Vec<MetricComparison>,
    /// Relative shift each metric could be detected at (80 % power, the runs' noise).
    pub min_detectable: Vec<(String, f64)>,
    pub regressed: bool,
    pub too_few_runs: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct SideInfo {
    pub scenario: String,
    pub runs: usize,
    pub failed_runs: usize,
}

pub fn compare_runs(baseline: &[RunSample], current: &[RunSample], metric_ids: &[&'static str], gate: &Gate) -> ComparisonReport {
    let cols: Vec<(&MetricDef, Vec<f64>, Vec<f64>)> = metric_ids
        .iter()
        .filter_map(|id| metric(id))
        .map(|m| (m, values(baseline, m.id), values(current, m.id)))
        .filter(|(_, b, c)| !b.is_empty() && !c.is_empty())
        .collect();
    let samples: Vec<MetricSamples> =
        cols.iter().map(|(m, b, c)| MetricSamples { metric: m.id, direction: m.direction, baseline: b, current: c }).collect();
    let metrics = compare::compare(&samples, gate);
    let k = metrics.len().max(1);
    let min_detectable = cols
        .iter()
        .filter_map(|(m, b, c)| {
            // Pooled robust noise of both sides, each about its own median.
            let spread = (compare::relative_spread(b)?.powi(2) + compare::relative_spread(c)?.powi(2)) / 2.0;
            Some((m.id.to_string(), compare::min_detectable_effect(b.len(), c.len(), spread.sqrt(), gate.alpha / k as f64, 0.8)))
        })
        .collect();
    let side = |runs: &[RunSample]| SideInfo {
        scenario: scenario_names(runs),
        runs: runs.len(),
        failed_runs: runs.iter().filter(|r| r.outcome != "pass").count(),
    };
    ComparisonReport {
        baseline: side(baseline),
        current: side(current),
        gate: *gate,
        regressed: metrics.iter().any(|m| m.decision == compare::Decision::Regression),
        too_few_runs: metrics.is_empty() || metrics.iter().all(|m| m.decision == compare::Decision::TooFewRuns),
        metrics,
        min_detectable,
    }
}

#[cfg(test)]
mod tests;
