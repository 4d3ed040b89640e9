//! The membership fault's words: what it changes ([`Change`]), what it asks the cluster
//! ([`MemberChange`]), what the cluster answers ([`ChangeAnswer`]), and the runner's part
//! ([`Operator`]): starting a new node, carrying out a change through the leader, wiping a
//! removed node's data. The loop that uses them is in [`crate::nemesis`].
//!
//! # What one fault does
//!
//! Every start changes the set of voters and every stop changes it back to the planned size, the
//! way operators replace machines:
//!
//! | change | start | stop |
//! |---|---|---|
//! | `grow` | a new node (fresh id) joins as a learner, catches up, is promoted | a voter drawn at random (the leader too) is removed, killed and wiped |
//! | `shrink` | a voter drawn at random (the leader too) is removed; it keeps running, cut off from the configuration, and must not disrupt the cluster | the removed node is killed and wiped, and a new node joins and is promoted |
//! | `replace` | a new node joins as a learner and is swapped in for a voter drawn at random, in one joint change | the removed node is killed and wiped |
//! | `stranded` | a new node joins as a learner; a partition leaves the leader with one other voter and the new node; at once, that leader alone is asked to swap the new node in for a voter on the far side ([`crate::nemesis`]'s `stranded` module says why) | the partition is healed; the removed node, if the change went through, is killed and wiped |
//! | `disjoint` | with an even number of voters (an odd count first loses a voter, killed and wiped), a new node joins as a learner; the leader is cut off with it and asked to promote it; the other voters' links are slowed, and the moment one of them is elected, a cut moves ⌊n/2⌋−1 of its voters to the old leader's side before its first entries reach them, and the new leader is asked to remove the old one ([`crate::nemesis`]'s `disjoint` module says why) | the cuts and delays are healed, the removed node (if any) is killed and wiped, leftover learners removed, and voters added back to the planned count |
//!
//! A removed node never comes back under its id: a node with wiped data and an old id could vote
//! a second time in a term it voted in before. New nodes take fresh ids, the next above every
//! id used so far (addresses 127.0.0.(10+id), so at most [`riptide_proto::MAX_NODE_ID`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::supervisor::NodeSpec;
use crate::NodeId;

/// What a membership fault does to the set of voters (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Grow,
    Shrink,
    Replace,
    /// A replace asked of a leader just cut off from a majority of the old voters.
    Stranded,
    /// Two single-server changes asked of two leaders of an even-sized configuration, the
    /// second before it has committed in its term (the 2015 bug's scenario, [`crate::nemesis`]'s
    /// `disjoint.rs`).
    Disjoint,
}

impl Change {
    /// Every change, in the order the schedule draws from.
    pub const ALL: [Change; 5] = [
        Change::Grow,
        Change::Shrink,
        Change::Replace,
        Change::Stranded,
        Change::Disjoint,
    ];

    /// What an unpinned `membership` draws from, uniformly: `stranded` and `disjoint` a third
    /// of the time each, the others a ninth each. `stranded` holds a configuration open in its
    /// joint phase (a healthy leader's lasts one round trip) and `disjoint` holds a new
    /// leader's term uncommitted: the two windows where the worst membership bugs live, which a
    /// change drawn at random almost never meets, and a 60 s run has room for only about one
    /// membership fault. The others exercise the plumbing every change needs (and `grow` and
    /// `shrink` a joint change each too).
    pub const DRAWN: [Change; 9] = [
        Change::Grow,
        Change::Shrink,
        Change::Replace,
        Change::Stranded,
        Change::Stranded,
        Change::Stranded,
        Change::Disjoint,
        Change::Disjoint,
        Change::Disjoint,
    ];

    /// The name on the command line (`membership:grow`) and in the history.
    pub fn name(self) -> &'static str {
        match self {
            Change::Grow => "grow",
            Change::Shrink => "shrink",
            Change::Replace => "replace",
            Change::Stranded => "stranded",
            Change::Disjoint => "disjoint",
        }
    }

    /// Whether the change cuts links too (and so needs the firewall, and is of the network class
    /// as well for `--nemesis-overlap`).
    pub fn cuts_links(self) -> bool {
        matches!(self, Change::Stranded | Change::Disjoint)
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Change {
    type Err = String;

    fn from_str(s: &str) -> Result<Change, String> {
        Change::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown membership change `{s}` (grow, shrink, replace, stranded, disjoint)"
                )
            })
    }
}

/// One request to the cluster's leader, as the runner's admin client sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    /// Add node `id` (already started, empty, with `--join`) as a learner.
    AddLearner(NodeId),
    /// Make learner `id` a voter, once it has caught up.
    Promote(NodeId),
    /// Remove voter or learner `id`.
    Remove(NodeId),
    /// Swap learner `add` in for voter `remove`, in one joint change.
    Replace { add: NodeId, remove: NodeId },
}

