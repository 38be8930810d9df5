//! The doctor's answer in every form: the terminal (verdict first, then one line
//! per link with cause and fix under each problem), JSON, JUnit XML and a
//! self-contained HTML page, so a teacher's CI can collect it like a run's.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use harness_model::text::printable;

use super::{Diagnosis, Finding, Severity};
use crate::report::{html_text, xml_safe};

/// The first line: healthy, or where the chain breaks first and why.
pub fn verdict(d: &Diagnosis) -> String {
    let took = format!("{:.1} s", d.millis as f64 / 1000.0);
    match d.first_error() {
        Some(f) => {
            format!("doctor: BROKEN at {}: {} (answered in {took})", f.link.name(), printable(f.cause.as_deref().unwrap_or(&f.evidence)))
        }
        None if d.worst() == Severity::Warning => {
            let n = d.findings.iter().filter(|f| f.severity == Severity::Warning).count();
            format!("doctor: works, with {n} warning(s) (answered in {took})")
        }
        None => format!("doctor: healthy: every link works (answered in {took})"),
    }
}

/// For the terminal: every string that came from outside (a cluster, a broker, a
/// pod's answer) goes through [`printable`].
pub fn text(d: &Diagnosis) -> String {
    let mut out = verdict(d);
    let _ = write!(
        out,
        "\n  S3 {} · buckets {} → {} · Kafka {} · topic {}{}\n\n",
        printable(or_unknown(&d.s3_endpoint)),
        printable(&d.source_bucket),
        printable(&d.target_bucket),
        printable(or_unknown(&d.kafka_bootstrap)),
        printable(&d.topic),
        d.walked_from.as_ref().map(|w| format!("\n  walked from {}", printable(w))).unwrap_or_default()
    );
    let width = d.findings.iter().map(|f| f.link.name().len()).max().unwrap_or(0);
    for f in &d.findings {
        let mark = match f.severity {
            Severity::Ok => "ok  ",
            Severity::Skipped => "skip",
            Severity::Warning => "WARN",
            Severity::Error => "FAIL",
        };
        let _ = writeln!(out, "  {mark}  {:width$}  {}: {}", f.link.name(), printable(&f.check), printable(&f.evidence));
        if f.severity != Severity::Ok {
            if let Some(c) = &f.cause {
                let _ = writeln!(out, "        {:width$}  cause: {}", "", printable(c));
            }
            if let Some(x) = &f.fix {
                let _ = writeln!(out, "        {:width$}  fix:   {}", "", printable(x));
            }
        }
    }
    out
}

/// An endpoint the doctor was not given and did not find.
fn or_unknown(endpoint: &str) -> &str {
    if endpoint.is_empty() {
        "(not found)"
    } else {
        endpoint
    }
}

pub fn json(d: &Diagnosis) -> String {
    let mut v = serde_json::to_value(d).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("verdict".into(), verdict(d).into());
        o.insert("healthy".into(), d.first_error().is_none().into());
    }
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// One test case per finding: errors fail, skips are skipped, warnings pass with
/// the warning in their output (JUnit has no warning).
pub fn junit(d: &Diagnosis) -> Vec<u8> {
    let mut suite = TestSuite::new("doctor");
    suite.set_time(Duration::from_millis(d.millis));
    for f in &d.findings {
        let detail = detail(f);
        let status = match f.severity {
            Severity::Ok | Severity::Warning => TestCaseStatus::success(),
            Severity::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(xml_safe(&f.evidence));
                s
            }
            Severity::Error => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_type(f.link.name());
                s.set_message(xml_safe(&f.evidence));
                s.set_description(xml_safe(&detail));
                s
            }
        };
        let mut case = TestCase::new(xml_safe(&format!("{}: {}", f.link.name(), f.check)), status);
        case.set_classname("harness.doctor");
        case.set_time(Duration::from_millis(f.millis));
        case.set_system_out(xml_safe(&format!("{}: {}\n{detail}", f.severity.label(), f.evidence)));
        suite.add_test_case(case);
    }
    suite.set_system_out(xml_safe(&verdict(d)));
    let mut report = Report::new("harness-doctor");
    report.add_test_suite(suite);
    let mut buf = Vec::new();
    if report.serialize(&mut buf).is_err() {
        return b"<?xml version=\"1.0\"?><testsuites/>\n".to_vec();
    }
    buf.push(b'\n');
    buf
}

fn detail(f: &Finding) -> String {
    let mut s = String::new();
    if let Some(c) = &f.cause {
        let _ = writeln!(s, "cause: {c}");
    }
    if let Some(x) = &f.fix {
        let _ = writeln!(s, "fix: {x}");
    }
    s
}

