//! Snapshots in storage: the file format (format 4, with the configuration and its addresses; formats 3 and 2 still read), writing one on a background
//! thread while the log keeps growing, the crash windows between writing the file and adopting it,
//! and receiving one from a leader in chunks (InstallSnapshot). Real files in temporary directories.

use std::fs;
use std::path::{Path, PathBuf};

use riptide_node::storage::{
    write_snapshot_file, Error, LogStore, Recovered, Snapshot, StorageOptions,
};
use riptide_node::types::{Entry, Index, NodeId, Payload, SnapshotMeta, Term};

fn entry(index: Index, term: Term) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Command(format!("put k{index} v{term}").into_bytes()),
    }
}

fn entries(indexes: std::ops::RangeInclusive<Index>, term: Term) -> Vec<Entry> {
    indexes.map(|i| entry(i, term)).collect()
}

fn open(dir: &Path, segment_bytes: u64) -> (LogStore, Recovered) {
    LogStore::open(dir, StorageOptions { segment_bytes }).expect("open")
}

fn open_err(dir: &Path) -> Error {
    LogStore::open(dir, StorageOptions::default()).expect_err("open must refuse")
}

fn meta(last_index: Index, last_term: Term, voters: &[NodeId]) -> SnapshotMeta {
    SnapshotMeta {
        last_index,
        last_term,
        voters: voters.to_vec(),
        learners: Vec::new(),
        outgoing: Vec::new(),
        addresses: Default::default(),
    }
}

/// A snapshot whose data names its index, so that a mix-up shows.
fn snapshot(last_index: Index, last_term: Term) -> Snapshot {
    let data = format!("state machine as of {last_index}").repeat(20);
    Snapshot::new(meta(last_index, last_term, &[1, 2, 3]), data.as_bytes())
}

/// The first index of every segment file, oldest first.
fn segment_firsts(dir: &Path) -> Vec<Index> {
    let mut firsts: Vec<Index> = fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().parse().unwrap())
        .collect();
    firsts.sort();
    firsts
}

fn incoming(dir: &Path) -> PathBuf {
    dir.join("snapshot.incoming")
}

/// Sends `snap`'s image to `store` in chunks of `chunk` bytes, as a leader would.
fn send(store: &mut LogStore, snap: &Snapshot, chunk: usize) {
    for (i, part) in snap.image().chunks(chunk).enumerate() {
        store
            .write_incoming_chunk((i * chunk) as u64, part)
            .unwrap();
    }
}

fn len_and_crc(snap: &Snapshot) -> (u64, u32) {
    (snap.image().len() as u64, crc32fast::hash(snap.image()))
}

/// Writes a format-1 snapshot file (`rtsnap01`, no voters) as riptide used to.
fn write_v1_snapshot(dir: &Path, last_index: Index, last_term: Term, data: &[u8]) {
    let mut bytes = b"rtsnap01".to_vec();
    bytes.extend_from_slice(&last_index.to_le_bytes());
    bytes.extend_from_slice(&last_term.to_le_bytes());
    bytes.extend_from_slice(&(data.len() as u64).to_le_bytes());
    bytes.extend_from_slice(data);
    let crc = crc32fast::hash(&bytes[8..]);
    bytes.extend_from_slice(&crc.to_le_bytes());
    fs::write(dir.join("snapshot"), bytes).unwrap();
}

// ---- the file format ---------------------------------------------------------------------------

