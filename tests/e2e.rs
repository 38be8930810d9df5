//! Real scenarios against real Kafka and MinIO.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::util::{assert_correct, crc32, files_below, harness, harness_in, only_run_dir, processes_mentioning, read_json, repo, slot};

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
    run_scenario_with(file, python, &[])
}

fn run_scenario_with(file: &str, python: bool, extra_env: &[(&str, String)]) -> Run {
    let _place = slot();
    let reports = tempfile::tempdir().unwrap();
    let mut env = if python { vec![("PATH", python_path())] } else { vec![] };
    env.extend_from_slice(extra_env);
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
    xml.split("<testcase ").skip(1).map(|tc| tc.split("name=\"").nth(1).unwrap().split('"').next().unwrap().to_string()).collect()
}

#[test]
fn smoke_scenario_passes_with_every_report() {
    let run = run_scenario("scenarios/smoke.yaml", false);
    assert_correct(run.code, &run.results, || run.explain());
    assert_eq!(
        testcases(&run.dir.join("junit.xml")),
        ["exactly_once", "latency.end_to_end.p95", "latency.end_to_end.p99", "latency.upload_to_event.p95", "throughput.min"]
    );
    let junit = std::fs::read_to_string(run.dir.join("junit.xml")).unwrap();
    // A failure element exactly when a speed bound was missed (assert_correct allows
    // only those): none on exit 0, at least one on exit 1.
    assert!(!junit.contains("<error"), "{junit}");
    assert_eq!(junit.contains("<failure"), run.code == 1, "{junit}");
    let r = &run.results;
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
    assert!(run.stdout.contains("exactly_once") && run.stdout.contains("PASS"), "{}", run.explain());
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
    // The script's group committed the events it dropped: lost, not a backlog, and
    // the drain stopped waiting once the group had committed them all.
    assert_eq!(run.keys("lost_by_processor"), expected, "{}", run.explain());
    assert!(run.keys("unprocessed").is_empty(), "{}", run.explain());
    assert_eq!(run.results["timings"]["drain_end"], "settled", "{}", run.explain());
    assert!(run.stdout.contains("lost (group") && run.stdout.contains("the processor dropped them"), "{}", run.explain());
    assert_eq!(run.results["counts"]["uploads"], 30);
    let first = expected.iter().next().unwrap();
    assert!(run.stdout.contains("have no thumbnail") && run.stdout.contains(first.as_str()), "{}", run.explain());
    let junit = std::fs::read_to_string(run.dir.join("junit.xml")).unwrap();
    assert!(junit.contains("<failure") && junit.contains("have no thumbnail"), "{junit}");
}

#[test]
fn a_stuck_processors_backlog_is_unprocessed_not_lost() {
    let run = run_scenario("tests/scenarios/student-stalls.yaml", true);
    assert_eq!(run.code, 1, "{}", run.explain());
    let missing = run.keys("lost_outputs");
    assert!(!missing.is_empty(), "the script stalls after 12 messages of 30+: {}", run.explain());
    assert_eq!(run.keys("unprocessed"), missing, "{}", run.explain());
    assert!(run.keys("lost_by_processor").is_empty(), "{}", run.explain());
    assert_eq!(run.results["timings"]["drain_end"], "timeout", "a backlog never settles: {}", run.explain());
    assert_eq!(run.results["counts"]["unprocessed"], missing.len(), "{}", run.explain());
    assert!(run.stdout.contains("unprocessed (group"), "{}", run.explain());
}

