//! A key-value store, checked one key at a time: `read`/`get`, `write`/`put`, `cas` and
//! `append`. A missing key reads as nothing: nil in riptide and Jepsen histories, `""` in
//! Porcupine's kv data (whose loader sets that as the default initial value).
//!
//! `append s` appends the string `s` to the key's value (nil counts as `""`, an integer as its
//! decimal text), so states are strings that grow. The model interns them: a state is a `u32`,
//! equal to the history's [`ValueId`] when the string appears in the history (so a read compares
//! ids), otherwise a local id. Appends are memoised per (state, suffix), so the search pays for
//! building each distinct string once.
//!
//! Concurrent appends are what makes append histories hard: `k` of them can be ordered in `k!`
//! ways, each a different string. Reads fix the order, and the model looks ahead to them:
//! [`Model::viable`] checks an append (put, cas) against the first read that must follow it
//! (`prefix_constraints`), and [`Model::doomed`] checks the state against pending reads that
//! nothing can reset before they complete (`kv_pins`). Both only ever prune orders that a read
//! already rules out; the property tests compare the result with a brute force.

use std::rc::Rc;

use crate::fx::FxHashMap as HashMap;

use super::kv_dead::Dead;
use super::register::Pins;
use super::{Context, Model};
use crate::history::{Op, OpKind, Outcome, Value, ValueId};

/// One key of a key-value store.
pub struct Kv<'h> {
    ctx: Context<'h>,
    /// This key's string values, by content, so that a built string finds its history id.
    history_strs: HashMap<&'h str, u32>,
    /// Strings built by appends (or an initial value absent from the history), by local id.
    local: Vec<Rc<str>>,
    /// Local ids by the Fx hash of their string. Keyed by the hash, not the string, because
    /// appends build long strings and a table keyed by them rehashes every one of them each
    /// time it grows (6% of a Porcupine kv check was that). Two strings with one hash: the
    /// later one goes to `collided`.
    local_ids: HashMap<u64, u32>,
    collided: HashMap<Rc<str>, u32>,
    /// `(state, suffix id) -> state` after an append.
    appended: HashMap<(u32, u32), u32>,
    /// Scratch space for building strings.
    buf: String,
    /// Bytes of the strings in `local`.
    local_bytes: usize,
    initial: u32,
    /// For an ok op that sets the value (put, cas, append), by invoke index: the value of the
    /// first read that must follow it, which the state right after the op must be a prefix of.
    /// See [`prefix_constraints`].
    must_prefix: HashMap<u32, (ValueId, u32)>,
    /// `(state, read value) ->` the state's length if it is a prefix of the read, else `u32::MAX`.
    prefix_memo: HashMap<(u32, u32), u32>,
    /// When a read pins the value; see [`kv_pins`].
    pins: Pins,
    /// Which states no op can observe any more: one memo state for them ([`super::kv_dead`]).
    dead: Dead,
}

