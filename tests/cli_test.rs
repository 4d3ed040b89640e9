//! `riptide test`, `riptide cluster` and `riptide client` as a user runs them: the real binary,
//! real nodes, a real results folder. Runs that need a network namespace are skipped (with a
//! message) when not root.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::riptide_bin;

fn riptide(args: &[&str]) -> Output {
    Command::new(riptide_bin())
        .args(args)
        .output()
        .expect("run riptide")
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn run_dir(results: &Path) -> PathBuf {
    let latest = results.join("latest");
    let target = std::fs::read_link(&latest).expect("results/latest is a symlink");
    results.join(target)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// `riptide test ARGS --no-progress --results-dir RESULTS` (ARGS space-separated).
fn riptide_test(results: &Path, args: &str) -> Output {
    let mut argv: Vec<&str> = vec!["test"];
    argv.extend(args.split_whitespace());
    argv.extend(["--no-progress", "--results-dir", results.to_str().unwrap()]);
    riptide(&argv)
}

/// A run needs root for its network namespace; without it the test says so and passes.
fn can_run() -> bool {
    if !is_root() {
        eprintln!("skipped: riptide test needs root for its network namespace");
    }
    is_root()
}

#[test]
fn a_ten_second_run_on_three_healthy_nodes_is_valid_and_stored_completely() {
    if !can_run() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = riptide_test(
        results.path(),
        "--nodes 3 --time-limit 10 --seed 7 --nemesis none",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("verdict   VALID"), "{stdout}");
    assert_eq!(
        processes_mentioning(results.path().to_str().unwrap()),
        Vec::<u32>::new(),
        "no node outlives the run"
    );
    assert!(stderr.contains("seed 7"), "the seed is printed: {stderr}");
    let dir = run_dir(results.path());
    for file in [
        "test.json",
        "history.jsonl",
        "results.json",
        "riptide.log",
        "nodes/n1.log",
        "nodes/n2.log",
        "nodes/n3.log",
    ] {
        assert!(
            dir.join(file).is_file(),
            "{file} is missing from {}",
            dir.display()
        );
    }
    // A valid run drops its nodes' data dirs (--keep-data on-failure), and says so.
    for id in 1..=3 {
        let data = dir.join(format!("nodes/n{id}"));
        assert!(!data.exists(), "{} is removed", data.display());
    }
    assert!(
        stdout.contains("node data dirs removed"),
        "the summary says the data went: {stdout}"
    );
    let test = json(&dir.join("test.json"));
    assert_eq!(test["node_data_removed"], true);
    assert_eq!(test["status"], "complete");
    assert_eq!(test["test"]["seed"], 7);
    assert_eq!(test["test"]["nodes"], 3);
    assert_eq!(test["test"]["nemesis"], "none");
    let rerun = test["rerun"].as_str().unwrap();
    assert!(
        rerun.starts_with("riptide test ")
            && rerun.contains("--seed 7")
            && rerun.contains("--nodes 3"),
        "{rerun}"
    );
    assert!(
        stdout.contains(rerun),
        "the summary prints the rerun command: {stdout}"
    );
    assert!(test["version"].is_string());
    let results_json = json(&dir.join("results.json"));
    assert_eq!(results_json["verdict"], "valid");
    let ok = results_json["summary"]["outcomes"]["ok"].as_u64().unwrap();
    assert!(ok > 200, "a healthy cluster answers most ops, got {ok} ok");
    let keys = results_json["checker"]["keys"].as_object().unwrap();
    assert!(keys.len() > 3 && keys.values().all(|k| k["verdict"] == "valid"));
    // Every line of the history is a well-formed op, and every key got a final read.
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let ops: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(ops
        .iter()
        .enumerate()
        .all(|(i, op)| op["index"] == i as u64));
    let final_reads = ops
        .iter()
        .filter(|op| {
            op["process"].as_u64().is_some_and(|p| p >= 1_000_000_000) && op["type"] == "ok"
        })
        .count();
    assert_eq!(final_reads, keys.len(), "one final read per key");
}

/// Whether `iptables` (and `iptables-restore` beside it) is where the firewall looks for it.
fn has_iptables() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"].map(PathBuf::from))
        .any(|d| d.join("iptables").is_file() && d.join("iptables-restore").is_file())
}

/// The faults a run's history says were started, by kind.
/// The nemesis ops of a run's history, in order.
fn nemesis_ops(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|op| op["process"] == "nemesis")
        .collect()
}

