//! The `disjoint` membership change, as part of [`super::Nemesis`]: two single-server changes,
//! asked of two leaders of one even-sized configuration, whose majorities do not overlap. This
//! is the scenario of the single-server change bug Ongaro reported on raft-dev in 2015.
//!
//! # Why this choreography
//!
//! From an odd number of voters, any two single-server changes share a voter in their
//! majorities (from 5: 4+4 > 7, 3+3 > 5, 4+3 > 6), so the bug needs an even count. And the rule
//! that makes them safe is about *the second leader's own term*: a leader may change the
//! configuration only after it has committed an entry of its term. A leader that breaks it
//! (`--unsafe-bug single-server-change-unsafe`) shows only if its own-term no-op misses the
//! majority that has just elected it, while its change commits with the new configuration's
//! smaller majority. That is a cut placed between a vote and the next AppendEntries: less than
//! a millisecond on loopback, far less than a nemesis that polls for the leader needs. So the
//! choreography slows the links first ([`DELAY_MS`], a [`crate::delay`] rule per link), which
//! turns that millisecond into a tenth of a second.
//!
//! # What it does, with m voters (m even, at least 4)
//!
//! 1. An odd count first loses a voter (drawn among the followers, dead ones first): removed,
//!    killed, wiped.
//! 2. A new node N joins as a learner and is given [`CATCH_UP`] to receive the log.
//! 3. m/2−1 voters other than the leader L1 are drawn to be moved later, and every link *into*
//!    them is slowed by [`DELAY_MS`] for [`LAG`]: their logs now trail by the entries in flight.
//!    Then L1 and N are cut off from the other m−1 voters (the entries in flight to the moved
//!    voters are dropped on arrival, so their logs stay shorter and none of them can win the
//!    election), and L1 is asked at once to promote N: C1 = C + N, appended (and never
//!    committed: L1's side is two of m+1).
//! 4. The far side elects L2 (it holds m−1 ≥ m/2+1 voters; the moved voters hear L2 late but
//!    answer it at once). The moment L2 is seen leading, one transaction
//!    ([`crate::firewall::Firewall::recut`]) moves the drawn voters to L1's side, before L2's
//!    first entries reach them. L2 keeps m/2 voters of C: one short of C's majority, so its
//!    no-op cannot commit; and exactly the majority of C2 = C − L1.
//! 5. L2 alone is asked to remove L1 (refusals retried for [`REMOVE_WAIT`]).
//!
//! A correct L2 refuses (it has not committed in its term), steps down within an election
//! timeout, and L1's side, with C1 in its joint form, cannot elect either: the cluster waits for
//! the stop. A node with the bug appends C2 directly and commits it with m/2 voters, and L1's
//! side, m/2+1 of C1 (L1, N and the voters moved, whose logs lack L2's term), elects L1 again:
//! two leaders of two configurations serve clients until the stop, and their histories diverge.
//!
//! The stop heals every cut and delay, kills and wipes the removed node, removes learners left
//! over, and adds voters back to the planned count.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::stranded::{names, CATCH_UP};
use super::turns::LEADER_WAIT;
use super::Nemesis;
use crate::event::NemesisEvent;
use crate::firewall::RuleKind;
use crate::membership::{
    drawn_member, ChangeAnswer, ChangeOutcome, MemberChange, MembershipRecord, Operator,
};
use crate::partition::Grudge;
use crate::supervisor::NodeState;
use crate::NodeId;

/// How long the far side's links hold each packet, each way: long enough for the nemesis to see
/// the new leader and cut before its first entries arrive (a poll and an iptables-restore take a
/// few ms), short enough that the far side elects within a second or two.
pub const DELAY_MS: u16 = 100;

/// How long the links into the voters to be moved are slowed before the first cut: a few times
/// [`DELAY_MS`], so that their logs trail the leader's by the entries still in flight.
const LAG: Duration = Duration::from_millis(3 * DELAY_MS as u64);

/// How long the far side is given to elect a leader.
const ELECTION_WAIT: Duration = Duration::from_secs(5);

/// How long the cut-off leader is given to answer the promotion it cannot commit: the change
/// is appended at once; only its answer is not waited for.
const PROMOTE_WAIT: Duration = Duration::from_millis(200);

