//! Knossos's `mutex` and `multi-register` models: hand-written EDN histories, each with the
//! verdict Knossos gives and why (from `knossos/model.clj`: `Mutex` and `MultiRegister`), and
//! Knossos's own data files (`tests/data/knossos/`, with Knossos's verdicts). Every valid case
//! has an invalid sibling that differs in the one point under test.

use std::path::{Path, PathBuf};

use riptide_checker::{
    check, default_model, load_history, parse_history, CheckOptions, CheckReport, Format,
    ModelKind, NilRead, Value, Verdict,
};

fn history(edn: &str) -> riptide_checker::History {
    parse_history(Path::new("h.edn"), edn, Format::Auto).unwrap()
}

fn report_with(edn: &str, opts: &CheckOptions) -> CheckReport {
    let h = history(edn);
    check(&h, default_model(&h), opts).unwrap()
}

fn verdict(edn: &str) -> Verdict {
    report_with(edn, &CheckOptions::default()).verdict
}

fn initial_zero() -> CheckOptions {
    CheckOptions {
        initial: Some(Value::Int(0)),
        ..CheckOptions::default()
    }
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/knossos")
        .join(name)
}

/// `{:process p, :type t, :f f}` lines, for mutex histories.
fn lock_ops(ops: &[(u64, &str, &str)]) -> String {
    ops.iter()
        .map(|(p, t, f)| format!("{{:process {p}, :type :{t}, :f :{f}}}\n"))
        .collect()
}

// ----- mutex -----

/// Knossos: valid. Acquire, release, acquire, release in turn: `Mutex.step` goes free → held
/// → free → held → free.
const TAKE_TURNS: &[(u64, &str, &str)] = &[
    (0, "invoke", "acquire"),
    (0, "ok", "acquire"),
    (0, "invoke", "release"),
    (0, "ok", "release"),
    (1, "invoke", "acquire"),
    (1, "ok", "acquire"),
    (1, "invoke", "release"),
    (1, "ok", "release"),
];

/// Knossos: invalid, "already held". Process 1 acquires after process 0 acquired and before
/// anyone released: the second acquire finds the lock held in every order.
const BOTH_HOLD: &[(u64, &str, &str)] = &[
    (0, "invoke", "acquire"),
    (0, "ok", "acquire"),
    (1, "invoke", "acquire"),
    (1, "ok", "acquire"),
    (0, "invoke", "release"),
    (0, "ok", "release"),
];

#[test]
fn a_lock_taken_in_turns_is_valid_and_one_held_twice_is_not() {
    let h = history(&lock_ops(TAKE_TURNS));
    assert_eq!(default_model(&h), ModelKind::Mutex);
    assert_eq!(verdict(&lock_ops(TAKE_TURNS)), Verdict::Valid);
    let r = report_with(&lock_ops(BOTH_HOLD), &CheckOptions::default());
    assert_eq!(r.verdict, Verdict::Invalid);
    let cx = r.keys[""].counterexample.as_ref().unwrap();
    assert_eq!((cx.op.op.as_str(), cx.op.process), ("acquire", 1));
    assert_eq!(cx.states, ["held"]);
    assert_eq!(cx.prefix[0].op, "acquire");
}

/// Knossos: valid. Two acquires overlap the release between them, so the order acquire (p0),
/// release (p0), acquire (p1) fits; the sibling, where p1's acquire completes before p0's
/// release is invoked, is [`BOTH_HOLD`].
#[test]
fn an_acquire_concurrent_with_the_release_may_follow_it() {
    let ops = [
        (0, "invoke", "acquire"),
        (0, "ok", "acquire"),
        (1, "invoke", "acquire"),
        (0, "invoke", "release"),
        (1, "ok", "acquire"),
        (0, "ok", "release"),
    ];
    assert_eq!(verdict(&lock_ops(&ops)), Verdict::Valid);
    assert_eq!(verdict(&lock_ops(BOTH_HOLD)), Verdict::Invalid);
}

/// Knossos: a release of a free lock is inconsistent ("not held"), so an ok release first is
/// invalid. A *failed* one is dropped (`history/complete` removes `:fail` ops), as etcd's
/// `:error :not-held` failures in Knossos's data are: valid.
#[test]
fn a_release_of_a_free_lock_is_invalid_unless_it_failed() {
    let ok = [(0, "invoke", "release"), (0, "ok", "release")];
    let r = report_with(&lock_ops(&ok), &CheckOptions::default());
    assert_eq!(r.verdict, Verdict::Invalid);
    assert_eq!(r.keys[""].counterexample.as_ref().unwrap().states, ["free"]);
    let failed = [(0, "invoke", "release"), (0, "fail", "release")];
    assert_eq!(verdict(&lock_ops(&failed)), Verdict::Valid);
}

