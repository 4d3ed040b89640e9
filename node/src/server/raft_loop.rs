//! The Raft loop: the one thread that owns the core, the log store and the state machine.
//!
//! Each iteration: wait for an event or the next tick, take every event already queued (the
//! batch), feed them to the core, then carry out the core's [`Ready`](crate::raft::Ready) in the
//! prescribed order: hard state (fsync), entries (append + one fsync), messages, apply, reads.
//!
//! Answers to clients follow DESIGN's rule of separating what is known from what is not:
//! - a write is answered from the result of applying *its own* entry (same index and term);
//! - if another entry lands at its index (a new leader overwrote it), the answer is
//!   `Indeterminate`, because a retry with the same session may still have applied it;
//! - a node that is not the leader answers `NotLeader` only when it did not append the command.
//!
//! A storage error (a failed fsync, a full disk) ends the process: after a failed fsync the
//! kernel's page cache state is unknown, and a node that keeps going may acknowledge what it lost.

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{Sender, UnboundedSender};

use super::options::{NodeOptions, UnsafeBug};
use crate::kv::{Command, KvStore, Outcome, WriteOp};
use crate::logging::TermCell;
use crate::protocol::{
    ClientOp, ClientRequest, ClientResponse, ClientResult, FailReason, LeaderHint, Reply, Status,
};
use crate::raft::{Message, NotLeader, Raft, ReadId};
use crate::storage::LogStore;
use crate::types::{Entry, Index, NodeId, Payload, Term};

/// Most events taken per iteration, so that ticks and fsyncs are not starved by a flood.
const MAX_BATCH_EVENTS: usize = 4096;

/// If the thread was stopped (SIGSTOP) or starved, catch up at most this many ticks at once;
/// firing hundreds of heartbeats in a burst helps nobody.
const MAX_CATCHUP_TICKS: u32 = 5;

/// What the network hands the loop.
pub enum Event {
    Peer(Message),
    Client {
        request: ClientRequest,
        reply: UnboundedSender<ClientResponse>,
    },
}

struct PendingWrite {
    term: Term,
    request_id: u64,
    reply: UnboundedSender<ClientResponse>,
}

struct PendingRead {
    request_id: u64,
    key: String,
    reply: UnboundedSender<ClientResponse>,
}

/// Where to send a peer's messages.
pub struct PeerLink {
    pub addr: String,
    pub tx: Sender<Message>,
}

pub struct RaftLoop {
    raft: Raft,
    store: LogStore,
    kv: KvStore,
    peers: BTreeMap<NodeId, PeerLink>,
    addrs: BTreeMap<NodeId, String>,
    pending_writes: BTreeMap<Index, PendingWrite>,
    pending_reads: HashMap<ReadId, PendingRead>,
    /// Confirmed reads waiting for the state machine to reach their index.
    confirmed_reads: BTreeMap<(Index, ReadId), PendingRead>,
    next_read_id: ReadId,
    tick: Duration,
    stale_read: bool,
    ack_before_commit: bool,
    term: TermCell,
    dropped_messages: u64,
}

impl RaftLoop {
    pub fn new(
        raft: Raft,
        store: LogStore,
        peers: BTreeMap<NodeId, PeerLink>,
        opts: &NodeOptions,
        term: TermCell,
    ) -> RaftLoop {
        let mut addrs: BTreeMap<NodeId, String> =
            peers.iter().map(|(&id, p)| (id, p.addr.clone())).collect();
        addrs.insert(opts.id, opts.listen.to_string());
        RaftLoop {
            raft,
            store,
            kv: KvStore::default(),
            peers,
            addrs,
            pending_writes: BTreeMap::new(),
            pending_reads: HashMap::new(),
            confirmed_reads: BTreeMap::new(),
            next_read_id: 1,
            tick: Duration::from_millis(opts.tick_ms),
            stale_read: opts.has_bug(UnsafeBug::StaleRead),
            ack_before_commit: opts.has_bug(UnsafeBug::AckBeforeCommit),
            term,
            dropped_messages: 0,
        }
    }

