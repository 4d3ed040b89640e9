//! What the nemesis records: one [`NemesisEvent`] per fault start or stop, with the exact
//! iptables rules and pids it acted on, as the `value` of a `nemesis` line of `history.jsonl`.

use std::collections::BTreeMap;

use crate::partition::PartitionKind;
use crate::schedule::Plan;
use crate::spec::{Family, Target};
use crate::supervisor::Pid;
use crate::NodeId;

/// Whether an event starts or stops a fault: the history op's `f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Start,
    Stop,
}

impl Phase {
    /// `"start"` or `"stop"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::Stop => "stop",
        }
    }
}

/// What an event is about: a fault family, or the final sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultName {
    Kill,
    Pause,
    Partition,
    Loss,
    Delay,
    PowerCut,
    Corrupt,
    Restart,
    TransferLeader,
    Membership,
    SlowApply,
    Reorder,
    Stall,
    StaleCandidate,
    /// [`Nemesis::heal_all`] undoing what was still in place at the end.
    Heal,
}

impl From<Family> for FaultName {
    fn from(family: Family) -> FaultName {
        match family {
            Family::Kill => FaultName::Kill,
            Family::Pause => FaultName::Pause,
            Family::Partition => FaultName::Partition,
            Family::Loss => FaultName::Loss,
            Family::Delay => FaultName::Delay,
            Family::PowerCut => FaultName::PowerCut,
            Family::Corrupt => FaultName::Corrupt,
            Family::Restart => FaultName::Restart,
            Family::TransferLeader => FaultName::TransferLeader,
            Family::Membership => FaultName::Membership,
            Family::SlowApply => FaultName::SlowApply,
            Family::Reorder => FaultName::Reorder,
            Family::Stall => FaultName::Stall,
            Family::StaleCandidate => FaultName::StaleCandidate,
        }
    }
}

/// What came of a leadership transfer: the op's `outcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferOutcome {
    /// The target leads now.
    Done,
    /// Definitely not done: the leader refused, or gave up when the target did not take over.
    Refused,
    /// May or may not have happened (the answer was lost, the leader stepped down meanwhile).
    Unknown,
    /// No leader was known when the fault started: nothing was asked.
    NoLeader,
}

/// What one node's reorder hook did while the fault was in place (at its stop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Reordered {
    /// Peer messages sent late.
    pub held: u64,
    /// Peer messages sent at once and again late.
    pub copied: u64,
}

/// A transfer-leader start, as recorded: `from` is null if no leader was known (and `to` then
/// too: nothing was asked).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Transfer {
    pub from: Option<NodeId>,
    pub to: Option<NodeId>,
    pub outcome: TransferOutcome,
    /// Why it was refused or is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One start or stop, as recorded in the history: the op is
