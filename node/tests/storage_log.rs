//! The storage API as the server loop uses it: append, sync, truncate, hard state, snapshots, and
//! what a reopen gives back. Real files in temporary directories.

use std::fs;
use std::path::{Path, PathBuf};

use riptide_node::storage::{Error, LogStore, Recovered, Snapshot, StorageOptions};
use riptide_node::types::{Entry, HardState, Index, Payload, SnapshotMeta, Term};

fn entry(index: Index, term: Term) -> Entry {
    let payload = if index % 7 == 3 {
        Payload::Noop
    } else {
        Payload::Command(format!("put k{index} v{term}").into_bytes())
    };
    Entry {
        term,
        index,
        payload,
    }
}

/// A snapshot with a three-node configuration, as the tests need no other.
fn snapshot(last_index: Index, last_term: Term, data: &[u8]) -> Snapshot {
    let meta = SnapshotMeta {
        last_index,
        last_term,
        voters: vec![1, 2, 3],
        learners: Vec::new(),
        outgoing: Vec::new(),
        addresses: Default::default(),
    };
    Snapshot::new(meta, data)
}

fn entries(indexes: std::ops::RangeInclusive<Index>, term: Term) -> Vec<Entry> {
    indexes.map(|i| entry(i, term)).collect()
}

fn open(dir: &Path, segment_bytes: u64) -> (LogStore, Recovered) {
    LogStore::open(dir, StorageOptions { segment_bytes }).expect("open")
}

/// The segment files, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn segment_name(first: Index) -> String {
    format!("{first:020}.seg")
}

#[test]
fn a_fresh_directory_is_created_and_opens_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("deep/data/n1");
    let (store, rec) = open(&dir, 1024);
    assert_eq!(rec.hard_state, HardState::default());
    assert_eq!(rec.snapshot, None);
    assert!(rec.entries.is_empty());
    assert!(rec.repairs.is_empty(), "{:?}", rec.repairs);
    assert_eq!(
        (store.first_index(), store.last_index(), store.last_term()),
        (1, 0, 0)
    );
    assert_eq!(store.term(0), Some(0));
    assert!(dir.join("log").is_dir());
}

#[test]
fn synced_entries_come_back_identical_across_many_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    {
        let (mut store, _) = open(tmp.path(), 120);
        let mut next = 1;
        for (batch, term) in [(1, 1), (5, 1), (17, 2), (3, 2), (40, 5)] {
            let batch = entries(next..=next + batch - 1, term);
            store.append(&batch).unwrap();
            store.sync().unwrap();
            next += batch.len() as Index;
            all.extend(batch);
        }
        assert_eq!(store.last_index(), 66);
        assert_eq!(store.last_term(), 5);
    }
    let files = segments(tmp.path());
    assert!(files.len() > 10, "tiny segments must roll: {files:?}");
    assert!(files[0].ends_with(segment_name(1)));

    let (mut store, rec) = open(tmp.path(), 120);
    assert_eq!(rec.entries, all);
    assert!(rec.repairs.is_empty(), "{:?}", rec.repairs);
    assert_eq!(store.term(20), Some(2));
    // Appending continues in the newest segment, and survives another reopen.
    store.append(&entries(67..=70, 6)).unwrap();
    store.sync().unwrap();
    drop(store);
    all.extend(entries(67..=70, 6));
    let (_, rec) = open(tmp.path(), 120);
    assert_eq!(rec.entries, all);
}

#[test]
fn each_segment_is_named_by_its_first_index() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1);
    store.append(&entries(1..=4, 1)).unwrap();
    store.sync().unwrap();
    let names: Vec<String> = segments(tmp.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, (1..=4).map(segment_name).collect::<Vec<_>>());
}

#[test]
fn appends_that_were_never_synced_may_vanish_but_nothing_else_does() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1 << 20);
    store.append(&entries(1..=5, 1)).unwrap();
    store.sync().unwrap();
    store.append(&entries(6..=9, 1)).unwrap();
    drop(store); // like a crash: the buffered batch never reached the file
    let (store, rec) = open(tmp.path(), 1 << 20);
    assert_eq!(rec.entries, entries(1..=5, 1));
    assert_eq!(store.last_index(), 5);
}

