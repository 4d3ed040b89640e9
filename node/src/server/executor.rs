//! The executor: the one piece of code that carries out what the Raft core asks for and answers
//! clients, shared by the real node ([`super::raft_loop`]) and the deterministic simulation
//! (crate `riptide-sim`).
//!
//! It owns the core ([`Raft`]), the state machine ([`KvStore`]) and the bookkeeping of client
//! requests in progress, and it is generic over the three things around it:
//! - [`Storage`]: where hard state and entries become durable (the WAL, [`LogStore`]; the
//!   simulation's in-memory model of what survives a crash);
//! - [`Network`]: where messages to peers go (the TCP peer links; the simulated network);
//! - [`Clients`]: where answers to clients go (a response channel per connection; the simulated
//!   clients).
//!
//! Nothing here reads a clock or spawns anything: time comes in as [`Executor::tick`], events as
//! [`Executor::step`] and [`Executor::on_client`], and the caller decides when to call
//! [`Executor::process_ready`] (the real loop after each batch of events, so that one fsync
//! covers the whole batch: group commit).
//!
//! # The order of a Ready, and why
//!
//! [`Executor::process_ready`] takes the core's [`Ready`](crate::raft::Ready) and, until there is
//! nothing left to do:
//! 1. saves the hard state (durable on return): a vote or a new term must never be forgotten,
//!    or the node could vote twice in one term;
//! 2. sends a leader's AppendEntries and InstallSnapshot chunks (see below);
//! 3. writes the new entries (replacing any stored suffix they conflict with), syncs once, and
//!    tells the core what is durable: a leader counts only persisted entries toward a commit;
//! 4. sends the other messages, only now, because they may promise what steps 1 and 3 made
//!    durable (a vote, a success acknowledgement). The core has already dropped messages from a
//!    term older than the current one: they may promise entries that this very Ready truncated;
//! 5. applies committed entries and answers the writes waiting for them;
//! 6. hands confirmed reads their index, fails the reads of a deposed leader, and answers every
//!    confirmed read whose index the state machine has reached.
//!
//! # The leader writes its log while its followers do (Raft thesis §10.2.1)
//!
//! A leader sends its new entries to the followers *before* its own fsync, so that a commit
//! waits for the longer of its fsync and a follower's round trip (with the follower's fsync),
//! not for their sum. This is safe because an AppendEntries promises nothing about the leader's
//! disk: it says "my log holds these entries", which is true in memory, and Log Matching holds
//! whether or not they are durable here. What must stay true is what counts toward a commit:
//! an entry is committed once a majority holds it *durably*, and the leader counts itself only
//! up to what its storage reported (the core's `maybe_commit` uses the log's persisted index,
//! which moves only when step 3 calls `Raft::persisted`), while a follower acknowledges only
//! after its own fsync (its answer is sent in step 4). So a committed entry is on the disks of a
//! majority, whichever of them is the leader. If the leader crashes before its fsync, it loses
//! entries that no client was told about; the followers that hold them may elect a leader that
//! commits them, or not, as with any uncommitted entry. The commit index an AppendEntries
//! carries was computed the same way, so it never runs ahead of a durable majority either.
//! Heartbeats are AppendEntries too, and snapshot chunks come from a snapshot already durable.
//!
//! # What a client is told
//!
//! Answers separate what is known from what is not:
//! - a write is answered from the result of applying *its own* entry (same index and term);
//! - if another entry lands at its index (a new leader overwrote it), the answer is
//!   `Indeterminate`, because a retry with the same session may still apply it;
//! - a node that is not the leader answers `NotLeader` only when it did not append the command,
//!   so the client may retry elsewhere with the same session.
//!
//! A storage error (a failed fsync, a full disk) is returned and ends the node: after a failed
//! fsync the kernel's page cache state is unknown, and a node that keeps going may acknowledge
//! what it lost. The simulation uses the same path to crash a node in the middle of a Ready.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::admin::PendingAdmin;
use super::compaction::Compaction;
use super::options::UnsafeBug;
use crate::kv::{Applied, Command, KvStore, WriteOp};
use crate::protocol::{
    ClientOp, ClientRequest, ClientResponse, ClientResult, FailReason, Reply, MAX_FRAME_BYTES,
};
use crate::raft::{Body, InstallRequest, Message, NotLeader, Raft, ReadId, Ready, SnapshotImage};
use crate::types::{Entry, HardState, Index, Membership, NodeId, Payload, SnapshotMeta, Term};

