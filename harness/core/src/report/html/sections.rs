//! The report's lower sections: timeline with faults, latency, environment, logs.

use harness_model::check::Ledger;
use harness_model::history::History;
use harness_model::metrics;
use harness_model::results::RunResults;
use harness_model::scenario::Stage;
use harness_model::verdict::Verdict;

use super::charts::{self, fmt_ms};
use super::page::Page;
use crate::report::logs::{self, LogTail};

pub fn timeline(p: &mut Page, history: Option<&History>) {
    p.raw("<section id=\"timeline\"><h2>Timeline</h2>\n");
    let Some(h) = history else {
        p.el("p", "note", "No history was recorded: the run stopped before the workload ran.");
        p.raw("</section>\n");
        return;
    };
    p.raw("<div class=\"legend\"><span><span class=\"sw c0\"></span>uploads acknowledged</span><span><span class=\"sw c1\"></span>events on the topic</span><span><span class=\"sw c2\"></span>thumbnails seen</span>");
    if !h.faults.is_empty() {
        p.raw("<span><span class=\"sw fault\"></span>fault injected → healed (dashed: effect seen)</span><span><span class=\"sw recover\"></span>healed → recovered</span>");
    }
    p.raw("</div>\n");
    match charts::timeline(h) {
        Some(svg) => {
            p.raw("<div class=\"chart\" id=\"timeline-chart\">").svg(svg).raw("</div>\n");
        }
        None => {
            p.el("p", "note", "Nothing was uploaded, seen or injected: there is no timeline to draw.");
        }
    }
    faults(p, h);
    p.raw("</section>\n");
}

fn faults(p: &mut Page, h: &History) {
    if h.faults.is_empty() {
        p.el("p", "note", "No faults were injected in this run.");
        return;
    }
    let t0 = h.workload_started;
    let at = |t: Option<u64>| t.map_or_else(|| "never".to_string(), |t| format!("{:.2} s", (t as f64 - t0 as f64) / 1e6));
    p.raw("<h3>Faults</h3><table id=\"faults\">")
        .head(&["#", "Kind", "Target", "Injected", "Effect seen", "Healed", "Recovered", "Proof"])
        .raw("<tbody>\n");
    for f in &h.faults {
        let effect_class = if f.effect_seen_at.is_none() { "bad" } else { "" };
        p.raw("<tr>").el("td", "num", &f.index.to_string()).el("td", "key short", &f.kind).el("td", "key short", &f.target);
        p.el("td", "num", &at(Some(f.injected_at)))
            .el("td", effect_class, &at(f.effect_seen_at))
            .el("td", "num", &at(f.healed_at))
            .el("td", "num", &at(f.recovered_at))
            .el("td", "", &f.proof)
            .raw("</tr>\n");
    }
    p.raw("</tbody></table>\n");
    p.el("p", "note", "Times are seconds since the workload started; a fault whose effect was never seen means the run cannot pass.");
}

pub fn latency(p: &mut Page, r: &RunResults) {
    p.raw("<section id=\"latency\"><h2>Latency per stage</h2>\n");
    if r.metrics.latency.is_empty() {
        p.el("p", "note", "No latency samples: nothing reached a measured stage.");
        p.raw("</section>\n");
        return;
    }
    p.raw("<table>")
        .raw("<thead><tr><th>Stage</th><th class=\"num\">Samples</th><th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p95</th><th class=\"num\">p99</th><th class=\"num\">max</th><th class=\"num\">mean</th></tr></thead><tbody>\n");
    for (i, stage) in Stage::ALL.iter().enumerate() {
        let Some(l) = r.metrics.latency(*stage) else { continue };
        p.raw("<tr><td><span class=\"sw ").raw(["c0", "c1", "c3"][i]).raw("\"></span>").text(stage.label()).raw("</td>");
        p.el("td", "num", &l.count.to_string());
        for v in [l.p50_ms, l.p90_ms, l.p95_ms, l.p99_ms, l.max_ms, l.mean_ms] {
            p.el("td", "num", &fmt_ms(v));
        }
        p.raw("</tr>\n");
    }
    p.raw("</tbody></table>\n");
    let t = &r.metrics.throughput;
    if let Some(rate) = t.outputs_per_second {
        p.el(
            "p",
            "note",
            &format!(
                "Throughput: {rate:.1} thumbnails/s over {:.1} s (the middle 90 % of outputs, {} thumbnails).",
                t.window_seconds, t.outputs_in_window
            ),
        );
    }
    let ledger = Ledger { entries: r.ledger.clone(), ..Default::default() };
    let stages: Vec<(usize, Vec<u64>)> = Stage::ALL.iter().enumerate().map(|(i, s)| (i, metrics::samples(&ledger, *s))).collect();
    if let Some(svg) = charts::latency_cdf(&stages) {
        p.raw("<h3>Distribution</h3><div class=\"chart\" id=\"latency-chart\">").svg(svg).raw("</div>\n");
    }
    p.raw("</section>\n");
}

