//! The members' addresses on disk: in configuration entries of the log (after the three member
//! lists) and in the snapshot file (format 4). Entries and snapshots written before addresses
//! existed still read back, without addresses; a damaged addresses section is an error naming
//! the entry, never a panic or a guess. The tests write some files by hand, following the
//! format the `record` and `snapshot` module docs describe.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use riptide_node::storage::{Error, LogStore, Recovered, Snapshot, StorageOptions};
use riptide_node::types::{Entry, Index, Membership, NodeId, Payload, SnapshotMeta, Term};

fn open(dir: &Path) -> (LogStore, Recovered) {
    LogStore::open(dir, StorageOptions::default()).expect("open")
}

fn book(addresses: &[(NodeId, &str)]) -> BTreeMap<NodeId, String> {
    addresses
        .iter()
        .map(|&(id, a)| (id, a.to_string()))
        .collect()
}

/// C_old,new replacing 3 by 4, learner 9, with the addresses of all but node 2.
fn joint_with_addresses() -> Membership {
    Membership {
        voters: vec![1, 2, 4],
        learners: vec![9],
        outgoing: vec![1, 2, 3],
        addresses: book(&[
            (1, "n1:7001"),
            (3, "[2001:db8::3]:7003"),
            (4, "n4.example:7004"),
            (9, &"ü".repeat(127)),
        ]),
    }
}

fn config(index: Index, term: Term, m: Membership) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Config(m),
    }
}

fn command(index: Index, term: Term) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Command(format!("put k{index} {term}").into_bytes()),
    }
}

fn segment(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files.remove(0)
}

/// A segment starting at entry 1 holding the given record payloads, each
/// `[u32 len][u32 crc][payload]` after the magic.
fn hand_written_log(dir: &Path, payloads: &[Vec<u8>]) {
    fs::create_dir_all(dir.join("log")).unwrap();
    let mut bytes = b"rtwal001".to_vec();
    for p in payloads {
        bytes.extend_from_slice(&(p.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(p).to_le_bytes());
        bytes.extend_from_slice(p);
    }
    fs::write(dir.join("log").join(format!("{:020}.seg", 1)), bytes).unwrap();
}

/// The payload of configuration entry `index` (term 1): `[u64 index][u64 term][u8 2][body]`.
fn config_payload(index: Index, body: &[u8]) -> Vec<u8> {
    let mut p = index.to_le_bytes().to_vec();
    p.extend_from_slice(&1u64.to_le_bytes());
    p.push(2);
    p.extend_from_slice(body);
    p
}

/// A no-op entry 1 of term 1.
fn noop_payload() -> Vec<u8> {
    let mut p = 1u64.to_le_bytes().to_vec();
    p.extend_from_slice(&1u64.to_le_bytes());
    p.push(0);
    p
}

/// The three member lists, each `[u32 count][u64 id] x count`.
fn lists(voters: &[NodeId], learners: &[NodeId], outgoing: &[NodeId]) -> Vec<u8> {
    let mut body = Vec::new();
    for list in [voters, learners, outgoing] {
        body.extend_from_slice(&(list.len() as u32).to_le_bytes());
        for id in list {
            body.extend_from_slice(&id.to_le_bytes());
        }
    }
    body
}

/// An addresses section, `[u32 count]([u64 id][u16 len][bytes]) x count`.
fn addresses(entries: &[(NodeId, &str)]) -> Vec<u8> {
    let mut body = (entries.len() as u32).to_le_bytes().to_vec();
    for (id, a) in entries {
        body.extend_from_slice(&id.to_le_bytes());
        body.extend_from_slice(&(a.len() as u16).to_le_bytes());
        body.extend_from_slice(a.as_bytes());
    }
    body
}

#[test]
fn a_configuration_with_addresses_round_trips_through_the_log_and_recovery() {
    let tmp = tempfile::tempdir().unwrap();
    let simple = Membership {
        addresses: book(&[(1, "n1:7001"), (2, "n2:7002"), (4, "n4:7004")]),
        ..Membership::new(&[1, 2, 4])
    };
    let log = vec![
        command(1, 1),
        config(2, 1, joint_with_addresses()),
        command(3, 1),
        config(4, 2, simple),
        config(5, 2, Membership::new(&[1, 2])),
    ];
    {
        let (mut store, _) = open(tmp.path());
        store.append(&log).unwrap();
        store.sync().unwrap();
    }
    let (store, rec) = open(tmp.path());
    assert_eq!(rec.entries, log);
    assert!(rec.repairs.is_empty(), "{:?}", rec.repairs);
    assert_eq!(store.last_index(), 5);
    // What the store wrote is the documented format, byte for byte.
    let bytes = fs::read(segment(tmp.path())).unwrap();
    let mut body = lists(&[1, 2, 4], &[9], &[1, 2, 3]);
    body.extend(addresses(&[
        (1, "n1:7001"),
        (3, "[2001:db8::3]:7003"),
        (4, "n4.example:7004"),
        (9, &"ü".repeat(127)),
    ]));
    let payload = config_payload(2, &body);
    assert!(
        bytes.windows(payload.len()).any(|w| w == payload),
        "the joint entry is encoded as documented"
    );
}

#[test]
fn a_configuration_entry_written_before_addresses_existed_still_decodes() {
    let tmp = tempfile::tempdir().unwrap();
    let with = [lists(&[1, 2], &[], &[]), addresses(&[(2, "n2:7002")])].concat();
    hand_written_log(
        tmp.path(),
        &[
            noop_payload(),
            config_payload(2, &lists(&[1, 2, 4], &[9], &[1, 2, 3])),
            config_payload(3, &with),
        ],
    );
    let (_, rec) = open(tmp.path());
    let old = Membership {
        voters: vec![1, 2, 4],
        learners: vec![9],
        outgoing: vec![1, 2, 3],
        addresses: BTreeMap::new(),
    };
    assert_eq!(rec.entries[1], config(2, 1, old));
    let new = Membership {
        addresses: book(&[(2, "n2:7002")]),
        ..Membership::new(&[1, 2])
    };
    assert_eq!(rec.entries[2], config(3, 1, new));
}

#[test]
fn a_damaged_addresses_section_refuses_to_start_naming_the_entry() {
    let good = [
        lists(&[1, 2], &[], &[]),
        addresses(&[(1, "n1:7001"), (2, "n2:7002")]),
    ]
    .concat();
    let list_len = lists(&[1, 2], &[], &[]).len();
    let mut cases: Vec<(Vec<u8>, &str)> = Vec::new();
    // Cut inside the section (its checksum still matches: the record was written that way).
    for cut in [list_len + 2, list_len + 4, list_len + 9, good.len() - 1] {
        cases.push((good[..cut].to_vec(), "truncated"));
    }
    cases.push(([good.clone(), vec![7]].concat(), "trailing bytes"));
    let mut not_utf8 = good.clone();
    let first_text = list_len + 4 + 10;
    not_utf8[first_text] = 0xc3; // a lead byte followed by ASCII
    cases.push((not_utf8, "not UTF-8"));
    let stranger = [lists(&[1, 2], &[], &[]), addresses(&[(5, "n5:7005")])].concat();
    cases.push((stranger, "node 5, which is not a member"));

    for (body, why) in cases {
        let tmp = tempfile::tempdir().unwrap();
        hand_written_log(tmp.path(), &[noop_payload(), config_payload(2, &body)]);
        let err = LogStore::open(tmp.path(), StorageOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Corrupt { .. }), "{why}: {text}");
        assert!(text.contains("configuration entry 2"), "{why}: {text}");
        assert!(text.contains(why), "{why}: {text}");
        assert!(
            segment(tmp.path()).exists(),
            "damage with a good checksum is never cut as a torn write"
        );
    }
}

