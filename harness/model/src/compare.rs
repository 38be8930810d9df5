//! Comparing repeated runs: medians with distribution-free confidence intervals, the
//! Mann-Whitney U test, and the regression decision of `harness compare`.
//!
//! # Method and assumptions
//!
//! A scenario run is one noisy sample of each metric (throughput, a latency
//! percentile). Run-to-run noise on a shared machine is neither normal nor
//! homoscedastic and has outliers (a GC pause, a neighbour's build), and we can afford
//! few runs (each takes ~20 s). So:
//!
//! - **Location** is the median; its confidence interval is the distribution-free
//!   order-statistic interval `[x_(k), x_(n+1-k)]` from the binomial(n, ½) law, with
//!   the confidence level actually achieved reported (with n = 5 the best is 93.8 %).
//! - **Test**: the one-sided Mann-Whitney U (Wilcoxon rank-sum) test of "current is
//!   worse than baseline". It assumes the runs are independent and that, under no
//!   change, baseline and current runs are exchangeable; running them *interleaved*
//!   (A B A B …) makes drift of the machine hit both sides alike. Exact p-values (by
//!   counting rank arrangements) when there are no ties and at most 400 pairs; the
//!   normal approximation with tie and continuity corrections otherwise.
//! - **Several metrics** are one family: Holm-Bonferroni keeps the chance of any false
//!   alarm across them at `alpha`.
//! - **Decision**: a metric regressed when its test rejects (after Holm) *and* the
//!   median moved the wrong way by more than `threshold` (relative). The threshold
//!   keeps statistically clear but practically irrelevant shifts from failing a build;
//!   the test keeps noise from doing so.
//!
//! # What it can detect
//!
//! With n runs per side the smallest exact one-sided p-value is 1 / C(2n, n): 0.05 for
//! n = 3, 0.014 for n = 4, 0.004 for n = 5. Below that no effect, however large, can be
//! shown; [`Decision::TooFewRuns`] says so. For a shift of δ (relative) with run-to-run
//! noise σ (relative), the test reaches 80 % power roughly when
//! δ ≥ (z₁₋ₐ + z₀.₈) · σ · √(2/n) · √(π/3) ([`min_detectable_effect`]; √(π/3) is the
//! rank test's efficiency loss against a t-test on normal data), and the decision
//! additionally needs δ > threshold.

use serde::Serialize;

/// Whether a larger value is better (throughput) or worse (latency).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

/// The median of a sample with its confidence interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Confidence level the interval actually has (order statistics give discrete
    /// levels; the widest interval, min..max, has 1 − 2·½ⁿ).
    pub ci_level: f64,
    pub min: f64,
    pub max: f64,
}

/// Median and an order-statistic confidence interval of at least `level` where n
/// allows it, else min..max. `None` for an empty sample or one with NaN.
pub fn summarize(samples: &[f64], level: f64) -> Option<Summary> {
    if samples.is_empty() || samples.iter().any(|x| x.is_nan()) {
        return None;
    }
    let mut x = samples.to_vec();
    x.sort_by(f64::total_cmp);
    let n = x.len();
    let (lo, hi, achieved) = median_ci_ranks(n, level);
    Some(Summary { n, median: median_sorted(&x), ci_low: x[lo], ci_high: x[hi], ci_level: achieved, min: x[0], max: x[n - 1] })
}

pub fn median(samples: &[f64]) -> Option<f64> {
    let mut x: Vec<f64> = samples.to_vec();
    if x.is_empty() || x.iter().any(|v| v.is_nan()) {
        return None;
    }
    x.sort_by(f64::total_cmp);
    Some(median_sorted(&x))
}

fn median_sorted(x: &[f64]) -> f64 {
    let n = x.len();
    if n % 2 == 1 {
        x[n / 2]
    } else {
        (x[n / 2 - 1] + x[n / 2]) / 2.0
    }
}

