//! The ids every message carries: which node, which term, which log position.
//!
//! Plain integers, named after what they count. The Raft core's own types (entries, the hard
//! state) stay in `riptide-node`, which re-uses these names.

/// A node's identity in the cluster: 1, 2, ... Node `i` listens on [`crate::node_ip`]`(i)`.
pub type NodeId = u64;

/// A Raft term: a logical clock that only moves forward (Raft paper §5.1).
pub type Term = u64;

/// A position in the replicated log. The first entry has index 1; index 0 means "before the log".
pub type Index = u64;
