//! The `reorder` test hook: this node's outbound peer links hold some messages back and send
//! some twice, so that they arrive out of order and late.
//!
//! # Why the node does it, not the network
//!
//! Raft is specified for a network that loses, delays, duplicates and reorders messages
//! (Raft paper §5.1), and the rules that make it safe there are easy to get wrong: a follower
//! must not truncate its log for an AppendEntries whose entries it already holds (a late,
//! stale one would erase entries it has acknowledged), a leader must not move a follower's
//! match index back for a late success. Real deployments meet such messages: a transport with
//! several connections per peer, a retry that overtakes the original, a link re-dialled while
//! old frames are still buffered. riptide's transport has one TCP connection per peer, and TCP
//! delivers in order, so neither iptables nor netem can reorder what the node sees (netem
//! reorders packets; TCP puts them back in order). The hook sits where reordering can happen:
//! between the Raft loop's queue and the socket.
//!
//! # What it does
//!
//! While on ([`Reorder::set`], the `Reorder` admin request), each message to a peer is, with
//! probability one quarter each:
//! - **held**: sent after a random delay in 1..=`max_delay_ms`, so later messages overtake it;
//! - **copied**: sent now, and once more after such a delay (a duplicate that arrives late,
//!   after the follower has moved on);
//!
//! and otherwise sent at once. The draws come from a ChaCha stream per link, seeded by the
//! request's seed and the peer's id, so a run's `test.json` seed fixes them (the timing of a
//! real cluster still varies). Turning it off (`max_delay_ms` 0) sends held messages as they
//! fall due and holds nothing new. The counters say what it did since it was last turned on, in
//! `status.reorder`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::protocol::ReorderStatus;
use crate::raft::Message;
use crate::types::NodeId;

/// The longest hold the hook accepts, in ms: more would hold a heartbeat past any election
/// timeout and turn the fault into a partition.
pub const MAX_REORDER_MS: u64 = 10_000;

/// The node's reorder setting, shared by every outbound link (and set by the Raft loop when the
/// admin request comes).
#[derive(Debug, Default)]
pub struct Reorder {
    max_delay_ms: AtomicU64,
    seed: AtomicU64,
    /// Bumped by every [`Reorder::set`]: each link re-seeds its stream when it changes.
    generation: AtomicU64,
    /// Messages held back, and messages sent twice, since the hook was last turned on.
    held: AtomicU64,
    copied: AtomicU64,
}

impl Reorder {
    /// Turns the hook on (`max_delay_ms` > 0, at most [`MAX_REORDER_MS`]; the counts start
    /// again from zero) or off (0; the counts stay, to say what it did).
    pub fn set(&self, max_delay_ms: u64, seed: u64) {
        if max_delay_ms > 0 {
            self.held.store(0, Ordering::Relaxed);
            self.copied.store(0, Ordering::Relaxed);
        }
        self.max_delay_ms
            .store(max_delay_ms.min(MAX_REORDER_MS), Ordering::Release);
        self.seed.store(seed, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// How many messages the hook held back and how many it sent twice.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.held.load(Ordering::Relaxed),
            self.copied.load(Ordering::Relaxed),
        )
    }

    /// The setting and the counts, for `status`.
    pub fn status(&self) -> ReorderStatus {
        let (held, copied) = self.counts();
        ReorderStatus {
            max_delay_ms: self.max_delay_ms.load(Ordering::Acquire),
            held,
            copied,
        }
    }
}

/// What a link does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Now,
    /// Send it after this long (and not now).
    Hold(Duration),
    /// Send it now, and a copy after this long.
    NowAndCopy(Duration),
}

/// One link's view of the hook: its own seeded stream.
pub struct LinkShuffle {
    shared: Arc<Reorder>,
    peer: NodeId,
    generation: u64,
    rng: ChaCha8Rng,
}

impl LinkShuffle {
    pub fn new(shared: Arc<Reorder>, peer: NodeId) -> LinkShuffle {
        LinkShuffle {
            shared,
            peer,
            generation: 0,
            rng: ChaCha8Rng::seed_from_u64(0),
        }
    }

    /// Where the next message goes. Off, it is one atomic load.
    pub fn route(&mut self) -> Route {
        let max = self.shared.max_delay_ms.load(Ordering::Acquire);
        if max == 0 {
            return Route::Now;
        }
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.generation {
            self.generation = generation;
            let seed = self.shared.seed.load(Ordering::Acquire);
            self.rng = ChaCha8Rng::seed_from_u64(seed ^ self.peer.wrapping_mul(0x9e37_79b9));
        }
        let draw: u8 = self.rng.gen_range(0..4);
        let delay = Duration::from_millis(self.rng.gen_range(1..=max));
        match draw {
            0 => {
                self.shared.held.fetch_add(1, Ordering::Relaxed);
                Route::Hold(delay)
            }
            1 => {
                self.shared.copied.fetch_add(1, Ordering::Relaxed);
                Route::NowAndCopy(delay)
            }
            _ => Route::Now,
        }
    }
}

