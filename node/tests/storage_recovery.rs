//! Recovery after crashes and damage: a torn tail is cut and reported, damage anywhere else is
//! refused with an error naming the file and offset, and nothing is ever silently wrong or short.
//!
//! These tests write and damage the files themselves, following the format the module docs of
//! `riptide_node::storage` describe, so they double as a check of that documentation.

use std::fs;
use std::path::{Path, PathBuf};

use riptide_node::storage::{Error, LogStore, Recovered, Snapshot, StorageOptions};
use riptide_node::types::{Entry, Index, Payload, SnapshotMeta, Term};

const SEGMENT_MAGIC: &[u8] = b"rtwal001";

fn entry(index: Index, term: Term) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Command(format!("cas k{index} {term}").into_bytes()),
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

fn opts(segment_bytes: u64) -> StorageOptions {
    StorageOptions { segment_bytes }
}

fn open(dir: &Path, segment_bytes: u64) -> (LogStore, Recovered) {
    LogStore::open(dir, opts(segment_bytes)).expect("open")
}

fn open_err(dir: &Path) -> Error {
    LogStore::open(dir, opts(1 << 20)).expect_err("open must refuse")
}

/// Writes `log` (synced) with the given segment size and closes the store.
fn write_log(dir: &Path, segment_bytes: u64, log: &[Entry]) {
    let (mut store, _) = open(dir, segment_bytes);
    store.append(log).unwrap();
    store.sync().unwrap();
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "seg"));
    files.sort();
    files
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// `(offset, length)` of every record of a segment file: `[u32 len][u32 crc][payload]` after the
/// 8-byte magic.
fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    assert_eq!(&bytes[..8], SEGMENT_MAGIC);
    let mut at = 8;
    let mut found = Vec::new();
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        found.push((at, 8 + len));
        at += 8 + len;
    }
    found
}

