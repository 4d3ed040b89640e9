//! `riptide bench` as a user runs it: the real binary, real node processes (and real etcd when
//! it is installed), real TCP on loopback inside bench's own network namespace, a real results
//! folder. Sweeps are tiny (a second or two per point): they prove that the command measures
//! and stores, not how fast anything is.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{riptide_bin, skip_without_root};

fn riptide(args: &[&str]) -> Output {
    Command::new(riptide_bin())
        .args(args)
        .output()
        .expect("run riptide")
}

/// `riptide bench ARGS --results-dir RESULTS` (ARGS space-separated).
fn bench(results: &Path, args: &str) -> Output {
    let mut argv: Vec<&str> = vec!["bench"];
    argv.extend(args.split_whitespace());
    argv.extend(["--results-dir", results.to_str().unwrap()]);
    riptide(&argv)
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The one bench folder under `results/bench/`.
fn bench_dir(results: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(results.join("bench"))
        .expect("results/bench exists")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one bench folder: {dirs:?}");
    dirs.pop().unwrap()
}

fn bench_json(results: &Path) -> serde_json::Value {
    let path = bench_dir(results).join("bench.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Every row completed without errors, moved ops, and has ordered, positive percentiles.
fn assert_sane_rows(json: &serde_json::Value, target: &str, expected_rows: usize) {
    let rows = json["rows"].as_array().expect("rows");
    let rows: Vec<_> = rows.iter().filter(|r| r["target"] == target).collect();
    assert_eq!(rows.len(), expected_rows, "{json:#}");
    for row in rows {
        let f = |k: &str| row[k].as_f64().unwrap_or_else(|| panic!("{k} in {row}"));
        assert_eq!(row["errors"], 0, "{row}");
        assert!(f("ops_per_sec") > 0.0, "{row}");
        let (p50, p99, p999) = (f("p50_ms"), f("p99_ms"), f("p999_ms"));
        assert!(0.0 < p50 && p50 <= p99 && p99 <= p999, "{row}");
        assert!(p999 < 2000.0, "no op near the 2 s timeout: {row}");
        assert!(f("leader_cpu_s") > 0.0, "the leader worked: {row}");
        assert!(f("generator_cpu_s") > 0.0, "{row}");
        assert_eq!(row["follower_cpu_s"].as_array().unwrap().len(), 2, "{row}");
        assert!(f("leader_rss_mib") > 1.0, "a live node holds memory: {row}");
        let followers = row["follower_rss_mib"].as_array().unwrap();
        assert_eq!(followers.len(), 2, "{row}");
        assert!(followers.iter().all(|m| m.as_f64().unwrap() > 1.0), "{row}");
        for key in ["op", "nodes", "clients", "value_size"] {
            assert!(!row[key].is_null(), "{key} in {row}");
        }
    }
}

#[test]
fn a_tiny_sweep_on_riptide_measures_every_point_without_errors_and_stores_them() {
    if skip_without_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = bench(
        results.path(),
        "--target riptide --op put,get,mixed,cas --clients 1,8 --nodes 3 --value-size 100 \
         --warmup 0.5 --duration 1 --reps 1 --seed 11",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("seed 11"), "the seed is printed: {stderr}");
    assert!(
        stdout.contains("ops/s") && stdout.contains("p99.9 ms"),
        "{stdout}"
    );
    let json = bench_json(results.path());
    assert_eq!(json["status"], "complete");
    assert_eq!(json["seed"], 11);
    assert!(json["command"].as_array().unwrap().len() > 3);
    assert_sane_rows(&json, "riptide", 8);
    let cas: Vec<_> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["op"] == "cas")
        .collect();
    assert_eq!(cas.len(), 2);
    let dir = bench_dir(results.path());
    let svg = std::fs::read_to_string(dir.join("throughput.svg")).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("riptide put n3 100B"),
        "{svg}"
    );
    assert!(dir.join("riptide-n3/n1.log").is_file());
    assert!(
        !dir.join("riptide-n3/n1").exists(),
        "the nodes' data dirs are removed"
    );
}

#[test]
fn a_cas_that_finds_another_value_is_a_definite_answer_not_an_error() {
    if skip_without_root() {
        return;
    }
    // Eight clients on two keys: most cas ops race another client's.
    let results = tempfile::tempdir().unwrap();
    let out = bench(
        results.path(),
        "--op cas --clients 8 --keys 2 --warmup 0.2 --duration 1 --reps 2",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json = bench_json(results.path());
    assert_sane_rows(&json, "riptide", 1);
    let row = &json["rows"][0];
    assert_eq!(row["reps"], 2);
    assert_eq!(json["samples"].as_array().unwrap().len(), 2);
    let (ops, mismatches) = (
        row["ops_per_sec"].as_f64().unwrap(),
        row["mismatches"].as_u64().unwrap(),
    );
    assert!(mismatches > 0, "{row}");
    assert!(
        (mismatches as f64) < ops * 2.0,
        "mismatches are among the ops counted: {row}"
    );
}

fn etcd_installed() -> bool {
    let found = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .any(|d| d.join("etcd").is_file());
    if !found {
        eprintln!("skipped: etcd is not installed (apt-get install etcd-server)");
    }
    found
}

#[test]
fn riptide_and_etcd_are_measured_side_by_side_with_the_ratio() {
    if skip_without_root() || !etcd_installed() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = bench(
        results.path(),
        "--target riptide,etcd --op put,get --clients 4 --warmup 0.5 --duration 1 --reps 1",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("riptide against etcd"), "{stdout}");
    assert!(
        stdout.lines().filter(|l| l.contains("x ")).count() >= 2,
        "{stdout}"
    );
    let json = bench_json(results.path());
    assert_sane_rows(&json, "riptide", 2);
    assert_sane_rows(&json, "etcd", 2);
    // The two take turns at every point (the first rotating), not one whole sweep each.
    let order: Vec<&str> = json["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["riptide", "etcd", "etcd", "riptide"]);
    let dir = bench_dir(results.path());
    assert!(dir.join("etcd-n3/e1.log").is_file());
    assert!(
        !dir.join("etcd-n3/e1").exists(),
        "etcd's data dirs are removed"
    );
}

#[test]
fn riptide_on_faultfs_is_measured_beside_riptide_on_a_plain_dir_and_unmounted() {
    if skip_without_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = bench(
        results.path(),
        "--target riptide,riptide-faultfs --op put --clients 4 --warmup 0.5 --duration 1 --reps 1",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("riptide against riptide-faultfs"),
        "{stdout}"
    );
    let json = bench_json(results.path());
    assert_sane_rows(&json, "riptide", 1);
    assert_sane_rows(&json, "riptide-faultfs", 1);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let here = results.path().display().to_string();
    assert!(!mounts.contains(&here), "{mounts}");
    // With a running cluster bench cannot mount anything for it: refused before it starts.
    let out = bench(
        results.path(),
        "--target riptide-faultfs --endpoints 127.0.0.1:1",
    );
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    assert!(text(&out).contains("--target riptide-faultfs starts its own cluster"));
}

#[test]
fn without_etcd_the_etcd_target_says_what_to_install() {
    let results = tempfile::tempdir().unwrap();
    let out = Command::new(riptide_bin())
        .args(["bench", "--target", "etcd", "--results-dir"])
        .arg(results.path())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(254), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("apt-get install etcd-server"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(!results.path().join("bench").exists(), "nothing started");
}

#[test]
fn bad_flags_are_refused_before_anything_starts_with_what_was_wrong() {
    let results = tempfile::tempdir().unwrap();
    for (args, expected) in [
        ("--clients 0", "--clients 0"),
        ("--clients 1,x", "--clients"),
        ("--op scan", "scan"),
        ("--target zookeeper", "zookeeper"),
        ("--nodes 8", "--nodes 8"),
        ("--value-size 0", "--value-size 0"),
        ("--read-ratio 2", "--read-ratio"),
        ("--reps 0", "--reps 0"),
        ("--duration 0", "--duration"),
        ("--endpoints 127.0.0.11", "IP:PORT"),
        ("failover --nodes 2", "3 or more nodes"),
        ("failover --faults crash", "crash"),
        ("failover --kills 0", "--kills 0"),
        ("failover --writers 0", "--writers 0"),
    ] {
        let out = bench(results.path(), args);
        assert_eq!(out.status.code(), Some(254), "{args}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args}: {stderr}");
    }
    assert!(!results.path().join("bench").exists(), "nothing started");
}

#[test]
fn failover_times_two_faults_of_each_kind_on_the_leader_and_stores_them() {
    if skip_without_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = riptide(&[
        "bench",
        "failover",
        "--kills",
        "2",
        "--settle",
        "0.3",
        "--seed",
        "5",
        "--results-dir",
        results.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("p50 ms") && stdout.contains("max ms"),
        "{stdout}"
    );
    let json = bench_json(results.path());
    assert_eq!(
        (&json["kind"], &json["status"]),
        (&"failover".into(), &"complete".into())
    );
    assert!(json["acks"].as_u64().unwrap() > 0, "{json:#}");
    let rows = json["failover"].as_array().unwrap();
    let faults: Vec<&str> = rows.iter().map(|r| r["fault"].as_str().unwrap()).collect();
    assert_eq!(faults, ["kill", "pause", "isolate"]);
    for row in rows {
        if let Some(why) = row["skipped"].as_str() {
            // Only isolation may be skipped, and only with its reason (no iptables here).
            assert_eq!(row["fault"], "isolate", "{row}");
            assert!(!why.is_empty());
            continue;
        }
        assert_eq!(
            (row["injected"].as_u64(), row["missed"].as_u64()),
            (Some(2), Some(0)),
            "{row}"
        );
        let samples: Vec<f64> = row["samples_ms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(samples.len(), 2, "{row}");
        // A new leader needs at least one election timeout (150 ms) minus the heartbeat the
        // followers last heard; anything near 0 would mean the old leader's acks were counted.
        assert!(
            samples.iter().all(|ms| (20.0..10_000.0).contains(ms)),
            "{row}"
        );
        let (p50, max) = (
            row["p50_ms"].as_f64().unwrap(),
            row["max_ms"].as_f64().unwrap(),
        );
        assert!(p50 <= max, "{row}");
    }
}

#[test]
fn a_running_cluster_given_by_endpoints_is_measured_without_starting_another() {
    // `riptide cluster` and the bench both run in this test's own network namespace.
    common::isolated(|| {
        use std::io::BufRead;
        let data = tempfile::tempdir().unwrap();
        let mut cluster = Command::new(riptide_bin())
            .args(["cluster", "--nodes", "3", "--port", "7500", "--dir"])
            .arg(data.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Kept open to the end: the cluster prints a last line as it stops.
        let mut lines = std::io::BufReader::new(cluster.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            if line.unwrap().contains("Ctrl-C stops the cluster") {
                break;
            }
        }
        let results = tempfile::tempdir().unwrap();
        let out = bench(
            results.path(),
            "--endpoints 127.0.0.13:7500,127.0.0.11:7500,127.0.0.12:7500 --nodes 5 \
             --op put --clients 2 --warmup 0.2 --duration 1 --reps 1",
        );
        // SIGTERM to the exact pid: `riptide cluster` stops its nodes and exits.
        unsafe { libc::kill(cluster.id() as i32, libc::SIGTERM) };
        assert!(cluster.wait().unwrap().success());
        drop(lines);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let json = bench_json(results.path());
        let row = &json["rows"][0];
        assert_eq!(json["rows"].as_array().unwrap().len(), 1, "{json:#}");
        // The running cluster's own size, not --nodes; node pids are unknown, so no node CPU.
        assert_eq!(row["nodes"], 3, "{row}");
        assert_eq!(row["errors"], 0, "{row}");
        assert!(row["ops_per_sec"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["leader_cpu_s"].is_null(), "{row}");
        assert!(row["leader_rss_mib"].is_null(), "{row}");
        assert_eq!(json["sandbox"], serde_json::Value::Null, "{json:#}");
    });
}

/// `--node-arg` reaches every node bench starts: with `--snapshot-entries=7` the nodes take
/// snapshots that the default (every 10,000 entries) never takes in a sweep this small; a flag
/// the node does not know stops the sweep with the node's own words.
#[test]
fn node_args_reach_every_node_bench_starts() {
    if skip_without_root() {
        return;
    }
    let snapshots = |results: &Path| -> usize {
        let dir = bench_dir(results).join("riptide-n3");
        (1..=3)
            .map(|i| std::fs::read_to_string(dir.join(format!("n{i}.log"))).unwrap())
            .map(|log| log.matches("took a snapshot").count())
            .sum()
    };
    let sweep = "--op put --clients 2 --keys 50 --warmup 0 --duration 0.5 --reps 1";
    let plain = tempfile::tempdir().unwrap();
    let out = bench(plain.path(), sweep);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(snapshots(plain.path()), 0);
    let given = tempfile::tempdir().unwrap();
    let out = bench(
        given.path(),
        &format!("{sweep} --node-arg=--snapshot-entries=7"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(snapshots(given.path()) >= 3, "every node snapshots");
    let bad = tempfile::tempdir().unwrap();
    let out = bench(bad.path(), &format!("{sweep} --node-arg=--no-such-flag"));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("unexpected argument '--no-such-flag'"),
        "{}",
        text(&out)
    );
}
