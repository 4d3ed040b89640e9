//! riptide-checker: does a history of client operations have a linearization?
//!
//! The checker decides whether what clients saw could have come from one atomic copy of the
//! data. The pipeline, one module per step:
//!
//! 1. [`format`](mod@format): read a history file (riptide JSONL, Jepsen EDN, Jepsen logs, Porcupine's kv
//!    data), detecting the format; or take the records of a riptide history that the caller has
//!    already read ([`History::from_records`]).
//! 2. [`history`]: pair invokes with completions; drop `fail`s; keep `info`s as ops that may take
//!    effect at any time after their invoke, or never; split by key.
//! 3. [`model`]: what one copy of the data does (register, cas-register, kv; and Knossos's mutex
//!    and multi-register, whose `txn` ops are in [`txn`]).
//!    [`nil_read`] decides what an ok read of `nil` means (Knossos's "any state" for EDN and
//!    Jepsen logs, "the key is absent" for riptide's JSONL); reads that constrain nothing are
//!    left out before the search.
//! 4. [`search`] with [`memo`]: Wing & Gong's search with Lowe's memoisation, per key, keys in
//!    parallel (largest first, one worker per core), under a time limit and a memory budget.
//! 5. [`report`]: valid / invalid / unknown per key and overall, with a readable counterexample.
//!
//! ```no_run
//! use riptide_checker::{check, load_history, CheckOptions, Format};
//! let history = load_history("history.jsonl".as_ref(), Format::Auto)?;
//! let model = riptide_checker::default_model(&history);
//! let report = check(&history, model, &CheckOptions::default())?;
//! println!("{}", report.render());
//! # Ok::<(), riptide_checker::Error>(())
//! ```

pub mod bench;
pub mod error;
pub mod format;
mod fx;
pub mod history;
pub mod memo;
pub mod model;
pub mod nil_read;
mod op_kind;
pub mod report;
pub mod search;
pub mod txn;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use error::{Error, Result};
pub use format::{load_history, load_history_on, parse_history, Format};
pub use history::{History, KeyIndex, Op, OpKind, Outcome, Value};
pub use model::{Model, ModelKind};
pub use nil_read::NilRead;
pub use report::{CheckReport, Counterexample, KeyCounts, KeyReport, OpRef, Verdict};

use memo::Budget;
use model::{cas_register::CasRegister, kv::Kv, register::Register, Context};
use model::{multi_register::MultiRegister, mutex::Mutex};
use search::{GaveUp, Limits, STOP_INVALID};

/// How to check.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckOptions {
    /// After this, keys not decided are `unknown` (the others keep their verdicts).
    pub time_limit: Option<Duration>,
    /// Bytes all keys' memo caches may hold together; a key that needs more is `unknown`.
    pub memory_budget_bytes: usize,
    /// The value of every key before any write; `None` means the format's default (nil, or
    /// `""` for Porcupine's kv data).
    pub initial: Option<Value>,
    /// Worker threads for checking keys in parallel; `None` means all cores.
    pub threads: Option<usize>,
    /// Keep checking the other keys once one is invalid. By default the check stops there, as
    /// Porcupine does: one invalid key decides the history, and the keys left are `unknown`.
    pub all_keys: bool,
    /// What an ok read of `nil` means ([`NilRead`]); `None` means the format's default
    /// ([`NilRead::default_for`]: Knossos's "any state" for EDN and Jepsen logs, "absent" for
    /// riptide's JSONL and Porcupine's kv data).
    pub nil_read: Option<NilRead>,
    /// When the clock of `time_limit` (and of the report's elapsed time) started; `None`:
    /// when [`check`] starts. `riptide check` starts it before reading the file, so that the
    /// time limit covers parsing too.
    pub started: Option<Instant>,
}

/// The default memory budget: 1 GiB, a quarter of a small CI machine, far above what any
/// decidable history in the test set needs (the largest uses a few MiB).
pub const DEFAULT_MEMORY_BUDGET: usize = 1 << 30;

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            time_limit: None,
            memory_budget_bytes: DEFAULT_MEMORY_BUDGET,
            initial: None,
            threads: None,
            all_keys: false,
            nil_read: None,
            started: None,
        }
    }
}