/// The case of issue #13: a processor that commits before it writes and dies in
/// between. Only the keys it died on are lost; the rest arrive after its restarts.
#[test]
fn a_processor_that_commits_before_writing_loses_exactly_the_keys_it_died_on() {
    let run = run_scenario("tests/scenarios/student-commits-first.yaml", true);
    assert_eq!(run.code, 1, "{}", run.explain());
    let died_on: BTreeSet<String> = run.uploaded_keys().into_iter().filter(|k| crc32(k.as_bytes()) % 13 == 0).collect();
    assert!(!died_on.is_empty(), "the seed should make the script die at least once");
    assert_eq!(run.keys("lost_by_processor"), died_on, "{}", run.explain());
    assert!(run.keys("unprocessed").is_empty(), "{}", run.explain());
    assert_eq!(run.results["timings"]["drain_end"], "settled", "{}", run.explain());
    assert!(run.results["counts"]["processor_restarts"].as_u64().unwrap() >= died_on.len() as u64, "{}", run.explain());
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

/// A replay against a processor that writes blindly: each replayed event makes a
/// second thumbnail version, and exactly_once names every one of them.
#[test]
fn a_replay_makes_a_blind_writer_write_each_replayed_thumbnail_twice() {
    let run = run_scenario("tests/scenarios/student-replayed.yaml", true);
    assert_eq!(run.code, 1, "{}", run.explain());
    let fault = &run.results["faults"][0];
    assert!(fault["recovered_at"].is_number(), "{}", run.explain());
    assert!(fault["proof"].as_str().unwrap().contains("10 events to consume again"), "{}", run.explain());
    let twice = run.results["findings"]["duplicate_outputs"].as_array().unwrap();
    assert_eq!(twice.len(), 10, "one second version per replayed event: {}", run.explain());
    assert!(twice.iter().all(|pair| pair[1] == 2), "{}", run.explain());
    assert!(run.keys("lost_outputs").is_empty(), "{}", run.explain());
}

#[test]
fn hostile_inputs_are_skipped_or_thumbnailed_by_the_reference_processor_and_each_is_named() {
    let run = run_scenario("scenarios/hostile-inputs.yaml", false);
    assert_eq!(run.code, 0, "{}", run.explain());
    let (v, detail) = verdict(&run, "skipped_inputs");
    assert_eq!(v, "pass", "{detail}");
    for named in [
        "not_an_image hostile/not-an-image.jpg skipped",
        "empty hostile/empty.jpg skipped",
        "huge hostile/huge-8000x8000.jpg one valid thumbnail",
        "long_key hostile/long-key/",
        "truncated_jpeg hostile/truncated.jpg",
        "oversized hostile/oversized.jpg skipped",
        "the processor never exited",
    ] {
        assert!(detail.contains(named), "{named:?} not in {detail}");
    }
    // The 100 MB were skipped by their size, unread, not after a download and a decode.
    let processor_logs: String = crate::util::files_below(&run.dir.join("logs"))
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("processor")))
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    assert!(processor_logs.contains(r#"skip key="hostile/oversized.jpg" reason=too-large"#), "{}", run.explain());
    // The two valid hostile images are ledger rows like any image; the others are not.
    let ledger = run.results["ledger"].as_array().unwrap();
    assert_eq!(ledger.len(), 42, "{}", run.explain());
    assert_eq!(ledger.iter().filter(|r| r["hostile"].is_string()).count(), 2);
    assert_eq!(run.results["counts"]["phantom_outputs"], 0);
}

#[test]
fn a_processor_that_crashes_on_a_bad_input_fails_skipped_inputs() {
    let run = run_scenario("tests/scenarios/student-crashes-on-bad-input.yaml", true);
    assert_eq!(run.code, 1, "{}", run.explain());
    let (v, detail) = verdict(&run, "skipped_inputs");
    assert_eq!(v, "fail", "{detail}");
    assert!(detail.contains("the processor exited") && detail.contains("on its own"), "{detail}");
    assert!(run.results["counts"]["processor_restarts"].as_u64().unwrap() >= 1, "{}", run.explain());
}

fn verdict(run: &Run, id: &str) -> (String, String) {
    crate::util::expectation(&run.results, id, || run.explain())
}

#[test]
fn correct_python_processor_passes_with_tricky_keys_and_reports_hold_no_credentials() {
    let dump = tempfile::tempdir().unwrap();
    let secret_file = dump.path().join("secret");
    let run = run_scenario_with("tests/scenarios/student-correct.yaml", true, &[("SECRET_DUMP", secret_file.display().to_string())]);
    assert_eq!(run.code, 0, "{}", run.explain());
    let keys = run.uploaded_keys();
    assert!(keys.iter().any(|k| k.contains(' ')) && keys.iter().any(|k| !k.is_ascii()) && keys.iter().any(|k| k.contains('+')));
    assert_eq!(run.results["counts"]["output_versions"], 30);
    // The secret is generated per run and never shown: its value (which the processor
    // wrote outside the reports) is in no file the run wrote.
    assert_no_file_holds_the_secret(&run.dir, &secret_file);
}

/// A student's first run (issue #14): their own scenario, in their own folder, named
/// by its bare file name, with a processor that prints its environment first, as
/// students' scripts often do. The processor runs in that folder, and the run's S3
/// secret reaches no log or report: every copy of it reads `***`. So does a value of
/// `processor.env` the scenario marks secret (`secret_env`, #22): by value, in no file
/// the run wrote (the scenario's copy included) and not on the terminal.
#[test]
fn a_students_scenario_runs_from_its_own_folder_and_the_printed_secret_is_masked() {
    let _place = slot();
    let folder = tempfile::tempdir().unwrap();
    let student = repo().join("tests/processors/student_processor.py");
    std::fs::write(folder.path().join("consumer.py"), std::fs::read(&student).unwrap()).unwrap();
    // An impossible throughput bound fails the run, so the log tails go into
    // report.html and junit.xml too.
    let token = format!("api-token-{}-{}", std::process::id(), crc32(folder.path().to_string_lossy().as_bytes()));
    let scenario = format!("name: prints-its-env\nseed: 3\nprocessor:\n  command: [sh, -c, \"printf %s \\\"$AWS_SECRET_ACCESS_KEY\\\" >secret; env; exec python3 consumer.py\"]\n\
                    \x20 env: {{ API_TOKEN: {token} }}\n  secret_env: [API_TOKEN]\n\
                    workload: {{ images: 8, rate: 8/s }}\ndrain: {{ timeout: 30s }}\n\
                    expect:\n  exactly_once: true\n  throughput: {{ min: 100000/s }}\n");
    std::fs::write(folder.path().join("my.yaml"), scenario).unwrap();
    let out = harness_in(folder.path(), &["run", "--reports", "out", "my.yaml"], &[("PATH", python_path())]);
    let explain = format!("exit {}\nstdout:\n{}\nstderr:\n{}", out.code, out.stdout, out.stderr);
    assert_eq!(out.code, 1, "only the throughput bound fails: {explain}");
    let dir = only_run_dir(&folder.path().join("out"));
    let results = read_json(&dir.join("results.json"));
    let verdict = |id: &str| results["expectations"].as_array().unwrap().iter().find(|e| e["id"] == id).map(|e| e["verdict"].clone());
    assert_eq!(verdict("exactly_once"), Some("pass".into()), "{explain}");

    let log = std::fs::read_to_string(dir.join("logs/processor.log")).unwrap();
    assert!(log.contains("AWS_ACCESS_KEY_ID=harness-"), "the processor printed its environment:\n{log}");
    let printed: Vec<&str> = log.lines().filter(|l| l.starts_with("AWS_SECRET_ACCESS_KEY=")).collect();
    assert_eq!(printed, ["AWS_SECRET_ACCESS_KEY=***"], "{log}");
    let printed: Vec<&str> = log.lines().filter(|l| l.starts_with("API_TOKEN=")).collect();
    assert_eq!(printed, ["API_TOKEN=***"], "the processor printed the secret_env value, masked: {log}");
    for file in files_below(&dir) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "{} holds the secret_env value", file.display());
    }
    assert!(!out.stdout.contains(&token) && !out.stderr.contains(&token), "the terminal shows the secret_env value: {explain}");
    let copy = std::fs::read_to_string(dir.join("scenario.yaml")).unwrap();
    assert!(copy.contains("API_TOKEN: ***"), "the scenario's copy is kept, masked: {copy}");
    let mut shown_in_reports = 0;
    for file in files_below(&dir) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        for (at, _) in text.match_indices("AWS_SECRET_ACCESS_KEY=") {
            let value: String = text[at + "AWS_SECRET_ACCESS_KEY=".len()..].chars().take(3).collect();
            assert_eq!(value, "***", "{} shows the secret", file.display());
            shown_in_reports += usize::from(file.extension().is_some_and(|e| e == "html" || e == "xml"));
        }
    }
    assert!(shown_in_reports >= 2, "the masked line is in the failed run's report.html and junit.xml");
    assert_no_file_holds_the_secret(&dir, &folder.path().join("secret"));
}