/// Zero-based ranks (lo, hi) of the median's interval and its coverage:
/// coverage of [x_(k), x_(n+1-k)] is 1 − 2·P(B ≤ k−1), B ~ Binomial(n, ½).
fn median_ci_ranks(n: usize, level: f64) -> (usize, usize, f64) {
    let mut best = (0, n - 1, 1.0 - 2.0 * binom_cdf_half(n, 0));
    for k in 1..=n.div_ceil(2) {
        let coverage = 1.0 - 2.0 * binom_cdf_half(n, k - 1);
        if coverage >= level && k - 1 <= n - k {
            best = (k - 1, n - k, coverage);
        } else {
            break;
        }
    }
    best
}

/// P(B ≤ k) for B ~ Binomial(n, ½).
fn binom_cdf_half(n: usize, k: usize) -> f64 {
    let mut c = 1.0f64; // C(n, 0)
    let mut sum = 0.0;
    for i in 0..=k.min(n) {
        if i > 0 {
            c = c * (n + 1 - i) as f64 / i as f64;
        }
        sum += c;
    }
    sum / 2f64.powi(n as i32)
}

/// Result of a Mann-Whitney U test of samples `x` (baseline) and `y` (current).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MannWhitney {
    /// Pairs (xᵢ, yⱼ) with xᵢ > yⱼ, ties counting ½.
    pub u_x: f64,
    /// P(U ≥ u_x) under no difference: small when `y` tends to be smaller than `x`.
    pub p_y_smaller: f64,
    /// P(U ≤ u_x) under no difference: small when `y` tends to be larger than `x`.
    pub p_y_larger: f64,
    /// Whether the p-values are exact (no ties, small samples) or the normal approximation.
    pub exact: bool,
}

/// Largest n₁·n₂ for which the exact distribution is counted.
const EXACT_MAX_PAIRS: usize = 400;

pub fn mann_whitney(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    if x.is_empty() || y.is_empty() || x.iter().chain(y).any(|v| v.is_nan()) {
        return None;
    }
    let (n1, n2) = (x.len(), y.len());
    let mut u = 0.0;
    let mut ties = false;
    for a in x {
        for b in y {
            if a > b {
                u += 1.0;
            } else if a == b {
                u += 0.5;
                ties = true;
            }
        }
    }
    if !ties && n1 * n2 <= EXACT_MAX_PAIRS {
        let counts = u_distribution(n1, n2);
        let total: f64 = counts.iter().sum();
        let k = u as usize;
        let ge: f64 = counts[k..].iter().sum::<f64>() / total;
        let le: f64 = counts[..=k].iter().sum::<f64>() / total;
        return Some(MannWhitney { u_x: u, p_y_smaller: ge, p_y_larger: le, exact: true });
    }
    // Normal approximation with tie correction: the variance shrinks by the tied groups.
    let n = (n1 + n2) as f64;
    let mut all: Vec<f64> = x.iter().chain(y).copied().collect();
    all.sort_by(f64::total_cmp);
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < all.len() {
        let j = all[i..].iter().take_while(|v| **v == all[i]).count();
        let t = j as f64;
        tie_term += t * t * t - t;
        i += j;
    }
    let (a, b) = (n1 as f64, n2 as f64);
    let mean = a * b / 2.0;
    let var = a * b / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)).max(1.0));
    if var <= 0.0 {
        // Every value equal: no evidence either way.
        return Some(MannWhitney { u_x: u, p_y_smaller: 1.0, p_y_larger: 1.0, exact: false });
    }
    let sd = var.sqrt();
    let z_hi = (u - mean - 0.5) / sd;
    let z_lo = (u - mean + 0.5) / sd;
    Some(MannWhitney { u_x: u, p_y_smaller: 1.0 - normal_cdf(z_hi), p_y_larger: normal_cdf(z_lo), exact: false })
}

/// Number of arrangements giving each U = 0..=n1·n2 (no ties), by the recurrence
/// f(m, n, u) = f(m−1, n, u−n) + f(m, n−1, u).
fn u_distribution(n1: usize, n2: usize) -> Vec<f64> {
    // f[m][n] as vectors, built for m ≤ n1, n ≤ n2.
    let mut f: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); n2 + 1]; n1 + 1];
    for m in 0..=n1 {
        for n in 0..=n2 {
            let mut v = vec![0.0; m * n + 1];
            if m == 0 || n == 0 {
                v[0] = 1.0;
            } else {
                for (u, slot) in v.iter_mut().enumerate() {
                    let a = if u >= n { f[m - 1][n].get(u - n).copied().unwrap_or(0.0) } else { 0.0 };
                    let b = f[m][n - 1].get(u).copied().unwrap_or(0.0);
                    *slot = a + b;
                }
            }
            f[m][n] = v;
        }
    }
    std::mem::take(&mut f[n1][n2])
}

