//! The history recorder: every invoke and completion goes to `history.jsonl` the moment it
//! happens (one JSON object a line, written through to the OS before the call returns), so a
//! crash of the runner loses nothing already recorded. See `docs/history-format.md`.
//!
//! Lines are numbered (`index`) and stamped (`time`, monotonic nanoseconds since the run started)
//! under one lock, so line order is the real-time order the checker relies on.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::generator::Value;

/// Who performed an op: a client process, or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    Client(u64),
    Nemesis(NemesisTag),
}

/// Serialises as the string `"nemesis"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NemesisTag {
    Nemesis,
}

impl Process {
    pub const NEMESIS: Process = Process::Nemesis(NemesisTag::Nemesis);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub index: u64,
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub op_type: OpType,
    pub f: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub key: Option<String>,
    pub value: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// Counts and latencies so far, for the progress bar and the summary.
#[derive(Clone, Debug, Default)]
pub struct HistoryStats {
    pub invokes: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub nemesis: u64,
    /// Latency in nanoseconds of every completed client op, with its outcome.
    pub latencies: Vec<(OpType, u64)>,
}

struct Inner {
    out: BufWriter<File>,
    next_index: u64,
    stats: HistoryStats,
    /// Invoke time per open process, to compute latencies.
    open: std::collections::HashMap<u64, u64>,
    error: Option<String>,
}

/// A history being written. Shared by every worker and the nemesis (`&History` is enough).
pub struct History {
    start: Instant,
    inner: Mutex<Inner>,
}

impl History {
    /// Creates `path` (it must not exist: a history is never overwritten).
    pub fn create(path: &Path, start: Instant) -> std::io::Result<History> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(History {
            start,
            inner: Mutex::new(Inner {
                out: BufWriter::new(file),
                next_index: 0,
                stats: HistoryStats::default(),
                open: Default::default(),
                error: None,
            }),
        })
    }

    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn write(
        &self,
        process: Process,
        op_type: OpType,
        f: &str,
        key: Option<&str>,
        value: serde_json::Value,
        error: Option<String>,
    ) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let time = self.now();
        let record = Record {
            index: inner.next_index,
            time,
            process,
            op_type,
            f: f.to_string(),
            key: key.map(str::to_string),
            value,
            error,
        };
        inner.next_index += 1;
        match (process, op_type) {
            (Process::Nemesis(_), _) => inner.stats.nemesis += 1,
            (Process::Client(p), OpType::Invoke) => {
                inner.stats.invokes += 1;
                inner.open.insert(p, time);
            }
            (Process::Client(p), outcome) => {
                match outcome {
                    OpType::Ok => inner.stats.ok += 1,
                    OpType::Fail => inner.stats.fail += 1,
                    _ => inner.stats.info += 1,
                }
                if let Some(t0) = inner.open.remove(&p) {
                    inner.stats.latencies.push((outcome, time - t0));
                }
            }
        }
        let mut line = serde_json::to_vec(&record).expect("records always serialise");
        line.push(b'\n');
        let result = inner.out.write_all(&line).and_then(|()| inner.out.flush());
        if let Err(err) = result {
            if inner.error.is_none() {
                tracing::error!("cannot write the history: {err}");
                inner.error = Some(err.to_string());
            }
        }
    }

    pub fn invoke(&self, process: u64, f: &str, key: &str, value: &Value) {
        self.write(
            Process::Client(process),
            OpType::Invoke,
            f,
            Some(key),
            value.to_json(),
            None,
        );
    }

    pub fn complete(
        &self,
        process: u64,
        op_type: OpType,
        f: &str,
        key: &str,
        value: &Value,
        error: Option<String>,
    ) {
        debug_assert!(op_type != OpType::Invoke);
        self.write(
            Process::Client(process),
            op_type,
            f,
            Some(key),
            value.to_json(),
            error,
        );
    }

    /// Records a nemesis event (`f` is `start` or `stop`; `value` says what it did).
    pub fn nemesis(&self, f: &str, value: serde_json::Value) {
        self.write(Process::NEMESIS, OpType::Info, f, None, value, None);
    }

    pub fn stats(&self) -> HistoryStats {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stats
            .clone()
    }

    /// The first write error, if writing ever failed.
    pub fn write_error(&self) -> Option<String> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .error
            .clone()
    }

    /// Flushes and fsyncs the file (at the end of a run).
    pub fn sync(&self) -> std::io::Result<()> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.out.flush()?;
        inner.out.get_ref().sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_is_on_disk_when_the_call_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let history = History::create(&path, Instant::now()).unwrap();
        history.invoke(3, "write", "k1", &Value::Int(7));
        // Read the file while the writer is still alive: nothing may be stuck in a buffer.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        let record: Record = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(record.process, Process::Client(3));
        assert_eq!(record.op_type, OpType::Invoke);
        assert_eq!(record.value, serde_json::json!(7));
        history.complete(
            3,
            OpType::Info,
            "write",
            "k1",
            &Value::Int(7),
            Some("timeout".into()),
        );
        history.nemesis("start", serde_json::json!({"fault": "kill", "nodes": [2]}));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].contains(r#""type":"info""#) && lines[1].contains(r#""error":"timeout""#));
        assert!(lines[2].contains(r#""process":"nemesis""#));
        let stats = history.stats();
        assert_eq!((stats.invokes, stats.info, stats.nemesis), (1, 1, 1));
        assert_eq!(stats.latencies.len(), 1);
    }

    #[test]
    fn an_existing_history_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        std::fs::write(&path, "precious\n").unwrap();
        assert!(History::create(&path, Instant::now()).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");
    }
}
