//! The reorder fault's actions, as part of [`super::Nemesis`]: ask every member, through the
//! [`super::ClusterView`], to have its transport hold back and duplicate peer messages at
//! random (the node's `reorder` hook; why the node does it and not iptables is in the node's
//! `server::reorder` docs), and at the stop to send everything at once again.
//!
//! Each node draws from the plan's seed mixed with its id, so a run's seed fixes the draws of
//! every link. A node that restarts meanwhile forgets the setting, and the stop leaves it be; a
//! node that cannot be asked (killed, paused past the request's timeout) is noted in the
//! event's `error` and left out of the fault.

use std::collections::BTreeMap;

use super::Nemesis;
use crate::event::{NemesisEvent, Reordered};
use crate::supervisor::Pid;
use crate::NodeId;

impl Nemesis {
    /// A reorder start: each member asked to reorder. Returns the members that took it, with
    /// their pids (also the event's `nodes` and `pids`).
    pub(super) fn reorder_start(
        &self,
        max_delay_ms: u16,
        seed: u64,
        event: &mut NemesisEvent,
    ) -> BTreeMap<NodeId, Pid> {
        let mut reordering = BTreeMap::new();
        for id in self.members() {
            let Some(pid) = self.supervisor.pid(id) else {
                event.add_error(format!("n{id} is not running: its messages go as they are"));
                continue;
            };
            let node_seed = seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            match self.view.reorder(id, u64::from(max_delay_ms), node_seed) {
                Ok(()) => {
                    reordering.insert(id, pid);
                }
                Err(why) => event.add_error(format!("n{id} does not reorder: {why}")),
            }
        }
        event.nodes = reordering.keys().copied().collect();
        event.pids = reordering.clone();
        reordering
    }

    /// A reorder stop: each node that took it asked to send at once again, unless it restarted
    /// meanwhile (a new pid: it forgot the setting); what each did goes into the event's
    /// `reordered` first.
    pub(super) fn reorder_stop(
        &self,
        reordering: &BTreeMap<NodeId, Pid>,
        event: &mut NemesisEvent,
    ) {
        event.nodes = reordering.keys().copied().collect();
        for (&id, &pid) in reordering {
            if self.supervisor.pid(id) != Some(pid) {
                event.add_note(format!("n{id} restarted meanwhile: it forgot the setting"));
                continue;
            }
            if let Some((held, copied)) = self.view.reorder_counts(id) {
                event.reordered.insert(id, Reordered { held, copied });
            }
            match self.view.reorder(id, 0, 0) {
                Ok(()) => {
                    event.pids.insert(id, pid);
                }
                Err(why) => event.add_error(format!("n{id} still reorders: {why}")),
            }
        }
    }
}
