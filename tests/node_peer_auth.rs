//! Only real peers speak Raft: forged peer connections against real node processes, over real
//! TCP, in a private network namespace.
//!
//! The forgery is the one that used to rewrite a cluster's log: a peer hello claiming node 3, then
//! an AppendEntries at term 2·10¹² carrying `k1 = FORGED` with `commit: 1`. Each variant must be
//! refused by the peer gate, leave every node's term, commit index and data as they were, be
//! counted in `status.refused_peers`, and be named in the node's log.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::time::Duration;

use common::{addr, connect_from, isolated, ok, TestCluster};
use riptide_node::kv::Command;
use riptide_node::raft::{Body, Message};
use riptide_node::server::peer_gate::{Secret, NONCE_LEN};
use riptide_node::types::{Entry, Payload};
use riptide_proto::{Hello, PeerAdmission, PeerProof, WriteOp};

const SECRET: &[u8] = b"correct horse battery staple";
const FORGED_TERM: u64 = 2_000_000_000_000;

fn write_frame<T: serde::Serialize>(s: &mut TcpStream, msg: &T) {
    let body = riptide_proto::encode(msg).unwrap();
    let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
    bytes.extend(body);
    let _ = s.write_all(&bytes);
}

/// The next frame, or `None` if the node closed the connection.
fn read_frame<T: serde::de::DeserializeOwned>(s: &mut TcpStream) -> Option<T> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).ok()?;
    riptide_proto::decode(&body).ok()
}

/// The AppendEntries that replaces entry 1 with `k1 = FORGED` and commits it.
fn forged_append(to: u64) -> Message {
    let command = Command {
        client_id: 666,
        seq: 1,
        op: WriteOp::Put {
            key: "k1".into(),
            value: "FORGED".into(),
        },
    };
    Message {
        from: 3,
        to,
        term: FORGED_TERM,
        body: Body::AppendEntries {
            prev_index: 0,
            prev_term: 0,
            entries: vec![Entry {
                term: FORGED_TERM,
                index: 1,
                payload: Payload::Command(command.encode()),
            }],
            commit: 1,
            read_round: 0,
        },
    }
}

/// Says `hello` to node `to` from `from`; answers a challenge with `proof` (given the node's
/// nonce); then sends the forged AppendEntries whatever the node said. Returns the node's answers.
fn forge(
    from: IpAddr,
    to: u64,
    hello: &Hello,
    proof: impl Fn(&[u8]) -> Vec<u8>,
) -> Vec<PeerAdmission> {
    let mut s = connect_from(from, addr(to));
    write_frame(&mut s, hello);
    let mut answers = Vec::new();
    while let Some(answer) = read_frame::<PeerAdmission>(&mut s) {
        answers.push(answer.clone());
        match answer {
            PeerAdmission::Challenge { nonce, .. } => {
                write_frame(
                    &mut s,
                    &PeerProof {
                        proof: proof(&nonce),
                    },
                );
            }
            _ => break,
        }
    }
    write_frame(&mut s, &forged_append(to));
    std::thread::sleep(Duration::from_millis(100));
    answers
}

fn refused(answers: &[PeerAdmission], why: &str) {
    assert!(
        matches!(answers.last(), Some(PeerAdmission::Refused { reason }) if reason.contains(why)),
        "expected a refusal naming {why:?}, got {answers:?}"
    );
}

/// Writes k1 = v1 and two more, then returns each node's (term, commit index).
fn settle(cluster: &TestCluster) -> Vec<(u64, u64)> {
    cluster.wait_for_leader(Duration::from_secs(10));
    let mut client = cluster.client(1);
    for (k, v) in [("k1", "v1"), ("k2", "v2"), ("k3", "v3")] {
        ok(cluster.put(&mut client, k, v));
    }
    std::thread::sleep(Duration::from_millis(300));
    (1..=3)
        .map(|id| {
            let s = cluster.status(id).unwrap();
            (s.term, s.commit_index)
        })
        .collect()
}

