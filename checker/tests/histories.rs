//! Hand-made histories (tests/data/), one behaviour each: every model, info ops that did and did
//! not take effect, and an invalid history per model whose counterexample names the right op.

use std::path::PathBuf;

use riptide_checker::{
    check, default_model, load_history, CheckOptions, CheckReport, Format, ModelKind, Verdict,
};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn run(name: &str, model: Option<ModelKind>) -> CheckReport {
    let history = load_history(&data(name), Format::Auto).unwrap();
    let model = model.unwrap_or_else(|| default_model(&history));
    let opts = CheckOptions {
        all_keys: true,
        ..CheckOptions::default()
    };
    check(&history, model, &opts).unwrap()
}

/// The counterexample of the one invalid key: (key, failed op as shown, its invoke line).
fn failure(report: &CheckReport) -> (String, String, u32) {
    let mut invalid = report
        .keys
        .iter()
        .filter(|(_, k)| k.verdict == Verdict::Invalid);
    let (key, k) = invalid.next().expect("an invalid key");
    assert!(invalid.next().is_none(), "exactly one invalid key");
    let cx = k.counterexample.as_ref().expect("a counterexample");
    (key.clone(), cx.op.op.clone(), cx.op.invoke_line)
}

#[test]
fn register_with_info_ops_that_did_and_did_not_take_effect_is_valid() {
    let r = run("register-valid.jsonl", Some(ModelKind::Register));
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.render());
    assert_eq!(r.history.ignored, 1, "the nemesis line is ignored");
    assert_eq!(r.history.fail, 1);
    assert_eq!(r.history.info, 2);
}

#[test]
fn a_stale_register_read_is_invalid_at_that_read() {
    let r = run("register-invalid.jsonl", Some(ModelKind::Register));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(failure(&r), (String::new(), "read 1".into(), 5));
    let cx = r.keys[""].counterexample.as_ref().unwrap();
    let prefix: Vec<&str> = cx.prefix.iter().map(|o| o.op.as_str()).collect();
    assert_eq!(prefix, ["write 1", "write 2"]);
    assert_eq!(cx.states, ["2"]);
    let text = r.render();
    assert!(text.contains("> read 1"), "{text}");
    assert!(text.contains("INVALID"), "{text}");
}

#[test]
fn unfinished_writes_may_take_effect_late_in_any_order() {
    // Two writes that never completed, both read after an ok write of 1: the order w1, w2, read
    // 2, w3, read 3 explains it. (A search that wrongly pruned configurations with *fewer* info
    // ops linearized than one already seen would call this invalid.)
    let r = run("info-writes-read-later.jsonl", None);
    assert_eq!(r.history.unfinished, 2);
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.render());
}

#[test]
fn an_info_write_cannot_take_effect_before_its_invoke() {
    let r = run("register-info-too-late.jsonl", None);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(failure(&r), (String::new(), "read 5".into(), 1));
}

#[test]
fn a_failed_write_is_dropped_so_reading_its_value_is_invalid() {
    // register-valid.jsonl with the failed write's value read: nobody may see it.
    let text = std::fs::read_to_string(data("register-valid.jsonl")).unwrap();
    let text = text.replace(
        r#""type":"ok","f":"read","value":2}"#,
        r#""type":"ok","f":"read","value":3}"#,
    );
    let h = riptide_checker::parse_history(&data("x.jsonl"), &text, Format::Auto).unwrap();
    let r = check(&h, ModelKind::Register, &CheckOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid);
}

#[test]
fn cas_register_with_a_failed_cas_and_info_ops_is_valid() {
    let r = run("cas-valid.edn", None);
    assert_eq!(r.model, ModelKind::CasRegister);
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.render());
    assert_eq!(
        (r.history.fail, r.history.info, r.history.ignored),
        (1, 2, 1)
    );
}

