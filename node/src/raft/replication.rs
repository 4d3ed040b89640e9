//! Log replication and commitment (Raft paper §5.3, §5.4.2) and the leader side of ReadIndex.
//!
//! The leader sends each follower batches of entries after `prev_index`; the follower accepts them
//! only if its entry at `prev_index` has `prev_term` (Log Matching), replacing any conflicting
//! suffix. A rejection carries a hint so the leader can skip a whole term at a time. The leader
//! commits an index once a majority (itself included, counting only what it has *persisted*) holds
//! it, and only if that entry is from its own term: counting replicas of an older term's entry is
//! unsafe (Figure 8). A follower advances its commit index only up to the last entry the current
//! message vouched for, never past what it verified matches the leader.
//!
//! # A follower that lost acknowledged entries
//!
//! A success is a promise: "my log matches yours up to `match_index`, durably". A follower whose
//! disk broke that promise (a power cut with a buggy fsync, a data dir wiped and restarted with
//! the same id) comes back in the same term with a shorter log, and rejects AppendEntries at or
//! below the `match_index` the leader holds for it. A rejection there can also be *stale*: the
//! answer to an AppendEntries the follower handled before the one it acknowledged (reordered
//! or late delivery, a pipelined batch). The leader tells them apart by the read round the
//! answers echo ([`super::read_index`]; rounds only grow, and every AppendEntries carries the
//! newest):
//!
//! - `match_round` is the newest round when `match_index` was raised. An answer echoing a newer
//!   round answers an AppendEntries sent after that acknowledgement *arrived*, so the follower
//!   handled it after the one it acknowledged. In one term nothing takes an acknowledged entry
//!   from a follower's log (only this leader sends it entries, and they match its own), so a
//!   rejection at or below `match_index` in a newer round proves the log lost entries: the
//!   leader logs a warning, forgets the follower's match (nothing it said before is known to
//!   hold), and probes it back from the rejection's hint (or sends the snapshot).
//! - A rejection at or below `match_index` echoing `match_round` or older is unsure: it is
//!   ignored (a probe it answers is sent again). A stale one is soon followed by a success (the
//!   follower holds the entries); a follower that lost them rejects every AppendEntries. So at
//!   the second unsure rejection with no success between, if no round was started since the
//!   match was raised, the leader starts one (a round no read asked for; any extra round is
//!   safe for reads, which wait for a round started after they arrived), and the next
//!   AppendEntries it sends the follower can tell. Waiting for the second keeps the round
//!   numbers, and so the timing of reads, of a healthy cluster exactly as they were.
//! - The round started on a loss is `fresh_since`: answers echoing an older round were sent
//!   before the loss was known (a success among them would promise the lost entries again) and
//!   are ignored.

use super::message::{AppendResult, Body};
use super::node::{Raft, RoleState};
use super::progress::{Progress, ReplicationState};
use crate::types::{Entry, Index, NodeId, Payload, Term};

