//! The stale-candidate fault's actions, as part of [`super::Nemesis`]: a test of the election
//! restriction (Raft paper §5.4.1), the rule that a node votes only for a candidate whose log
//! is at least as up to date as its own.
//!
//! A rolling partition, a leader kill and a heal come in that order only now and then, and
//! even then the node that lags is one candidate among several: the up-to-date ones usually
//! time out first and win. This fault makes the lagging node the *only* possible winner:
//!
//! 1. Start: one follower is cut off from its peers (its clients still reach it) while the
//!    rest go on committing writes without it. It now lags.
//! 2. Stop: the leader of the moment is SIGKILLed, and the cut is replaced by a star around
//!    the lagging node: it hears every other node, and no two others hear each other. Each up-to-date node
//!    now sees itself and the lagging node, two votes, never a majority of three or more; the
//!    lagging node alone sees a majority. For `hold_ms` it runs for election again and again.
//! 3. Then the rules are flushed and the killed leader is started again on its data dir.
//!
//! A correct cluster elects nobody in step 2, since every up-to-date node refuses the lagging
//! candidate, and serves again after step 3 (the stop's wait is part of the fault: the
//! availability check does not judge it). A node that grants votes without comparing logs
//! (`vote-any-log`) elects the lagging node, which then truncates the entries the others
//! committed while it was cut off: acknowledged writes vanish, which the next reads show.
//!
//! The stop blocks the nemesis thread for `hold_ms` (at most
//! [`crate::spec::MAX_STALE_HOLD_MS`]), without holding the nemesis's lock. With no leader
//! known at the stop (an overlapping fault took it), nobody is killed: the cut is healed and
//! the event says why.

use std::time::Duration;

use super::Nemesis;
use crate::event::NemesisEvent;
use crate::firewall::RuleKind;
use crate::partition::Grudge;
use crate::NodeId;

/// The star around `center`: every node of `nodes` hears `center` and `center` hears every
/// node, while no two others hear each other.
pub fn star(center: NodeId, nodes: &[NodeId]) -> Grudge {
    let others: Vec<NodeId> = nodes.iter().copied().filter(|&n| n != center).collect();
    let mut grudge = Grudge::new();
    for (i, &a) in others.iter().enumerate() {
        for &b in &others[i + 1..] {
            grudge.cut(a, b);
        }
    }
    grudge
}

impl Nemesis {
    /// A stale candidate's stop: the live leader killed, the star around `lagging` in place
    /// for `hold_ms`, then the flush and the leader's restart. `members` are the nodes of the
    /// moment.
    pub(super) fn stale_candidate_stop(
        &self,
        lagging: NodeId,
        hold_ms: u16,
        members: &[NodeId],
        event: &mut NemesisEvent,
    ) {
        let Some(firewall) = self.firewall.as_ref() else {
            return;
        };
        let leader = self
            .view
            .leader()
            .filter(|l| *l != lagging && members.contains(l));
        let killed = match leader.map(|l| (l, self.supervisor.kill(l))) {
            Some((l, Ok(pid))) => {
                event.pids.insert(l, pid);
                event.killed_leader = Some(l);
                Some(l)
            }
            Some((_, Err(e))) => {
                event.add_error(e);
                None
            }
            None => {
                event.add_note(format!(
                    "no leader other than n{lagging} known: nobody killed, the cut healed"
                ));
                None
            }
        };
        let Some(leader) = killed else {
            match firewall.heal() {
                Ok(command) => event.rules.push(command),
                Err(e) => event.add_error(e),
            }
            return;
        };
        // The cut becomes the star in one step: no link opens in between.
        match firewall.recut(&star(lagging, members).rules(RuleKind::Drop)) {
            Ok(commands) => {
                event.rules.extend(commands);
                let hold = hold_ms.min(crate::spec::MAX_STALE_HOLD_MS);
                std::thread::sleep(Duration::from_millis(u64::from(hold)));
                match firewall.heal() {
                    Ok(command) => event.rules.push(command),
                    Err(e) => event.add_error(e),
                }
            }
            Err(e) => {
                event.add_error(&e);
                if let Err(e) = firewall.heal() {
                    event.add_error(e);
                }
            }
        }
        match self.supervisor.restart(leader) {
            Ok(pid) => {
                event.restarted.insert(leader, pid);
            }
            Err(e) => event.add_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_the_star_only_the_center_sees_a_majority() {
        let nodes = [1, 2, 3, 4, 5];
        let g = star(3, &nodes);
        assert_eq!(g.sees(3, &nodes).len(), 5);
        for n in [1, 2, 4, 5] {
            assert_eq!(g.sees(n, &nodes), [3, n].into_iter().collect(), "n{n}");
            assert!(g.can_connect(n, 3));
        }
        // One rule per directed link between two of the others: 4 · 3.
        assert_eq!(g.rules(RuleKind::Drop).len(), 12);
        assert!(star(1, &[1, 2]).is_empty(), "two nodes: nothing to cut");
    }
}
