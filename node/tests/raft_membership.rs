//! Membership changes of the pure Raft core (Raft paper §6, thesis §4): configurations in the
//! log, joint consensus, learners, and their survival across restarts and snapshots. Each test
//! drives a small in-memory cluster (`membership/mod.rs`) message by message and names the
//! behaviour it shows. Leadership transfer is in `raft_transfer.rs`, the two membership bugs of
//! the zoo in `raft_membership_bugs.rs`.

mod membership;

use membership::{carries_entries, joint, scripted, simple, Cluster};
use riptide_node::raft::{ChangeError, ConfChange};
use riptide_node::types::{Entry, Membership, Payload};

/// Nodes 1..=3 vote, 4 and 5 exist outside the cluster; node 1 leads term 1 with its no-op
/// committed everywhere.
fn three_with_spares(tweak: impl Fn(&mut riptide_node::raft::Config)) -> Cluster {
    let mut c = Cluster::new(&[1, 2, 3, 4, 5], &[1, 2, 3], tweak);
    c.elect(1);
    c.run(1);
    assert_eq!(c.leaders(), vec![1]);
    assert_eq!(c.raft(1).log().commit_index(), 1);
    c
}

// ---- §6: a configuration takes effect when appended ---------------------------------------------

#[test]
fn a_config_entry_takes_effect_on_append_and_is_rolled_back_on_truncation() {
    let mut c = Cluster::new(&[1, 2, 3, 4, 5], &[1, 2, 3, 4, 5], scripted);
    c.elect(1);
    c.run(1);
    let index = c.raft_mut(1).propose_change(ConfChange::Remove(5)).unwrap();
    let c_joint = joint(&[1, 2, 3, 4], &[1, 2, 3, 4, 5], &[]);
    // On the leader, at once: nothing is committed yet.
    assert_eq!(c.membership(1), c_joint);
    assert!(c.raft(1).log().commit_index() < index);
    c.process(1);
    // Only node 2 receives it, and its answer is lost.
    c.deliver_where(|m| m.to == 2 && carries_entries(m));
    c.drop_where(|_| true);
    assert_eq!(
        c.membership(2),
        c_joint,
        "in force on the follower on append"
    );
    assert!(c.raft(2).log().commit_index() < index);
    assert_eq!(c.membership(3), Membership::new(&[1, 2, 3, 4, 5]));

    // Nodes 3, 4, 5 elect node 3 without it; its no-op replaces the entry on node 2.
    c.partition(&[1, 2], &[3, 4, 5]);
    c.elect(3);
    assert_eq!(c.leaders(), vec![1, 3]);
    c.heal();
    c.crash(1);
    c.run(10);
    assert_eq!(c.leaders(), vec![3]);
    assert_eq!(c.raft(2).log().term_at(index), Some(2));
    assert_eq!(
        c.membership(2),
        Membership::new(&[1, 2, 3, 4, 5]),
        "the truncated configuration is gone: back to the one before it"
    );
    c.assert_safe();
}

// ---- joint consensus: both majorities ------------------------------------------------------------

/// Replaces node 3 by node 4 while nodes 2 and 3 are cut off from the leader: node 4 and the
/// leader are a majority of C_new = {1, 2, 4} but not of C_old = {1, 2, 3}. Returns the joint
/// entry's index.
fn replace_3_by_4_with_c_old_cut_off(c: &mut Cluster) -> u64 {
    c.partition(&[1], &[2, 3]);
    let change = ConfChange::Replace { add: 4, remove: 3 };
    let index = c.raft_mut(1).propose_change(change).unwrap();
    c.process(1);
    c.run(3);
    assert_eq!(
        c.raft(1).match_index_of(4),
        Some(c.raft(1).log().last_index())
    );
    index
}

#[test]
fn joint_consensus_needs_both_majorities_to_commit() {
    let mut c = three_with_spares(scripted);
    let index = replace_3_by_4_with_c_old_cut_off(&mut c);
    assert_eq!(c.membership(1), joint(&[1, 2, 4], &[1, 2, 3], &[]));
    assert_eq!(
        c.raft(1).log().commit_index(),
        index - 1,
        "C_new's majority {{1, 4}} holds the entry, C_old's does not"
    );
    // Node 2 makes C_old's majority: C_old,new commits, the leader appends C_new, which commits.
    c.heal();
    c.run(3);
    assert_eq!(c.membership(1), simple(&[1, 2, 4], &[]));
    assert!(!c.raft(1).change_in_flight());
    let last = c.raft(1).log().last_index();
    assert_eq!(c.raft(1).log().commit_index(), last);
    assert!(matches!(
        c.raft(1).log().get(last).unwrap().payload,
        Payload::Config(_)
    ));
    c.assert_safe();
}

