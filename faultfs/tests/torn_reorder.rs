//! `torn` keeps a prefix of the unsynced writes, `reorder` a subset of the unsynced pages:
//! seeded, deterministic, and not always all or nothing.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use common::Fixture;
use riptide_faultfs::{Mode, PAGE};

const WRITES: usize = 10;
const CHUNK: usize = 100;

/// Ten unsynced appends of 100 bytes each, byte `i + 1` in write `i`; then a torn cut.
/// Returns how many writes were kept, after checking the file is exactly that prefix.
fn torn(seed: u64) -> usize {
    let fx = Fixture::new();
    fx.write_synced("log", b"", true);
    let f = OpenOptions::new().write(true).open(fx.path("log")).unwrap();
    for i in 0..WRITES {
        f.write_all_at(&[i as u8 + 1; CHUNK], (i * CHUNK) as u64)
            .unwrap();
    }
    drop(f);
    let report = fx.fs().power_cut(Mode::Torn(seed)).unwrap();
    let data = fx.read("log").unwrap();
    let kept = report.files[0].ops_kept;
    assert_eq!(data.len(), kept * CHUNK, "seed {seed}: {report:?}");
    for (i, chunk) in data.chunks(CHUNK).enumerate() {
        assert!(
            chunk.iter().all(|&b| b == i as u8 + 1),
            "seed {seed}: write {i} torn"
        );
    }
    kept
}

#[test]
fn torn_keeps_a_seeded_prefix_of_the_writes_in_order() {
    let kept: Vec<usize> = (0..8).map(torn).collect();
    assert_eq!(torn(3), kept[3], "the same seed keeps the same prefix");
    assert!(
        kept.iter().any(|&k| k != kept[0]),
        "different seeds keep different prefixes: {kept:?}"
    );
    assert!(kept.iter().all(|&k| k <= WRITES));
}

const PAGES: u64 = 16;

/// A synced file of 16 pages of `a`, every page overwritten with `b`, then a reordering cut.
/// Returns which pages kept `b`, after checking each page is wholly one or the other.
fn reorder(seed: u64) -> Vec<bool> {
    let fx = Fixture::new();
    fx.write_synced("data", &vec![b'a'; (PAGES * PAGE) as usize], true);
    let f = OpenOptions::new()
        .write(true)
        .open(fx.path("data"))
        .unwrap();
    for p in 0..PAGES {
        f.write_all_at(&[b'b'; PAGE as usize], p * PAGE).unwrap();
    }
    drop(f);
    let report = fx.fs().power_cut(Mode::Reorder(seed)).unwrap();
    let data = fx.read("data").unwrap();
    assert_eq!(data.len() as u64, PAGES * PAGE);
    let pages: Vec<bool> = data
        .chunks(PAGE as usize)
        .map(|page| {
            assert!(
                page.iter().all(|&b| b == page[0]),
                "seed {seed}: a page is mixed"
            );
            page[0] == b'b'
        })
        .collect();
    let kept = pages.iter().filter(|&&b| b).count();
    assert_eq!(report.files[0].pages_kept, kept);
    assert_eq!(report.files[0].pages, PAGES as usize);
    pages
}

#[test]
fn reorder_keeps_a_seeded_subset_of_the_pages() {
    let runs: Vec<Vec<bool>> = (0..6).map(reorder).collect();
    assert_eq!(reorder(2), runs[2], "the same seed keeps the same pages");
    let partial = runs
        .iter()
        .filter(|r| r.iter().any(|&b| b) && r.iter().any(|&b| !b))
        .count();
    assert!(
        partial > 0,
        "some seed keeps some pages but not all: {runs:?}"
    );
    assert!(runs.iter().any(|r| r != &runs[0]), "seeds differ: {runs:?}");
}
