//! The linearizability search for one key: Wing & Gong's algorithm with Lowe's memoisation.
//!
//! **The question.** Is there a total order of the key's ops that (a) respects real time: an
//! op that completed before another was invoked comes first; (b) the model accepts, step by
//! step from its initial state; and (c) contains every `ok` op? `info` ops return at +infinity,
//! so (a) never forces them, and they may be left out (they never took effect).
//!
//! **The algorithm** (Wing & Gong 1993, as refined by Lowe 2017 and used by Porcupine). Put the
//! invoke ("call") and completion ("return") events of the ops in one doubly linked list, in
//! history order. Walk it from the head:
//!
//! - at a call whose op the model accepts in the current state, *linearize* it: push it on a
//!   stack, unlink its call and return entries from the list ("lift"), and start again from the
//!   head;
//! - at a return: that op was not linearized although it had to be by now. Undo the last
//!   linearization ("unlift": pop, relink, restore the state) and try the next call after it;
//! - when no `ok` op is left, the history is linearizable; when a return is met with an empty
//!   stack, it is not.
//!
//! Lowe's cache ([`crate::memo`]) records every configuration (linearized set, state) entered,
//! and a linearization that would lead to a known configuration is skipped: it was or is being
//! explored. This turns the search from factorial into at most "number of reachable
//! configurations". The memo also skips configurations *dominated* by a known one: the same
//! ok ops and state with more info ops linearized (see [`crate::memo`] for why that is sound).
//!
//! **Identical info ops.** Two `info` ops with the same `f` and values, both already invoked,
//! are interchangeable: both may go anywhere after their invoke, with the same effect. So among
//! such twins the search only linearizes the earliest-invoked one not yet linearized. Proof: take
//! any successful order that linearizes a later twin `b` while the earlier twin `a` is not yet
//! placed; swap them (`a` goes where `b` was, which is after `b`'s invoke and so after `a`'s;
//! `b` goes where `a` was, later, or nowhere if `a` was left out). The states along the order are
//! unchanged. Repeating this fixes every violation from left to right. Without this rule, `k`
//! pending timed-out `write 1`s give `2^k` configurations; with it, `k + 1`.
//!
//! **Reads are greedy.** If an ok read is available (invoked, and no return entry comes before
//! it in the list) and the state is what it read, linearizing it right now is never wrong: take
//! any successful order from here and move the read to the front; it changes no state, every
//! op that had to precede it is already linearized, and the ops it had to precede still come
//! after. So when a read is linearized the search never tries an alternative to it: if the
//! configuration after the read fails (or is already known), the one before fails too.
//! Without this, `k` reads of the same value pending together give `2^k` configurations.
//!
//! **Deadlines.** The ok ops not yet linearized are also kept in order of completion. After each
//! step the model is asked whether one of the next few is already doomed ([`Model::doomed`]):
//! for the register models, a read of another value that no op can still produce before it.
//! Such a configuration is abandoned before it enters the memo.
//!
//! **Limits.** Every `CHECK_EVERY` steps the search looks at the shared deadline and stop flag
//! (set at the deadline, or when another key turned out invalid) and counts the model's own
//! tables ([`Model::heap_bytes`]) against the shared budget, as the memo does with every byte
//! it allocates. Each gives [`Outcome::Unknown`].

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use crate::history::{Op, OpKind, Outcome as OpOutcome};
use crate::memo::{Budget, Frontier, Memo, ROOT};
use crate::model::Model;

/// How often (in loop iterations) the search looks at the clock: often enough to stop within a
/// millisecond, rarely enough that `Instant::now` costs nothing measurable.
const CHECK_EVERY: u32 = 1 << 12;

/// How many distinct states a counterexample lists at most.
pub const MAX_STATES: usize = 16;

/// Shared limits of one check.
pub struct Limits<'a> {
    pub deadline: Option<Instant>,
    /// Non-zero once every search should stop: [`STOP_TIME`] or [`STOP_INVALID`].
    pub stop: &'a AtomicU8,
    pub budget: &'a Budget,
}

/// [`Limits::stop`] value set by the first search past the deadline.
pub const STOP_TIME: u8 = 1;
/// [`Limits::stop`] value set once a key is invalid and the other keys need not finish.
pub const STOP_INVALID: u8 = 2;

/// Why a search gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GaveUp {
    TimeLimit,
    Memory,
    /// Another key was found invalid, which decides the history.
    OtherKeyInvalid,
}

impl GaveUp {
    /// Why every search was asked to stop, from a [`Limits::stop`] value.
    pub fn from_stop(v: u8) -> GaveUp {
        if v == STOP_INVALID {
            GaveUp::OtherKeyInvalid
        } else {
            GaveUp::TimeLimit
        }
    }
}

