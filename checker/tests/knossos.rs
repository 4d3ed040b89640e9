//! Where Knossos and riptide could disagree, one hand-written EDN history each, with the verdict
//! Knossos gives and why (from `knossos/model.clj` and `knossos/history.clj`). Every valid case
//! has an invalid counterpart that differs in the one point under test.

use std::path::Path;

use riptide_checker::{
    check, default_model, parse_history, CheckOptions, CheckReport, Format, ModelKind, NilRead,
    Value, Verdict,
};

fn report_with(edn: &str, opts: &CheckOptions) -> CheckReport {
    let h = parse_history(Path::new("h.edn"), edn, Format::Auto).unwrap();
    check(&h, default_model(&h), opts).unwrap()
}

fn verdict_with(edn: &str, opts: &CheckOptions) -> Verdict {
    report_with(edn, opts).verdict
}

fn verdict(edn: &str) -> Verdict {
    verdict_with(edn, &CheckOptions::default())
}

fn nil_read(mode: NilRead) -> CheckOptions {
    CheckOptions {
        nil_read: Some(mode),
        ..CheckOptions::default()
    }
}

/// The README's three ops: a write of 1 completes, then a read says nil, then a read says 1.
const NIL_AFTER_WRITE: &str = "\
{:process 0, :type :invoke, :f :write, :value 1}
{:process 0, :type :ok,     :f :write, :value 1}
{:process 1, :type :invoke, :f :read,  :value nil}
{:process 1, :type :ok,     :f :read,  :value nil}
{:process 0, :type :invoke, :f :read,  :value nil}
{:process 0, :type :ok,     :f :read,  :value 1}
";

/// Knossos: valid. `CASRegister.step` accepts a read `(or (nil? (:value op)) (= value ...))`,
/// so the nil read matches the state 1. Read as "the key is absent" it is impossible after
/// the write completed.
#[test]
fn an_ok_read_of_nil_constrains_nothing_in_edn_by_default() {
    let r = report_with(NIL_AFTER_WRITE, &CheckOptions::default());
    assert_eq!(r.verdict, Verdict::Valid);
    assert_eq!(r.nil_read, NilRead::Any);
    assert_eq!(r.unconstrained_reads, 1);
    assert!(
        r.render().contains("nil reads (--nil-read any)"),
        "{}",
        r.render()
    );
    let r = report_with(NIL_AFTER_WRITE, &nil_read(NilRead::Absent));
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.unconstrained_reads, 0);
    // A read of another value is constrained in either mode.
    let two = NIL_AFTER_WRITE.replacen(
        ":ok,     :f :read,  :value nil",
        ":ok, :f :read, :value 2",
        1,
    );
    assert_eq!(verdict(&two), Verdict::Invalid);
}

/// riptide's JSONL keeps "null is absent" by default, and `--nil-read any` gives it Knossos's
/// reading.
#[test]
fn jsonl_reads_nil_as_absent_unless_told_otherwise() {
    let jsonl = r#"{"process":0,"type":"invoke","f":"write","key":"k","value":1}
{"process":0,"type":"ok","f":"write","key":"k","value":1}
{"process":1,"type":"invoke","f":"read","key":"k","value":null}
{"process":1,"type":"ok","f":"read","key":"k","value":null}
"#;
    let h = parse_history(Path::new("h.jsonl"), jsonl, Format::Auto).unwrap();
    let run = |opts: &CheckOptions| check(&h, ModelKind::CasRegister, opts).unwrap();
    let r = run(&CheckOptions::default());
    assert_eq!((r.verdict, r.nil_read), (Verdict::Invalid, NilRead::Absent));
    assert!(r.render().contains("nil reads (--nil-read absent)"));
    assert_eq!(run(&nil_read(NilRead::Any)).verdict, Verdict::Valid);
}

/// Jepsen logs are Knossos's input too: the same default.
#[test]
fn a_jepsen_log_reads_nil_as_knossos_does() {
    let log = "INFO  jepsen.util - 0\t:invoke\t:write\t1\n\
               INFO  jepsen.util - 0\t:ok\t:write\t1\n\
               INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
               INFO  jepsen.util - 1\t:ok\t:read\tnil\n";
    let h = parse_history(Path::new("j.log"), log, Format::Auto).unwrap();
    let run = |opts: &CheckOptions| check(&h, ModelKind::CasRegister, opts).unwrap().verdict;
    assert_eq!(run(&CheckOptions::default()), Verdict::Valid);
    assert_eq!(run(&nil_read(NilRead::Absent)), Verdict::Invalid);
}

