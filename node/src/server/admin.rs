//! The admin requests of the client protocol ([`AdminOp`]): membership changes and leadership
//! transfer, carried out by the core and answered only once they are done; and the
//! `slow-apply` and `reorder` test hooks, answered at once.
//!
//! # When an answer comes
//!
//! - A **membership change** ([`Raft::propose_change_at`]) is answered `Admin(done)` once the
//!   configuration it led to is committed and no longer joint: for a change of voters that is
//!   the C_new the leader appends after C_old,new commits, two log round trips. The answer names
//!   the committed configuration. A leader that removed itself answers too: it steps down only
//!   once C_new is committed, which is exactly when its change is done.
//! - A **leadership transfer** ([`Raft::transfer_leadership`]) is answered once this node hears
//!   from the target as the leader of a newer term; `Fail(ChangeRefused)` if the core abandons
//!   it (the target did not lead within an election timeout: writes resume here).
//!
//! A refusal is definite (`Fail(ChangeRefused)`, nothing was appended: a change in flight, an
//! unknown node, a learner too far behind, a leader that has not committed in its term yet), and
//! a node that is not the leader answers `NotLeader` with a hint, as for writes. What is not
//! known is `Indeterminate`: the leader lost its leadership before the change committed (the
//! configuration entry may still commit under the next leader), another entry replaced it, or no
//! leader was heard of for [`PENDING_TICKS`] after a transfer.

use std::net::SocketAddr;

use super::executor::{response, Clients, Executor, Network, Storage};
use crate::protocol::{AdminDone, AdminOp, ClientResult, FailReason, MembershipStatus};
use crate::raft::{ChangeError, ConfChange, TransferError};
use crate::types::{Index, Membership, NodeId, Term};

/// A transfer still unresolved after this many ticks (10 s at the default 10 ms tick) is
/// answered `Indeterminate`: no leader has been heard of since.
pub const PENDING_TICKS: u64 = 1_000;

/// An admin request the core accepted, waiting for its outcome.
pub(super) struct PendingAdmin<R> {
    what: Awaited,
    request_id: u64,
    reply: R,
}

/// What a pending admin request waits for.
enum Awaited {
    /// The configuration entry appended at `index` in `term`, committed and not joint.
    Change { index: Index, term: Term },
    /// Transfer target `to` leading a term after `term`; `ticks` since it began.
    Transfer { to: NodeId, term: Term, ticks: u64 },
}

/// What became of a pending request, if anything yet.
enum Outcome {
    Waiting,
    Done,
    Refused(String),
    Unknown(String),
}

impl<S: Storage, N: Network, C: Clients> Executor<S, N, C> {
    /// An admin request: hands it to the core, and answers at once if the core refused it.
    pub(super) fn start_admin(&mut self, request_id: u64, op: AdminOp, reply: C::Reply) {
        let term = self.raft.term();
        if let AdminOp::SlowApply { delay_ms } = op {
            return self.slow_apply(request_id, delay_ms, reply);
        }
        if let AdminOp::Reorder { max_delay_ms, seed } = op {
            return self.reorder(request_id, max_delay_ms, seed, reply);
        }
        let started = match &op {
            AdminOp::TransferLeader { to } => match self.raft.transfer_leadership(*to) {
                Ok(()) => Ok(Awaited::Transfer {
                    to: *to,
                    term,
                    ticks: 0,
                }),
                Err(TransferError::NotLeader(not_leader)) => Err(self.hint(not_leader)),
                Err(other @ TransferError::InProgress(_)) => Err(refused(other.to_string(), true)),
                Err(other) => Err(refused(other.to_string(), false)),
            },
            _ => self
                .propose_admin(&op)
                .map(|index| Awaited::Change { index, term }),
        };
        match started {
            Ok(what) => {
                tracing::info!(op = %op.describe(), "admin request accepted");
                self.pending_admin.push(PendingAdmin {
                    what,
                    request_id,
                    reply,
                });
            }
            Err(result) => self.clients.answer(reply, response(request_id, result)),
        }
    }

    /// The change `op` asks for, proposed to the core: the index of its first configuration
    /// entry, or the answer that refuses it.
    fn propose_admin(&mut self, op: &AdminOp) -> Result<Index, ClientResult> {
        let (change, addr) = match op {
            AdminOp::AddLearner { id, addr } => (ConfChange::AddLearner(*id), Some(addr)),
            AdminOp::Promote { id } => (ConfChange::Promote(*id), None),
            AdminOp::Remove { id } => (ConfChange::Remove(*id), None),
            AdminOp::Replace { add, addr, remove } => (
                ConfChange::Replace {
                    add: *add,
                    remove: *remove,
                },
                addr.as_ref(),
            ),
            AdminOp::TransferLeader { .. }
            | AdminOp::SlowApply { .. }
            | AdminOp::Reorder { .. } => {
                let why = format!("{} is not a membership change", op.describe());
                return Err(refused(why, false));
            }
        };
        if let Some(addr) = addr {
            if addr.parse::<SocketAddr>().is_err() {
                let why = format!("`{addr}` is not an IP:PORT address; nothing changed");
                return Err(ClientResult::Fail(FailReason::BadRequest(why)));
            }
        }
        match self.raft.propose_change_at(change, addr.cloned()) {
            Ok(index) => Ok(index),
            Err(ChangeError::NotLeader(not_leader)) => Err(self.hint(not_leader)),
            Err(other) => {
                let retry = matches!(
                    other,
                    ChangeError::InFlight(_)
                        | ChangeError::NotReady
                        | ChangeError::Transferring
                        | ChangeError::LearnerBehind { .. }
                        | ChangeError::Silent(_)
                        | ChangeError::NoReachableQuorum { .. }
                );
                Err(refused(other.to_string(), retry))
            }
        }
    }

