//! The slow-apply fault's actions, as part of [`super::Nemesis`]: ask each node of the plan,
//! through the [`super::ClusterView`], to hold its committed entries back for the delay before
//! it applies them, and at the stop to apply at once again.
//!
//! Once the nodes are slowed, leadership is handed to the first of them if the leader is not
//! one: a slow leader answers its writes only once it applied them, so it hides its lag; a
//! lagging node that takes the lead holds committed writes it has not applied yet, which is
//! where a read served before the apply catches up answers a stale value (etcd's and
//! hashicorp/raft's state machines apply asynchronously, and leadership moves in operations).
//! The handover is recorded in the event's `transfer`.
//!
//! The delay is the node's own test hook (an admin request it answers at once), not a process
//! or network fault: a node that restarts meanwhile forgets it, and the stop finds nothing to
//! undo there. A node that cannot be asked (killed, paused past the request's timeout) is noted
//! in the event's `error` and left out of the fault.

use std::collections::BTreeMap;

use super::Nemesis;
use crate::event::{NemesisEvent, Transfer, TransferOutcome};
use crate::supervisor::Pid;
use crate::NodeId;

impl Nemesis {
    /// A slow-apply start: each of `nodes` asked for the delay. Returns the nodes that took it,
    /// with their pids (also the event's `pids`).
    pub(super) fn slow_apply_start(
        &self,
        nodes: &[NodeId],
        delay_ms: u16,
        event: &mut NemesisEvent,
    ) -> BTreeMap<NodeId, Pid> {
        let mut slowed = BTreeMap::new();
        for &id in nodes {
            let Some(pid) = self.supervisor.pid(id) else {
                event.add_error(format!("n{id} is not running: not slowed"));
                continue;
            };
            match self.view.slow_apply(id, u64::from(delay_ms)) {
                Ok(()) => {
                    slowed.insert(id, pid);
                }
                Err(why) => event.add_error(format!("n{id} not slowed: {why}")),
            }
        }
        event.pids = slowed.clone();
        self.hand_over_to_slowed(&slowed, event);
        slowed
    }

    /// Hands leadership to the first slowed node unless the leader is slowed itself (or none is
    /// known, or nothing was slowed): recorded in the event's `transfer`.
    fn hand_over_to_slowed(&self, slowed: &BTreeMap<NodeId, Pid>, event: &mut NemesisEvent) {
        let Some(&to) = slowed.keys().next() else {
            return;
        };
        let from = self.view.leader();
        if from.is_some_and(|leader| slowed.contains_key(&leader)) {
            return;
        }
        let (outcome, reason) = match from {
            Some(_) => self.ask_transfer(to),
            None => (
                TransferOutcome::NoLeader,
                Some("no leader known: nothing to transfer".to_string()),
            ),
        };
        event.transfer = Some(Transfer {
            from,
            to: from.map(|_| to),
            outcome,
            reason,
        });
    }

    /// A slow-apply stop: each node that took the delay asked to apply at once again, unless it
    /// restarted meanwhile (a new pid: it forgot the delay).
    pub(super) fn slow_apply_stop(&self, slowed: &BTreeMap<NodeId, Pid>, event: &mut NemesisEvent) {
        for (&id, &pid) in slowed {
            if self.supervisor.pid(id) != Some(pid) {
                event.add_note(format!("n{id} restarted meanwhile: its delay is gone"));
                continue;
            }
            match self.view.slow_apply(id, 0) {
                Ok(()) => {
                    event.pids.insert(id, pid);
                }
                Err(why) => event.add_error(format!("n{id} still slowed: {why}")),
            }
        }
    }
}
