//! Lowe's memoisation: the set of configurations the search has already entered.
//!
//! A configuration is *which ops are linearized* (a bitset over one key's ops) plus *the model
//! state* they leave. Two paths that reach the same configuration have the same future, so the
//! search never enters one twice (Lowe, "Testing for linearizability", 2017). This set is what
//! keeps the Wing & Gong search from repeating work exponentially, and it is also the memory the
//! checker spends, so it counts every byte against a [`Budget`].
//!
//! **Info ops and dominance.** The bitset has two parts: the `ok` ops linearized and the `info`
//! ops linearized. A configuration `(ok, info, s)` *dominates* `(ok, info', s)` when
//! `info ⊆ info'`: info ops are optional and never return, so any way to finish from the second
//! (which needs only ok ops and real-time order among them) also finishes from the first, which
//! simply never linearizes the extra info ops. So a configuration is skipped not only when it
//! was seen, but when one with the same ok part and state and *fewer* info ops was seen. (If
//! that one is still being explored, an ancestor, it will find any success the skipped one
//! could: by induction on the number of ok ops left and then on the length of the successful
//! order, which is shorter from the ancestor.)
//!
//! **Frontier compression.** Ok ops are numbered in invoke order, and an ok op must be
//! linearized before any op invoked after it completed, so the ok bitset is nearly always
//! "all ones up to a point, a short mixed window, then zeros". A [`Frontier`] keeps the window's
//! bounds up to date as bits flip, and a record stores only the window. A record of a key with
//! 100,000 ops then costs tens of bytes instead of 12.5 KB, which is what lets a long
//! single-register history be checked at all.
//!
//! Layout: variable-size records (`[hash, op|parent, next, seq, lo|len, window..., info...]`)
//! in chunks that are never moved (each twice the size of the one before, up to 128 MiB), and
//! states in chunks by record number. A record's address is its chunk (8 bits) and word offset
//! (24 bits). Records with the same ok part and state form a *group*, chained through `next`;
//! an open-addressing table of addresses (linear probing, at most half full) points at each
//! group's newest record. Inserting into a group tests the new info set against each member (a
//! few AND-NOTs each) and unlinks the members the newcomer dominates, so groups stay small
//! antichains. A record also remembers which op was linearized last and the record it came
//! from, so any configuration's linearization can be read back by walking parents: that is how
//! a counterexample gets its prefix without copying stacks.
//!
//! The hash of a configuration is computed incrementally by the search (a Zobrist hash of the
//! ok bitset, XORed with the state's hash), so inserting costs one probe sequence and, on a
//! hash match, one window comparison.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A memory budget shared by every key checked at once.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Takes `bytes` from the budget, or returns false (and takes nothing) if it would overflow.
    pub fn reserve(&self, bytes: usize) -> bool {
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes > self.limit {
            self.used.fetch_sub(bytes, Ordering::Relaxed);
            return false;
        }
        true
    }

    pub fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// The memo ran out of budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBudget;

/// "No record": the parent of the first configuration.
pub const ROOT: u32 = u32::MAX;

/// "No record": the end of a group's chain.
const END: u64 = u64::MAX;

/// Words before a record's bitsets: hash, op|parent, next in group, seq, lo|len.
const HEADER: usize = 5;

/// Words in the first chunk: small, so that a key with a handful of configurations (most keys)
/// costs a few KiB.
const FIRST_CHUNK: usize = 1 << 10;
/// Words in the largest chunks: the 24-bit offset of an address.
const MAX_CHUNK: usize = 1 << 24;
/// States per state chunk (a power of two).
const STATE_CHUNK: usize = 1 << 12;

/// A bitset that tracks its "frontier window": every word below `lo` is all ones, every word
/// from `hi` on is zero.
#[derive(Clone, Debug)]
pub struct Frontier {
    words: Vec<u64>,
    lo: usize,
    hi: usize,
}

impl Frontier {
    /// An empty set of `bits` bits.
    pub fn new(bits: usize) -> Frontier {
        Frontier {
            words: vec![0; bits.div_ceil(64)],
            lo: 0,
            hi: 0,
        }
    }

    pub fn contains(&self, i: usize) -> bool {
        self.words[i / 64] >> (i % 64) & 1 == 1
    }

    pub fn set(&mut self, i: usize) {
        let w = i / 64;
        self.words[w] |= 1 << (i % 64);
        self.hi = self.hi.max(w + 1);
        while self.lo < self.hi && self.words[self.lo] == u64::MAX {
            self.lo += 1;
        }
    }

