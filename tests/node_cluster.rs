//! End-to-end tests of the Raft node: real processes, real TCP on 127.0.0.x, real SIGKILL.
//! Each test runs in its own network namespace (root needed; otherwise it prints "skipped").

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{addr, isolated, TestCluster};
use riptide_proto::Role;
use riptide_workload::OpResult;

fn ok(result: OpResult) -> Option<String> {
    match result {
        OpResult::Ok(v) => v,
        other => panic!("expected ok, got {other:?}"),
    }
}

#[test]
fn three_and_five_nodes_elect_exactly_one_leader() {
    isolated(|| {
        for n in [3, 5] {
            let cluster = TestCluster::start(n);
            let leader = cluster.wait_for_leader(Duration::from_secs(10));
            let statuses: Vec<_> = (1..=n).map(|id| cluster.status(id).unwrap()).collect();
            assert_eq!(
                statuses.iter().filter(|s| s.role == Role::Leader).count(),
                1,
                "{statuses:#?}"
            );
            assert!(statuses.iter().all(|s| s.leader == Some(leader)));
            // The leader's no-op commits everywhere.
            std::thread::sleep(Duration::from_millis(200));
            assert!((1..=n).all(|id| cluster.status(id).unwrap().commit_index >= 1));
        }
    });
}

#[test]
fn writes_go_through_and_reads_see_them() {
    isolated(|| {
        let cluster = TestCluster::start(3);
        cluster.wait_for_leader(Duration::from_secs(10));
        let mut client = cluster.client(1);
        assert_eq!(ok(cluster.put(&mut client, "k", "1")), None);
        assert_eq!(ok(cluster.get(&mut client, "k")).as_deref(), Some("1"));
        let rt = &cluster.runtime;
        assert_eq!(rt.block_on(client.cas("k", "1", "2")), OpResult::Ok(None));
        assert!(
            matches!(rt.block_on(client.cas("k", "1", "3")), OpResult::Fail(why) if why.contains("2"))
        );
        assert!(matches!(
            rt.block_on(client.cas("missing", "1", "3")),
            OpResult::Fail(_)
        ));
        assert_eq!(rt.block_on(client.append("k", "x")), OpResult::Ok(None));
        assert_eq!(ok(cluster.get(&mut client, "k")).as_deref(), Some("2x"));
        assert_eq!(ok(cluster.get(&mut client, "never-written")), None);
        // Every node answers reads, through the leader.
        for home in 1..=3 {
            let mut c = riptide_workload::Client::new(
                riptide_workload::ClientOptions {
                    nodes: cluster.nodes(),
                    home,
                    op_timeout: Duration::from_secs(2),
                    bind: None,
                },
                100 + home,
            );
            assert_eq!(ok(cluster.get(&mut c, "k")).as_deref(), Some("2x"));
        }
    });
}

#[test]
fn a_killed_leader_is_replaced_and_writes_resume_within_two_seconds() {
    isolated(|| {
        let cluster = TestCluster::start(5);
        let old = cluster.wait_for_leader(Duration::from_secs(10));
        let mut client = cluster.client(1);
        ok(cluster.put(&mut client, "before", "1"));
        let old_pid = cluster.supervisor.pid(old).unwrap();
        cluster.supervisor.kill(old).unwrap();
        assert!(cluster.supervisor.pid(old).is_none());
        assert_ne!(
            unsafe { libc::kill(old_pid as i32, 0) },
            0,
            "the old leader's pid is gone"
        );
        let killed_at = Instant::now();
        let mut attempt = 0;
        let elapsed = loop {
            attempt += 1;
            let mut c = cluster.client(1000 + attempt);
            if let OpResult::Ok(_) = cluster.put(&mut c, "after", "2") {
                break killed_at.elapsed();
            }
            assert!(
                killed_at.elapsed() < Duration::from_secs(10),
                "no write accepted after the kill"
            );
        };
        eprintln!("a write was accepted {elapsed:?} after the leader was killed");
        assert!(
            elapsed < Duration::from_secs(2),
            "a new leader took {elapsed:?} to accept a write"
        );
        let new = (1..=5)
            .filter(|&id| id != old)
            .find(|&id| cluster.status(id).is_some_and(|s| s.role == Role::Leader));
        assert!(new.is_some_and(|id| id != old));
        assert_eq!(ok(cluster.get(&mut client, "before")).as_deref(), Some("1"));
    });
}

