//! Proposing a membership change on the leader: [`Raft::propose_change`] and
//! [`Raft::propose_change_at`], which also records the address of the node the change adds. What
//! the change does once it is in the log is in [`super::membership`].

use super::node::Raft;
use crate::types::{sorted, Index, Membership, NodeId};

/// A membership change an operator asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfChange {
    /// Add a non-voting learner: it receives the log (or a snapshot), counts in no majority and
    /// never campaigns. A simple change: no joint phase.
    AddLearner(NodeId),
    /// Make a caught-up learner a voter, through joint consensus.
    Promote(NodeId),
    /// Remove a voter (through joint consensus) or a learner (a simple change).
    Remove(NodeId),
    /// Add `add` as a voter and remove voter `remove` in one joint change. `add` may be a
    /// caught-up learner or a node new to the cluster.
    Replace { add: NodeId, remove: NodeId },
}

/// Why a change was refused. Each is definite: nothing was appended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("not the leader (leader: {:?})", .0.leader_hint)]
    NotLeader(super::NotLeader),
    #[error("a membership change is already in flight (configuration {0})")]
    InFlight(Membership),
    #[error("the leader has not yet committed an entry of its term; retry shortly")]
    NotReady,
    #[error("a leadership transfer is in progress")]
    Transferring,
    #[error("node {0} is not a member of the cluster")]
    Unknown(NodeId),
    #[error("node {0} is already a member of the cluster")]
    AlreadyMember(NodeId),
    #[error("node {0} is not a learner")]
    NotALearner(NodeId),
    #[error("the change would leave no voters")]
    NoVoters,
    #[error("learner {id} is {behind} entries behind the leader (at most {bound} to be promoted)")]
    LearnerBehind { id: NodeId, behind: u64, bound: u64 },
    #[error("learner {0} has not answered the leader yet (is it running, started with --join and the current members as --peer?)")]
    Silent(NodeId),
    #[error("the new configuration's voters {voters:?} would leave only {reachable:?} reachable from the leader, not a majority: bring the missing nodes back first")]
    NoReachableQuorum {
        voters: Vec<NodeId>,
        reachable: Vec<NodeId>,
    },
    /// The address is empty, longer than [`MAX_ADDRESS_BYTES`], or holds whitespace or control
    /// characters. The core checks only this much: it never parses an address.
    #[error(
        "bad address {0:?}: it must be 1 to 255 bytes without whitespace or control characters"
    )]
    BadAddress(String),
}

/// The longest address a configuration carries, in bytes (its length is a u16 on disk, and 255
/// is more than any host:port needs).
pub const MAX_ADDRESS_BYTES: usize = 255;