impl fmt::Display for MemberChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberChange::AddLearner(id) => write!(f, "add learner n{id}"),
            MemberChange::Promote(id) => write!(f, "promote n{id}"),
            MemberChange::Remove(id) => write!(f, "remove n{id}"),
            MemberChange::Replace { add, remove } => write!(f, "replace n{remove} by n{add}"),
        }
    }
}

/// What the cluster answered to a [`MemberChange`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeAnswer {
    /// Committed; the voters now.
    Done { voters: Vec<NodeId> },
    /// Definitely not done, and why (refused, no leader reachable in time).
    Refused(String),
    /// May or may not have happened, and why.
    Unknown(String),
}

/// The configuration the leader reports.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Configuration {
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
}

/// The runner's part of the membership fault: this crate does not speak the node protocol and
/// does not know how nodes are laid out on disk.
pub trait Operator: Send + Sync {
    /// The spec to start node `id` with: new, with an empty data dir, joining a cluster whose
    /// voters are `members` (`riptide-node --join`). The nemesis spawns it.
    fn joining_node(&self, id: NodeId, members: &[NodeId]) -> Result<NodeSpec, String>;

    /// Carries out `change` through the leader and waits for its outcome, retrying while the
    /// leader refuses it as retryable (a learner still catching up, another change in flight).
    fn change(&self, change: MemberChange) -> ChangeAnswer;

    /// Sends `change` to node `at` alone, once, and waits up to `timeout` for its answer: no
    /// redirect to another leader, no retry. A node that is not the leader refuses it.
    fn change_at(&self, at: NodeId, change: MemberChange, timeout: Duration) -> ChangeAnswer;

    /// The configuration the leader has, if a leader answers.
    fn configuration(&self) -> Option<Configuration>;

    /// Node `id` left for good and is dead: remove its data (and anything else it had).
    fn wipe(&self, id: NodeId) -> Result<(), String>;
}

/// How a membership start or stop ended: the op's `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeOutcome {
    /// Every step committed.
    Done,
    /// A step was definitely refused: the voters are as `voters` says.
    Refused,
    /// A step's outcome is unknown: `voters` is what the leader reported afterwards, if any.
    Unknown,
    /// Nothing to change (no fresh id left, nobody to remove).
    Skipped,
}

/// A membership start or stop, as recorded in the history value (flattened): `change`,
/// `added`, `removed`, `wiped`, `outcome`, `voters`, `reason`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MembershipRecord {
    pub change: Change,
    /// The new node that joined (or was meant to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<NodeId>,
    /// The voter removed (or meant to be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<NodeId>,
    /// Removed nodes killed and wiped by this step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wiped: Vec<NodeId>,
    pub outcome: ChangeOutcome,
    /// The voters after the step, as the nemesis knows them.
    pub voters: Vec<NodeId>,
    /// Why it was refused, unknown or skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl MembershipRecord {
    pub(crate) fn new(change: Change) -> MembershipRecord {
        MembershipRecord {
            change,
            added: None,
            removed: None,
            wiped: Vec::new(),
            outcome: ChangeOutcome::Done,
            voters: Vec::new(),
            reason: None,
        }
    }

    /// Records a step that did not go through (the first such reason is kept).
    pub(crate) fn fail(&mut self, outcome: ChangeOutcome, reason: String) {
        if self.outcome == ChangeOutcome::Done {
            self.outcome = outcome;
            self.reason = Some(reason);
        }
    }
}

/// The member a draw picks: `draw` modulo the number of sorted `members`.
pub fn drawn_member(draw: u64, members: &[NodeId]) -> Option<NodeId> {
    let mut sorted = members.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.is_empty() {
        return None;
    }
    sorted.get((draw % sorted.len() as u64) as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_parse_by_name_and_refuse_others() {
        for change in Change::ALL {
            assert_eq!(change.name().parse::<Change>(), Ok(change));
        }
        let err = "swap".parse::<Change>().unwrap_err();
        assert!(err.contains("`swap`") && err.contains("grow, shrink, replace"));
    }

    #[test]
    fn a_draw_picks_among_the_sorted_members() {
        assert_eq!(drawn_member(0, &[5, 1, 3]), Some(1));
        assert_eq!(drawn_member(4, &[5, 1, 3]), Some(3));
        assert_eq!(drawn_member(7, &[]), None);
    }

    #[test]
    fn a_record_keeps_the_first_failure() {
        let mut record = MembershipRecord::new(Change::Replace);
        record.fail(ChangeOutcome::Unknown, "lost".into());
        record.fail(ChangeOutcome::Refused, "later".into());
        assert_eq!(record.outcome, ChangeOutcome::Unknown);
        assert_eq!(record.reason.as_deref(), Some("lost"));
        let value = serde_json::to_value(&record).unwrap();
        assert_eq!(value["change"], "replace");
        assert!(value.get("added").is_none() && value.get("wiped").is_none());
    }
}