/// The model a history is checked with when none is named: multi-register for a history with
/// txns, mutex for one with acquires or releases, kv for Porcupine's kv data or any history with
/// appends, cas-register otherwise (a register history is a cas-register history without cas).
/// A history that mixes these is refused by [`check`], naming the first op the model lacks.
pub fn default_model(history: &History) -> ModelKind {
    if history.uses(OpKind::Txn) {
        ModelKind::MultiRegister
    } else if history.uses(OpKind::Acquire) || history.uses(OpKind::Release) {
        ModelKind::Mutex
    } else if history.format == Format::PorcupineKv {
        ModelKind::Kv
    } else {
        ModelKind::auto(history.uses(OpKind::Append))
    }
}

/// Checks `history` against `model`, key by key.
///
/// Fails only if the model cannot interpret an op (e.g. `cas` with `register`); a history that
/// is not linearizable is a report with verdict [`Verdict::Invalid`].
pub fn check(history: &History, model: ModelKind, opts: &CheckOptions) -> Result<CheckReport> {
    if let Some(op) = history.ops.iter().find(|op| !model.supports(op.f)) {
        return Err(unsupported(history, model, op));
    }
    let start = opts.started.unwrap_or_else(Instant::now);
    let initial = opts
        .initial
        .clone()
        .unwrap_or_else(|| history.default_initial.clone());
    let ctx = Context::new(&history.values, &initial);
    // A time limit already spent (on parsing) leaves every key unknown.
    let spent = opts.time_limit.is_some_and(|t| start.elapsed() >= t);
    let stop = AtomicU8::new(if spent { search::STOP_TIME } else { 0 });
    let budget = Budget::new(opts.memory_budget_bytes);
    let limits = Limits {
        deadline: opts.time_limit.map(|t| start + t),
        stop: &stop,
        budget: &budget,
    };
    let nil_read = opts
        .nil_read
        .unwrap_or_else(|| NilRead::default_for(history.format));
    let index = history.key_index();
    let searched = |op: &Op| {
        nil_read != NilRead::Any
            || !(nil_read.unconstrained(op) || nil_read.unconstrained_txn(op, &history.txns))
    };
    let sizes = key_sizes(history, &index, &searched);
    let unconstrained_reads = history.ops.len() - sizes.iter().sum::<usize>();
    // The history itself is held through the whole check: it counts against the budget too.
    let mut held = memo::Reservation::new(&budget);
    let fits = held.resize(history.heap_bytes() + index.heap_bytes());
    let check_one = |k: usize| {
        let stopped = limits.stop.load(Ordering::Relaxed);
        let report = if !fits {
            unknown_key(sizes[k], GaveUp::Memory, opts)
        } else if stopped != 0 {
            unknown_key(sizes[k], GaveUp::from_stop(stopped), opts)
        } else {
            // This key's ops, copied out for its search and freed after it.
            let ops: Vec<Op> = (index.of(k).iter())
                .map(|&i| history.ops[i as usize])
                .filter(|op| searched(op))
                .collect();
            check_model(model, ctx, &ops, history, nil_read, &limits, opts)
        };
        if report.verdict == Verdict::Invalid && !opts.all_keys {
            let _ =
                limits
                    .stop
                    .compare_exchange(0, STOP_INVALID, Ordering::Relaxed, Ordering::Relaxed);
        }
        report
    };
    let results = largest_first(&sizes, opts.threads, check_one);
    drop(held);
    let mut report = CheckReport {
        verdict: Verdict::Valid,
        file: history.path.clone(),
        format: history.format,
        model,
        // A lock starts free whatever --initial says.
        initial: match model {
            ModelKind::Mutex => "free".to_string(),
            _ => initial.to_string(),
        },
        nil_read,
        unconstrained_reads,
        elapsed_secs: 0.0,
        history: history.stats.clone(),
        key_counts: KeyCounts::default(),
        keys: std::collections::BTreeMap::new(),
    };
    add_keys(&mut report, history, results);
    report.elapsed_secs = start.elapsed().as_secs_f64();
    Ok(report)
}

/// How many of each key's ops `searched` keeps.
fn key_sizes(history: &History, index: &KeyIndex, searched: &impl Fn(&Op) -> bool) -> Vec<usize> {
    (0..history.keys.len())
        .map(|k| {
            let ops = index.of(k).iter().map(|&i| &history.ops[i as usize]);
            ops.filter(|op| searched(op)).count()
        })
        .collect()
}

