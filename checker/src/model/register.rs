//! A read/write register: a read returns the last value written (or the initial value).
//!
//! The state is the [`ValueId`] of the current value. This module also holds the one pruning
//! rule the register models share, [`unobserved_info`], with its proof.

use super::{describe_register_op, Context, Model};
use crate::fx::{FxHashMap, FxHashSet};
use crate::history::{Op, OpKind, Outcome, ValueId};

/// A register with `read` and `write`.
pub struct Register<'h> {
    ctx: Context<'h>,
    pins: Pins,
    live: Live,
}

impl<'h> Register<'h> {
    /// A model of the key whose ops are `ops`.
    pub fn new(ctx: Context<'h>, ops: &[Op]) -> Register<'h> {
        Register {
            ctx,
            pins: Pins::new(ops),
            live: Live::new(ops),
        }
    }
}

/// When an ok read *pins* the register: for each ok read (by invoke index), the latest
/// completion of an op that could produce the value it read before it (a write of that value,
/// or a cas to it, invoked before the read completed; [`Op::NEVER`] for an info op), or `None`.
///
/// Why it matters ([`Model::doomed`]): suppose every op not yet linearized completes at or
/// after `horizon`, and the read `r` is not linearized yet. An op that could produce `r`'s
/// value and completed before `horizon` is already linearized, so it cannot run again before
/// `r`. If that holds for all of them, then no op that changes the value can run before `r`
/// either (the last one before `r` would have to produce `r`'s value). So the value stays as
/// it is until `r`: if it differs from what `r` read, this configuration is dead.
pub(crate) struct Pins {
    latest: FxHashMap<u32, Option<u32>>,
}

impl Pins {
    pub(crate) fn new(ops: &[Op]) -> Pins {
        let mut producers: FxHashMap<ValueId, Vec<&Op>> = FxHashMap::default();
        for op in ops {
            match op.f {
                OpKind::Write => producers.entry(op.value).or_default().push(op),
                OpKind::Cas => producers.entry(op.cas_new).or_default().push(op),
                _ => {}
            }
        }
        let latest = ops
            .iter()
            .filter(|r| r.f == OpKind::Read && r.outcome == Outcome::Ok)
            .map(|r| {
                let latest = producers.get(&r.value).and_then(|ps| {
                    ps.iter()
                        .filter(|q| q.invoke < r.complete)
                        .map(|q| q.complete)
                        .max()
                });
                (r.invoke, latest)
            })
            .collect();
        Pins { latest }
    }

    /// Pins from a precomputed map (read invoke index -> latest producer completion).
    pub(crate) fn with(latest: FxHashMap<u32, Option<u32>>) -> Pins {
        Pins { latest }
    }

    /// Whether `read` must see the value as it is now.
    pub(crate) fn pinned(&self, read: &Op, horizon: u32) -> bool {
        read.f == OpKind::Read
            && read.outcome == Outcome::Ok
            && match self.latest.get(&read.invoke) {
                Some(None) => true,
                Some(Some(latest)) => *latest < horizon,
                None => false,
            }
    }
}

/// The values some op of the key looks at: read by an ok read, or expected by a cas. Every
/// other value is *dead*, and the register models give the memo one state, [`Context::DEAD`],
/// for all of them ([`Model::canon`]).
///
/// Why that is sound: from a dead value `d`, an ok read needs its own (live) value, so it
/// fails; a cas expects a live value, so it fails; a write moves to its value whatever the
/// state. So two dead values behave identically from then on, which is all the memo asks of
/// equal states. The set is computed over every op of the key, dropped ones included, so it
/// can only be larger than needed (fewer values dead).
pub(crate) struct Live {
    /// Each live value's slot in the two counts below.
    slot: FxHashMap<ValueId, u32>,
    /// Per live value: ok reads of it not linearized yet.
    readers: Vec<u32>,
    /// Per live value: writes of it and cas ops to it (ok or info) not linearized yet.
    producers: Vec<u32>,
}

impl Live {
    pub(crate) fn new(ops: &[Op]) -> Live {
        let mut slot = FxHashMap::default();
        let mut readers = Vec::new();
        for op in ops {
            if let (OpKind::Read, Outcome::Ok) | (OpKind::Cas, _) = (op.f, op.outcome) {
                let next = slot.len() as u32;
                let s = *slot.entry(op.value).or_insert(next);
                if s == next {
                    readers.push(0);
                }
                if op.f == OpKind::Read {
                    readers[s as usize] += 1;
                }
            }
        }
        let mut live = Live {
            producers: vec![0; readers.len()],
            slot,
            readers,
        };
        for op in ops {
            if let Some(s) = live.produces(op) {
                live.producers[s] += 1;
            }
        }
        live
    }

