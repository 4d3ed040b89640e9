//! How long the nemesis waits between its steps.
//!
//! Without jitter every wait is the interval, so every fault lasts the same time (one interval
//! when faults take turns, two when they overlap). Real outages come in all lengths, and some
//! bugs need a short one and others a long one: a deposed leader's clients see what it did only
//! if the partition heals before their requests time out, while a paused leader's lease is
//! tested only if its clients give up on it and write elsewhere first. With jitter `j` each wait
//! is drawn uniformly from `[1 - j, 1 + j]` intervals, so the mean stays the interval.
//!
//! The draws come from a ChaCha stream of their own, seeded by the run's seed: the same seed
//! gives the same waits, and the waits never change which faults the [`crate::Schedule`] draws.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The ChaCha stream of the waits ("waits" in ASCII), apart from the schedule's.
const WAITS_STREAM: u64 = 0x0077_6169_7473;
/// The stream of the membership lane's waits ("lane"), apart from the rolling faults'.
const LANE_STREAM: u64 = 0x6c61_6e65;

/// The largest jitter: a wait is never shorter than a tenth of the interval.
pub const MAX_JITTER: f64 = 0.9;

/// The seeded sequence of waits.
#[derive(Debug, Clone)]
pub struct Waits {
    rng: ChaCha8Rng,
    interval: Duration,
    jitter: f64,
}

impl Waits {
    /// Waits around `interval`, varied by up to `jitter` of it (clamped to `0..=MAX_JITTER`).
    pub fn new(seed: u64, interval: Duration, jitter: f64) -> Waits {
        Waits::on_stream(WAITS_STREAM, seed, interval, jitter)
    }

    /// The membership lane's waits: the same interval and jitter as [`Waits::new`]'s, drawn
    /// from a stream of their own, so the lane's cadence never shifts the rolling faults'.
    pub fn lane(seed: u64, interval: Duration, jitter: f64) -> Waits {
        Waits::on_stream(LANE_STREAM, seed, interval, jitter)
    }

    fn on_stream(stream: u64, seed: u64, interval: Duration, jitter: f64) -> Waits {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, MAX_JITTER)
        } else {
            0.0
        };
        Waits {
            rng,
            interval,
            jitter,
        }
    }

    /// The next wait.
    pub fn next_wait(&mut self) -> Duration {
        if self.jitter == 0.0 {
            return self.interval;
        }
        let factor = 1.0 + self.rng.gen_range(-self.jitter..=self.jitter);
        self.interval.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn without_jitter_every_wait_is_the_interval() {
        let mut waits = Waits::new(7, SECOND, 0.0);
        assert!((0..100).all(|_| waits.next_wait() == SECOND));
    }

    #[test]
    fn jittered_waits_vary_within_the_bounds_around_the_interval() {
        let mut waits = Waits::new(7, SECOND, 0.75);
        let drawn: Vec<f64> = (0..2000).map(|_| waits.next_wait().as_secs_f64()).collect();
        assert!(drawn.iter().all(|w| (0.25..=1.75).contains(w)), "{drawn:?}");
        assert!(drawn.iter().any(|&w| w < 0.5), "some short waits");
        assert!(drawn.iter().any(|&w| w > 1.5), "some long waits");
        let mean = drawn.iter().sum::<f64>() / drawn.len() as f64;
        assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
    }

    #[test]
    fn the_same_seed_gives_the_same_waits_and_another_seed_others() {
        let draw = |seed| {
            let mut waits = Waits::new(seed, SECOND, 0.5);
            (0..20).map(|_| waits.next_wait()).collect::<Vec<_>>()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }

    #[test]
    fn an_out_of_range_jitter_is_clamped() {
        let mut waits = Waits::new(1, SECOND, 5.0);
        assert!((0..500).all(|_| waits.next_wait() >= SECOND.mul_f64(0.1 - 1e-9)));
        let mut waits = Waits::new(1, SECOND, f64::NAN);
        assert_eq!(waits.next_wait(), SECOND);
    }

    #[test]
    fn the_lane_waits_differ_from_the_rolling_waits_of_the_same_seed() {
        let draw = |mut waits: Waits| (0..20).map(|_| waits.next_wait()).collect::<Vec<_>>();
        let lane = draw(Waits::lane(3, SECOND, 0.5));
        assert_eq!(lane, draw(Waits::lane(3, SECOND, 0.5)));
        assert_ne!(lane, draw(Waits::new(3, SECOND, 0.5)));
    }
}