/// The smallest one-sided p-value an exact test can give with these sample sizes.
pub fn min_p_value(n1: usize, n2: usize) -> f64 {
    let mut c = 1.0f64;
    for i in 1..=n1 {
        c = c * (n2 + i) as f64 / i as f64;
    }
    1.0 / c
}

/// Standard normal CDF (via erfc, |error| < 1.2e-7).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    // Numerical Recipes' erfcc: Chebyshev fit, fractional error < 1.2e-7.
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07 + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, |rel. error| < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] =
        [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
    const B: [f64; 5] = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] =
        [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Relative shift the one-sided rank test detects with `power` at level `alpha`, with
/// `n1`, `n2` runs and relative run-to-run noise `rel_sigma` (normal-theory estimate
/// scaled by the rank test's asymptotic efficiency 3/π).
pub fn min_detectable_effect(n1: usize, n2: usize, rel_sigma: f64, alpha: f64, power: f64) -> f64 {
    if n1 == 0 || n2 == 0 {
        return f64::INFINITY;
    }
    let z = normal_quantile(1.0 - alpha) + normal_quantile(power);
    z * rel_sigma * (1.0 / n1 as f64 + 1.0 / n2 as f64).sqrt() * (std::f64::consts::PI / 3.0).sqrt()
}

/// Robust relative spread of a sample: 1.4826 · MAD / median (σ/μ for normal data).
pub fn relative_spread(samples: &[f64]) -> Option<f64> {
    let m = median(samples)?;
    let dev: Vec<f64> = samples.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&dev)?;
    (m != 0.0).then(|| 1.4826 * mad / m.abs())
}

/// The gate's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Gate {
    /// Family-wise false-alarm rate across the compared metrics.
    pub alpha: f64,
    /// Smallest relative change of the median that counts as a regression (0.05 = 5 %).
    pub threshold: f64,
    /// Level of the reported confidence intervals.
    pub ci_level: f64,
}

impl Default for Gate {
    fn default() -> Self {
        Gate { alpha: 0.05, threshold: 0.03, ci_level: 0.95 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Worse by more than the threshold, and the test rejects (after Holm).
    Regression,
    /// Better by more than the threshold, and the test rejects.
    Improvement,
    /// No change beyond noise or the threshold.
    NoChange,
    /// Not enough runs for any p-value to reach its level: nothing can be shown.
    TooFewRuns,
}

/// One metric's comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricComparison {
    pub metric: String,
    pub direction: Direction,
    pub baseline: Summary,
    pub current: Summary,
    /// (current − baseline) / baseline of the medians; positive means larger.
    pub change: f64,
    /// One-sided p-value of "current is worse".
    pub p_worse: f64,
    /// One-sided p-value of "current is better".
    pub p_better: f64,
    /// The level `p_worse` was held to after Holm's correction.
    pub alpha_used: f64,
    pub exact: bool,
    pub decision: Decision,
}

/// One metric's samples from both sides.
pub struct MetricSamples<'a> {
    pub metric: &'a str,
    pub direction: Direction,
    pub baseline: &'a [f64],
    pub current: &'a [f64],
}

