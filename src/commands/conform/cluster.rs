//! The cluster under test: three nodes of the binary, started as `riptide test` starts them
//! (the same [`ClusterPlan`], so the same flags), under a [`Supervisor`] that knows their exact
//! pids, in a folder of their own that goes away with them.
//!
//! What this adds to the plan is what a conformance check needs to *say*: how a node that
//! stopped running ended, with the end of its log, and whether it listens.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use riptide_nemesis::{NodeState, Supervisor};
use riptide_proto::NodeId;

use crate::cluster::ClusterPlan;

/// The folder of one conform run: removed on drop (a failure and a panic included) unless the
/// user asked to keep it.
pub struct WorkDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The nodes, their supervisor and the knobs every check shares.
pub struct Bench {
    pub plan: ClusterPlan,
    pub supervisor: Arc<Supervisor>,
    /// How long one request may wait for its answer.
    pub timeout: Duration,
    /// How long the nodes may take to elect a leader.
    pub election_timeout: Duration,
}

impl Bench {
    pub fn nodes(&self) -> Vec<(NodeId, SocketAddr)> {
        self.plan.addrs()
    }

    pub fn addr(&self, id: NodeId) -> SocketAddr {
        crate::cluster::node_addr(id, self.plan.port)
    }

    pub fn log_path(&self, id: NodeId) -> PathBuf {
        self.plan.dir.join(format!("n{id}.log"))
    }

    /// The command line node `id` was started with, as a shell would show it.
    pub fn command_line(&self, id: NodeId) -> String {
        self.plan.spec(id).command_line()
    }

    /// `None` while node `id` runs; else how it ended and the last lines of its log.
    pub fn ended(&self, id: NodeId) -> Option<String> {
        let status = self.supervisor.status(id).ok()?;
        match status.state {
            NodeState::Running | NodeState::Paused => None,
            state => Some(format!(
                "n{id} {state}; {}",
                log_tail(&self.log_path(id), 6)
            )),
        }
    }

    /// Waits until every node accepts a TCP connection on its address. Errors name the nodes
    /// that exited (with their logs) or still refuse, and whether it was the flags.
    pub fn wait_listening(&self, ids: &[NodeId], timeout: Duration) -> Result<(), Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut waiting: Vec<NodeId> = ids.to_vec();
        loop {
            let mut problems = Vec::new();
            waiting.retain(|&id| {
                if let Some(ended) = self.ended(id) {
                    problems.push(ended);
                    return false;
                }
                TcpStream::connect_timeout(&self.addr(id), Duration::from_millis(200)).is_err()
            });
            if !problems.is_empty() {
                return Err(problems);
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(waiting
                    .iter()
                    .map(|&id| {
                        format!(
                            "n{id} is running but refused connections on {} for {timeout:?}",
                            self.addr(id)
                        )
                    })
                    .collect());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts a node that stopped (killed, exited) again from its spec, on the same data dir.
    pub fn restart(&self, id: NodeId) -> Result<(), String> {
        self.supervisor
            .restart(id)
            .map(|_| ())
            .map_err(|e| format!("cannot restart n{id}: {e}"))
    }

    /// Every node not running, restarted, so that later checks start from a whole cluster.
    pub fn restart_stopped(&self) {
        for (id, _) in self.nodes() {
            if self.ended(id).is_some() {
                let _ = self.restart(id);
            }
        }
    }
}

/// The last `lines` lines of a node's log, or a note that it is empty.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(lines).collect();
    if tail.is_empty() {
        return format!("its log {} is empty", path.display());
    }
    let body: Vec<&str> = tail.into_iter().rev().collect();
    format!("the end of {}:\n  {}", path.display(), body.join("\n  "))
}
