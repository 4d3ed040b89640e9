//! One campaign row, read from a finished run's folder (`results.json`, `test.json`).

use std::collections::BTreeMap;
use std::path::Path;

use riptide_checker::Verdict;
use riptide_store::campaign::{CampaignRun, RunOutcome};
use riptide_store::results::CheckSummary;
use riptide_store::{Manifest, ReplicaOutcome, Results};

/// What the run's folder says; `None` for `results` when the run was never judged (crashed).
pub struct Judged {
    pub row: CampaignRun,
    /// The run ended before its time limit (Ctrl-C): the campaign stops and keeps it out.
    pub interrupted: bool,
}

/// The row of the run of `seed` in `cell`, whose folder is `dir` (if the child said).
pub fn read(
    results_dir: &Path,
    dir: Option<&Path>,
    cell: &BTreeMap<String, String>,
    seed: u64,
    seconds: f64,
) -> Judged {
    let mut row = CampaignRun {
        caught_at_s: None,
        cell: cell.clone(),
        seed,
        verdict: RunOutcome::Crashed,
        anomalies: Vec::new(),
        dir: dir.map(|d| relative(results_dir, d)),
        seconds,
        ok_per_s: 0.0,
        p50_ms: 0.0,
        p99_ms: 0.0,
        faults: BTreeMap::new(),
        unsafe_bugs: Vec::new(),
        cluster_recovered: true,
    };
    let Some(dir) = dir else {
        return Judged {
            row,
            interrupted: false,
        };
    };
    if let Ok(m) = Manifest::load(dir) {
        row.unsafe_bugs = m.test.unsafe_bugs.clone();
    }
    let results: Results<CheckSummary> = match Results::load(dir) {
        Ok(r) => r,
        Err(err) => {
            eprintln!("riptide campaign: {err}");
            return Judged {
                row,
                interrupted: false,
            };
        }
    };
    fill(&mut row, &results);
    row.caught_at_s = caught_at(dir, &results);
    Judged {
        row,
        interrupted: !results.complete,
    }
}

fn fill(row: &mut CampaignRun, results: &Results<CheckSummary>) {
    let s = &results.summary;
    row.verdict = RunOutcome::from_verdict(results.verdict);
    if results.checker.verdict == Verdict::Invalid {
        row.anomalies.push("not-linearizable".into());
    }
    if results.replicas.as_ref().map(|r| r.outcome) == Some(ReplicaOutcome::Diverged) {
        row.anomalies.push("replicas-diverged".into());
    }
    if results
        .replicas
        .as_ref()
        .is_some_and(|r| !r.violations.is_empty())
    {
        row.anomalies.push("node-violation".into());
    }
    if results.availability.as_ref().is_some_and(|a| !a.available) {
        row.anomalies.push("unavailable".into());
    }
    row.ok_per_s = if s.duration_s > 0.0 {
        s.outcomes.ok as f64 / s.duration_s
    } else {
        0.0
    };
    row.p50_ms = s.latency_ms.ok_p50;
    row.p99_ms = s.latency_ms.ok_p99;
    row.faults = s.faults.clone();
    row.cluster_recovered = results.cluster_recovered;
}

/// When an invalid run was known to be invalid (see [`CampaignRun::caught_at_s`]).
fn caught_at(dir: &Path, results: &Results<CheckSummary>) -> Option<f64> {
    if results.verdict != Verdict::Invalid {
        return None;
    }
    let live = riptide_store::live_check::LiveCheck::load(dir)
        .ok()
        .flatten();
    Some(
        live.and_then(|l| l.first_invalid().map(|f| f.found_at_s))
            .unwrap_or(results.summary.duration_s),
    )
}

/// `dir` relative to the results dir when it is inside it.
fn relative(results_dir: &Path, dir: &Path) -> String {
    let results = std::fs::canonicalize(results_dir).unwrap_or(results_dir.to_path_buf());
    let full = std::fs::canonicalize(dir).unwrap_or(dir.to_path_buf());
    full.strip_prefix(&results)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| full.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_judged_run_gives_its_numbers_and_anomalies_and_no_folder_is_a_crash() {
        let results = tempfile::tempdir().unwrap();
        let dir = results.path().join("riptide/20261202T000000");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("results.json"),
            r#"{"schema":1,"verdict":"invalid","complete":true,"cluster_recovered":false,
                "summary":{"outcomes":{"ok":500,"fail":1,"info":0,"open":0},"duration_s":10.0,
                  "latency_ms":{"p50":1,"p95":2,"p99":3,"max":4,"ok_p50":1.5,"ok_p99":2.5},
                  "faults":{"kill":2}},
                "checker":{"verdict":"valid","elapsed_secs":0.1,"key_counts":{"valid":1,"invalid":0,"unknown":0},"keys":{}},
                "replicas":{"outcome":"diverged","note":"x","nodes":[]}}"#,
        )
        .unwrap();
        let cell = BTreeMap::new();
        let judged = read(results.path(), Some(&dir), &cell, 7, 12.0);
        let row = judged.row;
        assert!(!judged.interrupted);
        assert_eq!(row.verdict, RunOutcome::Invalid);
        assert_eq!(row.anomalies, ["replicas-diverged"]);
        assert_eq!(row.dir.as_deref(), Some("riptide/20261202T000000"));
        assert_eq!(row.ok_per_s, 50.0);
        assert_eq!((row.p50_ms, row.p99_ms), (1.5, 2.5));
        assert_eq!(row.faults["kill"], 2);
        assert!(!row.cluster_recovered);
        let crashed = read(results.path(), None, &cell, 8, 1.0).row;
        assert_eq!(crashed.verdict, RunOutcome::Crashed);
    }
}
