//! The Raft consensus core: a deterministic state machine with no I/O, no clock and no threads.
//!
//! # How it is driven
//!
//! The server around it feeds in four kinds of input and drains one kind of output:
//!
//! - [`Raft::tick`]: one unit of logical time. Election timeouts and heartbeats count ticks;
//!   the core never reads a clock.
//! - [`Raft::step`]: a [`Message`] from a peer.
//! - [`Raft::propose`]: a client command, on the leader.
//! - [`Raft::read_index`]: a linearizable read, on the leader (see [`read_index`]).
//! - [`Raft::ready`] returns a [`Ready`]: hard state and entries to make durable, messages to send
//!   once they are, committed entries to apply, and reads that became safe.
//!
//! Because nothing inside depends on the outside world, the same inputs give the same outputs;
//! the scenario tests in `node/tests/raft_*.rs` drive whole clusters message by message, and the
//! simulation (crate `riptide-sim`) drives it through the node's own executor.
//!
//! # The protocol, in brief (Raft paper, Ongaro & Ousterhout 2014)
//!
//! - **Terms** (§5.1) number leaderships. Every message carries its sender's term; the *term gate*
//!   at the top of [`Raft::step`] drops older terms and makes the node a follower on newer ones.
//! - **Election** (§5.2, [`election`]): randomised timeouts, pre-vote (thesis §9.6), one vote per
//!   term, only for candidates whose log is at least as up to date (§5.4.1).
//! - **Replication** (§5.3, [`replication`]): batches, pipelining, conflict hints. A new leader
//!   appends a no-op so that it can commit in its own term.
//! - **Commitment** (§5.4.2): only entries of the current term are committed by counting replicas;
//!   older ones commit indirectly (Figure 8).
//! - **Reads** (thesis §6.4): ReadIndex, see [`read_index`]; or, as an option, leader leases
//!   (§6.4.1), see [`lease`].
//! - **Check quorum** (thesis §6.2): a leader that cannot hear a majority steps down, and followers
//!   that hear a live leader ignore vote requests (§4.2.3).
//! - **Log compaction and InstallSnapshot** (§7, [`snapshot`]): the server snapshots the state
//!   machine, the core discards the covered log (less a tail), and a leader sends its snapshot in
//!   chunks to a follower that needs discarded entries.
//!
//! # Not implemented (yet)
//!
//! Membership changes, leadership transfer.

pub mod change;
pub mod config;
pub mod election;
pub mod lease;
pub mod log;
pub mod membership;
pub mod message;
pub mod node;
pub mod progress;
pub mod read_index;
pub mod ready;
pub mod replication;
pub mod snapshot;
pub mod transfer;
pub mod violation;

pub use change::{ChangeError, ConfChange};
pub use config::{Config, ReadMode};
pub use log::RaftLog;
pub use message::{AppendResult, Body, Message, SnapshotResult};
pub use node::{NotLeader, Raft, Ready, SafetyViolation};
pub use read_index::{ReadId, ReadState};
pub use snapshot::{InstallRequest, SnapshotChunk, SnapshotImage};
pub use transfer::TransferError;
