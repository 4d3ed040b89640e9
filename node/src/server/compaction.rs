//! The executor's side of log compaction and InstallSnapshot: when to snapshot, how a snapshot is
//! taken without holding up the Raft loop, and how a snapshot from the leader is installed.
//!
//! # Taking a snapshot
//!
//! After `--snapshot-entries` applied entries or `--snapshot-bytes` of applied commands since the
//! last snapshot (and once those commands are worth 1/`--snapshot-amplification` of the last
//! snapshot's size: see [`SnapshotPolicy::due`]), the executor clones the state machine and
//! hands the clone to [`Storage::begin_snapshot`]. The clone is O(1): the key-value store is built on persistent
//! maps (`imbl`) that share structure, so the Raft loop pays for a few pointer copies, and the
//! maps it keeps changing copy only the paths they touch. The slow part (encoding the clone,
//! writing the file, fsync, rename) runs on a background thread (the real node; the simulation
//! does it at once). The loop polls for the result at every iteration; when the file is durable
//! the storage discards the log segments it covers, and the core gets the image
//! ([`Raft::snapshot_taken`](crate::raft::Raft::snapshot_taken)): it discards the in-memory log up
//! to the snapshot's index less `--snapshot-tail` entries and sends the image to followers that
//! need it. One snapshot is taken at a time.
//!
//! # Installing a snapshot from the leader
//!
//! Chunks go to [`Storage::write_snapshot_chunk`] as they come. When the core asks for the
//! install, the executor first waits for a snapshot of its own still being written (so that an
//! older snapshot can never be renamed over the newer one), then [`Storage::install_snapshot`]
//! checks the image (length, checksum, format), makes it the durable snapshot, discards the log
//! it replaces, and decodes the state machine from it, which replaces the executor's. Only then
//! does the core answer the leader.

use super::executor::{Clients, Executor, Network, SnapshotProgress, Storage};
use super::options::UnsafeBug;
use crate::raft::{InstallRequest, SnapshotImage};
use crate::types::SnapshotMeta;

/// When to take snapshots, and how much log to keep behind one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// Snapshot after this many applied entries since the last snapshot (0: never by count).
    pub entries: u64,
    /// Snapshot after this many bytes of applied commands since the last one (0: never by size).
    pub bytes: u64,
    /// Entries kept in memory before the snapshot's index, so that a follower a little behind
    /// catches up from the log instead of receiving the whole state.
    pub tail: u64,
    /// A due snapshot also waits until the commands applied since the last one amount to at
    /// least 1/`amplification` of that snapshot's size (0: it does not wait). See
    /// [`SnapshotPolicy::due`].
    pub amplification: u64,
}

impl SnapshotPolicy {
    /// Never snapshot: the whole log stays (the simulation's and the tests' default).
    pub const OFF: SnapshotPolicy = SnapshotPolicy {
        entries: 0,
        bytes: 0,
        tail: 0,
        amplification: 0,
    };

    /// Whether to snapshot now, `since` the last snapshot, which took `last_bytes`.
    ///
    /// A snapshot costs its whole size (encode, write, fsync), however few entries it replaces.
    /// With a large state a fixed count is ruinous: a million 100-byte keys make a ~130 MB
    /// image, and at 20,000 puts/s `entries` 10,000 would start one every half second, so the
    /// background thread would encode without pause and take the CPU the nodes serve with
    /// (measured: puts fell from ~20,000/s with 1,000 keys to ~7,400/s with a million). So a due
    /// snapshot waits until the log it replaces is worth at least 1/`amplification` of the
    /// last one: writing snapshots then costs at most `amplification` bytes per byte of
    /// commands, and the log held in memory stays below the state's size divided by it (plus
    /// the thresholds). A snapshot of at most [`SMALL_SNAPSHOT_BYTES`] holds nothing back, so
    /// that a test's `--snapshot-entries 50` still means a snapshot every 50 entries.
    fn due(&self, since: &SinceSnapshot, last_bytes: u64) -> bool {
        let threshold = (self.entries > 0 && since.entries >= self.entries)
            || (self.bytes > 0 && since.bytes >= self.bytes);
        threshold
            && (self.amplification == 0
                || last_bytes <= SMALL_SNAPSHOT_BYTES
                || since.bytes.saturating_mul(self.amplification) >= last_bytes)
    }
}

/// A snapshot up to this size is cheap enough to take at every threshold: the
/// `amplification` wait applies only to larger ones.
pub const SMALL_SNAPSHOT_BYTES: u64 = 4 * 1024 * 1024;

/// What was applied since the last snapshot.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct SinceSnapshot {
    pub entries: u64,
    pub bytes: u64,
}

/// The executor's snapshot bookkeeping.
#[derive(Debug)]
pub(super) struct Compaction {
    pub policy: SnapshotPolicy,
    pub since: SinceSnapshot,
    /// A snapshot is being written by the storage.
    pub in_progress: bool,
    pub taken: u64,
    pub installed: u64,
    /// The `install-without-restore` bug.
    pub install_without_restore: bool,
}

impl Compaction {
    pub fn new(bugs: &[UnsafeBug]) -> Compaction {
        Compaction {
            policy: SnapshotPolicy::OFF,
            since: SinceSnapshot::default(),
            in_progress: false,
            taken: 0,
            installed: 0,
            install_without_restore: bugs.contains(&UnsafeBug::InstallWithoutRestore),
        }
    }
}

