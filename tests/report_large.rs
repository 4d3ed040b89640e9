//! `timeline.html` at 100,000 ops: it loads, draws every lane, and zooms and pans smoothly.
//!
//! The history is synthetic (16 workers, 100,000 ops, a kill and a partition), judged by
//! `riptide analyze`, so no cluster or root is needed. The page's `#bench` mode draws 60 zoom and
//! pan steps, each forced through rasterisation, and records the median and worst frame on
//! `<body>`. Needs Chromium (fails in CI without it, prints `skipped:` elsewhere).

mod report_support;

use report_support::*;

/// Ops in the history: the size the issue asks to stay smooth at.
const OPS: usize = 100_000;
/// Workers, so lanes.
const WORKERS: u64 = 16;
/// A frame within this is smooth (30 frames a second). Measured here: about 7 ms median on a
/// 2-core machine with software rendering; the bound leaves room for a slower, busier CI.
const MEDIAN_FRAME_MS: f64 = 33.0;
/// The worst frame (the first, before the JIT warms up, is usually it).
const WORST_FRAME_MS: f64 = 250.0;
/// Parsing 7 MB of JSON and indexing the lanes: about 0.2 s here.
const LOAD_MS: f64 = 3_000.0;

#[test]
fn a_timeline_of_100k_ops_loads_and_zooms_smoothly() {
    let Some(chromium) = chromium() else { return };
    let results = tempfile::tempdir().unwrap();
    let dir = synthetic_run(
        results.path(),
        "big",
        "20261124T000000",
        WORKERS,
        &big_history(OPS, WORKERS),
    );
    let out = riptide(&["analyze", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("ops       {OPS} invoked")),
        "{stdout}"
    );

    let url = format!("file://{}#bench", dir.join("timeline.html").display());
    let dom = dump_dom(&chromium, &url);
    assert_eq!(attr(&dom, "timeline", "data-lanes").as_deref(), Some("16"));
    let body = |name: &str| -> f64 {
        let at = dom
            .find(&format!("{name}=\""))
            .unwrap_or_else(|| panic!("no {name} on <body>"))
            + name.len()
            + 2;
        dom[at..at + dom[at..].find('"').unwrap()].parse().unwrap()
    };
    assert_eq!(
        body("data-ops") as usize,
        OPS,
        "every op is on the page: no cap at this size"
    );
    assert!(
        attr(&dom, "cap-note", "hidden").is_some(),
        "nothing was left out, so no note"
    );
    let (load, median, worst) = (
        body("data-load-ms"),
        body("data-bench-median-ms"),
        body("data-bench-max-ms"),
    );
    eprintln!("100k ops: load {load} ms, frame median {median} ms, worst {worst} ms");
    assert!(load < LOAD_MS, "loading took {load} ms");
    assert!(median < MEDIAN_FRAME_MS, "median frame {median} ms");
    assert!(worst < WORST_FRAME_MS, "worst frame {worst} ms");
    // After the benchmark the whole run is drawn again: every op visible, merged into far fewer
    // rectangles than ops (bars on the same pixel are drawn once).
    assert_eq!(attr_f64(&dom, "timeline", "data-visible-ops") as usize, OPS);
    let rects = attr_f64(&dom, "timeline", "data-rects") as usize;
    assert!(
        rects > 500 && rects < OPS / 5,
        "{rects} rectangles for {OPS} ops"
    );

    let png = artifacts().join("report_timeline_100k.png");
    let img = screenshot(
        &chromium,
        &format!("file://{}", dir.join("timeline.html").display()),
        &png,
    );
    let ok = img.count((100, 1000), (150, 700), hex("#43a047"), 0);
    assert!(
        ok > 20_000,
        "the lanes are full of ok bars ({ok} pixels) in {}",
        png.display()
    );
}
