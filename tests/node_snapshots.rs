//! End to end: log compaction, InstallSnapshot and restarts from a snapshot, on real `riptide node`
//! processes over real TCP with real data dirs (each test in its own network namespace).
//!
//! To look at one node's state machine (not the leader's), the nodes run with the `stale-read`
//! probe: a `get` is then answered from the local state of the node it is sent to. Writes still go
//! through Raft to the leader, so the probe changes nothing about what is replicated; it only lets
//! the test read a follower's state directly.

mod common;

use std::time::{Duration, Instant};

use common::{addr, isolated, TestCluster};
use riptide_proto::{StateDigest, Status};
use riptide_workload::{Client, ClientOptions, OpResult};

const WRITES: usize = 300;

/// Snapshot every 20 entries and keep no tail: any follower that misses a snapshot's worth of
/// entries needs InstallSnapshot. Small chunks make a transfer take several messages.
const SNAPSHOT_FLAGS: [&str; 8] = [
    "--snapshot-entries",
    "20",
    "--snapshot-tail",
    "0",
    "--snapshot-chunk-bytes",
    "512",
    "--unsafe-bug",
    "stale-read",
];

fn status(id: u64) -> Status {
    common::status(addr(id)).unwrap_or_else(|| panic!("node {id} does not answer status"))
}

/// A client whose reads go to node `home` (answered from its own state, with the probe).
fn client_reading_from(cluster: &TestCluster, home: u64, client_id: u64) -> Client {
    let opts = ClientOptions {
        nodes: cluster.nodes(),
        home,
        op_timeout: Duration::from_secs(2),
        bind: None,
    };
    Client::new(opts, client_id)
}

fn write_all(cluster: &TestCluster, client: &mut Client) {
    for k in 0..WRITES {
        let result = cluster.put(client, &format!("k{k}"), &format!("v{k}"));
        assert_eq!(result, OpResult::Ok(None), "put k{k}");
    }
}

