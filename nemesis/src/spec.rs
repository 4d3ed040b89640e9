//! The `--nemesis` spec: which faults a run may inject.
//!
//! Syntax: a comma-separated list of faults, each optionally pinned with `:OPTION`.
//!
//! | item | meaning |
//! |---|---|
//! | `kill` / `kill:TARGET` | SIGKILL nodes, restart them on the same data dir at the next stop |
//! | `pause` / `pause:TARGET` | SIGSTOP nodes, SIGCONT them at the next stop |
//! | `partition` / `partition:KIND` | cut node-to-node links with iptables |
//! | `loss` / `loss:P` | drop packets at random with probability P (default 0.2) on the target nodes' links |
//! | `delay` / `delay:MS` | hold every packet of the target nodes' links back for a time drawn per link from 1..=MS ms (default 100), in order ([`crate::delay`]) |
//! | `power-cut` / `power-cut:TARGET` | SIGKILL nodes and drop what their disks had not synced (FUSE, `riptide-faultfs`); restart them at the next stop |
//! | `corrupt` / `corrupt:TARGET` | SIGKILL nodes, flip bits in or truncate one synced file of their data dir, restart them at the next stop (at most a minority of disks per run; TARGET one, minority, leader or random) |
//! | `restart` / `restart:TARGET` | SIGKILL nodes and start them again at once on the same data dir (a crash a supervisor restarts: the node is back within milliseconds, often in the middle of the election its death caused) |
//! | `transfer-leader` | ask the leader to hand leadership to another node, drawn at random (no option; nothing to undo at the stop) |
//! | `stale-candidate` / `stale-candidate:HOLD_MS` | cut a follower off until it lags; then kill the leader and leave the lagging node the only one every other node hears, for HOLD_MS (default 1000), so that only a vote that ignores the election restriction can elect anyone ([`crate::nemesis::stale_candidate`]) |
//! | `membership` / `membership:CHANGE` | grow, shrink or replace voters through the leader's admin requests, new nodes with fresh ids, removed ones killed and wiped; the stop brings the voter count back (CHANGE: `grow`, `shrink`, `replace`, `stranded`, `disjoint`; see [`crate::membership`]) |
//! | `all` | `kill,pause,partition,loss,power-cut,corrupt,restart,transfer-leader,membership` (without `power-cut` where FUSE is not available; `delay` is not part of it) |
//! | `none` | no faults |
//!
//! TARGET is one of `one`, `minority`, `majority`, `all`, `leader`, `random`; without one, each
//! fault draws a target at random. KIND is a [`PartitionKind`] name; without one, each partition
//! draws a kind at random among those the cluster is big enough for. Items may repeat
//! (`partition:one,partition:bridge`); each start picks one item uniformly.
//!
//! # Weights
//!
//! An item may end in `*WEIGHT` (1 to [`MAX_WEIGHT`]): it is then drawn WEIGHT times as often
//! as an item without one (`kill,partition,stall*3`: a stall in 3 of 5 starts). A fault that
//! alone catches one bug but is one item among a dozen comes up about once a run; a weight
//! makes it come up several times without changing the others' options. `all*2` weighs every
//! item of `all`. An item given twice keeps the larger weight (`all,kill*3`: every family of
//! `all` once, `kill` three times). A spec without weights draws exactly as before weights
//! existed, so its seeds give the faults they always gave.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
pub use crate::membership::Change;
use crate::partition::PartitionKind;
use crate::spec_options::{
    parse_apply_delay, parse_corrupt, parse_delay, parse_opt, parse_probability, parse_reorder,
    parse_stale_hold, parse_stall, parse_weight,
};

/// The default loss probability: high enough that Raft sees retransmissions and the occasional
/// timeout, low enough that TCP still makes progress and the cluster stays available.
pub const DEFAULT_LOSS_PROBABILITY: f64 = 0.2;

/// The default longest delay of the `delay` fault, in ms: per direction, so a round trip may
/// take up to twice that. Below the nodes' 150 ms election timeout for one direction, and a
/// round trip of the default's worst is above it: heartbeats come late, votes race, and a
/// leader may lose followers that still hear it.
pub const DEFAULT_DELAY_MS: u16 = 100;

/// The `slow-apply` delay between commit and apply when none is given: long enough for a new
/// leader's first reads to land in it, short enough that writes on a slowed leader still answer
/// within a client's timeout.
pub const DEFAULT_APPLY_DELAY_MS: u16 = 500;

