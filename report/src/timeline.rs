//! `timeline.html`: one self-contained page (inline CSS and JS, the data as JSON in a
//! `<script type="application/json">`; nothing is loaded from the network) that shows a run.
//!
//! The page (`timeline.html` beside this file, the template) draws on a `<canvas>`: one lane per
//! worker, each op a bar from invoke to completion coloured by outcome, fault windows shaded
//! across all lanes and labelled in a band above them, and for an invalid key the counterexample
//! highlighted (the failed op, the ops concurrent with it, the tail of the linearized prefix) with
//! its states and explanation in a side panel. Only what is visible is drawn, and bars that fall
//! on the same pixel are drawn once, so 100,000 ops pan and zoom smoothly.
//!
//! This module turns a run into the page's data: ops as columns (one array per field, which is
//! compact and fast to parse), times in microseconds since the run started (exact in a JS number
//! for any run shorter than 285 years), lanes, fault windows, counterexamples mapped to op
//! numbers. Histories larger than [`MAX_OPS`] are cut, and the page says what was left out.

use std::collections::{BTreeMap, HashMap, HashSet};

use riptide_checker::{CheckReport, OpRef, Verdict};
use serde_json::{json, Value};

use riptide_store::history::{self as ops, Outcome, RunHistory};
use riptide_store::RunSummary;

use super::RunInfo;

/// The most ops the page holds. 200,000 ops make about 12 MB of page, which Chromium parses in
/// about a second and draws as smoothly as 100,000; beyond it the page would grow without
/// showing more (a full view is already many ops per pixel).
pub const MAX_OPS: usize = 200_000;

/// How many of the last linearized ops before the failed one are highlighted: enough to see the
/// writes that set the states the failed op contradicts, few enough to stay readable.
const PREFIX_TAIL: usize = 8;

/// The template; `__RIPTIDE_DATA__` is replaced by the data.
const TEMPLATE: &str = include_str!("timeline.html");

/// Renders the page for a run.
pub fn render(
    run: &RunHistory,
    info: &RunInfo,
    summary: &RunSummary,
    checker: &CheckReport,
) -> String {
    let data = data(run, info, summary, checker, MAX_OPS);
    // JSON inside <script>: `<` only occurs in strings, where `\u003c` means the same, and it
    // keeps `</script>` or `<!--` in a value from ending the element.
    let text = data.to_string().replace('<', "\\u003c");
    TEMPLATE.replacen("__RIPTIDE_DATA__", &text, 1)
}

/// The ops kept in the page: the counterexample ops always, then the others in invoke order until
/// `cap`. Returns the indices kept (sorted) and, when some were left out, a sentence saying which.
fn keep(run: &RunHistory, needed: &HashSet<usize>, cap: usize) -> (Vec<usize>, Option<String>) {
    let total = run.ops.len();
    if total <= cap {
        return ((0..total).collect(), None);
    }
    let room = cap.saturating_sub(needed.len());
    let mut kept: Vec<usize> = (0..total)
        .filter(|i| !needed.contains(i))
        .take(room)
        .collect();
    let cut_at_ns = kept.last().map_or(0, |&i| run.ops[i].invoke_ns);
    kept.extend(needed.iter().copied());
    kept.sort_unstable();
    let left = total - kept.len();
    let kept_anyway = if needed.is_empty() {
        ""
    } else {
        " (except the counterexamples' ops, which are always kept)"
    };
    let note = format!(
        "This page shows {} of {} ops: the {} ops invoked after {:.3} s are left out{kept_anyway}. \
         history.jsonl has them all.",
        thousands(kept.len()),
        thousands(total),
        thousands(left),
        cut_at_ns as f64 / 1e9
    );
    (kept, Some(note))
}

/// `200000` as `200,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let groups: Vec<String> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|g| String::from_utf8_lossy(g).into_owned())
        .collect();
    groups.join(",")
}

fn us(ns: u64) -> f64 {
    (ns / 1_000) as f64
}