/// The largest command one log entry may carry: an entry must fit, with the message around
/// it, in one AppendEntries frame ([`MAX_FRAME_BYTES`]) and in one WAL record. A write whose
/// command is larger is refused before it reaches the log, with a definite
/// `Fail(BadRequest)`: appended, it could never be replicated (the leader would break every
/// link trying to send it, and lose its leadership) nor, past the record limit, even stored.
/// 64 KiB is far more than an AppendEntries of one entry adds to its command.
pub const MAX_COMMAND_BYTES: usize = MAX_FRAME_BYTES - 64 * 1024;

/// The node's tick unless told otherwise ([`Executor::with_tick_ms`]; `--tick-ms`).
pub const DEFAULT_TICK_MS: u64 = 10;

/// Durable storage of the hard state, the log and snapshots, with the contract
/// [`crate::storage`] states. Snapshot images are in the storage's file format
/// ([`crate::storage::Snapshot`]), so that every node can read what any other sends.
pub trait Storage {
    /// Makes the term and vote durable before returning.
    fn save_hard_state(&mut self, hard_state: &HardState) -> anyhow::Result<()>;
    /// Writes `entries` (not empty, consecutive), replacing every stored entry from
    /// `entries[0].index` on. They need not be durable before [`Storage::sync`].
    fn write_entries(&mut self, entries: &[Entry]) -> anyhow::Result<()>;
    /// Makes everything written so far durable.
    fn sync(&mut self) -> anyhow::Result<()>;
    /// Starts making a snapshot of `state` (the state machine as of `meta.last_index`) durable.
    /// It may take its time (the real node writes it on a background thread); at most one is
    /// begun before [`Storage::poll_snapshot`] returned the previous one.
    fn begin_snapshot(&mut self, meta: SnapshotMeta, state: KvStore) -> anyhow::Result<()>;
    /// How the snapshot begun last is doing; with `wait`, waits until it is no longer
    /// [`SnapshotProgress::Writing`]. A new one may be begun once it is not.
    fn poll_snapshot(&mut self, wait: bool) -> anyhow::Result<SnapshotProgress>;
    /// Writes bytes of the snapshot being received, in order (not durable).
    fn write_snapshot_chunk(&mut self, offset: u64, data: &[u8]) -> anyhow::Result<()>;
    /// Checks the received snapshot against `request` (length, checksum, format), makes it the
    /// durable snapshot, discards the stored log it replaces, and decodes its state machine.
    /// `Ok(Err(why))`: the image is bad and nothing changed (the leader sends it again).
    fn install_snapshot(
        &mut self,
        request: &InstallRequest,
    ) -> anyhow::Result<Result<(SnapshotImage, KvStore), String>>;
}

/// Where messages to peers go. Sending may drop (a full queue, a broken link): Raft retries.
pub trait Network {
    fn send(&mut self, msg: Message);

    /// The peers this node must reach changed (a configuration entry was appended or rolled
    /// back): every member but this node, with its address. The real node opens links to the
    /// new ones and closes the rest; a simulated network may ignore it.
    fn set_peers(&mut self, _peers: &BTreeMap<NodeId, String>) {}
}

/// Where answers to clients go. `Reply` says whom to answer (a connection's channel, a
/// simulated client); it is kept with the request until the answer is known.
pub trait Clients {
    type Reply;
    fn answer(&mut self, reply: Self::Reply, response: ClientResponse);