#[test]
fn append_refuses_what_does_not_continue_the_log_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1 << 20);
    store.append(&entries(1..=3, 2)).unwrap();

    let gap = store.append(&[entry(5, 2)]).unwrap_err();
    assert!(
        matches!(
            gap,
            Error::NotContiguous {
                expected: 4,
                got: 5
            }
        ),
        "{gap}"
    );
    let mut bad_batch = entries(4..=6, 2);
    bad_batch[2].index = 9;
    assert!(matches!(
        store.append(&bad_batch),
        Err(Error::NotContiguous { .. })
    ));
    let lower = store.append(&[entry(4, 1)]).unwrap_err();
    assert!(
        matches!(
            lower,
            Error::TermRegression {
                index: 4,
                term: 1,
                previous: 2
            }
        ),
        "{lower}"
    );
    let huge = Entry {
        term: 2,
        index: 4,
        payload: Payload::Command(vec![0; 17 << 20]),
    };
    assert!(matches!(
        store.append(&[huge]),
        Err(Error::EntryTooLarge { index: 4, .. })
    ));
    assert!(!gap.is_fatal());

    assert_eq!(store.last_index(), 3);
    store.append(&entries(4..=4, 3)).unwrap();
    store.sync().unwrap();
    drop(store);
    let (_, rec) = open(tmp.path(), 1 << 20);
    let mut want = entries(1..=3, 2);
    want.push(entry(4, 3));
    assert_eq!(rec.entries, want);
}

#[test]
fn truncate_in_the_middle_of_a_segment_then_append() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1 << 20);
    store.append(&entries(1..=10, 1)).unwrap();
    store.sync().unwrap();
    store.truncate_from(6).unwrap();
    assert_eq!((store.last_index(), store.last_term()), (5, 1));
    store.append(&entries(6..=8, 2)).unwrap();
    store.sync().unwrap();
    drop(store);

    let (_, rec) = open(tmp.path(), 1 << 20);
    let mut want = entries(1..=5, 1);
    want.extend(entries(6..=8, 2));
    assert_eq!(rec.entries, want);
    assert!(rec.repairs.is_empty(), "{:?}", rec.repairs);
}

#[test]
fn truncate_across_segment_boundaries_removes_whole_files() {
    let tmp = tempfile::tempdir().unwrap();
    // About three entries per segment.
    let (mut store, _) = open(tmp.path(), 100);
    store.append(&entries(1..=30, 1)).unwrap();
    store.sync().unwrap();
    let before = segments(tmp.path()).len();
    let firsts: Vec<Index> = segments(tmp.path())
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().parse().unwrap())
        .collect();

    // Exactly at a segment's first entry: that segment goes too.
    let boundary = firsts[firsts.len() / 2];
    store.truncate_from(boundary).unwrap();
    assert_eq!(store.last_index(), boundary - 1);
    let after = segments(tmp.path());
    assert_eq!(after.len(), firsts.len() / 2);
    assert!(after.len() < before);

    // In the middle of an earlier segment.
    let middle = firsts[2] + 1;
    store.truncate_from(middle).unwrap();
    assert_eq!(segments(tmp.path()).len(), 3);
    store.append(&entries(middle..=middle + 9, 4)).unwrap();
    store.sync().unwrap();
    drop(store);

    let (mut store, rec) = open(tmp.path(), 100);
    let mut want = entries(1..=middle - 1, 1);
    want.extend(entries(middle..=middle + 9, 4));
    assert_eq!(rec.entries, want);

    // Down to the very first entry: the log is empty and starts again at 1.
    store.truncate_from(1).unwrap();
    assert_eq!(store.last_index(), 0);
    assert_eq!(segments(tmp.path()).len(), 1);
    store.append(&entries(1..=2, 9)).unwrap();
    store.sync().unwrap();
    drop(store);
    let (_, rec) = open(tmp.path(), 100);
    assert_eq!(rec.entries, entries(1..=2, 9));
}

#[test]
fn truncating_entries_still_in_the_buffer_needs_no_disk_and_is_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1 << 20);
    store.append(&entries(1..=4, 1)).unwrap();
    store.sync().unwrap();
    store.append(&entries(5..=9, 1)).unwrap();
    store.truncate_from(7).unwrap();
    store.append(&entries(7..=7, 3)).unwrap();
    store.sync().unwrap();
    drop(store);
    let (_, rec) = open(tmp.path(), 1 << 20);
    let mut want = entries(1..=6, 1);
    want.push(entry(7, 3));
    assert_eq!(rec.entries, want);
}

