//! The nemesis at run time: start a fault, wait, stop it, wait, and so on; heal everything at the end.
//!
//! [`Nemesis::run`] is a blocking loop meant for a thread of its own. Every `interval` it either
//! starts the next fault of the [`Schedule`] or stops the active one, so faults and quiet periods
//! alternate, and it reports every start and stop as a [`NemesisEvent`] for the history. When the
//! [`Shutdown`] is triggered it stops the active fault (reporting that too) and returns.
//!
//! At the end of a run, [`Nemesis::heal_all`] makes sure nothing is left: it flushes the run's
//! chain, resumes every paused node and restarts every killed one, whatever state the loop was in.
//! Dropping the nemesis does the same, so an error or a panic that unwinds past it still heals.
//!
//! The leader, for `kill:leader`, `pause:leader`, `isolate-leader`, comes from a [`ClusterView`]
//! that the runner implements with the node's status request (this crate does not speak the node
//! protocol); so does the leadership transfer of `transfer-leader`
//! ([`ClusterView::transfer_leader`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::disk::Disks;
use crate::error::{Error, Result};
pub use crate::event::{FaultName, NemesisEvent, Phase};
use crate::firewall::Firewall;
use crate::membership::Operator;
use crate::schedule::{Plan, Schedule};
use crate::spec::{Family, NemesisSpec};
use crate::supervisor::{NodeState, Pid, Supervisor};
use crate::NodeId;

/// The default `--nemesis-interval`: long enough for a Raft cluster to elect a leader and serve a
/// burst of operations between faults (elections take a few hundred ms), short enough that a
/// minute-long test sees several faults.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// How the nemesis runs: the seed, the spec, the interval.
#[derive(Debug, Clone)]
pub struct NemesisConfig {
    /// The run's seed; the schedule is a pure function of it, the spec and the node ids.
    pub seed: u64,
    /// Which faults.
    pub spec: NemesisSpec,
    /// Time between a start and its stop, and between a stop and the next start.
    pub interval: Duration,
    /// Let two faults of different classes (process, network, membership) overlap. See
    /// [`Nemesis::run`].
    pub overlap: bool,
    /// Vary every wait by up to this fraction of the interval, seeded (0: every wait is the
    /// interval). See [`crate::waits`].
    pub jitter: f64,
    /// Deal the spec's items from a shuffled deck instead of drawing each afresh
    /// ([`Schedule::dealt`]).
    pub deck: bool,
}

/// The nemesis of one run. Share it as `Arc<Nemesis>`: the loop runs on its own thread, the
/// runner calls [`Nemesis::heal_all`] at the end.
pub struct Nemesis {
    config: NemesisConfig,
    nodes: Vec<NodeId>,
    supervisor: Arc<Supervisor>,
    firewall: Option<Firewall>,
    view: Arc<dyn ClusterView>,
    disks: Option<Arc<dyn Disks>>,
    operator: Option<Arc<dyn Operator>>,
    state: Mutex<State>,
    /// Held by a rolling turn, and by the membership lane's turn that starts or stops an aimed
    /// change, so that an aimed change finds and leaves the cluster to itself (`turns.rs`).
    field: Mutex<()>,
}

struct State {
    /// What comes next: every fault, or with `overlap` and a mixed spec every fault but the
    /// membership changes, which come from `lane` (see `turns.rs`).
    schedule: Schedule,
    lane: Option<Schedule>,
    /// The faults in place, oldest first: at most one, or with `overlap` two of different
    /// classes.
    active: Vec<Active>,
    /// The nodes whose disks `corrupt` damaged: each at most once, at most a minority in all.
    damaged: std::collections::BTreeSet<NodeId>,
    /// The voters now: the planned nodes until the membership fault changes them. Every fault
    /// draws its nodes from these.
    members: Vec<NodeId>,
    /// The id the next new node gets: above every id used so far.
    next_id: NodeId,
}

#[path = "cluster_view.rs"]
mod cluster_view;
#[path = "disjoint.rs"]
mod disjoint;
#[path = "disk_faults.rs"]
mod disk_faults;
pub use cluster_view::{ClusterView, NoLeader, Shutdown};
#[path = "reconfigure.rs"]
mod reconfigure;
#[path = "reorder.rs"]
mod reorder;
#[path = "slow_apply.rs"]
mod slow_apply;
#[path = "stale_candidate.rs"]
pub mod stale_candidate;
#[path = "stall.rs"]
mod stall;
#[path = "stranded.rs"]
mod stranded;
#[path = "transfer.rs"]
mod transfer;
#[path = "turns.rs"]
mod turns;
pub use transfer::TransferAnswer;