/// The longest `slow-apply:MS` accepted.
pub const MAX_APPLY_DELAY_MS: u16 = 10_000;

/// The `reorder` fault's longest hold when none is given, in ms: many AppendEntries later than
/// the ones that overtake them at 500 writes/s, and below the 150 ms election timeout, so that
/// a held heartbeat alone does not start an election.
pub const DEFAULT_REORDER_MS: u16 = 50;

/// How long a stalled leader runs, woken but still cut off, before the heal (`stall`): longer
/// than any lease a node may hold (the lease-read-unsafe bug's is twice the longest election
/// timeout, 600 ms by default).
pub const DEFAULT_STALL_AWAKE_MS: u16 = 1_000;

/// The longest `stall:AWAKE_MS` accepted.
pub const MAX_STALL_AWAKE_MS: u16 = 10_000;

/// How long `stale-candidate` leaves the lagging node the only link between the others, after
/// the leader's kill: several election timeouts (150 to 300 ms), so that it runs for election
/// more than once.
pub const DEFAULT_STALE_HOLD_MS: u16 = 1_000;

/// The longest `stale-candidate:HOLD_MS` accepted.
pub const MAX_STALE_HOLD_MS: u16 = 10_000;

/// The longest `reorder:MS` accepted (the node's own bound, `MAX_REORDER_MS`, is higher).
pub const MAX_REORDER_MS: u16 = 5_000;

/// Which nodes a process fault (or packet loss) hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// One random node.
    One,
    /// A random minority: ⌊(n−1)/2⌋ nodes, at least one.
    Minority,
    /// A random majority: ⌊n/2⌋ + 1 nodes.
    Majority,
    /// Every node.
    All,
    /// The current leader, asked from the cluster when the fault starts (a random node if none).
    Leader,
    /// A random non-empty subset, its size uniform in 1..=n.
    Random,
}

impl Target {
    /// Every target, in the order the schedule draws from.
    pub const ALL: [Target; 6] = [
        Target::One,
        Target::Minority,
        Target::Majority,
        Target::All,
        Target::Leader,
        Target::Random,
    ];

    /// The target's name on the command line and in the history.
    pub fn name(self) -> &'static str {
        match self {
            Target::One => "one",
            Target::Minority => "minority",
            Target::Majority => "majority",
            Target::All => "all",
            Target::Leader => "leader",
            Target::Random => "random",
        }
    }
}

/// The size of a minority of `n` nodes: ⌊(n−1)/2⌋, at least one.
pub fn minority_size(n: usize) -> usize {
    (n.saturating_sub(1) / 2).max(1)
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
                format!("unknown target `{s}`; valid: {}", names.join(", "))
            })
    }
}

/// The fault families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Kill,
    Pause,
    Partition,
    Loss,
    /// Slow links: packets held back in userspace ([`crate::delay`]).
    Delay,
    /// SIGKILL, then the disk forgets what was not synced.
    PowerCut,
    /// SIGKILL, then one synced file of the data dir is damaged.
    Corrupt,
    /// SIGKILL, and start again at once (a crash that a supervisor restarts).
    Restart,
    /// Ask the leader to hand leadership to another node (drawn at random). Not part of `all`.
    TransferLeader,
    /// Grow, shrink or replace the voters ([`crate::membership`]). Not part of `all`.
    Membership,
    /// Slow state machines: committed entries wait before they apply (the node's test hook,
    /// an admin request). Not part of `all`.
    SlowApply,
    /// Peer messages held back and sent twice by the nodes' transport, so that they arrive
    /// late and out of order (the node's test hook, an admin request). Not part of `all`.
    Reorder,
    /// The leader cut off from its peers and frozen (SIGSTOP); woken (SIGCONT) while still cut
    /// off, and healed only some time after ([`crate::stall`]). Not part of `all`.
    Stall,
    /// A follower cut off until it lags, then the leader killed and the lagging node left the
    /// only one the others hear ([`crate::nemesis::stale_candidate`]). Not part of `all`.
    StaleCandidate,
}

/// The classes of `--nemesis-overlap`: with overlap, one fault of each class may be in place at
/// once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// Faults that stop, restart or move node processes and leadership.
    Process,
    /// iptables faults.
    Network,
    /// Changes of the configuration, which operators make while machines fail.
    Membership,
    /// Slow state machines (`slow-apply`), which lag behind while leadership moves.
    StateMachine,
    /// The nodes' own transport reordering peer messages (`reorder`), which overlaps with
    /// every other fault (iptables faults included).
    Transport,
}