    pub fn clear(&mut self, i: usize) {
        let w = i / 64;
        self.words[w] &= !(1 << (i % 64));
        self.lo = self.lo.min(w);
        while self.hi > self.lo && self.words[self.hi - 1] == 0 {
            self.hi -= 1;
        }
    }

    /// The first word of the window and the window's words.
    pub fn window(&self) -> (usize, &[u64]) {
        (self.lo, &self.words[self.lo..self.hi])
    }

    /// All the words (for small sets, such as the info ops).
    pub fn words(&self) -> &[u64] {
        &self.words
    }
}

/// The set of visited configurations of one key's search.
pub struct Memo<'b, S> {
    info_words: usize,
    /// Each chunk keeps the capacity it was made with: records never move.
    chunks: Vec<Vec<u64>>,
    states: Vec<Vec<S>>,
    len: usize,
    /// Number of groups (distinct ok part and state), which is what fills the table.
    groups: usize,
    /// Record address + 1 per slot; 0 is empty.
    table: Vec<u32>,
    budget: &'b Budget,
    reserved: usize,
}

fn address(chunk: usize, offset: usize) -> u32 {
    ((chunk as u32) << 24) | offset as u32
}

impl<'b, S: Copy + Eq> Memo<'b, S> {
    /// A memo whose info bitsets have `info_words` words.
    pub fn new(info_words: usize, budget: &'b Budget) -> Memo<'b, S> {
        Memo {
            info_words,
            chunks: Vec::new(),
            states: Vec::new(),
            len: 0,
            groups: 0,
            table: Vec::new(),
            budget,
            reserved: 0,
        }
    }

    /// Number of configurations recorded.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held (and reserved from the budget).
    pub fn bytes(&self) -> usize {
        self.reserved
    }

    fn reserve(&mut self, bytes: usize) -> Result<(), OutOfBudget> {
        if !self.budget.reserve(bytes) {
            return Err(OutOfBudget);
        }
        self.reserved += bytes;
        Ok(())
    }

    fn release(&mut self, bytes: usize) {
        self.budget.release(bytes);
        self.reserved -= bytes;
    }

    /// The record at `addr`.
    fn record(&self, addr: u32) -> &[u64] {
        let chunk = &self.chunks[(addr >> 24) as usize];
        let at = (addr & 0xff_ffff) as usize;
        let len = (chunk[at + 4] >> 32) as usize;
        &chunk[at..at + HEADER + len + self.info_words]
    }

    fn state(&self, rec: &[u64]) -> S {
        let seq = rec[3] as usize;
        self.states[seq / STATE_CHUNK][seq % STATE_CHUNK]
    }

    /// The op linearized last in record `addr`, and the record before it ([`ROOT`] for none).
    pub fn parent(&self, addr: u32) -> (u32, u32) {
        let packed = self.record(addr)[1];
        (packed as u32, (packed >> 32) as u32)
    }

    fn slot(&self, hash: u64) -> usize {
        // Fibonacci hashing: the top bits of a multiply spread sequential Zobrist mixes well.
        let bits = self.table.len().trailing_zeros();
        (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
    }

    fn grow_table(&mut self) -> Result<(), OutOfBudget> {
        let new_len = (self.table.len() * 2).max(1024);
        self.reserve(new_len * 4)?;
        let old = std::mem::replace(&mut self.table, vec![0; new_len]);
        let mask = new_len - 1;
        for &slot in &old {
            if slot != 0 {
                let mut i = self.slot(self.record(slot - 1)[0]);
                while self.table[i] != 0 {
                    i = (i + 1) & mask;
                }
                self.table[i] = slot;
            }
        }
        self.release(old.len() * 4);
        Ok(())
    }

    /// Room for a record of `words` words: the address it will get.
    fn make_room(&mut self, words: usize) -> Result<u32, OutOfBudget> {
        if let Some(last) = self.chunks.last() {
            if last.capacity() - last.len() >= words {
                return Ok(address(self.chunks.len() - 1, last.len()));
            }
        }
        let size = self
            .chunks
            .last()
            .map_or(FIRST_CHUNK, |c| (c.capacity() * 2).min(MAX_CHUNK))
            .max(words);
        if size > MAX_CHUNK || self.chunks.len() == 255 {
            return Err(OutOfBudget); // 32 GiB of configurations: past any budget anyway
        }
        self.reserve(size * 8)?;
        self.chunks.push(Vec::with_capacity(size));
        Ok(address(self.chunks.len() - 1, 0))
    }

    fn set_next(&mut self, addr: u32, next: u64) {
        let chunk = &mut self.chunks[(addr >> 24) as usize];
        chunk[(addr & 0xff_ffff) as usize + 2] = next;
    }

    /// Inserts the configuration (`ok`, `info`, `state`) with the given hash, reached by
    /// linearizing `op` from record `parent`. Returns its address, or `None` if it or a
    /// configuration dominating it was already there.
    pub fn insert(
        &mut self,
        hash: u64,
        state: S,
        ok: &Frontier,
        info: &[u64],
        op: u32,
        parent: u32,
    ) -> Result<Option<u32>, OutOfBudget> {
        debug_assert_eq!(info.len(), self.info_words);
        let (lo, window) = ok.window();
        let key = GroupKey {
            hash,
            lo_len: lo as u64 | (window.len() as u64) << 32,
            window,
        };
        if (self.groups + 1) * 2 > self.table.len() {
            self.grow_table()?;
        }
        let (slot, group) = self.find_group(&key, state);
        if self.dominated(group, &key, info) {
            return Ok(None);
        }
        let addr = self.make_room(HEADER + window.len() + info.len())?;
        if self.len & (STATE_CHUNK - 1) == 0 {
            self.reserve(STATE_CHUNK * std::mem::size_of::<S>())?;
            self.states.push(Vec::with_capacity(STATE_CHUNK));
        }
        let kept = self.drop_dominated_by(group, &key, info);
        let chunk = self.chunks.last_mut().expect("make_room made one");
        chunk.push(hash);
        chunk.push(u64::from(op) | (u64::from(parent) << 32));
        chunk.push(kept);
        chunk.push(self.len as u64);
        chunk.push(key.lo_len);
        chunk.extend_from_slice(window);
        chunk.extend_from_slice(info);
        self.states[self.len / STATE_CHUNK].push(state);
        self.len += 1;
        if group.is_none() {
            self.groups += 1;
        }
        self.table[slot] = addr + 1;
        Ok(Some(addr))
    }

    /// The table slot of the group with this ok part and state (its newest record), or the
    /// empty slot where a new group goes.
    #[inline]
    fn find_group(&self, key: &GroupKey<'_>, state: S) -> (usize, Option<u32>) {
        let mask = self.table.len() - 1;
        let split = HEADER + key.window.len();
        let mut i = self.slot(key.hash);
        loop {
            let slot = self.table[i];
            if slot == 0 {
                return (i, None);
            }
            let rec = self.record(slot - 1);
            if rec[0] == key.hash
                && rec[4] == key.lo_len
                && self.state(rec) == state
                && rec[HEADER..split] == *key.window
            {
                return (i, Some(slot - 1));
            }
            i = (i + 1) & mask;
        }
    }

    /// Whether a member of `group` has an info set inside `info`: it dominates the newcomer.
    #[inline]
    fn dominated(&self, group: Option<u32>, key: &GroupKey<'_>, info: &[u64]) -> bool {
        let split = HEADER + key.window.len();
        let mut member = group.map_or(END, u64::from);
        while member != END {
            let rec = self.record(member as u32);
            if rec[split..]
                .iter()
                .zip(info)
                .all(|(seen, now)| seen & !now == 0)
            {
                return true;
            }
            member = rec[2];
        }
        false
    }

    /// Unlinks from `group`'s chain the members whose info set contains `info` (the newcomer
    /// dominates them; their records stay: they may be parents of other records). Returns the
    /// chain of the members kept, for the newcomer to head.
    #[inline]
    fn drop_dominated_by(&mut self, group: Option<u32>, key: &GroupKey<'_>, info: &[u64]) -> u64 {
        let split = HEADER + key.window.len();
        let mut kept = END;
        let mut member = group.map_or(END, u64::from);
        while member != END {
            let rec = self.record(member as u32);
            let next = rec[2];
            let dominated = rec[split..]
                .iter()
                .zip(info)
                .all(|(seen, now)| now & !seen == 0);
            if !dominated {
                self.set_next(member as u32, kept);
                kept = member;
            }
            member = next;
        }
        kept
    }
}

/// What the records of one group share: the configuration's hash and its ok part.
struct GroupKey<'w> {
    hash: u64,
    /// The ok window's first word and length, packed as a record stores them.
    lo_len: u64,
    window: &'w [u64],
}

impl<S> Drop for Memo<'_, S> {
    fn drop(&mut self) {
        self.budget.release(self.reserved);
    }
}

