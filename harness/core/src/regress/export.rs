//! Export of repeated runs' medians for dashboards: Bencher Metric Format and
//! github-action-benchmark's custom JSON.

use std::collections::BTreeMap;

use harness_model::compare::Direction;
use serde_json::{json, Value};

use super::{metric, summarize, RunSample};

/// Runs grouped by scenario, in name order.
fn by_scenario(runs: &[RunSample]) -> BTreeMap<&str, Vec<RunSample>> {
    let mut m: BTreeMap<&str, Vec<RunSample>> = BTreeMap::new();
    for r in runs {
        m.entry(r.scenario.as_str()).or_default().push(r.clone());
    }
    m
}

/// Bencher Metric Format: `{ scenario: { metric: { value, lower_value, upper_value } } }`,
/// the median and its confidence interval over the runs.
pub fn bencher(runs: &[RunSample], ci_level: f64) -> Value {
    let mut out = serde_json::Map::new();
    for (scenario, rs) in by_scenario(runs) {
        let mut measures = serde_json::Map::new();
        for (id, s) in summarize(&rs, ci_level).metrics {
            measures.insert(id, json!({ "value": s.median, "lower_value": s.ci_low, "upper_value": s.ci_high }));
        }
        out.insert(scenario.to_string(), Value::Object(measures));
    }
    Value::Object(out)
}

/// Which of github-action-benchmark's custom tools the file is for: it takes one
/// direction per file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GabKind {
    /// `customBiggerIsBetter`: throughput.
    BiggerIsBetter,
    /// `customSmallerIsBetter`: latencies.
    SmallerIsBetter,
}

/// github-action-benchmark custom JSON: `[{ name, unit, value, range, extra }]`.
pub fn github_action_benchmark(runs: &[RunSample], ci_level: f64, kind: GabKind) -> Value {
    let want = match kind {
        GabKind::BiggerIsBetter => Direction::HigherIsBetter,
        GabKind::SmallerIsBetter => Direction::LowerIsBetter,
    };
    let mut out = Vec::new();
    for (scenario, rs) in by_scenario(runs) {
        for (id, s) in summarize(&rs, ci_level).metrics {
            let Some(m) = metric(&id).filter(|m| m.direction == want) else { continue };
            let half = (s.ci_high - s.ci_low) / 2.0;
            out.push(json!({
                "name": format!("{scenario} {id}"),
                "unit": m.unit,
                "value": s.median,
                "range": format!("± {half:.3}"),
                "extra": format!("median of {} runs; {:.0} % CI {:.3} – {:.3}", s.n, s.ci_level * 100.0, s.ci_low, s.ci_high),
            }));
        }
    }
    Value::Array(out)
}
