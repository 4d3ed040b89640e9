//! `riptide check FILE --report DIR`: the timeline a run gets, for a history of any format. For
//! each format family (riptide JSONL, Jepsen EDN, Porcupine kv data) the page is written and its
//! anomaly is the checker's counterexample (the same op, found by history index); a bad DIR is
//! one line and exit 254; and headless Chromium shows the anomaly of an EDN history with one
//! invalid key (skipped without Chromium outside CI).

mod report_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use report_support::*;
use serde_json::Value;

fn data(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("checker/tests/data")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An EDN history (Jepsen's independent keys, `[key value]`) with a nemesis event and a failed
/// write before the anomaly, so page numbering must follow the file's events: key 1 reads 10
/// after the cas to 11 completed; key 2 is fine.
const EDN_ONE_INVALID_KEY: &str = r#"[{:process :nemesis, :type :info, :f :start, :value :partition}
{:process 0, :type :invoke, :f :write, :value [1 10]}
{:process 0, :type :ok, :f :write, :value [1 10]}
{:process 1, :type :invoke, :f :write, :value [2 20]}
{:process 1, :type :fail, :f :write, :value [2 20]}
{:process 1, :type :invoke, :f :write, :value [2 21]}
{:process 1, :type :ok, :f :write, :value [2 21]}
{:process 0, :type :invoke, :f :cas, :value [1 [10 11]]}
{:process 0, :type :ok, :f :cas, :value [1 [10 11]]}
{:process :nemesis, :type :info, :f :stop, :value :partition}
{:process 1, :type :invoke, :f :read, :value [2 nil]}
{:process 1, :type :ok, :f :read, :value [2 21]}
{:process 0, :type :invoke, :f :read, :value [1 nil]}
{:process 0, :type :ok, :f :read, :value [1 10]}]
"#;

fn edn_file(dir: &Path) -> String {
    let path = dir.join("one-invalid-key.edn");
    std::fs::write(&path, EDN_ONE_INVALID_KEY).unwrap();
    path.to_string_lossy().into_owned()
}

/// The data embedded in a page.
fn page_data(page: &Path) -> Value {
    let html = std::fs::read_to_string(page).unwrap();
    let open = r#"<script type="application/json" id="riptide-data">"#;
    let start = html.find(open).expect("the page embeds its data") + open.len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end].replace("\\u003c", "<")).unwrap()
}

/// Checks `file --json --report DIR`: exit 1, the page written and named on stderr, and each
/// anomaly on the page is the op of the checker's counterexample (same invoke index, process,
/// key). Returns the page's data.
fn check_with_report(file: &str, out: &Path) -> Value {
    let dir = out.join("report");
    let o = riptide(&["check", file, "--json", "--report", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).expect("stdout is the JSON report");
    let page = dir.join("timeline.html");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("report: {}", page.display())),
        "{}",
        text(&o)
    );
    let d = page_data(&page);
    assert_eq!(d["invalid"], true);
    let invalid: Vec<(&String, &Value)> = report["keys"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, k)| k["verdict"] == "invalid")
        .collect();
    let anomalies = d["anomalies"].as_array().unwrap();
    assert_eq!(anomalies.len(), invalid.len(), "{anomalies:?}");
    for (a, (key, k)) in anomalies.iter().zip(&invalid) {
        let cx = &k["counterexample"]["op"];
        let n = a["op"].as_u64().expect("the failed op is on the page") as usize;
        assert_eq!(a["key"], **key);
        assert_eq!(d["ops"]["ii"][n], cx["invoke"], "the same op: {a}");
        assert_eq!(d["ops"]["p"][n], cx["process"], "{a}");
        let page_key = &d["keys"][d["ops"]["k"][n].as_u64().unwrap() as usize];
        assert_eq!(page_key, *key);
    }
    d
}

#[test]
fn a_jsonl_history_gets_the_page_and_the_plots_with_its_anomaly() {
    let out = tempfile::tempdir().unwrap();
    let d = check_with_report(&data("kv-invalid.jsonl"), out.path());
    for f in ["latency.svg", "rate.svg"] {
        assert!(out.path().join("report").join(f).is_file(), "{f}");
    }
    assert_eq!(
        d["meta"]["links"],
        serde_json::json!(["latency.svg", "rate.svg"])
    );
    assert_eq!(d["meta"]["note"], Value::Null, "times are real: no note");
}