/// The page's data. `cap` is [`MAX_OPS`] except in tests.
pub fn data(
    run: &RunHistory,
    info: &RunInfo,
    summary: &RunSummary,
    checker: &CheckReport,
    cap: usize,
) -> Value {
    let by_invoke: HashMap<u64, usize> = run
        .ops
        .iter()
        .enumerate()
        .map(|(i, o)| (o.invoke_index, i))
        .collect();
    let find = |r: &OpRef| by_invoke.get(&u64::from(r.invoke)).copied();
    let (kept, cap_note) = keep(run, &counterexample_ops(checker, &find), cap);
    let number: HashMap<usize, usize> = kept.iter().enumerate().map(|(n, &i)| (i, n)).collect();
    let page_op = |r: &OpRef| find(r).and_then(|i| number.get(&i).copied());

    let kept_ops: Vec<ops::Op> = kept.iter().map(|&i| run.ops[i].clone()).collect();
    let lanes = crate::lanes::lanes(&kept_ops, info.concurrency);
    let keys = key_names(&kept_ops);
    let columns = OpColumns::new(&kept_ops, &lanes.of_op, &keys);
    let verdicts: BTreeMap<&str, &str> = checker
        .keys
        .iter()
        .map(|(k, r)| (k.as_str(), r.verdict.name()))
        .collect();
    json!({
        "meta": meta(info, summary, checker),
        "endUs": us(run.end_ns),
        "lanes": lanes.labels,
        "keys": keys,
        "keyVerdicts": verdicts,
        "fs": columns.fs.names,
        "errors": columns.errors.names,
        "ops": {
            "lane": columns.lane, "p": columns.process, "t0": columns.t0, "t1": columns.t1,
            "o": columns.outcome, "f": columns.f, "k": columns.key, "text": columns.text,
            "e": columns.error, "ii": columns.invoke_index, "ci": columns.complete_index,
        },
        "totalOps": run.ops.len(),
        "capNote": cap_note,
        "faults": fault_windows(run),
        "anomalies": anomalies(checker, &page_op),
        "invalid": checker.verdict == Verdict::Invalid,
    })
}

/// Every op a counterexample names: they must be on the page, whatever the cap.
fn counterexample_ops(
    checker: &CheckReport,
    find: &impl Fn(&OpRef) -> Option<usize>,
) -> HashSet<usize> {
    let mut needed = HashSet::new();
    for k in checker.keys.values() {
        if let Some(cx) = &k.counterexample {
            let tail = cx.prefix.len().saturating_sub(PREFIX_TAIL);
            for r in std::iter::once(&cx.op)
                .chain(&cx.concurrent)
                .chain(&cx.prefix[tail..])
            {
                needed.extend(find(r));
            }
        }
    }
    needed
}

