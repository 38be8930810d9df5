//! junit.xml stays well-formed XML for any text: control characters, `]]>`, markup,
//! invalid UTF-8 in logs. A strict parser (roxmltree) reads it back, and the text
//! that went in comes out (less what XML 1.0 cannot carry).

mod fixture;

use fixture::{history, results, CORPUS};
use harness_core::report::{junit_xml, LogTail};
use harness_model::verdict::Verdict;
use proptest::prelude::*;

/// What XML 1.0 can carry of `s` (junit.rs drops the rest and expands tabs).
fn carried(s: &str) -> String {
    s.chars()
        .filter(|&c| matches!(c, '\t' | '\n' | '\r') || !(c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}'))
        .collect::<String>()
        .replace('\t', "    ")
}

/// Parses strictly and returns the text of every `system-out` of a testcase, and
/// the suite's `system-err`.
fn parse(xml: &[u8]) -> (Vec<String>, Option<String>) {
    let text = std::str::from_utf8(xml).expect("junit.xml is UTF-8");
    let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("junit.xml is not well-formed: {e}\n{text}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let all_text = |n: roxmltree::Node| n.children().filter_map(|c| c.text()).collect::<String>();
    let outs = root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .flat_map(|tc| tc.children().filter(|c| c.has_tag_name("system-out")).map(all_text))
        .collect();
    let err = root.descendants().find(|n| n.has_tag_name("system-err")).map(all_text);
    (outs, err)
}

// Line separators are normalised by XML parsers (\r\n and \r become \n).
fn newlines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

#[test]
fn corpus_and_invalid_utf8_logs_stay_well_formed() {
    let h = history(20, CORPUS, false);
    for payload in CORPUS {
        let mut r = results(payload, Some(&h), None);
        r.expectations[0].detail = format!("{payload} ]]> {payload}");
        r.error = Some(payload.to_string());
        let log = LogTail {
            name: "processor".into(),
            text: String::from_utf8_lossy(b"ok \xff\xfe ]]> \x1b[31m\x00 <x>").into_owned(),
            cut: true,
        };
        let xml = junit_xml(&r, &[log]);
        let (outs, err) = parse(&xml);
        assert_eq!(outs[0], newlines(&carried(&r.expectations[0].detail)));
        let err = err.expect("logs in system-err of a failed run");
        assert!(err.contains("ok \u{FFFD}\u{FFFD} ]]> [31m <x>"), "{err}");
    }
}

/// CI reporters show these as durations (issue #14): the suite took the run's wall
/// time, and the expectations, judged together after the run, take no time of their
/// own, so the cases never add up to more than the run.
#[test]
fn the_suite_takes_the_runs_wall_time_and_cases_none() {
    let h = history(20, &[], false);
    let mut r = results("times", Some(&h), None);
    r.duration_seconds = 214.5;
    r.started_at = "2026-11-30T16:48:18Z".into();
    assert!(r.expectations.len() > 1, "the fixture has several expectations");
    let xml = String::from_utf8(junit_xml(&r, &[])).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let time = |n: roxmltree::Node| n.attribute("time").unwrap_or_else(|| panic!("no time on {:?}", n.tag_name())).parse::<f64>().unwrap();
    let suite = doc.descendants().find(|n| n.has_tag_name("testsuite")).unwrap();
    assert_eq!(time(suite), 214.5, "{xml}");
    assert_eq!(time(doc.root_element()), 214.5, "{xml}");
    assert!(suite.attribute("timestamp").unwrap().starts_with("2026-11-30T16:48:18"), "{xml}");
    let cases: Vec<f64> = doc.descendants().filter(|n| n.has_tag_name("testcase")).map(time).collect();
    assert_eq!(cases.len(), r.expectations.len());
    assert!(cases.iter().all(|&t| t == 0.0), "{cases:?}");
}

#[test]
fn logs_are_left_out_of_passed_runs() {
    let h = history(20, &[], false);
    let mut r = results("pass", Some(&h), None);
    r.outcome = Verdict::Pass;
    let log = LogTail { name: "kafka".into(), text: "started".into(), cut: false };
    assert_eq!(parse(&junit_xml(&r, &[log])).1, None);
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\u{0}-\u{1f}\\]>\\[<!&a-z\u{FFFE}\u{FFFF}\u{2028}]{0,30}",
        prop::sample::select(CORPUS.to_vec()).prop_map(str::to_string),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text_anywhere_parses(
        name in any_text(), detail in any_text(), expected in any_text(), id in any_text(),
        error in prop::option::of(any_text()), file in any_text(),
        log in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let h = history(12, &[], false);
        let mut r = results("prop", Some(&h), None);
        r.scenario.name = name;
        r.scenario.file = file;
        r.run_id = id.clone();
        r.expectations[0].id = id;
        r.expectations[0].expected = expected;
        r.expectations[0].detail = detail.clone();
        r.error = error;
        r.environment.processor = detail.clone();
        let tail = LogTail { name: "processor".into(), text: String::from_utf8_lossy(&log).into_owned(), cut: false };
        let (outs, _) = parse(&junit_xml(&r, &[tail]));
        prop_assert_eq!(&outs[0], &newlines(&carried(&detail)));
    }
}
