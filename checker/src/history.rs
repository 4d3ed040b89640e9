//! The history model: what clients saw, as operations with an invoke and maybe a completion.
//!
//! A history file is a sequence of *events* (`invoke`, `ok`, `fail`, `info`), in the real-time
//! order in which they were observed. This module pairs each invoke with its process's next
//! completion ([`riptide_history::OpenOps`], the one pairing of the bench) and keeps what the
//! search needs:
//!
//! - `ok`: the operation took effect, somewhere between its invoke and its completion.
//! - `fail`: it definitely did not take effect. It is dropped here and never reaches a model.
//! - `info` (and an invoke with no completion at all): unknown. It may have taken effect at any
//!   moment after its invoke, or never. Such an op is an [`Outcome::Info`] with no completion
//!   index: the search treats it as returning at +infinity, after every other event.
//!
//! So an [`Op`] that reaches the search has one of two outcomes, `Ok` or `Info`. They are the
//! shared [`Outcome`]'s (serialised `ok`/`info` in reports, as before): `Fail` never gets here,
//! and an op never completed (the shared `Open`) is searched, and reported, as `Info`; the
//! count of those is [`HistoryStats::unfinished`].
//!
//! Invariants checked while pairing (each violation is an error naming the line):
//! a process has at most one open op; a completion names the same `f` as its invoke; and a
//! process that saw `info` never invokes again (Jepsen gives the worker a new process id).
//!
//! Values are interned into a [`Values`] table, so that an op is a small `Copy` record and a
//! register's state is a [`ValueId`]. Keys are interned the same way; [`History::partition`] splits
//! the ops by key, which is what lets the checker test keys independently (P-compositionality:
//! a history is linearizable iff each key's sub-history is).
//!
//! The words of histories ([`Value`], [`Outcome`], [`Process`], [`EventType`]) are
//! `riptide-history`'s, re-exported here; [`OpKind`] is its op kinds plus the lock and
//! transaction ops of two more of Knossos's models ([`crate::op_kind`]). A `txn` op's micro-ops
//! are interned into [`History::txns`] ([`crate::txn`]).

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use riptide_history::OpenOps;
pub use riptide_history::{EventType, Outcome, Process, Value};

pub use crate::op_kind::OpKind;
use crate::txn::{Micro, RawMicro, TxnId, TxnInterner, Txns};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::Format;
use crate::fx::FxHashMap as HashMap;

/// An interned [`Value`]: an index into the history's [`Values`] table.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl ValueId {
    /// `nil` is always id 0.
    pub const NIL: ValueId = ValueId(0);
}

/// The table of every distinct value in a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Values {
    table: Vec<Value>,
}

impl Values {
    pub fn get(&self, id: ValueId) -> &Value {
        &self.table[id.0 as usize]
    }
    pub fn len(&self) -> usize {
        self.table.len()
    }
    pub fn is_empty(&self) -> bool {
        false // nil is always there
    }
    /// The id of `v`, if the history contains it (linear scan: for options, not for hot paths).
    pub fn find(&self, v: &Value) -> Option<ValueId> {
        self.table
            .iter()
            .position(|x| x == v)
            .map(|i| ValueId(i as u32))
    }
}

/// One operation: an invoke paired with its completion.
///
/// A model's step must depend only on `f`, `value`, `cas_new` and `outcome`: the search relies on
/// that to treat identical `info` ops as interchangeable.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// The client process that ran it.
    pub process: u64,
    /// Index into [`History::keys`].
    pub key: u32,
    /// What the op does (Jepsen's `f`).
    pub f: OpKind,
    /// `Ok` or `Info` (see the module docs): never `Fail` nor `Open`.
    pub outcome: Outcome,
    /// read: the value read (nil for an info read, whose result is unknown);
    /// write/append: the value written; cas: the expected value; acquire, release, txn: nil.
    pub value: ValueId,
    /// cas: the new value; txn: the transaction's id in [`History::txns`], not a value
    /// ([`Op::txn`] reads it); nil otherwise. (A txn's id is kept here, in a field every other
    /// reader ignores unless the op is a cas, so that a txn's `value` is still a valid nil, and
    /// an op stays 32 bytes.)
    pub cas_new: ValueId,
    /// History index (position among all events of the file, from 0) of the invoke.
    pub invoke: u32,
    /// History index of the completion; [`Op::NEVER`] for an info op (it returns at +infinity).
    pub complete: u32,
}