/// A message about to go out: fresh from the Raft loop, or one the reorder hook held.
pub enum Outgoing {
    Fresh(Message),
    Late(Message),
}

/// The messages the reorder hook holds back, by when they fall due (then by arrival).
#[derive(Default)]
pub struct LateQueue {
    held: BTreeMap<(tokio::time::Instant, u64), Message>,
    arrivals: u64,
}

impl LateQueue {
    pub fn next_due(&self) -> Option<tokio::time::Instant> {
        self.held.keys().next().map(|(due, _)| *due)
    }

    pub fn pop_due(&mut self) -> Option<Message> {
        let due = self.next_due()?;
        if due > tokio::time::Instant::now() {
            return None;
        }
        self.held.pop_first().map(|(_, msg)| msg)
    }

    fn hold(&mut self, msg: Message, delay: Duration) {
        self.arrivals += 1;
        let due = tokio::time::Instant::now() + delay;
        self.held.insert((due, self.arrivals), msg);
    }

    /// Puts `msg` in `batch` (to send now), here (to send later), or both.
    pub fn route(&mut self, msg: Outgoing, shuffle: &mut LinkShuffle, batch: &mut Vec<Message>) {
        let msg = match msg {
            Outgoing::Late(msg) => return batch.push(msg),
            Outgoing::Fresh(msg) => msg,
        };
        match shuffle.route() {
            Route::Now => batch.push(msg),
            Route::Hold(delay) => self.hold(msg, delay),
            Route::NowAndCopy(delay) => {
                self.hold(msg.clone(), delay);
                batch.push(msg);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(shared: &Arc<Reorder>, peer: NodeId, n: usize) -> Vec<Route> {
        let mut link = LinkShuffle::new(shared.clone(), peer);
        (0..n).map(|_| link.route()).collect()
    }

    #[test]
    fn off_sends_everything_at_once_and_counts_nothing() {
        let shared = Arc::new(Reorder::default());
        assert!(routes(&shared, 2, 100).iter().all(|r| *r == Route::Now));
        shared.set(50, 7);
        shared.set(0, 7);
        assert!(routes(&shared, 2, 100).iter().all(|r| *r == Route::Now));
        assert_eq!(shared.counts(), (0, 0));
    }

    #[test]
    fn on_holds_and_copies_about_a_quarter_each_within_the_bound() {
        let shared = Arc::new(Reorder::default());
        shared.set(40, 7);
        let all = routes(&shared, 2, 4000);
        let held: Vec<Duration> = all
            .iter()
            .filter_map(|r| match r {
                Route::Hold(d) => Some(*d),
                _ => None,
            })
            .collect();
        let copied = all
            .iter()
            .filter(|r| matches!(r, Route::NowAndCopy(_)))
            .count();
        assert!((800..1200).contains(&held.len()), "{}", held.len());
        assert!((800..1200).contains(&copied), "{copied}");
        assert!(held
            .iter()
            .all(|d| *d >= Duration::from_millis(1) && *d <= Duration::from_millis(40)));
        assert_eq!(shared.counts(), (held.len() as u64, copied as u64));
        // Off, the counts stay (what the fault did); on again, they start from zero.
        shared.set(0, 0);
        assert_eq!(shared.counts(), (held.len() as u64, copied as u64));
        shared.set(40, 9);
        assert_eq!(shared.counts(), (0, 0));
    }

    #[test]
    fn the_draws_are_a_function_of_the_seed_and_the_peer() {
        let shared = Arc::new(Reorder::default());
        shared.set(40, 7);
        let a = routes(&shared, 2, 200);
        assert_eq!(a, routes(&shared, 2, 200));
        assert_ne!(a, routes(&shared, 3, 200));
        shared.set(40, 8);
        assert_ne!(a, routes(&shared, 2, 200));
        shared.set(MAX_REORDER_MS * 10, 8);
        let capped = routes(&shared, 2, 200);
        assert!(capped.iter().all(|r| match r {
            Route::Hold(d) | Route::NowAndCopy(d) => *d <= Duration::from_millis(MAX_REORDER_MS),
            Route::Now => true,
        }));
    }
}
