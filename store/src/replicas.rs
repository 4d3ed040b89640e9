//! `replicas.json`: the nodes' state machines, compared after the run.
//!
//! Linearizability is judged from what clients saw. A replica can be wrong without any client
//! seeing it: a follower that installed a snapshot but kept its old state, or applied an entry
//! that the others replaced, answers no read until it leads. Raft's State Machine Safety
//! property gives a direct check: nodes that have applied the same index hold the same state.
//! So after the final reads the runner asks every node for the digest of its state machine
//! (`ClientOp::Digest`), until all of them report the same applied index, and stores what they
//! said here. [`ReplicaCheck::compare`] decides:
//!
//! - `agree`: every node answered at the same applied index with the same digests;
//! - `diverged`: two nodes at the same applied index hold different states. The run is invalid,
//!   whatever the checker says of the history, and the note names the odd ones out;
//! - `incomplete`: some node never answered, or the nodes never stood at one applied index
//!   within the deadline; nodes that did share an index were still compared (and any
//!   difference among them is `diverged`). It says nothing against the run.
//!
//! The runner also asks each node's `status` whether it saw a leader replace entries it had
//! committed ([`ReplicaCheck::violations`]): such a node stopped applying, and reports it. That
//! makes the run invalid too, whatever the comparison says.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{files, Result};

/// One node's answer: its applied index and the digests of its store there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDigest {
    pub id: u64,
    pub applied_index: u64,
    #[serde(default)]
    pub applied_term: u64,
    #[serde(default)]
    pub keys: u64,
    #[serde(default)]
    pub sessions: u64,
    /// Hex, so that readers in any language keep all 64 bits.
    pub data_digest: String,
    pub session_digest: String,
}

/// What the comparison decided (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplicaOutcome {
    Agree,
    Diverged,
    Incomplete,
}

/// `replicas.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaCheck {
    pub outcome: ReplicaOutcome,
    /// One sentence a person reads: what agreed, or who differed from whom and where.
    pub note: String,
    /// The last answer of every node that answered, in node order.
    pub nodes: Vec<NodeDigest>,
    /// Nodes that never answered, and the last error each gave.
    #[serde(default)]
    pub unanswered: BTreeMap<u64, String>,
    /// Nodes that reported a safety violation in their status (a leader replaced entries they
    /// had committed), with what each said.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub violations: BTreeMap<u64, String>,
}

impl ReplicaCheck {
    /// Adds what the nodes' status said about safety violations.
    pub fn with_violations(mut self, violations: BTreeMap<u64, String>) -> ReplicaCheck {
        self.violations = violations;
        self
    }

    /// Whether this makes the run invalid: replicas diverged, or a node saw its committed
    /// entries replaced.
    pub fn is_invalid(&self) -> bool {
        self.outcome == ReplicaOutcome::Diverged || !self.violations.is_empty()
    }

    /// One line per node violation, for the summary.
    pub fn describe_violations(&self) -> Vec<String> {
        let line = |(id, what): (&u64, &String)| format!("n{id}: {what}");
        self.violations.iter().map(line).collect()
    }

    /// Compares the nodes' last answers: nodes at the same applied index must agree.
    pub fn compare(mut nodes: Vec<NodeDigest>, unanswered: BTreeMap<u64, String>) -> ReplicaCheck {
        nodes.sort_by_key(|n| n.id);
        let mut by_index: BTreeMap<u64, Vec<&NodeDigest>> = BTreeMap::new();
        for node in &nodes {
            by_index.entry(node.applied_index).or_default().push(node);
        }
        let differences: Vec<String> = by_index
            .iter()
            .filter_map(|(index, group)| difference(*index, group))
            .collect();
        let (outcome, note) = if !differences.is_empty() {
            (ReplicaOutcome::Diverged, differences.join("; "))
        } else if nodes.is_empty() {
            (ReplicaOutcome::Incomplete, "no node answered".to_string())
        } else if by_index.len() == 1 && unanswered.is_empty() {
            let index = nodes[0].applied_index;
            let note = format!(
                "{} nodes agree at applied index {index} ({} keys, {} sessions)",
                nodes.len(),
                nodes[0].keys,
                nodes[0].sessions
            );
            (ReplicaOutcome::Agree, note)
        } else {
            (
                ReplicaOutcome::Incomplete,
                incomplete_note(&by_index, &unanswered),
            )
        };
        ReplicaCheck {
            outcome,
            note,
            nodes,
            unanswered,
            violations: BTreeMap::new(),
        }
    }

    /// Writes `dir/replicas.json` atomically.
    pub fn store(&self, dir: &Path) -> Result<()> {
        crate::layout::write_json(&dir.join(files::REPLICAS), self)
    }

    /// Reads `dir/replicas.json`; `Ok(None)` if the run has none (older runs, runs whose
    /// final steps were skipped).
    pub fn load(dir: &Path) -> Result<Option<ReplicaCheck>> {
        let path = dir.join(files::REPLICAS);
        if !path.exists() {
            return Ok(None);
        }
        crate::error::read_json(&path).map(Some)
    }
}