#[test]
fn a_snapshot_round_trips_with_its_voters_and_data() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1 << 20);
    assert_eq!((store.snapshot_meta(), store.snapshot_bytes()), (None, 0));
    store.append(&entries(1..=10, 1)).unwrap();
    store.sync().unwrap();
    let snap = Snapshot::new(meta(7, 1, &[4, 2, 9, u64::MAX]), b"k1=v1;k2=v2");
    assert_eq!(snap.data(), b"k1=v1;k2=v2");
    store.save_snapshot(&snap).unwrap();
    let file = fs::read(tmp.path().join("snapshot")).unwrap();
    assert_eq!(file, snap.image(), "the file is the image, byte for byte");
    assert_eq!(&file[..8], b"rtsnap-4");
    assert_eq!(store.snapshot_meta(), Some(&snap.meta));
    assert_eq!(store.snapshot_bytes(), file.len() as u64);
    drop(store);

    let (store, rec) = open(tmp.path(), 1 << 20);
    let got = rec.snapshot.expect("a snapshot");
    assert_eq!(got, snap);
    assert_eq!(got.meta.voters, vec![4, 2, 9, u64::MAX]);
    assert_eq!(got.data(), b"k1=v1;k2=v2");
    assert_eq!(rec.entries, entries(8..=10, 1));
    assert_eq!(store.snapshot_meta(), Some(&snap.meta));
    assert_eq!(store.snapshot_bytes(), file.len() as u64);
    let image = got.clone().into_image();
    assert_eq!(Snapshot::from_image(image, Path::new("x")).unwrap(), got);
}

#[test]
fn every_single_bit_flip_of_the_snapshot_file_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 1 << 20);
    store.append(&entries(1..=5, 1)).unwrap();
    store
        .save_snapshot(&Snapshot::new(meta(3, 1, &[1, 2]), b"abc"))
        .unwrap();
    drop(store);
    let path = tmp.path().join("snapshot");
    let good = fs::read(&path).unwrap();
    for bit in 0..good.len() * 8 {
        let mut bad = good.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        fs::write(&path, &bad).unwrap();
        let err = open_err(tmp.path());
        assert!(
            matches!(&err, Error::Corrupt { file, .. } if file == &path),
            "bit {bit}: {err}"
        );
    }
    fs::write(&path, &good).unwrap();
    open(tmp.path(), 1 << 20);
}

#[test]
fn a_format_1_snapshot_is_refused_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    write_v1_snapshot(tmp.path(), 10, 2, b"old state");
    let err = open_err(tmp.path());
    assert!(matches!(err, Error::OldSnapshotFormat { .. }), "{err}");
    assert!(err.is_fatal());
    let text = err.to_string();
    assert!(text.contains("snapshot"), "names the file: {text}");
    assert!(text.contains("older riptide"), "{text}");
    assert!(text.contains("could not restore snapshots"), "{text}");
    assert!(text.contains("Move the data dir aside"), "{text}");
    assert!(tmp.path().join("snapshot").exists(), "left for inspection");
}

// ---- taking a snapshot in the background -------------------------------------------------------

#[test]
fn a_snapshot_written_on_another_thread_while_appending_is_adopted_and_survives_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut store, _) = open(dir, 200);
    store.append(&entries(1..=100, 1)).unwrap();
    store.sync().unwrap();
    let snap = snapshot(60, 1);
    std::thread::scope(|s| {
        let writer = s.spawn(|| write_snapshot_file(dir, &snap));
        // The Raft thread keeps going meanwhile: appends, syncs, a new term.
        for batch in 0..20 {
            let first = 101 + batch * 10;
            store.append(&entries(first..=first + 9, 2)).unwrap();
            store.sync().unwrap();
        }
        writer.join().unwrap().unwrap();
    });
    assert_eq!(
        store.first_index(),
        1,
        "nothing is discarded before adoption"
    );
    let before = segment_firsts(dir);
    store.snapshot_written(&snap.meta).unwrap();
    assert_eq!(
        (store.first_index(), store.last_index(), store.last_term()),
        (61, 300, 2)
    );
    assert_eq!(store.term(60), Some(1));
    assert_eq!(store.term(59), None);
    let after = segment_firsts(dir);
    assert!(after.len() < before.len(), "{before:?} -> {after:?}");
    assert!(after[0] <= 60 && after[1] > 60, "{after:?}");
    store.append(&entries(301..=302, 2)).unwrap();
    store.sync().unwrap();
    drop(store);

    let (store, rec) = open(dir, 200);
    assert_eq!(rec.snapshot, Some(snap));
    assert_eq!(rec.entries[0], entry(61, 1));
    assert_eq!(rec.entries.len(), 302 - 60);
    assert_eq!(rec.entries.last(), Some(&entry(302, 2)));
    assert!(rec.repairs.is_empty(), "{:?}", rec.repairs);
    assert_eq!(store.first_index(), 61);
}

