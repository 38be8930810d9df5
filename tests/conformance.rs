//! Every fault kind against each environment, held to the catalog
//! (`harness_model::scenario::describe`): injected, proven and healed exactly where
//! validation accepts it, refused everywhere else. Each test starts one real
//! environment and runs all kinds through the fault scheduler in turn
//! (`harness_core::fault::conformance`).

use std::path::Path;
use std::time::Duration;

use harness_core::engine::images::ImageSource;
use harness_core::env::{self, EnvSpec, StartContext};
use harness_core::fault::conformance::{every_kind, KindOutcome};
use harness_core::services::processor::{ProcessorSpec, DEFAULT_GROUP_ID};
use harness_core::services::provision::provision;
use harness_model::scenario::EnvKind;

use crate::util::slot;

fn spec(run_dir: &Path, brokers: u32, fault_links: bool) -> EnvSpec {
    EnvSpec {
        run_dir: run_dir.to_path_buf(),
        events_topic: "minio-events".into(),
        outputs_topic: "harness-outputs".into(),
        events_partitions: 3,
        kafka_brokers: brokers,
        kafka_operator: None,
        source_bucket: "images".into(),
        target_bucket: "thumbnails".into(),
        minio_queue_dir: true,
        minio_queue_limit: None,
        minio_sync_events: false,
        ready_timeout: Duration::from_secs(120),
        minio_kafka_address: None,
        minio_listener_advertises: None,
        minio_listener_sasl: None,
        minio_target_sasl: false,
        fault_links,
        seed: 1,
        secrets: Vec::new(),
    }
}

/// Starts `kind` with the builtin processor, runs every fault kind, shuts down, and
/// fails with every kind whose outcome differs from its description.
fn conforms(kind: EnvKind, brokers: u32) {
    let _place = slot();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(conforms_now(kind, brokers));
}

async fn conforms_now(kind: EnvKind, brokers: u32) {
    let say = |line: &str| eprintln!("{line}");
    let toolchain = provision(&say).await.expect("provisioning");
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let harness_bin = Path::new(env!("CARGO_BIN_EXE_harness"));
    let cx = StartContext {
        toolchain: &toolchain,
        run_id: "conformance",
        images: ImageSource::Local,
        harness_bin,
        progress: &say,
        external: None,
        processor_group: "thumbnailer",
    };
    let mut env = env::start(kind, spec(&run_dir, brokers, kind == EnvKind::Local), &cx).await.expect("the environment starts");
    let processor = ProcessorSpec {
        program: harness_bin.to_path_buf(),
        args: vec!["processor".into()],
        env: vec![],
        cwd: dir.path().to_path_buf(),
        name: "processor".into(),
        builtin: true,
        image: None,
    };
    env.start_processor(processor).await.expect("the processor starts");
    let outcomes = every_kind(env.as_mut(), DEFAULT_GROUP_ID, &say).await;
    env.shutdown(false).await.expect("shutdown");
    let report: Vec<String> = outcomes.iter().map(describe).collect();
    eprintln!("{}", report.join("\n"));
    let wrong: Vec<String> = outcomes.iter().filter_map(|o| o.verdict().err()).collect();
    assert!(
        wrong.is_empty(),
        "kinds that do not do what their description says on {}:\n{}\n\nthe services' logs (ends):\n{}",
        kind.name(),
        wrong.join("\n"),
        log_tails(&run_dir.join("logs"))
    );
    let applied = outcomes.iter().filter(|o| o.expected.is_ok()).count();
    assert!(applied > 0, "no kind was injectable on {}: the test proved nothing", kind.name());
}

/// The last lines of every log of the run, to tell why a kind misbehaved.
fn log_tails(logs: &Path) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(logs).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(25)..].join("\n");
        out.push_str(&format!("--- {}\n{tail}\n", entry.path().display()));
    }
    out
}

fn describe(o: &KindOutcome) -> String {
    let expected = if o.expected.is_ok() { "injectable" } else { "refused" };
    format!("{:<17} {expected:<10} {}", o.kind.key(), o.window.proof)
}

#[test]
fn every_fault_kind_does_what_its_description_says_on_local() {
    conforms(EnvKind::Local, 1);
}

#[test]
fn every_fault_kind_does_what_its_description_says_on_a_local_cluster() {
    conforms(EnvKind::Local, 3);
}

#[test]
fn every_fault_kind_does_what_its_description_says_on_containers() {
    conforms(EnvKind::Containers, 1);
}

#[test]
fn every_fault_kind_does_what_its_description_says_on_kubernetes() {
    conforms(EnvKind::Kubernetes, 1);
}
