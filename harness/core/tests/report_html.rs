//! report.html: structure, escaping (XSS corpus and a property test), aborted runs,
//! fault windows and log tails. The browser test (`browser.rs`) renders it for real.

mod fixture;

use fixture::{history, report_dir, results, CORPUS};
use harness_core::report::{html_report, write_all};
use proptest::prelude::*;

/// Tags the report may contain: its own markup and plotters' SVG elements.
const ALLOWED_TAGS: &[&str] = &[
    "html", "head", "meta", "title", "style", "body", "main", "header", "footer", "section", "h1", "h2", "h3", "div", "p", "span",
    "strong", "code", "table", "thead", "tbody", "tr", "th", "td", "details", "summary", "pre", "svg", "rect", "text", "polyline", "line",
    "path", "circle", "g", "polygon",
];

/// Every tag in `html` as (name, raw text between `<` and `>`); panics on comments,
/// CDATA or processing instructions, which the report never writes.
fn tags(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("every < in markup is closed");
        let inner = &rest[..end];
        if inner.starts_with("!DOCTYPE") {
            continue;
        }
        assert!(!inner.starts_with('!') && !inner.starts_with('?'), "comment or declaration in the page: <{inner}>");
        let name: String = inner.trim_start_matches('/').chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        assert!(!name.is_empty(), "a raw '<' in text: <{}", &inner[..inner.len().min(40)]);
        out.push((name.to_ascii_lowercase(), inner.to_string()));
    }
    out
}

/// The page has only allowed tags, no event-handler attributes, no script, no raw
/// line separators.
fn assert_inert(html: &str) {
    for (name, raw) in tags(html) {
        assert!(ALLOWED_TAGS.contains(&name.as_str()), "tag <{name}> in the page: <{raw}>");
        let lower = raw.to_ascii_lowercase();
        for (i, _) in lower.match_indices(" on") {
            let attr: String = lower[i + 1..].chars().take_while(|c| c.is_ascii_alphabetic()).collect();
            assert!(!lower[i + 1 + attr.len()..].starts_with('='), "event handler attribute in <{raw}>");
        }
        assert!(!lower.contains("javascript:"), "javascript: URL in <{raw}>");
    }
    assert!(!html.contains('\u{2028}') && !html.contains('\u{2029}'), "raw U+2028/U+2029 in the page");
    assert_eq!(html.matches("<style>").count(), 1, "one style element, the report's own");
}

