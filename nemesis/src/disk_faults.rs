//! The disk faults' actions, as part of [`super::Nemesis`]: a power cut's start (SIGKILL, then
//! the unsynced writes dropped through [`crate::Disks`]), a corrupt's start (SIGKILL, then one synced
//! file damaged, [`disk::damage`]), and the watch for a node that refuses to start afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::Nemesis;
use crate::disk;
use crate::error::Result;
use crate::event::NemesisEvent;
use crate::supervisor::{NodeState, Pid};
use crate::NodeId;

/// How long the stop of a disk fault watches a restarted node for a refusal to start.
const REFUSAL_WATCH: Duration = Duration::from_millis(500);

impl Nemesis {
    /// A power cut's start: each node SIGKILLed, then its unsynced writes dropped.
    pub(super) fn cut_power(
        &self,
        nodes: &[NodeId],
        cut: disk::CutMode,
        event: &mut NemesisEvent,
        done: &mut BTreeMap<NodeId, Pid>,
    ) -> Result<()> {
        let disks = self.disks()?;
        for &id in nodes {
            let Some(pid) = self.kill_for_disk(id, event) else {
                continue;
            };
            done.insert(id, pid);
            match disks.power_cut(id, cut) {
                Ok(report) => {
                    event.disks.insert(id, report);
                }
                Err(e) => event.add_error(format!("power cut of node {id}: {e}")),
            }
        }
        Ok(())
    }

    /// A corrupt's start: each node SIGKILLed, then one synced file of its data dir damaged;
    /// never a disk damaged before, never more than a minority in the run.
    pub(super) fn corrupt_disks(
        &self,
        damaged: &mut BTreeSet<NodeId>,
        nodes: &[NodeId],
        seed: u64,
        event: &mut NemesisEvent,
        done: &mut BTreeMap<NodeId, Pid>,
    ) -> Result<()> {
        let disks = self.disks()?;
        for &id in nodes {
            if let Some(why) = corrupt_refusal(damaged, id, self.nodes.len()) {
                event.add_note(why);
                continue;
            }
            let Some(pid) = self.kill_for_disk(id, event) else {
                continue;
            };
            done.insert(id, pid);
            damaged.insert(id);
            let damage = disks
                .data_dir(id)
                .ok_or_else(|| format!("node {id} has no known data dir"))
                .and_then(|dir| disk::damage(&dir, seed ^ id));
            match damage {
                Ok(damage) => {
                    event.disks.insert(id, serde_json::json!(damage));
                }
                Err(e) => event.add_error(format!("corrupting node {id}: {e}")),
            }
        }
        Ok(())
    }

    /// SIGKILLs node `id` before its disk is cut or damaged; `None` (the error recorded) if it
    /// was not running: a node that refused to start is not hit again.
    fn kill_for_disk(&self, id: NodeId, event: &mut NemesisEvent) -> Option<Pid> {
        match self.supervisor.kill(id) {
            Ok(pid) => Some(pid),
            Err(e) => {
                event.add_error(e);
                None
            }
        }
    }

    /// Watches nodes just restarted after a disk fault for a moment: those that exited on their
    /// own (a node that refuses its damaged data dir), with what each said last, for the history.
    pub(super) fn refusals(&self, ids: &[NodeId]) -> BTreeMap<NodeId, serde_json::Value> {
        let deadline = Instant::now() + REFUSAL_WATCH;
        let mut refused = BTreeMap::new();
        while refused.len() < ids.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            for &id in ids {
                let Ok(status) = self.supervisor.status(id) else {
                    continue;
                };
                if refused.contains_key(&id) || !matches!(status.state, NodeState::Exited { .. }) {
                    continue;
                }
                let log = self.supervisor.spec(id).ok().map(|s| s.log);
                refused.insert(id, disk::refusal(&status.state, log.as_deref()));
            }
        }
        refused
    }
}

/// Why `corrupt` leaves node `id` alone, if it does: each disk is damaged at most once, and at
/// most a minority of the `n` disks in a run, so a majority keeps every committed entry.
fn corrupt_refusal(damaged: &BTreeSet<NodeId>, id: NodeId, n: usize) -> Option<String> {
    let minority = crate::spec::minority_size(n);
    if damaged.contains(&id) {
        Some(format!(
            "node {id} not corrupted: its disk was damaged before"
        ))
    } else if damaged.len() >= minority {
        Some(format!(
            "node {id} not corrupted: {} of {n} disks are damaged already, and a majority must \
             keep good disks",
            damaged.len()
        ))
    } else {
        None
    }
}
