//! `harness lint` as a user runs it: files, folders walked, `-` for stdin, text and
//! JSON, and the documented exit codes (0 no errors, warnings allowed; 1 an error; 2 a
//! path that cannot be read). The rules themselves are tested on the corpus in
//! `harness/model/tests/lint/`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::util::{files_below, harness, repo, Output};

const CORPUS: &str = "harness/model/tests/lint";

/// `harness lint ARGS…` with `stdin` piped in.
fn lint_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("lint")
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the harness binary");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The correct manifests, as one stream with `---` between the files.
fn correct_stream() -> String {
    let mut files = files_below(&repo().join(CORPUS).join("correct"));
    files.sort();
    files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect::<Vec<_>>().join("\n---\n")
}

#[test]
fn a_correct_folder_exits_0_and_says_how_many_files_it_read() {
    let out = harness(&["lint", &format!("{CORPUS}/correct")], &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let files = files_below(&repo().join(CORPUS).join("correct")).len();
    assert_eq!(out.stdout, format!("ok: no findings in {files} files\n"));
}

#[test]
fn errors_exit_1_with_file_line_rule_and_fix() {
    let out = harness(&["lint", &format!("{CORPUS}/strimzi-banzaicloud-topic")], &[]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let topics = format!("{CORPUS}/strimzi-banzaicloud-topic/topics.yaml");
    assert!(out.stdout.contains(&format!("{topics}:2: KafkaTopic/minio-events apiVersion: error[kafka-topic-operator]")), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("{topics}:17: KafkaTopic/thumbnail-events metadata: error[kafka-topic-cluster-label]")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\n  fix: metadata.labels: {strimzi.io/cluster: my-cluster}\n"), "{}", out.stdout);
    assert!(out.stdout.ends_with("4 errors, 0 warnings in 2 files\n"), "{}", out.stdout);
}

#[test]
fn warnings_alone_exit_0() {
    let without_queue =
        correct_stream().replace("            - name: MINIO_NOTIFY_KAFKA_QUEUE_DIR_PRIMARY\n              value: /queue/kafka\n", "");
    assert_ne!(without_queue, correct_stream(), "the corpus changed: the queue_dir lines are not where this test removes them");
    let out = lint_stdin(&["-"], &without_queue);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("<stdin>:") && out.stdout.contains("warning[minio-queue-dir-missing]"), "{}", out.stdout);
    assert!(out.stdout.ends_with("0 errors, 1 warning in 1 file\n"), "{}", out.stdout);
}

/// A folder is walked recursively for *.yaml and *.yml, every file of the set read.
#[test]
fn a_folder_is_walked_for_every_yaml_file_below_it() {
    let out = harness(&["lint", "--format", "json", CORPUS], &[]);
    assert_eq!(out.code, 1, "the corpus holds broken manifests: {}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let mut expected: Vec<String> = files_below(&repo().join(CORPUS))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .map(|p| p.strip_prefix(repo()).unwrap().display().to_string())
        .collect();
    expected.sort();
    let mut read: Vec<String> = json["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect();
    read.sort();
    assert_eq!(read, expected);
}

/// `-` reads stdin; JSON carries each finding with what a tool needs, and counts that
/// agree with the findings.
#[test]
fn stdin_and_json_output() {
    let text = std::fs::read_to_string(repo().join(CORPUS).join("strimzi-banzaicloud-topic/topics.yaml")).unwrap();
    let out = lint_stdin(&["--format", "json", "-"], &text);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(json["files"], serde_json::json!(["<stdin>"]));
    let findings = json["findings"].as_array().unwrap();
    let errors = findings.iter().filter(|f| f["severity"] == "error").count();
    assert!(errors > 0, "{}", out.stdout);
    assert_eq!(json["errors"], errors);
    assert_eq!(json["warnings"], findings.len() - errors);
    for f in findings {
        assert_eq!(f["file"], "<stdin>", "{f}");
        assert!(f["line"].as_u64().unwrap() > 0, "{f}");
        for key in ["rule", "path", "message", "fix"] {
            assert!(f[key].as_str().is_some_and(|v| !v.is_empty()), "{key} missing: {f}");
        }
    }
}

/// A path that cannot be read: exit 2 and its name, whatever the rest holds; the
/// files that could be read are still linted.
#[test]
fn an_unreadable_path_exits_2_and_the_rest_is_still_linted() {
    let out = harness(&["lint", "no/such/manifests", &format!("{CORPUS}/strimzi-banzaicloud-topic")], &[]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("cannot read no/such/manifests"), "{}", out.stderr);
    assert!(out.stdout.contains("error[kafka-topic-operator]"), "{}", out.stdout);
    let out = harness(&["lint"], &[]);
    assert_eq!(out.code, 2, "no path is a usage error: {}", out.stderr);
}

/// Manifests, file and folder names are someone else's bytes (#22): on the terminal,
/// an escape sequence, a carriage return or a bidi override in any of them is shown
/// escaped, never obeyed, in the findings, the notes and the errors alike. (The
/// escaped form is there too: the hostile text did reach the output.)
#[test]
fn hostile_names_and_values_are_shown_escaped_on_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = "x\u{1b}[2J\u{202e}y\r";
    let topics = std::fs::read_to_string(repo().join(CORPUS).join("strimzi-banzaicloud-topic/topics.yaml")).unwrap();
    let topics =
        topics.replace("name: thumbnail-events", &format!("name: \"thumbnail-{}\"", hostile.replace('\u{1b}', "\\e").replace('\r', "\\r")));
    std::fs::write(dir.path().join(format!("topics-{hostile}.yaml")), topics).unwrap();
    let kafka = std::fs::read_to_string(repo().join(CORPUS).join("strimzi-banzaicloud-topic/kafka.yaml")).unwrap();
    std::fs::write(dir.path().join("kafka.yaml"), kafka).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("..", dir.path().join(format!("sub/up-{hostile}"))).unwrap();
    let missing = dir.path().join(format!("missing-{hostile}"));
    let out = harness(&["lint", dir.path().to_str().unwrap(), missing.to_str().unwrap()], &[]);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, 2, "{all:?}");
    for raw in ['\u{1b}', '\u{202e}', '\r'] {
        assert!(!all.contains(raw), "{raw:?} reached the terminal: {all:?}");
    }
    assert!(out.stdout.contains("topics-x\\u{1b}[2J\\u{202e}y\\r.yaml:"), "the file name, escaped: {}", out.stdout);
    assert!(out.stdout.contains("note: ") && out.stdout.contains("up-x\\u{1b}[2J"), "the note, escaped: {}", out.stdout);
    assert!(out.stderr.contains("missing-x\\u{1b}[2J\\u{202e}y\\r"), "the error, escaped: {}", out.stderr);
}
