//! The Raft state machine: one struct, driven by [`Raft::step`], [`Raft::tick`],
//! [`Raft::propose`] and [`Raft::read_index`], drained by [`Raft::ready`].
//!
//! Elections live in `election.rs`, replication in `replication.rs`; this file holds the state,
//! the term gate and the role transitions (`become_*`), which do all of a transition's bookkeeping
//! in one place.

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::apply_delay::ApplyDelay;
use super::config::Config;
use super::lease::Lease;
use super::log::RaftLog;
use super::membership::ConfigLog;
use super::message::{AppendResult, Body, Message};
use super::progress::Progress;
use super::read_index::{ReadId, ReadQueue, ReadState};
use super::snapshot::{Chunk, Incoming, InstallRequest, SnapshotChunk, SnapshotImage};
use super::transfer::LeaderTransfer;
use crate::protocol::Role;
use crate::types::{HardState, Index, NodeId, Payload, Term};

pub use super::ready::{NotLeader, Ready};

/// Per-role state. Only the leader keeps much.
#[derive(Debug)]
pub(super) enum RoleState {
    Follower,
    PreCandidate {
        granted: BTreeSet<NodeId>,
        rejected: BTreeSet<NodeId>,
    },
    Candidate {
        granted: BTreeSet<NodeId>,
        rejected: BTreeSet<NodeId>,
    },
    Leader(Box<LeaderState>),
}

#[derive(Debug)]
pub(super) struct LeaderState {
    pub progress: BTreeMap<NodeId, Progress>,
    /// Index of the no-op this leader appended; committing it means committing in our own term.
    pub term_start: Index,
    pub reads: ReadQueue,
    pub lease: Lease,
    /// A leadership transfer in progress (thesis §3.10), see [`super::transfer`].
    pub transfer: Option<LeaderTransfer>,
}

/// A Raft node's consensus state. Pure: no I/O, no clock, no threads.
pub struct Raft {
    pub(super) config: Config,
    pub(super) term: Term,
    pub(super) voted_for: Option<NodeId>,
    pub(super) leader: Option<NodeId>,
    pub(super) role: RoleState,
    pub(super) log: RaftLog,
    /// The configurations the log holds; the newest is in force (see [`super::membership`]).
    pub(super) configs: ConfigLog,
    /// Ticks since the last heard-from-leader / vote grant (followers, candidates), or since the
    /// last check-quorum round (leaders).
    pub(super) election_elapsed: u32,
    pub(super) election_timeout: u32,
    pub(super) heartbeat_elapsed: u32,
    /// Ticks since boot (the lease clock).
    pub(super) clock: u64,
    /// Committed entries the state machine may still take before the next tick (with
    /// [`Config::apply_per_tick`]).
    pub(super) apply_budget: u32,
    /// The slow-apply fault's delay between commit and apply ([`super::apply_delay`]).
    pub(super) apply_delay: ApplyDelay,
    rng: ChaCha8Rng,
    hard_state_dirty: bool,
    pub(super) outbox: Vec<Message>,
    pub(super) reads_ready: Vec<ReadState>,
    pub(super) reads_failed: Vec<ReadId>,
    /// The newest snapshot taken or installed: what the leader sends to followers.
    pub(super) snapshot: Option<SnapshotImage>,
    pub(super) snapshots_sent: u64,
    /// The snapshot being received from the leader.
    pub(super) incoming: Option<Incoming>,
    pub(super) snapshot_chunks: Vec<SnapshotChunk>,
    pub(super) install: Option<InstallRequest>,
    /// Set when a leader replaced committed entries (see [`SafetyViolation`]): from then on
    /// nothing more is applied, until the node restarts.
    pub(super) violation: Option<SafetyViolation>,
}

pub use super::violation::SafetyViolation;

impl Raft {
    /// A node starting fresh (or restarting without a snapshot) from its durable state: the
    /// configuration is the initial one (`config.voters`) and the configuration entries of `log`.
    pub fn new(config: Config, hard_state: HardState, log: RaftLog) -> Result<Raft, String> {
        Raft::recover(config, hard_state, log, None)
    }

