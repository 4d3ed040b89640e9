//! Which in-flight messages a command (`deliver`, `drop`, `duplicate`, …) or an assertion acts on.

use riptide_node::raft::{AppendResult, Body, Message};
use riptide_node::types::{Index, NodeId, Term};

/// Which in-flight messages a command acts on. Every field left `None` matches everything.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub from: Option<NodeId>,
    pub to: Option<NodeId>,
    /// A message type as [`Body::kind`] names it, compared case-insensitively.
    pub kind: Option<String>,
    pub term: Option<Term>,
    /// Refused vote or failed append (true), or anything else (false).
    pub rejected: Option<bool>,
    /// An AppendEntries carrying the entry at this index.
    pub carries: Option<Index>,
}

impl Filter {
    pub fn matches(&self, m: &Message) -> bool {
        let rejected = matches!(
            m.body,
            Body::RequestVoteResponse { granted: false, .. }
                | Body::AppendEntriesResponse {
                    result: AppendResult::Reject { .. },
                    ..
                }
        );
        let carries = |index| {
            matches!(&m.body, Body::AppendEntries { entries, .. }
                if entries.iter().any(|e| e.index == index))
        };
        self.from.is_none_or(|x| x == m.from)
            && self.to.is_none_or(|x| x == m.to)
            && (self.kind.as_ref()).is_none_or(|k| k.eq_ignore_ascii_case(m.body.kind()))
            && self.term.is_none_or(|t| t == m.term)
            && self.rejected.is_none_or(|r| r == rejected)
            && self.carries.is_none_or(carries)
    }
}