impl Family {
    /// The families `all` expands to: every one but `delay` (see [`Family::EVERY`]), which
    /// needs the runner's NFQUEUE threads and is asked for by name.
    pub const ALL: [Family; 9] = [
        Family::Kill,
        Family::Pause,
        Family::Partition,
        Family::Loss,
        Family::PowerCut,
        Family::Corrupt,
        Family::Restart,
        Family::TransferLeader,
        Family::Membership,
    ];

    /// Every family, `transfer-leader`, `membership`, `delay`, `slow-apply`, `reorder`,
    /// `stall` and `stale-candidate` included.
    pub const EVERY: [Family; 14] = [
        Family::Kill,
        Family::Pause,
        Family::Partition,
        Family::Loss,
        Family::Delay,
        Family::PowerCut,
        Family::Corrupt,
        Family::Restart,
        Family::TransferLeader,
        Family::Membership,
        Family::SlowApply,
        Family::Reorder,
        Family::Stall,
        Family::StaleCandidate,
    ];

    /// The family's name on the command line and in the history.
    pub fn name(self) -> &'static str {
        match self {
            Family::Kill => "kill",
            Family::Pause => "pause",
            Family::Partition => "partition",
            Family::Loss => "loss",
            Family::Delay => "delay",
            Family::PowerCut => "power-cut",
            Family::Corrupt => "corrupt",
            Family::Restart => "restart",
            Family::TransferLeader => "transfer-leader",
            Family::Membership => "membership",
            Family::SlowApply => "slow-apply",
            Family::Reorder => "reorder",
            Family::Stall => "stall",
            Family::StaleCandidate => "stale-candidate",
        }
    }

    /// Whether the family needs iptables inside the sandbox.
    pub fn needs_network(self) -> bool {
        matches!(
            self,
            Family::Partition
                | Family::Loss
                | Family::Delay
                | Family::Stall
                | Family::StaleCandidate
        )
    }

    /// Whether the family is of the process class for `--nemesis-overlap`, the network faults
    /// being the other: kill, pause, power-cut, corrupt and restart, which stop node processes,
    /// and transfer-leader, which stops none but moves leadership the way a crash does.
    pub fn stops_processes(self) -> bool {
        self.class() == Class::Process
    }

    /// The family's class for `--nemesis-overlap`.
    pub fn class(self) -> Class {
        match self {
            Family::Partition | Family::Loss | Family::Delay => Class::Network,
            Family::Membership => Class::Membership,
            Family::SlowApply => Class::StateMachine,
            Family::Reorder => Class::Transport,
            _ => Class::Process,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One item of the spec: a family with its optional pin.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultSpec {
    Kill(Option<Target>),
    Pause(Option<Target>),
    Partition(Option<PartitionKind>),
    /// Loss probability; `None` means [`DEFAULT_LOSS_PROBABILITY`].
    Loss(Option<f64>),
    /// The longest delay per link in ms; `None` means [`DEFAULT_DELAY_MS`].
    Delay(Option<u16>),
    PowerCut(Option<Target>),
    Corrupt(Option<Target>),
    Restart(Option<Target>),
    /// Takes no option: the new leader is drawn among the nodes at start time.
    TransferLeader,
    /// The change; `None` draws one of [`Change::DRAWN`] each time.
    Membership(Option<Change>),
    /// The delay between commit and apply in ms; `None` means [`DEFAULT_APPLY_DELAY_MS`].
    SlowApply(Option<u16>),
    /// The longest hold of a peer message in ms; `None` means [`DEFAULT_REORDER_MS`].
    Reorder(Option<u16>),
    /// How long the stalled leader runs, woken but still cut off, before the heal, in ms;
    /// `None` means [`DEFAULT_STALL_AWAKE_MS`].
    Stall(Option<u16>),
    /// How long the lagging node stays the only link between the others after the leader's
    /// kill, in ms; `None` means [`DEFAULT_STALE_HOLD_MS`].
    StaleCandidate(Option<u16>),
}

impl FaultSpec {
    /// The item's family.
    pub fn family(&self) -> Family {
        match self {
            FaultSpec::Kill(_) => Family::Kill,
            FaultSpec::Pause(_) => Family::Pause,
            FaultSpec::Partition(_) => Family::Partition,
            FaultSpec::Loss(_) => Family::Loss,
            FaultSpec::Delay(_) => Family::Delay,
            FaultSpec::PowerCut(_) => Family::PowerCut,
            FaultSpec::Corrupt(_) => Family::Corrupt,
            FaultSpec::Restart(_) => Family::Restart,
            FaultSpec::TransferLeader => Family::TransferLeader,
            FaultSpec::Membership(_) => Family::Membership,
            FaultSpec::SlowApply(_) => Family::SlowApply,
            FaultSpec::Reorder(_) => Family::Reorder,
            FaultSpec::Stall(_) => Family::Stall,
            FaultSpec::StaleCandidate(_) => Family::StaleCandidate,
        }
    }

    /// Whether the item needs iptables inside the sandbox: partition, loss and delay, and a
    /// membership fault that may draw `stranded` or `disjoint` (which cut links).
    pub fn needs_network(&self) -> bool {
        match self {
            FaultSpec::Membership(None) => true,
            FaultSpec::Membership(Some(change)) => change.cuts_links(),
            other => other.family().needs_network(),
        }
    }
}

impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.family().name())?;
        match self {
            FaultSpec::Kill(Some(t))
            | FaultSpec::Pause(Some(t))
            | FaultSpec::PowerCut(Some(t))
            | FaultSpec::Corrupt(Some(t))
            | FaultSpec::Restart(Some(t)) => write!(f, ":{t}"),
            FaultSpec::Partition(Some(k)) => write!(f, ":{k}"),
            FaultSpec::Loss(Some(p)) => write!(f, ":{p}"),
            FaultSpec::Delay(Some(ms))
            | FaultSpec::SlowApply(Some(ms))
            | FaultSpec::Reorder(Some(ms))
            | FaultSpec::Stall(Some(ms))
            | FaultSpec::StaleCandidate(Some(ms)) => write!(f, ":{ms}"),
            FaultSpec::Membership(Some(c)) => write!(f, ":{c}"),
            _ => Ok(()),
        }
    }
}

