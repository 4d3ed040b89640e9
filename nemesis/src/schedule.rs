//! The seeded fault schedule: which fault comes next, on which nodes.
//!
//! A [`Schedule`] is an endless sequence of [`Plan`]s and a pure function of (seed, spec, node
//! ids): the same three give the same faults in the same order, on every machine. Each plan picks
//! one item of the spec, uniformly or by the items' weights (`stall*3`), then fills in what the item leaves open (target, partition kind)
//! and draws the nodes, all from one ChaCha RNG.
//!
//! # Independent draws or a deck
//!
//! By default every start draws its item afresh, so a run of ten starts over a dozen items
//! leaves about four of them out (each is missed with probability (11/12)^10). With a deck
//! ([`Schedule::dealt`], `--nemesis-deck`) the items are dealt like cards: each item goes into
//! the deck as many times as its weight, the deck is shuffled (seeded), and the starts take the
//! cards in order; only when the deck is empty is it refilled and shuffled again. Every item
//! then comes up once per round of the deck, and a run of ten starts over twelve items misses
//! two, not four. With `--nemesis-overlap` a card whose class is already in place is skipped,
//! not thrown away: the next start takes the first card that fits and the skipped one stays on
//! top for later ([`Schedule::next_plan_fitting`]).
//!
//! The only input from the live cluster is the leader, for the `leader` target and the
//! `isolate-leader` partition. The schedule draws a stand-in node for those as for any other
//! target, and the nemesis swaps in the real leader when the fault starts
//! ([`Plan::with_leader`]). The RNG never sees the leader, so the rest of the sequence does not
//! depend on who led when.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::disk::CutMode;
use crate::error::{Error, Result};
use crate::firewall::Rule;
use crate::partition::{self, Grudge, PartitionKind};
use crate::spec::{
    minority_size, Change, FaultSpec, NemesisSpec, Target, DEFAULT_APPLY_DELAY_MS,
    DEFAULT_DELAY_MS, DEFAULT_LOSS_PROBABILITY, DEFAULT_REORDER_MS, DEFAULT_STALE_HOLD_MS,
    DEFAULT_STALL_AWAKE_MS,
};
use crate::NodeId;

pub use crate::plan::{transfer_target, Plan};

/// The ChaCha stream the nemesis draws from. The run's seed also seeds the workload; a stream of
/// its own keeps the two sequences independent, so a change to the workload never changes the
/// faults of a seed. (The value is "nemesis" in ASCII.)
pub const NEMESIS_STREAM: u64 = 0x006e_656d_6573_6973;

/// The ChaCha stream of the membership lane's schedule ([`Schedule::split_membership`]): "members"
/// in ASCII.
pub const MEMBERSHIP_STREAM: u64 = 0x006d_656d_6265_7273;

/// The targets an unpinned `corrupt` draws from: never a majority (see [`crate::disk`]).
const CORRUPT_TARGETS: [Target; 4] = [
    Target::One,
    Target::Minority,
    Target::Leader,
    Target::Random,
];

/// The seeded, endless sequence of plans.
#[derive(Debug, Clone)]
pub struct Schedule {
    rng: ChaCha8Rng,
    faults: Vec<FaultSpec>,
    /// One per item of `faults` (see [`NemesisSpec::weights`]).
    weights: Vec<u32>,
    nodes: Vec<NodeId>,
    /// With a deck: the cards (indices into `faults`) still to come this round, next first.
    /// `None`: every plan draws its item afresh.
    deck: Option<Vec<usize>>,
}