/// `{"process":"nemesis","type":"info","f":event.f.as_str(),"value":event}`.
///
/// The serialised value is, e.g.
/// `{"fault":"partition","kind":"majority","nodes":[1,2,3,4,5],"groups":[[2,4],[1,3,5]],
/// "rules":["iptables -A riptide -s 127.0.0.11 -d 127.0.0.12 -j DROP", ...],"pids":{}}`.
/// It is reported once the action is done, so the rules and pids are what really happened.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NemesisEvent {
    /// Start or stop: the op's `f`, not repeated in the value.
    #[serde(skip)]
    pub f: Phase,
    pub fault: FaultName,
    /// The partition kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<PartitionKind>,
    /// The target of kill, pause and loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// The nodes the fault acts on (for partitions: every node that loses a link).
    pub nodes: Vec<NodeId>,
    /// The partition's shape (see [`crate::Partition::groups`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Vec<NodeId>>,
    /// The exact iptables commands run, one per rule (`iptables -A riptide ...`), or the flush.
    pub rules: Vec<String>,
    /// For kill and pause: node → pid killed, paused, resumed, or (at the stop of a kill) the
    /// restarted node's new pid.
    pub pids: BTreeMap<NodeId, Pid>,
    /// For a restart: node → the new pid it was started again with, at once.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub restarted: BTreeMap<NodeId, Pid>,
    /// The loss probability.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// For a delay: the longest delay of a link, in ms (each link's own is its rule's
    /// `--queue-num`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_delay_ms: Option<u16>,
    /// For a slow-apply: the delay between commit and apply, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_delay_ms: Option<u16>,
    /// For a reorder stop: node → what its hook did (from its status, before it was turned
    /// off), so that the history says whether the fault acted.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub reordered: BTreeMap<NodeId, Reordered>,
    /// For a stall: how long the woken leader runs, still cut off, before the heal, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awake_ms: Option<u16>,
    /// For a stale candidate: how long the lagging node stays the only link between the
    /// others after the leader's kill, in ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_ms: Option<u16>,
    /// For a stale candidate's stop: the leader it killed (its pid in `pids`, the restarted
    /// one in `restarted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub killed_leader: Option<NodeId>,
    /// For a power cut: what the disks keep of their unsynced writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut: Option<crate::disk::CutMode>,
    /// For a power cut or corrupt: node → what its disk lost (faultfs's report) or the damage
    /// done (file, offset, bits); at a stop, node → why it refused to start, if it did.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub disks: BTreeMap<NodeId, serde_json::Value>,
    /// For a transfer-leader start, or the handover of a slow-apply start: who led, who was
    /// asked to take over, and what came of it
    /// (`"from"`, `"to"`, `"outcome"`, `"reason"` in the value).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<Transfer>,
    /// For a membership start or stop: the change, who joined, who left, who was wiped, what
    /// came of it and the voters after (`"change"`, `"added"`, `"removed"`, `"wiped"`,
    /// `"outcome"`, `"voters"`, `"reason"` in the value).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub membership: Option<crate::membership::MembershipRecord>,
    /// How long the action took, in ms. The event is recorded once the action is done, so it
    /// began this long before the op's time (a membership change can take seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<u64>,
    /// Anything else worth knowing, e.g. that no leader was known and a random node stood in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What went wrong, if part of the action failed (the rest was still done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl NemesisEvent {
    pub(crate) fn new(f: Phase, fault: FaultName) -> NemesisEvent {
        NemesisEvent {
            f,
            fault,
            kind: None,
            target: None,
            nodes: Vec::new(),
            groups: Vec::new(),
            rules: Vec::new(),
            pids: BTreeMap::new(),
            restarted: BTreeMap::new(),
            probability: None,
            max_delay_ms: None,
            apply_delay_ms: None,
            awake_ms: None,
            hold_ms: None,
            killed_leader: None,
            reordered: BTreeMap::new(),
            cut: None,
            disks: BTreeMap::new(),
            transfer: None,
            membership: None,
            took_ms: None,
            note: None,
            error: None,
        }
    }

    /// The history op's `value`.
    pub fn value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("events serialise")
    }

    /// The event for `plan` before it is carried out: what it will do, without rules or pids.
    pub fn describe(plan: &Plan, f: Phase) -> NemesisEvent {
        let mut event = NemesisEvent::new(f, plan.family().into());
        match plan {
            Plan::Kill { target, nodes }
            | Plan::Restart { target, nodes }
            | Plan::Pause { target, nodes }
            | Plan::Corrupt { target, nodes, .. } => {
                event.target = Some(*target);
                event.nodes = nodes.clone();
            }
            Plan::PowerCut { target, nodes, cut } => {
                event.target = Some(*target);
                event.nodes = nodes.clone();
                event.cut = Some(*cut);
            }
            Plan::Partition(p) => {
                event.kind = Some(p.kind);
                event.nodes = p.grudge.affected();
                event.groups = p.groups.clone();
            }
            Plan::Loss {
                target,
                nodes,
                probability,
                ..
            } => {
                event.target = Some(*target);
                event.nodes = nodes.clone();
                event.probability = Some(*probability);
            }
            Plan::Delay {
                target,
                nodes,
                max_ms,
                ..
            } => {
                event.target = Some(*target);
                event.nodes = nodes.clone();
                event.max_delay_ms = Some(*max_ms);
            }
            Plan::SlowApply {
                target,
                nodes,
                delay_ms,
            } => {
                event.target = Some(*target);
                event.nodes = nodes.clone();
                event.apply_delay_ms = Some(*delay_ms);
            }
            Plan::Stall {
                nodes,
                awake_ms,
                cut,
            } => {
                event.target = Some(Target::Leader);
                event.nodes = nodes.clone();
                event.groups = cut.groups.clone();
                event.awake_ms = Some(*awake_ms);
            }
            Plan::StaleCandidate {
                nodes,
                hold_ms,
                cut,
            } => {
                event.nodes = nodes.clone();
                event.groups = cut.groups.clone();
                event.hold_ms = Some(*hold_ms);
            }
            // The members are known only when it starts.
            Plan::Reorder { max_delay_ms, .. } => event.max_delay_ms = Some(*max_delay_ms),
            // Who leads, and so who takes over, is known only when it starts.
            Plan::TransferLeader { .. } => {}
            Plan::Membership { change, .. } => {
                event.membership = Some(crate::membership::MembershipRecord::new(*change));
            }
        }
        event
    }

    pub(crate) fn add_note(&mut self, note: impl std::fmt::Display) {
        let note = note.to_string();
        self.note = Some(match self.note.take() {
            Some(before) => format!("{before}; {note}"),
            None => note,
        });
    }

    pub(crate) fn add_error(&mut self, error: impl std::fmt::Display) {
        let error = error.to_string();
        tracing::warn!(fault = ?self.fault, phase = self.f.as_str(), "{error}");
        self.error = Some(match self.error.take() {
            Some(before) => format!("{before}; {error}"),
            None => error,
        });
    }
}
