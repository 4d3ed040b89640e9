//! Scenario tests of the pure Raft core, one per behaviour, named after it. Each drives an
//! in-memory cluster message by message (see `sim/mod.rs`) and cites the paper section it checks.

mod sim;

use riptide_node::protocol::Role;
use riptide_node::raft::{AppendResult, Body, Config, Message};
use riptide_node::types::{Entry, HardState, Payload};
use sim::Sim;

fn no_prevote(id: u64, voters: Vec<u64>) -> Config {
    let mut c = Config::new(id, voters);
    c.pre_vote = false;
    c.check_quorum = false;
    c
}

/// §5.2: a candidate that gets votes from a majority becomes leader; the others follow it and the
/// leader's no-op commits everywhere.
#[test]
fn election_a_candidate_with_a_majority_becomes_leader() {
    for n in [3, 5] {
        let mut sim = Sim::new(n);
        sim.elect(1);
        assert_eq!(sim.leaders(), vec![1]);
        for id in 2..=n {
            assert_eq!(sim.node(id).role(), Role::Follower);
            assert_eq!(sim.node(id).leader(), Some(1));
            assert_eq!(sim.node(id).term(), 1);
            assert_eq!(sim.node(id).voted_for(), Some(1));
            assert_eq!(
                sim.node(id).log().commit_index(),
                1,
                "the no-op reached node {id}"
            );
        }
        assert_eq!(sim.node(1).log().get(1).unwrap().payload, Payload::Noop);
        sim.check_safety();
    }
}

/// §5.2: the votes are durable: a restarted voter does not vote twice in one term.
#[test]
fn election_a_vote_survives_a_restart() {
    let mut sim = Sim::with_config(3, no_prevote);
    sim.campaign(1);
    // Only node 2 hears node 1's request.
    let to_two: Vec<Message> = sim.network.drain(..).filter(|m| m.to == 2).collect();
    for m in to_two {
        sim.node_mut(2).step(m);
        sim.process(2);
    }
    sim.network.clear();
    assert_eq!(
        sim.durable[&2].hard_state,
        HardState {
            term: 1,
            voted_for: Some(1)
        }
    );
    sim.crash(2);
    sim.restart(2);
    assert_eq!(sim.node(2).voted_for(), Some(1));
    // Node 3 campaigns in term 1 too (it never heard of node 1's candidacy).
    sim.node_mut(3).campaign_now();
    sim.process(3);
    let to_two: Vec<Message> = sim
        .network
        .drain(..)
        .filter(|m| m.to == 2 && m.from == 3)
        .collect();
    assert_eq!(to_two.len(), 1);
    assert_eq!(to_two[0].term, 1);
    sim.deliver(to_two[0].clone());
    let answer = sim.network.pop_back().unwrap();
    assert_eq!(
        answer.body,
        Body::RequestVoteResponse {
            granted: false,
            pre_vote: false
        }
    );
}

/// §5.2: two candidates split the votes of a 4-node cluster; nobody wins that term, and randomised
/// timeouts elect exactly one leader in a later term.
#[test]
fn split_vote_then_a_later_term_elects_one_leader() {
    let mut sim = Sim::with_config(4, no_prevote);
    sim.campaign(1);
    sim.campaign(2);
    // Node 3 hears node 1 first, node 4 hears node 2 first.
    let msgs: Vec<Message> = sim.network.drain(..).collect();
    let order = |m: &Message| match (m.from, m.to) {
        (1, 3) | (2, 4) => 0,
        _ => 1,
    };
    let mut msgs = msgs;
    msgs.sort_by_key(order);
    for m in msgs {
        sim.deliver(m);
    }
    sim.deliver_all();
    assert!(
        sim.leaders().is_empty(),
        "a 2-2 split must not elect anyone"
    );
    assert_eq!(sim.node(1).term(), 1);
    assert_eq!(sim.node(1).role(), Role::Candidate);
    sim.tick_all(100);
    let leaders = sim.leaders();
    assert_eq!(leaders.len(), 1, "exactly one leader after the timeouts");
    assert!(sim.node(leaders[0]).term() > 1);
    sim.check_safety();
}

