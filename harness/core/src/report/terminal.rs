//! The summary printed at the end of a run.

use std::fmt::Write;

use harness_model::results::RunResults;
use harness_model::scenario::Stage;
use harness_model::verdict::Verdict;

pub fn summary(r: &RunResults, report_dir: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s);
    let _ = writeln!(s, "scenario  {}  (seed {}, {})", r.scenario.name, r.scenario.seed, r.scenario.file);
    let c = &r.counts;
    let _ = writeln!(
        s,
        "ledger    {} uploaded · {} events · {} thumbnail versions · lost {} · duplicated {} · phantom {} · invalid {}",
        c.uploads, c.events, c.output_versions, c.lost_outputs, c.duplicate_outputs, c.phantom_outputs, c.invalid_outputs
    );
    if c.lost_by_processor + c.unprocessed > 0 {
        let _ = writeln!(
            s,
            "          of the lost: {} dropped by the processor (event committed) · {} unprocessed (not committed when the drain ended)",
            c.lost_by_processor, c.unprocessed
        );
    }
    if c.lost_events + c.duplicate_events + c.upload_failures + c.processor_restarts > 0 {
        let _ = writeln!(
            s,
            "          notification stage: {} lost, {} duplicated · {} uploads failed · processor restarted {}×",
            c.lost_events, c.duplicate_events, c.upload_failures, c.processor_restarts
        );
    }
    for stage in Stage::ALL {
        let Some(l) = r.metrics.latency(stage) else { continue };
        let stage = stage.label();
        let _ = writeln!(
            s,
            "latency   {stage:<16} p50 {:>8.1}ms  p95 {:>8.1}ms  p99 {:>8.1}ms  max {:>8.1}ms  (n={})",
            l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.count
        );
    }
    if let Some(t) = r.metrics.throughput.outputs_per_second {
        let _ = writeln!(s, "throughput {t:.1} thumbnails/s over {:.1}s", r.metrics.throughput.window_seconds);
    }
    let _ = writeln!(s);
    let width = r.expectations.iter().map(|e| e.id.len()).max().unwrap_or(0);
    for e in &r.expectations {
        let _ = writeln!(s, "  {:<7} {:<width$}  {}", e.verdict.label(), e.id, e.detail);
    }
    if let Some(err) = &r.error {
        let _ = writeln!(s, "\nerror: {err}");
    }
    let _ = writeln!(s);
    let verdict = match r.outcome {
        Verdict::Pass => "PASS: every expectation met",
        Verdict::Fail => "FAIL: an expectation was not met",
        Verdict::Unknown => "UNKNOWN: the run could not be judged",
    };
    let _ = writeln!(s, "{verdict} · {:.1}s · reports in {report_dir}", r.duration_seconds);
    if let Some(line) = harness_model::results::provisioned_line(&r.timings.provisioned) {
        let _ = writeln!(s, "{line}");
    }
    s
}
