//! `results.json`: the verdict on a run and everything the terminal summary showed.
//!
//! The runner (and `riptide analyze`) writes `Results<&CheckReport>`: the checker's full report,
//! counterexamples included. Readers that need only the verdicts (the index, `campaign`, the
//! tests) read `Results<CheckSummary>`, which is the part of the checker's report this schema
//! promises to keep; the rest of the checker's report is the checker's own format (see its docs).
//! Only `verdict` is required: a field an older or hand-written file lacks gets its default.

use std::collections::BTreeMap;
use std::path::Path;

use riptide_checker::{KeyCounts, Verdict};
use serde::{Deserialize, Serialize};

use crate::availability::Availability;
use crate::replicas::ReplicaCheck;
use crate::summary::RunSummary;
use crate::{check_schema, files, legacy_schema, Result, SCHEMA_VERSION};

/// `results.json`, generic over how much of the checker's report is held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results<C> {
    #[serde(default = "legacy_schema")]
    pub schema: u32,
    pub verdict: Verdict,
    /// False if the run was interrupted before its time limit.
    #[serde(default = "yes")]
    pub complete: bool,
    /// Whether a leader was back after the faults were healed (unknown counts as yes: nothing
    /// says it did not).
    #[serde(default = "yes")]
    pub cluster_recovered: bool,
    #[serde(default)]
    pub summary: RunSummary,
    #[serde(default)]
    pub checker: C,
    /// The replicas compared after the run (absent in older runs and when it was skipped). A
    /// `diverged` comparison makes the run invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<ReplicaCheck>,
    /// The availability check ([`crate::availability`]); an unavailable run is invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<Availability>,
}

fn yes() -> bool {
    true
}

/// The part of the checker's report that `results.json` promises to readers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckSummary {
    pub verdict: Verdict,
    /// Seconds the check took.
    pub elapsed_secs: f64,
    pub key_counts: KeyCounts,
    pub keys: BTreeMap<String, KeyVerdict>,
}

impl Default for CheckSummary {
    /// What a `results.json` without the checker's part says: nothing was decided.
    fn default() -> CheckSummary {
        CheckSummary {
            verdict: Verdict::Unknown,
            elapsed_secs: 0.0,
            key_counts: KeyCounts::default(),
            keys: BTreeMap::new(),
        }
    }
}

/// One key's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyVerdict {
    pub verdict: Verdict,
    /// Why the verdict is unknown.
    #[serde(default)]
    pub reason: Option<String>,
}

impl<C: Serialize> Results<C> {
    pub fn new(
        verdict: Verdict,
        complete: bool,
        cluster_recovered: bool,
        summary: RunSummary,
        checker: C,
    ) -> Results<C> {
        Results {
            schema: SCHEMA_VERSION,
            verdict,
            complete,
            cluster_recovered,
            summary,
            checker,
            replicas: None,
            availability: None,
        }
    }

    /// The same, with the availability check; an unavailable run is invalid.
    pub fn with_availability(mut self, availability: Option<Availability>) -> Results<C> {
        if availability.as_ref().is_some_and(|a| !a.available) {
            self.verdict = Verdict::Invalid;
        }
        self.availability = availability;
        self
    }

    /// The same, with the replica comparison; a divergence makes the verdict invalid.
    pub fn with_replicas(mut self, replicas: Option<ReplicaCheck>) -> Results<C> {
        if replicas.as_ref().is_some_and(ReplicaCheck::is_invalid) {
            self.verdict = Verdict::Invalid;
        }
        self.replicas = replicas;
        self
    }

    /// Writes `dir/results.json` atomically.
    pub fn store(&self, dir: &Path) -> Result<()> {
        crate::layout::write_json(&dir.join(files::RESULTS), self)
    }
}

