//! Large values, end to end: a real 3-node cluster (three `riptide-node` processes) over real
//! TCP on 127.0.78.x, each data dir in a temp dir, each node killed by its own pid on drop.
//!
//! A value so large that its log entry could not be replicated in one frame must be refused
//! with a definite failure before it reaches the log, and the cluster must keep its leader and
//! go on serving. A value that fits, even one larger than a peer link's queue bound, must
//! commit on every node.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use riptide_node::server::executor::MAX_COMMAND_BYTES;
use riptide_node::server::raft_loop::PEER_QUEUE_BYTES;
use riptide_proto::{
    BlockingConnection, ClientOp, ClientRequest, ClientResponse, ClientResult, FailReason, Hello,
    Reply, Role, Status, WriteOp,
};

/// Three running nodes, killed (each by its own pid) and reaped on drop.
struct Cluster {
    nodes: Vec<(Child, SocketAddr)>,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let addrs: Vec<SocketAddr> = (1..=3u8).map(|i| free_addr([127, 78, 0, i])).collect();
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = Vec::new();
        for (k, &addr) in addrs.iter().enumerate() {
            let id = k as u64 + 1;
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_riptide-node"));
            cmd.args(["--id", &id.to_string(), "--listen", &addr.to_string()])
                .args(["--log", "warn", "--seed", "7"])
                .arg("--data-dir")
                .arg(dir.path().join(format!("n{id}")));
            for (j, peer) in addrs.iter().enumerate().filter(|&(j, _)| j != k) {
                cmd.arg("--peer").arg(format!("{}={peer}", j + 1));
            }
            let log = std::fs::File::create(dir.path().join(format!("n{id}.log"))).unwrap();
            let child = cmd
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            nodes.push((child, addr));
        }
        Cluster { nodes, dir }
    }

    fn status(&self, k: usize) -> Option<Status> {
        riptide_proto::status(self.nodes[k].1, Duration::from_secs(2)).ok()
    }

    fn logs(&self) -> String {
        (1..=3)
            .map(|id| {
                let path: PathBuf = self.dir.path().join(format!("n{id}.log"));
                format!(
                    "--- n{id}\n{}",
                    std::fs::read_to_string(path).unwrap_or_default()
                )
            })
            .collect()
    }

    /// The one leader all three follow in one term: (its position, its status).
    fn leader(&self, timeout: Duration) -> (usize, Status) {
        let deadline = Instant::now() + timeout;
        loop {
            let statuses: Vec<Option<Status>> = (0..3).map(|k| self.status(k)).collect();
            let leader = statuses
                .iter()
                .position(|s| s.as_ref().is_some_and(|s| s.role == Role::Leader));
            if let Some(k) = leader {
                let s = statuses[k].clone().unwrap();
                let all_follow = statuses.iter().all(|o| {
                    o.as_ref()
                        .is_some_and(|o| o.term == s.term && o.leader == Some(s.id))
                });
                if all_follow {
                    return (k, s);
                }
            }
            assert!(
                Instant::now() < deadline,
                "no single leader within {timeout:?}: {statuses:#?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One request to node `k` on a fresh connection, and its answer.
    fn ask(&self, k: usize, request: &ClientRequest) -> ClientResult {
        let addr = self.nodes[k].1;
        let mut conn = BlockingConnection::open(addr, Duration::from_secs(10), &Hello::Client)
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}\n{}", self.logs()));
        conn.send(request).unwrap();
        let answer: ClientResponse = conn
            .recv()
            .unwrap_or_else(|e| panic!("no answer from {addr}: {e}\n{}", self.logs()))
            .expect("an answer before the connection closed");
        assert_eq!(answer.id, request.id);
        answer.result
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (child, _) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_addr(ip: [u8; 4]) -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::from((ip, 0))).unwrap();
    listener.local_addr().unwrap()
}

fn put(client_id: u64, key: &str, value: String) -> ClientRequest {
    ClientRequest {
        id: client_id,
        client_id,
        seq: 1,
        op: ClientOp::Write(WriteOp::Put {
            key: key.into(),
            value,
        }),
    }
}

fn get(key: &str) -> ClientRequest {
    ClientRequest {
        id: 99,
        client_id: 0,
        seq: 0,
        op: ClientOp::Get { key: key.into() },
    }
}

#[test]
fn a_value_too_large_for_one_entry_is_refused_and_the_cluster_keeps_serving() {
    let cluster = Cluster::start();
    let (k, before) = cluster.leader(Duration::from_secs(15));
    assert_eq!(
        cluster.ask(k, &put(1, "small", "v".into())),
        ClientResult::Ok(Reply::Done)
    );

    // Its request fits in a frame; its command (key and session around the value) does not fit
    // in one entry. Not ASCII, so that an array of integers would double it.
    let too_large = "é".repeat(MAX_COMMAND_BYTES / 2);
    match cluster.ask(k, &put(2, "big", too_large)) {
        ClientResult::Fail(FailReason::BadRequest(why)) => {
            assert!(why.contains("too large"), "{why}");
            assert!(why.contains("nothing was appended"), "{why}");
        }
        other => panic!("expected a definite refusal, got {other:?}"),
    }

    // Larger than a peer link's queue bound, but a valid entry: it commits on every node.
    let large = "ü".repeat(PEER_QUEUE_BYTES / 2 + 4096);
    assert_eq!(
        cluster.ask(k, &put(3, "large", large.clone())),
        ClientResult::Ok(Reply::Done),
        "{}",
        cluster.logs()
    );
    assert_eq!(
        cluster.ask(k, &get("large")),
        ClientResult::Ok(Reply::Value(Some(large)))
    );
    assert_eq!(
        cluster.ask(k, &get("big")),
        ClientResult::Ok(Reply::Value(None))
    );

    // The same leader in the same term, and everyone applies what it committed.
    let (k_after, after) = cluster.leader(Duration::from_secs(5));
    assert_eq!(
        (k_after, after.term),
        (k, before.term),
        "{}",
        cluster.logs()
    );
    assert_eq!(
        cluster.ask(k, &put(4, "after", "v".into())),
        ClientResult::Ok(Reply::Done)
    );
    let commit = cluster.status(k).unwrap().commit_index;
    let deadline = Instant::now() + Duration::from_secs(10);
    while (0..3).any(|j| cluster.status(j).is_none_or(|s| s.applied_index < commit)) {
        assert!(
            Instant::now() < deadline,
            "followers did not apply {commit}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
