//! A simulated client that maps the executor's answers exactly as the real workload client
//! (`riptide-workload`, `client.rs`) does, so that the history records what a real run would:
//!
//! | what happened | write / cas / append | read |
//! |---|---|---|
//! | `Ok` | `ok` | `ok` with the value |
//! | definite `Fail` (cas mismatch, missing key) | `fail` | `fail` |
//! | `NotLeader`, node down (nothing sent) | retry elsewhere, `fail` after [`MAX_HOPS`] | same |
//! | no answer by the deadline, `Indeterminate` | **`info`** | `fail` |
//!
//! Retries keep the client id and sequence number, so a command applies at most once. After an
//! `info` the client continues as a new process with a new session, as a workload worker does.
//! As in the workload client, only writes take sequence numbers, from 1 in each session, and a
//! write refused before any log leaves its number to the next write: the state machine takes a
//! command of a session it does not know only if its number is 1.
//! Time is the simulation's step counter.

use std::collections::BTreeMap;

use riptide_node::protocol::{
    ClientOp, ClientRequest, ClientResponse, ClientResult, FailReason, Reply, WriteOp,
};
use riptide_node::types::NodeId;

use crate::history::Completion;

/// Attempts per operation before it fails definitely (as the workload client).
pub const MAX_HOPS: usize = 10;
/// Steps to wait before retrying when nobody knows the leader (the workload's 50 ms pause,
/// about five ticks).
pub const NO_LEADER_PAUSE: u64 = 10;
/// Steps an operation may take, retries included (a few election timeouts).
pub const OP_TIMEOUT: u64 = 400;

/// What the client wants next.
#[derive(Debug)]
pub enum Action {
    Send {
        to: NodeId,
        request: ClientRequest,
    },
    Done {
        op: ClientOp,
        completion: Completion,
    },
    Wait,
}

#[derive(Debug)]
struct InFlight {
    op: ClientOp,
    seq: u64,
    request_id: u64,
    target: NodeId,
    attempts: usize,
    deadline: u64,
    /// Paused until then before the next attempt; `None` while an attempt is out.
    resend_at: Option<u64>,
}

#[derive(Debug)]
pub struct SimClient {
    /// The history's process id (and the session's client id).
    pub process: u64,
    seq: u64,
    nodes: Vec<NodeId>,
    home: NodeId,
    leader: Option<NodeId>,
    next_request: u64,
    current: Option<InFlight>,
    /// The last value this client saw per key, for cas operations that may succeed.
    pub known: BTreeMap<String, String>,
}

impl SimClient {
    pub fn new(process: u64, nodes: Vec<NodeId>, home: NodeId) -> SimClient {
        SimClient {
            process,
            seq: 0,
            nodes,
            home,
            leader: None,
            next_request: 0,
            current: None,
            known: BTreeMap::new(),
        }
    }

    pub fn is_idle(&self) -> bool {
        self.current.is_none()
    }

    /// Continues as a new process with a fresh session (after an `info`).
    pub fn renew(&mut self, process: u64) {
        self.process = process;
        self.seq = 0;
    }

    /// Starts `op` (the caller records the invoke first).
    pub fn start(&mut self, op: ClientOp, now: u64) -> Action {
        let is_read = matches!(op, ClientOp::Get { .. });
        if !is_read {
            self.seq += 1;
        }
        let target = if is_read {
            self.home
        } else {
            self.leader.unwrap_or(self.home)
        };
        self.current = Some(InFlight {
            op,
            seq: self.seq,
            request_id: 0,
            target,
            attempts: 0,
            deadline: now + OP_TIMEOUT,
            resend_at: Some(now),
        });
        self.poll(now)
    }

    /// Time passes: the deadline, or the end of a pause.
    pub fn poll(&mut self, now: u64) -> Action {
        let Some(op) = &mut self.current else {
            return Action::Wait;
        };
        if now >= op.deadline {
            // Waiting for an answer: unknown. Paused after refusals: definitely not applied.
            return match op.resend_at {
                None if !matches!(op.op, ClientOp::Get { .. }) => self.finish(Completion::Info),
                _ => self.finish_refused(),
            };
        }
        match op.resend_at {
            Some(at) if at <= now => {
                if op.attempts >= MAX_HOPS {
                    return self.finish_refused();
                }
                op.attempts += 1;
                op.resend_at = None;
                self.next_request += 1;
                op.request_id = self.next_request;
                let request = ClientRequest {
                    id: op.request_id,
                    client_id: self.process,
                    seq: op.seq,
                    op: op.op.clone(),
                };
                Action::Send {
                    to: op.target,
                    request,
                }
            }
            _ => Action::Wait,
        }
    }

    /// The node was down: nothing was sent. Try the next node after a pause.
    pub fn not_sent(&mut self, now: u64) -> Action {
        let next = self.next_node();
        let Some(op) = &mut self.current else {
            return Action::Wait;
        };
        if self.leader == Some(op.target) {
            self.leader = None;
        }
        op.target = next;
        op.resend_at = Some(now + NO_LEADER_PAUSE);
        Action::Wait
    }

    /// The connection to `node` broke while an attempt there waited for its answer (the node
    /// crashed): a write may have been appended, so it is unknown; a read is asked elsewhere.
    pub fn lost(&mut self, node: NodeId, now: u64) -> Action {
        let next = self.next_node();
        let Some(op) = &mut self.current else {
            return Action::Wait;
        };
        if op.target != node || op.resend_at.is_some() {
            return Action::Wait;
        }
        if matches!(op.op, ClientOp::Get { .. }) {
            op.target = next;
            op.resend_at = Some(now);
            self.poll(now)
        } else {
            self.finish(Completion::Info)
        }
    }

