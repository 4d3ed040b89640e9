//! Partitions as data: which node stops hearing from which.
//!
//! A partition is computed by a pure function of the node list, a seeded RNG and (for
//! `isolate-leader` only) the current leader, into a [`Grudge`]: for every node, the set of nodes
//! whose packets it drops. The grudge then becomes iptables rules ([`Grudge::rules`]), one per
//! directed link, and the firewall applies them. Keeping the three steps apart makes the partition
//! shapes testable without root, and the rules recordable exactly.
//!
//! The kinds (names as in `--nemesis partition:KIND`, after Jepsen's):
//!
//! | kind | shape |
//! |---|---|
//! | `one` | one random node cut off from all others |
//! | `majority` | random halves: a minority (⌊n/2⌋) and a majority, cut from each other |
//! | `majorities-ring` | nodes on a random ring; each hears only its ring neighbours, enough of them to see a majority, and no two nodes see the same set |
//! | `minority-third` | a random third (⌊n/3⌋, at least 1) cut off from the rest |
//! | `isolate-leader` | the current leader cut off from all others (a random node if no leader is known) |
//! | `bridge` | two halves cut from each other, and one node in the middle that both halves still see |
//! | `asymmetric` | random halves, one direction only: one side stops hearing the other, not the reverse |
//!
//! Every random choice consumes the RNG the same way whatever the leader is, so a schedule stays a
//! pure function of its seed even though `isolate-leader` depends on the live cluster.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::SliceRandom;
use rand::Rng;

use crate::error::{Error, Result};
use crate::firewall::{Rule, RuleKind};
use crate::NodeId;

/// The partition shapes. See the module docs for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionKind {
    One,
    Majority,
    MajoritiesRing,
    MinorityThird,
    IsolateLeader,
    Bridge,
    Asymmetric,
}

impl PartitionKind {
    /// Every kind, in the order the schedule draws from.
    pub const ALL: [PartitionKind; 7] = [
        PartitionKind::One,
        PartitionKind::Majority,
        PartitionKind::MajoritiesRing,
        PartitionKind::MinorityThird,
        PartitionKind::IsolateLeader,
        PartitionKind::Bridge,
        PartitionKind::Asymmetric,
    ];

    /// The kind's name on the command line and in the history.
    pub fn name(self) -> &'static str {
        match self {
            PartitionKind::One => "one",
            PartitionKind::Majority => "majority",
            PartitionKind::MajoritiesRing => "majorities-ring",
            PartitionKind::MinorityThird => "minority-third",
            PartitionKind::IsolateLeader => "isolate-leader",
            PartitionKind::Bridge => "bridge",
            PartitionKind::Asymmetric => "asymmetric",
        }
    }

    /// The fewest nodes on which the shape means something: a cut needs two sides; a bridge needs
    /// a node between two halves; a ring where nobody sees everybody but everybody sees a majority
    /// needs four.
    pub fn min_nodes(self) -> usize {
        match self {
            PartitionKind::MajoritiesRing => 4,
            PartitionKind::Bridge | PartitionKind::MinorityThird => 3,
            _ => 2,
        }
    }
}

impl std::fmt::Display for PartitionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PartitionKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        PartitionKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = PartitionKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown partition kind `{s}`; valid: {}", names.join(", "))
            })
    }
}

/// Who drops whom: for each node, the nodes whose packets it no longer receives.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Grudge(BTreeMap<NodeId, BTreeSet<NodeId>>);

impl Grudge {
    /// No cut at all.
    pub fn new() -> Grudge {
        Grudge::default()
    }