impl<S: Storage, N: Network, C: Clients> Executor<S, N, C> {
    /// Takes snapshots as `policy` says.
    pub fn set_snapshot_policy(&mut self, policy: SnapshotPolicy) {
        self.compaction.policy = policy;
    }

    /// Counts an applied command toward the snapshot policy.
    pub(super) fn note_applied(&mut self, command_bytes: usize) {
        let since = &mut self.compaction.since;
        since.entries += 1;
        since.bytes += command_bytes as u64;
    }

    /// Starts a snapshot of the state machine if the policy says one is due.
    pub(super) fn maybe_snapshot(&mut self) -> anyhow::Result<()> {
        let compaction = &self.compaction;
        if compaction.in_progress {
            return Ok(());
        }
        let last_bytes = self.raft.snapshot().map_or(0, |image| image.len());
        if !compaction.policy.due(&compaction.since, last_bytes) {
            return Ok(());
        }
        let log = self.raft.log();
        let last_index = log.applied_index();
        let Some(last_term) = log.term_at(last_index) else {
            return Ok(());
        };
        // The configuration in force at the snapshot's index, not the newest (which may be past it).
        let meta = SnapshotMeta::new(last_index, last_term, &self.raft.membership_at(last_index));
        tracing::debug!(index = last_index, "taking a snapshot");
        self.storage.begin_snapshot(meta, self.kv.clone())?;
        self.compaction.in_progress = true;
        self.compaction.since = SinceSnapshot::default();
        Ok(())
    }

    /// Hands a snapshot the storage finished writing to the core. With `wait`, waits for one
    /// still being written.
    pub(super) fn collect_snapshot(&mut self, wait: bool) -> anyhow::Result<()> {
        if !self.compaction.in_progress {
            return Ok(());
        }
        let image = match self.storage.poll_snapshot(wait)? {
            SnapshotProgress::Writing => return Ok(()),
            SnapshotProgress::Abandoned => {
                self.compaction.in_progress = false;
                return Ok(());
            }
            SnapshotProgress::Written(image) => image,
        };
        self.compaction.in_progress = false;
        self.compaction.taken += 1;
        tracing::info!(
            index = image.meta.last_index,
            term = image.meta.last_term,
            bytes = image.len(),
            "took a snapshot"
        );
        self.raft.snapshot_taken(image, self.compaction.policy.tail);
        Ok(())
    }

    /// Installs the snapshot the leader sent (see the module docs), then tells the core.
    pub(super) fn install(&mut self, request: InstallRequest) -> anyhow::Result<()> {
        self.collect_snapshot(true)?;
        let outcome = self.storage.install_snapshot(&request)?;
        let result = match outcome {
            Ok((image, state)) => {
                // An AppendEntries that came after the last chunk (in the same batch, or
                // reordered) may have moved the commit index past the snapshot, and its entries
                // were applied above in this very Ready: the state machine is then already past
                // the snapshot, and the core keeps its log ([`crate::raft::Raft::install_finished`]
                // restores only a snapshot past the commit index). Loading the snapshot's state
                // would roll the state machine back under an applied index that stays ahead.
                let ahead = image.meta.last_index > self.raft.log().commit_index();
                // The bug keeps the old state machine while the applied index jumps ahead.
                if ahead && !self.compaction.install_without_restore {
                    self.kv = state;
                }
                self.compaction.installed += 1;
                self.compaction.since = SinceSnapshot::default();
                Ok(image)
            }
            Err(why) => Err(why),
        };
        self.raft.install_finished(result);
        Ok(())
    }

    /// The image of the newest snapshot, for `status`.
    pub(super) fn snapshot_image(&self) -> Option<&SnapshotImage> {
        self.raft.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn since(entries: u64, bytes: u64) -> SinceSnapshot {
        SinceSnapshot { entries, bytes }
    }

    #[test]
    fn a_large_snapshot_waits_for_a_log_worth_a_share_of_it_and_a_small_one_does_not() {
        let policy = SnapshotPolicy {
            entries: 10_000,
            bytes: 16 * MIB,
            tail: 1_000,
            amplification: 4,
        };
        // Below the thresholds nothing is due, whatever the sizes.
        assert!(!policy.due(&since(9_999, MIB), 0));
        // A small state: due at the count, as configured.
        assert!(policy.due(&since(10_000, MIB), 0));
        assert!(policy.due(&since(10_000, MIB), SMALL_SNAPSHOT_BYTES));
        // A 128 MiB state: 10,000 entries of 1 MiB in all are not worth its 128 MiB...
        assert!(!policy.due(&since(10_000, MIB), 128 * MIB));
        assert!(!policy.due(&since(300_000, 32 * MIB - 1), 128 * MIB));
        // ...until they amount to a quarter of it.
        assert!(policy.due(&since(300_000, 32 * MIB), 128 * MIB));
        // Off: the count alone decides.
        let off = SnapshotPolicy {
            amplification: 0,
            ..policy
        };
        assert!(off.due(&since(10_000, MIB), 128 * MIB));
        assert!(!SnapshotPolicy::OFF.due(&since(u64::MAX, u64::MAX), 0));
    }
}
