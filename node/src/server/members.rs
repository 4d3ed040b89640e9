//! The address book: where each member of the configuration in force lives, for the peer
//! links and for the leader hints clients get.
//!
//! An address comes from the configuration itself when it carries one (members added at
//! runtime come with theirs, `AdminOp::AddLearner`), else from the command line (`--peer`,
//! `--listen`). A node therefore reaches a member it never saw on its command line, a new
//! leader included, and a client told "the leader is n6 at 127.0.0.16:7000" can go there.

use std::collections::BTreeMap;

use super::executor::{Clients, Executor, Network, Storage};
use crate::protocol::{ClientResult, LeaderHint};
use crate::raft::NotLeader;
use crate::types::NodeId;

impl<S: Storage, N: Network, C: Clients> Executor<S, N, C> {
    /// The address of node `id`: the configuration's, else the command line's.
    pub(super) fn address_of(&self, id: NodeId) -> Option<&str> {
        self.raft
            .membership()
            .address(id)
            .or_else(|| self.addrs.get(&id).map(String::as_str))
    }

    /// `NotLeader`, with the leader's address if the node knows it.
    pub(super) fn hint(&self, not_leader: NotLeader) -> ClientResult {
        let leader_hint = not_leader.leader_hint.and_then(|id| {
            self.address_of(id).map(|addr| LeaderHint {
                id,
                addr: addr.to_string(),
            })
        });
        ClientResult::NotLeader { leader_hint }
    }

    /// Tells the network which peers to keep links to, whenever the configuration in force
    /// differs from the one it was last told about. A member with no known address is left out
    /// (and logged): nothing can reach it until a configuration names its address.
    pub(super) fn link_members(&mut self) {
        let current = self.raft.membership();
        if self.linked.as_ref() == Some(current) {
            return;
        }
        let current = current.clone();
        let me = self.raft.id();
        let mut peers = BTreeMap::new();
        let members = current
            .voters
            .iter()
            .chain(&current.learners)
            .chain(&current.outgoing);
        for &id in members.filter(|&&id| id != me) {
            match self.address_of(id) {
                Some(addr) => {
                    peers.insert(id, addr.to_string());
                }
                None => tracing::warn!(
                    node = id,
                    "member without a known address: no link to it (add it with an address)"
                ),
            }
        }
        tracing::info!(membership = %current, ?peers, "peer links follow the configuration");
        self.network.set_peers(&peers);
        self.linked = Some(current);
    }
}