    /// `to` stops hearing from `from` (one direction).
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        if from != to {
            self.0.entry(to).or_default().insert(from);
        }
    }

    /// `a` and `b` stop hearing each other.
    pub fn cut(&mut self, a: NodeId, b: NodeId) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Every node of `side_a` and every node of `side_b` stop hearing each other.
    pub fn cut_between(&mut self, side_a: &[NodeId], side_b: &[NodeId]) {
        for &a in side_a {
            for &b in side_b {
                self.cut(a, b);
            }
        }
    }

    /// Whether `node` still receives packets from `from`.
    pub fn hears(&self, node: NodeId, from: NodeId) -> bool {
        self.0
            .get(&node)
            .is_none_or(|dropped| !dropped.contains(&from))
    }

    /// Whether a TCP connection between `a` and `b` can open: it needs both directions.
    pub fn can_connect(&self, a: NodeId, b: NodeId) -> bool {
        self.hears(a, b) && self.hears(b, a)
    }

    /// The nodes among `nodes` that `node` hears, itself included.
    pub fn sees(&self, node: NodeId, nodes: &[NodeId]) -> BTreeSet<NodeId> {
        nodes
            .iter()
            .copied()
            .filter(|&other| other == node || self.hears(node, other))
            .collect()
    }

    /// The nodes that lose at least one link, either way.
    pub fn affected(&self) -> Vec<NodeId> {
        let mut nodes: BTreeSet<NodeId> = BTreeSet::new();
        for (to, froms) in &self.0 {
            if !froms.is_empty() {
                nodes.insert(*to);
                nodes.extend(froms);
            }
        }
        nodes.into_iter().collect()
    }

    /// True if no link is cut.
    pub fn is_empty(&self) -> bool {
        self.0.values().all(BTreeSet::is_empty)
    }

    /// One iptables rule per cut directed link, in a stable order (by receiver, then sender).
    pub fn rules(&self, kind: RuleKind) -> Vec<Rule> {
        self.0
            .iter()
            .flat_map(|(&to, froms)| froms.iter().map(move |&from| Rule::between(from, to, kind)))
            .collect()
    }
}

/// A partition ready to apply: its kind, a description of its groups, and the grudge.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Partition {
    pub kind: PartitionKind,
    /// The shape, for people: the sides for `one`, `majority`, `minority-third`, `isolate-leader`
    /// (isolated side first); `[from, to]` for `asymmetric` (`to` stops hearing `from`);
    /// `[left, [bridge], right]` for `bridge`; `[ring order]` for `majorities-ring`.
    pub groups: Vec<Vec<NodeId>>,
    pub grudge: Grudge,
}

/// Computes a partition of `nodes` (ids in any order; the result only depends on the set).
///
/// `leader` is used by `isolate-leader` only; when it is `None` (or not one of `nodes`) a random
/// node stands in. The RNG is consumed identically whatever `leader` is.
pub fn partition(
    kind: PartitionKind,
    nodes: &[NodeId],
    rng: &mut impl Rng,
    leader: Option<NodeId>,
) -> Result<Partition> {
    let mut nodes: Vec<NodeId> = nodes.to_vec();
    nodes.sort_unstable();
    nodes.dedup();
    let n = nodes.len();
    if n < kind.min_nodes() {
        return Err(Error::TooFewNodes {
            what: format!("partition {kind}"),
            min: kind.min_nodes(),
            n,
        });
    }
    nodes.shuffle(rng);
    let mut grudge = Grudge::new();
    let groups = match kind {
        PartitionKind::One => split_off(&mut grudge, &nodes, 1),
        PartitionKind::Majority => split_off(&mut grudge, &nodes, n / 2),
        PartitionKind::MinorityThird => split_off(&mut grudge, &nodes, (n / 3).max(1)),
        PartitionKind::IsolateLeader => {
            let fallback = nodes[0];
            let isolated = leader.filter(|l| nodes.contains(l)).unwrap_or(fallback);
            return Ok(isolate(kind, isolated, &nodes));
        }
        PartitionKind::Bridge => {
            let mid = (n - 1) / 2;
            let (left, right) = (&nodes[..mid], &nodes[mid + 1..]);
            grudge.cut_between(left, right);
            vec![
                sorted(left.to_vec()),
                vec![nodes[mid]],
                sorted(right.to_vec()),
            ]
        }
        PartitionKind::Asymmetric => {
            let (from, to) = nodes.split_at(n / 2);
            for &a in from {
                for &b in to {
                    grudge.cut_one_way(a, b);
                }
            }
            vec![sorted(from.to_vec()), sorted(to.to_vec())]
        }
        PartitionKind::MajoritiesRing => {
            // Each node hears the ring neighbours within distance `reach`, so it sees 2·reach + 1
            // nodes: the smallest such window that holds a majority. Windows are symmetric (a hears
            // b iff b hears a) and, being smaller than the ring, all different.
            let majority = n / 2 + 1;
            let reach = majority / 2;
            for (i, &a) in nodes.iter().enumerate() {
                for (j, &b) in nodes.iter().enumerate() {
                    let d = i.abs_diff(j);
                    if d.min(n - d) > reach {
                        grudge.cut_one_way(b, a);
                    }
                }
            }
            vec![nodes.clone()]
        }
    };
    Ok(Partition {
        kind,
        groups,
        grudge,
    })
}

