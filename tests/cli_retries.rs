//! Clients that retry like real clients (`--retry-indeterminate`), and the bug they expose:
//! `--unsafe-bug no-dedup`, a state machine that ignores client sessions. Packet loss on the
//! links (`--nemesis loss`, half of the time) with a 20 ms op timeout makes writes time out after
//! they were sent and commit later; each is resent with the same client id and sequence number.
//! The correct node applies it once (the session answers the retry with the first answer); the
//! buggy one appends twice, which the append workload's reads show. (A short op timeout alone is
//! not enough: on a quiet machine no write takes 10 ms.)

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A results folder under the test target's tmp dir that is removed when the test passes and
/// kept when it fails, so that a rare INVALID of the correct node leaves its history to study
/// (`target/tmp/cli_retries-<pid>/`; the failure message names it).
struct KeptOnFailure(PathBuf);

impl KeptOnFailure {
    fn new() -> KeptOnFailure {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cli_retries-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        KeptOnFailure(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for KeptOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the runs are kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn run(results: &Path, extra: &[&str]) -> (Option<i32>, String, serde_json::Value) {
    let mut cmd = Command::new(common::riptide_bin());
    cmd.args(["test", "--nodes", "3", "--time-limit", "8"])
        .args(["--workload", "append", "--rate", "0"])
        .args([
            "--nemesis",
            "loss",
            "--nemesis-interval",
            "1",
            "--op-timeout-ms",
            "20",
        ])
        .args(["--no-progress", "--results-dir", results.to_str().unwrap()])
        .args(extra);
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let run = common::latest_run(results);
    let text = std::fs::read_to_string(run.join("test.json")).unwrap();
    (
        out.status.code(),
        stdout,
        serde_json::from_str(&text).unwrap(),
    )
}

#[test]
fn retried_writes_apply_once_on_the_correct_node_and_twice_with_no_dedup() {
    if common::skip_without_root() {
        return;
    }
    let dir = KeptOnFailure::new();
    let (code, stdout, test) = run(dir.path(), &["--retry-indeterminate", "3", "--seed", "1"]);
    assert_eq!(
        code,
        Some(0),
        "the correct node with retries is valid:\n{stdout}"
    );
    assert_eq!(test["test"]["retry_indeterminate"], 3);
    assert!(
        test["rerun"]
            .as_str()
            .unwrap()
            .contains("--retry-indeterminate 3"),
        "{test}"
    );

    // Caught within three seeds (each run of 8 s has about four seconds of loss).
    let mut outputs = Vec::new();
    for seed in ["1", "2", "3"] {
        let bug = [
            "--retry-indeterminate",
            "3",
            "--unsafe-bug",
            "no-dedup",
            "--seed",
            seed,
        ];
        let (code, stdout, _) = run(dir.path(), &bug);
        if code == Some(1) {
            assert!(stdout.contains(" invalid"), "{stdout}");
            return;
        }
        outputs.push(stdout);
    }
    panic!("no-dedup was not caught in 3 runs:\n{}", outputs.join("\n"));
}
