//! `campaign.json`: a stored campaign, the unit of before/after comparison.
//!
//! A campaign folder is `results/campaigns/<name>/<YYYYMMDDTHHMMSS>/`. Its `campaign.json` says
//! what was asked (the test options, the matrix, runs per cell, the first seed), which node was
//! tested (the binary's path and checksum, the git commit and dirty state of its source when
//! known), one row per run, and the totals. The campaign rewrites it after every run, so an
//! interrupted campaign keeps every run it finished and can be resumed from it.
//!
//! Runs stay where `riptide test` puts them (`results/<test name>/<stamp>/`); a row names its
//! run folder relative to the results dir. A baseline is a name under `results/baselines/`
//! holding the path of a campaign folder ([`save_baseline`], [`resolve_campaign`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use riptide_checker::Verdict;
use serde::{Deserialize, Serialize};

use crate::{check_schema, legacy_schema, Error, Result, SCHEMA_VERSION};

/// The file in a campaign folder.
pub const CAMPAIGN_FILE: &str = "campaign.json";
/// The folder of campaigns, and of saved baselines, under the results dir.
pub const CAMPAIGNS_DIR: &str = "campaigns";
pub const BASELINES_DIR: &str = "baselines";

/// `campaign.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignFile {
    #[serde(default = "legacy_schema")]
    pub schema: u32,
    pub name: String,
    pub started_at: String,
    pub status: CampaignStatus,
    pub asked: CampaignPlan,
    #[serde(default)]
    pub node: NodeIdentity,
    #[serde(default)]
    pub runs: Vec<CampaignRun>,
    #[serde(default)]
    pub totals: Totals,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CampaignStatus {
    Running,
    Complete,
    /// Ctrl-C (or a crash of the campaign itself) stopped it; `riptide campaign --resume DIR`
    /// runs what is left.
    Interrupted,
    /// `--stop-on-invalid` ended it at the first invalid run.
    StoppedOnInvalid,
}

/// What the campaign was asked to run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CampaignPlan {
    /// Runs of each cell of the matrix (of the one cell without a matrix).
    pub runs: u32,
    /// Run k of every cell uses `first_seed + k`, so cells and campaigns compare seed by seed.
    pub first_seed: u64,
    /// `--matrix KEY=V1,V2` in the order given; each key is a `riptide test` flag.
    #[serde(default)]
    pub matrix: Vec<(String, Vec<String>)>,
    /// The `riptide test` options every run gets (after `--`).
    #[serde(default)]
    pub test_args: Vec<String>,
    #[serde(default)]
    pub stop_on_invalid: bool,
}

/// The node that was tested.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeIdentity {
    /// The binary that ran the nodes (riptide itself for its built-in node).
    pub binary: String,
    /// CRC-32 and size of that binary: two campaigns of the same build have the same.
    pub binary_crc32: String,
    pub binary_bytes: u64,
    /// The commit of the source tree the binary was built from, when it can be told.
    pub git_commit: Option<String>,
    /// Whether that tree had uncommitted changes.
    pub git_dirty: Option<bool>,
}

/// One run of the campaign.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignRun {
    /// The matrix values of the run's cell (`nemesis=kill`, `nodes=5`); empty without a matrix.
    #[serde(default)]
    pub cell: BTreeMap<String, String>,
    pub seed: u64,
    /// `valid`, `invalid`, `unknown`, or `crashed` (no results.json).
    pub verdict: RunOutcome,
    /// What was wrong, for an invalid run: `not-linearizable`, `replicas-diverged` or both.
    #[serde(default)]
    pub anomalies: Vec<String>,
    /// The run folder, relative to the results dir.
    pub dir: Option<String>,
    #[serde(default)]
    pub seconds: f64,
    /// Completed ok ops per second of the run's duration.
    #[serde(default)]
    pub ok_per_s: f64,
    #[serde(default)]
    pub p50_ms: f64,
    #[serde(default)]
    pub p99_ms: f64,
    /// Fault starts by kind.
    #[serde(default)]
    pub faults: BTreeMap<String, u64>,
    #[serde(default)]
    pub unsafe_bugs: Vec<String>,
    /// False when no leader came back after the faults were healed.
    #[serde(default = "yes")]
    pub cluster_recovered: bool,
    /// For an invalid run, seconds into the run when it was known: when the live check found
    /// the first invalid key (`live-check.json`), else the end of the history (the final
    /// check, the replica comparison and the liveness verdict all come after the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caught_at_s: Option<f64>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    Valid,
    Invalid,
    Unknown,
    Crashed,
}

