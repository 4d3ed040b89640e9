//! The two membership bugs of the zoo, each caught by a scenario of the pure core, and the very
//! same scenario run on the correct core staying safe.
//!
//! - `single-server-change-unsafe`: the 2015 single-server change bug (Ongaro, raft-dev, "bug in
//!   single-server membership changes"): two leaders each add a server to the same four-node
//!   cluster, one of them before committing in its term; the two new configurations' majorities
//!   do not intersect, and a committed entry is lost.
//! - `joint-one-majority`: during C_old,new a decision counts only C_new's majority, so a leader
//!   commits without C_old's majority while C_old's majority elects another leader.

mod membership;

use membership::{scripted, Cluster};
use riptide_node::raft::{ChangeError, ConfChange, Config};

/// What a scenario ended with.
struct Outcome {
    cluster: Cluster,
    /// The answer to the second leader's change.
    second_change: Result<u64, ChangeError>,
    /// Node 1 won an election on its side of the partition (with nodes 4 and 5).
    first_reelected: bool,
}

/// Ongaro's scenario. Nodes 1..=4 vote, 5 and 6 are learners. Node 1 (term 1) promotes 5 and
/// only 5 gets the entry; node 1 crashes. Node 2 wins term 2 with 3 and 4, then (before its
/// no-op commits) promotes 6; cut off from 4 and 5, it replicates to 3 and 6 only and commits
/// `x` by them. Node 1 comes back on the other side, with 4 and 5, and campaigns.
fn two_single_server_changes(bug: bool) -> Outcome {
    let tweak = move |config: &mut Config| {
        scripted(config);
        config.bugs.single_server_change_unsafe = bug;
    };
    let mut c = Cluster::new(&[1, 2, 3, 4, 5, 6], &[1, 2, 3, 4], tweak);
    c.elect(1);
    for learner in [5, 6] {
        c.raft_mut(1)
            .propose_change(ConfChange::AddLearner(learner))
            .unwrap();
        c.process(1);
        c.run(6);
    }
    c.raft_mut(1)
        .propose_change(ConfChange::Promote(5))
        .unwrap();
    c.process(1);
    c.deliver_where(|m| m.to == 5);
    c.drop_where(|_| true);
    c.crash(1);

    c.raft_mut(2).campaign_now();
    c.process(2);
    c.deliver_where(|m| m.from == 2); // the vote requests
    c.cut_one_way(2, 4);
    c.cut_one_way(2, 5);
    c.stabilize();
    assert_eq!(c.leaders(), vec![2]);
    let second_change = c.raft_mut(2).propose_change(ConfChange::Promote(6));
    c.process(2);
    c.stabilize();
    c.propose(2, "put x 1");
    c.run(6);

    c.heal();
    c.partition(&[1, 4, 5], &[2, 3, 6]);
    c.restart(1);
    for _ in 0..2 {
        c.elect(1);
    }
    let first_reelected = c.raft(1).is_leader();
    c.run(12);
    c.heal();
    c.run(12);
    Outcome {
        cluster: c,
        second_change,
        first_reelected,
    }
}

#[test]
fn single_server_change_unsafe_loses_a_committed_entry() {
    let Outcome {
        cluster: c,
        second_change,
        first_reelected,
    } = two_single_server_changes(true);
    assert!(
        second_change.is_ok(),
        "the bug takes the change: {second_change:?}"
    );
    assert!(
        first_reelected,
        "a majority of {{1, 2, 3, 4, 5}} without 2 and 3"
    );
    let lost = c.lost.as_deref().expect("a committed entry was lost");
    assert!(lost.contains("applied"), "{lost}");
}

#[test]
fn the_same_two_changes_are_safe_on_the_correct_core() {
    let Outcome {
        cluster: c,
        second_change,
        first_reelected,
    } = two_single_server_changes(false);
    assert_eq!(
        second_change,
        Err(ChangeError::NotReady),
        "no change before committing in its term"
    );
    // Node 1's C_old,new needs C_old's majority, which nodes 1 and 4 are not.
    assert!(!first_reelected);
    c.assert_safe();
}

/// Nodes 1..=3 vote, 4 is new. Node 1 replaces 3 by 4 while cut off from 2 and 3, and proposes
/// `x`; then node 2 campaigns with 3 (both still in C_old).
fn a_replacement_cut_off_from_c_old(bug: bool) -> Cluster {
    let tweak = move |config: &mut Config| {
        scripted(config);
        config.bugs.joint_one_majority = bug;
    };
    let mut c = Cluster::new(&[1, 2, 3, 4], &[1, 2, 3], tweak);
    c.elect(1);
    c.run(6);
    c.partition(&[1, 4], &[2, 3]);
    c.raft_mut(1)
        .propose_change(ConfChange::Replace { add: 4, remove: 3 })
        .unwrap();
    c.process(1);
    c.run(6);
    c.propose(1, "put x 1");
    c.run(6);
    c.elect(2);
    c.run(6);
    c.heal();
    c.run(12);
    c
}

#[test]
fn joint_one_majority_loses_a_committed_entry() {
    let c = a_replacement_cut_off_from_c_old(true);
    let lost = c.lost.as_deref().expect("a committed entry was lost");
    assert!(lost.contains("applied"), "{lost}");
}

#[test]
fn the_same_replacement_is_safe_on_the_correct_core() {
    let c = a_replacement_cut_off_from_c_old(false);
    c.assert_safe();
    // Node 1 committed nothing past its no-op while cut off from C_old.
    assert!(c.nodes[&1]
        .applied
        .iter()
        .all(|e| e.index <= 1 || e.term > 1));
}
