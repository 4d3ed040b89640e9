//! [`LogStore`]: the durable log, hard state and snapshot of one node, and its write path.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::compaction::Incoming;
use super::durability::{fsync, Durability, SyncKind};
use super::error::{Error, Result};
use super::fs::{create_dir_durable, lock_dir, remove_if_exists, sync_dir};
use super::hard_state;
use super::record::{encode_entry, record_len, MAX_RECORD_PAYLOAD, RECORD_HEADER_LEN};
use super::recovery::{recover_log, remove_newest_first};
use super::segment::{self, Segment, HEADER_LEN, LOG_DIR, MAGIC};
use super::snapshot::{self, Snapshot};
use super::terms::TermRuns;
use crate::types::{Entry, HardState, Index, SnapshotMeta, Term};

/// The default size past which the log rolls to a new segment file. Large enough that a roll (one
/// extra fsync and a file creation) is rare and the directory stays small; small enough that a
/// snapshot frees disk in reasonable steps, and that recovery, which reads one segment into memory
/// at a time, needs little memory.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;

/// Appended records are handed to the kernel once the write buffer holds this much, even before
/// `sync()`. Large enough that a typical batch (hundreds of small entries) is one `write(2)`; small
/// enough that appending without syncing cannot grow memory without bound.
const WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// How the store lays out its files.
#[derive(Clone, Debug)]
pub struct StorageOptions {
    /// Roll to a new segment file once the current one reaches this many bytes (a segment always
    /// takes at least one entry, so a tiny value means one entry per file, which tests use).
    pub segment_bytes: u64,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// What [`LogStore::open`] found on disk.
#[derive(Debug)]
pub struct Recovered {
    /// The last saved term and vote (term 0, no vote on a fresh directory).
    pub hard_state: HardState,
    /// The newest durable snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The log after the snapshot's last index (or from index 1), contiguous.
    pub entries: Vec<Entry>,
    /// What recovery changed on disk and why, one line each (a torn tail cut, leftover temp files
    /// removed, an interrupted compaction finished). Empty after a clean shutdown. Log them.
    pub repairs: Vec<String>,
}

/// The durable state of one Raft node in one directory: hard state, snapshot, log.
///
/// Owned by a single thread (the server loop); every method takes `&mut self` and there are no
/// locks, so none can be held across an fsync. The one thing done elsewhere is writing a snapshot
/// file ([`write_snapshot_file`](super::write_snapshot_file), on a background thread), which the
/// store then adopts ([`LogStore::snapshot_written`]). See the [module docs](super) for what is
/// durable when. After a fatal error ([`Error::is_fatal`]) every further call fails: restart the
/// node.
///
/// The snapshot methods (taking, adopting and receiving snapshots) are in `compaction.rs`.
#[derive(Debug)]
pub struct LogStore {
    pub(super) dir: PathBuf,
    pub(super) log_dir: PathBuf,
    opts: StorageOptions,
    /// Which fsyncs this store does.
    pub(super) durability: Durability,
    /// Holds the directory's lock for as long as the store lives.
    _lock: File,
    /// The durable hard state.
    hard_state: HardState,
    /// The adopted snapshot's last `(index, term)`, `(0, 0)` without a snapshot.
    pub(super) snapshot: (Index, Term),
    /// The adopted snapshot's metadata, and the size of its file.
    pub(super) snapshot_meta: Option<SnapshotMeta>,
    pub(super) snapshot_bytes: u64,
    /// A snapshot being received from the leader, chunk by chunk.
    pub(super) incoming: Option<Incoming>,
    /// The segments in order; never empty, and the last one is the one appended to.
    pub(super) segments: Vec<Segment>,
    /// Handle of the last segment, opened for appending.
    active: File,
    /// Bytes of the last segment already handed to the kernel; the rest are in `buf`.
    written: u64,
    /// Encoded records (and a new segment's header) not yet written, reused across batches.
    buf: Vec<u8>,
    /// The last segment was written since its last fsync.
    unsynced: bool,
    /// A segment was created since the log directory's last fsync.
    pub(super) dir_unsynced: bool,
    pub(super) terms: TermRuns,
    /// The last entry's `(index, term)`, or the snapshot's when the log is empty.
    pub(super) last: (Index, Term),
    /// Why the store refuses to work, after a fatal error.
    poisoned: Option<String>,
}

impl LogStore {
    /// Opens (creating if missing) the data directory `dir`, recovers it and locks it.
    ///
    /// Fails with [`Error::Corrupt`] if the data is damaged in a way that is not a torn final
    /// write, and with [`Error::Locked`] if another process has it open.
    pub fn open(dir: &Path, opts: StorageOptions) -> Result<(LogStore, Recovered)> {
        LogStore::open_with(dir, opts, Durability::FULL)
    }