/// The parsed `--nemesis` value: the faults a run may inject, possibly none.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
#[serde(into = "String")]
pub struct NemesisSpec {
    faults: Vec<FaultSpec>,
    /// One per item of `faults`: how many times as often it is drawn as a weight-1 item.
    weights: Vec<u32>,
}

/// The heaviest `*WEIGHT` an item may carry.
pub const MAX_WEIGHT: u32 = 20;

impl NemesisSpec {
    /// No faults.
    pub fn none() -> NemesisSpec {
        NemesisSpec::default()
    }

    /// Every family, nothing pinned.
    pub fn all() -> NemesisSpec {
        NemesisSpec::unweighted(vec![
            FaultSpec::Kill(None),
            FaultSpec::Pause(None),
            FaultSpec::Partition(None),
            FaultSpec::Loss(None),
            FaultSpec::PowerCut(None),
            FaultSpec::Corrupt(None),
            FaultSpec::Restart(None),
            FaultSpec::TransferLeader,
            FaultSpec::Membership(None),
        ])
    }

    /// `faults`, each of weight 1.
    fn unweighted(faults: Vec<FaultSpec>) -> NemesisSpec {
        let weights = vec![1; faults.len()];
        NemesisSpec { faults, weights }
    }

    /// Adds `fault` with `weight`; an item already there keeps the larger of the two weights.
    fn add(&mut self, fault: FaultSpec, weight: u32) {
        match self.faults.iter().position(|f| *f == fault) {
            Some(i) => self.weights[i] = self.weights[i].max(weight),
            None => {
                self.faults.push(fault);
                self.weights.push(weight);
            }
        }
    }

    /// The items' weights, one per item of [`NemesisSpec::faults`] (1 where none was given).
    pub fn weights(&self) -> &[u32] {
        &self.weights
    }

    /// The items, in the order given.
    pub fn faults(&self) -> &[FaultSpec] {
        &self.faults
    }

    /// True for `none`.
    pub fn is_empty(&self) -> bool {
        self.faults.is_empty()
    }

    /// Whether any item needs iptables (partition, loss, delay, a membership fault that may cut links).
    pub fn needs_network(&self) -> bool {
        self.faults.iter().any(|f| f.needs_network())
    }

    /// Whether any item cuts the power (needs riptide-faultfs: FUSE and a mount namespace).
    pub fn needs_fuse(&self) -> bool {
        self.faults.iter().any(|f| f.family() == Family::PowerCut)
    }