#[test]
fn with_the_joint_one_majority_bug_c_new_alone_commits() {
    let mut c = three_with_spares(|config| {
        scripted(config);
        config.bugs.joint_one_majority = true;
    });
    let index = replace_3_by_4_with_c_old_cut_off(&mut c);
    assert!(
        c.raft(1).log().commit_index() >= index,
        "the bug: C_new's majority sufficed"
    );
}

/// A log of term 1: a no-op, then C_old,new replacing node 3 by node 4.
fn joint_log() -> Vec<Entry> {
    let entry = |index, payload| Entry {
        term: 1,
        index,
        payload,
    };
    vec![
        entry(1, Payload::Noop),
        entry(2, Payload::Config(joint(&[1, 2, 4], &[1, 2, 3], &[]))),
    ]
}

#[test]
fn joint_consensus_needs_both_majorities_to_elect() {
    let mut c = Cluster::with_log(&[1, 2, 3, 4], &[1, 2, 3], &joint_log(), scripted);
    assert_eq!(c.membership(4), joint(&[1, 2, 4], &[1, 2, 3], &[]));
    c.crash(1);
    c.crash(3);
    // Node 2's vote gives node 4 a majority of C_new {1, 2, 4}, not of C_old {1, 2, 3}.
    c.elect(4);
    assert!(c.leaders().is_empty());
    assert!(c.raft(2).voted_for() == Some(4));
    // With node 3 back, node 4 has both.
    c.restart(3);
    c.elect(4);
    assert_eq!(c.leaders(), vec![4]);
    c.assert_safe();
}

#[test]
fn with_the_joint_one_majority_bug_c_new_alone_elects() {
    let mut c = Cluster::with_log(&[1, 2, 3, 4], &[1, 2, 3], &joint_log(), |config| {
        scripted(config);
        config.bugs.joint_one_majority = true;
    });
    c.crash(1);
    c.crash(3);
    c.elect(4);
    assert_eq!(c.leaders(), vec![4], "the bug: C_new's majority sufficed");
}

#[test]
fn a_leader_outside_c_new_steps_down_after_c_new_commits() {
    let mut c = three_with_spares(scripted);
    let campaigns_before = c.sent_by(1, "RequestVote") + c.sent_by(1, "PreVote");
    let index = c.raft_mut(1).propose_change(ConfChange::Remove(1)).unwrap();
    c.process(1);
    // Message by message: the leader keeps leading until C_new commits.
    let mut managed_in_c_new = false;
    while let Some(m) = c.in_flight().front().cloned() {
        c.deliver_where(|x| *x == m);
        let r = c.raft(1);
        if r.is_leader() && r.membership() == &simple(&[2, 3], &[]) {
            managed_in_c_new = true;
            assert!(r.log().commit_index() >= index, "C_old,new committed first");
        }
    }
    assert!(
        managed_in_c_new,
        "the leader appended C_new and replicated it"
    );
    assert!(!c.raft(1).is_leader(), "stepped down once C_new committed");
    assert_eq!(c.membership(1), simple(&[2, 3], &[]));
    let commit = c.raft(1).log().commit_index();
    assert_eq!(commit, c.raft(1).log().last_index());
    // Nodes 2 and 3 elect a leader among themselves; node 1 never campaigns again.
    c.run(100);
    let leaders = c.leaders();
    assert!(leaders == [2] || leaders == [3], "{leaders:?}");
    let campaigns = c.sent_by(1, "RequestVote") + c.sent_by(1, "PreVote");
    assert_eq!(campaigns, campaigns_before);
    c.assert_safe();
}

#[test]
fn a_removed_server_that_keeps_campaigning_does_not_disrupt() {
    // Pre-vote and check-quorum on (the defaults).
    let mut c = Cluster::new(&[1, 2, 3], &[1, 2, 3], |_| {});
    c.run(60);
    let leader = c.leaders()[0];
    let removed = if leader == 3 { 2 } else { 3 };
    let term = c.raft(leader).term();
    c.raft_mut(leader)
        .propose_change(ConfChange::Remove(removed))
        .unwrap();
    c.process(leader);
    // The removed node gets C_old,new (where it still votes), then is cut off until C_new
    // has committed without it: it never learns that it was removed.
    c.deliver_where(|m| m.to == removed);
    c.isolate(removed);
    c.run(10);
    assert!(!c.raft(leader).change_in_flight());
    assert!(c.membership(removed).is_voter(removed));
    c.heal();
    c.run(300);
    assert!(c.sent_by(removed, "PreVote") >= 5, "it kept campaigning");
    assert_eq!(c.leaders(), vec![leader]);
    for id in [1, 2, 3] {
        assert_eq!(c.raft(id).term(), term, "n{id}'s term");
    }
    c.assert_safe();
}

