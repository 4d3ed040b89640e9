//! Snapshots on the simulated disk, with the durability contract of the real node's storage
//! (`riptide_node::server::node_storage` over the log store's compaction):
//!
//! - **Taking one.** `begin_snapshot` encodes the state and builds the file image at once (the
//!   state is an immutable clone, so when it is encoded changes nothing), but the write takes as
//!   many polls as the disk draws from its seed: half the time it is done by the first poll,
//!   otherwise `poll_snapshot` answers `Writing` 1 to 8 times (a slow background write). The
//!   poll that finds it done adopts it, and only then is it visible. A crash while it is still
//!   being written loses it; a crash once it is done, before a poll saw it, keeps it, as the
//!   real node's recovery adopts a snapshot file renamed into place just before a crash.
//! - **Receiving one.** Chunks go to an in-memory buffer: the real node's `snapshot.incoming`,
//!   never synced, so a crash loses it. A chunk at offset 0 starts over; one that does not
//!   continue the buffer is ignored, as the real storage ignores it (the install's checks then
//!   refuse the image).
//! - **Installing it.** `install_snapshot` checks the buffer's length and CRC-32 against the
//!   leader's, parses it as a snapshot file ([`Snapshot::from_image`]), refuses one older than
//!   the disk's, decodes the state machine, and adopts the snapshot durably. A refused image is
//!   `Ok(Err(why))` and changes nothing (the leader sends it again). An image that passes its
//!   checksum but does not decode is a bug somewhere: it fails the run (the real node stops).
//!
//! Equal states encode to the same bytes, as a run must not depend on anything but its seed.
//! The real encoder does not promise that: the key-value store's maps iterate in an order that
//! depends on their hashers' random keys, so two nodes' snapshots of one state differ in their
//! bytes, and which transfers look like the same image (same metadata, length and checksum)
//! would change from one process to the next. So the storages of a run share their
//! [`Encodings`]: a state equal to one already encoded for the same snapshot metadata gets
//! those bytes, a valid encoding of that very state. (A state that differs, which the safety
//! checks report, gets its own.)
//!
//! Adoption is the same either way (Raft paper Figure 13, steps 6 and 7): a snapshot older than
//! the disk's is not adopted; if the log holds the snapshot's last entry with the snapshot's
//! term, the entries after it are kept, otherwise the whole log goes. Either way the log then
//! starts right after the snapshot, durably at once.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use rand::Rng;
use riptide_node::kv::KvStore;
use riptide_node::raft::{InstallRequest, SnapshotImage};
use riptide_node::server::executor::SnapshotProgress;
use riptide_node::storage::Snapshot;
use riptide_node::types::{Index, SnapshotMeta, Term};

use super::SimStorage;

/// What a node's storage did with snapshots (the cluster adds them up over every boot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotCounters {
    /// Snapshots of its own state a node wrote and handed to its core.
    pub taken: usize,
    /// Written snapshots that a crash struck before a poll saw them, kept on the disk.
    pub kept_unpolled: usize,
    /// Snapshot writes still in progress when the node crashed, lost.
    pub lost_in_crash: usize,
    /// Snapshot chunks received from a leader.
    pub chunks: usize,
    /// Snapshots from a leader installed.
    pub installed: usize,
    /// Received images refused (wrong length or checksum, not a snapshot, stale).
    pub refused: usize,
    /// Transfers from a leader in progress when the node crashed.
    pub transfers_lost: usize,
    /// Boots from a disk that held a snapshot (counted by the cluster).
    pub restarts_from_snapshot: usize,
}

impl std::ops::AddAssign for SnapshotCounters {
    fn add_assign(&mut self, o: SnapshotCounters) {
        self.taken += o.taken;
        self.kept_unpolled += o.kept_unpolled;
        self.lost_in_crash += o.lost_in_crash;
        self.chunks += o.chunks;
        self.installed += o.installed;
        self.refused += o.refused;
        self.transfers_lost += o.transfers_lost;
        self.restarts_from_snapshot += o.restarts_from_snapshot;
    }
}

/// The snapshot states encoded so far in a run, shared by its storages (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Encodings(Rc<RefCell<Vec<Encoded>>>);

/// A state snapshotted for `meta`, and its bytes.
type Encoded = (SnapshotMeta, KvStore, Rc<Vec<u8>>);

