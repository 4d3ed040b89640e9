//! `throughput.svg`: throughput (x) against p99 latency (y), one line per series (target, op,
//! nodes, value size) through its points in order of client count, each point labelled with
//! its clients. The usual picture of a closed-loop sweep: the line goes right while more clients
//! buy throughput, then up once they only buy queueing.

use super::report::Row;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 480.0;
const MARGIN: f64 = 60.0;
/// Colour-blind-safe (Okabe–Ito).
const COLOURS: [&str; 7] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
];

/// The SVG document for `rows` (medians).
pub fn svg(rows: &[Row]) -> String {
    let mut series: Vec<(String, Vec<&Row>)> = Vec::new();
    for r in rows {
        let name = format!(
            "{} {} n{} {}B",
            r.key.target.name(),
            r.key.op.name(),
            r.key.nodes,
            r.key.value_size
        );
        match series.iter_mut().find(|(n, _)| *n == name) {
            Some((_, points)) => points.push(r),
            None => series.push((name, vec![r])),
        }
    }
    let max_x = nice(rows.iter().map(|r| r.ops_per_sec).fold(0.0, f64::max));
    let max_y = nice(rows.iter().map(|r| r.p99_ms).fold(0.0, f64::max));
    let x = |v: f64| MARGIN + v / max_x * (WIDTH - 2.0 * MARGIN);
    let y = |v: f64| HEIGHT - MARGIN - v / max_y * (HEIGHT - 2.0 * MARGIN);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">throughput against p99 latency (medians; labels: clients)</text>\n",
        WIDTH / 2.0
    );
    out.push_str(&axes(max_x, max_y, &x, &y));
    for (i, (name, mut points)) in series.into_iter().enumerate() {
        points.sort_by_key(|r| r.key.clients);
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|r| format!("{:.1},{:.1}", x(r.ops_per_sec), y(r.p99_ms)))
            .collect();
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>\n",
            path.join(" ")
        ));
        for r in &points {
            let (px, py) = (x(r.ops_per_sec), y(r.p99_ms));
            out.push_str(&format!(
                "<circle cx=\"{px:.1}\" cy=\"{py:.1}\" r=\"3\" fill=\"{colour}\"><title>{name}, {} clients: {:.0} ops/s, p99 {:.2} ms</title></circle>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{}</text>\n",
                r.key.clients, r.ops_per_sec, r.p99_ms, px + 5.0, py - 5.0, r.key.clients
            ));
        }
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{name}</text>\n",
            MARGIN + 10.0,
            MARGIN + 16.0 * i as f64
        ));
    }
    out.push_str("</svg>\n");
    out
}

fn axes(max_x: f64, max_y: f64, x: &dyn Fn(f64) -> f64, y: &dyn Fn(f64) -> f64) -> String {
    let mut out = format!(
        "<line x1=\"{m}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <line x1=\"{m}\" y1=\"{m}\" x2=\"{m}\" y2=\"{b}\" stroke=\"black\"/>\n\
         <text x=\"{cx}\" y=\"{h}\" text-anchor=\"middle\">ops/s</text>\n\
         <text x=\"16\" y=\"{cy}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {cy})\">p99 latency (ms)</text>\n",
        m = MARGIN,
        b = HEIGHT - MARGIN,
        r = WIDTH - MARGIN,
        cx = WIDTH / 2.0,
        h = HEIGHT - 15.0,
        cy = HEIGHT / 2.0
    );
    for tick in 0..=4 {
        let (vx, vy) = (max_x * tick as f64 / 4.0, max_y * tick as f64 / 4.0);
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            x(vx),
            HEIGHT - MARGIN + 16.0,
            label(vx),
            MARGIN - 6.0,
            y(vy) + 4.0,
            label(vy)
        ));
    }
    out
}

/// The smallest 1, 2 or 5 times a power of ten at or above `v` (1 for nothing).
fn nice(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * power)
}

fn label(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}k", v / 1000.0)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        // 2.5, 0.25, 5: two decimals at most, no trailing zeros.
        format!("{}", (v * 100.0).round() / 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_at_round_numbers_above_the_largest_value() {
        assert_eq!(nice(7300.0), 10000.0);
        assert_eq!(nice(1.6), 2.0);
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(label(25000.0), "25k");
        assert_eq!(
            (label(5.0), label(2.5), label(0.25)),
            ("5".into(), "2.5".into(), "0.25".into())
        );
    }
}
