//! The CLI without services: validation, schema, help and exit codes.

use crate::util::{harness, repo};

#[test]
fn malformed_scenario_exits_2_naming_file_line_and_key() {
    let out = harness(&["run", "tests/scenarios/malformed.yaml"], &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(r#"tests/scenarios/malformed.yaml:5: workload.rate: expected "<number>/s" (e.g. "50/s"), got "fast""#),
        "{}",
        out.stderr
    );
    assert!(!repo().join("reports").join("malformed").exists());
}

/// Every scenario file shipped (scenarios/ and tests/scenarios/, every folder below,
/// found, not listed by hand) validates; `malformed.yaml` is the one that must not.
#[test]
fn validate_accepts_every_shipped_scenario() {
    let mut files: Vec<String> = ["scenarios", "tests/scenarios"]
        .iter()
        .flat_map(|d| crate::util::files_below(&repo().join(d)))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml") && !p.ends_with("malformed.yaml"))
        .map(|p| p.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    files.sort();
    assert!(files.iter().any(|f| f.starts_with("scenarios/compare/")) && files.iter().any(|f| f.starts_with("tests/scenarios/")));
    let args: Vec<&str> = std::iter::once("validate").chain(files.iter().map(String::as_str)).collect();
    let out = harness(&args, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for f in &files {
        assert!(out.stdout.contains(&format!("ok: {f} (")), "{f} not validated:\n{}", out.stdout);
    }
}

#[test]
fn validate_reports_every_bad_file_not_just_the_first() {
    let out = harness(&["validate", "tests/scenarios/malformed.yaml", "no/such/file.yaml"], &[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("malformed.yaml:5"), "{}", out.stderr);
    assert!(out.stderr.contains("no/such/file.yaml: cannot read the scenario file"), "{}", out.stderr);
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = harness(&["schema"], &[]);
    assert_eq!(out.code, 0);
    let committed = std::fs::read_to_string(repo().join("scenarios/schema.json")).unwrap();
    assert_eq!(out.stdout, committed);
}

#[test]
fn usage_errors_exit_2_and_help_has_examples() {
    assert_eq!(harness(&["run"], &[]).code, 2);
    assert_eq!(harness(&["frobnicate"], &[]).code, 2);
    let help = harness(&["run", "--help"], &[]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("harness run scenarios/smoke.yaml"), "{}", help.stdout);
    assert!(harness(&["--help"], &[]).stdout.contains("Exit codes"));
}

#[test]
fn unprovisionable_environment_exits_3_with_reports() {
    let reports = tempfile::tempdir().unwrap();
    let out = harness(
        &["run", "--reports", reports.path().to_str().unwrap(), "scenarios/smoke.yaml"],
        &[("MINIO_BIN", "/nonexistent/minio".to_string())],
    );
    assert_eq!(out.code, 3, "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("/nonexistent/minio"), "{}", out.stderr);
    let run_dir = crate::util::only_run_dir(reports.path());
    let results = crate::util::read_json(&run_dir.join("results.json"));
    assert_eq!(results["exit_code"], 3);
    assert_eq!(results["outcome"], "unknown");
    assert!(results["error"].as_str().unwrap().contains("/nonexistent/minio"));
    let junit = std::fs::read_to_string(run_dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<error"), "{junit}");
}
