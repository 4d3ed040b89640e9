//! A cluster of real `riptide-node` processes on 127.0.0.(10+i), under the nemesis crate's
//! [`Supervisor`] (exact pids, nodes never outlive the runner), and [`status`], the blocking
//! probe that asks a node who leads.

pub mod disks;
pub mod status;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use riptide_nemesis::{NodeSpec, Supervisor};
use riptide_node::server::UnsafeBug;
use riptide_proto::NodeId;

use crate::exit::Exit;

/// The program that runs a node, and how to call it.
#[derive(Clone, Debug)]
pub enum NodeProgram {
    /// This very executable, as `riptide node ...`: always the same build as the runner.
    SelfExe(PathBuf),
    /// A `riptide-node` binary given with `--node-bin`.
    Binary(PathBuf),
}

impl NodeProgram {
    /// `--node-bin` if given (checked to exist), else this executable.
    pub fn resolve(node_bin: Option<&Path>) -> Result<NodeProgram, Exit> {
        match node_bin {
            Some(path) => {
                let meta = std::fs::metadata(path).map_err(|e| {
                    Exit::bad_args(format!(
                        "--node-bin {}: {e}; build it with `cargo build --release -p riptide-node` or drop --node-bin to use riptide's own node",
                        path.display()
                    ))
                })?;
                use std::os::unix::fs::PermissionsExt;
                if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
                    return Err(Exit::bad_args(format!(
                        "--node-bin {} is not an executable file; point it at the node binary itself and make it executable (chmod +x)",
                        path.display()
                    )));
                }
                Ok(NodeProgram::Binary(path.to_path_buf()))
            }
            None => {
                let exe = std::env::current_exe().map_err(|e| {
                    Exit::crashed(format!("cannot find riptide's own executable: {e}"))
                })?;
                Ok(NodeProgram::SelfExe(exe))
            }
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            NodeProgram::SelfExe(p) | NodeProgram::Binary(p) => p,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            NodeProgram::SelfExe(p) => format!("{} node", p.display()),
            NodeProgram::Binary(p) => p.display().to_string(),
        }
    }
}

/// A new cluster id for nodes about to form a cluster: `riptide-<UTC time>-<8 random hex>`.
pub fn fresh_cluster_id() -> String {
    let now = riptide_store::layout::timestamp(riptide_store::layout::now_unix());
    format!("riptide-{now}-{:08x}", rand::random::<u32>())
}

/// The node flags that name the cluster and, if any, its secret file.
pub fn identity_args(cluster_id: &str, secret_file: Option<&str>) -> Vec<String> {
    let mut args = Vec::new();
    if !cluster_id.is_empty() {
        args.extend(["--cluster-id".to_string(), cluster_id.to_string()]);
    }
    if let Some(file) = secret_file {
        args.extend(["--cluster-secret-file".to_string(), file.to_string()]);
    }
    args
}

/// How to lay out and start the nodes.
#[derive(Clone, Debug)]
pub struct ClusterPlan {
    pub nodes: usize,
    pub port: u16,
    pub program: NodeProgram,
    /// `nodes/n<i>/` holds each node's data dir; `nodes/n<i>.log` its log.
    pub dir: PathBuf,
    pub seed: u64,
    pub unsafe_bugs: Vec<UnsafeBug>,
    pub log_filter: String,
    /// More flags for every node (snapshot settings, for one).
    pub node_args: Vec<String>,
}

/// Node `id`'s address: 127.0.0.(10+id) ([`riptide_proto::node_addr`]).
pub fn node_addr(id: NodeId, port: u16) -> SocketAddr {
    riptide_proto::node_addr(id, port)
}

impl ClusterPlan {
    pub fn addrs(&self) -> Vec<(NodeId, SocketAddr)> {
        (1..=self.nodes as NodeId)
            .map(|id| (id, node_addr(id, self.port)))
            .collect()
    }

