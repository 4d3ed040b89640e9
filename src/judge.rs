//! Judging a stored run: summarise its history, check it, write `results.json` and the reports,
//! print the summary. Used at the end of `riptide test` and by `riptide analyze`.
//!
//! This is where the run-folder schema (riptide-store) and the reports (riptide-report) meet:
//! the reports read the schema's types and know nothing of runs or of this module.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use riptide_checker::{CheckOptions, CheckReport, Format, History, ModelKind, Verdict};
use riptide_store::history::HistoryFile;
use riptide_store::{files, summary, ReplicaCheck, ReplicaOutcome, Results, RunHistory};

/// `results.json` as the judge writes it: the checker's whole report.
type Judged<'a> = Results<&'a CheckReport>;

/// Checks the run in `dir` and stores `results.json`. Returns the exit code of the verdict.
pub fn judge_run(
    dir: &Path,
    model: &str,
    time_limit: Duration,
    interrupted: bool,
    recovered: bool,
) -> anyhow::Result<u8> {
    let path = dir.join(files::HISTORY);
    let file =
        HistoryFile::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let run = RunHistory::from_file(&file);
    let summary = summary::summarise(&run);
    let model: ModelKind = model.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let history = checker_history(&file)?;
    // A run's report should show every anomaly, not just the first one found: check all keys.
    let opts = CheckOptions {
        time_limit: Some(time_limit),
        all_keys: true,
        ..CheckOptions::default()
    };
    let report = riptide_checker::check(&history, model, &opts)?;
    // A run stopped before the replicas were compared has no replicas.json; a damaged one is
    // said, and costs the run nothing but the comparison.
    // The stored answers are compared again, so `riptide analyze` re-decides them too.
    let replicas = ReplicaCheck::load(dir)
        .unwrap_or_else(|err| {
            eprintln!("riptide: warning: {err:#}; judging without the replica comparison");
            None
        })
        .map(|stored| {
            ReplicaCheck::compare(stored.nodes, stored.unanswered)
                .with_violations(stored.violations)
        });
    let rule = riptide_store::Manifest::load(dir)
        .map(|m| m.test.liveness_rule())
        .unwrap_or_default();
    let availability = riptide_store::availability::judge(&run, rule);
    let results = Results::new(report.verdict, !interrupted, recovered, summary, &report)
        .with_replicas(replicas)
        .with_availability(Some(availability));
    results.store(dir)?;
    // The reports are for reading; failing to write one must not cost the verdict.
    if let Err(err) = riptide_report::write_run_reports(dir, &run, &results) {
        eprintln!("riptide: warning: cannot write the reports: {err:#}");
    }
    print_summary(dir, &results);
    Ok(results.verdict.exit_code() as u8)
}

/// The checker's view of the history, from the records already read. A damaged line stops the
/// checker: then the checker reads the file itself, for its exact message (line, expected,
/// found).
fn checker_history(file: &HistoryFile) -> anyhow::Result<History> {
    if file.unreadable_lines > 0 {
        return Ok(riptide_checker::load_history(&file.path, Format::Jsonl)?);
    }
    let records = file.records.iter().map(|(line, record)| (*line, record));
    Ok(History::from_records(&file.path, records)?)
}

/// What was wrong, first: the counterexample, diverged replicas, node violations, outages.
fn print_anomalies(r: &Judged) {
    if r.checker.verdict == Verdict::Invalid {
        // The counterexample first: it is why anyone reads this.
        println!("{}", r.checker.render());
    }
    if let Some(replicas) = r
        .replicas
        .as_ref()
        .filter(|c| c.outcome == ReplicaOutcome::Diverged)
    {
        println!("REPLICAS DIVERGED: {}", replicas.note);
        println!("  (nodes that applied the same index hold different state machines: a safety violation even if no client read it)");
    }
    for line in r.replicas.iter().flat_map(|c| c.describe_violations()) {
        println!("NODE SAFETY VIOLATION: {line}");
    }
    if let Some(a) = r.availability.as_ref().filter(|a| !a.available) {
        println!("UNAVAILABLE: {}", a.reasons.join("; "));
        println!("  (the cluster did not serve its clients while nothing stopped it; see --liveness-threshold)");
    }
}

fn print_summary(dir: &Path, r: &Judged) {
    let s = &r.summary;
    let o = &s.outcomes;
    println!();
    print_anomalies(r);
    println!(
        "ops       {} invoked: {} ok, {} fail, {} info, {} open",
        s.invokes, o.ok, o.fail, o.info, o.open
    );
    for (f, c) in &s.by_f {
        println!("  {f:<8}{} ok, {} fail, {} info", c.ok, c.fail, c.info);
    }
    println!(
        "latency   p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms (ok ops: p50 {:.1} ms, p99 {:.1} ms)",
        s.latency_ms.p50,
        s.latency_ms.p95,
        s.latency_ms.p99,
        s.latency_ms.max,
        s.latency_ms.ok_p50,
        s.latency_ms.ok_p99
    );
    if !s.faults.is_empty() {
        let faults: Vec<String> = s.faults.iter().map(|(k, n)| format!("{n} {k}")).collect();
        println!("faults    {}", faults.join(", "));
    }
    for (node, why) in &s.nodes_refused {
        println!("down      {node} refused to start after a disk fault and stayed down ({why})");
    }
    let k = &r.checker.key_counts;
    println!(
        "checker   {} keys: {} valid, {} invalid, {} unknown in {}",
        r.checker.keys.len(),
        k.valid,
        k.invalid,
        k.unknown,
        seconds(r.checker.elapsed_secs)
    );
    for verdict in [Verdict::Invalid, Verdict::Unknown] {
        let names: Vec<&str> = r
            .checker
            .keys
            .iter()
            .filter(|(_, k)| k.verdict == verdict)
            .map(|(name, _)| name.as_str())
            .collect();
        if !names.is_empty() {
            println!("  {:<8}{}", verdict.name(), key_list(&names));
        }
    }
    if let Some(replicas) = &r.replicas {
        println!("replicas  {}", replicas.note);
    }
    if let Some(availability) = &r.availability {
        println!("liveness  {}", availability.describe());
    }
    match riptide_store::live_check::LiveCheck::load(dir) {
        Ok(Some(live)) => println!("live      {}", live.describe()),
        Ok(None) => {}
        Err(err) => eprintln!("riptide: warning: {err:#}"),
    }
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

/// How many key names a terminal line lists before "and N more" (results.json has them all).
const KEYS_SHOWN: usize = 12;

fn key_list(names: &[&str]) -> String {
    let shown: Vec<String> = names
        .iter()
        .take(KEYS_SHOWN)
        .map(|n| {
            if n.is_empty() {
                "(the only key)".to_string()
            } else {
                n.to_string()
            }
        })
        .collect();
    let mut line = shown.join(", ");
    if names.len() > KEYS_SHOWN {
        line.push_str(&format!(" and {} more", names.len() - KEYS_SHOWN));
    }
    line
}

/// A duration with the precision a person wants: `0.72 ms`, `3.41 s`.
fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}