    /// Runs until every event sender is gone (the network shut down) or storage fails.
    pub fn run(mut self, events: Receiver<Event>) -> anyhow::Result<()> {
        let mut next_tick = Instant::now() + self.tick;
        self.process_ready()?;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match events.recv_timeout(wait) {
                Ok(event) => {
                    self.handle(event);
                    for event in events.try_iter().take(MAX_BATCH_EVENTS) {
                        self.handle(event);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            let now = Instant::now();
            let mut ticks = 0;
            while now >= next_tick {
                if ticks < MAX_CATCHUP_TICKS {
                    self.raft.tick();
                    ticks += 1;
                }
                next_tick += self.tick;
            }
            self.process_ready()?;
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Peer(msg) => self.raft.step(msg),
            Event::Client { request, reply } => self.on_client(request, reply),
        }
    }

    fn hint(&self, not_leader: NotLeader) -> ClientResult {
        let leader_hint = not_leader.leader_hint.and_then(|id| {
            self.addrs.get(&id).map(|addr| LeaderHint {
                id,
                addr: addr.clone(),
            })
        });
        ClientResult::NotLeader { leader_hint }
    }

    fn on_client(&mut self, request: ClientRequest, reply: UnboundedSender<ClientResponse>) {
        let id = request.id;
        let answer = |result: ClientResult| {
            let _ = reply.send(ClientResponse { id, result });
        };
        let write = match request.op {
            ClientOp::Status => return answer(ClientResult::Status(self.status())),
            ClientOp::Get { key } => {
                if self.stale_read {
                    return answer(ClientResult::Ok(Reply::Value(self.kv.get(&key))));
                }
                let read_id = self.next_read_id;
                self.next_read_id += 1;
                match self.raft.read_index(read_id) {
                    Ok(()) => {
                        self.pending_reads.insert(
                            read_id,
                            PendingRead {
                                request_id: id,
                                key,
                                reply,
                            },
                        );
                    }
                    Err(not_leader) => answer(self.hint(not_leader)),
                }
                return;
            }
            ClientOp::Put { key, value } => WriteOp::Put { key, value },
            ClientOp::Cas { key, expected, new } => WriteOp::Cas { key, expected, new },
            ClientOp::Append { key, suffix } => WriteOp::Append { key, suffix },
        };
        let key = match &write {
            WriteOp::Put { key, .. } | WriteOp::Cas { key, .. } | WriteOp::Append { key, .. } => {
                key
            }
        };
        if key.is_empty() {
            return answer(ClientResult::Fail(FailReason::BadRequest(
                "the key is empty".into(),
            )));
        }
        if !self.raft.is_leader() {
            return answer(self.hint(NotLeader {
                leader_hint: self.raft.leader(),
            }));
        }
        // A retry of a command this node already applied gets the original answer at once.
        if let Some(outcome) = self.kv.cached(request.client_id, request.seq) {
            return answer(outcome_to_result(Some(outcome)));
        }
        // The bug acknowledges blind writes (put, append) whose answer does not depend on the
        // state; a cas still waits for its result.
        let ack_early = self.ack_before_commit && !matches!(write, WriteOp::Cas { .. });
        let command = Command {
            client_id: request.client_id,
            seq: request.seq,
            op: write,
        };
        match self.raft.propose(command.encode()) {
            Ok((index, term)) => {
                if ack_early {
                    // The bug: the write is only in this leader's memory, not even on its disk.
                    return answer(ClientResult::Ok(Reply::Done));
                }
                if let Some(old) = self.pending_writes.insert(
                    index,
                    PendingWrite {
                        term,
                        request_id: id,
                        reply,
                    },
                ) {
                    let _ = old.reply.send(ClientResponse {
                        id: old.request_id,
                        result: ClientResult::Indeterminate {
                            reason: format!("log index {index} was reused by a newer leader"),
                        },
                    });
                }
            }
            Err(not_leader) => answer(self.hint(not_leader)),
        }
    }

    fn status(&self) -> Status {
        Status {
            id: self.raft.id(),
            role: self.raft.role(),
            term: self.raft.term(),
            leader: self.raft.leader(),
            commit_index: self.raft.log().commit_index(),
            applied_index: self.raft.log().applied_index(),
            last_log_index: self.raft.log().last_index(),
            first_log_index: self.raft.log().first_index(),
        }
    }

    /// Carries out everything the core asked for, in the order [`crate::raft::Ready`] prescribes.
    fn process_ready(&mut self) -> anyhow::Result<()> {
        loop {
            let ready = self.raft.ready();
            if ready.is_empty() {
                break;
            }
            if let Some(hs) = ready.hard_state {
                self.store.save_hard_state(&hs)?;
            }
            if let (Some(first), Some(last)) = (ready.entries.first(), ready.entries.last()) {
                if first.index <= self.store.last_index() {
                    self.store.truncate_from(first.index)?;
                }
                self.store.append(&ready.entries)?;
                self.store.sync()?;
                let last = last.index;
                self.raft.persisted(last);
            }
            for msg in ready.messages {
                self.send(msg);
            }
            for entry in ready.committed {
                self.apply(entry);
            }
            for read in ready.reads {
                if let Some(pending) = self.pending_reads.remove(&read.id) {
                    self.confirmed_reads.insert((read.index, read.id), pending);
                }
            }
            for id in ready.failed_reads {
                if let Some(pending) = self.pending_reads.remove(&id) {
                    let result = self.hint(NotLeader {
                        leader_hint: self.raft.leader(),
                    });
                    let _ = pending.reply.send(ClientResponse {
                        id: pending.request_id,
                        result,
                    });
                }
            }
            self.answer_reads();
        }
        self.term.set(self.raft.term());
        Ok(())
    }

    fn send(&mut self, msg: Message) {
        let Some(peer) = self.peers.get(&msg.to) else {
            return;
        };
        if peer.tx.try_send(msg).is_err() {
            // The link is down or slow; Raft retries on its own (heartbeats, probes).
            self.dropped_messages += 1;
            if self.dropped_messages.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped_messages,
                    "outbound peer queue full; dropping messages"
                );
            }
        }
    }

