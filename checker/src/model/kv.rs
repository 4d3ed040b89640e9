//! A key-value store, checked one key at a time: `read`/`get`, `write`/`put`, `cas` and
//! `append`. A missing key reads as nothing: nil in riptide and Jepsen histories, `""` in
//! Porcupine's kv data (whose loader sets that as the default initial value).
//!
//! `append s` appends the string `s` to the key's value (nil counts as `""`, an integer as its
//! decimal text), so states are strings that grow. The model interns them: a state is a `u32`,
//! equal to the history's [`ValueId`] when the string appears in the history (so a read compares
//! ids), otherwise a local id. Appends are memoised per (state, suffix), so the search pays for
//! building each distinct string once.

use std::collections::HashMap;

use super::{Context, Model};
use crate::history::{Op, Outcome, Value, ValueId, F};

/// One key of a key-value store.
pub struct Kv<'h> {
    ctx: Context<'h>,
    /// Every value named by this key's ops, by content, so a built string finds its history id.
    known: HashMap<Value, u32>,
    /// Values built by appends (or an initial value absent from the history), by local id.
    local: Vec<Value>,
    /// `(state, suffix id) -> state` after an append.
    appended: HashMap<(u32, u32), u32>,
    initial: u32,
}

impl<'h> Kv<'h> {
    /// A model of the key whose ops are `ops`.
    pub fn new(ctx: Context<'h>, ops: &[Op]) -> Kv<'h> {
        let mut known = HashMap::new();
        for op in ops {
            for id in [op.value, op.value2] {
                known.insert(ctx.values.get(id).clone(), id.0);
            }
        }
        let mut kv = Kv {
            ctx,
            known,
            local: Vec::new(),
            appended: HashMap::new(),
            initial: 0,
        };
        kv.initial = kv.intern(ctx.initial.clone());
        kv
    }

    fn base(&self) -> u32 {
        self.ctx.values.len() as u32
    }

    fn value(&self, id: u32) -> &Value {
        if id < self.base() {
            self.ctx.values.get(ValueId(id))
        } else {
            &self.local[(id - self.base()) as usize]
        }
    }

    fn intern(&mut self, v: Value) -> u32 {
        if let Some(&id) = self.known.get(&v) {
            return id;
        }
        let id = self.base() + self.local.len() as u32;
        self.local.push(v.clone());
        self.known.insert(v, id);
        id
    }

    fn append(&mut self, state: u32, suffix: ValueId) -> u32 {
        if let Some(&next) = self.appended.get(&(state, suffix.0)) {
            return next;
        }
        let mut s = text(self.value(state));
        s.push_str(&text(self.ctx.values.get(suffix)));
        let next = self.intern(Value::Str(s));
        self.appended.insert((state, suffix.0), next);
        next
    }
}

/// A value as the text an append extends.
fn text(v: &Value) -> String {
    match v {
        Value::Nil => String::new(),
        Value::Int(i) => i.to_string(),
        Value::Str(s) => s.clone(),
    }
}

impl Model for Kv<'_> {
    type State = u32;

    fn init(&mut self) -> u32 {
        self.initial
    }

    fn step(&mut self, state: u32, op: &Op) -> Option<u32> {
        match op.f {
            F::Read if op.outcome == Outcome::Info => Some(state),
            F::Read => (state == op.value.0).then_some(state),
            F::Write => Some(op.value.0),
            F::Cas => (state == op.value.0).then_some(op.value2.0),
            F::Append => Some(self.append(state, op.value)),
        }
    }

    fn describe_op(&self, op: &Op) -> String {
        let show = |id: ValueId| self.ctx.values.get(id).to_string();
        match op.f {
            F::Read if op.outcome == Outcome::Info => "get ?".to_string(),
            F::Read => format!("get {}", show(op.value)),
            F::Write => format!("put {}", show(op.value)),
            F::Cas => format!("cas {}->{}", show(op.value), show(op.value2)),
            F::Append => format!("append {}", show(op.value)),
        }
    }

    fn describe_state(&self, state: u32) -> String {
        self.value(state).to_string()
    }

    fn droppable(&self, ops: &[Op]) -> Vec<bool> {
        unobserved_kv_info(ops, self.ctx.values)
    }
}

/// The kv version of [`super::register::unobserved_info`].
///
/// 1. Info reads: drop.
/// 2. An info put or append of a non-empty string `s` that is not a substring of any value an op
///    observes (an ok read's result, a remaining cas's expected value). Take a linearization `L`
///    placing the op at `p`. From `p` on the state contains `s` (a put sets it to `s`, an append
///    ends it with `s`, later appends keep it) until a put or cas replaces it. A read or cas in
///    that stretch would observe a value containing `s`: there is none. So only appends (always
///    possible: they accept any state) run between `p` and the next put. Removing the op changes
///    the state only in that stretch, where nobody looks, and no real-time constraint is added.
///
/// Drops only shrink the observed set, so the rules are applied until nothing changes.
pub fn unobserved_kv_info(ops: &[Op], values: &crate::history::Values) -> Vec<bool> {
    let mut drop: Vec<bool> = ops
        .iter()
        .map(|op| op.outcome == Outcome::Info && op.f == F::Read)
        .collect();
    loop {
        let observed: Vec<&str> = ops
            .iter()
            .zip(&drop)
            .filter(|(op, d)| {
                !**d && ((op.f == F::Read && op.outcome == Outcome::Ok) || op.f == F::Cas)
            })
            .filter_map(|(op, _)| match values.get(op.value) {
                Value::Str(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        let mut changed = false;
        for (op, d) in ops.iter().zip(drop.iter_mut()) {
            if *d || op.outcome != Outcome::Info || !matches!(op.f, F::Write | F::Append) {
                continue;
            }
            let Value::Str(s) = values.get(op.value) else {
                continue;
            };
            if !s.is_empty() && !observed.iter().any(|o| o.contains(s.as_str())) {
                *d = true;
                changed = true;
            }
        }
        if !changed {
            return drop;
        }
    }
}