fn faults_started(dir: &Path) -> Vec<String> {
    nemesis_ops(dir)
        .into_iter()
        .filter(|op| op["f"] == "start")
        .map(|op| op["value"]["fault"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[test]
fn without_nemesis_a_run_has_every_fault_where_iptables_and_namespaces_work() {
    if !can_run() {
        return;
    }
    if !has_iptables() {
        assert!(
            std::env::var_os("CI").is_none(),
            ".ci/run installs iptables"
        );
        eprintln!("skipped: no iptables here (apt-get install iptables)");
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = riptide_test(
        results.path(),
        "--nodes 3 --time-limit 6 --nemesis-interval 1 --seed 21",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "judged, not refused: {code:?}\n{stderr}"
    );
    assert!(!stderr.contains("note:"), "nothing to install: {stderr}");
    let dir = run_dir(results.path());
    let test = json(&dir.join("test.json"));
    assert_eq!(
        test["test"]["nemesis"],
        "kill,pause,partition,loss,power-cut,corrupt,restart,transfer-leader,membership"
    );
    assert!(
        test["rerun"]
            .as_str()
            .unwrap()
            .contains("--nemesis kill,pause,partition,loss,power-cut,corrupt,restart,transfer-leader,membership"),
        "the rerun names the faults: {test:#}"
    );
    assert!(!faults_started(&dir).is_empty(), "faults were started");
}

#[test]
fn without_iptables_the_default_falls_back_to_kill_and_pause_with_a_note() {
    if !can_run() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = Command::new(riptide_bin())
        .args(
            "test --nodes 3 --time-limit 6 --nemesis-interval 1 --seed 22 --no-progress"
                .split_whitespace(),
        )
        .arg("--results-dir")
        .arg(results.path())
        .env("RIPTIDE_IPTABLES", "/nonexistent/iptables")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "judged, not refused: {code:?}\n{stderr}"
    );
    let notes: Vec<&str> = stderr.lines().filter(|l| l.contains("note:")).collect();
    assert_eq!(notes.len(), 1, "one note: {stderr}");
    assert!(
        notes[0].contains(
            "running --nemesis kill,pause,power-cut,corrupt,restart,transfer-leader,\
             membership:grow,membership:shrink,membership:replace"
        ) && notes[0].contains("apt-get install iptables"),
        "what runs and what to install: {}",
        notes[0]
    );
    let dir = run_dir(results.path());
    assert_eq!(
        json(&dir.join("test.json"))["test"]["nemesis"],
        "kill,pause,power-cut,corrupt,restart,transfer-leader,\
         membership:grow,membership:shrink,membership:replace"
    );
    let started = faults_started(&dir);
    assert!(!started.is_empty(), "the process and disk faults still run");
    assert!(
        started
            .iter()
            .all(|f| !matches!(f.as_str(), "partition" | "loss")),
        "{started:?}"
    );
}

#[test]
fn a_node_that_serves_stale_reads_is_caught() {
    if !can_run() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = riptide_test(
        results.path(),
        "--nodes 3 --time-limit 10 --seed 11 --nemesis none --unsafe-bug stale-read",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stale reads must make the run invalid:\n{stdout}"
    );
    assert!(
        stdout.contains("could not be linearized"),
        "the counterexample is shown:\n{stdout}"
    );
    assert_eq!(
        processes_mentioning(results.path().to_str().unwrap()),
        Vec::<u32>::new(),
        "no node outlives the run"
    );
    let dir = run_dir(results.path());
    let test = json(&dir.join("test.json"));
    assert_eq!(
        test["test"]["unsafe_bugs"],
        serde_json::json!(["stale-read"])
    );
    // An invalid run keeps its nodes' data dirs for a person to look at.
    for id in 1..=3 {
        let data = dir.join(format!("nodes/n{id}/data"));
        assert!(data.is_dir(), "{} is kept", data.display());
    }
    assert!(test.get("node_data_removed").is_none(), "{test:#}");
    assert!(!stdout.contains("node data dirs removed"), "{stdout}");
    let results_json = json(&dir.join("results.json"));
    assert_eq!(results_json["verdict"], "invalid");
    let invalid: Vec<&serde_json::Value> = results_json["checker"]["keys"]
        .as_object()
        .unwrap()
        .values()
        .filter(|k| k["verdict"] == "invalid")
        .collect();
    assert!(!invalid.is_empty());
    // The anomaly is a read: the stale one.
    assert!(
        invalid
            .iter()
            .any(|k| k["counterexample"]["op"]["f"] == "read"),
        "{invalid:#?}"
    );
}

/// Each bad input: exit 254, one line on stderr that names the problem.
#[test]
fn bad_input_gets_one_clear_line_and_exit_254() {
    let dir = tempfile::tempdir().unwrap();
    let a_file = dir.path().join("a-file");
    std::fs::write(&a_file, "").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["test", "--nodes", "4"], "use 3, 5 or 7"),
        (vec!["test", "--concurrency", "lots"], "2n"),
        (vec!["test", "--nemesis", "earthquake"], "earthquake"),
        (
            vec!["test", "--time-limit", "0"],
            "--time-limit must be a positive number",
        ),
        (vec!["test", "--unsafe-bug", "nope"], "known bugs"),
        (
            vec!["test", "--nemesis-jitter", "1.5"],
            "--nemesis-jitter 1.5: must be from 0 to 0.9",
        ),
        (vec!["test", "--keep-data", "sometimes"], "on-failure"),
        (
            vec![
                "test",
                "--op-timeout-ms",
                "1000",
                "--op-timeout-long-ms",
                "500",
            ],
            "--op-timeout-long-ms 500 must be longer than --op-timeout-ms 1000",
        ),
        (
            vec!["test", "--results-dir", "/nonexistent/riptide/results"],
            "does not exist",
        ),
        (
            vec!["test", "--results-dir", a_file.to_str().unwrap()],
            "not a directory",
        ),
        (
            vec!["test", "--node-bin", "/nonexistent/riptide-node"],
            "--node-bin",
        ),
        (vec!["test", "--frobnicate"], "unexpected argument"),
        (vec!["frobnicate"], "unrecognized subcommand"),
        (vec!["client", "--node", "garbage", "status"], "ID=IP:PORT"),
    ];
    for (args, needle) in cases {
        let out = riptide(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{args:?}: stderr:\n{stderr}");
        assert!(
            stderr.contains(needle),
            "{args:?}: expected `{needle}` in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    }
    if is_root() {
        // A fault that cannot be built on this many nodes, and a machine without iptables, are
        // caught before anything starts.
        let out = riptide_test(dir.path(), "--nodes 3 --nemesis partition:majorities-ring");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{stderr}");
        assert!(stderr.contains("majorities-ring"), "{stderr}");
        let out = Command::new(riptide_bin())
            .args([
                "test",
                "--nemesis",
                "partition",
                "--results-dir",
                dir.path().to_str().unwrap(),
            ])
            .env("RIPTIDE_IPTABLES", "/nonexistent/iptables")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{stderr}");
        assert!(
            stderr.contains("apt-get install iptables"),
            "the fix is named: {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(
            std::fs::read_dir(dir.path())
                .unwrap()
                .all(|e| e.unwrap().file_name() == "a-file"),
            "no run was stored"
        );
        // Root can write almost anywhere, but not into sysfs.
        let out = riptide(&["test", "--results-dir", "/sys"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{stderr}");
        assert!(stderr.contains("not writable"), "{stderr}");
    }
    assert_eq!(riptide(&["test", "--help"]).status.code(), Some(0));
}

#[test]
fn a_cluster_port_already_in_use_is_a_clear_error() {
    common::isolated(|| {
        let _squatter = std::net::TcpListener::bind("127.0.0.12:7300").unwrap();
        let out = Command::new(riptide_bin())
            .args(["cluster", "--nodes", "3", "--port", "7300", "--dir"])
            .arg(tempfile::tempdir().unwrap().path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{stderr}");
        assert!(
            stderr.contains("127.0.0.12:7300 is already in use"),
            "{stderr}"
        );
    });
}

/// Pids of live processes whose command line mentions `needle` (a run's unique folder).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let state = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = state
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmdline).contains(needle) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn ctrl_c_stops_the_run_cleanly_and_keeps_the_history() {
    if !can_run() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let results_path = results.path().to_str().unwrap().to_string();
    let child = Command::new(riptide_bin())
        .args([
            "test",
            "--nodes",
            "3",
            "--time-limit",
            "60",
            "--nemesis",
            "pause",
            "--nemesis-interval",
            "1",
            "--no-progress",
        ])
        .args(["--results-dir", &results_path])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert!(
        !processes_mentioning(&results_path).is_empty(),
        "the nodes are running"
    );
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "Ctrl-C took {:?}",
        started.elapsed()
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "an interrupted healthy run is still judged:\n{stdout}"
    );
    assert!(stdout.contains("interrupted"), "{stdout}");
    let dir = run_dir(results.path());
    assert_eq!(json(&dir.join("test.json"))["status"], "incomplete");
    assert_eq!(json(&dir.join("results.json"))["complete"], false);
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    assert!(
        history.lines().count() > 100,
        "the history recorded so far is kept"
    );
    assert!(
        history.contains(r#""process":"nemesis""#),
        "the faults are in the history"
    );
    assert_eq!(
        processes_mentioning(&results_path),
        Vec::<u32>::new(),
        "no node outlives the run"
    );
}

#[test]
fn no_run_leaves_a_node_or_a_host_firewall_rule_behind() {
    // Runs after (or alongside) the others: whatever they started must be gone once they end.
    // The per-test checks above are exact; this one guards the host firewall.
    if let Ok(out) = Command::new("iptables").arg("-S").output() {
        let rules = String::from_utf8_lossy(&out.stdout);
        assert!(
            !rules.contains("riptide"),
            "the host firewall has riptide rules:\n{rules}"
        );
    }
}

#[test]
fn a_campaign_runs_consecutive_seeds_and_summarises() {
    if !is_root() {
        eprintln!("skipped: riptide campaign needs root for its runs' network namespaces");
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = riptide(&[
        "campaign",
        "--runs",
        "2",
        "--seed",
        "40",
        "--results-dir",
        results.path().to_str().unwrap(),
        "--",
        "--nodes",
        "3",
        "--time-limit",
        "3",
        "--nemesis",
        "none",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("seed 40") && stdout.contains("seed 41"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 runs in") && stdout.contains("2 valid, 0 invalid"),
        "{stdout}"
    );
    let runs = std::fs::read_dir(results.path().join("riptide"))
        .unwrap()
        .count();
    assert_eq!(runs, 2, "each run is stored");
    // A seed among the test options is refused: the campaign owns the seeds.
    let out = riptide(&["campaign", "--runs", "1", "--", "--seed", "3"]);
    assert_eq!(out.status.code(), Some(254));
}

#[test]
fn riptide_cluster_serves_riptide_client_until_ctrl_c() {
    common::isolated(|| {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = Command::new(riptide_bin())
            .args(["cluster", "--nodes", "3", "--port", "7400", "--dir"])
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(cluster.stdout.take().unwrap()).lines();
        let mut banner = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            banner.push_str(&line);
            banner.push('\n');
            if line.contains("Ctrl-C stops the cluster") {
                break;
            }
        }
        assert!(banner.contains("127.0.0.13:7400"), "{banner}");
        let client = |args: &[&str]| {
            let out = Command::new(riptide_bin())
                .args(["client", "--port", "7400"])
                .args(args)
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
            )
        };
        assert_eq!(client(&["put", "k1", "hello"]), (Some(0), "ok".to_string()));
        assert_eq!(client(&["get", "k1"]), (Some(0), "hello".to_string()));
        assert_eq!(
            client(&["cas", "k1", "hello", "world"]),
            (Some(0), "ok".to_string())
        );
        let (code, text) = client(&["cas", "k1", "hello", "again"]);
        assert_eq!(
            code,
            Some(1),
            "a cas mismatch is a definite failure: {text}"
        );
        assert!(text.contains("world"), "{text}");
        assert_eq!(client(&["append", "k1", "!"]), (Some(0), "ok".to_string()));
        assert_eq!(client(&["get", "k1"]), (Some(0), "world!".to_string()));
        assert_eq!(client(&["get", "nothing"]), (Some(0), "(nil)".to_string()));
        let (code, status) = client(&["status"]);
        assert_eq!(code, Some(0), "{status}");
        assert_eq!(status.matches("Leader").count(), 1, "{status}");
        assert_eq!(status.lines().count(), 3, "{status}");
        let (code, compared) = client(&["compare"]);
        assert_eq!(code, Some(0), "{compared}");
        assert!(
            compared.ends_with("3 nodes agree at applied index")
                || compared.contains("3 nodes agree at applied index"),
            "{compared}"
        );
        assert_eq!(compared.matches(": 1 keys,").count(), 3, "{compared}");
        unsafe { libc::kill(cluster.id() as i32, libc::SIGINT) };
        assert_eq!(cluster.wait().unwrap().code(), Some(0));
        assert_eq!(
            processes_mentioning(dir.path().to_str().unwrap()),
            Vec::<u32>::new(),
            "no node outlives the cluster"
        );
        let (code, _) = client(&["get", "k1"]);
        assert_ne!(code, Some(0), "the cluster is down");
        let (code, compared) = client(&["--timeout-ms", "300", "compare"]);
        assert_eq!(
            code,
            Some(2),
            "nothing to compare is not agreement: {compared}"
        );
        assert!(compared.contains("no node answered"), "{compared}");
        // The data stays: a cluster restarted on the same folder still has it.
        let mut again = Command::new(riptide_bin())
            .args(["cluster", "--nodes", "3", "--port", "7400", "--dir"])
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(again.stdout.take().unwrap()).lines();
        assert!(lines.any(|l| l.unwrap().contains("Ctrl-C stops the cluster")));
        assert_eq!(client(&["get", "k1"]), (Some(0), "world!".to_string()));
        unsafe { libc::kill(again.id() as i32, libc::SIGINT) };
        assert_eq!(again.wait().unwrap().code(), Some(0));
    });
}

#[test]
fn the_append_workload_is_checked_with_the_kv_model_and_catches_stale_reads() {
    if !can_run() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = riptide_test(
        results.path(),
        "--workload append --nodes 3 --time-limit 8 --seed 5 --nemesis none --unsafe-bug stale-read",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let dir = run_dir(results.path());
    let results_json = json(&dir.join("results.json"));
    assert_eq!(results_json["checker"]["model"], "kv");
    assert!(
        results_json["summary"]["by_f"]["append"]["ok"]
            .as_u64()
            .unwrap()
            > 50,
        "{results_json:#}"
    );
    let history = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let read: serde_json::Value = history
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|op| op["f"] == "read" && op["type"] == "ok" && op["value"].is_string())
        .expect("reads return the appended text");
    assert!(
        read["value"].as_str().unwrap().ends_with(' '),
        "tokens are space-terminated: {read}"
    );
}

/// `restart` kills nodes and starts them again at once: each start names the killed pid and the
/// new one, the new process serves (the run stays valid, every node up at the end), and the
/// stop has nothing to undo.
#[test]
fn restart_kills_and_starts_a_node_again_at_once() {
    if !can_run() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = riptide_test(
        results.path(),
        "--nodes 3 --time-limit 8 --seed 5 --nemesis restart --nemesis-interval 1",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = run_dir(results.path());
    let events: Vec<serde_json::Value> = nemesis_ops(&dir)
        .into_iter()
        .filter(|op| op["value"]["fault"] == "restart")
        .collect();
    let starts: Vec<&serde_json::Value> = events.iter().filter(|e| e["f"] == "start").collect();
    assert!(starts.len() >= 2, "restarts were made: {events:?}");
    for start in starts {
        let (killed, restarted) = (&start["value"]["pids"], &start["value"]["restarted"]);
        let nodes = start["value"]["nodes"].as_array().unwrap();
        assert!(!nodes.is_empty(), "{start}");
        for node in nodes {
            let id = node.to_string();
            let (old, new) = (killed[&id].as_u64(), restarted[&id].as_u64());
            assert!(old.is_some() && new.is_some() && old != new, "{start}");
        }
    }
    let results_json = json(&dir.join("results.json"));
    assert_eq!(results_json["verdict"], "valid", "{results_json:#}");
}
