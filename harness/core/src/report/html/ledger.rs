//! The per-stage ledger: counts per stage, the items with problems by key, and
//! every upload's row.

use std::collections::BTreeSet;

use harness_model::history::History;
use harness_model::results::RunResults;

use super::charts::fmt_ms;
use super::page::Page;

/// Keys listed per problem at most; the rest are in results.json.
const MAX_PROBLEM_ROWS: usize = 500;
/// Rows of the full ledger at most.
const MAX_LEDGER_ROWS: usize = 5000;

pub fn section(p: &mut Page, r: &RunResults, history: Option<&History>) {
    p.raw("<section id=\"ledger\"><h2>Per-stage ledger</h2>\n");
    if history.is_none() && r.ledger.is_empty() {
        p.el("p", "note", "Nothing was recorded: the run stopped before the workload, so there is no ledger.");
        p.raw("</section>\n");
        return;
    }
    let c = &r.counts;
    let f = &r.findings;
    p.raw("<table class=\"stages\">")
        .raw("<thead><tr><th>Stage</th><th class=\"num\">Recorded</th><th class=\"num\">Lost</th><th class=\"num\">Duplicated</th><th class=\"num\">Phantom</th><th class=\"num\">Invalid</th></tr></thead><tbody>\n");
    stage_row(p, "Uploads (acknowledged by MinIO; lost = upload failed)", c.uploads, Some(c.upload_failures), None, None, None);
    stage_row(
        p,
        "Notification (events on the topic; phantom = event for no upload)",
        c.events,
        Some(c.lost_events),
        Some(c.duplicate_events),
        Some(f.stray_events.len() as u64),
        None,
    );
    stage_row(
        p,
        "Output (thumbnail versions in the target bucket)",
        c.output_versions,
        Some(c.lost_outputs),
        Some(c.duplicate_outputs),
        Some(c.phantom_outputs),
        Some(c.invalid_outputs),
    );
    p.raw("</tbody></table>\n");
    if c.lost_by_processor + c.unprocessed > 0 {
        p.el(
            "p",
            "note",
            &format!(
                "Of the lost thumbnails, {} were dropped by the processor (its consumer group committed their events) and {} were unprocessed (their events were not committed when the drain ended).",
                c.lost_by_processor, c.unprocessed
            ),
        );
    }
    if c.processor_restarts > 0 {
        p.el("p", "note", &format!("The processor exited unexpectedly and was restarted {}×.", c.processor_restarts));
    }

    problems(p, r, history);
    full_ledger(p, r);
    p.raw("</section>\n");
}

fn stage_row(p: &mut Page, stage: &str, recorded: u64, lost: Option<u64>, dup: Option<u64>, phantom: Option<u64>, invalid: Option<u64>) {
    p.raw("<tr>").el("td", "", stage).el("td", "num", &recorded.to_string());
    for v in [lost, dup, phantom, invalid] {
        match v {
            None => p.el("td", "num zero", "—"),
            Some(0) => p.el("td", "num zero", "0"),
            Some(n) => p.el("td", "num bad", &n.to_string()),
        };
    }
    p.raw("</tr>\n");
}

