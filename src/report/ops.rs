//! The history as the reports see it: client ops as intervals (invoke → completion) on lanes, and
//! nemesis faults as time windows.
//!
//! - **Ops.** An invoke is paired with the next completion of the same process (a process never
//!   has two ops open). An op never completed is `Open` and runs to the end of the history.
//! - **Lanes.** One lane per worker slot, not per process: after an `info` a worker goes on as
//!   process `worker + k * concurrency`, so `process % concurrency` is the worker and a run with
//!   thousands of infos still has `concurrency` lanes. The final reads (processes ≥
//!   [`FINAL_READ_BASE`]) get lanes of their own. Without a known concurrency (a history without
//!   `test.json`), every process is its own lane.
//! - **Fault windows.** A `start` opens a window; a `stop` closes the oldest open window of the
//!   same fault (faults may overlap with `--nemesis-overlap`); a `heal` stop closes every open
//!   window; a window never stopped runs to the end of the history.
//!
//! Lines that do not parse are counted and skipped: a damaged history still gets a report.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::BufRead;
use std::path::Path;

use riptide_workload::history::{OpType, Process, Record};
use serde_json::Value;

/// The first process id of the final reads (see `run::execute`): lanes of their own.
pub const FINAL_READ_BASE: u64 = 1_000_000_000;

/// How a client op ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Ok,
    Fail,
    Info,
    /// Invoked, never completed: the history ended first.
    Open,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Open => "open",
        }
    }
}

/// One client op: an invoke and its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub process: u64,
    pub outcome: Outcome,
    pub f: String,
    pub key: Option<String>,
    /// The op as a person reads it: `write 3`, `read → 7`, `cas 1→4`.
    pub text: String,
    pub error: Option<String>,
    /// History index (`index` field) of the invoke and of the completion.
    pub invoke_index: u64,
    pub complete_index: Option<u64>,
    /// Nanoseconds since the run started.
    pub invoke_ns: u64,
    /// `None` for an open op.
    pub complete_ns: Option<u64>,
}

impl Op {
    /// Latency in nanoseconds; `None` for an open op.
    pub fn latency_ns(&self) -> Option<u64> {
        self.complete_ns.map(|c| c.saturating_sub(self.invoke_ns))
    }
}

/// One fault, from its start to its stop.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultWindow {
    /// `kill`, `pause`, `partition`, `loss`, ...
    pub fault: String,
    /// Short, e.g. `partition majority n2,n4 | n1,n3,n5` or `kill n3`.
    pub label: String,
    pub start_ns: u64,
    /// `None`: never stopped, runs to the end of the history.
    pub stop_ns: Option<u64>,
    pub start_index: u64,
    /// The start event's value, for the tooltip.
    pub detail: Value,
}

/// A history, read for the reports.
#[derive(Clone, Debug, Default)]
pub struct RunOps {
    /// In invoke order.
    pub ops: Vec<Op>,
    pub faults: Vec<FaultWindow>,
    /// Time of the last event, in nanoseconds.
    pub end_ns: u64,
    /// Lines that did not parse.
    pub unreadable_lines: u64,
    /// Completions with no open invoke (a damaged history).
    pub orphan_completions: u64,
}

/// Reads `history.jsonl`.
pub fn load(path: &Path) -> std::io::Result<RunOps> {
    let file = std::fs::File::open(path)?;
    let mut run = RunOps::default();
    // Open op per process: index into `run.ops`.
    let mut open: HashMap<u64, usize> = HashMap::new();
    // Open fault windows per fault name, oldest first: index into `run.faults`.
    let mut open_faults: BTreeMap<String, VecDeque<usize>> = BTreeMap::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(r) = serde_json::from_str::<Record>(&line) else {
            run.unreadable_lines += 1;
            continue;
        };
        run.end_ns = run.end_ns.max(r.time);
        match r.process {
            Process::Nemesis => nemesis_event(&mut run, &mut open_faults, &r),
            Process::Client(p) => {
                if r.event_type == OpType::Invoke {
                    open.insert(p, run.ops.len());
                    run.ops.push(Op {
                        process: p,
                        outcome: Outcome::Open,
                        text: describe(&r.f, &r.value, None),
                        f: r.f,
                        key: r.key,
                        error: None,
                        invoke_index: r.index,
                        complete_index: None,
                        invoke_ns: r.time,
                        complete_ns: None,
                    });
                    continue;
                }
                let Some(i) = open.remove(&p) else {
                    run.orphan_completions += 1;
                    continue;
                };
                let op = &mut run.ops[i];
                op.outcome = match r.event_type {
                    OpType::Ok => Outcome::Ok,
                    OpType::Fail => Outcome::Fail,
                    _ => Outcome::Info,
                };
                op.text = describe(&op.f, &r.value, Some(op.outcome));
                op.error = r.error;
                op.complete_index = Some(r.index);
                op.complete_ns = Some(r.time);
            }
        }
    }
    Ok(run)
}

fn nemesis_event(
    run: &mut RunOps,
    open_faults: &mut BTreeMap<String, VecDeque<usize>>,
    r: &Record,
) {
    let fault = r
        .value
        .get("fault")
        .and_then(Value::as_str)
        .unwrap_or("fault")
        .to_string();
    match r.f.as_str() {
        "start" => {
            open_faults
                .entry(fault.clone())
                .or_default()
                .push_back(run.faults.len());
            run.faults.push(FaultWindow {
                label: fault_label(&fault, &r.value),
                fault,
                start_ns: r.time,
                stop_ns: None,
                start_index: r.index,
                detail: r.value.clone(),
            });
        }
        "stop" if fault == "heal" => {
            for (_, queue) in std::mem::take(open_faults) {
                for i in queue {
                    run.faults[i].stop_ns = Some(r.time);
                }
            }
        }
        "stop" => {
            if let Some(i) = open_faults.get_mut(&fault).and_then(VecDeque::pop_front) {
                run.faults[i].stop_ns = Some(r.time);
            }
        }
        _ => {}
    }
}