/// An info acquire (the client timed out) may or may not have taken effect. Knossos: valid if
/// p1 then acquires (the info one never happened), and valid if p1 releases (it did); but two
/// releases in a row need two acquires, and there is only the one, so invalid.
#[test]
fn an_info_acquire_may_or_may_not_have_taken_effect() {
    let then = |rest: &[(u64, &str, &str)]| {
        let mut ops = vec![(0, "invoke", "acquire"), (0, "info", "acquire")];
        ops.extend_from_slice(rest);
        lock_ops(&ops)
    };
    let acquire = [(1, "invoke", "acquire"), (1, "ok", "acquire")];
    assert_eq!(verdict(&then(&acquire)), Verdict::Valid);
    let release = [(1, "invoke", "release"), (1, "ok", "release")];
    assert_eq!(verdict(&then(&release)), Verdict::Valid);
    let twice = [
        (1, "invoke", "release"),
        (1, "ok", "release"),
        (2, "invoke", "release"),
        (2, "ok", "release"),
    ];
    assert_eq!(verdict(&then(&twice)), Verdict::Invalid);
}

/// `jepsen.independent` mutex tests (`[key nil]` values) are one lock per key: acquiring locks
/// 1 and 2 once each is valid; acquiring lock 1 twice is not.
#[test]
fn independent_keys_are_separate_locks() {
    let edn = |second: u32| {
        format!(
            "{{:process 0, :type :invoke, :f :acquire, :value [1 nil]}}
{{:process 0, :type :ok, :f :acquire, :value [1 nil]}}
{{:process 1, :type :invoke, :f :acquire, :value [{second} nil]}}
{{:process 1, :type :ok, :f :acquire, :value [{second} nil]}}
"
        )
    };
    let r = report_with(&edn(2), &CheckOptions::default());
    assert_eq!((r.verdict, r.keys.len()), (Verdict::Valid, 2));
    let r = report_with(&edn(1), &CheckOptions::default());
    assert_eq!((r.verdict, r.keys.len()), (Verdict::Invalid, 1));
}

/// Knossos's etcd lock history is under `data/mutex/bad/`: invalid. So is riptide's verdict,
/// with the counterexample's op an acquire that finds the lock held.
#[test]
fn knossos_etcd_mutex_history_is_invalid() {
    let h = load_history(&data("mutex-bad-etcd.edn"), Format::Auto).unwrap();
    assert_eq!(default_model(&h), ModelKind::Mutex);
    assert_eq!(
        (h.stats.ok, h.stats.fail, h.stats.unfinished),
        (261, 299, 3)
    );
    let r = check(&h, ModelKind::Mutex, &CheckOptions::default()).unwrap();
    assert_eq!(r.verdict, Verdict::Invalid, "{}", r.render());
    let cx = r.keys[""].counterexample.as_ref().unwrap();
    assert_eq!(
        (cx.op.op.as_str(), cx.states.as_slice()),
        ("acquire", &["held".to_string()][..])
    );
}

// ----- multi-register -----

/// `{:process p, :type t, :f :txn, :value v}` lines.
fn txns(ops: &[(u64, &str, &str)]) -> String {
    ops.iter()
        .map(|(p, t, v)| format!("{{:process {p}, :type :{t}, :f :txn, :value {v}}}\n"))
        .collect()
}

/// A txn writes both registers, then another reads them: `writes` `[[:write :x 1] [:write :y
/// 2]]`, the read returns `read`.
fn write_then_read(read: &str) -> String {
    txns(&[
        (0, "invoke", "[[:write :x 1] [:write :y 2]]"),
        (0, "ok", "[[:write :x 1] [:write :y 2]]"),
        (1, "invoke", "[[:read :x nil] [:read :y nil]]"),
        (1, "ok", read),
    ])
}

