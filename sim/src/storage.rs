//! The simulated disk: what a node's [`Storage`] has made durable, and what a crash leaves.
//!
//! It follows the contract of the real write-ahead log ([`riptide_node::storage`]): the hard
//! state is durable when `save_hard_state` returns; written entries are durable only after
//! `sync`; a cut of stored entries is durable at once. A crash keeps the synced log cut where
//! the last write started, plus any prefix of the entries written since (a torn tail that
//! happens to be whole): every outcome a real disk allows, so the simulation can pick any.
//!
//! The disk also holds the newest snapshot, and the log starts right after it: entry `k` of the
//! log has index `offset + 1 + k`, where `offset` is the snapshot's last index (0 without one).
//! How snapshots are written, received and installed, and what a crash does to them, is in
//! [`snapshot`].
//!
//! A crash can also strike *inside* a Ready: [`SimStorage::arm_crash`] makes the n-th storage
//! call from now fail, which the executor treats like a failed fsync (it stops at once). Every
//! storage call counts, the snapshot calls too.

mod snapshot;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use riptide_node::kv::KvStore;
use riptide_node::raft::{InstallRequest, SnapshotImage};
use riptide_node::server::executor::{SnapshotProgress, Storage};
use riptide_node::storage::Snapshot;
use riptide_node::types::{Entry, HardState, Index, SnapshotMeta};

pub use snapshot::{Encodings, SnapshotCounters};

/// What survives a crash of one node: its hard state, its newest snapshot and the log after it.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub hard_state: HardState,
    /// The newest durable snapshot, if any: the log starts right after it.
    pub snapshot: Option<Snapshot>,
    /// The durable log: `entries[k].index == offset() + 1 + k`.
    pub entries: Vec<Entry>,
}

impl Disk {
    /// The index the log starts after: the snapshot's last index, 0 without one.
    pub fn offset(&self) -> Index {
        snapshot_index(self.snapshot.as_ref())
    }
}

fn snapshot_index(snapshot: Option<&Snapshot>) -> Index {
    snapshot.map_or(0, |s| s.meta.last_index)
}

/// A node's storage while it runs.
#[derive(Debug)]
pub struct SimStorage {
    hard_state: HardState,
    /// The newest durable snapshot; both logs below start right after it.
    snapshot: Option<Snapshot>,
    /// The durable log.
    synced: Vec<Entry>,
    /// The log as written: `synced` until `dirty_from`, then entries not yet synced.
    written: Vec<Entry>,
    /// The first index written since the last sync.
    dirty_from: Option<Index>,
    /// The snapshot of our own being written "in the background", if any.
    pending: Option<snapshot::Pending>,
    /// The bytes of the snapshot being received from the leader (in memory: lost in a crash).
    incoming: Vec<u8>,
    /// The disk's own choices (how slow a snapshot write is), seeded by the cluster.
    rng: ChaCha8Rng,
    /// The bytes of the states snapshotted in this run, shared by its storages.
    encodings: Encodings,
    counters: SnapshotCounters,
    /// Storage calls left before a simulated crash.
    crash_in: Option<u32>,
}

impl SimStorage {
    /// A running storage on `disk`; `seed` decides the disk's own choices, `encodings` are the
    /// run's (see [`snapshot`]).
    pub fn new(disk: Disk, seed: u64, encodings: Encodings) -> SimStorage {
        SimStorage {
            hard_state: disk.hard_state,
            snapshot: disk.snapshot,
            synced: disk.entries.clone(),
            written: disk.entries,
            dirty_from: None,
            pending: None,
            incoming: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            encodings,
            counters: SnapshotCounters::default(),
            crash_in: None,
        }
    }

    /// The durable log (it starts after [`SimStorage::offset`]).
    pub fn synced(&self) -> &[Entry] {
        &self.synced
    }

    /// The index the log starts after: the durable snapshot's last index, 0 without one.
    pub fn offset(&self) -> Index {
        snapshot_index(self.snapshot.as_ref())
    }

    /// The newest durable snapshot.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// What this storage did with snapshots since it booted.
    pub fn counters(&self) -> SnapshotCounters {
        self.counters
    }

    /// Makes the storage call `calls` from now (0: the next one) fail like a crash.
    pub fn arm_crash(&mut self, calls: u32) {
        self.crash_in = Some(calls);
    }

    pub fn crash_armed(&self) -> bool {
        self.crash_in.is_some()
    }