/// The fault in place, and the nodes it really reached (with their pids).
struct Active {
    plan: Plan,
    done: BTreeMap<NodeId, Pid>,
}

impl Nemesis {
    /// A nemesis over the supervisor's nodes.
    ///
    /// `firewall` is needed for partition and loss; without one, a spec that asks for them is
    /// refused with one line and the fix ([`Error::NetworkFaultsUnavailable`]), while kill and
    /// pause work. Fails also if a fault of the spec cannot be built on this many nodes.
    pub fn new(
        config: NemesisConfig,
        supervisor: Arc<Supervisor>,
        firewall: Option<Firewall>,
        view: Arc<dyn ClusterView>,
    ) -> Result<Nemesis> {
        if config.spec.needs_network() && firewall.is_none() {
            return Err(Error::NetworkFaultsUnavailable {
                spec: config.spec.to_string(),
            });
        }
        let nodes = supervisor.ids();
        let mut schedule = Schedule::new(config.seed, &config.spec, &nodes)?;
        if config.deck {
            schedule = schedule.dealt();
        }
        let lane = match config.overlap {
            true => schedule.split_membership(config.seed),
            false => None,
        };
        let next_id = nodes.iter().max().map_or(1, |max| max + 1);
        Ok(Nemesis {
            config,
            supervisor,
            firewall,
            view,
            disks: None,
            operator: None,
            state: Mutex::new(State {
                schedule,
                lane,
                active: Vec::new(),
                damaged: Default::default(),
                members: nodes.clone(),
                next_id,
            }),
            field: Mutex::new(()),
            nodes,
        })
    }

    /// The nodes' disks, for `power-cut` and `corrupt` (without them those faults fail, saying
    /// so in their events).
    pub fn with_disks(mut self, disks: Arc<dyn Disks>) -> Nemesis {
        self.disks = Some(disks);
        self
    }

    /// The runner's part of membership changes, for `membership` (without it that fault does
    /// nothing, saying so in its events).
    pub fn with_operator(mut self, operator: Arc<dyn Operator>) -> Nemesis {
        self.operator = Some(operator);
        self
    }

    /// The planned nodes: those the supervisor had when the nemesis was made. Faults are drawn
    /// from [`Nemesis::members`], which membership changes move away from these.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// The firewall, if network faults are possible.
    pub fn firewall(&self) -> Option<&Firewall> {
        self.firewall.as_ref()
    }

