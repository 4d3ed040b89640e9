//! The nemesis's view of the run's cluster, and its hands on it ([`RunView`]): who leads (the
//! status probe), leadership transfers, the slow-apply and reorder hooks and membership changes (a client's
//! admin requests), new nodes' specs and disks, and the wiping of removed ones.
//!
//! Every membership change that commits updates the run's [`Roster`], the members the
//! workload's clients follow: a node removed stops getting requests, a node added starts.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use riptide_nemesis::{
    ChangeAnswer, ClusterView, Configuration, MemberChange, NodeSpec, Operator, TransferAnswer,
};
use riptide_proto::{AdminOp, MembershipStatus, NodeId};
use riptide_workload::{AdminOutcome, Client, ClientOptions, Roster};

use crate::cluster::disks::RunDisks;
use crate::cluster::{node_addr, status, ClusterPlan};

/// The address clients connect from: outside every partition, which only cuts node-to-node links.
pub(super) const CLIENT_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// How long the nemesis waits for a leadership transfer: longer than the election timeout
/// within which the leader abandons one the target did not take over.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a node may take to answer the slow-apply or reorder hook (it answers at once
/// unless paused).
const HOOK_TIMEOUT: Duration = Duration::from_secs(1);

/// How long one admin request of a membership change may take: a joint change commits twice.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a membership change keeps retrying refusals the leader marks retryable: a new
/// learner catching up, a change still in flight, no leader during an election. The nemesis
/// thread waits meanwhile, so about one default interval.
const CHANGE_WAIT: Duration = Duration::from_secs(10);

/// How long the status probe waits for each node.
const PROBE_TIMEOUT: Duration = Duration::from_millis(200);

/// The nemesis's client id: far from the workload's (process + 1) and the final reads'.
const NEMESIS_CLIENT_ID: u64 = 0x6e65_6d65_7369_7301;

/// The nemesis's view of the run's cluster.
pub(super) struct RunView {
    /// The members now, shared with the workload's clients.
    pub roster: Roster,
    /// How nodes are laid out and started, for new ones.
    pub cluster: ClusterPlan,
    pub disks: Arc<RunDisks>,
}

impl RunView {
    /// Runs `future` on a current-thread runtime of its own: the nemesis runs on a plain thread.
    fn block_on<F: std::future::Future>(&self, future: F) -> Result<F::Output, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        Ok(runtime.block_on(future))
    }

    fn client(&self, home: Option<NodeId>, op_timeout: Duration) -> Client {
        let nodes = self.roster.nodes();
        let home = home.or(nodes.first().map(|(id, _)| *id)).unwrap_or(1);
        let opts = ClientOptions {
            nodes,
            home,
            op_timeout,
            bind: Some(CLIENT_ADDR),
        };
        Client::new(opts, NEMESIS_CLIENT_ID)
    }

    fn addr(&self, id: NodeId) -> SocketAddr {
        node_addr(id, self.cluster.port)
    }

    /// The roster after a committed change: the voters, at the addresses the configuration
    /// carries (the address rule for any it does not).
    fn follow(&self, membership: &MembershipStatus) {
        let nodes = membership
            .voters
            .iter()
            .map(|&id| {
                let carried = membership.addresses.get(&id).and_then(|a| a.parse().ok());
                (id, carried.unwrap_or_else(|| self.addr(id)))
            })
            .collect();
        self.roster.set(nodes);
    }

    /// A change's answer; a committed one moves the roster.
    fn answer(&self, outcome: AdminOutcome) -> ChangeAnswer {
        match outcome {
            AdminOutcome::Done(done) => {
                self.follow(&done.membership);
                ChangeAnswer::Done {
                    voters: done.membership.voters,
                }
            }
            AdminOutcome::Refused { reason, .. } => ChangeAnswer::Refused(reason),
            AdminOutcome::Unknown(reason) => ChangeAnswer::Unknown(reason),
        }
    }

    fn admin_op(&self, change: MemberChange) -> AdminOp {
        match change {
            MemberChange::AddLearner(id) => AdminOp::AddLearner {
                id,
                addr: self.addr(id).to_string(),
            },
            MemberChange::Promote(id) => AdminOp::Promote { id },
            MemberChange::Remove(id) => AdminOp::Remove { id },
            MemberChange::Replace { add, remove } => AdminOp::Replace {
                add,
                addr: Some(self.addr(add).to_string()),
                remove,
            },
        }
    }
}