/// Compares every metric; a metric missing on either side is left out. Holm's
/// step-down correction runs over the "worse" p-values of the compared metrics (and,
/// separately, the "better" ones).
pub fn compare(metrics: &[MetricSamples], gate: &Gate) -> Vec<MetricComparison> {
    let mut out: Vec<MetricComparison> = Vec::new();
    for m in metrics {
        let (Some(b), Some(c)) = (summarize(m.baseline, gate.ci_level), summarize(m.current, gate.ci_level)) else { continue };
        let Some(mw) = mann_whitney(m.baseline, m.current) else { continue };
        let (p_worse, p_better) = match m.direction {
            Direction::HigherIsBetter => (mw.p_y_smaller, mw.p_y_larger),
            Direction::LowerIsBetter => (mw.p_y_larger, mw.p_y_smaller),
        };
        let change = if b.median != 0.0 { (c.median - b.median) / b.median.abs() } else { 0.0 };
        out.push(MetricComparison {
            metric: m.metric.to_string(),
            direction: m.direction,
            baseline: b,
            current: c,
            change,
            p_worse,
            p_better,
            alpha_used: gate.alpha,
            exact: mw.exact,
            decision: Decision::NoChange,
        });
    }
    let worse = holm(&out.iter().map(|c| c.p_worse).collect::<Vec<_>>(), gate.alpha);
    let better = holm(&out.iter().map(|c| c.p_better).collect::<Vec<_>>(), gate.alpha);
    // Holm rejects nothing unless the smallest p-value reaches alpha / k.
    let strictest = gate.alpha / out.len().max(1) as f64;
    for (i, c) in out.iter_mut().enumerate() {
        c.alpha_used = worse[i].1;
        let bad_change = match c.direction {
            Direction::HigherIsBetter => -c.change,
            Direction::LowerIsBetter => c.change,
        };
        c.decision = if min_p_value(c.baseline.n, c.current.n) > strictest {
            Decision::TooFewRuns
        } else if worse[i].0 && bad_change > gate.threshold {
            Decision::Regression
        } else if better[i].0 && -bad_change > gate.threshold {
            Decision::Improvement
        } else {
            Decision::NoChange
        };
    }
    out
}

