//! `riptide client add-node | promote | remove-node | replace-node | transfer-leader | members`:
//! an operator's membership changes, through the leader's admin requests.
//!
//! `add-node` and `replace-node` do what an operator does by hand: add the new node as a
//! learner, wait while the leader refuses to promote it because it is still catching up (the
//! leader's bound, `promote_lag_entries`), then promote it (or swap it in for the removed
//! voter, in one joint change). Every step waits for its change to commit; a refusal the leader
//! marks retryable (a learner behind, another change in flight, a leader new to its term) is
//! retried until `--wait-ms`.
//!
//! Exit codes: 0 done, 1 refused (nothing changed by the refused step), 2 unknown outcome.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use riptide_proto::{AdminOp, NodeId, MAX_NODE_ID};
use riptide_workload::{AdminOutcome, Client, ClientOptions};

use crate::exit::{self, Exit};

/// The admin subcommands of `riptide client`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum AdminCommand {
    /// Add node ID (started with `riptide-node --join`) as a learner, wait for it to catch up,
    /// and promote it to voter. ADDR defaults to the address rule, 127.0.0.(10+ID):PORT.
    AddNode {
        id: NodeId,
        #[arg(long)]
        addr: Option<SocketAddr>,
        /// Stop once it is a learner (no promotion).
        #[arg(long)]
        learner: bool,
    },
    /// Make learner ID a voter (retried while it is still catching up).
    Promote { id: NodeId },
    /// Remove voter or learner ID. The leader removing itself steps down once it commits.
    RemoveNode { id: NodeId },
    /// Replace voter REMOVE by node ADD in one joint change: ADD is first added as a learner
    /// (unless it is one) and caught up.
    ReplaceNode {
        remove: NodeId,
        add: NodeId,
        #[arg(long)]
        addr: Option<SocketAddr>,
    },
    /// Hand leadership to voter TO.
    TransferLeader { to: NodeId },
    /// Print the configuration the leader has committed: voters, learners, the joint state.
    Members,
}

/// How long a multi-step change keeps retrying retryable refusals, and the port of the
/// address rule.
pub struct AdminContext {
    pub client: ClientOptions,
    pub wait: Duration,
    pub port: u16,
}

/// Runs one admin command; prints each step. Returns the exit code.
pub fn run(command: &AdminCommand, ctx: AdminContext) -> Result<u8, Exit> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::crashed(e.to_string()))?;
    let steps = steps(command, &ctx)?;
    let deadline = Instant::now() + ctx.wait;
    let mut client = Client::new(ctx.client, rand::random::<u64>() | 1);
    runtime.block_on(async {
        let mut code = 0;
        for (step, optional) in steps {
            match client
                .admin_until(step.clone(), tokio::time::Instant::from_std(deadline))
                .await
            {
                AdminOutcome::Done(done) => println!(
                    "{}: done; {} (leader {})",
                    step.describe(),
                    done.membership.describe(),
                    done.leader.map_or("unknown".into(), |l| format!("n{l}"))
                ),
                // Adding a learner that already is one: go on to the next step.
                AdminOutcome::Refused { reason, .. } if optional && reason.contains("already") => {
                    println!("{}: skipped ({reason})", step.describe())
                }
                AdminOutcome::Refused { reason, .. } => {
                    println!("{}: refused: {reason}", step.describe());
                    code = exit::INVALID;
                    break;
                }
                AdminOutcome::Unknown(reason) => {
                    println!("{}: unknown outcome: {reason}", step.describe());
                    code = exit::UNKNOWN;
                    break;
                }
            }
        }
        Ok(code)
    })
}

/// The admin requests `command` takes, in order, each marked whether "already a member" may
/// skip it.
fn steps(command: &AdminCommand, ctx: &AdminContext) -> Result<Vec<(AdminOp, bool)>, Exit> {
    let addr_of = |id: NodeId, addr: &Option<SocketAddr>| -> Result<String, Exit> {
        if let Some(addr) = addr {
            return Ok(addr.to_string());
        }
        if !(1..=MAX_NODE_ID).contains(&id) {
            return Err(Exit::bad_args(format!(
                "node {id} has no address by the rule 127.0.0.(10+ID) (ids 1..={MAX_NODE_ID}); give --addr"
            )));
        }
        Ok(riptide_proto::node_addr(id, ctx.port).to_string())
    };
    Ok(match command {
        AdminCommand::AddNode { id, addr, learner } => {
            let add = AdminOp::AddLearner {
                id: *id,
                addr: addr_of(*id, addr)?,
            };
            match learner {
                true => vec![(add, false)],
                false => vec![(add, true), (AdminOp::Promote { id: *id }, false)],
            }
        }
        AdminCommand::Promote { id } => vec![(AdminOp::Promote { id: *id }, false)],
        AdminCommand::RemoveNode { id } => vec![(AdminOp::Remove { id: *id }, false)],
        AdminCommand::ReplaceNode { remove, add, addr } => {
            let addr = addr_of(*add, addr)?;
            vec![
                (
                    AdminOp::AddLearner {
                        id: *add,
                        addr: addr.clone(),
                    },
                    true,
                ),
                (
                    AdminOp::Replace {
                        add: *add,
                        addr: Some(addr),
                        remove: *remove,
                    },
                    false,
                ),
            ]
        }
        AdminCommand::TransferLeader { to } => vec![(AdminOp::TransferLeader { to: *to }, false)],
        AdminCommand::Members => Vec::new(),
    })
}

/// `riptide client members`: the leader's configuration (or, with no leader, each node's).
/// Exit 0 if a leader answered, else 1.
pub fn print_members(nodes: &[(NodeId, SocketAddr)], timeout: Duration) -> u8 {
    let mut seen = Vec::new();
    for (id, addr) in nodes {
        match crate::cluster::status::status(*addr, timeout) {
            Ok(status) if status.role == riptide_proto::Role::Leader => {
                let m = &status.membership;
                println!("leader n{id} (term {}): {}", status.term, m.describe());
                for (member, addr) in &m.addresses {
                    println!("  n{member}  {addr}");
                }
                return 0;
            }
            Ok(status) => seen.push(format!(
                "n{id}: {:?}, {}",
                status.role,
                status.membership.describe()
            )),
            Err(err) => seen.push(format!("n{id}: unreachable ({err})")),
        }
    }
    println!("no leader among the nodes asked:");
    for line in seen {
        println!("  {line}");
    }
    exit::INVALID
}