/// Is `address` one a configuration may carry: 1 to [`MAX_ADDRESS_BYTES`] bytes, no whitespace,
/// no control characters?
pub fn valid_address(address: &str) -> bool {
    !address.is_empty()
        && address.len() <= MAX_ADDRESS_BYTES
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Raft {
    /// Proposes a membership change (see [`super::membership`]). Returns the index of the first
    /// configuration entry appended: C_old,new for a change of voters (the leader appends C_new
    /// itself once that commits), the new configuration for a learner change. The change is
    /// done when the configuration in force, committed, is no longer joint
    /// ([`Raft::change_in_flight`] is false).
    ///
    /// The same as [`Raft::propose_change_at`] without an address: a member keeps the address
    /// it has, a node new to the cluster has none.
    pub fn propose_change(&mut self, change: ConfChange) -> Result<Index, ChangeError> {
        self.propose_change_at(change, None)
    }

    /// [`Raft::propose_change`], recording `address` in the configuration for the node the
    /// change adds: the learner of `AddLearner`, the `add` of `Replace`; for `Promote` it
    /// replaces the learner's address (None keeps it); for `Remove` it is ignored (the removed
    /// node's address leaves with it). An address that [`valid_address`] refuses is
    /// [`ChangeError::BadAddress`], and nothing is appended.
    pub fn propose_change_at(
        &mut self,
        change: ConfChange,
        address: Option<String>,
    ) -> Result<Index, ChangeError> {
        let address = match change {
            ConfChange::Remove(_) => None,
            _ => address,
        };
        if let Some(bad) = address.as_ref().filter(|a| !valid_address(a)) {
            return Err(ChangeError::BadAddress(bad.clone()));
        }
        if !self.is_leader() {
            return Err(ChangeError::NotLeader(super::NotLeader {
                leader_hint: self.leader,
            }));
        }
        if self.transfer_target().is_some() {
            return Err(ChangeError::Transferring);
        }
        if self.change_in_flight() {
            return Err(ChangeError::InFlight(self.membership().clone()));
        }
        // Ongaro's fix of the single-server change bug (raft-dev, 2015), kept for joint changes
        // too: a leader changes the configuration only once it has committed in its own term.
        let unsafe_single = self.config.bugs.single_server_change_unsafe;
        if !self.committed_own_term() && !unsafe_single {
            return Err(ChangeError::NotReady);
        }
        let next = self.changed_membership(change, address.clone())?;
        let old = self.membership().clone();
        // A learner change moves no majority; the bug skips the joint phase of a single-server
        // change.
        let direct = next.voters == old.voters
            || (unsafe_single && single_server(&old.voters, &next.voters));
        let mut entry = match direct {
            true => next,
            false => Membership {
                outgoing: old.voters.clone(),
                ..next
            },
        };
        // A removed voter stays a member (outgoing) through the joint phase, and keeps its
        // address until C_new.
        entry.retain_member_addresses();
        if entry.voters != old.voters {
            self.check_reachable_quorum(&entry)?;
        }
        let index = self.append_config(entry);
        tracing::info!(index, ?change, ?address, membership = %self.membership(), "membership change proposed");
        Ok(index)
    }

    /// The configuration `change` leads to from the one in force, or why it is refused. Its
    /// addresses are those in force with `address` recorded for the node the change adds or
    /// promotes; the caller drops those of nodes that are no longer members.
    fn changed_membership(
        &self,
        change: ConfChange,
        address: Option<String>,
    ) -> Result<Membership, ChangeError> {
        let m = self.membership();
        let (mut voters, mut learners) = (m.voters.clone(), m.learners.clone());
        let mut addresses = m.addresses.clone();
        let addressed = match change {
            ConfChange::AddLearner(id) | ConfChange::Promote(id) => Some(id),
            ConfChange::Replace { add, .. } => Some(add),
            ConfChange::Remove(_) => None,
        };
        match change {
            ConfChange::AddLearner(id) if m.contains(id) => {
                return Err(ChangeError::AlreadyMember(id))
            }
            ConfChange::AddLearner(id) => learners.push(id),
            ConfChange::Promote(id) if !m.is_learner(id) => {
                return Err(ChangeError::NotALearner(id))
            }
            ConfChange::Promote(id) => {
                self.check_caught_up(id)?;
                learners.retain(|&l| l != id);
                voters.push(id);
            }
            ConfChange::Remove(id) if m.is_learner(id) => learners.retain(|&l| l != id),
            ConfChange::Remove(id) if m.voters.contains(&id) => voters.retain(|&v| v != id),
            ConfChange::Remove(id) => return Err(ChangeError::Unknown(id)),
            ConfChange::Replace { add, remove } => {
                if !m.voters.contains(&remove) {
                    return Err(ChangeError::Unknown(remove));
                }
                if m.voters.contains(&add) {
                    return Err(ChangeError::AlreadyMember(add));
                }
                if m.is_learner(add) {
                    self.check_caught_up(add)?;
                }
                learners.retain(|&l| l != add);
                voters.retain(|&v| v != remove);
                voters.push(add);
            }
        }
        if voters.is_empty() {
            return Err(ChangeError::NoVoters);
        }
        if let (Some(id), Some(address)) = (addressed, address) {
            addresses.insert(id, address);
        }
        Ok(Membership {
            voters: sorted(voters),
            learners: sorted(learners),
            outgoing: Vec::new(),
            addresses,
        })
    }

    /// A learner may be promoted only once it has answered the leader, and within
    /// `promote_lag_entries` of the leader's last index.
    fn check_caught_up(&self, id: NodeId) -> Result<(), ChangeError> {
        self.check_answered(id)?;
        let last = self.log.last_index();
        let matched = self.match_index_of(id).unwrap_or(0);
        let behind = last.saturating_sub(matched);
        let bound = self.config.promote_lag_entries;
        match behind <= bound {
            true => Ok(()),
            false => Err(ChangeError::LearnerBehind { id, behind, bound }),
        }
    }
}

/// Do two voter sets differ by exactly one server added or removed?
fn single_server(old: &[NodeId], new: &[NodeId]) -> bool {
    let added = new.iter().filter(|id| !old.contains(id)).count();
    let removed = old.iter().filter(|id| !new.contains(id)).count();
    added + removed == 1
}
