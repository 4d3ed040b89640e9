//! A [`Plan`]: one fault, decided by the [`crate::schedule::Schedule`] but not yet applied, and
//! what the nemesis asks of it: its family and overlap classes, the nodes it stops, whether it
//! depends on who leads (and the plan with the live leader swapped in), the iptables rules it
//! applies.

use crate::disk::CutMode;
use crate::firewall::{Rule, RuleKind};
use crate::partition::{self, Grudge, Partition, PartitionKind};
use crate::schedule::{link_delay, loss_links};
use crate::spec::{Change, Class, Family, Target};
use crate::NodeId;

/// One fault, decided but not yet applied.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Plan {
    /// SIGKILL `nodes`; restart them at the stop.
    Kill { target: Target, nodes: Vec<NodeId> },
    /// SIGKILL `nodes` and restart them at once; the stop has nothing left to undo.
    Restart { target: Target, nodes: Vec<NodeId> },
    /// SIGSTOP `nodes`; SIGCONT them at the stop.
    Pause { target: Target, nodes: Vec<NodeId> },
    /// Cut links with DROP rules; flush them at the stop.
    Partition(Partition),
    /// Drop packets with `probability` on every link to or from `nodes` (`links` says which).
    Loss {
        target: Target,
        nodes: Vec<NodeId>,
        probability: f64,
        links: Grudge,
    },
    /// Slow every link to or from `nodes` (`links` says which): each directed link holds its
    /// packets back for its own time in 1..=`max_ms` ms, drawn from `seed` and the link's two
    /// ends ([`link_delay`]). Flushed at the stop.
    Delay {
        target: Target,
        nodes: Vec<NodeId>,
        max_ms: u16,
        seed: u64,
        links: Grudge,
    },
    /// SIGKILL `nodes`, drop what their disks had not synced (`cut`); restart them at the stop.
    PowerCut {
        target: Target,
        nodes: Vec<NodeId>,
        cut: CutMode,
    },
    /// SIGKILL `nodes`, damage one synced file of each data dir (drawn from `seed` and the node
    /// id); restart them at the stop.
    Corrupt {
        target: Target,
        nodes: Vec<NodeId>,
        seed: u64,
    },
    /// Ask the leader to hand leadership to another node: the one `draw` picks among the others
    /// when the fault starts ([`transfer_target`]). Nothing to undo at the stop.
    TransferLeader { draw: u64 },
    /// Slow the state machines of `nodes`: each committed entry applies `delay_ms` after the
    /// node learns it committed (the node's `slow-apply` admin hook); back to at once at the
    /// stop.
    SlowApply {
        target: Target,
        nodes: Vec<NodeId>,
        delay_ms: u16,
    },
    /// Have every member's transport hold back and duplicate peer messages at random, up to
    /// `max_delay_ms` late (the node's `reorder` admin hook, its draws from `seed` and the node
    /// id); the members are those of the moment it starts. Sent at once again at the stop.
    Reorder { max_delay_ms: u16, seed: u64 },
    /// Cut the leader (`nodes`, one) off from its peers as `cut` says and SIGSTOP it; at the
    /// stop SIGCONT it, let it run `awake_ms` still cut off, then flush the rules
    /// ([`crate::stall`]).
    Stall {
        nodes: Vec<NodeId>,
        awake_ms: u16,
        cut: Partition,
    },
    /// Cut `nodes` (one follower) off from its peers with `cut`; at the stop SIGKILL the leader
    /// of the moment, leave the lagging node the only one the others hear for `hold_ms`, then
    /// flush the rules and restart the leader ([`crate::nemesis::stale_candidate`]).
    StaleCandidate {
        nodes: Vec<NodeId>,
        hold_ms: u16,
        cut: Partition,
    },
    /// Grow, shrink or replace the voters ([`crate::membership`]): `draw` picks the voter the
    /// start removes, `stop_draw` the one a grow's stop removes, among the members then.
    Membership {
        change: Change,
        draw: u64,
        stop_draw: u64,
    },
}

/// `picked` with `leader` replaced by the first node of `nodes` not picked (the drawn nodes
/// as they are if the leader is not among them, or if every node is).
pub(crate) fn spare_the_leader(
    mut picked: Vec<NodeId>,
    leader: NodeId,
    nodes: &[NodeId],
) -> Vec<NodeId> {
    let Some(at) = picked.iter().position(|&n| n == leader) else {
        return picked;
    };
    if let Some(&spare) = nodes.iter().find(|n| !picked.contains(n)) {
        picked[at] = spare;
        picked.sort_unstable();
    }
    picked
}

