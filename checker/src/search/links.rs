//! The search's two lists, as dancing links: the call and return entries still to place, in
//! history order, and the ok ops not linearized yet, in order of completion (their deadlines).
//! Linearizing an op unlinks its entries and relinking them undoes it, both in O(1).

use crate::history::{Op, Outcome};
use crate::model::Model;

/// "No entry" in a linked list.
pub(super) const NIL: u32 = u32::MAX;

/// A doubly linked list of `u32` items with a head sentinel, from which items are unlinked and
/// relinked in place (Knuth's dancing links): the two lists of the search.
pub(super) struct Links {
    pub(super) next: Vec<u32>,
    prev: Vec<u32>,
    head: u32,
}

impl Links {
    /// The items `order`, in that order, out of `0..head`; `head` is the sentinel.
    fn new(head: u32, order: impl IntoIterator<Item = u32>) -> Links {
        let mut next = vec![NIL; head as usize + 1];
        let mut prev = vec![NIL; head as usize + 1];
        let mut last = head;
        for e in order {
            next[last as usize] = e;
            prev[e as usize] = last;
            last = e;
        }
        Links { next, prev, head }
    }

    #[inline(always)]
    pub(super) fn first(&self) -> u32 {
        self.next[self.head as usize]
    }

    #[inline(always)]
    pub(super) fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    /// Relinks `e` where it was; items must be relinked in the reverse order of unlinking.
    #[inline(always)]
    pub(super) fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NIL {
            self.prev[n as usize] = e;
        }
    }
}

/// The list of call and return entries, in history order. Entry `2i` is op `i`'s call,
/// `2i + 1` its return (absent for info ops); the head sentinel is entry `2n`.
pub(super) fn entries(ops: &[Op]) -> Links {
    let mut order: Vec<(u32, u32)> = Vec::with_capacity(2 * ops.len());
    for (i, op) in ops.iter().enumerate() {
        order.push((op.invoke, 2 * i as u32));
        if op.outcome == Outcome::Ok {
            order.push((op.complete, 2 * i as u32 + 1));
        }
    }
    order.sort_unstable();
    Links::new(2 * ops.len() as u32, order.into_iter().map(|(_, e)| e))
}

/// The ok ops not yet linearized, in order of completion: the first is the next deadline.
pub(super) fn deadlines(ops: &[Op]) -> Links {
    let n = ops.len() as u32;
    let mut order: Vec<u32> = (0..n)
        .filter(|&i| ops[i as usize].outcome == Outcome::Ok)
        .collect();
    order.sort_unstable_by_key(|&i| ops[i as usize].complete);
    Links::new(n, order)
}

/// How many of the next deadlines [`Model::doomed`] is asked about after each step: the first
/// few catch nearly everything, and each costs a lookup.
const LOOKAHEAD: usize = 4;

/// Which of the next deadlines, if any, is doomed after linearizing op `i` into `state`.
#[inline]
pub(super) fn doomed_deadline<M: Model>(
    model: &mut M,
    state: M::State,
    ops: &[Op],
    deadlines: &Links,
    i: u32,
) -> Option<u32> {
    let mut d = deadlines.first();
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

/// The first deadline (ok op not linearized, in completion order) that [`Model::stranded`]
/// says leaving `state` strands: where a search pruned by [`Model::strands`] failed.
pub(super) fn stranded_deadline<M: Model>(
    model: &M,
    state: M::State,
    ops: &[Op],
    deadlines: &Links,
) -> Option<u32> {
    let mut d = deadlines.first();
    while d != NIL {
        if model.stranded(state, &ops[d as usize]) {
            return Some(d);
        }
        d = deadlines.next[d as usize];
    }
    None
}
