//! The vocabulary shared by the Raft core, storage and the server: node ids, terms, indexes, log
//! entries and the hard state that must survive a crash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Node ids, terms and log indexes are the wire protocol's ([`riptide_proto::ids`]): messages
/// carry them, and they must mean the same on both sides.
pub use riptide_proto::{Index, NodeId, Term};

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub payload: Payload,
}

/// What an entry carries. The core treats commands as opaque bytes: it replicates and commits them,
/// the state machine gives them meaning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Appended by a new leader so that it can commit an entry of its own term (Raft paper §8);
    /// until that happens it can neither commit older entries nor serve ReadIndex reads.
    Noop,
    /// A serialized state-machine command. On the wire it is MessagePack bin (one length and
    /// the bytes), not an array of integers.
    Command(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A cluster configuration (Raft paper §6): it takes effect on every node as soon as it is
    /// appended to the log, committed or not. The state machine skips it. Last in the enum, so
    /// that encodings written before it existed still decode.
    Config(Membership),
}

/// Who is in the cluster: the voters, the non-voting learners, and during a joint change
/// (C_old,new, Raft paper §6) the outgoing voters C_old, while `voters` is C_new. Decisions in the
/// joint state need a majority of `voters` and a majority of `outgoing`. Lists are sorted and
/// hold no duplicates; a learner is never a voter.
///
/// The configuration also carries the address of each member that was given one (on the
/// command line, or when it was added), so that any node, a new leader too, can reach a member
/// it never saw on its command line. Only members have an address here: a configuration derived
/// from this one keeps the addresses of the members that remain and drops those of nodes that
/// leave.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    /// C_old during a joint change, else empty.
    pub outgoing: Vec<NodeId>,
    /// The address of members that were given one, opaque to the core (it never parses them).
    /// Keys are members only (voters, learners or outgoing voters). A peer's message whose
    /// configuration carries an address [`crate::raft::valid_address`] refuses does not decode
    /// (storage could not write it: its length is a u16 on disk).
    #[serde(default, deserialize_with = "checked_addresses")]
    pub addresses: BTreeMap<NodeId, String>,
}

impl Membership {
    /// A simple configuration of `voters` (sorted and deduplicated here).
    pub fn new(voters: &[NodeId]) -> Membership {
        Membership {
            voters: sorted(voters.to_vec()),
            learners: Vec::new(),
            outgoing: Vec::new(),
            addresses: BTreeMap::new(),
        }
    }

    /// The address of member `id`, if it was given one.
    pub fn address(&self, id: NodeId) -> Option<&str> {
        self.addresses.get(&id).map(String::as_str)
    }

    /// Drops the address of every node that is not a member: restores the invariant after the
    /// lists changed.
    pub fn retain_member_addresses(&mut self) {
        let members = self.members();
        self.addresses.retain(|id, _| members.contains(id));
    }

    /// The first node with an address that is not a member, if any (the invariant is broken).
    pub fn stray_address(&self) -> Option<NodeId> {
        self.addresses
            .keys()
            .copied()
            .find(|&id| !self.contains(id))
    }

    /// In a joint change (C_old,new)?
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// A voter of C_new or (in the joint state) of C_old: counted in some majority.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// A member of any kind: a voter (incoming or outgoing) or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member, voters and learners, sorted: whom a leader replicates to.
    pub fn members(&self) -> Vec<NodeId> {
        let mut all = self.voters.clone();
        all.extend_from_slice(&self.outgoing);
        all.extend_from_slice(&self.learners);
        sorted(all)
    }
}

/// `ids` sorted and without duplicates.
pub fn sorted(mut ids: Vec<NodeId>) -> Vec<NodeId> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

impl std::fmt::Display for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |ids: &[NodeId]| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        write!(f, "voters={}", list(&self.voters))?;
        if !self.learners.is_empty() {
            write!(f, " learners={}", list(&self.learners))?;
        }
        if self.is_joint() {
            write!(f, " outgoing={}", list(&self.outgoing))?;
        }
        Ok(())
    }
}