#[test]
fn truncate_past_the_end_is_a_no_op_and_into_the_snapshot_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1 << 20);
    store.append(&entries(1..=5, 1)).unwrap();
    store.truncate_from(6).unwrap();
    store.truncate_from(100).unwrap();
    assert_eq!(store.last_index(), 5);
    store.save_snapshot(&snapshot(3, 1, b"s")).unwrap();
    let err = store.truncate_from(3).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TruncateCompacted {
                index: 3,
                snapshot_index: 3
            }
        ),
        "{err}"
    );
    store.truncate_from(4).unwrap();
    assert_eq!(store.last_index(), 3);
}

#[test]
fn term_and_vote_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1 << 20);
    let voted = HardState {
        term: 7,
        voted_for: Some(3),
    };
    store
        .save_hard_state(&HardState {
            term: 6,
            voted_for: None,
        })
        .unwrap();
    store.save_hard_state(&voted).unwrap();
    drop(store);
    let (mut store, rec) = open(tmp.path(), 1 << 20);
    assert_eq!(rec.hard_state, voted);
    assert_eq!(store.hard_state(), voted);

    // A vote once cast cannot change within its term, and terms never go back.
    let err = store
        .save_hard_state(&HardState {
            term: 7,
            voted_for: Some(2),
        })
        .unwrap_err();
    assert!(matches!(err, Error::HardStateRegression { .. }), "{err}");
    assert!(store
        .save_hard_state(&HardState {
            term: 5,
            voted_for: None
        })
        .is_err());
    store
        .save_hard_state(&HardState {
            term: 8,
            voted_for: None,
        })
        .unwrap();
    drop(store);
    let (_, rec) = open(tmp.path(), 1 << 20);
    assert_eq!(
        rec.hard_state,
        HardState {
            term: 8,
            voted_for: None
        }
    );
}

#[test]
fn a_torn_hard_state_temp_file_is_ignored_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1 << 20);
    let saved = HardState {
        term: 4,
        voted_for: Some(1),
    };
    store.save_hard_state(&saved).unwrap();
    drop(store);
    // A crash in the middle of the next save: half a file under the temp name.
    let good = fs::read(tmp.path().join("hardstate")).unwrap();
    fs::write(tmp.path().join("hardstate.tmp"), &good[..good.len() / 2]).unwrap();

    let (_, rec) = open(tmp.path(), 1 << 20);
    assert_eq!(rec.hard_state, saved);
    assert!(!tmp.path().join("hardstate.tmp").exists());
    assert!(
        rec.repairs.iter().any(|r| r.contains("hardstate.tmp")),
        "{:?}",
        rec.repairs
    );
}

#[test]
fn a_damaged_hard_state_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1 << 20);
    store
        .save_hard_state(&HardState {
            term: 4,
            voted_for: Some(1),
        })
        .unwrap();
    drop(store);
    let path = tmp.path().join("hardstate");
    let mut bytes = fs::read(&path).unwrap();
    bytes[20] ^= 0x04; // inside the term
    fs::write(&path, &bytes).unwrap();
    let err = LogStore::open(tmp.path(), StorageOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("hardstate"), "{err}");
}

#[test]
fn a_snapshot_replaces_the_prefix_and_deletes_covered_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 100);
    store.append(&entries(1..=40, 1)).unwrap();
    store.append(&entries(41..=60, 2)).unwrap();
    store.sync().unwrap();
    let before = segments(tmp.path()).len();
    let snap = snapshot(45, 2, b"state machine at 45");
    store.save_snapshot(&snap).unwrap();
    assert_eq!((store.first_index(), store.last_index()), (46, 60));
    assert_eq!(store.term(45), Some(2));
    assert_eq!(store.term(44), None);

    let remaining = segments(tmp.path());
    assert!(remaining.len() < before / 2, "{before} -> {remaining:?}");
    let first: Index = remaining[0]
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .parse()
        .unwrap();
    assert!(
        first <= 45,
        "the segment holding the snapshot's last entry stays"
    );
    assert!(first > 40, "segments wholly before it are gone: {first}");
    drop(store);

    let (mut store, rec) = open(tmp.path(), 100);
    assert_eq!(rec.snapshot, Some(snap));
    assert_eq!(rec.entries, entries(46..=60, 2));
    assert!(rec.repairs.is_empty(), "{:?}", rec.repairs);
    store.append(&entries(61..=62, 3)).unwrap();
    store.sync().unwrap();
    assert_eq!(store.first_index(), 46);
}

