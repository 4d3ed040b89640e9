//! `riptide compare BASE NEW`: what changed between two stored campaigns.
//!
//! Runs are matched by matrix cell, and within a cell by seed (a campaign's run k of every
//! cell uses seed `SEED + k`, so two campaigns started with the same `--seed` pair up run by
//! run). Per cell it reports, and the exit code says, in this order:
//!
//! 1. **Safety**: runs that are invalid in NEW but were valid in BASE at the same seed (or, with
//!    no seed to pair, a cell with invalid runs where BASE had none), and anomaly kinds NEW has
//!    that BASE had not. A cell where both campaigns ran the same `--unsafe-bug` is a catch
//!    cell instead: its catch rate is reported, and a bug that BASE caught and NEW never did
//!    counts as a safety regression (the bench stopped finding it).
//! 2. **Liveness**: runs that became unavailable: crashed, without a leader after healing,
//!    with no successful op at all, or failing the run's availability check (`unavailable`).
//! 3. **Performance** ([`perf`]): ok ops/s, p50 and p99 latency, as medians with their spread.
//!
//! Exit codes: 0 nothing regressed, 1 safety or liveness regressed, 3 only performance did,
//! 254 a campaign could not be read.

mod perf;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use riptide_store::campaign::{self as store, CampaignFile, CampaignRun, RunOutcome};

use crate::exit::{self, Exit};

/// Exit code when only performance regressed.
pub const PERF_REGRESSED: u8 = 3;

#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The reference: a campaign folder, or a baseline saved with `--save-baseline`.
    pub base: String,
    /// The campaign to judge against it (a folder or a baseline name).
    pub new: String,
    /// Where baselines are looked up.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// A performance difference counts only beyond this relative change of the medians (and
    /// when the ranges of the repetitions do not overlap).
    #[arg(long, default_value_t = 0.10)]
    pub perf_threshold: f64,
}

/// What one cell's comparison found.
#[derive(Debug, Default)]
struct CellReport {
    lines: Vec<String>,
    safety: bool,
    liveness: bool,
    perf: bool,
}

pub fn compare(args: CompareArgs) -> Result<u8, Exit> {
    if !(args.perf_threshold >= 0.0 && args.perf_threshold.is_finite()) {
        return Err(Exit::bad_args(
            "--perf-threshold must be a number >= 0 (0.1 = 10%)",
        ));
    }
    let load = |given: &str| -> Result<(PathBuf, CampaignFile), Exit> {
        let dir = store::resolve_campaign(&args.results_dir, given)
            .map_err(|e| Exit::bad_args(e.to_string()))?;
        let file = CampaignFile::load(&dir).map_err(|e| Exit::bad_args(e.to_string()))?;
        Ok((dir, file))
    };
    let (base_dir, base) = load(&args.base)?;
    let (new_dir, new) = load(&args.new)?;
    println!(
        "base  {}  ({} runs, node {})",
        base_dir.display(),
        base.runs.len(),
        node(&base)
    );
    println!(
        "new   {}  ({} runs, node {})",
        new_dir.display(),
        new.runs.len(),
        node(&new)
    );
    if base.asked.test_args != new.asked.test_args {
        println!(
            "note  the test options differ: `{}` -> `{}`",
            base.asked.test_args.join(" "),
            new.asked.test_args.join(" ")
        );
    }
    let (mut safety, mut liveness, mut perf) = (false, false, false);
    for (cell, runs) in by_cell(&new) {
        let base_runs = by_cell(&base).remove(&cell).unwrap_or_default();
        println!(
            "\ncell {}",
            if cell.is_empty() {
                "(all runs)".into()
            } else {
                cell.clone()
            }
        );
        if base_runs.is_empty() {
            println!("  not in the base campaign: nothing to compare");
            continue;
        }
        let report = compare_cell(&base_runs, &runs, args.perf_threshold);
        for line in &report.lines {
            println!("  {line}");
        }
        safety |= report.safety;
        liveness |= report.liveness;
        perf |= report.perf;
    }
    let (code, verdict) = if safety || liveness {
        let what = match (safety, liveness) {
            (true, true) => "SAFETY AND LIVENESS REGRESSED",
            (true, false) => "SAFETY REGRESSED",
            _ => "LIVENESS REGRESSED",
        };
        (exit::INVALID, what)
    } else if perf {
        (PERF_REGRESSED, "PERFORMANCE REGRESSED")
    } else {
        (0, "no regression")
    };
    println!("\nverdict   {verdict} (exit {code})");
    Ok(code)
}

/// Runs by cell label (`nemesis=kill nodes=3`; empty without a matrix).
fn by_cell(file: &CampaignFile) -> BTreeMap<String, Vec<CampaignRun>> {
    let mut cells: BTreeMap<String, Vec<CampaignRun>> = BTreeMap::new();
    for run in &file.runs {
        let label: Vec<String> = run.cell.iter().map(|(k, v)| format!("{k}={v}")).collect();
        cells.entry(label.join(" ")).or_default().push(run.clone());
    }
    cells
}