#[test]
fn a_cas_from_the_wrong_value_is_invalid_at_that_cas() {
    let r = run("cas-invalid.edn", None);
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(failure(&r), (String::new(), "cas 2->3".into(), 5));
    assert_eq!(r.keys[""].counterexample.as_ref().unwrap().states, ["1"]);
}

#[test]
fn the_register_model_refuses_cas() {
    let h = load_history(&data("cas-invalid.edn"), Format::Auto).unwrap();
    let e = check(&h, ModelKind::Register, &CheckOptions::default()).unwrap_err();
    assert!(e.to_string().contains("use --model cas-register"), "{e}");
}

#[test]
fn kv_appends_with_info_appends_that_did_and_did_not_take_effect_are_valid() {
    let r = run("kv-valid.jsonl", None);
    assert_eq!(r.model, ModelKind::Kv, "appends choose the kv model");
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.render());
    assert_eq!(r.keys.len(), 2);
}

#[test]
fn kv_appends_seen_out_of_order_are_invalid_on_that_key_only() {
    let r = run("kv-invalid.jsonl", None);
    assert_eq!(r.verdict, Verdict::Invalid);
    // With the kv lookahead the search fails at `append "x"`: the read that must follow it,
    // with nothing that could reset the value in between, does not start with "x".
    assert_eq!(failure(&r), ("b".into(), "append \"x\"".into(), 5));
    let cx = r.keys["b"].counterexample.as_ref().unwrap();
    assert!(
        cx.explanation.contains("the read of \"yx\""),
        "{}",
        cx.explanation
    );
    assert_eq!(r.keys["a"].verdict, Verdict::Valid);
}

#[test]
fn porcupine_kv_data_reads_a_missing_key_as_empty_and_catches_a_lost_put() {
    let r = run("porcupine-kv-invalid.txt", None);
    assert_eq!(r.format, Format::PorcupineKv);
    assert_eq!(r.initial, "\"\"");
    // The put of "a" is the op that cannot be placed: the read after it sees "b".
    assert_eq!(failure(&r), ("k".into(), "put \"a\"".into(), 3));
    let cx = r.keys["k"].counterexample.as_ref().unwrap();
    assert_eq!(cx.states, ["\"\""]);
    assert!(
        cx.explanation.contains("read of \"b\""),
        "{}",
        cx.explanation
    );
}

#[test]
fn jepsen_independent_tuples_are_split_by_key() {
    let r = run("independent.edn", None);
    assert_eq!(r.keys.len(), 2);
    assert_eq!(r.keys["2"].verdict, Verdict::Valid);
    assert_eq!(failure(&r), ("1".into(), "read 10".into(), 9));
}

#[test]
fn the_initial_value_can_be_set() {
    // A read of 0 before any write is invalid from nil and valid from 0.
    let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
                {\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":0}\n";
    let h = riptide_checker::parse_history(&data("x.jsonl"), text, Format::Jsonl).unwrap();
    let nil = check(&h, ModelKind::Register, &CheckOptions::default()).unwrap();
    assert_eq!(nil.verdict, Verdict::Invalid);
    let opts = CheckOptions {
        initial: Some(riptide_checker::Value::Int(0)),
        ..CheckOptions::default()
    };
    assert_eq!(
        check(&h, ModelKind::Register, &opts).unwrap().verdict,
        Verdict::Valid
    );
}

#[test]
fn the_json_report_names_the_verdict_and_the_counterexample() {
    let r = run("register-invalid.jsonl", None);
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["verdict"], "invalid");
    let cx = &json["keys"][""]["counterexample"];
    assert_eq!(cx["op"]["f"], "read");
    assert_eq!(cx["op"]["value"], 1);
    assert_eq!(cx["prefix"][1]["value"], 2);
    assert_eq!(cx["op"]["invoke"], 4);
    assert_eq!(cx["op"]["complete"], 5);
    assert_eq!(cx["prefix"].as_array().unwrap().len(), 2);
    assert_eq!(cx["states"][0], "2");
}