impl<'h> Kv<'h> {
    /// A model of the key whose ops are `ops`.
    pub fn new(ctx: Context<'h>, ops: &[Op]) -> Kv<'h> {
        let mut history_strs = HashMap::default();
        for op in ops {
            for id in [op.value, op.cas_new] {
                if let Value::Str(s) = ctx.values.get(id) {
                    history_strs.insert(s.as_str(), id.0);
                }
            }
        }
        let mut kv = Kv {
            ctx,
            history_strs,
            local: Vec::new(),
            local_ids: HashMap::default(),
            collided: HashMap::default(),
            appended: HashMap::default(),
            buf: String::new(),
            local_bytes: 0,
            initial: ctx.initial_id.0,
            must_prefix: prefix_constraints(ops, ctx.values),
            prefix_memo: HashMap::default(),
            pins: kv_pins(ops, ctx.values),
            dead: Dead::new(ops, ctx.values),
        };
        let mut ids: Vec<u32> = kv.history_strs.values().copied().collect();
        ids.extend(ops.iter().flat_map(|op| [op.value.0, op.cas_new.0]));
        ids.push(kv.initial);
        for id in ids {
            let dead = kv.dead.compute(id, &kv.text_of(id), ctx.values);
            kv.dead.set_history(id, dead);
        }
        if ctx.initial_id == Context::FOREIGN {
            if let Value::Str(s) = ctx.initial {
                kv.initial = kv.intern_str(&s.clone(), None);
            }
        }
        kv
    }

    fn base(&self) -> u32 {
        self.ctx.values.len() as u32
    }

    /// Appends the text of state `id` to `out` (nil is empty, an integer its decimal form).
    fn push_text(&self, id: u32, out: &mut String) {
        use std::fmt::Write as _;
        if id == Context::FOREIGN.0 {
            // An initial value that no op mentions and that is not a string.
            let _ = write!(out, "{}", self.ctx.initial);
        } else if id < self.base() {
            match self.ctx.values.get(ValueId(id)) {
                Value::Nil => {}
                Value::Int(i) => {
                    let _ = write!(out, "{i}");
                }
                Value::Str(s) => out.push_str(s),
            }
        } else {
            out.push_str(&self.local[(id - self.base()) as usize]);
        }
    }

    /// The length of state's text if it is a prefix of the string `read`, else `u32::MAX`.
    fn prefix_len(&mut self, state: u32, read: ValueId) -> u32 {
        if let Some(&len) = self.prefix_memo.get(&(state, read.0)) {
            return len;
        }
        let Value::Str(r) = self.ctx.values.get(read) else {
            return u32::MAX;
        };
        let t = self.text_of(state);
        let len = if r.starts_with(t.as_ref()) {
            t.len() as u32
        } else {
            u32::MAX
        };
        self.prefix_memo.insert((state, read.0), len);
        len
    }

    /// The text of state (or value) `id`, borrowed where it is a string.
    fn text_of(&self, id: u32) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        if id != Context::FOREIGN.0 && id >= self.base() {
            return Cow::Borrowed(&self.local[(id - self.base()) as usize]);
        }
        if id < self.base() {
            if let Value::Str(s) = self.ctx.values.get(ValueId(id)) {
                return Cow::Borrowed(s);
            }
        }
        let mut s = String::new();
        self.push_text(id, &mut s);
        Cow::Owned(s)
    }

    /// Appends the text of the value that `op` (a put, cas or append) leaves in `state`.
    fn push_text_after(&self, state: u32, op: &Op, out: &mut String) {
        match op.f {
            OpKind::Append => {
                self.push_text(state, out);
                self.push_text(op.value.0, out);
            }
            OpKind::Cas => self.push_text(op.cas_new.0, out),
            _ => self.push_text(op.value.0, out),
        }
    }

    /// The canonical id of a string state; `dead` is its deadness if known (an append to a
    /// dead state), else it is computed for a new local string.
    fn intern_str(&mut self, s: &str, dead: Option<bool>) -> u32 {
        if let Some(&id) = self.history_strs.get(s) {
            return id;
        }
        let hash = crate::fx::hash_one(&s);
        let first = self.local_ids.get(&hash).copied();
        if let Some(id) = first {
            if *self.local[(id - self.base()) as usize] == *s {
                return id;
            }
            if let Some(&id) = self.collided.get(s) {
                return id;
            }
        }
        let id = self.base() + self.local.len() as u32;
        let rc: Rc<str> = Rc::from(s);
        let dead = dead.unwrap_or_else(|| self.dead.compute(id, s, self.ctx.values));
        self.dead.push_local(dead);
        self.local_bytes += s.len();
        self.local.push(rc.clone());
        if first.is_some() {
            self.collided.insert(rc, id);
        } else {
            self.local_ids.insert(hash, id);
        }
        id
    }

    fn append(&mut self, state: u32, suffix: ValueId) -> u32 {
        if let Some(&next) = self.appended.get(&(state, suffix.0)) {
            return next;
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.push_text(state, &mut buf);
        self.push_text(suffix.0, &mut buf);
        let dead = self.dead.is_dead(state, self.base()).then_some(true);
        let next = self.intern_str(&buf, dead);
        self.buf = buf;
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
            OpKind::Read if op.outcome == Outcome::Info => Some(state),
            OpKind::Read => (state == op.value.0).then_some(state),
            OpKind::Write => Some(op.value.0),
            OpKind::Cas => (state == op.value.0).then_some(op.cas_new.0),
            OpKind::Append => Some(self.append(state, op.value)),
            OpKind::Acquire | OpKind::Release | OpKind::Txn => None,
        }
    }

    fn canon(&self, state: u32) -> u32 {
        if self.dead.is_dead(state, self.base()) {
            Context::DEAD.0
        } else {
            state
        }
    }

    fn greedy(&self, state: u32, op: &Op, _next: u32) -> bool {
        self.dead
            .greedy_append(self.dead.is_dead(state, self.base()), op)
    }

