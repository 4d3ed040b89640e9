//! Disk faults: what a power cut drops, and the damage `corrupt` does to a synced file.
//!
//! # Power cuts
//!
//! SIGKILL leaves the page cache intact: a node that acknowledged entries it never fsynced, or
//! granted a vote it never persisted, passes every kill. A power cut does not forgive that. The
//! runner mounts each node's data dir through `riptide-faultfs`, a FUSE filesystem that keeps
//! what was not synced apart, and implements [`Disks`] on those mounts. The nemesis kills the
//! node, asks [`Disks::power_cut`] to drop the unsynced data in a seeded [`CutMode`], and
//! restarts the node at the fault's stop. This crate knows nothing of FUSE.
//!
//! # Corruption
//!
//! [`damage`] flips bits in, or truncates, one file of a stopped node's data dir, drawn from a
//! seed, and fsyncs it so the damage is what the disk holds. It is recorded exactly: the file, its
//! length, the offset, and the bit mask or the new length.
//!
//! What it never does, and why: damage the second half of the newest file of a directory (the
//! WAL's open segment), or truncate that file at all. A damaged or missing tail cannot be told from a torn final write, which a node cuts off; if that
//! tail had been acknowledged, the node would lose a write it promised and no Raft node could
//! know (Alagappan et al., "Protocol-Aware Recovery for Consensus-Based Storage", FAST '18). Such
//! damage would blame a correct node. Damage anywhere else is detectable by a node that checksums
//! its records and checks its segments follow each other; a correct node either repairs it
//! safely or refuses to start, naming the file and offset. And at most a minority of the disks
//! are damaged in one run (the nemesis keeps count), so a majority always keeps every committed
//! entry.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::NodeId;

/// What a power cut keeps of each file's unsynced writes (the modes of `riptide-faultfs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum CutMode {
    /// Every unsynced write and directory change is dropped.
    All,
    /// Each file keeps a seeded prefix of its unsynced writes (a torn write).
    Torn { seed: u64 },
    /// Each unsynced 4 KiB page keeps its newest or its synced contents, seeded (reordering).
    Reorder { seed: u64 },
}

impl std::fmt::Display for CutMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CutMode::All => f.write_str("all"),
            CutMode::Torn { seed } => write!(f, "torn {seed}"),
            CutMode::Reorder { seed } => write!(f, "reorder {seed}"),
        }
    }
}

/// The nodes' disks, as the runner mounted them.
pub trait Disks: Send + Sync {
    /// Node `id`'s data dir as the node sees it (the mountpoint, if mounted through faultfs).
    fn data_dir(&self, id: NodeId) -> Option<PathBuf>;

    /// Drops what node `id`'s disk had not synced. The node is dead (killed just before). The
    /// answer is the record of what was dropped, for the history.
    fn power_cut(
        &self,
        id: NodeId,
        mode: CutMode,
    ) -> std::result::Result<serde_json::Value, String>;
}

/// Disks without FUSE: a power cut is refused, corruption works on the plain data dirs.
#[derive(Debug, Clone)]
pub struct PlainDisks(pub Vec<(NodeId, PathBuf)>);

impl Disks for PlainDisks {
    fn data_dir(&self, id: NodeId) -> Option<PathBuf> {
        self.0
            .iter()
            .find(|(n, _)| *n == id)
            .map(|(_, p)| p.clone())
    }

    fn power_cut(&self, id: NodeId, _: CutMode) -> std::result::Result<serde_json::Value, String> {
        Err(format!(
            "node {id}'s data dir is not mounted through riptide-faultfs, so a power cut cannot \
             drop its unsynced writes"
        ))
    }
}

/// The record of a node that exited on its own when restarted after a disk fault: how it
/// exited and the last line of its log (`log`), as the history's `disks` holds it.
pub fn refusal(state: &crate::NodeState, log: Option<&Path>) -> serde_json::Value {
    let said = log.and_then(crate::supervisor::last_line);
    serde_json::json!({ "refused": state.to_string(), "said": said })
}

/// What [`damage`] did to one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Damage {
    /// The file, relative to the data dir.
    pub file: String,
    /// Its length before.
    pub len: u64,
    /// Where: the byte whose bits were flipped, or the new length.
    pub offset: u64,
    #[serde(flatten)]
    pub kind: DamageKind,
}

/// How the file was damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "damage", rename_all = "kebab-case")]
pub enum DamageKind {
    /// The byte at `offset` was XORed with `mask` (one to three bits set).
    Flip { mask: u8, before: u8, after: u8 },
    /// The file was cut to `offset` bytes.
    Truncate,
}

/// The files below this size are left alone: a damaged marker or lock file says nothing.
const MIN_LEN: u64 = 8;