    /// What the disk holds after a crash, and what the storage did with snapshots. `torn(n)`
    /// picks how many of the `n` entries written since the last sync survive (any number from 0
    /// to n is possible on a real disk). A snapshot write that had finished survives even if no
    /// poll saw it; one still being written, and a snapshot being received, are lost.
    pub fn crash(mut self, torn: impl FnOnce(usize) -> usize) -> (Disk, SnapshotCounters) {
        self.crash_snapshots();
        let offset = self.offset();
        let mut entries = self.synced;
        if let Some(from) = self.dirty_from {
            let cut = (from - offset - 1) as usize;
            entries.truncate(cut);
            let unsynced = &self.written[cut.min(self.written.len())..];
            let keep = torn(unsynced.len()).min(unsynced.len());
            entries.extend_from_slice(&unsynced[..keep]);
        }
        let disk = Disk {
            hard_state: self.hard_state,
            snapshot: self.snapshot,
            entries,
        };
        (disk, self.counters)
    }

    fn call(&mut self) -> anyhow::Result<()> {
        match self.crash_in {
            Some(0) => anyhow::bail!("simulated crash inside a Ready"),
            Some(n) => self.crash_in = Some(n - 1),
            None => {}
        }
        Ok(())
    }

    /// Where entry `index` is in the logs.
    fn position(&self, index: Index) -> usize {
        (index - self.offset() - 1) as usize
    }
}

impl Storage for SimStorage {
    fn save_hard_state(&mut self, hard_state: &HardState) -> anyhow::Result<()> {
        self.call()?;
        self.hard_state = *hard_state;
        Ok(())
    }

    fn write_entries(&mut self, entries: &[Entry]) -> anyhow::Result<()> {
        self.call()?;
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let offset = self.offset();
        assert!(
            first.index > offset,
            "a write at {} inside the snapshot at {offset}",
            first.index
        );
        let at = self.position(first.index);
        assert!(
            at <= self.written.len(),
            "a write at {} leaves a hole after {}",
            first.index,
            offset + self.written.len() as Index
        );
        self.written.truncate(at);
        self.written.extend_from_slice(entries);
        // A cut of synced entries is durable at once, as in the real log.
        self.synced.truncate(self.synced.len().min(at));
        self.dirty_from = Some(self.dirty_from.map_or(first.index, |d| d.min(first.index)));
        Ok(())
    }

    fn sync(&mut self) -> anyhow::Result<()> {
        self.call()?;
        if let Some(from) = self.dirty_from.take() {
            let cut = self.position(from);
            self.synced.truncate(cut);
            self.synced.extend_from_slice(&self.written[cut..]);
        }
        Ok(())
    }

    fn begin_snapshot(&mut self, meta: SnapshotMeta, state: KvStore) -> anyhow::Result<()> {
        self.call()?;
        self.begin(meta, state);
        Ok(())
    }

    fn poll_snapshot(&mut self, wait: bool) -> anyhow::Result<SnapshotProgress> {
        self.call()?;
        Ok(self.poll(wait))
    }

    fn write_snapshot_chunk(&mut self, offset: u64, data: &[u8]) -> anyhow::Result<()> {
        self.call()?;
        self.receive(offset, data);
        Ok(())
    }

    fn install_snapshot(
        &mut self,
        request: &InstallRequest,
    ) -> anyhow::Result<Result<(SnapshotImage, KvStore), String>> {
        self.call()?;
        Ok(self.install(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_node::types::Payload;

    pub(super) fn entry(index: u64, term: u64) -> Entry {
        Entry {
            term,
            index,
            payload: Payload::Noop,
        }
    }

    fn terms(disk: &Disk) -> Vec<u64> {
        disk.entries.iter().map(|e| e.term).collect()
    }

    #[test]
    fn only_synced_entries_and_a_torn_prefix_survive_a_crash() {
        let mut s = SimStorage::new(Disk::default(), 1, Encodings::default());
        s.write_entries(&[entry(1, 1), entry(2, 1)]).unwrap();
        s.sync().unwrap();
        s.write_entries(&[entry(2, 2), entry(3, 2)]).unwrap();
        assert_eq!(s.synced().len(), 1, "the cut of entry 2 is durable at once");
        let mut again = SimStorage::new(Disk::default(), 1, Encodings::default());
        again.write_entries(&[entry(1, 1)]).unwrap();
        assert_eq!(terms(&again.crash(|_| 0).0), Vec::<u64>::new());
        assert_eq!(terms(&s.crash(|n| n - 1).0), vec![1, 2]);
    }

    #[test]
    fn an_armed_crash_fails_the_chosen_call() {
        let mut s = SimStorage::new(Disk::default(), 1, Encodings::default());
        s.arm_crash(1);
        s.save_hard_state(&HardState::default()).unwrap();
        assert!(s.write_entries(&[entry(1, 1)]).is_err());
    }
}