// An op is a small `Copy` record, copied per key and searched in place: keep it 32 bytes.
const _: () = assert!(std::mem::size_of::<Op>() == 32);

impl Op {
    /// The completion index of an op that never returned.
    pub const NEVER: u32 = u32::MAX;

    pub fn completion(&self) -> Option<u32> {
        (self.complete != Op::NEVER).then_some(self.complete)
    }

    /// A txn op's transaction: its micro-ops are `history.txns.get(op.txn())`. An `ok` txn's
    /// are the completion's (with the values read), an `info` txn's the invoke's.
    pub fn txn(&self) -> TxnId {
        debug_assert_eq!(self.f, OpKind::Txn);
        TxnId(self.cas_new.0)
    }
}

/// The ops of each key as positions in [`History::ops`] ([`History::key_index`]).
pub struct KeyIndex {
    start: Vec<u32>,
    order: Vec<u32>,
}

impl KeyIndex {
    /// Heap bytes of the index.
    pub fn heap_bytes(&self) -> usize {
        (self.start.capacity() + self.order.capacity()) * 4
    }

    /// Positions of key `k`'s ops, in invoke order.
    pub fn of(&self, k: usize) -> &[u32] {
        &self.order[self.start[k] as usize..self.start[k + 1] as usize]
    }
}

/// Counts of what the file held, for reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HistoryStats {
    /// Events read (lines that were ops, including ignored ones).
    pub events: usize,
    /// Ops that completed `ok`.
    pub ok: usize,
    /// Ops that completed `fail` (dropped).
    pub fail: usize,
    /// Ops that completed `info`.
    pub info: usize,
    /// Invokes with no completion at all (treated as info).
    pub unfinished: usize,
    /// Events from non-client processes (the nemesis), ignored.
    pub ignored: usize,
}

/// A whole history, ready to check.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    /// The file it came from.
    pub path: PathBuf,
    /// The format it was read as.
    pub format: Format,
    /// Every op that was not a `fail`, in invoke order.
    pub ops: Vec<Op>,
    /// Key names; [`Op::key`] indexes this. The default key (for formats without keys) is `""`.
    pub keys: Vec<String>,
    pub values: Values,
    /// The transactions of `txn` ops (none in other histories).
    pub txns: Txns,
    /// 1-based line number of each history index.
    pub lines: Vec<u32>,
    pub stats: HistoryStats,
    /// The value a never-written key holds in this format, unless `--initial` says otherwise
    /// (Porcupine's kv files read a missing key as `""`; everything else as nil).
    pub default_initial: Value,
}

impl History {
    /// Splits the ops by key: `result[k]` holds the ops on key `k`, in invoke order.
    pub fn partition(&self) -> Vec<Vec<Op>> {
        let mut parts = vec![Vec::new(); self.keys.len()];
        for op in &self.ops {
            parts[op.key as usize].push(*op);
        }
        parts
    }

    /// The ops grouped by key without copying them: for each key, the positions in
    /// [`History::ops`] of its ops, in invoke order (4 bytes an op instead of 32).
    pub fn key_index(&self) -> KeyIndex {
        let mut start = vec![0u32; self.keys.len() + 1];
        for op in &self.ops {
            start[op.key as usize + 1] += 1;
        }
        for k in 0..self.keys.len() {
            start[k + 1] += start[k];
        }
        let mut fill = start.clone();
        let mut order = vec![0u32; self.ops.len()];
        for (i, op) in self.ops.iter().enumerate() {
            let slot = &mut fill[op.key as usize];
            order[*slot as usize] = i as u32;
            *slot += 1;
        }
        KeyIndex { start, order }
    }

    /// Heap bytes the history holds (ops, lines, keys, values), as counted against the memory
    /// budget.
    pub fn heap_bytes(&self) -> usize {
        let strings: usize = self.keys.iter().map(|k| k.capacity() + 24).sum();
        let values: usize = (self.values.table.iter())
            .map(|v| {
                32 + if let Value::Str(t) = v {
                    t.capacity()
                } else {
                    0
                }
            })
            .sum();
        self.ops.capacity() * std::mem::size_of::<Op>()
            + self.lines.capacity() * 4
            + strings
            + values
    }

