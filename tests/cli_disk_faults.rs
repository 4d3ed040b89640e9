//! Disk faults on real runs: `power-cut` (each node's data dir mounted through riptide-faultfs,
//! the unsynced writes dropped after a SIGKILL) and `corrupt` (one synced file of a stopped
//! node damaged, recorded exactly). Needs root and /dev/fuse, as CI has (skipped otherwise).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{latest_run, riptide_bin, skip_without_root};

fn riptide_test(results: &Path, args: &str) -> Output {
    Command::new(riptide_bin())
        .arg("test")
        .args(args.split_whitespace())
        .args(["--no-progress", "--keep-data", "always", "--results-dir"])
        .arg(results)
        .output()
        .unwrap()
}

fn nemesis_events(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|op| op["process"] == "nemesis")
        .collect()
}

fn json(path: PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Mounts under `dir` that this (host) process can see.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&dir))
        .map(str::to_string)
        .collect()
}

#[test]
fn power_cuts_of_a_correct_cluster_lose_nothing_and_leave_no_mount() {
    if skip_without_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = riptide_test(
        results.path(),
        "--nodes 3 --time-limit 12 --nemesis power-cut:all,power-cut:one,kill \
         --nemesis-interval 1.5 --seed 11",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict   VALID"), "{stdout}");
    let dir = latest_run(results.path());
    let events = nemesis_events(&dir);
    let cuts: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["f"] == "start" && e["value"]["fault"] == "power-cut")
        .collect();
    assert!(!cuts.is_empty(), "power cuts happened: {events:#?}");
    for cut in &cuts {
        let v = &cut["value"];
        let nodes = v["nodes"].as_array().unwrap();
        let disks = v["disks"].as_object().expect("each cut is reported");
        assert_eq!(disks.len(), nodes.len(), "one report per node: {v}");
        for report in disks.values() {
            assert!(report["bytes_unsynced"].is_u64(), "faultfs's report: {v}");
            assert_eq!(report["mode"], v["cut"], "{v}");
        }
    }
    // The nodes ran on the mounts; the data stayed in the run folder, the mounts are gone.
    let log = std::fs::read_to_string(dir.join("nodes/n1.log")).unwrap();
    assert!(!log.is_empty());
    assert!(
        dir.join("nodes/n1/data/log").is_dir(),
        "the backing dir keeps the WAL"
    );
    let mountpoint = std::fs::read_dir(dir.join("nodes/n1/disk"))
        .unwrap()
        .count();
    assert_eq!(mountpoint, 0, "the mountpoint is empty once unmounted");
    assert!(
        mounts_under(results.path()).is_empty(),
        "{:?}",
        mounts_under(results.path())
    );
    let test = json(dir.join("test.json"));
    assert_eq!(test["test"]["nemesis"], "power-cut:all,power-cut:one,kill");
}