/// §5.4.1: a candidate whose log is behind loses, even with a higher term, and does not erase the
/// committed entries of the others.
#[test]
fn candidate_with_a_stale_log_loses() {
    let mut sim = Sim::with_config(3, no_prevote);
    sim.elect(1);
    sim.isolate(3);
    for k in 0..5u8 {
        sim.propose(1, &[k]);
    }
    sim.deliver_all();
    sim.tick_all(1);
    assert_eq!(sim.node(1).log().commit_index(), 6);
    // Node 3 campaigns twice in isolation, raising its term above everyone's.
    sim.campaign(3);
    sim.campaign(3);
    sim.network.clear();
    sim.heal();
    let stale_term = sim.node(3).term();
    assert!(stale_term > sim.node(1).term());
    sim.campaign(3);
    sim.deliver_all();
    assert_ne!(sim.node(3).role(), Role::Leader, "a stale log must not win");
    assert!(
        sim.node(1).term() > 1 && sim.node(2).term() > 1,
        "the higher term was seen"
    );
    for id in [1, 2] {
        assert_eq!(
            sim.terms(id).len(),
            6,
            "node {id} kept its committed entries"
        );
    }
    sim.tick_all(100);
    let leader = sim.leaders()[0];
    assert_ne!(leader, 3);
    assert_eq!(
        sim.applied_commands(3).len(),
        5,
        "node 3 caught up from the new leader"
    );
    sim.check_safety();
}