impl Raft {
    pub(super) fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
        read_round: u64,
    ) {
        if let Err(why) = well_formed(prev_index, prev_term, &entries, self.term) {
            tracing::warn!(
                from,
                prev_index,
                "dropping a malformed AppendEntries: {why}"
            );
            return;
        }
        if !self.heard_from_leader(from) {
            return;
        }
        let (prev_index, prev_term, entries) =
            skip_compacted(self.log.offset(), prev_index, prev_term, entries);

        let result = if !self.log.matches(prev_index, prev_term) {
            let (conflict_term, conflict_index) = if prev_index > self.log.last_index() {
                (None, self.log.last_index() + 1)
            } else {
                match self.log.term_at(prev_index) {
                    Some(term) => (
                        Some(term),
                        self.log
                            .first_index_of_term(term, prev_index)
                            .unwrap_or(prev_index),
                    ),
                    None => (None, self.log.first_index()),
                }
            };
            tracing::debug!(
                from,
                prev_index,
                prev_term,
                ?conflict_term,
                conflict_index,
                "rejecting AppendEntries"
            );
            AppendResult::Reject {
                rejected_prev: prev_index,
                conflict_term,
                conflict_index,
            }
        } else {
            if self.config.bugs.truncate_on_match && !entries.is_empty() {
                // The bug: everything after prev_index goes, matching or not (short of what
                // this follower knows is committed: it is the leader's commit the bug breaks).
                self.log
                    .truncate_after(prev_index.max(self.log.commit_index()));
                self.sync_configs(&[]);
            }
            let (last_new, overwrite) = self.log.append_after(prev_index, &entries);
            // A configuration takes effect on append, and goes on truncation (§6).
            self.sync_configs(&entries);
            if let Some(o) = overwrite {
                self.report_overwrite(from, o);
            }
            self.log
                .commit_to(self.vouched_commit(leader_commit, last_new));
            AppendResult::Success {
                match_index: last_new,
            }
        };
        self.send(from, Body::AppendEntriesResponse { result, read_round });
    }

    /// The leader `from` replaced entries this follower had committed: say so loudly, and stop
    /// applying (see [`super::node::SafetyViolation`]).
    fn report_overwrite(&mut self, from: NodeId, o: super::log::Overwrite) {
        tracing::error!(
            leader = from,
            from_index = o.from,
            commit = o.commit,
            "SAFETY VIOLATION: the leader replaced committed entries; acknowledged writes are lost; this node stops applying until it restarts"
        );
        self.violation.get_or_insert(super::node::SafetyViolation {
            leader: from,
            term: self.term,
            from_index: o.from,
            commit: o.commit,
        });
    }

    /// How far a follower may commit on an AppendEntries: up to the leader's commit index, but
    /// not past the last entry the message checked (Figure 2), unless the commit-past-match bug
    /// is on.
    fn vouched_commit(&self, leader_commit: Index, last_new: Index) -> Index {
        match self.config.bugs.commit_past_match {
            true => leader_commit,
            false => leader_commit.min(last_new),
        }
    }

    pub(super) fn handle_append_response(
        &mut self,
        from: NodeId,
        result: AppendResult,
        read_round: u64,
    ) {
        let now = self.current_round();
        let last_index = self.log.last_index();
        let Some(progress) = answering_follower(&mut self.role, from, read_round) else {
            return;
        };
        let mut advanced = false;
        match result {
            AppendResult::Success { match_index } if match_index > last_index => {
                tracing::warn!(
                    from,
                    match_index,
                    "ignoring an acknowledgement past the end of the log"
                );
            }
            AppendResult::Success { .. } if progress.predates_loss(read_round) => {
                tracing::debug!(from, "ignoring an acknowledgement from before a loss");
            }
            AppendResult::Success { match_index } => {
                progress.unsure_rejects = 0;
                advanced = progress.acknowledge(match_index, now);
            }
            AppendResult::Reject {
                rejected_prev,
                conflict_term,
                conflict_index,
            } => {
                let next = match conflict_term.and_then(|t| self.log.last_index_of_term(t)) {
                    Some(last_of_term) => last_of_term + 1,
                    None => conflict_index,
                };
                let next = next.min(rejected_prev).max(1);
                match classify_reject(progress, rejected_prev, read_round) {
                    Reject::Stale => {}
                    Reject::Diverges => {
                        progress.back_off(next);
                        tracing::debug!(
                            to = from,
                            next = progress.next_index,
                            "follower log diverges; probing"
                        );
                    }
                    Reject::Unsure => {
                        if progress.state == ReplicationState::Probe
                            && rejected_prev + 1 == progress.next_index
                        {
                            // The answer to the probe that is out: probe again.
                            progress.back_off(next);
                        }
                        // Only an answer to an AppendEntries sent in a newer round can tell.
                        // A stale answer is soon followed by a success; a second unsure one
                        // without a success between asks for that round.
                        progress.unsure_rejects += 1;
                        if progress.unsure_rejects >= 2 && progress.match_round == now {
                            self.start_round();
                        }
                    }
                    Reject::LostEntries => {
                        let ends = match conflict_term {
                            None => format!("its log now ends at {}", conflict_index - 1),
                            Some(t) => format!("its log now has term {t} at {rejected_prev}"),
                        };
                        tracing::warn!(
                            "follower {from} lost entries it had acknowledged: match {}, {ends}",
                            progress.match_index
                        );
                        let round = self.start_round();
                        self.lost_entries(from, next, round);
                    }
                }
            }
        }
        self.follower_answered(from, advanced);
        self.maybe_send_timeout_now(from);
    }

    /// On a leader, the highest index it knows `peer` holds durably (its match index).
    pub fn match_index_of(&self, peer: NodeId) -> Option<Index> {
        match &self.role {
            RoleState::Leader(leader) => leader.progress.get(&peer).map(|p| p.match_index),
            _ => None,
        }
    }

    /// The newest read round on a leader (0 elsewhere).
    pub(super) fn current_round(&self) -> u64 {
        match &self.role {
            RoleState::Leader(leader) => leader.reads.round,
            _ => 0,
        }
    }

    /// Starts a read round that no read asked for, so that the AppendEntries sent from now on can
    /// be told from those sent before (reads are safe with any extra round: a read waits for a
    /// round started after it arrived). Returns its number.
    fn start_round(&mut self) -> u64 {
        let RoleState::Leader(leader) = &mut self.role else {
            return 0;
        };
        let round = leader.reads.start_round();
        if self.lease_mode() {
            self.lease_round_started(round);
        }
        round
    }

    /// Resets the progress of `from`, which lost entries it had acknowledged.
    fn lost_entries(&mut self, from: NodeId, next: Index, round: u64) {
        if let RoleState::Leader(leader) = &mut self.role {
            if let Some(progress) = leader.progress.get_mut(&from) {
                progress.lost_entries(next, round);
            }
        }
    }

    /// After a follower's answer: commit if its match index advanced, release the reads its
    /// echo confirmed, send it what it needs next.
    pub(super) fn follower_answered(&mut self, from: NodeId, advanced: bool) {
        if advanced {
            self.maybe_commit();
        }
        self.maybe_confirm_reads();
        self.send_append(from, false);
    }

    /// Commits the highest index a majority (of every configuration in force) holds, if it is
    /// from the current term (Figure 8). Allocation-free: see [`Raft::quorum_value`].
    pub(super) fn maybe_commit(&mut self) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let (me, persisted) = (self.config.id, self.log.persisted_index());
        let candidate = self.quorum_value(|id| match id == me {
            true => persisted,
            false => leader.progress.get(&id).map_or(0, |p| p.match_index),
        });
        // The commit-prior-term bug counts replicas of any term's entry.
        let own_term = self.log.term_at(candidate) == Some(self.term);
        if candidate <= self.log.commit_index() || !(own_term || self.config.bugs.commit_prior_term)
        {
            return;
        }
        let had_own_term = self.committed_own_term();
        self.log.commit_to(candidate);
        if !had_own_term {
            if let RoleState::Leader(leader) = &mut self.role {
                leader.reads.own_term_committed(candidate);
            }
            self.maybe_start_read_round();
        }
        self.after_commit();
    }

    /// The committed entries to apply now: none after a safety violation; of the rest, those the
    /// [`super::apply_delay`] releases, at most the budget with [`Config::apply_per_tick`].
    pub(super) fn take_committed(&mut self) -> Vec<Entry> {
        if self.violation.is_some() {
            return Vec::new();
        }
        let (commit, applied) = (self.log.commit_index(), self.log.applied_index());
        let due = self.apply_delay.appliable(commit, applied, self.clock);
        let Some(_) = self.config.apply_per_tick else {
            return self.log.take_committed_at_most(due);
        };
        let budget = due.min(self.apply_budget as usize);
        let entries = self.log.take_committed_at_most(budget);
        self.apply_budget -= entries.len() as u32;
        entries
    }

    /// Did a majority (of every configuration in force, counting ourselves) talk to us since the
    /// last check? Resets the marks.
    pub(super) fn quorum_active(&mut self) -> bool {
        let RoleState::Leader(leader) = &self.role else {
            return false;
        };
        let me = self.config.id;
        let active = self.quorum_value(|id| {
            let heard = id == me || leader.progress.get(&id).is_some_and(|p| p.recent_active);
            heard as u64
        });
        if let RoleState::Leader(leader) = &mut self.role {
            for progress in leader.progress.values_mut() {
                progress.active_last_round = progress.recent_active;
                progress.recent_active = false;
            }
        }
        active == 1
    }

    /// Sends every follower what it is missing, as far as its progress state allows.
    pub(super) fn replicate_to_all(&mut self) {
        for peer in self.peers() {
            self.send_append(peer, false);
        }
    }

    /// A heartbeat to everyone: an AppendEntries even with nothing new, re-probing stuck followers.
    pub(super) fn broadcast_heartbeat(&mut self) {
        let lease_mode = self.lease_mode();
        if let RoleState::Leader(leader) = &mut self.role {
            for progress in leader.progress.values_mut() {
                progress.probe_sent = false;
            }
            if lease_mode {
                // Every heartbeat is a read round, to time the lease from.
                let round = leader.reads.start_round();
                self.lease_round_started(round);
            }
        }
        for peer in self.peers() {
            self.send_append(peer, true);
        }
        if lease_mode && self.lone_voter() {
            // A lone voter is its own majority: the round is confirmed as it starts.
            self.maybe_confirm_reads();
        }
    }

    /// Sends `to` as many batches as its progress allows (one probe, or up to the in-flight window).
    /// With `force`, sends at least an empty AppendEntries (a heartbeat).
    pub(super) fn send_append(&mut self, to: NodeId, mut force: bool) {
        let (max_entries, max_bytes) = (self.config.max_batch_entries, self.config.max_batch_bytes);
        let (max_inflight, max_inflight_bytes) =
            (self.config.max_inflight, self.config.max_inflight_bytes);
        let commit = self.log.commit_index();
        let term = self.term;
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let read_round = leader.reads.round;
        let Some(progress) = leader.progress.get_mut(&to) else {
            return;
        };
        // The entry before the next one to send is gone (compacted): only the snapshot has it.
        if progress.state == ReplicationState::Snapshot
            || progress.next_index <= self.log.offset().0
        {
            return self.send_snapshot(to, force);
        }
        loop {
            let entries = if progress.can_send(max_inflight, max_inflight_bytes) {
                self.log.batch(progress.next_index, max_entries, max_bytes)
            } else {
                Vec::new()
            };
            if entries.is_empty() && !force {
                return;
            }
            force = false;
            let prev_index = progress.next_index - 1;
            let Some(prev_term) = self.log.term_at(prev_index) else {
                tracing::error!(
                    to,
                    prev_index,
                    "entry needed for replication is no longer in the log"
                );
                return;
            };
            let last = prev_index + entries.len() as Index;
            let sent_entries = !entries.is_empty();
            let bytes = entries.iter().map(payload_len).sum();
            self.outbox.push(super::message::Message {
                from: self.config.id,
                to,
                term,
                body: Body::AppendEntries {
                    prev_index,
                    prev_term,
                    entries,
                    commit,
                    read_round,
                },
            });
            if !sent_entries {
                return;
            }
            progress.sent(last, bytes);
            if progress.state == ReplicationState::Probe {
                return;
            }
        }
    }

    /// Starts a ReadIndex confirmation round if a read waits for one (a heartbeat to everyone).
    pub(super) fn maybe_start_read_round(&mut self) {
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        if !leader.reads.wants_round() {
            return;
        }
        if self.config.read_mode == super::config::ReadMode::Lease {
            // A heartbeat starts a round of its own in lease mode.
            return self.broadcast_heartbeat();
        }
        leader.reads.start_round();
        if self.lone_voter() {
            self.maybe_confirm_reads();
        } else {
            self.broadcast_heartbeat();
        }
    }

    /// Confirms the newest round a majority (of every configuration in force) has echoed,
    /// releasing the reads it covers. Allocation-free: see [`Raft::quorum_value`].
    pub(super) fn maybe_confirm_reads(&mut self) {
        let RoleState::Leader(leader) = &self.role else {
            return;
        };
        let me = self.config.id;
        let confirmed = self.quorum_value(|id| match id == me {
            true => leader.reads.round,
            false => leader.progress.get(&id).map_or(0, |p| p.acked_round),
        });
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        let ready = leader.reads.confirm(confirmed);
        if self.config.read_mode == super::config::ReadMode::Lease {
            self.extend_lease(confirmed);
        }
        if !ready.is_empty() {
            self.reads_ready.extend(ready);
            self.maybe_start_read_round();
        }
    }
}

