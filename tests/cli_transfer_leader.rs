//! `riptide test --nemesis transfer-leader`: the nemesis moves leadership at random through the
//! nodes' admin request, records each move in the history, and the run stays valid. Skipped
//! (with a message) when not root, like every `riptide test` run.

mod common;

use std::process::Command;

use common::{json_lines, latest_run, riptide_bin, skip_without_root};

#[test]
fn transfer_leader_moves_leadership_between_nodes_and_the_run_stays_valid() {
    if skip_without_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = Command::new(riptide_bin())
        .args(["test", "--nodes", "3", "--time-limit", "12"])
        .args(["--nemesis", "transfer-leader", "--nemesis-interval", "2"])
        .args(["--seed", "1", "--no-progress", "--results-dir"])
        .arg(results.path())
        .output()
        .expect("run riptide");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict   VALID"), "{stdout}");

    let dir = latest_run(results.path());
    let nemesis: Vec<serde_json::Value> = json_lines(&dir.join("history.jsonl"))
        .into_iter()
        .filter(|op| op["process"] == "nemesis" && op["value"]["fault"] == "transfer-leader")
        .collect();
    let starts: Vec<&serde_json::Value> = nemesis.iter().filter(|op| op["f"] == "start").collect();
    let stops = nemesis.iter().filter(|op| op["f"] == "stop").count();
    assert!(stops >= starts.len().saturating_sub(1), "{nemesis:#?}");
    let done: Vec<&serde_json::Value> = starts
        .iter()
        .map(|op| &op["value"])
        .filter(|v| v["outcome"] == "done")
        .collect();
    assert!(done.len() >= 2, "at least two transfers done: {nemesis:#?}");
    for value in done {
        let (from, to) = (value["from"].as_u64(), value["to"].as_u64());
        let (Some(from), Some(to)) = (from, to) else {
            panic!("a done transfer names both nodes: {value}");
        };
        assert!((1..=3).contains(&from) && (1..=3).contains(&to), "{value}");
        assert_ne!(from, to, "{value}");
        assert_eq!(value["nodes"], serde_json::json!([from, to]), "{value}");
    }
    let results_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results_json["verdict"], "valid", "{results_json:#}");
}
