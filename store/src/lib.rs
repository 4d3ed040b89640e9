//! riptide-store: the results store, and the one place that says what a run folder holds.
//!
//! ```text
//! results/                      the store (`--results-dir`)
//!   index.html                  every run, newest first (drawn by riptide-report)
//!   latest -> <name>/<stamp>    the newest run
//!   <name>/<stamp>/             one run folder
//!     test.json                 [`manifest::Manifest`]: the plan, the seed, the status
//!     history.jsonl             one [`history`] record a line, written as it happened
//!     live-check.json           [`live_check::LiveCheck`]: keys checked while the run went
//!     results.json              [`results::Results`]: the verdict and the summary
//!     nodes/n<i>.log, n<i>/data  each node's log and data dir (the data removed after a valid
//!                               run unless `--keep-data always`)
//!   campaigns/<name>/<stamp>/   [`campaign`]: `campaign.json`, naming its runs
//!   baselines/<name>            a saved baseline: the path of a campaign folder
//! ```
//!
//! [`prune`] decides which runs and campaigns `riptide prune` removes.
//!
//! The run (the root package's `run` module) writes these files through the types here; the
//! reports (riptide-report), `analyze`, `campaign` and the tests read them back through the same
//! types with `Deserialize`. Neither side imports the other: both depend on this crate.
//!
//! `test.json` and `results.json` carry `"schema": SCHEMA_VERSION`. A file without the field was
//! written before it existed and has the same layout as version 1, so it loads as version 1; a
//! file from a newer riptide fails with a message that says so, instead of being misread.

pub mod availability;
pub mod campaign;
pub mod checked;
pub mod error;
pub mod history;
pub mod layout;
pub mod live_check;
pub mod manifest;
pub mod prune;
pub mod replicas;
pub mod results;
pub mod summary;

pub use error::{Error, Result};
pub use history::RunHistory;
pub use manifest::{LivenessPlan, Manifest, RunStatus, SnapshotPlan, TestPlan};
pub use replicas::{ReplicaCheck, ReplicaOutcome};
pub use results::Results;
pub use summary::RunSummary;

/// The version of the run-folder schema this riptide writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The names of the files in a run folder.
pub mod files {
    pub const MANIFEST: &str = "test.json";
    pub const HISTORY: &str = "history.jsonl";
    pub const RESULTS: &str = "results.json";
    /// The nodes' state machines compared after the run ([`crate::replicas`]).
    pub const REPLICAS: &str = "replicas.json";
    /// What the background checker found while the run went ([`crate::live_check`]).
    pub const LIVE_CHECK: &str = "live-check.json";
    pub const RUN_LOG: &str = "riptide.log";
    /// Each node's log (`nodes/n<i>.log`) and data dir (`nodes/n<i>/data`) live under this.
    pub const NODES: &str = "nodes";
}

/// Serde default for `schema`: files written before the field existed are version 1.
pub(crate) fn legacy_schema() -> u32 {
    1
}

/// Checks a file's `schema` against the version this riptide reads.
pub(crate) fn check_schema(path: &std::path::Path, schema: u32) -> Result<()> {
    if schema > SCHEMA_VERSION {
        return Err(Error::Schema {
            path: path.to_path_buf(),
            message: format!(
                "it has schema {schema}, and this riptide reads schema {SCHEMA_VERSION} and older; \
                 use a newer riptide to read it"
            ),
        });
    }
    Ok(())
}
