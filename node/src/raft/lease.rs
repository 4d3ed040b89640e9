//! Leader-lease reads (Raft thesis §6.4.1): with [`ReadMode::Lease`], a leader answers reads
//! from its own state, without a round of heartbeats, while it holds a lease.
//!
//! Why a lease is safe: with check-quorum, a follower that heard from the leader ignores vote
//! requests for the minimum election timeout after that (`in_lease` in `node.rs`), and so does a
//! node that just booted (it may have heard from the leader before it crashed). A new leader
//! needs the vote of some node of every majority. So if a majority echoed a heartbeat round the
//! leader started at tick `s` (by its own clock), no other leader can exist before `s` plus the
//! minimum election timeout on those followers' clocks. The lease ends `lease_drift` ticks
//! before that, for the clocks' drift: [`Config::lease_ticks`]. It is timed from when the round
//! was *sent*, never from when the answers came back.
//!
//! How: in lease mode every heartbeat starts a new read round and the leader notes the tick it
//! started at; when a majority has echoed round `r`, the lease runs to `started(r) + lease`. A
//! read is decided when the core hands out its [`super::Ready`] (after the ticks the server fed
//! it, so a loop that stalled first catches its clock up): inside the lease, it is ready at
//! once at the commit index (the leader must have committed an entry of its own term, as for
//! ReadIndex); otherwise it falls back to ReadIndex.
//!
//! Leases rely on clocks that advance at about the same rate everywhere and never stop unnoticed:
//! a leader whose clock stops (a paused process that does not catch up its ticks) keeps a lease
//! that has expired in real time. The server feeds every tick it missed ([`Raft::skip_ticks`]).

use std::collections::BTreeMap;

use super::config::ReadMode;
use super::node::{Raft, RoleState};
use super::read_index::{ReadId, ReadState};

/// A leader's lease bookkeeping.
#[derive(Debug, Default)]
pub struct Lease {
    /// The tick each unconfirmed read round started at.
    started: BTreeMap<u64, u64>,
    /// The lease holds while the clock is below this tick.
    until: u64,
    /// Reads to decide at the next Ready: lease or ReadIndex.
    waiting: Vec<ReadId>,
    /// A leadership transfer began in this term: the target's vote requests pass the
    /// followers' leases, so this leader's lease no longer holds, for the rest of its term.
    revoked: bool,
}

impl Raft {
    /// The server's loop missed `ticks` ticks (it was paused or starved) and does not fire them
    /// one by one: the lease clock still moves on, so that a lease never outlives real time.
    /// (With the lease-read-unsafe bug the lease clock counts only the ticks that fired, as a
    /// lease timed by a timer that stops with the process does: a leader paused for seconds
    /// wakes up inside its lease.)
    pub fn skip_ticks(&mut self, ticks: u64) {
        if self.config.bugs.lease_too_long {
            return;
        }
        self.clock += ticks;
    }

    pub(super) fn lease_mode(&self) -> bool {
        self.config.read_mode == ReadMode::Lease
    }

    /// A lease read on the leader: decided at the next Ready.
    pub(super) fn lease_read(&mut self, id: ReadId) {
        if let RoleState::Leader(leader) = &mut self.role {
            leader.lease.waiting.push(id);
        }
    }

    /// In lease mode, a heartbeat starts a read round; note when.
    pub(super) fn lease_round_started(&mut self, round: u64) {
        let now = self.clock;
        if let RoleState::Leader(leader) = &mut self.role {
            leader.lease.started.insert(round, now);
        }
    }

    /// A majority has echoed `round`: the lease runs from when that round started.
    pub(super) fn extend_lease(&mut self, round: u64) {
        let lease = self.config.lease_ticks() as u64;
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        if let Some(&started) = leader.lease.started.get(&round) {
            if !leader.lease.revoked {
                leader.lease.until = leader.lease.until.max(started + lease);
            }
        }
        leader.lease.started = leader.lease.started.split_off(&(round + 1));
    }

    /// Decides the waiting lease reads: ready at the commit index inside the lease (once an
    /// entry of this term is committed), ReadIndex otherwise.
    pub(super) fn decide_lease_reads(&mut self) {
        let now = self.clock;
        let own_term = self.committed_own_term();
        let commit = self.log.commit_index();
        let RoleState::Leader(leader) = &mut self.role else {
            return;
        };
        if leader.lease.waiting.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut leader.lease.waiting);
        if own_term && now < leader.lease.until {
            let ready = waiting
                .into_iter()
                .map(|id| ReadState { id, index: commit });
            self.reads_ready.extend(ready);
            return;
        }
        for id in waiting {
            leader.reads.register(id, own_term.then_some(commit));
        }
        self.maybe_start_read_round();
    }

    /// Has a live leader been heard from within the minimum election timeout? Then vote requests
    /// are ignored (thesis §4.2.3): a node that was cut off must not depose a working leader. In
    /// lease mode a node that booted less than that long ago ignores them too: before it
    /// crashed it may have echoed a round that gave a leader its lease.
    pub(super) fn in_lease(&self) -> bool {
        let heard = self.leader.is_some()
            && (self.is_leader() || self.election_elapsed < self.config.election_timeout_min);
        let booting = self.lease_mode() && self.clock < self.config.election_timeout_min as u64;
        self.config.check_quorum && (heard || booting)
    }

    /// A leadership transfer starts: a candidate may now be elected while followers still hold
    /// this leader's lease, so lease reads fall back to ReadIndex for the rest of the term.
    pub(super) fn revoke_lease(&mut self) {
        if let RoleState::Leader(leader) = &mut self.role {
            leader.lease.revoked = true;
            leader.lease.until = 0;
        }
    }

    /// The reads still waiting for a decision, when leadership is lost.
    pub(super) fn drain_lease_reads(lease: &mut Lease) -> Vec<ReadId> {
        std::mem::take(&mut lease.waiting)
    }
}

#[cfg(test)]
mod tests {
    use crate::raft::{Config, Raft, RaftLog, ReadMode};
    use crate::types::HardState;

    fn lone_leader(read_mode: ReadMode) -> Raft {
        let mut config = Config::new(1, vec![1]);
        config.read_mode = read_mode;
        let mut raft = Raft::new(
            config,
            HardState::default(),
            RaftLog::recovered(0, 0, vec![]),
        )
        .expect("valid config");
        raft.persisted(raft.log().last_index());
        raft.ready();
        assert!(raft.is_leader());
        raft
    }

    #[test]
    fn a_lone_leader_answers_lease_reads() {
        let mut raft = lone_leader(ReadMode::Lease);
        raft.read_index(7).unwrap();
        let ready = raft.ready();
        assert_eq!(ready.reads.len(), 1, "{ready:?}");
        // Now inside its lease: the next read is ready without any round.
        raft.read_index(8).unwrap();
        assert_eq!(raft.ready().reads.len(), 1);
    }

    #[test]
    fn lease_reads_need_check_quorum() {
        let mut config = Config::new(1, vec![1, 2, 3]);
        config.read_mode = ReadMode::Lease;
        config.check_quorum = false;
        assert!(config.validate().unwrap_err().contains("check-quorum"));
    }

    #[test]
    fn the_lease_ends_before_the_minimum_election_timeout() {
        let config = Config::new(1, vec![1, 2, 3]);
        assert_eq!(
            config.lease_ticks(),
            config.election_timeout_min - config.lease_drift
        );
        let mut buggy = config.clone();
        buggy.bugs.lease_too_long = true;
        assert!(buggy.lease_ticks() > config.election_timeout_max);
    }
}
