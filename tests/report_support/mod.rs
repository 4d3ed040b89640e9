//! Shared by the `report_*` tests: the riptide binary, headless Chromium, PNG pixels, and
//! synthetic run folders (histories written by hand, for tests that need no cluster).

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn riptide_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_riptide"))
}

pub fn riptide(args: &[&str]) -> Output {
    Command::new(riptide_bin())
        .args(args)
        .output()
        .expect("run riptide")
}

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The run folder `results/latest` points at.
pub fn latest_run(results: &Path) -> PathBuf {
    let target = std::fs::read_link(results.join("latest")).expect("results/latest is a symlink");
    results.join(target)
}

/// Where screenshots are kept for a person to look at: `target/tmp/`.
pub fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// ---------------------------------------------------------------------------------------------
// Headless Chromium
// ---------------------------------------------------------------------------------------------

/// Chromium's path, or `None` (and a `skipped:` line) when it is missing outside CI. In CI (env
/// `CI` set) a missing Chromium fails the test: `.ci/run` installs it, so a skip would hide a
/// broken setup.
pub fn chromium() -> Option<PathBuf> {
    let names = ["chromium", "chromium-browser", "google-chrome"];
    let found = std::env::var_os("RIPTIDE_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::env::var_os("PATH").into_iter().flat_map(|p| {
            std::env::split_paths(&p)
                .flat_map(|d| names.iter().map(move |n| d.join(n)))
                .collect::<Vec<_>>()
        }))
        .find(|p| p.is_file());
    if found.is_none() {
        let msg = "headless Chromium is not installed: run .ci/run, or apt-get install -y chromium";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
    }
    found
}

/// How long one Chromium invocation may take before it is killed: a page of 100,000 ops loads
/// in about a second; 90 s covers a slow, busy CI machine.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs headless Chromium on `url` with `extra` flags; returns stdout and stderr. The flags are
/// the ones that work as root in a container, with no network, no GPU and a fresh profile.
pub fn run_chromium(chromium: &Path, url: &str, extra: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=8000",
            "--window-size=1400,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).ok();
        s
    });
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?} on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (out_reader.join().unwrap(), err_reader.join().unwrap())
}

/// The DOM after the page's scripts ran.
pub fn dump_dom(chromium: &Path, url: &str) -> String {
    let (dom, console) = run_chromium(chromium, url, &["--dump-dom"]);
    assert!(
        !console.contains("Uncaught"),
        "the page threw a JavaScript error on {url}:\n{console}"
    );
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page's script did not finish on {url}:\n{console}"
    );
    dom
}

/// A screenshot of `url`, 1400 × 900, saved at `png`.
pub fn screenshot(chromium: &Path, url: &str, png: &Path) -> Image {
    let _ = std::fs::remove_file(png);
    let (_, console) = run_chromium(chromium, url, &[&format!("--screenshot={}", png.display())]);
    assert!(
        png.is_file(),
        "chromium wrote no screenshot of {url}:\n{console}"
    );
    Image::load(png)
}

/// The value of `attr="…"` on the first element with `id="id"` in a dumped DOM.
pub fn attr(dom: &str, id: &str, attr: &str) -> Option<String> {
    let start = dom.find(&format!("id=\"{id}\""))?;
    let tag_start = dom[..start].rfind('<')?;
    let tag_end = start + dom[start..].find('>')?;
    let tag = &dom[tag_start..tag_end];
    let at = tag.find(&format!(" {attr}=\""))? + attr.len() + 3;
    Some(tag[at..at + tag[at..].find('"')?].to_string())
}

pub fn attr_f64(dom: &str, id: &str, name: &str) -> f64 {
    attr(dom, id, name)
        .unwrap_or_else(|| panic!("no {name} on #{id}"))
        .parse()
        .unwrap()
}

/// The inner HTML of the element with `id` (up to its matching close tag of the same name;
/// enough for the flat elements the tests read).
pub fn inner(dom: &str, id: &str, tag: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let open_end = start + dom[start..].find('>').unwrap() + 1;
    let close = format!("</{tag}>");
    let open = format!("<{tag}");
    // Match nested tags of the same name.
    let (mut depth, mut i) = (1, open_end);
    while depth > 0 {
        let next_open = dom[i..].find(&open).map(|p| p + i);
        let next_close = dom[i..]
            .find(&close)
            .map(|p| p + i)
            .expect("unclosed element");
        match next_open {
            Some(o) if o < next_close => {
                depth += 1;
                i = o + open.len();
            }
            _ => {
                depth -= 1;
                i = next_close + close.len();
            }
        }
    }
    dom[open_end..i - close.len()].to_string()
}

// ---------------------------------------------------------------------------------------------
// Pixels
// ---------------------------------------------------------------------------------------------

/// A decoded RGB(A) screenshot.
pub struct Image {
    pub width: usize,
    pub height: usize,
    /// RGB per pixel, row by row.
    pub rgb: Vec<[u8; 3]>,
}

impl Image {
    pub fn load(path: &Path) -> Image {
        let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        let channels = match info.color_type {
            png::ColorType::Rgb => 3,
            png::ColorType::Rgba => 4,
            other => panic!("unexpected PNG colour type {other:?}"),
        };
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        let rgb = buf[..info.buffer_size()]
            .chunks(channels)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        Image {
            width: info.width as usize,
            height: info.height as usize,
            rgb,
        }
    }

    pub fn at(&self, x: usize, y: usize) -> [u8; 3] {
        self.rgb[y * self.width + x]
    }

