//! What a run did, computed from its `history.jsonl` alone, as read by [`crate::history`]
//! (so `analyze` can recompute it for any stored run): op counts by outcome and by kind, latency quantiles, fault counts, duration.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::history::{Outcome, RunHistory};

/// Counts of completions by outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// Invoked but never completed (the run ended first).
    pub open: u64,
}

/// Latency quantiles of completed client ops, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    /// Quantiles over `ok` ops only: what a successful client waited.
    pub ok_p50: f64,
    pub ok_p99: f64,
}

/// The run, summarised from its history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSummary {
    pub invokes: u64,
    pub outcomes: Outcomes,
    /// Outcomes per op kind (`read`, `write`, `cas`, `append`).
    pub by_f: BTreeMap<String, Outcomes>,
    pub latency_ms: Latency,
    /// Fault starts per fault kind (`kill`, `pause`, `partition`, `loss`).
    pub faults: BTreeMap<String, u64>,
    /// Time of the last op, in seconds since the start.
    pub duration_s: f64,
    pub keys: u64,
    /// Lines of the history that did not parse (a damaged file); the checker reports them.
    pub unreadable_lines: u64,
    /// Nodes that refused to start after a disk fault and stayed down: `n3` → how it exited
    /// and what it said last.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub nodes_refused: BTreeMap<String, String>,
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[k] as f64 / 1e6
}

/// Summarises a history already read for the reports (one parse serves both).
pub fn summarise(run: &RunHistory) -> RunSummary {
    let mut s = RunSummary {
        invokes: run.ops.len() as u64,
        duration_s: run.end_ns as f64 / 1e9,
        unreadable_lines: run.unreadable_lines,
        ..RunSummary::default()
    };
    for window in &run.faults {
        *s.faults.entry(window.fault.clone()).or_default() += 1;
    }
    for (node, why) in &run.refused_starts {
        s.nodes_refused.insert(format!("n{node}"), why.clone());
    }
    let mut all = Vec::new();
    let mut ok = Vec::new();
    let mut keys = HashSet::new();
    for op in &run.ops {
        if let Some(key) = &op.key {
            keys.insert(key.as_str());
        }
        let by_f = s.by_f.entry(op.f.clone()).or_default();
        for counts in [&mut s.outcomes, by_f] {
            match op.outcome {
                Outcome::Ok => counts.ok += 1,
                Outcome::Fail => counts.fail += 1,
                Outcome::Info => counts.info += 1,
                Outcome::Open => counts.open += 1,
            }
        }
        if let Some(latency) = op.latency_ns() {
            all.push(latency);
            if op.outcome == Outcome::Ok {
                ok.push(latency);
            }
        }
    }
    all.sort_unstable();
    ok.sort_unstable();
    s.latency_ms = Latency {
        p50: quantile(&all, 0.5),
        p95: quantile(&all, 0.95),
        p99: quantile(&all, 0.99),
        max: all.last().map_or(0.0, |&m| m as f64 / 1e6),
        ok_p50: quantile(&ok, 0.5),
        ok_p99: quantile(&ok, 0.99),
    };
    s.keys = keys.len() as u64;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_latencies_and_faults_come_from_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let lines = [
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","key":"k1","value":1}"#,
            r#"{"index":1,"time":1000000,"process":1,"type":"invoke","f":"read","key":"k1","value":null}"#,
            r#"{"index":2,"time":2000000,"process":0,"type":"ok","f":"write","key":"k1","value":1}"#,
            r#"{"index":3,"time":2500000,"process":"nemesis","type":"info","f":"start","value":{"fault":"kill","nodes":[1]}}"#,
            r#"{"index":4,"time":5000000,"process":1,"type":"info","f":"read","key":"k1","value":null,"error":"timeout"}"#,
            r#"{"index":5,"time":6000000,"process":2,"type":"invoke","f":"cas","key":"k2","value":[1,2]}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let s = summarise(&RunHistory::load(&path).unwrap());
        assert_eq!(s.invokes, 3);
        assert_eq!(
            s.outcomes,
            Outcomes {
                ok: 1,
                fail: 0,
                info: 1,
                open: 1
            }
        );
        assert_eq!(s.by_f["cas"].open, 1);
        assert_eq!(s.faults["kill"], 1);
        assert_eq!(s.latency_ms.max, 4.0);
        assert_eq!(s.latency_ms.ok_p50, 2.0);
        assert_eq!(s.keys, 2);
    }
}
