//! `harness run --repeat N`: every scenario N times, interleaved (a b a b …), then the
//! medians with confidence intervals per scenario.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use harness_core::regress;
use harness_core::run::{run, RunOptions, RunOutcome};
use harness_model::compare::Gate;
use harness_model::exit::ExitCode;
use harness_model::scenario::Scenario;

/// Runs each scenario `n` times into `<reports>/<name>-x<n>-<unix time>/<run-id>/` and
/// prints a summary per scenario; the folder also gets `repeat.json`. Returns the
/// exit code of each run.
pub fn run_repeated(runtime: &tokio::runtime::Runtime, scenarios: &[Scenario], opts: &RunOptions, n: u32) -> Vec<ExitCode> {
    let stamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let folders: Vec<PathBuf> = scenarios.iter().map(|s| opts.reports_root.join(format!("{}-x{n}-{stamp}", s.name))).collect();
    let mut exits = Vec::new();
    for i in 1..=n {
        for (s, folder) in scenarios.iter().zip(&folders) {
            let o = RunOptions { reports_root: folder.clone(), ..opts.clone() };
            let outcome = runtime.block_on(run(s, &o));
            println!("{}", one_line(i, n, s, &outcome));
            exits.push(outcome.exit);
        }
    }
    for folder in &folders {
        summarize(folder);
    }
    exits
}

fn one_line(i: u32, n: u32, s: &Scenario, o: &RunOutcome) -> String {
    let r = &o.results;
    let tp = r.metrics.throughput.outputs_per_second.map_or("-".into(), |t| format!("{t:.1} thumbnails/s"));
    let p95 = r.metrics.latency.get("end_to_end").map_or("-".into(), |l| format!("p95 end-to-end {:.0} ms", l.p95_ms));
    format!("run {i}/{n} {}: {} · {tp} · {p95} · {}", s.name, r.outcome.label(), o.report_dir.display())
}

fn summarize(folder: &Path) {
    let runs = match regress::load(&[folder.to_path_buf()]) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return;
        }
    };
    let summary = regress::summarize(&runs, Gate::default().ci_level);
    println!("\n{}", regress::summary_table(&summary));
    println!("runs in {}", folder.display());
    let json = serde_json::to_vec_pretty(&summary).unwrap_or_default();
    if let Err(e) = std::fs::write(folder.join("repeat.json"), json) {
        eprintln!("error: {}: {e}", folder.join("repeat.json").display());
    }
}