    /// Answers with what `work` computes, which may take a while (a pass over the whole
    /// store): the real node runs it on a thread of its own so that the Raft loop goes on;
    /// the default, for deterministic executors, runs it at once.
    fn answer_with(
        &mut self,
        reply: Self::Reply,
        work: Box<dyn FnOnce() -> ClientResponse + Send>,
    ) {
        let response = work();
        self.answer(reply, response);
    }
}

/// What became of a snapshot begun with [`Storage::begin_snapshot`].
#[derive(Debug)]
pub enum SnapshotProgress {
    /// Still being written (or none was begun).
    Writing,
    /// Durable, and the stored log it covers discarded: the image for the core.
    Written(SnapshotImage),
    /// Not kept: a newer snapshot (installed from the leader) made it moot.
    Abandoned,
}

struct PendingWrite<R> {
    term: Term,
    request_id: u64,
    reply: R,
}

struct PendingRead<R> {
    request_id: u64,
    key: String,
    reply: R,
}

/// The core, the state machine and the clients' requests in progress, driven by events and ticks.
pub struct Executor<S, N, C: Clients> {
    pub(super) raft: Raft,
    pub(super) storage: S,
    pub(super) network: N,
    pub(super) clients: C,
    pub(super) kv: KvStore,
    pub(super) compaction: Compaction,
    /// The addresses the node was started with (its own too): for leader hints and links to
    /// members whose configuration carries no address.
    pub(super) addrs: BTreeMap<NodeId, String>,
    /// The configuration the network's peer links were last set up for.
    pub(super) linked: Option<Membership>,
    /// Admin requests accepted by the core, waiting for their outcome.
    pub(super) pending_admin: Vec<PendingAdmin<C::Reply>>,
    pending_writes: BTreeMap<Index, PendingWrite<C::Reply>>,
    pending_reads: HashMap<ReadId, PendingRead<C::Reply>>,
    /// Confirmed reads waiting for the state machine to reach their index.
    confirmed_reads: BTreeMap<(Index, ReadId), PendingRead<C::Reply>>,
    next_read_id: ReadId,
    stale_read: bool,
    ack_before_commit: bool,
    no_dedup: bool,
    read_before_apply: bool,
    answer_by_index: bool,
    /// Every entry applied, in order, if [`Executor::record_applied`] asked for it (tests).
    applied: Option<Vec<Entry>>,
    /// Peer connections the transport refused (`status.refused_peers`).
    pub(super) refused_peers: Arc<AtomicU64>,
    /// The transport's `reorder` hook (none in the simulation).
    pub(super) reorder: Option<Arc<super::reorder::Reorder>>,
    /// The length of one core tick, for admin requests given in milliseconds.
    pub(super) tick_ms: u64,
}

impl<S: Storage, N: Network, C: Clients> Executor<S, N, C> {
    /// An executor for `raft`, recovered from `storage`. `addrs` names every member's address
    /// (for leader hints); `bugs` are the deliberate bugs to enable (tests only).
    pub fn new(
        raft: Raft,
        storage: S,
        network: N,
        clients: C,
        addrs: BTreeMap<NodeId, String>,
        bugs: &[UnsafeBug],
    ) -> Self {
        Executor {
            raft,
            storage,
            network,
            clients,
            kv: KvStore::default(),
            compaction: Compaction::new(bugs),
            addrs,
            linked: None,
            pending_admin: Vec::new(),
            pending_writes: BTreeMap::new(),
            pending_reads: HashMap::new(),
            confirmed_reads: BTreeMap::new(),
            next_read_id: 1,
            stale_read: bugs.contains(&UnsafeBug::StaleRead),
            ack_before_commit: bugs.contains(&UnsafeBug::AckBeforeCommit),
            no_dedup: bugs.contains(&UnsafeBug::NoDedup),
            read_before_apply: bugs.contains(&UnsafeBug::ReadBeforeApply),
            answer_by_index: bugs.contains(&UnsafeBug::AnswerByIndex),
            applied: None,
            refused_peers: Arc::default(),
            reorder: None,
            tick_ms: DEFAULT_TICK_MS,
        }
    }

