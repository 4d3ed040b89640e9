//! `riptide check` as a user runs it: the real binary on the checker's test histories, and the
//! exit codes 0 (linearizable), 1 (not), 2 (unknown), 254 (bad arguments or input).

use std::path::PathBuf;
use std::process::{Command, Output};

fn data(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("checker/tests/data")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn riptide_check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_riptide"))
        .arg("check")
        .args(args)
        .output()
        .expect("run riptide")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_linearizable_history_exits_0() {
    let o = riptide_check(&[&data("register-valid.jsonl")]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("VALID: linearizable"), "{}", stdout(&o));
}

#[test]
fn a_history_that_is_not_linearizable_exits_1_with_a_counterexample() {
    let o = riptide_check(&[&data("register-invalid.jsonl"), "--model", "register"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("> read 1"), "{out}");
    assert!(out.contains("INVALID: not linearizable"), "{out}");
    // The first line is the file's path, as long as it is; the rest fits 80 columns.
    assert!(
        out.lines().skip(1).all(|l| l.chars().count() <= 80),
        "{out}"
    );
}

#[test]
fn a_history_too_hard_for_the_time_limit_exits_2() {
    let o = riptide_check(&[&data("blowup.jsonl"), "--time-limit", "0.2"]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("time limit of 0.2 s reached"), "{out}");
    assert!(
        out.lines().skip(1).all(|l| l.chars().count() <= 80),
        "{out}"
    );
}

#[test]
fn json_output_is_machine_readable() {
    let o = riptide_check(&[&data("cas-invalid.edn"), "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON on stdout");
    assert_eq!(v["verdict"], "invalid");
    assert_eq!(v["model"], "cas-register");
    assert_eq!(v["keys"][""]["counterexample"]["op"]["op"], "cas 2->3");
    assert_eq!(
        v["keys"][""]["counterexample"]["op"]["value"],
        serde_json::json!([2, 3])
    );
}

#[test]
fn an_unreadable_line_exits_254_naming_file_line_and_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    std::fs::write(
        &path,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n{\"process\":0,\"type\":\n",
    )
    .unwrap();
    let o = riptide_check(&[path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(254));
    let err = stderr(&o);
    assert!(err.contains("h.jsonl:2: expected a JSON object"), "{err}");
    assert!(err.contains("fix or remove that line"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn bad_arguments_exit_254_and_help_exits_0() {
    assert_eq!(
        riptide_check(&["/no/such/file.jsonl"]).status.code(),
        Some(254)
    );
    let f = data("register-valid.jsonl");
    assert_eq!(
        riptide_check(&[&f, "--model", "queue"]).status.code(),
        Some(254)
    );
    assert_eq!(
        riptide_check(&[&f, "--time-limit", "soon"]).status.code(),
        Some(254)
    );
    assert_eq!(riptide_check(&[]).status.code(), Some(254));
    // cas ops cannot be checked as a plain register.
    let o = riptide_check(&[&data("cas-invalid.edn"), "--model", "register"]);
    assert_eq!(o.status.code(), Some(254));
    assert!(
        stderr(&o).contains("--model cas-register"),
        "{}",
        stderr(&o)
    );
    let help = riptide_check(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("--time-limit"));
}

/// `--initial -1` is a value, not an unknown flag: the history reads -1 before any write, so it
/// is linearizable from -1 and from nothing else.
#[test]
fn negative_numbers_are_values_of_numeric_flags() {
    let f = data("initial-negative.jsonl");
    let o = riptide_check(&[&f, "--initial", "-1"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("initial value -1"), "{}", stdout(&o));
    assert_eq!(riptide_check(&[&f, "--initial=-1"]).status.code(), Some(0));
    assert_eq!(
        riptide_check(&[&f, "--initial", "-2"]).status.code(),
        Some(1)
    );
    assert_eq!(riptide_check(&[&f]).status.code(), Some(1));
    // A negative time limit is refused for what it is, not as an unexpected argument.
    let o = riptide_check(&[&f, "--time-limit", "-1"]);
    assert_eq!(o.status.code(), Some(254));
    assert!(
        stderr(&o).contains("expected a number of seconds, got `-1`"),
        "{}",
        stderr(&o)
    );
    let o = riptide_check(&[&f, "--threads", "-2"]);
    assert_eq!(o.status.code(), Some(254));
    assert!(
        !stderr(&o).contains("unexpected argument"),
        "{}",
        stderr(&o)
    );
}

/// EDN reads an ok read of nil as Knossos does (any value), `--nil-read absent` as riptide's
/// JSONL does; the report says which applied.
#[test]
fn nil_read_follows_knossos_for_edn_and_the_flag_chooses() {
    let f = data("nil-read.edn");
    let o = riptide_check(&[&f]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("nil reads (--nil-read any): they match any state, as in Knossos (left out of the search: 1)"), "{}", stdout(&o));
    let o = riptide_check(&[&f, "--nil-read", "absent"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("nil reads (--nil-read absent)"),
        "{}",
        stdout(&o)
    );
    let o = riptide_check(&[&f, "--nil-read", "maybe"]);
    assert_eq!(o.status.code(), Some(254));
    let o = riptide_check(&[&f, "--json"]);
    assert!(
        stdout(&o).contains("\"nil_read\": \"any\""),
        "{}",
        stdout(&o)
    );
}

/// Knossos's mutex model: chosen from the ops (or named), exit 0 for a lock held by one client
/// at a time, 1 with a counterexample showing `acquire` and the state `held` for one held twice.
#[test]
fn the_mutex_model_checks_lock_histories() {
    let o = riptide_check(&[&data("mutex-valid.edn"), "--model", "mutex"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("model mutex, initial value free"),
        "{}",
        stdout(&o)
    );
    let o = riptide_check(&[&data("mutex-invalid.edn")]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("model mutex"), "{out}");
    assert!(out.contains("> acquire"), "{out}");
    assert!(out.contains("then the state could be: held"), "{out}");
}

/// Knossos's multi-register model, from 0 as in Knossos's tests: exit 0 for a read that sees a
/// txn whole, 1 for one that sees half of it, with the txns and the state in the output.
#[test]
fn the_multi_register_model_checks_txn_histories() {
    let valid = data("multi-register-valid.edn");
    let o = riptide_check(&[&valid, "--model", "multi-register", "--initial", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let invalid = data("multi-register-invalid.edn");
    let o = riptide_check(&[&invalid, "--initial", "0"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("model multi-register"), "{out}");
    assert!(out.contains("> txn [r x 1, r y 0]"), "{out}");
    assert!(out.contains("then the state could be: {x=1, y=1}"), "{out}");
    let o = riptide_check(&[&invalid, "--initial", "0", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let op = &v["keys"][""]["counterexample"]["op"];
    assert_eq!(op["f"], "txn");
    assert_eq!(
        op["value"],
        serde_json::json!([["read", "x", 1], ["read", "y", 0]])
    );
}

/// An op the named model lacks, or a micro-op no model has, exits 254 naming the file, the
/// line and what to do.
#[test]
fn ops_the_lock_and_txn_models_lack_exit_254_naming_the_line() {
    let o = riptide_check(&[&data("mutex-valid.edn"), "--model", "multi-register"]);
    assert_eq!(o.status.code(), Some(254));
    let err = stderr(&o);
    assert!(
        err.contains("mutex-valid.edn:3: model multi-register cannot check `acquire`"),
        "{err}"
    );
    assert!(err.contains("use --model mutex"), "{err}");
    let o = riptide_check(&[&data("cas-valid.edn"), "--model", "mutex"]);
    assert_eq!(o.status.code(), Some(254));
    assert!(
        stderr(&o).contains("use --model cas-register"),
        "{}",
        stderr(&o)
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("append-txn.edn");
    std::fs::write(
        &bad,
        "{:process 0, :type :invoke, :f :txn, :value [[:read :x nil]]}\n\
         {:process 0, :type :ok, :f :txn, :value [[:append :x 1]]}\n",
    )
    .unwrap();
    let o = riptide_check(&[bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(254));
    let err = stderr(&o);
    assert!(
        err.contains("append-txn.edn:2: expected a transaction"),
        "{err}"
    );
    assert!(
        err.contains("is `append`, but a multi-register has only :read and :write"),
        "{err}"
    );
}
