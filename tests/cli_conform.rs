//! `riptide conform` end to end: it passes for riptide's own node (built in, and the same node
//! behind the misfit binary's pass-through proxy), and for each way `riptide-misfit-node` breaks
//! the contract it fails with exit code 1, a FAIL line naming exactly that rule, and a detail
//! saying what it saw. Every run also leaves nothing behind: its folder is gone, its nodes too.
//!
//! Each `riptide conform` runs its nodes in a private network namespace of its own when it can
//! (these tests run as root), so the runs can go in parallel on the same port.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn riptide() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_riptide"))
}

fn misfit_node() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_riptide-misfit-node"))
}

/// `riptide conform ARGS` with `RIPTIDE_MISFIT` set to `misfits` (empty: none).
fn conform(args: &[&str], misfits: &str) -> (i32, String) {
    let out: Output = Command::new(riptide())
        .arg("conform")
        .args(args)
        .env("RIPTIDE_MISFIT", misfits)
        .output()
        .expect("riptide runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The verdict label of every rule line: `("ok", "status")`, ...
fn verdicts(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let label = words.next()?;
            let rule = words.next()?;
            ["ok", "FAIL", "skip", "warn"]
                .contains(&label)
                .then(|| (label.to_string(), rule.to_string()))
        })
        .collect()
}

/// The folder the nodes' data went to, from the `as:` line (`--data-dir DIR/n1/data`).
fn work_dir(out: &str) -> PathBuf {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("as:"))
        .expect("an as: line");
    let data = line
        .split_whitespace()
        .skip_while(|w| *w != "--data-dir")
        .nth(1)
        .expect("--data-dir");
    Path::new(data)
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf()
}

/// The pids of the first start, from the flags line.
fn first_pids(out: &str) -> Vec<u32> {
    let Some(line) = out.lines().find(|l| l.starts_with("ok    flags")) else {
        return Vec::new();
    };
    let list = line.split("(pids ").nth(1).unwrap().trim_end_matches(')');
    list.split(", ").map(|p| p.parse().unwrap()).collect()
}

/// Nothing of the run is left: no folder, no node of its first start.
fn assert_cleaned_up(out: &str) {
    let dir = work_dir(out);
    assert!(!dir.exists(), "{} is still there:\n{out}", dir.display());
    for pid in first_pids(out) {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "node pid {pid} outlived conform"
        );
    }
}

fn assert_keeps_the_contract(code: i32, out: &str) {
    assert_eq!(code, 0, "{out}");
    let found = verdicts(out);
    let ids: Vec<&str> = riptide::commands::conform::rules::ALL
        .iter()
        .map(|r| r.id)
        .collect();
    for id in &ids {
        assert!(
            found
                .iter()
                .any(|(label, rule)| label == "ok" && rule == id),
            "rule {id} did not pass:\n{out}"
        );
    }
    assert_eq!(found.len(), ids.len(), "one line per rule:\n{out}");
    assert!(out.contains("keeps the node contract"), "{out}");
    assert_cleaned_up(out);
}

#[test]
fn riptides_own_node_keeps_the_contract() {
    let (code, out) = conform(&[], "");
    assert_keeps_the_contract(code, &out);
}

#[test]
fn the_misfit_node_with_no_misfit_keeps_the_contract() {
    let bin = misfit_node();
    let (code, out) = conform(&["--node-bin", bin.to_str().unwrap()], "");
    assert_keeps_the_contract(code, &out);
}

/// Runs conform on the misfit node with `misfit`, and checks that exactly `rule` failed, with
/// `detail` in what it printed.
fn breaks(misfit: &str, rule: &str, detail: &str) {
    let bin = misfit_node();
    let (code, out) = conform(&["--node-bin", bin.to_str().unwrap()], misfit);
    assert_eq!(code, 1, "misfit {misfit}:\n{out}");
    let failed: Vec<String> = verdicts(&out)
        .into_iter()
        .filter(|(label, _)| label == "FAIL")
        .map(|(_, rule)| rule)
        .collect();
    assert_eq!(failed, vec![rule.to_string()], "misfit {misfit}:\n{out}");
    assert!(
        out.contains(detail),
        "misfit {misfit}: no `{detail}` in:\n{out}"
    );
    assert!(
        out.contains(&format!("breaks 1 rule of the node contract: {rule}")),
        "{out}"
    );
    assert!(out.contains("rule: "), "a failure states the rule:\n{out}");
    assert!(
        out.contains("rerun with --keep-dir DIR to read them"),
        "{out}"
    );
    assert_cleaned_up(&out);
}

#[test]
fn a_node_that_never_answers_status_breaks_status() {
    breaks(
        "silent-status",
        "status",
        r#"sent {"id":1,"client_id":0,"seq":0,"op":"Status"} on a new client connection, again for 5s: no answer within 2s (the connection stayed open)"#,
    );
}

#[test]
fn a_node_that_dies_on_a_bad_frame_breaks_bad_frames() {
    breaks("dies-on-bad-frame", "bad-frames", "exited with code 3");
}

#[test]
fn a_node_that_ignores_sigterm_breaks_sigterm() {
    breaks(
        "ignores-sigterm",
        "sigterm",
        "was still running 5s after SIGTERM",
    );
}