    /// The same spec without `power-cut`: what a run without FUSE can still do.
    pub fn without_power_cut(&self) -> NemesisSpec {
        let mut spec = NemesisSpec::none();
        for (fault, weight) in self.faults.iter().zip(&self.weights) {
            if fault.family() != Family::PowerCut {
                spec.add(*fault, *weight);
            }
        }
        spec
    }

    /// The same spec without partition, loss and delay: what a run without iptables can still
    /// do. An unpinned `membership` keeps the changes that cut no links (`grow`, `shrink`,
    /// `replace`), pinned one by one so that each is drawn as often as the others.
    pub fn without_network(&self) -> NemesisSpec {
        let mut spec = NemesisSpec::none();
        for (fault, weight) in self.faults.iter().zip(&self.weights) {
            let kept = match fault {
                FaultSpec::Membership(None) => Change::ALL
                    .into_iter()
                    .filter(|c| !c.cuts_links())
                    .map(|c| FaultSpec::Membership(Some(c)))
                    .collect(),
                other if other.needs_network() => Vec::new(),
                other => vec![*other],
            };
            for fault in kept {
                spec.add(fault, *weight);
            }
        }
        spec
    }
}

impl fmt::Display for NemesisSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.faults.is_empty() {
            return f.write_str("none");
        }
        let items: Vec<String> = self
            .faults
            .iter()
            .zip(&self.weights)
            .map(|(fault, weight)| match weight {
                1 => fault.to_string(),
                w => format!("{fault}*{w}"),
            })
            .collect();
        f.write_str(&items.join(","))
    }
}

impl From<NemesisSpec> for String {
    fn from(spec: NemesisSpec) -> String {
        spec.to_string()
    }
}

/// What the parse errors list as valid.
const VALID: &str = "valid: kill[:TARGET], pause[:TARGET], partition[:KIND], loss[:PROBABILITY], \
                     delay[:MAX_MS], power-cut[:TARGET], corrupt[:TARGET], restart[:TARGET], transfer-leader, membership[:CHANGE], slow-apply[:MS], reorder[:MAX_MS], stall[:AWAKE_MS], stale-candidate[:HOLD_MS], all, none; CHANGE: grow, shrink, replace, stranded, disjoint; TARGET: one, minority, majority, all, leader, random; KIND: one, \
                     majority, majorities-ring, minority-third, isolate-leader, bridge, asymmetric; \
                     any item may end in *WEIGHT (1 to 20), e.g. stall*3";

