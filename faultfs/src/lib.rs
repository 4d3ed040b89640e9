//! riptide-faultfs: a FUSE filesystem that passes everything through to a backing directory but
//! can forget what was not fsynced, as a power cut would (after Jepsen's lazyfs).
//!
//! # The durability model
//!
//! Every change is applied to the backing directory at once, so while the filesystem is
//! mounted every read sees every write, as the page cache would show it. What is *durable* is
//! what a power cut would leave on disk, and the filesystem keeps that apart itself:
//!
//! * **File data** (write, truncate, `open(O_TRUNC)`) is durable once the file is fsynced
//!   (`fsync` or `fdatasync`). Until then the file has an undo journal: its length at the last
//!   fsync, and the synced bytes of every 4 KiB page changed since, saved before the first
//!   change to that page. The writes and truncates themselves are kept too, in order.
//! * **Directory entries** (create, mkdir, unlink, rmdir, rename) are durable once their
//!   directory is fsynced (open the directory and fsync it). Until then each change has an undo
//!   record; a removed entry, or the target a rename overwrote, waits in a hidden stash inside
//!   the backing dir (`.faultfs-stash`, not visible in the mount) to be put back. A rename is
//!   durable once either of its directories is fsynced (a journaling filesystem commits it as
//!   one transaction).
//! * fsync of a file does **not** make its name durable, and fsync of a directory does not make
//!   its files' data durable. So a new file that was fsynced but whose directory was not
//!   disappears at a power cut, and a synced temp file renamed over a target without fsyncing
//!   the directory reverts: the old target comes back. This is the weakest guarantee POSIX
//!   gives (ext4 and XFS often give more); a node that is correct here is correct there.
//!
//! # Power cut
//!
//! [`MountHandle::power_cut`] drops the unsynced state from the backing dir, so that it looks
//! as if the machine lost power, then forgets every inode (names are looked up again):
//!
//! * [`Mode::All`]: every unsynced write and directory change is dropped.
//! * [`Mode::Torn`]: each file keeps a random prefix (seeded) of its unsynced writes and
//!   truncates, in write order; directory changes are dropped.
//! * [`Mode::Reorder`]: each file keeps a random subset (seeded) of its unsynced 4 KiB pages
//!   (each page its newest contents or its synced ones), and either its synced or its newest
//!   length (extended to cover the kept pages, with zeros in holes); directory changes are
//!   dropped.
//!
//! Data is cut first, each file found by its name at the cut; then the directory changes are
//! undone, newest first. The same seed and the same history give the same result.
//!
//! A power cut is meant for a dead node: the bench SIGKILLs the node first. While a file is
//! still open in the mount the cut is refused (after waiting two seconds for the kernel to
//! release the files of a killed process), since a live process would go on writing through
//! a handle to a file the cut may have removed.
//!
//! An unmount is a clean shutdown: what was unsynced stays (the page cache was flushed).

mod attr;
pub mod control;
mod cut;
mod dirops;
mod entries;
mod fs;
mod inodes;
mod journal;
mod mount;
mod state;

pub use cut::PowerCutReport;
pub use journal::{FileCut, Mode, PAGE};
pub use mount::{check_fuse, FaultFs, MountHandle, Status};
pub use state::STASH;

impl std::str::FromStr for Mode {
    type Err = String;

    /// `all`, `torn SEED` or `reorder SEED`.
    fn from_str(s: &str) -> Result<Self, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let seed = |w: Option<&&str>| {
            w.ok_or_else(|| "a seed is needed: torn SEED or reorder SEED".to_string())?
                .parse::<u64>()
                .map_err(|e| format!("bad seed: {e}"))
        };
        match words.first().copied() {
            Some("all") if words.len() == 1 => Ok(Mode::All),
            Some("torn") if words.len() <= 2 => Ok(Mode::Torn(seed(words.get(1))?)),
            Some("reorder") if words.len() <= 2 => Ok(Mode::Reorder(seed(words.get(1))?)),
            _ => Err(format!(
                "unknown power-cut mode {s:?}: all | torn SEED | reorder SEED"
            )),
        }
    }
}