    /// An answer arrived (perhaps to an attempt the client has given up on).
    pub fn on_answer(&mut self, response: ClientResponse, now: u64) -> Action {
        let Some(op) = &self.current else {
            return Action::Wait;
        };
        if response.id != op.request_id || op.resend_at.is_some() {
            return Action::Wait;
        }
        let is_read = matches!(op.op, ClientOp::Get { .. });
        let target = op.target;
        match response.result {
            ClientResult::Ok(reply) => {
                if !is_read {
                    self.leader = Some(target);
                }
                self.finish(Completion::Ok(match reply {
                    Reply::Value(v) => v,
                    Reply::Done => None,
                }))
            }
            ClientResult::Fail(FailReason::BadRequest(_) | FailReason::Unavailable(_)) => {
                self.finish_refused()
            }
            ClientResult::Fail(_) => self.finish(Completion::Fail),
            ClientResult::Indeterminate { .. }
            | ClientResult::Status(_)
            | ClientResult::Digest(_)
            | ClientResult::Admin(_)
                if is_read =>
            {
                self.finish(Completion::Fail)
            }
            ClientResult::Indeterminate { .. }
            | ClientResult::Status(_)
            | ClientResult::Digest(_)
            | ClientResult::Admin(_) => self.finish(Completion::Info),
            ClientResult::NotLeader { leader_hint } => {
                let hinted = leader_hint.map(|h| h.id).filter(|&id| id != target);
                self.leader = hinted;
                let (next, at) = match hinted {
                    Some(id) => (id, now),
                    None => (self.next_node(), now + NO_LEADER_PAUSE),
                };
                let op = self.current.as_mut().expect("checked above");
                op.target = next;
                op.resend_at = Some(at);
                self.poll(now)
            }
        }
    }

    fn next_node(&self) -> NodeId {
        let after = self.current.as_ref().map_or(self.home, |op| op.target);
        let k = self.nodes.iter().position(|&id| id == after).unwrap_or(0);
        self.nodes[(k + 1) % self.nodes.len()]
    }

    /// A definite failure before any log: every attempt was refused, or the node answered before
    /// appending. A write leaves its sequence number to the next write.
    fn finish_refused(&mut self) -> Action {
        if let Some(op) = &self.current {
            if !matches!(op.op, ClientOp::Get { .. }) {
                self.seq = op.seq - 1;
            }
        }
        self.finish(Completion::Fail)
    }

    fn finish(&mut self, completion: Completion) -> Action {
        let op = self.current.take().expect("an operation in flight").op;
        if let Completion::Ok(value) = &completion {
            match &op {
                ClientOp::Get { key } => match value {
                    Some(v) => self.known.insert(key.clone(), v.clone()),
                    None => self.known.remove(key),
                },
                ClientOp::Write(WriteOp::Put { key, value }) => {
                    self.known.insert(key.clone(), value.clone())
                }
                ClientOp::Write(WriteOp::Cas { key, new, .. }) => {
                    self.known.insert(key.clone(), new.clone())
                }
                ClientOp::Write(WriteOp::Append { key, .. }) => self.known.remove(key),
                ClientOp::Status | ClientOp::Digest | ClientOp::Admin(_) => None,
            };
        }
        Action::Done { op, completion }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(value: &str) -> ClientOp {
        ClientOp::Write(WriteOp::Put {
            key: "k".into(),
            value: value.into(),
        })
    }

    /// Drives the operation in flight, answering every request with `answer`, until it is done;
    /// returns the sequence numbers sent and the completion.
    fn drive(
        client: &mut SimClient,
        first: Action,
        answer: ClientResult,
    ) -> (Vec<u64>, Completion) {
        let (mut action, mut seqs, mut now) = (first, Vec::new(), 0);
        loop {
            action = match action {
                Action::Send { request, .. } => {
                    seqs.push(request.seq);
                    let response = ClientResponse {
                        id: request.id,
                        result: answer.clone(),
                    };
                    client.on_answer(response, now)
                }
                Action::Done { completion, .. } => return (seqs, completion),
                Action::Wait => {
                    now += 1;
                    client.poll(now)
                }
            };
        }
    }

    #[test]
    fn a_sessions_first_write_to_reach_the_log_has_seq_1() {
        let mut client = SimClient::new(5, vec![1, 2, 3], 1);
        let ok = |reply| ClientResult::Ok(reply);
        let start = client.start(ClientOp::Get { key: "k".into() }, 0);
        assert_eq!(
            drive(&mut client, start, ok(Reply::Value(None))).1,
            Completion::Ok(None)
        );
        // Refused by every node it tries: the write never reached a log.
        let start = client.start(put("1"), 0);
        let refused = ClientResult::NotLeader { leader_hint: None };
        let (seqs, completion) = drive(&mut client, start, refused);
        assert_eq!(completion, Completion::Fail);
        assert_eq!(seqs, vec![1; MAX_HOPS]);
        let start = client.start(put("2"), 0);
        assert_eq!(
            drive(&mut client, start, ok(Reply::Done)),
            (vec![1], Completion::Ok(None))
        );
        // A CAS that failed on its value applied: its number is used up.
        let cas = ClientOp::Write(WriteOp::Cas {
            key: "k".into(),
            expected: "y".into(),
            new: "3".into(),
        });
        let start = client.start(cas, 0);
        let mismatch = ClientResult::Fail(FailReason::CasMismatch { actual: "x".into() });
        assert_eq!(
            drive(&mut client, start, mismatch),
            (vec![2], Completion::Fail)
        );
        let start = client.start(put("4"), 0);
        assert_eq!(drive(&mut client, start, ok(Reply::Done)).0, vec![3]);
        client.renew(6);
        let start = client.start(put("5"), 0);
        assert_eq!(drive(&mut client, start, ok(Reply::Done)).0, vec![1]);
    }
}
