//! What can go wrong in storage, and what the operator or the caller should do about it.

use std::io;
use std::path::PathBuf;

use crate::types::{HardState, Index, Term};

/// The result of every storage operation.
pub type Result<T> = std::result::Result<T, Error>;

/// A storage failure. Each variant says what is wrong and what to do.
///
/// Two classes matter to the server loop:
/// - [`Error::Io`] and [`Error::Corrupt`] (and [`Error::Poisoned`] after either) mean the disk
///   cannot be trusted right now: the node must stop. Restarting runs recovery, which is the only
///   place that decides what the disk really holds.
/// - The others are a caller's mistake (an append that does not continue the log, a stale
///   snapshot) or a bad snapshot transfer from the leader: nothing was written (a refused received
///   snapshot is deleted), the store is unchanged and still usable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed. After a failed write or fsync the kernel may have dropped the dirty
    /// pages, so the store refuses further writes ([`Error::Poisoned`]) and the node must restart.
    #[error("storage I/O error: {op} {}: {source}; restart the node (recovery decides what is durable)", path.display())]
    Io {
        /// What we were doing: "fsync", "write", "rename", ...
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The data on disk is damaged in a way that is not a torn final write. Starting anyway could
    /// serve wrong data or forget acknowledged (possibly committed) entries, so the node refuses.
    #[error(
        "corrupt data in {} at offset {offset}: {detail}. The node cannot trust this data directory \
         and will not start on it. Move the data directory aside (keep it for inspection) and \
         restart the node with an empty one: it rejoins the cluster and catches up from the leader",
        file.display()
    )]
    Corrupt {
        file: PathBuf,
        offset: u64,
        detail: String,
    },

    /// The snapshot file is in format 1 (`rtsnap01`), which the riptide that wrote it could not
    /// restore from: there is no way to tell what configuration it was taken under.
    #[error(
        "{} was written by an older riptide that could not restore snapshots (format rtsnap01); \
         this version cannot use it. Move the data dir aside (keep it for inspection) and restart \
         the node with an empty one: it rejoins the cluster and catches up from the leader",
        file.display()
    )]
    OldSnapshotFormat { file: PathBuf },

    /// The data dir belongs to another cluster than `--cluster-id` names.
    #[error(
        "data directory {} belongs to cluster `{stored}`, but this node was started with          --cluster-id `{given}`; a node never joins another cluster. Start it with --cluster-id          {stored}, or give it an empty data dir to join `{given}`",
        dir.display()
    )]
    ClusterMismatch {
        dir: PathBuf,
        stored: String,
        given: String,
    },

    /// Another process holds the data directory's lock: two nodes writing one log would destroy it.
    #[error("data directory {} is locked by another process; stop that node first", dir.display())]
    Locked { dir: PathBuf },

    /// An earlier write or fsync failed; see [`Error::Io`]. Nothing more is written.
    #[error("storage is unusable after an earlier failure ({0}); restart the node")]
    Poisoned(String),

    /// An appended entry does not continue the log: its index must be `last_index + 1`.
    #[error(
        "append out of order: got entry {got}, expected index {expected}; nothing was appended"
    )]
    NotContiguous { expected: Index, got: Index },

    /// An appended entry has a lower term than the one before it, which Raft never produces.
    #[error(
        "append of entry {index} with term {term} after term {previous}: terms never decrease in a \
         Raft log; nothing was appended"
    )]
    TermRegression {
        index: Index,
        term: Term,
        previous: Term,
    },

    /// An entry too large to be a record (and to be replicated in one frame).
    #[error(
        "entry {index} encodes to {bytes} bytes, over the limit of {limit}; nothing was appended"
    )]
    EntryTooLarge {
        index: Index,
        bytes: usize,
        limit: usize,
    },

    /// `truncate_from` reached into entries already compacted into a snapshot; those are committed
    /// and can never be in conflict.
    #[error(
        "cannot truncate from {index}: entries up to {snapshot_index} are compacted into a snapshot \
         (committed entries are never truncated)"
    )]
    TruncateCompacted { index: Index, snapshot_index: Index },

    /// A hard state that would lower the term, or change a vote already cast in this term.
    #[error(
        "refusing to save hard state {new:?} over {current:?}: the term never decreases and a vote, \
         once cast, never changes within its term (that could elect two leaders in one term)"
    )]
    HardStateRegression { current: HardState, new: HardState },

    /// A snapshot older than the one already saved, or the same index with a different term.
    #[error(
        "snapshot at index {index} term {term} is not newer than the saved one at index \
         {current_index} term {current_term}; it was not saved"
    )]
    StaleSnapshot {
        index: Index,
        term: Term,
        current_index: Index,
        current_term: Term,
    },

    /// A chunk of a snapshot being received from the leader does not continue it: a chunk at
    /// offset 0 starts a transfer, any other must start where the bytes received so far end.
    #[error(
        "snapshot chunk at offset {got} does not continue the snapshot being received (expected \
         offset {expected}); the chunk was not written, the bytes received so far are kept"
    )]
    SnapshotChunk { expected: u64, got: u64 },

    /// A snapshot received from the leader failed its checks when it was to be installed. It was
    /// deleted; the store is unchanged (the leader sends it again).
    #[error(
        "refused to install the snapshot received in {}: {detail}; the file was deleted and the \
         store is unchanged (the leader will send the snapshot again)",
        file.display()
    )]
    BadIncomingSnapshot { file: PathBuf, detail: String },

    /// [`LogStore::snapshot_written`](super::LogStore::snapshot_written) was called for a
    /// snapshot that is not the one in the snapshot file (it was never written, its write failed,
    /// or another one replaced it): adopting it would discard log entries no snapshot covers.
    #[error(
        "cannot adopt the snapshot at index {index} term {term}: {} holds {}; nothing was \
         discarded",
        file.display(),
        on_disk.map_or("no snapshot".to_string(), |(i, t)| format!("the one at index {i} term {t}"))
    )]
    SnapshotNotWritten {
        index: Index,
        term: Term,
        file: PathBuf,
        on_disk: Option<(Index, Term)>,
    },
}

impl Error {
    /// Wraps an [`io::Error`] with the operation and the file it concerns.
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    /// Whether this failure leaves the store unusable (the node must restart).
    /// Does this error mean the data dir itself must not be used (damage, an unreadable format,
    /// another cluster's data)? The node then refuses to start, with its own exit code
    /// ([`crate::cli::EXIT_REFUSED`]): only an operator can decide what to do with the dir.
    pub fn refuses_start(&self) -> bool {
        matches!(
            self,
            Error::Corrupt { .. } | Error::OldSnapshotFormat { .. } | Error::ClusterMismatch { .. }
        )
    }

    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::Io { .. }
                | Error::Corrupt { .. }
                | Error::OldSnapshotFormat { .. }
                | Error::Poisoned(_)
        )
    }
}
