//! `latency.svg` and `rate.svg`, drawn with plotters' SVG backend.
//!
//! - **latency.svg**: one point per completed op at (invoke time, latency), coloured by outcome,
//!   on a log scale (a healthy op takes a millisecond, a timed-out one a second), with p50, p95 and
//!   p99 lines computed per time bucket, so a fault's effect shows as the lines rising.
//! - **rate.svg**: completions per second of ok, fail and info, per time bucket.
//!
//! Both shade the fault windows with the fault's colour and name it at the top. Points that land
//! on the same few pixels with the same outcome are drawn once: the picture is the same, and a run
//! of 100,000 ops gives an SVG of about a megabyte instead of tens of megabytes.

use std::collections::HashSet;

use plotters::prelude::*;

use super::colors;
use riptide_store::history::{Outcome, RunHistory};
use riptide_store::RunSummary;

/// Plot size in pixels: wide enough to tell seconds apart in a minute-long run, and small enough
/// to sit beside the timeline in a browser.
const SIZE: (u32, u32) = (1000, 440);

/// Time buckets for the quantile lines and the rate: 60 over the run, fine enough to follow a
/// fault that lasts a tenth of the run, coarse enough for each bucket to hold some ops.
const BUCKETS: f64 = 60.0;

/// Points closer than this many pixels (in both directions) and of the same outcome are drawn
/// once; see `draw_latency`.
const CELL: f64 = 3.0;

/// Opacity of a fault window's shading: visible behind the points, light enough to read them.
const SHADE: f64 = 0.15;

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn rgb(hex: &str) -> RGBColor {
    let (r, g, b) = colors::rgb(hex);
    RGBColor(r, g, b)
}

fn outcome_color(o: Outcome) -> RGBColor {
    rgb(match o {
        Outcome::Ok => colors::OK,
        Outcome::Fail => colors::FAIL,
        Outcome::Info => colors::INFO,
        Outcome::Open => colors::OPEN,
    })
}

/// The run's length in seconds, never zero (an empty history still gets an axis).
fn duration_s(run: &RunHistory) -> f64 {
    (run.end_ns as f64 / 1e9).max(0.001)
}

/// A bucket width that is a round number of seconds (1, 2 or 5 times a power of ten), about
/// `duration / BUCKETS`.
fn bucket_width(duration: f64) -> f64 {
    let raw = duration / BUCKETS;
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|w| *w >= raw)
        .unwrap_or(10.0 * p)
}

/// The fault windows as (fault, label, start s, stop s).
fn windows(run: &RunHistory) -> Vec<(String, String, f64, f64)> {
    let end = duration_s(run);
    run.faults
        .iter()
        .map(|w| {
            (
                w.fault.clone(),
                w.label.clone(),
                w.start_ns as f64 / 1e9,
                w.stop_ns.map_or(end, |s| s as f64 / 1e9),
            )
        })
        .collect()
}

/// Shades the fault windows over the whole plot and names each at the top.
fn shade_faults<DB: DrawingBackend, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    run: &RunHistory,
    y_lo: Y::ValueType,
    y_hi: Y::ValueType,
) -> DrawResult
where
    Y: Ranged,
    Y::ValueType: Clone + 'static,
    DB::ErrorType: 'static,
{
    let ws = windows(run);
    chart.draw_series(ws.iter().map(|(fault, _, a, b)| {
        Rectangle::new(
            [(*a, y_lo.clone()), (*b, y_hi.clone())],
            rgb(colors::fault(fault)).mix(SHADE).filled(),
        )
    }))?;
    chart.draw_series(ws.iter().map(|(fault, label, a, _)| {
        Text::new(
            label.clone(),
            (*a, y_hi.clone()),
            ("sans-serif", 11)
                .into_font()
                .color(&rgb(colors::fault(fault))),
        )
    }))?;
    Ok(())
}

/// An axis label without needless decimals: `1000`, `2.5`, `0.1`.
fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// `latency.svg`.
pub fn latency_svg(run: &RunHistory, summary: &RunSummary) -> String {
    let mut svg = String::new();
    let result = draw_latency(&mut svg, run, summary);
    finish(svg, result, "latency")
}

/// The latency chart's coordinates: seconds across, log-scaled milliseconds up.
type LatencyChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<
        plotters::coord::types::RangedCoordf64,
        plotters::coord::combinators::LogCoord<f64>,
    >,
>;

/// (invoke s, latency ms, outcome) of every completed op.
type LatencyPoint = (f64, f64, Outcome);

