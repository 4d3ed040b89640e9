//! Property test: random sequences of append / truncate / sync / snapshot / reopen against an
//! in-memory model of the log. Seeded, so every run checks the same cases.
//!
//! The model is the log the store should hold (`snapshot` + `log` after it) and `stable`, the
//! index up to which everything is known durable. A reopen after `sync()` must give back exactly
//! the model; a reopen without it (the store dropped like a crashed process) may lose unsynced
//! entries, but must give back a prefix of the model's log that reaches `stable`, never anything
//! else.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use riptide_node::storage::{LogStore, Snapshot, StorageOptions};
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
    },
    Reopen {
        sync_first: bool,
    },
}

/// A snapshot with a three-node configuration, as the tests need no other.
fn snapshot(last_index: Index, last_term: Term, data: &[u8]) -> Snapshot {
    let meta = SnapshotMeta {
        last_index,
        last_term,
        voters: vec![1, 2, 3],
    };
    Snapshot::new(meta, data)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1..12u64, prop_oneof![3 => Just(0u64), 1 => 1..3u64], 0..120usize)
            .prop_map(|(n, term_bump, size)| Op::Append { n, term_bump, size }),
        2 => any::<u64>().prop_map(|pick| Op::Truncate { pick }),
        3 => Just(Op::Sync),
        1 => (any::<u64>(), prop_oneof![3 => Just(0u64), 1 => 1..20u64], any::<bool>())
            .prop_map(|(pick, ahead, conflict)| Op::Snapshot { pick, ahead, conflict }),
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
                let snap = snapshot(index, term, &index.to_le_bytes());
                store.save_snapshot(&snap).unwrap();
                if index < last && model.term(index) == term {
                    model.log.drain(..(index - snap_index) as usize);
                    model.stable = model.stable.max(index);
                } else {
                    model.log.clear();
                    model.stable = index;
                }
                model.snapshot = Some(snap);
            }
            Op::Reopen { sync_first } => {
                if sync_first {
                    store.sync().unwrap();
                    model.stable = model.last().0;
                }
                drop(store);
                let (reopened, rec) = LogStore::open(tmp.path(), opts()).unwrap();
                store = reopened;
                // A dropped store never tears a record; the only repair it can need is to drop
                // a log that a snapshot overtook before it was synced.
                assert!(
                    rec.repairs
                        .iter()
                        .all(|r| r.starts_with("deleted the whole log")),
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
                if sync_first {
                    assert_eq!(rec.entries, model.log);
                }
                model.log = rec.entries;
                model.stable = model.last().0;
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
