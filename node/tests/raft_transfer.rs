//! Leadership transfer (Raft thesis §3.10) in the pure core: the leader stops taking proposals,
//! brings the target up to date, sends TimeoutNow; the target campaigns at once and wins even
//! though the other voters heard from the old leader (check-quorum on). A transfer that cannot
//! finish is abandoned after an election timeout and proposals resume.

mod membership;

use membership::Cluster;
use riptide_node::raft::{ConfChange, NotLeader, ReadMode, TransferError};

/// Nodes 1..=3 vote (pre-vote and check-quorum on), node 4 is a learner; node 1 leads.
fn cluster() -> Cluster {
    let mut c = Cluster::new(&[1, 2, 3, 4], &[1, 2, 3], |_| {});
    c.elect(1);
    c.run(6);
    assert_eq!(c.leaders(), vec![1]);
    c.raft_mut(1)
        .propose_change(ConfChange::AddLearner(4))
        .unwrap();
    c.process(1);
    c.run(6);
    assert!(c.raft(4).membership().is_learner(4));
    c
}

#[test]
fn a_transfer_completes_and_proposals_are_refused_meanwhile() {
    let mut c = cluster();
    let term = c.raft(1).term();
    // Node 2 is behind: it must be brought up to date first.
    c.cut_one_way(1, 2);
    c.propose(1, "put k v").unwrap();
    c.run(1);
    assert!(c.raft(2).log().last_index() < c.raft(1).log().last_index());
    c.heal();
    c.raft_mut(1).transfer_leadership(2).unwrap();
    assert_eq!(c.raft(1).transfer_target(), Some(2));
    assert_eq!(
        c.raft_mut(1).propose(b"put k w".to_vec()),
        Err(NotLeader {
            leader_hint: Some(2)
        }),
        "a definite refusal naming the new leader to be"
    );
    c.process(1);
    c.stabilize();
    assert_eq!(c.leaders(), vec![2]);
    assert_eq!(c.raft(2).term(), term + 1);
    assert_eq!(c.sent_by(1, "TimeoutNow"), 1);
    assert_eq!(c.sent_by(2, "PreVote"), 0, "skips pre-vote");
    assert!(c.propose(2, "put k x").is_some());
    c.run(3);
    c.assert_safe();
}

#[test]
fn a_transfer_to_an_unreachable_target_is_abandoned_after_an_election_timeout() {
    let mut c = cluster();
    c.isolate(2);
    c.raft_mut(1).transfer_leadership(2).unwrap();
    c.process(1);
    let timeout = c.raft(1).config().election_timeout_min as usize;
    for _ in 0..timeout - 1 {
        c.tick(1, 1);
        c.stabilize();
    }
    assert!(c.raft_mut(1).propose(b"put k v".to_vec()).is_err());
    c.tick(1, 1);
    assert_eq!(c.raft(1).transfer_target(), None, "abandoned");
    assert!(c.raft(1).is_leader());
    assert!(c.propose(1, "put k v").is_some(), "proposals resume");
    c.heal();
    c.run(10);
    assert_eq!(c.leaders(), vec![1]);
    c.assert_safe();
}

#[test]
fn a_transfer_to_self_a_learner_or_an_unknown_node_is_refused() {
    let mut c = cluster();
    let r = c.raft_mut(1);
    assert_eq!(r.transfer_leadership(1), Err(TransferError::ToSelf(1)));
    assert_eq!(r.transfer_leadership(4), Err(TransferError::NotAVoter(4)));
    assert_eq!(r.transfer_leadership(9), Err(TransferError::NotAVoter(9)));
    assert_eq!(r.transfer_target(), None);
    r.transfer_leadership(3).unwrap();
    assert_eq!(r.transfer_leadership(2), Err(TransferError::InProgress(3)));
    assert!(matches!(
        c.raft_mut(2).transfer_leadership(3),
        Err(TransferError::NotLeader(_))
    ));
}

#[test]
fn without_the_transfer_flag_the_voters_lease_refuses_an_eager_candidate() {
    // What the flag is for: the same campaign started by hand is ignored by voters that heard
    // from the leader (check-quorum's lease), so node 2 does not win.
    let mut c = cluster();
    c.raft_mut(2).campaign_now();
    c.process(2);
    c.stabilize();
    assert_eq!(c.leaders(), vec![1]);
}

#[test]
fn a_transfer_revokes_the_leaders_lease() {
    // The target's flagged vote requests pass the followers' leases, so the old leader must
    // not answer from its lease any more: its lease reads fall back to ReadIndex.
    let mut c = Cluster::new(&[1, 2, 3], &[1, 2, 3], |config| {
        config.read_mode = ReadMode::Lease;
    });
    c.run(60);
    let leader = c.leaders()[0];
    let target = if leader == 1 { 2 } else { 1 };
    c.raft_mut(leader).read_index(1).unwrap();
    c.process(leader);
    assert_eq!(
        c.reads,
        vec![(leader, 1)],
        "inside its lease: answered at once"
    );
    c.isolate(target);
    c.raft_mut(leader).transfer_leadership(target).unwrap();
    c.raft_mut(leader).read_index(2).unwrap();
    c.process(leader);
    assert_eq!(
        c.reads,
        vec![(leader, 1)],
        "no lease read during the transfer"
    );
    c.stabilize();
    assert_eq!(
        c.reads,
        vec![(leader, 1), (leader, 2)],
        "a ReadIndex round answered it"
    );
}
