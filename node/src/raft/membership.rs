//! Membership changes by joint consensus (Raft paper §6), and the quorum arithmetic every
//! decision of the core goes through.
//!
//! # Configurations live in the log
//!
//! A configuration ([`Membership`]) is an entry of the log ([`Payload::Config`]). It takes effect
//! on a node as soon as the node *appends* it, committed or not (§6): a leader counts the new
//! configuration's majorities from the moment it writes the entry, a follower from the moment it
//! stores it. A follower that truncates a conflicting suffix holding a configuration falls back to
//! the configuration before it. [`ConfigLog`] keeps the configuration as of the log's first entry
//! (the snapshot's, or the command line's on a fresh node) and every configuration entry after
//! it; the newest is the one in force. A restart rebuilds it from the snapshot and the log, and a
//! snapshot carries the configuration as of its last index.
//!
//! A configuration also carries its members' addresses ([`Membership::addresses`], opaque to the
//! core), so that a node added at runtime can be reached by every member, a later leader too.
//! Each derived configuration (a change, C_old,new, the C_new after it) keeps the addresses of
//! the members that remain and drops those of nodes that leave.
//!
//! # Joint consensus
//!
//! A change of voters from C_old to C_new goes through the joint configuration C_old,new
//! (`voters` = C_new, `outgoing` = C_old). While it is in force, every decision needs a majority
//! of C_new *and* a majority of C_old: committing an index, winning an election (votes and
//! pre-votes), check-quorum and confirming a ReadIndex round (and so a lease). Once C_old,new is
//! committed, the leader appends C_new itself; once C_new is committed, a leader that is not in
//! it steps down (until then it keeps replicating, counting itself only in C_old). No two
//! majorities of the configurations a cluster can be in at once are disjoint, so no two leaders
//! can be elected in one term and no committed entry is lost: a node that decides in C_old,new
//! needs C_old's majority, which any C_old-only decision also needs.
//!
//! Adding or removing a *learner* changes no majority, so it is a simple change: the new
//! configuration directly, no joint phase. A leader accepts a change only once it has committed
//! an entry of its own term (which also means every earlier configuration entry is committed)
//! and only when no other change is in flight (the newest configuration entry is committed and
//! not joint).
//!
//! # Quorums without allocation
//!
//! [`Raft::quorum_value`] gives, for any per-voter value (a match index, an echoed read round, a
//! 0/1 "heard from"), the largest value that a majority of every configuration in force has
//! reached. It scans the voter lists in place (a majority's value is the largest value `v` that
//! at least a majority of voters have reached, found in O(n²) over the handful of voters) so the
//! commit and read paths allocate and sort nothing per acknowledgement.

use super::log::RaftLog;
use super::node::Raft;
use crate::types::{Entry, Index, Membership, NodeId, Payload, Term};

/// The configurations a node's log holds: the one in force at the log's offset, and each
/// configuration entry after it, oldest first.
#[derive(Clone, Debug)]
pub(super) struct ConfigLog {
    base: Membership,
    entries: Vec<(Index, Term, Membership)>,
}

impl ConfigLog {
    /// The configurations of `log`, which starts after a snapshot with configuration `base` (or
    /// at the beginning, with the initial configuration).
    pub fn new(base: Membership, log: &RaftLog) -> ConfigLog {
        let mut configs = ConfigLog {
            base,
            entries: Vec::new(),
        };
        let entries = log.slice(log.first_index(), log.last_index() + 1);
        configs.sync(log, &entries);
        configs
    }

    /// The configuration in force: the newest in the log.
    pub fn current(&self) -> &Membership {
        self.entries.last().map_or(&self.base, |(_, _, m)| m)
    }

    /// The index of the newest configuration entry (0 if the configuration predates the log).
    pub fn current_index(&self) -> Index {
        self.entries.last().map_or(0, |(index, _, _)| *index)
    }

