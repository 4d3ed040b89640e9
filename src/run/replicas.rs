//! Step 6 of a run: compare the replicas' state machines (see `riptide_store::replicas`).
//!
//! After the final reads nothing writes any more, so the nodes converge on one applied index
//! (a new leader may still commit its no-op). The runner asks every node for its digest, all
//! at once, and asks again until every node answers at the same applied index, or the
//! deadline passes. Nodes that answered at a shared index are compared either way.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use riptide_proto::{NodeId, StateDigest};
use riptide_store::replicas::{NodeDigest, ReplicaCheck};

/// How long one node may take to answer one digest request.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause between rounds while the nodes are not yet at one applied index.
const ROUND_PAUSE: Duration = Duration::from_millis(200);

/// Asks every node for its digest until they stand at one applied index or `deadline` passes.
pub fn compare(addrs: &[(NodeId, SocketAddr)], deadline: Duration) -> ReplicaCheck {
    let give_up = Instant::now() + deadline;
    loop {
        let (answers, unanswered) = ask_all(addrs);
        let settled = unanswered.is_empty()
            && answers
                .windows(2)
                .all(|w| w[0].applied_index == w[1].applied_index);
        if settled || Instant::now() + ROUND_PAUSE >= give_up {
            let nodes = answers.iter().map(node_digest).collect();
            return ReplicaCheck::compare(nodes, unanswered).with_violations(violations(addrs));
        }
        std::thread::sleep(ROUND_PAUSE);
    }
}

/// What the nodes' status says about safety violations (a leader replaced entries they had
/// committed). A node that does not answer says nothing.
fn violations(addrs: &[(NodeId, SocketAddr)]) -> BTreeMap<u64, String> {
    addrs
        .iter()
        .filter_map(|&(id, addr)| {
            let status = riptide_proto::status(addr, ASK_TIMEOUT).ok()?;
            Some((id, status.safety_violation?))
        })
        .collect()
}

/// One round: every node asked at the same time, so that their answers are close in time.
fn ask_all(addrs: &[(NodeId, SocketAddr)]) -> (Vec<StateDigest>, BTreeMap<u64, String>) {
    let results: Vec<(NodeId, Result<StateDigest, String>)> = std::thread::scope(|scope| {
        let asks: Vec<_> = addrs
            .iter()
            .map(|&(id, addr)| {
                scope.spawn(move || {
                    let answer = riptide_proto::state_digest(addr, ASK_TIMEOUT);
                    (id, answer.map_err(|e| e.to_string()))
                })
            })
            .collect();
        asks.into_iter()
            .map(|ask| ask.join().expect("a digest request does not panic"))
            .collect()
    });
    let mut answers = Vec::new();
    let mut unanswered = BTreeMap::new();
    for (id, result) in results {
        match result {
            Ok(digest) => answers.push(digest),
            Err(err) => {
                unanswered.insert(id, err);
            }
        }
    }
    (answers, unanswered)
}

fn node_digest(d: &StateDigest) -> NodeDigest {
    NodeDigest {
        id: d.id,
        applied_index: d.applied_index,
        applied_term: d.applied_term,
        keys: d.keys,
        sessions: d.sessions,
        data_digest: format!("{:016x}", d.data_digest),
        session_digest: format!("{:016x}", d.session_digest),
    }
}
