//! Models: what a single copy of the data would do with each operation.
//!
//! A model is a sequential specification. The search asks it one question, over and over: "in
//! this state, can this op happen, and what state follows?" ([`Model::step`]). Adding a model
//! means implementing [`Model`]: an initial state, the step, and how to show ops and states in a
//! counterexample. Every model here is checked per key: the history is split by key first
//! (P-compositionality), so a model describes one key's value (or lock, or set of registers).
//!
//! | [`ModelKind`] | ops | state |
//! |---|---|---|
//! | `register` ([`register`]) | read, write | the last value written (initially `--initial`, default nil) |
//! | `cas-register` ([`cas_register`]) | read, write, cas | same, plus compare-and-set |
//! | `kv` ([`kv`]) | read/get, write/put, cas, append | a string-or-value per key; a missing key reads as nothing |
//! | `mutex` ([`mutex`]) | acquire, release | held or free (initially free) |
//! | `multi-register` ([`multi_register`]) | txn: reads and writes of several registers | every register's value (initially `--initial`) |
//!
//! The last two are Knossos's `mutex` and `multi-register`, for histories written for them;
//! riptide's workload produces only the first three kinds of ops. A multi-register's key is the
//! whole history (or a `jepsen.independent` key): its registers are not split apart, because
//! one txn spans several of them.
//!
//! States are small `Copy` values. A model whose states are rich (the kv model's strings grow
//! with appends) interns them itself and hands the search an id; that is why `step` takes
//! `&mut self`. A model instance serves one key and lives on one thread.

pub mod cas_register;
pub mod kv;
mod kv_dead;
pub mod multi_register;
pub mod mutex;
pub mod register;

use std::fmt;
use std::hash::Hash;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::history::{Op, OpKind, Value, ValueId, Values};

/// A sequential specification of one key.
pub trait Model {
    /// The state of one key. Equal states must behave identically from then on.
    type State: Copy + Eq + Hash + fmt::Debug;

    /// The state before any op.
    fn init(&mut self) -> Self::State;

    /// The state after `op` runs in `state`, or `None` if `op` cannot run there (a read that
    /// returned something else, a cas whose expected value differs).
    ///
    /// For an `info` op (result unknown) return the state it would leave *if it took effect*;
    /// the search separately considers that it never did. The step must depend only on `op.f`,
    /// `op.value`, `op.cas_new` and `op.outcome`.
    fn step(&mut self, state: Self::State, op: &Op) -> Option<Self::State>;

    /// The op as a person reads it: `write 3`, `cas 1->4`, `read 2`.
    fn describe_op(&self, op: &Op) -> String;

    /// The state as a person reads it.
    fn describe_state(&self, state: Self::State) -> String;

    /// Optional pruning, asked before `step` for an `ok` op: false if, once `op` runs in
    /// `state`, no linearization can continue. It may use `op`'s place in real time (the kv
    /// model looks at the first read that must follow it). It must be sound: never false where
    /// a linearization exists. The default prunes nothing.
    fn viable(&mut self, state: Self::State, op: &Op) -> bool {
        let _ = (state, op);
        true
    }

    /// Optional pruning, asked after each step: `pending` is an `ok` op not linearized yet,
    /// and every op not linearized yet completes at or after history index `horizon`. True if
    /// `pending` can no longer be linearized from `state` (the register models: it is a read
    /// of another value, and no op that could produce that value can still run before it). It
    /// must be sound. The default prunes nothing.
    fn doomed(&mut self, state: Self::State, pending: &Op, horizon: u32) -> bool {
        let _ = (state, pending, horizon);
        false
    }

    /// Why `op` cannot be linearized in `state` although `step` accepts it, when
    /// [`Model::viable`] says so: a sentence for the counterexample. The default says nothing.
    fn explain(&mut self, state: Self::State, op: &Op) -> Option<String> {
        let _ = (state, op);
        None
    }

    /// The state the memo keeps for `state`: another state that behaves identically from here
    /// on, so that configurations differing only there are one. The register models map every
    /// value no op reads or expects to one ([`register::Live`]); the counterexample still shows
    /// the real state. The default keeps `state`.
    fn canon(&self, state: Self::State) -> Self::State {
        state
    }

    /// Whether the search may linearize `op` (available now, and `step` took it from `state`
    /// to `next`) without ever trying an alternative to it: true only if, whenever some
    /// linearization continues from here, one continues with `op` first. The search always
    /// does this for ok reads (see [`crate::search`]); the register models add writes of a
    /// value no op reads, from such a state ([`register::Live::greedy`]). The default adds
    /// nothing.
    fn greedy(&self, state: Self::State, op: &Op, next: Self::State) -> bool {
        let _ = (state, op, next);
        false
    }

    /// Told of every op the search linearizes (`on`) and every one it undoes, in stack order,
    /// for models whose pruning counts what is left ([`Model::strands`]). The default ignores it.
    fn linearized(&mut self, op: &Op, on: bool) {
        let _ = (op, on);
    }