fn compare_cell(base: &[CampaignRun], new: &[CampaignRun], threshold: f64) -> CellReport {
    let mut report = CellReport::default();
    let catch_cell = !new[0].unsafe_bugs.is_empty() && new[0].unsafe_bugs == base[0].unsafe_bugs;
    if catch_cell {
        catch_rate(base, new, &mut report);
    } else {
        safety(base, new, &mut report);
    }
    liveness(base, new, &mut report);
    perf::compare(base, new, threshold, &mut report);
    report
}

/// The liveness anomaly: judged under liveness, not safety.
const UNAVAILABLE: &str = "unavailable";

/// Invalid for a safety reason: an anomaly other than unavailability (or an invalid run from
/// before anomalies were recorded).
fn unsafe_run(r: &CampaignRun) -> bool {
    r.verdict == RunOutcome::Invalid
        && (r.anomalies.is_empty() || r.anomalies.iter().any(|a| a != UNAVAILABLE))
}

/// A cell of the correct node (or of a bug only NEW runs): invalid runs are regressions.
fn safety(base: &[CampaignRun], new: &[CampaignRun], report: &mut CellReport) {
    let base_at = |seed| base.iter().find(|r| r.seed == seed);
    let base_invalid = base.iter().filter(|r| unsafe_run(r)).count();
    let mut became = Vec::new();
    let mut still = Vec::new();
    for run in new.iter().filter(|r| unsafe_run(r)) {
        let was_invalid = match base_at(run.seed) {
            Some(b) => unsafe_run(b),
            None => base_invalid > 0,
        };
        let text = format!(
            "seed {} ({}) {}",
            run.seed,
            run.anomalies.join(", "),
            run.dir.as_deref().unwrap_or("?")
        );
        if was_invalid {
            still.push(text);
        } else {
            became.push(text);
        }
    }
    let kinds = |runs: &[CampaignRun]| -> BTreeSet<String> {
        runs.iter()
            .flat_map(|r| r.anomalies.iter().cloned())
            .filter(|a| a != UNAVAILABLE)
            .collect()
    };
    let new_kinds: Vec<String> = kinds(new).difference(&kinds(base)).cloned().collect();
    if !became.is_empty() {
        report.safety = true;
        report.lines.push(format!(
            "safety     REGRESSED: {} run(s) became invalid: {}",
            became.len(),
            became.join("; ")
        ));
    }
    if !new_kinds.is_empty() {
        report.safety = true;
        report.lines.push(format!(
            "safety     new anomaly kinds: {}",
            new_kinds.join(", ")
        ));
    }
    if !still.is_empty() {
        report.lines.push(format!(
            "safety     still invalid as in the base: {}",
            still.join("; ")
        ));
    }
    if became.is_empty() && new_kinds.is_empty() && still.is_empty() {
        report.lines.push(format!(
            "safety     ok: all {} runs valid or undecided",
            new.len()
        ));
    }
}

/// A cell where both campaigns ran the same unsafe bug: how often each caught it.
fn catch_rate(base: &[CampaignRun], new: &[CampaignRun], report: &mut CellReport) {
    let rate = |runs: &[CampaignRun]| {
        let caught = runs
            .iter()
            .filter(|r| r.verdict == RunOutcome::Invalid)
            .count();
        (caught, runs.len())
    };
    let ((bc, bn), (nc, nn)) = (rate(base), rate(new));
    let bugs = new[0].unsafe_bugs.join(", ");
    let lost = bc > 0 && nc == 0;
    report.safety |= lost;
    report.lines.push(format!(
        "catch rate {bugs}: {bc} of {bn} -> {nc} of {nn}{}",
        if lost {
            "  REGRESSED: the bug is no longer caught"
        } else {
            ""
        }
    ));
}

/// Runs that could not serve: crashed, no leader after healing, or no successful op.
fn liveness(base: &[CampaignRun], new: &[CampaignRun], report: &mut CellReport) {
    let unavailable = |r: &CampaignRun| {
        r.verdict == RunOutcome::Crashed
            || !r.cluster_recovered
            || r.ok_per_s == 0.0
            || r.anomalies.iter().any(|a| a == UNAVAILABLE)
    };
    let base_count = base.iter().filter(|r| unavailable(r)).count();
    let became: Vec<String> = new
        .iter()
        .filter(|r| unavailable(r))
        .filter(|r| match base.iter().find(|b| b.seed == r.seed) {
            Some(b) => !unavailable(b),
            None => base_count == 0,
        })
        .map(|r| {
            format!(
                "seed {} ({}) {}",
                r.seed,
                r.verdict.name(),
                r.dir.as_deref().unwrap_or("?")
            )
        })
        .collect();
    if became.is_empty() {
        let now = new.iter().filter(|r| unavailable(r)).count();
        report.lines.push(format!(
            "liveness   ok: {now} unavailable run(s) (base {base_count})"
        ));
    } else {
        report.liveness = true;
        report.lines.push(format!(
            "liveness   REGRESSED: {} run(s) became unavailable: {}",
            became.len(),
            became.join("; ")
        ));
    }
}

fn node(file: &CampaignFile) -> String {
    let n = &file.node;
    let commit = n
        .git_commit
        .as_deref()
        .map(|c| &c[..c.len().min(10)])
        .unwrap_or("no git");
    let dirty = if n.git_dirty == Some(true) {
        " dirty"
    } else {
        ""
    };
    format!("{commit}{dirty}, crc32 {}", n.binary_crc32)
}

#[cfg(test)]
mod tests;
