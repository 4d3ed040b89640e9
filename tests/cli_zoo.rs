//! `riptide zoo` end to end, CI-sized: three bugs twice each and the correct node once, 3
//! nodes, short runs under partitions: a stale read, an acknowledged write lost, and a quorum
//! one short of a majority. The full table (every bug, 10 runs, 5 nodes, 60 s) is a command, see
//! the README.

mod common;

use std::process::Command;

#[test]
fn the_zoo_catches_three_bugs_and_the_correct_node_raises_no_false_alarm() {
    if common::skip_without_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let out = Command::new(common::riptide_bin())
        .args([
            "zoo",
            "--runs",
            "2",
            "--clean-runs",
            "1",
            "--bugs",
            "stale-read,ack-before-commit,quorum-off-by-one",
        ])
        .args(["--seed", "7", "--results-dir", results.to_str().unwrap()])
        .args([
            "--",
            "--nodes",
            "3",
            "--time-limit",
            "12",
            "--ops-per-key",
            "30",
        ])
        .args(["--nemesis", "partition", "--nemesis-interval", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let zoo = std::fs::read_dir(results.join("zoo"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let table: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(zoo.join("zoo.json")).unwrap()).unwrap();
    let bugs = table["bugs"].as_array().unwrap();
    let names: Vec<&str> = bugs.iter().map(|b| b["bug"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["stale-read", "ack-before-commit", "quorum-off-by-one"],
        "{table}"
    );
    for bug in bugs {
        assert_eq!(
            (bug["runs"].as_u64(), bug["caught"].as_u64()),
            (Some(2), Some(2)),
            "{table}"
        );
        assert_eq!(bug["anomalies"]["not-linearizable"], 2, "{table}");
    }
    // --stop-on-invalid is part of the zoo's schedule: the live check catches the first two
    // well before the 12 s are up (a minority's commits show only in the final check).
    for bug in &bugs[..2] {
        let worst = bug["worst_s"].as_f64().unwrap();
        assert!(worst < 12.0, "worst {worst} s: {table}");
    }
    assert_eq!(table["clean_runs"], 1);
    assert_eq!(table["false_alarms"], 0, "{table}");
    let md = std::fs::read_to_string(zoo.join("zoo.md")).unwrap();
    assert!(md.contains("| `stale-read` | 2/2 |"), "{md}");
    assert!(stdout.contains("| `stale-read` | 2/2 |"), "{stdout}");
    let index = std::fs::read_to_string(results.join("index.html")).unwrap();
    let stamp = zoo.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        index.contains(&format!("zoo/{stamp}/zoo.md")),
        "index links the table"
    );
    // Both halves are ordinary campaigns.
    for half in ["zoo-bugs", "zoo-clean"] {
        assert!(results.join("campaigns").join(half).is_dir(), "{half}");
    }
}
