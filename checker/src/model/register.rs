//! A read/write register: a read returns the last value written (or the initial value).
//!
//! The state is the [`ValueId`] of the current value. This module also holds the one pruning
//! rule the register models share, [`unobserved_info`], with its proof.

use std::collections::HashSet;

use super::{describe_register_op, Context, Model};
use crate::history::{Op, Outcome, ValueId, F};

/// A register with `read` and `write`.
pub struct Register<'h> {
    ctx: Context<'h>,
}

impl<'h> Register<'h> {
    pub fn new(ctx: Context<'h>) -> Register<'h> {
        Register { ctx }
    }
}

/// The register step shared with [`super::cas_register`]; `None` for ops a register lacks.
pub(crate) fn step_register(state: ValueId, op: &Op) -> Option<ValueId> {
    match op.f {
        F::Read if op.outcome == Outcome::Info => Some(state),
        F::Read => (state == op.value).then_some(state),
        F::Write => Some(op.value),
        F::Cas | F::Append => None,
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

    fn describe_op(&self, op: &Op) -> String {
        describe_register_op(&self.ctx, op)
    }

    fn describe_state(&self, state: ValueId) -> String {
        self.ctx.show(state)
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
        .map(|op| op.outcome == Outcome::Info && op.f == F::Read)
        .collect();
    loop {
        let mut observed = HashSet::new();
        let mut produced = HashSet::new();
        produced.insert(initial);
        for (op, _) in ops.iter().zip(&drop).filter(|(_, d)| !**d) {
            match (op.f, op.outcome) {
                (F::Read, Outcome::Ok) => {
                    observed.insert(op.value);
                }
                (F::Cas, _) => {
                    observed.insert(op.value);
                    produced.insert(op.value2);
                }
                (F::Write, _) => {
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
                F::Write => !observed.contains(&op.value),
                F::Cas => !observed.contains(&op.value2) || !produced.contains(&op.value),
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
