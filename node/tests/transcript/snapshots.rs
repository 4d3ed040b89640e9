//! The snapshot side of the cluster: the server's part in log compaction and InstallSnapshot.
//!
//! The harness's state machine is the list of applied entries, so a snapshot image is that list
//! as text, one [`format::entry`] per line (it decodes back with [`format::parse_entry`]). Taking
//! a snapshot (`snapshot N keep=K`) hands the core the image and replaces the durable log's
//! prefix by it, as the real storage does. A follower's incoming chunks go to a buffer (its temp
//! file, lost in a crash); the install checks the buffer's length and CRC-32 against the
//! leader's announcement before anything durable changes, and answers the core with
//! [`Raft::install_finished`](riptide_node::raft::Raft::install_finished).

use riptide_node::raft::{InstallRequest, SnapshotChunk, SnapshotImage};
use riptide_node::types::{Entry, Index, NodeId, SnapshotMeta, Term};

use super::cluster::{Cluster, Durable};
use super::format;

/// A state machine (applied entries) as image bytes: one entry per line.
pub fn encode_state(applied: &[Entry]) -> Vec<u8> {
    let mut text = String::new();
    for entry in applied {
        text += &format::entry(entry);
        text.push('\n');
    }
    text.into_bytes()
}

/// The entries an image holds, checked to be numbered from 1 without a gap.
pub fn decode_state(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("the image is not text: {e}"))?;
    let entries = (text.lines())
        .map(format::parse_entry)
        .collect::<Result<Vec<_>, _>>()?;
    for (k, entry) in entries.iter().enumerate() {
        if entry.index != k as Index + 1 {
            return Err(format!(
                "the image holds {} at line {}",
                format::entry(entry),
                k + 1
            ));
        }
    }
    Ok(entries)
}

/// `index@term` of a snapshot.
pub fn position(meta: &SnapshotMeta) -> String {
    format!("{}@{}", meta.last_index, meta.last_term)
}

impl Durable {
    /// `(index, term)` of the last entry the snapshot covers, `(0, 0)` without one.
    pub fn offset(&self) -> (Index, Term) {
        (self.snapshot.as_ref()).map_or((0, 0), |s| (s.meta.last_index, s.meta.last_term))
    }

    /// The term of the durable entry at `index` (the snapshot's last one included), if stored.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        let (offset, offset_term) = self.offset();
        if index == offset {
            return Some(offset_term);
        }
        let k = index.checked_sub(offset + 1)?;
        self.entries.get(k as usize).map(|e| e.term)
    }

    /// The whole log as stored: the snapshot's entries, then the entries after it.
    pub fn full_log(&self) -> Result<Vec<Entry>, String> {
        let mut log = match &self.snapshot {
            Some(image) => decode_state(&image.bytes)?,
            None => Vec::new(),
        };
        log.extend(self.entries.iter().cloned());
        Ok(log)
    }
}

impl Cluster {
    /// `snapshot N keep=K`: N snapshots its state machine at its applied index, the core keeps
    /// the image and discards its log up to the index less K entries, and the durable state
    /// becomes the snapshot plus the entries after it.
    pub fn take_snapshot(&mut self, id: NodeId, keep: u64) -> Result<(), String> {
        let voters = self.ids().to_vec();
        self.node(id)?;
        if self.crashed.contains(&id) {
            return Err(format!("node {id} is crashed; restart it first"));
        }
        let raft = self.nodes.get_mut(&id).expect("checked");
        let index = raft.log().applied_index();
        let applied = &self.applied[&id];
        if index == 0 || applied.last().map(|e| e.index) != Some(index) {
            return Err(format!(
                "n{id} cannot snapshot: the core applied {index}, the state machine {} entries",
                applied.len()
            ));
        }
        let last_term = raft
            .log()
            .term_at(index)
            .ok_or("the applied entry is gone")?;
        let meta = SnapshotMeta {
            last_index: index,
            last_term,
            voters,
            learners: Vec::new(),
            outgoing: Vec::new(),
            addresses: Default::default(),
        };
        let image = SnapshotImage::new(meta, encode_state(applied));
        let held = (raft.snapshot()).map(|s| s.meta.clone());
        raft.snapshot_taken(image.clone(), keep);
        // The core keeps the image it holds if that is no older (one installed meanwhile); so
        // does the storage.
        if let Some(held) = held.filter(|h| h.last_index >= index) {
            let at = position(&image.meta);
            let line = format!("n{id} snapshot {at} ignored: holds {}", position(&held));
            self.trace.event(line);
            return self.process(id);
        }
        if raft.snapshot() != Some(&image) {
            return Err(format!(
                "n{id}'s core did not keep the snapshot it was handed"
            ));
        }
        let first = raft.log().first_index();
        let line = format!(
            "n{id} snapshot {} bytes={} crc={:#010x} first={first}",
            position(&image.meta),
            image.len(),
            image.checksum
        );
        self.trace.event(line);
        let durable = self.durable.get_mut(&id).expect("every node has storage");
        durable.entries.retain(|e| e.index > index);
        durable.snapshot = Some(image);
        self.process(id)
    }