    /// A node restarting from its durable state: `log` follows `snapshot` (if any). The
    /// configuration in force is rebuilt from the snapshot's (or, without one, the initial
    /// `config.voters`) and the configuration entries of the log.
    pub fn recover(
        config: Config,
        hard_state: HardState,
        log: RaftLog,
        snapshot: Option<SnapshotImage>,
    ) -> Result<Raft, String> {
        config.validate_tunables()?;
        let base = snapshot
            .as_ref()
            .map(|s| s.meta.membership())
            .filter(|m| !m.voters.is_empty())
            .unwrap_or_else(|| config.initial_membership());
        let configs = ConfigLog::new(base, &log);
        let rng =
            ChaCha8Rng::seed_from_u64(config.seed ^ config.id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut raft = Raft {
            term: hard_state.term,
            // The forget-vote bug: the term comes back, the vote does not.
            voted_for: hard_state.voted_for.filter(|_| !config.bugs.forget_vote),
            leader: None,
            role: RoleState::Follower,
            log,
            configs,
            election_elapsed: 0,
            election_timeout: 0,
            heartbeat_elapsed: 0,
            clock: 0,
            apply_budget: 0,
            apply_delay: ApplyDelay::default(),
            rng,
            hard_state_dirty: false,
            outbox: Vec::new(),
            reads_ready: Vec::new(),
            reads_failed: Vec::new(),
            snapshot,
            snapshots_sent: 0,
            incoming: None,
            snapshot_chunks: Vec::new(),
            install: None,
            violation: None,
            config,
        };
        raft.reset_election_timer();
        // A lone voter needs nobody's permission.
        if raft.lone_voter() {
            raft.campaign(false);
        }
        Ok(raft)
    }

    // ---- accessors -----------------------------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.config.id
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// The safety violation this node saw, if any (then it applies nothing more).
    pub fn safety_violation(&self) -> Option<SafetyViolation> {
        self.violation
    }
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate { .. } => Role::PreCandidate,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }
    pub fn is_leader(&self) -> bool {
        matches!(self.role, RoleState::Leader(_))
    }
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            voted_for: self.voted_for,
        }
    }

    // ---- inputs --------------------------------------------------------------------------------

    /// Starts an election now, as if the election timeout had fired (honours pre-vote). For
    /// scripted tests and operators; a leader ignores it.
    pub fn campaign_now(&mut self) {
        if !self.is_leader() && self.promotable() {
            self.campaign(self.config.pre_vote);
        }
    }

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        self.clock += 1;
        if let Some(n) = self.config.apply_per_tick {
            self.apply_budget = n;
        }
        if self.is_leader() {
            self.tick_leader();
        } else {
            self.election_elapsed += 1;
            // A learner, or a node the configuration left out, never campaigns.
            if self.election_elapsed >= self.election_timeout && self.promotable() {
                self.campaign(self.config.pre_vote);
            }
        }
    }

    fn tick_leader(&mut self) {
        self.tick_transfer();
        self.heartbeat_elapsed += 1;
        if self.heartbeat_elapsed >= self.config.heartbeat_interval {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
        self.election_elapsed += 1;
        if self.config.check_quorum && self.election_elapsed >= self.config.election_timeout_min {
            self.election_elapsed = 0;
            if !self.quorum_active() {
                tracing::warn!(
                    term = self.term,
                    "leader lost contact with a majority; stepping down"
                );
                self.become_follower(self.term, None);
            }
        }
    }

    /// Processes one message from a peer. Messages from nodes outside the configuration are
    /// processed too (a leader this node does not know yet may be catching it up); only voters'
    /// votes count, and only members are replicated to.
    pub fn step(&mut self, msg: Message) {
        if msg.to != self.config.id || msg.from == msg.to {
            tracing::warn!(
                from = msg.from,
                to = msg.to,
                "dropping a message not meant for this node"
            );
            return;
        }
        if super::violation::term_out_of_range(msg.from, msg.term) || !self.term_gate(&msg) {
            return;
        }
        match msg.body {
            Body::RequestVote {
                last_log_index,
                last_log_term,
                pre_vote,
                ..
            } => self.handle_vote_request(
                msg.from,
                msg.term,
                last_log_index,
                last_log_term,
                pre_vote,
            ),
            Body::TimeoutNow => self.handle_timeout_now(msg.from),
            Body::RequestVoteResponse { granted, pre_vote } => {
                self.handle_vote_response(msg.from, msg.term, granted, pre_vote)
            }
            Body::AppendEntries {
                prev_index,
                prev_term,
                entries,
                commit,
                read_round,
            } => self.handle_append(msg.from, prev_index, prev_term, entries, commit, read_round),
            Body::AppendEntriesResponse { result, read_round } => {
                self.handle_append_response(msg.from, result, read_round)
            }
            Body::InstallSnapshot {
                meta,
                offset,
                data,
                total_len,
                checksum,
                read_round,
            } => {
                let chunk = Chunk {
                    meta,
                    offset,
                    data,
                    total_len,
                    checksum,
                    read_round,
                };
                self.handle_install_snapshot(msg.from, chunk)
            }
            Body::InstallSnapshotResponse {
                snapshot_index,
                result,
                read_round,
            } => self.handle_snapshot_response(msg.from, snapshot_index, result, read_round),
        }
    }

    /// The term gate: the one place where terms are compared. A newer term makes this node a
    /// follower (except for pre-votes, which change nobody's term); an older one is refused.
    /// Returns whether the message goes on to its handler.
    fn term_gate(&mut self, msg: &Message) -> bool {
        super::violation::note_absurd_term(msg.from, msg.term, self.term);
        if msg.term > self.term {
            // A candidate of a leadership transfer was sent by the leader itself: the lease
            // that protects that leader does not hold it off (thesis §3.10).
            let is_vote_request = matches!(
                msg.body,
                Body::RequestVote {
                    leader_transfer: false,
                    ..
                }
            );
            if is_vote_request && self.in_lease() {
                tracing::debug!(
                    from = msg.from,
                    term = msg.term,
                    "ignoring a vote request: a live leader was heard from recently"
                );
                return false;
            }
            match msg.body {
                // Pre-votes never change anyone's term.
                Body::RequestVote { pre_vote: true, .. } => {}
                Body::RequestVoteResponse {
                    pre_vote: true,
                    granted: true,
                } => {}
                Body::AppendEntries { .. } | Body::InstallSnapshot { .. } => {
                    self.become_follower(msg.term, Some(msg.from))
                }
                _ => self.become_follower(msg.term, None),
            }
        } else if msg.term < self.term {
            self.reject_stale(msg);
            return false;
        }
        true
    }

    /// A message from an older term. Most are dropped; an AppendEntries or pre-vote gets an answer
    /// carrying our term, so that a deposed leader or a lagging pre-candidate learns it is behind
    /// (without this, a stale leader behind a healed partition could wait forever).
    fn reject_stale(&mut self, msg: &Message) {
        tracing::debug!(
            from = msg.from,
            msg_term = msg.term,
            kind = msg.body.kind(),
            "dropping a stale-term message"
        );
        let body = match &msg.body {
            &Body::AppendEntries {
                prev_index,
                read_round,
                ..
            } => Body::AppendEntriesResponse {
                result: AppendResult::Reject {
                    rejected_prev: prev_index,
                    conflict_term: None,
                    conflict_index: 0,
                },
                read_round,
            },
            Body::InstallSnapshot {
                meta, read_round, ..
            } => Body::InstallSnapshotResponse {
                snapshot_index: meta.last_index,
                result: super::message::SnapshotResult::Continue { next_offset: 0 },
                read_round: *read_round,
            },
            Body::RequestVote { pre_vote: true, .. } => Body::RequestVoteResponse {
                granted: false,
                pre_vote: true,
            },
            _ => return,
        };
        self.send(msg.from, body);
    }

    /// Appends a command if this node is the leader. Returns the index it will commit at, if ever;
    /// the server matches the applied entry at that index (and this term) to the client.
    pub fn propose(&mut self, command: Vec<u8>) -> Result<(Index, Term), NotLeader> {
        if !self.is_leader() {
            return Err(NotLeader {
                leader_hint: self.leader,
            });
        }
        // During a leadership transfer, proposals are refused, naming the new leader to be.
        if let Some(target) = self.transfer_target() {
            return Err(NotLeader {
                leader_hint: Some(target),
            });
        }
        let index = self.log.append(self.term, Payload::Command(command));
        Ok((index, self.term))
    }

    /// Starts a linearizable read. The read comes back in [`Ready::reads`] with the index the state
    /// machine must reach before answering, or in [`Ready::failed_reads`] if leadership is lost.
    pub fn read_index(&mut self, id: ReadId) -> Result<(), NotLeader> {
        // The read-index-early bug takes the commit index of a leader that may be behind.
        let committed_own_term = self.committed_own_term() || self.config.bugs.read_index_early;
        let commit = self.log.commit_index();
        let RoleState::Leader(leader) = &mut self.role else {
            return Err(NotLeader {
                leader_hint: self.leader,
            });
        };
        if self.config.read_mode == super::config::ReadMode::Lease {
            self.lease_read(id);
            return Ok(());
        }
        leader
            .reads
            .register(id, committed_own_term.then_some(commit));
        self.maybe_start_read_round();
        Ok(())
    }

    /// The storage has made every entry up to `index` durable.
    pub fn persisted(&mut self, index: Index) {
        self.log.persisted_to(index);
        if self.is_leader() {
            self.maybe_commit();
        }
    }

    /// Collects the work produced since the last call. See [`Ready`] for the order to do it in.
    pub fn ready(&mut self) -> Ready {
        if self.is_leader() {
            self.decide_lease_reads();
            self.replicate_to_all();
        }
        let hard_state = std::mem::take(&mut self.hard_state_dirty).then(|| self.hard_state());
        Ready {
            hard_state,
            entries: self.log.take_unpersisted(),
            messages: self.take_current_messages(),
            committed: self.take_committed(),
            snapshot_chunks: std::mem::take(&mut self.snapshot_chunks),
            install: self.install.take(),
            reads: std::mem::take(&mut self.reads_ready),
            failed_reads: std::mem::take(&mut self.reads_failed),
        }
    }

    /// The outbox, less messages from a term older than the current one (see [`Ready`]). A
    /// dropped message is a lost message, which Raft tolerates; a stale promise is not.
    fn take_current_messages(&mut self) -> Vec<Message> {
        let term = self.term;
        let mut messages = std::mem::take(&mut self.outbox);
        messages.retain(|m| m.term >= term);
        messages
    }

    // ---- shared helpers -------------------------------------------------------------------------

    /// An AppendEntries or InstallSnapshot from `from`, in our term: `from` is the leader. A
    /// (pre-)candidate gives up; a leader refuses (two leaders in one term can only come from a
    /// bug) and gets `false`.
    pub(super) fn heard_from_leader(&mut self, from: NodeId) -> bool {
        match self.role {
            RoleState::Leader(_) => {
                tracing::error!(
                    term = self.term,
                    other = from,
                    "two leaders in one term: refusing its messages"
                );
                return false;
            }
            RoleState::PreCandidate { .. } | RoleState::Candidate { .. } => {
                self.become_follower(self.term, Some(from))
            }
            RoleState::Follower => {}
        }
        self.leader = Some(from);
        self.election_elapsed = 0;
        true
    }

    pub(super) fn send(&mut self, to: NodeId, body: Body) {
        self.outbox.push(Message {
            from: self.config.id,
            to,
            term: self.term,
            body,
        });
    }

    /// Every member but this node (voters and learners): whom a leader replicates to.
    pub(super) fn peers(&self) -> Vec<NodeId> {
        let me = self.config.id;
        let mut peers = self.membership().members();
        peers.retain(|&id| id != me);
        peers
    }

    pub(super) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        let range = self.config.election_timeout_min..self.config.election_timeout_max;
        self.election_timeout = self.rng.gen_range(range);
        if self.config.bugs.fixed_election_timeout {
            // The bug: the draw is ignored, every node waits the same.
            self.election_timeout = self.config.election_timeout_min;
        }
    }

    pub(super) fn committed_own_term(&self) -> bool {
        match &self.role {
            RoleState::Leader(leader) => self.log.commit_index() >= leader.term_start,
            _ => false,
        }
    }

    pub(super) fn set_term(&mut self, term: Term, voted_for: Option<NodeId>) {
        if (term, voted_for) != (self.term, self.voted_for) {
            self.term = term;
            self.voted_for = voted_for;
            self.hard_state_dirty = true;
        }
    }

    // ---- role transitions -----------------------------------------------------------------------

    /// Becomes a follower in `term` (a newer term forgets the vote). Pending reads fail.
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.set_term(term, None);
        }
        if let RoleState::Leader(state) = &mut self.role {
            let failed = state.reads.drain();
            self.reads_failed.extend(failed);
            let failed = Raft::drain_lease_reads(&mut state.lease);
            self.reads_failed.extend(failed);
        }
        if !matches!(self.role, RoleState::Follower) || self.leader != leader {
            tracing::info!(term = self.term, leader = ?leader, "became follower");
        }
        self.role = RoleState::Follower;
        self.leader = leader;
        self.reset_election_timer();
    }

    /// Becomes the leader of the current term: fresh progress for every follower and a no-op entry
    /// so that it can commit (and serve reads) in its own term.
    pub(super) fn become_leader(&mut self) {
        let next = self.log.last_index() + 1;
        let progress = self
            .peers()
            .into_iter()
            .map(|id| (id, Progress::new(next)))
            .collect();
        let term_start = self.log.append(self.term, Payload::Noop);
        tracing::info!(term = self.term, term_start, "became leader");
        self.role = RoleState::Leader(Box::new(LeaderState {
            progress,
            term_start,
            reads: ReadQueue::default(),
            lease: Lease::default(),
            transfer: None,
        }));
        self.leader = Some(self.config.id);
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.broadcast_heartbeat();
        self.maybe_commit();
    }

    pub(super) fn become_candidate(&mut self, pre_vote: bool) {
        let me = self.config.id;
        let granted = BTreeSet::from([me]);
        let rejected = BTreeSet::new();
        self.leader = None;
        if pre_vote {
            self.role = RoleState::PreCandidate { granted, rejected };
        } else {
            self.set_term(self.term + 1, Some(me));
            self.role = RoleState::Candidate { granted, rejected };
        }
        self.reset_election_timer();
        tracing::info!(term = self.term, pre_vote, "campaigning");
    }
}
