//! A compare-and-set register: a [`super::register`] plus `cas [expected new]`, which sets
//! `new` only if the value is `expected`. A cas that completed `ok` must have found `expected`;
//! one that completed `fail` never reaches the model (it is dropped with the other fails).

use super::register::{step_register, unobserved_info, Live, Pins};
use super::{describe_register_op, Context, Model};
use crate::history::{Op, OpKind, Outcome, ValueId};

/// A register with `read`, `write` and `cas`.
pub struct CasRegister<'h> {
    ctx: Context<'h>,
    pins: Pins,
    live: Live,
}

impl<'h> CasRegister<'h> {
    /// A model of the key whose ops are `ops`.
    pub fn new(ctx: Context<'h>, ops: &[Op]) -> CasRegister<'h> {
        CasRegister {
            ctx,
            pins: Pins::new(ops),
            live: Live::new(ops),
        }
    }
}

impl Model for CasRegister<'_> {
    type State = ValueId;

    fn init(&mut self) -> ValueId {
        self.ctx.initial_id
    }

    fn step(&mut self, state: ValueId, op: &Op) -> Option<ValueId> {
        match op.f {
            // An info cas that did not match had no effect: the same as never happening, which
            // the search covers by leaving it out. So a cas runs only where it matches.
            OpKind::Cas => (state == op.value).then_some(op.cas_new),
            _ => step_register(state, op),
        }
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