/// The result of searching one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<S> {
    Valid,
    Invalid(Failure<S>),
    Unknown(GaveUp),
}

/// Where the search got furthest before failing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure<S> {
    /// Position (in the searched ops) of the op that could not be linearized: the one whose
    /// completion was the furthest the search ever reached without being able to place it.
    pub op: usize,
    /// A linearization of the ops before it (positions, in order) that got that far.
    pub prefix: Vec<usize>,
    /// Distinct states of the configurations that got that far (at most [`MAX_STATES`]).
    pub states: Vec<S>,
}

/// What a search did, for reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Configurations entered (memo size).
    pub configurations: usize,
    /// Peak memo bytes.
    pub memo_bytes: usize,
}

/// A fixed pseudo-random 64-bit key per op (splitmix64): the Zobrist hash of a set is the XOR
/// of its members' keys, so adding or removing one op updates it in O(1).
fn zobrist(i: usize) -> u64 {
    let mut z = (i as u64)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// "No entry" in the linked list.
const NIL: u32 = u32::MAX;

/// The list of call and return entries. Entry `2i` is op `i`'s call, `2i + 1` its return
/// (absent for info ops); the head sentinel is entry `2n`.
struct Entries {
    next: Vec<u32>,
    prev: Vec<u32>,
    head: u32,
}

impl Entries {
    fn new(ops: &[Op]) -> Entries {
        let n = ops.len();
        let mut order: Vec<(u32, u32)> = Vec::with_capacity(2 * n);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.invoke, 2 * i as u32));
            if op.outcome == OpOutcome::Ok {
                order.push((op.complete, 2 * i as u32 + 1));
            }
        }
        order.sort_unstable();
        let head = 2 * n as u32;
        let mut next = vec![NIL; 2 * n + 1];
        let mut prev = vec![NIL; 2 * n + 1];
        let mut last = head;
        for &(_, e) in &order {
            next[last as usize] = e;
            prev[e as usize] = last;
            last = e;
        }
        Entries { next, prev, head }
    }

    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    /// Relinks `e` where it was; entries must be relinked in the reverse order of unlinking.
    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NIL {
            self.prev[n as usize] = e;
        }
    }
}

/// The ok ops not yet linearized, in order of completion: the head is the next deadline.
struct Deadlines {
    next: Vec<u32>,
    prev: Vec<u32>,
    head: u32,
}

impl Deadlines {
    fn new(ops: &[Op]) -> Deadlines {
        let n = ops.len();
        let mut order: Vec<u32> = (0..n as u32)
            .filter(|&i| ops[i as usize].outcome == OpOutcome::Ok)
            .collect();
        order.sort_unstable_by_key(|&i| ops[i as usize].complete);
        let head = n as u32;
        let mut next = vec![NIL; n + 1];
        let mut prev = vec![NIL; n + 1];
        let mut last = head;
        for &i in &order {
            next[last as usize] = i;
            prev[i as usize] = last;
            last = i;
        }
        Deadlines { next, prev, head }
    }

