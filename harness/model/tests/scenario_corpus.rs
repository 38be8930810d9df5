//! The scenario loader against a corpus of valid and malformed files. Error text is
//! part of the interface (people read it), so it is pinned by snapshots.

use std::path::{Path, PathBuf};

use harness_model::scenario;

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus at {}", dir.display());
    files
}

/// Paths in messages relative to the corpus, so snapshots do not depend on the checkout.
fn rel(p: &Path) -> PathBuf {
    p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(p).to_path_buf()
}

#[test]
fn valid_files_load() {
    for f in corpus("valid") {
        let text = std::fs::read_to_string(&f).unwrap();
        if let Err(e) = scenario::parse(&text, &rel(&f)) {
            panic!("{} should be valid: {e}", f.display());
        }
    }
}

#[test]
fn invalid_files_are_rejected_with_file_line_and_path() {
    let mut report = String::new();
    for f in corpus("invalid") {
        let text = std::fs::read_to_string(&f).unwrap();
        let err = match scenario::parse(&text, &rel(&f)) {
            Ok(_) => panic!("{} should be invalid", f.display()),
            Err(e) => e,
        };
        let msg = err.to_string();
        assert!(msg.starts_with(&rel(&f).display().to_string()), "error must name the file: {msg}");
        report.push_str(&msg);
        report.push('\n');
    }
    insta::assert_snapshot!(report);
}

#[test]
fn full_example_resolves_defaults_and_paths() {
    let f = Path::new("tests/corpus/valid/full.yaml");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap();
    let s = scenario::parse(&text, f).unwrap();
    assert_eq!(s.seed, 42);
    assert_eq!(s.workload.concurrency, 16);
    assert_eq!(s.processor.workdir, Path::new("tests/corpus/valid/students/alice"));
    assert_eq!(s.pipeline.thumbnail_width, 160);
    assert_eq!(s.processor.secret_values(), ["tok-0123456789"], "only the values secret_env names");
    let ids: Vec<String> = s.expectations.iter().map(|e| e.id()).collect();
    assert_eq!(
        ids,
        [
            "exactly_once",
            "latency.end_to_end.p50",
            "latency.end_to_end.p95",
            "latency.end_to_end.max",
            "latency.upload_to_event.p99",
            "throughput.min"
        ]
    );
    let m = Path::new("tests/corpus/valid/minimal.yaml");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(m)).unwrap();
    let s = scenario::parse(&text, m).unwrap();
    assert_eq!((s.seed, s.workload.concurrency, s.pipeline.thumbnail_width), (1, 8, 128));
    assert_eq!(s.environment.events_partitions, 3);
}

