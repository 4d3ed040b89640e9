//! riptide-report: what a person reads to see why a run got its verdict.
//!
//! After `results.json` is written, [`write_run_reports`] puts three files beside it:
//!
//! - `timeline.html` ([`timeline`]): every op on a lane per worker, the faults shaded across all
//!   lanes, the counterexample highlighted; zoom, pan, key filter, "jump to the anomaly".
//! - `latency.svg` and `rate.svg` ([`plots`]): latency of every op over time with p50/p95/p99
//!   lines, and ok/fail/info throughput, both with the fault windows shaded.
//!
//! and [`index::write_index`] rewrites `results/index.html`, the list of every stored run.
//!
//! Everything here is computed from files in the run folder (`history.jsonl`, `test.json`) and
//! the check's report, so `riptide analyze` can redo it for any stored run. A report that cannot
//! be written is a warning, never a reason to lose the verdict.

pub mod campaign;
pub mod index;
pub mod lanes;
pub mod plots;
pub mod timeline;

use std::path::Path;

use anyhow::Context;
use riptide_checker::CheckReport;
use riptide_store::{Manifest, Results, RunHistory};

/// What `test.json` says about the run, for headers and the index. Every field is optional: a
/// history checked without its `test.json` still gets reports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunInfo {
    pub name: Option<String>,
    pub started_at: Option<String>,
    pub status: Option<String>,
    /// As text: a u64 seed does not fit a JavaScript number.
    pub seed: Option<String>,
    pub nodes: Option<u64>,
    pub nemesis: Option<String>,
    pub workload: Option<String>,
    pub concurrency: Option<u64>,
    pub unsafe_bugs: Vec<String>,
    pub time_limit_s: Option<f64>,
    pub model: Option<String>,
    pub check_time_limit_s: Option<f64>,
    /// A sentence the page shows above the timeline (a page of `riptide check --report` says
    /// what its time axis is and what it leaves out).
    pub note: Option<String>,
    /// The files the page links to; `None`: a run folder's (and the list of all runs).
    pub links: Option<Vec<String>>,
    /// The replicas compared after the run (`replicas.json`), when the run has it.
    pub replicas: Option<riptide_store::ReplicaCheck>,
    /// The availability check, when the run has one.
    pub availability: Option<riptide_store::availability::Availability>,
}

impl RunInfo {
    /// Reads `dir/test.json`; a missing or unreadable one gives an empty `RunInfo`.
    pub fn load(dir: &Path) -> RunInfo {
        Manifest::load(dir)
            .map(|m| RunInfo::from_manifest(&m))
            .unwrap_or_default()
    }

    pub fn from_manifest(m: &Manifest) -> RunInfo {
        let t = &m.test;
        let text = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let positive = |x: f64| (x > 0.0).then_some(x);
        RunInfo {
            name: text(&t.name),
            started_at: text(&m.started_at),
            status: Some(m.status.name().to_string()),
            seed: Some(t.seed.to_string()),
            nodes: (t.nodes > 0).then_some(t.nodes as u64),
            nemesis: text(&t.nemesis),
            workload: text(&t.workload),
            concurrency: t.known_concurrency().map(|c| c as u64),
            unsafe_bugs: t.unsafe_bugs.clone(),
            time_limit_s: positive(t.time_limit_s),
            model: text(&t.model),
            check_time_limit_s: positive(t.check_time_limit_s),
            note: None,
            links: None,
            replicas: None,
            availability: None,
        }
    }
}

/// Writes `timeline.html`, `latency.svg` and `rate.svg` into the run folder `dir`.
pub fn write_run_reports(
    dir: &Path,
    run: &RunHistory,
    results: &Results<&CheckReport>,
) -> anyhow::Result<()> {
    let mut info = RunInfo::load(dir);
    // `riptide test` judges the run before it marks test.json complete: say what it will say.
    if info.status.as_deref() == Some("running") {
        info.status = Some(
            if results.complete {
                "complete"
            } else {
                "incomplete"
            }
            .to_string(),
        );
    }
    info.replicas = results.replicas.clone();
    info.availability = results.availability.clone();
    let page = timeline::render(run, &info, &results.summary, results.checker);
    write_atomic(&dir.join("timeline.html"), page.as_bytes())?;
    let latency = plots::latency_svg(run, &results.summary);
    write_atomic(&dir.join("latency.svg"), latency.as_bytes())?;
    let rate = plots::rate_svg(run);
    write_atomic(&dir.join("rate.svg"), rate.as_bytes())?;
    Ok(())
}

/// Writes the report of a history checked outside a run (`riptide check FILE --report DIR`)
/// into `dir`, which must exist: `timeline.html`, and when the history has real times
/// (`timed`) `latency.svg` and `rate.svg` too (on a time axis of history indices they would
/// plot nothing meaningful). The page links to what was written. Returns the page's path.
pub fn write_history_reports(
    dir: &Path,
    run: &RunHistory,
    info: &RunInfo,
    checker: &CheckReport,
    timed: bool,
) -> anyhow::Result<std::path::PathBuf> {
    let summary = riptide_store::summary::summarise(run);
    let links = if timed {
        vec!["latency.svg".to_string(), "rate.svg".to_string()]
    } else {
        Vec::new()
    };
    let info = RunInfo {
        links: Some(links),
        ..info.clone()
    };
    let page = dir.join("timeline.html");
    write_atomic(
        &page,
        timeline::render(run, &info, &summary, checker).as_bytes(),
    )?;
    if timed {
        write_atomic(
            &dir.join("latency.svg"),
            plots::latency_svg(run, &summary).as_bytes(),
        )?;
        write_atomic(&dir.join("rate.svg"), plots::rate_svg(run).as_bytes())?;
    }
    Ok(page)
}

/// [`riptide_store::layout::write_atomic`] with the path in the error.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    riptide_store::layout::write_atomic(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Colours shared by the page, the plots and the index, so an outcome or a fault looks the same
/// everywhere.
pub mod colors {
    pub const OK: &str = "#43a047";
    pub const FAIL: &str = "#e53935";
    pub const INFO: &str = "#f9a825";
    pub const OPEN: &str = "#9e9e9e";

    /// A fault's colour by name.
    pub fn fault(name: &str) -> &'static str {
        match name {
            "kill" => "#8e24aa",
            "pause" => "#1e88e5",
            "partition" => "#fb8c00",
            "loss" => "#00897b",
            "delay" => "#039be5",
            "power-cut" => "#6d4c41",
            "corrupt" => "#d81b60",
            "restart" => "#5e35b1",
            "transfer-leader" => "#c0ca33",
            "membership" => "#546e7a",
            "slow-apply" => "#7cb342",
            "reorder" => "#ff7043",
            "stall" => "#283593",
            "stale-candidate" => "#00acc1",
            _ => "#757575",
        }
    }

    /// `#rrggbb` as (r, g, b).
    pub fn rgb(hex: &str) -> (u8, u8, u8) {
        let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0);
        ((v >> 16) as u8, (v >> 8) as u8, v as u8)
    }
}
