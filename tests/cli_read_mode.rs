//! `riptide test --read-mode lease`: the nodes serve reads from a leader lease, and the run
//! under partitions and pauses (the faults a lease must survive) stays linearizable. The bug
//! that breaks leases (`lease-read-unsafe`) is caught by the simulation (`sim/tests/zoo.rs`).

mod common;

use std::process::Command;

#[test]
fn lease_reads_under_partitions_and_pauses_are_linearizable_and_recorded() {
    if common::skip_without_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::riptide_bin())
        .args(["test", "--nodes", "3", "--time-limit", "10", "--seed", "3"])
        .args(["--read-mode", "lease", "--nemesis", "partition,pause"])
        .args(["--nemesis-interval", "2", "--no-progress", "--results-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let run = common::latest_run(dir.path());
    let test: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("test.json")).unwrap()).unwrap();
    assert_eq!(test["test"]["read_mode"], "lease", "{test}");
    assert!(
        test["rerun"]
            .as_str()
            .unwrap()
            .contains("--read-mode lease"),
        "{test}"
    );
    let log = std::fs::read_to_string(run.join("nodes/n1.log")).unwrap();
    assert!(
        log.contains("--read-mode lease"),
        "the node was started in lease mode"
    );
}

#[test]
fn an_unknown_read_mode_is_refused_before_anything_starts() {
    let out = Command::new(common::riptide_bin())
        .args([
            "test",
            "--read-mode",
            "fast",
            "--results-dir",
            "/nonexistent/riptide",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert!(stderr.contains("one of read-index, lease"), "{stderr}");
}
