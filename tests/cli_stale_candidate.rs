//! `riptide test --nemesis stale-candidate`: a follower cut off until it lags, then the leader
//! killed and the lagging node left the only link between the others. A node that votes
//! without comparing logs (`vote-any-log`) elects it, and the entries the others committed
//! meanwhile are lost: caught by the checker. The correct node elects nobody until the heal
//! and stays valid under the same faults. Skipped (with a message) when not root, like every
//! `riptide test` run.

mod common;

use std::process::{Command, Output};

use common::{json_lines, latest_run, riptide_bin, skip_without_root};

/// One `riptide test` of 3 nodes under a stale candidate every 4 s, with the zoo's clients,
/// ending at the first invalid key.
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
        .args(["--nemesis", "stale-candidate", "--nemesis-interval", "4"])
        .args(node)
        .args(["--seed", "1", "--no-progress", "--results-dir"])
        .arg(results)
        .output()
        .expect("run riptide")
}

fn events(dir: &std::path::Path) -> Vec<serde_json::Value> {
    json_lines(&dir.join("history.jsonl"))
        .into_iter()
        .filter(|op| op["process"] == "nemesis" && op["value"]["fault"] == "stale-candidate")
        .collect()
}

#[test]
fn a_lagging_node_left_the_only_link_is_elected_only_by_votes_that_ignore_the_logs() {
    if skip_without_root() {
        return;
    }
    let buggy = tempfile::tempdir().unwrap();
    let out = run(buggy.path(), &["--unsafe-bug", "vote-any-log"]);
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

    let correct = tempfile::tempdir().unwrap();
    let out = run(correct.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict   VALID"), "{stdout}");
    let events = events(&latest_run(correct.path()));
    let stops: Vec<&serde_json::Value> = events.iter().filter(|op| op["f"] == "stop").collect();
    assert!(stops.len() >= 2, "{events:#?}");
    for stop in &stops {
        let v = &stop["value"];
        let killed = v["killed_leader"].as_u64().expect("a leader killed");
        assert_ne!(Some(killed), v["nodes"][0].as_u64(), "{v}");
        assert!(v["restarted"][killed.to_string()].is_u64(), "{v}");
        // The cut replaced by the star (2 · 1 directed links among 2 others), then the flush.
        assert_eq!(v["rules"].as_array().map(Vec::len), Some(1 + 2 + 1), "{v}");
    }
}
