//! Messages between Raft peers (Raft paper Figure 2, plus pre-vote from the thesis §9.6).
//!
//! Every message carries the sender's term; [`super::Raft::step`] compares it with the local term
//! once, at the top, before looking at the body.

use serde::{Deserialize, Serialize};

use crate::types::{Entry, Index, NodeId, SnapshotMeta, Term};

/// One message from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    /// The sender's term. For a pre-vote request: the term the sender *would* campaign in.
    pub term: Term,
    pub body: Body,
}

/// What a message says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// A (pre-)candidate asks for a vote. `pre_vote` asks "would you vote for me?" without anyone
    /// changing term (thesis §9.6), so a node that was cut off cannot disrupt a healthy cluster.
    RequestVote {
        last_log_index: Index,
        last_log_term: Term,
        pre_vote: bool,
        /// The candidate campaigns because the leader handed over leadership (a TimeoutNow,
        /// thesis §3.10): voters that heard from that leader recently still answer.
        leader_transfer: bool,
    },
    /// The answer to a (pre-)vote request.
    RequestVoteResponse { granted: bool, pre_vote: bool },
    /// Log replication and heartbeat in one: entries after `prev_index` (possibly none) and the
    /// leader's commit index. `read_round` numbers the leader's broadcast rounds; the follower echoes
    /// it so that the leader can confirm leadership for ReadIndex reads.
    AppendEntries {
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
        read_round: u64,
    },
    /// The answer to an AppendEntries.
    AppendEntriesResponse {
        result: AppendResult,
        read_round: u64,
    },
    /// One chunk of the leader's snapshot image, for a follower that needs entries the leader has
    /// already discarded (paper §7). `data` is the image's bytes `[offset, offset + data.len())`;
    /// the whole image is `total_len` bytes with CRC-32 `checksum`, so that the follower can check
    /// what it assembled before installing it. Chunks keep frames small however large the state.
    InstallSnapshot {
        meta: SnapshotMeta,
        offset: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        total_len: u64,
        checksum: u32,
        read_round: u64,
    },
    /// The answer to an InstallSnapshot chunk.
    InstallSnapshotResponse {
        /// The `meta.last_index` of the snapshot being answered.
        snapshot_index: Index,
        result: SnapshotResult,
        read_round: u64,
    },
    /// The leader hands over leadership (thesis §3.10): the recipient, whose log the leader
    /// brought up to date, campaigns at once, skipping pre-vote.
    TimeoutNow,
}

/// How a follower answers a snapshot chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotResult {
    /// Send the image from `next_offset` on: the follower holds the bytes before it. Also the
    /// answer to a duplicate or out-of-order chunk (it names what is really needed), and
    /// `next_offset: 0` restarts a transfer the follower could not use.
    Continue { next_offset: u64 },
    /// The follower's log matches the leader's up to `match_index`, durably: it installed the
    /// snapshot, or it already had everything the snapshot covers (a stale snapshot, refused).
    Done { match_index: Index },
}

/// The outcome of an AppendEntries on the follower.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendResult {
    /// The follower's log matches the leader's up to and including `match_index`, durably.
    Success { match_index: Index },
    /// The follower has no entry at `rejected_prev` with the leader's `prev_term`. The hint lets the
    /// leader skip a whole conflicting term per round trip instead of one entry (paper §5.3, the
    /// optimisation at the end): `conflict_term` is the follower's term at `rejected_prev` (None if
    /// its log is shorter) and `conflict_index` the first index the follower holds of that term (or
    /// its last index + 1).
    Reject {
        rejected_prev: Index,
        conflict_term: Option<Term>,
        conflict_index: Index,
    },
}

impl Body {
    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::RequestVote { pre_vote: true, .. } => "PreVote",
            Body::RequestVote { .. } => "RequestVote",
            Body::RequestVoteResponse { pre_vote: true, .. } => "PreVoteResponse",
            Body::RequestVoteResponse { .. } => "RequestVoteResponse",
            Body::AppendEntries { .. } => "AppendEntries",
            Body::AppendEntriesResponse { .. } => "AppendEntriesResponse",
            Body::InstallSnapshot { .. } => "InstallSnapshot",
            Body::InstallSnapshotResponse { .. } => "InstallSnapshotResponse",
            Body::TimeoutNow => "TimeoutNow",
        }
    }
}