/// Knossos: valid when the read sees both writes; invalid when it sees `y = 3`, which nobody
/// wrote (`MultiRegister.step`: "2≠3"). The counterexample shows the txn and the state.
#[test]
fn a_txn_sees_the_writes_of_the_txns_before_it() {
    let h = history(&write_then_read("[[:read :x 1] [:read :y 2]]"));
    assert_eq!(default_model(&h), ModelKind::MultiRegister);
    assert_eq!(
        verdict(&write_then_read("[[:read :x 1] [:read :y 2]]")),
        Verdict::Valid
    );
    let r = report_with(
        &write_then_read("[[:read :x 1] [:read :y 3]]"),
        &CheckOptions::default(),
    );
    assert_eq!(r.verdict, Verdict::Invalid);
    let cx = r.keys[""].counterexample.as_ref().unwrap();
    assert_eq!(cx.op.op, "txn [r x 1, r y 3]");
    assert_eq!(cx.prefix[0].op, "txn [w x 1, w y 2]");
    assert_eq!(cx.states, ["{x=1, y=2}"]);
    assert_eq!(
        cx.op.value,
        serde_json::json!([["read", "x", 1], ["read", "y", 3]])
    );
}

/// Knossos: "nil reads are always legal", so a read of `y = nil` after `y = 2` is valid with
/// `--nil-read any` (the default for EDN); with `absent` nil is a value, and the read is
/// invalid. A txn whose reads are all nil is left out, as a nil read is.
#[test]
fn a_nil_read_in_a_txn_follows_nil_read() {
    let edn = write_then_read("[[:read :x 1] [:read :y nil]]");
    assert_eq!(verdict(&edn), Verdict::Valid);
    let absent = CheckOptions {
        nil_read: Some(NilRead::Absent),
        ..CheckOptions::default()
    };
    assert_eq!(report_with(&edn, &absent).verdict, Verdict::Invalid);
    let r = report_with(
        &write_then_read("[[:read :x nil] [:read :y nil]]"),
        &CheckOptions::default(),
    );
    assert_eq!((r.verdict, r.unconstrained_reads), (Verdict::Valid, 1));
}

/// The point of checking txns as one unit. T1 writes `x = 1` and `y = 1` atomically; a reader
/// concurrent with it sees `x = 1, y = 0`. Register by register that is fine (`x`: T1 then the
/// read; `y`: the read then T1), but no single order has it: Knossos, invalid. The sibling
/// writes `x` and `y` in two separate txns, and the same read fits between them: valid.
#[test]
fn a_txn_is_atomic_across_registers() {
    let read = (1, "ok", "[[:read :x 1] [:read :y 0]]");
    let atomic = txns(&[
        (0, "invoke", "[[:write :x 1] [:write :y 1]]"),
        (1, "invoke", "[[:read :x nil] [:read :y nil]]"),
        (0, "ok", "[[:write :x 1] [:write :y 1]]"),
        read,
    ]);
    assert_eq!(
        report_with(&atomic, &initial_zero()).verdict,
        Verdict::Invalid
    );
    let separate = txns(&[
        (0, "invoke", "[[:write :x 1]]"),
        (2, "invoke", "[[:write :y 1]]"),
        (1, "invoke", "[[:read :x nil] [:read :y nil]]"),
        (0, "ok", "[[:write :x 1]]"),
        (2, "ok", "[[:write :y 1]]"),
        read,
    ]);
    assert_eq!(
        report_with(&separate, &initial_zero()).verdict,
        Verdict::Valid
    );
}

/// Knossos reduces a txn's micro-ops in order, so a read sees its own txn's earlier writes:
/// `[[:write :x 5] [:read :x 5]]` is valid from any state, `[[:read :x 5] [:write :x 5]]` from
/// the initial nil is not (the read comes first).
#[test]
fn a_read_sees_its_own_txns_earlier_writes() {
    let once = |v: &str| txns(&[(0, "invoke", v), (0, "ok", v)]);
    assert_eq!(
        verdict(&once("[[:write :x 5] [:read :x 5]]")),
        Verdict::Valid
    );
    assert_eq!(
        verdict(&once("[[:read :x 5] [:write :x 5]]")),
        Verdict::Invalid
    );
}

/// An info txn may have taken effect: a later read of what it wrote is valid. A failed one did
/// not (dropped), so the same read is invalid.
#[test]
fn an_info_txn_may_have_written_and_a_failed_one_did_not() {
    let edn = |end: &str| {
        txns(&[
            (0, "invoke", "[[:write :x 1]]"),
            (0, end, "[[:write :x 1]]"),
            (1, "invoke", "[[:read :x nil]]"),
            (1, "ok", "[[:read :x 1]]"),
        ])
    };
    assert_eq!(verdict(&edn("info")), Verdict::Valid);
    assert_eq!(verdict(&edn("fail")), Verdict::Invalid);
}