    fn linearized(&mut self, op: &Op, on: bool) {
        self.dead.linearized(op, on);
    }

    fn describe_op(&self, op: &Op) -> String {
        let show = |id: ValueId| self.ctx.values.get(id).to_string();
        match op.f {
            OpKind::Read if op.outcome == Outcome::Info => "get ?".to_string(),
            OpKind::Read => format!("get {}", show(op.value)),
            OpKind::Write => format!("put {}", show(op.value)),
            OpKind::Cas => format!("cas {}->{}", show(op.value), show(op.cas_new)),
            OpKind::Append => format!("append {}", show(op.value)),
            OpKind::Acquire | OpKind::Release | OpKind::Txn => op.f.name().to_string(),
        }
    }

    fn describe_state(&self, state: u32) -> String {
        if state == Context::FOREIGN.0 || state < self.base() {
            return self.ctx.show(ValueId(state));
        }
        format!("{:?}", &*self.local[(state - self.base()) as usize])
    }

    fn doomed(&mut self, state: u32, pending: &Op, horizon: u32) -> bool {
        if !self.pins.pinned(pending, horizon) {
            return false;
        }
        match self.ctx.values.get(pending.value) {
            Value::Str(_) => self.prefix_len(state, pending.value) == u32::MAX,
            _ => state != pending.value.0,
        }
    }

    fn viable(&mut self, state: u32, op: &Op) -> bool {
        let Some(&(read, _)) = self.must_prefix.get(&op.invoke) else {
            return true;
        };
        let Value::Str(r) = self.ctx.values.get(read) else {
            return true; // constraints are only made for string reads
        };
        if op.f != OpKind::Append {
            // After a put or cas the value does not depend on the state before.
            let v = if op.f == OpKind::Cas {
                op.cas_new
            } else {
                op.value
            };
            return r.starts_with(self.text_of(v.0).as_ref());
        }
        let before = self.prefix_len(state, read);
        if before == u32::MAX {
            return false;
        }
        let Value::Str(r) = self.ctx.values.get(read) else {
            return true;
        };
        r[before as usize..].starts_with(self.text_of(op.value.0).as_ref())
    }

    fn explain(&mut self, state: u32, op: &Op) -> Option<String> {
        let &(read, at) = self.must_prefix.get(&op.invoke)?;
        if self.viable(state, op) {
            return None;
        }
        let mut after = String::new();
        self.push_text_after(state, op, &mut after);
        Some(format!(
            "After `{}` the value is {after:?}, but the read of {} invoked at history index \
             {at}, which must come after it with no put or cas in between, does not start with \
             that.",
            self.describe_op(op),
            self.ctx.values.get(read)
        ))
    }

    fn heap_bytes(&self) -> usize {
        // Strings (with their Rc counters), and the tables that grow with the search: a
        // hashbrown slot is the entry plus one control byte.
        self.local_bytes
            + self.local.len() * (16 + 16)
            + self.local_ids.capacity() * (8 + 4 + 1)
            + self.collided.capacity() * (16 + 4 + 1)
            + self.appended.capacity() * (12 + 1)
            + self.prefix_memo.capacity() * (12 + 1)
            + self.dead.heap_bytes()
    }

    fn droppable(&self, ops: &[Op]) -> Vec<bool> {
        unobserved_kv_info(ops, self.ctx.values)
    }
}

