//! Runs that need an image registry, which this project's CI cannot reach: ignored,
//! with what they need in the reason. Run them where the engine can pull:
//! `cargo test --release --test integration registry -- --ignored`.

use crate::faults::run_with;

#[test]
#[ignore = "needs an image registry (docker.io) the engine can pull apache/kafka and minio/minio from; none is reachable on this project's CI"]
fn smoke_passes_on_the_official_images() {
    let run = run_with(&["--env", "containers", "--images", "official"], "scenarios/smoke.yaml");
    assert_eq!(run.code, 0, "{}", run.explain());
    let services = run.results["environment"]["services"].to_string();
    assert!(services.contains("docker.io/apache/kafka:") && services.contains("docker.io/minio/minio:"), "{services}");
}
