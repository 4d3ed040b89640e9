//! Dead strings of the kv model: states no later op can observe in full.
//!
//! An op observes the state in full when it compares it with a value: an ok read (the state
//! must equal its result) and a cas (it must equal the expected value). A state `s` is *live*
//! if it is one of those values (by id), or if its text is a prefix of one of those that are
//! strings (appends could still grow it into it); otherwise it is *dead*.
//!
//! **One memo state for all of them** ([`super::Model::canon`]). From a dead state an ok read
//! fails (its value is live, so it is not the state), a cas fails (the same), an info read
//! changes nothing, an append gives a dead state again (a string that starts with a dead one is
//! dead: were it a prefix of an observed string, so would its own prefix be), and a put or cas
//! sets a value that does not depend on the state. The kv model's pruning agrees: `viable` and
//! `doomed` only ask whether the state is a prefix of, or equal to, an observed value, which is
//! false for every dead state. So two dead states behave identically from then on, which is
//! all the memo asks of equal states. The observed set is taken over every op of the key,
//! dropped ones included, so it can only be larger than needed (fewer states dead).
//!
//! **Greedy appends** ([`super::Model::greedy`]): an ok append in a dead state, when every put
//! or cas not linearized yet (ok or info) was invoked after the append completed. Proof: take a
//! linearization `L` from here that places the append at position `p`. Every replacing op left
//! must follow the append in real time, so the ops before `p` in `L` are no puts or cas; from
//! a dead state they are then appends and info reads (ok reads and cas fail there), and the
//! states up to `p` stay dead. Move the append to the front: the states up to `p` are still
//! dead strings (dead ones with the append's text in the middle), the same ops still run on
//! them, and from `p` on the state is dead in both orders until the first replacing op, after
//! which they agree. Real time holds as for a greedy read: every op that had to precede the
//! append is already linearized (it is available), and the ones it precedes still follow it.

use std::collections::BTreeSet;

use crate::fx::FxHashMap as HashMap;
use crate::history::{Op, OpKind, Outcome, Value, ValueId, Values};

/// What the kv model needs to tell live states from dead ones and when an append is greedy.
pub(crate) struct Dead {
    /// Observed string values: ok reads' results and cas's expected values.
    observed: Vec<ValueId>,
    /// Observed values that are not strings (nil, integers), by id.
    observed_ids: Vec<u32>,
    /// Deadness of history values (and the foreign initial value), by id, once asked.
    history: HashMap<u32, bool>,
    /// Deadness of the model's local strings, by local index.
    local: Vec<bool>,
    /// Invokes of the puts and cas ops (ok or info) not linearized yet.
    replacing: BTreeSet<u32>,
}

impl Dead {
    pub(crate) fn new(ops: &[Op], values: &Values) -> Dead {
        let mut observed = Vec::new();
        let mut observed_ids = Vec::new();
        let mut replacing = BTreeSet::new();
        for op in ops {
            let observes =
                (op.f == OpKind::Read && op.outcome == Outcome::Ok) || op.f == OpKind::Cas;
            if observes {
                match values.get(op.value) {
                    Value::Str(_) => observed.push(op.value),
                    _ => observed_ids.push(op.value.0),
                }
            }
            if matches!(op.f, OpKind::Write | OpKind::Cas) {
                replacing.insert(op.invoke);
            }
        }
        observed.sort_unstable();
        observed.dedup();
        observed_ids.sort_unstable();
        observed_ids.dedup();
        Dead {
            observed,
            observed_ids,
            history: HashMap::default(),
            local: Vec::new(),
            replacing,
        }
    }

    /// Whether a state with id `id` and text `text` is dead.
    pub(crate) fn compute(&self, id: u32, text: &str, values: &Values) -> bool {
        if self.observed.binary_search(&ValueId(id)).is_ok()
            || self.observed_ids.binary_search(&id).is_ok()
        {
            return false;
        }
        !self.observed.iter().any(|&v| match values.get(v) {
            Value::Str(s) => s.starts_with(text),
            _ => false,
        })
    }

    /// Records the deadness of a history value (or the foreign initial value).
    pub(crate) fn set_history(&mut self, id: u32, dead: bool) {
        self.history.insert(id, dead);
    }

    /// Records the deadness of the next local string.
    pub(crate) fn push_local(&mut self, dead: bool) {
        self.local.push(dead);
    }

    /// Whether state `id` is dead; `base` is where local ids start. A history value never
    /// recorded counts as live.
    #[inline(always)]
    pub(crate) fn is_dead(&self, id: u32, base: u32) -> bool {
        if id >= base && id != crate::model::Context::FOREIGN.0 {
            self.local[(id - base) as usize]
        } else {
            self.history.get(&id).copied().unwrap_or(false)
        }
    }

    /// Whether an ok append `op` may be linearized greedily from a state of deadness `dead`.
    #[inline(always)]
    pub(crate) fn greedy_append(&self, dead: bool, op: &Op) -> bool {
        dead && op.f == OpKind::Append
            && op.outcome == Outcome::Ok
            && self.replacing.first().is_none_or(|&q| q > op.complete)
    }

    /// Keeps the set of replacing ops not linearized yet.
    #[inline(always)]
    pub(crate) fn linearized(&mut self, op: &Op, on: bool) {
        if matches!(op.f, OpKind::Write | OpKind::Cas) {
            if on {
                self.replacing.remove(&op.invoke);
            } else {
                self.replacing.insert(op.invoke);
            }
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.local.capacity() + self.history.capacity() * 9
    }
}