    /// The supervisor of the nodes.
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.supervisor
    }

    /// The newest fault in place, if any.
    pub fn active(&self) -> Option<Plan> {
        self.lock().active.last().map(|a| a.plan.clone())
    }

    /// Every fault in place, oldest first.
    pub fn active_plans(&self) -> Vec<Plan> {
        self.lock().active.iter().map(|a| a.plan.clone()).collect()
    }

    /// Starts this fault now. Partial failures (a node that already died, a rule that did not
    /// apply) are reported in the event's `error`; a failed rule set is flushed at once so no
    /// half partition stays.
    pub fn start(&self, plan: Plan) -> Result<NemesisEvent> {
        let began = std::time::Instant::now();
        let mut event = self.start_now(plan)?;
        event.took_ms = Some(began.elapsed().as_millis() as u64);
        Ok(event)
    }

    /// Starts a transfer-leader, slow-apply or reorder plan, whose requests to the cluster take time,
    /// without holding the lock.
    fn start_unlocked(&self, plan: Plan) -> NemesisEvent {
        let mut event = NemesisEvent::describe(&plan, Phase::Start);
        let done = match &plan {
            Plan::SlowApply {
                nodes, delay_ms, ..
            } => self.slow_apply_start(nodes, *delay_ms, &mut event),
            Plan::Reorder { max_delay_ms, seed } => {
                self.reorder_start(*max_delay_ms, *seed, &mut event)
            }
            Plan::TransferLeader { draw } => {
                self.transfer_leader(*draw, &mut event);
                BTreeMap::new()
            }
            _ => unreachable!("only transfer-leader, slow-apply and reorder start unlocked"),
        };
        tracing::info!(value = %event.value(), "nemesis start");
        self.lock().active.push(Active { plan, done });
        event
    }

    fn start_now(&self, plan: Plan) -> Result<NemesisEvent> {
        let mut state = self.lock();
        self.check_clash(&state, &plan)?;
        if let Plan::Membership { change, draw, .. } = plan {
            // Admin requests take seconds: not under the lock, as for a transfer.
            drop(state);
            let mut event = NemesisEvent::describe(&plan, Phase::Start);
            let mut removed = BTreeMap::new();
            self.membership_start(change, draw, &mut event, &mut removed);
            tracing::info!(value = %event.value(), "nemesis start");
            self.lock().active.push(Active {
                plan,
                done: removed,
            });
            return Ok(event);
        }
        if matches!(
            plan,
            Plan::TransferLeader { .. } | Plan::SlowApply { .. } | Plan::Reorder { .. }
        ) {
            // A transfer takes up to the client's timeout, a slowed node's answer as much:
            // not under the lock, which the progress bar takes to show the fault in place.
            // Only the rolling turns start these (the membership lane starts only changes).
            drop(state);
            return Ok(self.start_unlocked(plan));
        }
        let mut event = NemesisEvent::describe(&plan, Phase::Start);
        let mut done = BTreeMap::new();
        match &plan {
            Plan::Kill { nodes, .. } | Plan::Pause { nodes, .. } => {
                let kill = plan.family() == Family::Kill;
                for &id in nodes {
                    let result = if kill {
                        self.supervisor.kill(id)
                    } else {
                        self.supervisor.pause(id)
                    };
                    match result {
                        Ok(pid) => {
                            done.insert(id, pid);
                        }
                        Err(e) => event.add_error(e),
                    }
                }
                event.pids = done.clone();
            }
            Plan::Restart { nodes, .. } => self.crash_and_restart(nodes, &mut event),
            Plan::Stall { .. } => self.stall_start(&plan, &mut event, &mut done)?,
            Plan::PowerCut { nodes, cut, .. } => {
                self.cut_power(nodes, *cut, &mut event, &mut done)?;
                event.pids = done.clone();
            }
            Plan::Corrupt { nodes, seed, .. } => {
                self.corrupt_disks(&mut state.damaged, nodes, *seed, &mut event, &mut done)?;
                event.pids = done.clone();
            }
            // Started above, without the lock; these arms are only for completeness.
            Plan::TransferLeader { draw } => self.transfer_leader(*draw, &mut event),
            Plan::Membership { .. } | Plan::SlowApply { .. } | Plan::Reorder { .. } => {}
            Plan::Partition(_)
            | Plan::Loss { .. }
            | Plan::Delay { .. }
            | Plan::StaleCandidate { .. } => {
                let firewall = self.firewall_for(&plan)?;
                match firewall.apply(&plan.rules()) {
                    Ok(commands) => event.rules = commands,
                    Err(e) => {
                        event.add_error(&e);
                        if let Err(e) = firewall.heal() {
                            event.add_error(e);
                        }
                    }
                }
            }
        }
        tracing::info!(value = %event.value(), "nemesis start");
        state.active.push(Active { plan, done });
        Ok(event)
    }

    /// Refuses a start while a fault of the same class (or, without overlap, any fault) is in
    /// place.
    fn check_clash(&self, state: &State, plan: &Plan) -> Result<()> {
        let clash = state
            .active
            .iter()
            .find(|a| !self.config.overlap || a.plan.clashes_with(plan));
        match clash {
            Some(active) => Err(Error::FaultActive {
                new: plan.family().to_string(),
                active: active.plan.family().to_string(),
            }),
            None => Ok(()),
        }
    }

    /// A restart's start: each node SIGKILLed and started again at once, on the same data dir.
    /// The killed pids go into `pids`, the new ones into `restarted`.
    fn crash_and_restart(&self, nodes: &[NodeId], event: &mut NemesisEvent) {
        for &id in nodes {
            match self.supervisor.kill(id) {
                Ok(pid) => {
                    event.pids.insert(id, pid);
                }
                Err(e) => {
                    event.add_error(e);
                    continue;
                }
            }
            match self.supervisor.restart(id) {
                Ok(pid) => {
                    event.restarted.insert(id, pid);
                }
                Err(e) => event.add_error(e),
            }
        }
    }

    /// Stops the oldest active fault: restarts the killed nodes, resumes the paused ones, or
    /// flushes the rules. `None` if no fault is active.
    pub fn stop_active(&self) -> Option<NemesisEvent> {
        self.stop_first(|_| true)
    }

    /// Stops the oldest fault in place that `which` picks (as [`Nemesis::stop_active`] does).
    fn stop_first(&self, which: impl Fn(&Plan) -> bool) -> Option<NemesisEvent> {
        let began = std::time::Instant::now();
        let mut event = self.stop_oldest(which)?;
        event.took_ms = Some(began.elapsed().as_millis() as u64);
        Some(event)
    }

    fn stop_oldest(&self, which: impl Fn(&Plan) -> bool) -> Option<NemesisEvent> {
        let mut state = self.lock();
        let index = state.active.iter().position(|a| which(&a.plan))?;
        let Active { plan, done } = state.active.remove(index);
        let mut event = NemesisEvent::describe(&plan, Phase::Stop);
        // Stops that ask the cluster, and take time: not under the lock.
        if let Plan::Membership { .. } | Plan::Reorder { .. } | Plan::SlowApply { .. } = plan {
            drop(state);
            match plan {
                Plan::Membership {
                    change, stop_draw, ..
                } => self.membership_stop(change, stop_draw, &done, &mut event),
                Plan::Reorder { .. } => self.reorder_stop(&done, &mut event),
                _ => self.slow_apply_stop(&done, &mut event),
            }
            tracing::info!(value = %event.value(), "nemesis stop");
            return Some(event);
        }
        // Nodes the membership fault removed meanwhile are not brought back.
        let members = state.members.clone();
        let (done, gone): (BTreeMap<NodeId, Pid>, BTreeMap<NodeId, Pid>) = done
            .into_iter()
            .partition(|(id, _)| members.contains(id) && !self.is_removed(*id));
        if !gone.is_empty() {
            let gone: Vec<String> = gone.keys().map(|id| format!("n{id}")).collect();
            event.add_note(format!(
                "{} removed from the cluster meanwhile",
                gone.join(", ")
            ));
        }
        match &plan {
            Plan::Pause { .. } => self.resume_paused(&done, &mut event),
            Plan::Kill { .. } | Plan::PowerCut { .. } | Plan::Corrupt { .. } => {
                for &id in done.keys() {
                    match self.supervisor.restart(id) {
                        Ok(pid) => {
                            event.pids.insert(id, pid);
                        }
                        Err(e) => event.add_error(e),
                    }
                }
                if plan.family() != Family::Kill {
                    drop(state);
                    let ids: Vec<NodeId> = done.keys().copied().collect();
                    event.disks = self.refusals(&ids);
                }
            }
            Plan::Stall { awake_ms, .. } => {
                // The woken node runs alone for a while: not under the lock.
                drop(state);
                self.stall_stop(*awake_ms, &done, &mut event);
            }
            Plan::StaleCandidate { nodes, hold_ms, .. } => {
                // The lagging node runs for election for a while: not under the lock.
                drop(state);
                self.stale_candidate_stop(nodes[0], *hold_ms, &members, &mut event);
            }
            // Restarted at its start, or leadership moved: nothing is left to undo.
            Plan::Restart { .. } | Plan::TransferLeader { .. } => {}
            Plan::Membership { .. } | Plan::SlowApply { .. } | Plan::Reorder { .. } => {
                unreachable!("stopped above")
            }
            Plan::Partition(_) | Plan::Loss { .. } | Plan::Delay { .. } => {
                match self.firewall.as_ref().map(Firewall::heal) {
                    Some(Ok(command)) => event.rules = vec![command],
                    Some(Err(e)) => event.add_error(e),
                    None => {}
                }
            }
        }
        tracing::info!(value = %event.value(), "nemesis stop");
        Some(event)
    }

    /// Heals everything, whatever state the loop left: stops the active fault, then flushes the
    /// run's chain, resumes every paused node and restarts every killed one. Returns the events to
    /// record (none if nothing was in place). Nodes that exited on their own are left as they are,
    /// for the runner to see in [`Supervisor::statuses`].
    ///
    /// With a membership fault in the spec it then brings the voters back to the planned count
    /// (new nodes added or extra ones removed, leftover learners removed), so that the final
    /// reads and the replica comparison see the cluster the run was planned with.
    pub fn heal_all(&self) -> Vec<NemesisEvent> {
        let mut events = self.heal_faults();
        events.extend(self.restore_membership());
        events
    }

    /// [`Nemesis::heal_all`] without the membership restore: what `Drop` does, and what a runner
    /// calls first when it restarts the nodes that exited on their own before the restore
    /// ([`Nemesis::restore_membership`]), so that the restore finds the whole cluster.
    pub fn heal_faults(&self) -> Vec<NemesisEvent> {
        let mut events: Vec<NemesisEvent> = std::iter::from_fn(|| self.stop_active()).collect();
        let _state = self.lock();
        let mut sweep = NemesisEvent::new(Phase::Stop, FaultName::Heal);
        if let Some(firewall) = &self.firewall {
            let had_rules = !firewall.rules().is_empty();
            match firewall.heal() {
                Ok(command) if had_rules => sweep.rules.push(command),
                Ok(_) => {}
                Err(e) => sweep.add_error(e),
            }
        }
        for status in self.supervisor.statuses() {
            let result = match status.state {
                NodeState::Paused => self.supervisor.resume(status.id),
                NodeState::Killed => self.supervisor.restart(status.id),
                _ => continue,
            };
            sweep.nodes.push(status.id);
            match result {
                Ok(pid) => {
                    sweep.pids.insert(status.id, pid);
                }
                Err(e) => sweep.add_error(e),
            }
        }
        if !sweep.rules.is_empty() || !sweep.nodes.is_empty() || sweep.error.is_some() {
            tracing::info!(value = %sweep.value(), "nemesis heal");
            events.push(sweep);
        }
        events
    }

    fn disks(&self) -> Result<&Arc<dyn Disks>> {
        self.disks.as_ref().ok_or(Error::DisksUnavailable)
    }

    fn firewall_for(&self, plan: &Plan) -> Result<&Firewall> {
        self.firewall
            .as_ref()
            .ok_or_else(|| Error::NetworkFaultsUnavailable {
                spec: plan.family().to_string(),
            })
    }

    /// The field, for a turn that must not run beside an aimed change's start or stop.
    fn hold_field(&self) -> MutexGuard<'_, ()> {
        self.field.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each change of the state is one assignment: a panic cannot leave it half-done, and the
        // heal on drop must still run.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Nemesis {
    fn drop(&mut self) {
        for event in self.heal_faults() {
            tracing::info!(value = %event.value(), "healed on drop");
        }
    }
}