    /// Sets the length of one tick (default [`DEFAULT_TICK_MS`]), for admin requests given in
    /// milliseconds.
    pub fn with_tick_ms(mut self, tick_ms: u64) -> Self {
        self.tick_ms = tick_ms.max(1);
        self
    }

    /// Starts from a state machine restored from a snapshot (the core's log starts after it).
    pub fn with_state(mut self, kv: KvStore) -> Self {
        self.kv = kv;
        self
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }
    pub fn storage(&self) -> &S {
        &self.storage
    }
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }
    pub fn network_mut(&mut self) -> &mut N {
        &mut self.network
    }
    pub fn clients_mut(&mut self) -> &mut C {
        &mut self.clients
    }

    /// The storage, once the node stops (the simulation reads what survived a crash).
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Keeps every applied entry, to be collected with [`Executor::take_applied`].
    pub fn record_applied(&mut self) {
        self.applied.get_or_insert_with(Vec::new);
    }

    /// The entries applied since the last call (empty unless [`Executor::record_applied`]).
    pub fn take_applied(&mut self) -> Vec<Entry> {
        self.applied
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// One message from a peer.
    pub fn step(&mut self, msg: Message) {
        self.raft.step(msg);
    }

    /// One unit of logical time.
    pub fn tick(&mut self) {
        self.raft.tick();
        self.tick_admin();
    }

    /// Ticks the loop missed and does not fire (see [`Raft::skip_ticks`]).
    pub fn skip_ticks(&mut self, ticks: u64) {
        self.raft.skip_ticks(ticks);
    }

    /// One client request; the answer goes to `reply`, now or once it is known.
    pub fn on_client(&mut self, request: ClientRequest, reply: C::Reply) {
        let write = match request.op {
            ClientOp::Status => {
                let status = ClientResult::Status(Box::new(self.status()));
                return self.clients.answer(reply, response(request.id, status));
            }
            ClientOp::Digest => return self.answer_digest(request.id, reply),
            ClientOp::Get { key } => return self.start_read(request.id, key, reply),
            ClientOp::Admin(op) => return self.start_admin(request.id, op, reply),
            ClientOp::Write(write) => write,
        };
        let command = Command {
            client_id: request.client_id,
            seq: request.seq,
            op: write,
        };
        match self.refuse_write(&command) {
            Some(refusal) => self.clients.answer(reply, response(request.id, refusal)),
            None => self.propose_write(command, request.id, reply),
        }
    }

    /// A linearizable read: ReadIndex on the leader (or, with the stale-read bug, the local
    /// state machine at once).
    fn start_read(&mut self, request_id: u64, key: String, reply: C::Reply) {
        if self.stale_read {
            let value = ClientResult::Ok(Reply::Value(self.kv.get(&key)));
            return self.clients.answer(reply, response(request_id, value));
        }
        let read_id = self.next_read_id;
        self.next_read_id += 1;
        match self.raft.read_index(read_id) {
            Ok(()) => {
                let pending = PendingRead {
                    request_id,
                    key,
                    reply,
                };
                self.pending_reads.insert(read_id, pending);
            }
            Err(not_leader) => {
                let result = self.hint(not_leader);
                self.clients.answer(reply, response(request_id, result));
            }
        }
    }

    /// The answer to a write that is settled before it reaches the log: a bad request, a node
    /// that is not the leader (nothing appended), or a retry of a command already applied (the
    /// original answer).
    fn refuse_write(&self, command: &Command) -> Option<ClientResult> {
        if command.op.key().is_empty() {
            let reason = FailReason::BadRequest("the key is empty".into());
            return Some(ClientResult::Fail(reason));
        }
        if !self.raft.is_leader() {
            return Some(self.hint(NotLeader {
                leader_hint: self.raft.leader(),
            }));
        }
        let outcome = self.kv.cached(command.client_id, command.seq)?;
        // A new leader applies its predecessors' entries only once it commits one of its own
        // term; until then a session it does not know may be live, so only the log may say
        // that it expired. (A deposed leader that does not know it yet may still answer so:
        // true in that nothing was applied, if not in its reason.)
        let log = self.raft.log();
        let caught_up = log.term_at(log.applied_index()) == Some(self.raft.term());
        if outcome == Applied::Fail(FailReason::SessionExpired) && !caught_up {
            return None;
        }
        Some(applied_to_result(Some(outcome)))
    }

    /// Appends the command and waits for its entry to apply (or, with the ack-before-commit
    /// bug, acknowledges a blind write at once).
    fn propose_write(&mut self, command: Command, request_id: u64, reply: C::Reply) {
        // The bug acknowledges blind writes (put, append) whose answer does not depend on the
        // state; a cas still waits for its result.
        let ack_early = self.ack_before_commit && !matches!(command.op, WriteOp::Cas { .. });
        let encoded = command.encode();
        if encoded.len() > MAX_COMMAND_BYTES {
            let why = format!(
                "the write is {} bytes as a command, over the {MAX_COMMAND_BYTES}-byte limit of \
                 one log entry (the value is too large); nothing was appended",
                encoded.len()
            );
            let refusal = ClientResult::Fail(FailReason::BadRequest(why));
            return self.clients.answer(reply, response(request_id, refusal));
        }
        match self.raft.propose(encoded) {
            // The bug: the write is only in this leader's memory, not even on its disk.
            Ok(_) if ack_early => {
                let done = ClientResult::Ok(Reply::Done);
                self.clients.answer(reply, response(request_id, done));
            }
            Ok((index, term)) => self.track_write(index, term, request_id, reply),
            Err(not_leader) => {
                let result = self.hint(not_leader);
                self.clients.answer(reply, response(request_id, result));
            }
        }
    }

    /// Remembers whom to answer when the entry at `index` applies. A write still waiting at
    /// that index was overwritten by a newer leader: it may or may not apply, later, elsewhere.
    fn track_write(&mut self, index: Index, term: Term, request_id: u64, reply: C::Reply) {
        let pending = PendingWrite {
            term,
            request_id,
            reply,
        };
        if let Some(old) = self.pending_writes.insert(index, pending) {
            let result = ClientResult::Indeterminate {
                reason: format!("log index {index} was reused by a newer leader"),
            };
            self.clients
                .answer(old.reply, response(old.request_id, result));
        }
    }

    /// Carries out everything the core asked for, in the order the module docs give, until
    /// the core has nothing more to do. An error is a storage failure: the node must stop.
    pub fn process_ready(&mut self) -> anyhow::Result<()> {
        self.collect_snapshot(false)?;
        loop {
            let ready = self.raft.ready();
            if ready.is_empty() {
                break;
            }
            self.carry_out(ready)?;
        }
        self.fail_writes_if_deposed();
        self.settle_admin();
        self.link_members();
        self.maybe_snapshot()
    }

    fn carry_out(&mut self, ready: Ready) -> anyhow::Result<()> {
        if let Some(hard_state) = ready.hard_state {
            self.storage.save_hard_state(&hard_state)?;
        }
        // A leader's AppendEntries and snapshot chunks promise nothing of its own disk: they go
        // out before its fsync, which then overlaps the followers' (see the module docs).
        let (early, late): (Vec<Message>, Vec<Message>) =
            ready.messages.into_iter().partition(may_precede_sync);
        for msg in early {
            self.network.send(msg);
        }
        if let Some(last) = ready.entries.last().map(|e| e.index) {
            self.storage.write_entries(&ready.entries)?;
            self.storage.sync()?;
            self.raft.persisted(last);
        }
        for chunk in &ready.snapshot_chunks {
            self.storage
                .write_snapshot_chunk(chunk.offset, &chunk.data)?;
        }
        for msg in late {
            self.network.send(msg);
        }
        for entry in ready.committed {
            self.apply(entry);
        }
        // After the committed entries: they come before the snapshot and must not be applied on
        // top of it.
        if let Some(request) = ready.install {
            self.install(request)?;
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
                self.clients
                    .answer(pending.reply, response(pending.request_id, result));
            }
        }
        self.answer_reads();
        Ok(())
    }

    /// A leader that lost its leadership fails the writes it still waits for as
    /// `Indeterminate`: they may commit under the next leader, or never, and this node will not
    /// know which in any bounded time.
    ///
    /// The answer-by-index bug keeps them: an implementation that knows a write only by its log
    /// index has no reason to give up on it at a term change, and answers it from whatever entry
    /// is applied there.
    fn fail_writes_if_deposed(&mut self) {
        if self.raft.is_leader() || self.pending_writes.is_empty() || self.answer_by_index {
            return;
        }
        let term = self.raft.term();
        for (index, pending) in std::mem::take(&mut self.pending_writes) {
            let result = ClientResult::Indeterminate {
                reason: format!(
                    "the leader lost its leadership (now term {term}) before log index {index} committed"
                ),
            };
            self.clients
                .answer(pending.reply, response(pending.request_id, result));
        }
    }

    fn apply(&mut self, entry: Entry) {
        if let Payload::Command(bytes) = &entry.payload {
            self.note_applied(bytes.len());
        }
        let outcome = match &entry.payload {
            // A configuration is the Raft core's business; the KV state machine skips it.
            Payload::Noop | Payload::Config(_) => None,
            Payload::Command(bytes) => match Command::decode(bytes) {
                Ok(command) if self.no_dedup => Some(self.kv.apply_without_dedup(&command)),
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
        let pending = self.pending_writes.remove(&entry.index);
        if let Some(pending) = pending {
            // The answer-by-index bug takes whatever entry landed at the index for the write's.
            let result = if pending.term == entry.term || self.answer_by_index {
                applied_to_result(outcome)
            } else {
                ClientResult::Indeterminate {
                    reason: format!(
                        "the entry at index {} was replaced by one from term {}; a retry may still apply",
                        entry.index, entry.term
                    ),
                }
            };
            self.clients
                .answer(pending.reply, response(pending.request_id, result));
        }
        if let Some(applied) = &mut self.applied {
            applied.push(entry);
        }
    }

    fn answer_reads(&mut self) {
        let applied = self.raft.log().applied_index();
        while let Some(entry) = self.confirmed_reads.first_entry() {
            // The read-before-apply bug answers before the state machine got there.
            if entry.key().0 > applied && !self.read_before_apply {
                break;
            }
            let pending = entry.remove();
            let value = ClientResult::Ok(Reply::Value(self.kv.get(&pending.key)));
            self.clients
                .answer(pending.reply, response(pending.request_id, value));
        }
    }
}

/// May `msg` leave before this Ready's entries are durable? Only what a leader sends its
/// followers: AppendEntries (entries and heartbeats) and snapshot chunks (read from its durable
/// snapshot). Every answer waits for the fsync: a vote, an acknowledgement and a snapshot's
/// `Done` each promise what this node holds durably.
fn may_precede_sync(msg: &Message) -> bool {
    matches!(
        msg.body,
        Body::AppendEntries { .. } | Body::InstallSnapshot { .. }
    )
}

pub(super) fn response(id: u64, result: ClientResult) -> ClientResponse {
    ClientResponse { id, result }
}

fn applied_to_result(outcome: Option<Applied>) -> ClientResult {
    match outcome {
        Some(Applied::Ok(reply)) => ClientResult::Ok(reply),
        Some(Applied::Fail(reason)) => ClientResult::Fail(reason),
        Some(Applied::Superseded) => ClientResult::Indeterminate {
            reason: "the client session has moved past this sequence number".into(),
        },
        None => ClientResult::Indeterminate {
            reason: "the entry carried no command".into(),
        },
    }
}