/// How the nodes at one applied index differ, if they do: the states held by the fewest nodes
/// are named as the odd ones out, against the most common state.
fn difference(index: u64, group: &[&NodeDigest]) -> Option<String> {
    let mut states: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
    for node in group {
        let state = (node.data_digest.as_str(), node.session_digest.as_str());
        states.entry(state).or_default().push(node.id);
    }
    if states.len() < 2 {
        return None;
    }
    let mut states: Vec<((&str, &str), Vec<u64>)> = states.into_iter().collect();
    // The most common state first; ties broken by the lowest node id, for a stable note.
    states.sort_by_key(|(_, ids)| (std::cmp::Reverse(ids.len()), ids[0]));
    let (reference, majority) = &states[0];
    let odd: Vec<String> = states[1..]
        .iter()
        .map(|(state, ids)| {
            let what = match (state.0 != reference.0, state.1 != reference.1) {
                (true, true) => "data and sessions",
                (true, false) => "data",
                _ => "sessions",
            };
            format!("{} ({what})", names(ids))
        })
        .collect();
    Some(format!(
        "at applied index {index}, {} differ from {}",
        odd.join(", "),
        names(majority)
    ))
}

fn incomplete_note(
    by_index: &BTreeMap<u64, Vec<&NodeDigest>>,
    unanswered: &BTreeMap<u64, String>,
) -> String {
    let mut parts: Vec<String> = by_index
        .iter()
        .map(|(index, group)| {
            let ids: Vec<u64> = group.iter().map(|n| n.id).collect();
            format!("{} at applied index {index}", names(&ids))
        })
        .collect();
    if !unanswered.is_empty() {
        let ids: Vec<u64> = unanswered.keys().copied().collect();
        parts.push(format!("{} did not answer", names(&ids)));
    }
    format!(
        "not all nodes compared: {}; nodes at the same index agree",
        parts.join(", ")
    )
}

fn names(ids: &[u64]) -> String {
    let names: Vec<String> = ids.iter().map(|id| format!("n{id}")).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u64, applied_index: u64, data: &str, sessions: &str) -> NodeDigest {
        NodeDigest {
            id,
            applied_index,
            applied_term: 2,
            keys: 10,
            sessions: 3,
            data_digest: data.into(),
            session_digest: sessions.into(),
        }
    }

    #[test]
    fn equal_states_at_one_index_agree() {
        let check = ReplicaCheck::compare(
            vec![
                node(2, 50, "a", "s"),
                node(1, 50, "a", "s"),
                node(3, 50, "a", "s"),
            ],
            BTreeMap::new(),
        );
        assert_eq!(check.outcome, ReplicaOutcome::Agree, "{}", check.note);
        assert_eq!(
            check.note,
            "3 nodes agree at applied index 50 (10 keys, 3 sessions)"
        );
        assert_eq!(check.nodes[0].id, 1, "sorted by node");
    }

    #[test]
    fn the_odd_node_out_is_named_with_what_differs() {
        let check = ReplicaCheck::compare(
            vec![
                node(1, 50, "a", "s"),
                node(2, 50, "b", "s"),
                node(3, 50, "a", "s"),
            ],
            BTreeMap::new(),
        );
        assert_eq!(check.outcome, ReplicaOutcome::Diverged);
        assert_eq!(
            check.note,
            "at applied index 50, n2 (data) differ from n1, n3"
        );
        let check = ReplicaCheck::compare(
            vec![
                node(1, 50, "a", "s"),
                node(2, 50, "a", "t"),
                node(3, 50, "a", "s"),
            ],
            BTreeMap::new(),
        );
        assert_eq!(
            check.note,
            "at applied index 50, n2 (sessions) differ from n1, n3"
        );
    }

    #[test]
    fn a_difference_among_some_nodes_counts_even_if_others_lag() {
        let mut unanswered = BTreeMap::new();
        unanswered.insert(5, "connection refused".to_string());
        let check = ReplicaCheck::compare(
            vec![
                node(1, 50, "a", "s"),
                node(2, 50, "b", "t"),
                node(3, 49, "x", "y"),
                node(4, 50, "a", "s"),
            ],
            unanswered,
        );
        assert_eq!(check.outcome, ReplicaOutcome::Diverged);
        assert!(
            check
                .note
                .contains("n2 (data and sessions) differ from n1, n4"),
            "{}",
            check.note
        );
    }

    #[test]
    fn nodes_at_different_indexes_or_silent_are_incomplete_not_diverged() {
        let check = ReplicaCheck::compare(
            vec![
                node(1, 50, "a", "s"),
                node(2, 49, "b", "t"),
                node(3, 50, "a", "s"),
            ],
            BTreeMap::new(),
        );
        assert_eq!(check.outcome, ReplicaOutcome::Incomplete);
        assert!(
            check.note.contains("n2 at applied index 49"),
            "{}",
            check.note
        );
        let mut unanswered = BTreeMap::new();
        unanswered.insert(3, "timed out".to_string());
        let check = ReplicaCheck::compare(
            vec![node(1, 50, "a", "s"), node(2, 50, "a", "s")],
            unanswered,
        );
        assert_eq!(check.outcome, ReplicaOutcome::Incomplete);
        assert!(check.note.contains("n3 did not answer"), "{}", check.note);
        let none = ReplicaCheck::compare(vec![], BTreeMap::new());
        assert_eq!(none.outcome, ReplicaOutcome::Incomplete);
    }

    #[test]
    fn stored_and_loaded_back_and_absent_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ReplicaCheck::load(dir.path()).unwrap(), None);
        let check = ReplicaCheck::compare(vec![node(1, 5, "a", "s")], BTreeMap::new());
        check.store(dir.path()).unwrap();
        assert_eq!(ReplicaCheck::load(dir.path()).unwrap(), Some(check));
        std::fs::write(dir.path().join("replicas.json"), "{").unwrap();
        let err = ReplicaCheck::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("replicas.json"), "{err}");
    }
}
