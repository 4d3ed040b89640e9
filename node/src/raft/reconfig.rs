//! Refusing a membership change that would leave the cluster without a quorum the leader can
//! reach (what etcd calls the strict reconfiguration check).
//!
//! Joint consensus keeps a change *safe* whatever the state of the nodes; it does not keep it
//! *live*. Remove a live voter from a 3-node cluster whose third node is down, and C_new = {the
//! leader, the dead node} can commit nothing more: the cluster is stuck until the dead node
//! returns, and the change that did it cannot even be undone. So before it appends a change of
//! voters, the leader checks that the voters of the configuration it leads to (and, for a joint
//! one, of C_old too) that it has heard from recently still form a majority; if not, the change
//! is refused, definitely, naming who is reachable. "Recently" is within the current or the
//! previous check-quorum round (one to two election timeouts), and the leader always counts
//! itself. Without check-quorum the leader keeps no such record and the check passes.
//!
//! A learner to be promoted must also have answered the leader at least once (acknowledged an
//! entry or a snapshot): a learner whose log is short enough to be "within the bound" only
//! because the whole log is short, but that never answered, is refused as silent.

use super::change::ChangeError;
use super::node::{Raft, RoleState};
use crate::types::{Membership, NodeId};

impl Raft {
    /// Has the leader heard from `id` within the last one or two check-quorum rounds?
    pub(super) fn recently_heard(&self, id: NodeId) -> bool {
        if id == self.config.id {
            return true;
        }
        match &self.role {
            RoleState::Leader(leader) => leader
                .progress
                .get(&id)
                .is_some_and(|p| p.recent_active || p.active_last_round),
            _ => false,
        }
    }

    /// Refuses `next` if the leader would not reach a majority of its voters (and of its
    /// outgoing voters, if it is joint).
    pub(super) fn check_reachable_quorum(&self, next: &Membership) -> Result<(), ChangeError> {
        if !self.config.check_quorum {
            return Ok(());
        }
        for voters in [&next.voters, &next.outgoing] {
            if voters.is_empty() {
                continue;
            }
            let reachable: Vec<NodeId> = voters
                .iter()
                .copied()
                .filter(|&id| self.recently_heard(id))
                .collect();
            if reachable.len() < voters.len() / 2 + 1 {
                return Err(ChangeError::NoReachableQuorum {
                    voters: voters.clone(),
                    reachable,
                });
            }
        }
        Ok(())
    }

    /// Refuses to promote a learner that has never answered the leader.
    pub(super) fn check_answered(&self, id: NodeId) -> Result<(), ChangeError> {
        let matched = self.match_index_of(id).unwrap_or(0);
        match matched > 0 && self.recently_heard(id) {
            true => Ok(()),
            false => Err(ChangeError::Silent(id)),
        }
    }
}
