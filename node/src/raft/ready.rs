//! What the core hands the server: the work of a [`Ready`], and the refusals of its inputs.

use super::message::Message;
use super::read_index::{ReadId, ReadState};
use super::snapshot::{InstallRequest, SnapshotChunk};
#[allow(unused_imports)]
use super::Raft;
use crate::types::{Entry, HardState, NodeId};

/// Work for the server, produced by [`Raft::ready`]. It must be carried out in this order:
/// 1. persist `hard_state` (fsync) if present;
/// 2. persist `entries` (replacing any stored entries from `entries[0].index` on), fsync, then
///    call [`Raft::persisted`] with the last index;
/// 3. write `snapshot_chunks` to the incoming snapshot's temp file, in order (they need not be
///    durable: a crash forgets the transfer, and the leader starts it over);
/// 4. send `messages` (only now: they may promise what steps 1 to 3 did; a leader's
///    AppendEntries and InstallSnapshot may go before step 2, see `server::executor`, since the
///    leader counts its own entries toward a commit only once [`Raft::persisted`]). Messages from a term
///    older than the current one are left out: they were queued before a term change in the
///    same batch and may promise what the newer term undid (a success acknowledgement of
///    entries that a newer leader's AppendEntries then truncated, so that step 2 never made them
///    durable);
/// 5. apply `committed` to the state machine in order;
/// 6. if `install` is set, check and install that snapshot (durably, replacing the state
///    machine) and call [`Raft::install_finished`]; after step 5, because the committed entries
///    come before the snapshot (see [`super::snapshot`]);
/// 7. answer each read in `reads` once the state machine has applied its index; answer
///    `failed_reads` with "not leader".
#[derive(Debug, Default)]
pub struct Ready {
    pub hard_state: Option<HardState>,
    pub entries: Vec<Entry>,
    pub messages: Vec<Message>,
    pub committed: Vec<Entry>,
    pub snapshot_chunks: Vec<SnapshotChunk>,
    pub install: Option<InstallRequest>,
    pub reads: Vec<ReadState>,
    pub failed_reads: Vec<ReadId>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.committed.is_empty()
            && self.snapshot_chunks.is_empty()
            && self.install.is_none()
            && self.reads.is_empty()
            && self.failed_reads.is_empty()
    }
}

/// The answer to a proposal or read on a node that is not the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotLeader {
    pub leader_hint: Option<NodeId>,
}