impl std::fmt::Debug for Nemesis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nemesis")
            .field("config", &self.config)
            .field("nodes", &self.nodes)
            .field("firewall", &self.firewall.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::Rule;
    use crate::partition::{Grudge, PartitionKind};
    use crate::spec::Target;

    #[test]
    fn a_partition_event_serialises_as_the_history_value() {
        let mut grudge = Grudge::new();
        grudge.cut(1, 2);
        let plan = Plan::Partition(crate::Partition {
            kind: PartitionKind::One,
            groups: vec![vec![1], vec![2]],
            grudge,
        });
        let mut event = NemesisEvent::describe(&plan, Phase::Start);
        event.rules = plan.rules().iter().map(Rule::command).collect();
        assert_eq!(event.f.as_str(), "start");
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"fault":"partition","kind":"one","nodes":[1,2],"groups":[[1],[2]],"rules":["iptables -A riptide -s 127.0.0.12 -d 127.0.0.11 -j DROP","iptables -A riptide -s 127.0.0.11 -d 127.0.0.12 -j DROP"],"pids":{}}"#
        );
    }

    #[test]
    fn a_kill_event_names_target_nodes_and_pids() {
        let plan = Plan::Kill {
            target: Target::Leader,
            nodes: vec![3],
        };
        let mut event = NemesisEvent::describe(&plan, Phase::Stop);
        event.pids.insert(3, 4242);
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"fault":"kill","target":"leader","nodes":[3],"rules":[],"pids":{"3":4242}}"#
        );
    }

    #[test]
    fn a_loss_event_carries_its_probability() {
        let plan = Plan::Loss {
            target: Target::One,
            nodes: vec![1],
            probability: 0.2,
            links: Grudge::new(),
        };
        let event = NemesisEvent::describe(&plan, Phase::Start);
        assert_eq!(event.value()["probability"], 0.2);
        assert_eq!(event.value()["fault"], "loss");
    }

    #[test]
    fn shutdown_wakes_a_waiter_at_once() {
        let shutdown = Shutdown::new();
        assert!(!shutdown.wait(Duration::from_millis(1)));
        let waiter = {
            let shutdown = shutdown.clone();
            std::thread::spawn(move || shutdown.wait(Duration::from_secs(600)))
        };
        shutdown.trigger();
        assert!(waiter.join().unwrap());
        assert!(shutdown.is_triggered());
    }

    #[test]
    fn network_faults_without_a_firewall_are_refused_in_one_line() {
        let supervisor = Arc::new(Supervisor::new().unwrap());
        let config = NemesisConfig {
            seed: 1,
            spec: "kill,partition".parse().unwrap(),
            interval: DEFAULT_INTERVAL,
            overlap: false,
            jitter: 0.0,
            deck: false,
        };
        let err = Nemesis::new(config, supervisor, None, Arc::new(NoLeader)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--nemesis kill,partition needs iptables inside a private network namespace, which \
             this run does not have; fix: apt-get install iptables and run as root, or use \
             --nemesis kill,pause"
        );
    }

    #[test]
    fn a_closure_is_a_cluster_view() {
        let view: Arc<dyn ClusterView> = Arc::new(|| Some(3));
        assert_eq!(view.leader(), Some(3));
    }
}