#[test]
fn corruption_is_recorded_exactly_and_a_node_that_refuses_it_stays_down_in_a_valid_run() {
    if skip_without_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    // Seed 3 damages node 2's open WAL segment in its first half, with valid records after it.
    let out = riptide_test(
        results.path(),
        "--nodes 3 --time-limit 10 --nemesis corrupt:one,kill --nemesis-interval 1.5 --seed 3",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let dir = latest_run(results.path());
    let events = nemesis_events(&dir);
    let start = events
        .iter()
        .find(|e| e["f"] == "start" && e["value"]["fault"] == "corrupt")
        .expect("a corrupt fault");
    let (node, damage) = start["value"]["disks"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert!(
        damage["file"].as_str().unwrap().starts_with("log/"),
        "{damage}"
    );
    assert!(damage["offset"].as_u64().unwrap() < damage["len"].as_u64().unwrap() / 2);
    assert_eq!(damage["damage"], "flip", "{damage}");
    let mask = damage["mask"].as_u64().unwrap();
    assert_eq!(
        damage["before"].as_u64().unwrap() ^ mask,
        damage["after"].as_u64().unwrap()
    );
    // The node refused the damaged WAL, named the file and offset, and stayed down.
    let r = json(dir.join("results.json"));
    let why = r["summary"]["nodes_refused"][format!("n{node}")]
        .as_str()
        .unwrap_or_else(|| panic!("n{node} refused: {r:#}"));
    assert!(
        why.contains("corrupt data in") && why.contains(".seg at offset"),
        "{why}"
    );
    assert!(
        stdout.contains(&format!("down      n{node} refused to start")),
        "{stdout}"
    );
    assert_eq!(r["verdict"], "valid", "{r:#}");
    assert_eq!(r["cluster_recovered"], true, "the others recovered: {r:#}");
    // Each disk at most once, and at most a minority (one of three) in the run.
    let damaged: usize = events
        .iter()
        .filter(|e| e["f"] == "start" && e["value"]["fault"] == "corrupt")
        .filter_map(|e| e["value"]["disks"].as_object())
        .map(|d| d.len())
        .sum();
    assert_eq!(damaged, 1, "a minority of one in three nodes: {events:#?}");
}

#[test]
fn without_fuse_all_runs_without_power_cuts_and_a_named_power_cut_is_refused() {
    if skip_without_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = Command::new(riptide_bin())
        .args([
            "test",
            "--nodes",
            "3",
            "--time-limit",
            "3",
            "--nemesis",
            "all",
        ])
        .args(["--no-progress", "--seed", "5", "--results-dir"])
        .arg(results.path())
        .env("RIPTIDE_FUSE_DEV", "/nonexistent/fuse")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0..=2)), "{stderr}");
    let notes: Vec<&str> = stderr.lines().filter(|l| l.contains("note:")).collect();
    assert_eq!(notes.len(), 1, "{stderr}");
    assert!(
        notes[0].contains("running --nemesis kill,pause,partition,loss,corrupt,restart,transfer-leader,membership")
            && notes[0].contains("/nonexistent/fuse is missing"),
        "{}",
        notes[0]
    );
    let out = Command::new(riptide_bin())
        .args(["test", "--nodes", "3", "--nemesis", "power-cut,kill"])
        .args(["--results-dir"])
        .arg(results.path())
        .env("RIPTIDE_FUSE_DEV", "/nonexistent/fuse")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert!(
        stderr.contains("--nemesis power-cut,kill: power-cut needs riptide-faultfs")
            && stderr.contains("modprobe fuse"),
        "{stderr}"
    );
}

/// Whether any process other than those already gone lives in mount namespace `ino`.
fn mntns_in_use(ino: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        e.file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
            && std::fs::metadata(e.path().join("ns/mnt")).is_ok_and(|m| m.ino() == ino)
    })
}

#[test]
fn the_mounts_live_only_in_the_runs_namespace_and_vanish_with_a_killed_runner() {
    if skip_without_root() {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let results = tempfile::tempdir().unwrap();
    let mut runner = Command::new(riptide_bin())
        .args([
            "test",
            "--nodes",
            "3",
            "--time-limit",
            "60",
            "--nemesis",
            "power-cut",
        ])
        .args(["--no-progress", "--seed", "9", "--results-dir"])
        .arg(results.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = runner.id();
    let here = results.path().display().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let inside = loop {
        let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
        let mounts = info
            .lines()
            .filter(|l| l.contains(&here) && l.contains("riptide-faultfs"))
            .count();
        if mounts == 3 || std::time::Instant::now() > deadline {
            break mounts;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(inside, 3, "one faultfs per node, in the runner's namespace");
    assert!(mounts_under(results.path()).is_empty(), "never on the host");
    let ns = std::fs::metadata(format!("/proc/{pid}/ns/mnt"))
        .unwrap()
        .ino();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    runner.wait().unwrap();
    // The nodes die with the runner (PR_SET_PDEATHSIG); then the namespace and its mounts go.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while mntns_in_use(ns) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!mntns_in_use(ns), "the run's mount namespace outlived it");
    assert!(mounts_under(results.path()).is_empty());
    // The killed run never pointed `latest` at itself: its one folder under results/riptide.
    let run = std::fs::read_dir(results.path().join("riptide"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(run.join("nodes/n1/data").is_dir(), "the backing data stays");
    assert!(
        run.join("nodes/n1/data/log").is_dir(),
        "the backing data stays"
    );
}