/// Holm-Bonferroni: for each p-value, whether it is rejected and the level it was
/// compared with (alpha / (k − rank) at its step).
fn holm(p: &[f64], alpha: f64) -> Vec<(bool, f64)> {
    let k = p.len();
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![(false, alpha); k];
    let mut still = true;
    for (rank, &i) in order.iter().enumerate() {
        let level = alpha / (k - rank) as f64;
        still = still && p[i] <= level;
        out[i] = (still, level);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn median_and_its_interval() {
        let s = summarize(&[5.0, 1.0, 3.0, 2.0, 4.0], 0.95).unwrap();
        assert_eq!((s.median, s.ci_low, s.ci_high, s.min, s.max), (3.0, 1.0, 5.0, 1.0, 5.0));
        assert!(close(s.ci_level, 1.0 - 2.0 / 32.0, 1e-12), "{}", s.ci_level);
        // n = 10: [x(2), x(9)] covers 97.9 %; [x(3), x(8)] only 89.1 %.
        let x: Vec<f64> = (1..=10).map(f64::from).collect();
        let s = summarize(&x, 0.95).unwrap();
        assert_eq!((s.median, s.ci_low, s.ci_high), (5.5, 2.0, 9.0));
        assert!(close(s.ci_level, 1.0 - 2.0 * 11.0 / 1024.0, 1e-12));
        assert!(summarize(&[], 0.95).is_none());
        assert!(summarize(&[1.0, f64::NAN], 0.95).is_none());
    }

    #[test]
    fn exact_mann_whitney_known_values() {
        // Complete separation, 3 vs 3: p = 1/20 (scipy.stats.mannwhitneyu, method="exact").
        let t = mann_whitney(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]).unwrap();
        assert_eq!(t.u_x, 0.0);
        assert!(t.exact);
        assert!(close(t.p_y_larger, 0.05, 1e-12) && close(t.p_y_smaller, 1.0, 1e-12));
        // 5 vs 5 alternating: U = 10, P(U <= 10) = 0.3452 (scipy: 0.345238...).
        let t = mann_whitney(&[1.0, 3.0, 5.0, 7.0, 9.0], &[2.0, 4.0, 6.0, 8.0, 10.0]).unwrap();
        assert_eq!(t.u_x, 10.0);
        assert!(close(t.p_y_larger, 0.345_238, 1e-5), "{}", t.p_y_larger);
        assert!(close(min_p_value(5, 5), 1.0 / 252.0, 1e-15));
        assert!(close(min_p_value(3, 3), 0.05, 1e-15));
    }

    #[test]
    fn normal_approximation_with_ties() {
        // 10 vs 10 with ties: U = 79, tie-corrected variance 169.868, z = 2.1867 with the
        // continuity correction, p = 0.014382 (computed independently in Python with
        // math.erfc; the same formula as scipy's mannwhitneyu(method="asymptotic")).
        let x = [3.0, 4.0, 4.0, 5.0, 5.0, 5.0, 6.0, 6.0, 7.0, 8.0];
        let y = [1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0];
        let t = mann_whitney(&x, &y).unwrap();
        assert!(!t.exact);
        assert_eq!(t.u_x, 79.0);
        assert!(close(t.p_y_smaller, 0.014_382, 1e-5), "{}", t.p_y_smaller);
        let same = mann_whitney(&[2.0; 4], &[2.0; 4]).unwrap();
        assert_eq!((same.p_y_smaller, same.p_y_larger), (1.0, 1.0));
    }

    #[test]
    fn normal_functions() {
        assert!(close(normal_cdf(1.959_964), 0.975, 1e-6));
        assert!(close(normal_cdf(-1.0), 0.158_655_25, 1e-6));
        assert!(close(normal_quantile(0.975), 1.959_964, 1e-6));
        assert!(close(normal_quantile(0.05), -1.644_854, 1e-6));
        // 5 runs a side, 3 % noise, alpha 0.05, 80 % power: about 4.9 %.
        let mde = min_detectable_effect(5, 5, 0.03, 0.05, 0.8);
        assert!(close(mde, 0.0483, 0.001), "{mde}");
    }

    fn gate() -> Gate {
        Gate { alpha: 0.05, threshold: 0.03, ci_level: 0.95 }
    }

    #[test]
    fn clear_regression_improvement_and_small_shift() {
        let base = [100.0, 101.0, 99.0, 100.5, 99.5];
        let slow = [90.0, 91.0, 89.0, 90.5, 89.5];
        let fast = [110.0, 111.0, 109.0, 110.5, 109.5];
        let tiny = [99.0, 100.0, 98.0, 99.5, 98.5]; // -1 %: significant, below the threshold
        let cmp = |cur: &[f64], dir| {
            compare(&[MetricSamples { metric: "m", direction: dir, baseline: &base, current: cur }], &gate())[0].decision
        };
        assert_eq!(cmp(&slow, Direction::HigherIsBetter), Decision::Regression);
        assert_eq!(cmp(&slow, Direction::LowerIsBetter), Decision::Improvement);
        assert_eq!(cmp(&fast, Direction::HigherIsBetter), Decision::Improvement);
        assert_eq!(cmp(&fast, Direction::LowerIsBetter), Decision::Regression);
        assert_eq!(cmp(&tiny, Direction::HigherIsBetter), Decision::NoChange);
        assert_eq!(cmp(&base, Direction::HigherIsBetter), Decision::NoChange);
        // Two runs a side can never reach p <= 0.05.
        let two = compare(
            &[MetricSamples { metric: "m", direction: Direction::HigherIsBetter, baseline: &base[..2], current: &slow[..2] }],
            &gate(),
        );
        assert_eq!(two[0].decision, Decision::TooFewRuns);
    }

    #[test]
    fn holm_is_stricter_for_more_metrics() {
        let p = [0.01, 0.04, 0.03];
        let h = holm(&p, 0.05);
        assert_eq!(h[0], (true, 0.05 / 3.0));
        assert_eq!(h[2], (false, 0.05 / 2.0));
        assert_eq!(h[1], (false, 0.05));
    }

    /// Simulated A/A and A/B gates: with exchangeable noise the family-wise false-alarm
    /// rate stays at or below alpha, and a 10 % shift with 2 % noise is nearly always found.
    #[test]
    fn simulated_false_alarm_and_detection_rates() {
        let mut rng = Rng::new(7);
        let mut noisy = |center: f64, n: usize| -> Vec<f64> {
            // Heavy-ish tails: the sum of uniforms plus an occasional outlier.
            (0..n)
                .map(|_| {
                    let u = rng.unit() + rng.unit() + rng.unit() - 1.5;
                    let outlier = if rng.below(20) == 0 { 0.08 } else { 0.0 };
                    center * (1.0 + 0.02 * u * 2.0 + outlier)
                })
                .collect()
        };
        let trials = 4000;
        let (mut false_alarms, mut detected) = (0, 0);
        for _ in 0..trials {
            let (b1, b2, b3) = (noisy(100.0, 5), noisy(50.0, 5), noisy(80.0, 5));
            let (c1, c2, c3) = (noisy(100.0, 5), noisy(50.0, 5), noisy(80.0, 5));
            let aa = compare(
                &[
                    MetricSamples { metric: "t", direction: Direction::HigherIsBetter, baseline: &b1, current: &c1 },
                    MetricSamples { metric: "p50", direction: Direction::LowerIsBetter, baseline: &b2, current: &c2 },
                    MetricSamples { metric: "p95", direction: Direction::LowerIsBetter, baseline: &b3, current: &c3 },
                ],
                &Gate { threshold: 0.0, ..gate() },
            );
            false_alarms += usize::from(aa.iter().any(|c| c.decision == Decision::Regression));
            let slow = noisy(90.0, 5);
            let ab =
                compare(&[MetricSamples { metric: "t", direction: Direction::HigherIsBetter, baseline: &b1, current: &slow }], &gate());
            detected += usize::from(ab[0].decision == Decision::Regression);
        }
        let fa = false_alarms as f64 / trials as f64;
        let det = detected as f64 / trials as f64;
        // Expected 1 − (1 − 4/252)³ = 4.7 % (the exact test's attainable level under
        // Holm); 0.06 allows ~3 standard errors. Without Holm it would be ~14 %.
        assert!(fa <= 0.06, "A/A false-alarm rate {fa}");
        assert!(det >= 0.95, "A/B detection rate {det}");
    }

    /// All C(n1+n2, n1) rank arrangements, counted by U.
    fn brute_force(n1: usize, n2: usize) -> Vec<f64> {
        let n = n1 + n2;
        let mut counts = vec![0.0; n1 * n2 + 1];
        for mask in 0u32..(1 << n) {
            if mask.count_ones() as usize != n1 {
                continue;
            }
            // Ranks 0..n; bit set = the rank belongs to x. U_x = pairs x > y.
            let mut u = 0;
            let mut ys_below = 0;
            for r in 0..n {
                if mask & (1 << r) != 0 {
                    u += ys_below;
                } else {
                    ys_below += 1;
                }
            }
            counts[u] += 1.0;
        }
        counts
    }

    proptest! {
        #[test]
        fn exact_distribution_matches_enumeration(n1 in 1usize..7, n2 in 1usize..7) {
            prop_assert_eq!(u_distribution(n1, n2), brute_force(n1, n2));
        }

        #[test]
        fn p_values_are_probabilities_and_swap(
            x in prop::collection::vec(0.0f64..100.0, 1..12),
            y in prop::collection::vec(0.0f64..100.0, 1..12),
        ) {
            let t = mann_whitney(&x, &y).unwrap();
            let s = mann_whitney(&y, &x).unwrap();
            for p in [t.p_y_smaller, t.p_y_larger] {
                prop_assert!((0.0..=1.0 + 1e-9).contains(&p));
            }
            // Both tails include the observed U, so they add up to at least 1.
            prop_assert!(t.p_y_smaller + t.p_y_larger >= 1.0 - 1e-9);
            prop_assert!((t.p_y_smaller - s.p_y_larger).abs() < 1e-9);
            prop_assert_eq!(t.u_x + s.u_x, (x.len() * y.len()) as f64);
        }

        #[test]
        fn median_lies_in_its_interval(x in prop::collection::vec(-1e6f64..1e6, 1..40)) {
            let s = summarize(&x, 0.95).unwrap();
            prop_assert!(s.min <= s.ci_low && s.ci_low <= s.median && s.median <= s.ci_high && s.ci_high <= s.max);
            prop_assert!(s.ci_level >= 0.0 && s.ci_level <= 1.0);
        }
    }
}