    /// The slot of the live value `op` writes, if it writes one.
    #[inline(always)]
    fn produces(&self, op: &Op) -> Option<usize> {
        let v = match op.f {
            OpKind::Write => op.value,
            OpKind::Cas => op.cas_new,
            _ => return None,
        };
        self.slot.get(&v).map(|&s| s as usize)
    }

    /// Keeps the counts of [`Live::strands`] as the search linearizes `op` (`on`) or undoes it.
    /// Counted over every op of the key, dropped info ops included, so a count of producers
    /// is never below the truth.
    #[inline(always)]
    pub(crate) fn linearized(&mut self, op: &Op, on: bool) {
        let count = if op.f == OpKind::Read && op.outcome == Outcome::Ok {
            self.slot
                .get(&op.value)
                .map(|&s| &mut self.readers[s as usize])
        } else {
            self.produces(op).map(|s| &mut self.producers[s])
        };
        if let Some(c) = count {
            if on {
                *c -= 1;
            } else {
                *c += 1;
            }
        }
    }

    /// Whether moving the register from `state` to another value strands a read
    /// ([`Model::strands`]): an ok read of `state` is still to be linearized, and no op that
    /// could produce `state` again is left. Sound: that read needs the state to be its value
    /// at some later point, which takes an op producing it after this step, and every such op
    /// is already used.
    #[inline(always)]
    pub(crate) fn strands(&self, state: ValueId, next: ValueId) -> bool {
        next != state
            && self
                .slot
                .get(&state)
                .is_some_and(|&s| self.readers[s as usize] > 0 && self.producers[s as usize] == 0)
    }

    /// `v`, or [`Context::DEAD`] if no op looks at it.
    #[inline(always)]
    pub(crate) fn canon(&self, v: ValueId) -> ValueId {
        if self.slot.contains_key(&v) {
            v
        } else {
            Context::DEAD
        }
    }

    /// Whether the search may linearize `op` from `state` to `next` with no alternative
    /// ([`Model::greedy`]): an ok write of a dead value, in a dead state.
    ///
    /// Proof. Take any linearization from here that places `op` (a write of dead value `w`)
    /// later, at position `p`, and move it to the front. Here it changes nothing: the state is
    /// dead before and after. At `p` the state was some `s` and became dead; from a dead state
    /// only writes (of any value, ok or info) can run, so the ops after `p`, if any, are writes
    /// up to the first one of a live value, and none of them looks at the state. Without `op`
    /// they see `s` instead of a dead value and still run, to the same states. Real time holds
    /// as for a greedy read: every op that had to precede `op` is already linearized.
    #[inline(always)]
    pub(crate) fn greedy(&self, state: ValueId, op: &Op, next: ValueId) -> bool {
        op.f == OpKind::Write
            && op.outcome == Outcome::Ok
            && self.canon(state) == Context::DEAD
            && self.canon(next) == Context::DEAD
    }
}

/// The register step shared with [`super::cas_register`]; `None` for ops a register lacks.
#[inline(always)]
pub(crate) fn step_register(state: ValueId, op: &Op) -> Option<ValueId> {
    match op.f {
        OpKind::Read if op.outcome == Outcome::Info => Some(state),
        OpKind::Read => (state == op.value).then_some(state),
        OpKind::Write => Some(op.value),
        OpKind::Cas | OpKind::Append | OpKind::Acquire | OpKind::Release | OpKind::Txn => None,
    }
}

impl Model for Register<'_> {
    type State = ValueId;