impl RunOutcome {
    pub fn from_verdict(v: Verdict) -> RunOutcome {
        match v {
            Verdict::Valid => RunOutcome::Valid,
            Verdict::Invalid => RunOutcome::Invalid,
            Verdict::Unknown => RunOutcome::Unknown,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RunOutcome::Valid => "valid",
            RunOutcome::Invalid => "invalid",
            RunOutcome::Unknown => "unknown",
            RunOutcome::Crashed => "crashed",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub runs: u32,
    pub valid: u32,
    pub invalid: u32,
    pub unknown: u32,
    pub crashed: u32,
}

impl CampaignFile {
    pub fn new(name: &str, started_at: &str, asked: CampaignPlan, node: NodeIdentity) -> Self {
        CampaignFile {
            schema: SCHEMA_VERSION,
            name: name.to_string(),
            started_at: started_at.to_string(),
            status: CampaignStatus::Running,
            asked,
            node,
            runs: Vec::new(),
            totals: Totals::default(),
        }
    }

    /// Adds a finished run and recounts the totals.
    pub fn push(&mut self, run: CampaignRun) {
        self.runs.push(run);
        let mut t = Totals {
            runs: self.runs.len() as u32,
            ..Totals::default()
        };
        for run in &self.runs {
            match run.verdict {
                RunOutcome::Valid => t.valid += 1,
                RunOutcome::Invalid => t.invalid += 1,
                RunOutcome::Unknown => t.unknown += 1,
                RunOutcome::Crashed => t.crashed += 1,
            }
        }
        self.totals = t;
    }

    /// Writes `dir/campaign.json` atomically.
    pub fn store(&self, dir: &Path) -> Result<()> {
        crate::layout::write_json(&dir.join(CAMPAIGN_FILE), self)
    }

    /// Reads `dir/campaign.json`.
    pub fn load(dir: &Path) -> Result<CampaignFile> {
        let path = dir.join(CAMPAIGN_FILE);
        let file: CampaignFile = crate::error::read_json(&path)?;
        check_schema(&path, file.schema)?;
        Ok(file)
    }
}

/// Creates a fresh campaign folder `results/campaigns/<name>/<stamp>[-n]/`.
pub fn create_campaign_dir(results: &Path, name: &str, unix_secs: u64) -> Result<PathBuf> {
    crate::layout::create_run_dir(&results.join(CAMPAIGNS_DIR), name, unix_secs)
}

/// Every campaign folder under `results/campaigns/`, oldest first.
pub fn list_campaigns(results: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(names) = std::fs::read_dir(results.join(CAMPAIGNS_DIR)) else {
        return found;
    };
    for name in names.flatten() {
        let Ok(stamps) = std::fs::read_dir(name.path()) else {
            continue;
        };
        for stamp in stamps.flatten() {
            if stamp.path().join(CAMPAIGN_FILE).is_file() {
                found.push(stamp.path());
            }
        }
    }
    found.sort_by_key(|p| p.file_name().map(|n| n.to_owned()));
    found
}

/// Keeps `campaign` as the baseline `name`: `results/baselines/<name>` holds its path.
pub fn save_baseline(results: &Path, name: &str, campaign: &Path) -> Result<PathBuf> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(Error::Layout(format!(
            "baseline name `{name}` must be non-empty, without `/`, not starting with `.`"
        )));
    }
    let dir = results.join(BASELINES_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| Error::Write {
        path: dir.clone(),
        source,
    })?;
    let campaign = std::fs::canonicalize(campaign).map_err(|source| Error::Read {
        path: campaign.to_path_buf(),
        source,
    })?;
    let path = dir.join(name);
    let text = format!("{}\n", campaign.display());
    crate::layout::write_atomic(&path, text.as_bytes()).map_err(|source| Error::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// A campaign folder given on the command line: a folder with a `campaign.json`, or the name
/// of a saved baseline.
pub fn resolve_campaign(results: &Path, given: &str) -> Result<PathBuf> {
    let as_dir = Path::new(given);
    if as_dir.join(CAMPAIGN_FILE).is_file() {
        return Ok(as_dir.to_path_buf());
    }
    let baseline = results.join(BASELINES_DIR).join(given);
    if baseline.is_file() {
        let text = std::fs::read_to_string(&baseline).map_err(|source| Error::Read {
            path: baseline.clone(),
            source,
        })?;
        let dir = PathBuf::from(text.trim());
        if dir.join(CAMPAIGN_FILE).is_file() {
            return Ok(dir);
        }
        return Err(Error::Layout(format!(
            "baseline {given} points at {}, which has no {CAMPAIGN_FILE} (was it pruned?); save a new one with --save-baseline {given}",
            dir.display()
        )));
    }
    Err(Error::Layout(format!(
        "{given} is neither a campaign folder (no {CAMPAIGN_FILE} in it) nor a saved baseline in {}",
        results.join(BASELINES_DIR).display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seed: u64, verdict: RunOutcome) -> CampaignRun {
        CampaignRun {
            caught_at_s: None,
            cell: BTreeMap::new(),
            seed,
            verdict,
            anomalies: vec![],
            dir: Some(format!("riptide/2026120{seed}T000000")),
            seconds: 10.0,
            ok_per_s: 100.0,
            p50_ms: 1.0,
            p99_ms: 5.0,
            faults: BTreeMap::new(),
            unsafe_bugs: vec![],
            cluster_recovered: true,
        }
    }

    #[test]
    fn a_campaign_round_trips_and_counts_its_runs() {
        let results = tempfile::tempdir().unwrap();
        let dir = create_campaign_dir(results.path(), "c", 0).unwrap();
        assert!(dir.starts_with(results.path().join("campaigns/c")));
        let mut file = CampaignFile::new(
            "c",
            "19700101T000000",
            CampaignPlan::default(),
            NodeIdentity::default(),
        );
        file.push(run(1, RunOutcome::Valid));
        file.push(run(2, RunOutcome::Invalid));
        file.push(run(3, RunOutcome::Crashed));
        assert_eq!(
            file.totals,
            Totals {
                runs: 3,
                valid: 1,
                invalid: 1,
                unknown: 0,
                crashed: 1
            }
        );
        file.store(&dir).unwrap();
        assert_eq!(CampaignFile::load(&dir).unwrap(), file);
        assert_eq!(list_campaigns(results.path()), vec![dir.clone()]);
        std::fs::write(dir.join(CAMPAIGN_FILE), r#"{"name":"c"}"#).unwrap();
        let err = CampaignFile::load(&dir).unwrap_err().to_string();
        assert!(err.contains("campaign.json"), "{err}");
    }

    #[test]
    fn a_baseline_resolves_to_its_campaign_and_bad_names_are_clear_errors() {
        let results = tempfile::tempdir().unwrap();
        let dir = create_campaign_dir(results.path(), "c", 0).unwrap();
        CampaignFile::new("c", "t", CampaignPlan::default(), NodeIdentity::default())
            .store(&dir)
            .unwrap();
        save_baseline(results.path(), "main", &dir).unwrap();
        let resolved = resolve_campaign(results.path(), "main").unwrap();
        assert_eq!(resolved, std::fs::canonicalize(&dir).unwrap());
        assert_eq!(
            resolve_campaign(results.path(), dir.to_str().unwrap()).unwrap(),
            dir
        );
        let err = resolve_campaign(results.path(), "nope")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("neither a campaign folder") && err.contains("baselines"),
            "{err}"
        );
        assert!(save_baseline(results.path(), "../x", &dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
        let err = resolve_campaign(results.path(), "main")
            .unwrap_err()
            .to_string();
        assert!(err.contains("was it pruned"), "{err}");
    }
}
