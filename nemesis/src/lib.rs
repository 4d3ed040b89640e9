//! riptide-nemesis: the faults of a riptide run, and the sandbox they happen in.
//!
//! A Jepsen-style test is only as good as its nemesis: the part that breaks things while clients
//! work, so the checker can see whether the system under test kept its promises. This crate breaks
//! a riptide cluster in ten ways and records every break:
//!
//! | fault | how | what the nodes see |
//! |---|---|---|
//! | `kill` | `SIGKILL` the exact pid, restart later on the same data dir | a crash: connections reset, unflushed state lost, recovery from disk |
//! | `pause` | `SIGSTOP`, later `SIGCONT` | a frozen node: connects hang in the backlog, requests time out, then it wakes up stale |
//! | `partition` | iptables `DROP` on (source, destination) node addresses | silence: packets vanish, connects time out, the cluster splits |
//! | `loss` | iptables `statistic` match, random drops | a bad network: retransmissions, slow links, occasional timeouts |
//! | `delay` | iptables `NFQUEUE` to a thread of the runner ([`delay`]) that holds each link's packets 1..=MS ms (seeded per link), in order | a slow, uneven network: late heartbeats, votes that race, AppendEntries that arrive after the leader moved on |
//! | `power-cut` | `SIGKILL`, then the disk (riptide-faultfs) drops what was not fsynced; restart later | a power failure: unsynced writes, creates and renames gone |
//! | `corrupt` | `SIGKILL`, flip bits in or truncate one synced file of the data dir; restart later | bit rot: the node must repair safely or refuse to start |
//! | `restart` | `SIGKILL`, and start again at once on the same data dir | a crash a supervisor restarts: back within milliseconds, often mid-election |
//! | `transfer-leader` | ask the leader (admin request) to hand leadership to another node, drawn at random | a planned leadership change: the old leader steps down, the target campaigns at once |
//! | `membership` | grow, shrink or replace voters through admin requests: fresh nodes join as learners and are promoted, removed ones are killed and wiped ([`membership`]); `stranded` asks a replace of a leader just cut off with a majority of C_new but not of C_old; `disjoint` asks two leaders of an even-sized configuration for two single-server changes with disjoint majorities, the second before it has committed in its term | joint consensus under load and in its joint phase, a removed leader stepping down, removed nodes that keep running, clients following members they never knew |
//!
//! # The parts, one module each
//!
//! - [`sandbox`]: the run's private network namespace (own loopback, own iptables), entered before
//!   any thread starts; [`sandbox::run_isolated`] gives tests the same on one thread.
//! - [`supervisor`]: starts the node processes, keeps their exact pids, kills, restarts, pauses
//!   and resumes them; nodes never outlive the runner.
//! - [`firewall`]: rules as data ([`Rule`]) with their exact iptables command, applied in the
//!   run's own chain; healing is one flush.
//! - [`partition`]: partition shapes as pure functions to a [`Grudge`] (who stops hearing whom).
//! - [`spec`]: the `--nemesis` syntax ([`NemesisSpec`]).
//! - [`schedule`]: the seeded fault sequence ([`Schedule`] of [`Plan`]s), a pure function of seed,
//!   spec and nodes.
//! - [`membership`]: the membership fault's changes and the runner's part in them
//!   ([`Operator`]).
//! - [`disk`]: power cuts ([`Disks`], implemented by the runner on its FUSE mounts) and the
//!   seeded damage of `corrupt`.
//! - [`nemesis`]: the loop that starts and stops faults every interval and reports each as a
//!   [`NemesisEvent`]; the final [`Nemesis::heal_all`].
//!
//! # How a runner uses it
//!
//! ```no_run
//! use std::sync::Arc;
//! use riptide_nemesis::{sandbox, Firewall, Nemesis, NemesisConfig, NodeSpec, Supervisor};
//! use riptide_nemesis::{ClusterView, Shutdown, DEFAULT_INTERVAL};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // 1. First thing in main, before tokio or any other thread: the private namespace.
//!     let spec: riptide_nemesis::NemesisSpec = "all".parse()?;
//!     let sandbox = sandbox::enter()?; // or, without one, only kill and pause: spec.without_network()
//!     // (now build the tokio runtime: its threads are inside the namespace too)
//!
//!     // 2. The nodes, each with its own data dir and log.
//!     let supervisor = Arc::new(Supervisor::new()?);
//!     for id in 1..=5 {
//!         let node = NodeSpec::new(id, "target/release/riptide-node", format!("run/nodes/n{id}.log"))
//!             .args(["--id", &id.to_string(), "--data-dir", &format!("run/data/n{id}")]);
//!         supervisor.spawn(node)?;
//!     }
//!
//!     // 3. The nemesis, on a thread of its own, reporting into the history.
//!     let firewall = if spec.needs_network() { Some(Firewall::install(&sandbox)?) } else { None };
//!     let leader: Arc<dyn ClusterView> = Arc::new(|| None); // the runner asks the nodes' status
//!     let config = NemesisConfig { seed: 42, spec, interval: DEFAULT_INTERVAL, overlap: false, jitter: 0.0, deck: false };
//!     let nemesis = Arc::new(Nemesis::new(config, supervisor.clone(), firewall, leader)?);
//!     let shutdown = Shutdown::new(); // trigger it on Ctrl-C and at the time limit
//!     let thread = std::thread::spawn({
//!         let (nemesis, shutdown) = (nemesis.clone(), shutdown.clone());
//!         move || {
//!             nemesis.run(&shutdown, &mut |event| {
//!                 // history: {"process":"nemesis","type":"info","f":event.f.as_str(),"value":event.value()}
//!                 println!("{} {}", event.f.as_str(), event.value());
//!             })
//!         }
//!     });
//!
//!     // ... the workload runs for the time limit ...
//!
//!     // 4. The end: stop the loop, heal everything, let the cluster recover, final reads.
//!     shutdown.trigger();
//!     thread.join().expect("nemesis thread");
//!     for event in nemesis.heal_all() {
//!         println!("{} {}", event.f.as_str(), event.value());
//!     }
//!     // ... wait for a leader, do the final reads ...
//!
//!     // 5. Drop: the nemesis (heals again, removes the chain), then the supervisor (kills nodes).
//!     drop(nemesis);
//!     drop(supervisor);
//!     Ok(())
//! }
//! ```
//!
//! # Cleanup guarantees
//!
//! | how the run ends | rules | paused nodes | node processes |
//! |---|---|---|---|
//! | normal exit, error, panic (unwinding) | flushed by [`Nemesis`]'s and [`Firewall`]'s `Drop` | resumed by [`Nemesis`]'s `Drop`, and again by [`Supervisor`]'s | SIGKILLed and reaped by [`Supervisor`]'s `Drop` |
//! | Ctrl-C | the runner turns it into a normal shutdown ([`Shutdown::trigger`]) | as above | as above |
//! | `kill -9` of the runner, abort | gone with the namespace, which the kernel destroys when its last process exits | SIGKILLed by the kernel (`PR_SET_PDEATHSIG`) | SIGKILLed by the kernel (`PR_SET_PDEATHSIG`) |
//!
//! No rule is ever added outside the run's namespace: the firewall checks, before each command,
//! that the calling thread is inside the sandbox.
//!
//! # What this crate leaves out
//!
//! Clock faults and fsync lies. It does not speak
//! the node protocol: the leader comes from a [`ClusterView`] that the runner implements, and
//! waiting for the cluster to recover after [`Nemesis::heal_all`] is the runner's job.