/// Every key as node `home` holds it; `None` for a missing key.
fn read_all(cluster: &TestCluster, home: u64) -> Vec<(usize, Option<String>)> {
    let mut client = client_reading_from(cluster, home, 99);
    (0..WRITES)
        .map(|k| match cluster.get(&mut client, &format!("k{k}")) {
            OpResult::Ok(value) => (k, value),
            other => panic!("get k{k} from node {home}: {other:?}"),
        })
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every node's state machine digest, once all of them stand at one applied index.
fn settled_digests(cluster: &TestCluster) -> Vec<StateDigest> {
    let mut digests = Vec::new();
    wait_until(
        "the nodes stand at one applied index",
        Duration::from_secs(10),
        || {
            digests = cluster
                .nodes()
                .iter()
                .map(|(_, a)| riptide_proto::state_digest(*a, Duration::from_secs(2)).unwrap())
                .collect();
            digests
                .windows(2)
                .all(|w| w[0].applied_index == w[1].applied_index)
        },
    );
    digests
}

fn assert_replicas_agree(cluster: &TestCluster) {
    let digests = settled_digests(cluster);
    for d in &digests {
        assert_eq!(
            (d.data_digest, d.session_digest, d.keys),
            (
                digests[0].data_digest,
                digests[0].session_digest,
                digests[0].keys
            ),
            "{digests:#?}"
        );
    }
}

/// Kills a follower, writes until the leader has compacted far past it, restarts it: the
/// follower catches up by InstallSnapshot (its log says so) and then holds every write.
fn a_follower_catches_up_past_the_compacted_log(bugs: &[&str]) -> (TestCluster, u64) {
    let mut flags = SNAPSHOT_FLAGS.to_vec();
    flags.extend_from_slice(bugs);
    let cluster = TestCluster::start_with(3, &flags);
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    cluster.supervisor.kill(follower).unwrap();
    let mut writer = cluster.client(1);
    write_all(&cluster, &mut writer);
    let compacted = status(leader);
    assert!(
        compacted.first_log_index > 100 && compacted.snapshot.taken >= 5,
        "the leader compacted its log: {compacted:?}"
    );
    cluster.supervisor.restart(follower).unwrap();
    let target = compacted.commit_index;
    wait_until("the follower caught up", Duration::from_secs(20), || {
        common::status(addr(follower)).is_some_and(|s| s.applied_index >= target)
    });
    let caught_up = status(follower);
    assert!(
        caught_up.snapshot.installed >= 1,
        "caught up by a snapshot: {caught_up:?}"
    );
    assert!(
        cluster
            .log(follower)
            .contains("installed a snapshot from the leader"),
        "{}",
        cluster.log(follower)
    );
    (cluster, follower)
}

#[test]
fn a_follower_behind_the_compacted_log_catches_up_by_install_snapshot_with_every_write() {
    isolated(|| {
        let (cluster, follower) = a_follower_catches_up_past_the_compacted_log(&[]);
        let leader = cluster.wait_for_leader(Duration::from_secs(10));
        assert!(status(leader).snapshot.sent >= 1, "{:?}", status(leader));
        for (k, value) in read_all(&cluster, follower) {
            assert_eq!(value, Some(format!("v{k}")), "k{k} on node {follower}");
        }
        assert_replicas_agree(&cluster);
        // And again after the follower restarts from the snapshot it installed.
        cluster.supervisor.kill(follower).unwrap();
        cluster.supervisor.restart(follower).unwrap();
        let commit = status(leader).commit_index;
        wait_until(
            "the follower applied again",
            Duration::from_secs(10),
            || common::status(addr(follower)).is_some_and(|s| s.applied_index >= commit),
        );
        let log = cluster.log(follower);
        assert!(log.contains("a snapshot and the log after it"), "{log}");
        for (k, value) in read_all(&cluster, follower) {
            assert_eq!(value, Some(format!("v{k}")), "k{k} after the restart");
        }
    });
}

#[test]
fn the_install_without_restore_bug_leaves_the_follower_without_the_writes_it_missed() {
    isolated(|| {
        let bug = ["--unsafe-bug", "install-without-restore"];
        let (cluster, follower) = a_follower_catches_up_past_the_compacted_log(&bug);
        let missing = read_all(&cluster, follower)
            .into_iter()
            .filter(|(_, value)| value.is_none())
            .count();
        assert!(
            missing > 50,
            "the follower kept its old state: {missing} of {WRITES} keys missing"
        );
        // The digests show it without reading a key: same applied index, another state.
        let digests = settled_digests(&cluster);
        let odd = digests.iter().find(|d| d.id == follower).unwrap();
        let other = digests.iter().find(|d| d.id != follower).unwrap();
        assert_eq!(odd.applied_index, other.applied_index);
        assert_ne!(odd.data_digest, other.data_digest, "{digests:#?}");
        assert!(odd.keys < other.keys, "{digests:#?}");
    });
}

#[test]
fn every_node_restarts_from_its_snapshot_and_log_tail_with_every_write() {
    isolated(|| {
        let cluster = TestCluster::start_with(3, &SNAPSHOT_FLAGS);
        cluster.wait_for_leader(Duration::from_secs(10));
        let mut writer = cluster.client(1);
        write_all(&cluster, &mut writer);
        for id in 1..=3 {
            cluster.supervisor.kill(id).unwrap();
        }
        for id in 1..=3 {
            cluster.supervisor.restart(id).unwrap();
        }
        let leader = cluster.wait_for_leader(Duration::from_secs(10));
        for id in 1..=3 {
            let log = cluster.log(id);
            assert!(log.contains("a snapshot and the log after it"), "{log}");
        }
        // A write after the restart commits, so every node applies the whole log again. (A
        // fresh client: the old one's connections died with the nodes.)
        let mut writer = cluster.client(2);
        assert_eq!(cluster.put(&mut writer, "after", "x"), OpResult::Ok(None));
        let commit = status(leader).commit_index;
        for id in 1..=3 {
            wait_until(
                "every node applied the log",
                Duration::from_secs(10),
                || common::status(addr(id)).is_some_and(|s| s.applied_index >= commit),
            );
            for (k, value) in read_all(&cluster, id) {
                assert_eq!(value, Some(format!("v{k}")), "k{k} on node {id}");
            }
        }
        assert_replicas_agree(&cluster);
    });
}
