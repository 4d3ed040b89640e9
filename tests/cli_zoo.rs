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
    let zoo = zoo_dir(&results);
    let table = json(&zoo.join("zoo.json"));
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

/// The zoo folder under `results` (there is one).
fn zoo_dir(results: &std::path::Path) -> std::path::PathBuf {
    std::fs::read_dir(results.join("zoo"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

fn json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn ctrl_c_leaves_an_incomplete_table_that_resume_finishes_with_the_runs_kept() {
    if common::skip_without_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let child = Command::new(common::riptide_bin())
        .args([
            "zoo",
            "--runs",
            "2",
            "--clean-runs",
            "1",
            "--bugs",
            "stale-read",
        ])
        .args(["--seed", "3", "--results-dir", results.to_str().unwrap()])
        .args([
            "--",
            "--nodes",
            "3",
            "--time-limit",
            "4",
            "--nemesis",
            "none",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the bug campaign's first run to be stored, then Ctrl-C during the second.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let (zoo, first_run) = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        let Some(zoo) = std::fs::read_dir(results.join("zoo"))
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path())
        else {
            continue;
        };
        let Ok(plan) = std::fs::read_to_string(zoo.join("zoo-plan.json")) else {
            continue;
        };
        let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
        let bugs = results.join(plan["bugs_campaign"].as_str().unwrap());
        let runs = std::fs::read_to_string(bugs.join("campaign.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["runs"].as_array().cloned())
            .unwrap_or_default();
        if runs.len() == 1 {
            break (zoo, runs[0]["dir"].clone());
        }
    };
    std::thread::sleep(std::time::Duration::from_secs(2));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "incomplete: {stdout}");
    assert!(
        stdout.contains(&format!("riptide zoo --resume {}", zoo.display())),
        "{stdout}"
    );
    let table = json(&zoo.join("zoo.json"));
    assert_eq!(table["complete"], false, "{table}");
    assert_eq!(
        table["bugs"][0]["runs"], 1,
        "the run done is counted: {table}"
    );
    assert_eq!(
        table["clean_runs"], 0,
        "the clean half never started: {table}"
    );
    assert!(std::fs::read_to_string(zoo.join("zoo.md"))
        .unwrap()
        .contains("**Incomplete**"));

    let out = Command::new(common::riptide_bin())
        .args(["zoo", "--resume", zoo.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{stdout}\n{stderr}"
    );
    let table = json(&zoo.join("zoo.json"));
    assert_eq!(table["complete"], true, "{table}");
    assert_eq!(table["bugs"][0]["runs"], 2, "{table}");
    assert_eq!(table["clean_runs"], 1, "{table}");
    assert_eq!(zoo_dir(&results), zoo, "the same folder, no second zoo");
    let plan = json(&zoo.join("zoo-plan.json"));
    let bugs = json(
        &results
            .join(plan["bugs_campaign"].as_str().unwrap())
            .join("campaign.json"),
    );
    assert_eq!(bugs["runs"][0]["dir"], first_run, "the first run is kept");
    assert_eq!(bugs["runs"][1]["seed"], 4);

    let out = Command::new(common::riptide_bin())
        .args(["zoo", "--resume", zoo.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert!(
        stderr.contains("is complete; nothing to resume"),
        "{stderr}"
    );
}

#[test]
fn resume_refuses_other_options_and_folders_that_are_not_a_zoos() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(common::riptide_bin())
            .arg("zoo")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--resume", "x/zoo/1", "--runs", "3"]);
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
    let (code, err) = run(&["--resume", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("not a zoo's folder"), "{err}");
    let empty = dir.path().join("zoo/20261207T000000");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, err) = run(&["--resume", empty.to_str().unwrap()]);
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("cannot read zoo-plan.json"), "{err}");
}