impl Encodings {
    /// The bytes of `state`: those of an equal state encoded before for `meta`, if any.
    fn encode(&self, meta: &SnapshotMeta, state: KvStore) -> Rc<Vec<u8>> {
        let mut known = self.0.borrow_mut();
        let same = known.iter().find(|(m, s, _)| m == meta && *s == state);
        if let Some((_, _, data)) = same {
            return Rc::clone(data);
        }
        let data = Rc::new(state.encode());
        known.push((meta.clone(), state, Rc::clone(&data)));
        data
    }
}

/// A snapshot of our own being written.
#[derive(Debug)]
pub(super) struct Pending {
    snapshot: Snapshot,
    /// Polls that answer `Writing` before the write is done; at 0 it is done (durable).
    polls_left: u32,
}

/// The real store's rule: older than the current snapshot, or at its index with another term.
fn is_stale(new: (Index, Term), current: (Index, Term)) -> bool {
    new.0 < current.0 || (new.0 == current.0 && new.1 != current.1)
}

fn image_of(snapshot: &Snapshot) -> SnapshotImage {
    SnapshotImage::new(snapshot.meta.clone(), snapshot.image().to_vec())
}

impl SimStorage {
    pub(super) fn begin(&mut self, meta: SnapshotMeta, state: KvStore) {
        assert!(
            self.pending.is_none(),
            "a snapshot was begun while another was being written"
        );
        let data = self.encodings.encode(&meta, state);
        let snapshot = Snapshot::new(meta, &data);
        let polls_left = if self.rng.gen_bool(0.5) {
            0
        } else {
            self.rng.gen_range(1..=8)
        };
        self.pending = Some(Pending {
            snapshot,
            polls_left,
        });
    }

    pub(super) fn poll(&mut self, wait: bool) -> SnapshotProgress {
        let Some(pending) = self.pending.as_mut() else {
            return SnapshotProgress::Abandoned;
        };
        if pending.polls_left > 0 && !wait {
            pending.polls_left -= 1;
            return SnapshotProgress::Writing;
        }
        let snapshot = self.pending.take().expect("checked above").snapshot;
        let image = image_of(&snapshot);
        if self.adopt(snapshot) {
            self.counters.taken += 1;
            SnapshotProgress::Written(image)
        } else {
            SnapshotProgress::Abandoned
        }
    }

    pub(super) fn receive(&mut self, offset: u64, data: &[u8]) {
        self.counters.chunks += 1;
        if offset == 0 {
            self.incoming.clear();
        }
        if offset == self.incoming.len() as u64 {
            self.incoming.extend_from_slice(data);
        }
    }

    pub(super) fn install(
        &mut self,
        request: &InstallRequest,
    ) -> Result<(SnapshotImage, KvStore), String> {
        let image = std::mem::take(&mut self.incoming);
        let checked = check_image(image, request, self.snapshot_at());
        let snapshot = match checked {
            Ok(snapshot) => snapshot,
            Err(why) => {
                self.counters.refused += 1;
                return Err(why);
            }
        };
        let state = KvStore::decode(snapshot.data()).unwrap_or_else(|why| {
            panic!(
                "the leader's snapshot at index {} passed its checksum but its state does not \
                 decode: {why}",
                snapshot.meta.last_index
            )
        });
        let image = image_of(&snapshot);
        assert!(self.adopt(snapshot), "checked newer above");
        self.counters.installed += 1;
        Ok((image, state))
    }

    /// A crash: a finished write survives (adopted as recovery would), an unfinished one and
    /// the snapshot being received are lost.
    pub(super) fn crash_snapshots(&mut self) {
        if !self.incoming.is_empty() {
            self.counters.transfers_lost += 1;
        }
        let Some(pending) = self.pending.take() else {
            return;
        };
        if pending.polls_left > 0 {
            self.counters.lost_in_crash += 1;
        } else if self.adopt(pending.snapshot) {
            self.counters.kept_unpolled += 1;
        }
    }

