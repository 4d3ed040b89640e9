//! The simulated disk: what a node's [`Storage`] has made durable, and what a crash leaves.
//!
//! It follows the contract of the real write-ahead log ([`riptide_node::storage`]): the hard
//! state is durable when `save_hard_state` returns; written entries are durable only after
//! `sync`; a cut of stored entries is durable at once. A crash keeps the synced log cut where
//! the last write started, plus any prefix of the entries written since (a torn tail that
//! happens to be whole): every outcome a real disk allows, so the simulation can pick any.
//!
//! A crash can also strike *inside* a Ready: [`SimStorage::arm_crash`] makes the n-th storage
//! call from now fail, which the executor treats like a failed fsync (it stops at once).

use riptide_node::server::executor::Storage;
use riptide_node::types::{Entry, HardState, Index};

/// What survives a crash of one node: its hard state and its log.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub hard_state: HardState,
    pub entries: Vec<Entry>,
}

/// A node's storage while it runs.
#[derive(Debug)]
pub struct SimStorage {
    hard_state: HardState,
    /// The durable log.
    synced: Vec<Entry>,
    /// The log as written: `synced` until `dirty_from`, then entries not yet synced.
    written: Vec<Entry>,
    /// The first index written since the last sync.
    dirty_from: Option<Index>,
    /// Storage calls left before a simulated crash.
    crash_in: Option<u32>,
}

impl SimStorage {
    pub fn new(disk: Disk) -> SimStorage {
        SimStorage {
            hard_state: disk.hard_state,
            synced: disk.entries.clone(),
            written: disk.entries,
            dirty_from: None,
            crash_in: None,
        }
    }

    /// The durable log.
    pub fn synced(&self) -> &[Entry] {
        &self.synced
    }

    /// Makes the storage call `calls` from now (0: the next one) fail like a crash.
    pub fn arm_crash(&mut self, calls: u32) {
        self.crash_in = Some(calls);
    }

    pub fn crash_armed(&self) -> bool {
        self.crash_in.is_some()
    }

    /// What the disk holds after a crash. `torn(n)` picks how many of the `n` entries written
    /// since the last sync survive (any number from 0 to n is possible on a real disk).
    pub fn crash(self, torn: impl FnOnce(usize) -> usize) -> Disk {
        let mut entries = self.synced;
        if let Some(from) = self.dirty_from {
            let cut = (from - 1) as usize;
            entries.truncate(cut);
            let unsynced = &self.written[cut.min(self.written.len())..];
            let keep = torn(unsynced.len()).min(unsynced.len());
            entries.extend_from_slice(&unsynced[..keep]);
        }
        Disk {
            hard_state: self.hard_state,
            entries,
        }
    }

    fn call(&mut self) -> anyhow::Result<()> {
        match self.crash_in {
            Some(0) => anyhow::bail!("simulated crash inside a Ready"),
            Some(n) => self.crash_in = Some(n - 1),
            None => {}
        }
        Ok(())
    }
}

impl Storage for SimStorage {
    fn begin_snapshot(
        &mut self,
        _meta: riptide_node::types::SnapshotMeta,
        _state: riptide_node::kv::KvStore,
    ) -> anyhow::Result<()> {
        anyhow::bail!("the simulation does not take snapshots yet")
    }

    fn poll_snapshot(
        &mut self,
        _wait: bool,
    ) -> anyhow::Result<riptide_node::server::executor::SnapshotProgress> {
        Ok(riptide_node::server::executor::SnapshotProgress::Abandoned)
    }

    fn write_snapshot_chunk(&mut self, _offset: u64, _data: &[u8]) -> anyhow::Result<()> {
        anyhow::bail!("the simulation does not install snapshots yet")
    }

    fn install_snapshot(
        &mut self,
        _request: &riptide_node::raft::InstallRequest,
    ) -> anyhow::Result<
        Result<(riptide_node::raft::SnapshotImage, riptide_node::kv::KvStore), String>,
    > {
        anyhow::bail!("the simulation does not install snapshots yet")
    }

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
        assert!(
            first.index as usize <= self.written.len() + 1,
            "a write at {} leaves a hole after {}",
            first.index,
            self.written.len()
        );
        self.written.truncate((first.index - 1) as usize);
        self.written.extend_from_slice(entries);
        // A cut of synced entries is durable at once, as in the real log.
        self.synced
            .truncate(self.synced.len().min((first.index - 1) as usize));
        self.dirty_from = Some(self.dirty_from.map_or(first.index, |d| d.min(first.index)));
        Ok(())
    }

    fn sync(&mut self) -> anyhow::Result<()> {
        self.call()?;
        if let Some(from) = self.dirty_from.take() {
            let cut = (from - 1) as usize;
            self.synced.truncate(cut);
            self.synced.extend_from_slice(&self.written[cut..]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_node::types::Payload;

    fn entry(index: u64, term: u64) -> Entry {
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
        let mut s = SimStorage::new(Disk::default());
        s.write_entries(&[entry(1, 1), entry(2, 1)]).unwrap();
        s.sync().unwrap();
        s.write_entries(&[entry(2, 2), entry(3, 2)]).unwrap();
        assert_eq!(s.synced().len(), 1, "the cut of entry 2 is durable at once");
        let mut again = SimStorage::new(Disk::default());
        again.write_entries(&[entry(1, 1)]).unwrap();
        assert_eq!(terms(&again.crash(|_| 0)), Vec::<u64>::new());
        assert_eq!(terms(&s.crash(|n| n - 1)), vec![1, 2]);
    }

    #[test]
    fn an_armed_crash_fails_the_chosen_call() {
        let mut s = SimStorage::new(Disk::default());
        s.arm_crash(1);
        s.save_hard_state(&HardState::default()).unwrap();
        assert!(s.write_entries(&[entry(1, 1)]).is_err());
    }
}