/// Knossos: a failed op never happened (`without-failures`), whatever value the `:fail` carries
/// (Knossos asserts that it equals the invoke's; riptide drops the op either way). So reading
/// the failed write's value is invalid, and reading the initial value is valid.
#[test]
fn a_fail_with_a_value_is_dropped() {
    let h = |read: &str, fail_value: &str| {
        format!(
            "{{:process 0, :type :invoke, :f :write, :value 1}}
{{:process 0, :type :fail, :f :write, :value {fail_value}, :error \"no quorum\"}}
{{:process 1, :type :invoke, :f :read, :value nil}}
{{:process 1, :type :ok, :f :read, :value {read}}}
"
        )
    };
    let zero = CheckOptions {
        initial: Some(Value::Int(0)),
        ..CheckOptions::default()
    };
    assert_eq!(verdict_with(&h("0", "1"), &zero), Verdict::Valid);
    assert_eq!(verdict_with(&h("1", "1"), &zero), Verdict::Invalid);
    assert_eq!(verdict_with(&h("0", ":timed-out"), &zero), Verdict::Valid);
    assert_eq!(verdict_with(&h("1", ":timed-out"), &zero), Verdict::Invalid);
}

/// Knossos: an `:info` read keeps its invoke's value (`complete` ignores an info's value), nil,
/// so it constrains nothing, whatever the `:info` line says. riptide drops info reads. An ok read
/// of the same value is a real constraint.
#[test]
fn an_info_read_constrains_nothing_even_with_a_value() {
    let h = |ty: &str| {
        format!(
            "{{:process 0, :type :invoke, :f :write, :value 1}}
{{:process 0, :type :ok, :f :write, :value 1}}
{{:process 1, :type :invoke, :f :read, :value nil}}
{{:process 1, :type {ty}, :f :read, :value 5}}
"
        )
    };
    assert_eq!(verdict(&h(":info")), Verdict::Valid);
    assert_eq!(verdict(&h(":ok")), Verdict::Invalid);
}

/// Knossos's `cas-register` starts at nil (`(CASRegister. nil)`): a cas from nil succeeds on a
/// fresh key, a cas from 1 cannot ("can't CAS nil from 1").
#[test]
fn a_cas_on_a_missing_value_matches_only_nil() {
    let h = |from: &str| {
        format!(
            "{{:process 0, :type :invoke, :f :cas, :value [{from} 2]}}
{{:process 0, :type :ok, :f :cas, :value [{from} 2]}}
{{:process 0, :type :invoke, :f :read, :value nil}}
{{:process 0, :type :ok, :f :read, :value 2}}
"
        )
    };
    assert_eq!(verdict(&h("nil")), Verdict::Valid);
    assert_eq!(verdict(&h("1")), Verdict::Invalid);
}

/// Knossos's initial value is the model's argument, `(cas-register 0)` in most Jepsen tests;
/// riptide's is `--initial` (nil by default, as `(cas-register)`).
#[test]
fn the_initial_value_is_nil_unless_given() {
    let h = "{:process 0, :type :invoke, :f :read, :value nil}
{:process 0, :type :ok, :f :read, :value 0}
";
    assert_eq!(verdict(h), Verdict::Invalid);
    let zero = CheckOptions {
        initial: Some(Value::Int(0)),
        ..CheckOptions::default()
    };
    assert_eq!(verdict_with(h, &zero), Verdict::Valid);
}

/// Jepsen's `linearizable` checker hands Knossos only client ops (`history/client-ops`); Knossos
/// itself would reject `:f :start` ("No matching clause"). riptide ignores `:nemesis` (and any
/// keyword process) the same way, but a client op with an `:f` the model lacks is an error.
#[test]
fn nemesis_ops_are_ignored_and_unknown_client_ops_are_errors() {
    let h = |process: &str| {
        format!(
            "{{:process {process}, :type :info, :f :start, :value nil}}
{{:process 0, :type :invoke, :f :write, :value 1}}
{{:process 0, :type :ok, :f :write, :value 1}}
{{:process {process}, :type :info, :f :start, :value [:isolated {{\"n1\" #{{\"n2\"}}}}]}}
"
        )
    };
    assert_eq!(verdict(&h(":nemesis")), Verdict::Valid);
    let e = parse_history(Path::new("h.edn"), &h("3"), Format::Auto).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("h.edn:1: "), "{msg}");
    assert!(msg.contains("unknown operation `start`"), "{msg}");
}

/// An `:f` that is known but not to the model (a cas with `--model register`) is refused with
/// the model to use, as Knossos's `Register` has no `:cas` clause.
#[test]
fn an_op_the_model_lacks_is_refused() {
    let h = parse_history(
        Path::new("h.edn"),
        "{:process 0, :type :invoke, :f :cas, :value [nil 1]}\n",
        Format::Auto,
    )
    .unwrap();
    let e = check(&h, ModelKind::Register, &CheckOptions::default()).unwrap_err();
    assert!(e.to_string().contains("use --model cas-register"), "{e}");
    assert!(check(&h, ModelKind::CasRegister, &CheckOptions::default()).is_ok());
}
