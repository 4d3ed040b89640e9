//! What a leader knows about each follower's log, and how it decides what to send next.
//!
//! A follower is either being *probed* (the leader does not know where their logs agree; it sends
//! one AppendEntries and waits) or *replicated to* (the logs agree up to `match_index`; the leader
//! streams batches without waiting, up to `max_inflight` of them: pipelining). A rejection sends a
//! follower back to probing; a success moves it to replicating.
//!
//! Two read rounds (see [`super::read_index`]) date what the leader hears: `match_round` is the
//! newest round when `match_index` was last raised, so an answer echoing a newer round answers an
//! AppendEntries sent after that acknowledgement arrived; `fresh_since` is the round the leader
//! started when it found the follower had lost entries, and answers echoing an older round are
//! from before that and no longer true (see [`super::replication`]).

use std::collections::VecDeque;

use super::snapshot::SnapshotImage;
use crate::types::Index;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicationState {
    Probe,
    Replicate,
    Snapshot,
}

/// A snapshot on its way to one follower. It holds the image it started with (a shared
/// reference): if the leader takes a newer snapshot meanwhile, this transfer still finishes,
/// instead of restarting forever on a busy leader that snapshots faster than it can send.
#[derive(Clone, Debug)]
pub struct Transfer {
    pub image: SnapshotImage,
    /// The next byte of the image to send.
    pub offset: u64,
    /// A chunk is out and unanswered.
    pub awaiting: bool,
}

/// The batches sent to a follower and not yet acknowledged: the last index and the payload
/// bytes of each, oldest first, and their bytes summed.
#[derive(Clone, Debug, Default)]
pub struct Inflight {
    batches: VecDeque<(Index, usize)>,
    bytes: usize,
}

impl Inflight {
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Payload bytes of the unacknowledged batches.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn push(&mut self, last: Index, bytes: usize) {
        self.batches.push_back((last, bytes));
        self.bytes += bytes;
    }

    /// The follower holds everything up to `index`: the batches ending there are answered.
    fn acknowledge(&mut self, index: Index) {
        while let Some(&(last, bytes)) = self.batches.front() {
            if last > index {
                break;
            }
            self.batches.pop_front();
            self.bytes -= bytes;
        }
    }

    pub fn clear(&mut self) {
        self.batches.clear();
        self.bytes = 0;
    }
}

/// The leader's view of one follower.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Highest index known to be durably replicated on the follower.
    pub match_index: Index,
    /// Next index to send.
    pub next_index: Index,
    pub state: ReplicationState,
    /// In `Probe`: a probe is out and unanswered; wait for an answer or the next heartbeat.
    pub probe_sent: bool,
    /// In `Replicate`: the unacknowledged batches.
    pub inflight: Inflight,
    /// Heard from the follower since the last check-quorum round.
    pub recent_active: bool,
    /// Heard from it during the round before (`recent_active` when that round ended): with
    /// `recent_active`, "heard from it within the last one or two election timeouts", which a
    /// membership change asks ([`super::reconfig`]) at any moment, also just after a round.
    pub active_last_round: bool,
    /// The highest read round the follower has echoed in this term.
    pub acked_round: u64,
    /// In `Snapshot`: the transfer in progress.
    pub transfer: Option<Transfer>,
    /// The leader's newest read round when `match_index` was last raised.
    pub match_round: u64,
    /// Answers echoing a round older than this predate the follower's loss of entries it had
    /// acknowledged: they are ignored.
    pub fresh_since: u64,
    /// Rejections at or below `match_index` that could not be dated, since the last success.
    pub unsure_rejects: u32,
}

