//! The reports of real runs, as a person sees them: `riptide test` on a real cluster (one run with
//! the stale-read bug, one healthy), then `timeline.html` rendered by headless Chromium, its DOM
//! and its pixels checked; `riptide analyze` re-judging the stored runs; the terminal summary
//! against `results.json`; `results/index.html` listing both runs.
//!
//! Needs root (the runs use a network namespace; prints `skipped:` otherwise) and Chromium (fails
//! in CI without it, prints `skipped:` elsewhere). Screenshots are kept in `target/tmp/`.

mod report_support;

use std::path::Path;

use report_support::*;
use serde_json::Value;

/// The page's colours (report/src/lib.rs `colors`, report/src/timeline.html).
const OUTCOME_COLORS: [&str; 3] = ["#43a047", "#e53935", "#f9a825"];
const PARTITION: &str = "#fb8c00";
const KILL: &str = "#8e24aa";
const HILITE: [u8; 3] = [255, 0, 255];
/// The opacity of a fault's shading across the lanes.
const SHADE_ALPHA: f64 = 0.13;

fn run_test(results: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "test",
        "--nodes",
        "3",
        "--time-limit",
        "8",
        "--nemesis",
        "partition,kill",
        "--nemesis-interval",
        "2",
        "--no-progress",
        "--results-dir",
    ];
    args.push(results.to_str().unwrap());
    args.extend_from_slice(extra);
    let out = riptide(&args);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn file_url(path: &Path, hash: &str) -> String {
    format!("file://{}{hash}", path.display())
}

/// The line of the terminal summary that starts with `label`.
fn line<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{stdout}"))
}