impl FromStr for NemesisSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<NemesisSpec> {
        let bad = |reason: String| Error::Spec {
            spec: s.to_string(),
            reason,
        };
        let mut spec = NemesisSpec::none();
        let mut saw_none = false;
        for item in s.split(',').map(str::trim) {
            let (item, weight) = match item.rsplit_once('*') {
                Some((item, weight)) => (item.trim_end(), parse_weight(weight).map_err(bad)?),
                None => (item, 1),
            };
            let (name, option) = match item.split_once(':') {
                Some((name, option)) => (name, Some(option)),
                None => (item, None),
            };
            let parsed: Vec<FaultSpec> = match (name, option) {
                ("", _) => return Err(bad(format!("empty fault name; {VALID}"))),
                ("none", None) if weight > 1 => {
                    return Err(bad(format!("`none` takes no weight; {VALID}")))
                }
                ("none", None) => {
                    saw_none = true;
                    Vec::new()
                }
                ("all", None) => NemesisSpec::all().faults,
                ("kill", _) => vec![FaultSpec::Kill(parse_opt(option).map_err(bad)?)],
                ("pause", _) => vec![FaultSpec::Pause(parse_opt(option).map_err(bad)?)],
                ("partition", _) => vec![FaultSpec::Partition(parse_opt(option).map_err(bad)?)],
                ("loss", _) => vec![FaultSpec::Loss(parse_probability(option).map_err(bad)?)],
                ("delay", _) => vec![FaultSpec::Delay(parse_delay(option).map_err(bad)?)],
                ("power-cut", _) => vec![FaultSpec::PowerCut(parse_opt(option).map_err(bad)?)],
                ("corrupt", _) => vec![FaultSpec::Corrupt(parse_corrupt(option).map_err(bad)?)],
                ("restart", _) => vec![FaultSpec::Restart(parse_opt(option).map_err(bad)?)],
                ("transfer-leader", None) => vec![FaultSpec::TransferLeader],
                ("membership", _) => vec![FaultSpec::Membership(parse_opt(option).map_err(bad)?)],
                ("slow-apply", _) => {
                    vec![FaultSpec::SlowApply(
                        parse_apply_delay(option).map_err(bad)?,
                    )]
                }
                ("reorder", _) => vec![FaultSpec::Reorder(parse_reorder(option).map_err(bad)?)],
                ("stall", _) => vec![FaultSpec::Stall(parse_stall(option).map_err(bad)?)],
                ("stale-candidate", _) => vec![FaultSpec::StaleCandidate(
                    parse_stale_hold(option).map_err(bad)?,
                )],
                ("none" | "all" | "transfer-leader", Some(_)) => {
                    return Err(bad(format!("`{name}` takes no option; {VALID}")))
                }
                _ => return Err(bad(format!("unknown fault `{name}`; {VALID}"))),
            };
            for fault in parsed {
                spec.add(fault, weight);
            }
        }
        if saw_none && !spec.is_empty() {
            return Err(bad("`none` cannot be combined with faults".to_string()));
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> NemesisSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn families_parse_and_print_back() {
        for text in [
            "kill",
            "kill,pause,partition,loss",
            "pause:leader",
            "partition:majorities-ring",
            "partition:one,partition:bridge",
            "loss:0.5",
            "kill:minority,loss",
            "power-cut",
            "power-cut:all,corrupt:one",
            "corrupt:leader",
            "transfer-leader",
            "kill,transfer-leader,partition",
            "membership",
            "membership:replace,kill,partition",
            "membership:disjoint,kill",
        ] {
            assert_eq!(parse(text).to_string(), text);
        }
    }

    #[test]
    fn membership_parses_with_its_change_and_is_a_class_of_its_own() {
        assert_eq!(
            parse("membership:grow,membership").faults(),
            [
                FaultSpec::Membership(Some(Change::Grow)),
                FaultSpec::Membership(None)
            ]
        );
        assert_eq!(Family::Membership.class(), Class::Membership);
        assert_eq!(Family::Kill.class(), Class::Process);
        assert_eq!(Family::Loss.class(), Class::Network);
        assert!(parse("membership").needs_network());
        assert!(parse("membership:stranded").needs_network());
        assert!(parse("membership:disjoint").needs_network());
        assert_eq!(
            parse("membership:disjoint").faults(),
            [FaultSpec::Membership(Some(Change::Disjoint))]
        );
        assert!(!parse("membership:grow,membership:shrink,membership:replace").needs_network());
        assert!(Family::EVERY.contains(&Family::Membership));
        let err = "membership:swap"
            .parse::<NemesisSpec>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown membership change `swap`"), "{err}");
    }

    #[test]
    fn transfer_leader_parses_takes_no_option_and_stays_out_of_all() {
        assert_eq!(
            parse("transfer-leader").faults(),
            [FaultSpec::TransferLeader]
        );
        assert_eq!(
            parse("transfer-leader").faults()[0].family(),
            Family::TransferLeader
        );
        assert!(!parse("transfer-leader").needs_network());
        assert!(Family::TransferLeader.stops_processes(), "process class");
        assert!(parse("all")
            .faults()
            .iter()
            .any(|f| f.family() == Family::TransferLeader));
        assert!(Family::ALL.contains(&Family::TransferLeader));
        assert!(Family::EVERY.contains(&Family::TransferLeader));
        for text in [
            "transfer-leader:x",
            "transfer-leader:leader",
            "kill,transfer-leader:",
        ] {
            let err = text.parse::<NemesisSpec>().unwrap_err().to_string();
            assert!(
                err.contains("`transfer-leader` takes no option") && !err.contains('\n'),
                "{text}: {err}"
            );
        }
        let err = "kill,smash".parse::<NemesisSpec>().unwrap_err().to_string();
        assert!(err.contains("transfer-leader"), "{err}");
    }

    #[test]
    fn delay_parses_with_its_longest_delay_and_refuses_what_is_out_of_range() {
        assert_eq!(parse("delay").faults(), [FaultSpec::Delay(None)]);
        assert_eq!(parse("delay:50").faults(), [FaultSpec::Delay(Some(50))]);
        assert_eq!(parse("delay:250ms").faults(), [FaultSpec::Delay(Some(250))]);
        assert_eq!(parse("delay:250ms").to_string(), "delay:250");
        assert_eq!(parse("kill,delay:20").to_string(), "kill,delay:20");
        assert!(parse("delay").needs_network());
        assert_eq!(Family::Delay.class(), Class::Network);
        assert_eq!(parse("slow-apply").faults(), [FaultSpec::SlowApply(None)]);
        assert_eq!(
            parse("slow-apply:250ms").faults(),
            [FaultSpec::SlowApply(Some(250))]
        );
        assert_eq!(parse("slow-apply:250").to_string(), "slow-apply:250");
        assert_eq!(Family::SlowApply.class(), Class::StateMachine);
        assert!(!Family::ALL.contains(&Family::SlowApply));
        assert!(!parse("slow-apply").needs_network());
        for bad in ["slow-apply:0", "slow-apply:x", "slow-apply:10001"] {
            let err = bad.parse::<NemesisSpec>().unwrap_err().to_string();
            assert!(
                err.contains("between commit and apply in ms, 1 to 10000"),
                "{err}"
            );
        }
        assert_eq!(parse("reorder").faults(), [FaultSpec::Reorder(None)]);
        assert_eq!(
            parse("reorder:20ms").faults(),
            [FaultSpec::Reorder(Some(20))]
        );
        assert_eq!(parse("reorder:20").to_string(), "reorder:20");
        assert_eq!(Family::Reorder.class(), Class::Transport);
        assert!(!Family::ALL.contains(&Family::Reorder));
        assert!(Family::EVERY.contains(&Family::Reorder));
        assert!(
            !parse("reorder").needs_network(),
            "the node's own hook: no iptables"
        );
        for bad in ["reorder:0", "reorder:soon", "reorder:5001"] {
            let err = bad.parse::<NemesisSpec>().unwrap_err().to_string();
            assert!(
                err.contains("longest hold of a peer message in ms, 1 to 5000"),
                "{err}"
            );
        }
        assert_eq!(parse("stall").faults(), [FaultSpec::Stall(None)]);
        assert_eq!(parse("stall:2500").faults(), [FaultSpec::Stall(Some(2500))]);
        assert_eq!(parse("stall:2500").to_string(), "stall:2500");
        assert_eq!(Family::Stall.class(), Class::Process);
        assert!(!Family::ALL.contains(&Family::Stall));
        assert!(Family::EVERY.contains(&Family::Stall));
        assert!(parse("stall").needs_network(), "its cut is iptables rules");
        for bad in ["stall:0", "stall:later", "stall:10001"] {
            let err = bad.parse::<NemesisSpec>().unwrap_err().to_string();
            assert!(
                err.contains("how long the woken leader stays cut off in ms, 1 to 10000"),
                "{err}"
            );
        }
        assert_eq!(
            parse("stale-candidate").faults(),
            [FaultSpec::StaleCandidate(None)]
        );
        assert_eq!(
            parse("stale-candidate:1500").to_string(),
            "stale-candidate:1500"
        );
        assert_eq!(Family::StaleCandidate.class(), Class::Process);
        assert!(!Family::ALL.contains(&Family::StaleCandidate));
        assert!(Family::EVERY.contains(&Family::StaleCandidate));
        assert!(parse("stale-candidate").needs_network());
        for bad in [
            "stale-candidate:0",
            "stale-candidate:soon",
            "stale-candidate:10001",
        ] {
            let err = bad.parse::<NemesisSpec>().unwrap_err().to_string();
            assert!(
                err.contains("stays the only link between the others in ms, 1 to 10000"),
                "{err}"
            );
        }
        assert!(Family::EVERY.contains(&Family::Delay));
        assert!(
            !Family::ALL.contains(&Family::Delay),
            "opt-in, like loss's cousins"
        );
        for text in [
            "delay:0",
            "delay:5001",
            "delay:70000",
            "delay:x",
            "delay:-5",
            "delay:",
        ] {
            let err = text.parse::<NemesisSpec>().unwrap_err().to_string();
            assert!(
                err.contains("must be the longest delay per link in ms, 1 to 5000"),
                "{text}: {err}"
            );
        }
        assert!("delay:5000".parse::<NemesisSpec>().is_ok());
    }

    #[test]
    fn all_and_none() {
        assert_eq!(parse("all"), NemesisSpec::all());
        assert_eq!(
            parse("all").to_string(),
            "kill,pause,partition,loss,power-cut,corrupt,restart,transfer-leader,membership"
        );
        assert!(parse("none").is_empty());
        assert_eq!(parse("none").to_string(), "none");
        assert_eq!(parse("all,kill"), NemesisSpec::all(), "duplicates fold");
    }

    #[test]
    fn weights_parse_print_back_and_keep_the_larger_on_a_repeat() {
        let spec = parse("kill,stall*3,reorder:20*2");
        assert_eq!(
            spec.faults(),
            [
                FaultSpec::Kill(None),
                FaultSpec::Stall(None),
                FaultSpec::Reorder(Some(20))
            ]
        );
        assert_eq!(spec.weights(), [1, 3, 2]);
        assert_eq!(spec.to_string(), "kill,stall*3,reorder:20*2");
        assert_eq!(parse(&spec.to_string()), spec, "the text reads back");
        assert_eq!(parse("stall*1"), parse("stall"), "weight 1 is no weight");
        let all_kill = parse("all,kill*3");
        assert_eq!(all_kill.faults(), NemesisSpec::all().faults());
        assert_eq!(all_kill.weights()[0], 3, "kill keeps the larger weight");
        assert!(all_kill.weights()[1..].iter().all(|&w| w == 1));
        assert_eq!(parse("kill*4,kill*2").weights(), [4]);
        assert!(parse("all*2").weights().iter().all(|&w| w == 2));
        assert_eq!(
            parse("partition:bridge*5,loss:0.5*2").to_string(),
            "partition:bridge*5,loss:0.5*2"
        );
    }

    #[test]
    fn bad_weights_say_what_a_weight_must_be() {
        for text in ["stall*0", "stall*21", "stall*x", "stall*", "kill*2.5"] {
            let err = text.parse::<NemesisSpec>().unwrap_err().to_string();
            assert!(
                err.contains("must be a whole number, 1 to 20") && err.contains("stall*3"),
                "{text}: {err}"
            );
        }
        let err = "none*2".parse::<NemesisSpec>().unwrap_err().to_string();
        assert!(err.contains("`none` takes no weight"), "{err}");
        let err = "stall:99999*2"
            .parse::<NemesisSpec>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stall `99999`"),
            "the option is still checked: {err}"
        );
    }

