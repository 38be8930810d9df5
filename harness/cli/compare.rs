//! `harness compare` and `harness export`: argument types and output; the work is in
//! `harness_core::regress` and `harness_model::compare`.

use std::path::PathBuf;
use std::process::ExitCode as ProcessExit;

use clap::{Args, ValueEnum};
use harness_core::regress::{self, GabKind, DEFAULT_METRICS, METRICS};
use harness_model::compare::Gate;
use harness_model::exit::ExitCode;

#[derive(Args)]
pub struct CompareArgs {
    /// Baseline: a results.json, or a folder of runs (e.g. from `harness run --repeat`).
    #[arg(value_name = "BASELINE")]
    baseline: PathBuf,
    /// Current: same forms as BASELINE.
    #[arg(value_name = "CURRENT")]
    current: PathBuf,
    /// Metric to judge (repeatable); default: throughput, latency.end_to_end.p50, latency.end_to_end.p95.
    #[arg(long = "metric", value_name = "METRIC", value_parser = metric_id)]
    metrics: Vec<&'static str>,
    /// Smallest change of a median that counts as a regression: `3%` or `0.03`.
    #[arg(long, default_value = "3%", value_parser = fraction)]
    threshold: f64,
    /// Family-wise false-alarm rate across the judged metrics.
    #[arg(long, default_value_t = 0.05, value_parser = probability)]
    alpha: f64,
    /// Output: a table for people, or JSON (the full comparison) for tools.
    #[arg(long, value_enum, default_value_t = CompareFormat::Table)]
    format: CompareFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum CompareFormat {
    Table,
    Json,
}

#[derive(Args)]
pub struct ExportArgs {
    /// results.json files or folders of runs; grouped by scenario.
    #[arg(required = true, value_name = "RESULTS")]
    paths: Vec<PathBuf>,
    #[arg(long, value_enum)]
    format: ExportFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportFormat {
    /// Bencher Metric Format (`bencher run --adapter json`).
    Bencher,
    /// github-action-benchmark `customBiggerIsBetter` (throughput).
    GabBigger,
    /// github-action-benchmark `customSmallerIsBetter` (latencies).
    GabSmaller,
}

pub const COMPARE_HELP: &str = "Method: for each metric, the one-sided Mann-Whitney U test of \"current is worse\" (exact
p-values for small untied samples), Holm's correction across the metrics, and a regression
only when the median also moved the wrong way by more than --threshold. Run baseline and
current interleaved (`harness run --repeat N a.yaml b.yaml` alternates) so machine drift
hits both. With 5 runs a side the smallest possible p is 1/252; with 3, 1/20: use 5 or more.

Metrics: throughput, latency.<end_to_end|upload_to_event|event_to_output>.<p50|p90|p95|p99|max>

Examples:
  harness run --repeat 5 --reports base scenarios/compare/reference-gate.yaml
  harness run --repeat 5 --reports cur scenarios/compare/reference-gate.yaml
  harness compare base cur
  harness compare --metric throughput --threshold 5% base/x/results.json cur

Exit codes: 0 no regression · 1 a metric regressed · 2 bad input, or too few runs to decide";

fn metric_id(s: &str) -> Result<&'static str, String> {
    regress::metric(s).map(|m| m.id).ok_or_else(|| {
        let known: Vec<&str> = METRICS.iter().map(|m| m.id).collect();
        format!("unknown metric {s:?} (known: {})", known.join(", "))
    })
}

fn fraction(s: &str) -> Result<f64, String> {
    let v = match s.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => s.trim().parse::<f64>(),
    }
    .map_err(|_| format!("expected a percentage like 3% or a fraction like 0.03, got {s:?}"))?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s:?} is outside 0 %..100 %"))
    }
}

fn probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v < 1.0 => Ok(v),
        _ => Err(format!("expected a probability between 0 and 1, got {s:?}")),
    }
}

fn invalid(msg: impl std::fmt::Display) -> ProcessExit {
    eprintln!("error: {msg}");
    ProcessExit::from(ExitCode::InvalidInput.code())
}