    /// The configuration in force at `index` (at or after the log's offset).
    pub fn at(&self, index: Index) -> &Membership {
        self.entries
            .iter()
            .rev()
            .find(|(i, _, _)| *i <= index)
            .map_or(&self.base, |(_, _, m)| m)
    }

    /// Brings the list in line with `log` after entries were appended or truncated: forgets the
    /// configuration entries the log no longer holds (a truncated suffix), then adds those among
    /// `appended` that it holds. Returns whether the configuration in force changed.
    pub fn sync(&mut self, log: &RaftLog, appended: &[Entry]) -> bool {
        let before = self.current().clone();
        self.entries
            .retain(|(index, term, _)| log.term_at(*index) == Some(*term));
        for entry in appended {
            let Payload::Config(m) = &entry.payload else {
                continue;
            };
            let known = self
                .entries
                .last()
                .is_some_and(|(i, _, _)| *i >= entry.index);
            if !known && log.term_at(entry.index) == Some(entry.term) {
                self.entries.push((entry.index, entry.term, m.clone()));
            }
        }
        *self.current() != before
    }

    /// The log was compacted up to `offset`: the configurations at or before it fold into the
    /// base.
    pub fn compact(&mut self, offset: Index) {
        let keep = self.entries.partition_point(|(i, _, _)| *i <= offset);
        if keep > 0 {
            self.base = self.entries[keep - 1].2.clone();
            self.entries.drain(..keep);
        }
    }

    /// A snapshot with configuration `base` was installed; the log now starts after it.
    pub fn restore(&mut self, base: Membership, log: &RaftLog) {
        let offset = log.offset().0;
        self.entries.retain(|(index, _, _)| *index > offset);
        self.base = base;
        self.sync(log, &[]);
    }
}

/// Votes for a strict majority of `n` voters (with the quorum-off-by-one bug, n/2).
pub(super) fn majority(n: usize, off_by_one: bool) -> usize {
    match off_by_one {
        true => (n / 2).max(1),
        false => n / 2 + 1,
    }
}

/// The largest value that at least `q` of `voters` have reached (0 if there are fewer than `q`
/// voters). No allocation, no sort: O(n²) comparisons over a handful of voters.
fn kth_largest(voters: &[NodeId], q: usize, value: &impl Fn(NodeId) -> u64) -> u64 {
    let mut best = 0;
    for &a in voters {
        let v = value(a);
        if v > best && voters.iter().filter(|&&b| value(b) >= v).count() >= q {
            best = v;
        }
    }
    best
}

/// How an election stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum VoteOutcome {
    Won,
    Lost,
    Pending,
}

impl Raft {
    /// The configuration in force (the newest in the log).
    pub fn membership(&self) -> &Membership {
        self.configs.current()
    }

    /// The configuration in force at `index` (at or after the log's offset): what a snapshot
    /// taken at `index` must carry.
    pub fn membership_at(&self, index: Index) -> Membership {
        self.configs.at(index).clone()
    }

    /// Is a membership change in flight: the newest configuration entry not yet committed, or
    /// a joint configuration in force?
    pub fn change_in_flight(&self) -> bool {
        self.configs.current_index() > self.log.commit_index() || self.membership().is_joint()
    }

    /// The configurations whose majorities a decision needs: C_new, and in the joint state C_old
    /// (unless the joint-one-majority bug counts C_new alone).
    fn deciding_configs(&self) -> [&[NodeId]; 2] {
        let m = self.configs.current();
        let outgoing: &[NodeId] = match self.config.bugs.joint_one_majority {
            true => &[],
            false => &m.outgoing,
        };
        [&m.voters, outgoing]
    }

    /// The largest value a majority of every configuration in force has reached, `value` giving
    /// each voter's (the leader's own included). An empty configuration constrains nothing.
    pub(super) fn quorum_value(&self, value: impl Fn(NodeId) -> u64) -> u64 {
        let off_by_one = self.config.bugs.quorum_off_by_one;
        self.deciding_configs()
            .iter()
            .filter(|voters| !voters.is_empty())
            .map(|voters| kth_largest(voters, majority(voters.len(), off_by_one), &value))
            .min()
            .unwrap_or(0)
    }