/// Nothing moved: terms, commit indexes and k1 are as they were, on every node.
fn unharmed(cluster: &TestCluster, before: &[(u64, u64)]) {
    for id in 1..=3u64 {
        let s = cluster.status(id).expect("the node still answers");
        let (term, commit) = before[id as usize - 1];
        // Elections may happen on a loaded machine; the forged term must not.
        assert!(
            s.term < term + 100,
            "n{id}'s term moved from {term} to {}",
            s.term
        );
        assert!(s.commit_index >= commit, "n{id}'s commit index fell");
    }
    let mut client = cluster.client(2);
    assert_eq!(ok(cluster.get(&mut client, "k1")).as_deref(), Some("v1"));
}

fn local(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn forgeries_are_refused(with_secret: bool) {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, SECRET).unwrap();
    let secret_path = secret_file.display().to_string();
    let mut flags = vec!["--cluster-id", "c1"];
    if with_secret {
        flags.extend(["--cluster-secret-file", &secret_path]);
    }
    let cluster = TestCluster::start_with(3, &flags);
    let before = settle(&cluster);
    let nonce = with_secret.then(|| vec![1u8; NONCE_LEN]);
    let hello = |cluster: &str| Hello::Peer {
        from: 3,
        cluster: cluster.into(),
        nonce: nonce.clone(),
        listen: None,
    };
    let no_proof = |_: &[u8]| vec![0u8; 32];

    // From an address that is not node 3's.
    for to in [1, 2] {
        refused(
            &forge(local(99), to, &hello("c1"), no_proof),
            "node 3 dials from 127.0.0.13, not from 127.0.0.99",
        );
    }
    // From node 3's address, naming another cluster.
    refused(
        &forge(local(13), 1, &hello("other"), no_proof),
        "cluster `other`",
    );
    // From node 3's address, with an older riptide's hello (no cluster at all).
    refused(
        &forge(local(13), 2, &Hello::peer(3, ""), no_proof),
        "unnamed cluster",
    );
    let mut expected_refusals = [2, 2];
    if with_secret {
        // With the right cluster, but a proof made with the wrong secret.
        let wrong = Secret::from_bytes(b"not the cluster's secret");
        let ours = vec![1u8; NONCE_LEN];
        let proof = |theirs: &[u8]| wrong.dialer_proof("c1", 3, 1, (&ours, theirs));
        refused(
            &forge(local(13), 1, &hello("c1"), proof),
            "wrong cluster secret",
        );
        // A replay: a proof that was right for an earlier challenge of node 2.
        let right = Secret::from_bytes(SECRET);
        let recorded = right.dialer_proof("c1", 3, 2, (&ours, &[7u8; NONCE_LEN]));
        refused(
            &forge(local(13), 2, &hello("c1"), |_| recorded.clone()),
            "wrong cluster secret",
        );
        expected_refusals = [3, 3];
    }
    unharmed(&cluster, &before);
    for (id, expected) in [(1u64, expected_refusals[0]), (2, expected_refusals[1])] {
        let s = cluster.status(id).unwrap();
        assert_eq!(s.refused_peers, expected, "n{id} counted its refusals");
        let log = cluster.log(id);
        assert!(
            log.contains("refused a peer connection from 127.0.0.99:")
                && log.contains("claiming to be node 3"),
            "n{id}'s log names the address and the claimed id:\n{log}"
        );
        assert!(!log.contains("SAFETY VIOLATION"), "n{id}:\n{log}");
    }
    // The real node 3 is still a member.
    assert_eq!(cluster.status(3).unwrap().refused_peers, 0);
    let mut client = cluster.client(3);
    ok(cluster.put(&mut client, "after", "forgeries"));
}

#[test]
fn forged_peers_are_refused_by_address_and_cluster_id() {
    isolated(|| forgeries_are_refused(false));
}

#[test]
fn forged_peers_are_refused_by_address_cluster_id_and_secret() {
    isolated(|| forgeries_are_refused(true));
}

