//! Log compaction: [`LogStore`] adopting a snapshot (taken in the background or received from the
//! leader in chunks) and discarding the log it covers.
//!
//! Two ways a snapshot reaches the store:
//!
//! - **Taken locally.** A background thread writes the file with [`write_snapshot_file`] while the
//!   Raft thread keeps appending; then the Raft thread calls [`LogStore::snapshot_written`], which
//!   discards the covered log. ([`LogStore::save_snapshot`] does both on the calling thread.)
//! - **Received from the leader** (InstallSnapshot). The Raft thread writes each chunk with
//!   [`LogStore::write_incoming_chunk`] into `snapshot.incoming`, then
//!   [`LogStore::install_incoming`] checks the whole file against the leader's length and CRC,
//!   parses it, fsyncs it, renames it over `snapshot` and adopts it.
//!
//! Adoption is the same either way: if the log holds the snapshot's last entry (same index and
//! term) and entries after it, those are kept and the segments wholly before it are deleted;
//! otherwise the whole log is deleted and the next append must follow the snapshot (Raft paper
//! Figure 13, steps 6 and 7). Recovery does the same to a snapshot that was renamed into place but
//! never adopted, so the rename is the only commit point.
//!
//! [`write_snapshot_file`]: super::write_snapshot_file

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::durability::{fsync, SyncKind};
use super::error::{Error, Result};
use super::fs::{remove_if_exists, sync_dir};
use super::log::LogStore;
use super::recovery::remove_newest_first;
use super::snapshot::{self, Snapshot, INCOMING_NAME};
use crate::types::SnapshotMeta;

/// A snapshot being received from the leader: `snapshot.incoming`, open, and how much of it has
/// been written. Nothing in it is fsynced until it is installed.
#[derive(Debug)]
pub(crate) struct Incoming {
    path: PathBuf,
    file: File,
    received: u64,
}

impl Incoming {
    fn create(dir: &Path) -> Result<Incoming> {
        let path = dir.join(INCOMING_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(Error::io("create", &path))?;
        Ok(Incoming {
            path,
            file,
            received: 0,
        })
    }

    /// Reads the whole file back: what will be installed is what is in the file.
    fn read_back(&mut self) -> Result<Vec<u8>> {
        let mut image = Vec::with_capacity(self.received as usize);
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_end(&mut image))
            .map_err(Error::io("read", &self.path))?;
        Ok(image)
    }
}

impl LogStore {
    /// Durably writes `snap` (temp file, fsync, rename, fsync the directory) and adopts it (see
    /// [`LogStore::snapshot_written`]), all on the calling thread.
    ///
    /// Refuses (without writing) a snapshot older than the adopted one.
    pub fn save_snapshot(&mut self, snap: &Snapshot) -> Result<()> {
        self.check_usable()?;
        self.check_newer(&snap.meta)?;
        let result = snapshot::write_snapshot_file_with(&self.dir, snap, self.durability)
            .and_then(|()| self.adopt(&snap.meta, snap.image().len() as u64));
        self.poison_on_error(result)
    }

    /// Adopts the snapshot that [`write_snapshot_file`](super::write_snapshot_file) just wrote
    /// (on any thread), discarding the log it replaces:
    /// - if the log holds an entry at `meta.last_index` with `meta.last_term` and entries after
    ///   it, those are kept, and every segment whose entries all come before `meta.last_index`
    ///   is deleted (whole files: cheap; the segment holding `last_index` stays);
    /// - otherwise (the snapshot is ahead of the log, or the log disagrees with it there, as when
    ///   a leader sends a snapshot to a follower), the whole log is deleted and the next append
    ///   must be `meta.last_index + 1`.
    ///
    /// Refuses, changing nothing: a snapshot older than the adopted one ([`Error::StaleSnapshot`]),
    /// and one that is not the one in the snapshot file ([`Error::SnapshotNotWritten`]). Both are
    /// not fatal.
    pub fn snapshot_written(&mut self, meta: &SnapshotMeta) -> Result<()> {
        self.check_usable()?;
        self.check_newer(meta)?;
        let result = snapshot::read_head(&self.dir).and_then(|head| match head {
            Some((at, bytes)) if at == (meta.last_index, meta.last_term) => self.adopt(meta, bytes),
            other => Err(Error::SnapshotNotWritten {
                index: meta.last_index,
                term: meta.last_term,
                file: self.dir.join(snapshot::FILE_NAME),
                on_disk: other.map(|(at, _)| at),
            }),
        });
        self.poison_on_error(result)
    }

    /// The adopted snapshot's metadata (`None` before the first one).
    pub fn snapshot_meta(&self) -> Option<&SnapshotMeta> {
        self.snapshot_meta.as_ref()
    }

    /// The size of the adopted snapshot's file, 0 without one. With the log's size it tells when a
    /// new snapshot is worth taking.
    pub fn snapshot_bytes(&self) -> u64 {
        self.snapshot_bytes
    }

    /// Writes one chunk of a snapshot the leader is sending, at byte `offset` of its image.
    /// Offset 0 starts a transfer (creating or truncating `snapshot.incoming`, dropping any
    /// transfer in progress); any other offset must equal the bytes received so far, else
    /// [`Error::SnapshotChunk`] (not fatal, nothing written). Not fsynced: a crash loses the
    /// transfer, which open cleans up.
    pub fn write_incoming_chunk(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.check_usable()?;
        if offset != 0 {
            let expected = self.incoming.as_ref().map_or(0, |i| i.received);
            if offset != expected {
                return Err(Error::SnapshotChunk {
                    expected,
                    got: offset,
                });
            }
        }
        let result = self.write_chunk(offset, data);
        self.poison_on_error(result)
    }