impl Schedule {
    /// The schedule of `spec` on `nodes`, drawn from `seed`.
    ///
    /// Fails if a fault of the spec cannot be built on this many nodes (a pinned partition kind
    /// too big for the cluster, a partition or loss on one node).
    pub fn new(seed: u64, spec: &NemesisSpec, nodes: &[NodeId]) -> Result<Schedule> {
        let mut nodes = nodes.to_vec();
        nodes.sort_unstable();
        nodes.dedup();
        let n = nodes.len();
        for fault in spec.faults() {
            let min = match fault {
                FaultSpec::Kill(_)
                | FaultSpec::Pause(_)
                | FaultSpec::PowerCut(_)
                | FaultSpec::Restart(_)
                | FaultSpec::SlowApply(_) => 1,
                // A peer to send messages to; a peer to be cut off from.
                FaultSpec::Reorder(_) | FaultSpec::Stall(_) => 2,
                // A minority must be damaged while a majority keeps good disks; a lagging node
                // needs two others to be the only link between.
                FaultSpec::Corrupt(_) | FaultSpec::StaleCandidate(_) => 3,
                FaultSpec::Loss(_) | FaultSpec::Delay(_) | FaultSpec::TransferLeader => 2,
                // A shrink must leave a cluster that still has a majority to lose.
                FaultSpec::Membership(_) => 3,
                FaultSpec::Partition(Some(kind)) => kind.min_nodes(),
                FaultSpec::Partition(None) => PartitionKind::ALL
                    .iter()
                    .map(|k| k.min_nodes())
                    .min()
                    .unwrap_or(2),
            };
            if n < min {
                return Err(Error::TooFewNodes {
                    what: format!("--nemesis {fault}"),
                    min,
                    n,
                });
            }
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(NEMESIS_STREAM);
        Ok(Schedule {
            rng,
            faults: spec.faults().to_vec(),
            weights: spec.weights().to_vec(),
            nodes,
            deck: None,
        })
    }

    /// The same schedule dealing its items from a deck (see the module docs).
    pub fn dealt(mut self) -> Schedule {
        self.deck = Some(Vec::new());
        self
    }

    /// Takes the membership items out into a schedule of their own, drawn from `seed` on
    /// [`MEMBERSHIP_STREAM`]: the overlapping loop's membership lane. `None` (and nothing taken)
    /// if the spec has no membership item, or nothing else.
    pub fn split_membership(&mut self, seed: u64) -> Option<Schedule> {
        type Weighted = Vec<(FaultSpec, u32)>;
        let (changes, others): (Weighted, Weighted) = self
            .faults
            .iter()
            .copied()
            .zip(self.weights.iter().copied())
            .partition(|(f, _)| matches!(f, FaultSpec::Membership(_)));
        if changes.is_empty() || others.is_empty() {
            return None;
        }
        (self.faults, self.weights) = others.into_iter().unzip();
        if let Some(deck) = &mut self.deck {
            deck.clear();
        }
        let (changes, weights) = changes.into_iter().unzip();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(MEMBERSHIP_STREAM);
        Some(Schedule {
            rng,
            faults: changes,
            weights,
            nodes: self.nodes.clone(),
            deck: self.deck.as_ref().map(|_| Vec::new()),
        })
    }

    /// The nodes the schedule draws from, sorted.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// Draws from `nodes` from now on: the members after a membership change. The draws stay a
    /// pure function of the seed and the sequence of member sets. A fault the new size cannot
    /// build (a pinned partition kind too big for it) draws a kind that fits instead.
    pub fn set_nodes(&mut self, nodes: &[NodeId]) {
        let mut nodes = nodes.to_vec();
        nodes.sort_unstable();
        nodes.dedup();
        if !nodes.is_empty() {
            self.nodes = nodes;
        }
    }

    /// The next fault, or `None` if the spec is empty.
    pub fn next_plan(&mut self) -> Option<Plan> {
        let fault = match self.deck.is_some() {
            true => {
                let card = self.deal(0)?;
                self.faults[card]
            }
            false => self.draw_item()?,
        };
        Some(self.plan(fault))
    }

    /// The next fault that `fits` (the nemesis's test against the faults in place), or `None`
    /// if none did. Independent draws: up to `tries` draws, the ones that do not fit thrown
    /// away. A deck: the first card in order whose plan fits, at most one round of the deck
    /// looked at; the cards passed over stay where they were.
    pub fn next_plan_fitting(
        &mut self,
        fits: &dyn Fn(&Plan) -> bool,
        tries: usize,
    ) -> Option<Plan> {
        if self.deck.is_none() {
            return (0..tries)
                .map_while(|_| self.next_plan())
                .find(|plan| fits(plan));
        }
        self.refill()?;
        let cards = self.deck.as_ref().map_or(0, Vec::len);
        for position in 0..cards {
            let card = self.deck.as_ref()?[position];
            let plan = self.plan(self.faults[card]);
            if fits(&plan) {
                self.deal(position);
                return Some(plan);
            }
        }
        None
    }

    /// Takes the card at `position` off the deck (refilled first if empty). `None` if the spec
    /// is empty.
    fn deal(&mut self, position: usize) -> Option<usize> {
        self.refill()?;
        let deck = self.deck.as_mut()?;
        (position < deck.len()).then(|| deck.remove(position))
    }

    /// An empty deck gets every item `weight` times, shuffled. `None` without a deck or items.
    fn refill(&mut self) -> Option<()> {
        let deck = self.deck.as_mut()?;
        if deck.is_empty() {
            for (i, &weight) in self.weights.iter().enumerate() {
                deck.extend(std::iter::repeat_n(i, weight as usize));
            }
            deck.shuffle(&mut self.rng);
        }
        (!deck.is_empty()).then_some(())
    }

    /// The plan of `fault`: its open choices (target, kind, nodes) drawn.
    fn plan(&mut self, fault: FaultSpec) -> Plan {
        match fault {
            FaultSpec::Kill(target) => {
                let target = target.unwrap_or_else(|| self.random_target());
                Plan::Kill {
                    target,
                    nodes: self.pick(target),
                }
            }
            FaultSpec::Pause(target) => {
                let target = target.unwrap_or_else(|| self.random_target());
                Plan::Pause {
                    target,
                    nodes: self.pick(target),
                }
            }
            FaultSpec::Restart(target) => {
                let target = target.unwrap_or_else(|| self.random_target());
                Plan::Restart {
                    target,
                    nodes: self.pick(target),
                }
            }
            FaultSpec::Partition(kind) => {
                let n = self.nodes.len();
                let kind = kind.filter(|k| k.min_nodes() <= n).unwrap_or_else(|| {
                    let fitting: Vec<PartitionKind> = PartitionKind::ALL
                        .into_iter()
                        .filter(|k| k.min_nodes() <= n)
                        .collect();
                    *fitting.choose(&mut self.rng).unwrap_or(&PartitionKind::One)
                });
                match partition::partition(kind, &self.nodes, &mut self.rng, None) {
                    Ok(p) => Plan::Partition(p),
                    // Fewer nodes than any partition needs (a shrunk cluster of two, say): a
                    // loss on one node's links instead, which fits any two.
                    Err(_) => self.loss(None),
                }
            }
            FaultSpec::Loss(probability) => self.loss(probability),
            FaultSpec::Delay(max_ms) => {
                let target = self.random_target();
                let nodes = self.pick(target);
                Plan::Delay {
                    target,
                    links: loss_links(&nodes, &self.nodes),
                    nodes,
                    max_ms: max_ms.unwrap_or(DEFAULT_DELAY_MS),
                    seed: self.rng.gen(),
                }
            }
            FaultSpec::SlowApply(delay_ms) => self.slow_apply(delay_ms),
            FaultSpec::Reorder(max_ms) => Plan::Reorder {
                max_delay_ms: max_ms.unwrap_or(DEFAULT_REORDER_MS),
                seed: self.rng.gen(),
            },
            FaultSpec::Stall(awake_ms) => self.stall(awake_ms),
            FaultSpec::StaleCandidate(hold_ms) => self.stale_candidate(hold_ms),
            FaultSpec::PowerCut(target) => self.power_cut(target),
            FaultSpec::Corrupt(target) => self.corrupt(target),
            FaultSpec::TransferLeader => Plan::TransferLeader {
                draw: self.rng.gen(),
            },
            FaultSpec::Membership(change) => Plan::Membership {
                change: change.unwrap_or_else(|| {
                    *Change::DRAWN
                        .choose(&mut self.rng)
                        .expect("DRAWN is not empty")
                }),
                draw: self.rng.gen(),
                stop_draw: self.rng.gen(),
            },
        }
    }

    /// The spec item of the next plan: uniform over the items when none carries a weight (one
    /// `choose`, the draw every seed made before weights existed), else item i with
    /// probability weight(i) / total.
    fn draw_item(&mut self) -> Option<FaultSpec> {
        if self.weights.iter().all(|&w| w == 1) {
            return self.faults.choose(&mut self.rng).copied();
        }
        let total: u32 = self.weights.iter().sum();
        let mut k = self.rng.gen_range(0..total);
        for (fault, &weight) in self.faults.iter().zip(&self.weights) {
            if k < weight {
                return Some(*fault);
            }
            k -= weight;
        }
        None
    }

    /// A stall of the leader, once the nemesis knows it (a random stand-in until then).
    fn stall(&mut self, awake_ms: Option<u16>) -> Plan {
        let nodes = self.pick(Target::Leader);
        Plan::Stall {
            cut: partition::isolate(PartitionKind::IsolateLeader, nodes[0], &self.nodes),
            nodes,
            awake_ms: awake_ms.unwrap_or(DEFAULT_STALL_AWAKE_MS),
        }
    }

    /// A stale candidate: a random follower to cut off (the leader swapped out once known).
    fn stale_candidate(&mut self, hold_ms: Option<u16>) -> Plan {
        let nodes = self.pick(Target::One);
        Plan::StaleCandidate {
            cut: partition::isolate(PartitionKind::One, nodes[0], &self.nodes),
            nodes,
            hold_ms: hold_ms.unwrap_or(DEFAULT_STALE_HOLD_MS),
        }
    }

    fn loss(&mut self, probability: Option<f64>) -> Plan {
        let target = self.random_target();
        let nodes = self.pick(target);
        Plan::Loss {
            target,
            links: loss_links(&nodes, &self.nodes),
            nodes,
            probability: probability.unwrap_or(DEFAULT_LOSS_PROBABILITY),
        }
    }

    fn power_cut(&mut self, target: Option<Target>) -> Plan {
        let target = target.unwrap_or_else(|| self.random_target());
        let nodes = self.pick(target);
        let seed = self.rng.gen();
        let cut = match self.rng.gen_range(0..3) {
            0 => CutMode::All,
            1 => CutMode::Torn { seed },
            _ => CutMode::Reorder { seed },
        };
        Plan::PowerCut { target, nodes, cut }
    }

    /// A corrupt plan: never more than a minority of the nodes (see [`crate::disk`]).
    fn corrupt(&mut self, target: Option<Target>) -> Plan {
        let target = target.unwrap_or_else(|| {
            *CORRUPT_TARGETS
                .choose(&mut self.rng)
                .expect("CORRUPT_TARGETS is not empty")
        });
        let minority = minority_size(self.nodes.len());
        let k = match target {
            Target::Random => self.rng.gen_range(1..=minority),
            Target::Minority => minority,
            _ => 1,
        };
        let mut nodes: Vec<NodeId> = self
            .nodes
            .choose_multiple(&mut self.rng, k)
            .copied()
            .collect();
        nodes.sort_unstable();
        let seed = self.rng.gen();
        Plan::Corrupt {
            target,
            nodes,
            seed,
        }
    }

    /// A slow-apply plan: followers that lag, which leadership is then handed to
    /// (`slow_apply.rs`); a slowed majority or all would slow the leader too, which hides the
    /// lag.
    fn slow_apply(&mut self, delay_ms: Option<u16>) -> Plan {
        let target = *[Target::One, Target::Minority]
            .choose(&mut self.rng)
            .expect("not empty");
        Plan::SlowApply {
            target,
            nodes: self.pick(target),
            delay_ms: delay_ms.unwrap_or(DEFAULT_APPLY_DELAY_MS),
        }
    }

    fn random_target(&mut self) -> Target {
        *Target::ALL.choose(&mut self.rng).expect("ALL is not empty")
    }

    /// Draws the nodes for `target`; for `leader`, one random stand-in.
    fn pick(&mut self, target: Target) -> Vec<NodeId> {
        let n = self.nodes.len();
        let k = match target {
            Target::One | Target::Leader => 1,
            Target::Minority => minority_size(n),
            Target::Majority => n / 2 + 1,
            Target::All => n,
            Target::Random => self.rng.gen_range(1..=n),
        };
        let mut picked: Vec<NodeId> = self
            .nodes
            .choose_multiple(&mut self.rng, k.min(n))
            .copied()
            .collect();
        picked.sort_unstable();
        picked
    }
}

impl Iterator for Schedule {
    type Item = Plan;

