//! Property test: random sequences of append / truncate / sync / snapshot / reopen against an
//! in-memory model of the log. Seeded, so every run checks the same cases.
//!
//! A snapshot reaches the store in one of four ways, all of which must end the same:
//! `save_snapshot`; `write_snapshot_file` then `snapshot_written` (a background snapshot);
//! InstallSnapshot chunks then `install_incoming`; and `write_snapshot_file` followed by a crash
//! before `snapshot_written` (recovery must then do what adoption would have).
//!
//! The model is the log the store should hold (`snapshot` + `log` after it) and `stable`, the
//! index up to which everything is known durable. A reopen after `sync()` must give back exactly
//! the model; a reopen without it (the store dropped like a crashed process) may lose unsynced
//! entries, but must give back a prefix of the model's log that reaches `stable`, never anything
//! else.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use std::path::Path;

use riptide_node::storage::{write_snapshot_file, LogStore, Snapshot, StorageOptions};
use riptide_node::types::{Entry, Index, Payload, SnapshotMeta, Term};

#[derive(Clone, Debug)]
enum Op {
    Append {
        n: u64,
        term_bump: u64,
        size: usize,
    },
    Truncate {
        pick: u64,
    },
    Sync,
    Snapshot {
        pick: u64,
        ahead: u64,
        conflict: bool,
        how: How,
    },
    Reopen {
        sync_first: bool,
    },
}

/// How a snapshot reaches the store.
#[derive(Clone, Copy, Debug)]
enum How {
    Save,
    Background,
    /// Received from a leader in chunks of this many bytes.
    Install(usize),
    /// Written, then a crash before the store adopted it.
    CrashBeforeAdopting,
}

fn how() -> impl Strategy<Value = How> {
    prop_oneof![
        Just(How::Save),
        Just(How::Background),
        (1..200usize).prop_map(How::Install),
        Just(How::CrashBeforeAdopting),
    ]
}

/// A snapshot whose voters and data depend on its index.
fn snapshot(last_index: Index, last_term: Term) -> Snapshot {
    let meta = SnapshotMeta {
        last_index,
        last_term,
        voters: (1..=last_index % 5).collect(),
        learners: Vec::new(),
        outgoing: Vec::new(),
        addresses: Default::default(),
    };
    Snapshot::new(
        meta,
        &last_index
            .to_le_bytes()
            .repeat(1 + last_index as usize % 20),
    )
}

/// Gets `snap` into `store` the way `how` says. Returns whether the store was dropped (a crash)
/// and must be reopened.
fn take_snapshot(store: &mut LogStore, dir: &Path, snap: &Snapshot, how: How) -> bool {
    match how {
        How::Save => store.save_snapshot(snap).unwrap(),
        How::Background => {
            std::thread::scope(|s| s.spawn(|| write_snapshot_file(dir, snap)).join())
                .unwrap()
                .unwrap();
            store.snapshot_written(&snap.meta).unwrap();
        }
        How::Install(chunk) => {
            for (i, part) in snap.image().chunks(chunk).enumerate() {
                store
                    .write_incoming_chunk((i * chunk) as u64, part)
                    .unwrap();
            }
            let (len, crc) = (snap.image().len() as u64, crc32fast::hash(snap.image()));
            assert_eq!(&store.install_incoming(len, crc).unwrap(), snap);
        }
        How::CrashBeforeAdopting => {
            write_snapshot_file(dir, snap).unwrap();
            return true;
        }
    }
    false
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1..12u64, prop_oneof![3 => Just(0u64), 1 => 1..3u64], 0..120usize)
            .prop_map(|(n, term_bump, size)| Op::Append { n, term_bump, size }),
        2 => any::<u64>().prop_map(|pick| Op::Truncate { pick }),
        3 => Just(Op::Sync),
        1 => (any::<u64>(), prop_oneof![3 => Just(0u64), 1 => 1..20u64], any::<bool>(), how())
            .prop_map(|(pick, ahead, conflict, how)| Op::Snapshot { pick, ahead, conflict, how }),
        2 => any::<bool>().prop_map(|sync_first| Op::Reopen { sync_first }),
    ]
}

struct Model {
    snapshot: Option<Snapshot>,
    /// The entries after the snapshot.
    log: Vec<Entry>,
    /// Everything up to this index survives a crash.
    stable: Index,
}

impl Model {
    fn snap(&self) -> (Index, Term) {
        self.snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.meta.last_index, s.meta.last_term))
    }
    fn last(&self) -> (Index, Term) {
        self.log.last().map_or(self.snap(), |e| (e.index, e.term))
    }
    fn term(&self, index: Index) -> Term {
        let (snap_index, snap_term) = self.snap();
        if index == snap_index {
            snap_term
        } else {
            self.log[(index - snap_index - 1) as usize].term
        }
    }
}

