//! The node's durability bugs (`--unsafe-bug no-fsync`, `vote-not-synced`, `no-dir-fsync`) on a
//! real faultfs: each makes the store lose, at a power cut, something it had reported durable;
//! with every fsync on ([`Durability::FULL`]) the same work loses nothing.

mod common;

use std::fs;

use common::Fixture;
use riptide_faultfs::Mode;
use riptide_node::storage::{Durability, Error, LogStore, StorageOptions};
use riptide_node::types::{Entry, HardState, Payload};

fn entries(from: u64, to: u64) -> Vec<Entry> {
    (from..=to)
        .map(|index| Entry {
            term: 2,
            index,
            payload: Payload::Command(vec![index as u8; 300]),
        })
        .collect()
}

const HARD_STATE: HardState = HardState {
    term: 2,
    voted_for: Some(3),
};

/// What a store that reported 80 entries and [`HARD_STATE`] durable has after `power_cut(All)`.
#[derive(Debug)]
enum After {
    /// It refuses to start ([`Error::Corrupt`]): the message, which names the damaged file.
    Refused(String),
    Opened {
        hard_state: HardState,
        entries: Vec<Entry>,
    },
}

impl After {
    fn lost_nothing(&self) -> bool {
        match self {
            After::Refused(_) => false,
            After::Opened {
                hard_state,
                entries: got,
            } => *hard_state == HARD_STATE && got.len() >= 80 && got[..80] == entries(1, 80)[..],
        }
    }
}

/// Opens a store on faultfs with `policy`, saves the hard state and syncs 80 entries (all
/// reported durable), drops it (a SIGKILL), cuts the power and opens the dir again.
fn cut_after_durable_work(policy: Durability, segment_bytes: u64) -> After {
    let fx = Fixture::new();
    let dir = fx.path("node");
    fs::create_dir(&dir).unwrap();
    fx.sync_dir("");
    let opts = || StorageOptions { segment_bytes };
    {
        let (mut store, _) = LogStore::open_with(&dir, opts(), policy).unwrap();
        store
            .save_hard_state(&HardState {
                term: 1,
                voted_for: Some(1),
            })
            .unwrap();
        store.append(&entries(1, 50)).unwrap();
        store.sync().unwrap();
        store.save_hard_state(&HARD_STATE).unwrap();
        store.append(&entries(51, 80)).unwrap();
        store.sync().unwrap();
    }
    let report = fx.fs().power_cut(Mode::All).unwrap();
    eprintln!(
        "{policy:?}: {} bytes unsynced, undone {:?}",
        report.bytes_unsynced, report.entries_undone
    );
    // Bound to a local, so that the reopened store (its files open in the mount) is closed
    // before the fixture unmounts.
    let reopened = LogStore::open(&dir, opts());
    match reopened {
        Err(e @ Error::Corrupt { .. }) => After::Refused(e.to_string()),
        Err(e) => panic!("{policy:?}: reopening failed, not as a refusal: {e}"),
        Ok((store, recovered)) => {
            drop(store);
            After::Opened {
                hard_state: recovered.hard_state,
                entries: recovered.entries,
            }
        }
    }
}

const ONE_SEGMENT: u64 = 64 << 20;
const SMALL_SEGMENTS: u64 = 8 << 10;

#[test]
fn with_every_fsync_a_power_cut_loses_nothing_reported_durable() {
    for segment_bytes in [ONE_SEGMENT, SMALL_SEGMENTS] {
        let after = cut_after_durable_work(Durability::FULL, segment_bytes);
        assert!(after.lost_nothing(), "{segment_bytes}: {after:?}");
    }
}

#[test]
fn no_fsync_loses_acknowledged_entries() {
    let after = cut_after_durable_work(
        Durability {
            log: false,
            ..Durability::FULL
        },
        ONE_SEGMENT,
    );
    match &after {
        After::Opened {
            hard_state,
            entries,
        } => {
            assert_eq!(*hard_state, HARD_STATE, "the hard state is still synced");
            assert!(entries.len() < 80, "synced entries survived: {after:?}");
        }
        After::Refused(why) => panic!("expected a shorter log, got a refusal: {why}"),
    }
}

#[test]
fn no_fsync_with_several_segments_cannot_even_restart() {
    let after = cut_after_durable_work(
        Durability {
            log: false,
            ..Durability::FULL
        },
        SMALL_SEGMENTS,
    );
    let After::Refused(why) = &after else {
        panic!("a sealed segment lost its records, yet the store opened: {after:?}");
    };
    assert!(why.contains(".seg"), "the error names a segment: {why}");
}

#[test]
fn vote_not_synced_loses_the_term_and_vote() {
    let after = cut_after_durable_work(
        Durability {
            hard_state: false,
            ..Durability::FULL
        },
        ONE_SEGMENT,
    );
    match &after {
        After::Refused(why) => assert!(why.contains("hardstate"), "{why}"),
        After::Opened { hard_state, .. } => {
            assert_ne!(*hard_state, HARD_STATE, "the vote survived: {after:?}")
        }
    }
    assert!(!after.lost_nothing());
}

#[test]
fn no_dir_fsync_loses_segments_and_the_hard_state_file() {
    for segment_bytes in [ONE_SEGMENT, SMALL_SEGMENTS] {
        let after = cut_after_durable_work(
            Durability {
                dirs: false,
                ..Durability::FULL
            },
            segment_bytes,
        );
        let After::Opened {
            hard_state,
            entries,
        } = &after
        else {
            panic!("{segment_bytes}: expected a store missing files, got {after:?}");
        };
        assert_ne!(
            *hard_state, HARD_STATE,
            "{segment_bytes}: the rename survived"
        );
        assert!(
            entries.len() < 80,
            "{segment_bytes}: the new segments survived: {after:?}"
        );
    }
}
