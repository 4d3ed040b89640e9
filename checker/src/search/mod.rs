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
//! it allocates. Each gives [`SearchResult::Unknown`].

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

mod links;

use crate::history::{Op, OpKind, Outcome};
use crate::memo::{Budget, Frontier, Memo, Reservation, ROOT};
use crate::model::Model;
use links::{deadlines, doomed_deadline, entries, stranded_deadline, Links, NIL};

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
pub enum SearchResult<S> {
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

/// A linearized op, with what to restore when it is undone.
struct Frame<S> {
    op: u32,
    state: S,
    record: u32,
    /// Linearized greedily: undoing it fails the configuration it was taken from as well.
    greedy: bool,
}

/// The op that could not be linearized, the memo record of the configuration it failed in, and
/// the op linearized after it when a doomed deadline stopped the search before that step
/// entered the memo.
type Failed = (usize, u32, Option<u32>);

/// The furthest the search got: the completion index it could not pass, how, and the distinct
/// states it could not pass it in.
struct Furthest<S> {
    at: u32,
    failed: Option<Failed>,
    states: Vec<S>,
}

impl<S: Copy + Eq> Furthest<S> {
    fn note(&mut self, at: u32, failed: Failed, state: S) {
        if self.failed.is_none() || at > self.at {
            self.at = at;
            self.failed = Some(failed);
            self.states.clear();
            self.states.push(state);
        } else if at == self.at && self.states.len() < MAX_STATES && !self.states.contains(&state) {
            self.states.push(state);
        }
    }
}

/// What one visit of an entry decided.
enum Step {
    /// Go on to the next entry.
    Next,
    /// An op was linearized: start again from the head.
    Linearized,
    /// Undo the last linearization.
    Backtrack,
    /// The memo cannot grow within the budget.
    OutOfMemory,
}

/// One key's search: the entries still to place, what is linearized (stack, bitsets, state,
/// memo record) and what the search learnt on the way.
struct Search<'s, 'l, M: Model> {
    model: &'s mut M,
    ops: &'s [Op],
    limits: &'s Limits<'l>,
    entries: Links,
    deadlines: Links,
    /// Per op: the earlier identical info op it must wait for ([`earlier_twins`]), or [`NIL`].
    twin: Vec<u32>,
    /// Per op: its position in its bitset; ok ops and info ops get separate bitsets (see the
    /// memo's dominance rule).
    bit: Vec<u32>,
    is_info: Vec<bool>,
    /// Per op: an ok read, linearized greedily (see the module docs).
    greedy: Vec<bool>,
    /// Per op: its Zobrist key.
    zob: Vec<u64>,
    ok_bits: Frontier,
    info_bits: Vec<u64>,
    memo: Memo<'l, M::State>,
    state: M::State,
    /// Zobrist hash of the linearized ok ops.
    set_hash: u64,
    /// Memo record of the current configuration.
    record: u32,
    stack: Vec<Frame<M::State>>,
    /// Ok ops not linearized yet.
    remaining: usize,
    tick: u32,
    model_bytes: Reservation<'l>,
    furthest: Furthest<M::State>,
}

/// Decides whether `ops` (one key, in invoke order, fails already dropped) is linearizable.
pub fn search<M: Model>(
    model: &mut M,
    ops: &[Op],
    limits: &Limits<'_>,
) -> (SearchResult<M::State>, Stats) {
    if !ops.iter().any(|o| o.outcome == Outcome::Ok) {
        return (SearchResult::Valid, Stats::default());
    }
    let mut search = Search::new(model, ops, limits);
    let result = search.run();
    let stats = Stats {
        configurations: search.memo.len(),
        memo_bytes: search.memo.bytes(),
    };
    (result, stats)
}

impl<'s, 'l, M: Model> Search<'s, 'l, M> {
    fn new(model: &'s mut M, ops: &'s [Op], limits: &'s Limits<'l>) -> Self {
        let mut counts = [0u32; 2];
        let bit: Vec<u32> = ops
            .iter()
            .map(|op| {
                let part = usize::from(op.outcome == Outcome::Info);
                counts[part] += 1;
                counts[part] - 1
            })
            .collect();
        let info_bits = vec![0u64; (counts[1] as usize).div_ceil(64)];
        let state = model.init();
        Search {
            entries: entries(ops),
            deadlines: deadlines(ops),
            twin: earlier_twins(ops),
            bit,
            is_info: ops.iter().map(|op| op.outcome == Outcome::Info).collect(),
            greedy: ops
                .iter()
                .map(|op| op.outcome == Outcome::Ok && op.f == OpKind::Read)
                .collect(),
            zob: (0..ops.len()).map(zobrist).collect(),
            ok_bits: Frontier::new(counts[0] as usize),
            memo: Memo::new(info_bits.len(), limits.budget),
            info_bits,
            state,
            set_hash: 0,
            record: ROOT,
            stack: Vec::new(),
            remaining: counts[0] as usize,
            tick: 0,
            model_bytes: Reservation::new(limits.budget),
            furthest: Furthest {
                at: 0,
                failed: None,
                states: Vec::new(),
            },
            model,
            ops,
            limits,
        }
    }

