//! `riptide test --nemesis stall`: the leader frozen while cut off from its peers, woken while
//! still cut off. The node with leader leases whose clock stops with the process
//! (`lease-read-unsafe`) answers stale reads then and is caught; the correct node, reading by
//! ReadIndex or from a lease whose clock catches up on the ticks it missed, stays valid under
//! the same faults. Skipped (with a message) when not root, like every `riptide test` run.

mod common;

use std::process::{Command, Output};

use common::{json_lines, latest_run, riptide_bin, skip_without_root};

/// One `riptide test` of 3 nodes under stalls every 4 s, with the zoo's clients (half of them
/// patient, writes of unknown outcome resent), ending at the first invalid key.
fn run(results: &std::path::Path, node: &[&str]) -> Output {
    Command::new(riptide_bin())
        .args(["test", "--nodes", "3", "--time-limit", "20"])
        .args([
            "--workload",
            "append",
            "--rate",
            "300",
            "--ops-per-key",
            "500",
        ])
        .args(["--op-timeout-ms", "2500", "--op-timeout-long-ms", "6000"])
        .args(["--retry-indeterminate", "3", "--stop-on-invalid"])
        .args(["--nemesis", "stall", "--nemesis-interval", "4"])
        .args(node)
        .args(["--seed", "1", "--no-progress", "--results-dir"])
        .arg(results)
        .output()
        .expect("run riptide")
}

fn stalls(dir: &std::path::Path) -> Vec<serde_json::Value> {
    json_lines(&dir.join("history.jsonl"))
        .into_iter()
        .filter(|op| op["process"] == "nemesis" && op["value"]["fault"] == "stall")
        .collect()
}

#[test]
fn a_stalled_leader_serves_stale_lease_reads_only_with_the_lease_bug() {
    if skip_without_root() {
        return;
    }
    let buggy = tempfile::tempdir().unwrap();
    let out = run(buggy.path(), &["--unsafe-bug", "lease-read-unsafe"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("verdict   INVALID"), "{stdout}");
    let dir = latest_run(buggy.path());
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert!(
        results["checker"]["key_counts"]["invalid"].as_u64() >= Some(1),
        "caught by the checker, not by liveness: {results}"
    );
    let events = stalls(&dir);
    let start = events
        .iter()
        .find(|op| op["f"] == "start")
        .expect("a stall");
    assert_eq!(start["value"]["awake_ms"], 1000, "{start}");
    assert_eq!(
        start["value"]["rules"].as_array().unwrap().len(),
        4,
        "{start}"
    );

    for node in [&[][..], &["--read-mode", "lease"][..]] {
        let correct = tempfile::tempdir().unwrap();
        let out = run(correct.path(), node);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{node:?}\n{stdout}\n{stderr}");
        assert!(stdout.contains("verdict   VALID"), "{stdout}");
        let events = stalls(&latest_run(correct.path()));
        let stops = events.iter().filter(|op| op["f"] == "stop").count();
        assert!(stops >= 2, "{node:?}: {events:#?}");
    }
}