    fn unlink(&mut self, i: u32) {
        let (p, n) = (self.prev[i as usize], self.next[i as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, i: u32) {
        let (p, n) = (self.prev[i as usize], self.next[i as usize]);
        self.next[p as usize] = i;
        if n != NIL {
            self.prev[n as usize] = i;
        }
    }
}

/// How many of the next deadlines [`Model::doomed`] is asked about after each step: the first
/// few catch nearly everything, and each costs a lookup.
const LOOKAHEAD: usize = 4;

/// Which of the next deadlines, if any, is doomed after linearizing op `i` into `state`.
fn doomed_deadline<M: Model>(
    model: &mut M,
    state: M::State,
    ops: &[Op],
    deadlines: &Deadlines,
    i: u32,
) -> Option<u32> {
    let mut d = deadlines.next[deadlines.head as usize];
    if d == i {
        d = deadlines.next[d as usize];
    }
    if d == NIL {
        return None;
    }
    let horizon = ops[d as usize].complete;
    let mut asked = 0;
    while d != NIL && asked < LOOKAHEAD {
        if d != i {
            if model.doomed(state, &ops[d as usize], horizon) {
                return Some(d);
            }
            asked += 1;
        }
        d = deadlines.next[d as usize];
    }
    None
}

/// Bytes taken from the budget for the model's own tables, given back when the search ends.
struct Reservation<'b> {
    budget: &'b Budget,
    bytes: usize,
}

impl Reservation<'_> {
    /// Grows (or shrinks) the reservation to `bytes`; false if the budget cannot cover it.
    fn resize(&mut self, bytes: usize) -> bool {
        if bytes > self.bytes {
            if !self.budget.reserve(bytes - self.bytes) {
                return false;
            }
        } else {
            self.budget.release(self.bytes - bytes);
        }
        self.bytes = bytes;
        true
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

struct Frame<S> {
    op: u32,
    state: S,
    record: u32,
}

/// Decides whether `ops` (one key, in invoke order, fails already dropped) is linearizable.
pub fn search<M: Model>(
    model: &mut M,
    ops: &[Op],
    limits: &Limits<'_>,
) -> (Outcome<M::State>, Stats) {
    let n = ops.len();
    let mut remaining = ops.iter().filter(|o| o.outcome == OpOutcome::Ok).count();
    let mut stats = Stats::default();
    if remaining == 0 {
        return (Outcome::Valid, stats);
    }
    let mut entries = Entries::new(ops);
    let mut deadlines = Deadlines::new(ops);
    let twin = earlier_twins(ops);
    // Ok ops and info ops get separate bitsets (see the memo's dominance rule); `bit[i]` is op
    // i's position in its own one.
    let mut counts = [0u32; 2];
    let bit: Vec<u32> = ops
        .iter()
        .map(|op| {
            let part = usize::from(op.outcome == OpOutcome::Info);
            counts[part] += 1;
            counts[part] - 1
        })
        .collect();
    let is_info: Vec<bool> = ops.iter().map(|op| op.outcome == OpOutcome::Info).collect();
    let zob: Vec<u64> = (0..n).map(zobrist).collect();
    let mut ok_bits = Frontier::new(counts[0] as usize);
    let mut info_bits = vec![0u64; (counts[1] as usize).div_ceil(64)];
    let mut memo: Memo<'_, M::State> = Memo::new(info_bits.len(), limits.budget);

    let mut state = model.init();
    let mut set_hash = 0u64;
    let mut record = ROOT;
    let mut stack: Vec<Frame<M::State>> = Vec::new();

    // The furthest the search got: the completion index it could not pass, and how: the op
    // that could not be linearized, the record of the configuration, and an op linearized
    // after it (when a doomed deadline stopped the search before that step entered the memo).
    let mut best_at = 0u32;
    let mut best: Option<(usize, u32, Option<u32>)> = None;
    let mut best_states: Vec<M::State> = Vec::new();
    let mut note = |at: u32, failed: (usize, u32, Option<u32>), state: M::State| {
        if best.is_none() || at > best_at {
            best_at = at;
            best = Some(failed);
            best_states.clear();
            best_states.push(state);
        } else if at == best_at && best_states.len() < MAX_STATES && !best_states.contains(&state) {
            best_states.push(state);
        }
    };

    // Ok reads are linearized greedily: see the module docs.
    let greedy: Vec<bool> = ops
        .iter()
        .map(|op| op.outcome == OpOutcome::Ok && op.f == OpKind::Read)
        .collect();
    let mut backtrack = false;
    let mut entry = entries.next[entries.head as usize];
    let mut tick = 0u32;
    let mut model_bytes = Reservation {
        budget: limits.budget,
        bytes: 0,
    };
    let give_up = |why, memo: &Memo<'_, M::State>, mut stats: Stats| {
        stats.configurations = memo.len();
        stats.memo_bytes = memo.bytes();
        (Outcome::Unknown(why), stats)
    };
    'search: loop {
        tick = tick.wrapping_add(1);
        if tick & (CHECK_EVERY - 1) == 0 {
            if !model_bytes.resize(model.heap_bytes()) {
                return give_up(GaveUp::Memory, &memo, stats);
            }
            let stop = limits.stop.load(Ordering::Relaxed);
            if stop != 0 {
                return give_up(GaveUp::from_stop(stop), &memo, stats);
            }
            if limits.deadline.is_some_and(|d| Instant::now() >= d) {
                let _ = limits.stop.compare_exchange(
                    0,
                    STOP_TIME,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
                return give_up(GaveUp::TimeLimit, &memo, stats);
            }
        }
        if !backtrack {
            // Every ok op has a return entry, so walking off the end means none is left: but
            // that is caught when the last one is linearized, below.
            debug_assert_ne!(entry, NIL);
            let i = (entry >> 1) as usize;
            if entry & 1 == 0 {
                let op = &ops[i];
                let blocked = twin[i] != NIL && {
                    let b = bit[twin[i] as usize];
                    info_bits[b as usize / 64] >> (b % 64) & 1 == 0
                };
                let next = if blocked || (op.outcome == OpOutcome::Ok && !model.viable(state, op)) {
                    None
                } else {
                    model.step(state, op)
                };
                let doomed = next.and_then(|s| {
                    doomed_deadline(model, s, ops, &deadlines, i as u32).map(|d| (d, s))
                });
                if let Some((d, s)) = doomed {
                    // The configuration after it is dead: after a greedy read, so is this one.
                    note(
                        ops[d as usize].complete,
                        (d as usize, record, Some(i as u32)),
                        s,
                    );
                    backtrack = greedy[i];
                } else if let Some(next_state) = next {
                    let b = bit[i] as usize;
                    let next_hash = if is_info[i] {
                        info_bits[b / 64] |= 1 << (b % 64);
                        set_hash
                    } else {
                        ok_bits.set(b);
                        set_hash ^ zob[i]
                    };
                    let h = next_hash ^ crate::fx::hash_one(&next_state);
                    match memo.insert(h, next_state, &ok_bits, &info_bits, i as u32, record) {
                        Err(_) => return give_up(GaveUp::Memory, &memo, stats),
                        Ok(Some(id)) => {
                            stack.push(Frame {
                                op: i as u32,
                                state,
                                record,
                            });
                            state = next_state;
                            set_hash = next_hash;
                            record = id;
                            entries.unlink(entry);
                            if op.outcome == OpOutcome::Ok {
                                entries.unlink(entry + 1);
                                deadlines.unlink(i as u32);
                                remaining -= 1;
                                if remaining == 0 {
                                    stats.configurations = memo.len();
                                    stats.memo_bytes = memo.bytes();
                                    return (Outcome::Valid, stats);
                                }
                            }
                            entry = entries.next[entries.head as usize];
                            continue;
                        }
                        Ok(None) => {
                            if is_info[i] {
                                info_bits[b / 64] &= !(1 << (b % 64));
                            } else {
                                ok_bits.clear(b);
                            }
                            // A known configuration after a greedy read: this one fails too.
                            backtrack = greedy[i];
                        }
                    }
                }
                if !backtrack {
                    entry = entries.next[entry as usize];
                    continue;
                }
            } else {
                // Op i had to be linearized before this completion, and was not.
                note(ops[i].complete, (i, record, None), state);
            }
        }
        // Undo the last linearization and try the next call after it; undoing a greedy read
        // means the configuration it was taken from fails as well, so keep undoing.
        backtrack = false;
        loop {
            let Some(frame) = stack.pop() else {
                break 'search;
            };
            let j = frame.op as usize;
            if ops[j].outcome == OpOutcome::Ok {
                deadlines.relink(frame.op);
                entries.relink(2 * frame.op + 1);
                remaining += 1;
            }
            entries.relink(2 * frame.op);
            let b = bit[j] as usize;
            if is_info[j] {
                info_bits[b / 64] &= !(1 << (b % 64));
            } else {
                ok_bits.clear(b);
                set_hash ^= zob[j];
            }
            state = frame.state;
            record = frame.record;
            if !greedy[j] {
                entry = entries.next[2 * j];
                break;
            }
        }
    }
    stats.configurations = memo.len();
    stats.memo_bytes = memo.bytes();
    // Every failed search meets a return or a doomed deadline first; the fallback only keeps a
    // broken invariant from turning into a panic.
    let (op, mut rec, extra) = best.unwrap_or((0, ROOT, None));
    let mut prefix: Vec<usize> = extra.map(|e| e as usize).into_iter().collect();
    while rec != ROOT {
        let (o, parent) = memo.parent(rec);
        prefix.push(o as usize);
        rec = parent;
    }
    prefix.reverse();
    (
        Outcome::Invalid(Failure {
            op,
            prefix,
            states: best_states,
        }),
        stats,
    )
}

/// For each info op, the previous info op with the same `f` and values (by invoke order), or
/// [`NIL`]: it may be linearized only once that twin is.
fn earlier_twins(ops: &[Op]) -> Vec<u32> {
    let mut last = crate::fx::FxHashMap::default();
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            if op.outcome != OpOutcome::Info {
                return NIL;
            }
            last.insert((op.f, op.value, op.cas_new), i as u32)
                .unwrap_or(NIL)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_follows_the_model_and_is_given_back() {
        let budget = Budget::new(1000);
        {
            let mut r = Reservation {
                budget: &budget,
                bytes: 0,
            };
            assert!(r.resize(600));
            assert!(r.resize(900));
            assert!(!r.resize(1100), "over the budget");
            assert_eq!(r.bytes, 900);
            assert!(r.resize(100));
            assert!(Budget::reserve(&budget, 900), "shrinking gave bytes back");
            budget.release(900);
        }
        assert!(budget.reserve(1000), "dropping gave everything back");
    }
}
