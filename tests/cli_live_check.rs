//! Checking while the run goes: keys are checked as soon as the workload retires them, and
//! `--stop-on-invalid` ends the run at the first invalid one. Real runs: 3 node processes in
//! the run's network namespace.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `riptide test` with `extra`; returns the exit code, stdout and the run folder.
fn run(results: &Path, extra: &[&str]) -> (Option<i32>, String, PathBuf) {
    let out = Command::new(common::riptide_bin())
        .args([
            "test",
            "--nodes",
            "3",
            "--ops-per-key",
            "30",
            "--seed",
            "11",
        ])
        .args(["--no-progress", "--results-dir", results.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = common::latest_run(results);
    (out.status.code(), stdout, run)
}

fn json(path: PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// The time of the last record of the history, in seconds.
fn history_seconds(run: &Path) -> f64 {
    let text = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    last["time"].as_f64().unwrap() / 1e9
}

#[test]
fn stop_on_invalid_ends_a_run_with_stale_reads_within_seconds() {
    if common::skip_without_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, run) = run(
        dir.path(),
        &[
            "--time-limit",
            "120",
            "--nemesis",
            "none",
            "--unsafe-bug",
            "stale-read",
            "--stop-on-invalid",
        ],
    );
    assert_eq!(code, Some(1), "stale reads are invalid:\n{stdout}");
    let live = json(run.join("live-check.json"));
    assert_eq!(live["stop_on_invalid"], true, "{live}");
    assert_eq!(live["stopped_run"], true, "{live}");
    let first = &live["invalid"][0];
    let found_at = first["found_at_s"].as_f64().unwrap();
    assert!(found_at < 60.0, "found after {found_at} s: {live}");
    // The run really ended there: the history (final reads included) stops long before the
    // 120 s time limit.
    let seconds = history_seconds(&run);
    assert!(seconds < found_at + 30.0, "history lasts {seconds} s");
    // What the live check found, the final check confirms: a prefix of a linearizable
    // history is linearizable.
    let results = json(run.join("results.json"));
    let key = first["key"].as_str().unwrap();
    assert_eq!(
        results["checker"]["keys"][key]["verdict"], "invalid",
        "{key} in results.json"
    );
    assert!(
        stdout.contains("--stop-on-invalid ended the run"),
        "{stdout}"
    );
    let test = json(run.join("test.json"));
    assert!(
        test["rerun"]
            .as_str()
            .unwrap()
            .contains("--stop-on-invalid"),
        "{test}"
    );
}

#[test]
fn the_correct_node_is_checked_while_the_run_goes_and_found_valid() {
    if common::skip_without_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, run) = run(
        dir.path(),
        &[
            "--time-limit",
            "10",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "2",
            "--stop-on-invalid",
        ],
    );
    assert_eq!(code, Some(0), "the correct node is valid:\n{stdout}");
    let live = json(run.join("live-check.json"));
    assert!(
        live["keys_checked"].as_u64().unwrap() >= 5,
        "keys retire every 30 ops at 100 ops/s: {live}"
    );
    assert_eq!(live["invalid"], serde_json::json!([]), "{live}");
    assert_eq!(live["stopped_run"], false, "{live}");
    assert!(
        history_seconds(&run) >= 10.0,
        "the run went on to its time limit"
    );
}