    /// Step 5 of a `Ready`, the chunks: each continues the buffer (the core promised order); one
    /// at offset 0 starts a new temp file, dropping an abandoned transfer's bytes.
    pub(super) fn write_chunks(
        &mut self,
        id: NodeId,
        chunks: Vec<SnapshotChunk>,
    ) -> Result<(), String> {
        for chunk in chunks {
            let buffer = self.incoming.entry(id).or_default();
            let end = chunk.offset + chunk.data.len() as u64;
            let mut line = format!("n{id} write chunk {}..{end}", chunk.offset);
            if chunk.offset == 0 && !buffer.is_empty() {
                line += &format!(" (new file; {} bytes dropped)", buffer.len());
                buffer.clear();
            }
            if chunk.offset != buffer.len() as u64 {
                return Err(format!(
                    "n{id} was handed a chunk at offset {} after {} bytes: out of order",
                    chunk.offset,
                    buffer.len()
                ));
            }
            buffer.extend_from_slice(&chunk.data);
            self.trace.event(line);
        }
        Ok(())
    }

    /// Step 5 of a `Ready`, the install: check the buffer against the request, then make the
    /// snapshot durable (keeping the log after it only if the log holds its last entry), load the
    /// state machine from it and tell the core; or tell the core why not. The buffer goes either
    /// way.
    pub(super) fn install(&mut self, id: NodeId, request: InstallRequest) -> Result<(), String> {
        let buffer = self.incoming.remove(&id).unwrap_or_default();
        let at = position(&request.meta);
        let loaded = check_image(&buffer, &request).and_then(|()| {
            let state = decode_state(&buffer)?;
            let last = state.last().map(|e| (e.index, e.term));
            match last == Some((request.meta.last_index, request.meta.last_term)) {
                true => Ok(state),
                false => Err(format!("the image's entries do not end at {at}")),
            }
        });
        let state = match loaded {
            Ok(state) => state,
            Err(why) => {
                self.trace
                    .event(format!("n{id} install {at} failed: {why}"));
                let raft = self.nodes.get_mut(&id).expect("a booted node");
                raft.install_finished(Err(why));
                return Ok(());
            }
        };
        let image = SnapshotImage::new(request.meta, buffer);
        let durable = self.durable.get_mut(&id).expect("every node has storage");
        let (index, term) = (image.meta.last_index, image.meta.last_term);
        if durable.term_at(index) == Some(term) {
            let offset = durable.offset().0;
            durable.entries.drain(..(index - offset) as usize);
        } else {
            durable.entries.clear();
        }
        let kept = durable.entries.len();
        durable.snapshot = Some(image.clone());
        self.trace.event(format!(
            "n{id} install {at} ok bytes={} kept={kept}",
            image.len()
        ));
        self.applied.insert(id, state);
        *self.installs.entry(id).or_default() += 1;
        let raft = self.nodes.get_mut(&id).expect("a booted node");
        raft.install_finished(Ok(image));
        Ok(())
    }

    /// `corrupt-incoming N`: flips every bit of the first byte N has received of a snapshot.
    pub fn corrupt_incoming(&mut self, id: NodeId) -> Result<(), String> {
        self.node(id)?;
        let buffer = (self.incoming.get_mut(&id))
            .filter(|b| !b.is_empty())
            .ok_or_else(|| format!("n{id} has received no snapshot bytes"))?;
        buffer[0] ^= 0xff;
        let line = format!(
            "n{id} incoming byte 0 corrupted ({} bytes held)",
            buffer.len()
        );
        self.trace.event(line);
        Ok(())
    }
}

/// What the server checks before installing: the announced length and CRC-32.
fn check_image(buffer: &[u8], request: &InstallRequest) -> Result<(), String> {
    if buffer.len() as u64 != request.total_len {
        return Err(format!(
            "{} bytes received, {} announced",
            buffer.len(),
            request.total_len
        ));
    }
    let crc = crc32fast::hash(buffer);
    if crc != request.checksum {
        return Err(format!(
            "checksum {crc:#010x}, {:#010x} announced",
            request.checksum
        ));
    }
    Ok(())
}