fn draw_latency(svg: &mut String, run: &RunHistory, summary: &RunSummary) -> DrawResult {
    let duration = duration_s(run);
    let points: Vec<LatencyPoint> = run
        .ops
        .iter()
        .filter_map(|o| {
            o.latency_ns().map(|l| {
                (
                    o.invoke_ns as f64 / 1e9,
                    (l as f64 / 1e6).max(1e-3),
                    o.outcome,
                )
            })
        })
        .collect();
    let (y_lo, y_hi) = latency_range(&points);

    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Latency of every op ({} ops; overall p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms)",
                points.len(),
                summary.latency_ms.p50,
                summary.latency_ms.p95,
                summary.latency_ms.p99
            ),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..duration, (y_lo..y_hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("time since the start (s), by invoke")
        .y_desc("latency (ms, log scale)")
        .y_label_formatter(&|v| number(*v))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    shade_faults(&mut chart, run, y_lo, y_hi)?;
    draw_latency_points(&mut chart, &points, duration, (y_lo, y_hi))?;
    draw_quantile_lines(&mut chart, &points, duration)?;
    draw_legend(&mut chart)?;
    root.present()?;
    Ok(())
}

/// The y axis: a little below the fastest op, well above the slowest.
fn latency_range(points: &[LatencyPoint]) -> (f64, f64) {
    if points.is_empty() {
        return (0.1, 1000.0);
    }
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(0.0, f64::max);
    ((lo * 0.7).max(1e-3), (hi * 2.5).max(lo * 10.0))
}

/// One point per (cell, outcome): a point has a 4 px diameter, so points within a 3 px cell
/// overlap anyway; the picture is the same, the file a fraction.
fn draw_latency_points(
    chart: &mut LatencyChart,
    points: &[LatencyPoint],
    duration: f64,
    (y_lo, y_hi): (f64, f64),
) -> DrawResult {
    let (w, h) = (f64::from(SIZE.0) / CELL, f64::from(SIZE.1) / CELL);
    let (ly_lo, ly_span) = (y_lo.ln(), (y_hi.ln() - y_lo.ln()).max(1e-9));
    let mut seen = HashSet::new();
    for outcome in [Outcome::Ok, Outcome::Info, Outcome::Fail] {
        let color = outcome_color(outcome);
        let mine: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.2 == outcome)
            .filter(|p| {
                let px = (p.0 / duration * w) as u32;
                let py = ((p.1.ln() - ly_lo) / ly_span * h) as u32;
                seen.insert((px, py, outcome))
            })
            .map(|p| (p.0, p.1))
            .collect();
        let count = points.iter().filter(|p| p.2 == outcome).count();
        chart
            .draw_series(
                mine.into_iter()
                    .map(move |p| Circle::new(p, 2, color.mix(0.75).filled())),
            )?
            .label(format!("{} ({count})", outcome.name()))
            .legend(move |(x, y)| Circle::new((x + 8, y), 3, color.filled()));
    }
    Ok(())
}

/// p50, p95 and p99 lines, one value per time bucket.
fn draw_quantile_lines(
    chart: &mut LatencyChart,
    points: &[LatencyPoint],
    duration: f64,
) -> DrawResult {
    let width = bucket_width(duration);
    let buckets = (duration / width).ceil().max(1.0) as usize;
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); buckets];
    for p in points {
        per[((p.0 / width) as usize).min(buckets - 1)].push(p.1);
    }
    for v in &mut per {
        v.sort_by(f64::total_cmp);
    }
    let lines = [
        (0.5, "p50", RGBColor(33, 33, 33)),
        (0.95, "p95", RGBColor(94, 53, 177)),
        (0.99, "p99", RGBColor(194, 24, 91)),
    ];
    for (q, name, color) in lines {
        let series: Vec<(f64, f64)> = per
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(i, v)| ((i as f64 + 0.5) * width, quantile(v, q)))
            .collect();
        chart
            .draw_series(LineSeries::new(series, color.stroke_width(2)))?
            .label(format!("{name} per {width} s"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    Ok(())
}

/// The legend box, top right, the same on both plots.
fn draw_legend<'a, DB, CT>(chart: &mut ChartContext<'a, DB, CT>) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()?;
    Ok(())
}

/// `rate.svg`.
pub fn rate_svg(run: &RunHistory) -> String {
    let mut svg = String::new();
    let result = draw_rate(&mut svg, run);
    finish(svg, result, "rate")
}

