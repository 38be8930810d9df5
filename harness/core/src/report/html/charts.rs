//! The report's charts, drawn with plotters' SVG backend: the timeline of uploads,
//! events and outputs per second with fault windows shaded, and the latency
//! distribution per stage.
//!
//! Only [`Svg`] leaves this module; the only data-derived text drawn is numbers and
//! fault labels reduced by [`escape::chart_label`] (plotters escapes `<>&"'` too).

use std::error::Error;

use harness_model::history::{History, Micros};
use harness_model::HARNESS_KEY_PREFIX;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::escape;
use super::page::Svg;

const FONT: FontFamily<'static> = FontFamily::Name("DejaVu Sans, Liberation Sans, Arial, sans-serif");
const GRID: RGBColor = RGBColor(0xd1, 0xd9, 0xe0);
const AXIS: RGBColor = RGBColor(0x59, 0x63, 0x6e);
pub const UPLOADS: RGBColor = RGBColor(0x09, 0x69, 0xda);
pub const EVENTS: RGBColor = RGBColor(0x82, 0x50, 0xdf);
pub const OUTPUTS: RGBColor = RGBColor(0x1a, 0x7f, 0x37);
const FAULT: RGBColor = RGBColor(0xcf, 0x22, 0x2e);
const RECOVERING: RGBColor = RGBColor(0xd4, 0xa7, 0x2c);
/// Colours of the latency stages, in `Stage::ALL` order.
pub const STAGE_COLORS: [RGBColor; 3] = [RGBColor(0x09, 0x69, 0xda), RGBColor(0x82, 0x50, 0xdf), RGBColor(0xbc, 0x4c, 0x00)];

const WIDTH: u32 = 1080;
const HEIGHT: u32 = 340;
/// At most this many bins on the timeline; longer runs get wider bins.
const MAX_BINS: u64 = 300;

/// Per-second rates of one kind of record.
struct Rate {
    color: RGBColor,
    /// Stepped line: (seconds, per second).
    points: Vec<(f64, f64)>,
}

/// One fault window, in seconds since the workload started.
struct Band {
    label: String,
    injected: f64,
    effect: Option<f64>,
    healed: f64,
    recovered: Option<f64>,
}

/// Uploads, events and outputs per second; `None` when nothing happened at all.
pub fn timeline(h: &History) -> Option<Svg> {
    let t0 = h.workload_started;
    let secs = |t: Micros| (t as f64 - t0 as f64) / 1e6;
    let ours = |k: &str| !k.starts_with(HARNESS_KEY_PREFIX);
    let uploads: Vec<Micros> = h.uploads.iter().filter(|u| ours(&u.key)).map(|u| u.acked_at).collect();
    let events: Vec<Micros> = h.events.iter().filter(|e| ours(&e.key)).map(|e| e.at).collect();
    let outputs: Vec<Micros> = h.outputs.iter().filter(|o| ours(&o.key)).filter_map(|o| o.seen_at).collect();

    let all = uploads.iter().chain(&events).chain(&outputs).copied();
    let fault_times = h.faults.iter().flat_map(|f| [Some(f.injected_at), f.healed_at, f.recovered_at]).flatten();
    let times: Vec<Micros> = all.chain(fault_times).chain([h.workload_finished, h.drain_finished]).filter(|&t| t > 0).collect();
    let (first, last) = (times.iter().min().copied()?, times.iter().max().copied()?);
    if uploads.is_empty() && events.is_empty() && outputs.is_empty() && h.faults.is_empty() {
        return None;
    }
    let start = secs(first.min(t0)).floor();
    let end = secs(last).ceil().max(start + 1.0);
    let bin = ((end - start) / MAX_BINS as f64).ceil().max(1.0);

    let rates: Vec<Rate> = [(UPLOADS, &uploads), (EVENTS, &events), (OUTPUTS, &outputs)]
        .into_iter()
        .map(|(color, ts)| Rate { color, points: stepped(ts.iter().map(|&t| secs(t)), start, end, bin) })
        .collect();
    let bands: Vec<Band> = h
        .faults
        .iter()
        .map(|f| Band {
            label: escape::chart_label(&format!("#{} {} {}", f.index, f.kind, f.target), 48),
            injected: secs(f.injected_at),
            effect: f.effect_seen_at.map(secs),
            healed: f.healed_at.map_or(end, secs),
            recovered: f.recovered_at.map(secs),
        })
        .collect();
    let peak = rates.iter().flat_map(|r| r.points.iter().map(|p| p.1)).fold(1.0f64, f64::max);
    let y_top = nice_ceiling(peak * 1.18);
    let x_desc = if bin > 1.0 {
        format!("seconds since the workload started ({bin:.0} s bins)")
    } else {
        "seconds since the workload started".to_string()
    };
    render("timeline", |root| draw_timeline(root, &rates, &bands, (start, end), y_top, &x_desc))
}