    fn next(&mut self) -> Option<Plan> {
        self.next_plan()
    }
}

/// The delay of one directed link of a delay plan, in 1..=`max_ms` ms: a hash of the plan's
/// seed and the link's two addresses, so that it needs no RNG and stays the same when the
/// leader is swapped in.
pub fn link_delay(seed: u64, link: &Rule, max_ms: u16) -> u16 {
    let ends = (u64::from(u32::from(link.src)) << 32) | u64::from(u32::from(link.dst));
    // splitmix64's finaliser: every input bit moves every output bit.
    let mut z = seed ^ ends.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    1 + (z % u64::from(max_ms.max(1))) as u16
}

/// Every directed link with an end among `targets`.
pub(crate) fn loss_links(targets: &[NodeId], nodes: &[NodeId]) -> Grudge {
    let mut links = Grudge::new();
    for &a in nodes {
        for &b in nodes {
            if a != b && (targets.contains(&a) || targets.contains(&b)) {
                links.cut_one_way(a, b);
            }
        }
    }
    links
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::RuleKind;
    use crate::plan::spare_the_leader;
    use crate::spec::{Class, Family};

    fn schedule(seed: u64, spec: &str, n: u64) -> Schedule {
        let nodes: Vec<NodeId> = (1..=n).collect();
        Schedule::new(seed, &spec.parse().unwrap(), &nodes).unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_fault_sequence() {
        let a: Vec<Plan> = schedule(42, "all", 5).take(200).collect();
        let b: Vec<Plan> = schedule(42, "all", 5).take(200).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn weights_draw_items_in_proportion() {
        let plans: Vec<Plan> = schedule(5, "kill,pause,stall*6", 3).take(4000).collect();
        let stalls = plans.iter().filter(|p| p.family() == Family::Stall).count();
        let kills = plans.iter().filter(|p| p.family() == Family::Kill).count();
        // Expected 3000 and 500; binomial sd about 27 and 21.
        assert!((2850..=3150).contains(&stalls), "{stalls} stalls in 4000");
        assert!((400..=600).contains(&kills), "{kills} kills in 4000");
        let a: Vec<Plan> = schedule(5, "kill,pause,stall*6", 3).take(100).collect();
        assert_eq!(a, plans[..100], "weighted draws are seeded too");
    }

    #[test]
    fn a_spec_without_weights_draws_its_items_with_one_choose_as_always() {
        // The draw every seed made before weights existed: one `choose` over the items. A
        // reorder plan then draws its seed and nothing else, so the stream is known.
        let spec = "reorder:1,reorder:2,reorder:3,reorder:4,reorder:5";
        let drawn: Vec<Plan> = schedule(11, spec, 3).take(50).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        rng.set_stream(NEMESIS_STREAM);
        let items: Vec<u16> = (1..=5).collect();
        for plan in drawn {
            let ms = *items.choose(&mut rng).unwrap();
            let seed: u64 = rng.gen();
            assert_eq!(
                plan,
                Plan::Reorder {
                    max_delay_ms: ms,
                    seed
                }
            );
        }
    }

    /// The `reorder:MS` values of `plans` (the specs below are reorders only).
    fn reorder_ms(plans: &[Plan]) -> Vec<u16> {
        plans
            .iter()
            .map(|p| match p {
                Plan::Reorder { max_delay_ms, .. } => *max_delay_ms,
                other => panic!("not a reorder: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_deck_deals_every_item_as_often_as_its_weight_each_round() {
        let spec = "reorder:1*2,reorder:2,reorder:3,reorder:4,reorder:5*3";
        let plans: Vec<Plan> = schedule(8, spec, 3).dealt().take(8 * 50).collect();
        let ms = reorder_ms(&plans);
        for round in ms.chunks(8) {
            let mut round = round.to_vec();
            round.sort_unstable();
            assert_eq!(round, [1, 1, 2, 3, 4, 5, 5, 5], "one round of the deck");
        }
        assert_ne!(ms[..8], ms[8..16], "each round shuffled anew");
        let again: Vec<Plan> = schedule(8, spec, 3).dealt().take(8 * 50).collect();
        assert_eq!(again, plans, "seeded");
        let drawn: Vec<Plan> = schedule(8, spec, 3).take(8 * 50).collect();
        let uneven = reorder_ms(&drawn)
            .chunks(8)
            .filter(|c| c.iter().filter(|&&m| m == 2).count() != 1)
            .count();
        assert!(
            uneven > 10,
            "independent draws are not dealt: {uneven} of 50"
        );
    }

    #[test]
    fn a_deck_passes_over_cards_that_do_not_fit_and_keeps_them() {
        let mut deck = schedule(4, "reorder:1,reorder:2,reorder:3", 3).dealt();
        let not_one = |p: &Plan| {
            !matches!(
                p,
                Plan::Reorder {
                    max_delay_ms: 1,
                    ..
                }
            )
        };
        let a = deck.next_plan_fitting(&not_one, 8).unwrap();
        let b = deck.next_plan_fitting(&not_one, 8).unwrap();
        let mut dealt = reorder_ms(&[a, b]);
        dealt.sort_unstable();
        assert_eq!(dealt, [2, 3]);
        assert_eq!(
            deck.next_plan_fitting(&not_one, 8),
            None,
            "only the passed-over card is left, and it does not fit"
        );
        assert_eq!(
            reorder_ms(&[deck.next_plan().unwrap()]),
            [1],
            "kept for later"
        );
        let round = reorder_ms(&deck.by_ref().take(3).collect::<Vec<_>>());
        assert_eq!(round.iter().filter(|&&m| m == 1).count(), 1, "{round:?}");
    }

    #[test]
    fn without_a_deck_fitting_draws_are_the_old_redraws() {
        let spec = "reorder:1,reorder:2,reorder:3,reorder:4";
        let small = |p: &Plan| {
            matches!(
                p,
                Plan::Reorder {
                    max_delay_ms: 1 | 2,
                    ..
                }
            )
        };
        let mut fitting = schedule(6, spec, 3);
        let mut by_hand = schedule(6, spec, 3);
        for _ in 0..200 {
            let expected = (0..3).map_while(|_| by_hand.next_plan()).find(|p| small(p));
            assert_eq!(fitting.next_plan_fitting(&small, 3), expected);
        }
    }

    #[test]
    fn the_membership_lane_keeps_its_weights_and_the_rolling_faults_theirs() {
        let mut rolling = schedule(3, "membership:grow*3,membership:shrink,kill,stall*3", 5);
        let lane = rolling.split_membership(3).unwrap();
        assert_eq!(lane.weights, [3, 1]);
        assert_eq!(rolling.weights, [1, 3]);
        let plans: Vec<Plan> = rolling.take(2000).collect();
        let stalls = plans.iter().filter(|p| p.family() == Family::Stall).count();
        assert!((1400..=1600).contains(&stalls), "{stalls} stalls in 2000");
    }

    #[test]
    fn split_membership_takes_the_changes_into_a_lane_of_their_own() {
        let mut rolling = schedule(9, "membership,kill,partition", 5);
        let mut lane = rolling.split_membership(9).unwrap();
        let changes: Vec<Plan> = lane.by_ref().take(200).collect();
        assert!(changes.iter().all(|p| p.family() == Family::Membership));
        let aimed = changes.iter().filter(|p| p.takes_the_field()).count();
        assert!((100..170).contains(&aimed), "two in three aimed: {aimed}");
        let others: Vec<Plan> = rolling.take(200).collect();
        assert!(others.iter().all(|p| p.family() != Family::Membership));
        assert!(others.iter().any(|p| p.family() == Family::Kill));
        // Seeded: the same seed gives the same lane.
        let mut again = schedule(9, "membership,kill,partition", 5);
        let replay: Vec<Plan> = again.split_membership(9).unwrap().take(200).collect();
        assert_eq!(changes, replay);
        // `all` has membership and transfer-leader: its changes take the lane, the rest roll.
        let mut all = schedule(9, "all", 5);
        let lane = all.split_membership(9).unwrap();
        assert!(lane.faults.iter().all(|f| f.family() == Family::Membership));
        let rolling: Vec<Plan> = all.take(300).collect();
        assert!(rolling.iter().all(|p| p.family() != Family::Membership));
        assert!(rolling.iter().any(|p| p.family() == Family::TransferLeader));
        // Nothing to split from a spec of changes alone, or of no changes.
        assert!(schedule(9, "membership", 5).split_membership(9).is_none());
        let mut kills = schedule(9, "kill", 5);
        assert!(kills.split_membership(9).is_none());
        assert!(kills.next().is_some());
    }

    #[test]
    fn another_seed_gives_another_sequence() {
        let a: Vec<Plan> = schedule(1, "all", 5).take(20).collect();
        let b: Vec<Plan> = schedule(2, "all", 5).take(20).collect();
        assert_ne!(a, b);
    }

    #[test]
    fn node_order_does_not_matter() {
        let nodes = [3, 1, 5, 2, 4];
        let shuffled = Schedule::new(7, &NemesisSpec::all(), &nodes).unwrap();
        let a: Vec<Plan> = shuffled.take(50).collect();
        let b: Vec<Plan> = schedule(7, "all", 5).take(50).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn every_family_kind_and_target_shows_up() {
        let plans: Vec<Plan> = schedule(3, "all", 5).take(2000).collect();
        for family in Family::ALL {
            assert!(
                plans.iter().any(|p| p.family() == family),
                "{family} never drawn"
            );
        }
        for kind in PartitionKind::ALL {
            assert!(
                plans
                    .iter()
                    .any(|p| matches!(p, Plan::Partition(q) if q.kind == kind)),
                "{kind} never drawn"
            );
        }
        for target in Target::ALL {
            assert!(
                plans
                    .iter()
                    .any(|p| matches!(p, Plan::Kill { target: t, .. } if *t == target)),
                "kill:{target} never drawn"
            );
        }
    }

    #[test]
    fn pinned_items_are_respected() {
        for plan in schedule(5, "kill:majority,partition:bridge", 5).take(100) {
            match plan {
                Plan::Kill { target, nodes } => {
                    assert_eq!(target, Target::Majority);
                    assert_eq!(nodes.len(), 3);
                }
                Plan::Partition(p) => assert_eq!(p.kind, PartitionKind::Bridge),
                other => panic!("not in the spec: {other:?}"),
            }
        }
    }

    #[test]
    fn target_sizes() {
        // (target, n, size)
        let table = [
            (Target::One, 5, 1),
            (Target::Minority, 5, 2),
            (Target::Minority, 3, 1),
            (Target::Minority, 2, 1),
            (Target::Majority, 5, 3),
            (Target::Majority, 4, 3),
            (Target::All, 5, 5),
            (Target::Leader, 5, 1),
        ];
        for (target, n, size) in table {
            let spec = format!("pause:{target}");
            for plan in schedule(11, &spec, n).take(20) {
                let Plan::Pause { nodes, .. } = plan else {
                    unreachable!()
                };
                assert_eq!(nodes.len(), size, "{target} on {n}");
            }
        }
        for plan in schedule(11, "pause:random", 5).take(50) {
            let Plan::Pause { nodes, .. } = plan else {
                unreachable!()
            };
            assert!((1..=5).contains(&nodes.len()));
        }
    }

    #[test]
    fn partition_kinds_drawn_at_random_fit_the_cluster() {
        for plan in schedule(9, "partition", 3).take(200) {
            let Plan::Partition(p) = plan else {
                unreachable!()
            };
            assert_ne!(p.kind, PartitionKind::MajoritiesRing, "needs 4 nodes");
        }
    }

    #[test]
    fn leader_plans_take_the_live_leader_and_keep_the_stand_in_without_one() {
        let nodes = [1, 2, 3, 4, 5];
        let plan = schedule(1, "kill:leader", 5).next().unwrap();
        assert!(plan.needs_leader());
        assert_eq!(
            plan.clone().with_leader(Some(4), &nodes),
            Plan::Kill {
                target: Target::Leader,
                nodes: vec![4]
            }
        );
        assert_eq!(plan.clone().with_leader(None, &nodes), plan);

        let plan = schedule(1, "partition:isolate-leader", 5).next().unwrap();
        let Plan::Partition(p) = plan.with_leader(Some(2), &nodes) else {
            unreachable!()
        };
        assert_eq!(p.groups, vec![vec![2], vec![1, 3, 4, 5]]);
        assert!(!p.grudge.can_connect(2, 1));
        assert!(p.grudge.can_connect(3, 1));
    }

    #[test]
    fn loss_covers_every_link_of_its_nodes_both_ways() {
        let links = loss_links(&[2], &[1, 2, 3]);
        let rules: Vec<String> = links
            .rules(RuleKind::Loss(0.5))
            .iter()
            .map(|r| format!("{}>{}", r.src, r.dst))
            .collect();
        assert_eq!(
            rules,
            [
                "127.0.0.12>127.0.0.11",
                "127.0.0.11>127.0.0.12",
                "127.0.0.13>127.0.0.12",
                "127.0.0.12>127.0.0.13",
            ]
        );
    }

    #[test]
    fn loss_uses_the_pinned_probability() {
        for plan in schedule(4, "loss:0.5", 3).take(10) {
            let Plan::Loss { probability, .. } = plan else {
                unreachable!()
            };
            assert_eq!(probability, 0.5);
        }
    }

    #[test]
    fn delay_slows_every_link_of_its_nodes_each_by_its_own_seeded_time() {
        let plans: Vec<Plan> = schedule(9, "delay:40", 5).take(30).collect();
        let mut seen = std::collections::BTreeSet::new();
        for plan in &plans {
            let Plan::Delay {
                nodes,
                max_ms,
                links,
                ..
            } = plan
            else {
                panic!("{plan:?}")
            };
            assert_eq!(*max_ms, 40);
            let rules = plan.rules();
            // Every directed link with an end among the targets, and no other.
            assert_eq!(rules.len(), links.rules(RuleKind::Drop).len());
            let k = nodes.len();
            assert_eq!(rules.len(), 2 * (k * (5 - k) + k * (k - 1) / 2));
            for rule in &rules {
                let RuleKind::Delay(ms) = rule.kind else {
                    panic!("{rule:?}")
                };
                assert!((1..=40).contains(&ms), "{ms}");
                seen.insert(ms);
            }
        }
        assert!(seen.len() > 10, "links draw different delays: {seen:?}");
        let again: Vec<Vec<Rule>> = schedule(9, "delay:40", 5)
            .take(30)
            .map(|p| p.rules())
            .collect();
        let first: Vec<Vec<Rule>> = plans.iter().map(Plan::rules).collect();
        assert_eq!(
            first, again,
            "the same seed slows the same links by the same times"
        );
    }

    #[test]
    fn a_delay_aimed_at_the_leader_keeps_its_times_per_link() {
        let nodes = [1, 2, 3];
        let plan = schedule(3, "delay", 3).next().unwrap();
        let Plan::Delay { max_ms, seed, .. } = plan.clone() else {
            unreachable!()
        };
        assert_eq!(max_ms, DEFAULT_DELAY_MS);
        let aimed = plan.with_leader(Some(2), &nodes);
        let rules = aimed.rules();
        assert_eq!(rules.len(), 4, "the leader's two peers, both ways");
        for rule in rules {
            assert!(
                rule.src == crate::node_ip(2) || rule.dst == crate::node_ip(2),
                "{rule:?}"
            );
            assert_eq!(rule.kind, RuleKind::Delay(link_delay(seed, &rule, max_ms)));
        }
        let one = Rule {
            src: crate::node_ip(1),
            dst: crate::node_ip(2),
            kind: RuleKind::Drop,
        };
        assert_eq!(link_delay(5, &one, 1), 1, "a max of 1 ms is 1 ms");
        assert_ne!(
            (1..=20)
                .map(|s| link_delay(s, &one, 5000))
                .collect::<Vec<_>>(),
            vec![link_delay(1, &one, 5000); 20],
            "the seed moves the delay"
        );
    }

    #[test]
    fn too_small_clusters_are_refused_up_front() {
        let err = Schedule::new(1, &"partition:bridge".parse().unwrap(), &[1, 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--nemesis partition:bridge needs at least 3 nodes, the cluster has 2"
        );
        assert!(Schedule::new(1, &"loss".parse().unwrap(), &[1]).is_err());
        assert!(Schedule::new(1, &"kill".parse().unwrap(), &[1]).is_ok());
    }

    #[test]
    fn disk_faults_are_seeded_and_corrupt_never_takes_a_majority() {
        let plans: Vec<Plan> = schedule(8, "power-cut,corrupt", 5).take(300).collect();
        let again: Vec<Plan> = schedule(8, "power-cut,corrupt", 5).take(300).collect();
        assert_eq!(plans, again);
        let mut modes = std::collections::BTreeSet::new();
        for plan in &plans {
            match plan {
                Plan::PowerCut { nodes, cut, .. } => {
                    assert!(!nodes.is_empty());
                    modes.insert(cut.to_string().split(' ').next().unwrap().to_string());
                }
                Plan::Corrupt { nodes, target, .. } => {
                    assert!((1..=2).contains(&nodes.len()), "{target}: {nodes:?}");
                    assert!(!matches!(target, Target::Majority | Target::All));
                }
                other => panic!("not in the spec: {other:?}"),
            }
        }
        assert_eq!(modes.len(), 3, "all, torn and reorder: {modes:?}");
        assert!(plans.iter().any(|p| p.family() == Family::Corrupt));
        let err = Schedule::new(1, &"corrupt".parse().unwrap(), &[1, 2]).unwrap_err();
        assert!(err.to_string().contains("at least 3 nodes"), "{err}");
    }

    #[test]
    fn reorder_holds_every_member_with_a_fresh_seed_each_time() {
        let plans: Vec<Plan> = schedule(4, "reorder:30", 5).take(50).collect();
        assert_eq!(
            plans,
            schedule(4, "reorder:30", 5).take(50).collect::<Vec<_>>()
        );
        let mut seeds = std::collections::BTreeSet::new();
        for plan in &plans {
            let Plan::Reorder { max_delay_ms, seed } = plan else {
                panic!("not in the spec: {plan:?}");
            };
            assert_eq!(*max_delay_ms, 30);
            seeds.insert(*seed);
            assert!(!plan.needs_leader() && plan.stopped_nodes().is_empty());
            assert!(plan.rules().is_empty());
        }
        assert_eq!(seeds.len(), 50);
        let Some(Plan::Reorder { max_delay_ms, .. }) = schedule(4, "reorder", 5).next() else {
            panic!("a reorder plan");
        };
        assert_eq!(max_delay_ms, DEFAULT_REORDER_MS);
        assert!(Schedule::new(1, &"reorder".parse().unwrap(), &[1]).is_err());
    }

    #[test]
    fn a_stall_cuts_the_leader_off_from_every_other_node_and_holds_both_rolling_classes() {
        let plans: Vec<Plan> = schedule(6, "stall", 5).take(20).collect();
        for plan in &plans {
            let Plan::Stall {
                nodes,
                awake_ms,
                cut,
            } = plan
            else {
                panic!("not in the spec: {plan:?}");
            };
            assert_eq!(*awake_ms, DEFAULT_STALL_AWAKE_MS);
            assert_eq!(nodes.len(), 1);
            assert_eq!(cut.groups[0], *nodes);
            assert!(plan.needs_leader() && plan.clears_the_leader());
            assert_eq!(plan.stopped_nodes(), nodes.as_slice());
            assert_eq!(plan.rules().len(), 2 * 4, "both ways to each of 4 others");
            assert_eq!(plan.classes(), [Class::Process, Class::Network]);
        }
        let led = plans[0].clone().with_leader(Some(4), &[1, 2, 3, 4, 5]);
        let Plan::Stall { nodes, cut, .. } = &led else {
            panic!("still a stall: {led:?}");
        };
        assert_eq!(
            (nodes.as_slice(), cut.groups.clone()),
            (&[4][..], vec![vec![4], vec![1, 2, 3, 5]])
        );
        assert!(led
            .rules()
            .iter()
            .all(|r| r.command().contains("127.0.0.14")));
        let Some(Plan::Stall { awake_ms, .. }) = schedule(1, "stall:300", 3).next() else {
            panic!("a stall plan");
        };
        assert_eq!(awake_ms, 300);
        assert!(Schedule::new(1, &"stall".parse().unwrap(), &[1]).is_err());
    }

    #[test]
    fn a_stale_candidate_cuts_a_follower_off_and_holds_both_rolling_classes() {
        let plans: Vec<Plan> = schedule(2, "stale-candidate", 5).take(40).collect();
        let mut lagging = std::collections::BTreeSet::new();
        for plan in &plans {
            let Plan::StaleCandidate {
                nodes,
                hold_ms,
                cut,
            } = plan
            else {
                panic!("not in the spec: {plan:?}");
            };
            assert_eq!(*hold_ms, DEFAULT_STALE_HOLD_MS);
            assert_eq!(nodes.len(), 1);
            assert_eq!(cut.groups[0], *nodes);
            lagging.insert(nodes[0]);
            assert!(plan.needs_leader() && plan.clears_the_leader());
            assert!(
                plan.stopped_nodes().is_empty(),
                "nothing stops at the start"
            );
            assert_eq!(plan.rules().len(), 2 * 4, "both ways to each of 4 others");
            assert_eq!(plan.classes(), [Class::Process, Class::Network]);
        }
        assert_eq!(lagging.len(), 5, "any node may be drawn: {lagging:?}");
        // The leader is never the one cut off: another node takes its place.
        for plan in &plans {
            let Plan::StaleCandidate { nodes, cut, .. } =
                plan.clone().with_leader(Some(2), &[1, 2, 3, 4, 5])
            else {
                panic!("still a stale candidate");
            };
            assert_ne!(nodes, [2]);
            assert_eq!(cut.groups[0], nodes);
            assert!(!cut.groups[0].contains(&2) && cut.groups[1].contains(&2));
        }
        let Some(Plan::StaleCandidate { hold_ms, .. }) =
            schedule(1, "stale-candidate:400", 3).next()
        else {
            panic!("a stale-candidate plan");
        };
        assert_eq!(hold_ms, 400);
        let err = Schedule::new(1, &"stale-candidate".parse().unwrap(), &[1, 2]).unwrap_err();
        assert!(err.to_string().contains("stale-candidate"), "{err}");
    }

    #[test]
    fn slow_apply_slows_one_or_a_minority_of_the_followers() {
        let plans: Vec<Plan> = schedule(4, "slow-apply:300", 5).take(200).collect();
        assert_eq!(
            plans,
            schedule(4, "slow-apply:300", 5)
                .take(200)
                .collect::<Vec<_>>()
        );
        let mut sizes = std::collections::BTreeSet::new();
        for plan in plans {
            let Plan::SlowApply {
                nodes, delay_ms, ..
            } = plan.clone()
            else {
                panic!("not in the spec: {plan:?}");
            };
            assert_eq!(delay_ms, 300);
            assert!(plan.needs_leader(), "the leader is always swapped out");
            let Plan::SlowApply { nodes: aimed, .. } = plan.with_leader(Some(3), &[1, 2, 3, 4, 5])
            else {
                unreachable!()
            };
            assert_eq!(aimed.len(), nodes.len());
            assert!(!aimed.contains(&3), "{nodes:?} became {aimed:?}");
            assert!(
                nodes.iter().all(|n| *n == 3 || aimed.contains(n)),
                "the others stay"
            );
            sizes.insert(nodes.len());
        }
        assert_eq!(sizes, [1, 2].into(), "one, or a minority of 5");
        assert_eq!(
            spare_the_leader(vec![1, 2], 2, &[1, 2]),
            [1, 2],
            "no node to spare"
        );
        assert_eq!(spare_the_leader(vec![1, 4], 2, &[1, 2, 4]), [1, 4]);
    }

    #[test]
    fn a_power_cut_on_the_leader_takes_the_live_leader() {
        let plan = schedule(2, "power-cut:leader", 5).next().unwrap();
        let Plan::PowerCut { nodes, .. } = plan.with_leader(Some(3), &[1, 2, 3, 4, 5]) else {
            unreachable!()
        };
        assert_eq!(nodes, vec![3]);
    }

    #[test]
    fn transfer_leader_draws_are_seeded_and_map_onto_the_other_nodes() {
        let draws = |seed: u64| -> Vec<u64> {
            schedule(seed, "transfer-leader", 3)
                .take(50)
                .map(|p| match p {
                    Plan::TransferLeader { draw } => draw,
                    other => panic!("not in the spec: {other:?}"),
                })
                .collect()
        };
        assert_eq!(draws(1), draws(1));
        assert_ne!(draws(1), draws(2));
        let plans: Vec<Plan> = schedule(6, "kill,transfer-leader", 5).take(100).collect();
        assert_eq!(
            plans,
            schedule(6, "kill,transfer-leader", 5)
                .take(100)
                .collect::<Vec<_>>()
        );
        assert!(plans.iter().any(|p| p.family() == Family::TransferLeader));
        assert!(plans.iter().any(|p| p.family() == Family::Kill));
        let nodes = [3, 1, 2];
        let mut hit = std::collections::BTreeSet::new();
        for draw in draws(1) {
            let to = transfer_target(draw, 2, &nodes).unwrap();
            assert!(to == 1 || to == 3, "{to}");
            hit.insert(to);
        }
        assert_eq!(hit.len(), 2, "both other nodes are drawn: {hit:?}");
        assert_eq!(transfer_target(0, 2, &nodes), Some(1));
        assert_eq!(transfer_target(1, 2, &nodes), Some(3));
        assert_eq!(transfer_target(7, 1, &[1]), None);
        assert!(Schedule::new(1, &"transfer-leader".parse().unwrap(), &[1]).is_err());
        let plan = Plan::TransferLeader { draw: 5 };
        assert!(!plan.needs_leader() && plan.rules().is_empty() && plan.stopped_nodes().is_empty());
    }

    #[test]
    fn a_stranded_change_holds_the_network_class_too() {
        let change = |change| Plan::Membership {
            change,
            draw: 0,
            stop_draw: 0,
        };
        let partition = schedule(1, "partition", 5).next().unwrap();
        let kill = schedule(1, "kill", 5).next().unwrap();
        assert_eq!(
            change(Change::Stranded).classes(),
            [Class::Membership, Class::Network]
        );
        assert!(change(Change::Stranded).clashes_with(&partition));
        assert!(partition.clashes_with(&change(Change::Stranded)));
        assert!(!change(Change::Stranded).clashes_with(&kill));
        assert!(!change(Change::Replace).clashes_with(&partition));
        assert!(change(Change::Replace).clashes_with(&change(Change::Grow)));
    }

    #[test]
    fn membership_plans_are_seeded_and_draw_every_change() {
        let a: Vec<Plan> = schedule(9, "membership", 5).take(60).collect();
        assert_eq!(a, schedule(9, "membership", 5).take(60).collect::<Vec<_>>());
        for change in Change::ALL {
            assert!(
                a.iter()
                    .any(|p| matches!(p, Plan::Membership { change: c, .. } if *c == change)),
                "{change} never drawn"
            );
        }
        let count = |wanted: Change| {
            a.iter()
                .filter(|p| matches!(p, Plan::Membership { change, .. } if *change == wanted))
                .count()
        };
        for aimed in [Change::Stranded, Change::Disjoint] {
            let n = count(aimed);
            assert!(
                n > 60 / 5,
                "{aimed} is drawn a third of the time: {n} of 60"
            );
        }
        assert!(
            count(Change::Grow) < 60 / 5,
            "the plain changes a ninth each"
        );
        let pinned: Vec<Plan> = schedule(9, "membership:shrink", 5).take(10).collect();
        assert!(pinned.iter().all(|p| matches!(
            p,
            Plan::Membership {
                change: Change::Shrink,
                ..
            }
        )));
        assert!(!a[0].needs_leader() && a[0].rules().is_empty());
        let err = Schedule::new(1, &"membership".parse().unwrap(), &[1, 2]).unwrap_err();
        assert!(err.to_string().contains("membership"), "{err}");
    }

    #[test]
    fn after_a_membership_change_faults_are_drawn_from_the_new_members() {
        let mut s = schedule(3, "kill,pause,partition,loss", 5);
        s.set_nodes(&[7, 2, 9, 4]);
        assert_eq!(s.nodes(), [2, 4, 7, 9]);
        for plan in s.by_ref().take(200) {
            let nodes: Vec<NodeId> = match &plan {
                Plan::Partition(p) => p.grudge.affected(),
                other => other.stopped_nodes().to_vec(),
            };
            assert!(nodes.iter().all(|n| [2, 4, 7, 9].contains(n)), "{plan:?}");
        }
        // A pinned partition too big for the shrunk cluster draws one that fits.
        let mut ring = schedule(3, "partition:majorities-ring", 5);
        ring.set_nodes(&[1, 2, 3]);
        for plan in ring.take(20) {
            assert!(
                matches!(&plan, Plan::Partition(p) if p.kind.min_nodes() <= 3),
                "{plan:?}"
            );
        }
    }

    #[test]
    fn an_empty_spec_plans_nothing() {
        assert_eq!(schedule(1, "none", 5).next(), None);
    }
}