pub fn compare(a: CompareArgs) -> ProcessExit {
    let (base, cur) = match (regress::load(&[a.baseline]), regress::load(&[a.current])) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(e), _) | (_, Err(e)) => return invalid(e),
    };
    let metrics: Vec<&'static str> = if a.metrics.is_empty() { DEFAULT_METRICS.to_vec() } else { a.metrics };
    let gate = Gate { alpha: a.alpha, threshold: a.threshold, ..Gate::default() };
    let report = regress::compare_runs(&base, &cur, &metrics, &gate);
    if report.baseline.scenario != report.current.scenario {
        eprintln!("note: comparing different scenarios: {} vs {}", report.baseline.scenario, report.current.scenario);
    }
    match a.format {
        CompareFormat::Table => print!("{}", regress::comparison_table(&report)),
        CompareFormat::Json => println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default()),
    }
    if report.regressed {
        ProcessExit::from(ExitCode::ExpectationFailed.code())
    } else if report.too_few_runs {
        if matches!(a.format, CompareFormat::Json) {
            eprintln!("error: too few runs to decide (use at least 5 runs per side)");
        }
        ProcessExit::from(ExitCode::InvalidInput.code())
    } else {
        ProcessExit::SUCCESS
    }
}

pub fn export(a: ExportArgs) -> ProcessExit {
    let runs = match regress::load(&a.paths) {
        Ok(r) => r,
        Err(e) => return invalid(e),
    };
    let level = Gate::default().ci_level;
    let value = match a.format {
        ExportFormat::Bencher => regress::bencher(&runs, level),
        ExportFormat::GabBigger => regress::github_action_benchmark(&runs, level, GabKind::BiggerIsBetter),
        ExportFormat::GabSmaller => regress::github_action_benchmark(&runs, level, GabKind::SmallerIsBetter),
    };
    println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    ProcessExit::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(throughputs: &[f64]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, t) in throughputs.iter().enumerate() {
            let run = dir.path().join(format!("gate-2026010{i}"));
            std::fs::create_dir_all(&run).expect("run dir");
            let v = serde_json::json!({
                "run_id": format!("gate-2026010{i}"), "outcome": "pass", "scenario": { "name": "gate" },
                "metrics": { "throughput": { "outputs_per_second": t }, "latency": {} }
            });
            std::fs::write(run.join("results.json"), v.to_string()).expect("write");
        }
        dir
    }

    fn args(base: &tempfile::TempDir, cur: &tempfile::TempDir) -> CompareArgs {
        CompareArgs {
            baseline: base.path().into(),
            current: cur.path().into(),
            metrics: vec!["throughput"],
            threshold: 0.03,
            alpha: 0.05,
            format: CompareFormat::Json,
        }
    }

    #[test]
    fn exit_codes_say_regression_no_change_or_cannot_decide() {
        let base = runs(&[40.0, 41.0, 39.0, 40.5, 39.5]);
        let slow = runs(&[35.0, 36.0, 34.0, 35.5, 34.5]);
        let same = runs(&[40.2, 40.8, 39.2, 40.4, 39.6]);
        let (few, few_slow) = (runs(&[40.0, 41.0]), runs(&[30.0, 31.0]));
        assert_eq!(compare(args(&base, &slow)), ProcessExit::from(1));
        assert_eq!(compare(args(&base, &same)), ProcessExit::SUCCESS);
        // 2 runs a side: the smallest possible p is 1/6, nothing can be shown.
        assert_eq!(compare(args(&few, &few_slow)), ProcessExit::from(2));
        // 5 against 2 can: p = 1/21 when every current run is slower.
        assert_eq!(compare(args(&base, &few_slow)), ProcessExit::from(1));
        let empty = tempfile::tempdir().expect("tempdir");
        assert_eq!(compare(args(&base, &empty)), ProcessExit::from(2));
    }

    #[test]
    fn thresholds_and_metrics_parse() {
        assert_eq!(fraction("3%"), Ok(0.03));
        assert_eq!(fraction("0.05"), Ok(0.05));
        assert!(fraction("150%").is_err() && fraction("fast").is_err());
        assert_eq!(metric_id("latency.end_to_end.p95"), Ok("latency.end_to_end.p95"));
        assert!(metric_id("latency.p95").unwrap_err().contains("known: throughput"));
        assert!(probability("0").is_err() && probability("0.01").is_ok());
    }
}
