//! riptide's own node storage, unchanged, on faultfs: what it synced survives every kind of
//! power cut, and it recovers from what the cut left.

mod common;

use std::fs;

use common::Fixture;
use riptide_faultfs::Mode;
use riptide_node::storage::{LogStore, StorageOptions};
use riptide_node::types::{Entry, HardState, Payload};

fn entries(from: u64, to: u64) -> Vec<Entry> {
    (from..=to)
        .map(|index| Entry {
            term: 1,
            index,
            payload: Payload::Command(vec![index as u8; 300]),
        })
        .collect()
}

/// Small segments, so that the log creates files (directory changes) as it grows.
fn opts() -> StorageOptions {
    StorageOptions {
        segment_bytes: 16 << 10,
    }
}

fn run(mode: Mode) -> u64 {
    let fx = Fixture::new();
    let dir = fx.path("node");
    fs::create_dir(&dir).unwrap();
    fx.sync_dir("");
    let hs = HardState {
        term: 1,
        voted_for: Some(1),
    };
    {
        let (mut store, _) = LogStore::open(&dir, opts()).unwrap();
        store.save_hard_state(&hs).unwrap();
        store.append(&entries(1, 50)).unwrap();
        store.sync().unwrap();
        store.append(&entries(51, 80)).unwrap();
        store.sync().unwrap();
        store.append(&entries(81, 1000)).unwrap();
        // Dropped without a sync: as if the node was killed here.
    }
    let report = fx.fs().power_cut(mode).unwrap();
    eprintln!(
        "{mode:?}: {} files cut, {} bytes unsynced, undone {:?}",
        report.files.len(),
        report.bytes_unsynced,
        report.entries_undone
    );
    let (_, recovered) = LogStore::open(&dir, opts())
        .unwrap_or_else(|e| panic!("{mode:?}: recovery failed: {e}; cut: {report:?}"));
    assert_eq!(recovered.hard_state, hs, "{mode:?}");
    let got = recovered.entries.len();
    assert!(
        got >= 80,
        "{mode:?}: synced entries lost, {got} left; cut: {report:?}"
    );
    assert_eq!(recovered.entries[..80], entries(1, 80)[..], "{mode:?}");
    report.bytes_unsynced + report.entries_undone.len() as u64
}

#[test]
fn the_nodes_synced_log_survives_every_kind_of_power_cut() {
    let mut unsynced = run(Mode::All);
    for seed in 0..4 {
        unsynced += run(Mode::Torn(seed)) + run(Mode::Reorder(seed));
    }
    assert!(
        unsynced > 0,
        "the test must leave unsynced changes for the cuts to drop"
    );
}