#[test]
fn a_snapshot_carries_the_addresses_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let m = joint_with_addresses();
    let meta = SnapshotMeta::new(5, 1, &m);
    assert_eq!(meta.membership(), m);
    {
        let (mut store, _) = open(tmp.path());
        store
            .append(&(1..=7).map(|i| command(i, 1)).collect::<Vec<_>>())
            .unwrap();
        store.sync().unwrap();
        store
            .save_snapshot(&Snapshot::new(meta.clone(), b"state at 5"))
            .unwrap();
    }
    let file = fs::read(tmp.path().join("snapshot")).unwrap();
    assert_eq!(&file[..8], b"rtsnap-4");
    let (store, rec) = open(tmp.path());
    let snap = rec.snapshot.expect("a snapshot");
    assert_eq!(snap.meta, meta);
    assert_eq!(
        snap.meta.membership().address(3),
        Some("[2001:db8::3]:7003")
    );
    assert_eq!(snap.data(), b"state at 5");
    assert_eq!(store.snapshot_meta(), Some(&meta));
    assert_eq!(rec.entries.first().map(|e| e.index), Some(6));
}

#[test]
fn a_format_3_snapshot_still_loads_without_addresses() {
    let tmp = tempfile::tempdir().unwrap();
    let mut image = b"rtsnap-3".to_vec();
    image.extend_from_slice(&4u64.to_le_bytes());
    image.extend_from_slice(&2u64.to_le_bytes());
    image.extend(lists(&[1, 2, 4], &[9], &[1, 2, 3]));
    image.extend_from_slice(&(3u64).to_le_bytes());
    image.extend_from_slice(b"old");
    let crc = crc32fast::hash(&image[8..]);
    image.extend_from_slice(&crc.to_le_bytes());
    fs::write(tmp.path().join("snapshot"), &image).unwrap();
    let (store, rec) = open(tmp.path());
    let snap = rec.snapshot.expect("a snapshot");
    let expected = Membership {
        voters: vec![1, 2, 4],
        learners: vec![9],
        outgoing: vec![1, 2, 3],
        addresses: BTreeMap::new(),
    };
    assert_eq!(snap.meta.membership(), expected);
    assert_eq!((snap.meta.last_index, snap.meta.last_term), (4, 2));
    assert_eq!(snap.data(), b"old");
    assert_eq!(store.snapshot_bytes(), image.len() as u64);
}