    /// Optional pruning, asked after `step` took some op (ok or info) from `state` to `next`:
    /// true if no linearization can continue from there, given the ops linearized so far
    /// ([`Model::linearized`]). The register models: an ok read of `state` is left and nothing
    /// can produce `state` again ([`register::Live::strands`]). It must be sound. The default
    /// prunes nothing.
    fn strands(&self, state: Self::State, next: Self::State) -> bool {
        let _ = (state, next);
        false
    }

    /// Which op [`Model::strands`] found stranded: true if leaving `state` leaves `op` (an ok
    /// op not linearized yet) impossible, for the counterexample. The default: none.
    fn stranded(&self, state: Self::State, op: &Op) -> bool {
        let _ = (state, op);
        false
    }

    /// Heap bytes the model holds for its states (the kv model's strings and tables), counted
    /// against the memory budget with the memo. The default holds none.
    fn heap_bytes(&self) -> usize {
        0
    }

    /// Marks `info` ops (by position in `ops`, one key's ops) that this model proves can be
    /// dropped without changing the verdict. The default drops nothing; the register models
    /// drop info reads and writes nobody could have observed (see [`register::unobserved_info`]).
    fn droppable(&self, ops: &[Op]) -> Vec<bool> {
        vec![false; ops.len()]
    }
}

/// The models riptide ships, by name.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    Register,
    CasRegister,
    Kv,
    Mutex,
    MultiRegister,
}

impl ModelKind {
    pub const NAMES: &'static [&'static str] =
        &["register", "cas-register", "kv", "mutex", "multi-register"];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::Mutex => "mutex",
            ModelKind::MultiRegister => "multi-register",
        }
    }

    /// Whether the model gives `f` a meaning.
    pub fn supports(self, f: OpKind) -> bool {
        match self {
            ModelKind::Register => matches!(f, OpKind::Read | OpKind::Write),
            ModelKind::CasRegister => matches!(f, OpKind::Read | OpKind::Write | OpKind::Cas),
            ModelKind::Kv => matches!(
                f,
                OpKind::Read | OpKind::Write | OpKind::Cas | OpKind::Append
            ),
            ModelKind::Mutex => matches!(f, OpKind::Acquire | OpKind::Release),
            ModelKind::MultiRegister => f == OpKind::Txn,
        }
    }

    /// The model that can check every op in a history of this shape: kv where there are appends,
    /// otherwise cas-register (which also covers plain registers).
    pub fn auto(uses_append: bool) -> ModelKind {
        if uses_append {
            ModelKind::Kv
        } else {
            ModelKind::CasRegister
        }
    }

    /// The model that gives `f` a meaning, for a history whose first op is `f`: mutex for
    /// acquire and release, multi-register for txn, kv for append, cas-register otherwise.
    pub fn for_op(f: OpKind) -> ModelKind {
        match f {
            OpKind::Acquire | OpKind::Release => ModelKind::Mutex,
            OpKind::Txn => ModelKind::MultiRegister,
            OpKind::Append => ModelKind::Kv,
            OpKind::Read | OpKind::Write | OpKind::Cas => ModelKind::CasRegister,
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<ModelKind> {
        Ok(match s {
            "register" => ModelKind::Register,
            "cas-register" | "cas" => ModelKind::CasRegister,
            "kv" | "key-value" => ModelKind::Kv,
            "mutex" | "lock" => ModelKind::Mutex,
            "multi-register" => ModelKind::MultiRegister,
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown model `{s}`; expected one of {}",
                    ModelKind::NAMES.join(", ")
                )))
            }
        })
    }
}

/// What every model instance needs from the history: its values and the initial value.
#[derive(Clone, Copy, Debug)]
pub struct Context<'h> {
    pub values: &'h Values,
    /// The value of a key before any write.
    pub initial: &'h Value,
    /// `initial` as an id, or [`Context::FOREIGN`] if no op in the history mentions it.
    pub initial_id: ValueId,
}

impl<'h> Context<'h> {
    /// The id of an initial value that appears nowhere in the history: equal to no op's value.
    pub const FOREIGN: ValueId = ValueId(u32::MAX);

    /// The one state the register models' memo keeps for every value no op reads or expects
    /// ([`register::Live`]).
    pub const DEAD: ValueId = ValueId(u32::MAX - 1);

    pub fn new(values: &'h Values, initial: &'h Value) -> Context<'h> {
        Context {
            values,
            initial,
            initial_id: values.find(initial).unwrap_or(Context::FOREIGN),
        }
    }

    /// Shows an interned value (or the foreign initial value).
    pub fn show(&self, id: ValueId) -> String {
        if id == Context::FOREIGN {
            self.initial.to_string()
        } else {
            self.values.get(id).to_string()
        }
    }
}

/// How the register models show an op.
pub(crate) fn describe_register_op(ctx: &Context<'_>, op: &Op) -> String {
    use crate::history::Outcome;
    match op.f {
        OpKind::Read if op.outcome == Outcome::Info => "read ?".to_string(),
        OpKind::Read => format!("read {}", ctx.show(op.value)),
        OpKind::Write => format!("write {}", ctx.show(op.value)),
        OpKind::Cas => format!("cas {}->{}", ctx.show(op.value), ctx.show(op.cas_new)),
        OpKind::Append => format!("append {}", ctx.show(op.value)),
        OpKind::Acquire | OpKind::Release | OpKind::Txn => op.f.name().to_string(),
    }
}
