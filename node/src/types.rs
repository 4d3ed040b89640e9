//! The vocabulary shared by the Raft core, storage and the server: node ids, terms, indexes, log
//! entries and the hard state that must survive a crash.

use serde::{Deserialize, Serialize};

/// Node ids, terms and log indexes are the wire protocol's ([`riptide_proto::ids`]): messages
/// carry them, and they must mean the same on both sides.
pub use riptide_proto::{Index, NodeId, Term};

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub payload: Payload,
}

/// What an entry carries. The core treats commands as opaque bytes: it replicates and commits them,
/// the state machine gives them meaning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Appended by a new leader so that it can commit an entry of its own term (Raft paper §8);
    /// until that happens it can neither commit older entries nor serve ReadIndex reads.
    Noop,
    /// A serialized state-machine command. On the wire it is MessagePack bin (one length and
    /// the bytes), not an array of integers.
    Command(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// The part of a node's state that must be durable before it answers anything that depends on it
/// (Raft paper Figure 2, "persistent state"). Forgetting a vote means voting twice in one term,
/// which means two leaders in one term.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
}

/// What a snapshot covers: the log up to and including `last_index` (whose entry had
/// `last_term`), and the cluster configuration as of that entry. The state machine's data travels
/// with it; the core treats the whole snapshot image as opaque bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub last_index: Index,
    pub last_term: Term,
    /// The voters of the configuration in force at `last_index`.
    pub voters: Vec<NodeId>,
}
