//! End to end: membership changes on real `riptide node` processes over real TCP, driven by
//! `riptide client add-node | remove-node | replace-node | transfer-leader` while a client
//! writes the whole time (each test in its own network namespace).
//!
//! What every test checks in the end is the user's promise: no acknowledged write is lost. The
//! writer puts each key once (`k<i>` = `v<i>`), so after the changes a linearizable read of an
//! acknowledged key must return its value, and one of unknown outcome its value or nothing.
//! The writer's client starts knowing only the first nodes; it reaches members added later
//! through the addresses in the leaders' `NotLeader` hints.

mod common;

use std::net::SocketAddr;
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{addr, isolated, riptide_bin, TestCluster, PORT};
use riptide::cluster::{ClusterPlan, NodeProgram};
use riptide_proto::{NodeId, Role, Status};
use riptide_workload::{Client, ClientOptions, OpResult};

/// What each put got back, and every node the writer's client knew by the end.
type Written = (Vec<(usize, OpResult)>, Vec<(NodeId, SocketAddr)>);

/// A client putting `k0`, `k1`, ... once each until stopped; what each put got back.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Written>,
}

impl Writer {
    fn start(nodes: Vec<(NodeId, SocketAddr)>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let opts = ClientOptions {
                home: nodes[0].0,
                nodes,
                op_timeout: Duration::from_secs(2),
                bind: None,
            };
            let mut client = Client::new(opts, 7);
            let mut results = Vec::new();
            let mut i = 0;
            while !flag.load(Ordering::Relaxed) {
                let result = runtime.block_on(client.put(&format!("k{i}"), &format!("v{i}")));
                if matches!(result, OpResult::Info(_)) {
                    // A new session after an unknown outcome, as the workload does.
                    client.renew(1000 + i as u64);
                }
                results.push((i, result));
                i += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            (results, client.nodes().to_vec())
        });
        Writer { stop, handle }
    }

    /// Stops the writer; what it wrote, and every node its client knew by the end.
    fn finish(self) -> Written {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap()
    }
}

/// Reads every key the writer wrote through `members` and checks that none acknowledged is
/// lost. Returns how many puts were acknowledged.
fn assert_no_acknowledged_write_lost(written: &[(usize, OpResult)], members: &[NodeId]) -> usize {
    let nodes: Vec<(NodeId, SocketAddr)> = members.iter().map(|&id| (id, addr(id))).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut reader = Client::new(
        ClientOptions {
            home: nodes[0].0,
            nodes,
            op_timeout: Duration::from_secs(3),
            bind: None,
        },
        99,
    );
    let mut acked = 0;
    for (i, result) in written {
        let read = runtime.block_on(reader.get(&format!("k{i}")));
        let value = match read {
            OpResult::Ok(value) => value,
            other => panic!("read of k{i} failed: {other:?}"),
        };
        let expected = format!("v{i}");
        match result {
            OpResult::Ok(_) => {
                acked += 1;
                assert_eq!(
                    value.as_deref(),
                    Some(expected.as_str()),
                    "acknowledged put k{i} lost"
                );
            }
            OpResult::Info(_) => assert!(
                value.is_none() || value.as_deref() == Some(expected.as_str()),
                "k{i} of unknown outcome reads {value:?}"
            ),
            OpResult::Fail(_) => assert_eq!(value, None, "k{i} failed yet reads {value:?}"),
        }
    }
    acked
}

/// The writer's last ten puts were acknowledged: writes go on after the changes.
fn assert_tail_acknowledged(written: &[(usize, OpResult)]) {
    let tail: Vec<_> = written.iter().rev().take(10).collect();
    assert!(
        tail.len() == 10 && tail.iter().all(|(_, r)| matches!(r, OpResult::Ok(_))),
        "writes did not go on after the changes: {tail:?}"
    );
}

/// `riptide client --nodes 3 ARGS...` in this namespace.
fn client_cli(args: &[&str]) -> Output {
    std::process::Command::new(riptide_bin())
        .args(["client", "--nodes", "3", "--port", &PORT.to_string()])
        .args(args)
        .output()
        .unwrap()
}

