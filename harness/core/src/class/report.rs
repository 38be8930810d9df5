//! The class's reports: `class.html` (a self-contained matrix of students × links,
//! most broken first, a summary line per link), `junit.xml` (a testsuite per student,
//! a testcase per link), `class.json` and `class.csv` (points per link, the roster's
//! weights). Each student's doctor reports are in `students/<name>/`.

use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

use harness_model::roster::Column;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{ClassResult, State, StudentResult, Verdict};
use crate::report::{html_text, xml_safe};

/// Writes class.html, junit.xml, class.json and class.csv into `dir`.
pub fn write_all(c: &ClassResult, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("class.json"), json(c))?;
    std::fs::write(dir.join("class.csv"), csv(c))?;
    std::fs::write(dir.join("junit.xml"), junit(c))?;
    // A bug in the page must not cost the other files.
    let page = std::panic::catch_unwind(|| html(c))
        .unwrap_or_else(|_| "<!doctype html><p>class.html could not be rendered; see class.json</p>\n".into());
    std::fs::write(dir.join("class.html"), page)
}

/// The columns any student has, in the chain's order.
fn used_columns(c: &ClassResult) -> Vec<Column> {
    Column::ALL.into_iter().filter(|col| c.students.iter().any(|s| s.cells.contains_key(col))).collect()
}

/// Per link: how many students have it working, of those it applies to.
pub fn summary(c: &ClassResult) -> Vec<(Column, usize, usize)> {
    used_columns(c)
        .into_iter()
        .map(|col| {
            let of = c.students.iter().filter(|s| s.cells.contains_key(&col)).count();
            let working = c.students.iter().filter(|s| s.cells.get(&col).is_some_and(|cell| cell.state.works())).count();
            (col, working, of)
        })
        .collect()
}

pub fn json(c: &ClassResult) -> String {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        let summary: serde_json::Map<String, serde_json::Value> = summary(c)
            .into_iter()
            .map(|(col, working, of)| (col.key().to_string(), serde_json::json!({ "working": working, "of": of })))
            .collect();
        o.insert("summary".into(), summary.into());
    }
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

/// `student,<link>…,total,max`: a link's weight when it works, 0 when not, empty when
/// it does not apply to the student.
pub fn csv(c: &ClassResult) -> String {
    let columns = Column::ALL;
    let mut out = String::from("student");
    for col in columns {
        out.push(',');
        out.push_str(col.key());
    }
    out.push_str(",total,max\n");
    for s in &c.students {
        out.push_str(&csv_field(&s.name));
        for col in columns {
            out.push(',');
            if let Some(cell) = s.cells.get(&col) {
                let w = c.weights.get(&col).copied().unwrap_or(1.0);
                out.push_str(&number(if cell.state.works() { w } else { 0.0 }));
            }
        }
        let _ = writeln!(out, ",{},{}", number(s.points), number(s.max_points));
    }
    out
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// RFC 4180, and a leading `=`, `+`, `-` or `@` quoted away from spreadsheets' formulas.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) { format!("'{s}") } else { s.to_string() };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// A testsuite per student, a testcase per link that applies: broken is a failure
/// (message: what was seen; text: cause and fix), not reached is skipped.
pub fn junit(c: &ClassResult) -> Vec<u8> {
    let mut report = Report::new("harness-class");
    for s in &c.students {
        let mut suite = TestSuite::new(xml_safe(&s.name));
        suite.set_time(Duration::from_millis(s.millis));
        for (col, cell) in &s.cells {
            let status = match cell.state {
                State::Ok | State::Warning => TestCaseStatus::success(),
                State::Skipped | State::NotChecked => {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(xml_safe(&cell.line));
                    st
                }
                State::Error => {
                    let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    st.set_type(col.label());
                    st.set_message(xml_safe(&cell.line));
                    st.set_description(xml_safe(&format!("{}\n{}", cell.line, cell.detail)));
                    st
                }
            };
            let mut case = TestCase::new(col.label(), status);
            case.set_classname(xml_safe(&format!("class.{}", s.name)));
            case.set_system_out(xml_safe(&format!("{}: {}\n{}", cell.state.label(), cell.line, cell.detail)));
            suite.add_test_case(case);
        }
        // A student whose checks stopped (budget, Ctrl-C, no answer) fails as a whole.
        if matches!(s.verdict, Verdict::OverBudget | Verdict::Failed | Verdict::Interrupted) {
            let mut st = TestCaseStatus::non_success(NonSuccessKind::Error);
            st.set_message(xml_safe(&s.first_line));
            let mut case = TestCase::new("checks ended", st);
            case.set_classname(xml_safe(&format!("class.{}", s.name)));
            suite.add_test_case(case);
        }
        suite.set_system_out(xml_safe(&s.first_line));
        report.add_test_suite(suite);
    }
    let mut buf = Vec::new();
    if report.serialize(&mut buf).is_err() {
        return b"<?xml version=\"1.0\"?><testsuites/>\n".to_vec();
    }
    buf.push(b'\n');
    buf
}

fn symbol(state: State) -> &'static str {
    match state {
        State::Ok => "✓",
        State::Warning => "!",
        State::Error => "✗",
        State::Skipped => "–",
        State::NotChecked => "·",
    }
}

