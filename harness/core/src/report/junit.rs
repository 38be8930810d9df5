//! `junit.xml`: a testsuite per scenario, a testcase per expectation.

use harness_model::results::RunResults;
use harness_model::verdict::Verdict;
use junit_report::{Duration, ReportBuilder, TestCaseBuilder, TestSuiteBuilder};

use super::logs::LogTail;

/// Strips what XML 1.0 cannot carry (control characters other than tab and newlines),
/// so any text from logs or keys leaves the file well-formed.
fn xml_safe(s: &str) -> String {
    s.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}'))
        .collect()
}

/// [`xml_safe`] for text that junit-report writes as CDATA: a `]]>` inside would end
/// the section, so it is split across two sections (`]]` + `>`), which reads back the same.
fn cdata_safe(s: &str) -> String {
    xml_safe(s).replace("]]>", "]]]]><![CDATA[>")
}

/// The JUnit report; `logs` (service log tails) go into the suite's `system-err`
/// when the run did not pass, so CI shows them beside the failure.
pub fn junit_xml(r: &RunResults, logs: &[LogTail]) -> Vec<u8> {
    let time = Duration::seconds_f64(r.duration_seconds.max(0.0));
    let classname = xml_safe(&format!("harness.{}", r.scenario.name));
    let mut suite = TestSuiteBuilder::new(&xml_safe(&r.scenario.name));
    for e in &r.expectations {
        let name = xml_safe(&e.id);
        let message = xml_safe(&format!("{}: {}", e.expected, e.detail));
        let mut case = match (e.verdict, &r.error) {
            (Verdict::Pass, _) => TestCaseBuilder::success(&name, time),
            (Verdict::Fail, _) => TestCaseBuilder::failure(&name, time, "expectation failed", &message),
            // Unknown is an error, not a failure: the pipeline was not shown wrong, the
            // run could not show anything.
            (Verdict::Unknown, Some(err)) => TestCaseBuilder::error(&name, time, "run error", &xml_safe(err)),
            (Verdict::Unknown, None) => TestCaseBuilder::error(&name, time, "unknown", &message),
        };
        case.set_classname(&classname);
        case.set_filepath(&xml_safe(&r.scenario.file));
        case.set_system_out(&cdata_safe(&e.detail));
        suite.add_testcase(case.build());
    }
    let mut out = format!(
        "run {} · seed {} · {} images at {}/s · processor {}",
        r.run_id, r.scenario.seed, r.scenario.images, r.scenario.rate_per_second, r.environment.processor
    );
    if let Some(err) = &r.error {
        out.push_str(&format!("\nerror: {err}"));
    }
    suite.set_system_out(&cdata_safe(&out));
    if r.outcome != Verdict::Pass && !logs.is_empty() {
        let mut err = String::new();
        for t in logs {
            err.push_str(&format!("==> logs/{}.log ({}) <==\n{}\n", t.name, if t.cut { "last lines" } else { "whole" }, t.text));
        }
        suite.set_system_err(&cdata_safe(&err));
    }
    let report = ReportBuilder::new().add_testsuite(suite.build()).build();
    let mut buf = Vec::new();
    if let Err(e) = report.write_xml(&mut buf) {
        return format!("<?xml version=\"1.0\"?><testsuites><!-- could not write: {} --></testsuites>\n", xml_safe(&e.to_string()).replace("--", "- -"))
            .into_bytes();
    }
    buf.push(b'\n');
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_removed() {
        assert_eq!(xml_safe("a\u{0}b\u{1b}[31mc\td\n"), "ab[31mc\td\n");
        assert_eq!(xml_safe("日本 ]]> <x>"), "日本 ]]> <x>");
        assert_eq!(cdata_safe("a]]>b"), "a]]]]><![CDATA[>b");
    }
}