    /// An election is won with a majority of grants in every configuration in force, lost with a
    /// majority of refusals in any of them.
    pub(super) fn vote_outcome(
        &self,
        granted: impl Fn(NodeId) -> bool,
        rejected: impl Fn(NodeId) -> bool,
    ) -> VoteOutcome {
        let off_by_one = self.config.bugs.quorum_off_by_one;
        let mut won = true;
        for voters in self.deciding_configs() {
            if voters.is_empty() {
                continue;
            }
            let q = majority(voters.len(), off_by_one);
            if voters.iter().filter(|&&id| rejected(id)).count() >= q {
                return VoteOutcome::Lost;
            }
            won &= voters.iter().filter(|&&id| granted(id)).count() >= q;
        }
        match won {
            true => VoteOutcome::Won,
            false => VoteOutcome::Pending,
        }
    }

    /// Is this node the only voter (its own majority)?
    pub(super) fn lone_voter(&self) -> bool {
        let m = self.configs.current();
        let me = self.config.id;
        m.voters == [me] && (m.outgoing.is_empty() || m.outgoing == [me])
    }

    /// May this node campaign? Only a voter of the configuration in force.
    pub(super) fn promotable(&self) -> bool {
        self.configs.current().is_voter(self.config.id)
    }

    /// After entries were appended or truncated: track the configurations the log now holds,
    /// and on a leader start or stop replicating to the members that came or went.
    pub(super) fn sync_configs(&mut self, appended: &[Entry]) {
        if self.configs.sync(&self.log, appended) {
            tracing::info!(membership = %self.membership(), "configuration changed");
            self.membership_changed();
        }
    }

    /// Appends a configuration entry on the leader; it is in force at once.
    pub(super) fn append_config(&mut self, membership: Membership) -> Index {
        let index = self.log.append(self.term, Payload::Config(membership));
        let entry = self.log.get(index).cloned().expect("just appended");
        self.sync_configs(std::slice::from_ref(&entry));
        index
    }

    /// The leader's commit index moved: once C_old,new is committed, append C_new; once a
    /// configuration without this leader among its voters is committed, step down.
    pub(super) fn after_commit(&mut self) {
        if !self.is_leader() || self.configs.current_index() > self.log.commit_index() {
            return;
        }
        let m = self.configs.current().clone();
        if m.is_joint() {
            let mut next = Membership {
                outgoing: Vec::new(),
                ..m
            };
            // The voters of C_old that are not in C_new leave, and their addresses with them.
            next.retain_member_addresses();
            let index = self.append_config(next);
            tracing::info!(
                index,
                "joint configuration committed; appending the new one"
            );
        } else if !m.is_voter(self.config.id) {
            tracing::info!(
                term = self.term,
                membership = %m,
                "the committed configuration leaves this leader out; stepping down"
            );
            self.become_follower(self.term, None);
        }
    }
}

impl Raft {
    /// The configuration in force changed: a leader starts replicating to new members and
    /// forgets the progress of members that left (and a transfer to one of them).
    fn membership_changed(&mut self) {
        let members = self.configs.current().members();
        let me = self.config.id;
        // From the newest entry (the configuration that added them) on: it goes out at once,
        // and a probe finds where their logs agree.
        let next = self.log.last_index().max(1);
        if let super::node::RoleState::Leader(leader) = &mut self.role {
            leader.progress.retain(|id, _| members.contains(id));
            for &id in members.iter().filter(|&&id| id != me) {
                leader
                    .progress
                    .entry(id)
                    .or_insert_with(|| super::progress::Progress::new(next));
            }
            if leader
                .transfer
                .as_ref()
                .is_some_and(|t| !self.configs.current().voters.contains(&t.target))
            {
                leader.transfer = None;
            }
        }
    }
}