#[test]
fn adopting_a_snapshot_that_is_not_the_file_on_disk_is_refused_and_discards_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 200);
    store.append(&entries(1..=50, 1)).unwrap();
    store.sync().unwrap();
    let err = store.snapshot_written(&meta(30, 1, &[1])).unwrap_err();
    assert!(
        matches!(err, Error::SnapshotNotWritten { on_disk: None, .. }),
        "{err}"
    );
    assert!(!err.is_fatal());
    write_snapshot_file(tmp.path(), &snapshot(20, 1)).unwrap();
    let err = store.snapshot_written(&meta(30, 1, &[1])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SnapshotNotWritten {
                on_disk: Some((20, 1)),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.first_index(), 1);
    assert_eq!(segment_firsts(tmp.path())[0], 1);
    // The store is still usable, and adopting the right one works.
    store.snapshot_written(&snapshot(20, 1).meta).unwrap();
    assert_eq!(store.first_index(), 21);
}

// ---- crash windows: the file is renamed into place, but the store never adopted it -------------

#[test]
fn a_snapshot_written_but_never_adopted_is_adopted_by_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut store, _) = open(dir, 200);
    store.append(&entries(1..=100, 1)).unwrap();
    store.sync().unwrap();
    let snap = snapshot(60, 1);
    write_snapshot_file(dir, &snap).unwrap();
    store.append(&entries(101..=120, 2)).unwrap();
    store.sync().unwrap();
    let segments_before = segment_firsts(dir);
    drop(store); // the crash: snapshot_written never ran

    let (store, rec) = open(dir, 200);
    assert_eq!(rec.snapshot, Some(snap.clone()));
    let mut want = entries(61..=100, 1);
    want.extend(entries(101..=120, 2));
    assert_eq!(rec.entries, want);
    assert_eq!((store.first_index(), store.last_index()), (61, 120));
    assert_eq!(store.snapshot_meta(), Some(&snap.meta));
    let after = segment_firsts(dir);
    assert!(after.len() < segments_before.len());
    assert!(after[0] <= 60 && after[1] > 60, "{after:?}");
    assert!(
        !rec.repairs.is_empty()
            && rec
                .repairs
                .iter()
                .all(|r| r.contains("interrupted compaction")),
        "{:?}",
        rec.repairs
    );
}

#[test]
fn a_written_snapshot_the_log_does_not_reach_or_disagrees_with_replaces_it_on_recovery() {
    for (index, term, why) in [(500, 3, "ends at entry 40"), (30, 2, "another term")] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let (mut store, _) = open(dir, 200);
        store.append(&entries(1..=40, 1)).unwrap();
        store.sync().unwrap();
        write_snapshot_file(dir, &snapshot(index, term)).unwrap();
        drop(store);

        let (mut store, rec) = open(dir, 200);
        assert_eq!(rec.snapshot, Some(snapshot(index, term)));
        assert!(rec.entries.is_empty(), "{index}: {:?}", rec.entries);
        assert!(
            rec.repairs
                .iter()
                .any(|r| r.contains("deleted the whole log") && r.contains(why)),
            "{index}: {:?}",
            rec.repairs
        );
        assert_eq!((store.last_index(), store.last_term()), (index, term));
        store.append(&[entry(index + 1, term)]).unwrap();
        store.sync().unwrap();
        drop(store);
        let (_, rec) = open(dir, 200);
        assert_eq!(rec.entries, vec![entry(index + 1, term)]);
    }
}