impl Progress {
    pub fn new(next_index: Index) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ReplicationState::Probe,
            probe_sent: false,
            inflight: Inflight::default(),
            recent_active: true,
            active_last_round: true,
            acked_round: 0,
            transfer: None,
            match_round: 0,
            fresh_since: 0,
            unsure_rejects: 0,
        }
    }

    /// Does an answer echoing `round` answer an AppendEntries sent before the follower was found
    /// to have lost entries? Then what it says is no longer true.
    pub fn predates_loss(&self, round: u64) -> bool {
        round < self.fresh_since
    }

    /// The follower's log no longer holds what it acknowledged (its disk lost entries, or its data
    /// dir was wiped): nothing it said before is known to hold any more. Forget its match, ignore
    /// answers to what was sent before `round` (a round the leader just started), and probe from
    /// `next`.
    pub fn lost_entries(&mut self, next: Index, round: u64) {
        self.match_index = 0;
        self.match_round = round;
        self.fresh_since = round;
        self.unsure_rejects = 0;
        self.back_off(next);
    }

    /// May the leader send another AppendEntries with entries now? In `Replicate`, while fewer
    /// than `max_batches` batches and fewer than `max_bytes` payload bytes are unacknowledged
    /// (so the window may overshoot the byte bound by one batch, and always admits one).
    pub fn can_send(&self, max_batches: usize, max_bytes: usize) -> bool {
        match self.state {
            ReplicationState::Probe => !self.probe_sent,
            ReplicationState::Replicate => {
                self.inflight.len() < max_batches && self.inflight.bytes() < max_bytes
            }
            ReplicationState::Snapshot => false,
        }
    }

    /// Records that a batch ending at `last`, of `bytes` payload bytes, went out.
    pub fn sent(&mut self, last: Index, bytes: usize) {
        match self.state {
            ReplicationState::Probe => self.probe_sent = true,
            ReplicationState::Replicate => {
                self.next_index = last + 1;
                self.inflight.push(last, bytes);
            }
            ReplicationState::Snapshot => {}
        }
    }

    /// The follower holds everything up to `index`; `round` is the leader's newest read round
    /// now. Returns whether `match_index` advanced.
    pub fn acknowledge(&mut self, index: Index, round: u64) -> bool {
        self.inflight.acknowledge(index);
        // While a snapshot is on its way, an acknowledgement below its index answers a batch sent
        // before the transfer began (a paused follower answers a whole window of them when it
        // resumes). The follower still needs the snapshot: keep the transfer where it is, or it
        // would start again from byte 0 with every such answer.
        let short_of_snapshot = self
            .transfer
            .as_ref()
            .is_some_and(|t| index < t.image.meta.last_index);
        if short_of_snapshot {
            let advanced = index > self.match_index;
            if advanced {
                self.match_index = index;
                self.match_round = round;
            }
            return advanced;
        }
        if self.state != ReplicationState::Replicate {
            self.state = ReplicationState::Replicate;
            self.probe_sent = false;
            self.inflight.clear();
            self.transfer = None;
        }
        self.next_index = self.next_index.max(index + 1);
        if index > self.match_index {
            self.match_index = index;
            self.match_round = round;
            true
        } else {
            false
        }
    }

    /// The follower's log diverges before `next_index`: go back to probing from `next`.
    pub fn back_off(&mut self, next: Index) {
        self.state = ReplicationState::Probe;
        self.probe_sent = false;
        self.inflight.clear();
        self.transfer = None;
        self.next_index = next.max(self.match_index + 1);
    }

    /// The follower needs entries that only the snapshot holds: send it `image`, from the first
    /// byte. A transfer already under way goes on with the image it started with.
    pub fn start_snapshot(&mut self, image: &SnapshotImage) -> &mut Transfer {
        if self.transfer.is_none() {
            self.state = ReplicationState::Snapshot;
            self.probe_sent = false;
            self.inflight.clear();
        }
        self.transfer.get_or_insert_with(|| Transfer {
            image: image.clone(),
            offset: 0,
            awaiting: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicating() -> Progress {
        let mut p = Progress::new(1);
        p.acknowledge(0, 0);
        assert_eq!(p.state, ReplicationState::Replicate);
        p
    }

    #[test]
    fn the_window_closes_on_bytes_as_well_as_on_batches() {
        let mut p = replicating();
        assert!(p.can_send(64, 1000));
        p.sent(1, 600);
        assert!(p.can_send(64, 1000));
        p.sent(2, 600); // one batch may overshoot the bound
        assert_eq!(p.inflight.bytes(), 1200);
        assert!(!p.can_send(64, 1000));
        assert!(p.can_send(64, 1201));
        // An acknowledgement of the first batch gives its bytes back.
        p.acknowledge(1, 0);
        assert_eq!((p.inflight.len(), p.inflight.bytes()), (1, 600));
        assert!(p.can_send(64, 1000));
        assert!(!p.can_send(1, 1000));
        p.acknowledge(2, 0);
        assert!(p.inflight.is_empty());
        assert_eq!(p.inflight.bytes(), 0);
    }

    #[test]
    fn backing_off_forgets_the_bytes_in_flight() {
        let mut p = replicating();
        p.sent(5, 4096);
        p.back_off(3);
        assert_eq!(p.inflight.bytes(), 0);
        p.acknowledge(2, 0);
        assert!(p.can_send(1, 1));
    }
}