pub fn environment(p: &mut Page, r: &RunResults, scenario_text: Option<&str>) {
    p.raw("<section id=\"environment\"><h2>Environment</h2><div class=\"grid2\"><div><table><tbody>\n");
    let s = &r.scenario;
    let rows: Vec<(&'static str, String)> = vec![
        ("Scenario", format!("{} ({})", s.name, s.file)),
        ("Seed", s.seed.to_string()),
        ("Workload", format!("{} images at {}/s, thumbnails {} px wide", s.images, s.rate_per_second, s.thumbnail_width)),
        ("Processor", r.environment.processor.clone()),
        ("Environment", r.environment.kind.clone()),
        ("Harness", format!("{} (results schema {})", r.harness_version, r.schema_version)),
        ("Run id", r.run_id.clone()),
        ("Started", r.started_at.clone()),
        ("Exit code", r.exit_code.to_string()),
    ];
    for (k, v) in rows {
        p.raw("<tr><th>").raw(k).raw("</th>").el("td", "", &v).raw("</tr>\n");
    }
    p.raw("</tbody></table></div><div><table><tbody>\n");
    for sv in &r.environment.services {
        p.raw("<tr><th>").text(&sv.name).raw("</th>").el("td", "key", &sv.version).raw("</tr>\n");
    }
    let t = &r.timings;
    let timing_rows = [
        ("Provision", t.provision_seconds),
        ("Ready: Kafka", t.ready_seconds.kafka),
        ("Ready: MinIO", t.ready_seconds.minio),
        ("Ready: canary", t.ready_seconds.canary),
        ("Workload", t.workload_seconds),
        ("Drain", t.drain_seconds),
    ];
    for (k, v) in timing_rows {
        p.raw("<tr><th>").raw(k).raw("</th>").el("td", "num", &format!("{v:.2} s")).raw("</tr>\n");
    }
    let drained = if t.drained { harness_model::history::DrainEnd::Complete.describe() } else { t.drain_end.describe() };
    p.raw("<tr><th>Drain ended</th>").el("td", "", drained).raw("</tr>\n");
    p.raw("</tbody></table></div></div>\n");
    match scenario_text {
        Some(text) => {
            p.raw("<h3>Scenario file</h3><pre id=\"scenario-text\">").text(text).raw("</pre>\n");
        }
        None => {
            p.el("p", "note", "The scenario file could not be read back.");
        }
    }
    p.raw("</section>\n");
}

pub fn logs(p: &mut Page, r: &RunResults, tails: &[LogTail]) {
    p.raw("<section id=\"logs\"><h2>Service logs</h2>\n");
    if r.outcome == Verdict::Pass {
        p.el("p", "note", "Every expectation was met, so no log is embedded; the full logs are in the logs/ folder beside this report.");
        p.raw("</section>\n");
        return;
    }
    if tails.is_empty() {
        p.el("p", "note", "No service logs were found in the logs/ folder beside this report.");
        p.raw("</section>\n");
        return;
    }
    p.el(
        "p",
        "note",
        &format!("The last {} lines of each service's log; lines that report trouble or name a key with a problem are highlighted. The full logs are in logs/.", logs::TAIL_LINES),
    );
    let keys = problem_keys(r);
    for t in tails {
        p.raw("<details open><summary>").text(&format!("{}.log", t.name)).raw("</summary><pre class=\"log\">");
        if t.cut {
            p.raw("<span class=\"note\">…</span>\n");
        }
        for line in t.text.split('\n') {
            if logs::is_trouble(line) || keys.iter().any(|k| line.contains(k.as_str())) {
                p.raw("<span class=\"hl\">").text(line).raw("</span>\n");
            } else {
                p.text(line).raw("\n");
            }
        }
        p.raw("</pre></details>\n");
    }
    p.raw("</section>\n");
}

/// Keys the findings name (at most 500), and as they appear URL-encoded in MinIO's
/// and the processor's logs (`+` for spaces).
fn problem_keys(r: &RunResults) -> Vec<String> {
    let f = &r.findings;
    let keys = f
        .lost_outputs
        .iter()
        .chain(f.duplicate_outputs.iter().map(|(k, _)| k))
        .chain(f.invalid_outputs.iter().map(|(k, _)| k))
        .chain(&f.phantom_outputs)
        .chain(&f.lost_events)
        .filter(|k| k.len() >= 4)
        .take(500);
    let mut out: Vec<String> = keys.flat_map(|k| [k.clone(), k.replace(' ', "+")]).collect();
    out.sort();
    out.dedup();
    out
}