/// A page with no external resource: the verdict, then a row per finding.
pub fn html(d: &Diagnosis) -> String {
    let mut rows = String::new();
    for f in &d.findings {
        let _ = writeln!(
            rows,
            "<tr class=\"{sev}\"><td>{sev}</td><td>{link}</td><td>{check}</td><td>{evidence}{cause}{fix}</td><td>{ms} ms</td></tr>",
            sev = f.severity.label(),
            link = html_text(f.link.name()),
            check = html_text(&f.check),
            evidence = html_text(&f.evidence),
            cause = f.cause.as_deref().map(|c| format!("<div class=\"cause\">cause: {}</div>", html_text(c))).unwrap_or_default(),
            fix = f.fix.as_deref().map(|x| format!("<div class=\"fix\">fix: <code>{}</code></div>", html_text(x))).unwrap_or_default(),
            ms = f.millis,
        );
    }
    let healthy = d.first_error().is_none();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>harness doctor</title>\n<style>\
body{{font:14px/1.45 system-ui,sans-serif;margin:2em;max-width:80em}}h1{{font-size:1.3em}}\
.verdict{{padding:.6em 1em;border-radius:4px;background:{bg}}}table{{border-collapse:collapse;width:100%;margin-top:1em}}\
td{{border-top:1px solid #ddd;padding:.35em .5em;vertical-align:top}}tr.error td:first-child{{color:#b00020;font-weight:bold}}\
tr.warning td:first-child{{color:#8a5a00;font-weight:bold}}tr.skipped{{color:#777}}tr.ok td:first-child{{color:#1b7f2a}}\
.cause{{margin-top:.3em}}.fix code{{background:#f4f4f4;padding:.1em .3em;white-space:pre-wrap}}</style></head><body>\n\
<h1>harness doctor</h1>\n<p class=\"verdict\">{verdict}</p>\n\
<p>S3 {s3} · buckets {src} → {dst} · Kafka {kafka} · topic {topic}{from}</p>\n\
<table><tr><th>result</th><th>link</th><th>check</th><th>what was seen</th><th>took</th></tr>\n{rows}</table>\n</body></html>\n",
        bg = if healthy { "#e6f4ea" } else { "#fdecea" },
        verdict = html_text(&verdict(d)),
        s3 = html_text(or_unknown(&d.s3_endpoint)),
        src = html_text(&d.source_bucket),
        dst = html_text(&d.target_bucket),
        kafka = html_text(or_unknown(&d.kafka_bootstrap)),
        topic = html_text(&d.topic),
        from = d.walked_from.as_deref().map(|w| format!("<br>walked from {}", html_text(w))).unwrap_or_default(),
    )
}

/// Writes `doctor.json`, `junit.xml` and `report.html` into `dir`.
pub fn write_reports(d: &Diagnosis, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("doctor.json"), json(d))?;
    std::fs::write(dir.join("junit.xml"), junit(d))?;
    std::fs::write(dir.join("report.html"), html(d))
}

#[cfg(test)]
mod tests {
    use super::super::Link;
    use super::*;

    fn sample() -> Diagnosis {
        Diagnosis {
            s3_endpoint: "http://127.0.0.1:9000".into(),
            kafka_bootstrap: "127.0.0.1:9092".into(),
            topic: "minio-events".into(),
            source_bucket: "images".into(),
            target_bucket: "thumbnails".into(),
            findings: vec![
                Finding::ok(Link::S3, "S3 API", "credentials valid"),
                Finding::error(Link::MinioKafkaTarget, "MinIO → 127.0.0.1:8080", "an HTTP server answered: \"HTTP/1.1 400 Bad Request\"")
                    .because("127.0.0.1:8080 is not a Kafka listener <script>")
                    .fix("mc admin config set ALIAS notify_kafka:1 brokers=127.0.0.1:9092"),
                Finding::skipped(Link::Pipeline, "canary", "fix the errors above first"),
            ],
            millis: 420,
            walked_from: None,
        }
    }

    #[test]
    fn the_verdict_names_the_first_broken_link_and_its_cause() {
        let d = sample();
        assert_eq!(
            verdict(&d),
            "doctor: BROKEN at MinIO's Kafka target: 127.0.0.1:8080 is not a Kafka listener <script> (answered in 0.4 s)"
        );
        let t = text(&d);
        assert!(t.starts_with("doctor: BROKEN"), "{t}");
        assert!(t.contains("FAIL  MinIO's Kafka target") && t.contains("fix:   mc admin config set"), "{t}");
    }

    #[test]
    fn terminal_escapes_in_quoted_evidence_are_shown_not_obeyed() {
        let mut d = sample();
        d.findings[1].evidence = "answered \x1b[2J\x1b]0;pwned\x07 then\rFAKE ok".into();
        d.findings[1].cause = Some("a listener that clears the screen\x1b[2J".into());
        d.topic = "t\u{202e}cipot".into();
        let t = text(&d);
        assert!(!t.contains('\x1b') && !t.contains('\r') && !t.contains('\u{202e}'), "{t:?}");
        assert!(t.contains("answered \\u{1b}[2J\\u{1b}]0;pwned\\u{7} then\\rFAKE ok"), "{t}");
        assert!(verdict(&d).ends_with("clears the screen\\u{1b}[2J (answered in 0.4 s)"), "{}", verdict(&d));
    }

    #[test]
    fn every_format_carries_the_findings_escaped() {
        let d = sample();
        let j: serde_json::Value = serde_json::from_str(&json(&d)).unwrap();
        assert_eq!(j["healthy"], false);
        assert_eq!(j["findings"][1]["severity"], "error");
        assert_eq!(j["findings"][1]["link"], "minio_kafka_target");
        let x = String::from_utf8(junit(&d)).unwrap();
        assert!(x.contains("<failure") && x.contains("<skipped") && x.contains("tests=\"3\""), "{x}");
        let h = html(&d);
        assert!(!h.contains("<script>") && h.contains("&lt;script&gt;"), "escaped");
        assert!(h.contains("notify_kafka:1"));
    }
}
