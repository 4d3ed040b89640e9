//! What the nemesis needs from outside: the live cluster's leader, leadership transfers and
//! the nodes' slow-apply hook
//! ([`ClusterView`], which the runner implements with the node protocol), and the stop signal
//! shared with the runner ([`Shutdown`]).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::TransferAnswer;
use crate::NodeId;

/// What the nemesis needs to know about the live cluster.
pub trait ClusterView: Send + Sync {
    /// The node that currently leads, if any is known (asked through the status request).
    fn leader(&self) -> Option<NodeId>;

    /// Asks the cluster to hand leadership to `to` and waits for the outcome (for
    /// `transfer-leader`). The default refuses: a view that only knows the leader cannot.
    fn transfer_leader(&self, to: NodeId) -> TransferAnswer {
        TransferAnswer::Refused(format!(
            "this cluster view cannot transfer leadership (to node {to})"
        ))
    }

    /// Asks node `node` to hold each committed entry back `delay_ms` before it applies it
    /// (0: apply at once again), for `slow-apply`. The default refuses.
    fn slow_apply(&self, node: NodeId, delay_ms: u64) -> Result<(), String> {
        Err(format!(
            "this cluster view cannot slow a state machine (n{node}, {delay_ms} ms)"
        ))
    }

    /// Asks node `node` to hold back and duplicate its peer messages at random, up to
    /// `max_delay_ms` late, its draws from `seed` (0: send at once again), for `reorder`. The
    /// default refuses.
    fn reorder(&self, node: NodeId, max_delay_ms: u64, seed: u64) -> Result<(), String> {
        let _ = seed;
        Err(format!(
            "this cluster view cannot reorder peer messages (n{node}, {max_delay_ms} ms)"
        ))
    }

    /// What node `node`'s reorder hook did since it was last turned on: messages held back
    /// and messages sent twice (its `status`). `None` if it cannot be asked; the default.
    fn reorder_counts(&self, node: NodeId) -> Option<(u64, u64)> {
        let _ = node;
        None
    }
}

/// A view that never knows the leader: leader targets fall back to a random node.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLeader;

impl ClusterView for NoLeader {
    fn leader(&self) -> Option<NodeId> {
        None
    }
}

impl<F> ClusterView for F
where
    F: Fn() -> Option<NodeId> + Send + Sync,
{
    fn leader(&self) -> Option<NodeId> {
        self()
    }
}

/// A stop signal shared between the runner (Ctrl-C, end of the time limit) and the nemesis
/// thread, which wakes from its wait at once when triggered.
#[derive(Debug, Clone, Default)]
pub struct Shutdown(Arc<(Mutex<bool>, Condvar)>);

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Triggers the signal; every waiter returns. Callable from any thread, async code included.
    pub fn trigger(&self) {
        let (flag, cond) = &*self.0;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cond.notify_all();
    }

    /// Whether it was triggered.
    pub fn is_triggered(&self) -> bool {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `timeout`; returns true if the signal was (or gets) triggered.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (flag, cond) = &*self.0;
        let guard = flag.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = cond
            .wait_timeout_while(guard, timeout, |triggered| !*triggered)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}