/// The keys of the ops on the page, sorted; `""` (the default key) first if any op has none.
fn key_names(ops: &[ops::Op]) -> Vec<String> {
    let mut keys: Vec<String> = ops
        .iter()
        .filter_map(|o| o.key.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if ops.iter().any(|o| o.key.is_none()) {
        keys.insert(0, String::new());
    }
    keys
}

/// Strings the page lists once and ops refer to by number (`f` names, error messages).
#[derive(Default)]
struct Interner {
    names: Vec<String>,
    number: HashMap<String, usize>,
}

impl Interner {
    fn number(&mut self, name: &str) -> usize {
        if let Some(&i) = self.number.get(name) {
            return i;
        }
        self.names.push(name.to_string());
        self.number.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }
}

/// The ops as columns (one array per field), which is what the page's canvas code reads and
/// what keeps the embedded JSON small.
#[derive(Default)]
struct OpColumns {
    lane: Vec<u32>,
    process: Vec<u64>,
    t0: Vec<f64>,
    /// -1 for an op that never completed.
    t1: Vec<f64>,
    /// 0 ok, 1 fail, 2 info, 3 open.
    outcome: Vec<u8>,
    f: Vec<usize>,
    key: Vec<usize>,
    text: Vec<String>,
    /// -1 for no error.
    error: Vec<i64>,
    invoke_index: Vec<u64>,
    complete_index: Vec<i64>,
    fs: Interner,
    errors: Interner,
}

impl OpColumns {
    fn new(ops: &[ops::Op], lanes: &[u32], keys: &[String]) -> OpColumns {
        let key_number: HashMap<&str, usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let mut c = OpColumns::default();
        for (o, &l) in ops.iter().zip(lanes) {
            c.lane.push(l);
            c.process.push(o.process);
            c.t0.push(us(o.invoke_ns));
            c.t1.push(o.complete_ns.map_or(-1.0, us));
            c.outcome.push(match o.outcome {
                Outcome::Ok => 0,
                Outcome::Fail => 1,
                Outcome::Info => 2,
                Outcome::Open => 3,
            });
            c.f.push(c.fs.number(&o.f));
            c.key.push(key_number[o.key.as_deref().unwrap_or("")]);
            c.text.push(o.text.clone());
            c.error.push(match &o.error {
                None => -1,
                Some(e) => c.errors.number(e) as i64,
            });
            c.invoke_index.push(o.invoke_index);
            c.complete_index
                .push(o.complete_index.map_or(-1, |c| c as i64));
        }
        c
    }
}

/// The fault windows, shaded across all lanes.
fn fault_windows(run: &RunHistory) -> Vec<Value> {
    run.faults
        .iter()
        .map(|w| {
            json!({
                "fault": w.fault,
                "label": w.label,
                "t0": us(w.start_ns),
                "t1": w.stop_ns.map_or(-1.0, us),
                "index": w.start_index,
                "detail": w.detail,
            })
        })
        .collect()
}

/// One entry per invalid key: its counterexample, with ops as numbers on the page.
fn anomalies(checker: &CheckReport, page_op: &impl Fn(&OpRef) -> Option<usize>) -> Vec<Value> {
    let mut anomalies = Vec::new();
    for (name, k) in &checker.keys {
        let Some(cx) = &k.counterexample else {
            continue;
        };
        let tail = cx.prefix.len().saturating_sub(PREFIX_TAIL);
        anomalies.push(json!({
            "key": name,
            "op": page_op(&cx.op),
            "opText": cx.op.op,
            "process": cx.op.process,
            "lines": [cx.op.invoke_line, cx.op.complete_line],
            "concurrent": cx.concurrent.iter().filter_map(page_op).collect::<Vec<_>>(),
            "prefix": cx.prefix[tail..].iter().filter_map(page_op).collect::<Vec<_>>(),
            "prefixLen": cx.prefix.len(),
            "states": cx.states,
            "explanation": cx.explanation,
        }));
    }
    anomalies
}

/// The run's verdict: the checker's, unless the replicas diverged (then invalid).
fn verdict(info: &RunInfo, checker: &CheckReport) -> Verdict {
    let unavailable = info.availability.as_ref().is_some_and(|a| !a.available);
    match &info.replicas {
        Some(r) if r.is_invalid() => Verdict::Invalid,
        _ if unavailable => Verdict::Invalid,
        _ => checker.verdict,
    }
}

/// The header: what the run was and what the checker said.
fn meta(info: &RunInfo, summary: &RunSummary, checker: &CheckReport) -> Value {
    json!({
        "name": info.name,
        "startedAt": info.started_at,
        "status": info.status,
        "seed": info.seed,
        "nodes": info.nodes,
        "nemesis": info.nemesis,
        "workload": info.workload,
        "concurrency": info.concurrency,
        "unsafeBugs": info.unsafe_bugs,
        "verdict": verdict(info, checker).name(),
        "checkerVerdict": checker.verdict.name(),
        "replicas": info.replicas.as_ref().map(|r| json!({"outcome": r.outcome, "note": r.note})),
        "liveness": info.availability.as_ref().map(|a| json!({
            "available": a.available,
            "text": a.describe(),
            "windows": a.unavailable.iter().map(|(t0, t1)| json!({"t0": t0 * 1e6, "t1": t1 * 1e6})).collect::<Vec<_>>(),
        })),
        "model": checker.model.to_string(),
        "checkerSecs": checker.elapsed_secs,
        "keyCounts": {
            "valid": checker.key_counts.valid,
            "invalid": checker.key_counts.invalid,
            "unknown": checker.key_counts.unknown,
        },
        "summary": summary,
        "note": info.note,
        "links": info.links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(i: u64, t: u64) -> ops::Op {
        ops::Op {
            process: i % 4,
            outcome: Outcome::Ok,
            f: "write".into(),
            key: Some(format!("k{}", i / 10)),
            text: format!("write {i}"),
            error: None,
            invoke_index: 2 * i,
            complete_index: Some(2 * i + 1),
            invoke_ns: t,
            complete_ns: Some(t + 1_000),
        }
    }

    #[test]
    fn a_capped_page_keeps_the_counterexample_and_says_what_it_left_out() {
        let run = RunHistory {
            ops: (0..100).map(|i| op(i, i * 1_000_000)).collect(),
            end_ns: 100_000_000,
            ..RunHistory::default()
        };
        let needed: HashSet<usize> = [90].into_iter().collect();
        let (kept, note) = keep(&run, &needed, 10);
        assert_eq!(kept.len(), 10);
        assert!(kept.contains(&90));
        assert_eq!(kept[..9], [0, 1, 2, 3, 4, 5, 6, 7, 8]);
        let note = note.unwrap();
        assert!(note.contains("10 of 100 ops"), "{note}");
        assert!(note.contains("always kept"), "{note}");
        assert_eq!(thousands(210_000), "210,000");
        assert_eq!(thousands(999), "999");
        assert!(note.contains("0.008 s"), "{note}");
        let (all, none) = keep(&run, &needed, 100);
        assert_eq!((all.len(), none), (100, None));
    }
    #[test]
    fn the_page_colours_every_fault_as_the_plots_do() {
        let faults = [
            "kill",
            "pause",
            "partition",
            "loss",
            "delay",
            "power-cut",
            "corrupt",
            "restart",
            "transfer-leader",
            "membership",
            "slow-apply",
            "reorder",
            "stall",
            "stale-candidate",
        ];
        for name in faults {
            let color = crate::colors::fault(name);
            assert_ne!(color, crate::colors::fault("no-such-fault"), "{name}");
            let key = if name.contains('-') {
                format!("\"{name}\": \"{color}\"")
            } else {
                format!("{name}: \"{color}\"")
            };
            assert!(TEMPLATE.contains(&key), "timeline.html lacks {key}");
        }
    }
}
