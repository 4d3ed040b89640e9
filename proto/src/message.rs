//! The messages: what a client or a peer says to a node, and what a node answers a client.
//!
//! Peers speak `riptide_node::raft::Message` after their hello; that type belongs to the Raft
//! core and is framed with the same [`crate::Connection`], so it is not repeated here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{Index, NodeId, Term};

/// The first frame of every connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hello {
    /// A Raft peer dialing from its own address. The node that accepts answers with a
    /// [`PeerAdmission`] before any Raft message flows.
    Peer {
        from: NodeId,
        /// The cluster the dialer belongs to (`--cluster-id`; empty: an unnamed cluster). A
        /// node admits peers of its own cluster only.
        #[serde(default)]
        cluster: String,
        /// With a cluster secret: the dialer's fresh random challenge for the accepting node
        /// (16 bytes). Without: absent.
        #[serde(default, with = "serde_bytes")]
        nonce: Option<Vec<u8>>,
        /// The address the dialer listens on (`IP:PORT`), so that a node whose configuration
        /// does not name it yet (one that lagged while it was added) can answer it. Absent from
        /// older dialers, and not sent when unknown (the hello of a dialer without it keeps its
        /// old shape).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        listen: Option<String>,
    },
    /// A client: a workload worker, the runner's status poller or `riptide client`.
    Client,
}

impl Hello {
    /// A peer's hello without a secret.
    pub fn peer(from: NodeId, cluster: impl Into<String>) -> Hello {
        Hello::Peer {
            from,
            cluster: cluster.into(),
            nonce: None,
            listen: None,
        }
    }
}

/// What a node answers a [`Hello::Peer`]: the only frames that go back on a peer connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerAdmission {
    /// Admitted: Raft messages may follow.
    Welcome,
    /// The cluster has a secret. `proof` is the accepting node's HMAC over the dialer's nonce
    /// and this fresh `nonce`; the dialer checks it, then answers with a [`PeerProof`] over the
    /// same two nonces, and waits for `Welcome`.
    Challenge {
        #[serde(with = "serde_bytes")]
        nonce: Vec<u8>,
        #[serde(with = "serde_bytes")]
        proof: Vec<u8>,
    },
    /// Not admitted, and why (the connection closes).
    Refused { reason: String },
}

/// The dialer's answer to a [`PeerAdmission::Challenge`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerProof {
    #[serde(with = "serde_bytes")]
    pub proof: Vec<u8>,
}

/// A client's request. `id` matches the response on this connection (requests may be pipelined).
/// `(client_id, seq)` names the command across retries and connections: a node applies a command
/// with the same pair at most once and answers a retry with the original answer (Raft thesis §6.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    pub id: u64,
    pub client_id: u64,
    pub seq: u64,
    pub op: ClientOp,
}

/// The operations of the key-value state machine, plus the status query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientOp {
    /// Linearizable read (ReadIndex) unless the node runs with an unsafe read mode.
    Get { key: String },
    /// A write: it goes through the Raft log as it is (see [`WriteOp`]).
    Write(WriteOp),
    /// Role, term, leader and log positions of the node that answers. Never goes through Raft.
    Status,
    /// A fingerprint of the node's state machine at its applied index ([`StateDigest`]), to
    /// compare replicas. Never goes through Raft; costs the node one pass over its store.
    Digest,
    /// A change of the cluster itself ([`AdminOp`]): answered by the leader once the change is
    /// committed (a change of voters: once the final configuration C_new is), or for a
    /// leadership transfer once the target leads. `client_id` and `seq` are not used.
    Admin(AdminOp),
}

/// What an operator asks of the cluster: membership changes (Raft paper §6: a change of voters
/// goes through the joint configuration C_old,new) and leadership transfer (thesis §3.10).
/// Only the leader takes them; one membership change is in flight at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminOp {
    /// Add node `id`, reachable (and dialling from) `addr` (IP:PORT), as a non-voting learner:
    /// it receives the log or a snapshot and counts in no majority. Start it with `--join`.
    AddLearner { id: NodeId, addr: String },
    /// Make learner `id` a voter, once it is within the leader's bound of the log's end.
    Promote { id: NodeId },
    /// Remove voter or learner `id`. A leader that removes itself steps down once the change
    /// commits.
    Remove { id: NodeId },
    /// Add `add` as a voter (a caught-up learner, or a new node at `addr`) and remove voter
    /// `remove`, in one joint change.
    Replace {
        add: NodeId,
        #[serde(default)]
        addr: Option<String>,
        remove: NodeId,
    },
    /// Hand leadership to voter `to`: the leader stops taking writes, brings `to` up to date and
    /// tells it to campaign at once. Abandoned (a definite `ChangeRefused`) if `to` is not
    /// leading within an election timeout; writes then resume.
    TransferLeader { to: NodeId },
    /// A test hook for the bench's `slow-apply` fault, local to the node asked (not
    /// replicated, forgotten on restart): its state machine applies each committed entry no
    /// sooner than `delay_ms` after the node learned that it committed (0: at once again).
    /// Answered `Admin(done)` at once, by any node.
    SlowApply { delay_ms: u64 },
    /// A test hook for the bench's `reorder` fault, local to the node asked (forgotten on
    /// restart): each peer message it sends is, with probability one half, held back for a
    /// random time up to `max_delay_ms` (so that later ones overtake it on the link) or sent
    /// at once and again that much later (a duplicate that arrives late), drawn from `seed`.
    /// 0 sends everything at once again. Answered `Admin(done)` at once, by any node.
    Reorder { max_delay_ms: u64, seed: u64 },
}