fn draw_timeline(
    root: DrawingArea<SVGBackend, plotters::coord::Shift>,
    rates: &[Rate],
    bands: &[Band],
    (x0, x1): (f64, f64),
    y_top: f64,
    x_desc: &str,
) -> Result<(), Box<dyn Error>> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(14)
        .margin_top(22)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, 0f64..y_top)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .axis_style(AXIS)
        .x_desc(x_desc)
        .y_desc("per second")
        .x_labels(12)
        .y_labels(6)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 13).into_font().color(&AXIS))
        .axis_desc_style((FONT, 14).into_font().color(&AXIS))
        .draw()?;

    let label_font = (FONT, 13).into_font().color(&FAULT).pos(Pos::new(HPos::Left, VPos::Top));
    for (i, b) in bands.iter().enumerate() {
        chart.draw_series(std::iter::once(Rectangle::new([(b.injected, 0.0), (b.healed, y_top)], FAULT.mix(0.13).filled())))?;
        if let Some(r) = b.recovered.filter(|&r| r > b.healed) {
            chart.draw_series(std::iter::once(Rectangle::new([(b.healed, 0.0), (r, y_top)], RECOVERING.mix(0.16).filled())))?;
        }
        chart.draw_series(std::iter::once(PathElement::new(vec![(b.injected, 0.0), (b.injected, y_top)], FAULT.stroke_width(1))))?;
        if let Some(e) = b.effect {
            let dashes = DashedPathElement::new(vec![(e, 0.0), (e, y_top)], 4, 3, FAULT.mix(0.7).stroke_width(1));
            chart.draw_series(std::iter::once(dashes))?;
        }
        // Stagger labels so neighbouring windows do not print over each other.
        let y = y_top * (0.985 - 0.075 * (i % 3) as f64);
        chart.draw_series(std::iter::once(Text::new(b.label.clone(), (b.injected, y), label_font.clone())))?;
    }
    for r in rates {
        chart.draw_series(LineSeries::new(r.points.iter().copied(), r.color.stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}

/// Counts per bin of `bin` seconds over `[start, end)`, divided by the bin width, as
/// a stepped line.
fn stepped(times: impl Iterator<Item = f64>, start: f64, end: f64, bin: f64) -> Vec<(f64, f64)> {
    let n = (((end - start) / bin).ceil() as usize).max(1);
    let mut counts = vec![0u64; n];
    for t in times {
        let i = ((t - start) / bin).floor();
        if i >= 0.0 {
            counts[(i as usize).min(n - 1)] += 1;
        }
    }
    let mut pts = Vec::with_capacity(2 * n);
    for (i, c) in counts.iter().enumerate() {
        let (a, b) = (start + i as f64 * bin, start + (i + 1) as f64 * bin);
        let v = *c as f64 / bin;
        pts.push((a, v));
        pts.push((b.min(end), v));
    }
    pts
}

/// Cumulative latency distribution of each stage on a log axis. `stages` holds
/// (stage index into [`STAGE_COLORS`], samples in µs).
pub fn latency_cdf(stages: &[(usize, Vec<Micros>)]) -> Option<Svg> {
    let mut curves = Vec::new();
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    for (i, samples) in stages {
        if samples.is_empty() {
            continue;
        }
        let mut ms: Vec<f64> = samples.iter().map(|&us| (us as f64 / 1000.0).max(0.1)).collect();
        ms.sort_by(f64::total_cmp);
        lo = lo.min(ms[0]);
        hi = hi.max(ms[ms.len() - 1]);
        curves.push((STAGE_COLORS[*i % STAGE_COLORS.len()], cdf_points(&ms)));
    }
    if curves.is_empty() {
        return None;
    }
    let x0 = decade_floor(lo * 0.9);
    let x1 = (hi * 1.3).max(x0 * 10.0);
    render("latency distribution", |root| draw_cdf(root, &curves, (x0, x1)))
}

fn draw_cdf(
    root: DrawingArea<SVGBackend, plotters::coord::Shift>,
    curves: &[(RGBColor, Vec<(f64, f64)>)],
    (x0, x1): (f64, f64),
) -> Result<(), Box<dyn Error>> {
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(14)
        .margin_right(28)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d((x0..x1).log_scale(), 0f64..100f64)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .axis_style(AXIS)
        .x_desc("latency (log scale)")
        .y_desc("% of images at or below")
        .x_labels(16)
        .y_labels(6)
        .x_label_formatter(&|v| fmt_ms(*v))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 13).into_font().color(&AXIS))
        .axis_desc_style((FONT, 14).into_font().color(&AXIS))
        .draw()?;
    for q in [50.0, 95.0, 99.0] {
        let guide = DashedPathElement::new(vec![(x0, q), (x1, q)], 3, 4, AXIS.mix(0.45).stroke_width(1));
        chart.draw_series(std::iter::once(guide))?;
        let style = (FONT, 11).into_font().color(&AXIS).pos(Pos::new(HPos::Left, VPos::Bottom));
        chart.draw_series(std::iter::once(Text::new(format!("p{q:.0}"), (x0, q), style)))?;
    }
    for (color, pts) in curves {
        chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}

/// (latency, % at or below), thinned to at most ~600 points.
fn cdf_points(sorted_ms: &[f64]) -> Vec<(f64, f64)> {
    let n = sorted_ms.len();
    let step = (n / 600).max(1);
    let mut pts: Vec<(f64, f64)> = (0..n).step_by(step).map(|i| (sorted_ms[i], 100.0 * (i + 1) as f64 / n as f64)).collect();
    if pts.last().map(|p| p.0) != Some(sorted_ms[n - 1]) || step > 1 {
        pts.push((sorted_ms[n - 1], 100.0));
    }
    // Start the curve at zero so a single sample still draws a step.
    pts.insert(0, (sorted_ms[0], 0.0));
    pts
}

/// `12 ms`, `1.5 s`: axis labels and tables.
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        let s = ms / 1000.0;
        if s >= 10.0 || (s - s.round()).abs() < 1e-9 {
            format!("{s:.0} s")
        } else {
            format!("{s:.1} s")
        }
    } else if ms >= 10.0 || (ms - ms.round()).abs() < 1e-9 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn decade_floor(v: f64) -> f64 {
    10f64.powf(v.max(0.1).log10().floor())
}

