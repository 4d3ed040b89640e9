//! ReadIndex: linearizable reads without writing to the log (Raft thesis §6.4).
//!
//! A read is safe to answer from the state machine once three things hold:
//! 1. the leader has committed an entry of its own term (its no-op), so its commit index is at
//!    least as new as any write acknowledged before the read arrived;
//! 2. after the read arrived, a majority confirmed the leader is still the leader of its term, so
//!    no newer leader can have committed writes this leader does not know about;
//! 3. the state machine has applied at least the commit index recorded for the read (the server
//!    waits for this part; the core hands out `(id, index)` pairs).
//!
//! Confirmation works in *rounds*: every AppendEntries carries the leader's current round number
//! and followers echo it. A read registered while round `r` is the newest waits for round `r + 1`,
//! which starts at once if no round is outstanding, otherwise as soon as the outstanding one is
//! confirmed. So one round of heartbeats serves every read that arrived during the previous round:
//! reads are batched under load and cost one round trip when idle.

use std::collections::VecDeque;

use crate::types::Index;

/// Names a read so the server can match the answer to its client.
pub type ReadId = u64;

/// A read that became safe once the state machine has applied `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    pub id: ReadId,
    pub index: Index,
}

#[derive(Clone, Copy, Debug)]
struct PendingRead {
    id: ReadId,
    index: Index,
    round: u64,
}

/// The leader's bookkeeping of reads in progress.
#[derive(Debug, Default)]
pub struct ReadQueue {
    /// Reads that arrived before the leader committed an entry of its term.
    awaiting_commit: Vec<ReadId>,
    /// Reads waiting for their confirmation round, in round order.
    pending: VecDeque<PendingRead>,
    /// The newest round started.
    pub round: u64,
    /// The newest round a majority has confirmed.
    pub confirmed: u64,
}

impl ReadQueue {
    /// A read arrived. `commit` is the leader's commit index if it has committed an entry of its
    /// term, else None (the read waits for that).
    pub fn register(&mut self, id: ReadId, commit: Option<Index>) {
        match commit {
            None => self.awaiting_commit.push(id),
            Some(index) => self.pending.push_back(PendingRead {
                id,
                index,
                round: self.round + 1,
            }),
        }
    }

    /// The leader just committed its first own-term entry: the waiting reads get `commit`.
    pub fn own_term_committed(&mut self, commit: Index) {
        for id in std::mem::take(&mut self.awaiting_commit) {
            self.pending.push_back(PendingRead {
                id,
                index: commit,
                round: self.round + 1,
            });
        }
    }

    /// Should the leader start a new round now? Yes if a read waits for a round not yet started
    /// and no round is outstanding.
    pub fn wants_round(&self) -> bool {
        self.confirmed == self.round && self.pending.back().is_some_and(|r| r.round > self.round)
    }

    /// Starts a round; returns its number, which the next AppendEntries carry.
    pub fn start_round(&mut self) -> u64 {
        self.round += 1;
        self.round
    }

    /// A majority has confirmed `round`. Returns the reads that became safe.
    pub fn confirm(&mut self, round: u64) -> Vec<ReadState> {
        if round <= self.confirmed {
            return Vec::new();
        }
        self.confirmed = round.min(self.round);
        let mut ready = Vec::new();
        while let Some(read) = self.pending.front().copied() {
            if read.round > self.confirmed {
                break;
            }
            self.pending.pop_front();
            ready.push(ReadState {
                id: read.id,
                index: read.index,
            });
        }
        ready
    }

    /// Leadership was lost: every read in progress fails (reads have no effect, so failing them
    /// is always safe; the client retries elsewhere).
    pub fn drain(&mut self) -> Vec<ReadId> {
        let mut ids = std::mem::take(&mut self.awaiting_commit);
        ids.extend(self.pending.drain(..).map(|r| r.id));
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_arriving_during_a_round_wait_for_the_next_one() {
        let mut q = ReadQueue::default();
        q.register(1, Some(10));
        assert!(q.wants_round());
        assert_eq!(q.start_round(), 1);
        q.register(2, Some(11));
        assert!(!q.wants_round(), "round 1 is outstanding");
        assert_eq!(q.confirm(1), vec![ReadState { id: 1, index: 10 }]);
        assert!(q.wants_round());
        assert_eq!(q.start_round(), 2);
        assert_eq!(q.confirm(2), vec![ReadState { id: 2, index: 11 }]);
    }

    #[test]
    fn reads_before_the_own_term_commit_wait_for_it() {
        let mut q = ReadQueue::default();
        q.register(7, None);
        assert!(!q.wants_round());
        q.own_term_committed(5);
        assert!(q.wants_round());
        let r = q.start_round();
        assert_eq!(q.confirm(r), vec![ReadState { id: 7, index: 5 }]);
    }
}