impl AdminOp {
    /// A short description for logs and error messages: `add-learner 4 at 127.0.0.14:7000`.
    pub fn describe(&self) -> String {
        match self {
            AdminOp::AddLearner { id, addr } => format!("add-learner {id} at {addr}"),
            AdminOp::Promote { id } => format!("promote {id}"),
            AdminOp::Remove { id } => format!("remove {id}"),
            AdminOp::Replace { add, addr, remove } => match addr {
                Some(addr) => format!("replace {remove} by {add} at {addr}"),
                None => format!("replace {remove} by {add}"),
            },
            AdminOp::TransferLeader { to } => format!("transfer-leader to {to}"),
            AdminOp::SlowApply { delay_ms } => format!("slow-apply {delay_ms} ms"),
            AdminOp::Reorder { max_delay_ms, .. } => format!("reorder up to {max_delay_ms} ms"),
        }
    }
}

/// The writes of the key-value state machine: what a client asks for, and what the node puts in
/// its log (inside the command that names the client session).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteOp {
    /// Sets `key` to `value`.
    Put { key: String, value: String },
    /// Sets `key` to `new` if it currently holds `expected`. A missing key fails definitely.
    Cas {
        key: String,
        expected: String,
        new: String,
    },
    /// Appends `suffix` to the key's value (a missing key counts as empty).
    Append { key: String, suffix: String },
}

impl WriteOp {
    /// The key the write changes.
    pub fn key(&self) -> &str {
        match self {
            WriteOp::Put { key, .. } | WriteOp::Cas { key, .. } | WriteOp::Append { key, .. } => {
                key
            }
        }
    }
}

/// A node's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientResponse {
    pub id: u64,
    pub result: ClientResult,
}

/// What the node knows about the outcome. Only `Ok` and `Fail` are definite; the client decides
/// what everything else means (a timeout, for one, is never a failure).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientResult {
    /// The operation took effect (or, for a read, was answered linearizably).
    Ok(Reply),
    /// The operation definitely did not and will never take effect.
    Fail(FailReason),
    /// This node is not the leader and did not append the command. Try `leader_hint` if given.
    NotLeader { leader_hint: Option<LeaderHint> },
    /// The command was appended to this node's log, but the node lost leadership before it
    /// committed: it may still take effect later, or never. Clients must record it as `info`.
    Indeterminate { reason: String },
    /// The answer to [`ClientOp::Status`] (boxed: it is by far the largest answer, and every
    /// answer of the hot path would otherwise be as large).
    Status(Box<Status>),
    /// The answer to [`ClientOp::Digest`].
    Digest(StateDigest),
    /// An [`AdminOp`] is done: the configuration now committed, and who leads.
    Admin(AdminDone),
}

/// What a completed [`AdminOp`] leaves: the committed configuration and the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminDone {
    pub membership: MembershipStatus,
    pub leader: Option<NodeId>,
}

/// Who is in the cluster, as one node sees it: the configuration in force on that node (the
/// newest in its log, committed or not: Raft paper §6).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipStatus {
    /// The voters (C_new during a joint change).
    pub voters: Vec<NodeId>,
    /// Non-voting members that receive the log.
    pub learners: Vec<NodeId>,
    /// During a joint change C_old,new, the outgoing voters C_old; else empty.
    pub outgoing: Vec<NodeId>,
    /// The members' addresses the configuration carries (those added at runtime, and those the
    /// node was started with).
    pub addresses: BTreeMap<NodeId, String>,
    /// The newest configuration is not yet committed, or is joint: a change is in flight.
    pub changing: bool,
}

