//! Directory entries changed since their directory's last fsync, each with how to undo it.
//!
//! A record names directories by inode and entries by name, so it can be undone after later
//! records were (undo runs newest first, so every path is as it was when the record was made).
//! A record is durable, and dropped, once any directory it touched is fsynced: a journaling
//! filesystem commits a rename as one transaction, whichever of its directories is synced.

use std::ffi::OsString;
use std::path::PathBuf;

pub(crate) enum EntryOp {
    /// A file was created; undo removes it.
    Created { parent: u64, name: OsString },
    /// A directory was made; undo removes it with whatever is in it.
    MadeDir { parent: u64, name: OsString },
    /// A file or empty directory was removed: it waits in the stash; undo moves it back.
    Removed {
        parent: u64,
        name: OsString,
        stash: PathBuf,
    },
    /// A rename; `replaced` is the overwritten target, waiting in the stash.
    Renamed {
        from: (u64, OsString),
        to: (u64, OsString),
        replaced: Option<PathBuf>,
    },
}

impl EntryOp {
    /// The directories whose fsync makes this record durable.
    pub(crate) fn dirs(&self) -> Vec<u64> {
        match self {
            EntryOp::Created { parent, .. }
            | EntryOp::MadeDir { parent, .. }
            | EntryOp::Removed { parent, .. } => vec![*parent],
            EntryOp::Renamed { from, to, .. } => vec![from.0, to.0],
        }
    }

    /// The stashed entry, which is to be deleted for good once the record is durable.
    pub(crate) fn stash(&self) -> Option<&PathBuf> {
        match self {
            EntryOp::Removed { stash, .. } => Some(stash),
            EntryOp::Renamed { replaced, .. } => replaced.as_ref(),
            _ => None,
        }
    }
}