fn draw_rate(svg: &mut String, run: &RunHistory) -> DrawResult {
    let duration = duration_s(run);
    let width = bucket_width(duration);
    let buckets = (duration / width).ceil().max(1.0) as usize;
    let outcomes = [Outcome::Ok, Outcome::Fail, Outcome::Info];
    let mut counts = vec![[0u64; 3]; buckets];
    for o in &run.ops {
        let (Some(t), Some(k)) = (o.complete_ns, outcomes.iter().position(|x| *x == o.outcome))
        else {
            continue;
        };
        counts[((t as f64 / 1e9 / width) as usize).min(buckets - 1)][k] += 1;
    }
    let peak = counts
        .iter()
        .flat_map(|c| c.iter())
        .map(|&n| n as f64 / width)
        .fold(0.0, f64::max);
    let y_hi = (peak * 1.25).max(1.0);

    let root = SVGBackend::with_string(svg, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Throughput: completions per second, per {width} s"),
            ("sans-serif", 16),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..duration, 0f64..y_hi)?;
    chart
        .configure_mesh()
        .x_desc("time since the start (s), by completion")
        .y_desc("ops / s")
        .y_label_formatter(&|v| number(*v))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()?;
    shade_faults(&mut chart, run, 0.0, y_hi)?;
    for (k, outcome) in outcomes.into_iter().enumerate() {
        let color = outcome_color(outcome);
        let total: u64 = counts.iter().map(|c| c[k]).sum();
        let series: Vec<(f64, f64)> = counts
            .iter()
            .enumerate()
            .map(|(i, c)| ((i as f64 + 0.5) * width, c[k] as f64 / width))
            .collect();
        chart
            .draw_series(LineSeries::new(series, color.stroke_width(2)))?
            .label(format!("{} ({total})", outcome.name()))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    draw_legend(&mut chart)?;
    root.present()?;
    Ok(())
}

/// The SVG, or a small SVG that says what went wrong: a plot that failed must not look empty.
fn finish(svg: String, result: DrawResult, what: &str) -> String {
    match result {
        Ok(()) => svg,
        Err(err) => format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"60\"><text x=\"10\" \
             y=\"30\" font-family=\"sans-serif\">cannot draw the {what} plot: {}</text></svg>\n",
            SIZE.0,
            super::html_escape(&err.to_string())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_round_numbers_of_seconds() {
        assert_eq!(bucket_width(60.0), 1.0);
        assert_eq!(bucket_width(10.0), 0.2);
        assert_eq!(bucket_width(300.0), 5.0);
    }

    #[test]
    fn plots_shade_faults_and_draw_each_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let mut lines = Vec::new();
        for i in 0..200u64 {
            let t = i * 50_000_000;
            let (kind, lat) = match i % 10 {
                0 => ("info", 1_000_000_000),
                1 => ("fail", 2_000_000),
                _ => ("ok", 1_000_000),
            };
            lines.push(format!(r#"{{"index":{},"time":{t},"process":{i},"type":"invoke","f":"write","key":"k","value":{i}}}"#, 2 * i));
            lines.push(format!(r#"{{"index":{},"time":{},"process":{i},"type":"{kind}","f":"write","key":"k","value":{i}}}"#, 2 * i + 1, t + lat));
        }
        lines.push(r#"{"index":400,"time":3000000000,"process":"nemesis","type":"info","f":"start","value":{"fault":"pause","nodes":[2]}}"#.into());
        lines.push(r#"{"index":401,"time":5000000000,"process":"nemesis","type":"info","f":"stop","value":{"fault":"pause","nodes":[2]}}"#.into());
        std::fs::write(&path, lines.join("\n")).unwrap();
        let run = RunHistory::load(&path).unwrap();
        let latency = latency_svg(&run, &RunSummary::default());
        let rate = rate_svg(&run);
        for svg in [&latency, &rate] {
            assert!(svg.starts_with("<svg"), "{}", &svg[..100.min(svg.len())]);
            assert!(svg.contains("pause n2"), "the fault is named");
            // The pause colour #1e88e5 as plotters writes it.
            assert!(
                svg.to_uppercase().contains("#1E88E5"),
                "the fault is shaded"
            );
        }
        for label in ["ok (160)", "fail (20)", "info (20)", "p50", "p95", "p99"] {
            assert!(latency.contains(label), "latency.svg lacks {label}");
        }
        assert!(rate.contains("ok (160)"));
        // 200 points but far fewer distinct pixels per outcome are allowed to merge; at least one
        // circle per outcome is drawn.
        assert!(latency.matches("<circle").count() >= 3);
    }
}
