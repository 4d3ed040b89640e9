//! What a node says about itself, off the Raft log: the answers to `Status` and `Digest`.

use std::sync::atomic::Ordering;

use super::executor::{response, Clients, Executor, Network, Storage};
use crate::protocol::{ClientResult, SnapshotStatus, StateDigest, Status};

impl<S: Storage, N: Network, C: Clients> Executor<S, N, C> {
    /// The state machine's fingerprint at the applied index, computed from an O(1) clone of
    /// the store, off the Raft loop where the [`Clients`] allow it.
    pub(super) fn answer_digest(&mut self, request_id: u64, reply: C::Reply) {
        let kv = self.kv.clone();
        let log = self.raft.log();
        let (id, applied_index) = (self.raft.id(), log.applied_index());
        let applied_term = log.term_at(applied_index).unwrap_or(0);
        let work = move || {
            let digest = kv.digest();
            let state = StateDigest {
                id,
                applied_index,
                applied_term,
                keys: kv.len() as u64,
                sessions: kv.session_count() as u64,
                data_digest: digest.data,
                session_digest: digest.sessions,
            };
            response(request_id, ClientResult::Digest(state))
        };
        self.clients.answer_with(reply, Box::new(work));
    }

    /// The answer to a status query: the core's positions, snapshots, sessions, refusals.
    pub(super) fn status(&self) -> Status {
        let log = self.raft.log();
        Status {
            id: self.raft.id(),
            role: self.raft.role(),
            term: self.raft.term(),
            leader: self.raft.leader(),
            commit_index: log.commit_index(),
            applied_index: log.applied_index(),
            last_log_index: log.last_index(),
            first_log_index: log.first_index(),
            snapshot: SnapshotStatus {
                last_index: self.snapshot_image().map_or(0, |s| s.meta.last_index),
                bytes: self.snapshot_image().map_or(0, |s| s.len()),
                taken: self.compaction.taken,
                installed: self.compaction.installed,
                sent: self.raft.snapshots_sent(),
                sessions: self.kv.session_count() as u64,
                sessions_expired: self.kv.sessions_expired(),
                keys: self.kv.len() as u64,
            },
            refused_peers: self.refused_peers.load(Ordering::Relaxed),
            safety_violation: self.raft.safety_violation().map(|v| v.describe()),
            membership: super::admin::membership_status(
                self.raft.membership(),
                self.raft.change_in_flight(),
            ),
            reorder: self
                .reorder
                .as_ref()
                .map(|r| r.status())
                .unwrap_or_default(),
        }
    }
}