/// Runs an admin command that must succeed; returns its stdout.
fn admin_ok(args: &[&str]) -> String {
    let out = client_cli(args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "riptide client {args:?} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The plan the test cluster was started from, to start joining nodes alike.
fn plan(cluster: &TestCluster) -> ClusterPlan {
    ClusterPlan {
        nodes: cluster.n as usize,
        port: PORT,
        program: NodeProgram::SelfExe(riptide_bin()),
        dir: cluster.dir.path().to_path_buf(),
        seed: cluster.n,
        unsafe_bugs: Vec::new(),
        log_filter: "info".into(),
        node_args: Vec::new(),
    }
}

/// Starts node `id` with `--join`, its peers the current `members`.
fn join(cluster: &TestCluster, id: NodeId, members: &[NodeId]) {
    let spec = plan(cluster).spec_joining(id, members);
    cluster.supervisor.spawn(spec).unwrap();
}

/// Waits until every node of `ids` reports the configuration `voters` (no learners, not
/// joint, committed) and they agree on one leader among them.
fn wait_for_voters(ids: &[NodeId], voters: &[NodeId], timeout: Duration) -> Vec<Status> {
    let deadline = Instant::now() + timeout;
    loop {
        let statuses: Vec<Status> = ids
            .iter()
            .filter_map(|&id| common::status(addr(id)))
            .collect();
        let settled = statuses.len() == ids.len()
            && statuses.iter().all(|s| {
                s.membership.voters == voters
                    && s.membership.learners.is_empty()
                    && !s.membership.changing
            });
        let leaders: Vec<&Status> = statuses.iter().filter(|s| s.role == Role::Leader).collect();
        if settled && leaders.len() == 1 && voters.contains(&leaders[0].id) {
            return statuses;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes {ids:?} did not settle on voters {voters:?}: {statuses:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn leader_of(ids: &[NodeId]) -> Status {
    ids.iter()
        .filter_map(|&id| common::status(addr(id)))
        .find(|s| s.role == Role::Leader)
        .expect("a leader")
}

#[test]
fn grow_from_three_to_five_voters_while_a_client_writes() {
    isolated(|| {
        let cluster = TestCluster::start(3);
        cluster.wait_for_leader(Duration::from_secs(10));
        let writer = Writer::start(cluster.nodes());
        std::thread::sleep(Duration::from_millis(300));
        for id in [4, 5] {
            let members: Vec<NodeId> = (1..id).collect();
            join(&cluster, id, &members);
            let out = admin_ok(&["add-node", &id.to_string()]);
            assert!(out.contains(&format!("promote {id}: done")), "{out}");
        }
        let all = [1, 2, 3, 4, 5];
        let statuses = wait_for_voters(&all, &all, Duration::from_secs(10));
        // The new members were caught up: they hold the log the writer built meanwhile.
        let leader = statuses.iter().find(|s| s.role == Role::Leader).unwrap();
        assert!(statuses.iter().all(|s| s.commit_index > 0), "{statuses:#?}");
        std::thread::sleep(Duration::from_millis(300));
        let (written, _) = writer.finish();
        let acked = assert_no_acknowledged_write_lost(&written, &all);
        assert!(
            acked > 20,
            "only {acked} puts acknowledged during the changes"
        );
        // The addresses the leader gave the new members are in the configuration.
        assert_eq!(
            leader.membership.addresses.get(&5).map(String::as_str),
            Some("127.0.0.15:7000")
        );
    });
}

#[test]
fn shrink_from_five_to_three_removing_the_leader_too() {
    isolated(|| {
        let cluster = TestCluster::start(5);
        let all = [1, 2, 3, 4, 5];
        let first = cluster.wait_for_leader(Duration::from_secs(10));
        let writer = Writer::start(cluster.nodes());
        std::thread::sleep(Duration::from_millis(300));
        // Remove the leader first (it steps down once C_new commits), then one more.
        admin_ok(&["remove-node", &first.to_string()]);
        let rest: Vec<NodeId> = all.iter().copied().filter(|&id| id != first).collect();
        let second = rest[0];
        admin_ok(&["remove-node", &second.to_string()]);
        let voters: Vec<NodeId> = rest[1..].to_vec();
        wait_for_voters(&voters, &voters, Duration::from_secs(10));
        // The removed nodes still run and campaign when they stop hearing a leader; pre-vote
        // and check-quorum keep them from disturbing the three voters.
        let term = leader_of(&voters).term;
        std::thread::sleep(Duration::from_secs(2));
        let after = leader_of(&voters);
        assert_eq!(
            after.term, term,
            "the removed nodes disrupted the cluster: {after:#?}"
        );
        let (written, _) = writer.finish();
        let acked = assert_no_acknowledged_write_lost(&written, &voters);
        assert!(
            acked > 20,
            "only {acked} puts acknowledged during the changes"
        );
    });
}

#[test]
fn replace_every_node_of_a_three_node_cluster_one_by_one() {
    isolated(|| {
        let cluster = TestCluster::start(3);
        cluster.wait_for_leader(Duration::from_secs(10));
        // A client configured with every address the cluster may use, as the runner's are:
        // the old nodes it knows are killed one by one.
        let writer = Writer::start((1..=6).map(|id| (id, addr(id))).collect());
        std::thread::sleep(Duration::from_millis(300));
        let mut members = vec![1, 2, 3];
        for (old, new) in [(1, 4), (2, 5), (3, 6)] {
            join(&cluster, new, &members);
            let out = admin_ok(&["replace-node", &old.to_string(), &new.to_string()]);
            assert!(out.contains(&format!("replace {old} by {new}")), "{out}");
            members.retain(|&m| m != old);
            members.push(new);
            members.sort_unstable();
            wait_for_voters(&members, &members, Duration::from_secs(10));
            // The operator retires the old machine.
            cluster.supervisor.kill(old).unwrap();
        }
        assert_eq!(members, vec![4, 5, 6]);
        std::thread::sleep(Duration::from_millis(300));
        let (written, _) = writer.finish();
        assert_tail_acknowledged(&written);
        let acked = assert_no_acknowledged_write_lost(&written, &members);
        assert!(
            acked > 20,
            "only {acked} puts acknowledged during the changes"
        );
    });
}

#[test]
fn leadership_moves_where_it_is_told_and_writes_go_on() {
    isolated(|| {
        let cluster = TestCluster::start(3);
        let first = cluster.wait_for_leader(Duration::from_secs(10));
        let writer = Writer::start(cluster.nodes());
        let target = if first == 3 { 1 } else { first + 1 };
        let out = admin_ok(&["transfer-leader", &target.to_string()]);
        assert!(
            out.contains(&format!("transfer-leader to {target}: done")),
            "{out}"
        );
        assert!(out.contains(&format!("leader n{target}")), "{out}");
        assert_eq!(cluster.wait_for_leader(Duration::from_secs(5)), target);
        std::thread::sleep(Duration::from_millis(300));
        let (written, _) = writer.finish();
        assert_tail_acknowledged(&written);
        assert_no_acknowledged_write_lost(&written, &[1, 2, 3]);
    });
}

#[test]
fn refused_changes_say_why_and_change_nothing() {
    isolated(|| {
        let cluster = TestCluster::start(3);
        cluster.wait_for_leader(Duration::from_secs(10));
        // More log than a learner may lag behind and still be promoted (100 entries).
        let mut client = cluster.client(5);
        for i in 0..150 {
            assert_eq!(
                cluster.put(&mut client, &format!("k{i}"), "v"),
                OpResult::Ok(None)
            );
        }
        let refused = |args: &[&str], why: &str| {
            let out = client_cli(args);
            let stdout = String::from_utf8_lossy(&out.stdout).to_string();
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}");
            assert!(
                stdout.contains(why),
                "{args:?} should say `{why}`: {stdout}"
            );
        };
        refused(&["add-node", "2"], "already a member");
        refused(&["promote", "9"], "not a learner");
        refused(&["remove-node", "9"], "not a member");
        refused(&["transfer-leader", "9"], "not a voter");
        admin_ok(&["add-node", "9", "--addr", "127.0.0.19:7000", "--learner"]);
        // The learner 9 that was just added (nothing runs there) cannot be promoted: it never
        // answered the leader, and the retries give up after --wait-ms.
        let out = client_cli(&["--wait-ms", "500", "promote", "9"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("has not answered the leader"),
            "{out:?}"
        );
        let s = leader_of(&[1, 2, 3]);
        assert_eq!(s.membership.voters, vec![1, 2, 3]);
        assert_eq!(s.membership.learners, vec![9]);
    });
}

#[test]
fn a_joining_node_needs_the_members_as_peers() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(riptide_bin())
        .args([
            "node",
            "--id",
            "4",
            "--listen",
            "127.0.0.14:7000",
            "--join",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--join needs the cluster's members as --peer"),
        "{stderr}"
    );
}

/// A follower that was down while a node was added, and that the new node then leads, catches
/// up from it: it admits a peer its own (old) configuration does not name, on the cluster id,
/// and answers it at the address the new node's hello gives. (Found by `riptide test --nemesis
/// membership:grow,...,partition`: before, the lagging node refused "node 7 is not a member of
/// this cluster" for ever, and the replicas never agreed.)
#[test]
fn a_follower_down_while_a_node_joined_catches_up_when_that_node_leads() {
    isolated(|| {
        let named = ["--cluster-id", "lagging"];
        let cluster = TestCluster::start_with(3, &named);
        cluster.wait_for_leader(Duration::from_secs(10));
        let writer = Writer::start(cluster.nodes());
        std::thread::sleep(Duration::from_millis(200));
        cluster.supervisor.kill(3).unwrap();
        let mut plan = plan(&cluster);
        plan.node_args = named.iter().map(|s| s.to_string()).collect();
        cluster
            .supervisor
            .spawn(plan.spec_joining(4, &[1, 2, 3]))
            .unwrap();
        let out = admin_ok(&["add-node", "4"]);
        assert!(out.contains("promote 4: done"), "{out}");
        let out = admin_ok(&["transfer-leader", "4"]);
        assert!(out.contains("transfer-leader to 4: done"), "{out}");
        std::thread::sleep(Duration::from_millis(300));
        // Node 3 comes back knowing voters [1, 2, 3] only; node 4 leads and must reach it.
        cluster.supervisor.restart(3).unwrap();
        let all = [1, 2, 3, 4];
        let statuses = wait_for_voters(&all, &all, Duration::from_secs(15));
        let commits: Vec<u64> = statuses.iter().map(|s| s.commit_index).collect();
        assert!(commits.iter().all(|&c| c > 0), "{statuses:#?}");
        assert_eq!(leader_of(&all).id, 4);
        let (written, _) = writer.finish();
        assert_no_acknowledged_write_lost(&written, &all);
        // Node 3 admitted node 4 as a newcomer, and refused nobody.
        let log = cluster.log(3);
        assert!(log.contains("admitted a peer no configuration"), "{log}");
        assert!(!log.contains("refused a peer connection"), "{log}");
    });
}

/// The runner's status probe knows the roster, and the roster can miss a member that leads (a
/// change of unknown outcome that committed later). The probe follows the members' leader hints
/// to it, at the address their configuration carries. (Found by `riptide zoo`: after a
/// `stranded` replace committed under a node the roster lacked, the recovery wait found no
/// leader for its whole timeout and correct clusters were judged unavailable.)
#[test]
fn the_status_probe_finds_a_leader_the_roster_never_knew() {
    isolated(|| {
        let cluster = TestCluster::start(3);
        cluster.wait_for_leader(Duration::from_secs(10));
        join(&cluster, 4, &[1, 2, 3]);
        let out = admin_ok(&["add-node", "4"]);
        assert!(out.contains("promote 4: done"), "{out}");
        let out = admin_ok(&["transfer-leader", "4"]);
        assert!(out.contains("transfer-leader to 4: done"), "{out}");
        let deadline = Instant::now() + Duration::from_secs(5);
        let stale_roster = cluster.nodes();
        assert_eq!(stale_roster.len(), 3);
        loop {
            // Settled once every old member names node 4 as leader.
            let settled = stale_roster
                .iter()
                .all(|(_, a)| common::status(*a).is_some_and(|s| s.leader == Some(4)));
            if settled {
                break;
            }
            assert!(Instant::now() < deadline, "the members never named n4");
            std::thread::sleep(Duration::from_millis(50));
        }
        let found =
            riptide::cluster::status::leader_status(&stale_roster, Duration::from_millis(200));
        let found = found.expect("the probe must follow the hints to n4");
        assert_eq!((found.id, found.role), (4, Role::Leader));
        assert_eq!(
            riptide::cluster::status::leader(&stale_roster, Duration::from_millis(200))
                .map(|(id, _)| id),
            Some(4)
        );
    });
}
