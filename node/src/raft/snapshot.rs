//! Log compaction and InstallSnapshot (Raft paper §7).
//!
//! # Compaction
//!
//! The server snapshots its state machine at some applied index and hands the core the result, a
//! [`SnapshotImage`]: the snapshot's metadata and the exact bytes of its file, shared, with their
//! CRC-32. The core keeps the newest image (to send to followers) and discards the log up to the
//! snapshot's index less a *tail* the server chooses, so that a follower a little behind still
//! catches up from the log instead of receiving the whole state ([`Raft::snapshot_taken`]).
//!
//! # Sending (the leader)
//!
//! When a follower's next entry is no longer in the log, the leader sends the image in chunks of
//! at most `max_snapshot_chunk` bytes ([`Body::InstallSnapshot`]), one chunk at a time: the next
//! goes when the follower answers the previous one (stop-and-wait, one snapshot in flight per
//! follower); a heartbeat re-sends an unanswered chunk. The follower answers each chunk with the
//! offset it wants next, so a lost, duplicated or reordered chunk costs one round trip, never a
//! wrong image. When it reports the snapshot installed, it is replicated to from the snapshot's
//! last index on.
//!
//! # Receiving (a follower)
//!
//! A chunk is taken only if it continues what was received (its offset is the bytes received so
//! far) of the same snapshot (same metadata, length and checksum); anything else is answered with
//! the offset really needed (0 for another snapshot). Accepted chunks go to the server in
//! [`super::Ready::snapshot_chunks`], which writes them to a temp file. After the last one the
//! core asks for the install ([`super::Ready::install`]); the server checks the file (length and
//! checksum), installs it durably, loads the state machine from it, and reports back with
//! [`Raft::install_finished`], and only then does the follower answer. A snapshot that covers
//! nothing past the follower's commit index is refused at once ("stale": installing it would roll
//! the state machine back): the answer says the follower already matches up to its commit index.

use std::sync::Arc;

use super::message::{Body, SnapshotResult};
use super::node::{Raft, RoleState};
use super::replication::answering_follower;
use crate::types::{Index, NodeId, SnapshotMeta};

/// A snapshot as the core knows it: what it covers, and the bytes of its file (shared: the
/// leader sends slices of it to every follower that needs it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotImage {
    pub meta: SnapshotMeta,
    pub bytes: Arc<Vec<u8>>,
    /// CRC-32 (IEEE) of `bytes`.
    pub checksum: u32,
}

impl SnapshotImage {
    /// An image of `bytes`, computing the checksum.
    pub fn new(meta: SnapshotMeta, bytes: Vec<u8>) -> SnapshotImage {
        let checksum = crc32fast::hash(&bytes);
        SnapshotImage {
            meta,
            bytes: Arc::new(bytes),
            checksum,
        }
    }

    pub fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// Bytes `[offset, offset + data.len())` of an incoming snapshot image, to be written to the
/// temp file in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotChunk {
    pub offset: u64,
    pub data: Vec<u8>,
}

/// The whole image has arrived: check it (`total_len` bytes, CRC-32 `checksum`), install it and
/// call [`Raft::install_finished`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallRequest {
    pub meta: SnapshotMeta,
    pub total_len: u64,
    pub checksum: u32,
}

/// A snapshot a follower is receiving.
#[derive(Clone, Debug)]
pub(super) struct Incoming {
    meta: SnapshotMeta,
    total_len: u64,
    checksum: u32,
    received: u64,
    /// Every byte arrived; the install is with the server.
    complete: bool,
    from: NodeId,
    read_round: u64,
}

/// One InstallSnapshot message's fields.
pub(super) struct Chunk {
    pub meta: SnapshotMeta,
    pub offset: u64,
    pub data: Vec<u8>,
    pub total_len: u64,
    pub checksum: u32,
    pub read_round: u64,
}

impl Raft {
    /// The newest snapshot this node took or installed, if any.
    pub fn snapshot(&self) -> Option<&SnapshotImage> {
        self.snapshot.as_ref()
    }

    /// How many snapshots followers confirmed installing from this node.
    pub fn snapshots_sent(&self) -> u64 {
        self.snapshots_sent
    }

    /// The snapshot this node restarted from (its log starts after it): the image to send to
    /// followers that need what it covers.
    /// If the log starts right after it, its configuration is the one the log's configuration
    /// entries build on (prefer [`Raft::recover`], which also gets the first election right).
    pub fn set_snapshot(&mut self, image: SnapshotImage) {
        if image.meta.last_index == self.log.offset().0 && !image.meta.voters.is_empty() {
            self.configs.restore(image.meta.membership(), &self.log);
        }
        self.snapshot = Some(image);
    }