/// §5.3: a follower's conflicting uncommitted suffix is replaced by the leader's entries, and the
/// conflict hint skips a whole term per round trip.
#[test]
fn log_conflict_repair_replaces_the_divergent_suffix() {
    let mut sim = Sim::with_config(3, no_prevote);
    // Node 1 leads term 5 with [1,1,1,4,4,5,5]; node 3 holds an uncommitted tail of terms 2 and 3.
    sim.set_log(
        1,
        &[1, 1, 1, 4, 4, 5, 5],
        HardState {
            term: 5,
            voted_for: Some(1),
        },
    );
    sim.set_log(
        2,
        &[1, 1, 1, 4, 4, 5, 5],
        HardState {
            term: 5,
            voted_for: Some(1),
        },
    );
    sim.set_log(
        3,
        &[1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
        HardState {
            term: 3,
            voted_for: None,
        },
    );
    sim.campaign(1);
    // Count the probes node 1 sends node 3 until they agree.
    let mut rejections = 0;
    while let Some(m) = sim.deliver_one() {
        if let Body::AppendEntriesResponse {
            result: AppendResult::Reject { .. },
            ..
        } = m.body
        {
            rejections += 1;
        }
    }
    assert_eq!(sim.terms(3), vec![1, 1, 1, 4, 4, 5, 5, 6]);
    assert!(
        rejections <= 3,
        "conflict hints should need few round trips, took {rejections}"
    );
    sim.tick_all(1);
    assert_eq!(sim.node(3).log().commit_index(), 8);
    sim.check_safety();
}

/// Figure 8: a leader must not commit an entry from an older term by counting replicas, even once a
/// majority stores it; it commits only when an entry of its own term reaches a majority.
#[test]
fn figure_8_a_prior_term_entry_is_not_committed_by_counting() {
    let mut sim = Sim::with_config(5, |id, voters| {
        let mut c = no_prevote(id, voters);
        c.max_batch_entries = 1; // one entry per message, so we can stop between them
        c
    });
    // S1 led term 2 and put index 2 on S2 only; S5 led term 3 and wrote index 2 locally.
    sim.set_log(
        1,
        &[1, 2],
        HardState {
            term: 3,
            voted_for: None,
        },
    );
    sim.set_log(
        2,
        &[1, 2],
        HardState {
            term: 3,
            voted_for: None,
        },
    );
    sim.set_log(
        3,
        &[1],
        HardState {
            term: 3,
            voted_for: None,
        },
    );
    sim.set_log(
        4,
        &[1],
        HardState {
            term: 3,
            voted_for: None,
        },
    );
    sim.set_log(
        5,
        &[1, 3],
        HardState {
            term: 3,
            voted_for: Some(5),
        },
    );
    // S1 wins term 4 with votes from S2 and S3, and appends its no-op at index 3.
    sim.isolate(5);
    sim.isolate(4);
    sim.campaign(1);
    // S3 rejects the first probe (it lacks index 2), accepts index 2 alone, and then we hold the
    // message carrying the no-op at index 3.
    let seen = std::cell::Cell::new(0);
    sim.deliver_all_but(|m| {
        if m.from == 1 && m.to == 3 && carries_index(m, 3) {
            seen.set(seen.get() + 1);
            return seen.get() > 1;
        }
        false
    });
    assert!(sim.node(1).is_leader());
    assert_eq!(sim.node(1).term(), 4);
    // S1, S2, S3 now all hold index 2 (term 2): a majority. It must not count as committed.
    assert_eq!(sim.terms(3), vec![1, 2]);
    assert_eq!(sim.terms(2), vec![1, 2, 4]);
    assert_eq!(
        sim.node(1).log().commit_index(),
        0,
        "index 2 is from term 2: not committed by counting"
    );
    // Once S3 stores the term-4 no-op, indexes 2 and 3 commit together.
    sim.deliver_all();
    sim.tick_all(1);
    assert_eq!(sim.node(1).log().commit_index(), 3);
    sim.check_safety();
}

fn carries_index(m: &Message, index: u64) -> bool {
    matches!(&m.body, Body::AppendEntries { entries, .. } if entries.iter().any(|e| e.index == index))
}

/// §5.1: a message from an older term changes nothing; an AppendEntries gets an answer carrying the
/// newer term, which makes the stale leader step down.
#[test]
fn stale_term_message_is_dropped_and_the_stale_leader_steps_down() {
    let mut sim = Sim::with_config(3, no_prevote);
    sim.elect(1);
    sim.isolate(1);
    sim.elect_unchecked(2);
    assert!(sim.node(2).is_leader());
    assert_eq!(sim.node(2).term(), 2);
    let before = sim.terms(3);
    // Old leader 1 (term 1) replicates a write that node 3 must refuse.
    sim.propose(1, b"stale");
    sim.heal();
    let stale = Message {
        from: 1,
        to: 3,
        term: 1,
        body: Body::AppendEntries {
            prev_index: 1,
            prev_term: 1,
            entries: vec![Entry {
                term: 1,
                index: 2,
                payload: Payload::Command(b"stale".to_vec()),
            }],
            commit: 2,
            read_round: 0,
        },
    };
    sim.network.clear();
    sim.deliver(stale);
    assert_eq!(sim.terms(3), before, "the stale entry was not appended");
    assert_eq!(sim.node(3).term(), 2);
    let answer = sim.network.back().cloned().unwrap();
    assert_eq!((answer.to, answer.term), (1, 2));
    sim.deliver_all();
    assert_eq!(
        sim.node(1).role(),
        Role::Follower,
        "the stale leader learned the newer term"
    );
    sim.tick_all(10);
    sim.check_safety();
}

/// Thesis §6.4: a new leader answers no read until it has committed an entry of its own term and a
/// majority has confirmed its leadership after the read arrived.
#[test]
fn read_index_waits_for_the_own_term_commit() {
    let mut sim = Sim::with_config(3, no_prevote);
    sim.campaign(1);
    // Deliver only the vote traffic: node 1 is leader, but its no-op has not committed.
    while let Some(m) = sim.network.front().cloned() {
        if matches!(m.body, Body::AppendEntries { .. }) {
            break;
        }
        sim.deliver_one();
    }
    assert!(sim.node(1).is_leader());
    sim.network.clear(); // the first heartbeats are lost
    assert_eq!(sim.node(1).log().commit_index(), 0);
    sim.node_mut(1).read_index(7).unwrap();
    sim.process(1);
    sim.deliver_all();
    assert!(
        sim.reads.get(&1).is_none_or(|r| r.is_empty()),
        "no read before the no-op commits"
    );
    // The next heartbeat replicates the no-op; once it commits, the read gets a round of its own.
    sim.tick_all(5);
    let reads = &sim.reads[&1];
    assert_eq!(reads.len(), 1);
    assert_eq!(
        (reads[0].id, reads[0].index),
        (7, 1),
        "read index = the own-term commit"
    );
}

/// Thesis §6.4: a leader cut off from the majority cannot serve a read; when it loses leadership
/// the read fails instead of answering stale data.
#[test]
fn read_index_on_a_deposed_leader_never_answers() {
    let mut sim = Sim::new(3);
    sim.elect(1);
    sim.isolate(1);
    sim.node_mut(1).read_index(9).unwrap();
    sim.process(1);
    sim.tick_all(60);
    assert!(sim.reads.get(&1).is_none_or(|r| r.is_empty()));
    assert_eq!(
        sim.failed_reads[&1],
        vec![9],
        "check-quorum stepped it down and the read failed"
    );
    assert_ne!(sim.node(1).role(), Role::Leader);
}

/// Thesis §9.6: with pre-vote, a node that was partitioned away does not raise its term, so it does
/// not depose the working leader when it returns.
#[test]
fn prevote_a_returning_node_does_not_disrupt_the_leader() {
    let mut sim = Sim::new(3);
    sim.elect(1);
    sim.isolate(3);
    sim.tick_all(200);
    assert_eq!(
        sim.node(3).term(),
        1,
        "pre-votes failed, so the term did not grow"
    );
    sim.heal();
    sim.tick_all(50);
    assert_eq!(sim.leaders(), vec![1]);
    assert_eq!(sim.node(1).term(), 1);
    sim.check_safety();
}

/// §5.3: a restarted follower catches up on everything it missed.
#[test]
fn a_restarted_follower_catches_up() {
    let mut sim = Sim::new(3);
    sim.elect(1);
    sim.crash(3);
    for k in 0..20u8 {
        sim.propose(1, &[k]);
        sim.deliver_all();
    }
    sim.restart(3);
    sim.tick_all(10);
    assert_eq!(sim.applied_commands(3).len(), 20);
    sim.check_safety();
}

/// A node never lets a malformed message reach its log: entries out of sequence, with terms going
/// backwards or newer than the message, or an acknowledgement of entries the leader never had.
#[test]
fn malformed_messages_from_a_peer_are_dropped() {
    let mut sim = Sim::with_config(3, no_prevote);
    sim.elect(1);
    let before = sim.terms(2);
    let entry = |term, index| Entry {
        term,
        index,
        payload: Payload::Noop,
    };
    let bad_batches = [
        vec![entry(1, 3)],              // a gap: prev is 1, so the first entry must be 2
        vec![entry(1, 2), entry(1, 2)], // a repeated index
        vec![entry(5, 2)],              // newer than the message's term
        vec![entry(0, 2)],              // older than prev_term
    ];
    for entries in bad_batches {
        sim.network.clear();
        sim.deliver(Message {
            from: 1,
            to: 2,
            term: 1,
            body: Body::AppendEntries {
                prev_index: 1,
                prev_term: 1,
                entries,
                commit: 5,
                read_round: 0,
            },
        });
        assert!(
            sim.network.is_empty(),
            "no answer to a malformed AppendEntries"
        );
        assert_eq!(sim.terms(2), before, "the log is untouched");
        assert_eq!(
            sim.node(2).log().commit_index(),
            1,
            "the commit index did not move"
        );
    }
    // An acknowledgement beyond the leader's log changes nothing either.
    sim.deliver(Message {
        from: 2,
        to: 1,
        term: 1,
        body: Body::AppendEntriesResponse {
            result: AppendResult::Success { match_index: 99 },
            read_round: 0,
        },
    });
    assert_eq!(sim.node(1).log().commit_index(), 1);
    sim.propose(1, b"still works");
    sim.deliver_all();
    sim.tick_all(5);
    assert_eq!(sim.applied_commands(2), vec![b"still works".to_vec()]);
    sim.check_safety();
}
