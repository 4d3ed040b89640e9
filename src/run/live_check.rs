//! Checking while the run goes: a thread that follows `history.jsonl` as the recorder writes
//! it, and checks each key as soon as it is finished.
//!
//! A key is finished when the workload has retired it (it went past `--ops-per-key`, so no op on
//! it is planned again) and every op invoked on it has completed (`ok`, `fail` or `info`). It
//! is checked one poll later than it retired, so that an op planned just before the key retired
//! has had time to be recorded; an op recorded later still is ignored here (the final check has
//! it). Why a finding here is final: a prefix of a linearizable history is linearizable, so a
//! key that is not linearizable on the ops recorded so far is not in the whole history either.
//!
//! The thread reads the file with its own handle and never blocks the recorder. What it found
//! is stored as `live-check.json` ([`riptide_store::live_check`]); with `--stop-on-invalid`
//! the first invalid key ends the workload ([`LiveChecker::found_invalid`]).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use riptide_checker::{CheckOptions, History, ModelKind, Verdict};
use riptide_history::{EventType, Process, Record};
use riptide_store::live_check::{LiveCheck, LiveFinding};
use riptide_workload::Generator;

/// How often the thread reads what the recorder wrote.
const POLL: Duration = Duration::from_millis(500);
/// How long one key's check may take before it is left to the final check.
const KEY_TIME_LIMIT: Duration = Duration::from_secs(10);

/// The background checker of one run.
pub struct LiveChecker {
    stop: Arc<AtomicBool>,
    found: Arc<AtomicBool>,
    thread: Option<JoinHandle<LiveCheck>>,
}

impl LiveChecker {
    /// Follows `history` (written by the run's recorder, whose clock started at `start`) and
    /// checks finished keys with `model` (none: nothing is checked).
    pub fn spawn(
        history: PathBuf,
        model: Option<ModelKind>,
        generator: Arc<Mutex<Generator>>,
        start: Instant,
        stop_on_invalid: bool,
    ) -> LiveChecker {
        let stop = Arc::new(AtomicBool::new(false));
        let found = Arc::new(AtomicBool::new(false));
        let (stop2, found2) = (stop.clone(), found.clone());
        let thread = std::thread::Builder::new()
            .name("riptide-live-check".into())
            .spawn(move || {
                // A model this riptide does not know is the judge's to report.
                let Some(model) = model else {
                    return LiveCheck::default();
                };
                let mut keys = Keys::new(history, model, start);
                keys.report.stop_on_invalid = stop_on_invalid;
                while !stop2.load(Ordering::SeqCst) {
                    std::thread::sleep(POLL);
                    let live = |key: &str| generator.lock().map_or(true, |g| g.is_live(key));
                    keys.poll(&live);
                    if !keys.report.invalid.is_empty() {
                        found2.store(true, Ordering::SeqCst);
                    }
                }
                keys.report
            })
            .ok();
        LiveChecker {
            stop,
            found,
            thread,
        }
    }

    /// Some key was found not linearizable.
    pub fn found_invalid(&self) -> bool {
        self.found.load(Ordering::SeqCst)
    }