#[test]
fn a_background_write_older_than_an_installed_snapshot_never_replaces_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (mut store, _) = open(dir, 200);
    store.append(&entries(1..=100, 1)).unwrap();
    store.sync().unwrap();
    // The leader's snapshot arrives and is installed while our own, older one is being written.
    let leader = snapshot(500, 4);
    send(&mut store, &leader, 64);
    let (len, crc) = len_and_crc(&leader);
    store.install_incoming(len, crc).unwrap();
    let ours = snapshot(60, 1);
    let err = write_snapshot_file(dir, &ours).unwrap_err();
    assert!(
        matches!(
            err,
            Error::StaleSnapshot {
                index: 60,
                current_index: 500,
                ..
            }
        ),
        "{err}"
    );
    assert!(!dir.join("snapshot.tmp").exists());
    let err = store.snapshot_written(&ours.meta).unwrap_err();
    assert!(matches!(err, Error::StaleSnapshot { .. }), "{err}");
    store.append(&entries(501..=505, 4)).unwrap();
    store.sync().unwrap();
    drop(store);
    let (_, rec) = open(dir, 200);
    assert_eq!(rec.snapshot, Some(leader));
    assert_eq!(rec.entries, entries(501..=505, 4));
}

// ---- receiving a snapshot from the leader ------------------------------------------------------

#[test]
fn an_install_that_matches_the_log_keeps_the_entries_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 200);
    store.append(&entries(1..=50, 1)).unwrap();
    store.sync().unwrap();
    let leader = snapshot(30, 1);
    send(&mut store, &leader, 17);
    assert!(incoming(tmp.path()).exists());
    let (len, crc) = len_and_crc(&leader);
    let installed = store.install_incoming(len, crc).unwrap();
    assert_eq!(installed, leader);
    assert_eq!(installed.data(), leader.data());
    assert!(!incoming(tmp.path()).exists());
    assert_eq!(
        fs::read(tmp.path().join("snapshot")).unwrap(),
        leader.image()
    );
    assert_eq!(
        (store.first_index(), store.last_index(), store.last_term()),
        (31, 50, 1)
    );
    assert_eq!(store.snapshot_meta(), Some(&leader.meta));
    drop(store);
    let (_, rec) = open(tmp.path(), 200);
    assert_eq!(rec.snapshot, Some(leader));
    assert_eq!(rec.entries, entries(31..=50, 1));
    assert!(rec.repairs.is_empty(), "{:?}", rec.repairs);
}

#[test]
fn an_install_that_disagrees_with_the_log_or_is_ahead_of_it_drops_the_whole_log() {
    for (index, term) in [(30, 2), (50, 1), (900, 7)] {
        let tmp = tempfile::tempdir().unwrap();
        let (mut store, _) = open(tmp.path(), 200);
        store.append(&entries(1..=50, 1)).unwrap();
        store.sync().unwrap();
        let leader = snapshot(index, term);
        send(&mut store, &leader, 1000);
        let (len, crc) = len_and_crc(&leader);
        store.install_incoming(len, crc).unwrap();
        assert_eq!(
            (store.first_index(), store.last_index(), store.last_term()),
            (index + 1, index, term)
        );
        assert_eq!(segment_firsts(tmp.path()), vec![index + 1]);
        let err = store.append(&[entry(index + 2, term)]).unwrap_err();
        assert!(matches!(err, Error::NotContiguous { .. }), "{err}");
        store.append(&[entry(index + 1, term)]).unwrap();
        store.sync().unwrap();
        drop(store);
        let (_, rec) = open(tmp.path(), 200);
        assert_eq!(rec.snapshot, Some(leader));
        assert_eq!(rec.entries, vec![entry(index + 1, term)], "{index}");
    }
}