fn nodes_text(v: &Value) -> String {
    v.as_array()
        .map(|ns| {
            ns.iter()
                .map(|n| format!("n{n}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// `kill n3`, `partition majority n2,n4 | n1,n3,n5`, `loss 20% n1`.
fn fault_label(fault: &str, v: &Value) -> String {
    let mut label = fault.to_string();
    if fault == "partition" {
        if let Some(kind) = v.get("kind").and_then(Value::as_str) {
            label.push(' ');
            label.push_str(kind);
        }
        if let Some(groups) = v.get("groups").and_then(Value::as_array) {
            let gs: Vec<String> = groups.iter().map(nodes_text).collect();
            label.push(' ');
            label.push_str(&gs.join(" | "));
        }
        return label;
    }
    if let Some(p) = v.get("probability").and_then(Value::as_f64) {
        label.push_str(&format!(" {:.0}%", p * 100.0));
    }
    let nodes = v.get("nodes").map(nodes_text).unwrap_or_default();
    if !nodes.is_empty() {
        label.push(' ');
        label.push_str(&nodes);
    }
    label
}

/// A JSON value as a person writes it: `7`, `nil`, `"ab"`, `[1,2]`.
fn value_text(v: &Value) -> String {
    match v {
        Value::Null => "nil".to_string(),
        other => other.to_string(),
    }
}

/// The op as a person reads it. Reads show what they returned once they returned it.
fn describe(f: &str, value: &Value, outcome: Option<Outcome>) -> String {
    match (f, value) {
        ("read", v) if outcome == Some(Outcome::Ok) => format!("read → {}", value_text(v)),
        ("read", _) => "read".to_string(),
        ("cas", Value::Array(pair)) if pair.len() == 2 => {
            format!("cas {}→{}", value_text(&pair[0]), value_text(&pair[1]))
        }
        (f, v) => format!("{f} {}", value_text(v)),
    }
}

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

    fn load_lines(lines: &[&str]) -> RunOps {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        std::fs::write(&path, lines.join("\n")).unwrap();
        load(&path).unwrap()
    }

    #[test]
    fn ops_pair_invokes_with_completions_and_describe_what_they_did() {
        let run = load_lines(&[
            r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"write","key":"k1","value":1}"#,
            r#"{"index":1,"time":20,"process":1,"type":"invoke","f":"read","key":"k1","value":null}"#,
            r#"{"index":2,"time":30,"process":0,"type":"ok","f":"write","key":"k1","value":1}"#,
            r#"{"index":3,"time":40,"process":1,"type":"ok","f":"read","key":"k1","value":1}"#,
            r#"{"index":4,"time":50,"process":2,"type":"invoke","f":"cas","key":"k1","value":[1,2]}"#,
            r#"{"index":5,"time":60,"process":2,"type":"info","f":"cas","key":"k1","value":[1,2],"error":"timeout"}"#,
            r#"{"index":6,"time":70,"process":8,"type":"invoke","f":"read","key":"k2","value":null}"#,
            "not json",
        ]);
        let texts: Vec<(&str, Outcome)> = run
            .ops
            .iter()
            .map(|o| (o.text.as_str(), o.outcome))
            .collect();
        assert_eq!(
            texts,
            [
                ("write 1", Outcome::Ok),
                ("read → 1", Outcome::Ok),
                ("cas 1→2", Outcome::Info),
                ("read", Outcome::Open),
            ]
        );
        assert_eq!(run.ops[2].error.as_deref(), Some("timeout"));
        assert_eq!(run.ops[1].latency_ns(), Some(20));
        assert_eq!(run.ops[3].complete_ns, None);
        assert_eq!(run.unreadable_lines, 1);
        assert_eq!(run.end_ns, 70);
    }

    #[test]
    fn stops_close_the_oldest_open_fault_of_their_kind_and_heal_closes_all() {
        let run = load_lines(&[
            r#"{"index":0,"time":100,"process":"nemesis","type":"info","f":"start","value":{"fault":"kill","nodes":[3]}}"#,
            r#"{"index":1,"time":200,"process":"nemesis","type":"info","f":"start","value":{"fault":"partition","kind":"majority","groups":[[1],[2,3]],"nodes":[1,2,3]}}"#,
            r#"{"index":2,"time":250,"process":"nemesis","type":"info","f":"start","value":{"fault":"kill","nodes":[1]}}"#,
            r#"{"index":3,"time":300,"process":"nemesis","type":"info","f":"stop","value":{"fault":"kill","nodes":[3]}}"#,
            r#"{"index":4,"time":400,"process":"nemesis","type":"info","f":"stop","value":{"fault":"heal"}}"#,
            r#"{"index":5,"time":500,"process":"nemesis","type":"info","f":"start","value":{"fault":"pause","nodes":[2]}}"#,
            r#"{"index":6,"time":900,"process":0,"type":"invoke","f":"read","value":null}"#,
        ]);
        let windows: Vec<(&str, u64, Option<u64>)> = run
            .faults
            .iter()
            .map(|f| (f.label.as_str(), f.start_ns, f.stop_ns))
            .collect();
        assert_eq!(
            windows,
            [
                ("kill n3", 100, Some(300)),
                ("partition majority n1 | n2,n3", 200, Some(400)),
                ("kill n1", 250, Some(400)),
                ("pause n2", 500, None),
            ]
        );
        assert_eq!(run.end_ns, 900);
    }

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
