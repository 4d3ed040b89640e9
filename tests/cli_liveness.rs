//! Liveness is judged on real runs: a healthy cluster is available, and a cluster that stops
//! serving while no fault is recorded is INVALID (unavailable). To stop it without the nemesis
//! knowing, the test itself freezes two of the three node processes of its own run (SIGSTOP,
//! then SIGCONT, by exact pid): to the bench that is a cluster that stopped answering for no
//! reason, which is what a liveness bug looks like. Needs root (skipped otherwise).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::riptide_bin;

fn is_root() -> bool {
    let root = unsafe { libc::geteuid() == 0 };
    if !root {
        eprintln!("skipped: riptide test needs root for its network namespace");
    }
    root
}

fn args(results: &Path, secs: &str) -> Vec<String> {
    [
        "test",
        "--nodes",
        "3",
        "--time-limit",
        secs,
        "--nemesis",
        "none",
        "--seed",
        "8",
        "--no-progress",
        "--results-dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([results.display().to_string()])
    .collect()
}

fn latest(results: &Path) -> serde_json::Value {
    let dir = results.join(std::fs::read_link(results.join("latest")).unwrap());
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// The pid of node `id` of the run under `results` (its command line names its data dir).
fn node_pid(results: &Path, id: u32) -> Option<i32> {
    let want = format!("nodes/n{id}/data");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&results.display().to_string()) && cmdline.contains(&want) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn a_healthy_run_is_available_and_a_frozen_majority_with_no_fault_recorded_is_not() {
    if !is_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = Command::new(riptide_bin())
        .args(args(results.path(), "8"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("liveness  ok: "), "{stdout}");
    let r = latest(results.path());
    assert_eq!(r["availability"]["available"], true, "{r:#}");
    assert!(!r["availability"]["windows"].as_array().unwrap().is_empty());

    let results = tempfile::tempdir().unwrap();
    let run = Command::new(riptide_bin())
        .args(args(results.path(), "16"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let frozen: Vec<i32> = loop {
        let pids: Vec<i32> = [2, 3]
            .iter()
            .filter_map(|&id| node_pid(results.path(), id))
            .collect();
        if pids.len() == 2 {
            break pids;
        }
        assert!(Instant::now() < deadline, "the nodes never started");
        std::thread::sleep(Duration::from_millis(100));
    };
    // Let the workload run a few seconds, then freeze a majority for 7 s.
    std::thread::sleep(Duration::from_secs(5));
    for &pid in &frozen {
        unsafe { libc::kill(pid, libc::SIGSTOP) };
    }
    std::thread::sleep(Duration::from_secs(7));
    for &pid in &frozen {
        unsafe { libc::kill(pid, libc::SIGCONT) };
    }
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("UNAVAILABLE: between "), "{stdout}");
    assert!(
        stdout.contains("with no fault in place, the cluster served"),
        "{stdout}"
    );
    let r = latest(results.path());
    assert_eq!(r["verdict"], "invalid");
    assert_eq!(
        r["checker"]["verdict"], "valid",
        "the history itself is linearizable"
    );
    assert_eq!(r["availability"]["available"], false);
    let stretch = &r["availability"]["unavailable"][0];
    let (from, to) = (stretch[0].as_f64().unwrap(), stretch[1].as_f64().unwrap());
    assert!(to - from >= 3.0, "a stretch of the outage: {stretch}");
}

/// A cluster that elects no leader at all is the cluster's liveness failure, not a crash of
/// the bench: every node runs (a wrapper gives them election timeouts of ten minutes), the
/// run goes on without a leader after its 15 s wait, every client op is refused, and the run
/// is stored complete and INVALID for being unavailable, with a linearizable history.
#[test]
fn a_cluster_that_never_elects_is_judged_unavailable_not_crashed() {
    if !is_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let wrapper = results.path().join("never-elects");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {} node \"$@\" --election-timeout-min-ms 600000 --election-timeout-max-ms 600100\n",
            riptide_bin().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut args = args(results.path(), "4");
    args.extend(
        [
            "--node-bin",
            wrapper.to_str().unwrap(),
            "--recovery-timeout",
            "2",
        ]
        .map(String::from),
    );
    let out = Command::new(riptide_bin()).args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("no leader was elected within 15s") && stderr.contains("the run goes on"),
        "{stderr}"
    );
    assert!(stdout.contains("UNAVAILABLE"), "{stdout}");
    let r = latest(results.path());
    assert_eq!(r["verdict"], "invalid", "{r:#}");
    assert_eq!(
        r["checker"]["verdict"], "valid",
        "nothing was served to be wrong"
    );
    assert_eq!(r["availability"]["available"], false, "{r:#}");
    let dir = results
        .path()
        .join(std::fs::read_link(results.path().join("latest")).unwrap());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("test.json")).unwrap()).unwrap();
    assert_eq!(manifest["status"], "complete", "{manifest:#}");
}
