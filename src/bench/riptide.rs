//! The riptide target: a cluster of `riptide node` processes that bench starts (the same
//! [`ClusterPlan`] as `riptide cluster` and `riptide test`, supervised by exact pid), or a
//! running one given with `--endpoints`; and the ops through [`riptide_workload::Client`].
//!
//! Every client aims at the leader: its home node is the leader, so its gets go there first
//! (riptide answers linearizable reads on the leader, through ReadIndex) and so do its puts.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use riptide_nemesis::{Sandbox, Supervisor};
use riptide_proto::{NodeId, Role};
use riptide_workload::{Client, ClientOptions, OpResult};

use super::load::{Outcome, Process, Session};
use crate::cluster::disks::RunDisks;
use crate::cluster::{self, status, ClusterPlan, NodeProgram};

/// How long a cluster may take to elect its first leader.
const ELECTION_WAIT: Duration = Duration::from_secs(15);

/// A riptide cluster to measure.
pub struct RiptideCluster {
    pub nodes: Vec<(NodeId, SocketAddr)>,
    /// Present when bench started the nodes (then their pids are known).
    pub supervisor: Option<Arc<Supervisor>>,
    /// The faultfs mounts the nodes run on (`--target riptide-faultfs`), unmounted on drop,
    /// after the supervisor (declared before) killed the nodes.
    _disks: Option<RunDisks>,
}

impl RiptideCluster {
    /// Starts `n` nodes with their data and logs in `dir`, and waits for a leader. With
    /// `faultfs` (the sandbox to mount in), every data dir is a riptide-faultfs mount. Every
    /// node gets `extra_args` after the cluster's own flags.
    pub fn start(
        n: usize,
        port: u16,
        program: NodeProgram,
        dir: &Path,
        seed: u64,
        faultfs: Option<&Sandbox>,
        extra_args: &[String],
    ) -> anyhow::Result<RiptideCluster> {
        let mut node_args = cluster::identity_args(&cluster::fresh_cluster_id(), None);
        node_args.extend(extra_args.iter().cloned());
        let plan = ClusterPlan {
            nodes: n,
            port,
            program,
            dir: dir.to_path_buf(),
            seed,
            unsafe_bugs: Vec::new(),
            log_filter: "info".into(),
            node_args,
        };
        let nodes = plan.addrs();
        let disks = match faultfs {
            Some(sandbox) => {
                let ids: Vec<NodeId> = nodes.iter().map(|(id, _)| *id).collect();
                Some(RunDisks::mount(dir, &ids, sandbox)?)
            }
            None => None,
        };
        let supervisor = Arc::new(Supervisor::new()?);
        plan.start_on(&supervisor, |id| {
            disks
                .as_ref()
                .and_then(|d| d.node_data_dir(id))
                .unwrap_or_else(|| plan.data_dir(id))
        })?;
        cluster::wait_for_leader(&nodes, &supervisor, dir, ELECTION_WAIT)?;
        Ok(RiptideCluster {
            nodes,
            supervisor: Some(supervisor),
            _disks: disks,
        })
    }

    /// A running cluster: each endpoint is asked its node id.
    pub fn running(endpoints: &[SocketAddr]) -> anyhow::Result<RiptideCluster> {
        let mut nodes = Vec::new();
        for addr in endpoints {
            let s = status::status(*addr, Duration::from_secs(2)).with_context(|| {
                format!("--endpoints {addr}: no riptide node answers there; start one with `riptide cluster` or fix the address")
            })?;
            nodes.push((s.id, *addr));
        }
        Ok(RiptideCluster {
            nodes,
            supervisor: None,
            _disks: None,
        })
    }

    /// The node that leads now, as every node that answers agrees; waits for one.
    pub fn leader(&self, timeout: Duration) -> anyhow::Result<NodeId> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let statuses: Vec<_> = self
                .nodes
                .iter()
                .filter_map(|(_, addr)| status::status(*addr, Duration::from_millis(500)).ok())
                .collect();
            let leaders: Vec<_> = statuses.iter().filter(|s| s.role == Role::Leader).collect();
            if let [leader] = leaders.as_slice() {
                let agreed = statuses
                    .iter()
                    .all(|s| s.term == leader.term && s.leader == Some(leader.id));
                if agreed && statuses.len() == self.nodes.len() {
                    return Ok(leader.id);
                }
            }
            if std::time::Instant::now() >= deadline {
                anyhow::bail!("the riptide cluster has no leader all its nodes follow after {timeout:?}: {statuses:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The node processes, leader marked (pids only for nodes bench started).
    pub fn processes(&self, leader: NodeId) -> Vec<Process> {
        self.nodes
            .iter()
            .map(|(id, _)| Process {
                leader: *id == leader,
                pid: self.supervisor.as_ref().and_then(|s| s.pid(*id)),
            })
            .collect()
    }

    /// One client aimed at `leader`.
    pub fn session(&self, leader: NodeId, client_id: u64, op_timeout: Duration) -> Session {
        let opts = ClientOptions {
            nodes: self.nodes.clone(),
            home: leader,
            op_timeout,
            bind: None,
        };
        Session::Riptide(Client::new(opts, client_id))
    }
}

impl Drop for RiptideCluster {
    fn drop(&mut self) {
        if let Some(supervisor) = &self.supervisor {
            supervisor.shutdown();
        }
    }
}

fn outcome(result: OpResult) -> Outcome {
    match result {
        OpResult::Ok(_) => Outcome::Done,
        OpResult::Fail(why) => match why.strip_prefix("cas-mismatch: the value is ") {
            Some(actual) => Outcome::Mismatch(actual.to_string()),
            None => Outcome::Error(why),
        },
        OpResult::Info(why) => Outcome::Error(format!("unknown outcome: {why}")),
    }
}

pub async fn put(client: &mut Client, key: &str, value: &str) -> Outcome {
    outcome(client.put(key, value).await)
}

pub async fn get(client: &mut Client, key: &str) -> Outcome {
    outcome(client.get(key).await)
}

pub async fn cas(client: &mut Client, key: &str, expected: &str, new: &str) -> Outcome {
    outcome(client.cas(key, expected, new).await)
}