/// Finds, for each ok op that sets the value, a read whose result the new state must be a prefix
/// of: the lookahead behind [`Kv::viable`].
///
/// Take an ok op `a` (put, cas or append) and an ok read `r` invoked after `a` completed, so `r`
/// follows `a` in every linearization; pick the one that completes first. Between `a` and `r`
/// the value only grows by appends, unless a *replacing* op (put or cas, ok or info) runs in
/// between; such an op `q` must be able to: `q` completes after `a` is invoked and is invoked
/// before `r` completes. If one does, the last of them sets the value that `r`'s result starts
/// with. So if no such `q`'s value is a prefix of `r`'s result, none runs in between, and the
/// state right after `a`, extended by appends, is `r`'s result: it is a prefix of it.
///
/// Without this, `k` concurrent appends are tried in all `k!` orders before the read that
/// fixes their order is reached; with it, a wrong order is cut at its first wrong append.
fn prefix_constraints(ops: &[Op], values: &crate::history::Values) -> HashMap<u32, (ValueId, u32)> {
    let text_of = |id: ValueId| text(values.get(id));
    // Ok reads with a string result, by invoke, with the earliest completion among those
    // invoked at or after each position.
    let mut reads: Vec<&Op> = ops
        .iter()
        .filter(|o| o.f == OpKind::Read && o.outcome == Outcome::Ok)
        .filter(|o| matches!(values.get(o.value), Value::Str(_)))
        .collect();
    reads.sort_by_key(|o| o.invoke);
    let mut first_done: Vec<usize> = vec![usize::MAX; reads.len() + 1];
    for i in (0..reads.len()).rev() {
        let best = first_done[i + 1];
        first_done[i] = if best == usize::MAX || reads[i].complete < reads[best].complete {
            i
        } else {
            best
        };
    }
    let replacing: Vec<(&Op, String)> = ops
        .iter()
        .filter(|o| matches!(o.f, OpKind::Write | OpKind::Cas))
        .map(|o| {
            let v = if o.f == OpKind::Cas {
                o.cas_new
            } else {
                o.value
            };
            (o, text_of(v))
        })
        .collect();
    let mut out = HashMap::default();
    for a in ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        if !matches!(a.f, OpKind::Write | OpKind::Cas | OpKind::Append) {
            continue;
        }
        let at = reads.partition_point(|r| r.invoke < a.complete);
        let Some(&r) = first_done.get(at).and_then(|&i| reads.get(i)) else {
            continue;
        };
        let result = text_of(r.value);
        let reset_possible = replacing.iter().any(|(q, v)| {
            q.invoke != a.invoke
                && q.complete > a.invoke
                && q.invoke < r.complete
                && result.starts_with(v.as_str())
        });
        if !reset_possible {
            out.insert(a.invoke, (r.value, r.invoke));
        }
    }
    out
}

/// The kv version of [`Pins`]: for each ok read, the latest completion of a put or cas (any
/// outcome) invoked before the read completed that could be the last to replace the value
/// before it: one whose text is a prefix of the read's string (only appends follow it), or, for
/// a read of nil or an integer, that sets exactly that value. If none of them can run before the
/// read any more, only appends can, so the value now must be a prefix of what the read returned
/// (or equal it, for nil and integers). Costs reads x replacing ops; past [`PIN_WORK`] the kv
/// model does without pins (less pruning, same verdicts).
fn kv_pins(ops: &[Op], values: &crate::history::Values) -> Pins {
    let replacing: Vec<(&Op, ValueId, String)> = ops
        .iter()
        .filter(|o| matches!(o.f, OpKind::Write | OpKind::Cas))
        .map(|o| {
            let v = if o.f == OpKind::Cas {
                o.cas_new
            } else {
                o.value
            };
            (o, v, text(values.get(v)))
        })
        .collect();
    let reads: Vec<&Op> = ops
        .iter()
        .filter(|o| o.f == OpKind::Read && o.outcome == Outcome::Ok)
        .collect();
    let mut latest = HashMap::default();
    if reads.len().saturating_mul(replacing.len()) > PIN_WORK {
        return Pins::with(latest);
    }
    for r in reads {
        let produces = |v: ValueId, t: &str| match values.get(r.value) {
            Value::Str(r) => r.starts_with(t),
            _ => v == r.value,
        };
        let l = replacing
            .iter()
            .filter(|(q, v, t)| q.invoke < r.complete && produces(*v, t))
            .map(|(q, _, _)| q.complete)
            .max();
        latest.insert(r.invoke, l);
    }
    Pins::with(latest)
}

/// Work limit for [`kv_pins`] (reads x replacing ops): a few milliseconds.
const PIN_WORK: usize = 4_000_000;

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
        .map(|op| op.outcome == Outcome::Info && op.f == OpKind::Read)
        .collect();
    loop {
        let observed: Vec<&str> = ops
            .iter()
            .zip(&drop)
            .filter(|(op, d)| {
                !**d && ((op.f == OpKind::Read && op.outcome == Outcome::Ok) || op.f == OpKind::Cas)
            })
            .filter_map(|(op, _)| match values.get(op.value) {
                Value::Str(s) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        let mut changed = false;
        for (op, d) in ops.iter().zip(drop.iter_mut()) {
            if *d || op.outcome != Outcome::Info || !matches!(op.f, OpKind::Write | OpKind::Append)
            {
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