    /// [`LogStore::open`] with an fsync policy other than the full one (a deliberate bug: see
    /// [`Durability`]). The policy holds for everything the store does from here on, this
    /// opening's repairs included.
    pub fn open_with(
        dir: &Path,
        opts: StorageOptions,
        durability: Durability,
    ) -> Result<(LogStore, Recovered)> {
        create_dir_durable(dir, durability)?;
        let lock = lock_dir(dir)?;
        let log_dir = dir.join(LOG_DIR);
        create_dir_durable(&log_dir, durability)?;

        let mut repairs = Vec::new();
        remove_leftovers(dir, &mut repairs, durability)?;
        let hard_state = hard_state::load(dir)?;
        let snapshot = snapshot::load(dir)?;
        let snap = snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.meta.last_index, s.meta.last_term));
        let log = recover_log(&log_dir, snap, &mut repairs, durability)?;
        let last = log
            .last
            .filter(|&(index, _)| index >= snap.0)
            .unwrap_or(snap);

        let mut segments = log.segments;
        let mut buf = Vec::with_capacity(WRITE_BUFFER_BYTES);
        let (active, written, fresh) = match segments.last() {
            Some(seg) => (open_for_append(&seg.path)?, seg.len, false),
            None => {
                let (file, seg) = create_segment(&log_dir, snap.0 + 1)?;
                segments.push(seg);
                buf.extend_from_slice(MAGIC);
                (file, 0, true)
            }
        };
        let store = LogStore {
            dir: dir.to_path_buf(),
            log_dir,
            opts,
            durability,
            _lock: lock,
            hard_state,
            snapshot: snap,
            snapshot_meta: snapshot.as_ref().map(|s| s.meta.clone()),
            snapshot_bytes: snapshot.as_ref().map_or(0, |s| s.image().len() as u64),
            incoming: None,
            segments,
            active,
            written,
            buf,
            unsynced: false,
            dir_unsynced: fresh,
            terms: log.terms,
            last,
            poisoned: None,
        };
        let recovered = Recovered {
            hard_state,
            snapshot,
            entries: log.entries,
            repairs,
        };
        Ok((store, recovered))
    }

    /// The fsync policy the store was opened with.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// The durable hard state.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Makes `hs` the durable hard state before returning: write a temp file, fsync, rename,
    /// fsync the directory. Does nothing if `hs` is already the durable one.
    ///
    /// Refuses (without writing) a lower term, or another vote in the same term.
    pub fn save_hard_state(&mut self, hs: &HardState) -> Result<()> {
        self.check_usable()?;
        let current = self.hard_state;
        if *hs == current {
            return Ok(());
        }
        let same_term_new_vote = hs.term == current.term && current.voted_for.is_some();
        if hs.term < current.term || same_term_new_vote {
            return Err(Error::HardStateRegression { current, new: *hs });
        }
        let result = hard_state::save(&self.dir, hs, self.durability);
        self.poison_on_error(result)?;
        self.hard_state = *hs;
        Ok(())
    }

    /// Appends `entries`, which must continue the log (the first one's index is
    /// `last_index() + 1`, each next one's is one more, terms never decrease). Buffered, NOT
    /// durable: call [`LogStore::sync`] before acknowledging them. On a validation error nothing
    /// is appended.
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        self.check_usable()?;
        let (mut previous, mut previous_term) = self.last;
        for entry in entries {
            if entry.index != previous + 1 {
                return Err(Error::NotContiguous {
                    expected: previous + 1,
                    got: entry.index,
                });
            }
            if entry.term < previous_term {
                return Err(Error::TermRegression {
                    index: entry.index,
                    term: entry.term,
                    previous: previous_term,
                });
            }
            let bytes = record_len(entry) - RECORD_HEADER_LEN;
            if bytes > MAX_RECORD_PAYLOAD {
                return Err(Error::EntryTooLarge {
                    index: entry.index,
                    bytes,
                    limit: MAX_RECORD_PAYLOAD,
                });
            }
            (previous, previous_term) = (entry.index, entry.term);
        }
        let result = entries.iter().try_for_each(|entry| self.append_one(entry));
        self.poison_on_error(result)
    }

    fn append_one(&mut self, entry: &Entry) -> Result<()> {
        let seg = self
            .segments
            .last()
            .expect("there is always an active segment");
        if seg.len >= self.opts.segment_bytes && !seg.offsets.is_empty() {
            self.roll(entry.index)?;
        }
        let seg = self
            .segments
            .last_mut()
            .expect("there is always an active segment");
        let len = encode_entry(entry, &mut self.buf) as u64;
        seg.offsets.push(seg.len);
        seg.len += len;
        self.terms.push(entry.index, entry.term);
        self.last = (entry.index, entry.term);
        if self.buf.len() >= WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Removes entries `index` and after (Raft's conflict repair). Entries already compacted into
    /// the snapshot cannot be removed; an `index` past the end removes nothing. Durable by the
    /// next [`LogStore::sync`] at the latest; in practice a cut of bytes already written is
    /// fsynced at once (see the module docs), a cut of bytes still buffered costs no I/O.
    pub fn truncate_from(&mut self, index: Index) -> Result<()> {
        self.check_usable()?;
        if index > self.last.0 {
            return Ok(());
        }
        if index <= self.snapshot.0 {
            return Err(Error::TruncateCompacted {
                index,
                snapshot_index: self.snapshot.0,
            });
        }
        let result = self.truncate_inner(index);
        self.poison_on_error(result)
    }

    fn truncate_inner(&mut self, index: Index) -> Result<()> {
        let holding = self.segments.partition_point(|s| s.first <= index) - 1;
        // A segment that would become empty goes too, unless it is the only one.
        let drop_from = if index == self.segments[holding].first && holding > 0 {
            holding
        } else {
            holding + 1
        };
        if drop_from < self.segments.len() {
            let paths: Vec<PathBuf> = self.segments.drain(drop_from..).map(|s| s.path).collect();
            self.buf.clear();
            remove_newest_first(&self.log_dir, &paths, self.durability)?;
            self.dir_unsynced = false;
            // The new last segment was sealed: fully written and fsynced when it was rolled.
            let seg = self
                .segments
                .last()
                .expect("the first segment is never dropped");
            self.active = open_for_append(&seg.path)?;
            self.written = seg.len;
            self.unsynced = false;
        }
        let seg = self
            .segments
            .last_mut()
            .expect("there is always an active segment");
        if index < seg.next_index() {
            let keep = (index - seg.first) as usize;
            let at = seg.offsets[keep];
            seg.offsets.truncate(keep);
            seg.len = at;
            if at >= self.written {
                self.buf.truncate((at - self.written) as usize);
            } else {
                // Cut durably now, before anything new is written after the cut: otherwise a crash
                // could persist new records but not the cut, and old records would reappear after
                // them, spliced into a log that never existed.
                self.buf.clear();
                let path = &seg.path;
                self.active
                    .set_len(at)
                    .map_err(Error::io("truncate", path))?;
                fsync(&self.active, path, SyncKind::Log, false, self.durability)?;
                self.written = at;
                self.unsynced = false;
            }
        }
        self.terms.truncate_from(index);
        let last = index - 1;
        let last_term = self
            .term(last)
            .expect("the entry before a truncation point exists");
        self.last = (last, last_term);
        Ok(())
    }

    /// Makes every append and truncation so far durable: one write of the buffered records, one
    /// `fdatasync` of the segment they went to, and an fsync of the log directory if a segment
    /// was created. This is the group commit: call it once per batch, then acknowledge the whole
    /// batch. Costs no system call when there is nothing to make durable.
    pub fn sync(&mut self) -> Result<()> {
        self.check_usable()?;
        let result = self.sync_inner();
        self.poison_on_error(result)
    }

    fn sync_inner(&mut self) -> Result<()> {
        self.flush()?;
        let path = &self
            .segments
            .last()
            .expect("there is always an active segment")
            .path;
        if self.unsynced {
            fsync(&self.active, path, SyncKind::Log, true, self.durability)?;
            self.unsynced = false;
        }
        if self.dir_unsynced {
            sync_dir(&self.log_dir, self.durability)?;
            self.dir_unsynced = false;
        }
        Ok(())
    }

    /// Hands the buffered bytes to the kernel in one write.
    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = &self
            .segments
            .last()
            .expect("there is always an active segment")
            .path;
        self.active
            .write_all(&self.buf)
            .map_err(Error::io("write", path))?;
        self.written += self.buf.len() as u64;
        self.unsynced = true;
        self.buf.clear();
        // One huge entry may have grown the buffer; do not keep that memory forever.
        self.buf.shrink_to(WRITE_BUFFER_BYTES);
        Ok(())
    }

    /// Seals the active segment and starts a new one whose first entry is `first`. The sealed
    /// segment (and its name) are made durable *before* the new file exists, so that after any
    /// crash only the newest segment can have a torn tail.
    fn roll(&mut self, first: Index) -> Result<()> {
        self.sync_inner()?;
        self.start_segment(first)
    }

    /// Creates an empty segment for entries from `first`; its header is buffered like a record.
    pub(super) fn start_segment(&mut self, first: Index) -> Result<()> {
        let (file, seg) = create_segment(&self.log_dir, first)?;
        self.active = file;
        self.segments.push(seg);
        self.written = 0;
        self.buf.clear();
        self.buf.extend_from_slice(MAGIC);
        self.unsynced = false;
        self.dir_unsynced = true;
        Ok(())
    }

    /// The index of the last entry, or of the snapshot's last entry if the log is empty
    /// (0 for a fresh node). Includes appended entries not yet synced.
    pub fn last_index(&self) -> Index {
        self.last.0
    }

    /// The term of the entry at [`LogStore::last_index`] (0 for a fresh node).
    pub fn last_term(&self) -> Term {
        self.last.1
    }

    /// The index of the first entry still in the log: one past the snapshot's last index. The log
    /// is empty when this is greater than [`LogStore::last_index`].
    pub fn first_index(&self) -> Index {
        self.snapshot.0 + 1
    }

    /// The term of entry `index`, if it is in the log or is the snapshot's last entry (index 0
    /// has term 0). `None` for compacted or future indexes.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.0 {
            Some(self.snapshot.1)
        } else if index < self.first_index() || index > self.last.0 {
            None
        } else {
            self.terms.term_of(index)
        }
    }

    pub(super) fn check_usable(&self) -> Result<()> {
        match &self.poisoned {
            Some(why) => Err(Error::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// After a failed write or fsync the in-memory view and the disk may disagree, and the kernel
    /// may have dropped dirty pages (a retried fsync can then succeed without writing them): the
    /// only safe continuation is a restart and a recovery.
    pub(super) fn poison_on_error<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.is_fatal() {
                self.poisoned = Some(e.to_string());
            }
        }
        result
    }
}