    fn snapshot_at(&self) -> (Index, Term) {
        self.snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.meta.last_index, s.meta.last_term))
    }

    /// Makes `snapshot` the disk's, discarding the log it covers (see the module docs). Returns
    /// false, changing nothing, for a snapshot older than the disk's.
    fn adopt(&mut self, snapshot: Snapshot) -> bool {
        let (index, term) = (snapshot.meta.last_index, snapshot.meta.last_term);
        if is_stale((index, term), self.snapshot_at()) {
            return false;
        }
        let offset = self.offset();
        if index > offset {
            // Entries offset+1..=index sit at positions 0..covered.
            let covered = (index - offset) as usize;
            let keeps_suffix = self
                .written
                .get(covered - 1)
                .is_some_and(|e| e.term == term);
            if keeps_suffix {
                self.written.drain(..covered);
                self.synced.drain(..covered.min(self.synced.len()));
            } else {
                self.written.clear();
                self.synced.clear();
            }
        }
        self.snapshot = Some(snapshot);
        let last = index + self.written.len() as Index;
        self.dirty_from = self
            .dirty_from
            .map(|d| d.max(index + 1))
            .filter(|&d| d <= last);
        true
    }
}

/// The received `image`, if it is the snapshot `request` announced and newer than `current`.
fn check_image(
    image: Vec<u8>,
    request: &InstallRequest,
    current: (Index, Term),
) -> Result<Snapshot, String> {
    if image.len() as u64 != request.total_len {
        return Err(format!(
            "received {} bytes, but the leader's snapshot has {}",
            image.len(),
            request.total_len
        ));
    }
    let crc = crc32fast::hash(&image);
    if crc != request.checksum {
        return Err(format!(
            "its CRC-32 is {crc:#010x}, the leader's is {:#010x}",
            request.checksum
        ));
    }
    let snapshot = Snapshot::from_image(image, Path::new("snapshot.incoming"))
        .map_err(|e| format!("not a valid snapshot: {e}"))?;
    let at = (snapshot.meta.last_index, snapshot.meta.last_term);
    if is_stale(at, current) {
        return Err(format!(
            "the snapshot at {at:?} is older than the disk's at {current:?}"
        ));
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use riptide_node::kv::Command;
    use riptide_node::protocol::WriteOp;
    use riptide_node::server::executor::Storage;
    use riptide_node::types::{Entry, Payload};

    use super::*;
    use crate::storage::Disk;

    fn entry(index: u64, term: u64) -> Entry {
        Entry {
            term,
            index,
            payload: Payload::Noop,
        }
    }

    fn meta(index: Index, term: Term) -> SnapshotMeta {
        SnapshotMeta {
            last_index: index,
            last_term: term,
            voters: vec![1, 2, 3],
            learners: Vec::new(),
            outgoing: Vec::new(),
            addresses: Default::default(),
        }
    }

    /// A store with one key, built from scratch each time (so with hashers of its own).
    fn state(value: &str) -> KvStore {
        let mut kv = KvStore::default();
        kv.apply(&Command {
            client_id: 1,
            seq: 1,
            op: WriteOp::Put {
                key: "k".into(),
                value: value.into(),
            },
        });
        kv
    }

    /// A storage whose durable log is entries 1..=n of `term`.
    fn with_log(n: u64, term: u64) -> SimStorage {
        let mut s = SimStorage::new(Disk::default(), 1, Encodings::default());
        let entries: Vec<Entry> = (1..=n).map(|i| entry(i, term)).collect();
        s.write_entries(&entries).unwrap();
        s.sync().unwrap();
        s
    }

    /// Begins a snapshot at `(index, term)` whose write takes `polls` polls.
    fn begin(s: &mut SimStorage, index: Index, term: Term, polls: u32) {
        s.begin_snapshot(meta(index, term), state("v")).unwrap();
        s.pending.as_mut().unwrap().polls_left = polls;
    }

    fn indexes(entries: &[Entry]) -> Vec<Index> {
        entries.iter().map(|e| e.index).collect()
    }

    /// Sends `image` in chunks of `chunk` bytes and asks for the install.
    fn transfer(
        s: &mut SimStorage,
        image: &[u8],
        chunk: usize,
        meta: SnapshotMeta,
    ) -> Result<(SnapshotImage, KvStore), String> {
        for (k, part) in image.chunks(chunk).enumerate() {
            s.write_snapshot_chunk((k * chunk) as u64, part).unwrap();
        }
        let request = InstallRequest {
            meta,
            total_len: image.len() as u64,
            checksum: crc32fast::hash(image),
        };
        s.install_snapshot(&request).unwrap()
    }

    #[test]
    fn a_snapshot_still_being_written_is_lost_in_a_crash() {
        let mut s = with_log(10, 1);
        begin(&mut s, 6, 1, 2);
        assert!(matches!(
            s.poll_snapshot(false).unwrap(),
            SnapshotProgress::Writing
        ));
        let (disk, counters) = s.crash(|n| n);
        assert!(disk.snapshot.is_none());
        assert_eq!(indexes(&disk.entries), (1..=10).collect::<Vec<_>>());
        assert_eq!(counters.lost_in_crash, 1);
    }

    #[test]
    fn a_finished_write_survives_a_crash_before_any_poll_saw_it() {
        let mut s = with_log(10, 1);
        begin(&mut s, 6, 1, 1);
        assert!(matches!(
            s.poll_snapshot(false).unwrap(),
            SnapshotProgress::Writing
        ));
        // The background write is done now; the loop crashes before it polls again.
        let (disk, counters) = s.crash(|n| n);
        assert_eq!(disk.offset(), 6);
        assert_eq!(indexes(&disk.entries), vec![7, 8, 9, 10]);
        assert_eq!(counters.kept_unpolled, 1);
    }

    #[test]
    fn a_written_snapshot_replaces_the_log_it_covers_and_survives_a_crash() {
        let mut s = with_log(10, 1);
        begin(&mut s, 6, 1, 0);
        let SnapshotProgress::Written(image) = s.poll_snapshot(false).unwrap() else {
            panic!("a write that takes no polls is done at the first");
        };
        assert_eq!(image.meta, meta(6, 1));
        let file = Snapshot::from_image(image.bytes.to_vec(), Path::new("image")).unwrap();
        assert_eq!(KvStore::decode(file.data()).unwrap(), state("v"));
        assert_eq!((s.offset(), indexes(s.synced())), (6, vec![7, 8, 9, 10]));
        assert!(matches!(
            s.poll_snapshot(false).unwrap(),
            SnapshotProgress::Abandoned
        ));
        let (disk, counters) = s.crash(|n| n);
        assert_eq!(
            (disk.offset(), indexes(&disk.entries)),
            (6, vec![7, 8, 9, 10])
        );
        assert_eq!(counters.taken, 1);
        let again = SimStorage::new(disk, 2, Encodings::default());
        assert_eq!(again.snapshot().map(|s| s.meta.clone()), Some(meta(6, 1)));
    }

    #[test]
    fn a_torn_tail_after_a_snapshot_keeps_a_prefix_of_the_entries_after_it() {
        let mut s = with_log(10, 1);
        begin(&mut s, 6, 1, 0);
        s.poll_snapshot(false).unwrap();
        // A new leader's entries from 9 on: the cut at 9 is durable at once, they are not.
        let new: Vec<Entry> = (9..=12).map(|i| entry(i, 2)).collect();
        s.write_entries(&new).unwrap();
        assert_eq!(indexes(s.synced()), vec![7, 8]);
        let (disk, _) = s.crash(|n| {
            assert_eq!(n, 4);
            1
        });
        assert_eq!(disk.offset(), 6);
        let terms: Vec<(Index, Term)> = disk.entries.iter().map(|e| (e.index, e.term)).collect();
        assert_eq!(terms, vec![(7, 1), (8, 1), (9, 2)]);
    }

    #[test]
    fn an_install_replaces_a_log_that_conflicts_and_keeps_one_that_matches() {
        let image = Snapshot::new(meta(8, 2), &state("w").encode()).into_image();
        let mut conflicting = with_log(10, 1);
        let (installed, kv) = transfer(&mut conflicting, &image, 7, meta(8, 2)).unwrap();
        assert_eq!((installed.meta, kv), (meta(8, 2), state("w")));
        assert_eq!((conflicting.offset(), conflicting.synced().len()), (8, 0));
        let (disk, counters) = conflicting.crash(|n| n);
        assert_eq!((disk.offset(), disk.entries.len()), (8, 0));
        assert_eq!(
            (counters.installed, counters.chunks),
            (1, image.len().div_ceil(7))
        );

        let image = Snapshot::new(meta(8, 1), &state("w").encode()).into_image();
        let mut matching = with_log(10, 1);
        transfer(&mut matching, &image, 1000, meta(8, 1)).unwrap();
        assert_eq!(
            (matching.offset(), indexes(matching.synced())),
            (8, vec![9, 10])
        );
    }

    #[test]
    fn a_bad_image_is_refused_and_changes_nothing() {
        let image = Snapshot::new(meta(8, 2), &state("w").encode()).into_image();
        let mut s = with_log(10, 1);
        // A truncated image, its length and checksum as announced: the format check refuses it.
        let short = &image[..image.len() - 1];
        let why = transfer(&mut s, short, 5, meta(8, 2)).unwrap_err();
        assert!(why.contains("not a valid snapshot"), "{why}");
        let mut damaged = image.clone();
        damaged[30] ^= 1;
        let request = InstallRequest {
            meta: meta(8, 2),
            total_len: image.len() as u64,
            checksum: crc32fast::hash(&image),
        };
        s.write_snapshot_chunk(0, &damaged).unwrap();
        let why = s.install_snapshot(&request).unwrap().unwrap_err();
        assert!(why.contains("CRC-32"), "{why}");
        // A chunk that skips ahead is ignored: what arrived is short.
        s.write_snapshot_chunk(0, &image[..10]).unwrap();
        s.write_snapshot_chunk(20, &image[20..]).unwrap();
        let why = s.install_snapshot(&request).unwrap().unwrap_err();
        assert!(why.contains("received 10 bytes"), "{why}");
        // Nothing received at all.
        let why = s.install_snapshot(&request).unwrap().unwrap_err();
        assert!(why.contains("received 0 bytes"), "{why}");
        // Garbage whose length and checksum the leader announced.
        let garbage = vec![7u8; 40];
        let why = transfer(&mut s, &garbage, 40, meta(8, 2)).unwrap_err();
        assert!(why.contains("not a valid snapshot"), "{why}");
        assert_eq!((s.offset(), s.synced().len()), (0, 10));
        assert_eq!(s.counters().refused, 5);
    }

    #[test]
    fn a_snapshot_older_than_the_disks_is_not_adopted() {
        let image = Snapshot::new(meta(8, 1), &state("w").encode()).into_image();
        let mut s = with_log(10, 1);
        transfer(&mut s, &image, 1000, meta(8, 1)).unwrap();
        begin(&mut s, 6, 1, 0);
        assert!(matches!(
            s.poll_snapshot(false).unwrap(),
            SnapshotProgress::Abandoned
        ));
        let stale = Snapshot::new(meta(7, 1), &state("w").encode()).into_image();
        let why = transfer(&mut s, &stale, 1000, meta(7, 1)).unwrap_err();
        assert!(why.contains("older"), "{why}");
        assert_eq!((s.offset(), indexes(s.synced())), (8, vec![9, 10]));
    }

    #[test]
    fn a_transfer_in_progress_is_lost_in_a_crash() {
        let image = Snapshot::new(meta(8, 2), &state("w").encode()).into_image();
        let mut s = with_log(10, 1);
        s.write_snapshot_chunk(0, &image[..10]).unwrap();
        let (disk, counters) = s.crash(|n| n);
        assert_eq!(counters.transfers_lost, 1);
        let mut s = SimStorage::new(disk, 2, Encodings::default());
        s.write_snapshot_chunk(10, &image[10..]).unwrap();
        let request = InstallRequest {
            meta: meta(8, 2),
            total_len: image.len() as u64,
            checksum: crc32fast::hash(&image),
        };
        assert!(s.install_snapshot(&request).unwrap().is_err());
    }

    #[test]
    fn a_crash_armed_inside_a_snapshot_call_fails_that_call() {
        let mut s = with_log(3, 1);
        s.arm_crash(0);
        assert!(s.begin_snapshot(meta(2, 1), state("v")).is_err());
        s.arm_crash(1);
        s.begin_snapshot(meta(2, 1), state("v")).unwrap();
        assert!(s.poll_snapshot(true).is_err());
        s.arm_crash(0);
        assert!(s.write_snapshot_chunk(0, b"x").is_err());
        s.arm_crash(0);
        let request = InstallRequest {
            meta: meta(2, 1),
            total_len: 1,
            checksum: 0,
        };
        assert!(s.install_snapshot(&request).is_err());
    }

    #[test]
    fn equal_states_encode_to_the_same_bytes_in_one_run() {
        let encodings = Encodings::default();
        let images: Vec<Vec<u8>> = (0..2)
            .map(|seed| {
                let mut s = SimStorage::new(Disk::default(), seed, encodings.clone());
                s.begin_snapshot(meta(2, 1), state("v")).unwrap();
                let SnapshotProgress::Written(image) = s.poll_snapshot(true).unwrap() else {
                    panic!("a waited-for snapshot is written");
                };
                image.bytes.to_vec()
            })
            .collect();
        assert_eq!(images[0], images[1]);
    }
}