    /// Answers every pending admin request whose outcome is now known. Called after each
    /// Ready; cheap when nothing is pending.
    pub(super) fn settle_admin(&mut self) {
        if self.pending_admin.is_empty() {
            return;
        }
        for pending in std::mem::take(&mut self.pending_admin) {
            let outcome = match pending.what {
                Awaited::Change { index, term } => self.change_outcome(index, term),
                Awaited::Transfer { to, term, ticks } => self.transfer_outcome(to, term, ticks),
            };
            let result = match outcome {
                Outcome::Waiting => {
                    self.pending_admin.push(pending);
                    continue;
                }
                Outcome::Done => ClientResult::Admin(self.admin_done()),
                Outcome::Refused(why) => refused(why, true),
                Outcome::Unknown(reason) => ClientResult::Indeterminate { reason },
            };
            let answer = response(pending.request_id, result);
            self.clients.answer(pending.reply, answer);
        }
    }

    /// One tick for the pending transfers' clocks.
    pub(super) fn tick_admin(&mut self) {
        for pending in &mut self.pending_admin {
            if let Awaited::Transfer { ticks, .. } = &mut pending.what {
                *ticks += 1;
            }
        }
    }

    /// A change is done once its entry (still the one appended: same term) is committed and
    /// the committed configuration is not joint: a change of voters has reached C_new.
    fn change_outcome(&self, index: Index, term: Term) -> Outcome {
        let log = self.raft.log();
        let commit = log.commit_index();
        match log.term_at(index) {
            Some(t) if t != term => {
                return Outcome::Unknown(format!(
                    "the configuration entry at index {index} was replaced by one of term {t}"
                ))
            }
            // Compacted: only committed entries are.
            None if index > log.offset().0 => {
                return Outcome::Unknown(format!("the log no longer holds index {index}"))
            }
            _ => {}
        }
        if commit >= index && !self.raft.membership_at(commit).is_joint() {
            return Outcome::Done;
        }
        if !self.raft.is_leader() || self.raft.term() != term {
            return Outcome::Unknown(format!(
                "the leader lost its leadership (now term {}) before the change committed; it \
                 may still commit under the next leader",
                self.raft.term()
            ));
        }
        Outcome::Waiting
    }

    /// A transfer is done once the target leads a newer term; refused once the core gave it up
    /// while this node still leads.
    fn transfer_outcome(&self, to: NodeId, term: Term, ticks: u64) -> Outcome {
        let raft = &self.raft;
        if raft.term() > term && raft.leader() == Some(to) {
            return Outcome::Done;
        }
        if raft.is_leader() && raft.term() == term && raft.transfer_target() != Some(to) {
            return Outcome::Refused(format!(
                "node {to} did not take over within an election timeout; the transfer was \
                 abandoned and this leader takes writes again"
            ));
        }
        if let Some(other) = raft.leader().filter(|&l| l != to && raft.term() > term) {
            return Outcome::Unknown(format!("node {other} leads now, not {to}"));
        }
        if ticks >= PENDING_TICKS {
            return Outcome::Unknown(format!("no leader heard of for {ticks} ticks"));
        }
        Outcome::Waiting
    }

    /// The slow-apply hook: sets the core's apply delay, rounded up to whole ticks, and answers
    /// at once.
    fn slow_apply(&mut self, request_id: u64, delay_ms: u64, reply: C::Reply) {
        let ticks = delay_ms.div_ceil(self.tick_ms.max(1));
        self.raft.set_apply_delay(ticks);
        tracing::info!(
            delay_ms,
            ticks,
            "slow-apply: committed entries wait before they apply"
        );
        let done = ClientResult::Admin(self.admin_done());
        self.clients.answer(reply, response(request_id, done));
    }

    /// The reorder hook of the transport ([`super::reorder`]): set, and answered at once; a
    /// definite refusal where there is none (the simulation's network).
    fn reorder(&mut self, request_id: u64, max_delay_ms: u64, seed: u64, reply: C::Reply) {
        let Some(hook) = &self.reorder else {
            let why = "this node's network has no reorder hook".to_string();
            return self
                .clients
                .answer(reply, response(request_id, refused(why, false)));
        };
        hook.set(max_delay_ms, seed);
        tracing::info!(
            max_delay_ms,
            seed,
            "reorder: peer messages are held back and sent twice at random"
        );
        let done = ClientResult::Admin(self.admin_done());
        self.clients.answer(reply, response(request_id, done));
    }

    /// The answer to a completed request: the committed configuration and the leader.
    fn admin_done(&self) -> AdminDone {
        let commit = self.raft.log().commit_index();
        AdminDone {
            membership: membership_status(&self.raft.membership_at(commit), false),
            leader: self.raft.leader(),
        }
    }
}

/// The protocol's view of a configuration.
pub(super) fn membership_status(m: &Membership, changing: bool) -> MembershipStatus {
    MembershipStatus {
        voters: m.voters.clone(),
        learners: m.learners.clone(),
        outgoing: m.outgoing.clone(),
        addresses: m.addresses.clone(),
        changing,
    }
}

fn refused(reason: String, retry: bool) -> ClientResult {
    ClientResult::Fail(FailReason::ChangeRefused { reason, retry })
}
