//! Property tests of the `mutex` and `multi-register` models against an independent oracle.
//!
//! Each case simulates a small random concurrent execution against a lock or a set of
//! registers: ops take effect at some moment between invoke and completion (or, for `info`
//! ops, any time after the invoke, or never), definite refusals complete `fail`. A *buggy*
//! server sometimes grants a lock that is held or lets a read return a wrong value, so that
//! about half the histories are not linearizable. The history is written as Knossos EDN and
//! checked by riptide; the oracle here decides the same history from the simulator's own record
//! of the ops, with its own sequential specification (a bool, a vector of `Option<i64>`) and an
//! exhaustive search over every order of the ok ops and every subset of the info ops that
//! respects real time. It shares no code with the checker: not the parser, not the models, not
//! the search. The two must agree on every case.
//!
//! Randomness is seeded: proptest runs with a fixed seed, and each case derives its history from
//! a proptest-chosen `u64` through ChaCha8.

use std::fmt::Write as _;
use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use riptide_checker::{check, parse_history, CheckOptions, Format, ModelKind, NilRead, Value};
use riptide_checker::{Verdict, Verdict::Invalid, Verdict::Valid};

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x10c_2026),
        failure_persistence: None,
        ..Config::default()
    }
}

/// What an op does, in the oracle's terms.
#[derive(Clone, Debug, PartialEq)]
enum Body {
    Acquire,
    Release,
    /// `(is a write, register, value)`; a read's value is what it returned (`None`: nil).
    Txn(Vec<(bool, usize, Option<i64>)>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum End {
    Ok,
    Info,
    Fail,
}

/// One op as the simulator recorded it.
#[derive(Clone, Debug)]
struct SimOp {
    body: Body,
    invoke: usize,
    /// Event index of the completion; `usize::MAX` for info (never returned) and fail.
    complete: usize,
    end: End,
}

#[derive(Clone, Copy, Debug)]
struct Shape {
    mutex: bool,
    ops: usize,
    procs: usize,
    /// Percent chance that an op times out (info).
    info_percent: u32,
    /// Percent chance, per step, that the buggy server misbehaves once (at most once).
    bug_percent: u32,
    /// A quarter of ok reads say nil whatever they read (a client that could not parse).
    nil_reads: bool,
    /// Registers start at 0 (`--initial 0`), else nil.
    initial_zero: bool,
}

const REGISTERS: [&str; 2] = ["x", "y"];

/// The simulated server: a lock, or registers.
struct Server {
    held: bool,
    regs: Vec<Option<i64>>,
    bug_left: bool,
}

impl Server {
    /// Runs `body` now, if the server agrees; returns the body with read results filled in.
    fn apply(&mut self, body: &Body, rng: &mut ChaCha8Rng, bug_percent: u32) -> Option<Body> {
        let bug = self.bug_left && rng.gen_range(0..100) < bug_percent;
        let wanted = match body {
            Body::Acquire => Some(false),
            Body::Release => Some(true),
            Body::Txn(_) => None,
        };
        if let Some(held) = wanted {
            // An acquire needs the lock free, a release needs it held; the bug ignores that.
            if self.held != held && !bug {
                return None;
            }
            self.bug_left &= self.held == held;
            self.held = !held;
            return Some(body.clone());
        }
        match body {
            Body::Acquire | Body::Release => unreachable!(),
            Body::Txn(micros) => {
                let mut done = Vec::new();
                for &(write, r, v) in micros {
                    if write {
                        self.regs[r] = v;
                        done.push((true, r, v));
                    } else if bug {
                        self.bug_left = false;
                        done.push((false, r, Some(self.regs[r].unwrap_or(0) + 7)));
                    } else {
                        done.push((false, r, self.regs[r]));
                    }
                }
                Some(Body::Txn(done))
            }
        }
    }
}

fn random_body(rng: &mut ChaCha8Rng, mutex: bool) -> Body {
    if mutex {
        return if rng.gen_bool(0.5) {
            Body::Acquire
        } else {
            Body::Release
        };
    }
    let n = rng.gen_range(1..=3);
    Body::Txn(
        (0..n)
            .map(|_| {
                let r = rng.gen_range(0..REGISTERS.len());
                if rng.gen_bool(0.5) {
                    (true, r, Some(rng.gen_range(1..=2)))
                } else {
                    (false, r, None)
                }
            })
            .collect(),
    )
}

fn edn_value(body: &Body) -> String {
    let Body::Txn(micros) = body else {
        return "nil".into();
    };
    let show = |v: Option<i64>| v.map_or("nil".to_string(), |v| v.to_string());
    let inner: Vec<String> = micros
        .iter()
        .map(|&(w, r, v)| {
            let f = if w { "write" } else { "read" };
            format!("[:{f} :{} {}]", REGISTERS[r], show(v))
        })
        .collect();
    format!("[{}]", inner.join(" "))
}

enum Slot {
    Idle(u64),
    Pending {
        pid: u64,
        op: usize,
        applied: Option<Body>,
        refused: bool,
    },
}

/// A recorded execution: the EDN text and the ops as the simulator saw them.
fn simulate(seed: u64, shape: Shape) -> (String, Vec<SimOp>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let initial = shape.initial_zero.then_some(0);
    let mut server = Server {
        held: false,
        regs: vec![initial; REGISTERS.len()],
        bug_left: true,
    };
    let mut slots: Vec<Slot> = (0..shape.procs as u64).map(Slot::Idle).collect();
    let mut next_pid = shape.procs as u64;
    let mut ops: Vec<SimOp> = Vec::new();
    let mut lingering: Vec<Body> = Vec::new();
    let mut out = String::from("[");
    let mut events = 0;
    let mut emit = |out: &mut String, pid: u64, ty: &str, body: &Body| {
        let f = match body {
            Body::Acquire => "acquire",
            Body::Release => "release",
            Body::Txn(_) => "txn",
        };
        let v = edn_value(body);
        let _ = writeln!(out, "{{:process {pid}, :type :{ty}, :f :{f}, :value {v}}}");
        events += 1;
        events - 1
    };
    loop {
        let idle: Vec<usize> = (0..slots.len())
            .filter(|&i| matches!(slots[i], Slot::Idle(_)))
            .collect();
        if ops.len() == shape.ops && idle.len() == slots.len() {
            break;
        }
        let roll = rng.gen_range(0..100);
        if !lingering.is_empty() && roll < 5 {
            // A timed-out op takes effect late; nobody sees its result.
            let body = lingering.swap_remove(rng.gen_range(0..lingering.len()));
            server.apply(&body, &mut rng, 0);
            continue;
        }
        if roll < 40 && ops.len() < shape.ops && !idle.is_empty() {
            let i = idle[rng.gen_range(0..idle.len())];
            let Slot::Idle(pid) = slots[i] else {
                unreachable!()
            };
            let body = random_body(&mut rng, shape.mutex);
            let invoke = emit(&mut out, pid, "invoke", &body);
            ops.push(SimOp {
                body,
                invoke,
                complete: usize::MAX,
                end: End::Info,
            });
            slots[i] = Slot::Pending {
                pid,
                op: ops.len() - 1,
                applied: None,
                refused: false,
            };
            continue;
        }
        let busy: Vec<usize> = (0..slots.len())
            .filter(|&i| matches!(slots[i], Slot::Pending { .. }))
            .collect();
        if busy.is_empty() {
            continue;
        }
        let i = busy[rng.gen_range(0..busy.len())];
        let Slot::Pending {
            pid,
            op,
            applied,
            refused,
        } = &mut slots[i]
        else {
            unreachable!()
        };
        let (pid, op) = (*pid, *op);
        if applied.is_none() && !*refused && rng.gen_bool(0.8) {
            match server.apply(&ops[op].body, &mut rng, shape.bug_percent) {
                Some(done) => *applied = Some(done),
                None => *refused = true,
            }
            continue;
        }
        if rng.gen_range(0..100) < shape.info_percent {
            // Timed out: if it had not taken effect, it may still, later, or never.
            let body = ops[op].body.clone();
            emit(&mut out, pid, "info", &body);
            if applied.is_none() && !*refused && rng.gen_bool(0.5) {
                lingering.push(body);
            }
            slots[i] = Slot::Idle(next_pid);
            next_pid += 1;
            continue;
        }
        match applied.take() {
            Some(mut done) => {
                if let (true, Body::Txn(micros)) = (shape.nil_reads, &mut done) {
                    for m in micros.iter_mut().filter(|m| !m.0) {
                        if rng.gen_bool(0.25) {
                            m.2 = None;
                        }
                    }
                }
                ops[op].complete = emit(&mut out, pid, "ok", &done);
                ops[op].end = End::Ok;
                ops[op].body = done;
            }
            None => {
                // Refused, or a definite failure before it took effect.
                let body = ops[op].body.clone();
                emit(&mut out, pid, "fail", &body);
                ops[op].end = End::Fail;
            }
        }
        slots[i] = Slot::Idle(pid);
    }
    out.push_str("]\n");
    (out, ops)
}

/// The oracle's sequential specification.
#[derive(Clone, Debug, PartialEq)]
enum State {
    Lock(bool),
    Regs(Vec<Option<i64>>),
}

/// The state after `op`, if it can run: Knossos's `Mutex` and `MultiRegister` steps, as the
/// oracle reads them. An info txn's reads are unknown, so they constrain nothing.
fn step(state: &State, op: &SimOp, nil_any: bool) -> Option<State> {
    match (state, &op.body) {
        (State::Lock(false), Body::Acquire) => Some(State::Lock(true)),
        (State::Lock(true), Body::Release) => Some(State::Lock(false)),
        (State::Regs(regs), Body::Txn(micros)) => {
            let mut regs = regs.clone();
            for &(write, r, v) in micros {
                if write {
                    regs[r] = v;
                } else if op.end == End::Info || (v.is_none() && nil_any) {
                    continue;
                } else if regs[r] != v {
                    return None;
                }
            }
            Some(State::Regs(regs))
        }
        _ => None,
    }
}

/// Is there an order of all ok ops and some info ops, each after every op that completed before
/// it was invoked, that the specification accepts? Every order, every subset, no memo.
fn linearizable(state: &State, ops: &[SimOp], used: &mut [bool], nil_any: bool) -> bool {
    if !(0..ops.len()).any(|j| !used[j] && ops[j].end == End::Ok) {
        return true;
    }
    for i in 0..ops.len() {
        let forced_before = (0..ops.len())
            .any(|j| !used[j] && ops[j].end == End::Ok && ops[j].complete < ops[i].invoke);
        if used[i] || forced_before {
            continue;
        }
        if let Some(next) = step(state, &ops[i], nil_any) {
            used[i] = true;
            let found = linearizable(&next, ops, used, nil_any);
            used[i] = false;
            if found {
                return true;
            }
        }
    }
    false
}

fn oracle(ops: &[SimOp], shape: Shape, nil_read: NilRead) -> Verdict {
    let ops: Vec<SimOp> = ops.iter().filter(|o| o.end != End::Fail).cloned().collect();
    let init = if shape.mutex {
        State::Lock(false)
    } else {
        State::Regs(vec![shape.initial_zero.then_some(0); REGISTERS.len()])
    };
    let mut used = vec![false; ops.len()];
    if linearizable(&init, &ops, &mut used, nil_read == NilRead::Any) {
        Valid
    } else {
        Invalid
    }
}

fn riptide(text: &str, shape: Shape, nil_read: NilRead) -> Verdict {
    let h = parse_history(Path::new("generated.edn"), text, Format::Edn).unwrap();
    let opts = CheckOptions {
        nil_read: Some(nil_read),
        initial: shape.initial_zero.then_some(Value::Int(0)),
        ..CheckOptions::default()
    };
    let model = if shape.mutex {
        ModelKind::Mutex
    } else {
        ModelKind::MultiRegister
    };
    check(&h, model, &opts).unwrap().verdict
}

fn shape(mutex: bool, seed: u64, ops: usize, procs: usize, info_percent: u32) -> Shape {
    Shape {
        mutex,
        ops,
        procs,
        info_percent,
        bug_percent: match (mutex, seed % 2) {
            (_, 1) => 0,
            (true, _) => 60,
            (false, _) => 15,
        },
        nil_reads: seed.is_multiple_of(3),
        initial_zero: seed % 4 == 1,
    }
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn the_mutex_model_agrees_with_the_oracle(
        seed in any::<u64>(),
        ops in 1usize..9,
        procs in 1usize..5,
        info_percent in 0u32..40,
    ) {
        let shape = shape(true, seed, ops, procs, info_percent);
        let (text, sim) = simulate(seed, shape);
        prop_assert_eq!(
            riptide(&text, shape, NilRead::Any),
            oracle(&sim, shape, NilRead::Any),
            "{:?}\n{}", shape, text
        );
    }

    #[test]
    fn the_multi_register_model_agrees_with_the_oracle_in_both_nil_read_modes(
        seed in any::<u64>(),
        ops in 1usize..8,
        procs in 1usize..5,
        info_percent in 0u32..40,
    ) {
        let shape = shape(false, seed, ops, procs, info_percent);
        let (text, sim) = simulate(seed, shape);
        for mode in [NilRead::Any, NilRead::Absent] {
            prop_assert_eq!(
                riptide(&text, shape, mode),
                oracle(&sim, shape, mode),
                "{:?} {:?}\n{}", mode, shape, text
            );
        }
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// Without the bug, what the simulator recorded really happened in some order: riptide
    /// must find it, on histories too long for the oracle.
    #[test]
    fn correct_executions_are_valid(
        seed in any::<u64>(),
        mutex in any::<bool>(),
        ops in 1usize..150,
        procs in 1usize..8,
    ) {
        let shape = Shape { bug_percent: 0, nil_reads: false, ..shape(mutex, seed, ops, procs, 8) };
        let (text, _) = simulate(seed, shape);
        prop_assert_eq!(riptide(&text, shape, NilRead::Absent), Valid, "{:?}\n{}", shape, text);
    }
}

/// The oracle is only a good judge if it sees both verdicts, info ops, fails, and (for the
/// registers) histories that only `--nil-read any` accepts.
#[test]
fn the_generated_histories_cover_both_verdicts() {
    for mutex in [true, false] {
        let (mut valid, mut invalid, mut info, mut fail, mut only_any) = (0, 0, 0, 0, 0);
        for seed in 0..600u64 {
            let shape = shape(mutex, seed, 7, 3, 20);
            let (_, sim) = simulate(seed, shape);
            info += usize::from(sim.iter().any(|o| o.end == End::Info));
            fail += usize::from(sim.iter().any(|o| o.end == End::Fail));
            match (
                oracle(&sim, shape, NilRead::Any),
                oracle(&sim, shape, NilRead::Absent),
            ) {
                (Valid, Invalid) => only_any += 1,
                (Valid, _) => valid += 1,
                (Invalid, _) => invalid += 1,
                (Verdict::Unknown, _) => unreachable!(),
            }
        }
        let counts = (valid, invalid, info, fail, only_any);
        assert!(valid >= 150 && invalid >= 100, "mutex {mutex}: {counts:?}");
        assert!(info >= 150 && fail >= 100, "mutex {mutex}: {counts:?}");
        assert!(mutex || only_any >= 30, "{counts:?}");
    }
}
