//! Several registers changed by transactions: Knossos's `multi-register` model.
//!
//! Every op is a `txn`, a list of micro-ops `[:read x v]` and `[:write y v]` ([`crate::txn`])
//! that runs as one atomic step, in order: a read sees the txn's own earlier writes, as in
//! Knossos (whose step reduces the micro-ops over the state). The state is the value of every
//! register; each starts at the initial value (`--initial`, default nil; Knossos's test gives
//! `{:x 0 :y 0}`, which is `--initial 0` here).
//!
//! **Why not per register.** A txn touches several registers at once, so the history cannot be
//! split by register: a txn that reads `x` and writes `y` ties the order on `x` to the order on
//! `y` (P-compositionality is about independent objects, and these are not). The whole
//! history is one key, checked as one unit, unless the ops carry keys (`jepsen.independent`
//! tuples `[key txn]`, or `:key`), which make each key a multi-register of its own.
//!
//! **Reads.** A read of nil follows `--nil-read` as a single read does: with `any` (Knossos's
//! "nil reads are always legal", the default for EDN) it matches any value; with `absent` the
//! register must hold nil. An ok txn made only of such unconstrained reads changes and checks
//! nothing, and [`crate::check`] leaves it out as it does a nil read. An `info` txn's reads
//! constrain nothing: nobody saw their results (its value is the invoke's, whose reads are nil).
//! Its writes may take effect, or not, as any info op's.
//!
//! **States.** A state is a vector of values, one per register the key's txns name. The model
//! interns them, so that the search's state is a `u32`, and memoises each (state, txn) step, so
//! that a txn is applied to a given state once.

use super::{Context, Model};
use crate::fx::FxHashMap as HashMap;
use crate::history::{Op, OpKind, Outcome, ValueId};
use crate::nil_read::NilRead;
use crate::txn::{MicroKind, RegisterId, Txns};

/// The registers of one key.
pub struct MultiRegister<'h> {
    ctx: Context<'h>,
    txns: &'h Txns,
    nil_read: NilRead,
    /// For each register of the history, its place in a state vector (`u32::MAX`: unused here).
    slot: Vec<u32>,
    /// The registers in state-vector order (by name).
    registers: Vec<RegisterId>,
    /// Interned states, by id, and the other way.
    states: Vec<Box<[ValueId]>>,
    ids: HashMap<Box<[ValueId]>, u32>,
    /// `(state, txn id, info?) ->` the state after the txn, if it can run.
    steps: HashMap<(u32, u32, bool), Option<u32>>,
    scratch: Vec<ValueId>,
}

impl<'h> MultiRegister<'h> {
    /// A model of the key whose ops are `ops` (all txns), whose transactions are in `txns`.
    pub fn new(ctx: Context<'h>, txns: &'h Txns, nil_read: NilRead, ops: &[Op]) -> Self {
        let mut used = vec![false; txns.registers()];
        for op in ops.iter().filter(|op| op.f == OpKind::Txn) {
            for m in txns.get(op.txn()) {
                used[m.register.0 as usize] = true;
            }
        }
        let mut registers: Vec<RegisterId> = (0..txns.registers() as u32)
            .map(RegisterId)
            .filter(|r| used[r.0 as usize])
            .collect();
        registers.sort_by(|a, b| natural(txns.register(*a)).cmp(&natural(txns.register(*b))));
        let mut slot = vec![u32::MAX; txns.registers()];
        for (i, r) in registers.iter().enumerate() {
            slot[r.0 as usize] = i as u32;
        }
        let mut model = MultiRegister {
            ctx,
            txns,
            nil_read,
            slot,
            registers,
            states: Vec::new(),
            ids: HashMap::default(),
            steps: HashMap::default(),
            scratch: Vec::new(),
        };
        let initial = vec![ctx.initial_id; model.registers.len()];
        model.intern(&initial);
        model
    }

    fn intern(&mut self, values: &[ValueId]) -> u32 {
        if let Some(&id) = self.ids.get(values) {
            return id;
        }
        let id = self.states.len() as u32;
        let boxed: Box<[ValueId]> = values.into();
        self.states.push(boxed.clone());
        self.ids.insert(boxed, id);
        id
    }

    /// Runs the txn's micro-ops on `state`, in order; `None` at the first read that does not
    /// match. An info txn's reads are skipped.
    fn apply(&mut self, state: u32, op: &Op) -> Option<u32> {
        let info = op.outcome == Outcome::Info;
        let mut values = std::mem::take(&mut self.scratch);
        values.clear();
        values.extend_from_slice(&self.states[state as usize]);
        let mut fits = true;
        for m in self.txns.get(op.txn()) {
            let slot = self.slot[m.register.0 as usize] as usize;
            match m.f {
                MicroKind::Write => values[slot] = m.value,
                MicroKind::Read if info => {}
                MicroKind::Read if m.value == ValueId::NIL && self.nil_read == NilRead::Any => {}
                MicroKind::Read => {
                    if values[slot] != m.value {
                        fits = false;
                        break;
                    }
                }
            }
        }
        let next = fits.then(|| self.intern(&values));
        self.scratch = values;
        next
    }
}

/// Orders names as a person does: `x2` before `x10` (numbers by value), else by text.
fn natural(name: &str) -> (Option<i64>, &str) {
    (name.parse().ok(), name)
}

impl Model for MultiRegister<'_> {
    type State = u32;

    fn init(&mut self) -> u32 {
        0
    }

    fn step(&mut self, state: u32, op: &Op) -> Option<u32> {
        if op.f != OpKind::Txn {
            return None;
        }
        let key = (state, op.txn().0, op.outcome == Outcome::Info);
        if let Some(&next) = self.steps.get(&key) {
            return next;
        }
        let next = self.apply(state, op);
        self.steps.insert(key, next);
        next
    }

    fn describe_op(&self, op: &Op) -> String {
        let info = op.outcome == Outcome::Info;
        self.txns.describe(op.txn(), self.ctx.values, info)
    }

    fn describe_state(&self, state: u32) -> String {
        let values = &self.states[state as usize];
        let pairs: Vec<String> = self
            .registers
            .iter()
            .zip(values.iter())
            .map(|(r, v)| format!("{}={}", self.txns.register(*r), self.ctx.show(*v)))
            .collect();
        format!("{{{}}}", pairs.join(", "))
    }

    fn heap_bytes(&self) -> usize {
        // Each state twice (the table and the map's key, both boxes), and the step memo.
        let per_state = 2 * (16 + 4 * self.registers.len()) + 4 + 1;
        self.states.len() * per_state + self.steps.capacity() * (16 + 1)
    }

    fn droppable(&self, ops: &[Op]) -> Vec<bool> {
        // An info txn that writes nothing changes nothing, and its reads constrain nothing: any
        // linearization that places it stays one without it.
        ops.iter()
            .map(|op| {
                op.outcome == Outcome::Info
                    && op.f == OpKind::Txn
                    && self
                        .txns
                        .get(op.txn())
                        .iter()
                        .all(|m| m.f == MicroKind::Read)
            })
            .collect()
    }
}