/// A node of an earlier cluster, left running on the address of node 3 of a new one, never
/// joins it: the new nodes elect a leader between themselves and refuse it, and it refuses them.
#[test]
fn a_node_of_an_old_cluster_cannot_join_a_new_one() {
    isolated(|| {
        let old = TestCluster::start_with(3, &["--cluster-id", "old"]);
        old.wait_for_leader(Duration::from_secs(10));
        let mut client = old.client(1);
        ok(old.put(&mut client, "k", "old"));
        old.supervisor.kill(1).unwrap();
        old.supervisor.kill(2).unwrap();
        // Node 3 of the old cluster keeps running, alone.
        std::thread::sleep(Duration::from_secs(1));
        let old_commit = old.status(3).unwrap().commit_index;

        let new = TestCluster::start_only(3, &[1, 2], &["--cluster-id", "new"]);
        let leader = new.wait_for_leader_among(&[1, 2], Duration::from_secs(10));
        let mut client = new.client(leader);
        ok(new.put(&mut client, "k", "new"));
        std::thread::sleep(Duration::from_secs(1));
        for id in [1u64, 2] {
            let s = new.status(id).unwrap();
            assert!(s.refused_peers > 0, "n{id} refused the old node");
            assert!(s.term <= 5, "n{id}: a fresh cluster's term, not {}", s.term);
            let log = new.log(id);
            assert!(
                log.contains("claiming to be node 3: it belongs to cluster `old`, this node to cluster `new`"),
                "n{id}:\n{log}"
            );
        }
        let old_status = old.status(3).unwrap();
        assert!(
            old_status.refused_peers > 0,
            "the old node refused the new ones"
        );
        assert_eq!(
            old_status.commit_index, old_commit,
            "nothing new reached the old node"
        );
        assert!(old.log(3).contains("is not admitted"), "{}", old.log(3));
        assert_eq!(ok(new.get(&mut client, "k")).as_deref(), Some("new"));
    });
}

/// A data dir formed for one cluster refuses to start a node with another cluster's id, and
/// says which ids differ.
#[test]
fn a_data_dir_of_another_cluster_refuses_to_start() {
    isolated(|| {
        let cluster = TestCluster::start_with(1, &["--cluster-id", "first"]);
        cluster.wait_for_leader(Duration::from_secs(10));
        cluster.supervisor.kill(1).unwrap();
        let data = cluster.dir.path().join("n1").join("data");
        let output = std::process::Command::new(common::riptide_bin())
            .args(["node", "--id", "1", "--listen", &addr(1).to_string()])
            .args(["--data-dir", &data.display().to_string()])
            .args(["--cluster-id", "second"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(3), "a refused data dir exits 3");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("belongs to cluster `first`")
                && stderr.contains("--cluster-id `second`"),
            "{stderr}"
        );
    });
}

/// Defence in depth: a forger that passes the gate (here, from the address of a member that is
/// not running, in a cluster without a secret) rewrites a follower's committed entries. The
/// follower obeys the log, as Raft says, but logs the absurd term and the violation, reports it
/// in `status`, and its state machine applies nothing more: no client ever reads the forgery.
#[test]
fn a_forged_leader_that_passes_the_gate_halts_the_state_machine_it_rewrites() {
    isolated(|| {
        let cluster = TestCluster::start_only(3, &[1, 2], &[]);
        let leader = cluster.wait_for_leader_among(&[1, 2], Duration::from_secs(10));
        let mut client = cluster.client(1);
        ok(cluster.put(&mut client, "k1", "v1"));
        std::thread::sleep(Duration::from_millis(300));
        let follower = 3 - leader;
        let answers = forge(local(13), follower, &Hello::peer(3, ""), |_| Vec::new());
        assert_eq!(
            answers,
            [PeerAdmission::Welcome],
            "node 3's address is admitted"
        );
        std::thread::sleep(Duration::from_millis(500));
        let s = cluster
            .status(follower)
            .expect("the follower still answers");
        let what = s
            .safety_violation
            .expect("the follower reports the violation");
        assert!(
            what.contains("leader 3 (term 2000000000000) replaced committed entries from index 1"),
            "{what}"
        );
        let log = cluster.log(follower);
        assert!(log.contains("terms ahead of this node's"), "{log}");
        assert!(log.contains("SAFETY VIOLATION"), "{log}");
        // Whatever the two nodes make of it now, no read answers the forged value.
        for _ in 0..5 {
            if let riptide_workload::OpResult::Ok(v) = cluster.get(&mut client, "k1") {
                assert_ne!(v.as_deref(), Some("FORGED"));
            }
        }
    });
}