/// A stale-candidate plan whose lagging node is not `leader` (another node takes its place).
fn stale_candidate_beside(
    leader: NodeId,
    drawn: Vec<NodeId>,
    hold_ms: u16,
    kind: PartitionKind,
    nodes: &[NodeId],
) -> Plan {
    let lagging = spare_the_leader(drawn, leader, nodes);
    Plan::StaleCandidate {
        cut: partition::isolate(kind, lagging[0], nodes),
        nodes: lagging,
        hold_ms,
    }
}

/// The node a transfer-leader plan hands leadership to: `draw` modulo the number of candidates,
/// the sorted `nodes` other than `leader`. `None` if there is no other node.
pub fn transfer_target(draw: u64, leader: NodeId, nodes: &[NodeId]) -> Option<NodeId> {
    let mut candidates: Vec<NodeId> = nodes.iter().copied().filter(|&n| n != leader).collect();
    candidates.sort_unstable();
    candidates.dedup();
    if candidates.is_empty() {
        return None;
    }
    candidates
        .get((draw % candidates.len() as u64) as usize)
        .copied()
}

impl Plan {
    /// The plan's family.
    pub fn family(&self) -> Family {
        match self {
            Plan::Kill { .. } => Family::Kill,
            Plan::Restart { .. } => Family::Restart,
            Plan::Pause { .. } => Family::Pause,
            Plan::Partition(_) => Family::Partition,
            Plan::Loss { .. } => Family::Loss,
            Plan::Delay { .. } => Family::Delay,
            Plan::PowerCut { .. } => Family::PowerCut,
            Plan::Corrupt { .. } => Family::Corrupt,
            Plan::TransferLeader { .. } => Family::TransferLeader,
            Plan::Membership { .. } => Family::Membership,
            Plan::SlowApply { .. } => Family::SlowApply,
            Plan::Reorder { .. } => Family::Reorder,
            Plan::Stall { .. } => Family::Stall,
            Plan::StaleCandidate { .. } => Family::StaleCandidate,
        }
    }

    /// The classes the plan occupies for `--nemesis-overlap`: its family's, and for a membership
    /// change that cuts links (`stranded`), a stall and a stale candidate the network class too,
    /// since their stops flush the run's chain.
    pub fn classes(&self) -> Vec<Class> {
        let mut classes = vec![self.family().class()];
        let cuts_links = match self {
            Plan::Membership { change, .. } => change.cuts_links(),
            Plan::Stall { .. } | Plan::StaleCandidate { .. } => true,
            _ => false,
        };
        if cuts_links {
            classes.push(Class::Network);
        }
        classes
    }

    /// Whether the plan shares a class with `other` (the two may not be in place together).
    pub fn clashes_with(&self, other: &Plan) -> bool {
        let mine = self.classes();
        other.classes().iter().any(|c| mine.contains(c))
    }

    /// The nodes whose processes the plan stops (kill, pause, power cut, corrupt, restart).
    pub fn stopped_nodes(&self) -> &[NodeId] {
        match self {
            Plan::Kill { nodes, .. }
            | Plan::Restart { nodes, .. }
            | Plan::Pause { nodes, .. }
            | Plan::Stall { nodes, .. }
            | Plan::PowerCut { nodes, .. }
            | Plan::Corrupt { nodes, .. } => nodes,
            Plan::Partition(_)
            | Plan::Loss { .. }
            | Plan::Delay { .. }
            | Plan::TransferLeader { .. }
            | Plan::SlowApply { .. }
            | Plan::Reorder { .. }
            | Plan::StaleCandidate { .. }
            | Plan::Membership { .. } => &[],
        }
    }

    /// Whether the plan is an aimed membership change (`stranded`, `disjoint`), which stops the
    /// faults in place before it starts (see the nemesis loop's docs, `turns.rs`).
    pub fn takes_the_field(&self) -> bool {
        matches!(self, Plan::Membership { change, .. } if change.cuts_links())
    }

    /// Whether the plan stops the rolling faults in its way instead of being redrawn (a stall,
    /// a stale candidate: see the nemesis loop's docs, `turns.rs`).
    pub fn clears_the_leader(&self) -> bool {
        matches!(self, Plan::Stall { .. } | Plan::StaleCandidate { .. })
    }

