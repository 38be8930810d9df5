//! `report.html`: one self-contained page a person wants to read.
//!
//! Verdict banner, expectations, per-stage ledger with keys, timeline (uploads,
//! events, outputs per second, fault windows shaded), latency per stage, environment
//! and scenario, and service log tails when the run did not pass. Nothing is fetched:
//! CSS is inline, charts are inline SVG drawn by plotters, there is no script at all
//! and the Content-Security-Policy forbids any.
//!
//! Escaping: every piece of run data enters the page through [`page::Page::text`]
//! (which calls [`escape::text`]); fixed markup is `&'static str`.

mod charts;
mod escape;
pub(crate) use escape::text as escape_text;
mod ledger;
mod page;
mod sections;
mod summary;

use std::path::Path;

use harness_model::history::History;
use harness_model::results::RunResults;

use super::logs;
use page::Page;

/// Largest scenario text embedded (a scenario file is small; this guards the page).
const MAX_SCENARIO_BYTES: usize = 64 * 1024;

/// Everything the page shows.
pub struct Input<'a> {
    pub results: &'a RunResults,
    /// `None` when the run stopped before it recorded a history.
    pub history: Option<&'a History>,
    pub scenario_text: Option<String>,
    pub logs: Vec<logs::LogTail>,
}

impl<'a> Input<'a> {
    /// Gathers the scenario text and log tails from the run's report folder `dir`.
    pub fn from_dir(dir: &Path, results: &'a RunResults, history: Option<&'a History>, logs: Vec<logs::LogTail>) -> Input<'a> {
        Input { results, history, scenario_text: scenario_text(dir, results), logs }
    }
}

/// The scenario as it ran: `scenario.yaml` in the report folder if it is there yet,
/// else the file the run was started with.
fn scenario_text(dir: &Path, r: &RunResults) -> Option<String> {
    let bytes = std::fs::read(dir.join("scenario.yaml")).or_else(|_| std::fs::read(&r.scenario.file)).ok()?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if text.len() > MAX_SCENARIO_BYTES {
        let mut cut = MAX_SCENARIO_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n…");
    }
    Some(text)
}

/// A page that says the report could not be drawn (a harness bug), with the verdict.
pub fn fallback(r: &RunResults) -> String {
    let mut p = Page::default();
    p.raw(page::HEAD).raw("<title>").text(&format!("{} · {}", r.outcome.label(), r.scenario.name)).raw("</title>\n");
    p.raw(page::STYLE).raw("</head>\n<body><main>\n");
    summary::header(&mut p, r);
    summary::banner(&mut p, r);
    p.el("p", "error", "The rest of this report could not be drawn (a harness bug); results.json has every number.");
    summary::expectations(&mut p, r);
    p.raw("</main></body></html>\n");
    p.finish()
}

/// The page.
pub fn render(input: &Input) -> String {
    let r = input.results;
    let mut p = Page::default();
    p.raw(page::HEAD).raw("<title>").text(&format!("{} · {} · {}", r.outcome.label(), r.scenario.name, r.run_id)).raw("</title>\n");
    p.raw(page::STYLE).raw("</head>\n<body><main>\n");
    summary::header(&mut p, r);
    summary::banner(&mut p, r);
    summary::expectations(&mut p, r);
    ledger::section(&mut p, r, input.history);
    sections::timeline(&mut p, input.history);
    sections::latency(&mut p, r);
    sections::environment(&mut p, r, input.scenario_text.as_deref());
    sections::logs(&mut p, r, &input.logs);
    p.raw("<footer>harness ").text(&r.harness_version).raw(" · report.html is self-contained: no scripts, nothing fetched</footer>\n");
    p.raw("</main></body></html>\n");
    p.finish()
}

#[cfg(test)]
mod tests {
    use harness_model::results::{RunResults, ScenarioInfo};
    use harness_model::verdict::{ExpectationResult, Verdict};

    #[test]
    fn fallback_keeps_the_verdict_and_escapes() {
        let r = RunResults {
            schema_version: 1,
            harness_version: "0".into(),
            run_id: "r".into(),
            scenario: ScenarioInfo {
                name: "<b>x</b>".into(),
                file: "x.yaml".into(),
                description: None,
                seed: 1,
                images: 1,
                rate_per_second: 1.0,
                thumbnail_width: 128,
            },
            started_at: "t".into(),
            duration_seconds: 1.0,
            outcome: Verdict::Fail,
            exit_code: 1,
            error: None,
            expectations: vec![ExpectationResult {
                id: "exactly_once".into(),
                expected: "e".into(),
                verdict: Verdict::Fail,
                detail: "<img>".into(),
            }],
            counts: Default::default(),
            metrics: Default::default(),
            timings: Default::default(),
            environment: Default::default(),
            findings: Default::default(),
            ledger: Vec::new(),
            faults: Vec::new(),
        };
        let page = super::fallback(&r);
        assert!(page.contains("class=\"banner fail\""));
        assert!(page.contains("&lt;b&gt;x&lt;&#47;b&gt;") && page.contains("&lt;img&gt;"));
        assert!(!page.contains("<img") && !page.contains("<b>"));
    }
}