#[test]
fn a_chunk_that_does_not_continue_the_transfer_is_refused_and_the_transfer_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 200);
    let err = store.write_incoming_chunk(10, b"xyz").unwrap_err();
    assert!(
        matches!(
            err,
            Error::SnapshotChunk {
                expected: 0,
                got: 10
            }
        ),
        "{err}"
    );
    assert!(!err.is_fatal());
    let leader = snapshot(30, 1);
    let image = leader.image();
    store.write_incoming_chunk(0, &image[..40]).unwrap();
    for wrong in [39, 41, 80] {
        let err = store
            .write_incoming_chunk(wrong, &image[40..80])
            .unwrap_err();
        assert!(
            matches!(err, Error::SnapshotChunk { expected: 40, got } if got == wrong),
            "{err}"
        );
    }
    assert_eq!(fs::metadata(incoming(tmp.path())).unwrap().len(), 40);
    store.write_incoming_chunk(40, &image[40..]).unwrap();
    let (len, crc) = len_and_crc(&leader);
    assert_eq!(store.install_incoming(len, crc).unwrap(), leader);
}

#[test]
fn a_chunk_at_offset_zero_restarts_the_transfer() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 200);
    let old = snapshot(30, 1);
    store.write_incoming_chunk(0, &old.image()[..50]).unwrap();
    let leader = snapshot(40, 2);
    send(&mut store, &leader, 33);
    let (len, crc) = len_and_crc(&leader);
    assert_eq!(store.install_incoming(len, crc).unwrap(), leader);
}

/// Installs that must be refused leave the store exactly as it was, delete the received file, and
/// the store keeps working.
fn assert_refused_install(
    send_and_install: impl FnOnce(&mut LogStore) -> Error,
    expect: impl Fn(&Error) -> bool,
) {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 200);
    store.append(&entries(1..=50, 1)).unwrap();
    store.sync().unwrap();
    store.save_snapshot(&snapshot(20, 1)).unwrap();
    let err = send_and_install(&mut store);
    assert!(expect(&err), "{err}");
    assert!(!err.is_fatal(), "{err}");
    assert!(
        !incoming(tmp.path()).exists(),
        "the refused file is deleted"
    );
    assert_eq!(
        (store.first_index(), store.last_index()),
        (21, 50),
        "the store is unchanged"
    );
    assert_eq!(store.snapshot_meta(), Some(&snapshot(20, 1).meta));
    store.append(&entries(51..=52, 1)).unwrap();
    store.sync().unwrap();
    let good = snapshot(45, 1);
    send(&mut store, &good, 100);
    let (len, crc) = len_and_crc(&good);
    store.install_incoming(len, crc).unwrap();
    drop(store);
    let (_, rec) = open(tmp.path(), 200);
    assert_eq!(rec.snapshot, Some(good));
    assert_eq!(rec.entries, entries(46..=52, 1));
}

#[test]
fn an_incoming_snapshot_of_the_wrong_length_is_refused() {
    let leader = snapshot(40, 1);
    let (len, crc) = len_and_crc(&leader);
    assert_refused_install(
        |store| {
            // The last chunk never arrived.
            store
                .write_incoming_chunk(0, &leader.image()[..100])
                .unwrap();
            store.install_incoming(len, crc).unwrap_err()
        },
        |e| matches!(e, Error::BadIncomingSnapshot { detail, .. } if detail.contains("received 100 bytes")),
    );
}

#[test]
fn an_incoming_snapshot_with_the_wrong_crc_is_refused() {
    let leader = snapshot(40, 1);
    let (len, crc) = len_and_crc(&leader);
    assert_refused_install(
        |store| {
            let mut damaged = leader.image().to_vec();
            damaged[60] ^= 0x10;
            store.write_incoming_chunk(0, &damaged).unwrap();
            store.install_incoming(len, crc).unwrap_err()
        },
        |e| {
            matches!(e, Error::BadIncomingSnapshot { file, detail }
                if detail.contains("CRC-32") && file.ends_with("snapshot.incoming"))
        },
    );
}

