//! Blocking status queries, for code that runs outside tokio (the nemesis thread asks who leads).
//! The query itself is [`riptide_proto::status`], shared with the end-to-end tests.
//!
//! # Finding the leader when the list is stale
//!
//! The nodes a caller knows are the run's roster, and the roster can lag behind the cluster: a
//! membership change whose answer was unknown may commit later, in a term of its own, and put a
//! node the roster never knew in the lead (a `stranded` replace does exactly that after its
//! partition heals). Every member then says "follower, leader n14" and none of the listed ones
//! leads. So [`leader_status`] does what a client does with a `NotLeader` hint: when the newest
//! term any node reports names a leader that was not asked, it asks that node too, at the
//! address the hinting node's configuration carries for it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use riptide_proto::{NodeId, Role, Status};

/// How many leader hints the probe follows past the nodes it was given: one is the usual case
/// (a member added at runtime leads); more covers a leader that changed again meanwhile.
const HINT_HOPS: usize = 3;

/// Asks one node for its status, giving up after `timeout` per step.
pub fn status(addr: SocketAddr, timeout: Duration) -> riptide_proto::Result<Status> {
    riptide_proto::status(addr, timeout)
}

/// The leader, as the nodes that answer see it: the highest-term node that says it leads.
pub fn leader(nodes: &[(NodeId, SocketAddr)], timeout: Duration) -> Option<(NodeId, u64)> {
    leader_status(nodes, timeout).map(|s| (s.id, s.term))
}

/// The status of the highest-term node that says it leads: one of `nodes`, or a node outside
/// them that the answers name as leader in a newer term (see the module docs).
pub fn leader_status(nodes: &[(NodeId, SocketAddr)], timeout: Duration) -> Option<Status> {
    let mut asked: BTreeSet<NodeId> = nodes.iter().map(|(id, _)| *id).collect();
    let mut answers: Vec<Status> = nodes
        .iter()
        .filter_map(|(_, addr)| status(*addr, timeout).ok())
        .collect();
    for _ in 0..HINT_HOPS {
        let Some((id, addr)) = unasked_hint(&answers, &asked) else {
            break;
        };
        asked.insert(id);
        if let Ok(answer) = status(addr, timeout) {
            answers.push(answer);
        }
    }
    answers
        .into_iter()
        .filter(|s| s.role == Role::Leader)
        .max_by_key(|s| s.term)
}

/// The leader named by the newest-term answer, if that term is newer than every leader heard,
/// the node was not asked yet, and the hinting node's configuration carries its address.
fn unasked_hint(answers: &[Status], asked: &BTreeSet<NodeId>) -> Option<(NodeId, SocketAddr)> {
    let newest_leader = answers
        .iter()
        .filter(|s| s.role == Role::Leader)
        .map(|s| s.term)
        .max();
    answers
        .iter()
        .filter(|s| !matches!(newest_leader, Some(term) if s.term <= term))
        .filter_map(|s| {
            let id = s.leader.filter(|id| !asked.contains(id))?;
            let addr = s.membership.addresses.get(&id)?.parse().ok()?;
            Some((s.term, id, addr))
        })
        .max_by_key(|(term, _, _)| *term)
        .map(|(_, id, addr)| (id, addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_proto::MembershipStatus;

    fn answer(id: NodeId, role: Role, term: u64, leader: Option<NodeId>) -> Status {
        let mut membership = MembershipStatus::default();
        membership
            .addresses
            .insert(14, "127.0.0.24:7000".to_string());
        membership
            .addresses
            .insert(1, "127.0.0.11:7000".to_string());
        Status {
            id,
            role,
            term,
            leader,
            commit_index: 0,
            applied_index: 0,
            last_log_index: 0,
            first_log_index: 1,
            snapshot: Default::default(),
            refused_peers: 0,
            safety_violation: None,
            membership,
            reorder: Default::default(),
        }
    }

    #[test]
    fn a_newer_hint_to_an_unasked_node_is_followed_at_its_carried_address() {
        let asked: BTreeSet<NodeId> = [1, 2, 3].into();
        let answers = [
            answer(1, Role::Follower, 7, Some(14)),
            answer(2, Role::Follower, 6, Some(3)),
        ];
        let hint = unasked_hint(&answers, &asked);
        assert_eq!(hint, Some((14, "127.0.0.24:7000".parse().unwrap())));
    }

    #[test]
    fn a_hint_is_not_followed_when_a_leader_of_that_term_answered_or_it_was_asked() {
        let asked: BTreeSet<NodeId> = [1, 2, 3].into();
        // The leader of term 7 answered: nothing newer to look for.
        let answers = [
            answer(1, Role::Follower, 7, Some(14)),
            answer(2, Role::Leader, 7, None),
        ];
        assert_eq!(unasked_hint(&answers, &asked), None);
        // The hinted node was asked (and did not answer, or does not lead).
        let answers = [answer(2, Role::Follower, 7, Some(1))];
        assert_eq!(unasked_hint(&answers, &asked), None);
        // No address carried for the hinted node.
        let answers = [answer(2, Role::Follower, 7, Some(9))];
        assert_eq!(unasked_hint(&answers, &asked), None);
        // A stale leader of an older term does not hide the newer hint.
        let answers = [
            answer(2, Role::Leader, 5, None),
            answer(3, Role::Follower, 7, Some(14)),
        ];
        assert_eq!(unasked_hint(&answers, &asked).map(|(id, _)| id), Some(14));
    }
}
