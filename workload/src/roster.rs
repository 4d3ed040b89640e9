//! The members a run's clients talk to, shared and versioned: the runner changes it when the
//! membership nemesis adds or removes a node, and each worker's [`Client`] follows before its
//! next operation ([`Roster::refresh`]).
//!
//! A client also learns nodes on its own, from the leader hints that name a node it never knew
//! ([`Client::learn`](crate::Client)); the roster is what makes it *forget* removed ones, and
//! move its reads off a node that is gone.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use riptide_proto::NodeId;

use crate::client::Client;

/// The current members and their addresses. Cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct Roster {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every change.
    version: AtomicU64,
    nodes: RwLock<Vec<(NodeId, SocketAddr)>>,
}

impl Roster {
    /// A roster of `nodes`, at version 1.
    pub fn new(nodes: Vec<(NodeId, SocketAddr)>) -> Roster {
        let roster = Roster::default();
        roster.set(nodes);
        roster
    }

    /// The members now, sorted by id.
    pub fn nodes(&self) -> Vec<(NodeId, SocketAddr)> {
        self.inner
            .nodes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The version now: it changes with every [`Roster::set`].
    pub fn version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    /// Replaces the members (an empty list is ignored: a client needs somewhere to go).
    pub fn set(&self, mut nodes: Vec<(NodeId, SocketAddr)>) {
        if nodes.is_empty() {
            return;
        }
        nodes.sort_unstable();
        nodes.dedup_by_key(|(id, _)| *id);
        let mut guard = self.inner.nodes.write().unwrap_or_else(|e| e.into_inner());
        if *guard != nodes {
            *guard = nodes;
            self.inner.version.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Adds or moves one member.
    pub fn add(&self, id: NodeId, addr: SocketAddr) {
        let mut nodes = self.nodes();
        nodes.retain(|(n, _)| *n != id);
        nodes.push((id, addr));
        self.set(nodes);
    }

    /// Drops one member.
    pub fn remove(&self, id: NodeId) {
        let mut nodes = self.nodes();
        nodes.retain(|(n, _)| *n != id);
        self.set(nodes);
    }

    /// Brings `client` up to date if the roster changed since `seen` (updated): worker `worker`
    /// keeps its home node while it is a member, else takes the member at its position.
    pub fn refresh(&self, client: &mut Client, worker: usize, seen: &mut u64) {
        let version = self.version();
        if version == *seen {
            return;
        }
        *seen = version;
        let nodes = self.nodes();
        if !nodes.is_empty() {
            let home = nodes[worker % nodes.len()].0;
            client.follow(nodes, home);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(id: NodeId) -> SocketAddr {
        riptide_proto::node_addr(id, 7000)
    }

    #[test]
    fn changes_bump_the_version_and_keep_the_members_sorted() {
        let roster = Roster::new(vec![(2, addr(2)), (1, addr(1))]);
        let v = roster.version();
        roster.add(6, addr(6));
        roster.remove(1);
        assert_eq!(roster.nodes(), vec![(2, addr(2)), (6, addr(6))]);
        assert_eq!(roster.version(), v + 2);
        roster.set(roster.nodes());
        assert_eq!(roster.version(), v + 2, "no change, no new version");
        roster.set(Vec::new());
        assert_eq!(roster.nodes().len(), 2, "an empty roster is ignored");
    }
}
