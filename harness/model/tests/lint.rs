//! `harness lint` against a corpus of manifests written the way students write them:
//! one folder per case under `tests/lint/`, linted as one set. What a user reads is
//! pinned by a snapshot per case; the table below pins rule, file and line, so a
//! finding that moves or disappears fails by name.

use std::path::{Path, PathBuf};

use harness_model::lint::{self, Finding, Severity, RULES};

fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint").join(case)
}

fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lint"))
        .expect("tests/lint")
        .map(|e| e.expect("entry"))
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Lints a case's files as one set; file names relative to the case folder.
fn lint_case(case: &str) -> Vec<Finding> {
    let dir = case_dir(case);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("case dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty case {case}");
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|f| (format!("{case}/{}", f.file_name().unwrap().to_string_lossy()), std::fs::read_to_string(f).unwrap()))
        .collect();
    lint::lint_files(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())))
}

fn report(findings: &[Finding]) -> String {
    findings.iter().map(|f| format!("{f}\n")).collect()
}

/// `(file, line, rule)` of every finding.
fn keys(findings: &[Finding]) -> Vec<(String, u32, &'static str)> {
    findings.iter().map(|f| (f.file.rsplit('/').next().unwrap().to_string(), f.line, f.rule)).collect()
}

fn expect(case: &str, want: &[(&str, u32, &str)]) {
    let got = keys(&lint_case(case));
    let want: Vec<(String, u32, &str)> = want.iter().map(|(f, l, r)| (f.to_string(), *l, *r)).collect();
    assert_eq!(got, want, "{case}:\n{}", report(&lint_case(case)));
}

#[test]
fn every_case_matches_its_snapshot() {
    for case in cases() {
        let findings = lint_case(&case);
        insta::assert_snapshot!(case.clone(), report(&findings));
    }
}

#[test]
fn a_correct_set_has_no_findings() {
    let findings = lint_case("correct");
    assert!(findings.is_empty(), "{}", report(&findings));
}

#[test]
fn a_topic_for_another_operator_and_strimzi_labels() {
    expect(
        "strimzi-banzaicloud-topic",
        &[
            ("kafka.yaml", 24, "kafka-topic-operator-disabled"),
            ("topics.yaml", 2, "kafka-topic-operator"),
            ("topics.yaml", 17, "kafka-topic-cluster-label"),
            ("topics.yaml", 41, "kafka-topic-cluster-unknown"),
        ],
    );
}

#[test]
fn bootstrap_on_the_bridge_and_a_port_no_listener_has() {
    expect("strimzi-bridge-port-8080", &[("minio.yaml", 25, "bootstrap-port"), ("minio.yaml", 56, "bootstrap-port")]);
}

#[test]
fn bootstrap_through_services_and_a_headless_pod_name() {
    expect(
        "statefulset-service-port",
        &[
            ("minio.yaml", 18, "minio-queue-dir-missing"),
            ("minio.yaml", 21, "bootstrap-port"),
            ("minio.yaml", 25, "minio-queue-dir-missing"),
            ("minio.yaml", 27, "bootstrap-port"),
            ("minio.yaml", 47, "bootstrap-host"),
            ("minio.yaml", 47, "bootstrap-port"),
        ],
    );
}

#[test]
fn sasl_listener_of_a_rendered_bitnami_chart() {
    expect("bitnami-sasl", &[("pipeline.yaml", 20, "sasl-mismatch"), ("pipeline.yaml", 49, "sasl-mechanism")]);
}

#[test]
fn queue_dir_on_an_empty_dir_nowhere_and_missing() {
    expect(
        "queue-dir-emptydir",
        &[
            ("minio.yaml", 21, "minio-queue-dir-emptydir"),
            ("minio.yaml", 22, "minio-queue-dir-missing"),
            ("minio.yaml", 27, "topic-undefined"),
            ("minio.yaml", 28, "minio-queue-dir-unmounted"),
            ("minio.yaml", 29, "minio-target-incomplete"),
        ],
    );
}

