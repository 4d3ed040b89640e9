//! The deterministic simulation in CI: thousands of seeds of the real executor under faults,
//! checked for Raft safety, convergence and linearizability, half of them taking and installing
//! snapshots; the old core-only simulations' configurations; and proof that each deliberate bug
//! is caught.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use riptide_node::server::UnsafeBug;
use riptide_sim::storage::SnapshotCounters;
use riptide_sim::{run_seed, RunStats, SimConfig};

/// Runs `seeds` on two threads (the CI machine has two cores); panics with the first failure
/// and its reproduction command. Returns every run's stats.
fn run_all(seeds: std::ops::Range<u64>, config: impl Fn(u64) -> SimConfig + Sync) -> Vec<RunStats> {
    let next = AtomicU64::new(seeds.start);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    break;
                }
                let result = run_seed(seed, &config(seed));
                results.lock().unwrap().push((seed, result));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|(seed, _)| *seed);
    results
        .into_iter()
        .map(|(seed, result)| match result {
            Ok(stats) => stats,
            Err(failure) => panic!(
                "seed {seed} failed:\n{}\nreproduce: cargo run --release -p riptide-sim -- --seed {seed}",
                failure.message
            ),
        })
        .collect()
}

#[test]
fn two_thousand_seeds_of_the_mix_are_safe_convergent_and_linearizable() {
    let stats = run_all(0..2_000, SimConfig::for_seed);
    // The runs exercise what the simulation claims to: a weak schedule would pass vacuously.
    let sum = |f: fn(&RunStats) -> usize| stats.iter().map(f).sum::<usize>();
    assert!(
        sum(|s| s.oks) > 200_000,
        "ok operations: {}",
        sum(|s| s.oks)
    );
    assert!(
        sum(|s| s.infos) > 10_000,
        "info operations: {}",
        sum(|s| s.infos)
    );
    assert!(
        sum(|s| s.crashes_in_ready) > 5_000,
        "crashes inside a Ready"
    );
    assert!(sum(|s| s.indeterminate) > 1_000, "indeterminate answers");
    let largest = stats.iter().map(|s| s.largest_batch).max().unwrap();
    assert!(largest >= 64, "the largest batch held {largest} events");
    let highest = stats.iter().map(|s| s.max_term).max().unwrap();
    assert!(highest >= 10, "elections: the highest term was {highest}");
    let snap =
        |f: fn(&SnapshotCounters) -> usize| stats.iter().map(|s| f(&s.snapshots)).sum::<usize>();
    assert!(snap(|c| c.taken) > 5_000, "snapshots taken");
    assert!(snap(|c| c.installed) > 500, "snapshots installed");
    assert!(snap(|c| c.restarts_from_snapshot) > 2_000, "restarts");
}

/// The snapshot paths the simulation is there to attack, each seen in the first 200 seeds: so
/// that a change to the settings or the schedule cannot make them vanish unnoticed.
#[test]
fn the_first_seeds_take_install_and_restart_from_snapshots() {
    let stats = run_all(0..200, SimConfig::for_seed);
    let mut total = SnapshotCounters::default();
    for s in &stats {
        total += s.snapshots;
    }
    let seeds_with =
        |f: fn(&SnapshotCounters) -> bool| stats.iter().filter(|s| f(&s.snapshots)).count();
    assert!(total.taken > 500, "{total:?}");
    assert!(total.installed > 40, "{total:?}");
    assert!(total.restarts_from_snapshot > 200, "{total:?}");
    assert!(
        total.chunks > total.installed + 20,
        "multi-chunk transfers: {total:?}"
    );
    assert!(
        total.transfers_lost > 0,
        "a crash in the middle of a transfer: {total:?}"
    );
    assert!(
        total.lost_in_crash > 0,
        "a crash during a snapshot write: {total:?}"
    );
    assert!(
        total.kept_unpolled > 0,
        "a crash after a write, before its poll: {total:?}"
    );
    assert!(
        seeds_with(|c| c.installed > 0) > 20,
        "seeds with an install"
    );
    assert!(
        seeds_with(|c| c.installed > 0 && c.restarts_from_snapshot > 0) > 10,
        "seeds that install and restart from a snapshot"
    );
}

#[test]
fn a_seed_is_one_exact_run() {
    // 11 and 539 install snapshots, and 539 once received two encodings of one snapshot.
    for seed in [3, 5, 8, 11, 539] {
        let config = SimConfig::for_seed(seed);
        assert_eq!(
            run_seed(seed, &config).unwrap(),
            run_seed(seed, &config).unwrap()
        );
    }
}

/// The configurations of the simulation that drove bare cores (`node/tests/raft_simulation.rs`),
/// now through the executor and the clients: same seeds, cluster sizes, steps and settings.
fn old(nodes: u64, steps: usize, pre_vote: bool) -> impl Fn(u64) -> SimConfig + Sync {
    move |_| SimConfig {
        nodes,
        steps,
        pre_vote,
        clients: nodes as usize + 2,
        readers: 0,
        keys: 3,
        snapshots: None,
        bugs: Vec::new(),
        tweaks: Default::default(),
    }
}

#[test]
fn simulation_three_nodes_with_prevote_and_check_quorum() {
    run_all(0..300, old(3, 3_000, true));
}

#[test]
fn simulation_five_nodes_with_prevote_and_check_quorum() {
    run_all(1_000..1_200, old(5, 4_000, true));
}

#[test]
fn simulation_five_nodes_plain_raft() {
    run_all(2_000..2_200, old(5, 4_000, false));
}

/// The first seed below 200 that fails with `bug` enabled, and why.
fn first_failure_with(bug: UnsafeBug) -> Option<(u64, String)> {
    (0..200).find_map(|seed| {
        let mut config = SimConfig::for_seed(seed);
        config.bugs = vec![bug];
        run_seed(seed, &config).err().map(|f| (seed, f.message))
    })
}

#[test]
fn a_disabled_election_restriction_is_caught() {
    let (seed, why) = first_failure_with(UnsafeBug::VoteAnyLog).expect("vote-any-log is caught");
    assert!(
        why.contains("safety") || why.contains("not linearizable") || why.contains("diverged"),
        "seed {seed}: {why}"
    );
}

#[test]
fn stale_reads_are_caught_by_the_linearizability_check() {
    let (seed, why) = first_failure_with(UnsafeBug::StaleRead).expect("stale-read is caught");
    assert!(why.contains("not linearizable"), "seed {seed}: {why}");
}

#[test]
fn acknowledging_before_commit_is_caught_by_the_linearizability_check() {
    let (seed, why) =
        first_failure_with(UnsafeBug::AckBeforeCommit).expect("ack-before-commit is caught");
    assert!(why.contains("not linearizable"), "seed {seed}: {why}");
}

#[test]
fn installing_a_snapshot_without_loading_its_state_is_caught() {
    let (seed, why) = first_failure_with(UnsafeBug::InstallWithoutRestore)
        .expect("install-without-restore is caught");
    assert!(why.contains("state machine"), "seed {seed}: {why}");
}