    fn write_chunk(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        if offset == 0 {
            self.incoming = None;
            self.incoming = Some(Incoming::create(&self.dir)?);
        }
        let incoming = self
            .incoming
            .as_mut()
            .expect("offset checked by the caller");
        incoming
            .file
            .write_all(data)
            .map_err(Error::io("write", &incoming.path))?;
        incoming.received += data.len() as u64;
        Ok(())
    }

    /// Installs the snapshot received with [`LogStore::write_incoming_chunk`], given the length
    /// and the CRC-32 (`crc32fast::hash`) of its whole image as the leader sent them: checks both
    /// and the image itself, refuses one older than the adopted snapshot, then fsyncs it, renames
    /// it over `snapshot`, fsyncs the directory and adopts it (see
    /// [`LogStore::snapshot_written`]). Returns it, for the state machine to load its
    /// [`data`](Snapshot::data).
    ///
    /// A refused snapshot ([`Error::BadIncomingSnapshot`], [`Error::StaleSnapshot`]) is deleted
    /// and the store is unchanged; neither error is fatal.
    pub fn install_incoming(&mut self, total_len: u64, crc32: u32) -> Result<Snapshot> {
        self.check_usable()?;
        let Some(incoming) = self.incoming.take() else {
            return Err(Error::BadIncomingSnapshot {
                file: self.dir.join(INCOMING_NAME),
                detail: "no snapshot is being received (a transfer starts with a chunk at offset \
                         0)"
                .into(),
            });
        };
        let mut result = self.install(incoming, total_len, crc32);
        if matches!(&result, Err(e) if !e.is_fatal()) {
            if let Err(e) = remove_if_exists(&self.dir, INCOMING_NAME) {
                result = Err(e);
            }
        }
        self.poison_on_error(result)
    }

    fn install(&mut self, mut incoming: Incoming, total_len: u64, crc32: u32) -> Result<Snapshot> {
        let image = incoming.read_back()?;
        let refuse = |detail: String| Error::BadIncomingSnapshot {
            file: incoming.path.clone(),
            detail,
        };
        if image.len() as u64 != total_len {
            return Err(refuse(format!(
                "received {} bytes, but the leader's snapshot has {total_len}",
                image.len()
            )));
        }
        let computed = crc32fast::hash(&image);
        if computed != crc32 {
            return Err(refuse(format!(
                "its CRC-32 is {computed:#010x}, the leader's is {crc32:#010x}: the transfer \
                 damaged it"
            )));
        }
        let snap = Snapshot::from_image(image, &incoming.path).map_err(|e| match e {
            Error::Corrupt { offset, detail, .. } => refuse(format!(
                "not a valid snapshot (at offset {offset}: {detail})"
            )),
            Error::OldSnapshotFormat { .. } => {
                refuse("the leader sent format rtsnap01, which cannot be restored".into())
            }
            other => other,
        })?;
        self.check_newer(&snap.meta)?;
        let path = &incoming.path;
        fsync(
            &incoming.file,
            path,
            SyncKind::Other,
            false,
            self.durability,
        )?;
        drop(incoming);
        snapshot::commit(&self.dir, INCOMING_NAME, &snap.meta, self.durability)?;
        self.adopt(&snap.meta, snap.image().len() as u64)?;
        Ok(snap)
    }

    /// Abandons the snapshot being received, if any, and deletes `snapshot.incoming`.
    pub fn discard_incoming(&mut self) -> Result<()> {
        self.check_usable()?;
        self.incoming = None;
        let result = remove_if_exists(&self.dir, INCOMING_NAME).map(drop);
        self.poison_on_error(result)
    }

    /// Refuses a snapshot older than the adopted one, or at its index with another term.
    fn check_newer(&self, meta: &SnapshotMeta) -> Result<()> {
        let (current_index, current_term) = self.snapshot;
        if snapshot::is_stale((meta.last_index, meta.last_term), self.snapshot) {
            return Err(Error::StaleSnapshot {
                index: meta.last_index,
                term: meta.last_term,
                current_index,
                current_term,
            });
        }
        Ok(())
    }

    /// Discards the log that the snapshot `meta`, now durable in the snapshot file (of `bytes`
    /// bytes), replaces. Any crash in here leaves a state that recovery completes the same way.
    fn adopt(&mut self, meta: &SnapshotMeta, bytes: u64) -> Result<()> {
        let (index, term) = (meta.last_index, meta.last_term);
        let keeps_suffix = index < self.last.0 && self.term(index) == Some(term);
        if keeps_suffix {
            // The segment holding `index` stays, so that recovery can check its term.
            let covered = self
                .segments
                .windows(2)
                .take_while(|w| w[1].first <= index)
                .count();
            for seg in self.segments.drain(..covered) {
                fs::remove_file(&seg.path).map_err(Error::io("remove", &seg.path))?;
            }
            if covered > 0 {
                sync_dir(&self.log_dir, self.durability)?;
                self.dir_unsynced = false;
            }
            self.terms.discard_before(index + 1);
        } else {
            let paths: Vec<PathBuf> = self.segments.drain(..).map(|s| s.path).collect();
            remove_newest_first(&self.log_dir, &paths, self.durability)?;
            self.dir_unsynced = false;
            self.terms.clear();
            self.start_segment(index + 1)?;
            self.last = (index, term);
        }
        self.snapshot = (index, term);
        self.snapshot_meta = Some(meta.clone());
        self.snapshot_bytes = bytes;
        Ok(())
    }
}