impl Results<CheckSummary> {
    /// Reads `dir/results.json`.
    pub fn load(dir: &Path) -> Result<Results<CheckSummary>> {
        let path = dir.join(files::RESULTS);
        let results: Results<CheckSummary> = crate::error::read_json(&path)?;
        check_schema(&path, results.schema)?;
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diverged_replicas_make_a_valid_run_invalid_and_agreeing_ones_change_nothing() {
        use crate::replicas::{NodeDigest, ReplicaOutcome};
        let node = |id, data: &str| NodeDigest {
            id,
            applied_index: 9,
            applied_term: 1,
            keys: 1,
            sessions: 1,
            data_digest: data.into(),
            session_digest: "s".into(),
        };
        let results = |nodes| {
            let check = ReplicaCheck::compare(nodes, BTreeMap::new());
            Results::new(
                Verdict::Valid,
                true,
                true,
                RunSummary::default(),
                CheckSummary::default(),
            )
            .with_replicas(Some(check))
        };
        let agree = results(vec![node(1, "a"), node(2, "a")]);
        assert_eq!(agree.verdict, Verdict::Valid);
        let diverged = results(vec![node(1, "a"), node(2, "b"), node(3, "a")]);
        assert_eq!(diverged.verdict, Verdict::Invalid);
        let dir = tempfile::tempdir().unwrap();
        diverged.store(dir.path()).unwrap();
        let back = Results::load(dir.path()).unwrap();
        assert_eq!(back.verdict, Verdict::Invalid);
        let replicas = back.replicas.expect("stored with the results");
        assert_eq!(replicas.outcome, ReplicaOutcome::Diverged);
        assert!(replicas.note.contains("n2 (data)"), "{}", replicas.note);
        // A node that reported a safety violation makes agreeing replicas' run invalid too.
        let check = ReplicaCheck::compare(vec![node(1, "a"), node(2, "a")], BTreeMap::new());
        let violated = check.with_violations([(2, "leader 3 replaced ...".to_string())].into());
        let results = Results::new(
            Verdict::Valid,
            true,
            true,
            RunSummary::default(),
            CheckSummary::default(),
        )
        .with_replicas(Some(violated));
        assert_eq!(results.verdict, Verdict::Invalid);
        let lines = results.replicas.as_ref().unwrap().describe_violations();
        assert_eq!(lines, ["n2: leader 3 replaced ..."]);
        // Without a comparison the field is left out, and files without it still load.
        let none = Results::new(
            Verdict::Valid,
            true,
            true,
            RunSummary::default(),
            CheckSummary::default(),
        );
        none.store(dir.path()).unwrap();
        let text = std::fs::read_to_string(dir.path().join("results.json")).unwrap();
        assert!(!text.contains("replicas"), "{text}");
        assert_eq!(Results::load(dir.path()).unwrap().replicas, None);
    }

    #[test]
    fn results_written_whole_read_back_as_a_summary() {
        let dir = tempfile::tempdir().unwrap();
        let checker = serde_json::json!({
            "verdict": "invalid", "elapsed_secs": 0.5, "file": "h.jsonl",
            "key_counts": {"valid": 1, "invalid": 1, "unknown": 0},
            "keys": {"a": {"verdict": "valid", "ops": 3}, "b": {"verdict": "invalid", "counterexample": {}}},
        });
        Results::new(
            Verdict::Invalid,
            true,
            false,
            RunSummary::default(),
            &checker,
        )
        .store(dir.path())
        .unwrap();
        let back = Results::load(dir.path()).unwrap();
        assert_eq!(back.schema, SCHEMA_VERSION);
        assert_eq!(back.verdict, Verdict::Invalid);
        assert!(!back.cluster_recovered);
        assert_eq!(back.checker.key_counts.invalid, 1);
        assert_eq!(back.checker.keys["b"].verdict, Verdict::Invalid);

        std::fs::write(dir.path().join("results.json"), r#"{"verdict":"maybe"}"#).unwrap();
        let err = Results::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("results.json") && err.contains("maybe"),
            "{err}"
        );
    }
}
