//! `test.json`: how a run was started and how far it got.
//!
//! The runner writes it when the run folder is created (status `running`) and again when the run
//! ends (`complete`, `incomplete` after Ctrl-C, or `crashed` with the error). Readers use
//! [`Manifest::load`]. Every field of the plan has a default, so a hand-written or partial
//! `test.json` (a history checked outside a run) still loads; fields the runner never leaves at
//! zero (`nodes`, `concurrency`, the time limits) read as "unknown" when they are zero.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{check_schema, files, legacy_schema, Result, SCHEMA_VERSION};

/// Everything a run was started with, resolved from its options.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestPlan {
    pub name: String,
    pub nodes: usize,
    pub time_limit_s: f64,
    /// Client workers; worker `w` runs as processes `w`, `w + concurrency`, ... (a new process
    /// after each `info`).
    pub concurrency: usize,
    /// Total ops/s; 0 = as fast as the workers can go.
    pub rate: f64,
    pub ops_per_key: u32,
    pub live_keys: usize,
    /// `register` or `append`.
    pub workload: String,
    /// The checker's model: `cas-register` or `kv`.
    pub model: String,
    pub seed: u64,
    pub nemesis: String,
    pub nemesis_interval_s: f64,
    pub nemesis_overlap: bool,
    /// `--nemesis-jitter`: each nemesis wait varied by up to this fraction of the interval.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub nemesis_jitter: f64,
    /// `--nemesis-deck`: the spec's items dealt from a shuffled deck, not drawn afresh.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nemesis_deck: bool,
    pub op_timeout_ms: u64,
    /// `--op-timeout-long-ms`: every second client's timeout (0: none).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub op_timeout_long_ms: u64,
    pub unsafe_bugs: Vec<String>,
    pub port: u16,
    pub check_time_limit_s: f64,
    pub recovery_timeout_s: f64,
    pub node_log: String,
    /// The nodes' snapshot settings (absent in runs from before snapshots existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotPlan>,
    /// The availability rule (`--liveness-threshold`, `--liveness-grace`); absent in runs from
    /// before the check existed, which are judged by the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness: Option<LivenessPlan>,
    /// The cluster id the runner generated for this run's nodes (`--cluster-id` of every
    /// node): a node left over from another run can never join this one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_id: String,
    /// `--retry-indeterminate`: more tries for a write whose outcome is unknown (0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_indeterminate: u32,
    /// `--read-mode` of the nodes (`read-index` when absent: the nodes' default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_mode: Option<String>,
    /// `--stop-on-invalid`: the run ended at the first key the background checker found invalid.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stop_on_invalid: bool,
    /// `--cluster-secret-file`, as given (the path, never the secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_secret_file: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}

/// What `--liveness-threshold` and `--liveness-grace` asked for (see
/// [`crate::availability`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LivenessPlan {
    pub threshold: f64,
    pub grace_s: f64,
}

/// When the nodes snapshot their state machine (`--snapshot-entries`, `--snapshot-bytes`) and how
/// many entries they keep behind a snapshot (`--snapshot-tail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPlan {
    pub entries: u64,
    pub bytes: u64,
    pub tail: u64,
}

impl TestPlan {
    /// The availability rule this run is judged by.
    pub fn liveness_rule(&self) -> crate::availability::LivenessRule {
        let default = crate::availability::LivenessRule::default();
        let plan = self.liveness.unwrap_or(LivenessPlan {
            threshold: default.threshold,
            grace_s: default.grace_s,
        });
        crate::availability::LivenessRule {
            threshold: plan.threshold,
            grace_s: plan.grace_s,
            recovery_s: if self.recovery_timeout_s > 0.0 {
                self.recovery_timeout_s
            } else {
                default.recovery_s
            },
            nodes: self.nodes,
        }
    }

