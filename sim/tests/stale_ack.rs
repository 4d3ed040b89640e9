//! Through the executor: a follower that, in one batch, acknowledges entries for the term-2
//! leader and then truncates them for the term-3 leader persists only term 3's entry, and must
//! not tell the term-2 leader it holds the others (riptide issue 9: the stale acknowledgement).

use riptide_node::raft::{AppendResult, Body, Message};
use riptide_node::server::UnsafeBug;
use riptide_node::types::{Entry, Payload};
use riptide_sim::cluster::{Cluster, Input, NodeSettings};
use riptide_sim::network::Delivery;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Noop,
    }
}

fn append(from: u64, term: u64, entries: Vec<Entry>) -> Input {
    Input::Deliver(Delivery::Peer(Message {
        from,
        to: 3,
        term,
        body: Body::AppendEntries {
            prev_index: 0,
            prev_term: 0,
            entries,
            commit: 0,
            read_round: 0,
        },
    }))
}

#[test]
fn a_truncated_acknowledgement_never_leaves_the_follower() {
    let settings = NodeSettings {
        seed: 1,
        pre_vote: true,
        bugs: Vec::<UnsafeBug>::new(),
        snapshots: None,
        tweaks: Default::default(),
    };
    let mut cluster = Cluster::new(3, settings);
    let batch = vec![
        append(1, 2, vec![entry(1, 2), entry(2, 2)]),
        append(2, 3, vec![entry(1, 3)]),
    ];
    cluster.run_batch(3, batch, &mut |_| 0);

    let durable = cluster
        .node(3)
        .expect("running")
        .storage()
        .synced()
        .to_vec();
    assert_eq!(
        durable,
        vec![entry(1, 3)],
        "only term 3's entry is on the disk"
    );
    let to_old_leader: Vec<Delivery> = cluster.net.take_all(1);
    for delivery in &to_old_leader {
        if let Delivery::Peer(msg) = delivery {
            let promise = matches!(
                msg.body,
                Body::AppendEntriesResponse {
                    result: AppendResult::Success { .. },
                    ..
                }
            );
            assert!(
                !(msg.from == 3 && promise),
                "node 3 acknowledged entries it does not hold: {msg:?}"
            );
        }
    }
    let to_new_leader = cluster.net.take_all(2);
    assert!(
        to_new_leader.iter().any(|d| matches!(
            d,
            Delivery::Peer(Message {
                term: 3,
                body: Body::AppendEntriesResponse {
                    result: AppendResult::Success { match_index: 1 },
                    ..
                },
                ..
            })
        )),
        "the term-3 leader hears of its entry: {to_new_leader:?}"
    );
}