    /// Walks the entries from the head: linearize a call and start again, or undo the last
    /// linearization at a return that was not reached in time.
    fn run(&mut self) -> SearchResult<M::State> {
        let mut entry = self.entries.first();
        loop {
            if let Some(why) = self.over_limits() {
                return SearchResult::Unknown(why);
            }
            // Every ok op has a return entry, so walking off the end means none is left: but
            // that is caught when the last one is linearized.
            debug_assert_ne!(entry, NIL);
            let step = if entry & 1 == 0 {
                self.try_call(entry)
            } else {
                self.missed_return(entry)
            };
            entry = match step {
                Step::Next => self.entries.next[entry as usize],
                Step::Linearized if self.remaining == 0 => return SearchResult::Valid,
                Step::Linearized => self.entries.first(),
                Step::Backtrack => match self.backtrack() {
                    Some(next) => next,
                    None => return SearchResult::Invalid(self.failure()),
                },
                Step::OutOfMemory => return SearchResult::Unknown(GaveUp::Memory),
            };
        }
    }

    /// Every [`CHECK_EVERY`] steps: whether to give up (the model's tables over the budget,
    /// the stop flag, the deadline).
    #[inline(always)]
    fn over_limits(&mut self) -> Option<GaveUp> {
        self.tick = self.tick.wrapping_add(1);
        if self.tick & (CHECK_EVERY - 1) != 0 {
            return None;
        }
        self.check_limits()
    }

    #[cold]
    #[inline(never)]
    fn check_limits(&mut self) -> Option<GaveUp> {
        if !self.model_bytes.resize(self.model.heap_bytes()) {
            return Some(GaveUp::Memory);
        }
        let stop = self.limits.stop.load(Ordering::Relaxed);
        if stop != 0 {
            return Some(GaveUp::from_stop(stop));
        }
        if self.limits.deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = self.limits.stop.compare_exchange(
                0,
                STOP_TIME,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            return Some(GaveUp::TimeLimit);
        }
        None
    }

    /// At op `i`'s call: linearize it if its twin rule, the model and the deadlines allow.
    #[inline(always)]
    fn try_call(&mut self, entry: u32) -> Step {
        let ops = self.ops;
        let i = (entry >> 1) as usize;
        let op = &ops[i];
        let next = if self.waits_for_twin(i)
            || (op.outcome == Outcome::Ok && !self.model.viable(self.state, op))
        {
            None
        } else {
            self.model.step(self.state, op)
        };
        let Some(next_state) = next else {
            return Step::Next;
        };
        let greedy = self.greedy[i] || self.model.greedy(self.state, op, next_state);
        if self.model.strands(self.state, next_state) {
            if let Some(d) = stranded_deadline(self.model, self.state, ops, &self.deadlines) {
                let failed = (d as usize, self.record, Some(i as u32));
                self.furthest
                    .note(ops[d as usize].complete, failed, next_state);
            }
            return Self::after_dead_end(greedy);
        }
        let doomed = doomed_deadline(self.model, next_state, ops, &self.deadlines, i as u32);
        if let Some(d) = doomed {
            // The configuration after it is dead: after a greedy step, so is this one.
            let failed = (d as usize, self.record, Some(i as u32));
            self.furthest
                .note(ops[d as usize].complete, failed, next_state);
            return Self::after_dead_end(greedy);
        }
        self.linearize(i, next_state, greedy)
    }

    /// Whether info op `i` has an identical twin invoked earlier and not linearized yet.
    #[inline(always)]
    fn waits_for_twin(&self, i: usize) -> bool {
        let twin = self.twin[i];
        twin != NIL && {
            let b = self.bit[twin as usize];
            self.info_bits[b as usize / 64] >> (b % 64) & 1 == 0
        }
    }

