//! Which fsyncs storage does: a [`Durability`] policy, passed when a store is opened
//! ([`super::LogStore::open_with`]). The default does every fsync the module docs promise;
//! turning one off is a deliberate bug, for proving that a power cut catches it (the node's
//! `--unsafe-bug no-fsync`, `vote-not-synced` and `no-dir-fsync`). Every fsync storage does goes
//! through [`fsync`], which asks the policy, so nothing else can forget one.

use std::fs::File;
use std::path::Path;

use super::error::{Error, Result};

/// The fsyncs a store does. Skipping one changes nothing else: what was written is still
/// acknowledged and counted as durable, exactly as a buggy node would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Durability {
    /// fsync WAL segments in `sync()` (and a cut of written records). Off: `no-fsync`.
    pub log: bool,
    /// fsync the hard-state temp file before renaming it over `hardstate`. Off:
    /// `vote-not-synced`.
    pub hard_state: bool,
    /// fsync a directory after creating, renaming or removing a file in it (segments, the hard
    /// state, snapshots, the cluster id). Off: `no-dir-fsync`.
    pub dirs: bool,
}

impl Durability {
    /// Every fsync: the only policy a real node should run.
    pub const FULL: Durability = Durability {
        log: true,
        hard_state: true,
        dirs: true,
    };

    fn skips(self, kind: SyncKind) -> bool {
        match kind {
            SyncKind::Log => !self.log,
            SyncKind::HardState => !self.hard_state,
            SyncKind::Dir => !self.dirs,
            SyncKind::Other => false,
        }
    }
}

impl Default for Durability {
    fn default() -> Self {
        Durability::FULL
    }
}

/// What an fsync makes durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncKind {
    /// A WAL segment's records, or a cut of them.
    Log,
    /// The hard-state temp file, before its rename.
    HardState,
    /// A directory's entries.
    Dir,
    /// Any other file's contents (a snapshot, the cluster id): always done.
    Other,
}

/// fsyncs `file` (only its data with `data_only`), unless `policy` skips `kind`.
pub(crate) fn fsync(
    file: &File,
    path: &Path,
    kind: SyncKind,
    data_only: bool,
    policy: Durability,
) -> Result<()> {
    if policy.skips(kind) {
        return Ok(());
    }
    #[cfg(test)]
    counts::count(kind);
    let what = match kind {
        SyncKind::Dir => "fsync directory",
        _ => "fsync",
    };
    match data_only {
        true => file.sync_data(),
        false => file.sync_all(),
    }
    .map_err(Error::io(what, path))
}

/// The fsyncs this thread did, by kind (unit tests only).
#[cfg(test)]
pub(crate) mod counts {
    use std::cell::Cell;

    use super::SyncKind;

    /// fsyncs of each kind, in the order log, hard state, directory, other.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Counts {
        pub log: u64,
        pub hard_state: u64,
        pub dir: u64,
        pub other: u64,
    }

    thread_local! {
        static COUNTS: Cell<Counts> = Cell::new(Counts::default());
    }

    pub(super) fn count(kind: SyncKind) {
        COUNTS.with(|c| {
            let mut n = c.get();
            match kind {
                SyncKind::Log => n.log += 1,
                SyncKind::HardState => n.hard_state += 1,
                SyncKind::Dir => n.dir += 1,
                SyncKind::Other => n.other += 1,
            }
            c.set(n);
        });
    }

    /// The counts since the last call, and resets them.
    pub fn take() -> Counts {
        COUNTS.with(|c| c.replace(Counts::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::counts::{self, Counts};
    use super::Durability;
    use crate::storage::{LogStore, Snapshot, StorageOptions};
    use crate::types::{Entry, HardState, Payload, SnapshotMeta};

    fn entries(from: u64, to: u64) -> Vec<Entry> {
        (from..=to)
            .map(|index| Entry {
                term: 1,
                index,
                payload: Payload::Command(vec![7; 100]),
            })
            .collect()
    }

    /// The fsyncs of each kind that one workload does under `policy`: open a fresh dir, append
    /// and sync across several segments, save the hard state twice, save a snapshot.
    fn workload(policy: Durability) -> Counts {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("node");
        counts::take();
        let opts = StorageOptions { segment_bytes: 512 };
        let (mut store, _) = LogStore::open_with(&data, opts, policy).unwrap();
        assert_eq!(store.durability(), policy);
        for k in 0..4 {
            store.append(&entries(k * 5 + 1, k * 5 + 5)).unwrap();
            store.sync().unwrap();
        }
        for term in 1..=2 {
            let hs = HardState {
                term,
                voted_for: Some(1),
            };
            store.save_hard_state(&hs).unwrap();
        }
        let meta = SnapshotMeta {
            last_index: 10,
            last_term: 1,
            voters: vec![1],
            learners: Vec::new(),
            outgoing: Vec::new(),
            addresses: Default::default(),
        };
        store.save_snapshot(&Snapshot::new(meta, b"state")).unwrap();
        counts::take()
    }

    #[test]
    fn the_full_policy_syncs_the_log_the_hard_state_and_the_directories() {
        let full = workload(Durability::FULL);
        assert!(full.log >= 4, "one fdatasync per sync(): {full:?}");
        assert_eq!(full.hard_state, 2, "{full:?}");
        assert!(full.dir >= 6, "segments, hard state, snapshot: {full:?}");
        assert_eq!(full.other, 1, "the snapshot file: {full:?}");
    }

    #[test]
    fn each_bug_skips_exactly_its_own_fsyncs() {
        let full = workload(Durability::FULL);
        let no_log = workload(Durability {
            log: false,
            ..Durability::FULL
        });
        assert_eq!(no_log, Counts { log: 0, ..full }, "no-fsync");
        let no_vote = workload(Durability {
            hard_state: false,
            ..Durability::FULL
        });
        assert_eq!(
            no_vote,
            Counts {
                hard_state: 0,
                ..full
            },
            "vote-not-synced"
        );
        let no_dir = workload(Durability {
            dirs: false,
            ..Durability::FULL
        });
        assert_eq!(no_dir, Counts { dir: 0, ..full }, "no-dir-fsync");
    }
}
