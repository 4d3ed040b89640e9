//! `history.jsonl` read back: client ops as intervals (invoke → completion) and nemesis faults
//! as time windows. The summary, the reports and the checker's input all come from one read.
//!
//! - **Ops.** An invoke is paired with the next completion of the same process (a process never
//!   has two ops open; [`riptide_history::OpenOps`] does the pairing). An op never completed is `Open` and runs to the end of the history.
//! - **Processes.** After an `info` a worker goes on as process `worker + k * concurrency`, so
//!   `process % concurrency` is the worker. The final reads run as processes ≥
//!   [`FINAL_READ_BASE`].
//! - **Fault windows.** A `start` opens a window; a `stop` closes the oldest open window of the
//!   same fault (faults may overlap with `--nemesis-overlap`); a `heal` stop closes every open
//!   window; a window never stopped runs to the end of the history.
//!
//! Lines that do not parse are counted and skipped: a damaged history still gets a report.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use riptide_history::{EventType, OpenOps, Process, Record};
use serde_json::Value;

pub use riptide_history::process::FINAL_READ_BASE;
pub use riptide_history::Outcome;

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

/// A run's history, read back.
#[derive(Clone, Debug, Default)]
pub struct RunHistory {
    /// In invoke order.
    pub ops: Vec<Op>,
    pub faults: Vec<FaultWindow>,
    /// Time of the last event, in nanoseconds.
    pub end_ns: u64,
    /// Lines that did not parse.
    pub unreadable_lines: u64,
    /// Completions with no open invoke (a damaged history).
    pub orphan_completions: u64,
    /// Nodes that refused to start after a disk fault (they stay down for the rest of the run),
    /// with how they exited and what they said last: from the `disks` of nemesis events.
    pub refused_starts: BTreeMap<u64, String>,
}

/// A `history.jsonl` as read from disk, once: every record with its 1-based line, and how many
/// lines did not parse. [`RunHistory::from_file`] pairs it for the summary and the reports; the
/// checker takes the same records (`riptide_checker::History::from_records`).
#[derive(Clone, Debug, Default)]
pub struct HistoryFile {
    pub path: PathBuf,
    pub records: Vec<(usize, Record)>,
    /// Lines that did not parse (a damaged file).
    pub unreadable_lines: u64,
}

impl HistoryFile {
    pub fn read(path: &Path) -> std::io::Result<HistoryFile> {
        let text = std::fs::read_to_string(path)?;
        let mut file = HistoryFile {
            path: path.to_path_buf(),
            ..HistoryFile::default()
        };
        for (line, record) in riptide_history::records(&text) {
            match record {
                Ok(record) => file.records.push((line, record)),
                Err(_) => file.unreadable_lines += 1,
            }
        }
        Ok(file)
    }
}

impl RunHistory {
    /// Reads and pairs a `history.jsonl`.
    pub fn load(path: &Path) -> std::io::Result<RunHistory> {
        Ok(RunHistory::from_file(&HistoryFile::read(path)?))
    }

    /// Pairs the records of a history file into ops and fault windows.
    pub fn from_file(file: &HistoryFile) -> RunHistory {
        let mut run = RunHistory {
            unreadable_lines: file.unreadable_lines,
            ..RunHistory::default()
        };
        // Open op per process: index into `run.ops`.
        let mut open: OpenOps<usize> = OpenOps::new();
        // Open fault windows per fault name, oldest first: index into `run.faults`.
        let mut open_faults: BTreeMap<String, VecDeque<usize>> = BTreeMap::new();
        for (_, r) in &file.records {
            run.end_ns = run.end_ns.max(r.time);
            match r.process {
                Process::Nemesis => nemesis_event(&mut run, &mut open_faults, r),
                Process::Client(p) if r.event_type == EventType::Invoke => {
                    // A second invoke of a process leaves its first op open for good.
                    if open.invoke(p, run.ops.len()).is_err() {
                        open.complete(p);
                        let _ = open.invoke(p, run.ops.len());
                    }
                    run.ops.push(Op::invoked(p, r));
                }
                Process::Client(p) => match open.complete(p) {
                    Some(i) => run.ops[i].complete(r),
                    None => run.orphan_completions += 1,
                },
            }
        }
        run
    }
}

impl Op {
    fn invoked(process: u64, r: &Record) -> Op {
        Op {
            process,
            outcome: Outcome::Open,
            text: describe(&r.f, &r.value, None),
            f: r.f.clone(),
            key: r.key.clone(),
            error: None,
            invoke_index: r.index,
            complete_index: None,
            invoke_ns: r.time,
            complete_ns: None,
        }
    }