    /// A call that leads nowhere new: try the next one, unless it was a greedy step, whose
    /// configuration then fails as a whole.
    #[inline(always)]
    fn after_dead_end(greedy: bool) -> Step {
        if greedy {
            Step::Backtrack
        } else {
            Step::Next
        }
    }

    /// Linearizes op `i` into `next_state`, unless the memo knows the configuration it leads to.
    #[inline(always)]
    fn linearize(&mut self, i: usize, next_state: M::State, greedy: bool) -> Step {
        let b = self.bit[i] as usize;
        let op = &self.ops[i];
        let next_hash = if self.is_info[i] {
            self.info_bits[b / 64] |= 1 << (b % 64);
            self.set_hash
        } else {
            self.ok_bits.set(b);
            self.set_hash ^ self.zob[i]
        };
        let key = self.model.canon(next_state);
        let h = next_hash ^ crate::fx::hash_one(&key);
        let inserted = self.memo.insert(
            h,
            key,
            &self.ok_bits,
            &self.info_bits,
            i as u32,
            self.record,
        );
        match inserted {
            Err(_) => Step::OutOfMemory,
            Ok(Some(id)) => {
                self.stack.push(Frame {
                    op: i as u32,
                    state: self.state,
                    record: self.record,
                    greedy,
                });
                self.model.linearized(op, true);
                self.state = next_state;
                self.set_hash = next_hash;
                self.record = id;
                self.entries.unlink(2 * i as u32);
                if !self.is_info[i] {
                    self.entries.unlink(2 * i as u32 + 1);
                    self.deadlines.unlink(i as u32);
                    self.remaining -= 1;
                }
                Step::Linearized
            }
            Ok(None) => {
                if self.is_info[i] {
                    self.info_bits[b / 64] &= !(1 << (b % 64));
                } else {
                    self.ok_bits.clear(b);
                }
                // A known configuration after a greedy step: this one fails too.
                Self::after_dead_end(greedy)
            }
        }
    }

    /// At op `i`'s return: it had to be linearized before this completion, and was not.
    fn missed_return(&mut self, entry: u32) -> Step {
        let i = (entry >> 1) as usize;
        let failed = (i, self.record, None);
        self.furthest.note(self.ops[i].complete, failed, self.state);
        Step::Backtrack
    }

    /// Undoes the last linearization and returns the call to try next: the one after the
    /// undone op's. Undoing a greedy step (a read, or what [`Model::greedy`] allows) means the configuration it was taken from fails as
    /// well, so that is undone too. `None` once nothing is left to undo: not linearizable.
    #[inline(always)]
    fn backtrack(&mut self) -> Option<u32> {
        loop {
            let frame = self.stack.pop()?;
            let j = frame.op as usize;
            self.model.linearized(&self.ops[j], false);
            if !self.is_info[j] {
                self.deadlines.relink(frame.op);
                self.entries.relink(2 * frame.op + 1);
                self.remaining += 1;
            }
            self.entries.relink(2 * frame.op);
            let b = self.bit[j] as usize;
            if self.is_info[j] {
                self.info_bits[b / 64] &= !(1 << (b % 64));
            } else {
                self.ok_bits.clear(b);
                self.set_hash ^= self.zob[j];
            }
            self.state = frame.state;
            self.record = frame.record;
            if !frame.greedy {
                return Some(self.entries.next[2 * j]);
            }
        }
    }

    /// The counterexample of a failed search: where it got furthest, and the linearization
    /// (memo records back to the root) that got there.
    fn failure(&mut self) -> Failure<M::State> {
        // Every failed search meets a return or a doomed deadline first; the fallback only
        // keeps a broken invariant from turning into a panic.
        let (op, mut rec, extra) = self.furthest.failed.unwrap_or((0, ROOT, None));
        let mut prefix: Vec<usize> = extra.map(|e| e as usize).into_iter().collect();
        while rec != ROOT {
            let (o, parent) = self.memo.parent(rec);
            prefix.push(o as usize);
            rec = parent;
        }
        prefix.reverse();
        Failure {
            op,
            prefix,
            states: std::mem::take(&mut self.furthest.states),
        }
    }
}

/// For each info op, the previous info op with the same `f` and values (by invoke order), or
/// [`NIL`]: it may be linearized only once that twin is.
fn earlier_twins(ops: &[Op]) -> Vec<u32> {
    let mut last = crate::fx::FxHashMap::default();
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            if op.outcome != Outcome::Info {
                return NIL;
            }
            last.insert((op.f, op.value, op.cas_new), i as u32)
                .unwrap_or(NIL)
        })
        .collect()
}