    /// The server took a snapshot of the state machine at `image.meta.last_index` (an applied
    /// index). The core keeps it to send to followers, and discards the log up to that index
    /// less `keep_tail` entries. An image no newer than the one held (a snapshot installed from
    /// the leader while this one was being written) is ignored.
    pub fn snapshot_taken(&mut self, image: SnapshotImage, keep_tail: u64) {
        let index = image.meta.last_index;
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.meta.last_index >= index)
        {
            return;
        }
        debug_assert!(index <= self.log.applied_index());
        self.snapshot = Some(image);
        let upto = index
            .saturating_sub(keep_tail)
            .min(self.log.persisted_index());
        let discarded = self.log.compact_to(upto);
        self.configs.compact(self.log.offset().0);
        tracing::debug!(index, discarded, "log compacted");
    }

    /// Sends `to` the next chunk of a snapshot (the leader's path when the entry `to` needs is
    /// gone). With `force` (a heartbeat), re-sends an unanswered chunk.
    pub(super) fn send_snapshot(&mut self, to: NodeId, force: bool) {
        let chunk_size = self.config.max_snapshot_chunk as u64;
        let term = self.term;
        let Some(image) = self.snapshot.clone() else {
            tracing::error!(to, "the log was compacted but there is no snapshot to send");
            return;
        };
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let read_round = leader.reads.round;
        let Some(progress) = leader.progress.get_mut(&to) else {
            return;
        };
        let fresh = progress.transfer.is_none();
        let transfer = progress.start_snapshot(&image);
        if transfer.awaiting && !force {
            return;
        }
        let image = &transfer.image;
        let total_len = image.len();
        let offset = transfer.offset.min(total_len);
        let end = (offset + chunk_size).min(total_len);
        if fresh {
            tracing::info!(
                to,
                index = image.meta.last_index,
                bytes = total_len,
                "sending a snapshot"
            );
        }
        let body = Body::InstallSnapshot {
            meta: image.meta.clone(),
            offset,
            data: image.bytes[offset as usize..end as usize].to_vec(),
            total_len,
            checksum: image.checksum,
            read_round,
        };
        transfer.awaiting = true;
        self.outbox.push(super::message::Message {
            from: self.config.id,
            to,
            term,
            body,
        });
    }

    /// A follower answered a snapshot chunk.
    pub(super) fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        snapshot_index: Index,
        result: SnapshotResult,
        read_round: u64,
    ) {
        let last_index = self.log.last_index();
        let now = self.current_round();
        let Some(progress) = answering_follower(&mut self.role, from, read_round) else {
            return;
        };
        let mut advanced = false;
        match result {
            SnapshotResult::Done { match_index } if match_index > last_index => {
                tracing::warn!(
                    from,
                    match_index,
                    "ignoring a snapshot acknowledgement past the end of the log"
                );
            }
            SnapshotResult::Done { .. } if progress.predates_loss(read_round) => {
                tracing::debug!(
                    from,
                    "ignoring a snapshot acknowledgement from before a loss"
                );
            }
            SnapshotResult::Done { match_index } => {
                if progress.transfer.is_some() {
                    self.snapshots_sent += 1;
                    tracing::info!(
                        to = from,
                        snapshot_index,
                        match_index,
                        "follower installed the snapshot"
                    );
                }
                advanced = progress.acknowledge(match_index, now);
            }
            SnapshotResult::Continue { next_offset } => {
                if let Some(t) = progress.transfer.as_mut() {
                    let next_offset = next_offset.min(t.image.len());
                    // An answer asking for the chunk already on its way (the answer to a
                    // duplicated or stray chunk) changes nothing: sending that chunk again would
                    // put a second copy in flight, and double every later answer and chunk.
                    let in_flight = t.awaiting && t.offset == next_offset;
                    if t.image.meta.last_index == snapshot_index && !in_flight {
                        t.offset = next_offset;
                        t.awaiting = false;
                    }
                }
            }
        }
        self.follower_answered(from, advanced);
    }

    /// A snapshot chunk from the leader of our term.
    pub(super) fn handle_install_snapshot(&mut self, from: NodeId, chunk: Chunk) {
        if let Err(why) = chunk_well_formed(&chunk, self.term) {
            tracing::warn!(from, "dropping a malformed InstallSnapshot: {why}");
            return;
        }
        if !self.heard_from_leader(from) {
            return;
        }
        if let Some(incoming) = self.incoming.as_mut() {
            incoming.read_round = incoming.read_round.max(chunk.read_round);
            if incoming.complete {
                return; // the answer comes once the server has installed it
            }
        }
        let index = chunk.meta.last_index;
        let reply = |result| Body::InstallSnapshotResponse {
            snapshot_index: index,
            result,
            read_round: chunk.read_round,
        };
        let commit = self.log.commit_index();
        if index <= commit {
            tracing::info!(
                from,
                index,
                commit,
                "refusing a stale snapshot: it covers nothing past the commit index"
            );
            self.incoming = None;
            let body = reply(SnapshotResult::Done {
                match_index: commit,
            });
            return self.send(from, body);
        }
        let same = self.incoming.as_ref().is_some_and(|i| {
            i.meta == chunk.meta && i.total_len == chunk.total_len && i.checksum == chunk.checksum
        });
        if !same {
            if chunk.offset != 0 {
                let body = reply(SnapshotResult::Continue { next_offset: 0 });
                return self.send(from, body);
            }
            tracing::info!(from, index, bytes = chunk.total_len, "receiving a snapshot");
            self.incoming = Some(Incoming {
                meta: chunk.meta.clone(),
                total_len: chunk.total_len,
                checksum: chunk.checksum,
                received: 0,
                complete: false,
                from,
                read_round: chunk.read_round,
            });
        }
        let incoming = self.incoming.as_mut().expect("set just above");
        if chunk.offset != incoming.received {
            let next_offset = incoming.received;
            return self.send(from, reply(SnapshotResult::Continue { next_offset }));
        }
        incoming.received += chunk.data.len() as u64;
        incoming.from = from;
        let received = incoming.received;
        self.snapshot_chunks.push(SnapshotChunk {
            offset: chunk.offset,
            data: chunk.data,
        });
        if received < chunk.total_len {
            let body = reply(SnapshotResult::Continue {
                next_offset: received,
            });
            return self.send(from, body);
        }
        incoming.complete = true;
        self.install = Some(InstallRequest {
            meta: chunk.meta,
            total_len: chunk.total_len,
            checksum: chunk.checksum,
        });
    }

    /// The server installed the snapshot the core asked for in [`super::Ready::install`]
    /// (durably, with the state machine loaded from it), or could not (`Err`: the image failed
    /// its checks; the transfer starts over). The follower answers the leader now.
    pub fn install_finished(&mut self, result: Result<SnapshotImage, String>) {
        let Some(incoming) = self.incoming.take().filter(|i| i.complete) else {
            return;
        };
        let index = incoming.meta.last_index;
        let result = match result {
            Ok(image) if image.meta != incoming.meta => Err(format!(
                "the installed snapshot covers {:?}, the leader announced {:?}",
                image.meta, incoming.meta
            )),
            other => other,
        };
        let answer = match result {
            Ok(image) => {
                let term = image.meta.last_term;
                if index > self.log.commit_index() {
                    self.log.restore(index, term);
                    // The snapshot's configuration, and any the log still holds after it.
                    self.configs.restore(image.meta.membership(), &self.log);
                    self.sync_configs(&[]);
                }
                self.snapshot = Some(image);
                tracing::info!(index, term, "installed a snapshot from the leader");
                SnapshotResult::Done {
                    match_index: self.log.commit_index(),
                }
            }
            Err(why) => {
                tracing::warn!(index, "could not install the leader's snapshot: {why}");
                SnapshotResult::Continue { next_offset: 0 }
            }
        };
        let body = Body::InstallSnapshotResponse {
            snapshot_index: index,
            result: answer,
            read_round: incoming.read_round,
        };
        self.send(incoming.from, body);
    }

    /// Is a snapshot install with the server right now?
    pub fn installing_snapshot(&self) -> bool {
        self.incoming.as_ref().is_some_and(|i| i.complete)
    }
}

/// What a correct leader always sends: a snapshot past index 0 and not from a future term, and a
/// non-empty chunk inside the image.
fn chunk_well_formed(chunk: &Chunk, term: u64) -> Result<(), String> {
    let meta = &chunk.meta;
    if meta.last_index == 0 || meta.last_term == 0 || meta.last_term > term {
        return Err(format!(
            "snapshot at index {} term {} (message term {term})",
            meta.last_index, meta.last_term
        ));
    }
    let end = chunk.offset.checked_add(chunk.data.len() as u64);
    if chunk.data.is_empty() || end.is_none_or(|end| end > chunk.total_len) {
        return Err(format!(
            "chunk of {} bytes at offset {} of a {}-byte image",
            chunk.data.len(),
            chunk.offset,
            chunk.total_len
        ));
    }
    Ok(())
}
