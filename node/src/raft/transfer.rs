//! Leadership transfer (Raft thesis §3.10).
//!
//! [`Raft::transfer_leadership`] on the leader names a voter. From then on the leader refuses
//! proposals (with [`super::NotLeader`] naming the target: a definite refusal, the client retries
//! there), brings the target's log up to date, and once the target holds the whole log sends it
//! [`Body::TimeoutNow`]. The target campaigns at once in the next term, skipping pre-vote, and
//! its vote requests are marked `leader_transfer`: voters that heard from the leader recently
//! answer them anyway (the check-quorum lease of §4.2.3 would otherwise ignore them). The old
//! leader steps down when the target's vote request reaches it, with its higher term.
//!
//! A transfer that has not completed after the minimum election timeout (counted in the leader's
//! ticks) is abandoned, and proposals are accepted again: the target may be down or cut off.
//!
//! Reads: ReadIndex stays safe throughout (a round is confirmed only by voters still in this
//! leader's term). A lease does not: the target's flagged vote requests pass the followers'
//! leases, so a transfer revokes this leader's lease for the rest of its term, and lease reads
//! fall back to ReadIndex ([`Raft::revoke_lease`]).

use super::message::Body;
use super::node::{Raft, RoleState};
use crate::types::NodeId;

/// A transfer in progress, on the leader.
#[derive(Clone, Debug)]
pub struct LeaderTransfer {
    pub target: NodeId,
    /// Ticks since the transfer began.
    pub elapsed: u32,
    /// TimeoutNow went out.
    pub timeout_now_sent: bool,
}

/// Why a leadership transfer was refused. Each is definite: nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    #[error("not the leader (leader: {:?})", .0.leader_hint)]
    NotLeader(super::NotLeader),
    #[error("node {0} is this leader already")]
    ToSelf(NodeId),
    #[error("node {0} is not a voter of the configuration (a learner, or unknown)")]
    NotAVoter(NodeId),
    #[error("a transfer to node {0} is already in progress")]
    InProgress(NodeId),
}

impl Raft {
    /// Starts handing leadership over to voter `target` (see the module docs). The transfer is
    /// done when `target` leads; it is abandoned after the minimum election timeout.
    pub fn transfer_leadership(&mut self, target: NodeId) -> Result<(), TransferError> {
        let me = self.config.id;
        let is_voter = self.membership().voters.contains(&target);
        let RoleState::Leader(leader) = &mut self.role else {
            return Err(TransferError::NotLeader(super::NotLeader {
                leader_hint: self.leader,
            }));
        };
        if target == me {
            return Err(TransferError::ToSelf(target));
        }
        if !is_voter {
            return Err(TransferError::NotAVoter(target));
        }
        if let Some(t) = &leader.transfer {
            return Err(TransferError::InProgress(t.target));
        }
        tracing::info!(term = self.term, target, "transferring leadership");
        leader.transfer = Some(LeaderTransfer {
            target,
            elapsed: 0,
            timeout_now_sent: false,
        });
        self.revoke_lease();
        self.maybe_send_timeout_now(target);
        // At least a heartbeat: an answer tells where the target's log stands even if batches
        // to it were lost.
        self.send_append(target, true);
        Ok(())
    }

    /// The node leadership is being handed to, on a leader with a transfer in progress.
    pub fn transfer_target(&self) -> Option<NodeId> {
        match &self.role {
            RoleState::Leader(leader) => leader.transfer.as_ref().map(|t| t.target),
            _ => None,
        }
    }

    /// Once the target holds the whole log, tells it to campaign now.
    pub(super) fn maybe_send_timeout_now(&mut self, from: NodeId) {
        let last = self.log.last_index();
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(transfer) = leader.transfer.as_mut().filter(|t| t.target == from) else {
            return;
        };
        let caught_up = leader
            .progress
            .get(&from)
            .is_some_and(|p| p.match_index >= last);
        if caught_up && !transfer.timeout_now_sent {
            transfer.timeout_now_sent = true;
            tracing::info!(target = from, "target caught up; sending TimeoutNow");
            self.send(from, Body::TimeoutNow);
        }
    }

    /// A leader's tick: a transfer that took an election timeout is abandoned.
    pub(super) fn tick_transfer(&mut self) {
        let timeout = self.config.election_timeout_min;
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let Some(transfer) = leader.transfer.as_mut() else {
            return;
        };
        transfer.elapsed += 1;
        if transfer.elapsed >= timeout {
            tracing::warn!(
                target = transfer.target,
                "leadership transfer did not complete within an election timeout; abandoned"
            );
            leader.transfer = None;
        }
    }

    /// The leader of our term hands over leadership: campaign now, skipping pre-vote.
    pub(super) fn handle_timeout_now(&mut self, from: NodeId) {
        if self.is_leader() || !self.promotable() {
            return;
        }
        tracing::info!(from, term = self.term, "TimeoutNow: campaigning at once");
        self.campaign_with(false, true);
    }
}