    #[test]
    fn the_reduced_specs_keep_the_weights() {
        assert_eq!(
            parse("kill*2,loss*3,power-cut*4,membership*2").without_network(),
            parse("kill*2,power-cut*4,membership:grow*2,membership:shrink*2,membership:replace*2")
        );
        assert_eq!(
            parse("kill*2,loss*3,power-cut*4").without_power_cut(),
            parse("kill*2,loss*3")
        );
    }

    #[test]
    fn network_needs_are_known() {
        assert!(parse("kill,loss").needs_network());
        assert!(!parse("kill,pause").needs_network());
        assert_eq!(
            parse("all").without_network(),
            parse("kill,pause,power-cut,corrupt,restart,transfer-leader,membership:grow,membership:shrink,membership:replace")
        );
        assert!(parse("kill,power-cut:all").needs_fuse());
        assert!(!parse("kill,corrupt").needs_fuse());
        assert_eq!(
            parse("all").without_power_cut().to_string(),
            "kill,pause,partition,loss,corrupt,restart,transfer-leader,membership"
        );
    }

    #[test]
    fn corrupting_a_majority_is_refused_with_the_reason() {
        for text in ["corrupt:majority", "corrupt:all"] {
            let err = text.parse::<NemesisSpec>().unwrap_err().to_string();
            assert!(
                err.contains("would damage a majority of disks") && err.contains("corrupt:one"),
                "{err}"
            );
        }
        assert!("corrupt:minority".parse::<NemesisSpec>().is_ok());
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let err = "kill,smash".parse::<NemesisSpec>().unwrap_err().to_string();
        assert!(
            err.starts_with("invalid --nemesis `kill,smash`: unknown fault `smash`; valid: kill")
        );
        let err = "kill:everyone"
            .parse::<NemesisSpec>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown target `everyone`; valid: one, minority"),
            "{err}"
        );
        let err = "partition:halves"
            .parse::<NemesisSpec>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown partition kind `halves`"), "{err}");
    }

    #[test]
    fn bad_shapes_are_rejected() {
        for text in [
            "",
            "kill,,pause",
            "loss:2",
            "loss:0",
            "loss:x",
            "all:one",
            "none,kill",
        ] {
            assert!(
                text.parse::<NemesisSpec>().is_err(),
                "`{text}` should not parse"
            );
        }
    }

    #[test]
    fn spec_serialises_as_its_text() {
        assert_eq!(
            serde_json::to_string(&parse("kill:leader,partition")).unwrap(),
            "\"kill:leader,partition\""
        );
    }
}