    /// Whether the plan's nodes depend on who leads (the stand-in must be replaced).
    pub fn needs_leader(&self) -> bool {
        match self {
            Plan::Kill { target, .. }
            | Plan::Restart { target, .. }
            | Plan::Pause { target, .. }
            | Plan::Loss { target, .. }
            | Plan::Delay { target, .. }
            | Plan::PowerCut { target, .. }
            | Plan::Corrupt { target, .. } => *target == Target::Leader,
            // Followers only: the leader is swapped out for another node.
            Plan::SlowApply { .. } | Plan::StaleCandidate { .. } => true,
            Plan::Partition(p) => p.kind == PartitionKind::IsolateLeader,
            // Ask the leader itself when they start; there is no stand-in to replace.
            Plan::TransferLeader { .. } | Plan::Membership { .. } => false,
            // Every member, whoever leads.
            Plan::Reorder { .. } => false,
            Plan::Stall { .. } => true,
        }
    }

    /// The plan with the live leader in place of the stand-in the schedule drew (for slow-apply:
    /// with the leader swapped out of the nodes drawn). With no leader (or one that is not among
    /// `nodes`), the stand-in stays: a random node.
    pub fn with_leader(self, leader: Option<NodeId>, nodes: &[NodeId]) -> Plan {
        let Some(leader) = leader.filter(|l| nodes.contains(l)) else {
            return self;
        };
        if !self.needs_leader() {
            return self;
        }
        match self {
            Plan::Kill { target, .. } => Plan::Kill {
                target,
                nodes: vec![leader],
            },
            Plan::Pause { target, .. } => Plan::Pause {
                target,
                nodes: vec![leader],
            },
            Plan::Restart { target, .. } => Plan::Restart {
                target,
                nodes: vec![leader],
            },
            Plan::Loss {
                target,
                probability,
                ..
            } => Plan::Loss {
                target,
                nodes: vec![leader],
                probability,
                links: loss_links(&[leader], nodes),
            },
            Plan::Delay {
                target,
                max_ms,
                seed,
                ..
            } => Plan::Delay {
                target,
                nodes: vec![leader],
                max_ms,
                seed,
                links: loss_links(&[leader], nodes),
            },
            Plan::PowerCut { target, cut, .. } => Plan::PowerCut {
                target,
                nodes: vec![leader],
                cut,
            },
            Plan::Corrupt { target, seed, .. } => Plan::Corrupt {
                target,
                nodes: vec![leader],
                seed,
            },
            Plan::SlowApply {
                target,
                nodes: slowed,
                delay_ms,
            } => Plan::SlowApply {
                target,
                nodes: spare_the_leader(slowed, leader, nodes),
                delay_ms,
            },
            Plan::Partition(p) => Plan::Partition(partition::isolate(p.kind, leader, nodes)),
            Plan::Stall { awake_ms, cut, .. } => Plan::Stall {
                nodes: vec![leader],
                awake_ms,
                cut: partition::isolate(cut.kind, leader, nodes),
            },
            Plan::StaleCandidate {
                nodes: drawn,
                hold_ms,
                cut,
            } => stale_candidate_beside(leader, drawn, hold_ms, cut.kind, nodes),
            plan @ (Plan::TransferLeader { .. }
            | Plan::Membership { .. }
            | Plan::Reorder { .. }) => plan,
        }
    }

    /// The iptables rules a network plan applies (none for kill and pause).
    pub fn rules(&self) -> Vec<Rule> {
        match self {
            Plan::Partition(p)
            | Plan::Stall { cut: p, .. }
            | Plan::StaleCandidate { cut: p, .. } => p.grudge.rules(RuleKind::Drop),
            Plan::Loss {
                probability, links, ..
            } => links.rules(RuleKind::Loss(*probability)),
            Plan::Delay {
                max_ms,
                seed,
                links,
                ..
            } => links
                .rules(RuleKind::Drop)
                .into_iter()
                .map(|rule| Rule {
                    kind: RuleKind::Delay(link_delay(*seed, &rule, *max_ms)),
                    ..rule
                })
                .collect(),
            Plan::Kill { .. }
            | Plan::Restart { .. }
            | Plan::Pause { .. }
            | Plan::PowerCut { .. }
            | Plan::Corrupt { .. }
            | Plan::TransferLeader { .. }
            | Plan::SlowApply { .. }
            | Plan::Reorder { .. }
            | Plan::Membership { .. } => Vec::new(),
        }
    }
}
