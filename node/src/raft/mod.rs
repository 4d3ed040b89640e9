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
//! - [`Raft::propose_change`] and [`Raft::transfer_leadership`]: a membership change or a
//!   leadership transfer, on the leader (see [`membership`], [`change`] and [`transfer`]).
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
//! - **Membership changes** (§6, [`membership`], [`change`]): configurations are log entries,
//!   in force once appended; a change of voters goes through the joint configuration C_old,new,
//!   whose decisions (commit, votes, check-quorum, read confirmation) need a majority of both;
//!   learners receive the log but count in no majority and never campaign; a leader left out of
//!   C_new steps down once it commits. See `docs/membership.md`.
//! - **Leadership transfer** (thesis §3.10, [`transfer`]): the leader stops taking proposals,
//!   brings the target up to date and sends it TimeoutNow; abandoned after an election timeout.
//! - **A slow state machine, on purpose** ([`apply_delay`]): committed entries held back a
//!   number of ticks before they are handed out to apply, for the bench's `slow-apply` fault.
//!
//! # Not implemented (yet)
//!
//! Single-server changes as a fast path (every change of voters is joint; only learner changes
//! skip the joint phase); a leader that steps down after removing itself does not hand over to
//! a successor with TimeoutNow (the remaining voters wait for their election timeout);
//! reads are not refused during a leadership transfer (ReadIndex stays safe; the leader's lease
//! is revoked for the rest of its term, so lease reads fall back to ReadIndex); the
//! client-protocol admin requests and `--join` live in the server (`node/src/server/`).

pub mod apply_delay;
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
mod reconfig;
pub mod replication;
pub mod snapshot;
pub mod transfer;
pub mod violation;

/// The configuration type, where the core's users look for it.
pub use crate::types::Membership;
pub use change::{valid_address, ChangeError, ConfChange, MAX_ADDRESS_BYTES};
pub use config::{Config, ReadMode};
pub use log::RaftLog;
pub use message::{AppendResult, Body, Message, SnapshotResult};
pub use node::{NotLeader, Raft, Ready, SafetyViolation};
pub use read_index::{ReadId, ReadState};
pub use snapshot::{InstallRequest, SnapshotChunk, SnapshotImage};
pub use transfer::TransferError;
