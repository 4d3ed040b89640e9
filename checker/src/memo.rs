//! Lowe's memoisation: the set of configurations the search has already entered.
//!
//! A configuration is *which ops are linearized* (a bitset over one key's ops) plus *the model
//! state* they leave. Two paths that reach the same configuration have the same future, so the
//! search never enters one twice (Lowe, "Testing for linearizability", 2017). This set is what
//! keeps the Wing & Gong search from repeating work exponentially, and it is also the memory the
//! checker spends, so it counts every byte against a [`Budget`].
//!
//! Layout: records of a fixed size (`[hash, op|parent, bitset words...]`) in chunks that are
//! never moved, states in parallel chunks, and an open-addressing table of `u32` record ids
//! (linear probing, at most half full). A record also remembers which op was linearized last
//! and the record it came from, so any configuration's linearization can be read back by walking
//! parents: that is how a counterexample gets its prefix without copying stacks.
//!
//! The hash of a configuration is computed incrementally by the search (a Zobrist hash of the
//! bitset, XORed with the state's hash), so inserting costs one probe and, on a hash match, one
//! bitset comparison.

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

/// Records per chunk (a power of two): big enough that chunk bookkeeping is noise, small enough that a key with a
/// handful of configurations does not reserve megabytes.
const CHUNK: usize = 1024;

/// The set of visited configurations of one key's search.
pub struct Memo<'b, S> {
    /// u64 words per record: hash, op|parent, then the bitset.
    stride: usize,
    chunks: Vec<Box<[u64]>>,
    states: Vec<Vec<S>>,
    len: usize,
    /// Record id + 1 per slot; 0 is empty.
    table: Vec<u32>,
    budget: &'b Budget,
    reserved: usize,
}

impl<'b, S: Copy + Eq> Memo<'b, S> {
    /// A memo for bitsets of `words` u64 words.
    pub fn new(words: usize, budget: &'b Budget) -> Memo<'b, S> {
        Memo {
            stride: words + 2,
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

    /// Inserts the configuration (`bits`, `state`) with the given hash, reached by linearizing
    /// `op` from record `parent`. Returns its new record id, or `None` if it was already there.
    pub fn insert(
        &mut self,
        hash: u64,
        state: S,
        bits: &[u64],
        op: u32,
        parent: u32,
    ) -> Result<Option<u32>, OutOfBudget> {
        debug_assert_eq!(bits.len() + 2, self.stride);
        if (self.len + 1) * 2 > self.table.len() {
            self.grow_table()?;
        }
        let mask = self.table.len() - 1;
        let mut i = self.slot(hash);
        loop {
            let slot = self.table[i];
            if slot == 0 {
                break;
            }
            let rec = self.record(slot - 1);
            if rec[0] == hash && self.state(slot - 1) == state && rec[2..] == *bits {
                return Ok(None);
            }
            i = (i + 1) & mask;
        }
        let id = self.len;
        if id & (CHUNK - 1) == 0 {
            let bytes = CHUNK * self.stride * 8 + CHUNK * std::mem::size_of::<S>();
            self.reserve(bytes)?;
            self.chunks
                .push(vec![0u64; CHUNK * self.stride].into_boxed_slice());
            self.states.push(Vec::with_capacity(CHUNK));
        }
        let at = (id % CHUNK) * self.stride;
        let rec = &mut self.chunks[id / CHUNK][at..at + self.stride];
        rec[0] = hash;
        rec[1] = u64::from(op) | (u64::from(parent) << 32);
        rec[2..].copy_from_slice(bits);
        self.states[id / CHUNK].push(state);
        self.len += 1;
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
        let mut m: Memo<'_, u32> = Memo::new(2, &budget);
        for i in 0..5000u64 {
            let bits = [i, !i];
            assert!(m.insert(i * 7, 1, &bits, 0, ROOT).unwrap().is_some());
        }
        assert!(m.insert(21, 1, &[3, !3], 0, ROOT).unwrap().is_none());
        assert!(m.insert(21, 2, &[3, !3], 0, ROOT).unwrap().is_some());
        assert!(m.insert(21, 1, &[3, 3], 0, ROOT).unwrap().is_some());
        assert_eq!(m.len(), 5002);
    }

    #[test]
    fn stops_at_the_budget_and_gives_it_back() {
        let budget = Budget::new(100_000);
        {
            let mut m: Memo<'_, u32> = Memo::new(1, &budget);
            let mut i = 0u64;
            let err = loop {
                match m.insert(i, 0, &[i], 0, ROOT) {
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
