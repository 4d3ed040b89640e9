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
//! [`LogStore`] is that storage, used synchronously by the one thread that runs the server loop
//! (the Raft thread). The one exception is writing a snapshot, which takes as long as the state
//! machine is large: [`write_snapshot_file`] is a free function that a background thread calls
//! while the store keeps appending, and the Raft thread then adopts the file with
//! [`LogStore::snapshot_written`] (see "Snapshots" below).
//!
//! # What is durable when
//!
//! | call | durable when it returns? |
//! |---|---|
//! | [`LogStore::save_hard_state`] | yes (temp file, fsync, rename, fsync directory) |
//! | [`LogStore::append`] | **no**: records are encoded into a buffer |
//! | [`LogStore::truncate_from`] | by the next `sync()` (a cut of already written bytes is fsynced at once, see below) |
//! | [`LogStore::sync`] | everything appended or truncated so far becomes durable |
//! | [`write_snapshot_file`] (any thread) | yes (`snapshot.tmp`, fsync, rename, fsync directory); the log is untouched |
//! | [`LogStore::snapshot_written`] | the covered log is deleted (each removal made durable) before it returns |
//! | [`LogStore::save_snapshot`] | both of the above, on the calling thread |
//! | [`LogStore::write_incoming_chunk`] | **no**: written to `snapshot.incoming`, never fsynced by itself |
//! | [`LogStore::install_incoming`] | yes (fsync `snapshot.incoming`, rename over `snapshot`, fsync directory), then the covered log is deleted |
//!
//! So the server loop must: save the hard state before sending any message that depends on it
//! (a vote, a response carrying the new term); and append a whole batch of entries, call `sync()`
//! once, and only then acknowledge the batch or count itself toward a commit. One `sync()` per
//! batch is the group commit: a single `write(2)` of the buffered records and one `fdatasync`,
//! however many entries the batch holds.
//!
//! Every fsync in this table goes through a [`Durability`] policy given to
//! [`LogStore::open_with`]; [`LogStore::open`] does them all. Skipping some is a deliberate bug
//! for the test bench (the node's `--unsafe-bug no-fsync`, `vote-not-synced`, `no-dir-fsync`):
//! the store then reports as durable what a power cut takes back.
//!
//! # Files
//!
//! ```text
//! <dir>/LOCK                        flock'ed while a store has the directory open
//! <dir>/cluster                     "rtclus01 <cluster id> <crc32>": the cluster this dir belongs to
//! <dir>/hardstate                   magic "rths0001" + one record: term, vote
//! <dir>/snapshot                    magic "rtsnap-4", last index, last term, members, addresses, data, crc
//! <dir>/snapshot.tmp                a snapshot being written (by write_snapshot_file)
//! <dir>/snapshot.incoming           a snapshot being received from the leader, chunk by chunk
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
//! payload is `[u64 index][u64 term][u8 kind][command bytes]` (a configuration entry, kind 2,
//! carries its member lists and their addresses instead; see the `record` module). The
//! hard-state and snapshot files are checksummed too, so a damaged one can never be misread.
//!
//! The snapshot file is `[8 magic "rtsnap-4"][u64 last_index][u64 last_term]`, then three member
//! lists (voters, learners, outgoing voters of a joint configuration) each `[u32 count][u64 id] x
//! count`, the members' addresses `[u32 count]([u64 id][u16 len][UTF-8 bytes]) x count`, then
//! `[u64 data_len][data][u32 crc32 of everything after the magic]` (little-endian);
//! [`Snapshot`] holds exactly these bytes (its [`image`](Snapshot::image)), which is also what a
//! leader sends in InstallSnapshot chunks. Format 3 (`rtsnap-3`, no addresses) is still read, as
//! a configuration without addresses, and format 2 (`rtsnap02`, voters only) as a configuration
//! without learners. Format 1 (`rtsnap01`, no voters) was
//! written by riptide versions that could not restore snapshots; it is refused
//! ([`Error::OldSnapshotFormat`]): move the data directory aside.
//!
//! # Snapshots
//!
//! A snapshot replaces the log up to its last index. **Adopting** one (in
//! [`LogStore::snapshot_written`], [`LogStore::save_snapshot`] and [`LogStore::install_incoming`])
//! discards the log it covers, after the snapshot file is durable:
//! - if the log holds the snapshot's last entry (same index and term) and entries after it, those
//!   stay, and the segments wholly before that entry are deleted (the segment holding it stays, so
//!   that recovery can check its term; so a compaction frees disk in steps of whole segments and a
//!   restart reads up to one segment of entries the snapshot already covers);
//! - otherwise (the snapshot is ahead of the log, or the log has another term there: a leader's
//!   snapshot replacing a follower's diverged log) the whole log is deleted and the next append
//!   must be the snapshot's last index + 1.
//!
//! **Taken locally, in the background**: the server serializes the state machine at an applied
//! index, a background thread calls [`write_snapshot_file`] while the Raft thread keeps appending
//! and syncing (nothing is shared but the directory), and when it is done the Raft thread calls
//! `snapshot_written(&meta)`. The entries the snapshot covers are committed, so they are never
//! truncated in the meantime. Writes of one directory are serialized, and the rename over
//! `snapshot` happens only if the file there is older (under a process-wide lock): a slow
//! background write can never replace a newer snapshot that the leader installed meanwhile (the log
//! would then start after a gap, and the node could not restart); it fails with
//! [`Error::StaleSnapshot`] instead, and so does adopting it. If the write fails, do not adopt.
//!
//! **Received from the leader**: the Raft core decides terms, offsets and duplicates; storage
//! writes each chunk at the offset it is given ([`LogStore::write_incoming_chunk`]: offset 0
//! starts over, any other must equal the bytes received so far), then
//! [`LogStore::install_incoming`] reads the file back, checks its length and CRC-32 against the
//! leader's, parses it, refuses one older than the adopted snapshot, and only then fsyncs, renames
//! and adopts it. A refused snapshot is deleted and leaves the store unchanged.
//!
//! **Crash windows.** The rename is the only commit point; everything after it is what recovery
//! would do anyway:
//!
//! | crash | on disk | after restart |
//! |---|---|---|
//! | while writing `snapshot.tmp` / receiving `snapshot.incoming` | the old snapshot, the log, a partial temp file | temp file deleted unread (rule 1); as if no snapshot was taken |
//! | after the rename, before or during adoption | the new snapshot and all or part of the old log | rule 2 deletes the covered segments, rule 6 the log if it ends before the snapshot or disagrees with it: exactly what adoption does |
//! | after adoption | the new snapshot, the log after it | nothing to repair |
//!
//! Entries appended while a background write ran are kept in every case (they follow the snapshot's
//! last entry, which the log holds). Unsynced ones may be lost, as always; if that loses the
//! snapshot's last entry itself, the log ends before the snapshot and rule 6 drops it: the snapshot
//! supersedes it.
//!
//! # Recovery rules
//!
//! [`LogStore::open`] reads everything back and decides what is true:
//!
//! 1. Leftover `hardstate.tmp`, `snapshot.tmp` and `snapshot.incoming` are replacements that never
//!    happened (the rename is the commit point): they are deleted unread (reported in `repairs`;
//!    an interrupted transfer from the leader starts over). A `hardstate` or `snapshot` that fails
//!    any check (magic, lengths, checksum) is damage, and the node refuses to start
//!    ([`Error::Corrupt`] naming the file): starting from a wrong snapshot would serve wrong state.
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
//! log, a stale snapshot, a term going backwards, adopting a snapshot that was not written) or a
//! bad transfer from the leader (a chunk at the wrong offset, a received snapshot of the wrong
//! length or checksum, or that does not parse), and leave the store untouched.
//!
//! # Not implemented
//!
//! - Reading entries back after `open`: the Raft core keeps the log it got from [`Recovered`] in
//!   memory and storage is write-only afterwards. A `entries(range)` reader would use the
//!   in-memory offsets.
//! - Preallocating segments, `O_DIRECT`, checksumming across records (each record stands alone).
//! - Streaming snapshots: a snapshot is held in memory whole (on open, when taken, and when a
//!   received one is checked and installed). Reading the file back for sending is the server's
//!   business: it keeps the latest [`Snapshot`] and sends slices of its image.
//! - Resuming a transfer across a restart: `snapshot.incoming` is deleted on open.

pub mod cluster_id;
mod compaction;
mod durability;
mod error;
mod fs;
mod hard_state;
mod log;
mod record;
mod recovery;
mod segment;
mod snapshot;
mod terms;

pub use durability::Durability;
pub use error::{Error, Result};
pub use log::{LogStore, Recovered, StorageOptions, DEFAULT_SEGMENT_BYTES};
pub use snapshot::{write_snapshot_file, write_snapshot_file_with, Snapshot};