/// The text between `open` and the next `close`, tags removed, unescaped: what a
/// reader sees there.
fn element_text(html: &str, open: &str, close: &str) -> String {
    let start = html.find(open).unwrap_or_else(|| panic!("no {open} in the page")) + open.len();
    let end = start + html[start..].find(close).expect("closed");
    let mut text = String::new();
    let mut in_tag = false;
    for c in html[start..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    unescape(&text)
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#47;", "/")
        .replace("&#x2028;", "\u{2028}")
        .replace("&#x2029;", "\u{2029}")
        .replace("&amp;", "&")
}

/// What a string looks like on the page: controls and noncharacters as U+FFFD, CR dropped.
fn shown(s: &str) -> String {
    s.chars()
        .filter(|&c| c != '\r')
        .map(|c| {
            let u = c as u32;
            if (c.is_control() && c != '\n' && c != '\t') || (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

#[test]
fn xss_corpus_in_names_keys_logs_and_faults_stays_text() {
    let keys: Vec<&str> = CORPUS.to_vec();
    let h = history(120, &keys, true);
    for (i, payload) in CORPUS.iter().enumerate() {
        let name = format!("xss-{i}");
        let mut r = results(&name, Some(&h), None);
        r.scenario.name = payload.to_string();
        r.scenario.description = Some(payload.to_string());
        r.expectations[0].detail = format!("{} lost", payload);
        let dir = report_dir(&[payload]);
        let html = html_report(dir.path(), &r, Some(&h));
        assert_inert(&html);
        // The payload is shown as the text it is, where it belongs.
        assert_eq!(element_text(&html, "<h1>", "</h1>"), shown(payload), "scenario name");
        let scenario = element_text(&html, "<pre id=\"scenario-text\">", "</pre>");
        assert!(scenario.starts_with(&format!("# {}\n", shown(payload))), "scenario text: {scenario}");
        let logs = element_text(&html, "<pre class=\"log\">", "</pre>");
        assert!(logs.contains(&format!("ERROR cannot resize {}", shown(payload))), "log tail: {logs}");
        assert!(logs.contains("invalid utf-8 follows: \u{FFFD}\u{FFFD}\u{FFFD}( end"), "lossy log line: {logs}");
    }
    // Every corpus key is listed as a problem or in the full ledger, escaped.
    let r = results("keys", Some(&h), None);
    let html = html_report(report_dir(&[]).path(), &r, Some(&h));
    assert_inert(&html);
    let lost = element_text(&html, "<h3 id=\"lost-outputs\">", "</table>");
    assert!(lost.contains(&format!("payload/{}", shown(CORPUS[3]))), "{lost}");
    assert!(html.contains("payload&#47;&lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn page_has_every_section_and_both_charts() {
    let h = history(200, &[], true);
    let r = results("sections", Some(&h), None);
    let html = html_report(report_dir(&[]).path(), &r, Some(&h));
    assert_inert(&html);
    for id in [
        "verdict",
        "expectations",
        "ledger",
        "timeline",
        "latency",
        "environment",
        "logs",
        "timeline-chart",
        "latency-chart",
        "faults",
        "all-uploads",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "missing #{id}");
    }
    // The planted problems are named with their keys.
    assert!(html.contains("<h3 id=\"lost-outputs\">Lost thumbnails (2)</h3>"));
    assert!(html.contains("img&#47;00003.jpg"));
    assert!(html.contains("<h3 id=\"duplicate-outputs\">Duplicated thumbnails (1)</h3>"));
    assert!(html.contains("<h3 id=\"phantom-outputs\">Phantom thumbnails (1)</h3>"));
    assert!(html.contains("<h3 id=\"invalid-outputs\">Invalid thumbnails (1)</h3>"));
    assert!(html.contains("<h3 id=\"upload-failures\">Failed uploads (1)</h3>"));
    assert!(html.contains("class=\"banner fail\""));
    // Charts are SVG with axes labelled.
    assert_eq!(html.matches("<svg ").count(), 2);
    assert!(html.contains("seconds since the workload started"));
    assert!(html.contains("% of images at or below"));
}

#[test]
fn fault_windows_are_shaded_labelled_and_listed() {
    let h = history(120, &[], true);
    let with = html_report(report_dir(&[]).path(), &results("faults", Some(&h), None), Some(&h));
    let mut calm = h.clone();
    calm.faults.clear();
    let without = html_report(report_dir(&[]).path(), &results("calm", Some(&calm), None), Some(&calm));
    let chart = |html: &str| {
        let start = html.find("id=\"timeline-chart\"").expect("timeline chart");
        html[start..start + html[start..].find("</svg>").expect("svg closed")].to_string()
    };
    // Labels drawn in the chart, at the windows.
    let c = chart(&with);
    assert!(c.contains("#0 broker_kill broker-1"), "{c}");
    assert!(c.contains("#1 processor_crash processor"), "{c}");
    // Shaded: the translucent fault colour fills rectangles only when there are faults.
    assert!(chart(&with).contains("fill=\"#CF222E\""), "no fault shading");
    assert!(!chart(&without).contains("fill=\"#CF222E\""));
    // And listed, with the one whose effect was never seen marked.
    let table = element_text(&with, "<table id=\"faults\">", "</table>");
    assert!(table.contains("broker_kill") && table.contains("1.00 s") && table.contains("1.30 s") && table.contains("never"), "{table}");
    assert!(without.contains("No faults were injected in this run."));
}

#[test]
fn aborted_run_without_history_shows_the_error() {
    let err = "Kafka did not become ready within 120s; its log says:\n<b>ERROR</b> port in use ]]> \u{2028}";
    let r = results("aborted", None, Some(err));
    let dir = report_dir(&[]);
    write_all(dir.path(), &r, None).expect("reports written");
    let html = std::fs::read_to_string(dir.path().join("report.html")).expect("report.html");
    assert_inert(&html);
    assert!(html.contains("class=\"banner unknown\""));
    assert_eq!(element_text(&html, "<div class=\"error\" id=\"run-error\"><strong>The run stopped early:</strong>\n", "</div>"), err);
    assert!(html.contains("No history was recorded"));
    // Not passed, so the logs are there.
    assert!(html.contains("processor.log"));
    assert!(!dir.path().join("history.json").exists());
}

#[test]
fn logs_are_embedded_only_when_the_run_did_not_pass() {
    let mut h = history(60, &[], false);
    // A clean run: drop the planted problems.
    h.outputs.retain(|o| !o.key.starts_with("phantom/") && o.version_id != "v5-1");
    h.upload_failures.clear();
    for o in &mut h.outputs {
        o.inspection = harness_model::history::Inspection::Image { width: 128, height: 96, format: "jpeg".into() };
    }
    let ev = h.events[0].clone();
    h.events.insert(3, harness_model::history::EventSeen { key: "img/00003.jpg".into(), ..ev });
    for k in ["img/00003.jpg", "img/00009.jpg"] {
        let o = h.outputs[0].clone();
        h.outputs.push(harness_model::history::OutputVersion { key: k.into(), ..o });
    }
    let mut r = results("clean", Some(&h), None);
    r.expectations.retain(|e| e.id != "latency.upload_to_event.p99");
    r.outcome = harness_model::verdict::overall(&r.expectations);
    assert_eq!(r.outcome, harness_model::verdict::Verdict::Pass, "{:#?}", r.expectations);
    let dir = report_dir(&["secret-looking line"]);
    let pass = html_report(dir.path(), &r, Some(&h));
    assert!(pass.contains("class=\"banner pass\""));
    assert!(!pass.contains("<pre class=\"log\">") && !pass.contains("ERROR cannot resize"));
    assert!(pass.contains("No lost, duplicated, phantom or invalid items at any stage."));

    r.outcome = harness_model::verdict::Verdict::Fail;
    r.findings.lost_outputs = vec!["img/00050.jpg".into()];
    let fail = html_report(dir.path(), &r, Some(&h));
    let tail = element_text(&fail, "<pre class=\"log\">", "</pre>");
    // The last 60 lines of 102: the first lines are cut, the end is there.
    assert!(tail.starts_with("…\n"), "{tail}");
    assert!(!tail.contains("00:00:41Z") && tail.contains("00:00:42Z"), "{tail}");
    assert!(tail.contains("ERROR cannot resize secret-looking line"));
    // Lines naming a key with a problem are highlighted, others are not.
    let raw = &fail[fail.find("<pre class=\"log\">").unwrap()..];
    assert!(raw.contains("<span class=\"hl\">2026-01-01T00:00:50Z INFO processed key=&quot;img&#47;00050.jpg&quot;</span>"), "{raw}");
    assert!(!raw.contains("<span class=\"hl\">2026-01-01T00:00:51Z"), "{raw}");
    assert_eq!(tail.matches('\n').count(), 61);
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::sample::select(CORPUS.to_vec()).prop_map(str::to_string),
        "[<>&\"'/!\\-\\[\\] a-z\u{2028}\u{0}-\u{1f}]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever a name, key or error holds, the page keeps its structure and shows it as text.
    #[test]
    fn any_text_stays_text(name in arb_text(), key in arb_text(), err in arb_text()) {
        let keys = [key.as_str(), "processor_crash"];
        let h = history(30, &keys, true);
        let mut r = results("prop", Some(&h), Some(&err));
        r.scenario.name = name.clone();
        let html = html_report(report_dir(&[&key]).path(), &r, Some(&h));
        assert_inert(&html);
        prop_assert_eq!(element_text(&html, "<h1>", "</h1>"), shown(&name));
        prop_assert!(html.contains("id=\"run-error\"><strong>The run stopped early:</strong>\n"));
        let shown_err = element_text(&html, "<strong>The run stopped early:</strong>\n", "</div>");
        prop_assert_eq!(shown_err, shown(&err));
    }
}