/// `jepsen.independent` txns, `[key txn]`, make one multi-register per key: a read on key 2
/// does not see key 1's write.
#[test]
fn independent_keys_are_separate_multi_registers() {
    let edn = |read_key: u32| {
        txns(&[
            (0, "invoke", "[1 [[:write :x 1]]]"),
            (0, "ok", "[1 [[:write :x 1]]]"),
            (1, "invoke", &format!("[{read_key} [[:read :x nil]]]")),
            (1, "ok", &format!("[{read_key} [[:read :x 1]]]")),
        ])
    };
    assert_eq!(verdict(&edn(1)), Verdict::Valid);
    let r = report_with(&edn(2), &CheckOptions::default());
    assert_eq!((r.verdict, r.keys.len()), (Verdict::Invalid, 2));
}

/// Knossos's multi-register history (`data/multi-register/good/`) is valid from `{:x 0 :y 0}`,
/// and `linear_test.clj` says the search ends in `{:x 2 :y 2}` or `{:x 2 :y 0}`. So a read
/// appended after the history's end may see those two states and nothing else. From nil (not
/// Knossos's start) the early reads of 0 cannot be explained: invalid.
#[test]
fn knossos_multi_register_history_is_valid_and_ends_where_knossos_says() {
    let path = data("multi-register-good.edn");
    let h = load_history(&path, Format::Auto).unwrap();
    assert_eq!(default_model(&h), ModelKind::MultiRegister);
    let r = check(&h, ModelKind::MultiRegister, &initial_zero()).unwrap();
    assert_eq!(r.verdict, Verdict::Valid, "{}", r.render());
    let from_nil = check(&h, ModelKind::MultiRegister, &CheckOptions::default()).unwrap();
    assert_eq!(from_nil.verdict, Verdict::Invalid);
    let text = std::fs::read_to_string(&path).unwrap();
    let body = text.trim_end().strip_suffix(']').unwrap();
    let with_final_read = |x: i64, y: i64| {
        let edn = format!(
            "{body}\n{{:type :invoke, :f :txn, :value [[:read :x nil] [:read :y nil]], :process 100}}\n\
             {{:type :ok, :f :txn, :value [[:read :x {x}] [:read :y {y}]], :process 100}}]\n"
        );
        report_with(&edn, &initial_zero()).verdict
    };
    assert_eq!(with_final_read(2, 2), Verdict::Valid);
    assert_eq!(with_final_read(2, 0), Verdict::Valid);
    for (x, y) in [(2, 1), (0, 0), (1, 2), (0, 2)] {
        assert_eq!(with_final_read(x, y), Verdict::Invalid, "x={x} y={y}");
    }
}

// ----- errors -----

/// An op the model lacks is refused, naming the op, its line and the model to use; so is a
/// micro-op that is neither a read nor a write (Elle's `:append`), and a txn in riptide's
/// JSONL, whose values are not transactions.
#[test]
fn ops_a_model_lacks_are_errors_naming_the_line() {
    let h = history(&lock_ops(TAKE_TURNS));
    let e = check(&h, ModelKind::CasRegister, &CheckOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("h.edn:1: model cas-register cannot check `acquire`"),
        "{msg}"
    );
    assert!(msg.ends_with("use --model mutex"), "{msg}");
    let h = history(&write_then_read("[[:read :x 1] [:read :y 2]]"));
    let e = check(&h, ModelKind::Mutex, &CheckOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("`txn` operations: use --model multi-register"),
        "{e}"
    );
    let reads = history("{:process 0, :type :invoke, :f :read, :value nil}\n");
    let e = check(&reads, ModelKind::MultiRegister, &CheckOptions::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("`read` operations: use --model cas-register"),
        "{e}"
    );

    let append = "{:process 0, :type :invoke, :f :txn, :value [[:read :x nil]]}\n\
                  {:process 0, :type :ok, :f :txn, :value [[:append :x 1]]}\n";
    let e = parse_history(Path::new("h.edn"), append, Format::Auto).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("h.edn:2: expected a transaction"), "{msg}");
    assert!(msg.contains("`[:append :x 1]` is `append`"), "{msg}");
    let jsonl = r#"{"process":0,"type":"invoke","f":"txn","value":[["read","x",null]]}"#;
    let e = parse_history(Path::new("h.jsonl"), jsonl, Format::Auto).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("h.jsonl:1: expected a transaction"),
        "{e}"
    );
    let lock = "{:process 0, :type :invoke, :f :lock, :value nil}\n";
    let e = parse_history(Path::new("h.edn"), lock, Format::Auto).unwrap_err();
    assert!(e.to_string().contains("unknown operation `lock`"), "{e}");
}
