//! The stall fault's actions, as part of [`super::Nemesis`]: the leader of the moment is frozen
//! while cut off from its peers, and woken while it is still cut off.
//!
//! Why both at once: a paused leader alone wakes up to its peers' queued messages (a vote
//! request, the new leader's heartbeats, all of a higher term) and steps down within a
//! millisecond; an isolated leader alone keeps its clock running, so whatever it believes about
//! time (a lease, a check-quorum deadline) expires on schedule. A leader frozen by a long GC or
//! a VM migration on a network that is also failing gets neither: when it wakes, its timers
//! think no time has passed and no message tells it otherwise. For `awake_ms` it runs alone,
//! with its clients still connected (a partition cuts node-to-node links only), while a new
//! leader has been taking writes for seconds. A node that answers reads from a lease it did
//! not re-check against a real clock (`lease-read-unsafe`) serves stale values then; a correct
//! one steps down (check-quorum) or cannot confirm a read (ReadIndex needs a majority).
//!
//! Start: SIGSTOP, then the DROP rules that cut the node from every other (the event's `rules`).
//! Stop: SIGCONT, then `awake_ms` (at most [`crate::spec::MAX_STALL_AWAKE_MS`]) with the rules in
//! place, then the flush. The stop blocks the nemesis thread for that long, without holding the
//! nemesis's lock. A stall holds the process and the network classes of `--nemesis-overlap`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Nemesis;
use crate::error::Result;
use crate::event::NemesisEvent;
use crate::firewall::Rule;
use crate::schedule::Plan;
use crate::supervisor::Pid;
use crate::NodeId;

impl Nemesis {
    /// A stall's start: the plan's node paused (into `done` and the event's `pids`), then cut
    /// off by the plan's rules. A node that cannot be paused is noted and not cut off either: a running leader
    /// that is merely isolated is what `partition:isolate-leader` does.
    pub(super) fn stall_start(
        &self,
        plan: &Plan,
        event: &mut NemesisEvent,
        done: &mut BTreeMap<NodeId, Pid>,
    ) -> Result<()> {
        let firewall = self.firewall_for(plan)?;
        for &id in plan.stopped_nodes() {
            match self.supervisor.pause(id) {
                Ok(pid) => {
                    done.insert(id, pid);
                }
                Err(e) => event.add_error(e),
            }
        }
        event.pids = done.clone();
        if done.is_empty() {
            return Ok(());
        }
        let rules: Vec<Rule> = plan.rules();
        match firewall.apply(&rules) {
            Ok(commands) => event.rules = commands,
            Err(e) => {
                event.add_error(&e);
                if let Err(e) = firewall.heal() {
                    event.add_error(e);
                }
            }
        }
        Ok(())
    }

    /// SIGCONT for each of `paused` (a pause's stop, and a stall's), the pids into the event.
    pub(super) fn resume_paused(&self, paused: &BTreeMap<NodeId, Pid>, event: &mut NemesisEvent) {
        for &id in paused.keys() {
            match self.supervisor.resume(id) {
                Ok(pid) => {
                    event.pids.insert(id, pid);
                }
                Err(e) => event.add_error(e),
            }
        }
    }

    /// A stall's stop: the paused nodes resumed, `awake_ms` with the cut in place, then the
    /// run's chain flushed (the flush command goes into the event's `rules`).
    pub(super) fn stall_stop(
        &self,
        awake_ms: u16,
        paused: &BTreeMap<NodeId, Pid>,
        event: &mut NemesisEvent,
    ) {
        self.resume_paused(paused, event);
        if !event.pids.is_empty() {
            let awake = awake_ms.min(crate::spec::MAX_STALL_AWAKE_MS);
            std::thread::sleep(Duration::from_millis(u64::from(awake)));
        }
        match self.firewall.as_ref().map(|f| f.heal()) {
            Some(Ok(command)) => event.rules = vec![command],
            Some(Err(e)) => event.add_error(e),
            None => {}
        }
    }
}