/// One record in the documented format: payload `[u64 index][u64 term][u8 kind][bytes]`.
fn encode(index: Index, term: Term, kind: u8, body: &[u8]) -> Vec<u8> {
    let mut payload = Vec::new();
    payload.extend_from_slice(&index.to_le_bytes());
    payload.extend_from_slice(&term.to_le_bytes());
    payload.push(kind);
    payload.extend_from_slice(body);
    let mut record = Vec::new();
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&crc32fast_hash(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

/// CRC-32 (IEEE), bit by bit: the test does not trust the code under test to compute it.
fn crc32fast_hash(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn hand_written_segment(dir: &Path, first: Index, records: &[Vec<u8>]) {
    fs::create_dir_all(dir.join("log")).unwrap();
    let mut bytes = SEGMENT_MAGIC.to_vec();
    for r in records {
        bytes.extend_from_slice(r);
    }
    fs::write(dir.join("log").join(format!("{first:020}.seg")), bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn assert_corrupt(err: &Error, file: &Path, offset: usize, why: &str) {
    let text = err.to_string();
    assert!(matches!(err, Error::Corrupt { .. }), "{text}");
    assert!(
        text.contains(&file.display().to_string()),
        "names the file: {text}"
    );
    assert!(
        text.contains(&format!("at offset {offset}:")),
        "names offset {offset}: {text}"
    );
    assert!(text.contains(why), "says {why:?}: {text}");
    assert!(
        text.contains("Move the data directory aside"),
        "says what to do: {text}"
    );
}

// ---- torn tails: cut, report, start ------------------------------------------------------------

#[test]
fn a_torn_last_record_is_cut_at_every_byte_and_the_log_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let log = entries(1..=10, 3);
    write_log(tmp.path(), 1 << 20, &log);
    let seg = segments(tmp.path()).remove(0);
    let original = fs::read(&seg).unwrap();
    let (last_at, last_len) = *records(&original).last().unwrap();

    for cut in last_at..last_at + last_len {
        fs::write(&seg, &original[..cut]).unwrap();
        let (mut store, rec) = open(tmp.path(), 1 << 20);
        assert_eq!(rec.entries, log[..9], "cut at {cut}");
        if cut == last_at {
            assert!(
                rec.repairs.is_empty(),
                "a clean record boundary needs no repair"
            );
        } else {
            assert_eq!(rec.repairs.len(), 1, "{:?}", rec.repairs);
            let repair = &rec.repairs[0];
            assert!(
                repair.starts_with(&format!("segment {}: torn record", name(&seg))),
                "{repair}"
            );
            assert!(
                repair.contains(&format!("at offset {last_at};")),
                "{repair}"
            );
            assert!(
                repair.contains(&format!("cut {} bytes", cut - last_at)),
                "{repair}"
            );
        }
        assert_eq!(
            fs::metadata(&seg).unwrap().len(),
            last_at as u64,
            "the cut is on disk"
        );

        // Appending after the repair works and survives another reopen.
        store.append(&[entry(10, 4)]).unwrap();
        store.sync().unwrap();
        drop(store);
        let (_, rec) = open(tmp.path(), 1 << 20);
        let mut want = log[..9].to_vec();
        want.push(entry(10, 4));
        assert_eq!(rec.entries, want, "cut at {cut}");
        assert!(rec.repairs.is_empty());
    }
}

#[test]
fn a_torn_newest_segment_is_cut_at_every_byte_even_inside_its_header() {
    let tmp = tempfile::tempdir().unwrap();
    let log = entries(1..=4, 1);
    write_log(tmp.path(), 1, &log); // one entry per segment
    let newest = segments(tmp.path()).pop().unwrap();
    assert_eq!(name(&newest), format!("{:020}.seg", 4));
    let original = fs::read(&newest).unwrap();

    for cut in 0..original.len() {
        fs::write(&newest, &original[..cut]).unwrap();
        let (mut store, rec) = open(tmp.path(), 1);
        assert_eq!(rec.entries, log[..3], "cut at {cut}");
        // 0 bytes: a segment created just before a crash; 8: the bare header. Neither loses data.
        assert_eq!(
            rec.repairs.is_empty(),
            cut == 0 || cut == 8,
            "cut at {cut}: {:?}",
            rec.repairs
        );
        store.append(&[entry(4, 2)]).unwrap();
        store.sync().unwrap();
        drop(store);
        let (_, rec) = open(tmp.path(), 1);
        assert_eq!(rec.entries.last(), Some(&entry(4, 2)), "cut at {cut}");
        assert_eq!(rec.entries.len(), 4);
    }
}

#[test]
fn a_zeroed_tail_after_the_last_record_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let log = entries(1..=5, 1);
    write_log(tmp.path(), 1 << 20, &log);
    let seg = segments(tmp.path()).remove(0);
    let mut bytes = fs::read(&seg).unwrap();
    let end = bytes.len();
    bytes.extend_from_slice(&[0; 4096]); // a preallocated, never written tail
    fs::write(&seg, &bytes).unwrap();

    let (_, rec) = open(tmp.path(), 1 << 20);
    assert_eq!(rec.entries, log);
    assert_eq!(rec.repairs.len(), 1);
    assert!(
        rec.repairs[0].contains("impossible record length 0"),
        "{:?}",
        rec.repairs
    );
    assert!(
        rec.repairs[0].contains("cut 4096 bytes"),
        "{:?}",
        rec.repairs
    );
    assert_eq!(fs::metadata(&seg).unwrap().len(), end as u64);
}

#[test]
fn garbage_after_the_last_record_is_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let log = entries(1..=5, 1);
    write_log(tmp.path(), 1 << 20, &log);
    let seg = segments(tmp.path()).remove(0);
    let mut bytes = fs::read(&seg).unwrap();
    bytes.extend((0..3000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    fs::write(&seg, &bytes).unwrap();

    let (_, rec) = open(tmp.path(), 1 << 20);
    assert_eq!(rec.entries, log);
    assert!(
        rec.repairs[0].contains("cut 3000 bytes"),
        "{:?}",
        rec.repairs
    );
}

#[test]
fn a_last_record_whose_blocks_never_reached_the_disk_is_cut() {
    // The file size was extended but the payload's blocks read back as zeros.
    let tmp = tempfile::tempdir().unwrap();
    let log = entries(1..=5, 1);
    write_log(tmp.path(), 1 << 20, &log);
    let seg = segments(tmp.path()).remove(0);
    let mut bytes = fs::read(&seg).unwrap();
    let (at, len) = *records(&bytes).last().unwrap();
    bytes[at + 8..at + len].fill(0);
    fs::write(&seg, &bytes).unwrap();

    let (_, rec) = open(tmp.path(), 1 << 20);
    assert_eq!(rec.entries, log[..4]);
    assert!(
        rec.repairs[0].contains("checksum mismatch"),
        "{:?}",
        rec.repairs
    );
}

// ---- damage: refuse, name file and offset, change nothing --------------------------------------

#[test]
fn a_flipped_bit_in_a_middle_record_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 1 << 20, &entries(1..=10, 2));
    let seg = segments(tmp.path()).remove(0);
    let original = fs::read(&seg).unwrap();
    let (at, _) = records(&original)[4];

    let mut bytes = original.clone();
    bytes[at + 20] ^= 0x08; // inside entry 5's term
    fs::write(&seg, &bytes).unwrap();
    let err = open_err(tmp.path());
    assert_corrupt(&err, &seg, at, "checksum mismatch");
    assert!(
        err.to_string().contains("a valid record (entry 6) follows"),
        "{err}"
    );
    assert_eq!(
        fs::read(&seg).unwrap(),
        bytes,
        "a refused recovery changes nothing"
    );
}

#[test]
fn any_damaged_byte_of_a_middle_record_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 1 << 20, &entries(1..=10, 2));
    let seg = segments(tmp.path()).remove(0);
    let original = fs::read(&seg).unwrap();
    let (at, len) = records(&original)[4];

    for byte in at..at + len {
        for flip in [0x01, 0x80] {
            let mut bytes = original.clone();
            bytes[byte] ^= flip;
            fs::write(&seg, &bytes).unwrap();
            let err = open_err(tmp.path());
            assert!(
                matches!(err, Error::Corrupt { .. }),
                "byte {byte} flip {flip:#x}: {err}"
            );
            assert!(
                err.to_string().contains(&format!("at offset {at}:")),
                "{err}"
            );
            assert_eq!(fs::read(&seg).unwrap(), bytes);
        }
    }
}

