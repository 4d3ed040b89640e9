//! `--keep-data`: what happens to the nodes' data dirs once the verdict is known.
//!
//! Each node's data dir (`nodes/n<i>/data/`: its write-ahead log, snapshots, term and vote) is
//! most of a run folder's bytes, and is only worth reading when something went wrong. So by
//! default (`on-failure`) a run that is valid and complete removes them at the very end, after
//! the judge (which reads only the history and the replica digests the nodes sent while they
//! ran) and before `test.json` is written for the last time, which records it
//! (`"node_data_removed": true`). An invalid, unknown, interrupted or crashed run keeps them.
//! `always` keeps them, `never` removes them whatever the verdict.
//!
//! Only the per-node folders `nodes/n<i>/` go: the history, `results.json`, the reports, the
//! runner's log and every node's log (`nodes/n<i>.log`) stay.

use std::path::Path;
use std::str::FromStr;

use riptide_store::files;

/// When a run keeps its nodes' data dirs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeepData {
    /// Keep them unless the run is valid and complete.
    #[default]
    OnFailure,
    Always,
    Never,
}

impl FromStr for KeepData {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "on-failure" => Ok(KeepData::OnFailure),
            "always" => Ok(KeepData::Always),
            "never" => Ok(KeepData::Never),
            _ => Err(format!(
                "`{s}` is not a --keep-data choice; use on-failure (the default: keep the nodes' \
                 data only when the run is not valid), always or never"
            )),
        }
    }
}

impl KeepData {
    /// Whether a run whose verdict is `valid` (and that ran its whole time limit when
    /// `complete`) removes its nodes' data dirs.
    pub fn removes(self, valid: bool, complete: bool) -> bool {
        match self {
            KeepData::OnFailure => valid && complete,
            KeepData::Always => false,
            KeepData::Never => true,
        }
    }
}

/// Removes every `run_dir/nodes/n<id>/` (the planned nodes and those the membership nemesis
/// added; never a symlink's target, never the logs beside them). Returns the bytes freed; a
/// folder that cannot be removed is a warning.
pub fn remove_node_data(run_dir: &Path) -> u64 {
    let mut freed = 0;
    let nodes = run_dir.join(files::NODES);
    let Ok(entries) = std::fs::read_dir(&nodes) else {
        return 0;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| {
            name.strip_prefix('n')
                .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    names.sort();
    for name in names {
        let dir = nodes.join(name);
        // `symlink_metadata`: a symlink planted here is removed as a link, its target untouched.
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        let bytes = riptide_store::prune::disk_usage(&dir);
        let removed = if meta.is_dir() {
            std::fs::remove_dir_all(&dir)
        } else {
            std::fs::remove_file(&dir)
        };
        match removed {
            Ok(()) => freed += bytes,
            Err(err) => eprintln!("riptide: warning: cannot remove {}: {err}", dir.display()),
        }
    }
    freed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_failure_removes_only_for_a_valid_complete_run() {
        let d = KeepData::default();
        assert_eq!(d, KeepData::OnFailure);
        assert!(d.removes(true, true));
        assert!(!d.removes(false, true), "invalid or unknown keeps");
        assert!(!d.removes(true, false), "interrupted keeps");
        assert!(!KeepData::Always.removes(true, true));
        assert!(KeepData::Never.removes(false, false));
        assert_eq!("always".parse::<KeepData>(), Ok(KeepData::Always));
        let err = "sometimes".parse::<KeepData>().unwrap_err();
        assert!(err.contains("on-failure") && err.contains("never"), "{err}");
    }

    #[test]
    fn only_the_node_folders_go_and_links_are_not_followed() {
        let run = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep.txt"), "x").unwrap();
        let nodes = run.path().join("nodes");
        std::fs::create_dir_all(nodes.join("n1/data")).unwrap();
        std::fs::write(nodes.join("n1/data/wal"), vec![7u8; 10_000]).unwrap();
        std::fs::write(nodes.join("n1.log"), "log").unwrap();
        std::os::unix::fs::symlink(outside.path(), nodes.join("n2")).unwrap();
        std::fs::create_dir_all(nodes.join("n17/data")).unwrap();
        std::fs::create_dir_all(nodes.join("notes")).unwrap();
        std::fs::write(run.path().join("history.jsonl"), "{}").unwrap();
        let freed = remove_node_data(run.path());
        assert!(freed >= 10_000, "{freed}");
        assert!(!nodes.join("n1").exists() && !nodes.join("n2").exists());
        assert!(
            !nodes.join("n17").exists(),
            "an added node's folder goes too"
        );
        assert!(nodes.join("notes").is_dir(), "only n<id> folders go");
        assert!(nodes.join("n1.log").is_file() && run.path().join("history.jsonl").is_file());
        assert!(
            outside.path().join("keep.txt").is_file(),
            "a link's target is untouched"
        );
    }
}
