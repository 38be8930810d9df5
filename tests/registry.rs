//! `--images official`: the engine pulls `apache/kafka` and `minio/minio` from a
//! registry. The success path needs one, which this project's CI cannot reach: ignored,
//! with what it needs in the reason (`cargo test --release --test integration registry
//! -- --ignored` where the engine can pull). The failure path runs everywhere.

use crate::faults::run_with;
use crate::util::{harness, only_run_dir, read_json, slot};

#[test]
#[ignore = "needs an image registry (docker.io) the engine can pull apache/kafka and minio/minio from; none is reachable on this project's CI"]
fn smoke_passes_on_the_official_images() {
    let run = run_with(&["--env", "containers", "--images", "official"], "scenarios/smoke.yaml");
    assert_eq!(run.code, 0, "{}", run.explain());
    let services = run.results["environment"]["services"].to_string();
    assert!(services.contains("docker.io/apache/kafka:") && services.contains("docker.io/minio/minio:"), "{services}");
}

/// Where the registry cannot be reached (a `.invalid` host never resolves, here or
/// anywhere), the run stops at once with exit 3, names the images and the way out
/// (`--images local`), and leaves no container, network or volume behind.
#[test]
fn official_images_without_a_registry_stop_the_run_with_exit_3_and_the_way_out() {
    let _place = slot();
    let reports = tempfile::tempdir().unwrap();
    let (kafka, minio) = ("registry.invalid/apache/kafka:4.1.1", "registry.invalid/minio/minio:latest");
    let out = harness(
        &["run", "--env", "containers", "--images", "official", "--reports", reports.path().to_str().unwrap(), "scenarios/smoke.yaml"],
        &[("HARNESS_KAFKA_IMAGE", kafka.to_string()), ("HARNESS_MINIO_IMAGE", minio.to_string())],
    );
    let shown = format!("exit {}\nstdout:\n{}\nstderr:\n{}", out.code, out.stdout, out.stderr);
    assert_eq!(out.code, 3, "{shown}");
    let dir = only_run_dir(reports.path());
    let results = read_json(&dir.join("results.json"));
    let error = results["error"].as_str().unwrap_or_default();
    assert!(error.contains("--images official") && error.contains(kafka) && error.contains(minio), "{error}\n{shown}");
    assert!(error.contains("--images local"), "the way out is named: {error}");
    assert_eq!(results["outcome"], "unknown", "{shown}");
    crate::containers::assert_nothing_left(results["run_id"].as_str().unwrap());
}