/// `--env KIND` and `environment.kind: KIND` read the same rules (issue #22: a Strimzi
/// Kafka on `--env local` was accepted while the same file with `kind: local` was
/// refused): for every valid file and every kind, the flag accepts exactly what the
/// file with that kind written into it would, and refuses at the same key.
#[test]
fn the_env_flag_and_the_files_kind_agree() {
    use harness_model::scenario::EnvKind;
    let kinds = [
        (EnvKind::Local, "local"),
        (EnvKind::Containers, "containers"),
        (EnvKind::Kubernetes, "kubernetes"),
        (EnvKind::External, "external"),
    ];
    let mut compared = 0;
    for f in corpus("valid") {
        let text = std::fs::read_to_string(&f).unwrap();
        let Ok(s) = scenario::parse(&text, &rel(&f)) else { continue };
        for (kind, name) in kinds {
            let flag = s.clone().on_environment(kind).map_err(|e| e.problem().map(|p| p.path.clone()));
            // The file with its kind replaced (or added) the way a user would write it.
            let rewritten = match text.lines().position(|l| l.trim_start().starts_with("kind:")) {
                Some(i) => text
                    .lines()
                    .enumerate()
                    .map(|(n, l)| if n == i { format!("  kind: {name}") } else { l.to_string() })
                    .collect::<Vec<_>>()
                    .join("\n"),
                None if text.contains("\nenvironment:\n") => {
                    text.replacen("\nenvironment:\n", &format!("\nenvironment:\n  kind: {name}\n"), 1)
                }
                None => format!("{text}\nenvironment:\n  kind: {name}\n"),
            };
            let file = scenario::parse(&rewritten, &rel(&f)).map(|_| ()).map_err(|e| e.problem().map(|p| p.path.clone()));
            match (&flag, &file) {
                (Ok(_), Ok(())) => {}
                (Err(a), Err(b)) if a == b => {}
                // A fault the kind cannot inject: both refuse it, each at its fault.
                (Err(Some(a)), Err(Some(b))) if a.starts_with("faults[") && b.starts_with("faults[") => {}
                // A rule only the file's own sections have (an external section's keys).
                (Err(_), Err(Some(b))) if b.starts_with("environment.external.") => {}
                _ => panic!("{} on {name}: --env says {:?}, the file says {:?}", f.display(), flag.as_ref().map(|_| ()), file),
            }
            compared += 1;
        }
    }
    assert!(compared >= 28, "only {compared} comparisons");
    let strimzi = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/valid/kubernetes-strimzi.yaml");
    let s = scenario::parse(&std::fs::read_to_string(&strimzi).unwrap(), &rel(&strimzi)).unwrap();
    let err = s.on_environment(EnvKind::Local).expect_err("a Strimzi Kafka cannot run on --env local");
    assert_eq!(err.problem().map(|p| p.path.as_str()), Some("environment.kafka.operator"), "{err}");
}

/// `harness run my.yaml` from the scenario's own folder (issue #14): the processor
/// runs in "." (or below it), never in the empty path no process can start in.
#[test]
fn a_bare_file_name_anchors_paths_at_the_current_folder() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/valid/full.yaml")).unwrap();
    let s = scenario::parse(&text, Path::new("full.yaml")).unwrap();
    assert_eq!(s.processor.workdir, Path::new("./students/alice"));
    let bare = text.replace("  workdir: students/alice\n", "");
    let s = scenario::parse(&bare, Path::new("full.yaml")).unwrap();
    assert_eq!(s.processor.workdir, Path::new("."));
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Any text at all gives a scenario or an error, never a panic.
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,400}") {
            let _ = scenario::parse(&text, Path::new("fuzz.yaml"));
        }

        /// YAML-shaped noise built from the real keys reaches the deeper validation.
        #[test]
        fn yaml_shaped_input_never_panics(
            keys in prop::collection::vec(prop::sample::select(vec![
                "name", "processor", "workload", "expect", "images", "rate", "builtin", "command",
                "exactly_once", "latency", "p95", "environment", "kind", "sizes", "seed",
            ]), 0..12),
            values in prop::collection::vec(prop::sample::select(vec![
                "x", "0", "-1", "5/s", "3s", "[a, b]", "{}", "resize", "true", "640x480", "~", "\"\"", "1e999",
            ]), 0..12),
            indents in prop::collection::vec(0usize..3, 0..12),
        ) {
            let text: String = keys.iter().zip(values.iter()).zip(indents.iter())
                .map(|((k, v), i)| format!("{}{k}: {v}\n", "  ".repeat(*i)))
                .collect();
            let _ = scenario::parse(&text, Path::new("fuzz.yaml"));
        }
    }
}

/// `scenarios/schema.json` is generated; regenerate with `cargo run -- schema > scenarios/schema.json`.
#[test]
fn committed_schema_is_in_sync() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios/schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = serde_json::to_string_pretty(&scenario::json_schema()).unwrap() + "\n";
    assert!(committed == generated, "{} is out of date: run `cargo run -- schema > scenarios/schema.json`", path.display());
}

