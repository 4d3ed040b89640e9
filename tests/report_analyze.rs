//! `riptide analyze RUN_DIR` on stored runs written by hand: the verdict and exit code, the
//! reports it rewrites, another model, and a clear error for a folder that is not a run.

mod report_support;

use report_support::*;

#[test]
fn analyze_finds_the_stale_read_and_writes_every_report() {
    let results = tempfile::tempdir().unwrap();
    let dir = synthetic_run(
        results.path(),
        "riptide",
        "20261124T010000",
        2,
        &stale_read_history(),
    );
    std::os::unix::fs::symlink("riptide/20261124T010000", results.path().join("latest")).unwrap();
    let out = riptide(&[
        "analyze",
        "latest",
        "--results-dir",
        results.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("verdict   INVALID"), "{stdout}");
    assert!(
        stdout.contains("  invalid k1"),
        "the invalid key is named: {stdout}"
    );
    let r = json(&dir.join("results.json"));
    assert_eq!(r["verdict"], "invalid");
    assert_eq!(
        r["checker"]["keys"]["k1"]["counterexample"]["states"][0],
        "1"
    );
    assert_eq!(r["summary"]["faults"]["kill"], 1);
    for f in ["timeline.html", "latency.svg", "rate.svg"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let page = std::fs::read_to_string(dir.join("timeline.html")).unwrap();
    assert!(
        page.contains("\"anomalies\":[{"),
        "the counterexample is in the page's data"
    );
    let index = std::fs::read_to_string(results.path().join("index.html")).unwrap();
    assert!(
        index.contains("data-verdict=\"invalid\""),
        "the index is rewritten: {index}"
    );
}

#[test]
fn analyze_uses_another_model_or_time_limit_when_asked() {
    let results = tempfile::tempdir().unwrap();
    let dir = synthetic_run(
        results.path(),
        "riptide",
        "20261124T020000",
        2,
        &stale_read_history(),
    );
    let out = riptide(&[
        "analyze",
        dir.to_str().unwrap(),
        "--model",
        "register",
        "--time-limit",
        "5",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json(&dir.join("results.json"))["checker"]["model"],
        "register"
    );
    let out = riptide(&["analyze", dir.to_str().unwrap(), "--time-limit", "soon"]);
    assert_eq!(out.status.code(), Some(254));
}

#[test]
fn analyze_refuses_a_folder_that_is_not_a_run_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    for dir in [tmp.path().join("missing"), tmp.path().to_path_buf()] {
        let out = riptide(&[
            "analyze",
            dir.to_str().unwrap(),
            "--results-dir",
            tmp.path().to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
        assert!(stderr.contains("not a run folder"), "{stderr}");
    }
    assert!(
        !tmp.path().join("index.html").exists(),
        "nothing is written for a bad folder"
    );
}