#[test]
fn a_snapshot_ahead_of_the_log_replaces_the_whole_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 100);
    store.append(&entries(1..=20, 1)).unwrap();
    store.sync().unwrap();
    // A follower far behind gets the leader's snapshot.
    store.save_snapshot(&snapshot(500, 9, &[1, 2, 3])).unwrap();
    assert_eq!(
        (store.first_index(), store.last_index(), store.last_term()),
        (501, 500, 9)
    );
    let err = store.append(&[entry(502, 9)]).unwrap_err();
    assert!(err.to_string().contains("expected index 501"), "{err}");
    store.append(&entries(501..=503, 9)).unwrap();
    store.sync().unwrap();
    drop(store);
    let (store, rec) = open(tmp.path(), 100);
    assert_eq!(rec.snapshot.unwrap().meta.last_index, 500);
    assert_eq!(rec.entries, entries(501..=503, 9));
    assert_eq!(store.first_index(), 501);
    assert!(segments(tmp.path())[0].ends_with(segment_name(501)));
}

#[test]
fn a_snapshot_that_disagrees_with_the_log_replaces_the_whole_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1 << 20);
    store.append(&entries(1..=20, 1)).unwrap();
    store.sync().unwrap();
    // The leader's entry 10 has term 3: our 11..20 are from another history.
    store.save_snapshot(&snapshot(10, 3, &[])).unwrap();
    assert_eq!(
        (store.first_index(), store.last_index(), store.last_term()),
        (11, 10, 3)
    );
    drop(store);
    let (_, rec) = open(tmp.path(), 1 << 20);
    assert!(rec.entries.is_empty());
}

#[test]
fn an_older_snapshot_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1 << 20);
    store.append(&entries(1..=20, 1)).unwrap();
    store.save_snapshot(&snapshot(10, 1, &[])).unwrap();
    let err = store.save_snapshot(&snapshot(9, 1, &[])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::StaleSnapshot {
                index: 9,
                current_index: 10,
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_fatal());
    // The same one again is fine (idempotent), and so is a newer one.
    store.save_snapshot(&snapshot(10, 1, &[])).unwrap();
    store.save_snapshot(&snapshot(15, 1, &[])).unwrap();
    assert_eq!(store.first_index(), 16);
}

#[test]
fn a_half_written_snapshot_temp_file_is_ignored_and_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1 << 20);
    store.append(&entries(1..=20, 1)).unwrap();
    store.sync().unwrap();
    let snap = snapshot(5, 1, &[7; 1000]);
    store.save_snapshot(&snap).unwrap();
    drop(store);
    let good = fs::read(tmp.path().join("snapshot")).unwrap();
    fs::write(tmp.path().join("snapshot.tmp"), &good[..600]).unwrap();

    let (_, rec) = open(tmp.path(), 1 << 20);
    assert_eq!(rec.snapshot, Some(snap));
    assert_eq!(rec.entries, entries(6..=20, 1));
    assert!(!tmp.path().join("snapshot.tmp").exists());
    assert!(
        rec.repairs.iter().any(|r| r.contains("snapshot.tmp")),
        "{:?}",
        rec.repairs
    );
}

#[test]
fn a_second_store_on_the_same_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (store, _) = open(tmp.path(), 1 << 20);
    let err = LogStore::open(tmp.path(), StorageOptions::default()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    drop(store);
    open(tmp.path(), 1 << 20);
}

/// Prints appends/s and syncs/s. Not a correctness test; run it on the disk you care about:
/// `cargo test --release -p riptide-node --test storage_log -- --ignored --nocapture throughput`
#[test]
#[ignore]
fn throughput() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 4 << 20);
    let (batches, per_batch) = (500, 100);
    let start = std::time::Instant::now();
    for b in 0..batches {
        let first = b * per_batch + 1;
        let batch: Vec<Entry> = (first..first + per_batch)
            .map(|i| Entry {
                term: 1,
                index: i,
                payload: Payload::Command(vec![b'x'; 100]),
            })
            .collect();
        store.append(&batch).unwrap();
        store.sync().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "{} entries of 100 bytes in {batches} synced batches: {:.0} appends/s, {:.0} syncs/s",
        batches * per_batch,
        (batches * per_batch) as f64 / secs,
        batches as f64 / secs
    );
}
