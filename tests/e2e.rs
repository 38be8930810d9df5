//! Real scenarios against real Kafka and MinIO.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{crc32, harness, only_run_dir, processes_mentioning, read_json, serial};

/// The venv `ci/setup` makes for the student processor (confluent-kafka, boto3, pillow).
fn python_path() -> String {
    let cache = std::env::var("HARNESS_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/harness"));
    let venv_bin = cache.join("venv/bin");
    assert!(
        venv_bin.join("python3").exists(),
        "{} is missing: run ci/setup (it installs the student processor's Python packages)",
        venv_bin.display()
    );
    format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default())
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    dir: PathBuf,
    results: Value,
    _reports: tempfile::TempDir,
}

fn run_scenario(file: &str, python: bool) -> Run {
    let _one_at_a_time = serial();
    let reports = tempfile::tempdir().unwrap();
    let env = if python { vec![("PATH", python_path())] } else { vec![] };
    let out = harness(&["run", "--reports", reports.path().to_str().unwrap(), file], &env);
    let dir = only_run_dir(reports.path());
    let results = read_json(&dir.join("results.json"));
    let leftovers = processes_mentioning(&dir.display().to_string());
    assert!(leftovers.is_empty(), "the run left processes behind: {leftovers:#?}");
    for data in ["kafka", "minio"] {
        assert!(!dir.join(data).exists(), "{data} data dir was not removed");
    }
    Run { code: out.code, stdout: out.stdout, stderr: out.stderr, dir, results, _reports: reports }
}

impl Run {
    fn explain(&self) -> String {
        format!("exit {}\nstdout:\n{}\nstderr:\n{}", self.code, self.stdout, self.stderr)
    }
    fn keys(&self, finding: &str) -> BTreeSet<String> {
        self.results["findings"][finding]
            .as_array()
            .unwrap_or_else(|| panic!("findings.{finding} missing"))
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                Value::Array(pair) => pair[0].as_str().unwrap().to_string(),
                other => panic!("unexpected finding {other}"),
            })
            .collect()
    }
    fn uploaded_keys(&self) -> Vec<String> {
        self.results["ledger"].as_array().unwrap().iter().map(|r| r["key"].as_str().unwrap().to_string()).collect()
    }
}

fn testcases(junit: &Path) -> Vec<String> {
    let xml = std::fs::read_to_string(junit).unwrap();
    xml.split("<testcase ")
        .skip(1)
        .map(|tc| tc.split("name=\"").nth(1).unwrap().split('"').next().unwrap().to_string())
        .collect()
}

#[test]
fn smoke_scenario_passes_with_every_report() {
    let run = run_scenario("scenarios/smoke.yaml", false);
    assert_eq!(run.code, 0, "{}", run.explain());
    assert_eq!(
        testcases(&run.dir.join("junit.xml")),
        ["exactly_once", "latency.end_to_end.p95", "latency.end_to_end.p99", "latency.upload_to_event.p95", "throughput.min"]
    );
    let junit = std::fs::read_to_string(run.dir.join("junit.xml")).unwrap();
    assert!(!junit.contains("<failure") && !junit.contains("<error"), "{junit}");
    let r = &run.results;
    assert_eq!(r["outcome"], "pass");
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["scenario"]["seed"], 42);
    assert_eq!(r["counts"]["uploads"], 100);
    assert_eq!(r["counts"]["output_versions"], 100);
    assert_eq!(r["counts"]["lost_events"], 0);
    assert!(r["metrics"]["latency"]["end_to_end"]["p95_ms"].as_f64().unwrap() > 0.0);
    let services: Vec<&str> = r["environment"]["services"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert!(services.contains(&"kafka") && services.contains(&"minio"), "{services:?}");
    for log in ["kafka.log", "minio.log", "processor.log"] {
        let p = run.dir.join("logs").join(log);
        assert!(p.metadata().map(|m| m.len() > 0).unwrap_or(false), "{} missing or empty", p.display());
    }
    assert!(run.stdout.contains("PASS"), "{}", run.explain());
    let html = std::fs::read_to_string(run.dir.join("report.html")).expect("report.html");
    assert!(html.contains("smoke") && html.contains("<svg"), "report.html lacks the scenario or its charts");
}

#[test]
fn processor_that_skips_events_fails_and_names_the_missing_keys() {
    let run = run_scenario("tests/scenarios/student-skips-some.yaml", true);
    assert_eq!(run.code, 1, "{}", run.explain());
    let expected: BTreeSet<String> = run.uploaded_keys().into_iter().filter(|k| crc32(k.as_bytes()) % 5 == 0).collect();
    assert!(!expected.is_empty(), "the seed should make the script skip something");
    assert_eq!(run.keys("lost_outputs"), expected);
    assert!(run.keys("lost_events").is_empty(), "events arrived; the loss is the processor's");
    assert_eq!(run.results["counts"]["uploads"], 30);
    let first = expected.iter().next().unwrap();
    assert!(run.stdout.contains("have no thumbnail") && run.stdout.contains(first.as_str()), "{}", run.explain());
    let junit = std::fs::read_to_string(run.dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<failure") && junit.contains("have no thumbnail"), "{junit}");
}

#[test]
fn processor_that_writes_twice_fails_and_names_the_duplicates() {
    let run = run_scenario("tests/scenarios/student-writes-twice.yaml", true);
    assert_eq!(run.code, 1, "{}", run.explain());
    let expected: BTreeSet<String> = run.uploaded_keys().into_iter().filter(|k| crc32(k.as_bytes()) % 4 == 0).collect();
    assert!(!expected.is_empty());
    assert_eq!(run.keys("duplicate_outputs"), expected);
    assert!(run.keys("lost_outputs").is_empty(), "{}", run.explain());
    for pair in run.results["findings"]["duplicate_outputs"].as_array().unwrap() {
        assert_eq!(pair[1], 2, "each selected key is written exactly twice");
    }
    assert!(run.stdout.contains("more than one thumbnail version"), "{}", run.explain());
}

#[test]
fn correct_python_processor_passes_with_tricky_keys_and_reports_hold_no_credentials() {
    let run = run_scenario("tests/scenarios/student-correct.yaml", true);
    assert_eq!(run.code, 0, "{}", run.explain());
    let keys = run.uploaded_keys();
    assert!(keys.iter().any(|k| k.contains(' ')) && keys.iter().any(|k| !k.is_ascii()) && keys.iter().any(|k| k.contains('+')));
    assert_eq!(run.results["counts"]["output_versions"], 30);
    // The secret is generated per run and never shown; what must never appear are
    // the variables that would carry it.
    for file in walk(&run.dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        for needle in ["AWS_SECRET_ACCESS_KEY=", "MINIO_ROOT_PASSWORD=", "secret_key"] {
            assert!(!text.contains(needle), "{} contains {needle}", file.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
