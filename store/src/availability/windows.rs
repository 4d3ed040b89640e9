//! Which stretches of a run the availability check judges, and with which nodes faulted.
//!
//! Raft promises to serve while a majority of its voters is up and can talk: a cluster of five
//! rides out two dead, paused, powered-off, lossy or cut-off nodes, after one election. So a
//! run is judged not only where no fault is in place, but wherever the faults in place leave a
//! strict majority untouched: a kill of the leader, a pause of two followers, a partition whose
//! larger side is a majority. Under an overlapping schedule, where some fault is nearly always
//! in place, those are most of what can be judged, and they are where liveness bugs live (an
//! election that never converges, a deposed leader that never steps down).
//!
//! Each stretch runs from one fault event (a start or a stop) to the next and is judged from
//! `grace` after its first event, which covers what the change legitimately costs: an election,
//! clients moving to the new leader, a restarted node replaying its log. The run's first stretch
//! needs no grace. A membership change counts the voter it removed as faulted, a slow-apply its
//! slowed nodes, and a leadership transfer nobody. A fault whose reach is not a set of nodes (an aimed membership
//! change, one of unknown outcome, a partition with no majority side, a kind this code does not
//! know) leaves its stretches unjudged, as does every fault when the cluster's size is unknown. A node that
//! refused to start again after a fault (a damaged data dir) counts as faulted to the end.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::history::{FaultWindow, RunHistory};

/// One stretch to judge: `[start, end)` in ns, and the nodes the faults in place take out
/// (`None`: no fault in place; `Some` of none: a fault that takes out nobody, such as a
/// leadership transfer).
pub(super) type Stretch = (u64, u64, Option<Vec<u64>>);

/// The stretches of `[0, end)` to judge in `run` of a cluster of `nodes` voters (0: unknown, so
/// only the stretches with no fault in place).
pub(super) fn judged(run: &RunHistory, end: u64, grace: u64, nodes: usize) -> Vec<Stretch> {
    let faults: Vec<(u64, u64, Option<BTreeSet<u64>>)> = run
        .faults
        .iter()
        .map(|f| {
            let reach = reach(f);
            let stays_down = reach
                .as_ref()
                .is_some_and(|r| r.iter().any(|n| run.refused_starts.contains_key(n)));
            let stop = match (stays_down, f.stop_ns) {
                (false, Some(stop)) => stop,
                _ => u64::MAX,
            };
            (f.start_ns, stop, reach)
        })
        .collect();
    let mut events: Vec<u64> = faults
        .iter()
        .flat_map(|(start, stop, _)| [*start, *stop])
        .filter(|&t| t < end)
        .collect();
    events.push(0);
    events.sort_unstable();
    events.dedup();
    let mut out = Vec::new();
    for (i, &from) in events.iter().enumerate() {
        let to = events.get(i + 1).copied().unwrap_or(end).min(end);
        let mut faulted = BTreeSet::new();
        let mut judgeable = true;
        let mut in_place = false;
        for (start, stop, reach) in &faults {
            if *start <= from && from < *stop {
                in_place = true;
                match reach {
                    Some(r) => faulted.extend(r.iter().copied()),
                    None => judgeable = false,
                }
            }
        }
        let minority = faulted.is_empty() || faulted.len() * 2 < nodes;
        if !judgeable || !minority {
            continue;
        }
        let begin = if from == 0 {
            0
        } else {
            from.saturating_add(grace)
        };
        if begin < to {
            out.push((begin, to, in_place.then(|| faulted.into_iter().collect())));
        }
    }
    out
}

/// The nodes a fault takes out of the cluster while it is in place, if that is a set of nodes.
fn reach(f: &FaultWindow) -> Option<BTreeSet<u64>> {
    let ids = |v: &Value| -> Option<BTreeSet<u64>> {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
    };
    match f.fault.as_str() {
        // A slowed state machine is up but lags by its delay, which a client's timeout covers.
        // A stalled leader is frozen, then cut off: one node out, as for a pause.
        "kill" | "restart" | "pause" | "power-cut" | "corrupt" | "loss" | "slow-apply"
        | "stall" => ids(f.detail.get("nodes")?),
        "partition" => {
            let groups: Vec<BTreeSet<u64>> = f
                .detail
                .get("groups")?
                .as_array()?
                .iter()
                .map(ids)
                .collect::<Option<_>>()?;
            let all: BTreeSet<u64> = groups.iter().flatten().copied().collect();
            // Groups that overlap (a bridge, a ring) are not a clean cut: not judged.
            if groups.iter().map(BTreeSet::len).sum::<usize>() != all.len() {
                return None;
            }
            let majority = groups.iter().find(|g| g.len() * 2 > all.len())?;
            Some(all.difference(majority).copied().collect())
        }
        "membership" => membership_reach(&f.detail),
        // A handover: nobody is taken out; the grace covers the new leader's first term.
        // Reordered peer messages take out nobody either: Raft must serve through them.
        "transfer-leader" | "reorder" => Some(BTreeSet::new()),
        // A stale candidate's stop leaves no node a majority on purpose (the lagging one aside,
        // which must not win): not judged until its stop is done.
        "stale-candidate" => None,
        _ => None,
    }
}

/// A membership change that is done takes out at most the voter it removed (still running,
/// no longer counted: conservative); one that added a voter takes out nobody, as a fifth of
/// five faulted is still a minority of six. A skipped change did nothing. The aimed changes
/// (`stranded`, `disjoint`) cut links on purpose, and a change of unknown outcome leaves the
/// configuration unknown: not judged.
fn membership_reach(detail: &Value) -> Option<BTreeSet<u64>> {
    let change = detail.get("change")?.as_str()?;
    match (detail.get("outcome")?.as_str()?, change) {
        ("skipped", _) => Some(BTreeSet::new()),
        ("done", "grow") => Some(BTreeSet::new()),
        ("done", "shrink" | "replace") => {
            Some(detail.get("removed")?.as_u64().into_iter().collect())
        }
        _ => None,
    }
}
