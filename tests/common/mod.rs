//! Shared by the end-to-end tests: real `riptide node` processes in a private network namespace.
//!
//! Each test body runs on one thread that `run_isolated` moves into a fresh network namespace, so
//! tests can run in parallel on the same addresses and nothing they do reaches the host. Nodes
//! are started by the nemesis crate's `Supervisor` (exact pids; all killed and reaped on drop).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use riptide::cluster::{ClusterPlan, NodeProgram};
use riptide_nemesis::Supervisor;
use riptide_proto::{Role, Status};
use riptide_workload::{Client, ClientOptions, OpResult};

pub const PORT: u16 = 7000;

pub fn riptide_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_riptide"))
}

/// True (and a `skipped:` line) when not root: `riptide test` needs root for its network
/// namespace, so a test that runs it returns early.
pub fn skip_without_root() -> bool {
    let skip = unsafe { libc::geteuid() } != 0;
    if skip {
        eprintln!("skipped: riptide test needs root for its network namespace");
    }
    skip
}

/// The JSON lines of a file (a run's `history.jsonl`), each parsed; panics naming the bad line.
pub fn json_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// The newest run folder of the results dir `results` (its `latest` link).
pub fn latest_run(results: &std::path::Path) -> PathBuf {
    results.join(std::fs::read_link(results.join("latest")).unwrap())
}

/// Runs `body` in a private network namespace; returns None (test skipped) if not root.
pub fn isolated<R: Send + 'static>(body: impl FnOnce() -> R + Send + 'static) -> Option<R> {
    riptide_nemesis::sandbox::run_isolated(move |_sandbox| body())
}

pub fn addr(id: u64) -> SocketAddr {
    riptide_proto::node_addr(id, PORT)
}

pub struct TestCluster {
    pub n: u64,
    pub supervisor: Arc<Supervisor>,
    pub dir: tempfile::TempDir,
    pub runtime: tokio::runtime::Runtime,
}

impl TestCluster {
    pub fn start(n: u64) -> TestCluster {
        Self::start_with(n, &[])
    }

    pub fn start_with(n: u64, extra: &[&str]) -> TestCluster {
        let ids: Vec<u64> = (1..=n).collect();
        Self::start_only(n, &ids, extra)
    }

    /// A cluster of `n` members of which only `ids` are started (the others' addresses are
    /// configured as peers, with nothing of this cluster behind them).
    pub fn start_only(n: u64, ids: &[u64], extra: &[&str]) -> TestCluster {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = Arc::new(Supervisor::new().unwrap());
        // The same node command lines as `riptide test` builds, plus the test's own flags.
        let plan = ClusterPlan {
            nodes: n as usize,
            port: PORT,
            program: NodeProgram::SelfExe(riptide_bin()),
            dir: dir.path().to_path_buf(),
            seed: n,
            unsafe_bugs: Vec::new(),
            log_filter: "info".into(),
            node_args: Vec::new(),
        };
        for &id in ids {
            let spec = plan.spec(id).args(extra.iter().map(|s| s.to_string()));
            supervisor.spawn(spec).unwrap();
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        TestCluster {
            n,
            supervisor,
            dir,
            runtime,
        }
    }

    pub fn log(&self, id: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("n{id}.log"))).unwrap_or_default()
    }

    pub fn nodes(&self) -> Vec<(u64, SocketAddr)> {
        (1..=self.n).map(|id| (id, addr(id))).collect()
    }

    pub fn status(&self, id: u64) -> Option<Status> {
        status(addr(id))
    }

    /// Waits until exactly one leader is reported by the live nodes and all live nodes follow
    /// it in its term. Panics with the node logs after `timeout`.
    pub fn wait_for_leader(&self, timeout: Duration) -> u64 {
        let ids: Vec<u64> = (1..=self.n).collect();
        self.wait_for_leader_among(&ids, timeout)
    }

    /// [`Self::wait_for_leader`], asking only nodes `ids`.
    pub fn wait_for_leader_among(&self, ids: &[u64], timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let statuses: Vec<Status> = ids.iter().filter_map(|&id| self.status(id)).collect();
            let leaders: Vec<&Status> =
                statuses.iter().filter(|s| s.role == Role::Leader).collect();
            if let [leader] = leaders.as_slice() {
                if statuses
                    .iter()
                    .all(|s| s.term == leader.term && s.leader == Some(leader.id))
                {
                    return leader.id;
                }
            }
            if Instant::now() > deadline {
                let logs: String = (1..=self.n)
                    .map(|id| format!("--- n{id}\n{}", self.log(id)))
                    .collect();
                panic!("no single leader within {timeout:?}: {statuses:#?}\n{logs}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self, client_id: u64) -> Client {
        let opts = ClientOptions {
            nodes: self.nodes(),
            home: 1,
            op_timeout: Duration::from_secs(2),
            bind: None,
        };
        Client::new(opts, client_id)
    }

    pub fn put(&self, client: &mut Client, key: &str, value: &str) -> OpResult {
        self.runtime.block_on(client.put(key, value))
    }

    pub fn get(&self, client: &mut Client, key: &str) -> OpResult {
        self.runtime.block_on(client.get(key))
    }
}

/// A TCP connection to `to` from `from` (any port), as blocking std I/O.
pub fn connect_from(from: std::net::IpAddr, to: SocketAddr) -> std::net::TcpStream {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(std::net::SocketAddr::new(from, 0)).unwrap();
        let stream = socket.connect(to).await.unwrap();
        let stream = stream.into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        stream
    })
}

/// The value of an ok op; panics on anything else.
pub fn ok(result: OpResult) -> Option<String> {
    match result {
        OpResult::Ok(v) => v,
        other => panic!("expected ok, got {other:?}"),
    }
}

pub fn status(addr: SocketAddr) -> Option<Status> {
    riptide_proto::status(addr, Duration::from_millis(500)).ok()
}
