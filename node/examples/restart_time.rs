//! How long a node takes to reopen its storage with a 1-million-entry history, without and with
//! log compaction. Run with:
//!
//! ```text
//! cargo run --release -p riptide-node --example restart_time
//! ```
//!
//! It builds, in a temporary directory:
//! - **full**: 1,000,000 entries (60-byte commands) and no snapshot;
//! - **compacted, default segments**: the same history, then a snapshot at 999,000 taken by the
//!   node itself (`save_snapshot` with a 1 MB state machine: 10,000 keys x 100 bytes). The segment
//!   holding entry 999,000 stays, so a restart still reads the entries of that segment;
//! - **compacted, snapshot + last 1,000**: a snapshot at 999,000 and exactly the 1,000 entries
//!   after it (what a follower has after InstallSnapshot, or a node whose segment rolled right at
//!   the snapshot).
//!
//! Then it times `LogStore::open` (recovery: read and check everything) five times for each and
//! prints the medians. The files were just written, so this is a warm page cache; a cold start adds
//! the time to read the bytes from the disk.

use std::path::Path;
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use riptide_node::storage::{LogStore, Snapshot, StorageOptions};
use riptide_node::types::{Entry, Index, Payload, SnapshotMeta};

const ENTRIES: Index = 1_000_000;
const SNAPSHOT_AT: Index = 999_000;
const COMMAND_BYTES: usize = 60;
const STATE_BYTES: usize = 10_000 * 100;
const REPETITIONS: usize = 5;

fn entry(index: Index) -> Entry {
    let mut command = format!("put key{:06} ", index % 10_000).into_bytes();
    command.resize(COMMAND_BYTES, b'v');
    Entry {
        term: 1 + index / 250_000,
        index,
        payload: Payload::Command(command),
    }
}

/// Appends entries `first..=last` in synced batches of 10,000.
fn append(store: &mut LogStore, first: Index, last: Index) {
    let mut at = first;
    while at <= last {
        let end = (at + 9_999).min(last);
        let batch: Vec<Entry> = (at..=end).map(entry).collect();
        store.append(&batch).expect("append");
        store.sync().expect("sync");
        at = end + 1;
    }
}

fn state_machine_snapshot() -> Snapshot {
    let mut data = vec![0u8; STATE_BYTES];
    rand_chacha::ChaCha8Rng::seed_from_u64(1).fill_bytes(&mut data);
    let meta = SnapshotMeta {
        last_index: SNAPSHOT_AT,
        last_term: entry(SNAPSHOT_AT).term,
        voters: vec![1, 2, 3],
        learners: Vec::new(),
        outgoing: Vec::new(),
        addresses: Default::default(),
    };
    Snapshot::new(meta, &data)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry"))
        .map(|e| {
            let meta = e.metadata().expect("stat");
            if meta.is_dir() {
                dir_bytes(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

/// Opens `dir` `REPETITIONS` times; returns the median time and the entries recovered.
fn time_open(dir: &Path) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut recovered = 0;
    for _ in 0..REPETITIONS {
        let start = Instant::now();
        let (store, rec) = LogStore::open(dir, StorageOptions::default()).expect("open");
        times.push(start.elapsed());
        recovered = rec.entries.len();
        drop((store, rec));
    }
    times.sort();
    (times[REPETITIONS / 2], recovered)
}

fn main() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let full = tmp.path().join("full");
    let compacted = tmp.path().join("compacted");
    let tail = tmp.path().join("tail");
    let snap = state_machine_snapshot();

    eprintln!("writing {ENTRIES} entries twice, and a snapshot with {STATE_BYTES} bytes of state");
    for dir in [&full, &compacted] {
        let (mut store, _) = LogStore::open(dir, StorageOptions::default()).expect("open");
        append(&mut store, 1, ENTRIES);
    }
    let (mut store, _) = LogStore::open(&compacted, StorageOptions::default()).expect("open");
    store.save_snapshot(&snap).expect("snapshot");
    drop(store);
    let (mut store, _) = LogStore::open(&tail, StorageOptions::default()).expect("open");
    store.save_snapshot(&snap).expect("snapshot");
    append(&mut store, SNAPSHOT_AT + 1, ENTRIES);
    drop(store);

    println!(
        "{:<36} {:>12} {:>18} {:>14}",
        "data dir", "on disk", "entries recovered", "median open"
    );
    for (name, dir) in [
        ("full log, no snapshot", &full),
        ("snapshot at 999000, default segments", &compacted),
        ("snapshot at 999000 + last 1000", &tail),
    ] {
        let (median, entries) = time_open(dir);
        println!(
            "{name:<36} {:>9.1} MB {entries:>18} {:>11.2} ms",
            dir_bytes(dir) as f64 / 1e6,
            median.as_secs_f64() * 1e3
        );
    }
}