/// An AppendEntries whose `prev_index` lies before the log's `offset` (compacted into a snapshot)
/// cannot be checked there; but everything up to the offset is committed, so the leader holds
/// the same entries (Leader Completeness). Checks it at the offset instead, without the entries
/// the snapshot already covers. Otherwise the follower would reject it for ever, and a leader
/// that already counts the follower as matching `prev_index` would send it again for ever.
fn skip_compacted(
    (offset, offset_term): (Index, Term),
    prev_index: Index,
    prev_term: Term,
    mut entries: Vec<Entry>,
) -> (Index, Term, Vec<Entry>) {
    if prev_index >= offset {
        return (prev_index, prev_term, entries);
    }
    let covered = ((offset - prev_index) as usize).min(entries.len());
    entries.drain(..covered);
    (offset, offset_term, entries)
}

/// The bytes an entry's payload counts toward the batch and in-flight bounds.
fn payload_len(entry: &Entry) -> usize {
    match &entry.payload {
        Payload::Command(command) => command.len(),
        Payload::Noop | Payload::Config(_) => 0,
    }
}

/// What a rejected AppendEntries tells the leader (see the module docs).
#[derive(Debug, PartialEq, Eq)]
enum Reject {
    /// An answer to an AppendEntries that no longer matters: ignore it.
    Stale,
    /// The logs diverge after what the follower is known to match: probe further back.
    Diverges,
    /// At or below the follower's match: stale, or a loss; an answer in a newer round will tell.
    Unsure,
    /// The follower's log no longer holds what it acknowledged.
    LostEntries,
}

