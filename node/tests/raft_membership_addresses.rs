//! The address book the configuration carries: the address of each member that was given one
//! (on the command line for the initial members, with the change for a node added at runtime),
//! so that any node, a new leader too, can reach a member it never saw on its command line.
//! Addresses follow the members through every change and are dropped when a node leaves; they
//! survive restarts from the log and from a snapshot. Driven like `raft_membership.rs`, on the
//! in-memory cluster of `membership/mod.rs`.

mod membership;

use std::collections::BTreeMap;

use membership::{scripted, Cluster};
use riptide_node::raft::{ChangeError, ConfChange, Config};
use riptide_node::types::{Membership, NodeId, Payload};

fn book(addresses: &[(NodeId, &str)]) -> BTreeMap<NodeId, String> {
    addresses
        .iter()
        .map(|&(id, a)| (id, a.to_string()))
        .collect()
}

/// The command line's peer list of nodes 1..=3.
fn peers() -> BTreeMap<NodeId, String> {
    book(&[(1, "n1:7001"), (2, "n2:7002"), (3, "n3:7003")])
}

/// Nodes 1..=3 vote and know each other's addresses from the command line; 4 and 5 exist outside
/// the cluster. Node 1 leads term 1, its no-op committed everywhere.
fn three_with_spares() -> Cluster {
    let mut c = Cluster::new(&[1, 2, 3, 4, 5], &[1, 2, 3], |config| {
        scripted(config);
        config.addresses = peers();
    });
    c.elect(1);
    c.run(1);
    assert_eq!(c.leaders(), vec![1]);
    c
}

/// Proposes `change` with `address` on node 1 and runs until the network is quiet.
fn change(c: &mut Cluster, change: ConfChange, address: Option<&str>) {
    c.raft_mut(1)
        .propose_change_at(change, address.map(str::to_string))
        .unwrap();
    c.process(1);
    c.run(4);
    assert!(!c.raft(1).change_in_flight(), "{}", c.membership(1));
}

/// The configuration `id` has in force, and that it holds no address for a non-member.
fn membership(c: &Cluster, id: NodeId) -> Membership {
    let m = c.membership(id);
    assert_eq!(m.stray_address(), None, "n{id}: {m:?}");
    m
}

/// The configuration the last configuration entry of `id`'s log carries.
fn last_config_entry(c: &Cluster, id: NodeId) -> Membership {
    let log = c.raft(id).log();
    (log.first_index()..=log.last_index())
        .rev()
        .find_map(|i| match &log.get(i)?.payload {
            Payload::Config(m) => Some(m.clone()),
            _ => None,
        })
        .expect("a configuration entry")
}

#[test]
fn the_initial_configuration_carries_the_command_lines_addresses_of_its_members_only() {
    let mut c = Cluster::new(&[1, 2, 3], &[1, 2, 3], |config| {
        scripted(config);
        let mut addresses = peers();
        addresses.insert(9, "stranger:9".into());
        addresses.remove(&3);
        config.addresses = addresses;
    });
    c.elect(1);
    c.run(1);
    for id in [1, 2, 3] {
        let m = membership(&c, id);
        assert_eq!(
            m.addresses,
            book(&[(1, "n1:7001"), (2, "n2:7002")]),
            "n{id}"
        );
        assert_eq!(m.address(3), None, "no address given, none invented");
    }
}

#[test]
fn an_address_given_when_adding_a_learner_reaches_every_member_and_a_new_leader() {
    let mut c = three_with_spares();
    change(&mut c, ConfChange::AddLearner(4), Some("n4:7004"));
    let mut expected = peers();
    expected.insert(4, "n4:7004".into());
    for id in [1, 2, 3, 4] {
        assert_eq!(membership(&c, id).addresses, expected, "n{id}");
        assert_eq!(
            last_config_entry(&c, id).addresses,
            expected,
            "the entry, on n{id}"
        );
    }
    // Node 2, which never saw node 4 on its command line, leads and still knows where it is.
    c.crash(1);
    c.elect(2);
    c.run(2);
    assert_eq!(c.leaders(), vec![2]);
    assert_eq!(membership(&c, 2).address(4), Some("n4:7004"));
    assert_eq!(
        c.raft(2).match_index_of(4),
        Some(c.raft(2).log().last_index()),
        "and replicates to it"
    );
    c.assert_safe();
}

#[test]
fn a_promoted_learner_keeps_its_address_through_the_joint_phase_unless_given_a_new_one() {
    let mut c = three_with_spares();
    change(&mut c, ConfChange::AddLearner(4), Some("n4:7004"));
    c.raft_mut(1)
        .propose_change(ConfChange::Promote(4))
        .unwrap();
    let joint = membership(&c, 1);
    assert!(joint.is_joint());
    assert_eq!(joint.address(4), Some("n4:7004"), "C_old,new keeps it");
    c.process(1);
    c.run(4);
    let done = membership(&c, 3);
    assert!(!done.is_joint() && done.voters == [1, 2, 3, 4], "{done}");
    assert_eq!(done.address(4), Some("n4:7004"), "so does C_new");
    assert_eq!(done.addresses.len(), 4);

    // The same with a new address: it replaces the learner's.
    let mut c = three_with_spares();
    change(&mut c, ConfChange::AddLearner(5), Some("old:5"));
    c.raft_mut(1)
        .propose_change_at(ConfChange::Promote(5), Some("new:5".into()))
        .unwrap();
    assert_eq!(membership(&c, 1).address(5), Some("new:5"));
    c.process(1);
    c.run(4);
    assert_eq!(membership(&c, 2).address(5), Some("new:5"));
    assert_eq!(last_config_entry(&c, 2).address(5), Some("new:5"));
    c.assert_safe();
}