/// How long the second ask of the new leader waits: it refuses a change while it has not heard
/// a majority of the new configuration, which takes a round trip or two, and a change it takes
/// commits within a few more.
const REMOVE_WAIT: Duration = Duration::from_millis(1500);

/// How long the first ask of the new leader waits: one refusal, retried for a moment.
const FIRST_ASK: Duration = Duration::from_millis(40);

/// The second cut of step 4: who stays with the new leader, who joins the old one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondCut {
    /// The old leader, the new node and the voters moved to them.
    pub near: Vec<NodeId>,
    /// The new leader and the voters it keeps.
    pub far: Vec<NodeId>,
}

impl SecondCut {
    /// The voters moved to the old leader's side.
    pub fn moved(&self, old_leader: NodeId, new_node: NodeId) -> impl Iterator<Item = &NodeId> {
        self.near
            .iter()
            .filter(move |&&v| v != old_leader && v != new_node)
    }
}

/// The second cut for voters `voters` (an even count, at least 4, the old leader among them),
/// drawn before the election: the m/2−1 voters to be moved are drawn from `draw`, and the new
/// leader must come from `far`. `None` if the shape does not fit.
pub fn second_cut(
    draw: u64,
    voters: &[NodeId],
    old_leader: NodeId,
    new_node: NodeId,
) -> Option<SecondCut> {
    let m = voters.len();
    if m < 4 || m % 2 == 1 || !voters.contains(&old_leader) {
        return None;
    }
    let mut others: Vec<NodeId> = voters
        .iter()
        .copied()
        .filter(|&v| v != old_leader)
        .collect();
    others.sort_unstable();
    others.shuffle(&mut ChaCha8Rng::seed_from_u64(draw));
    let mut far = others.split_off(m / 2 - 1);
    let mut near = vec![old_leader, new_node];
    near.extend(others);
    near.sort_unstable();
    far.sort_unstable();
    Some(SecondCut { near, far })
}

impl Nemesis {
    /// A `disjoint` start (see the module docs). Returns the voter it removed in step 5, if the
    /// change went through.
    pub(super) fn disjoin(
        &self,
        operator: &dyn Operator,
        draw: u64,
        record: &mut MembershipRecord,
        event: &mut NemesisEvent,
    ) -> Option<NodeId> {
        if self.firewall.is_none() {
            let why = "no firewall (iptables in the run's namespace): nothing can be cut";
            record.fail(ChangeOutcome::Skipped, why.to_string());
            return None;
        }
        let Some(leader) = self.await_leader() else {
            let why = format!("no leader known within {LEADER_WAIT:?}");
            record.fail(ChangeOutcome::Skipped, why);
            return None;
        };
        self.make_even(operator, draw, leader, record, event)?;
        let add = self.join(operator, record, event)?;
        std::thread::sleep(CATCH_UP);
        let voters = self.members();
        let planned = self
            .view
            .leader()
            .filter(|l| voters.contains(l))
            .and_then(|old| Some((old, second_cut(draw, &voters, old, add)?)));
        let Some((old, cut)) = planned else {
            let why = format!("no leader among {voters:?} once the new node had caught up");
            record.fail(ChangeOutcome::Skipped, why);
            self.abandon(operator, add, event);
            return None;
        };
        let new = match self.first_cut(operator, old, add, &cut, event) {
            Ok(new) => new,
            Err(why) => {
                record.fail(ChangeOutcome::Skipped, why);
                self.heal_cuts(event);
                self.abandon(operator, add, event);
                return None;
            }
        };
        let seen = Instant::now();
        let mut grudge = Grudge::new();
        grudge.cut_between(&cut.near, &cut.far);
        let firewall = self.firewall.as_ref().expect("checked above");
        match firewall.recut(&grudge.rules(RuleKind::Drop)) {
            Ok(commands) => event.rules.extend(commands),
            Err(e) => {
                record.fail(ChangeOutcome::Skipped, format!("cannot cut links: {e}"));
                self.heal_cuts(event);
                return None;
            }
        }
        event.groups = vec![cut.near.clone(), cut.far.clone()];
        event.add_note(format!(
            "n{new} elected; {} moved to n{old}'s side {} ms after n{new} was seen leading",
            names(cut.moved(old, add)),
            seen.elapsed().as_millis()
        ));
        record.removed = Some(old);
        self.remove_at(operator, new, old, record).then_some(old)
    }

