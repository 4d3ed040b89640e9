//! Lanes of the timeline: which horizontal lane each op is drawn on.
//!
//! One lane per worker slot, not per process: after an `info` a worker goes on as process
//! `worker + k * concurrency`, so `process % concurrency` is the worker and a run with thousands
//! of infos still has `concurrency` lanes. The final reads (processes ≥ [`FINAL_READ_BASE`]) get
//! lanes of their own. Without a known concurrency (a history without `test.json`), every process
//! is its own lane, or, when there are too many, ops are packed.

use std::collections::HashMap;

use riptide_store::history::{Op, FINAL_READ_BASE};

/// Lane assignment: which lane each op is drawn on, and the lanes' labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lanes {
    /// Per op (same order as `RunOps::ops`).
    pub of_op: Vec<u32>,
    pub labels: Vec<String>,
}

/// Without a known concurrency, up to this many processes get a lane each; more are packed (see
/// [`lanes`]). 64 lanes still fit a screen at a readable height.
const MAX_PROCESS_LANES: usize = 64;

/// One lane per worker slot (`process % concurrency`) plus one per final-read process. When
/// `concurrency` is unknown: one lane per process if there are few, else ops are packed into as
/// few lanes as they need (each op on the first lane free at its invoke), and the lane no longer
/// names a worker (the tooltip still shows the process).
pub fn lanes(ops: &[Op], concurrency: Option<u64>) -> Lanes {
    if concurrency.is_none() {
        let processes: std::collections::HashSet<u64> = ops.iter().map(|o| o.process).collect();
        if processes.len() > MAX_PROCESS_LANES {
            return packed(ops);
        }
    }
    #[derive(PartialEq, Eq, PartialOrd, Ord, Hash, Clone, Copy)]
    enum Slot {
        Worker(u64),
        Process(u64),
        Final(u64),
    }
    let slot = |p: u64| match concurrency {
        _ if p >= FINAL_READ_BASE => Slot::Final(p - FINAL_READ_BASE),
        Some(c) if c > 0 => Slot::Worker(p % c),
        _ => Slot::Process(p),
    };
    let mut slots: Vec<Slot> = ops.iter().map(|o| slot(o.process)).collect();
    slots.sort_unstable();
    slots.dedup();
    let number: HashMap<Slot, u32> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u32))
        .collect();
    let labels = slots
        .iter()
        .map(|s| match s {
            Slot::Worker(w) => format!("worker {w}"),
            Slot::Process(p) => format!("process {p}"),
            Slot::Final(k) => format!("final read {k}"),
        })
        .collect();
    Lanes {
        of_op: ops.iter().map(|o| number[&slot(o.process)]).collect(),
        labels,
    }
}

/// Ops (in invoke order) on the first lane whose last op has completed before their invoke.
fn packed(ops: &[Op]) -> Lanes {
    // End time of each lane's last op; an open op holds its lane to the end.
    let mut ends: Vec<u64> = Vec::new();
    let mut of_op = Vec::with_capacity(ops.len());
    for o in ops {
        let end = o.complete_ns.unwrap_or(u64::MAX);
        let lane = match ends.iter().position(|&e| e < o.invoke_ns) {
            Some(l) => l,
            None => {
                ends.push(0);
                ends.len() - 1
            }
        };
        ends[lane] = end;
        of_op.push(lane as u32);
    }
    Lanes {
        of_op,
        labels: (0..ends.len()).map(|l| format!("lane {l}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_store::history::Outcome;

    #[test]
    fn lanes_are_worker_slots_with_final_reads_apart() {
        let op = |process| Op {
            process,
            outcome: Outcome::Ok,
            f: "read".into(),
            key: None,
            text: "read".into(),
            error: None,
            invoke_index: 0,
            complete_index: None,
            invoke_ns: 0,
            complete_ns: None,
        };
        let ops: Vec<Op> = [0, 1, 4, 7, FINAL_READ_BASE + 1]
            .into_iter()
            .map(op)
            .collect();
        let lanes = lanes(&ops, Some(3));
        assert_eq!(lanes.labels, ["worker 0", "worker 1", "final read 1"]);
        assert_eq!(lanes.of_op, [0, 1, 1, 1, 2]);
        assert_eq!(super::lanes(&ops, None).labels.len(), 5);

        // Hundreds of processes and no concurrency: packed into as many lanes as overlap.
        let many: Vec<Op> = (0..300u64)
            .map(|p| Op {
                invoke_ns: p * 10,
                complete_ns: Some(p * 10 + 25),
                ..op(p)
            })
            .collect();
        let packed = super::lanes(&many, None);
        assert_eq!(packed.labels.len(), 3, "at most 3 ops overlap");
        assert_eq!(packed.of_op[..4], [0, 1, 2, 0]);
    }
}