/// Puts each key's report into `report`, counts them and decides the verdict.
fn add_keys(report: &mut CheckReport, history: &History, results: Vec<(usize, KeyReport)>) {
    for (k, r) in results {
        match r.verdict {
            Verdict::Valid => report.key_counts.valid += 1,
            Verdict::Invalid => report.key_counts.invalid += 1,
            Verdict::Unknown => report.key_counts.unknown += 1,
        }
        report.keys.insert(history.keys[k].clone(), r);
    }
    report.verdict = report.key_counts.verdict();
}

/// Checks one key's `ops` with `model`.
fn check_model(
    model: ModelKind,
    ctx: Context<'_>,
    ops: &[Op],
    history: &History,
    nil_read: NilRead,
    limits: &Limits<'_>,
    opts: &CheckOptions,
) -> KeyReport {
    match model {
        ModelKind::Register => check_key(Register::new(ctx, ops), ops, history, limits, opts),
        ModelKind::CasRegister => check_key(CasRegister::new(ctx, ops), ops, history, limits, opts),
        ModelKind::Kv => check_key(Kv::new(ctx, ops), ops, history, limits, opts),
        ModelKind::Mutex => check_key(Mutex::new(), ops, history, limits, opts),
        ModelKind::MultiRegister => {
            let model = MultiRegister::new(ctx, &history.txns, nil_read, ops);
            check_key(model, ops, history, limits, opts)
        }
    }
}

/// The error for an op `model` cannot interpret, with the model to use instead.
fn unsupported(history: &History, model: ModelKind, op: &Op) -> Error {
    Error::Unsupported {
        path: history.path.clone(),
        line: history.line(op.invoke) as usize,
        model: model.name(),
        f: op.f.name(),
        key: match history.keys[op.key as usize].as_str() {
            "" => String::new(),
            k => format!(" on key {k:?}"),
        },
        hint: format!("use --model {}", ModelKind::for_op(op.f)),
    }
}

/// The cores this process may use, asked of the OS once. `available_parallelism` reads the
/// cgroup files on every call (three opens and several reads on Linux): about 25 µs, which was a
/// tenth of the time of a small history when it was asked per file.
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Runs `check_one` on every key, largest keys first, so that the longest search starts early
/// and a core is not left alone with it at the end; on `threads` workers (all cores by default)
/// taking keys from one shared queue in that order. Returns each key with its report.
fn largest_first(
    sizes: &[usize],
    threads: Option<usize>,
    check_one: impl Fn(usize) -> KeyReport + Sync,
) -> Vec<(usize, KeyReport)> {
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by_key(|&k| std::cmp::Reverse(sizes[k]));
    let threads = threads.unwrap_or_else(cores).clamp(1, order.len().max(1));
    if threads == 1 {
        return order.into_iter().map(|k| (k, check_one(k))).collect();
    }
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut mine = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&k) = order.get(i) else {
                return mine;
            };
            mine.push((k, check_one(k)));
        }
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a checker thread panicked"))
            .collect()
    })
}

fn reason(why: GaveUp, opts: &CheckOptions) -> String {
    match why {
        GaveUp::TimeLimit => format!(
            "time limit of {} s reached",
            opts.time_limit.map_or(0.0, |t| t.as_secs_f64())
        ),
        GaveUp::Memory => format!(
            "memory budget of {} MiB reached",
            opts.memory_budget_bytes >> 20
        ),
        GaveUp::OtherKeyInvalid => {
            "not finished: another key is invalid, which decides the history (--all-keys checks every key)".to_string()
        }
    }
}

fn unknown_key(ops: usize, why: GaveUp, opts: &CheckOptions) -> KeyReport {
    KeyReport {
        verdict: Verdict::Unknown,
        ops,
        dropped_info: 0,
        configurations: 0,
        memo_bytes: 0,
        reason: Some(reason(why, opts)),
        counterexample: None,
    }
}