pub mod delay;
pub mod disk;
pub mod error;
pub mod event;
pub mod firewall;
pub mod membership;
pub mod nemesis;
pub mod partition;
mod plan;
pub mod sandbox;
pub mod schedule;
mod spawner;
pub mod spec;
mod spec_options;
pub mod supervisor;
pub mod waits;

pub use disk::{CutMode, Damage, DamageKind, Disks, PlainDisks};
pub use error::{Error, Result};
pub use event::{Reordered, Transfer, TransferOutcome};
pub use firewall::{Firewall, Rule, RuleKind};
pub use membership::{
    Change, ChangeAnswer, ChangeOutcome, Configuration, MemberChange, MembershipRecord, Operator,
};
pub use nemesis::{
    ClusterView, FaultName, Nemesis, NemesisConfig, NemesisEvent, NoLeader, Phase, Shutdown,
    TransferAnswer, DEFAULT_INTERVAL,
};
pub use partition::{Grudge, Partition, PartitionKind};
pub use sandbox::{Sandbox, SandboxMode};
pub use schedule::{Plan, Schedule};
pub use spec::{Class, Family, FaultSpec, NemesisSpec, Target};
pub use supervisor::{NodeSpec, NodeState, NodeStatus, Pid, Supervisor, Termination};
pub use waits::{Waits, MAX_JITTER};

/// A node's id: 1, 2, ... (the wire protocol's, from `riptide-proto`).
pub use riptide_proto::NodeId;

/// The address node `id` listens on and dials from: 127.0.0.(10 + id). The rule lives in
/// `riptide-proto` (with the panic for ids that have no address); partitions name nodes by it.
pub use riptide_proto::node_ip;

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn node_addresses() {
        assert_eq!(node_ip(1), Ipv4Addr::new(127, 0, 0, 11));
        assert_eq!(node_ip(245), Ipv4Addr::new(127, 0, 0, 255));
        assert!(std::panic::catch_unwind(|| node_ip(0)).is_err());
        assert!(std::panic::catch_unwind(|| node_ip(246)).is_err());
    }
}