#[test]
fn a_corrupt_record_in_an_older_segment_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 100, &entries(1..=30, 1));
    let oldest = segments(tmp.path()).remove(0);
    let mut bytes = fs::read(&oldest).unwrap();
    let (at, _) = *records(&bytes).last().unwrap();
    bytes[at + 9] ^= 0x40;
    fs::write(&oldest, &bytes).unwrap();
    assert_corrupt(&open_err(tmp.path()), &oldest, at, "sealed segment");
}

#[test]
fn a_torn_tail_in_an_older_segment_is_corruption_not_a_torn_write() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 100, &entries(1..=30, 1));
    let oldest = segments(tmp.path()).remove(0);
    let bytes = fs::read(&oldest).unwrap();
    let (at, _) = *records(&bytes).last().unwrap();
    fs::write(&oldest, &bytes[..bytes.len() - 3]).unwrap();
    assert_corrupt(&open_err(tmp.path()), &oldest, at, "sealed segment");
}

#[test]
fn a_missing_segment_is_a_gap() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 100, &entries(1..=30, 1));
    let files = segments(tmp.path());
    fs::remove_file(&files[2]).unwrap();
    assert_corrupt(&open_err(tmp.path()), &files[3], 0, "gap");
}

#[test]
fn a_log_must_start_at_one_without_a_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    hand_written_segment(tmp.path(), 5, &[encode(5, 1, 0, b"")]);
    let seg = segments(tmp.path()).remove(0);
    assert_corrupt(&open_err(tmp.path()), &seg, 0, "entries 1..=4 are missing");
}

#[test]
fn a_valid_record_in_the_wrong_place_is_corruption_not_a_torn_write() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 1 << 20, &entries(1..=10, 1));
    let seg = segments(tmp.path()).remove(0);
    let mut bytes = fs::read(&seg).unwrap();
    let end = bytes.len();
    let (at, len) = records(&bytes)[2];
    bytes.extend_from_within(at..at + len);
    fs::write(&seg, &bytes).unwrap();
    assert_corrupt(
        &open_err(tmp.path()),
        &seg,
        end,
        "record holds entry 3, expected entry 11",
    );
}

#[test]
fn terms_that_decrease_on_disk_refuse_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let second = 8 + encode(1, 2, 1, b"a").len();
    hand_written_segment(
        tmp.path(),
        1,
        &[encode(1, 2, 1, b"a"), encode(2, 1, 1, b"b")],
    );
    let seg = segments(tmp.path()).remove(0);
    assert_corrupt(&open_err(tmp.path()), &seg, second, "terms never decrease");
}

#[test]
fn an_unknown_payload_kind_with_a_good_checksum_is_never_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let second = 8 + encode(1, 1, 0, b"").len();
    hand_written_segment(
        tmp.path(),
        1,
        &[encode(1, 1, 0, b""), encode(2, 1, 7, b"?")],
    );
    let seg = segments(tmp.path()).remove(0);
    assert_corrupt(
        &open_err(tmp.path()),
        &seg,
        second,
        "unknown payload kind 7",
    );
}

#[test]
fn a_bad_magic_in_an_older_segment_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    write_log(tmp.path(), 100, &entries(1..=30, 1));
    let oldest = segments(tmp.path()).remove(0);
    let mut bytes = fs::read(&oldest).unwrap();
    bytes[0] = b'X';
    fs::write(&oldest, &bytes).unwrap();
    assert_corrupt(&open_err(tmp.path()), &oldest, 0, "bad magic");
}

// ---- the documented format ---------------------------------------------------------------------

