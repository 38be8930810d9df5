//! `junit.xml`: a testsuite per scenario, a testcase per expectation.
//!
//! Times: the suite's `time` is the run's wall time (provisioning included) and its
//! `timestamp` the run's start; each testcase's `time` is 0, because expectations are
//! judged together from the recorded history after the run, not run one by one.
//! CI test reporters show these as durations, so they must not add up to more than
//! the run took.

use std::time::Duration;

use harness_model::results::RunResults;
use harness_model::verdict::Verdict;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::logs::LogTail;

/// Strips what XML 1.0 cannot carry or CI viewers would show as garbage: control
/// characters other than newlines (C0, DEL and C1, so no terminal escape sequence
/// survives) and the non-characters U+FFFE and U+FFFF. quick-junit's text filter
/// drops tabs and carriage returns, so a tab becomes four spaces (Java's stack traces
/// indent with tabs) and a line ends in `\n` alone, as XML parsers read it anyway.
pub(crate) fn xml_safe(s: &str) -> String {
    let kept: String =
        s.chars().filter(|&c| matches!(c, '\t' | '\n' | '\r') || !(c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}')).collect();
    kept.replace("\r\n", "\n").replace('\r', "\n").replace('\t', "    ")
}

/// The JUnit report; `logs` (service log tails) go into the suite's `system-err`
/// when the run did not pass, so CI shows them beside the failure.
pub fn junit_xml(r: &RunResults, logs: &[LogTail]) -> Vec<u8> {
    let classname = xml_safe(&format!("harness.{}", r.scenario.name));
    let mut suite = TestSuite::new(xml_safe(&r.scenario.name));
    suite.set_time(Duration::from_secs_f64(r.duration_seconds.max(0.0)));
    if let Ok(start) = chrono::DateTime::parse_from_rfc3339(&r.started_at) {
        suite.set_timestamp(start);
    }
    for e in &r.expectations {
        let message = xml_safe(&format!("{}: {}", e.expected, e.detail));
        let status = match (e.verdict, &r.error) {
            (Verdict::Pass, _) => TestCaseStatus::success(),
            (Verdict::Fail, _) => non_success(NonSuccessKind::Failure, "expectation failed", &message),
            // Unknown is an error, not a failure: the pipeline was not shown wrong, the
            // run could not show anything.
            (Verdict::Unknown, Some(err)) => non_success(NonSuccessKind::Error, "run error", &xml_safe(err)),
            (Verdict::Unknown, None) => non_success(NonSuccessKind::Error, "unknown", &message),
        };
        let mut case = TestCase::new(xml_safe(&e.id), status);
        case.set_classname(classname.as_str());
        case.set_time(Duration::ZERO);
        case.extra.insert("file".into(), xml_safe(&r.scenario.file).into());
        case.set_system_out(xml_safe(&e.detail));
        suite.add_test_case(case);
    }
    let mut out = format!(
        "run {} · seed {} · {} images at {}/s · processor {}",
        r.run_id, r.scenario.seed, r.scenario.images, r.scenario.rate_per_second, r.environment.processor
    );
    if let Some(err) = &r.error {
        out.push_str(&format!("\nerror: {err}"));
    }
    suite.set_system_out(xml_safe(&out));
    if r.outcome != Verdict::Pass && !logs.is_empty() {
        let mut err = String::new();
        for t in logs {
            err.push_str(&format!("==> logs/{}.log ({}) <==\n{}\n", t.name, if t.cut { "last lines" } else { "whole" }, t.text));
        }
        suite.set_system_err(xml_safe(&err));
    }
    let mut report = Report::new("harness");
    report.set_time(Duration::from_secs_f64(r.duration_seconds.max(0.0)));
    report.add_test_suite(suite);
    let mut buf = Vec::new();
    if let Err(e) = report.serialize(&mut buf) {
        return format!(
            "<?xml version=\"1.0\"?><testsuites><!-- could not write: {} --></testsuites>\n",
            xml_safe(&e.to_string()).replace("--", "- -")
        )
        .into_bytes();
    }
    buf.push(b'\n');
    buf
}

fn non_success(kind: NonSuccessKind, ty: &str, message: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(kind);
    status.set_type(ty);
    status.set_message(message);
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_removed() {
        assert_eq!(xml_safe("a\u{0}b\u{1b}[31mc\td\n\u{9b}\u{7f}"), "ab[31mc    d\n");
        assert_eq!(xml_safe("a\r\nb\rc\n"), "a\nb\nc\n");
        assert_eq!(xml_safe("日本 ]]> <x>"), "日本 ]]> <x>");
    }
}
