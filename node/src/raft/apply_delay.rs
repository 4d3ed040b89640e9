//! A slow state machine, on purpose: committed entries wait a number of ticks before the core
//! hands them out to apply (the `slow-apply` fault of the bench).
//!
//! # Why a test bench wants it
//!
//! Most production Raft nodes apply on a thread or goroutine of its own (etcd's apply loop,
//! hashicorp/raft's FSM goroutine), so the state machine can fall behind the commit index: a
//! long compaction, a big transaction, a slow backend disk. Everything that reads the state
//! machine must then wait for `applied ≥` the index it needs, and the classic mistake is a
//! ReadIndex read answered before it does (`read-before-apply`). This node applies in the turn
//! that commits, so without a lag that mistake never shows. The delay makes the lag real and
//! bounded in time: each commit index becomes appliable `ticks` after this node learned it, so
//! a follower that becomes leader under it holds entries its predecessor acknowledged but its
//! own state machine has not seen yet, for as long as the delay.
//!
//! The delay is volatile (a restart forgets it) and local (it is not replicated). Turning it
//! off releases everything held at once.

use std::collections::VecDeque;

use super::node::Raft;
use crate::types::Index;

impl Raft {
    /// Holds every committed entry back `ticks` ticks from the tick this node learns that it
    /// committed, as a slow state machine would. 0 applies at once again, and releases what
    /// was held.
    pub fn set_apply_delay(&mut self, ticks: u64) {
        self.apply_delay.set(ticks);
    }

    /// The apply delay in ticks (0: none).
    pub fn apply_delay(&self) -> u64 {
        self.apply_delay.ticks()
    }
}

/// The delay and the commit indexes waiting for it, with the tick each was first seen.
#[derive(Debug, Clone, Default)]
pub struct ApplyDelay {
    ticks: u64,
    waiting: VecDeque<(Index, u64)>,
    released: Index,
}

impl ApplyDelay {
    /// Sets the delay; 0 turns it off and releases every index held.
    pub fn set(&mut self, ticks: u64) {
        self.ticks = ticks;
        if ticks == 0 {
            self.waiting.clear();
        }
    }

    /// The delay in ticks (0: off).
    pub fn ticks(&self) -> u64 {
        self.ticks
    }

    /// How many of the committed entries after `applied` may be applied at `clock`, given the
    /// commit index `commit` now: all of them with no delay, else those up to the newest commit
    /// index seen at least `ticks` ago.
    pub fn appliable(&mut self, commit: Index, applied: Index, clock: u64) -> usize {
        if self.ticks == 0 {
            return usize::MAX;
        }
        let newest = self.waiting.back().map_or(self.released, |&(i, _)| i);
        if commit > newest.max(applied) {
            self.waiting.push_back((commit, clock));
        }
        while let Some(&(index, seen)) = self.waiting.front() {
            if seen.saturating_add(self.ticks) > clock {
                break;
            }
            self.released = self.released.max(index);
            self.waiting.pop_front();
        }
        usize::try_from(self.released.saturating_sub(applied)).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_delay_everything_may_apply() {
        let mut delay = ApplyDelay::default();
        assert_eq!(delay.appliable(10, 3, 0), usize::MAX);
    }

    #[test]
    fn a_commit_index_waits_its_ticks_then_goes_whole() {
        let mut delay = ApplyDelay::default();
        delay.set(5);
        assert_eq!(delay.appliable(4, 0, 100), 0);
        assert_eq!(delay.appliable(9, 0, 102), 0, "4 seen at 100, 9 at 102");
        assert_eq!(delay.appliable(9, 0, 104), 0);
        assert_eq!(delay.appliable(9, 0, 105), 4, "index 4 is due at 105");
        assert_eq!(delay.appliable(9, 4, 106), 0);
        assert_eq!(
            delay.appliable(12, 4, 107),
            5,
            "index 9 is due at 107, 12 is not"
        );
        assert_eq!(delay.appliable(12, 9, 111), 0);
        assert_eq!(delay.appliable(12, 9, 112), 3);
    }

    #[test]
    fn turning_the_delay_off_releases_what_it_held() {
        let mut delay = ApplyDelay::default();
        delay.set(50);
        assert_eq!(delay.appliable(7, 2, 0), 0);
        delay.set(0);
        assert_eq!(delay.appliable(7, 2, 1), usize::MAX);
        // On again: only commits seen from now on wait.
        delay.set(3);
        assert_eq!(delay.appliable(7, 7, 2), 0);
        assert_eq!(delay.appliable(8, 7, 2), 0);
        assert_eq!(delay.appliable(8, 7, 5), 1);
    }

    #[test]
    fn an_applied_index_past_the_released_one_owes_nothing() {
        // A snapshot installed under the delay moves `applied` past what was released.
        let mut delay = ApplyDelay::default();
        delay.set(2);
        assert_eq!(delay.appliable(5, 0, 0), 0);
        assert_eq!(delay.appliable(20, 20, 1), 0);
        assert_eq!(delay.appliable(20, 20, 10), 0);
        assert_eq!(delay.appliable(21, 20, 10), 0);
        assert_eq!(delay.appliable(21, 20, 12), 1);
    }
}
