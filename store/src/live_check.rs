//! `live-check.json`: what the runner's background checker found while the run went.
//!
//! A key the workload has retired (past `--ops-per-key`) whose every op has completed can be
//! checked at once, without waiting for the run to end: a prefix of a linearizable history is
//! linearizable, so a key invalid on the ops recorded so far is invalid in the whole history
//! too, and the final check will say so again. A key found valid here is only valid so far; the
//! final check, with the final reads, decides it. The first invalid key is the run's **time to
//! first catch**, and with `--stop-on-invalid` the moment the run ends.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::files;

/// What the background checker did during one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveCheck {
    /// Keys checked while the run went.
    pub keys_checked: u64,
    /// Their ops (invocations).
    pub ops_checked: u64,
    /// Keys whose check ran out of its time limit (the final check tries again).
    pub keys_unknown: u64,
    /// Every key found invalid, in the order found.
    pub invalid: Vec<LiveFinding>,
    /// `--stop-on-invalid` was given.
    pub stop_on_invalid: bool,
    /// The run's workload ended early because of the first finding.
    pub stopped_run: bool,
}

/// A key the background checker found not linearizable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveFinding {
    pub key: String,
    /// Seconds since the history started when the check found it.
    pub found_at_s: f64,
    /// The ops of the key that were checked.
    pub ops: u64,
}

impl LiveCheck {
    pub fn store(&self, dir: &Path) -> crate::Result<()> {
        crate::layout::write_json(&dir.join(files::LIVE_CHECK), self)
    }

    /// Reads `dir/live-check.json`; `Ok(None)` if the run has none (older runs).
    pub fn load(dir: &Path) -> crate::Result<Option<LiveCheck>> {
        let path = dir.join(files::LIVE_CHECK);
        if !path.exists() {
            return Ok(None);
        }
        crate::error::read_json(&path).map(Some)
    }

    /// The first finding, if any.
    pub fn first_invalid(&self) -> Option<&LiveFinding> {
        self.invalid.first()
    }

    /// One line for the run's summary.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} keys ({} ops) checked while the run went",
            self.keys_checked, self.ops_checked
        );
        if self.keys_unknown > 0 {
            s += &format!(", {} ran out of time", self.keys_unknown);
        }
        match self.first_invalid() {
            None => s += "; none invalid so far",
            Some(f) => {
                s += &format!(
                    "; {} invalid, the first {} found at {:.1} s",
                    self.invalid.len(),
                    f.key,
                    f.found_at_s
                );
                if self.stopped_run {
                    s += " (--stop-on-invalid ended the run there)";
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_finding_is_described_and_survives_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LiveCheck::load(dir.path()).unwrap(), None);
        let check = LiveCheck {
            keys_checked: 7,
            ops_checked: 140,
            keys_unknown: 0,
            invalid: vec![LiveFinding {
                key: "k3".into(),
                found_at_s: 4.25,
                ops: 20,
            }],
            stop_on_invalid: true,
            stopped_run: true,
        };
        check.store(dir.path()).unwrap();
        assert_eq!(LiveCheck::load(dir.path()).unwrap(), Some(check.clone()));
        let line = check.describe();
        assert!(line.contains("7 keys (140 ops)"), "{line}");
        assert!(line.contains("the first k3 found at 4.2 s"), "{line}");
        assert!(line.contains("--stop-on-invalid ended the run"), "{line}");
        assert!(LiveCheck::default().describe().contains("none invalid"));
    }
}
