//! The bug zoo in the simulation: each deliberate bug of `UnsafeBug` that the seed mix can show
//! is caught within a bounded number of seeds, by the check that fits what the bug breaks
//! (Election Safety, State Machine Safety, linearizability, convergence). The seeds run in
//! order and the first failure ends the search, so a test costs only the seeds before it.
//! Every seed used here passes with the correct node (`simulation.rs` runs seeds 0..2000 of
//! the mix; `a_lagging_state_machine_is_still_linearizable` and `correct_leases_are_linearizable`
//! cover the settings off the mix). `commit-past-match` is not here: no schedule of the
//! simulation reached it in 20,000 seeds (see its transcript in `node/tests/transcripts/`).

use riptide_node::server::UnsafeBug;
use riptide_sim::{run_seed, SimConfig, Tweaks};

/// The first seed below `seeds` of the mix that fails with `bug` enabled (and `tweaks`), and
/// why.
fn first_failure(bug: UnsafeBug, seeds: u64, tweaks: Tweaks) -> Option<(u64, String)> {
    (0..seeds).find_map(|seed| {
        let mut config = SimConfig::for_seed(seed);
        config.bugs = vec![bug];
        config.tweaks = tweaks;
        run_seed(seed, &config).err().map(|f| (seed, f.message))
    })
}

/// The first seed below `seeds` that fails with `bug` enabled (and `tweaks`) in a way `kind`
/// accepts, and why.
fn first_failure_where(
    bug: UnsafeBug,
    seeds: u64,
    tweaks: Tweaks,
    kind: impl Fn(&str) -> bool,
) -> Option<(u64, String)> {
    (0..seeds).find_map(|seed| {
        let mut config = SimConfig::for_seed(seed);
        config.bugs = vec![bug];
        config.tweaks = tweaks;
        let failure = run_seed(seed, &config).err()?;
        kind(&failure.message).then_some((seed, failure.message))
    })
}

fn caught(bug: UnsafeBug, seeds: u64, tweaks: Tweaks) -> (u64, String) {
    let found = first_failure(bug, seeds, tweaks);
    found.unwrap_or_else(|| panic!("{bug} was not caught in {seeds} seeds"))
}

/// A state machine that applies at most a few entries per tick: applying lags behind
/// committing, as with an asynchronous state machine.
const LAGGING_APPLY: Tweaks = Tweaks {
    apply_per_tick: Some(3),
    lease_reads: false,
    synced_clocks: None,
};

#[test]
fn committing_a_prior_term_entry_by_counting_is_caught() {
    let (seed, why) = caught(UnsafeBug::CommitPriorTerm, 2_000, Tweaks::default());
    assert!(
        why.contains("not linearizable") || why.contains("safety"),
        "seed {seed}: {why}"
    );
}

#[test]
fn forgetting_the_vote_on_restart_elects_two_leaders_in_one_term() {
    let (seed, why) = caught(UnsafeBug::ForgetVote, 1_000, Tweaks::default());
    assert!(why.contains("two leaders in term"), "seed {seed}: {why}");
}

#[test]
fn read_index_before_the_own_term_commit_is_caught() {
    let (seed, why) = caught(UnsafeBug::ReadIndexEarly, 200, Tweaks::default());
    assert!(why.contains("not linearizable"), "seed {seed}: {why}");
}

#[test]
fn reading_before_applying_is_caught_when_applying_lags() {
    let (seed, why) = caught(UnsafeBug::ReadBeforeApply, 200, LAGGING_APPLY);
    assert!(why.contains("not linearizable"), "seed {seed}: {why}");
}

/// The apply lag is a fair setting: the correct node stays safe, convergent and linearizable
/// under it (the reads wait for the state machine).
#[test]
fn a_lagging_state_machine_is_still_linearizable() {
    for seed in 0..300 {
        let mut config = SimConfig::for_seed(seed);
        config.tweaks = LAGGING_APPLY;
        if let Err(f) = run_seed(seed, &config) {
            panic!("seed {seed} failed with the apply lag:\n{}", f.message);
        }
    }
}

/// The follower deletes entries it acknowledged. The first failures are often a livelock
/// (the leader counts the follower as holding them and probes it, in vain, without end); then a
/// new leader lacking them replaces committed entries on other nodes.
#[test]
fn truncating_a_matching_suffix_is_caught() {
    let bug = UnsafeBug::TruncateOnMatch;
    let (seed, why) = caught(bug, 200, Tweaks::default());
    let kinds = ["safety", "not linearizable", "never went quiet", "diverged"];
    assert!(kinds.iter().any(|k| why.contains(k)), "seed {seed}: {why}");
    let lost = first_failure_where(bug, 400, Tweaks::default(), |why| {
        why.contains("state machine safety")
    });
    assert!(
        lost.is_some(),
        "no committed entry was replaced in 400 seeds"
    );
}

#[test]
fn a_quorum_off_by_one_is_caught() {
    let (seed, why) = caught(UnsafeBug::QuorumOffByOne, 200, Tweaks::default());
    assert!(
        why.contains("two leaders in term") || why.contains("state machine safety"),
        "seed {seed}: {why}"
    );
}

#[test]
fn answering_a_write_by_index_alone_is_caught() {
    let (seed, why) = caught(UnsafeBug::AnswerByIndex, 2_000, Tweaks::default());
    eprintln!("answer-by-index: first caught in seed {seed}: {why}");
    assert!(why.contains("not linearizable"), "seed {seed}: {why}");
}

/// Liveness: with one timeout for every node, the nodes the convergence phase ticks in
/// lockstep time out together and split the vote, term after term.
#[test]
fn fixed_election_timeouts_never_converge() {
    let (seed, why) = caught(UnsafeBug::FixedElectionTimeout, 200, Tweaks::default());
    assert!(
        why.contains("one leader after healing"),
        "seed {seed}: {why}"
    );
}

/// Lease reads on one clock for every node, ticking every 3 steps (leases assume clocks that
/// drift little; a partition, healed after about 33 steps, lasts about 11 ticks).
const LEASES: Tweaks = Tweaks {
    apply_per_tick: None,
    lease_reads: true,
    synced_clocks: Some(3),
};

/// The correct lease (the minimum election timeout less a drift margin, timed from when the
/// heartbeats were sent, with check-quorum) stays safe and linearizable.
#[test]
fn correct_leases_are_linearizable() {
    for seed in 0..1_000 {
        let mut config = SimConfig::for_seed(seed);
        config.tweaks = LEASES;
        if let Err(f) = run_seed(seed, &config) {
            panic!("seed {seed} failed with lease reads:\n{}", f.message);
        }
    }
}

#[test]
fn a_lease_that_outlives_the_election_is_caught() {
    let (seed, why) = caught(UnsafeBug::LeaseReadUnsafe, 4_000, LEASES);
    assert!(why.contains("not linearizable"), "seed {seed}: {why}");
}