    /// Pixels in the rectangle [x0, x1) × [y0, y1) within `tolerance` of `color` per channel.
    pub fn count(
        &self,
        (x0, x1): (usize, usize),
        (y0, y1): (usize, usize),
        color: [u8; 3],
        tolerance: u8,
    ) -> usize {
        let mut n = 0;
        for y in y0..y1.min(self.height) {
            for x in x0..x1.min(self.width) {
                let p = self.at(x, y);
                if (0..3).all(|c| p[c].abs_diff(color[c]) <= tolerance) {
                    n += 1;
                }
            }
        }
        n
    }
}

pub fn hex(s: &str) -> [u8; 3] {
    let v = u32::from_str_radix(s.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// `color` at `alpha` over white, as a canvas blends it.
pub fn over_white(color: [u8; 3], alpha: f64) -> [u8; 3] {
    color.map(|c| (255.0 * (1.0 - alpha) + f64::from(c) * alpha).round() as u8)
}

// ---------------------------------------------------------------------------------------------
// Synthetic runs
// ---------------------------------------------------------------------------------------------

/// Writes `results/<name>/<stamp>/` with a `test.json` and the given history lines.
pub fn synthetic_run(
    results: &Path,
    name: &str,
    stamp: &str,
    concurrency: u64,
    lines: &[String],
) -> PathBuf {
    let dir = results.join(name).join(stamp);
    std::fs::create_dir_all(&dir).unwrap();
    let test = serde_json::json!({
        "test": {"name": name, "nodes": 3, "concurrency": concurrency, "seed": 42,
                 "nemesis": "kill,partition", "workload": "register", "model": "cas-register",
                 "check_time_limit_s": 60.0, "unsafe_bugs": []},
        "version": "test", "started_at": stamp, "status": "complete",
    });
    std::fs::write(dir.join("test.json"), test.to_string()).unwrap();
    let mut f = std::fs::File::create(dir.join("history.jsonl")).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    dir
}

/// A linearizable register history of `ops` ops: `workers` workers, each on keys of its own
/// (100 ops a key), reads returning the last write; one op in 100 times out (`info`, and the
/// worker goes on as a new process); a kill and a partition window. Deterministic.
pub fn big_history(ops: usize, workers: u64) -> Vec<String> {
    let mut events: Vec<(u64, String)> = Vec::with_capacity(2 * ops + 4);
    let per = ops as u64 / workers;
    // A tiny xorshift: deterministic, no dependency.
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for w in 0..workers {
        let (mut t, mut process, mut last): (u64, u64, Option<u64>) = (w * 100_000, w, None);
        for i in 0..per {
            let key = format!("k{w}-{}", i / 100);
            if i % 100 == 0 {
                last = None;
            }
            let info = next() % 100 == 0;
            let latency = if info {
                1_000_000_000
            } else {
                300_000 + next() % 3_000_000
            };
            let value = w * 1_000_000 + i;
            let p = process;
            let (f, inv, done, kind) = if i % 2 == 0 {
                let read = last.map_or("null".to_string(), |v| v.to_string());
                (
                    "read",
                    "null".to_string(),
                    read,
                    if info { "info" } else { "ok" },
                )
            } else {
                last = Some(value);
                (
                    "write",
                    value.to_string(),
                    value.to_string(),
                    if info { "info" } else { "ok" },
                )
            };
            events.push((
                t,
                format!(r#""process":{p},"type":"invoke","f":"{f}","key":"{key}","value":{inv}"#),
            ));
            events.push((
                t + latency,
                format!(r#""process":{p},"type":"{kind}","f":"{f}","key":"{key}","value":{done}"#),
            ));
            if info {
                process += workers;
            }
            t += latency + 1_000_000 + next() % 2_000_000;
        }
    }
    let end = events.iter().map(|e| e.0).max().unwrap_or(0);
    for (fault, a, b) in [
        ("kill", end / 5, end / 5 * 2),
        ("partition", end / 5 * 3, end / 5 * 4),
    ] {
        let value = if fault == "kill" {
            r#"{"fault":"kill","nodes":[2],"rules":[],"pids":{}}"#
        } else {
            r#"{"fault":"partition","kind":"one","nodes":[1,2,3],"groups":[[1],[2,3]],"rules":[],"pids":{}}"#
        };
        events.push((
            a,
            format!(r#""process":"nemesis","type":"info","f":"start","value":{value}"#),
        ));
        events.push((
            b,
            format!(r#""process":"nemesis","type":"info","f":"stop","value":{value}"#),
        ));
    }
    events.sort_by_key(|e| e.0);
    events
        .into_iter()
        .enumerate()
        .map(|(i, (t, rest))| format!(r#"{{"index":{i},"time":{t},{rest}}}"#))
        .collect()
}

/// A register history with a stale read on key `k1` during a kill: `write 1` completes, then a
/// later `read` returns nil.
pub fn stale_read_history() -> Vec<String> {
    [
        r#""process":0,"type":"invoke","f":"write","key":"k1","value":1"#,
        r#""process":0,"type":"ok","f":"write","key":"k1","value":1"#,
        r#""process":"nemesis","type":"info","f":"start","value":{"fault":"kill","nodes":[1],"rules":[],"pids":{}}"#,
        r#""process":1,"type":"invoke","f":"read","key":"k1","value":null"#,
        r#""process":1,"type":"ok","f":"read","key":"k1","value":null"#,
        r#""process":0,"type":"invoke","f":"write","key":"k2","value":5"#,
        r#""process":0,"type":"ok","f":"write","key":"k2","value":5"#,
        r#""process":"nemesis","type":"info","f":"stop","value":{"fault":"kill","nodes":[1],"rules":[],"pids":{}}"#,
    ]
    .iter()
    .enumerate()
    .map(|(i, rest)| format!(r#"{{"index":{i},"time":{},{rest}}}"#, (i as u64 + 1) * 10_000_000))
    .collect()
}
