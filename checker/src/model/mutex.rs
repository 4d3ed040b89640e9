//! A lock: Knossos's `mutex` model, with `acquire` and `release`.
//!
//! The state is whether the lock is held; it starts free. An `acquire` needs it free and leaves
//! it held ("already held" in Knossos otherwise), a `release` needs it held and leaves it free
//! ("not held"). Nothing else about an op matters: its value is ignored, and which process
//! releases is not checked (Knossos's model does not know owners either).
//!
//! Outcomes as everywhere: a `fail`ed acquire or release never took effect and is dropped; an
//! `info` one (the client timed out) may have taken effect at any moment after its invoke, or
//! never, and the search tries both. So a history where two clients both hold the lock at once
//! is invalid, but one where a client timed out acquiring it and another acquired it later is
//! valid: the timed-out acquire may never have happened.
//!
//! One history is usually one lock. A `jepsen.independent` history (values `[key nil]`) or ops
//! with a `:key` are many locks, each checked on its own, like any other model's keys.

use super::Model;
use crate::history::{Op, OpKind};

/// A lock, held or free.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mutex;

impl Mutex {
    pub fn new() -> Mutex {
        Mutex
    }
}

/// The state of a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lock {
    Free,
    Held,
}

impl Model for Mutex {
    type State = Lock;

    fn init(&mut self) -> Lock {
        Lock::Free
    }

    fn step(&mut self, state: Lock, op: &Op) -> Option<Lock> {
        match (op.f, state) {
            (OpKind::Acquire, Lock::Free) => Some(Lock::Held),
            (OpKind::Release, Lock::Held) => Some(Lock::Free),
            _ => None,
        }
    }

    fn describe_op(&self, op: &Op) -> String {
        op.f.name().to_string()
    }

    fn describe_state(&self, state: Lock) -> String {
        match state {
            Lock::Free => "free",
            Lock::Held => "held",
        }
        .to_string()
    }
}