/// Recovery rule 1: deletes the temp files of replacements and transfers that never completed.
fn remove_leftovers(dir: &Path, repairs: &mut Vec<String>, durability: Durability) -> Result<()> {
    let mut removed = false;
    for tmp in [hard_state::TMP_NAME, snapshot::TMP_NAME] {
        if remove_if_exists(dir, tmp)? {
            removed = true;
            repairs.push(format!(
                "removed {tmp}: a replacement that never completed (the previous file is intact)"
            ));
        }
    }
    if remove_if_exists(dir, snapshot::INCOMING_NAME)? {
        removed = true;
        repairs.push(format!(
            "removed {}: a snapshot from the leader whose transfer or install never completed \
             (the leader sends it again)",
            snapshot::INCOMING_NAME
        ));
    }
    match removed {
        true => sync_dir(dir, durability),
        false => Ok(()),
    }
}

fn open_for_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(Error::io("open", path))
}

/// Creates the (empty) file of the segment whose first entry is `first`; the caller buffers its
/// header and fsyncs the directory.
fn create_segment(log_dir: &Path, first: Index) -> Result<(File, Segment)> {
    let path = log_dir.join(segment::file_name(first));
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(Error::io("create", &path))?;
    Ok((
        file,
        Segment {
            first,
            path,
            offsets: Vec::new(),
            len: HEADER_LEN,
        },
    ))
}