    /// Whether any op has this `f`.
    pub fn uses(&self, f: OpKind) -> bool {
        self.ops.iter().any(|op| op.f == f)
    }

    /// Builds the history of a riptide JSONL file from its records, already parsed (by
    /// [`riptide_history::records`], say), each with its 1-based line in the file: the same
    /// history, or the same error, as `load_history(path, Format::Jsonl)` gives for that file,
    /// without reading it again. `path` is only used in messages and the report.
    pub fn from_records<'r>(
        path: &Path,
        records: impl IntoIterator<Item = (usize, &'r riptide_history::Record)>,
    ) -> Result<History> {
        let mut builder = Builder::new(path, Format::Jsonl);
        crate::format::jsonl::push_records(records, &mut builder)?;
        Ok(builder.finish())
    }

    /// 1-based line of a history index.
    pub fn line(&self, index: u32) -> u32 {
        self.lines.get(index as usize).copied().unwrap_or(0)
    }
}

/// A scalar as a parser found it, borrowing from the file's text where it can.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RawValue<'a> {
    Nil,
    Int(i64),
    Str(Cow<'a, str>),
}

/// An event's value as a parser found it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum EventValue<'a> {
    Scalar(RawValue<'a>),
    /// `[a b]`: a cas's expected and new values.
    Pair(RawValue<'a>, RawValue<'a>),
    /// A transaction's micro-ops (the value of a `txn`).
    Txn(Vec<RawMicro<'a>>),
    /// Anything else (a keyword such as `:timed-out`, an object): fine where the value is unused.
    Other,
}

/// One parsed event, before pairing.
#[derive(Clone, Debug)]
pub(crate) struct Event<'a> {
    /// 1-based line number.
    pub line: usize,
    pub process: Process,
    pub kind: EventType,
    /// The `f` name as written (checked only for client events).
    pub f: &'a str,
    pub key: Option<Cow<'a, str>>,
    pub value: EventValue<'a>,
}

/// What a `txn`'s value must look like, for error messages.
pub(crate) const TXN: &str = "a transaction such as `[[:read :x nil] [:write :y 2]]`";

/// An invoke waiting for its completion.
struct Open {
    slot: usize,
    f: OpKind,
    line: usize,
}

/// Pairs events into ops. Parsers feed it events in file order.
pub(crate) struct Builder {
    path: PathBuf,
    format: Format,
    /// Ops in invoke order; a `fail` marks its op [`Outcome::Fail`], removed at the end in
    /// place (a `Vec<Option<Op>>` would take 40 bytes an op, and a second copy to flatten).
    ops: Vec<Op>,
    keys: Vec<String>,
    key_ids: HashMap<Box<str>, u32>,
    values: Vec<Value>,
    int_ids: HashMap<i64, ValueId>,
    /// String values by Fx hash (hashed once, not on each growth); collisions: `str_collided`.
    str_ids: HashMap<u64, ValueId>,
    str_collided: HashMap<Box<str>, ValueId>,
    txns: TxnInterner,
    open: OpenOps<Open>,
    /// Processes that saw `info`, with the line of that completion.
    retired: HashMap<u64, usize>,
    lines: Vec<u32>,
    stats: HistoryStats,
    default_initial: Value,
}

impl Builder {
    pub(crate) fn new(path: &Path, format: Format) -> Builder {
        Builder {
            path: path.to_path_buf(),
            format,
            ops: Vec::new(),
            keys: Vec::new(),
            key_ids: HashMap::default(),
            values: vec![Value::Nil],
            int_ids: HashMap::default(),
            str_ids: HashMap::default(),
            str_collided: HashMap::default(),
            txns: TxnInterner::default(),
            open: OpenOps::new(),
            retired: HashMap::default(),
            lines: Vec::new(),
            stats: HistoryStats::default(),
            default_initial: Value::Nil,
        }
    }

    pub(crate) fn set_default_initial(&mut self, v: Value) {
        self.default_initial = v;
    }