/// The terminal summary says what results.json says: counts by outcome and by kind, latency
/// quantiles, faults, per-key verdicts, the checker's time, the verdict.
fn assert_summary_agrees(stdout: &str, results: &Value) {
    let s = &results["summary"];
    let o = &s["outcomes"];
    assert_eq!(
        line(stdout, "ops "),
        format!(
            "ops       {} invoked: {} ok, {} fail, {} info, {} open",
            s["invokes"], o["ok"], o["fail"], o["info"], o["open"]
        )
    );
    for (f, c) in s["by_f"].as_object().unwrap() {
        let want = format!(
            "  {f:<8}{} ok, {} fail, {} info",
            c["ok"], c["fail"], c["info"]
        );
        assert!(
            stdout.lines().any(|l| l == want),
            "no `{want}` in:\n{stdout}"
        );
    }
    let l = &s["latency_ms"];
    let ms = |k: &str| format!("{:.1}", l[k].as_f64().unwrap());
    let latency = line(stdout, "latency ");
    for (name, key) in [
        ("p50", "p50"),
        ("p95", "p95"),
        ("p99", "p99"),
        ("max", "max"),
    ] {
        let want = format!("{name} {} ms", ms(key));
        assert!(latency.contains(&want), "`{latency}` lacks `{want}`");
    }
    let faults: Vec<String> = s["faults"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    if !faults.is_empty() {
        assert_eq!(
            line(stdout, "faults "),
            format!("faults    {}", faults.join(", "))
        );
    }
    let c = &results["checker"];
    let k = &c["key_counts"];
    let checker = line(stdout, "checker ");
    assert!(
        checker.starts_with(&format!(
            "checker   {} keys: {} valid, {} invalid, {} unknown in ",
            c["keys"].as_object().unwrap().len(),
            k["valid"],
            k["invalid"],
            k["unknown"]
        )),
        "{checker}"
    );
    let secs = c["elapsed_secs"].as_f64().unwrap();
    let shown = if secs < 1.0 {
        format!("{:.2} ms", secs * 1e3)
    } else {
        format!("{secs:.2} s")
    };
    assert!(
        checker.ends_with(&shown),
        "`{checker}` should end with the checker's time {shown}"
    );
    for verdict in ["invalid", "unknown"] {
        let mut keys: Vec<&str> = c["keys"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["verdict"] == verdict)
            .map(|(k, _)| k.as_str())
            .collect();
        keys.truncate(12);
        if !keys.is_empty() {
            let want = format!("  {verdict:<8}{}", keys.join(", "));
            assert!(
                stdout.lines().any(|l| l.starts_with(&want)),
                "no `{want}` in:\n{stdout}"
            );
        }
    }
    assert_eq!(
        line(stdout, "verdict "),
        format!(
            "verdict   {}",
            results["verdict"].as_str().unwrap().to_uppercase()
        )
    );
}

/// Geometry of the drawn timeline, from the canvas' data attributes.
struct Geometry {
    left: usize,
    top: usize,
    width: usize,
    gutter: usize,
    axis: usize,
    lanes_top: usize,
    lane_height: usize,
    lanes: usize,
}

impl Geometry {
    /// The geometry of the page in `dom`, placed where the screenshot `img` shows the lanes'
    /// frame (a 1 px #bbb line left of the lanes): the header's height may differ between a
    /// `--dump-dom` and a `--screenshot` run of the same page, the layout below it does not.
    fn locate(dom: &str, img: &Image) -> Geometry {
        let mut g = Geometry::of(dom);
        let x = g.left + g.gutter;
        let frame = [187, 187, 187];
        let (mut best, mut run, mut best_top) = (0, 0, 0);
        for y in 0..img.height {
            if img.at(x, y) == frame {
                run += 1;
                if run > best {
                    best = run;
                    best_top = y + 1 - run;
                }
            } else {
                run = 0;
            }
        }
        let expected = g.lanes * g.lane_height;
        assert!(
            best + 2 >= expected,
            "no lanes frame of {expected} px at x = {x} in the screenshot (longest run {best})"
        );
        g.top = best_top - g.lanes_top;
        g
    }

    fn of(dom: &str) -> Geometry {
        let a = |n: &str| attr_f64(dom, "timeline", n) as usize;
        let width = attr(dom, "timeline", "style")
            .and_then(|s| {
                s.split("width: ")
                    .nth(1)
                    .map(|w| w.split("px").next().unwrap().to_string())
            })
            .and_then(|w| w.parse::<f64>().ok())
            .expect("canvas width") as usize;
        Geometry {
            left: a("data-page-left"),
            top: a("data-page-top"),
            width,
            gutter: a("data-gutter"),
            axis: a("data-axis-height"),
            lanes_top: a("data-lanes-top"),
            lane_height: a("data-lane-height"),
            lanes: a("data-lanes"),
        }
    }

    /// Screen x range of the plotting area (right of the lane labels).
    fn xs(&self) -> (usize, usize) {
        (self.left + self.gutter + 1, self.left + self.width - 10)
    }

    /// Screen y range of lane `l`.
    fn lane(&self, l: usize) -> (usize, usize) {
        let y = self.top + self.lanes_top + l * self.lane_height;
        (y, y + self.lane_height)
    }

    fn band(&self) -> (usize, usize) {
        (self.top + self.axis, self.top + self.lanes_top)
    }

    fn all_lanes(&self) -> (usize, usize) {
        (
            self.top + self.lanes_top,
            self.top + self.lanes_top + self.lanes * self.lane_height,
        )
    }
}

fn count_history(dir: &Path, pred: impl Fn(&Value) -> bool) -> usize {
    std::fs::read_to_string(dir.join("history.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| pred(v))
        .count()
}

fn check_invalid_run(chromium: &Path, dir: &Path, stdout: &str) {
    let results = json(&dir.join("results.json"));
    assert_eq!(results["verdict"], "invalid");
    assert_summary_agrees(stdout, &results);
    for f in ["timeline.html", "latency.svg", "rate.svg"] {
        assert!(
            dir.join(f).is_file(),
            "{f} is missing from {}",
            dir.display()
        );
    }
    let page = std::fs::read_to_string(dir.join("timeline.html")).unwrap();
    for remote in ["http://", "https://", "//cdn", "<link "] {
        assert!(
            !page.contains(remote),
            "timeline.html must load nothing from the network ({remote})"
        );
    }
    let concurrency = json(&dir.join("test.json"))["test"]["concurrency"]
        .as_u64()
        .unwrap() as usize;
    let partitions = count_history(dir, |v| {
        v["process"] == "nemesis" && v["f"] == "start" && v["value"]["fault"] == "partition"
    });
    let kills = count_history(dir, |v| {
        v["process"] == "nemesis" && v["f"] == "start" && v["value"]["fault"] == "kill"
    });
    assert!(partitions + kills > 0, "the run had faults");

    // The whole run: lanes with bars, fault bands and shading.
    let timeline = dir.join("timeline.html");
    let dom = dump_dom(chromium, &file_url(&timeline, ""));
    let g = Geometry::of(&dom);
    assert!(
        g.lanes >= concurrency,
        "one lane per worker at least: {} lanes, {concurrency} workers",
        g.lanes
    );
    assert!(
        dom.contains(r#"class="verdict v-invalid">INVALID<"#),
        "the header shows the verdict"
    );
    let legend = inner(&dom, "nemesis-legend", "span");
    if partitions > 0 {
        assert!(
            legend.contains(&format!("partition ×{partitions}")),
            "nemesis legend: {legend}"
        );
    }
    if kills > 0 {
        assert!(
            legend.contains(&format!("kill ×{kills}")),
            "nemesis legend: {legend}"
        );
    }
    let png = artifacts().join("report_timeline_invalid_whole.png");
    let img = screenshot(chromium, &file_url(&timeline, ""), &png);
    let g = Geometry::locate(&dom, &img);
    let xs = g.xs();
    for l in 0..concurrency {
        let bars: usize = OUTCOME_COLORS
            .iter()
            .map(|c| img.count(xs, g.lane(l), hex(c), 0))
            .sum();
        assert!(
            bars >= 20,
            "worker lane {l} has ops drawn ({bars} bar pixels) in {}",
            png.display()
        );
    }
    let (fault, n) = if partitions > 0 {
        (PARTITION, partitions)
    } else {
        (KILL, kills)
    };
    let band = img.count(xs, g.band(), hex(fault), 0);
    assert!(
        band >= 200 * n,
        "the fault band shows {n} windows ({band} pixels) in {}",
        png.display()
    );
    let shade = img.count(xs, g.all_lanes(), over_white(hex(fault), SHADE_ALPHA), 2);
    assert!(
        shade >= 1000,
        "faults are shaded across the lanes ({shade} pixels) in {}",
        png.display()
    );

    // Jump to the anomaly: highlighted, explained, with the tooltip of the failed op.
    let url = file_url(&timeline, "#anomaly;probe");
    let dom = dump_dom(chromium, &url);
    let invalid: Vec<(&String, &Value)> = results["checker"]["keys"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, k)| k["verdict"] == "invalid")
        .collect();
    let panel = inner(&dom, "anomaly-panel", "aside");
    assert_eq!(
        panel.matches("class=\"anomaly").count(),
        invalid.len(),
        "one box per invalid key:\n{panel}"
    );
    for (key, k) in &invalid {
        let cx = &k["counterexample"];
        assert!(
            panel.contains(&format!("<h3>key {key}</h3>")),
            "{key} is in the panel"
        );
        for state in cx["states"].as_array().unwrap() {
            let s = format!("<span class=\"states\">{}</span>", state.as_str().unwrap());
            assert!(panel.contains(&s), "state {s} of {key} is shown");
        }
        assert!(panel.contains("jump to the anomaly"));
    }
    let filtered = inner(&dom, "key-count", "span");
    assert!(
        filtered.starts_with("1 of "),
        "jumping filters to the anomaly's key: {filtered}"
    );
    assert!(
        attr_f64(&dom, "timeline", "data-highlighted") >= 1.0,
        "the anomaly is outlined"
    );
    let tip = inner(&dom, "tip", "div");
    assert!(
        tip.contains("could not be linearized"),
        "the failed op's tooltip: {tip}"
    );
    let (key0, k0) = invalid[0];
    assert!(
        tip.contains(&format!("key {key0}")),
        "the first anomaly is focused: {tip}"
    );
    assert!(
        tip.contains(&format!(
            "process {}",
            k0["counterexample"]["op"]["process"]
        )),
        "{tip}"
    );
    let png = artifacts().join("report_timeline_invalid_anomaly.png");
    let img = screenshot(chromium, &url, &png);
    let g = Geometry::locate(&dom, &img);
    let magenta = img.count(g.xs(), g.all_lanes(), HILITE, 0);
    assert!(
        magenta >= 30,
        "the failed op is outlined in magenta ({magenta} pixels) in {}",
        png.display()
    );
}

fn check_valid_run(chromium: &Path, dir: &Path, stdout: &str) {
    let results = json(&dir.join("results.json"));
    assert_eq!(results["verdict"], "valid");
    assert_summary_agrees(stdout, &results);
    let timeline = dir.join("timeline.html");
    let dom = dump_dom(chromium, &file_url(&timeline, "#probe"));
    assert!(dom.contains(r#"class="verdict v-valid">VALID<"#));
    let panel = inner(&dom, "anomaly-panel", "aside");
    assert!(
        !panel.contains("class=\"anomaly"),
        "no anomaly on a valid run: {panel}"
    );
    assert!(panel.contains("Linearizable"), "{panel}");
    let note = results["replicas"]["note"].as_str().unwrap();
    assert!(note.starts_with("3 nodes agree at applied index"), "{note}");
    assert_eq!(line(stdout, "replicas "), format!("replicas  {note}"));
    assert!(
        panel.contains(">Replicas<") && panel.contains(note),
        "{panel}"
    );
    assert!(
        attr(&dom, "jump", "hidden").is_some(),
        "no jump link on a valid run"
    );
    let tip = inner(&dom, "tip", "div");
    assert!(
        tip.contains("process ") && tip.contains("latency "),
        "hovering an op shows it: {tip}"
    );
    let png = artifacts().join("report_timeline_valid.png");
    let img = screenshot(chromium, &file_url(&timeline, ""), &png);
    let g = Geometry::locate(&dom, &img);
    let ok = img.count(g.xs(), g.all_lanes(), hex(OUTCOME_COLORS[0]), 0);
    assert!(
        ok >= 500,
        "ok ops are drawn ({ok} pixels) in {}",
        png.display()
    );
    assert_eq!(
        img.count(g.xs(), g.all_lanes(), HILITE, 0),
        0,
        "nothing is highlighted"
    );
}

#[test]
fn real_runs_render_with_lanes_faults_and_the_anomaly_and_analyze_agrees() {
    if !is_root() {
        eprintln!("skipped: riptide test needs root for its network namespace");
        return;
    }
    let Some(chromium) = chromium() else { return };
    let results = tempfile::tempdir().unwrap();

    // A run with a stale-read bug: invalid.
    let (code, stdout, stderr) = run_test(
        results.path(),
        &["--unsafe-bug", "stale-read", "--seed", "11"],
    );
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let invalid = latest_run(results.path());
    check_invalid_run(&chromium, &invalid, &stdout);

    // A healthy run with the same faults: valid. Run folders are named by the second.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, stdout, stderr) = run_test(results.path(), &["--seed", "12"]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let valid = latest_run(results.path());
    check_valid_run(&chromium, &valid, &stdout);

    // The index lists both, newest first, with their verdicts and links.
    let index = std::fs::read_to_string(results.path().join("index.html")).unwrap();
    let rows: Vec<&str> = index
        .lines()
        .filter(|l| l.starts_with("<tr class=\"run\""))
        .collect();
    assert_eq!(rows.len(), 2, "{index}");
    assert!(
        rows[0].contains("data-verdict=\"valid\"") && rows[1].contains("data-verdict=\"invalid\"")
    );
    let stamp = |d: &Path| d.file_name().unwrap().to_string_lossy().into_owned();
    assert!(rows[0].contains(&format!("riptide/{}/timeline.html", stamp(&valid))));
    assert!(rows[1].contains(&format!(
        "riptide/{}/history.jsonl\" download",
        stamp(&invalid)
    )));
    assert!(rows[1].contains("stale-read"), "the unsafe bug is shown");
    let png = artifacts().join("report_index.png");
    screenshot(
        &chromium,
        &file_url(&results.path().join("index.html"), ""),
        &png,
    );

    // analyze re-judges each stored run to the same verdict, from the history alone.
    for (dir, code, verdict) in [(&invalid, 1, "invalid"), (&valid, 0, "valid")] {
        let before = json(&dir.join("results.json"));
        std::fs::remove_file(dir.join("timeline.html")).unwrap();
        let out = riptide(&["analyze", dir.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(code),
            "analyze {}:\n{stdout}",
            dir.display()
        );
        let after = json(&dir.join("results.json"));
        assert_eq!(after["verdict"], verdict);
        assert_eq!(
            after["summary"], before["summary"],
            "the same history gives the same summary"
        );
        assert_eq!(after["checker"]["model"], before["checker"]["model"]);
        assert_summary_agrees(&stdout, &after);
        assert!(
            dir.join("timeline.html").is_file(),
            "analyze rewrites the reports"
        );
    }

    // analyze compares the stored replica digests again: one node's data digest changed makes
    // the valid history's run invalid, named in the summary and at the top of the timeline.
    let path = valid.join("replicas.json");
    let mut replicas = json(&path);
    replicas["nodes"][1]["data_digest"] = "0123456789abcdef".into();
    std::fs::write(&path, serde_json::to_string(&replicas).unwrap()).unwrap();
    let out = riptide(&["analyze", valid.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("REPLICAS DIVERGED: at applied index"),
        "{stdout}"
    );
    assert!(stdout.contains("n2 (data) differ from n1, n3"), "{stdout}");
    let after = json(&valid.join("results.json"));
    assert_eq!(after["verdict"], "invalid");
    assert_eq!(
        after["checker"]["verdict"], "valid",
        "the history itself is fine"
    );
    assert_eq!(after["replicas"]["outcome"], "diverged");
    // A node's own report of a safety violation survives analyze and is named in the summary.
    let mut replicas = json(&path);
    replicas["violations"] = serde_json::json!({"2": "leader 3 (term 9) replaced committed entries from index 4 (commit index was 7); this node stopped applying"});
    std::fs::write(&path, serde_json::to_string(&replicas).unwrap()).unwrap();
    let out = riptide(&["analyze", valid.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("NODE SAFETY VIOLATION: n2: leader 3 (term 9) replaced committed entries"),
        "{stdout}"
    );
    let stored = json(&path);
    assert!(stored["violations"]["2"].is_string(), "{stored}");
    let dom = dump_dom(&chromium, &file_url(&valid.join("timeline.html"), ""));
    assert!(dom.contains(r#"class="verdict v-invalid">INVALID<"#));
    let panel = inner(&dom, "anomaly-panel", "aside");
    assert!(panel.contains("Replicas diverged"), "{panel}");
    assert!(
        panel.contains("Linearizable"),
        "the checker's part still says so: {panel}"
    );
}