/// The run's S3 secret, as its processor wrote it to `secret_file` (outside the
/// reports), appears in no file below `dir`: logs, results, reports, copies.
fn assert_no_file_holds_the_secret(dir: &Path, secret_file: &Path) {
    let secret = std::fs::read(secret_file).unwrap_or_else(|e| panic!("the processor wrote no {}: {e}", secret_file.display()));
    assert!(secret.len() >= 16, "not a generated secret: {:?}", String::from_utf8_lossy(&secret));
    let files = files_below(dir);
    assert!(files.len() >= 5, "the run wrote its logs and reports: {files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()), "{} holds the run's S3 secret", file.display());
    }
}

/// `harness run --repeat 3`: three runs into one folder, a line each, then the medians
/// (`repeat.json`: 3 runs, none failed, a throughput median). `compare` refuses such
/// small folders with exit 2 and says how many runs it needs.
#[test]
fn repeated_runs_land_in_one_folder_with_their_medians() {
    let _place = slot();
    let folder = tempfile::tempdir().unwrap();
    let scenario = "name: repeated\nseed: 5\nprocessor: { builtin: resize }\nworkload: { images: 12, rate: 12/s }\n\
                    drain: { timeout: 30s }\nexpect:\n  exactly_once: true\n";
    std::fs::write(folder.path().join("repeated.yaml"), scenario).unwrap();
    let out = harness_in(folder.path(), &["run", "--repeat", "3", "--reports", "out", "repeated.yaml"], &[]);
    let explain = format!("exit {}\nstdout:\n{}\nstderr:\n{}", out.code, out.stdout, out.stderr);
    assert_eq!(out.code, 0, "{explain}");
    for i in 1..=3 {
        assert!(out.stdout.contains(&format!("run {i}/3 repeated: PASS")), "{explain}");
    }
    let repeats = only_run_dir(&folder.path().join("out"));
    assert!(repeats.file_name().unwrap().to_string_lossy().starts_with("repeated-x3-"), "{}", repeats.display());
    let runs: Vec<PathBuf> = std::fs::read_dir(&repeats).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    assert_eq!(runs.len(), 3, "{runs:?}");
    for run in &runs {
        assert_eq!(read_json(&run.join("results.json"))["counts"]["output_versions"], 12, "{}", run.display());
    }
    let summary = read_json(&repeats.join("repeat.json"));
    assert_eq!(summary["runs"], 3, "{summary:#}");
    assert_eq!(summary["failed_runs"], 0, "{summary:#}");
    assert!(summary["metrics"].to_string().contains("throughput"), "{summary:#}");
    let dir = repeats.to_str().unwrap();
    let compare = harness(&["compare", dir, dir], &[]);
    assert_eq!(compare.code, 2, "too few runs is bad input: {}{}", compare.stdout, compare.stderr);
    assert!(format!("{}{}", compare.stdout, compare.stderr).contains('5'), "names the runs it needs: {}", compare.stderr);
}