    /// The `riptide test` command line that repeats this run: every option that shapes it,
    /// including the seed (as far as real processes and timing allow, the same faults, ops and
    /// election timeouts).
    pub fn rerun_command(&self) -> String {
        let mut args = vec![
            "riptide test".to_string(),
            format!("--name {}", self.name),
            format!("--nodes {}", self.nodes),
            format!("--time-limit {}", self.time_limit_s),
            format!("--concurrency {}", self.concurrency),
            format!("--rate {}", self.rate),
            format!("--ops-per-key {}", self.ops_per_key),
            format!("--workload {}", self.workload),
            format!("--seed {}", self.seed),
            format!("--nemesis {}", self.nemesis),
            format!("--nemesis-interval {}", self.nemesis_interval_s),
            format!("--op-timeout-ms {}", self.op_timeout_ms),
            format!("--check-time-limit {}", self.check_time_limit_s),
        ];
        if self.nemesis_overlap {
            args.push("--nemesis-overlap".into());
        }
        if self.nemesis_jitter > 0.0 {
            args.push(format!("--nemesis-jitter {}", self.nemesis_jitter));
        }
        if self.nemesis_deck {
            args.push("--nemesis-deck".into());
        }
        if let Some(s) = &self.snapshot {
            args.push(format!(
                "--snapshot-entries {} --snapshot-bytes {} --snapshot-tail {}",
                s.entries, s.bytes, s.tail
            ));
        }
        if let Some(l) = &self.liveness {
            args.push(format!(
                "--liveness-threshold {} --liveness-grace {}",
                l.threshold, l.grace_s
            ));
        }
        if self.op_timeout_long_ms > 0 {
            args.push(format!("--op-timeout-long-ms {}", self.op_timeout_long_ms));
        }
        if self.retry_indeterminate > 0 {
            args.push(format!(
                "--retry-indeterminate {}",
                self.retry_indeterminate
            ));
        }
        if let Some(mode) = &self.read_mode {
            args.push(format!("--read-mode {mode}"));
        }
        if self.stop_on_invalid {
            args.push("--stop-on-invalid".into());
        }
        if let Some(file) = &self.cluster_secret_file {
            args.push(format!("--cluster-secret-file {file}"));
        }
        for bug in &self.unsafe_bugs {
            args.push(format!("--unsafe-bug {bug}"));
        }
        args.join(" ")
    }

    /// `concurrency`, if the file said.
    pub fn known_concurrency(&self) -> Option<usize> {
        (self.concurrency > 0).then_some(self.concurrency)
    }
}

/// How far a run got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Started, not ended (or the runner was killed).
    #[default]
    Running,
    /// Ran its full time limit and was judged.
    Complete,
    /// Interrupted (Ctrl-C) and judged on what it recorded.
    Incomplete,
    /// Ended by an error; `error` says which.
    Crashed,
}

impl RunStatus {
    pub fn name(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Complete => "complete",
            RunStatus::Incomplete => "incomplete",
            RunStatus::Crashed => "crashed",
        }
    }
}

/// `test.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Manifest {
    #[serde(default = "legacy_schema")]
    pub schema: u32,
    pub test: TestPlan,
    /// riptide's version.
    pub version: String,
    /// The command as typed.
    pub command: Vec<String>,
    /// A command that repeats this run, seed included.
    pub rerun: String,
    /// Which node program ran (`riptide node` or a `riptide-node` binary).
    pub node_program: String,
    /// The sandbox the run had, if any.
    pub sandbox: Option<String>,
    /// `YYYYMMDDTHHMMSS`, UTC.
    pub started_at: String,
    pub status: RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `--keep-data` removed the nodes' data dirs (`nodes/n<i>/`) after the verdict; their logs
    /// are still there. Absent (false) when they were kept.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub node_data_removed: bool,
}

impl Manifest {
    /// A manifest of this schema version for `test`.
    pub fn new(test: TestPlan) -> Manifest {
        Manifest {
            schema: SCHEMA_VERSION,
            rerun: test.rerun_command(),
            test,
            ..Manifest::default()
        }
    }