/// 1, 2, 5 × 10^k at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.max(1.0).log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * p).find(|&c| c >= v).unwrap_or(10.0 * p)
}

/// Draws into an SVG string; a drawing error leaves the chart out, never the report.
fn render(
    what: &'static str,
    draw: impl FnOnce(DrawingArea<SVGBackend, plotters::coord::Shift>) -> Result<(), Box<dyn Error>>,
) -> Option<Svg> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (WIDTH, HEIGHT)).into_drawing_area();
        if let Err(e) = draw(root) {
            tracing::warn!(chart = what, error = %e, "could not draw a report chart");
            return None;
        }
    }
    // Accessible name for the chart; `what` is a fixed string.
    let labelled = buf.replacen("<svg ", &format!("<svg role=\"img\" aria-label=\"{what}\" class=\"plot\" "), 1);
    Some(Svg(labelled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stepped_rates_count_per_second() {
        let pts = stepped([0.1, 0.2, 1.5].into_iter(), 0.0, 2.0, 1.0);
        assert_eq!(pts, vec![(0.0, 2.0), (1.0, 2.0), (1.0, 1.0), (2.0, 1.0)]);
        // Wider bins divide by their width.
        let pts = stepped([0.1, 0.2, 1.5, 3.9].into_iter(), 0.0, 4.0, 2.0);
        assert_eq!(pts, vec![(0.0, 1.5), (2.0, 1.5), (2.0, 0.5), (4.0, 0.5)]);
    }

    #[test]
    fn millisecond_labels() {
        assert_eq!(fmt_ms(3.25), "3.2 ms");
        assert_eq!(fmt_ms(10.0), "10 ms");
        assert_eq!(fmt_ms(1500.0), "1.5 s");
        assert_eq!(fmt_ms(2000.0), "2 s");
        assert_eq!(nice_ceiling(11.8), 20.0);
        assert_eq!(nice_ceiling(23.0), 25.0);
    }

    #[test]
    fn cdf_ends_at_100_percent() {
        let pts = cdf_points(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(pts.first(), Some(&(1.0, 0.0)));
        assert_eq!(pts.last(), Some(&(4.0, 100.0)));
    }
}
