//! Property tests.
//!
//! 1. A history recorded from a random *sequential* execution, with random overlaps (each op
//!    takes effect at some moment between its invoke and its completion, or, for `info` ops,
//!    any time after the invoke or never), is always linearizable.
//! 2. On small random histories, the search (with all its pruning: dropped info ops, identical
//!    info ops, dominance, the kv lookahead) gives the same verdict as a brute force over every
//!    order of every subset of the info ops.
//!
//! Randomness is seeded: proptest runs with a fixed seed, and each case derives its history from
//! a proptest-chosen `u64` through ChaCha8.

use std::fmt::Write as _;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use riptide_checker::history::{History, Op, OpKind, Outcome};
use riptide_checker::model::cas_register::CasRegister;
use riptide_checker::model::kv::Kv;
use riptide_checker::model::register::Register;
use riptide_checker::model::{Context, Model};
use riptide_checker::{
    check, parse_history, CheckOptions, Format, ModelKind, NilRead, Value, Verdict,
};

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x5eed_2026),
        failure_persistence: None,
        ..Config::default()
    }
}

/// A value as JSON.
fn json(v: &Value) -> String {
    match v {
        Value::Nil => "null".into(),
        Value::Int(i) => i.to_string(),
        Value::Str(s) => format!("{s:?}"),
    }
}

#[derive(Clone, Debug)]
struct SimOp {
    key: usize,
    f: &'static str,
    /// write/append value, or cas `from`.
    a: Value,
    /// cas `to`.
    b: Value,
    /// Result once applied: the value read, or whether a cas matched.
    read: Option<Value>,
    matched: bool,
}

enum Slot {
    Idle,
    Pending { op: SimOp, applied: bool },
}

/// Shapes of generated histories.
#[derive(Clone, Copy, Debug)]
struct Shape {
    kind: ModelKind,
    ops: usize,
    procs: usize,
    keys: usize,
    /// Values from {1, 2, 3} (so identical info ops and reused values occur), else unique.
    small_values: bool,
    /// Percent chance, at each completion, that the client times out (an `info`).
    info_percent: u32,
    /// A quarter of the ok reads report nil whatever they read, as a Jepsen client does when it
    /// cannot parse the reply: fine for Knossos's reading of nil, mostly wrong for riptide's.
    nil_reads: bool,
}