#[test]
fn a_node_that_forgets_its_data_breaks_restart() {
    breaks(
        "forgets-data",
        "restart",
        r#"get conform-reg after the restart (acknowledged before it as "two"): expected {"Ok":{"Value":"two"}}, got {"Ok":{"Value":null}}"#,
    );
}

#[test]
fn a_node_that_refuses_a_bench_flag_breaks_flags() {
    breaks(
        "rejects-bench-flags",
        "flags",
        "unexpected argument '--snapshot-entries'",
    );
}

#[test]
fn a_follower_hinting_the_wrong_address_breaks_followers() {
    breaks("wrong-leader-hint", "followers", ":7001\"}, but n");
}

#[test]
fn a_status_with_another_id_breaks_status() {
    breaks(
        "status-wrong-id",
        "status",
        "it says id 101 but was started with --id 1",
    );
}

#[test]
fn a_missing_or_unusable_node_bin_is_a_bad_argument() {
    let (code, out) = conform(&["--node-bin", "/nonexistent/my-node"], "");
    assert_eq!(code, 254, "{out}");
    assert!(
        out.contains("--node-bin /nonexistent/my-node: No such file"),
        "{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\n").unwrap();
    let (code, out) = conform(&["--node-bin", plain.to_str().unwrap()], "");
    assert_eq!(code, 254, "{out}");
    assert!(out.contains("is not an executable file"), "{out}");
}

#[test]
fn keep_dir_keeps_the_nodes_logs() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("kept");
    let bin = misfit_node();
    let (code, out) = conform(
        &[
            "--node-bin",
            bin.to_str().unwrap(),
            "--keep-dir",
            keep.to_str().unwrap(),
        ],
        "ignores-sigterm",
    );
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("rerun with --keep-dir"), "{out}");
    let log = std::fs::read_to_string(keep.join("n1.log")).unwrap();
    assert!(log.contains("misfits [IgnoresSigterm]"), "{log}");
    // A folder with something in it would hand old data to the new nodes: refused.
    let (code, out) = conform(&["--keep-dir", keep.to_str().unwrap()], "");
    assert_eq!(code, 254, "{out}");
    assert!(
        out.contains("is not empty; give a new or empty folder"),
        "{out}"
    );
}

/// Runs `riptide ARGS`, returning the exit code and stdout + stderr.
fn riptide_cmd(args: &[&str]) -> (i32, String) {
    let out = Command::new(riptide())
        .args(args)
        .output()
        .expect("riptide runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn test_campaign_and_compare_run_a_node_bin() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let results = results.to_str().unwrap();
    let bin = misfit_node();
    let bin = bin.to_str().unwrap();
    let run = ["--nodes", "3", "--time-limit", "2", "--no-progress"];
    let (code, out) = riptide_cmd(
        &[
            &["test", "--node-bin", bin, "--results-dir", results][..],
            &run,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{out}");
    let rerun = out
        .lines()
        .find(|l| l.starts_with("rerun"))
        .expect("a rerun line");
    assert!(
        rerun.ends_with(&format!("--node-bin {bin}")),
        "the rerun names the node: {rerun}"
    );
    let latest = std::fs::read_to_string(Path::new(results).join("latest/test.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&latest).unwrap();
    assert_eq!(manifest["node_program"], bin, "{latest}");
    assert!(
        manifest["rerun"].as_str().unwrap().contains("--node-bin"),
        "{latest}"
    );

    for (name, node) in [("base", None), ("new", Some(bin))] {
        let mut args = vec![
            "campaign",
            "--runs",
            "1",
            "--results-dir",
            results,
            "--name",
            name,
            "--save-baseline",
            name,
            "--",
        ];
        args.extend(run);
        if let Some(node) = node {
            args.extend(["--node-bin", node]);
        }
        let (code, out) = riptide_cmd(&args);
        assert_eq!(code, 0, "campaign {name}: {out}");
    }
    let (code, out) = riptide_cmd(&["compare", "--results-dir", results, "base", "new"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("--node-bin {bin}")),
        "compare shows the options differ by the node: {out}"
    );
    assert!(out.contains("no regression"), "{out}");
}

#[test]
fn on_the_hosts_loopback_it_picks_a_free_port() {
    let (code, out) = conform(&["--no-sandbox"], "");
    assert_keeps_the_contract(code, &out);
    let header = out.lines().next().unwrap();
    assert!(header.contains("(on the host's loopback)"), "{header}");
    let port: u16 = header
        .split(" port ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {header}"));
    assert!(
        (30_000..50_000).contains(&port),
        "a free port from the range: {header}"
    );
}

#[test]
fn ctrl_c_stops_after_the_current_check_and_cleans_up() {
    // The misfit that ignores SIGTERM makes the sigterm check last 5 s: time to interrupt.
    let child = Command::new(riptide())
        .args(["conform", "--node-bin", misfit_node().to_str().unwrap()])
        .env("RIPTIDE_MISFIT", "ignores-sigterm")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    // SAFETY: kill(2) on the exact pid of our own unreaped child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(
        text.contains("interrupted; stopping after this check"),
        "{text}"
    );
    assert!(text.contains("skip  restart       interrupted"), "{text}");
    assert_cleaned_up(&text);
}