    fn error(&self, line: usize, message: String) -> Error {
        Error::History {
            path: self.path.clone(),
            line,
            message,
        }
    }

    fn intern(&mut self, v: &RawValue<'_>) -> ValueId {
        let next = ValueId(self.values.len() as u32);
        let id = match v {
            RawValue::Nil => return ValueId::NIL,
            RawValue::Int(i) => *self.int_ids.entry(*i).or_insert(next),
            RawValue::Str(s) => self.str_id(s, next),
        };
        if id == next {
            self.values.push(match v {
                RawValue::Nil => Value::Nil,
                RawValue::Int(i) => Value::Int(*i),
                RawValue::Str(s) => Value::Str(s.to_string()),
            });
        }
        id
    }

    /// The id of string `s`, or `next` if it is new.
    fn str_id(&mut self, s: &str, next: ValueId) -> ValueId {
        let first = *self.str_ids.entry(crate::fx::hash_one(&s)).or_insert(next);
        if first != next && !matches!(&self.values[first.0 as usize], Value::Str(t) if t == s) {
            return *self.str_collided.entry(s.into()).or_insert(next);
        }
        first
    }

    fn key_id(&mut self, key: Option<Cow<'_, str>>) -> u32 {
        let key = key.as_deref().unwrap_or("");
        if let Some(&id) = self.key_ids.get(key) {
            return id;
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.to_string());
        self.key_ids.insert(key.into(), id);
        id
    }

    /// Adds one event, in file order: a client's invoke opens an op, its completion closes it;
    /// the nemesis's events are counted and ignored.
    pub(crate) fn push(&mut self, ev: Event<'_>) -> Result<()> {
        let index = self.lines.len() as u32;
        self.lines.push(ev.line as u32);
        self.stats.events += 1;
        let Process::Client(process) = ev.process else {
            self.stats.ignored += 1;
            return Ok(());
        };
        let Some(f) = OpKind::parse(ev.f) else {
            return Err(self.error(
                ev.line,
                format!(
                    "unknown operation `{}`; expected read, write, cas or append (get and put are \
                     accepted too), acquire or release (--model mutex), or txn (--model \
                     multi-register)",
                    ev.f
                ),
            ));
        };
        if ev.kind == EventType::Invoke {
            self.invoke(ev, process, f, index)
        } else {
            self.complete(ev, process, f, index)
        }
    }

    /// Opens an op for `process`. An error ends the parse, so nothing is undone on one.
    fn invoke(&mut self, ev: Event<'_>, process: u64, f: OpKind, index: u32) -> Result<()> {
        let open = Open {
            slot: self.ops.len(),
            f,
            line: ev.line,
        };
        if let Err(earlier) = self.open.invoke(process, open) {
            let message = format!(
                "process {process} invokes again while its op from line {} is still open",
                earlier.line
            );
            return Err(self.error(ev.line, message));
        }
        if let Some(&line) = self.retired.get(&process) {
            return Err(self.error(
                ev.line,
                format!(
                    "process {process} invokes again after its `info` on line {line}; \
                     a process that saw info must continue under a new process id"
                ),
            ));
        }
        let (value, cas_new) = self.invoke_values(f, &ev)?;
        let key = self.key_id(ev.key);
        self.ops.push(Op {
            process,
            key,
            f,
            outcome: Outcome::Info,
            value,
            cas_new,
            invoke: index,
            complete: Op::NEVER,
        });
        Ok(())
    }

    /// An invoke's `value` and `cas_new`: nothing for a read, an acquire or a release, the value
    /// for a write or append, `[expected new]` for a cas, the transaction for a txn.
    fn invoke_values(&mut self, f: OpKind, ev: &Event<'_>) -> Result<(ValueId, ValueId)> {
        let bad_value = |expected: &str, this: &Builder| Error::Parse {
            column: None,
            path: this.path.clone(),
            line: ev.line,
            expected: format!("{expected} as the value of a `{}` invoke", f.name()),
            found: format!("{:?}", ev.value),
        };
        Ok(match (f, &ev.value) {
            (OpKind::Read | OpKind::Acquire | OpKind::Release, _) => (ValueId::NIL, ValueId::NIL),
            (OpKind::Txn, EventValue::Txn(micros)) => (ValueId::NIL, self.intern_txn(micros)),
            (OpKind::Txn, _) => return Err(bad_value(TXN, self)),
            (OpKind::Write | OpKind::Append, EventValue::Scalar(v)) => {
                (self.intern(v), ValueId::NIL)
            }
            (OpKind::Cas, EventValue::Pair(a, b)) => (self.intern(a), self.intern(b)),
            (OpKind::Write | OpKind::Append, _) => return Err(bad_value("a value", self)),
            (OpKind::Cas, _) => return Err(bad_value("`[expected new]`", self)),
        })
    }