    fn init(&mut self) -> ValueId {
        self.ctx.initial_id
    }

    fn step(&mut self, state: ValueId, op: &Op) -> Option<ValueId> {
        step_register(state, op)
    }

    fn canon(&self, state: ValueId) -> ValueId {
        self.live.canon(state)
    }

    fn greedy(&self, state: ValueId, op: &Op, next: ValueId) -> bool {
        self.live.greedy(state, op, next)
    }

    fn linearized(&mut self, op: &Op, on: bool) {
        self.live.linearized(op, on);
    }

    fn strands(&self, state: ValueId, next: ValueId) -> bool {
        self.live.strands(state, next)
    }

    fn stranded(&self, state: ValueId, op: &Op) -> bool {
        op.f == OpKind::Read && op.outcome == Outcome::Ok && op.value == state
    }

    fn describe_op(&self, op: &Op) -> String {
        describe_register_op(&self.ctx, op)
    }

    fn describe_state(&self, state: ValueId) -> String {
        self.ctx.show(state)
    }

    fn doomed(&mut self, state: ValueId, pending: &Op, horizon: u32) -> bool {
        state != pending.value && self.pins.pinned(pending, horizon)
    }

    fn droppable(&self, ops: &[Op]) -> Vec<bool> {
        unobserved_info(ops, self.ctx.initial_id)
    }
}

/// Marks the `info` ops of one key's register history that can be dropped before the search.
///
/// An info op may take effect or not; dropping it asserts "it did not". That is sound whenever
/// any linearization that uses the op can be turned into one that does not. The rules:
///
/// 1. **Info reads** change nothing and constrain nothing: drop.
/// 2. **An info write of `v`, where no op observes `v`**, i.e. no ok read returned `v` and no
///    remaining cas expects `v`. Take a linearization `L` that places the write at position `p`.
///    After `p` the state is `v` until some op changes it. The ops that may run in state `v` are
///    writes (which overwrite without looking), reads returning `v` and cas ops expecting `v`;
///    the last two do not exist. So the op after `p`, if any, is a write. Removing the info
///    write changes the state only between `p` and that write, where no op looks at it, and
///    keeps every real-time constraint (removing an op never adds one). `L` minus the write is
///    a linearization.
/// 3. **An info cas `from->to`, where no op observes `to`**: the same argument with `to` (a
///    cas `to->to` observes its own `to` and so is never dropped).
/// 4. **An info cas whose `from` no op can produce** (not the initial value, not written by
///    any remaining write or cas): it can never take effect.
///
/// Dropping ops only shrinks the sets of observed and producible values, so a rule that held
/// stays true after other drops; the rules are applied until nothing more drops. The search
/// also compares this against a brute force on random histories (tests/properties.rs).
pub fn unobserved_info(ops: &[Op], initial: ValueId) -> Vec<bool> {
    let mut drop: Vec<bool> = ops
        .iter()
        .map(|op| op.outcome == Outcome::Info && op.f == OpKind::Read)
        .collect();
    loop {
        let mut observed = FxHashSet::default();
        let mut produced = FxHashSet::default();
        produced.insert(initial);
        for (op, _) in ops.iter().zip(&drop).filter(|(_, d)| !**d) {
            match (op.f, op.outcome) {
                (OpKind::Read, Outcome::Ok) => {
                    observed.insert(op.value);
                }
                (OpKind::Cas, _) => {
                    observed.insert(op.value);
                    produced.insert(op.cas_new);
                }
                (OpKind::Write, _) => {
                    produced.insert(op.value);
                }
                _ => {}
            }
        }
        let mut changed = false;
        for (op, d) in ops.iter().zip(drop.iter_mut()) {
            if *d || op.outcome != Outcome::Info {
                continue;
            }
            let unobserved = match op.f {
                OpKind::Write => !observed.contains(&op.value),
                OpKind::Cas => !observed.contains(&op.cas_new) || !produced.contains(&op.value),
                _ => false,
            };
            if unobserved {
                *d = true;
                changed = true;
            }
        }
        if !changed {
            return drop;
        }
    }
}