    /// Step 1: an odd number of voters loses one, drawn among the followers that are not
    /// running first (the operator's case: the dead machine goes; and a live one would leave a
    /// dead voter in the electorate, which needs every one of its m−1 voters), killed and wiped.
    /// `None` (recorded) if the count cannot be made even with at least 4 voters.
    fn make_even(
        &self,
        operator: &dyn Operator,
        draw: u64,
        leader: NodeId,
        record: &mut MembershipRecord,
        event: &mut NemesisEvent,
    ) -> Option<()> {
        let voters = self.members();
        let even = voters.len() - voters.len() % 2;
        if even < 4 {
            let why = format!(
                "{} voters: two disjoint majorities need 4 or more",
                voters.len()
            );
            record.fail(ChangeOutcome::Skipped, why);
            return None;
        }
        if voters.len() == even {
            return Some(());
        }
        let followers: Vec<NodeId> = voters.iter().copied().filter(|&v| v != leader).collect();
        let dead: Vec<NodeId> = followers
            .iter()
            .copied()
            .filter(|&id| {
                self.supervisor
                    .status(id)
                    .is_ok_and(|s| s.state != NodeState::Running)
            })
            .collect();
        let gone = drawn_member(draw, if dead.is_empty() { &followers } else { &dead })?;
        if !self.ask(operator, MemberChange::Remove(gone), record) {
            return None;
        }
        self.wipe(operator, gone, record, event);
        event.add_note(format!("n{gone} removed and wiped: {even} voters"));
        Some(())
    }