    /// Node `id`'s own data dir: `nodes/n<i>/data`.
    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        self.dir.join(format!("n{id}")).join("data")
    }

    pub fn spec(&self, id: NodeId) -> NodeSpec {
        self.spec_on(id, &self.data_dir(id))
    }

    /// The spec of node `id` joining a running cluster whose members are `members`
    /// (`riptide-node --join`): it starts outside the configuration, with those members as its
    /// peers, and waits for the leader to add it (`riptide client add-node`).
    pub fn spec_joining(&self, id: NodeId, members: &[NodeId]) -> NodeSpec {
        self.spec_joining_on(id, members, &self.data_dir(id))
    }

    /// [`ClusterPlan::spec_joining`] with the data dir at `data` (a faultfs mount).
    pub fn spec_joining_on(&self, id: NodeId, members: &[NodeId], data: &Path) -> NodeSpec {
        let peers: Vec<NodeId> = members.iter().copied().filter(|&m| m != id).collect();
        self.spec_with_peers(id, data, &peers).arg("--join")
    }

    /// The spec of node `id` with its data dir at `data` (a faultfs mount, for power cuts).
    pub fn spec_on(&self, id: NodeId, data: &Path) -> NodeSpec {
        let peers: Vec<NodeId> = self
            .addrs()
            .into_iter()
            .map(|(p, _)| p)
            .filter(|&p| p != id)
            .collect();
        self.spec_with_peers(id, data, &peers)
    }

    fn spec_with_peers(&self, id: NodeId, data: &Path, peers: &[NodeId]) -> NodeSpec {
        let log = self.dir.join(format!("n{id}.log"));
        let mut spec = NodeSpec::new(id, self.program.path(), log);
        if let NodeProgram::SelfExe(_) = self.program {
            spec = spec.arg("node");
        }
        spec = spec
            .args(["--id".to_string(), id.to_string()])
            .args(["--listen".to_string(), node_addr(id, self.port).to_string()])
            .args(["--data-dir".into(), data.display().to_string()])
            .args(["--seed".to_string(), self.seed.to_string()])
            .args(["--log".to_string(), self.log_filter.clone()]);
        for &peer in peers {
            let addr = node_addr(peer, self.port);
            spec = spec.args(["--peer".to_string(), format!("{peer}={addr}")]);
        }
        for bug in &self.unsafe_bugs {
            spec = spec.args(["--unsafe-bug".to_string(), bug.name().to_string()]);
        }
        spec.args(self.node_args.iter().cloned())
    }

    /// Starts every node. Fails with a clear message if a node cannot start or its port is taken.
    pub fn start(&self, supervisor: &Arc<Supervisor>) -> anyhow::Result<()> {
        self.start_on(supervisor, |id| self.data_dir(id))
    }

    /// [`ClusterPlan::start`] with each node's data dir at `data(id)`.
    pub fn start_on(
        &self,
        supervisor: &Arc<Supervisor>,
        data: impl Fn(NodeId) -> PathBuf,
    ) -> anyhow::Result<()> {
        for (id, addr) in self.addrs() {
            if std::net::TcpListener::bind(addr).is_err() {
                return Err(Exit::bad_args(format!(
                    "{addr} is already in use; stop whatever listens there or pick another --port"
                ))
                .into());
            }
            supervisor
                .spawn(self.spec_on(id, &data(id)))
                .with_context(|| format!("cannot start node {id} ({})", self.program.describe()))?;
        }
        Ok(())
    }
}

/// Every node process is running, but within the timeout no node led (or not every node
/// answered a status request): [`wait_for_leader`]'s error when no node exited. A run tells it
/// from a node that died (`downcast_ref`): it is the cluster's liveness at stake, not the
/// bench's.
#[derive(Debug)]
pub struct NoLeader {
    pub timeout: Duration,
    pub logs: PathBuf,
}

impl std::fmt::Display for NoLeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no leader was elected within {:?}; see the node logs in {}",
            self.timeout,
            self.logs.display()
        )
    }
}

impl std::error::Error for NoLeader {}

/// Waits until some node leads and every node of `addrs` answers a status request. Returns the
/// leader. If one of those node processes exits meanwhile, says so with the tail of its log
/// (nodes not in `addrs`, such as one that refused to start, are not waited for); if the time
/// runs out with every node running, the error is a [`NoLeader`].
pub fn wait_for_leader(
    addrs: &[(NodeId, SocketAddr)],
    supervisor: &Supervisor,
    logs: &Path,
    timeout: Duration,
) -> anyhow::Result<NodeId> {
    let deadline = Instant::now() + timeout;
    loop {
        for status in supervisor.statuses() {
            if !addrs.iter().any(|(id, _)| *id == status.id) {
                continue;
            }
            if let riptide_nemesis::NodeState::Exited { code, signal } = &status.state {
                let how = match (code, signal) {
                    (Some(code), _) => format!("exit code {code}"),
                    (_, Some(signal)) => format!("signal {signal}"),
                    _ => "unknown status".to_string(),
                };
                let log = logs.join(format!("n{}.log", status.id));
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                anyhow::bail!(
                    "node {} exited ({how}) before the cluster was ready; the end of {}:\n  {}",
                    status.id,
                    log.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
                );
            }
        }
        if let Some((leader, _)) = status::leader(addrs, Duration::from_millis(200)) {
            let all_up = addrs
                .iter()
                .all(|(_, addr)| status::status(*addr, Duration::from_millis(200)).is_ok());
            if all_up {
                return Ok(leader);
            }
        }
        if Instant::now() >= deadline {
            return Err(anyhow::Error::new(NoLeader {
                timeout,
                logs: logs.to_path_buf(),
            }));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
