//! The `stranded` membership change, as part of [`super::Nemesis`]: a replace asked of a leader
//! that has just lost its majority and does not know it yet.
//!
//! # Why this moment
//!
//! Joint consensus is only tested while C_old,new is in force, and a healthy leader commits
//! C_old,new within one round trip: the joint phase lasts about a millisecond, and a fault drawn
//! at random almost never lands in it. The moment a real operator hits it is a change asked
//! while the leader is cut off. Within an election timeout of a partition the leader still
//! leads (check-quorum has not stepped it down), and the strict reconfiguration check still
//! counts the voters it heard in the last round, so the change is accepted and C_old,new is
//! appended, and it is in force on the leader's side for as long as the partition lasts.
//!
//! # What it does
//!
//! 1. A new node joins as a learner (the change commits while every link is up) and is given
//!    [`CATCH_UP`] to receive the log.
//! 2. The leader L keeps `k` other voters of the n with it, `k` = ⌊n/2⌋ − 1: L and its `k`
//!    companions are one short of C_old's majority, and with the new node they are exactly
//!    C_new's majority. A partition cuts them (and the new node) off from the other voters.
//! 3. At once, L alone ([`Operator::change_at`]) is asked to swap the new node in for a voter
//!    of the far side, and given [`ANSWER_WAIT`] to answer.
//!
//! A correct leader cannot commit C_old,new: C_old's majority is on the far side. The answer is
//! unknown or a refusal, the leader steps down within an election timeout, the far side elects
//! a leader of C_old, and the new node is removed again and wiped. A leader that counts only
//! C_new's majority in the joint phase (`--unsafe-bug joint-one-majority`) commits it with its
//! own side, then C_new, and keeps leading; the far side elects a leader of C_old: two leaders
//! serve clients until the stop heals the partition, and their histories diverge.
//!
//! The stop heals the partition (flushing the run's chain, which is why this change is of the
//! network class too for `--nemesis-overlap`) and kills and wipes the removed voter, if the
//! change went through.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::turns::LEADER_WAIT;
use super::Nemesis;
use crate::event::NemesisEvent;
use crate::firewall::RuleKind;
use crate::membership::{ChangeAnswer, ChangeOutcome, MemberChange, MembershipRecord, Operator};
use crate::partition::Grudge;
use crate::supervisor::{NodeState, Pid};
use crate::NodeId;

/// How long a new learner is given to receive the log before the leader is cut off: the swap
/// is refused while it lags behind, and there is no time to wait once the partition is in.
pub const CATCH_UP: Duration = Duration::from_secs(1);

/// How long the stranded leader is given to answer: a leader that commits without C_old does so
/// within a few round trips; a correct one loses its leadership within an election timeout.
pub const ANSWER_WAIT: Duration = Duration::from_secs(2);

/// Who is cut off from whom, and whom the change removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stranding {
    /// The leader, its companions and the new node.
    pub near: Vec<NodeId>,
    /// The other voters.
    pub far: Vec<NodeId>,
    /// The voter of the far side that the change removes.
    pub victim: NodeId,
}

/// The sides for a leader `leader` of `voters` and the new node `new`, the companions and the
/// victim drawn from `draw`. Companions are drawn among the voters `running` first (a dead
/// companion would leave the leader short of C_new's majority too). `None` if the leader is not
/// a voter.
pub fn stranding(
    draw: u64,
    leader: NodeId,
    voters: &[NodeId],
    running: &[NodeId],
    new: NodeId,
) -> Option<Stranding> {
    if !voters.contains(&leader) {
        return None;
    }
    let mut others: Vec<NodeId> = voters.iter().copied().filter(|&v| v != leader).collect();
    others.sort_unstable();
    others.dedup();
    others.shuffle(&mut ChaCha8Rng::seed_from_u64(draw));
    // A stable sort: the running first, each group in the drawn order.
    others.sort_by_key(|id| !running.contains(id));
    let companions = (voters.len() / 2).saturating_sub(1);
    let mut far = others.split_off(companions.min(others.len()));
    let victim = *far.first()?;
    far.sort_unstable();
    let mut near = vec![leader, new];
    near.extend(others);
    near.sort_unstable();
    Some(Stranding { near, far, victim })
}

impl Nemesis {
    /// A `stranded` start (see the module docs). Returns the voter it removed, if the change
    /// went through.
    pub(super) fn strand(
        &self,
        operator: &dyn Operator,
        draw: u64,
        record: &mut MembershipRecord,
        event: &mut NemesisEvent,
    ) -> Option<NodeId> {
        let Some(firewall) = self.firewall.as_ref() else {
            let why = "no firewall (iptables in the run's namespace): the leader cannot be cut off";
            record.fail(ChangeOutcome::Skipped, why.to_string());
            return None;
        };
        if self.await_leader().is_none() {
            // No leader (a kill or a partition holds a majority): nobody to strand, and no new
            // node to start for nothing.
            let why = format!("no leader known within {LEADER_WAIT:?}");
            record.fail(ChangeOutcome::Skipped, why);
            return None;
        }
        let voters = self.members().len();
        if voters.is_multiple_of(2) {
            record.fail(ChangeOutcome::Skipped, even_voters(voters));
            return None;
        }
        let add = self.join(operator, record, event)?;
        std::thread::sleep(CATCH_UP);
        let members = self.members();
        let running: Vec<NodeId> = self
            .supervisor
            .statuses()
            .into_iter()
            .filter(|s| s.state == NodeState::Running)
            .map(|s| s.id)
            .collect();
        let plan = self.view.leader().and_then(|leader| {
            let sides = stranding(draw, leader, &members, &running, add)?;
            Some((leader, sides))
        });
        let Some((leader, sides)) = plan else {
            record.fail(ChangeOutcome::Skipped, "no leader known".to_string());
            self.abandon(operator, add, event);
            return None;
        };
        record.removed = Some(sides.victim);
        let mut grudge = Grudge::new();
        grudge.cut_between(&sides.near, &sides.far);
        event.groups = vec![sides.near.clone(), sides.far.clone()];
        match firewall.apply(&grudge.rules(RuleKind::Drop)) {
            Ok(commands) => event.rules = commands,
            Err(e) => {
                event.add_error(&e);
                if let Err(e) = firewall.heal() {
                    event.add_error(e);
                }
                record.fail(ChangeOutcome::Skipped, format!("cannot cut links: {e}"));
                self.abandon(operator, add, event);
                return None;
            }
        }
        event.add_note(format!(
            "leader n{leader} stranded with {} (cut off from {})",
            names(sides.near.iter().filter(|&&n| n != leader)),
            names(sides.far.iter())
        ));
        let change = MemberChange::Replace {
            add,
            remove: sides.victim,
        };
        if !self.ask_at(operator, leader, change, record) {
            self.abandon(operator, add, event);
        }
        (!self.members().contains(&sides.victim)).then_some(sides.victim)
    }