#[test]
fn hand_written_segments_in_the_documented_format_are_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    hand_written_segment(
        tmp.path(),
        1,
        &[
            encode(1, 1, 0, b""),
            encode(2, 1, 1, b"put x 1"),
            encode(3, 2, 1, b""),
        ],
    );
    hand_written_segment(tmp.path(), 4, &[encode(4, 2, 1, b"get x")]);
    fs::write(tmp.path().join("log").join("README.txt"), "not a segment").unwrap();
    let (store, rec) = open(tmp.path(), 1 << 20);
    assert_eq!(
        rec.entries,
        vec![
            Entry {
                term: 1,
                index: 1,
                payload: Payload::Noop
            },
            Entry {
                term: 1,
                index: 2,
                payload: Payload::Command(b"put x 1".to_vec())
            },
            Entry {
                term: 2,
                index: 3,
                payload: Payload::Command(vec![])
            },
            Entry {
                term: 2,
                index: 4,
                payload: Payload::Command(b"get x".to_vec())
            },
        ]
    );
    assert_eq!(store.last_index(), 4);
    assert_eq!(rec.repairs.len(), 1);
    assert!(
        rec.repairs[0].contains("README.txt"),
        "unknown files are reported, not touched"
    );
    assert!(tmp.path().join("log").join("README.txt").exists());
}

// ---- crashes in the middle of a snapshot --------------------------------------------------------

#[test]
fn a_compaction_interrupted_after_the_snapshot_is_finished_by_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_log(&a, 100, &entries(1..=40, 1));
    copy_dir(&a, &b);
    let (mut store, _) = open(&a, 100);
    let snap = snapshot(25, 1, b"at 25");
    store.save_snapshot(&snap).unwrap();
    drop(store);
    // b: the snapshot is installed, but none of the covered segments were deleted yet.
    fs::copy(a.join("snapshot"), b.join("snapshot")).unwrap();
    let before = segments(&b).len();

    let (_, rec) = open(&b, 100);
    assert_eq!(rec.snapshot, Some(snap));
    assert_eq!(rec.entries, entries(26..=40, 1));
    assert!(
        rec.repairs
            .iter()
            .all(|r| r.contains("interrupted compaction")),
        "{:?}",
        rec.repairs
    );
    assert_eq!(segments(&b).len(), before - rec.repairs.len());
    assert_eq!(
        segments(&b),
        segments(&a)
            .iter()
            .map(|p| b.join("log").join(name(p)))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_snapshot_install_interrupted_before_the_old_log_was_deleted_drops_that_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_log(&a, 100, &entries(1..=20, 1));
    copy_dir(&a, &b);
    let (mut store, _) = open(&a, 100);
    // The leader's entry 10 has term 3: our entries after 10 are from another history.
    store.save_snapshot(&snapshot(10, 3, &[])).unwrap();
    drop(store);
    fs::copy(a.join("snapshot"), b.join("snapshot")).unwrap();

    let (mut store, rec) = open(&b, 100);
    assert!(
        rec.entries.is_empty(),
        "entries 11..=20 must not survive: {:?}",
        rec.entries
    );
    assert_eq!(
        (store.first_index(), store.last_index(), store.last_term()),
        (11, 10, 3)
    );
    assert!(
        rec.repairs
            .iter()
            .any(|r| r.contains("deleted the whole log")),
        "{:?}",
        rec.repairs
    );
    store.append(&entries(11..=12, 3)).unwrap();
    store.sync().unwrap();
    drop(store);
    let (_, rec) = open(&b, 100);
    assert_eq!(rec.entries, entries(11..=12, 3));
}

#[test]
fn a_snapshot_ahead_of_a_log_that_was_not_yet_deleted_drops_that_log() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_log(&a, 100, &entries(1..=20, 1));
    copy_dir(&a, &b);
    let (mut store, _) = open(&a, 100);
    store.save_snapshot(&snapshot(90, 2, &[])).unwrap();
    drop(store);
    fs::copy(a.join("snapshot"), b.join("snapshot")).unwrap();

    let (store, rec) = open(&b, 100);
    assert!(rec.entries.is_empty());
    assert_eq!(store.last_index(), 90);
    assert_eq!(segments(&b).len(), 1);
    assert!(name(&segments(&b)[0]).starts_with("00000000000000000091"));
}

#[test]
fn a_damaged_snapshot_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut store, _) = open(tmp.path(), 100);
    store.append(&entries(1..=5, 1)).unwrap();
    store.save_snapshot(&snapshot(3, 1, &[5; 64])).unwrap();
    drop(store);
    let path = tmp.path().join("snapshot");
    let mut bytes = fs::read(&path).unwrap();
    bytes[40] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let err = open_err(tmp.path());
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}