    /// Closes the open op of `process`: a `fail` removes it, an `info` leaves it an info op
    /// (returning at +infinity) and retires the process, an `ok` records where it returned and,
    /// for a read, what it read.
    fn complete(&mut self, ev: Event<'_>, process: u64, f: OpKind, index: u32) -> Result<()> {
        let Some(open) = self.open.complete(process) else {
            return Err(self.error(
                ev.line,
                format!("a completion for process {process}, which has no open invoke"),
            ));
        };
        if open.f != f {
            return Err(self.error(
                ev.line,
                format!(
                    "process {process} completes `{}` but invoked `{}` on line {}",
                    f.name(),
                    open.f.name(),
                    open.line
                ),
            ));
        }
        match ev.kind {
            EventType::Invoke => unreachable!("an invoke is not a completion"),
            EventType::Fail => {
                self.stats.fail += 1;
                self.ops[open.slot].outcome = Outcome::Fail;
            }
            EventType::Info => {
                self.stats.info += 1;
                self.retired.insert(process, ev.line);
            }
            EventType::Ok => {
                self.stats.ok += 1;
                let read = match f {
                    OpKind::Read => Some(self.read_value(&ev)?),
                    _ => None,
                };
                let txn = match f {
                    OpKind::Txn => Some(self.txn_result(&ev)?),
                    _ => None,
                };
                let op = &mut self.ops[open.slot];
                op.outcome = Outcome::Ok;
                op.complete = index;
                if let Some(v) = read {
                    op.value = v;
                }
                if let Some(t) = txn {
                    op.cas_new = t;
                }
            }
        }
        Ok(())
    }

    /// The value an `ok` read returned.
    fn read_value(&mut self, ev: &Event<'_>) -> Result<ValueId> {
        match &ev.value {
            EventValue::Scalar(v) => Ok(self.intern(v)),
            _ => Err(Error::Parse {
                column: None,
                path: self.path.clone(),
                line: ev.line,
                expected: "the value read (nil, an integer or a string)".into(),
                found: format!("{:?}", ev.value),
            }),
        }
    }

    /// Interns a transaction's registers, values and micro-ops.
    fn intern_txn(&mut self, micros: &[RawMicro<'_>]) -> ValueId {
        let micros: Vec<Micro> = micros
            .iter()
            .map(|m| Micro {
                f: m.f,
                register: self.txns.register(&m.register),
                value: self.intern(&m.value),
            })
            .collect();
        ValueId(self.txns.txn(micros).0)
    }

    /// The transaction an `ok` txn completed with: its reads say what they read.
    fn txn_result(&mut self, ev: &Event<'_>) -> Result<ValueId> {
        match &ev.value {
            EventValue::Txn(micros) => Ok(self.intern_txn(micros)),
            _ => Err(Error::Parse {
                column: None,
                path: self.path.clone(),
                line: ev.line,
                expected: format!("{TXN} as the value of an ok `txn`"),
                found: format!("{:?}", ev.value),
            }),
        }
    }

    /// Ends the history: invokes still open become info ops.
    pub(crate) fn finish(self) -> History {
        let mut stats = self.stats;
        stats.unfinished = self.open.len();
        let mut ops = self.ops;
        ops.retain(|op| op.outcome != Outcome::Fail);
        ops.shrink_to_fit();
        let mut lines = self.lines;
        lines.shrink_to_fit();
        History {
            path: self.path,
            format: self.format,
            ops,
            keys: self.keys,
            values: Values { table: self.values },
            txns: self.txns.finish(),
            lines,
            stats,
            default_initial: self.default_initial,
        }
    }
}