/// Damages one synced file of `dir` (a stopped node's data dir), drawn from `seed`: a bit flip
/// (two thirds of the time) or a truncation; in the newest file of a directory only a flip, and
/// only in its first half (see the module docs). The file is fsynced afterwards. Fails if no file qualifies.
pub fn damage(dir: &Path, seed: u64) -> std::result::Result<Damage, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let candidates = candidates(dir)?;
    let (path, len, limit, tail) = candidates.choose(&mut rng).cloned().ok_or_else(|| {
        format!(
            "{} holds no file of {MIN_LEN} bytes or more to corrupt",
            dir.display()
        )
    })?;
    let file = path
        .strip_prefix(dir)
        .unwrap_or(&path)
        .display()
        .to_string();
    let offset = rng.gen_range(0..limit);
    let mut handle = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    // Truncating an open segment would only remove its tail: never there (see the module docs).
    let kind = if tail || rng.gen_bool(2.0 / 3.0) {
        let mut mask = 0u8;
        for _ in 0..rng.gen_range(1..=3) {
            mask |= 1 << rng.gen_range(0..8);
        }
        let mut byte = [0u8];
        handle
            .seek(SeekFrom::Start(offset))
            .and_then(|_| handle.read_exact(&mut byte))
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let after = byte[0] ^ mask;
        handle
            .seek(SeekFrom::Start(offset))
            .and_then(|_| handle.write_all(&[after]))
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        DamageKind::Flip {
            mask,
            before: byte[0],
            after,
        }
    } else {
        handle
            .set_len(offset)
            .map_err(|e| format!("truncating {}: {e}", path.display()))?;
        DamageKind::Truncate
    };
    handle
        .sync_all()
        .map_err(|e| format!("fsync {}: {e}", path.display()))?;
    Ok(Damage {
        file,
        len,
        offset,
        kind,
    })
}

/// Every regular file of `dir` (recursively, sorted) that may be damaged, with its length, the
/// offset below which damage may go, and whether it is the newest of its directory.
type Candidate = (PathBuf, u64, u64, bool);

fn candidates(dir: &Path) -> std::result::Result<Vec<Candidate>, String> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let mut files = Vec::new();
        let entries = fs::read_dir(&d).map_err(|e| format!("listing {}: {e}", d.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("listing {}: {e}", d.display()))?;
            let meta = entry
                .metadata()
                .map_err(|e| format!("reading {}: {e}", entry.path().display()))?;
            if meta.is_dir() {
                dirs.push(entry.path());
            } else if meta.is_file() {
                files.push((entry.path(), meta.len()));
            }
        }
        files.sort();
        let newest = files.len().saturating_sub(1);
        for (i, (path, len)) in files.into_iter().enumerate() {
            // The newest file of a directory (a WAL's open segment) may end in a torn write;
            // its second half is left alone. Other files are sealed: all of them is fair game.
            let is_tail = i == newest;
            let limit = if is_tail { len / 2 } else { len };
            if len >= MIN_LEN && limit > 0 {
                out.push((path, len, limit, is_tail));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("log")).unwrap();
        fs::write(dir.path().join("log/00000001.seg"), vec![7u8; 4096]).unwrap();
        fs::write(dir.path().join("log/00000400.seg"), vec![9u8; 1000]).unwrap();
        fs::write(dir.path().join("hard_state"), vec![1u8; 40]).unwrap();
        fs::write(dir.path().join("tiny"), b"x").unwrap();
        dir
    }

    #[test]
    fn damage_is_seeded_recorded_and_real() {
        let a = data_dir();
        let b = data_dir();
        let first = damage(a.path(), 5).unwrap();
        assert_eq!(
            first,
            damage(b.path(), 5).unwrap(),
            "same seed, same damage"
        );
        let path = a.path().join(&first.file);
        let now = fs::read(&path).unwrap();
        match first.kind {
            DamageKind::Flip {
                mask,
                before,
                after,
            } => {
                assert_ne!(mask, 0);
                assert_eq!(before ^ mask, after);
                assert_eq!(now[first.offset as usize], after);
                assert_eq!(now.len() as u64, first.len);
            }
            DamageKind::Truncate => assert_eq!(now.len() as u64, first.offset),
        }
    }

    #[test]
    fn every_file_is_hit_but_never_the_newest_segments_tail_or_a_tiny_file() {
        let mut files = std::collections::BTreeSet::new();
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let dir = data_dir();
            let d = damage(dir.path(), seed).unwrap();
            if d.file == "log/00000400.seg" {
                assert!(d.offset < 500, "the tail of the newest segment: {d:?}");
                assert!(
                    matches!(d.kind, DamageKind::Flip { .. }),
                    "an open segment is never truncated: {d:?}"
                );
            }
            assert_ne!(d.file, "tiny");
            kinds.insert(matches!(d.kind, DamageKind::Flip { .. }));
            files.insert(d.file);
        }
        assert_eq!(files.len(), 3, "{files:?}");
        assert_eq!(kinds.len(), 2, "flips and truncations");
    }

    #[test]
    fn an_empty_data_dir_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let err = damage(dir.path(), 1).unwrap_err();
        assert!(err.contains("no file"), "{err}");
    }
}