#[test]
fn without_pre_vote_and_check_quorum_a_removed_server_does_bump_the_term() {
    // The same scenario without the defences, to show what they prevent.
    let mut c = Cluster::new(&[1, 2, 3], &[1, 2, 3], scripted);
    c.elect(1);
    c.raft_mut(1).propose_change(ConfChange::Remove(3)).unwrap();
    c.process(1);
    c.deliver_where(|m| m.to == 3);
    c.isolate(3);
    c.run(10);
    assert!(!c.raft(1).change_in_flight());
    c.heal();
    c.run(300);
    assert!(
        c.raft(1).term() > 1,
        "the removed node's elections disrupted the cluster"
    );
    c.assert_safe();
}

// ---- refusals -----------------------------------------------------------------------------------

#[test]
fn changes_are_refused_with_a_definite_error() {
    let mut c = three_with_spares(scripted);
    let r = c.raft_mut(2);
    assert!(matches!(
        r.propose_change(ConfChange::AddLearner(4)),
        Err(ChangeError::NotLeader(_))
    ));
    let r = c.raft_mut(1);
    assert_eq!(
        r.propose_change(ConfChange::Remove(9)),
        Err(ChangeError::Unknown(9))
    );
    assert_eq!(
        r.propose_change(ConfChange::AddLearner(2)),
        Err(ChangeError::AlreadyMember(2))
    );
    assert_eq!(
        r.propose_change(ConfChange::Promote(4)),
        Err(ChangeError::NotALearner(4))
    );
    r.propose_change(ConfChange::Remove(3)).unwrap();
    assert!(matches!(
        r.propose_change(ConfChange::Remove(2)),
        Err(ChangeError::InFlight(_))
    ));
    c.process(1);
    c.run(3);
    let r = c.raft_mut(1);
    r.propose_change(ConfChange::Remove(2)).unwrap();
    c.process(1);
    c.run(3);
    assert_eq!(c.membership(1), simple(&[1], &[]));
    assert_eq!(
        c.raft_mut(1).propose_change(ConfChange::Remove(1)),
        Err(ChangeError::NoVoters)
    );
    c.assert_safe();
}

#[test]
fn a_new_leader_changes_nothing_before_it_commits_in_its_term() {
    let mut c = three_with_spares(scripted);
    c.isolate(1);
    c.raft_mut(2).campaign_now();
    c.process(2);
    c.deliver_where(|m| m.to == 3);
    c.deliver_where(|m| m.to == 2);
    assert!(c.raft(2).is_leader());
    assert_eq!(
        c.raft_mut(2).propose_change(ConfChange::AddLearner(4)),
        Err(ChangeError::NotReady)
    );
    c.stabilize();
    assert!(c
        .raft_mut(2)
        .propose_change(ConfChange::AddLearner(4))
        .is_ok());
}

// ---- learners -----------------------------------------------------------------------------------

#[test]
fn a_learner_receives_the_log_but_is_not_counted_and_never_campaigns() {
    let mut c = three_with_spares(|config| config.promote_lag_entries = 5);
    c.raft_mut(1)
        .propose_change(ConfChange::AddLearner(4))
        .unwrap();
    c.process(1);
    c.run(3);
    assert_eq!(c.membership(4), simple(&[1, 2, 3], &[4]));
    assert_eq!(c.raft(4).log().last_index(), c.raft(1).log().last_index());
    // Commits do not wait for it: with node 3 down, nodes 1 and 2 are the majority; with node 2
    // down too, the learner does not make one.
    c.crash(3);
    let index = c.propose(1, "put k v").unwrap();
    c.run(1);
    assert!(c.raft(1).log().commit_index() >= index);
    c.crash(2);
    let index = c.propose(1, "put k w").unwrap();
    c.run(2);
    assert!(
        c.raft(1).log().commit_index() < index,
        "the learner is not counted"
    );
    assert!(
        c.raft(4).log().last_index() >= index,
        "but it has the entry"
    );
    // Cut off from everyone, it never campaigns.
    c.isolate(4);
    let term = c.raft(4).term();
    c.run(200);
    assert_eq!(c.raft(4).term(), term);
    assert_eq!(c.sent_by(4, "PreVote") + c.sent_by(4, "RequestVote"), 0);
    c.assert_safe();
}

