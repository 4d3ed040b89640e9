//! The before/after workflow end to end, as a user runs it: a stored campaign on the correct
//! node saved as a baseline, the same campaign again (no regression), the same campaign with an
//! unsafe bug (a safety regression naming the bug's runs), JUnit output checked with an XML
//! parser, `riptide prune` keeping the baseline's campaign, Ctrl-C and `--resume`, and the
//! child's errors passed through. Needs root for the runs' network namespaces (skipped with a
//! message otherwise).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::riptide_bin;

fn riptide(args: &[&str]) -> Output {
    Command::new(riptide_bin())
        .args(args)
        .output()
        .expect("run riptide")
}

fn is_root() -> bool {
    let root = unsafe { libc::geteuid() == 0 };
    if !root {
        eprintln!("skipped: riptide campaign needs root for its runs' network namespaces");
    }
    root
}

fn text(out: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The campaign folder a campaign printed (`campaign  DIR`).
fn campaign_dir(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("campaign  ").filter(|d| d.starts_with('/')))
        .unwrap_or_else(|| panic!("no campaign folder in:\n{}", text(out)))
        .to_string()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn campaign(results: &Path, extra: &[&str], test: &[&str]) -> Output {
    let mut args = vec!["campaign", "--runs", "2", "--seed", "1", "--results-dir"];
    args.push(results.to_str().unwrap());
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(&["--nodes", "3", "--nemesis", "none"]);
    args.extend_from_slice(test);
    riptide(&args)
}

#[test]
fn baseline_then_the_same_then_a_bug_and_compare_says_what_regressed() {
    if !is_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let r = results.path();
    let junit = r.join("junit.xml");
    let good = campaign(
        r,
        &[
            "--save-baseline",
            "main",
            "--junit",
            junit.to_str().unwrap(),
        ],
        &["--time-limit", "3"],
    );
    assert_eq!(good.status.code(), Some(0), "{}", text(&good));
    let good_dir = campaign_dir(&good);
    let stored = json(&Path::new(&good_dir).join("campaign.json"));
    assert_eq!(stored["status"], "complete");
    assert_eq!(stored["totals"]["valid"], 2);
    assert_eq!(stored["runs"][0]["seed"], 1);
    assert_eq!(stored["runs"][1]["seed"], 2);
    assert!(stored["runs"][0]["ok_per_s"].as_f64().unwrap() > 0.0);
    assert!(stored["node"]["binary_crc32"].as_str().unwrap().len() == 8);
    let run_dir = stored["runs"][0]["dir"].as_str().unwrap();
    assert!(r.join(run_dir).join("results.json").is_file(), "{run_dir}");
    assert!(Path::new(&good_dir).join("campaign.html").is_file());
    let index = std::fs::read_to_string(r.join("index.html")).unwrap();
    assert!(
        index.contains("<table id=\"campaigns\">"),
        "the index lists campaigns"
    );
    check_junit(&std::fs::read_to_string(&junit).unwrap(), 2, 0);

    let again = campaign(r, &[], &["--time-limit", "3"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let out = riptide(&[
        "compare",
        "main",
        &campaign_dir(&again),
        "--results-dir",
        r.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the same campaign twice: {}",
        text(&out)
    );
    assert!(
        text(&out).contains("verdict   no regression (exit 0)"),
        "{}",
        text(&out)
    );

    let junit_bug = r.join("junit-bug.xml");
    let bug = campaign(
        r,
        &["--junit", junit_bug.to_str().unwrap()],
        &["--time-limit", "10", "--unsafe-bug", "stale-read"],
    );
    assert_eq!(bug.status.code(), Some(1), "{}", text(&bug));
    let bug_dir = campaign_dir(&bug);
    let bug_file = json(&Path::new(&bug_dir).join("campaign.json"));
    let invalid: Vec<&serde_json::Value> = bug_file["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == "invalid")
        .collect();
    assert!(!invalid.is_empty(), "stale reads are caught: {bug_file:#}");
    check_junit(
        &std::fs::read_to_string(&junit_bug).unwrap(),
        2,
        invalid.len(),
    );

    let out = riptide(&[
        "compare",
        "main",
        &bug_dir,
        "--results-dir",
        r.to_str().unwrap(),
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("safety     REGRESSED"), "{said}");
    for run in &invalid {
        let named = format!(
            "seed {} (not-linearizable) {}",
            run["seed"],
            run["dir"].as_str().unwrap()
        );
        assert!(said.contains(&named), "names `{named}`: {said}");
    }
    assert!(
        said.contains("verdict   SAFETY REGRESSED (exit 1)"),
        "{said}"
    );
    // The other way round nothing became invalid.
    let out = riptide(&["compare", &bug_dir, &good_dir]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Disk use: the campaigns' valid runs dropped their nodes' data, the invalid ones kept it.
    let node_data = |run: &serde_json::Value| r.join(run["dir"].as_str().unwrap()).join("nodes/n1");
    for run in stored["runs"].as_array().unwrap() {
        assert!(!node_data(run).exists(), "valid: {run}");
    }
    for run in &invalid {
        assert!(node_data(run).join("data").is_dir(), "invalid: {run}");
    }
    // Pruning to the newest campaign keeps the baseline's campaign and its runs, so the
    // comparison still works; the campaign in between goes with its runs.
    let again_dir = campaign_dir(&again);
    let again_runs = json(&Path::new(&again_dir).join("campaign.json"))["runs"].clone();
    let out = riptide(&["prune", "--keep", "1", "--results-dir", r.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("removed 2 run(s) and 1 campaign(s)"),
        "{said}"
    );
    assert!(!Path::new(&again_dir).exists(), "{said}");
    for run in again_runs.as_array().unwrap() {
        assert!(
            !r.join(run["dir"].as_str().unwrap()).exists(),
            "pruned: {run}"
        );
    }
    for run in stored["runs"].as_array().unwrap() {
        let dir = r.join(run["dir"].as_str().unwrap());
        assert!(
            dir.join("results.json").is_file(),
            "the baseline's run stays: {run}"
        );
    }
    let out = riptide(&[
        "compare",
        "main",
        &bug_dir,
        "--results-dir",
        r.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// Parses the JUnit file and checks its structure: counts, one case per run, a failure with a
/// message for each invalid run.
fn check_junit(xml: &str, runs: usize, failures: usize) {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1, "{xml}");
    let suite = suites[0];
    for attr in ["name", "tests", "failures", "errors", "time", "timestamp"] {
        assert!(
            suite.attribute(attr).is_some(),
            "testsuite lacks {attr}: {xml}"
        );
    }
    assert_eq!(suite.attribute("tests"), Some(runs.to_string().as_str()));
    assert_eq!(
        suite.attribute("failures"),
        Some(failures.to_string().as_str())
    );
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), runs, "{xml}");
    let mut failed = 0;
    for case in cases {
        assert!(case.attribute("name").unwrap().contains("seed "));
        case.attribute("time").unwrap().parse::<f64>().unwrap();
        if let Some(f) = case.children().find(|n| n.has_tag_name("failure")) {
            failed += 1;
            assert!(
                f.attribute("message").unwrap().starts_with("INVALID: "),
                "{xml}"
            );
            assert!(f.text().unwrap().contains("timeline.html"), "{xml}");
        }
    }
    assert_eq!(failed, failures, "{xml}");
}

#[test]
fn ctrl_c_stores_an_interrupted_campaign_that_resume_finishes() {
    if !is_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let r = results.path().to_str().unwrap();
    let child = Command::new(riptide_bin())
        .args(["campaign", "--runs", "3", "--seed", "5", "--results-dir", r])
        .args([
            "--",
            "--nodes",
            "3",
            "--nemesis",
            "none",
            "--time-limit",
            "4",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first run to be stored, then Ctrl-C during the second.
    let campaigns = results.path().join("campaigns/riptide");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let file = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never finished"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        let Some(dir) = std::fs::read_dir(&campaigns)
            .ok()
            .and_then(|mut d| d.next())
        else {
            continue;
        };
        let path = dir.unwrap().path();
        let runs = std::fs::read_to_string(path.join("campaign.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map_or(0, |v| v["runs"].as_array().map_or(0, |a| a.len()));
        if runs == 1 {
            break path;
        }
    };
    std::thread::sleep(std::time::Duration::from_secs(2));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "interrupted: {}", text(&out));
    let stored = json(&file.join("campaign.json"));
    assert_eq!(stored["status"], "interrupted", "{stored:#}");
    assert_eq!(
        stored["runs"].as_array().unwrap().len(),
        1,
        "the interrupted run is not counted"
    );

    let out = riptide(&[
        "campaign",
        "--resume",
        file.to_str().unwrap(),
        "--results-dir",
        r,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stored = json(&file.join("campaign.json"));
    assert_eq!(stored["status"], "complete");
    let seeds: Vec<u64> = stored["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seed"].as_u64().unwrap())
        .collect();
    assert_eq!(seeds, [5, 6, 7]);
    let out = riptide(&[
        "campaign",
        "--resume",
        file.to_str().unwrap(),
        "--results-dir",
        r,
    ]);
    assert_eq!(
        out.status.code(),
        Some(254),
        "a complete campaign: {}",
        text(&out)
    );
}

#[test]
fn the_childs_whole_complaint_reaches_the_user_and_owned_flags_are_refused_up_front() {
    let results = tempfile::tempdir().unwrap();
    let r = results.path().to_str().unwrap();
    let out = riptide(&[
        "campaign",
        "--runs",
        "1",
        "--results-dir",
        r,
        "--",
        "--bogus-flag",
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(254), "{said}");
    assert!(
        said.contains("--bogus-flag"),
        "the child's own message: {said}"
    );
    for (args, expected) in [
        (vec!["--", "--seed", "3"], "before `--`"),
        (vec!["--", "--results-dir", "/tmp"], "before `--`"),
        (
            vec!["--matrix", "nemesis=kill", "--", "--nemesis", "all"],
            "both set --nemesis",
        ),
        (vec!["--matrix", "nodes"], "KEY=V1,V2"),
        (vec!["--parallel", "0"], "--parallel must be"),
    ] {
        let mut argv = vec!["campaign", "--results-dir", r];
        argv.extend(args.iter());
        let out = riptide(&argv);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(expected), "{args:?}: {}", text(&out));
    }
    let out = riptide(&["compare", "nope", "nada", "--results-dir", r]);
    assert_eq!(out.status.code(), Some(254));
    assert!(
        text(&out).contains("neither a campaign folder"),
        "{}",
        text(&out)
    );
}

/// `--stop-on-invalid` ends the campaign at its first invalid run: no run starts after it (the
/// worker that ran it decides, before it takes the next job).
#[test]
fn stop_on_invalid_starts_no_run_after_the_first_invalid_one() {
    if !is_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let r = results.path().to_str().unwrap();
    let out = riptide(&[
        "campaign",
        "--runs",
        "4",
        "--seed",
        "7",
        "--stop-on-invalid",
        "--results-dir",
        r,
        "--",
        "--nodes",
        "3",
        "--time-limit",
        "12",
        "--ops-per-key",
        "30",
        "--nemesis",
        "partition",
        "--nemesis-interval",
        "2",
        "--unsafe-bug",
        "stale-read",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stored = json(&Path::new(&campaign_dir(&out)).join("campaign.json"));
    assert_eq!(stored["status"], "stopped-on-invalid", "{stored:#}");
    let verdicts: Vec<&str> = stored["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(
        verdicts.iter().filter(|v| **v == "invalid").count(),
        1,
        "one invalid run, the last: {verdicts:?}"
    );
    assert_eq!(verdicts.last(), Some(&"invalid"), "{verdicts:?}");
}
