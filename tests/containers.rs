//! The containers environment against a real engine: podman's Docker-API service
//! here (`ci/podman` starts it and `ci/test` sets `DOCKER_HOST`), Docker elsewhere.
//! The same scenario files as the local environment, run with `--env containers`,
//! must reach the same verdicts; faults are container operations, proven by the
//! same probes; nothing a run creates is left behind, and a killed run's leftovers
//! are removed by the next run.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::faults::{run_in_place, run_with};
use crate::util::{assert_correct, exclusive, harness, only_run_dir, spawn_until};

/// The engine's unix socket: `DOCKER_HOST=unix://…`, else Docker's default.
fn engine_socket() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) => h.strip_prefix("unix://").unwrap_or_else(|| panic!("these tests need a unix-socket DOCKER_HOST, got {h}")).to_string(),
        Err(_) => "/var/run/docker.sock".to_string(),
    }
}

/// Containers, networks or volumes of the engine labeled with this run id.
fn labeled(what: &str, run_id: &str) -> Vec<Value> {
    let filter = format!(r#"{{"label":["io.harness.run={run_id}"]}}"#);
    let query = match what {
        "containers" => format!("/containers/json?all=true&filters={}", urlencode(&filter)),
        _ => format!("/{what}?filters={}", urlencode(&filter)),
    };
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--unix-socket", &engine_socket(), &format!("http://d{query}")])
        .output()
        .expect("curl (ci/setup installs it)");
    assert!(out.status.success(), "asking the engine for {what}: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("engine answer for {what}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    // /volumes answers {"Volumes": [...]}; the others a list.
    let list = if what == "volumes" { v["Volumes"].clone() } else { v };
    list.as_array().cloned().unwrap_or_default()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

pub(crate) fn assert_nothing_left(run_id: &str) {
    for what in ["containers", "networks", "volumes"] {
        let left = labeled(what, run_id);
        assert!(left.is_empty(), "run {run_id} left {what} behind: {left:#?}");
    }
}

fn run_id(run: &crate::faults::Run) -> String {
    run.results["run_id"].as_str().unwrap().to_string()
}

#[test]
fn broker_kill_on_containers_is_proven_healed_and_exactly_once_holds() {
    let run = run_with(&["--env", "containers"], "scenarios/faults/broker-kill.yaml");
    assert_eq!(run.code, 0, "{}", run.explain());
    assert_eq!(run.results["environment"]["kind"], "containers");
    run.assert_faults_proven(&["broker_kill"], &["container exited with code 137 (SIGKILL)", "produce to", "after the heal: produce"]);
    assert_eq!(run.verdict("exactly_once").0, "pass", "{}", run.explain());
    assert_nothing_left(&run_id(&run));
}

#[test]
fn partition_cuts_kafka_off_the_network_and_exactly_once_holds() {
    let run = run_with(&[], "scenarios/faults/partition-kafka.yaml");
    assert_eq!(run.code, 0, "{}", run.explain());
    assert_eq!(run.results["environment"]["kind"], "containers");
    run.assert_faults_proven(&["partition"], &["produce to", "after the heal: produce"]);
    assert_eq!(run.verdict("exactly_once").0, "pass", "{}", run.explain());
    assert_nothing_left(&run_id(&run));
}

/// SIGKILL the harness mid-workload: its containers, network and volume stay (no
/// code of it runs any more). The next run removes them before it starts, and the
/// smoke scenario passes on containers as it does locally. The test runs alone
/// (every place): any other test's run would reap the leftovers first.
#[test]
fn a_killed_runs_containers_are_removed_by_the_next_run_and_smoke_passes() {
    let _alone = exclusive();
    let killed_id = {
        let reports = tempfile::tempdir().unwrap();
        let args = ["run", "--env", "containers", "--reports", reports.path().to_str().unwrap(), "scenarios/smoke.yaml"];
        let (mut child, seen) = spawn_until(&args, Duration::from_secs(600), |l| l.contains("uploading "));
        assert!(seen.iter().any(|l| l.contains("uploading ")), "never reached the workload:\n{}", seen.join("\n"));
        child.kill().unwrap();
        child.wait().unwrap();
        let dir = only_run_dir(reports.path());
        let id = dir.file_name().unwrap().to_string_lossy().into_owned();
        let containers = labeled("containers", &id);
        assert!(containers.len() >= 3, "kafka, minio and the processor should still be there: {containers:#?}");
        // Published ports listen on loopback only, as the engine reports them.
        let published: Vec<&Value> = containers
            .iter()
            .flat_map(|c| c["Ports"].as_array().into_iter().flatten())
            .filter(|p| p["PublicPort"].as_u64().unwrap_or(0) > 0)
            .collect();
        assert!(published.len() >= 2, "Kafka and MinIO publish a port each: {containers:#?}");
        for p in published {
            assert_eq!(p["IP"], "127.0.0.1", "a port published beyond loopback: {p}");
        }
        assert_eq!(labeled("networks", &id).len(), 1, "the run's network should still be there");
        assert_eq!(labeled("volumes", &id).len(), 1, "MinIO's data volume should still be there");
        id
    };

    let run = run_in_place(&["--env", "containers"], "scenarios/smoke.yaml");
    assert!(run.stderr.contains("removed leftovers of killed runs"), "{}", run.explain());
    assert_nothing_left(&killed_id);
    assert_correct(run.code, &run.results, || run.explain());
    assert_eq!(run.results["environment"]["kind"], "containers");
    let services = run.results["environment"]["services"].to_string();
    assert!(services.contains("container localhost/harness-kafka:"), "{services}");
    let kafka_log = std::fs::read_to_string(run.dir.join("logs/kafka.log")).unwrap_or_default();
    assert!(kafka_log.contains("Kafka Server started"), "the broker's log is kept: {}", &kafka_log[..kafka_log.len().min(2000)]);
    assert_nothing_left(&run_id(&run));
}

#[test]
fn validate_with_env_containers_rejects_what_containers_cannot_do() {
    let out = harness(&["validate", "--env", "containers", "scenarios/faults/wrong-listener-port.yaml"], &[]);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 2, "{text}");
    assert!(text.contains("environment.misconfigure") && text.contains("local environment only"), "{text}");
    let out = harness(&["validate", "--env", "containers", "scenarios/faults/latency.yaml"], &[]);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 2, "{text}");
    assert!(text.contains("latency (with --env containers): cannot be injected by the containers environment"), "{text}");
    let out = harness(
        &[
            "validate",
            "--env",
            "containers",
            "scenarios/faults/broker-kill.yaml",
            "scenarios/faults/partition-links.yaml",
            "scenarios/smoke.yaml",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let out = harness(&["run", "--images", "nope", "scenarios/smoke.yaml"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("available: local, official"), "{}", out.stderr);
}

#[test]
fn a_second_processor_container_rebalances_the_group_and_exactly_once_holds() {
    let run = run_with(&["--env", "containers"], "scenarios/faults/processor-join.yaml");
    assert_eq!(run.code, 0, "{}", run.explain());
    run.assert_faults_proven(&["processor_join"], &["replica pid", "has 2 members", "Stable with 2 members"]);
    assert_eq!(run.verdict("exactly_once").0, "pass", "{}", run.explain());
    assert!(run.dir.join("logs/processor-2.log").is_file(), "the replica container's log is kept");
    assert_nothing_left(&run_id(&run));
}

/// A "user's image" for the `processor.image` tests: the harness's processor image
/// under another name. Its own CMD runs the reference processor, which follows the
/// contract, so the test proves the path (the image's entrypoint, the contract's
/// environment, loading into a cluster), not a processor.
pub(crate) fn user_image() -> String {
    let out = harness(&["images", "build"], &[]);
    assert_eq!(out.code, 0, "harness images build: {}", out.stderr);
    let reference = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("processor").map(str::trim))
        .unwrap_or_else(|| panic!("no processor image in: {}", out.stdout))
        .to_string();
    let tag = reference.rsplit(':').next().unwrap().to_string();
    let repo = "localhost/harness-user-processor";
    let query = format!("/images/{}/tag?repo={}&tag={tag}", urlencode(&reference), urlencode(repo));
    let tagged = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "20", "-X", "POST", "--unix-socket", &engine_socket(), &format!("http://d{query}")])
        .output()
        .expect("curl (ci/setup installs it)");
    assert!(tagged.status.success(), "tagging {reference} as {repo}:{tag}: {}", String::from_utf8_lossy(&tagged.stderr));
    format!("{repo}:{tag}")
}

/// A scenario whose processor is `image`, in a temporary folder.
pub(crate) fn image_scenario(dir: &std::path::Path, image: &str) -> std::path::PathBuf {
    let path = dir.join("user-image.yaml");
    let yaml = format!(
        "name: user-image\nseed: 5\nprocessor: {{ image: \"{image}\" }}\nenvironment: {{ kind: containers }}\n\
         workload: {{ images: 20, rate: 10/s }}\nfaults: [{{ kind: processor_crash, after_uploads: 8 }}]\n\
         expect: {{ exactly_once: true }}\n"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

/// `processor: { image: … }`: a user's image runs as the processor container with
/// its own command and the contract's environment, is killed (processor_crash) and
/// started again; exactly-once holds.
#[test]
fn a_users_processor_image_runs_with_its_own_command_and_the_contract() {
    let image = user_image();
    let dir = tempfile::tempdir().unwrap();
    let run = run_with(&[], image_scenario(dir.path(), &image).to_str().unwrap());
    assert_eq!(run.code, 0, "{}", run.explain());
    assert_eq!(run.results["environment"]["processor"], format!("image {image}"), "{}", run.explain());
    run.assert_faults_proven(&["processor_crash"], &["seen by its supervisor", "restarted the processor"]);
    assert_nothing_left(&run_id(&run));
}
