//! The real node's [`Storage`]: the write-ahead log ([`LogStore`]) plus a background thread that
//! writes snapshots, so that encoding and fsyncing a large state never holds up the Raft loop.
//!
//! The loop hands [`NodeStorage::begin_snapshot`] an O(1) clone of the state machine. The
//! thread encodes it, builds the file image, computes its checksum, and writes it durably
//! ([`write_snapshot_file_with`]: temp file, fsync, rename, fsync the directory). The loop polls; once
//! the thread is done, [`LogStore::snapshot_written`] discards the log segments the snapshot
//! covers (on the loop thread, which owns the log). A crash between the rename and that step
//! leaves segments recovery deletes anyway (storage recovery rule 2).

use std::path::PathBuf;
use std::thread::JoinHandle;

use anyhow::Context;

use super::executor::{SnapshotProgress, Storage};
use crate::kv::KvStore;
use crate::raft::{InstallRequest, SnapshotImage};
use crate::storage::{write_snapshot_file_with, Durability, LogStore, Snapshot};
use crate::types::{Entry, HardState, SnapshotMeta};

type SnapshotJob = JoinHandle<crate::storage::Result<SnapshotImage>>;

pub struct NodeStorage {
    log: LogStore,
    dir: PathBuf,
    job: Option<SnapshotJob>,
}

impl NodeStorage {
    pub fn new(log: LogStore, dir: PathBuf) -> NodeStorage {
        NodeStorage {
            log,
            dir,
            job: None,
        }
    }

    pub fn log(&self) -> &LogStore {
        &self.log
    }
}

/// Encodes `state`, builds the image and makes it the durable snapshot in `dir`. Refused
/// (non-fatal) if a newer snapshot was installed meanwhile.
fn write_snapshot(
    (dir, durability): (PathBuf, Durability),
    meta: SnapshotMeta,
    state: KvStore,
) -> crate::storage::Result<SnapshotImage> {
    let data = state.encode();
    drop(state);
    let snapshot = Snapshot::new(meta, &data);
    drop(data);
    write_snapshot_file_with(&dir, &snapshot, durability)?;
    let meta = snapshot.meta.clone();
    Ok(SnapshotImage::new(meta, snapshot.into_image()))
}

impl Storage for NodeStorage {
    fn save_hard_state(&mut self, hard_state: &HardState) -> anyhow::Result<()> {
        Ok(self.log.save_hard_state(hard_state)?)
    }

    fn write_entries(&mut self, entries: &[Entry]) -> anyhow::Result<()> {
        if let Some(first) = entries.first() {
            if first.index <= self.log.last_index() {
                self.log.truncate_from(first.index)?;
            }
            self.log.append(entries)?;
        }
        Ok(())
    }

    fn sync(&mut self) -> anyhow::Result<()> {
        Ok(self.log.sync()?)
    }

    fn begin_snapshot(&mut self, meta: SnapshotMeta, state: KvStore) -> anyhow::Result<()> {
        anyhow::ensure!(self.job.is_none(), "a snapshot is already being written");
        let dir = self.dir.clone();
        let durability = self.log.durability();
        let job = std::thread::Builder::new()
            .name("riptide-snapshot".into())
            .spawn(move || write_snapshot((dir, durability), meta, state))
            .context("cannot start the snapshot thread")?;
        self.job = Some(job);
        Ok(())
    }

    fn poll_snapshot(&mut self, wait: bool) -> anyhow::Result<SnapshotProgress> {
        match &self.job {
            None => return Ok(SnapshotProgress::Abandoned),
            Some(job) if !wait && !job.is_finished() => return Ok(SnapshotProgress::Writing),
            Some(_) => {}
        }
        let job = self.job.take().expect("checked above");
        let written = job
            .join()
            .map_err(|_| anyhow::anyhow!("the snapshot thread panicked"))?;
        let image = match written {
            Ok(image) => image,
            Err(err) if !err.is_fatal() => {
                tracing::info!("a snapshot of our own was not written: {err}");
                return Ok(SnapshotProgress::Abandoned);
            }
            Err(err) => {
                return Err(anyhow::Error::new(err)
                    .context(format!("cannot write a snapshot in {}", self.dir.display())))
            }
        };
        match self.log.snapshot_written(&image.meta) {
            Ok(()) => Ok(SnapshotProgress::Written(image)),
            // An install from the leader adopted a newer snapshot meanwhile: this one is moot.
            Err(err) if !err.is_fatal() => {
                tracing::info!("a snapshot of our own was overtaken: {err}");
                Ok(SnapshotProgress::Abandoned)
            }
            Err(err) => Err(err.into()),
        }
    }

    fn write_snapshot_chunk(&mut self, offset: u64, data: &[u8]) -> anyhow::Result<()> {
        match self.log.write_incoming_chunk(offset, data) {
            Ok(()) => Ok(()),
            // The core promised order; if the file disagrees the install's checks will refuse it.
            Err(err) if !err.is_fatal() => {
                tracing::warn!("snapshot chunk at offset {offset} not written: {err}");
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    fn install_snapshot(
        &mut self,
        request: &InstallRequest,
    ) -> anyhow::Result<Result<(SnapshotImage, KvStore), String>> {
        let snapshot = match self
            .log
            .install_incoming(request.total_len, request.checksum)
        {
            Ok(snapshot) => snapshot,
            Err(err) if !err.is_fatal() => return Ok(Err(err.to_string())),
            Err(err) => return Err(err.into()),
        };
        let state = KvStore::decode(snapshot.data()).map_err(|why| {
            anyhow::anyhow!(
                "the leader's snapshot at index {} passed its checksum but its state does not \
                 decode ({why}); refusing to go on with an unknown state",
                snapshot.meta.last_index
            )
        })?;
        let meta = snapshot.meta.clone();
        Ok(Ok((SnapshotImage::new(meta, snapshot.into_image()), state)))
    }
}