    fn apply(&mut self, entry: Entry) {
        let outcome = match &entry.payload {
            Payload::Noop => None,
            Payload::Command(bytes) => match Command::decode(bytes) {
                Ok(command) => Some(self.kv.apply(&command)),
                Err(err) => {
                    tracing::error!(
                        index = entry.index,
                        "undecodable command in the log, skipped: {err}"
                    );
                    None
                }
            },
        };
        let Some(pending) = self.pending_writes.remove(&entry.index) else {
            return;
        };
        let result = if pending.term == entry.term {
            outcome_to_result(outcome)
        } else {
            ClientResult::Indeterminate {
                reason: format!(
                    "the entry at index {} was replaced by one from term {}; a retry may still apply",
                    entry.index, entry.term
                ),
            }
        };
        let _ = pending.reply.send(ClientResponse {
            id: pending.request_id,
            result,
        });
    }

    fn answer_reads(&mut self) {
        let applied = self.raft.log().applied_index();
        while let Some(entry) = self.confirmed_reads.first_entry() {
            if entry.key().0 > applied {
                break;
            }
            let pending = entry.remove();
            let value = self.kv.get(&pending.key);
            let _ = pending.reply.send(ClientResponse {
                id: pending.request_id,
                result: ClientResult::Ok(Reply::Value(value)),
            });
        }
    }
}

fn outcome_to_result(outcome: Option<Outcome>) -> ClientResult {
    match outcome {
        Some(Outcome::Ok(reply)) => ClientResult::Ok(reply),
        Some(Outcome::Fail(reason)) => ClientResult::Fail(reason),
        Some(Outcome::Superseded) => ClientResult::Indeterminate {
            reason: "the client session has moved past this sequence number".into(),
        },
        None => ClientResult::Indeterminate {
            reason: "the entry carried no command".into(),
        },
    }
}