/// The part of a node's state that must be durable before it answers anything that depends on it
/// (Raft paper Figure 2, "persistent state"). Forgetting a vote means voting twice in one term,
/// which means two leaders in one term.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
}

/// What a snapshot covers: the log up to and including `last_index` (whose entry had
/// `last_term`), and the cluster configuration as of that entry (its voters, learners, in a
/// joint change outgoing voters, and the members' addresses). The state machine's data travels
/// with it; the core treats the whole snapshot image as opaque bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub last_index: Index,
    pub last_term: Term,
    /// The voters of the configuration in force at `last_index`.
    pub voters: Vec<NodeId>,
    /// Its learners (empty in snapshot files of format 2).
    pub learners: Vec<NodeId>,
    /// Its outgoing voters, if it is a joint configuration (empty in format 2).
    pub outgoing: Vec<NodeId>,
    /// Its members' addresses (empty in snapshot files of formats 2 and 3), checked as
    /// [`Membership::addresses`] are.
    #[serde(default, deserialize_with = "checked_addresses")]
    pub addresses: BTreeMap<NodeId, String>,
}

impl SnapshotMeta {
    /// The metadata of a snapshot at `last_index`@`last_term` with `membership`.
    pub fn new(last_index: Index, last_term: Term, membership: &Membership) -> SnapshotMeta {
        SnapshotMeta {
            last_index,
            last_term,
            voters: membership.voters.clone(),
            learners: membership.learners.clone(),
            outgoing: membership.outgoing.clone(),
            addresses: membership.addresses.clone(),
        }
    }

    /// The configuration in force at `last_index`.
    pub fn membership(&self) -> Membership {
        Membership {
            voters: self.voters.clone(),
            learners: self.learners.clone(),
            outgoing: self.outgoing.clone(),
            addresses: self.addresses.clone(),
        }
    }
}

/// Decodes a configuration's addresses, refusing one that is empty, longer than
/// [`crate::raft::MAX_ADDRESS_BYTES`] or holds whitespace or control characters: what a leader
/// sends must be what a follower can store.
fn checked_addresses<'de, D>(deserializer: D) -> Result<BTreeMap<NodeId, String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let addresses = BTreeMap::<NodeId, String>::deserialize(deserializer)?;
    match addresses
        .iter()
        .find(|(_, a)| !crate::raft::valid_address(a))
    {
        Some((id, a)) => Err(serde::de::Error::custom(format!(
            "node {id}'s address in a configuration is invalid ({} bytes; 1 to {} without \
             whitespace or control characters)",
            a.len(),
            crate::raft::MAX_ADDRESS_BYTES
        ))),
        None => Ok(addresses),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_address(address: &str) -> Membership {
        let mut m = Membership::new(&[1, 2]);
        m.addresses.insert(2, address.to_string());
        m
    }

    #[test]
    fn a_configuration_from_a_peer_with_an_address_storage_cannot_hold_does_not_decode() {
        let good = with_address("127.0.0.12:7000");
        let bytes = rmp_serde::to_vec(&good).unwrap();
        assert_eq!(rmp_serde::from_slice::<Membership>(&bytes).unwrap(), good);
        for bad in ["x".repeat(70_000), String::new(), "a b:1".to_string()] {
            let bytes = rmp_serde::to_vec(&with_address(&bad)).unwrap();
            let err = rmp_serde::from_slice::<Membership>(&bytes)
                .unwrap_err()
                .to_string();
            assert!(err.contains("node 2's address"), "{err}");
            let meta = SnapshotMeta::new(9, 2, &with_address(&bad));
            let bytes = rmp_serde::to_vec(&meta).unwrap();
            assert!(rmp_serde::from_slice::<SnapshotMeta>(&bytes).is_err());
        }
    }
}