#[test]
fn an_edn_history_gets_the_page_on_a_history_index_axis() {
    let out = tempfile::tempdir().unwrap();
    let d = check_with_report(&edn_file(out.path()), out.path());
    assert!(!out.path().join("report/latency.svg").exists());
    let note = d["meta"]["note"].as_str().unwrap();
    assert!(note.contains("time axis is the history index"), "{note}");
    assert!(note.contains("Fail ops are not drawn"), "{note}");
    // The failed write is not drawn; the others are, at their history index (1 s a step).
    assert_eq!(d["ops"]["ii"], serde_json::json!([1, 5, 7, 10, 12]));
    assert_eq!(d["ops"]["t0"][4], 12e6);
    assert_eq!(d["anomalies"][0]["key"], "1");
}

#[test]
fn a_porcupine_history_gets_the_page_with_its_anomaly() {
    let out = tempfile::tempdir().unwrap();
    let d = check_with_report(&data("porcupine-kv-invalid.txt"), out.path());
    assert_eq!(d["anomalies"][0]["key"], "k");
}

#[test]
fn a_bad_report_dir_is_one_line_and_exit_254_and_a_good_one_keeps_the_verdict() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let missing_parent = out.path().join("no/such/dir");
    let o = riptide(&["check", &data("cas-invalid.edn"), "--report"]);
    assert_eq!(
        o.status.code(),
        Some(254),
        "--report needs a DIR: {}",
        text(&o)
    );
    for dir in [&file, &missing_parent] {
        let o = riptide(&[
            "check",
            &data("cas-invalid.edn"),
            "--report",
            dir.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(254), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("riptide check: --report "), "{err}");
        assert!(o.stdout.is_empty(), "nothing is checked: {}", text(&o));
    }
    assert!(!out.path().join("no").exists(), "nothing is created");
    let valid = riptide(&[
        "check",
        &data("cas-valid.edn"),
        "--report",
        out.path().join("valid").to_str().unwrap(),
    ]);
    assert_eq!(valid.status.code(), Some(0), "{}", text(&valid));
    assert!(String::from_utf8_lossy(&valid.stdout).contains("report: "));
    assert!(out.path().join("valid/timeline.html").is_file());
}

#[test]
fn chromium_shows_the_anomaly_of_an_edn_history_with_one_invalid_key() {
    let Some(chromium) = chromium() else { return };
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("report");
    let o = riptide(&[
        "check",
        &edn_file(out.path()),
        "--report",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let url = format!(
        "file://{}#anomaly;probe",
        dir.join("timeline.html").display()
    );
    let dom = dump_dom(&chromium, &url);
    assert!(
        dom.contains(r#"class="verdict v-invalid">INVALID<"#),
        "the header shows the verdict"
    );
    let panel = inner(&dom, "anomaly-panel", "aside");
    assert_eq!(panel.matches("class=\"anomaly").count(), 1, "{panel}");
    assert!(panel.contains("<h3>key 1</h3>"), "{panel}");
    assert!(
        panel.contains("<span class=\"states\">11</span>"),
        "the state the read contradicts: {panel}"
    );
    let filtered = inner(&dom, "key-count", "span");
    assert!(
        filtered.starts_with("1 of 2"),
        "filtered to key 1: {filtered}"
    );
    assert!(attr_f64(&dom, "timeline", "data-highlighted") >= 1.0);
    let tip = inner(&dom, "tip", "div");
    assert!(tip.contains("could not be linearized"), "{tip}");
    assert!(tip.contains("key 1") && tip.contains("process 0"), "{tip}");
    assert!(
        tip.contains("#12"),
        "the read invoked at history index 12: {tip}"
    );
    let note = inner(&dom, "cap-note", "div");
    assert!(note.contains("history index"), "{note}");
    assert!(
        attr(&dom, "cap-note", "hidden").is_none(),
        "the note is shown"
    );
}
