//! Blocking status queries, for code that runs outside tokio (the nemesis thread asks who leads).
//! The query itself is [`riptide_proto::status`], shared with the end-to-end tests.

use std::net::SocketAddr;
use std::time::Duration;

use riptide_proto::{NodeId, Role, Status};

/// Asks one node for its status, giving up after `timeout` per step.
pub fn status(addr: SocketAddr, timeout: Duration) -> riptide_proto::Result<Status> {
    riptide_proto::status(addr, timeout)
}

/// The leader, as the nodes that answer see it: the highest-term node that says it leads.
pub fn leader(nodes: &[(NodeId, SocketAddr)], timeout: Duration) -> Option<(NodeId, u64)> {
    leader_status(nodes, timeout).map(|s| (s.id, s.term))
}

/// The status of the highest-term node of `nodes` that says it leads.
pub fn leader_status(nodes: &[(NodeId, SocketAddr)], timeout: Duration) -> Option<Status> {
    nodes
        .iter()
        .filter_map(|(_, addr)| status(*addr, timeout).ok())
        .filter(|s| s.role == Role::Leader)
        .max_by_key(|s| s.term)
}