impl ClusterView for RunView {
    fn leader(&self) -> Option<NodeId> {
        status::leader(&self.roster.nodes(), PROBE_TIMEOUT).map(|(id, _)| id)
    }

    fn transfer_leader(&self, to: NodeId) -> TransferAnswer {
        // The target, a follower, answers with a hint to the leader, which the client follows.
        let mut client = self.client(Some(to), TRANSFER_TIMEOUT);
        let outcome = match self.block_on(client.admin(AdminOp::TransferLeader { to })) {
            Ok(outcome) => outcome,
            Err(why) => return TransferAnswer::Refused(why),
        };
        match outcome {
            AdminOutcome::Done(done) if done.leader == Some(to) => TransferAnswer::Done,
            AdminOutcome::Done(done) => {
                TransferAnswer::Unknown(format!("answered done, with leader {:?}", done.leader))
            }
            AdminOutcome::Refused { reason, .. } => TransferAnswer::Refused(reason),
            AdminOutcome::Unknown(reason) => TransferAnswer::Unknown(reason),
        }
    }

    fn slow_apply(&self, node: NodeId, delay_ms: u64) -> Result<(), String> {
        self.hook(node, AdminOp::SlowApply { delay_ms })
    }

    fn reorder(&self, node: NodeId, max_delay_ms: u64, seed: u64) -> Result<(), String> {
        self.hook(node, AdminOp::Reorder { max_delay_ms, seed })
    }

    fn reorder_counts(&self, node: NodeId) -> Option<(u64, u64)> {
        let status = status::status(self.addr(node), PROBE_TIMEOUT).ok()?;
        Some((status.reorder.held, status.reorder.copied))
    }
}

impl RunView {
    /// An admin hook asked of node `node` itself, which answers at once (unless paused).
    fn hook(&self, node: NodeId, op: AdminOp) -> Result<(), String> {
        let mut client = self.client(Some(node), HOOK_TIMEOUT);
        let deadline = tokio::time::Instant::now() + HOOK_TIMEOUT;
        match self.block_on(client.admin_at(node, op, deadline))? {
            AdminOutcome::Done(_) => Ok(()),
            AdminOutcome::Refused { reason, .. } => Err(reason),
            AdminOutcome::Unknown(reason) => Err(reason),
        }
    }
}

impl Operator for RunView {
    fn joining_node(&self, id: NodeId, members: &[NodeId]) -> Result<NodeSpec, String> {
        let data = self.disks.add(id).map_err(|e| format!("{e:#}"))?;
        Ok(self.cluster.spec_joining_on(id, members, &data))
    }

    fn change(&self, change: MemberChange) -> ChangeAnswer {
        let op = self.admin_op(change);
        let mut client = self.client(None, CHANGE_TIMEOUT);
        let deadline = tokio::time::Instant::now() + CHANGE_WAIT;
        match self.block_on(client.admin_until(op, deadline)) {
            Ok(outcome) => self.answer(outcome),
            Err(why) => ChangeAnswer::Refused(why),
        }
    }

    fn change_at(&self, at: NodeId, change: MemberChange, timeout: Duration) -> ChangeAnswer {
        let op = self.admin_op(change);
        let mut client = self.client(Some(at), timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        match self.block_on(client.admin_at(at, op, deadline)) {
            Ok(outcome) => self.answer(outcome),
            Err(why) => ChangeAnswer::Refused(why),
        }
    }

    /// The leader's configuration once no change is in flight (waiting up to a few seconds for
    /// one to finish); the roster follows it.
    fn configuration(&self) -> Option<Configuration> {
        for _ in 0..20 {
            let Some(status) = status::leader_status(&self.roster.nodes(), PROBE_TIMEOUT) else {
                std::thread::sleep(Duration::from_millis(250));
                continue;
            };
            let membership = status.membership;
            if membership.changing {
                std::thread::sleep(Duration::from_millis(250));
                continue;
            }
            self.follow(&membership);
            return Some(Configuration {
                voters: membership.voters,
                learners: membership.learners,
            });
        }
        None
    }

    fn wipe(&self, id: NodeId) -> Result<(), String> {
        self.roster.remove(id);
        self.disks.wipe(id).map_err(|e| format!("{e:#}"))
    }
}
