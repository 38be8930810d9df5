//! Plain-text tables for the terminal: a comparison and a repeat summary.

use std::fmt::Write;

use harness_model::compare::{Decision, Summary};

use super::{metric, ComparisonReport, RunsSummary};

fn fmt_value(id: &str, v: f64) -> String {
    match metric(id).map(|m| m.unit) {
        Some("ms") if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        Some("ms") => format!("{v:.1} ms"),
        Some(_) => format!("{v:.2}/s"),
        None => format!("{v:.3}"),
    }
}

fn fmt_summary(id: &str, s: &Summary) -> String {
    format!("{} [{} – {}]", fmt_value(id, s.median), fmt_value(id, s.ci_low), fmt_value(id, s.ci_high))
}

fn label(d: Decision) -> &'static str {
    match d {
        Decision::Regression => "REGRESSION",
        Decision::Improvement => "improved",
        Decision::NoChange => "no change",
        Decision::TooFewRuns => "too few runs",
    }
}

pub fn comparison_table(r: &ComparisonReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "baseline  {} run(s) of {}{}", r.baseline.runs, r.baseline.scenario, failed(r.baseline.failed_runs));
    let _ = writeln!(s, "current   {} run(s) of {}{}", r.current.runs, r.current.scenario, failed(r.current.failed_runs));
    let _ = writeln!(
        s,
        "gate      a regression is worse by more than {:.1} % with one-sided Mann-Whitney p at most its Holm level (family alpha {})",
        r.gate.threshold * 100.0,
        r.gate.alpha
    );
    let _ = writeln!(s);
    let rows: Vec<[String; 7]> = r
        .metrics
        .iter()
        .map(|m| {
            [
                m.metric.clone(),
                fmt_summary(&m.metric, &m.baseline),
                fmt_summary(&m.metric, &m.current),
                format!("{:+.1} %", m.change * 100.0),
                format!("{:.4}", m.p_worse),
                format!("{:.4}", m.alpha_used),
                label(m.decision).to_string(),
            ]
        })
        .collect();
    let head = ["metric", "baseline median [CI]", "current median [CI]", "change", "p(worse)", "level", "decision"];
    write_rows(&mut s, &head, &rows);
    if let (Some(b), Some(c)) = (r.metrics.first().map(|m| &m.baseline), r.metrics.first().map(|m| &m.current)) {
        let _ = writeln!(
            s,
            "\nCI: distribution-free interval of the median; coverage {:.1} % (baseline, n={}) and {:.1} % (current, n={}).",
            b.ci_level * 100.0,
            b.n,
            c.ci_level * 100.0,
            c.n
        );
    }
    if !r.min_detectable.is_empty() {
        let parts: Vec<String> = r.min_detectable.iter().map(|(id, e)| format!("{id} {:.1} %", e * 100.0)).collect();
        let _ = writeln!(s, "detectable with these runs' noise (80 % power): {}", parts.join(", "));
    }
    let verdict = if r.regressed {
        "REGRESSION: at least one metric is worse beyond noise and threshold"
    } else if r.too_few_runs {
        "CANNOT DECIDE: too few runs for any test to reach its level (use at least 5 runs per side)"
    } else {
        "no regression"
    };
    let _ = writeln!(s, "\n{verdict}");
    s
}

fn failed(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(" ({n} did not pass; their numbers are still used where present)")
    }
}

pub fn summary_table(r: &RunsSummary) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{}: {} run(s){}", r.scenario, r.runs, failed(r.failed_runs));
    let rows: Vec<[String; 5]> = r
        .metrics
        .iter()
        .map(|(id, m)| {
            [
                id.clone(),
                fmt_value(id, m.median),
                format!("{} – {} ({:.0} %)", fmt_value(id, m.ci_low), fmt_value(id, m.ci_high), m.ci_level * 100.0),
                format!("{} – {}", fmt_value(id, m.min), fmt_value(id, m.max)),
                m.n.to_string(),
            ]
        })
        .collect();
    write_rows(&mut s, &["metric", "median", "CI of the median (coverage)", "min – max", "n"], &rows);
    s
}

fn write_rows<const N: usize>(s: &mut String, head: &[&str; N], rows: &[[String; N]]) {
    let mut widths: [usize; N] = head.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |s: &mut String, cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
        let _ = writeln!(s, "{}", padded.join("  ").trim_end());
    };
    line(s, head.to_vec());
    for r in rows {
        line(s, r.iter().map(String::as_str).collect());
    }
}
