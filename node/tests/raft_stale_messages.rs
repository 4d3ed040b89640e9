//! A Ready never carries a message from a term older than the node's current one.
//!
//! Within one batch a follower can acknowledge entries for the leader of term 2, then accept a
//! term-3 leader's AppendEntries that truncates them. The Ready then persists only the term-3
//! entries; had it still carried the term-2 acknowledgement, the term-2 leader would count this
//! follower toward committing entries that are on no disk (Raft paper §5.3: a follower's success
//! means "my log matches yours up to here, durably").

use riptide_node::raft::{AppendResult, Body, Config, Message, Raft, RaftLog};
use riptide_node::types::{Entry, HardState, Payload};

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Command(vec![index as u8, term as u8]),
    }
}

fn append(from: u64, term: u64, entries: Vec<Entry>) -> Message {
    Message {
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
    }
}

#[test]
fn an_acknowledgement_queued_before_a_term_change_in_the_same_batch_is_not_sent() {
    let config = Config::new(3, vec![1, 2, 3]);
    let mut follower = Raft::new(
        config,
        HardState::default(),
        RaftLog::recovered(0, 0, vec![]),
    )
    .expect("valid config");
    // One batch: the term-2 leader's entries 1-2, then the term-3 leader's conflicting entry 1.
    follower.step(append(1, 2, vec![entry(1, 2), entry(2, 2)]));
    follower.step(append(2, 3, vec![entry(1, 3)]));

    let ready = follower.ready();
    assert_eq!(
        ready.entries,
        vec![entry(1, 3)],
        "only term 3's entry is written"
    );
    assert_eq!(ready.hard_state.map(|hs| hs.term), Some(3));
    assert!(
        ready.messages.iter().all(|m| m.term == 3),
        "a message from an older term left with the Ready: {:?}",
        ready.messages
    );
    let acks: Vec<(u64, AppendResult)> = ready
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            Body::AppendEntriesResponse { result, .. } => Some((m.to, result.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        acks,
        vec![(2, AppendResult::Success { match_index: 1 })],
        "only the term-3 leader is told what is durable"
    );
}
