use std::path::Path;

use harness_model::compare::{Decision, Gate};
use serde_json::json;

use super::*;

/// A results.json with the numbers the gate reads.
fn write_run(dir: &Path, scenario: &str, i: usize, throughput: f64, p50_ms: f64) {
    let run_id = format!("{scenario}-20260101-0000{i:02}-abcd");
    let d = dir.join(&run_id);
    std::fs::create_dir_all(&d).unwrap();
    let v = json!({
        "schema_version": 1,
        "run_id": run_id,
        "outcome": "pass",
        "scenario": { "name": scenario },
        "metrics": {
            "throughput": { "outputs_per_second": throughput, "window_seconds": 9.0, "outputs_in_window": 270 },
            "latency": { "end_to_end": { "count": 300, "p50_ms": p50_ms, "p90_ms": p50_ms * 1.5, "p95_ms": p50_ms * 2.0,
                                         "p99_ms": p50_ms * 3.0, "max_ms": p50_ms * 4.0, "mean_ms": p50_ms } }
        }
    });
    std::fs::write(d.join("results.json"), serde_json::to_vec(&v).unwrap()).unwrap();
}

fn set(scenario: &str, throughputs: &[f64], p50s: &[f64]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (i, (t, p)) in throughputs.iter().zip(p50s).enumerate() {
        write_run(dir.path(), scenario, i, *t, *p);
    }
    dir
}

#[test]
fn loads_folders_files_and_nested_runs() {
    let a = set("gate", &[40.0, 41.0, 39.0], &[100.0, 101.0, 99.0]);
    let runs = load(&[a.path().to_path_buf()]).unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(values(&runs, "throughput"), vec![40.0, 41.0, 39.0]);
    assert_eq!(values(&runs, "latency.end_to_end.p95"), vec![200.0, 202.0, 198.0]);
    // One file, and a folder one level further up.
    let one = runs[1].file.clone();
    assert_eq!(load(&[one]).unwrap().len(), 1);
    let outer = tempfile::tempdir().unwrap();
    std::fs::rename(a.path(), outer.path().join("repeat")).unwrap();
    assert_eq!(load(&[outer.path().to_path_buf()]).unwrap().len(), 3);
    // Errors name the path.
    let empty = tempfile::tempdir().unwrap();
    let err = load(&[empty.path().to_path_buf()]).unwrap_err().to_string();
    assert!(err.contains("no results.json"), "{err}");
    std::fs::write(empty.path().join("x.json"), "{\"a\": 1}").unwrap();
    let err = load(&[empty.path().join("x.json")]).unwrap_err().to_string();
    assert!(err.contains("x.json: not a harness results file"), "{err}");
}

/// A results file over the bound is refused by its size, before it is read (a sparse
/// file: nothing is written or read), and the error names the file and the bound;
/// a device that says it has no size and never ends is cut at the bound.
#[test]
fn a_results_file_over_the_bound_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("results.json");
    std::fs::File::create(&big).unwrap().set_len(MAX_RESULTS_BYTES + 1).unwrap();
    let err = load(std::slice::from_ref(&big)).unwrap_err().to_string();
    assert!(err.contains(&big.display().to_string()) && err.contains("larger than 256 MiB"), "{err}");
    let err = load(&[dir.path().to_path_buf()]).unwrap_err().to_string();
    assert!(err.contains("larger than 256 MiB"), "found in a folder, refused the same: {err}");
    // The read itself stops past the bound (with a small bound here, to spare memory).
    assert!(matches!(read_bounded(Path::new("/dev/zero"), 1 << 20), Err(Bounded::TooLarge)));
    std::fs::write(&big, "{}").unwrap();
    assert!(matches!(read_bounded(&big, 2), Ok(t) if t == "{}"), "a file at the bound is read");
}

#[test]
fn slower_current_is_a_regression_and_same_is_not() {
    let base = set("gate", &[40.0, 41.0, 39.5, 40.5, 40.2], &[100.0, 102.0, 99.0, 101.0, 100.5]);
    let slow = set("gate", &[36.0, 36.5, 35.8, 36.2, 35.5], &[111.0, 112.0, 110.0, 113.0, 110.5]);
    let same = set("gate", &[40.1, 40.9, 39.6, 40.4, 40.0], &[100.2, 101.5, 99.5, 100.8, 100.1]);
    let (b, s, m) = (load(&[base.path().into()]).unwrap(), load(&[slow.path().into()]).unwrap(), load(&[same.path().into()]).unwrap());
    let r = compare_runs(&b, &s, DEFAULT_METRICS, &Gate::default());
    assert!(r.regressed);
    let d: Vec<(&str, Decision)> = r.metrics.iter().map(|m| (m.metric.as_str(), m.decision)).collect();
    assert_eq!(
        d,
        [
            ("throughput", Decision::Regression),
            ("latency.end_to_end.p50", Decision::Regression),
            ("latency.end_to_end.p95", Decision::Regression)
        ]
    );
    let table = comparison_table(&r);
    assert!(table.contains("REGRESSION: at least one metric"), "{table}");
    assert!(table.contains("-10.4 %"), "{table}");

    let r = compare_runs(&b, &m, DEFAULT_METRICS, &Gate::default());
    assert!(!r.regressed && !r.too_few_runs);
    assert!(comparison_table(&r).ends_with("no regression\n"));

    let r = compare_runs(&b[..2], &s[..2], DEFAULT_METRICS, &Gate::default());
    assert!(!r.regressed && r.too_few_runs);
}

#[test]
fn exports_medians_with_intervals() {
    let a = set("gate", &[40.0, 41.0, 39.0, 42.0, 38.0], &[100.0, 101.0, 99.0, 102.0, 98.0]);
    let runs = load(&[a.path().into()]).unwrap();
    let bmf = bencher(&runs, 0.95);
    assert_eq!(bmf["gate"]["throughput"], json!({ "value": 40.0, "lower_value": 38.0, "upper_value": 42.0 }));
    assert_eq!(bmf["gate"]["latency.end_to_end.p50"]["value"], json!(100.0));
    let bigger = github_action_benchmark(&runs, 0.95, GabKind::BiggerIsBetter);
    let smaller = github_action_benchmark(&runs, 0.95, GabKind::SmallerIsBetter);
    assert_eq!(bigger.as_array().unwrap().len(), 1);
    assert_eq!(bigger[0]["name"], json!("gate throughput"));
    assert_eq!(bigger[0]["unit"], json!("thumbnails/s"));
    assert_eq!(bigger[0]["range"], json!("± 2.000"));
    assert!(smaller.as_array().unwrap().iter().all(|e| e["unit"] == json!("ms")));
    assert_eq!(smaller.as_array().unwrap().len(), 5);
    let s = summary_table(&summarize(&runs, 0.95));
    assert!(s.starts_with("gate: 5 run(s)\n"), "{s}");
    assert!(s.contains("40.00/s"), "{s}");
}
