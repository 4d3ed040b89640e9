//! What a follower does when its leader breaks Raft's promises.
//!
//! Leader Completeness says that a leader's log holds every committed entry, so an
//! AppendEntries never replaces an entry its follower has committed. When one does, a buggy
//! node or a forged leader is at work, and the follower records a [`SafetyViolation`]. A term
//! absurdly far ahead of the node's own ([`ABSURD_TERM_LEAD`]) gets a log line of its own, and
//! one beyond [`MAX_TERM`] is dropped: adopting it would leave no room for the next election's
//! `term + 1` (found by the fuzzer: a message at term 2^64 - 1, then an election, wrapped the
//! node's term around to 0).

use crate::types::{Index, NodeId, Term};

/// A leader replaced entries this node had already committed, and its state machine applied
/// from the old log. Raft rules this out (Leader Completeness), so a buggy node or a forged
/// leader is at work. The follower obeys the leader's log, as Figure 2 says, so that the bench
/// still sees the bug in what clients read; but its state machine stops: applying the
/// replacements on top of what it applied from the replaced entries would serve a state no
/// log describes. A restart rebuilds the state machine from the log and snapshot on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SafetyViolation {
    /// The leader that sent the replacement, and its term.
    pub leader: NodeId,
    pub term: Term,
    /// The first replaced index, and the commit index before the replacement.
    pub from_index: Index,
    pub commit: Index,
}

impl SafetyViolation {
    pub fn describe(&self) -> String {
        format!(
            "leader {} (term {}) replaced committed entries from index {} (commit index was {}); this node stopped applying",
            self.leader, self.term, self.from_index, self.commit
        )
    }
}

/// A message this many terms ahead of the node's own is logged on its own line: no real cluster
/// runs through a million elections while one node looks away.
pub const ABSURD_TERM_LEAD: Term = 1_000_000;

/// Logs a message from `from` at `term` if it is absurdly far ahead of `own`. The message is
/// still obeyed (Raft's rules do not change); the line is there for the operator.
pub fn note_absurd_term(from: NodeId, term: Term, own: Term) {
    if term > own.saturating_add(ABSURD_TERM_LEAD) {
        tracing::warn!(
            from,
            term,
            own_term = own,
            "a message {} terms ahead of this node's: a forged or corrupted message, or a peer gone mad",
            term - own
        );
    }
}

/// The highest term a message may carry. Elections add one to the term; no cluster runs 2^63
/// of them, so a term above this is forged or corrupted, and adopting it would let `term + 1`
/// overflow.
pub const MAX_TERM: Term = u64::MAX / 2;

/// Whether a message's term is beyond [`MAX_TERM`] (then it is dropped, with a log line).
pub fn term_out_of_range(from: NodeId, term: Term) -> bool {
    if term > MAX_TERM {
        tracing::warn!(
            from,
            term,
            "dropping a message at a term no election reaches: a forged or corrupted message"
        );
        return true;
    }
    false
}