fn state_class(state: State) -> &'static str {
    match state {
        State::Ok => "ok",
        State::Warning => "warn",
        State::Error => "err",
        State::Skipped => "skip",
        State::NotChecked => "none",
    }
}

/// One page, no external resource: the class's matrix, a row per student (most broken
/// first), a cell per link with its first line on hover, and a summary row per link.
pub fn html(c: &ClassResult) -> String {
    let columns = used_columns(c);
    let mut head = String::from("<tr><th class=\"name\">student</th><th>verdict</th>");
    for col in &columns {
        let _ = write!(head, "<th class=\"link\"><span>{}</span></th>", html_text(col.label()));
    }
    head.push_str("<th>points</th><th>first broken link: what the doctor said</th></tr>\n");
    let mut rows = String::new();
    for s in &c.students {
        let name = match &s.report {
            Some(r) => format!("<a href=\"{}\">{}</a>", html_text(r), html_text(&s.name)),
            None => html_text(&s.name),
        };
        let _ =
            write!(rows, "<tr><td class=\"name\">{name}</td><td class=\"v {}\">{}</td>", verdict_class(s), html_text(s.verdict.label()));
        for col in &columns {
            match s.cells.get(col) {
                Some(cell) => {
                    let title = format!(
                        "{}: {}\n{}{}",
                        col.label(),
                        cell.state.label(),
                        cell.line,
                        if cell.detail.is_empty() { String::new() } else { format!("\n{}", cell.detail) }
                    );
                    let _ = write!(
                        rows,
                        "<td class=\"c {}\" title=\"{}\">{}</td>",
                        state_class(cell.state),
                        html_text(title.trim_end()),
                        symbol(cell.state)
                    );
                }
                None => rows.push_str("<td class=\"c na\" title=\"does not apply\"></td>"),
            }
        }
        let _ = writeln!(
            rows,
            "<td class=\"pts\">{} / {}</td><td class=\"line\">{}{}</td></tr>",
            number(s.points),
            number(s.max_points),
            s.first_broken.map(|c| format!("<b>{}</b>: ", html_text(c.label()))).unwrap_or_default(),
            html_text(&s.first_line)
        );
    }
    let mut foot = String::from("<tr class=\"sum\"><td class=\"name\">working</td><td></td>");
    let mut lines = String::new();
    for (col, working, of) in summary(c) {
        let _ = write!(
            foot,
            "<td class=\"c\" title=\"{working} of {of} students have a working {}\">{working}/{of}</td>",
            html_text(col.label())
        );
        let _ = writeln!(lines, "<li>{working}/{of} have a working {}</li>", html_text(col.label()));
    }
    foot.push_str("<td></td><td></td></tr>\n");
    let broken = c.students.iter().filter(|s| s.verdict != Verdict::Healthy && s.verdict != Verdict::Warnings).count();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>harness class: {roster}</title>\n<style>\
body{{font:14px/1.45 system-ui,sans-serif;margin:2em}}h1{{font-size:1.3em}}table{{border-collapse:collapse}}\
th,td{{border:1px solid #ddd;padding:.3em .45em;vertical-align:middle}}th.link{{height:9em;white-space:nowrap;vertical-align:bottom}}\
th.link span{{writing-mode:vertical-rl;transform:rotate(180deg)}}td.name{{font-weight:600;white-space:nowrap}}\
td.c{{text-align:center;min-width:1.8em;cursor:help}}td.ok{{background:#e6f4ea;color:#1b7f2a}}td.warn{{background:#fff4d6;color:#8a5a00}}\
td.err{{background:#fdecea;color:#b00020;font-weight:bold}}td.skip{{background:#f4f4f4;color:#888}}td.none{{background:#eee;color:#aaa}}\
td.na{{background:repeating-linear-gradient(45deg,#fff,#fff 4px,#f2f2f2 4px,#f2f2f2 8px)}}td.v{{white-space:nowrap}}td.v.bad{{color:#b00020}}\
td.v.good{{color:#1b7f2a}}td.v.meh{{color:#8a5a00}}td.line{{max-width:48em;font-size:.92em}}td.pts{{white-space:nowrap;text-align:right}}\
tr.sum td{{font-weight:600;background:#fafafa}}ul.sum{{columns:2}}</style></head><body>\n\
<h1>harness class: {roster}</h1>\n<p>{n} students, {broken} with a broken link or no answer · checked in {secs:.1} s with {jobs} at once{interrupted}</p>\n\
<table>\n{head}{rows}{foot}</table>\n<h2>What the class got right</h2>\n<ul class=\"sum\">\n{lines}</ul>\n\
<p>✓ works · ! works, with a warning · ✗ broken · – skipped (a link before it is broken) · · not checked. Hover a cell for what was seen; \
a student's name opens their doctor's report.</p>\n</body></html>\n",
        roster = html_text(&c.roster),
        n = c.students.len(),
        secs = c.millis as f64 / 1000.0,
        jobs = c.jobs,
        interrupted = if c.interrupted { " · <b>interrupted (Ctrl-C): a partial report</b>" } else { "" },
    )
}

fn verdict_class(s: &StudentResult) -> &'static str {
    match s.verdict {
        Verdict::Healthy => "good",
        Verdict::Warnings => "meh",
        _ => "bad",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::{Cell, ClassResult, State, StudentResult, Verdict};
    use super::*;

    fn class() -> ClassResult {
        let cell = |state: State, line: &str| Cell { state, line: line.into(), detail: "fix: <do it>".into() };
        let student = |name: &str, cells: Vec<(Column, Cell)>, verdict: Verdict| {
            let cells: BTreeMap<Column, Cell> = cells.into_iter().collect();
            let points = cells.values().filter(|c| c.state.works()).count() as f64;
            StudentResult {
                name: name.into(),
                verdict,
                first_line: "BROKEN at MinIO's Kafka target: <x> is not a Kafka listener".into(),
                first_broken: cells.iter().find(|(_, c)| c.state == State::Error).map(|(c, _)| *c),
                max_points: cells.len() as f64,
                cells,
                points,
                millis: 1200,
                report: Some(format!("students/{name}/report.html")),
            }
        };
        ClassResult {
            roster: "class.yaml".into(),
            jobs: 2,
            millis: 4000,
            interrupted: false,
            weights: Column::ALL.iter().map(|c| (*c, if *c == Column::Canary { 3.0 } else { 1.0 })).collect(),
            students: vec![
                student(
                    "=bob",
                    vec![
                        (Column::S3, cell(State::Ok, "S3")),
                        (Column::MinioKafkaTarget, cell(State::Error, "<script>")),
                        (Column::Canary, cell(State::Skipped, "skipped")),
                    ],
                    Verdict::Broken,
                ),
                student(
                    "alice",
                    vec![
                        (Column::S3, cell(State::Ok, "S3")),
                        (Column::MinioKafkaTarget, cell(State::Ok, "ok")),
                        (Column::Canary, cell(State::Ok, "ok")),
                    ],
                    Verdict::Healthy,
                ),
            ],
        }
    }

    #[test]
    fn every_report_carries_the_matrix() {
        let c = class();
        let h = html(&c);
        assert!(h.contains("&lt;script&gt;") && !h.contains("<script>"), "escaped");
        // `/` is escaped as everywhere in the reports; a browser reads the entity back.
        assert!(h.contains("<a href=\"students&#47;alice&#47;report.html\">alice</a>"), "{h}");
        assert!(
            h.contains("<li>1/2 have a working MinIO&#39;s Kafka target</li>")
                || h.contains("<li>1/2 have a working MinIO's Kafka target</li>"),
            "{h}"
        );
        let csv = csv(&c);
        assert!(csv.starts_with("student,manifests,cluster,s3,buckets,"), "{csv}");
        // Canary weighs 3: alice gets it, bob's is skipped (0); quoted formula.
        assert!(csv.contains("\n'=bob,,,1,,,0,,,,,0,,,1,3\n"), "{csv}");
        assert!(csv.contains("\nalice,,,1,,,1,,,,,3,,,3,3\n"), "{csv}");
        let x = String::from_utf8(junit(&c)).unwrap();
        assert!(x.contains("<testsuite name=\"=bob\"") && x.contains("<failure") && x.contains("<skipped"), "{x}");
        let j: serde_json::Value = serde_json::from_str(&json(&c)).unwrap();
        assert_eq!(j["summary"]["minio_kafka_target"]["working"], 1);
        assert_eq!(j["students"][0]["first_broken"], "minio_kafka_target");
    }
}