    fn complete(&mut self, r: &Record) {
        self.outcome = r.event_type.outcome().unwrap_or(Outcome::Info);
        self.text = describe(&self.f, &r.value, Some(self.outcome));
        self.error = r.error.clone();
        self.complete_index = Some(r.index);
        self.complete_ns = Some(r.time);
    }
}

fn nemesis_event(
    run: &mut RunHistory,
    open_faults: &mut BTreeMap<String, VecDeque<usize>>,
    r: &Record,
) {
    let fault = r
        .value
        .get("fault")
        .and_then(Value::as_str)
        .unwrap_or("fault")
        .to_string();
    for (node, disk) in r
        .value
        .get("disks")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let (Ok(node), Some(how)) = (node.parse(), disk.get("refused").and_then(Value::as_str))
        else {
            continue;
        };
        let said = disk.get("said").and_then(Value::as_str).unwrap_or("");
        run.refused_starts.insert(node, format!("{how}: {said}"));
    }
    match r.f.as_str() {
        "start" => {
            open_faults
                .entry(fault.clone())
                .or_default()
                .push_back(run.faults.len());
            // Recorded when the action was done; it began `took_ms` earlier.
            let took_ns = r.value.get("took_ms").and_then(Value::as_u64).unwrap_or(0) * 1_000_000;
            run.faults.push(FaultWindow {
                label: fault_label(&fault, &r.value),
                fault,
                start_ns: r.time.saturating_sub(took_ns),
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

/// `kill n3`, `partition majority n2,n4 | n1,n3,n5`, `loss 20% n1`, `transfer-leader n1→n3`,
/// `slow-apply 500 ms n2`, `reorder ≤50 ms n1,n2,n3`, `stall n3 (woken cut off 1000 ms)`.
pub fn fault_label(fault: &str, v: &Value) -> String {
    if fault == "transfer-leader" {
        return transfer_label(v);
    }
    if fault == "membership" {
        return membership_label(v);
    }
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
    if let Some(ms) = v.get("apply_delay_ms").and_then(Value::as_u64) {
        label.push_str(&format!(" {ms} ms"));
    }
    if fault == "reorder" {
        if let Some(ms) = v.get("max_delay_ms").and_then(Value::as_u64) {
            label.push_str(&format!(" ≤{ms} ms"));
        }
    }
    // A power cut's mode after its nodes: what their disks kept of the unsynced writes.
    let cut = match v.pointer("/cut/mode").and_then(Value::as_str) {
        Some("all") => " (unsynced lost)",
        Some("torn") => " (torn writes)",
        Some("reorder") => " (reordered pages)",
        _ => "",
    };
    let nodes = v.get("nodes").map(nodes_text).unwrap_or_default();
    if !nodes.is_empty() {
        label.push(' ');
        label.push_str(&nodes);
    }
    label.push_str(cut);
    if let Some(ms) = v.get("awake_ms").and_then(Value::as_u64) {
        label.push_str(&format!(" (woken cut off {ms} ms)"));
    }
    if let Some(leader) = v.get("killed_leader").and_then(Value::as_u64) {
        label.push_str(&format!(" (leader n{leader} killed)"));
    }
    label
}

/// `transfer-leader n1→n3`, with the outcome when it is not done: `(refused)`, `(unknown)`,
/// `(no leader)`. Before it started (the progress bar's plan), just the name.
fn transfer_label(v: &Value) -> String {
    let mut label = "transfer-leader".to_string();
    let node = |k: &str| v.get(k).and_then(Value::as_u64);
    match (node("from"), node("to")) {
        (Some(from), Some(to)) => label.push_str(&format!(" n{from}→n{to}")),
        (Some(from), None) => label.push_str(&format!(" n{from}→?")),
        _ => {}
    }
    match v.get("outcome").and_then(Value::as_str) {
        None | Some("done") => {}
        Some(outcome) => label.push_str(&format!(" ({})", outcome.replace('-', " "))),
    }
    label
}

/// `membership replace +n6 -n3`, `membership shrink -n2 (refused)`, with the nodes wiped
/// (`wiped n2`) and the outcome when it is not done. Before it started, the name and change.
fn membership_label(v: &Value) -> String {
    let mut label = "membership".to_string();
    let text = |k: &str| v.get(k).and_then(Value::as_str);
    let node = |k: &str| v.get(k).and_then(Value::as_u64);
    if let Some(change) = text("change") {
        label.push_str(&format!(" {change}"));
    }
    if let Some(added) = node("added") {
        label.push_str(&format!(" +n{added}"));
    }
    if let Some(removed) = node("removed") {
        label.push_str(&format!(" -n{removed}"));
    }
    if let Some(wiped) = v
        .get("wiped")
        .filter(|w| w.as_array().is_some_and(|a| !a.is_empty()))
    {
        label.push_str(&format!(" wiped {}", nodes_text(wiped)));
    }
    match text("outcome") {
        None | Some("done") => {}
        Some(outcome) => label.push_str(&format!(" ({outcome})")),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load_lines(lines: &[&str]) -> RunHistory {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        std::fs::write(&path, lines.join("\n")).unwrap();
        RunHistory::load(&path).unwrap()
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
    fn a_fault_window_opens_when_its_start_began_not_when_it_was_recorded() {
        let run = load_lines(&[
            r#"{"index":0,"time":9000000000,"process":"nemesis","type":"info","f":"start","value":{"fault":"membership","change":"stranded","added":6,"took_ms":3500}}"#,
            r#"{"index":1,"time":19000000000,"process":"nemesis","type":"info","f":"stop","value":{"fault":"membership","change":"stranded","took_ms":200}}"#,
            r#"{"index":2,"time":20000000000,"process":"nemesis","type":"info","f":"start","value":{"fault":"kill","nodes":[1],"took_ms":90000}}"#,
        ]);
        let windows: Vec<(u64, Option<u64>)> =
            run.faults.iter().map(|f| (f.start_ns, f.stop_ns)).collect();
        // 9 s - 3.5 s; a stop is recorded when done; a start longer than the run opens at 0.
        assert_eq!(windows, [(5_500_000_000, Some(19_000_000_000)), (0, None)]);
    }

    #[test]
    fn membership_changes_are_labelled_with_who_joined_and_left() {
        let label = |v: serde_json::Value| fault_label("membership", &v);
        assert_eq!(
            label(serde_json::json!({"change":"replace","added":6,"removed":3,"outcome":"done"})),
            "membership replace +n6 -n3"
        );
        assert_eq!(
            label(
                serde_json::json!({"change":"shrink","removed":2,"wiped":[2],"outcome":"refused"})
            ),
            "membership shrink -n2 wiped n2 (refused)"
        );
        assert_eq!(
            label(serde_json::json!({"change":"grow","wiped":[]})),
            "membership grow"
        );
    }

    #[test]
    fn transfers_are_labelled_from_to_with_the_outcome_unless_done() {
        let run = load_lines(&[
            r#"{"index":0,"time":100,"process":"nemesis","type":"info","f":"start","value":{"fault":"transfer-leader","nodes":[1,3],"from":1,"to":3,"outcome":"done","rules":[],"pids":{}}}"#,
            r#"{"index":1,"time":200,"process":"nemesis","type":"info","f":"stop","value":{"fault":"transfer-leader","nodes":[],"rules":[],"pids":{}}}"#,
            r#"{"index":2,"time":300,"process":"nemesis","type":"info","f":"start","value":{"fault":"transfer-leader","nodes":[3,2],"from":3,"to":2,"outcome":"refused","reason":"abandoned"}}"#,
            r#"{"index":3,"time":400,"process":"nemesis","type":"info","f":"stop","value":{"fault":"transfer-leader"}}"#,
            r#"{"index":4,"time":500,"process":"nemesis","type":"info","f":"start","value":{"fault":"transfer-leader","nodes":[],"from":null,"to":null,"outcome":"no-leader"}}"#,
        ]);
        let windows: Vec<(&str, u64, Option<u64>)> = run
            .faults
            .iter()
            .map(|f| (f.label.as_str(), f.start_ns, f.stop_ns))
            .collect();
        assert_eq!(
            windows,
            [
                ("transfer-leader n1→n3", 100, Some(200)),
                ("transfer-leader n3→n2 (refused)", 300, Some(400)),
                ("transfer-leader (no leader)", 500, None),
            ]
        );
        assert_eq!(
            fault_label("transfer-leader", &serde_json::json!({})),
            "transfer-leader"
        );
    }

    #[test]
    fn a_reorder_is_labelled_with_its_longest_hold_and_nodes() {
        let v = serde_json::json!({"fault": "reorder", "nodes": [1, 2, 3], "max_delay_ms": 50});
        assert_eq!(fault_label("reorder", &v), "reorder ≤50 ms n1,n2,n3");
        let v = serde_json::json!({"fault": "stall", "nodes": [3], "awake_ms": 1000});
        assert_eq!(fault_label("stall", &v), "stall n3 (woken cut off 1000 ms)");
        let v = serde_json::json!({"fault": "stale-candidate", "nodes": [2], "killed_leader": 4});
        assert_eq!(
            fault_label("stale-candidate", &v),
            "stale-candidate n2 (leader n4 killed)"
        );
    }

    #[test]
    fn a_slow_apply_is_labelled_with_its_delay_and_nodes() {
        let v = serde_json::json!({"fault": "slow-apply", "nodes": [2, 4], "apply_delay_ms": 500});
        assert_eq!(fault_label("slow-apply", &v), "slow-apply 500 ms n2,n4");
    }
}