/// Runs a random sequential execution and records what the clients saw, as riptide JSONL.
/// Returns the history and whether an ok read's value was deliberately corrupted.
fn simulate(seed: u64, shape: Shape, corrupt: bool) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut state = vec![Value::Nil; shape.keys];
    let mut slots: Vec<(u64, Slot)> = (0..shape.procs).map(|p| (p as u64, Slot::Idle)).collect();
    let mut next_pid = shape.procs as u64;
    let mut lingering: Vec<SimOp> = Vec::new(); // timed-out ops that may still take effect
    let mut invoked = 0;
    let mut counter = 0i64;
    let mut out = String::new();
    let mut corrupted = !corrupt;
    let mut fresh = |rng: &mut ChaCha8Rng| -> i64 {
        counter += 1;
        if shape.small_values {
            rng.gen_range(1..=3)
        } else {
            counter
        }
    };
    let emit = |out: &mut String, pid: u64, ty: &str, op: &SimOp, value: String| {
        let _ = writeln!(
            out,
            r#"{{"process":{pid},"type":"{ty}","f":"{}","key":"k{}","value":{value}}}"#,
            op.f, op.key
        );
    };
    let apply = |state: &mut Vec<Value>, op: &mut SimOp| {
        let s = &mut state[op.key];
        match op.f {
            "read" => op.read = Some(s.clone()),
            "write" => *s = op.a.clone(),
            "cas" => {
                op.matched = *s == op.a;
                if op.matched {
                    *s = op.b.clone();
                }
            }
            "append" => {
                let mut t = match s {
                    Value::Str(t) => t.clone(),
                    _ => String::new(),
                };
                if let Value::Str(x) = &op.a {
                    t.push_str(x);
                }
                *s = Value::Str(t);
            }
            _ => unreachable!(),
        }
    };
    loop {
        let idle: Vec<usize> = (0..slots.len())
            .filter(|&i| matches!(slots[i].1, Slot::Idle))
            .collect();
        if invoked == shape.ops && idle.len() == slots.len() {
            break;
        }
        let roll = rng.gen_range(0..100);
        if !lingering.is_empty() && roll < 5 {
            // A timed-out op takes effect late (its result is never seen).
            let i = rng.gen_range(0..lingering.len());
            let mut op = lingering.swap_remove(i);
            apply(&mut state, &mut op);
            continue;
        }
        if roll < 40 && invoked < shape.ops && !idle.is_empty() {
            let slot = idle[rng.gen_range(0..idle.len())];
            let key = rng.gen_range(0..shape.keys);
            let cur = state[key].clone();
            let op = match (shape.kind, rng.gen_range(0..4)) {
                (_, 0) => SimOp {
                    key,
                    f: "read",
                    a: Value::Nil,
                    b: Value::Nil,
                    read: None,
                    matched: false,
                },
                (ModelKind::Kv, 1) => {
                    let v = fresh(&mut rng);
                    SimOp {
                        key,
                        f: "append",
                        a: Value::Str(format!("{v},")),
                        b: Value::Nil,
                        read: None,
                        matched: false,
                    }
                }
                (ModelKind::CasRegister | ModelKind::Kv, 2) => {
                    let from = if rng.gen_bool(0.6) {
                        cur
                    } else {
                        Value::Int(fresh(&mut rng))
                    };
                    let from = match (shape.kind, from) {
                        (ModelKind::Kv, Value::Int(i)) => Value::Str(i.to_string()),
                        (_, v) => v,
                    };
                    let to = fresh(&mut rng);
                    let to = if shape.kind == ModelKind::Kv {
                        Value::Str(to.to_string())
                    } else {
                        Value::Int(to)
                    };
                    SimOp {
                        key,
                        f: "cas",
                        a: from,
                        b: to,
                        read: None,
                        matched: false,
                    }
                }
                _ => {
                    let v = fresh(&mut rng);
                    let v = if shape.kind == ModelKind::Kv {
                        Value::Str(v.to_string())
                    } else {
                        Value::Int(v)
                    };
                    SimOp {
                        key,
                        f: "write",
                        a: v,
                        b: Value::Nil,
                        read: None,
                        matched: false,
                    }
                }
            };
            let value = match op.f {
                "read" => "null".to_string(),
                "cas" => format!("[{},{}]", json(&op.a), json(&op.b)),
                _ => json(&op.a),
            };
            emit(&mut out, slots[slot].0, "invoke", &op, value);
            slots[slot].1 = Slot::Pending { op, applied: false };
            invoked += 1;
            continue;
        }
        let busy: Vec<usize> = (0..slots.len())
            .filter(|&i| !matches!(slots[i].1, Slot::Idle))
            .collect();
        if busy.is_empty() {
            continue;
        }
        let slot = busy[rng.gen_range(0..busy.len())];
        let pid = slots[slot].0;
        let Slot::Pending { op, applied } = &mut slots[slot].1 else {
            unreachable!()
        };
        if !*applied {
            if rng.gen_range(0..100) < shape.info_percent {
                // Timed out before taking effect: it may still, later, or never.
                emit(&mut out, pid, "info", op, "null".into());
                if rng.gen_bool(0.5) {
                    lingering.push(op.clone());
                }
                slots[slot] = (next_pid, Slot::Idle);
                next_pid += 1;
            } else if rng.gen_range(0..100) < 5 {
                // A definite failure: it never takes effect.
                let v = if op.f == "cas" {
                    format!("[{},{}]", json(&op.a), json(&op.b))
                } else {
                    "null".into()
                };
                emit(&mut out, pid, "fail", op, v);
                slots[slot].1 = Slot::Idle;
            } else {
                apply(&mut state, op);
                *applied = true;
            }
            continue;
        }
        let mut op = op.clone();
        if rng.gen_range(0..100) < shape.info_percent {
            // Took effect, but the client never heard.
            emit(&mut out, pid, "info", &op, "null".into());
            slots[slot] = (next_pid, Slot::Idle);
            next_pid += 1;
            continue;
        }
        let (ty, value) = match op.f {
            "read" => {
                let mut v = op.read.take().unwrap();
                if shape.nil_reads && rng.gen_bool(0.25) {
                    v = Value::Nil;
                }
                if !corrupted && rng.gen_bool(0.3) {
                    v = match v {
                        Value::Str(s) => Value::Str(format!("{s}?")),
                        _ => Value::Int(77),
                    };
                    corrupted = true;
                }
                ("ok", json(&v))
            }
            "cas" => (
                if op.matched { "ok" } else { "fail" },
                format!("[{},{}]", json(&op.a), json(&op.b)),
            ),
            _ => ("ok", json(&op.a)),
        };
        emit(&mut out, pid, ty, &op, value);
        slots[slot].1 = Slot::Idle;
    }
    out
}

fn load(text: &str) -> History {
    parse_history(Path::new("generated.jsonl"), text, Format::Jsonl).unwrap()
}

fn verdict(h: &History, kind: ModelKind) -> Verdict {
    verdict_with(h, kind, NilRead::Absent)
}

