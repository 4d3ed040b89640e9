//! A [`RunHistory`] for any history `riptide check` reads, so that a Jepsen or Porcupine history
//! gets the same timeline as a run.
//!
//! The page matches the checker's counterexamples to ops by history index, which the checker
//! counts as the position among the file's events (from 0). So both constructors here number ops
//! that way, whatever the file's own `index` fields say.
//!
//! - [`RunHistory::from_checker_history`] (EDN, Jepsen logs, Porcupine): the checker's parsed
//!   ops. It keeps no times, so the time axis is the history index ([`INDEX_NS`] a step); it
//!   keeps no `fail` ops (the checker drops them), so the picture has none; an `info` op and one
//!   never completed both run to the end of the history; nemesis events are not drawn.
//! - [`RunHistory::from_file_by_position`] (riptide JSONL): every op, fail and nemesis window
//!   included, renumbered by position; a file without times gets the history index as its time
//!   axis too.

use riptide_checker::history::{History, Op as CheckedOp, OpKind, Outcome as CheckedOutcome};

use crate::history::{HistoryFile, Op, Outcome, RunHistory};

/// One history index on the time axis of a history without times: one second, so that the
/// page's seconds read as history indices.
pub const INDEX_NS: u64 = 1_000_000_000;

impl RunHistory {
    /// The ops the checker parsed (any format), on a time axis of history indices.
    pub fn from_checker_history(h: &History) -> RunHistory {
        RunHistory {
            ops: h.ops.iter().map(|op| checked_op(h, op)).collect(),
            end_ns: h.lines.len() as u64 * INDEX_NS,
            ..RunHistory::default()
        }
    }

    /// A riptide JSONL file, its events numbered by position as the checker numbers them. When no
    /// event has a time, the history index is the time axis. Returns the history and whether
    /// the file had times.
    pub fn from_file_by_position(file: &HistoryFile) -> (RunHistory, bool) {
        let timed = file.records.iter().any(|(_, r)| r.time != 0);
        let mut renumbered = file.clone();
        for (i, (_, r)) in renumbered.records.iter_mut().enumerate() {
            r.index = i as u64;
            if !timed {
                r.time = i as u64 * INDEX_NS;
            }
        }
        (RunHistory::from_file(&renumbered), timed)
    }
}

fn checked_op(h: &History, op: &CheckedOp) -> Op {
    let value = h.values.get(op.value);
    let text = match op.f {
        OpKind::Read if op.outcome == CheckedOutcome::Ok => format!("read → {value}"),
        OpKind::Read => "read".to_string(),
        OpKind::Cas => format!("cas {value}→{}", h.values.get(op.cas_new)),
        f => format!("{} {value}", f.name()),
    };
    let key = &h.keys[op.key as usize];
    let complete = op.completion();
    Op {
        process: op.process,
        outcome: if complete.is_some() {
            Outcome::Ok
        } else {
            Outcome::Info
        },
        f: op.f.name().to_string(),
        key: (!key.is_empty()).then(|| key.clone()),
        text,
        error: None,
        invoke_index: u64::from(op.invoke),
        complete_index: complete.map(u64::from),
        invoke_ns: u64::from(op.invoke) * INDEX_NS,
        complete_ns: complete.map(|c| u64::from(c) * INDEX_NS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_checker::{parse_history, Format};
    use std::path::Path;

    #[test]
    fn edn_ops_are_numbered_by_event_position_and_fails_are_not_drawn() {
        let edn = r#"[{:process :nemesis, :type :info, :f :start, :value nil}
{:process 0, :type :invoke, :f :write, :value 1}
{:process 1, :type :invoke, :f :read, :value nil}
{:process 0, :type :ok, :f :write, :value 1}
{:process 1, :type :ok, :f :read, :value 2}
{:process 2, :type :invoke, :f :cas, :value [1 3]}
{:process 3, :type :invoke, :f :write, :value 4}
{:process 3, :type :fail, :f :write, :value 4}]"#;
        let h = parse_history(Path::new("h.edn"), edn, Format::Edn).unwrap();
        let run = RunHistory::from_checker_history(&h);
        let got: Vec<(u64, Option<u64>, &str, Outcome)> = run
            .ops
            .iter()
            .map(|o| (o.invoke_index, o.complete_index, o.text.as_str(), o.outcome))
            .collect();
        assert_eq!(
            got,
            [
                (1, Some(3), "write 1", Outcome::Ok),
                (2, Some(4), "read → 2", Outcome::Ok),
                (5, None, "cas 1→3", Outcome::Info),
            ]
        );
        assert_eq!(run.ops[1].invoke_ns, 2 * INDEX_NS);
        assert_eq!(run.ops[0].key, None);
        assert_eq!(run.end_ns, 8 * INDEX_NS);
    }

    #[test]
    fn a_jsonl_file_without_times_or_indices_is_numbered_by_position() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        let lines = [
            r#"{"process":0,"type":"invoke","f":"write","key":"a","value":1}"#,
            "",
            r#"{"process":0,"type":"fail","f":"write","key":"a","value":1}"#,
            r#"{"process":1,"type":"invoke","f":"read","key":"a"}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let (run, timed) = RunHistory::from_file_by_position(&HistoryFile::read(&path).unwrap());
        assert!(!timed);
        let got: Vec<(u64, Option<u64>, Option<u64>)> = run
            .ops
            .iter()
            .map(|o| (o.invoke_index, o.complete_index, o.complete_ns))
            .collect();
        assert_eq!(got, [(0, Some(1), Some(INDEX_NS)), (2, None, None)]);
        assert_eq!(run.ops[0].outcome, Outcome::Fail);
    }
}
