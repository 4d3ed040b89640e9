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

use riptide_history::{EventType, OpKind, Process, Record};
use riptide_history::{OpenOps, Outcome};

/// Counts and latencies so far, for the progress bar and the summary.
#[derive(Clone, Debug, Default)]
pub struct RecorderStats {
    pub invokes: u64,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    pub nemesis: u64,
    /// Latency in nanoseconds of every completed client op, with its outcome.
    pub latencies: Vec<(Outcome, u64)>,
}

struct Inner {
    out: BufWriter<File>,
    next_index: u64,
    stats: RecorderStats,
    /// The invoke time of each open op, to compute latencies.
    open: OpenOps<u64>,
    error: Option<String>,
}

impl Inner {
    /// Counts an event; a completion is paired with its invoke for the latency.
    fn count(&mut self, process: Process, event_type: EventType, time: u64) {
        let Process::Client(p) = process else {
            self.stats.nemesis += 1;
            return;
        };
        let Some(outcome) = event_type.outcome() else {
            self.stats.invokes += 1;
            // A process never invokes twice without a completion between (the driver moves a
            // worker to a new process after an info), so this cannot be refused.
            let _ = self.open.invoke(p, time);
            return;
        };
        match outcome {
            Outcome::Ok => self.stats.ok += 1,
            Outcome::Fail => self.stats.fail += 1,
            _ => self.stats.info += 1,
        }
        if let Some(t0) = self.open.complete(p) {
            self.stats.latencies.push((outcome, time - t0));
        }
    }
}

/// The recorder of a history being written. Shared by every worker and the nemesis (`&Recorder` is enough).
pub struct Recorder {
    start: Instant,
    inner: Mutex<Inner>,
}

impl Recorder {
    /// Creates `path` (it must not exist: a history is never overwritten).
    pub fn create(path: &Path, start: Instant) -> std::io::Result<Recorder> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Recorder {
            start,
            inner: Mutex::new(Inner {
                out: BufWriter::new(file),
                next_index: 0,
                stats: RecorderStats::default(),
                open: OpenOps::new(),
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
        event_type: EventType,
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
            event_type,
            f: f.to_string(),
            key: key.map(str::to_string),
            value,
            error,
        };
        inner.next_index += 1;
        inner.count(process, event_type, time);
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

    /// Records that `process` invokes a `kind` op on `key` with `value` (see
    /// [`riptide_history::value_json`] for a cas).
    pub fn invoke(&self, process: u64, kind: OpKind, key: &str, value: serde_json::Value) {
        let p = Process::Client(process);
        self.write(p, EventType::Invoke, kind.name(), Some(key), value, None);
    }

    /// Records the completion of `process`'s open op (for a read, `value` is what it read).
    pub fn complete(
        &self,
        process: u64,
        event_type: EventType,
        kind: OpKind,
        key: &str,
        value: serde_json::Value,
        error: Option<String>,
    ) {
        debug_assert!(event_type != EventType::Invoke);
        let p = Process::Client(process);
        self.write(p, event_type, kind.name(), Some(key), value, error);
    }

    /// Records a nemesis event (`f` is `start` or `stop`; `value` says what it did).
    pub fn nemesis(&self, f: &str, value: serde_json::Value) {
        self.write(Process::Nemesis, EventType::Info, f, None, value, None);
    }

    pub fn stats(&self) -> RecorderStats {
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
        let history = Recorder::create(&path, Instant::now()).unwrap();
        history.invoke(3, OpKind::Write, "k1", serde_json::json!(7));
        // Read the file while the writer is still alive: nothing may be stuck in a buffer.
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        let record: Record = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(record.process, Process::Client(3));
        assert_eq!(record.event_type, EventType::Invoke);
        assert_eq!(record.value, serde_json::json!(7));
        history.complete(
            3,
            EventType::Info,
            OpKind::Write,
            "k1",
            serde_json::json!(7),
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
        assert!(Recorder::create(&path, Instant::now()).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");
    }
}