impl MembershipStatus {
    /// `voters [1, 2, 3]`, `voters [1, 2, 4] (joint, leaving [1, 2, 3]) learners [5]`.
    pub fn describe(&self) -> String {
        let mut s = format!("voters {:?}", self.voters);
        if !self.outgoing.is_empty() {
            s += &format!(" (joint, leaving {:?})", self.outgoing);
        }
        if !self.learners.is_empty() {
            s += &format!(" learners {:?}", self.learners);
        }
        if self.changing && self.outgoing.is_empty() {
            s += " (not yet committed)";
        }
        s
    }
}

/// Where a follower thinks the leader is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderHint {
    pub id: NodeId,
    pub addr: String,
}

/// The value part of an `Ok`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// A read's result: `None` if the key has never been written.
    Value(Option<String>),
    /// A write that took effect.
    Done,
}

/// Why an operation definitely failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailReason {
    /// CAS found another value; `actual` is what it found.
    CasMismatch { actual: String },
    /// CAS on a key that has never been written.
    KeyMissing,
    /// The request made no sense (empty key, a sequence number older than the session allows...).
    BadRequest(String),
    /// The node is shutting down or overloaded and did not append the command.
    Unavailable(String),
    /// The client session was expired by the state machine (it keeps a bounded number of
    /// sessions, Raft thesis §6.3), so it can no longer tell whether this command already
    /// applied. The command was not applied now; start a new session (a new client id).
    SessionExpired,
    /// An [`AdminOp`] the leader refused, and why (a change already in flight, an unknown node,
    /// a learner not caught up, a transfer abandoned...). Nothing changed. `retry`: the same
    /// request may well succeed shortly, unchanged (a learner still catching up, a leader that
    /// has not committed in its term yet, another change or a transfer in flight).
    ChangeRefused { reason: String, retry: bool },
}

/// The role a node plays in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// A snapshot of a node's Raft state, for the runner, the nemesis and people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit_index: Index,
    pub applied_index: Index,
    pub last_log_index: Index,
    /// Index of the first entry still in the log (after snapshots discarded a prefix).
    pub first_log_index: Index,
    /// Snapshots and compaction, as this node sees them (all zero before the first snapshot).
    #[serde(default)]
    pub snapshot: SnapshotStatus,
    /// Peer connections this process refused: an address that is not the claimed node's, another
    /// cluster's id, a missing or wrong secret.
    #[serde(default)]
    pub refused_peers: u64,
    /// Set when a leader replaced entries this node had committed: what happened. The node then
    /// applies nothing more until it restarts.
    #[serde(default)]
    pub safety_violation: Option<String>,
    /// The configuration in force on this node: voters, learners, the joint state.
    #[serde(default)]
    pub membership: MembershipStatus,
    /// The `reorder` test hook on this node's outbound peer links: its setting and what it did.
    #[serde(default)]
    pub reorder: ReorderStatus,
}

/// What a node's `status` says about its `reorder` hook (all zero: never turned on).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReorderStatus {
    /// The longest hold now (0: off).
    pub max_delay_ms: u64,
    /// Peer messages held back, and peer messages sent twice, since the hook was last turned on
    /// (they stay once it is off, to say what it did).
    pub held: u64,
    pub copied: u64,
}

/// What a node's `status` says about its snapshots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStatus {
    /// The last log index the node's newest snapshot covers (0: none yet).
    pub last_index: Index,
    /// The size of that snapshot file in bytes.
    pub bytes: u64,
    /// Snapshots this process took of its own state machine.
    pub taken: u64,
    /// Snapshots this process installed from a leader (InstallSnapshot).
    pub installed: u64,
    /// Snapshots this process sent to followers, counted when the follower confirmed.
    pub sent: u64,
    /// Client sessions the state machine holds, and sessions it expired so far.
    pub sessions: u64,
    pub sessions_expired: u64,
    /// Keys in the state machine.
    #[serde(default)]
    pub keys: u64,
}

/// A node's state machine, fingerprinted at its applied index. Two nodes that have applied the
/// same index must report equal `data` and `sessions` (Raft's State Machine Safety); anything
/// else means a replica diverged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDigest {
    pub id: NodeId,
    /// The index the state machine had applied when it was fingerprinted.
    pub applied_index: Index,
    /// The term of that entry (0 before the first).
    pub applied_term: Term,
    /// Keys in the store.
    pub keys: u64,
    /// Live client sessions.
    pub sessions: u64,
    /// An order-independent hash of every key and value.
    pub data_digest: u64,
    /// The same of the session table: each session's last command and cached answer, the
    /// tombstones, the expiry clock.
    pub session_digest: u64,
}
