//! The in-memory view of the replicated log, with the commit and apply positions.
//!
//! The log is a `Vec<Entry>` that starts after `offset` (0 for a fresh node; a snapshot's last
//! index once a prefix has been discarded). Terms never decrease along the log, which lets the
//! conflict hints binary-search instead of scanning a whole term.
//!
//! Invariants (checked with `debug_assert!` and by the scenario and simulation tests):
//! - `entries[k].index == offset + 1 + k`;
//! - `applied <= commit <= last_index()`;
//! - a committed entry is never truncated. This is guaranteed by the election restriction, not
//!   by the log: as Figure 2 prescribes, a follower replaces whatever conflicts with its leader's
//!   entries. If that ever reaches committed entries, [`RaftLog::append_after`] says so (an
//!   [`Overwrite`]) so the node can report the safety violation loudly;
//! - `persisted <= last_index()`; entries after `persisted` are waiting for the storage.

use crate::types::{Entry, Index, Payload, Term};

/// A leader replaced entries this node had already committed: State Machine Safety (paper
/// §5.4) is broken, and acknowledged writes are lost. Only a bug in some node (or an
/// `--unsafe-bug` flag at work) can cause it; the node follows its leader anyway, as Raft
/// prescribes, and reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overwrite {
    /// The first replaced index.
    pub from: Index,
    /// The commit index before the replacement.
    pub commit: Index,
}

/// The replicated log as the core sees it.
#[derive(Clone, Debug)]
pub struct RaftLog {
    offset_index: Index,
    offset_term: Term,
    entries: Vec<Entry>,
    commit: Index,
    applied: Index,
    persisted: Index,
    /// The lowest index written since the storage last took the new entries, if any.
    unpersisted_from: Option<Index>,
}

impl RaftLog {
    /// A log recovered from storage: `entries` follow `(offset_index, offset_term)` and are all
    /// durable. `commit` and `applied` start at the offset (a snapshot is committed and applied).
    pub fn recovered(offset_index: Index, offset_term: Term, entries: Vec<Entry>) -> RaftLog {
        debug_assert!(entries
            .iter()
            .enumerate()
            .all(|(k, e)| e.index == offset_index + 1 + k as Index));
        let persisted = offset_index + entries.len() as Index;
        RaftLog {
            offset_index,
            offset_term,
            entries,
            commit: offset_index,
            applied: offset_index,
            persisted,
            unpersisted_from: None,
        }
    }

