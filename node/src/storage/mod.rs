//! Durable storage of a Raft node: the write-ahead log, the hard state (term and vote) and the
//! snapshot, in one data directory.
//!
//! Raft's safety rests on three things surviving a crash (Raft paper, Figure 2 "persistent state",
//! and §5.6 / the thesis §3.8 on when to persist):
//! - the **term and vote**: a node that forgets its vote can vote twice in one term and elect two
//!   leaders;
//! - the **log entries it acknowledged**: a leader counts a follower's acknowledgement (and itself)
//!   toward a commit, so an acknowledged entry that vanishes can un-commit a committed write;
//! - the **snapshot** that replaced a prefix of the log.
//!
//! [`LogStore`] is that storage, used synchronously by the one thread that runs the server loop.
//!
//! # What is durable when
//!
//! | call | durable when it returns? |
//! |---|---|
//! | [`LogStore::save_hard_state`] | yes (temp file, fsync, rename, fsync directory) |
//! | [`LogStore::append`] | **no**: records are encoded into a buffer |
//! | [`LogStore::truncate_from`] | by the next `sync()` (a cut of already written bytes is fsynced at once, see below) |
//! | [`LogStore::sync`] | everything appended or truncated so far becomes durable |
//! | [`LogStore::save_snapshot`] | yes (temp file, fsync, rename, fsync directory), then covered segments are deleted |
//!
//! So the server loop must: save the hard state before sending any message that depends on it
//! (a vote, a response carrying the new term); and append a whole batch of entries, call `sync()`
//! once, and only then acknowledge the batch or count itself toward a commit. One `sync()` per
//! batch is the group commit: a single `write(2)` of the buffered records and one `fdatasync`,
//! however many entries the batch holds.
//!
//! # Files
//!
//! ```text
//! <dir>/LOCK                        flock'ed while a store has the directory open
//! <dir>/hardstate                   magic "rths0001" + one record: term, vote
//! <dir>/snapshot                    magic "rtsnap01", last index, last term, data length, data, crc
//! <dir>/log/00000000000000000001.seg  magic "rtwal001" + records of entries 1, 2, ...
//! <dir>/log/00000000000000004711.seg  the next segment, starting at entry 4711
//! ```
//!
//! A segment is named by its first index (20 digits, zero-padded, so names sort like numbers) and
//! holds consecutive entries up to the next segment's first index. The log rolls to a new segment
//! once the current one reaches [`StorageOptions::segment_bytes`]; a snapshot then discards a prefix
//! of the log by deleting whole files.
//!
//! Every record is `[u32 length][u32 crc32 of the payload][payload]` (little-endian), and an entry's
//! payload is `[u64 index][u64 term][u8 kind][command bytes]` (see the `record` module). The
//! hard-state and snapshot files are checksummed too, so a damaged one can never be misread.
//!
//! # Recovery rules
//!
//! [`LogStore::open`] reads everything back and decides what is true:
//!
//! 1. Leftover `hardstate.tmp` and `snapshot.tmp` are replacements that never happened (the rename
//!    is the commit point): they are deleted unread. A `hardstate` or `snapshot` that fails its
//!    checksum is damage, and the node refuses to start ([`Error::Corrupt`]).
//! 2. Segments whose entries all come before the snapshot's last index are deleted (a compaction
//!    that a crash interrupted).
//! 3. Every remaining record is checked: length in bounds, complete, checksum, decodable, the
//!    expected index (segments chain without gaps or overlaps), terms never decreasing.
//! 4. **Torn tail**: a bad record in the *newest* segment with no valid record of a later entry
//!    anywhere after it (index at least the bad record's, term at least the last good one's) is what
//!    a crash in the middle of an unsynced write leaves (a short file, or a file whose size was
//!    extended but whose last blocks hold zeros or garbage). Those entries were never
//!    synced, hence never acknowledged: the file is cut at the bad record, the cut is fsynced and
//!    reported in [`Recovered::repairs`], and the node starts.
//! 5. **Corruption**: a bad record *followed by a valid record of a later entry*, a bad record (or
//!    a torn tail) in an older segment, or a record whose checksum matches but whose contents break
//!    rule 3: the node refuses to start with [`Error::Corrupt`] naming the file and offset, and
//!    changes nothing in that file.
//! 6. If the log ends before the snapshot, or disagrees with the snapshot's last term, it is a log
//!    that the snapshot replaced just before a crash (an install from the leader, or a snapshot
//!    past what was synced): it is deleted (reported in `repairs`). The first entry after the
//!    snapshot must not have a lower term than the snapshot's.
//!
//! ## Why damage in the middle refuses to start
//!
//! The entries after a bad record in the middle were written, synced and acknowledged: the leader
//! may have counted them toward a commit. Cutting the log at the damage would silently forget
//! committed writes, and reading past it would trust bytes that are known to be bad. Neither can be
//! done safely, so the node stops and says so; the operator moves the data directory aside and the
//! node rejoins empty and catches up from the leader. (Rejoining empty is itself only safe while a
//! majority keeps its data; it is the operator's decision, not one storage can make silently.)
//!
//! A torn write is recognisable only because of an invariant the write path keeps: **only the newest
//! segment can hold unsynced bytes**. A segment is fsynced (and its directory entry too) before the
//! next one is created, and a truncation of bytes already written is fsynced before anything new is
//! written after it (otherwise a crash could persist the new records but not the cut, and old
//! records would reappear behind them, spliced into a log that never existed).
//!
//! ## The limits of telling torn from corrupt
//!
//! - A bit flip in the *last* record of the newest segment looks exactly like a torn write and is
//!   cut. That entry may have been acknowledged; nothing on disk can tell.
//! - A power failure that persists a later block of an unsynced batch but not an earlier one leaves
//!   a valid record after a bad one, which rule 5 refuses. The refusal is conservative: it costs a
//!   manual step, never data.
//! - A valid record hidden in the torn bytes (a command payload that embeds an encoded record of a
//!   plausible later entry) would also be taken for corruption. Again conservative.
//!
//! # Deleting files without opening holes
//!
//! File removals are ordered so that any crash leaves something recovery accepts: a truncation, or a
//! snapshot that replaces the whole log, removes segments newest first with a directory fsync after
//! each (a crash leaves a prefix of the log); a compaction removes the oldest segments, which
//! recovery would delete anyway (rule 2).
//!
//! # Errors
//!
//! An I/O error or corruption is fatal ([`Error::is_fatal`]): after a failed fsync the kernel may
//! have dropped the dirty pages, so the store refuses every later call and the node must restart
//! and recover. The other errors are the caller's mistakes (an append that does not continue the
//! log, a stale snapshot, a term going backwards) and leave the store untouched.
//!
//! # Not implemented
//!
//! - Reading entries back after `open`: the Raft core keeps the log it got from [`Recovered`] in
//!   memory and storage is write-only afterwards. A `entries(range)` reader would use the
//!   in-memory offsets.
//! - Preallocating segments, `O_DIRECT`, checksumming across records (each record stands alone).
//! - Storing the snapshot in chunks; the snapshot is read into memory whole.

mod compaction;
mod error;
mod fs;
mod hard_state;
mod log;
mod record;
mod recovery;
mod segment;
mod snapshot;
mod terms;

pub use error::{Error, Result};
pub use log::{LogStore, Recovered, StorageOptions, DEFAULT_SEGMENT_BYTES};
pub use snapshot::{write_snapshot_file, Snapshot};