fn verdict_with(h: &History, kind: ModelKind, nil_read: NilRead) -> Verdict {
    let opts = CheckOptions {
        all_keys: true,
        nil_read: Some(nil_read),
        ..CheckOptions::default()
    };
    check(h, kind, &opts).unwrap().verdict
}

/// The oracle's own reading of nil: with [`NilRead::Any`], an ok read of nil is accepted in
/// every state and changes nothing (Knossos's `(or (nil? (:value op)) ...)`), here in the model
/// itself, where the checker instead leaves such reads out before its search.
struct Oracle<M> {
    model: M,
    nil_read: NilRead,
}

impl<M: Model> Model for Oracle<M> {
    type State = M::State;
    fn init(&mut self) -> M::State {
        self.model.init()
    }
    fn step(&mut self, state: M::State, op: &Op) -> Option<M::State> {
        let nil_ok_read = op.f == OpKind::Read && op.outcome == Outcome::Ok && op.value.0 == 0;
        if self.nil_read == NilRead::Any && nil_ok_read {
            return Some(state);
        }
        self.model.step(state, op)
    }
    fn describe_op(&self, op: &Op) -> String {
        self.model.describe_op(op)
    }
    fn describe_state(&self, state: M::State) -> String {
        self.model.describe_state(state)
    }
}

/// Is there an order of the ok ops and some of the info ops that respects real time and that
/// the model accepts? Every order, every subset, no memo, no pruning.
fn brute<M: Model>(model: &mut M, state: M::State, ops: &[Op], used: &mut Vec<bool>) -> bool {
    let ok_left = ops
        .iter()
        .zip(used.iter())
        .any(|(o, u)| !u && o.outcome == Outcome::Ok);
    if !ok_left {
        return true;
    }
    for i in 0..ops.len() {
        if used[i] {
            continue;
        }
        // An unused ok op that completed before this one was invoked must come first.
        let forced_before = (0..ops.len())
            .any(|j| !used[j] && ops[j].outcome == Outcome::Ok && ops[j].complete < ops[i].invoke);
        if forced_before {
            continue;
        }
        if let Some(next) = model.step(state, &ops[i]) {
            used[i] = true;
            let found = brute(model, next, ops, used);
            used[i] = false;
            if found {
                return true;
            }
        }
    }
    false
}

fn brute_force(h: &History, kind: ModelKind) -> Verdict {
    brute_force_with(h, kind, NilRead::Absent)
}

fn brute_force_with(h: &History, kind: ModelKind, nil_read: NilRead) -> Verdict {
    let initial = h.default_initial.clone();
    let ctx = Context::new(&h.values, &initial);
    fn run<M: Model>(model: M, nil_read: NilRead, ops: &[Op]) -> bool {
        let mut m = Oracle { model, nil_read };
        let s = m.init();
        brute(&mut m, s, ops, &mut vec![false; ops.len()])
    }
    let all_valid = h.partition().iter().all(|ops| match kind {
        ModelKind::Register => run(Register::new(ctx, ops), nil_read, ops),
        ModelKind::CasRegister => run(CasRegister::new(ctx, ops), nil_read, ops),
        ModelKind::Kv => run(Kv::new(ctx, ops), nil_read, ops),
        ModelKind::Mutex | ModelKind::MultiRegister => {
            unreachable!("tests/lock_and_txn_properties.rs has their own oracle")
        }
    });
    if all_valid {
        Verdict::Valid
    } else {
        Verdict::Invalid
    }
}

fn kind_strategy() -> impl Strategy<Value = ModelKind> {
    prop_oneof![
        Just(ModelKind::Register),
        Just(ModelKind::CasRegister),
        Just(ModelKind::Kv)
    ]
}

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn recorded_sequential_executions_are_linearizable(
        seed in any::<u64>(),
        kind in kind_strategy(),
        ops in 1usize..120,
        procs in 1usize..8,
        keys in 1usize..4,
        small_values in any::<bool>(),
    ) {
        let shape = Shape { kind, ops, procs, keys, small_values, info_percent: 8, nil_reads: false };
        let text = simulate(seed, shape, false);
        let h = load(&text);
        prop_assert_eq!(verdict(&h, kind), Verdict::Valid, "{:?}\n{}", shape, text);
    }
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn the_search_agrees_with_brute_force_on_small_histories(
        seed in any::<u64>(),
        kind in kind_strategy(),
        ops in 1usize..10,
        procs in 1usize..5,
        small_values in any::<bool>(),
        info_percent in 0u32..40,
        corrupt in any::<bool>(),
    ) {
        let shape = Shape { kind, ops, procs, keys: 1, small_values, info_percent, nil_reads: false };
        let text = simulate(seed, shape, corrupt);
        let h = load(&text);
        prop_assert_eq!(verdict(&h, kind), brute_force(&h, kind), "{:?}\n{}", shape, text);
    }
}

