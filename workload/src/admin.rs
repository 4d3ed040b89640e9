//! Admin requests from a client: membership changes and leadership transfer ([`AdminOp`]).
//!
//! An admin request goes to the leader, following `NotLeader` hints (to a member the client did
//! not know of, too: the hint carries its address), and is answered once the change is done. It
//! is never retried after an unknown outcome: a configuration change is not idempotent the way
//! a session's write is (a retried "add learner 4" that finds 4 a member is refused, which would
//! hide that the first try took effect). The caller reads the cluster's status instead.

use riptide_proto::{AdminDone, AdminOp, ClientOp, ClientResult, FailReason, NodeId};
use tokio::time::Instant;

use crate::client::{describe_fail, Attempt, Client, MAX_HOPS, NO_LEADER_PAUSE};

/// What became of an admin request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AdminOutcome {
    /// Done: the configuration now committed, and the leader.
    Done(AdminDone),
    /// Definitely not done (refused by the leader, or no leader reachable): nothing changed.
    /// `retry`: the same request may succeed shortly (see `FailReason::ChangeRefused`).
    Refused { reason: String, retry: bool },
    /// May or may not take effect (the leader lost its leadership, the answer was lost).
    Unknown(String),
}

impl Client {
    /// Sends `op` to the leader and waits for its outcome, within the client's op timeout.
    pub async fn admin(&mut self, op: AdminOp) -> AdminOutcome {
        let deadline = Instant::now() + self.op_timeout();
        let mut target = self.leader().unwrap_or(self.home());
        let mut last_error = String::from("no node tried");
        for _ in 0..MAX_HOPS {
            if Instant::now() >= deadline {
                break;
            }
            let attempt = self
                .attempt(target, ClientOp::Admin(op.clone()), 0, deadline)
                .await;
            match attempt {
                Attempt::Answer(ClientResult::NotLeader { leader_hint }) => {
                    last_error = format!("node {target} is not the leader");
                    target = self.follow_hint(target, leader_hint, deadline).await;
                }
                Attempt::NotSent(err) => {
                    last_error = err;
                    target = self.next_node(target);
                    tokio::time::sleep_until(deadline.min(Instant::now() + NO_LEADER_PAUSE)).await;
                }
                other => return outcome_of(other, target),
            }
        }
        let reason = format!("no leader took the request ({last_error})");
        AdminOutcome::Refused {
            reason,
            retry: true,
        }
    }

    /// Sends `op` to node `at` alone, never following a hint elsewhere, until `deadline`: a
    /// refusal the node marks retryable is retried every 50 ms while a try still fits before the
    /// deadline (then that refusal is the answer); a node that is not the leader,
    /// or cannot be reached, is a definite refusal. For a fault that must ask one particular
    /// leader (the nemesis's `stranded` change), not whoever leads by the time it answers.
    pub async fn admin_at(&mut self, at: NodeId, op: AdminOp, deadline: Instant) -> AdminOutcome {
        loop {
            let attempt = self
                .attempt(at, ClientOp::Admin(op.clone()), 0, deadline)
                .await;
            let outcome = outcome_of(attempt, at);
            match &outcome {
                // No time left for another try: the refusal is the answer (a try cut off by the
                // deadline would only say "unknown").
                AdminOutcome::Refused { retry: true, .. }
                    if Instant::now() + RETRY_PAUSE < deadline =>
                {
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                _ => return outcome,
            }
        }
    }

    /// [`Client::admin`] until the request is done, definitely refused, or unknown: a refusal
    /// the leader marks retryable (a learner still catching up, another change in flight, a
    /// leader new to its term, no leader yet) is retried every 100 ms while a try still fits
    /// before `deadline` (then that refusal is the answer).
    pub async fn admin_until(&mut self, op: AdminOp, deadline: Instant) -> AdminOutcome {
        loop {
            let outcome = self.admin(op.clone()).await;
            match &outcome {
                AdminOutcome::Refused { retry: true, .. }
                    if Instant::now() + 2 * RETRY_PAUSE < deadline =>
                {
                    tokio::time::sleep(2 * RETRY_PAUSE).await;
                }
                _ => return outcome,
            }
        }
    }
}

/// The pause between tries of a refusal the node marks retryable.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

/// What one attempt at node `at` says of an admin request, with no hint followed: not the
/// leader, or not sent, is a definite refusal.
fn outcome_of(attempt: Attempt, at: NodeId) -> AdminOutcome {
    match attempt {
        Attempt::Answer(ClientResult::Admin(done)) => AdminOutcome::Done(done),
        Attempt::Answer(ClientResult::Fail(FailReason::ChangeRefused { reason, retry })) => {
            AdminOutcome::Refused { reason, retry }
        }
        Attempt::Answer(ClientResult::Fail(reason)) => AdminOutcome::Refused {
            reason: describe_fail(&reason),
            retry: false,
        },
        Attempt::Answer(ClientResult::NotLeader { leader_hint }) => AdminOutcome::Refused {
            reason: format!("node {at} is not the leader (hint: {leader_hint:?})"),
            retry: false,
        },
        Attempt::Answer(ClientResult::Indeterminate { reason }) => AdminOutcome::Unknown(reason),
        Attempt::Answer(other) => AdminOutcome::Unknown(format!("unexpected answer {other:?}")),
        Attempt::NotSent(err) => AdminOutcome::Refused {
            reason: format!("node {at}: {err}"),
            retry: false,
        },
        Attempt::Lost(err) => AdminOutcome::Unknown(err),
    }
}
