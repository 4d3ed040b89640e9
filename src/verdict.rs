//! Judging a stored run: summarise its history, check it, write `results.json`, print the summary.
//! Used at the end of `riptide test` and by `riptide analyze`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use riptide_checker::{CheckOptions, CheckReport, Format, ModelKind, Verdict};
use serde::Serialize;

use crate::summary::{self, RunSummary};

/// `results.json`: the terminal summary, in full.
#[derive(Serialize)]
pub struct Results<'a> {
    pub verdict: Verdict,
    /// False if the run was interrupted before its time limit.
    pub complete: bool,
    /// Whether a leader was back after the faults were healed.
    pub cluster_recovered: bool,
    pub summary: &'a RunSummary,
    pub checker: &'a CheckReport,
}

/// Checks the run in `dir` and stores `results.json`. Returns the exit code of the verdict.
pub fn judge_run(
    dir: &Path,
    model: &str,
    time_limit: Duration,
    interrupted: bool,
    recovered: bool,
) -> anyhow::Result<u8> {
    let path = dir.join("history.jsonl");
    let summary =
        summary::summarise(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let model: ModelKind = model.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let history = riptide_checker::load_history(&path, Format::Jsonl)?;
    let opts = CheckOptions {
        time_limit: Some(time_limit),
        ..CheckOptions::default()
    };
    let report = riptide_checker::check(&history, model, &opts)?;
    let results = Results {
        verdict: report.verdict,
        complete: !interrupted,
        cluster_recovered: recovered,
        summary: &summary,
        checker: &report,
    };
    crate::store::write_json(&dir.join("results.json"), &results)
        .context("cannot write results.json")?;
    print_summary(dir, &results);
    Ok(report.verdict.exit_code() as u8)
}

fn print_summary(dir: &Path, r: &Results) {
    let s = r.summary;
    let o = &s.outcomes;
    println!();
    if r.verdict == Verdict::Invalid {
        // The counterexample first: it is why anyone reads this.
        println!("{}", r.checker.render());
    }
    println!(
        "ops       {} invoked: {} ok, {} fail, {} info, {} open",
        s.invokes, o.ok, o.fail, o.info, o.open
    );
    for (f, c) in &s.by_f {
        println!("  {f:<8}{} ok, {} fail, {} info", c.ok, c.fail, c.info);
    }
    println!(
        "latency   p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (ok ops: p50 {:.1} ms, p99 {:.1} ms)",
        s.latency_ms.p50,
        s.latency_ms.p99,
        s.latency_ms.max,
        s.latency_ms.ok_p50,
        s.latency_ms.ok_p99
    );
    if !s.faults.is_empty() {
        let faults: Vec<String> = s.faults.iter().map(|(k, n)| format!("{n} {k}")).collect();
        println!("faults    {}", faults.join(", "));
    }
    let k = &r.checker.key_counts;
    println!(
        "checker   {} keys: {} valid, {} invalid, {} unknown in {:.2} s",
        r.checker.keys.len(),
        k.valid,
        k.invalid,
        k.unknown,
        r.checker.elapsed_secs
    );
    if !r.complete {
        println!(
            "note      the run was interrupted: the history covers only part of the time limit"
        );
    }
    if !r.cluster_recovered {
        println!("note      the cluster had no leader after healing; final reads may be missing");
    }
    println!("verdict   {}", r.verdict.name().to_uppercase());
    println!("run       {}", dir.display());
}