fn check(store: &LogStore, model: &Model) {
    assert_eq!(store.first_index(), model.snap().0 + 1);
    assert_eq!((store.last_index(), store.last_term()), model.last());
    for e in model.log.iter().step_by(5) {
        assert_eq!(store.term(e.index), Some(e.term));
    }
}

/// Drops `store` (like a crashed process: buffered appends are lost) and reopens it, checking what
/// recovery gives back against the model; then the model is what was recovered. `synced` says
/// everything was synced first; `compaction` that recovery may have to finish a compaction.
fn reopen(
    store: LogStore,
    dir: &Path,
    opts: StorageOptions,
    model: &mut Model,
    synced: bool,
    compaction: bool,
) -> LogStore {
    drop(store);
    let (store, rec) = LogStore::open(dir, opts).unwrap();
    // A dropped store never tears a record; the only repairs it can need are to drop a log that a
    // snapshot overtook before it was synced, and to finish a compaction it never started.
    assert!(
        rec.repairs
            .iter()
            .all(|r| r.starts_with("deleted the whole log")
                || (compaction && r.contains("interrupted compaction"))),
        "{:?}",
        rec.repairs
    );
    assert_eq!(rec.snapshot, model.snapshot);
    assert!(
        model.log.starts_with(&rec.entries),
        "recovered a log that never existed"
    );
    let recovered_last = model.snap().0 + rec.entries.len() as u64;
    assert!(
        recovered_last >= model.stable,
        "lost durable entries: {recovered_last} < {}",
        model.stable
    );
    if synced {
        assert_eq!(rec.entries, model.log);
    }
    model.log = rec.entries;
    model.stable = model.last().0;
    store
}

fn run(segment_bytes: u64, ops: &[Op]) {
    let tmp = tempfile::tempdir().unwrap();
    let opts = || StorageOptions { segment_bytes };
    let (mut store, _) = LogStore::open(tmp.path(), opts()).unwrap();
    let mut model = Model {
        snapshot: None,
        log: Vec::new(),
        stable: 0,
    };

    for op in ops {
        match *op {
            Op::Append { n, term_bump, size } => {
                let (last, term) = model.last();
                let batch: Vec<Entry> = (last + 1..=last + n)
                    .map(|index| Entry {
                        term: term.max(1) + term_bump,
                        index,
                        payload: if size == 0 {
                            Payload::Noop
                        } else {
                            Payload::Command(vec![(index % 251) as u8; size])
                        },
                    })
                    .collect();
                store.append(&batch).unwrap();
                model.log.extend(batch);
            }
            Op::Truncate { pick } => {
                let first = model.snap().0 + 1;
                let at = first + pick % (model.log.len() as u64 + 1);
                store.truncate_from(at).unwrap();
                model.log.truncate((at - first) as usize);
                model.stable = model.stable.min(at - 1).max(model.snap().0);
            }
            Op::Sync => {
                store.sync().unwrap();
                model.stable = model.last().0;
            }
            Op::Snapshot {
                pick,
                ahead,
                conflict,
                how,
            } => {
                let (snap_index, _) = model.snap();
                let (last, last_term) = model.last();
                let (index, term) = if ahead > 0 {
                    (last + ahead, last_term + u64::from(conflict))
                } else {
                    let index = snap_index + pick % (last - snap_index + 1);
                    let conflict = conflict && index > snap_index;
                    (index, model.term(index) + u64::from(conflict))
                };
                let snap = snapshot(index, term);
                let crashed = take_snapshot(&mut store, tmp.path(), &snap, how);
                if index < last && model.term(index) == term {
                    model.log.drain(..(index - snap_index) as usize);
                    model.stable = model.stable.max(index);
                } else {
                    model.log.clear();
                    model.stable = index;
                }
                model.snapshot = Some(snap);
                if crashed {
                    store = reopen(store, tmp.path(), opts(), &mut model, false, true);
                }
            }
            Op::Reopen { sync_first } => {
                if sync_first {
                    store.sync().unwrap();
                    model.stable = model.last().0;
                }
                store = reopen(store, tmp.path(), opts(), &mut model, sync_first, false);
            }
        }
        check(&store, &model);
    }
    // Whatever happened, a final sync and reopen gives back exactly the model.
    store.sync().unwrap();
    drop(store);
    let (_, rec) = LogStore::open(tmp.path(), opts()).unwrap();
    assert_eq!(rec.snapshot, model.snapshot);
    assert_eq!(rec.entries, model.log);
}

proptest! {
    #![proptest_config(Config {
        cases: 64,
        rng_seed: RngSeed::Fixed(0x5eed_2026),
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn the_store_agrees_with_a_vector_model(
        segment_bytes in prop_oneof![Just(1u64), Just(90), Just(400), Just(1 << 20)],
        ops in prop::collection::vec(op(), 1..60),
    ) {
        run(segment_bytes, &ops);
    }
}