/// `node` cut off from every other of `nodes`, recorded as `kind`.
pub(crate) fn isolate(kind: PartitionKind, node: NodeId, nodes: &[NodeId]) -> Partition {
    let rest: Vec<NodeId> = nodes.iter().copied().filter(|&x| x != node).collect();
    let mut grudge = Grudge::new();
    grudge.cut_between(&[node], &rest);
    Partition {
        kind,
        groups: vec![vec![node], sorted(rest)],
        grudge,
    }
}

/// Cuts the first `k` of `shuffled` from the rest; returns `[first k, rest]`, each sorted.
fn split_off(grudge: &mut Grudge, shuffled: &[NodeId], k: usize) -> Vec<Vec<NodeId>> {
    let (small, rest) = shuffled.split_at(k);
    grudge.cut_between(small, rest);
    vec![sorted(small.to_vec()), sorted(rest.to_vec())]
}

fn sorted(mut v: Vec<NodeId>) -> Vec<NodeId> {
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn nodes(n: u64) -> Vec<NodeId> {
        (1..=n).collect()
    }

    fn make(kind: PartitionKind, n: u64, seed: u64, leader: Option<NodeId>) -> Partition {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        partition(kind, &nodes(n), &mut rng, leader).unwrap()
    }

    /// For every seed in a range: run `check` on the partition of `n` nodes.
    fn for_seeds(kind: PartitionKind, n: u64, check: impl Fn(&Partition)) {
        for seed in 0..50 {
            check(&make(kind, n, seed, None));
        }
    }

    /// Asserts that the two sides hear nobody across and everybody within.
    fn assert_clean_cut(p: &Partition, a: &[NodeId], b: &[NodeId]) {
        for &x in a {
            for &y in b {
                assert!(
                    !p.grudge.hears(x, y) && !p.grudge.hears(y, x),
                    "{x}-{y} in {p:?}"
                );
            }
        }
        for side in [a, b] {
            for &x in side {
                for &y in side {
                    assert!(p.grudge.hears(x, y), "{x} should hear {y} in {p:?}");
                }
            }
        }
    }

    #[test]
    fn one_cuts_a_single_node_from_all_others() {
        for n in 2..=7 {
            for_seeds(PartitionKind::One, n, |p| {
                assert_eq!(p.groups[0].len(), 1);
                assert_eq!(p.groups[1].len() as u64, n - 1);
                assert_clean_cut(p, &p.groups[0], &p.groups[1]);
            });
        }
    }

    #[test]
    fn majority_splits_into_random_halves() {
        // (n, minority size): the majority side is the rest.
        for (n, minority) in [(2, 1), (3, 1), (4, 2), (5, 2), (6, 3), (7, 3)] {
            for_seeds(PartitionKind::Majority, n, |p| {
                assert_eq!(p.groups[0].len(), minority);
                assert_eq!(p.groups[1].len() as u64, n - minority as u64);
                assert_clean_cut(p, &p.groups[0], &p.groups[1]);
            });
        }
        let sides: BTreeSet<Vec<NodeId>> = (0..50)
            .map(|s| make(PartitionKind::Majority, 5, s, None).groups[0].clone())
            .collect();
        assert!(sides.len() > 3, "halves should be random, got {sides:?}");
    }

    #[test]
    fn majorities_ring_on_five_each_sees_itself_and_two_and_no_two_the_same() {
        for_seeds(PartitionKind::MajoritiesRing, 5, |p| {
            let all = nodes(5);
            let views: BTreeSet<BTreeSet<NodeId>> =
                all.iter().map(|&x| p.grudge.sees(x, &all)).collect();
            assert_eq!(views.len(), 5, "views must all differ: {p:?}");
            for &x in &all {
                let seen = p.grudge.sees(x, &all);
                assert_eq!(seen.len(), 3, "node {x} sees {seen:?}");
                for &y in &all {
                    assert_eq!(p.grudge.hears(x, y), p.grudge.hears(y, x), "symmetric");
                }
            }
        });
    }

    #[test]
    fn majorities_ring_sees_a_majority_never_everybody_on_4_to_9_nodes() {
        for n in 4..=9u64 {
            for_seeds(PartitionKind::MajoritiesRing, n, |p| {
                let all = nodes(n);
                let views: BTreeSet<BTreeSet<NodeId>> =
                    all.iter().map(|&x| p.grudge.sees(x, &all)).collect();
                assert_eq!(views.len() as u64, n, "distinct views on {n}: {p:?}");
                for &x in &all {
                    let seen = p.grudge.sees(x, &all).len() as u64;
                    assert!(seen > n / 2 && seen < n, "node {x} sees {seen} of {n}");
                }
            });
        }
    }

    #[test]
    fn minority_third_cuts_a_third_rounded_down_at_least_one() {
        for (n, isolated) in [(3, 1), (4, 1), (5, 1), (6, 2), (7, 2), (9, 3)] {
            for_seeds(PartitionKind::MinorityThird, n, |p| {
                assert_eq!(p.groups[0].len(), isolated, "n = {n}");
                assert_clean_cut(p, &p.groups[0], &p.groups[1]);
            });
        }
    }

    #[test]
    fn isolate_leader_cuts_the_leader_reported_by_the_cluster() {
        let p = make(PartitionKind::IsolateLeader, 5, 7, Some(3));
        assert_eq!(p.groups, vec![vec![3], vec![1, 2, 4, 5]]);
        assert_clean_cut(&p, &[3], &[1, 2, 4, 5]);
    }

    #[test]
    fn isolate_leader_without_a_leader_isolates_a_random_node_and_uses_the_rng_alike() {
        let mut with = ChaCha8Rng::seed_from_u64(9);
        let mut without = ChaCha8Rng::seed_from_u64(9);
        partition(PartitionKind::IsolateLeader, &nodes(5), &mut with, Some(2)).unwrap();
        let p = partition(PartitionKind::IsolateLeader, &nodes(5), &mut without, None).unwrap();
        assert_eq!(p.groups[0].len(), 1);
        assert_eq!(
            with.gen::<u64>(),
            without.gen::<u64>(),
            "same RNG consumption"
        );
    }

    #[test]
    fn bridge_has_one_node_that_sees_both_halves_which_do_not_see_each_other() {
        for (n, left, right) in [(3, 1, 1), (4, 1, 2), (5, 2, 2), (6, 2, 3), (7, 3, 3)] {
            for_seeds(PartitionKind::Bridge, n, |p| {
                let (l, bridge, r) = (&p.groups[0], p.groups[1][0], &p.groups[2]);
                assert_eq!((l.len(), r.len()), (left, right), "n = {n}");
                assert_clean_cut(p, l, r);
                assert_eq!(p.grudge.sees(bridge, &nodes(n)).len() as u64, n);
                for &x in l.iter().chain(r) {
                    assert!(p.grudge.can_connect(x, bridge));
                }
            });
        }
    }

    #[test]
    fn asymmetric_cuts_one_direction_only() {
        for_seeds(PartitionKind::Asymmetric, 5, |p| {
            let (from, to) = (&p.groups[0], &p.groups[1]);
            assert_eq!((from.len(), to.len()), (2, 3));
            for &a in from {
                for &b in to {
                    assert!(!p.grudge.hears(b, a), "{b} must not hear {a}");
                    assert!(p.grudge.hears(a, b), "{a} must still hear {b}");
                }
            }
            assert_eq!(p.grudge.rules(RuleKind::Drop).len(), 6);
        });
    }

    #[test]
    fn too_few_nodes_is_a_clear_error() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let err = partition(PartitionKind::MajoritiesRing, &nodes(3), &mut rng, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "partition majorities-ring needs at least 4 nodes, the cluster has 3"
        );
    }

    #[test]
    fn a_bidirectional_cut_is_two_rules_in_stable_order() {
        let mut g = Grudge::new();
        g.cut(2, 1);
        let rules: Vec<String> = g.rules(RuleKind::Drop).iter().map(Rule::command).collect();
        assert_eq!(
            rules,
            [
                "iptables -A riptide -s 127.0.0.12 -d 127.0.0.11 -j DROP",
                "iptables -A riptide -s 127.0.0.11 -d 127.0.0.12 -j DROP",
            ]
        );
        assert_eq!(g.affected(), [1, 2]);
        assert!(!g.can_connect(1, 2));
    }

    #[test]
    fn kinds_parse_from_their_names() {
        for kind in PartitionKind::ALL {
            assert_eq!(kind.name().parse::<PartitionKind>(), Ok(kind));
        }
        assert!("halves"
            .parse::<PartitionKind>()
            .unwrap_err()
            .contains("valid: one, majority, majorities-ring"));
    }
}