    /// Reads `dir/test.json`.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(files::MANIFEST);
        let manifest: Manifest = crate::error::read_json(&path)?;
        check_schema(&path, manifest.schema)?;
        Ok(manifest)
    }

    /// Writes `dir/test.json` atomically.
    pub fn store(&self, dir: &Path) -> Result<()> {
        crate::layout::write_json(&dir.join(files::MANIFEST), self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_round_trips_and_an_old_one_without_schema_loads_as_version_1() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::new(TestPlan {
            name: "t".into(),
            nodes: 3,
            seed: u64::MAX,
            ..TestPlan::default()
        });
        m.status = RunStatus::Crashed;
        m.error = Some("boom".into());
        m.store(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), m);

        std::fs::write(
            dir.path().join("test.json"),
            r#"{"test":{"name":"old","concurrency":4},"status":"complete"}"#,
        )
        .unwrap();
        let old = Manifest::load(dir.path()).unwrap();
        assert_eq!(old.schema, 1);
        assert_eq!(old.status, RunStatus::Complete);
        assert_eq!(old.test.known_concurrency(), Some(4));
        assert_eq!(old.test.nodes, 0);
    }

    #[test]
    fn the_rerun_command_carries_the_nemesis_jitter_only_when_set() {
        let mut plan = TestPlan {
            nemesis: "all".into(),
            nemesis_overlap: true,
            ..TestPlan::default()
        };
        assert!(!plan.rerun_command().contains("--nemesis-jitter"));
        plan.nemesis_jitter = 0.75;
        let rerun = plan.rerun_command();
        assert!(
            rerun.contains("--nemesis-overlap --nemesis-jitter 0.75"),
            "{rerun}"
        );
        let json = serde_json::to_string(&plan).unwrap();
        let back: TestPlan = serde_json::from_str(&json).unwrap();
        assert_eq!(back.nemesis_jitter, 0.75);
        assert!(!json.contains("nemesis_deck"), "left out while off: {json}");
        assert!(!rerun.contains("--nemesis-deck"));
        plan.nemesis_deck = true;
        assert!(plan.rerun_command().contains(" --nemesis-deck"));
        let back: TestPlan = serde_json::from_str(&serde_json::to_string(&plan).unwrap()).unwrap();
        assert!(back.nemesis_deck);
    }

    #[test]
    fn the_rerun_command_carries_the_patient_clients_timeout_only_when_set() {
        let mut plan = TestPlan {
            op_timeout_ms: 1000,
            ..TestPlan::default()
        };
        assert!(!plan.rerun_command().contains("--op-timeout-long-ms"));
        assert!(!serde_json::to_string(&plan)
            .unwrap()
            .contains("op_timeout_long_ms"));
        plan.op_timeout_long_ms = 6000;
        let rerun = plan.rerun_command();
        assert!(
            rerun.contains("--op-timeout-ms 1000") && rerun.contains("--op-timeout-long-ms 6000"),
            "{rerun}"
        );
        let json = serde_json::to_string(&plan).unwrap();
        let back: TestPlan = serde_json::from_str(&json).unwrap();
        assert_eq!(back.op_timeout_long_ms, 6000);
    }

    #[test]
    fn a_newer_schema_or_a_damaged_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("test.json"), r#"{"schema":99}"#).unwrap();
        let err = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("schema 99") && err.contains("newer riptide"),
            "{err}"
        );

        std::fs::write(dir.path().join("test.json"), r#"{"status":"exploded"}"#).unwrap();
        let err = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("test.json") && err.contains("exploded"),
            "{err}"
        );

        std::fs::remove_file(dir.path().join("test.json")).unwrap();
        let err = Manifest::load(dir.path()).unwrap_err().to_string();
        assert!(err.starts_with("cannot read"), "{err}");
    }
}