#[test]
fn a_learner_is_promoted_through_joint_consensus_only_once_caught_up() {
    let mut c = three_with_spares(|config| {
        scripted(config);
        config.promote_lag_entries = 5;
    });
    c.raft_mut(1)
        .propose_change(ConfChange::AddLearner(4))
        .unwrap();
    c.process(1);
    c.run(2);
    c.isolate(4);
    for k in 0..10 {
        c.propose(1, &format!("put k {k}"));
    }
    c.run(1);
    let refused = c.raft_mut(1).propose_change(ConfChange::Promote(4));
    assert!(
        matches!(
            refused,
            Err(ChangeError::LearnerBehind {
                id: 4,
                bound: 5,
                ..
            })
        ),
        "{refused:?}"
    );
    c.heal();
    c.run(2);
    c.raft_mut(1)
        .propose_change(ConfChange::Promote(4))
        .unwrap();
    assert_eq!(c.membership(1), joint(&[1, 2, 3, 4], &[1, 2, 3], &[]));
    c.process(1);
    c.run(3);
    assert_eq!(c.membership(1), simple(&[1, 2, 3, 4], &[]));
    assert_eq!(c.membership(4), simple(&[1, 2, 3, 4], &[]));
    c.assert_safe();
}

#[test]
fn a_learners_vote_does_not_count() {
    let mut c = three_with_spares(scripted);
    c.raft_mut(1)
        .propose_change(ConfChange::AddLearner(4))
        .unwrap();
    c.process(1);
    c.run(2);
    c.crash(1);
    c.crash(3);
    c.raft_mut(2).campaign_now();
    c.process(2);
    // Vote requests go to voters only.
    assert!(c.in_flight().iter().all(|m| m.to != 4));
    let term = c.raft(2).term();
    c.stabilize();
    let grant = riptide_node::raft::Message {
        from: 4,
        to: 2,
        term,
        body: riptide_node::raft::Body::RequestVoteResponse {
            granted: true,
            pre_vote: false,
        },
    };
    c.raft_mut(2).step(grant);
    c.process(2);
    assert!(c.leaders().is_empty(), "a learner's grant is no vote");
}

// ---- restarts and snapshots ---------------------------------------------------------------------

#[test]
fn the_configuration_survives_restarts_and_snapshots() {
    let mut c = three_with_spares(scripted);
    c.raft_mut(1)
        .propose_change(ConfChange::AddLearner(5))
        .unwrap();
    c.process(1);
    c.run(2);
    let learner_added = c.raft(1).log().commit_index();
    c.raft_mut(1)
        .propose_change(ConfChange::Replace { add: 4, remove: 3 })
        .unwrap();
    c.process(1);
    c.run(4);
    let done = simple(&[1, 2, 4], &[5]);
    assert_eq!(c.membership(2), done);
    // From the log alone (the command line still says 1, 2, 3).
    c.crash(2);
    c.restart(2);
    assert_eq!(c.membership(2), done);
    // From a snapshot that covers every configuration entry (once node 2 has learned the
    // commit index again and applied them).
    c.run(6);
    let at = c.snapshot(2);
    assert_eq!(at, c.raft(1).log().last_index());
    assert_eq!(c.raft(2).log().first_index(), at + 1);
    c.crash(2);
    c.restart(2);
    assert_eq!(c.membership(2), done);
    assert_eq!(c.raft(2).snapshot().unwrap().meta.membership(), done);
    // A snapshot carries the configuration as of its own index.
    assert_eq!(
        c.raft(1).membership_at(learner_added),
        simple(&[1, 2, 3], &[5])
    );
    c.run(3);
    assert_eq!(c.leaders(), vec![1]);
    c.assert_safe();
}

#[test]
fn a_change_that_would_leave_no_reachable_quorum_is_refused_and_a_silent_learner_is_not_promoted() {
    let mut c = three_with_spares(|config| {
        config.pre_vote = true;
        config.check_quorum = true;
    });
    c.isolate(3);
    // Two check-quorum rounds (election timeouts) in which the leader hears 2 but not 3.
    for _ in 0..70 {
        c.tick(1, 1);
        c.tick(2, 1);
        c.run(1);
    }
    assert_eq!(c.leaders(), vec![1]);
    // Removing 2 would leave C_new = {1, 3}, of which only the leader is reachable.
    let refused = c.raft_mut(1).propose_change(ConfChange::Remove(2));
    assert!(
        matches!(&refused, Err(ChangeError::NoReachableQuorum { voters, reachable })
            if voters == &vec![1, 3] && reachable == &vec![1]),
        "{refused:?}"
    );
    // A learner that never answers (4 is cut off) cannot be promoted, however short the log.
    c.raft_mut(1)
        .propose_change(ConfChange::AddLearner(4))
        .unwrap();
    c.isolate(4);
    c.run(3);
    assert_eq!(
        c.raft_mut(1).propose_change(ConfChange::Promote(4)),
        Err(ChangeError::Silent(4))
    );
    // Removing the unreachable 3 keeps a reachable majority: {1, 2}.
    c.raft_mut(1).propose_change(ConfChange::Remove(3)).unwrap();
    c.assert_safe();
}
