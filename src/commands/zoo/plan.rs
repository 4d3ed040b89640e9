//! `zoo-plan.json`: what a zoo was asked, written into its folder before the first run, so that a
//! zoo stopped part way (Ctrl-C, a session or machine that went away) continues where it was with
//! `riptide zoo --resume DIR`.
//!
//! The two halves are ordinary campaigns, and a campaign already keeps every run it finished
//! (`campaign.json` is rewritten after each) and resumes from its folder. The plan is what ties
//! them to one zoo: which bugs, how many runs, which options, and the two campaign folders. A
//! resumed zoo runs each half's missing runs with the options it started with and then writes
//! the table into the same folder, as if it had never stopped. The table of a zoo that has not
//! finished is written too, marked incomplete, so what was measured is never lost.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::exit::Exit;

/// The plan's file in the zoo's folder (`results/zoo/STAMP/`).
pub const PLAN_FILE: &str = "zoo-plan.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZooPlan {
    pub started_at: String,
    pub seed: u64,
    /// Runs of each bug, and of the correct node.
    pub runs: u32,
    pub clean_runs: u32,
    pub bugs: Vec<String>,
    /// Every run's `riptide test` options (the zoo's defaults and the user's).
    pub test_args: Vec<String>,
    /// The two campaigns' folders, relative to the results dir (`campaigns/zoo-bugs/STAMP`);
    /// no clean campaign with `--clean-runs 0`.
    pub bugs_campaign: String,
    pub clean_campaign: Option<String>,
}

impl ZooPlan {
    /// Writes `dir/zoo-plan.json`.
    pub fn store(&self, dir: &Path) -> Result<(), Exit> {
        riptide_store::layout::write_json(&dir.join(PLAN_FILE), self)
            .map_err(|e| Exit::crashed(format!("cannot store the zoo's plan: {e}")))
    }

    /// Reads `dir/zoo-plan.json`, with an error that says what `dir` should have been.
    pub fn load(dir: &Path) -> Result<ZooPlan, Exit> {
        let path = dir.join(PLAN_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Exit::bad_args(format!(
                "--resume {}: cannot read {PLAN_FILE} ({e}); give the folder a zoo printed \
                 at its start (results/zoo/STAMP)",
                dir.display()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Exit::bad_args(format!(
                "--resume {}: {} is not a zoo plan ({e}); it may be damaged or from another \
                 version of riptide: start a new zoo",
                dir.display(),
                path.display()
            ))
        })
    }
}

/// The results dir of the zoo folder `dir` (`RESULTS/zoo/STAMP`), whose campaigns the plan
/// names relative to it.
pub fn results_dir_of(dir: &Path) -> Result<PathBuf, Exit> {
    let parent = dir
        .parent()
        .filter(|p| p.file_name() == Some(super::ZOO_DIR.as_ref()));
    match parent.and_then(Path::parent) {
        Some(results) if results.as_os_str().is_empty() => Ok(PathBuf::from(".")),
        Some(results) => Ok(results.to_path_buf()),
        None => Err(Exit::bad_args(format!(
            "--resume {}: not a zoo's folder; give RESULTS/zoo/STAMP, as the zoo printed at its start",
            dir.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ZooPlan {
        ZooPlan {
            started_at: "20261207T160000".into(),
            seed: 1,
            runs: 10,
            clean_runs: 20,
            bugs: vec!["stale-read".into(), "no-dedup".into()],
            test_args: vec!["--nodes".into(), "5".into()],
            bugs_campaign: "campaigns/zoo-bugs/20261207T160000".into(),
            clean_campaign: Some("campaigns/zoo-clean/20261207T160000".into()),
        }
    }

    #[test]
    fn a_plan_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        plan().store(dir.path()).unwrap();
        assert_eq!(ZooPlan::load(dir.path()).unwrap(), plan());
    }

    #[test]
    fn a_missing_or_damaged_plan_says_what_to_give_instead() {
        let dir = tempfile::tempdir().unwrap();
        let err = ZooPlan::load(dir.path()).unwrap_err();
        assert_eq!(err.code, crate::exit::BAD_ARGS);
        assert!(
            err.message.contains("cannot read zoo-plan.json"),
            "{}",
            err.message
        );
        assert!(err.message.contains("results/zoo/STAMP"), "{}", err.message);
        std::fs::write(dir.path().join(PLAN_FILE), "{\"seed\": 1").unwrap();
        let err = ZooPlan::load(dir.path()).unwrap_err();
        assert!(err.message.contains("is not a zoo plan"), "{}", err.message);
    }

    #[test]
    fn the_results_dir_is_two_levels_up_from_a_zoo_folder() {
        assert_eq!(
            results_dir_of(Path::new("/r/zoo/20261207T160000")).unwrap(),
            PathBuf::from("/r")
        );
        assert_eq!(
            results_dir_of(Path::new("zoo/20261207T160000")).unwrap(),
            PathBuf::from(".")
        );
        let err = results_dir_of(Path::new("/r/campaigns/x")).unwrap_err();
        assert!(
            err.message.contains("not a zoo's folder"),
            "{}",
            err.message
        );
    }
}
