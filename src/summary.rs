//! What a run did, computed from its `history.jsonl` alone (so `analyze` can recompute it for any
//! stored run): op counts by outcome and by kind, latency quantiles, fault counts, duration.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use riptide_workload::history::{OpType, Process, Record};
use serde::{Deserialize, Serialize};

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
}

fn quantile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let k = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[k] as f64 / 1e6
}

/// Reads `history.jsonl` and summarises it.
pub fn summarise(path: &Path) -> std::io::Result<RunSummary> {
    let file = std::fs::File::open(path)?;
    let mut s = RunSummary::default();
    let mut open: HashMap<u64, (u64, String)> = HashMap::new();
    let mut all = Vec::new();
    let mut ok = Vec::new();
    let mut keys = std::collections::HashSet::new();
    let mut last_time = 0;
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let Ok(record) = serde_json::from_str::<Record>(&line) else {
            s.unreadable_lines += 1;
            continue;
        };
        last_time = last_time.max(record.time);
        match record.process {
            Process::Nemesis(_) => {
                if record.f == "start" {
                    let fault = record
                        .value
                        .get("fault")
                        .and_then(|f| f.as_str())
                        .unwrap_or("unknown");
                    *s.faults.entry(fault.to_string()).or_default() += 1;
                }
            }
            Process::Client(p) => {
                if let Some(key) = &record.key {
                    keys.insert(key.clone());
                }
                let entry = s.by_f.entry(record.f.clone()).or_default();
                match record.op_type {
                    OpType::Invoke => {
                        s.invokes += 1;
                        open.insert(p, (record.time, record.f.clone()));
                        continue;
                    }
                    OpType::Ok => {
                        entry.ok += 1;
                        s.outcomes.ok += 1;
                    }
                    OpType::Fail => {
                        entry.fail += 1;
                        s.outcomes.fail += 1;
                    }
                    OpType::Info => {
                        entry.info += 1;
                        s.outcomes.info += 1;
                    }
                }
                if let Some((t0, _)) = open.remove(&p) {
                    let latency = record.time.saturating_sub(t0);
                    all.push(latency);
                    if record.op_type == OpType::Ok {
                        ok.push(latency);
                    }
                }
            }
        }
    }
    for (_, (_, f)) in open {
        s.outcomes.open += 1;
        s.by_f.entry(f).or_default().open += 1;
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
    s.duration_s = last_time as f64 / 1e9;
    s.keys = keys.len() as u64;
    Ok(s)
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
        let s = summarise(&path).unwrap();
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