/// One table per kind of problem, with the keys.
fn problems(p: &mut Page, r: &RunResults, history: Option<&History>) {
    let f = &r.findings;
    let lost_events: BTreeSet<&str> = f.lost_events.iter().map(String::as_str).collect();
    let mut any = false;
    let mut table = |p: &mut Page, title: &str, id: &'static str, rows: Vec<(String, String)>| {
        if rows.is_empty() {
            return;
        }
        any = true;
        p.raw("<h3 id=\"").raw(id).raw("\">").text(&format!("{title} ({})", rows.len())).raw("</h3>\n");
        p.raw("<table class=\"problems\">").head(&["Key", "Detail"]).raw("<tbody>\n");
        for (k, d) in rows.iter().take(MAX_PROBLEM_ROWS) {
            p.row(&[k, d], &["key", ""]);
        }
        if rows.len() > MAX_PROBLEM_ROWS {
            let more = format!("… and {} more (all in results.json)", rows.len() - MAX_PROBLEM_ROWS);
            p.row(&[&more, ""], &["note", ""]);
        }
        p.raw("</tbody></table>\n");
    };
    let lost_outputs = f
        .lost_outputs
        .iter()
        .map(|k| {
            let why = if lost_events.contains(k.as_str()) {
                "no thumbnail; no event on the topic either: lost at the notification stage"
            } else if f.lost_by_processor.contains(k) {
                "lost: the processor's group committed its event, yet no thumbnail exists (dropped by the processor)"
            } else if f.unprocessed.contains(k) {
                "unprocessed: its event was not committed when the drain ended (a backlog, or a stuck or slow processor)"
            } else {
                "no thumbnail, although its event was on the topic"
            };
            (k.clone(), why.to_string())
        })
        .collect();
    table(p, "Lost thumbnails", "lost-outputs", lost_outputs);
    let dup = f.duplicate_outputs.iter().map(|(k, n)| (k.clone(), format!("{n} thumbnail versions"))).collect();
    table(p, "Duplicated thumbnails", "duplicate-outputs", dup);
    let phantom = f.phantom_outputs.iter().map(|k| (k.clone(), "thumbnail with no matching upload".to_string())).collect();
    table(p, "Phantom thumbnails", "phantom-outputs", phantom);
    let invalid = f.invalid_outputs.iter().map(|(k, why)| (k.clone(), why.clone())).collect();
    table(p, "Invalid thumbnails", "invalid-outputs", invalid);
    let lost_ev = f.lost_events.iter().map(|k| (k.clone(), "no event on the topic".to_string())).collect();
    table(p, "Lost events (notification stage)", "lost-events", lost_ev);
    let dup_ev = f.duplicate_events.iter().map(|(k, n)| (k.clone(), format!("{n} events on the topic"))).collect();
    table(p, "Duplicated events (notification stage)", "duplicate-events", dup_ev);
    let stray = f.stray_events.iter().map(|k| (k.clone(), "event for a key that was never uploaded".to_string())).collect();
    table(p, "Phantom events (notification stage)", "stray-events", stray);
    if let Some(h) = history {
        let failed = h.upload_failures.iter().map(|u| (u.key.clone(), u.error.clone())).collect();
        table(p, "Failed uploads", "upload-failures", failed);
        let t0 = h.workload_started;
        let exits = h
            .processor_exits
            .iter()
            .map(|x| {
                let at = format!("t = {:.1} s", (x.at as f64 - t0 as f64) / 1e6);
                (at, format!("{}{}", x.status, if x.restarted { ", restarted" } else { "" }))
            })
            .collect();
        table(p, "Processor exits", "processor-exits", exits);
    }
    if !any {
        p.el("p", "note", "No lost, duplicated, phantom or invalid items at any stage.");
    }
}

fn full_ledger(p: &mut Page, r: &RunResults) {
    if r.ledger.is_empty() {
        p.el("p", "note", "No uploads were recorded.");
        return;
    }
    p.raw("<details id=\"all-uploads\"><summary>")
        .text(&format!("Every upload ({}): events and thumbnail versions per key", r.ledger.len()))
        .raw("</summary>\n<table>")
        .raw("<thead><tr><th>Key</th><th class=\"num\">Events</th><th class=\"num\">Thumbnails</th><th class=\"num\">Valid</th><th class=\"num\">Upload → event</th><th class=\"num\">End-to-end</th></tr></thead><tbody>\n");
    let lat = |a: Option<u64>, b: u64| a.map_or_else(|| "—".to_string(), |t| fmt_ms(t.saturating_sub(b) as f64 / 1000.0));
    for e in r.ledger.iter().take(MAX_LEDGER_ROWS) {
        let num = |n: u32| if n == 1 { "num" } else { "num bad" };
        p.raw("<tr>").el("td", "key", &e.key);
        p.el("td", num(e.events), &e.events.to_string());
        p.el("td", num(e.outputs), &e.outputs.to_string());
        p.el("td", num(e.valid_outputs), &e.valid_outputs.to_string());
        p.el("td", "num", &lat(e.first_event_at, e.acked_at));
        p.el("td", "num", &lat(e.first_output_at, e.acked_at));
        p.raw("</tr>\n");
    }
    p.raw("</tbody></table>");
    if r.ledger.len() > MAX_LEDGER_ROWS {
        p.el("p", "note", &format!("The first {MAX_LEDGER_ROWS} rows are shown; results.json has all {}.", r.ledger.len()));
    }
    p.raw("</details>\n");
}