#[test]
fn every_acknowledged_write_survives_killing_every_node() {
    isolated(|| {
        let cluster = TestCluster::start(3);
        cluster.wait_for_leader(Duration::from_secs(10));
        let mut client = cluster.client(1);
        for k in 0..100 {
            ok(cluster.put(&mut client, &format!("k{k}"), &format!("v{k}")));
        }
        for id in 1..=3 {
            cluster.supervisor.kill(id).unwrap();
        }
        for id in 1..=3 {
            cluster.supervisor.restart(id).unwrap();
        }
        cluster.wait_for_leader(Duration::from_secs(10));
        let mut client = cluster.client(2);
        for k in 0..100 {
            assert_eq!(
                ok(cluster.get(&mut client, &format!("k{k}"))),
                Some(format!("v{k}")),
                "k{k} was lost"
            );
        }
        assert!(
            cluster.log(1).contains("recovered from"),
            "the node restarted from its data dir"
        );
    });
}

#[test]
fn a_restarted_follower_catches_up() {
    isolated(|| {
        let cluster = TestCluster::start(3);
        let leader = cluster.wait_for_leader(Duration::from_secs(10));
        let follower = (1..=3).find(|&id| id != leader).unwrap();
        cluster.supervisor.kill(follower).unwrap();
        let mut client = cluster.client(1);
        for k in 0..200 {
            ok(cluster.put(&mut client, &format!("k{k}"), "x"));
        }
        let target = cluster.status(leader).unwrap().commit_index;
        cluster.supervisor.restart(follower).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = cluster.status(follower) {
                if s.applied_index >= target && s.last_log_index >= target {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "follower {follower} did not catch up to {target}: {:?}",
                cluster.status(follower)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // With the follower as one of only two live nodes, the data must be served from it.
        let other = (1..=3).find(|&id| id != leader && id != follower).unwrap();
        cluster.supervisor.kill(other).unwrap();
        assert_eq!(ok(cluster.get(&mut client, "k199")).as_deref(), Some("x"));
    });
}

/// Sends raw bytes on a fresh connection and waits for the node to close it (or a short time).
fn send_raw(bytes: &[u8]) {
    let mut s = std::net::TcpStream::connect_timeout(&addr(1), Duration::from_secs(1)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 64];
    let _ = s.read(&mut buf);
}

#[test]
fn garbage_oversized_and_truncated_frames_leave_the_node_serving() {
    isolated(|| {
        let cluster = TestCluster::start(3);
        cluster.wait_for_leader(Duration::from_secs(10));
        let pid = cluster.supervisor.pid(1).unwrap();
        // Garbage instead of a hello: as a length prefix, "GET " is a 1.2 GB frame.
        send_raw(b"GET / HTTP/1.1\r\nHost: riptide\r\n\r\n");
        // A well-framed first frame that is not a Hello.
        send_raw(&[0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o']);
        // A length prefix far over the frame limit.
        send_raw(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        // A frame that promises 100 bytes and delivers 3, then the connection closes.
        send_raw(&[0, 0, 0, 100, 1, 2, 3]);
        // A valid client hello, then a frame that is not a request.
        let hello = riptide_proto::encode(&riptide_proto::Hello::Client).unwrap();
        let mut bytes = (hello.len() as u32).to_be_bytes().to_vec();
        bytes.extend(&hello);
        bytes.extend([0, 0, 0, 4, 0xc1, 0xc1, 0xc1, 0xc1]);
        send_raw(&bytes);
        // A peer hello claiming to be node 2, from node 2's address (so the peer gate admits it),
        // then a message labelled from node 3.
        let hello = riptide_proto::encode(&riptide_proto::Hello::peer(2, "")).unwrap();
        let forged = riptide_node::raft::Message {
            from: 3,
            to: 1,
            term: 99,
            body: riptide_node::raft::Body::RequestVoteResponse {
                granted: true,
                pre_vote: false,
            },
        };
        let forged = riptide_proto::encode(&forged).unwrap();
        let mut bytes = (hello.len() as u32).to_be_bytes().to_vec();
        bytes.extend(&hello);
        bytes.extend((forged.len() as u32).to_be_bytes());
        bytes.extend(&forged);
        let mut s = common::connect_from(riptide_proto::node_ip(2).into(), addr(1));
        let _ = s.write_all(&bytes);
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);

        assert_eq!(
            cluster.supervisor.pid(1),
            Some(pid),
            "node 1 is the same process"
        );
        let status = cluster.status(1).expect("node 1 still answers");
        assert!(status.term < 99, "the forged message did not move the term");
        let log = cluster.log(1);
        assert_eq!(
            log.matches("frame size too big").count(),
            2,
            "oversized frames logged:\n{log}"
        );
        assert!(
            log.contains("bytes remaining on stream"),
            "truncated frame logged:\n{log}"
        );
        assert!(
            log.contains("undecodable client request"),
            "bad request logged:\n{log}"
        );
        assert!(log.contains("not a Hello"), "garbage logged:\n{log}");
        assert!(log.contains("labelled"), "forged sender logged:\n{log}");
        let mut client = cluster.client(1);
        ok(cluster.put(&mut client, "still", "serving"));
        assert_eq!(
            ok(cluster.get(&mut client, "still")).as_deref(),
            Some("serving")
        );
    });
}

/// The `reorder` hook on every node: peer messages held back and sent twice at random, so that
/// AppendEntries, their answers and votes arrive late and out of order. Raft must stay correct
/// and available under that: every acknowledged write is read back, and the status counters
/// show the hook really held and copied messages (and stop once it is off).
#[test]
fn a_cluster_whose_peer_messages_arrive_late_twice_and_out_of_order_keeps_every_write() {
    isolated(|| {
        use riptide_proto::AdminOp;
        use riptide_workload::AdminOutcome;
        let cluster = TestCluster::start(3);
        cluster.wait_for_leader(Duration::from_secs(10));
        let rt = &cluster.runtime;
        let mut admin = cluster.client(90);
        let set = |admin: &mut riptide_workload::Client, id: u64, max_delay_ms: u64| {
            let op = AdminOp::Reorder {
                max_delay_ms,
                seed: id,
            };
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            let outcome = rt.block_on(async { admin.admin_at(id, op, deadline).await });
            assert!(matches!(outcome, AdminOutcome::Done(_)), "{outcome:?}");
        };
        for id in 1..=3 {
            set(&mut admin, id, 30);
        }
        let mut client = cluster.client(1);
        for i in 0..300 {
            assert_eq!(
                ok(cluster.put(&mut client, &format!("k{i}"), &format!("v{i}"))),
                None
            );
        }
        for i in (0..300).step_by(7) {
            let got = ok(cluster.get(&mut client, &format!("k{i}")));
            assert_eq!(got.as_deref(), Some(format!("v{i}").as_str()));
        }
        let statuses: Vec<_> = (1..=3).map(|id| cluster.status(id).unwrap()).collect();
        for s in &statuses {
            assert_eq!(s.reorder.max_delay_ms, 30, "{s:#?}");
            assert!(s.reorder.held > 10 && s.reorder.copied > 10, "{s:#?}");
            assert!(s.safety_violation.is_none(), "{s:#?}");
        }
        // Off again: nothing more is held.
        for id in 1..=3 {
            set(&mut admin, id, 0);
        }
        let held: Vec<u64> = statuses.iter().map(|s| s.reorder.held).collect();
        let before: Vec<u64> = (1..=3)
            .map(|id| cluster.status(id).unwrap().reorder.held)
            .collect();
        for i in 0..50 {
            assert_eq!(ok(cluster.put(&mut client, &format!("j{i}"), "x")), None);
        }
        let after: Vec<u64> = (1..=3)
            .map(|id| cluster.status(id).unwrap().reorder.held)
            .collect();
        assert_eq!(before, after, "held while off (first counts {held:?})");
        let commits: Vec<u64> = (1..=3)
            .map(|id| cluster.status(id).unwrap().commit_index)
            .collect();
        assert!(commits.iter().all(|&c| c >= 350), "{commits:?}");
    });
}
