//! The top of the report: header, verdict banner, expectations.

use harness_model::results::RunResults;
use harness_model::scenario::Stage;
use harness_model::verdict::Verdict;

use super::charts::fmt_ms;
use super::page::Page;

pub fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
        Verdict::Unknown => "unknown",
    }
}

pub fn header(p: &mut Page, r: &RunResults) {
    p.raw("<header class=\"top\"><h1>").text(&r.scenario.name).raw("</h1><div class=\"meta\">run ");
    p.text(&r.run_id).raw(" · started ").text(&r.started_at).raw(" · ");
    p.text(&format!("{:.1} s", r.duration_seconds)).raw("</div></header>\n");
    if let Some(d) = &r.scenario.description {
        p.el("p", "note", d.trim());
    }
}

pub fn banner(p: &mut Page, r: &RunResults) {
    p.raw("<div class=\"banner ").raw(verdict_class(r.outcome)).raw("\" id=\"verdict\" role=\"status\">");
    p.el("div", "word", r.outcome.label());
    p.el("div", "why", &why(r));
    p.raw("</div>\n");
    if let Some(err) = &r.error {
        p.raw("<div class=\"error\" id=\"run-error\"><strong>The run stopped early:</strong>\n").text(err).raw("</div>\n");
    }

    let c = &r.counts;
    let mut stats: Vec<(String, &'static str)> = vec![
        (c.uploads.to_string(), "images uploaded"),
        (c.output_versions.to_string(), "thumbnail versions"),
        ((c.lost_outputs + c.duplicate_outputs + c.phantom_outputs + c.invalid_outputs).to_string(), "items with problems"),
    ];
    if let Some(t) = r.metrics.throughput.outputs_per_second {
        stats.push((format!("{t:.1}/s"), "throughput"));
    }
    if let Some(l) = r.metrics.latency(Stage::EndToEnd) {
        stats.push((fmt_ms(l.p95_ms), "p95 end-to-end"));
    }
    stats.push((format!("{:.1} s", r.duration_seconds), "run time"));
    p.raw("<div class=\"stats\">");
    for (v, k) in stats {
        p.raw("<div class=\"stat\">").el("div", "v", &v).raw("<div class=\"k\">").raw(k).raw("</div></div>");
    }
    p.raw("</div>\n");
}

/// One sentence under the verdict word.
fn why(r: &RunResults) -> String {
    let ids = |v: Verdict| -> Vec<&str> { r.expectations.iter().filter(|e| e.verdict == v).map(|e| e.id.as_str()).collect() };
    let n = r.expectations.len();
    match r.outcome {
        Verdict::Pass => format!("Every expectation was met ({n} of {n})."),
        Verdict::Fail => {
            let failed = ids(Verdict::Fail);
            format!("{} of {n} expectations failed: {}.", failed.len(), failed.join(", "))
        }
        Verdict::Unknown if r.error.is_some() => "The run could not be judged: it stopped before the workload finished.".to_string(),
        Verdict::Unknown if n == 0 => "The run could not be judged: the scenario has no expectations.".to_string(),
        Verdict::Unknown => {
            let unknown = ids(Verdict::Unknown);
            format!("The run could not be judged: {} of {n} expectations are unknown: {}.", unknown.len(), unknown.join(", "))
        }
    }
}

pub fn expectations(p: &mut Page, r: &RunResults) {
    p.raw("<section id=\"expectations\"><h2>Expectations</h2>\n");
    if r.expectations.is_empty() {
        p.raw("<p class=\"note\">The scenario states no expectations.</p></section>\n");
        return;
    }
    p.raw("<table>").head(&["Verdict", "Expectation", "What was found"]).raw("<tbody>\n");
    for e in &r.expectations {
        p.raw("<tr><td><span class=\"pill ").raw(verdict_class(e.verdict)).raw("\">").text(e.verdict.label()).raw("</span></td>");
        p.raw("<td><div class=\"key\"><code>").text(&e.id).raw("</code></div>").el("div", "note", &e.expected).raw("</td>");
        p.el("td", "", &e.detail).raw("</tr>\n");
    }
    p.raw("</tbody></table></section>\n");
}