    /// A `stranded` stop: the partition healed, the members read again if the change was not
    /// known to go through, then the removed voter (if any) wiped.
    pub(super) fn unstrand(
        &self,
        operator: &dyn Operator,
        removed: &BTreeMap<NodeId, Pid>,
        record: &mut MembershipRecord,
        event: &mut NemesisEvent,
    ) {
        match self.firewall.as_ref().map(|f| f.heal()) {
            Some(Ok(command)) => event.rules = vec![command],
            Some(Err(e)) => event.add_error(e),
            None => {}
        }
        if removed.is_empty() {
            // A change of unknown outcome may still commit now: the near side holds C_old,new,
            // and one of its nodes (the new one, perhaps) can win the next election and commit
            // it. Read the configuration again once it settled, so that the members (and the
            // run's roster) know who is in.
            if let Some(config) = operator.configuration() {
                self.lock().members = config.voters;
            }
        }
        for &id in removed.keys() {
            self.wipe(operator, id, record, event);
        }
    }

    /// [`Nemesis::ask`] of node `at` alone: true if done. After any other answer the members
    /// are read back from whoever leads.
    fn ask_at(
        &self,
        operator: &dyn Operator,
        at: NodeId,
        change: MemberChange,
        rec: &mut MembershipRecord,
    ) -> bool {
        let answer = operator.change_at(at, change, ANSWER_WAIT);
        let done = matches!(answer, ChangeAnswer::Done { .. });
        self.take_answer(operator, change, answer, rec);
        done
    }
}

/// Why a `stranded` change is skipped with an even number of voters. The leader's side keeps
/// one short of C_old's majority, n/2 voters, so the far side holds n/2 as well: neither side
/// is a majority of C_old, no leader runs anywhere while the cut lasts, and the two leaders the
/// change is there to show cannot happen. Every request and read-back would wait out its
/// timeout instead (about 20 s of the nemesis thread, measured, in which no other fault
/// started or stopped).
pub(super) fn even_voters(voters: usize) -> String {
    format!(
        "{voters} voters, an even number: cut one short of the old majority, neither side \
         would hold a majority and no leader could run anywhere"
    )
}

/// `n1, n3`, or `nobody`: node ids as notes name them.
pub(super) fn names<'a>(ids: impl Iterator<Item = &'a NodeId>) -> String {
    let names: Vec<String> = ids.map(|id| format!("n{id}")).collect();
    match names.is_empty() {
        true => "nobody".to_string(),
        false => names.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_keeps_one_short_of_the_old_majority_and_the_victim_is_far() {
        for n in 2..=7u64 {
            let voters: Vec<NodeId> = (1..=n).collect();
            for draw in 0..20 {
                let s = stranding(draw, 1, &voters, &voters, 99).unwrap();
                let majority = voters.len() / 2 + 1;
                let old_near = s.near.iter().filter(|id| voters.contains(id)).count();
                assert_eq!(old_near, majority - 1, "n={n}: {s:?}");
                // C_new = voters - victim + new: the near side is exactly its majority.
                assert_eq!(s.near.len(), majority, "n={n}: {s:?}");
                assert!(s.near.contains(&1) && s.near.contains(&99));
                assert!(s.far.contains(&s.victim) && !s.near.contains(&s.victim));
                assert_eq!(s.near.len() + s.far.len(), voters.len() + 1);
            }
        }
    }

    #[test]
    fn the_draw_picks_the_companions_and_a_non_voter_leader_strands_nobody() {
        let voters = [1, 2, 3, 4, 5];
        let picks: std::collections::BTreeSet<Vec<NodeId>> = (0..40)
            .map(|draw| stranding(draw, 3, &voters, &voters, 6).unwrap().near)
            .collect();
        assert!(picks.len() > 1, "the companion varies with the draw");
        let again = |draw| stranding(draw, 3, &voters, &voters, 6);
        assert_eq!(again(7), again(7));
        assert_eq!(stranding(7, 9, &voters, &voters, 6), None);
        // With 1, 2 and 4 dead, the companion is always 5, the one left running.
        for draw in 0..20 {
            let s = stranding(draw, 3, &voters, &[3, 5], 6).unwrap();
            assert_eq!(s.near, [3, 5, 6], "draw {draw}");
        }
    }
}
