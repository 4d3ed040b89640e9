//! `riptide test` with snapshots under faults, as a user runs it: the short CI version of the
//! hour-long soak, and the snapshot bug caught by the bench. Skipped (with a message) when not
//! root, since runs need their network namespace.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::riptide_bin;

fn riptide_test(results: &Path, args: &str) -> Output {
    let mut argv: Vec<&str> = vec!["test"];
    argv.extend(args.split_whitespace());
    argv.extend(["--no-progress", "--results-dir", results.to_str().unwrap()]);
    Command::new(riptide_bin())
        .args(&argv)
        .output()
        .expect("run riptide")
}

fn can_run() -> bool {
    let root = unsafe { libc::geteuid() == 0 };
    if !root {
        eprintln!("skipped: riptide test needs root for its network namespace");
    }
    root
}

/// The newest run's folder.
fn latest_run(results: &Path) -> std::path::PathBuf {
    let latest = results.join("latest");
    results.join(std::fs::read_link(&latest).expect("results/latest"))
}

/// A file of the newest run.
fn run_file(results: &Path, name: &str) -> String {
    let path = latest_run(results).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every node log of the newest run, concatenated.
fn node_logs(results: &Path) -> String {
    let dir = latest_run(results);
    (1..=3)
        .map(|id| std::fs::read_to_string(dir.join(format!("nodes/n{id}.log"))).unwrap())
        .collect()
}

/// The CI version of the soak: a minute at full speed under kills, pauses and partitions, with
/// snapshots every 50 entries. Valid, and the snapshot machinery really ran: snapshots taken,
/// installed from a leader, and nodes restarted from one.
#[test]
fn a_minute_of_faults_with_tiny_snapshots_is_valid_and_exercises_every_snapshot_path() {
    if !can_run() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = riptide_test(
        results.path(),
        "--nodes 3 --time-limit 60 --rate 0 --seed 3 --nemesis kill,pause,partition \
         --nemesis-interval 4 --snapshot-entries 50",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("VALID"), "{stdout}");
    assert!(
        stdout.contains("replicas  3 nodes agree at applied index"),
        "{stdout}"
    );
    let logs = node_logs(results.path());
    let taken = logs.matches("took a snapshot").count();
    let installed = logs.matches("installed a snapshot from the leader").count();
    let restarted = logs.matches("a snapshot and the log after it").count();
    assert!(taken >= 20, "snapshots taken: {taken}");
    assert!(installed >= 1, "snapshots installed: {installed}");
    assert!(restarted >= 1, "restarts from a snapshot: {restarted}");
    assert!(!logs.contains("SAFETY VIOLATION"), "{logs}");
}

/// `install-without-restore` (a follower keeps its old state machine when it installs a
/// snapshot) is caught within three 30-second runs, by the replica comparison after the run: the
/// follower applied the same index as its peers and holds another state. Each run usually
/// suffices; three keep the chance of a false alarm in CI small.
#[test]
fn the_install_without_restore_bug_is_caught() {
    if !can_run() {
        return;
    }
    let mut verdicts = Vec::new();
    for seed in 2..5 {
        let results = tempfile::tempdir().unwrap();
        let out = riptide_test(
            results.path(),
            &format!(
                "--nodes 3 --time-limit 30 --seed {seed} --nemesis kill,partition \
                 --nemesis-interval 3 --snapshot-entries 50 --unsafe-bug install-without-restore"
            ),
        );
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.code() == Some(1) {
            assert!(stdout.contains("INVALID"), "{stdout}");
            let logs = node_logs(results.path());
            assert!(
                logs.contains("installed a snapshot from the leader"),
                "caught after a snapshot install"
            );
            let replicas = run_file(results.path(), "replicas.json");
            assert!(replicas.contains(r#""outcome": "diverged""#), "{replicas}");
            assert!(
                stdout.contains("REPLICAS DIVERGED: at applied index"),
                "{stdout}"
            );
            return;
        }
        verdicts.push(format!("seed {seed}: {:?}\n{stdout}", out.status.code()));
    }
    panic!("never caught in 3 runs:\n{}", verdicts.join("\n"));
}