#[test]
fn an_incoming_image_that_is_not_a_snapshot_is_refused_even_with_a_matching_crc() {
    let mut garbage = snapshot(40, 1).into_image();
    garbage[30] ^= 0x01; // a voter id: the image's own checksum no longer matches
    let (len, crc) = (garbage.len() as u64, crc32fast::hash(&garbage));
    assert_refused_install(
        |store| {
            store.write_incoming_chunk(0, &garbage).unwrap();
            store.install_incoming(len, crc).unwrap_err()
        },
        |e| matches!(e, Error::BadIncomingSnapshot { detail, .. } if detail.contains("not a valid snapshot")),
    );
}

#[test]
fn an_incoming_snapshot_in_format_1_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    write_v1_snapshot(tmp.path(), 40, 1, b"old");
    let v1 = fs::read(tmp.path().join("snapshot")).unwrap();
    let (len, crc) = (v1.len() as u64, crc32fast::hash(&v1));
    assert_refused_install(
        |store| {
            store.write_incoming_chunk(0, &v1).unwrap();
            store.install_incoming(len, crc).unwrap_err()
        },
        |e| matches!(e, Error::BadIncomingSnapshot { detail, .. } if detail.contains("rtsnap01")),
    );
}

#[test]
fn a_stale_incoming_snapshot_is_refused() {
    for (index, term) in [(10, 1), (20, 2)] {
        let leader = snapshot(index, term);
        let (len, crc) = len_and_crc(&leader);
        assert_refused_install(
            |store| {
                send(store, &leader, 64);
                store.install_incoming(len, crc).unwrap_err()
            },
            |e| {
                matches!(
                    e,
                    Error::StaleSnapshot {
                        current_index: 20,
                        ..
                    }
                )
            },
        );
    }
}

#[test]
fn installing_without_a_transfer_or_after_discarding_it_is_refused() {
    let leader = snapshot(40, 1);
    let (len, crc) = len_and_crc(&leader);
    assert_refused_install(
        |store| store.install_incoming(len, crc).unwrap_err(),
        |e| matches!(e, Error::BadIncomingSnapshot { detail, .. } if detail.contains("no snapshot is being received")),
    );
    assert_refused_install(
        |store| {
            store
                .write_incoming_chunk(0, &leader.image()[..64])
                .unwrap();
            store.discard_incoming().unwrap();
            let err = store
                .write_incoming_chunk(64, &leader.image()[64..])
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::SnapshotChunk {
                        expected: 0,
                        got: 64
                    }
                ),
                "{err}"
            );
            store.install_incoming(len, crc).unwrap_err()
        },
        |e| matches!(e, Error::BadIncomingSnapshot { .. }),
    );
}

#[test]
fn leftover_incoming_and_temp_snapshots_are_deleted_unread_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 200);
    store.append(&entries(1..=20, 1)).unwrap();
    store.sync().unwrap();
    store.save_snapshot(&snapshot(5, 1)).unwrap();
    // A crash in the middle of a transfer, and one in the middle of a background write.
    send(&mut store, &snapshot(15, 1), 64);
    drop(store);
    fs::write(
        tmp.path().join("snapshot.tmp"),
        &snapshot(12, 1).image()[..50],
    )
    .unwrap();

    let (mut store, rec) = open(tmp.path(), 200);
    assert_eq!(rec.snapshot, Some(snapshot(5, 1)));
    assert_eq!(rec.entries, entries(6..=20, 1));
    assert!(!incoming(tmp.path()).exists());
    assert!(!tmp.path().join("snapshot.tmp").exists());
    for name in ["snapshot.incoming", "snapshot.tmp"] {
        assert!(
            rec.repairs.iter().any(|r| r.contains(name)),
            "{name}: {:?}",
            rec.repairs
        );
    }
    // The transfer is not resumed after a restart: the leader starts again at offset 0.
    let err = store.write_incoming_chunk(64, b"x").unwrap_err();
    assert!(
        matches!(err, Error::SnapshotChunk { expected: 0, .. }),
        "{err}"
    );
}