#[test]
fn fault_schedule_resolves_explicit_then_random_and_adds_the_proof_expectation() {
    use harness_model::scenario::{FaultKind, FaultStart};
    use std::time::Duration;
    let f = Path::new("tests/corpus/valid/faults.yaml");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap();
    let s = scenario::parse(&text, f).unwrap();
    let kinds: Vec<FaultKind> = s.faults.iter().map(|f| f.kind).collect();
    assert_eq!(&kinds[..3], [FaultKind::BrokerKill, FaultKind::ProcessorCrash, FaultKind::QueueDirLoss]);
    assert_eq!(s.faults.len(), 5);
    assert_eq!(s.faults[0].start, FaultStart::At(Duration::from_secs(4)));
    assert_eq!(s.faults[0].down_for, Duration::from_secs(6));
    assert_eq!(s.faults[1].start, FaultStart::AfterUploads(50));
    assert_eq!(s.faults[1].down_for, Duration::ZERO);
    assert_eq!(s.faults[2].down_for, Duration::from_secs(5), "default down_for");
    assert_eq!(s.faults[3].start, FaultStart::At(Duration::from_secs(20)));
    assert!(s.faults[3..].iter().all(|f| matches!(f.kind, FaultKind::BrokerPause | FaultKind::MinioRestart)));
    assert_eq!(s.faults.iter().map(|f| f.index).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    // Same file, same schedule.
    assert_eq!(scenario::parse(&text, f).unwrap().faults, s.faults);
    let ids: Vec<String> = s.expectations.iter().map(|e| e.id()).collect();
    assert_eq!(ids, ["exactly_once", "notifications_lost", "faults.took_effect"]);
}

#[test]
fn network_faults_resolve_links_parameters_and_explicit_heals() {
    use harness_model::scenario::{FaultKind, Link, LinkParams, DEFAULT_DELAY};
    use std::time::Duration;
    let f = Path::new("tests/corpus/valid/network.yaml");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap();
    let s = scenario::parse(&text, f).unwrap();
    assert_eq!(s.environment.minio_queue_limit, Some(50));
    let targets: Vec<&str> = s.faults.iter().map(|f| f.target.name()).collect();
    assert_eq!(&targets[..6], ["kafka", "processor->minio", "processor->kafka", "minio", "minio->kafka", "kafka"]);
    assert_eq!(s.faults[0].target.links(), [Link::MinioKafka, Link::ProcessorKafka]);
    assert!(s.faults[0].link.is_empty() && s.faults[1].link.is_empty());
    assert_eq!(
        s.faults[2].link,
        LinkParams { delay: Some(Duration::from_millis(100)), jitter: Some(Duration::from_millis(100)), bytes_per_second: None }
    );
    assert_eq!(s.faults[3].link.bytes_per_second, Some(100_000), "800kbit/s");
    assert_eq!(s.faults[4].down_for, Duration::from_secs(1));
    assert_eq!(s.faults[5].heal_after_uploads, Some(190));
    assert!(s.faults[5].down_for >= Duration::from_secs(3600), "no down_for: the heal count (or the workload's end) decides");
    // Random network faults get the kind's defaults.
    for r in &s.faults[6..] {
        match r.kind {
            FaultKind::Latency => assert_eq!(r.link.delay, Some(DEFAULT_DELAY)),
            FaultKind::ConnectionReset => assert!(r.link.is_empty()),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn a_three_broker_cluster_takes_cluster_faults() {
    use harness_model::scenario::FaultKind;
    let f = Path::new("tests/corpus/valid/cluster.yaml");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap();
    let s = scenario::parse(&text, f).unwrap();
    assert_eq!(s.environment.kafka_brokers, 3);
    assert_eq!(s.environment.events_partitions, 6);
    let kinds: Vec<FaultKind> = s.faults.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FaultKind::LeaderKill, FaultKind::RollingRestart, FaultKind::ProcessorCrash]);
    assert!(s.faults[..2].iter().all(|f| f.target == "kafka"));
    let minimal = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/valid/minimal.yaml")).unwrap();
    assert_eq!(scenario::parse(&minimal, Path::new("minimal.yaml")).unwrap().environment.kafka_brokers, 1, "one broker by default");
}