    pub fn last_index(&self) -> Index {
        self.offset_index + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.offset_term, |e| e.term)
    }

    /// Index of the first entry held in memory.
    pub fn first_index(&self) -> Index {
        self.offset_index + 1
    }

    pub fn commit_index(&self) -> Index {
        self.commit
    }

    pub fn applied_index(&self) -> Index {
        self.applied
    }

    pub fn persisted_index(&self) -> Index {
        self.persisted
    }

    /// The term of the entry at `index`, if the log knows it (index 0 has term 0).
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.offset_index {
            return Some(self.offset_term);
        }
        self.get(index).map(|e| e.term)
    }

    pub fn get(&self, index: Index) -> Option<&Entry> {
        if index <= self.offset_index {
            return None;
        }
        self.entries.get((index - self.offset_index - 1) as usize)
    }

    /// The Log Matching check: does the entry at `index` have term `term`?
    pub fn matches(&self, index: Index, term: Term) -> bool {
        self.term_at(index) == Some(term)
    }

    /// Election restriction (paper §5.4.1): is a log ending at `(last_term, last_index)` at least
    /// as up to date as ours? Compare last terms first, then lengths.
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        (last_term, last_index) >= (self.last_term(), self.last_index())
    }

    /// Appends one entry at the end (the leader's path). Returns its index.
    pub fn append(&mut self, term: Term, payload: Payload) -> Index {
        let index = self.last_index() + 1;
        debug_assert!(term >= self.last_term());
        self.entries.push(Entry {
            term,
            index,
            payload,
        });
        self.note_written(index);
        index
    }

    /// The follower's path: accept `entries` that follow `prev_index`, which the caller has checked
    /// matches. Entries already present with the same term are skipped (the message may be a
    /// duplicate or reordered); the first conflicting entry and everything after it are replaced.
    /// Returns the index of the last entry the message vouched for, and whether committed
    /// entries were replaced.
    pub fn append_after(
        &mut self,
        prev_index: Index,
        entries: &[Entry],
    ) -> (Index, Option<Overwrite>) {
        let last_new = prev_index + entries.len() as Index;
        for (k, entry) in entries.iter().enumerate() {
            let index = prev_index + 1 + k as Index;
            debug_assert_eq!(entry.index, index);
            if index <= self.offset_index {
                continue; // already folded into the snapshot, hence committed and equal
            }
            match self.term_at(index) {
                Some(term) if term == entry.term => continue,
                Some(_) => {
                    let overwrite = (index <= self.commit).then_some(Overwrite {
                        from: index,
                        commit: self.commit,
                    });
                    self.truncate_from(index);
                    self.extend(&entries[k..]);
                    return (last_new, overwrite);
                }
                None => {
                    self.extend(&entries[k..]);
                    return (last_new, None);
                }
            }
        }
        (last_new, None)
    }

    fn extend(&mut self, entries: &[Entry]) {
        if let Some(first) = entries.first() {
            debug_assert_eq!(first.index, self.last_index() + 1);
            self.note_written(first.index);
            self.entries.extend_from_slice(entries);
        }
    }

    /// TEST ONLY (the truncate-on-match bug): drops every entry after `index`, matching or not.
    pub fn truncate_after(&mut self, index: Index) {
        if index >= self.offset_index && index < self.last_index() {
            self.truncate_from(index + 1);
        }
    }

    fn truncate_from(&mut self, index: Index) {
        self.entries
            .truncate((index - self.offset_index - 1) as usize);
        self.persisted = self.persisted.min(index - 1);
        // Only after a safety violation (see `Overwrite`) do these move back: the state machine
        // has applied entries that no longer exist, and will apply their replacements on top.
        self.commit = self.commit.min(index - 1);
        self.applied = self.applied.min(index - 1);
    }

    fn note_written(&mut self, index: Index) {
        self.unpersisted_from = Some(self.unpersisted_from.map_or(index, |from| from.min(index)));
    }

    /// Hands the entries written since the last call to the storage. The storage must replace any
    /// stored entries from the first returned index on.
    pub fn take_unpersisted(&mut self) -> Vec<Entry> {
        match self.unpersisted_from.take() {
            Some(from) if from <= self.last_index() => self.slice(from, self.last_index() + 1),
            _ => Vec::new(),
        }
    }

    /// The storage made everything up to `index` durable.
    pub fn persisted_to(&mut self, index: Index) {
        self.persisted = index.min(self.last_index()).max(self.persisted);
    }

    /// Entries `[from, to)` (clamped to what is in memory), cloned.
    pub fn slice(&self, from: Index, to: Index) -> Vec<Entry> {
        let from = from.max(self.first_index());
        let to = to.min(self.last_index() + 1);
        if from >= to {
            return Vec::new();
        }
        let base = self.offset_index + 1;
        self.entries[(from - base) as usize..(to - base) as usize].to_vec()
    }

    /// Up to `max_entries` entries starting at `from`, stopping once `max_bytes` of payload is
    /// reached (always at least one entry if there is one, so a huge entry still moves).
    pub fn batch(&self, from: Index, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut index = from;
        while let Some(entry) = self.get(index) {
            let size = match &entry.payload {
                Payload::Command(c) => c.len(),
                Payload::Noop => 0,
                Payload::Config(_) => 0,
            };
            if !out.is_empty() && (out.len() >= max_entries || bytes + size > max_bytes) {
                break;
            }
            bytes += size;
            out.push(entry.clone());
            index += 1;
        }
        out
    }

    /// First index holding `term` at or before `upto`, or None. Terms are non-decreasing along the
    /// log, so this is a binary search.
    pub fn first_index_of_term(&self, term: Term, upto: Index) -> Option<Index> {
        let upto = upto.min(self.last_index());
        if upto < self.first_index() {
            return None;
        }
        let window = &self.entries[..(upto - self.offset_index) as usize];
        let k = window.partition_point(|e| e.term < term);
        window.get(k).filter(|e| e.term == term).map(|e| e.index)
    }

    /// Last index holding `term`, or None.
    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        let k = self.entries.partition_point(|e| e.term <= term);
        if k == 0 {
            return (self.offset_term == term && self.offset_index > 0)
                .then_some(self.offset_index);
        }
        let entry = &self.entries[k - 1];
        (entry.term == term).then_some(entry.index)
    }

    /// Moves the commit index forward (never back). Returns whether it moved.
    pub fn commit_to(&mut self, index: Index) -> bool {
        let index = index.min(self.last_index());
        if index > self.commit {
            self.commit = index;
            true
        } else {
            false
        }
    }

    /// The snapshot the log starts after: `(index, term)` of the last discarded entry.
    pub fn offset(&self) -> (Index, Term) {
        (self.offset_index, self.offset_term)
    }

    /// Discards every entry up to and including `index` (log compaction, paper §7): the state
    /// machine's snapshot covers them. Only applied entries can go; a larger `index` is clamped
    /// to the applied index. Returns how many entries were discarded.
    pub fn compact_to(&mut self, index: Index) -> usize {
        let index = index.min(self.applied);
        if index <= self.offset_index {
            return 0;
        }
        let term = self.term_at(index).expect("an applied entry is in the log");
        let count = (index - self.offset_index) as usize;
        self.entries.drain(..count);
        // The vector's spare room would otherwise keep the discarded entries' memory.
        if self.entries.capacity() > 2 * self.entries.len() + 1024 {
            self.entries.shrink_to_fit();
        }
        self.offset_index = index;
        self.offset_term = term;
        count
    }

    /// Replaces the log's prefix with an installed snapshot covering `(index, term)` (paper §7,
    /// Figure 13): if the log holds that very entry, the entries after it are kept; otherwise the
    /// whole log goes (it conflicts with the snapshot, or ends before it). The snapshot is
    /// committed and applied. The caller has checked that `index` is past the commit index.
    pub fn restore(&mut self, index: Index, term: Term) {
        debug_assert!(index > self.commit);
        if self.term_at(index) == Some(term) {
            let count = (index - self.offset_index) as usize;
            self.entries.drain(..count);
        } else {
            self.entries.clear();
        }
        self.offset_index = index;
        self.offset_term = term;
        self.commit = index;
        self.applied = index;
        self.persisted = self.persisted.max(index);
        self.unpersisted_from = self
            .unpersisted_from
            .map(|from| from.max(index + 1))
            .filter(|&from| from <= self.last_index());
    }

    /// Committed entries not yet handed to the state machine; marks them applied.
    pub fn take_committed(&mut self) -> Vec<Entry> {
        self.take_committed_at_most(usize::MAX)
    }

    /// The first `max` committed entries not yet handed to the state machine; marks them applied.
    pub fn take_committed_at_most(&mut self, max: usize) -> Vec<Entry> {
        if self.commit <= self.applied || max == 0 {
            return Vec::new();
        }
        let to = self.commit.min(self.applied.saturating_add(max as Index));
        let out = self.slice(self.applied + 1, to + 1);
        self.applied = to;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_with_terms(terms: &[Term]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(k, &term)| Entry {
                term,
                index: k as Index + 1,
                payload: Payload::Noop,
            })
            .collect();
        RaftLog::recovered(0, 0, entries)
    }

    #[test]
    fn term_lookups_binary_search_along_nondecreasing_terms() {
        let log = log_with_terms(&[1, 1, 2, 2, 2, 4, 5, 5]);
        assert_eq!(log.first_index_of_term(2, 8), Some(3));
        assert_eq!(log.first_index_of_term(2, 4), Some(3));
        assert_eq!(log.first_index_of_term(3, 8), None);
        assert_eq!(log.first_index_of_term(5, 6), None);
        assert_eq!(log.last_index_of_term(2), Some(5));
        assert_eq!(log.last_index_of_term(3), None);
        assert_eq!(log.last_index_of_term(5), Some(8));
    }

    #[test]
    fn append_after_skips_duplicates_and_replaces_conflicts() {
        let mut log = log_with_terms(&[1, 1, 1, 1]);
        let incoming = vec![
            Entry {
                term: 1,
                index: 2,
                payload: Payload::Noop,
            },
            Entry {
                term: 2,
                index: 3,
                payload: Payload::Noop,
            },
        ];
        assert_eq!(log.append_after(1, &incoming), (3, None));
        assert_eq!(log.last_index(), 3);
        assert_eq!(log.term_at(3), Some(2));
        assert_eq!(log.take_unpersisted().first().map(|e| e.index), Some(3));
        assert_eq!(log.persisted_index(), 2);
    }

    #[test]
    fn replacing_a_committed_entry_follows_the_leader_and_is_reported() {
        let mut log = log_with_terms(&[1, 1, 1]);
        log.commit_to(2);
        log.take_committed();
        let incoming = vec![Entry {
            term: 2,
            index: 2,
            payload: Payload::Noop,
        }];
        assert_eq!(
            log.append_after(1, &incoming),
            (2, Some(Overwrite { from: 2, commit: 2 }))
        );
        assert_eq!(log.term_at(2), Some(2));
        assert_eq!(log.last_index(), 2);
        assert_eq!((log.commit_index(), log.applied_index()), (1, 1));
        // An uncommitted conflict is ordinary repair, not a violation.
        let incoming = vec![Entry {
            term: 3,
            index: 2,
            payload: Payload::Noop,
        }];
        assert_eq!(log.append_after(1, &incoming), (2, None));
    }

    #[test]
    fn batches_respect_entry_and_byte_limits_but_always_move_one() {
        let mut log = RaftLog::recovered(0, 0, vec![]);
        for _ in 0..10 {
            log.append(1, Payload::Command(vec![0; 100]));
        }
        assert_eq!(log.batch(1, 3, 10_000).len(), 3);
        assert_eq!(log.batch(1, 100, 250).len(), 2);
        assert_eq!(log.batch(1, 100, 10).len(), 1);
        assert_eq!(log.batch(11, 100, 10).len(), 0);
    }
}