    /// Steps 3 and 4: the leader `old` and the new node `add` cut off from the other voters, the
    /// links into the voters `cut` will move slowed, the promotion asked of the cut-off leader,
    /// and a new leader of `cut.far` waited for. Only the links *into* the voters to be moved
    /// are slowed: the new leader's first entries reach them late, while every candidate's
    /// requests to the others and the moved voters' own answers stay fast, so elections still
    /// converge within a few rounds.
    fn first_cut(
        &self,
        operator: &dyn Operator,
        old: NodeId,
        add: NodeId,
        cut: &SecondCut,
        event: &mut NemesisEvent,
    ) -> Result<NodeId, String> {
        let firewall = self.firewall.as_ref().ok_or("no firewall")?;
        let moved: Vec<NodeId> = cut.moved(old, add).copied().collect();
        let electorate: Vec<NodeId> = cut.far.iter().chain(&moved).copied().collect();
        let mut slow = Grudge::new();
        for &to in &moved {
            for &from in electorate.iter().chain([&old]).filter(|&&from| from != to) {
                slow.cut_one_way(from, to);
            }
        }
        let mut first = Grudge::new();
        first.cut_between(&[old, add], &electorate);
        let mut commands = firewall
            .apply(&slow.rules(RuleKind::Delay(DELAY_MS)))
            .map_err(|e| format!("cannot slow links: {e}"))?;
        // The moved voters fall behind by what the leader sent in the last DELAY_MS, which the
        // cut then drops: with a shorter log, none of them can win the election.
        std::thread::sleep(LAG);
        commands.extend(
            firewall
                .apply(&first.rules(RuleKind::Drop))
                .map_err(|e| format!("cannot cut links: {e}"))?,
        );
        event.rules = commands;
        let answer = operator.change_at(old, MemberChange::Promote(add), PROMOTE_WAIT);
        event.add_note(format!(
            "leader n{old} cut off with n{add} and asked to promote it: {}; links into {} slowed {DELAY_MS} ms",
            answer_text(&answer),
            names(moved.iter())
        ));
        let deadline = Instant::now() + ELECTION_WAIT;
        while Instant::now() < deadline {
            match self.view.leader() {
                Some(new) if cut.far.contains(&new) => return Ok(new),
                Some(new) if moved.contains(&new) => {
                    return Err(format!("n{new}, a voter to be moved, was elected"))
                }
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        Err(format!(
            "{} elected no leader within {ELECTION_WAIT:?}",
            names(electorate.iter())
        ))
    }

    /// Step 5: node `at` alone asked to remove `old`: a first ask of [`FIRST_ASK`], whose
    /// refusal says why (a correct leader: not committed in its term), then, if refused, one
    /// more of [`REMOVE_WAIT`] (the admin client retries refusals the node marks retryable,
    /// such as not having heard a majority yet, meanwhile). True if done.
    fn remove_at(
        &self,
        operator: &dyn Operator,
        at: NodeId,
        old: NodeId,
        record: &mut MembershipRecord,
    ) -> bool {
        let change = MemberChange::Remove(old);
        let mut answer = operator.change_at(at, change, FIRST_ASK);
        let first_refusal = match &answer {
            ChangeAnswer::Refused(why) => Some(why.clone()),
            _ => None,
        };
        if first_refusal.is_some() {
            answer = operator.change_at(at, change, REMOVE_WAIT);
        }
        let last_refusal = match &answer {
            ChangeAnswer::Refused(why) => Some(why.clone()),
            _ => None,
        };
        let done = matches!(answer, ChangeAnswer::Done { .. });
        self.take_answer(operator, change, answer, record);
        if let Some(first) = first_refusal.filter(|first| last_refusal.as_ref() != Some(first)) {
            let reason = record.reason.take().unwrap_or_default();
            record.reason = Some(format!("{reason}; first refused: {first}"));
        }
        done
    }

    fn heal_cuts(&self, event: &mut NemesisEvent) {
        if let Some(Err(e)) = self.firewall.as_ref().map(|f| f.heal()) {
            event.add_error(e);
        }
    }

    /// A `disjoint` stop: cuts and delays healed, the removed voter wiped, learners left over
    /// removed, and voters added back to the planned count.
    pub(super) fn undisjoin(
        &self,
        operator: &dyn Operator,
        removed: &std::collections::BTreeMap<NodeId, crate::supervisor::Pid>,
        record: &mut MembershipRecord,
        event: &mut NemesisEvent,
    ) {
        self.unstrand(operator, removed, record, event);
        if let Some(config) = operator.configuration() {
            self.lock().members = config.voters.clone();
            for learner in config.learners {
                if self.ask(operator, MemberChange::Remove(learner), record) {
                    self.wipe(operator, learner, record, event);
                }
            }
        }
        for _ in 0..2 {
            if self.members().len() >= self.nodes.len() {
                break;
            }
            self.grow(operator, record, event);
        }
    }
}

fn answer_text(answer: &ChangeAnswer) -> String {
    match answer {
        ChangeAnswer::Done { voters } => format!("done (voters {voters:?})"),
        ChangeAnswer::Refused(why) => format!("refused ({why})"),
        ChangeAnswer::Unknown(_) => "no answer (as expected: it cannot commit)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_new_leader_keeps_exactly_the_majority_of_the_shrunk_configuration() {
        for m in [4u64, 6, 8] {
            let voters: Vec<NodeId> = (1..=m).collect();
            for draw in 0..20 {
                let cut = second_cut(draw, &voters, 1, 99).unwrap();
                let m = m as usize;
                // C2 = C - old leader: m - 1 voters, majority m/2; the far side is exactly that.
                assert_eq!(cut.far.len(), m / 2, "{cut:?}");
                assert!(!cut.far.contains(&1) && !cut.far.contains(&99));
                // One short of C's majority (m/2 + 1): the new leader's no-op cannot commit.
                assert!(cut.far.len() < m / 2 + 1);
                // C1 = C + new node: m + 1 voters, majority m/2 + 1; the near side is exactly it.
                assert_eq!(cut.near.len(), m / 2 + 1, "{cut:?}");
                assert!(cut.near.contains(&1) && cut.near.contains(&99));
                assert_eq!(cut.moved(1, 99).count(), m / 2 - 1);
                assert_eq!(cut.near.len() + cut.far.len(), m + 1);
            }
        }
    }

    #[test]
    fn the_draw_picks_who_moves_and_bad_shapes_fit_no_cut() {
        let voters = [1, 2, 3, 4, 5, 6];
        let picks: std::collections::BTreeSet<Vec<NodeId>> = (0..40)
            .map(|draw| second_cut(draw, &voters, 3, 7).unwrap().near)
            .collect();
        assert!(picks.len() > 1, "who moves varies with the draw");
        assert_eq!(second_cut(4, &voters, 3, 7), second_cut(4, &voters, 3, 7));
        assert_eq!(second_cut(1, &[1, 2, 3, 4, 5], 1, 9), None, "odd");
        assert_eq!(second_cut(1, &[1, 2], 1, 9), None, "too few");
        assert_eq!(second_cut(1, &[1, 2, 3, 4], 8, 9), None, "not a voter");
    }
}