/// Bytes taken from the budget for the model's own tables, given back when the search ends.
pub(crate) struct Reservation<'b> {
    budget: &'b Budget,
    bytes: usize,
}

impl<'b> Reservation<'b> {
    /// Nothing reserved yet.
    pub(crate) fn new(budget: &'b Budget) -> Reservation<'b> {
        Reservation { budget, bytes: 0 }
    }

    /// Grows (or shrinks) the reservation to `bytes`; false if the budget cannot cover it.
    pub(crate) fn resize(&mut self, bytes: usize) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_set(bits: &[usize]) -> Frontier {
        let mut f = Frontier::new(256);
        for &b in bits {
            f.set(b);
        }
        f
    }

    #[test]
    fn the_frontier_window_covers_exactly_the_mixed_words() {
        // `black_box` keeps LLVM from unrolling these loops at compile time, which overflows
        // its stack (rustc 1.95, release test builds).
        let first = std::hint::black_box(70);
        let mut f = Frontier::new(256);
        for i in 0..first {
            f.set(i);
        }
        f.set(200);
        assert_eq!(f.window(), (1, &[0x3f, 0, 1 << 8][..]));
        f.clear(200);
        assert_eq!(f.window(), (1, &[0x3f][..]));
        f.clear(3);
        assert_eq!(f.window(), (0, &[!(1u64 << 3), 0x3f][..]));
        for i in 0..first {
            f.clear(i);
        }
        assert_eq!(f.window(), (0, &[][..]));
    }

    #[test]
    fn finds_what_it_stored_and_tells_states_apart() {
        let budget = Budget::new(1 << 30);
        let mut m: Memo<'_, u32> = Memo::new(0, &budget);
        for i in 0..5000usize {
            let ok = ok_set(&[i % 200, 200 + i / 200]);
            assert!(m
                .insert(i as u64 * 7, 1, &ok, &[], 0, ROOT)
                .unwrap()
                .is_some());
        }
        let ok = ok_set(&[3, 200]);
        assert!(m.insert(21, 1, &ok, &[], 0, ROOT).unwrap().is_none());
        assert!(m.insert(21, 2, &ok, &[], 0, ROOT).unwrap().is_some());
        assert!(m
            .insert(21, 1, &ok_set(&[3]), &[], 0, ROOT)
            .unwrap()
            .is_some());
        assert_eq!(m.len(), 5002);
    }

    #[test]
    fn fewer_info_ops_dominate_more() {
        let budget = Budget::new(1 << 30);
        let mut m: Memo<'_, u32> = Memo::new(1, &budget);
        let ok = ok_set(&[0]);
        assert!(m.insert(9, 1, &ok, &[0b010], 0, ROOT).unwrap().is_some());
        // Same ok part and state, a superset of info ops: dominated.
        assert!(m.insert(9, 1, &ok, &[0b110], 0, ROOT).unwrap().is_none());
        // Not a superset: new.
        assert!(m.insert(9, 1, &ok, &[0b100], 0, ROOT).unwrap().is_some());
        // A different state is never dominated.
        assert!(m.insert(9, 2, &ok, &[0b110], 0, ROOT).unwrap().is_some());
    }

    #[test]
    fn parents_lead_back_to_the_root() {
        let budget = Budget::new(1 << 30);
        let mut m: Memo<'_, u32> = Memo::new(0, &budget);
        let mut parent = ROOT;
        for op in 0..3000u32 {
            let ok = ok_set(&[op as usize % 256]);
            parent = m
                .insert(u64::from(op), op, &ok, &[], op, parent)
                .unwrap()
                .unwrap();
        }
        let mut ops = Vec::new();
        while parent != ROOT {
            let (op, p) = m.parent(parent);
            ops.push(op);
            parent = p;
        }
        assert_eq!(ops.len(), 3000);
        assert_eq!(ops[0], 2999);
    }

    #[test]
    fn stops_at_the_budget_and_gives_it_back() {
        let budget = Budget::new(100_000);
        {
            let mut m: Memo<'_, u32> = Memo::new(0, &budget);
            let mut i = 0u64;
            let err = loop {
                match m.insert(i, i as u32, &ok_set(&[1]), &[], 0, ROOT) {
                    Ok(_) => i += 1,
                    Err(e) => break e,
                }
            };
            assert_eq!(err, OutOfBudget);
            assert!(m.bytes() <= 100_000);
        }
        assert_eq!(budget.used.load(Ordering::Relaxed), 0);
    }

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
