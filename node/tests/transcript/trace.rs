//! The trace a command prints: message lines (which `run` leaves out), and the state changes,
//! applied entries and reads that are always kept, each effect of a delivery indented below it.
//! A node's state is compared with what was last printed of it, so only changes appear.

use riptide_node::protocol::Role;
use riptide_node::raft::Raft;
use riptide_node::types::{Index, NodeId, Term};

/// The lines a command prints. Message lines can be silenced (`run` does) while state changes,
/// applied entries and reads are always kept; effects of a delivery are indented below it.
#[derive(Default)]
pub struct Trace {
    lines: Vec<String>,
    pub depth: usize,
    pub quiet: bool,
    /// Printed before the next line, if any line comes (a `run` round's title).
    pub header: Option<String>,
}

impl Trace {
    pub fn push(&mut self, text: String, is_message: bool) {
        if self.quiet && is_message {
            return;
        }
        if let Some(header) = self.header.take() {
            self.lines.push(header);
        }
        let depth = if self.quiet { 1 } else { self.depth };
        self.lines.push(format!("{}{text}", "  ".repeat(depth)));
    }

    pub fn event(&mut self, text: String) {
        self.push(text, false);
    }

    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.lines)
    }
}

/// The part of a node's state whose changes the trace reports.
#[derive(Clone, PartialEq)]
pub struct Observed {
    role: Role,
    term: Term,
    vote: Option<NodeId>,
    leader: Option<NodeId>,
    commit: Index,
    last: (Index, Term),
}

impl Observed {
    pub fn of(raft: &Raft) -> Observed {
        Observed {
            role: raft.role(),
            term: raft.term(),
            vote: raft.voted_for(),
            leader: raft.leader(),
            commit: raft.log().commit_index(),
            last: (raft.log().last_index(), raft.log().last_term()),
        }
    }

    /// `role=… term=…` for the fields that differ from `before` (all of them without `before`).
    pub fn describe(&self, before: Option<&Observed>) -> String {
        let fields = [
            (
                "role",
                role_name(self.role),
                before.map(|b| role_name(b.role)),
            ),
            (
                "term",
                self.term.to_string(),
                before.map(|b| b.term.to_string()),
            ),
            (
                "vote",
                id_or_none(self.vote),
                before.map(|b| id_or_none(b.vote)),
            ),
            (
                "leader",
                id_or_none(self.leader),
                before.map(|b| id_or_none(b.leader)),
            ),
            (
                "commit",
                self.commit.to_string(),
                before.map(|b| b.commit.to_string()),
            ),
            (
                "last",
                position(self.last),
                before.map(|b| position(b.last)),
            ),
        ];
        let changed: Vec<String> = fields
            .into_iter()
            .filter(|(_, now, was)| was.as_ref() != Some(now))
            .map(|(name, now, _)| format!("{name}={now}"))
            .collect();
        changed.join(" ")
    }
}

pub fn role_name(role: Role) -> String {
    format!("{role:?}").to_lowercase()
}

pub fn id_or_none(id: Option<NodeId>) -> String {
    id.map_or("none".to_string(), |id| id.to_string())
}

fn position((index, term): (Index, Term)) -> String {
    format!("{index}@{term}")
}