#[test]
fn a_replaced_voter_keeps_its_address_until_c_new_and_a_removed_node_loses_it() {
    let mut c = three_with_spares();
    c.raft_mut(1)
        .propose_change_at(
            ConfChange::Replace { add: 5, remove: 3 },
            Some("n5:7005".into()),
        )
        .unwrap();
    let joint = membership(&c, 1);
    assert_eq!(joint.outgoing, vec![1, 2, 3]);
    assert_eq!(
        joint.address(3),
        Some("n3:7003"),
        "still a member (outgoing): still reachable"
    );
    assert_eq!(joint.address(5), Some("n5:7005"));
    c.process(1);
    c.run(4);
    let after = book(&[(1, "n1:7001"), (2, "n2:7002"), (5, "n5:7005")]);
    for id in [1, 2, 5] {
        assert_eq!(membership(&c, id).addresses, after, "n{id}");
    }
    // A learner's address leaves with it at once (a simple change), a voter's with C_new.
    change(&mut c, ConfChange::AddLearner(4), Some("n4:7004"));
    assert_eq!(membership(&c, 2).address(4), Some("n4:7004"));
    change(&mut c, ConfChange::Remove(4), Some("ignored:4"));
    assert_eq!(membership(&c, 2).addresses, after);
    change(&mut c, ConfChange::Remove(2), None);
    let last = book(&[(1, "n1:7001"), (5, "n5:7005")]);
    assert_eq!(membership(&c, 5).addresses, last);
    assert_eq!(last_config_entry(&c, 5).addresses, last);
    c.assert_safe();
}

#[test]
fn a_node_added_again_has_only_the_address_it_is_given_now() {
    let mut c = three_with_spares();
    change(&mut c, ConfChange::AddLearner(4), Some("first:4"));
    change(&mut c, ConfChange::Remove(4), None);
    change(&mut c, ConfChange::AddLearner(4), None);
    assert_eq!(
        membership(&c, 2).address(4),
        None,
        "the old one left with it"
    );
    change(&mut c, ConfChange::Remove(4), None);
    change(&mut c, ConfChange::AddLearner(4), Some("second:4"));
    assert_eq!(membership(&c, 2).address(4), Some("second:4"));
}

#[test]
fn addresses_survive_a_restart_from_the_log_and_from_a_snapshot() {
    let mut c = three_with_spares();
    change(&mut c, ConfChange::AddLearner(4), Some("n4:7004"));
    change(
        &mut c,
        ConfChange::Replace { add: 5, remove: 3 },
        Some("n5:7005"),
    );
    let expected = book(&[
        (1, "n1:7001"),
        (2, "n2:7002"),
        (4, "n4:7004"),
        (5, "n5:7005"),
    ]);
    assert_eq!(membership(&c, 2).addresses, expected);
    // From the log: the command line (1, 2, 3 and their addresses) is not what counts.
    c.crash(2);
    c.restart(2);
    assert_eq!(membership(&c, 2).addresses, expected);
    // From a snapshot covering every configuration entry.
    c.run(6);
    let at = c.snapshot(2);
    assert_eq!(at, c.raft(1).log().last_index());
    assert_eq!(c.raft(2).snapshot().unwrap().meta.addresses, expected);
    c.crash(2);
    c.restart(2);
    assert_eq!(c.raft(2).log().first_index(), at + 1);
    assert_eq!(membership(&c, 2).addresses, expected);
    // The learner, restarted from its log, too.
    c.crash(4);
    c.restart(4);
    assert_eq!(membership(&c, 4).addresses, expected);
    c.run(3);
    c.assert_safe();
}

#[test]
fn a_bad_address_is_refused_and_nothing_is_appended() {
    let mut c = three_with_spares();
    let before = (c.raft(1).log().last_index(), membership(&c, 1));
    let bad = [
        String::new(),
        "n4 7004".into(),
        "n4:7004\n".into(),
        "n4:\u{7f}".into(),
        "\tn4".into(),
        "x".repeat(256),
        "é".repeat(128),
    ];
    for address in bad {
        for change in [
            ConfChange::AddLearner(4),
            ConfChange::Replace { add: 4, remove: 3 },
            ConfChange::Promote(4),
        ] {
            assert_eq!(
                c.raft_mut(1)
                    .propose_change_at(change, Some(address.clone())),
                Err(ChangeError::BadAddress(address.clone())),
                "{change:?}"
            );
            assert_eq!(
                (c.raft(1).log().last_index(), membership(&c, 1)),
                before,
                "nothing appended"
            );
        }
    }
    let text = ChangeError::BadAddress("a b".into()).to_string();
    assert!(text.contains("\"a b\""), "{text}");
    // The longest address is fine, and a Remove ignores the address it is given.
    let longest = "x".repeat(255);
    change(&mut c, ConfChange::AddLearner(4), Some(&longest));
    assert_eq!(membership(&c, 3).address(4), Some(longest.as_str()));
    change(&mut c, ConfChange::Remove(4), Some(""));
    assert_eq!(membership(&c, 3).address(4), None);
}

#[test]
fn a_bad_initial_address_is_a_configuration_error() {
    let mut config = Config::new(1, vec![1, 2, 3]);
    config.addresses = book(&[(2, "n2 7002")]);
    let err = config.validate().unwrap_err();
    assert!(
        err.contains("node 2") && err.contains("\"n2 7002\""),
        "{err}"
    );
    config.addresses = peers();
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(config.initial_membership().address(3), Some("n3:7003"));
}