proptest! {
    #![proptest_config(config(1500))]

    /// The same with more clients at once than ops are long, so that most ops overlap: many
    /// writes nobody reads pending together (the register models' dead values, written greedily
    /// in a dead state) and long chains of overlapping reads.
    #[test]
    fn the_search_agrees_with_brute_force_under_high_concurrency(
        seed in any::<u64>(),
        kind in kind_strategy(),
        ops in 6usize..12,
        procs in 5usize..9,
        small_values in any::<bool>(),
        info_percent in 0u32..25,
        corrupt in any::<bool>(),
    ) {
        let shape = Shape { kind, ops, procs, keys: 1, small_values, info_percent, nil_reads: false };
        let text = simulate(seed, shape, corrupt);
        let h = load(&text);
        prop_assert_eq!(verdict(&h, kind), brute_force(&h, kind), "{:?}\n{}", shape, text);
    }
}

proptest! {
    #![proptest_config(config(3000))]

    /// Both meanings of a nil read, on histories where a quarter of the ok reads say nil: the
    /// search (which leaves unconstrained reads out) agrees with the brute force (whose model
    /// accepts them in every state), and recorded executions are valid under Knossos's reading.
    #[test]
    fn the_search_agrees_with_brute_force_in_both_nil_read_modes(
        seed in any::<u64>(),
        kind in kind_strategy(),
        ops in 1usize..10,
        procs in 1usize..5,
        small_values in any::<bool>(),
        info_percent in 0u32..40,
        corrupt in any::<bool>(),
    ) {
        let shape = Shape { kind, ops, procs, keys: 1, small_values, info_percent, nil_reads: true };
        let text = simulate(seed, shape, corrupt);
        let h = load(&text);
        for mode in [NilRead::Any, NilRead::Absent] {
            prop_assert_eq!(
                verdict_with(&h, kind, mode),
                brute_force_with(&h, kind, mode),
                "{:?} {:?}\n{}", mode, shape, text
            );
        }
        if !corrupt {
            prop_assert_eq!(verdict_with(&h, kind, NilRead::Any), Verdict::Valid, "{}", text);
        }
    }
}

/// The two meanings must actually differ on the generated histories, or the test above would
/// not tell them apart: count histories valid under `any` and invalid under `absent`.
#[test]
fn the_nil_read_modes_disagree_on_many_generated_histories() {
    let (mut differ, mut both_invalid) = (0, 0);
    for seed in 0..400u64 {
        let kind = [ModelKind::Register, ModelKind::CasRegister, ModelKind::Kv][seed as usize % 3];
        let shape = Shape {
            kind,
            ops: 7,
            procs: 3,
            keys: 1,
            small_values: seed % 2 == 0,
            info_percent: 20,
            nil_reads: true,
        };
        let h = load(&simulate(seed, shape, seed % 4 == 0));
        match (
            brute_force_with(&h, kind, NilRead::Any),
            brute_force_with(&h, kind, NilRead::Absent),
        ) {
            (Verdict::Valid, Verdict::Invalid) => differ += 1,
            (Verdict::Invalid, Verdict::Invalid) => both_invalid += 1,
            _ => {}
        }
    }
    assert!(differ >= 40, "{differ} histories valid only under `any`");
    assert!(both_invalid >= 20, "{both_invalid} invalid under both");
}

/// The brute force is only a good judge if it sees both verdicts: make sure the generated
/// small histories include plenty of invalid ones, and info ops.
#[test]
fn the_small_histories_cover_both_verdicts_and_info_ops() {
    let (mut valid, mut invalid, mut with_info) = (0, 0, 0);
    for seed in 0..400u64 {
        let kind = [ModelKind::Register, ModelKind::CasRegister, ModelKind::Kv][seed as usize % 3];
        let shape = Shape {
            kind,
            ops: 7,
            procs: 3,
            keys: 1,
            small_values: seed % 2 == 0,
            info_percent: 20,
            nil_reads: false,
        };
        let h = load(&simulate(seed, shape, true));
        match brute_force(&h, kind) {
            Verdict::Valid => valid += 1,
            _ => invalid += 1,
        }
        if h.ops.iter().any(|o| o.outcome == Outcome::Info) {
            with_info += 1;
        }
    }
    assert!(
        valid >= 80 && invalid >= 80,
        "valid {valid}, invalid {invalid}"
    );
    assert!(with_info >= 80, "{with_info} histories with info ops");
}
