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
//! Layout: records of a fixed size (`[hash, op|parent, next, ok words..., info words...]`) in
//! chunks that are never moved, states in parallel chunks. Records with the same ok part and
//! state form a *group*, chained through `next`; an open-addressing table of `u32` record ids
//! (linear probing, at most half full) points at each group's first record. Inserting into a
//! group tests the new info set against each member (a few AND-NOTs each) and unlinks the
//! members the newcomer dominates, so groups stay small antichains. A record also remembers which op was linearized last
//! and the record it came from, so any configuration's linearization can be read back by walking
//! parents: that is how a counterexample gets its prefix without copying stacks.
//!
//! The hash of a configuration is computed incrementally by the search (a Zobrist hash of the
//! ok bitset, XORed with the state's hash), so inserting costs one probe sequence and, on a
//! hash match, one bitset comparison.

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

/// Words before a record's bitsets: hash, op|parent, next in group.
const HEADER: usize = 3;

/// Records per chunk (a power of two): big enough that chunk bookkeeping is noise, small enough that a key with a
/// handful of configurations does not reserve megabytes.
const CHUNK: usize = 1024;

/// The set of visited configurations of one key's search.
pub struct Memo<'b, S> {
    /// u64 words per record: hash, op|parent, next, then the ok words and the info words.
    stride: usize,
    ok_words: usize,
    /// Number of groups (distinct ok part and state), which is what fills the table.
    groups: usize,
    /// Each chunk has room for [`CHUNK`] records and never reallocates.
    chunks: Vec<Vec<u64>>,
    states: Vec<Vec<S>>,
    len: usize,
    /// Record id + 1 per slot; 0 is empty.
    table: Vec<u32>,
    budget: &'b Budget,
    reserved: usize,
}

impl<'b, S: Copy + Eq> Memo<'b, S> {
    /// A memo for bitsets of `ok_words` + `info_words` u64 words.
    pub fn new(ok_words: usize, info_words: usize, budget: &'b Budget) -> Memo<'b, S> {
        Memo {
            stride: ok_words + info_words + HEADER,
            ok_words,
            groups: 0,
            chunks: Vec::new(),
            states: Vec::new(),
            len: 0,
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

    fn record(&self, id: u32) -> &[u64] {
        let id = id as usize;
        let chunk = &self.chunks[id / CHUNK];
        let at = (id % CHUNK) * self.stride;
        &chunk[at..at + self.stride]
    }

    fn state(&self, id: u32) -> S {
        let id = id as usize;
        self.states[id / CHUNK][id % CHUNK]
    }

    /// The op linearized last in record `id`, and the record before it ([`ROOT`] for none).
    pub fn parent(&self, id: u32) -> (u32, u32) {
        let packed = self.record(id)[1];
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

    fn record_mut(&mut self, id: u32) -> &mut [u64] {
        let id = id as usize;
        let stride = self.stride;
        let chunk = &mut self.chunks[id / CHUNK];
        let at = (id % CHUNK) * stride;
        &mut chunk[at..at + stride]
    }

    /// Inserts the configuration (`ok`, `info`, `state`) with the given hash, reached by
    /// linearizing `op` from record `parent`. Returns its new record id, or `None` if it or a
    /// configuration dominating it was already there.
    pub fn insert(
        &mut self,
        hash: u64,
        state: S,
        ok: &[u64],
        info: &[u64],
        op: u32,
        parent: u32,
    ) -> Result<Option<u32>, OutOfBudget> {
        debug_assert_eq!(ok.len() + info.len() + HEADER, self.stride);
        let split = HEADER + self.ok_words;
        if (self.groups + 1) * 2 > self.table.len() {
            self.grow_table()?;
        }
        let mask = self.table.len() - 1;
        let mut i = self.slot(hash);
        let mut group = None;
        loop {
            let slot = self.table[i];
            if slot == 0 {
                break;
            }
            let rec = self.record(slot - 1);
            if rec[0] == hash && self.state(slot - 1) == state && rec[HEADER..split] == *ok {
                group = Some(slot - 1);
                break;
            }
            i = (i + 1) & mask;
        }
        // Within the group: is the newcomer dominated (some member's info set is a subset)?
        let mut member = group.map_or(END, u64::from);
        while member != END {
            let rec = self.record(member as u32);
            if rec[split..]
                .iter()
                .zip(info)
                .all(|(seen, now)| seen & !now == 0)
            {
                return Ok(None);
            }
            member = rec[2];
        }
        let id = self.len;
        if id & (CHUNK - 1) == 0 {
            let bytes = CHUNK * self.stride * 8 + CHUNK * std::mem::size_of::<S>();
            self.reserve(bytes)?;
            self.chunks.push(Vec::with_capacity(CHUNK * self.stride));
            self.states.push(Vec::with_capacity(CHUNK));
        }
        // The members the newcomer dominates leave the chain (their records stay: they may be
        // parents of other records).
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
                self.record_mut(member as u32)[2] = kept;
                kept = member;
            }
            member = next;
        }
        let chunk = &mut self.chunks[id / CHUNK];
        chunk.push(hash);
        chunk.push(u64::from(op) | (u64::from(parent) << 32));
        chunk.push(kept);
        chunk.extend_from_slice(ok);
        chunk.extend_from_slice(info);
        self.states[id / CHUNK].push(state);
        self.len += 1;
        if group.is_none() {
            self.groups += 1;
        }
        self.table[i] = id as u32 + 1;
        Ok(Some(id as u32))
    }
}

impl<S> Drop for Memo<'_, S> {
    fn drop(&mut self) {
        self.budget.release(self.reserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_it_stored_and_tells_states_apart() {
        let budget = Budget::new(1 << 30);
        let mut m: Memo<'_, u32> = Memo::new(2, 0, &budget);
        for i in 0..5000u64 {
            let bits = [i, !i];
            assert!(m.insert(i * 7, 1, &bits, &[], 0, ROOT).unwrap().is_some());
        }
        assert!(m.insert(21, 1, &[3, !3], &[], 0, ROOT).unwrap().is_none());
        assert!(m.insert(21, 2, &[3, !3], &[], 0, ROOT).unwrap().is_some());
        assert!(m.insert(21, 1, &[3, 3], &[], 0, ROOT).unwrap().is_some());
        assert_eq!(m.len(), 5002);
    }

    #[test]
    fn fewer_info_ops_dominate_more() {
        let budget = Budget::new(1 << 30);
        let mut m: Memo<'_, u32> = Memo::new(1, 1, &budget);
        assert!(m.insert(9, 1, &[1], &[0b010], 0, ROOT).unwrap().is_some());
        // Same ok part and state, a superset of info ops: dominated.
        assert!(m.insert(9, 1, &[1], &[0b110], 0, ROOT).unwrap().is_none());
        // Not a superset: new.
        assert!(m.insert(9, 1, &[1], &[0b100], 0, ROOT).unwrap().is_some());
        // A different state is never dominated.
        assert!(m.insert(9, 2, &[1], &[0b110], 0, ROOT).unwrap().is_some());
    }

    #[test]
    fn stops_at_the_budget_and_gives_it_back() {
        let budget = Budget::new(100_000);
        {
            let mut m: Memo<'_, u32> = Memo::new(1, 0, &budget);
            let mut i = 0u64;
            let err = loop {
                match m.insert(i, 0, &[i], &[], 0, ROOT) {
                    Ok(_) => i += 1,
                    Err(e) => break e,
                }
            };
            assert_eq!(err, OutOfBudget);
            assert!(m.bytes() <= 100_000);
        }
        assert_eq!(budget.used.load(Ordering::Relaxed), 0);
    }
}