fn classify_reject(progress: &Progress, rejected_prev: Index, read_round: u64) -> Reject {
    // In the Snapshot state the leader sends no AppendEntries, so a rejection answers one sent
    // before the transfer began: the transfer decides, not it.
    if progress.state == ReplicationState::Snapshot || progress.predates_loss(read_round) {
        return Reject::Stale;
    }
    if rejected_prev <= progress.match_index {
        return match read_round > progress.match_round {
            true => Reject::LostEntries,
            false => Reject::Unsure,
        };
    }
    if progress.state == ReplicationState::Probe && rejected_prev + 1 != progress.next_index {
        return Reject::Stale;
    }
    Reject::Diverges
}

/// The leader's progress of `from`, which just answered (AppendEntries or a snapshot chunk):
/// it is active, and it echoed `read_round`. None on a node that is not the leader.
pub(super) fn answering_follower(
    role: &mut RoleState,
    from: NodeId,
    read_round: u64,
) -> Option<&mut Progress> {
    let RoleState::Leader(leader) = role else {
        return None;
    };
    let progress = leader.progress.get_mut(&from)?;
    progress.recent_active = true;
    progress.acked_round = progress.acked_round.max(read_round);
    Some(progress)
}

/// Checks what a correct leader always sends: entries numbered consecutively from
/// `prev_index + 1`, with terms that never decrease, start at or after `prev_term`, and are not
/// newer than the message's term. Anything else comes from a broken or hostile peer and must
/// not reach the log.
fn well_formed(
    prev_index: Index,
    prev_term: Term,
    entries: &[Entry],
    term: Term,
) -> Result<(), String> {
    let mut last_term = prev_term;
    for (k, entry) in entries.iter().enumerate() {
        let expected = prev_index + 1 + k as Index;
        if entry.index != expected {
            return Err(format!(
                "entry {k} has index {}, expected {expected}",
                entry.index
            ));
        }
        if entry.term < last_term || entry.term > term {
            return Err(format!(
                "entry {} has term {}, outside {last_term}..={term}",
                entry.index, entry.term
            ));
        }
        last_term = entry.term;
    }
    Ok(())
}