#[test]
fn a_tenant_with_sasl_and_tls_against_scram_and_mtls_listeners() {
    expect(
        "minio-tenant-tls",
        &[
            ("kafka.yaml", 7, "resources-missing"),
            ("tenant.yaml", 10, "resources-missing"),
            ("tenant.yaml", 21, "sasl-mechanism"),
            ("tenant.yaml", 35, "tls-mismatch"),
            ("tenant.yaml", 41, "minio-queue-dir-unmounted"),
        ],
    );
}

#[test]
fn a_python_processor_without_the_contract() {
    expect(
        "python-processor",
        &[
            ("kafka.yaml", 6, "resources-missing"),
            ("processor.yaml", 20, "resources-missing"),
            ("processor.yaml", 23, "processor-env-missing"),
            ("processor.yaml", 27, "topic-mismatch"),
        ],
    );
}

#[test]
fn unparseable_yaml_is_a_finding_with_a_line() {
    let findings = lint_case("syntax-error");
    let syntax: Vec<&Finding> = findings.iter().filter(|f| f.rule == "yaml-syntax").collect();
    assert_eq!(syntax.len(), 1, "{}", report(&findings));
    assert_eq!(syntax[0].file, "syntax-error/broken.yaml");
    assert!(syntax[0].line >= 19, "{}", syntax[0]);
    // The document before the error is still read; the good file too.
    assert!(findings.iter().any(|f| f.file == "syntax-error/good.yaml" && f.rule == "kafka-topic-cluster-label"), "{}", report(&findings));
}

#[test]
fn an_alias_bomb_is_input_too_large_at_the_level_past_the_bound() {
    expect("alias-bomb", &[("bomb.yaml", 13, "input-too-large")]);
}

#[test]
fn every_rule_reported_is_documented_with_its_severity() {
    let mut seen = std::collections::BTreeSet::new();
    for case in cases() {
        for f in lint_case(&case) {
            let (_, severity, _) = RULES.iter().find(|(id, _, _)| *id == f.rule).unwrap_or_else(|| panic!("{} not in RULES", f.rule));
            assert_eq!(*severity, f.severity, "{f}");
            assert!(!f.fix.is_empty(), "a finding without a fix hint: {f}");
            seen.insert(f.rule);
        }
    }
    let unexercised: Vec<&str> = RULES.iter().map(|(id, _, _)| *id).filter(|id| !seen.contains(id)).collect();
    assert!(unexercised.is_empty(), "rules no corpus case shows: {unexercised:?}");
}

#[test]
fn findings_serialize_for_json_output() {
    let findings = lint::lint_documents("t.yaml", "apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\nmetadata: {name: e}\n");
    let json = serde_json::to_value(&findings).unwrap();
    assert_eq!(json[0]["severity"], "error");
    assert_eq!(json[0]["rule"], "kafka-topic-cluster-label");
    assert_eq!(json[0]["line"], 3);
    assert_eq!(json[0]["path"], "KafkaTopic/e metadata");
    assert_eq!(findings[0].severity, Severity::Error);
}

#[test]
fn a_kafka_topic_in_another_file_than_its_kafka() {
    let kafka = "apiVersion: kafka.strimzi.io/v1beta2\nkind: Kafka\nmetadata: {name: a}\nspec:\n  kafka:\n    resources: {requests: {memory: 1Gi}}\n  entityOperator: {topicOperator: {}}\n";
    let topic = "apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\nmetadata:\n  name: t\n  labels: {strimzi.io/cluster: b}\n";
    let alone = lint::lint_documents("topic.yaml", topic);
    assert!(alone.is_empty(), "without a Kafka the label cannot be judged: {alone:?}");
    let together = lint::lint_files([("kafka.yaml", kafka), ("topic.yaml", topic)]);
    assert_eq!(keys(&together), [("topic.yaml".to_string(), 5, "kafka-topic-cluster-unknown")]);
}