    /// Stops the thread (at the end of the workload) and returns what it found.
    pub fn finish(mut self) -> LiveCheck {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

/// One key's records so far.
#[derive(Default)]
struct KeyLog {
    records: Vec<(usize, Record)>,
    /// Invocations without a completion yet.
    open: i64,
    invokes: u64,
    /// Seen retired at the previous poll.
    retired: bool,
}

/// The thread's state: the file read so far and the keys not yet checked.
struct Keys {
    path: PathBuf,
    file: Option<std::fs::File>,
    /// Bytes after the last complete line.
    partial: Vec<u8>,
    lines: usize,
    model: ModelKind,
    start: Instant,
    pending: HashMap<String, KeyLog>,
    checked: HashSet<String>,
    report: LiveCheck,
}

impl Keys {
    fn new(path: PathBuf, model: ModelKind, start: Instant) -> Keys {
        Keys {
            path,
            file: None,
            partial: Vec::new(),
            lines: 0,
            model,
            start,
            pending: HashMap::new(),
            checked: HashSet::new(),
            report: LiveCheck::default(),
        }
    }

    /// Reads what is new, then checks every key that is finished.
    fn poll(&mut self, live: &dyn Fn(&str) -> bool) {
        self.read_new();
        let mut ready = Vec::new();
        for (key, log) in &mut self.pending {
            if live(key) {
                continue;
            }
            if log.retired && log.open == 0 {
                ready.push(key.clone());
            }
            log.retired = true;
        }
        ready.sort();
        for key in ready {
            if let Some(log) = self.pending.remove(&key) {
                self.check(&key, log);
                self.checked.insert(key);
            }
        }
    }

    fn read_new(&mut self) {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let mut bytes = std::mem::take(&mut self.partial);
        if file.read_to_end(&mut bytes).is_err() {
            self.partial = bytes;
            return;
        }
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.partial = bytes.split_off(complete);
        for line in bytes.split(|&b| b == b'\n') {
            if line.is_empty() {
                continue;
            }
            self.lines += 1;
            // A line that does not parse is the final check's to report, with its position.
            if let Ok(record) = serde_json::from_slice::<Record>(line) {
                self.add(self.lines, record);
            }
        }
    }

    fn add(&mut self, line: usize, record: Record) {
        let (Process::Client(_), Some(key)) = (record.process, record.key.as_ref()) else {
            return;
        };
        if self.checked.contains(key) {
            return;
        }
        let log = self.pending.entry(key.clone()).or_default();
        if record.event_type == EventType::Invoke {
            log.open += 1;
            log.invokes += 1;
        } else {
            log.open -= 1;
        }
        log.records.push((line, record));
    }

    fn check(&mut self, key: &str, log: KeyLog) {
        let verdict = check_key(&self.path, self.model, &log.records);
        self.report.keys_checked += 1;
        self.report.ops_checked += log.invokes;
        match verdict {
            Some(Verdict::Invalid) => {
                let found_at_s = self.start.elapsed().as_secs_f64();
                tracing::warn!(key, found_at_s, "live check: key is not linearizable");
                self.report.invalid.push(LiveFinding {
                    key: key.to_string(),
                    found_at_s,
                    ops: log.invokes,
                });
            }
            Some(Verdict::Valid) => {}
            _ => self.report.keys_unknown += 1,
        }
    }
}

/// The verdict on one key's records; `None` if the checker could not read them (the final
/// check reports why).
fn check_key(path: &Path, model: ModelKind, records: &[(usize, Record)]) -> Option<Verdict> {
    let history = History::from_records(path, records.iter().map(|(l, r)| (*l, r))).ok()?;
    let opts = CheckOptions {
        time_limit: Some(KEY_TIME_LIMIT),
        threads: Some(1),
        ..CheckOptions::default()
    };
    riptide_checker::check(&history, model, &opts)
        .ok()
        .map(|r| r.verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(index: u64, process: u64, t: &str, f: &str, key: &str, value: &str) -> String {
        format!(
            r#"{{"index":{index},"time":{index},"process":{process},"type":"{t}","f":"{f}","key":"{key}","value":{value}}}"#
        ) + "\n"
    }

    /// Key `a`: a write of 1 then a read of 2 (never written): not linearizable. Key `b`: a write
    /// and a read of it. Key `c`: an op still open.
    fn history() -> String {
        [
            line(0, 0, "invoke", "write", "a", "1"),
            line(1, 0, "ok", "write", "a", "1"),
            line(2, 1, "invoke", "read", "a", "null"),
            line(3, 1, "ok", "read", "a", "2"),
            line(4, 0, "invoke", "write", "b", "5"),
            line(5, 0, "ok", "write", "b", "5"),
            line(6, 1, "invoke", "read", "b", "null"),
            line(7, 1, "ok", "read", "b", "5"),
            line(8, 2, "invoke", "write", "c", "1"),
        ]
        .concat()
    }

    #[test]
    fn finished_keys_are_checked_one_poll_after_they_retire_and_an_invalid_one_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let text = history();
        // Written in two parts, the first ending inside a line: only complete lines count.
        let cut = text.len() - 20;
        std::fs::write(&path, &text[..cut]).unwrap();
        let mut keys = Keys::new(path.clone(), ModelKind::CasRegister, Instant::now());
        let none_live = |_: &str| false;
        keys.poll(&none_live);
        assert_eq!(keys.report.keys_checked, 0, "retired keys wait one poll");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&text.as_bytes()[cut..]).unwrap();
        keys.poll(&none_live);
        assert_eq!(
            keys.report.keys_checked, 2,
            "a and b, not c (an op is open)"
        );
        assert_eq!(keys.report.ops_checked, 4);
        let keys_found: Vec<&str> = keys.report.invalid.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys_found, ["a"]);
        // c completes: it is checked at the next poll, and a late record of `a` is ignored.
        let more =
            line(9, 2, "ok", "write", "c", "1") + &line(10, 3, "invoke", "read", "a", "null");
        f.write_all(more.as_bytes()).unwrap();
        keys.poll(&none_live);
        assert_eq!(keys.report.keys_checked, 3);
        assert_eq!(keys.report.invalid.len(), 1);
    }

    #[test]
    fn live_keys_are_not_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        std::fs::write(&path, history()).unwrap();
        let mut keys = Keys::new(path, ModelKind::CasRegister, Instant::now());
        let all_live = |_: &str| true;
        for _ in 0..3 {
            keys.poll(&all_live);
        }
        assert_eq!(keys.report.keys_checked, 0);
    }
}