/// Prunes, searches and reports one key.
fn check_key<M: Model>(
    mut model: M,
    all: &[Op],
    history: &History,
    limits: &Limits<'_>,
    opts: &CheckOptions,
) -> KeyReport {
    let drop = model.droppable(all);
    let ops: Vec<Op> = all
        .iter()
        .zip(&drop)
        .filter(|(_, d)| !**d)
        .map(|(op, _)| *op)
        .collect();
    let (outcome, stats) = search::search(&mut model, &ops, limits);
    let mut report = KeyReport {
        verdict: Verdict::Valid,
        ops: all.len(),
        dropped_info: all.len() - ops.len(),
        configurations: stats.configurations,
        memo_bytes: stats.memo_bytes,
        reason: None,
        counterexample: None,
    };
    match outcome {
        search::SearchResult::Valid => {}
        search::SearchResult::Unknown(why) => {
            report.verdict = Verdict::Unknown;
            report.reason = Some(reason(why, opts));
        }
        search::SearchResult::Invalid(failure) => {
            report.verdict = Verdict::Invalid;
            report.counterexample = Some(counterexample(&mut model, &ops, history, &failure));
        }
    }
    report
}

fn op_ref<M: Model>(model: &M, op: &Op, history: &History) -> OpRef {
    let json = |id| serde_json::to_value(history.values.get(id)).unwrap_or_default();
    OpRef {
        process: op.process,
        f: op.f,
        outcome: op.outcome,
        value: match op.f {
            OpKind::Cas => serde_json::Value::Array(vec![json(op.value), json(op.cas_new)]),
            OpKind::Txn => history.txns.to_json(op.txn(), &history.values),
            OpKind::Acquire | OpKind::Release => serde_json::Value::Null,
            _ => json(op.value),
        },
        op: model.describe_op(op),
        invoke: op.invoke,
        complete: op.completion(),
        invoke_line: history.line(op.invoke),
        complete_line: op.completion().map(|c| history.line(c)),
    }
}

fn counterexample<M: Model>(
    model: &mut M,
    ops: &[Op],
    history: &History,
    failure: &search::Failure<M::State>,
) -> Counterexample {
    let failed = &ops[failure.op];
    let prefix: Vec<OpRef> = failure
        .prefix
        .iter()
        .map(|&i| op_ref(model, &ops[i], history))
        .collect();
    let concurrent: Vec<OpRef> = ops
        .iter()
        .enumerate()
        .filter(|&(i, o)| {
            i != failure.op && o.invoke < failed.complete && o.complete > failed.invoke
        })
        .map(|(_, o)| op_ref(model, o, history))
        .collect();
    let mut states: Vec<String> = failure
        .states
        .iter()
        .map(|&s| model.describe_state(s))
        .collect();
    // Numbers in numeric order, then the rest in text order: stable and easy to scan.
    states.sort_by_key(|s| {
        (
            s.parse::<i64>().is_err(),
            s.parse::<i64>().unwrap_or(0),
            s.clone(),
        )
    });
    let what = model.describe_op(failed);
    let done = history.line(failed.complete);
    let shown = if failure.states.len() >= search::MAX_STATES {
        " (and maybe others)"
    } else {
        ""
    };
    let fits: Vec<M::State> = failure
        .states
        .iter()
        .copied()
        .filter(|&s| model.step(s, failed).is_some())
        .collect();
    let explanation = if fits.is_empty() {
        format!(
            "`{what}` (process {}) completed on line {done}, so it must take effect before \
             that; but the orders of the earlier ops that the search could build leave the \
             state at {}{shown}, where `{what}` is impossible, and no op that could still run \
             before it would make it possible.",
            failed.process,
            states.join(" or ")
        )
    } else if let Some(why) = fits.iter().find_map(|&s| model.explain(s, failed)) {
        format!(
            "`{what}` (process {}) completed on line {done}, so it must take effect before \
             that. {why}",
            failed.process
        )
    } else {
        format!(
            "`{what}` (process {}) completed on line {done}, so it must take effect before \
             that. It fits some of the states above, but every order that places it there \
             leaves a later op impossible.",
            failed.process
        )
    };
    Counterexample {
        op: op_ref(model, failed, history),
        prefix,
        states,
        concurrent,
        explanation,
    }
}

/// Reads a duration in seconds from a CLI string (`1`, `0.5`).
pub fn parse_seconds(s: &str) -> Result<Duration> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| Error::Invalid(format!("expected a number of seconds, got `{s}`")))
}
