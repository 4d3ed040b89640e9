//! Node bugs the snapshot simulation found, each pinned to the run that showed it: the seed and
//! its whole configuration as `SimConfig::for_seed` gave it when the bug was found (commit
//! history of `sim/src/config.rs`), so that later changes to the seed mix keep the run.

use riptide_node::server::compaction::SnapshotPolicy;
use riptide_sim::{run_seed, SimConfig, SnapshotSettings};

fn config(nodes: u64, pre_vote: bool, policy: SnapshotPolicy, max_chunk: usize) -> SimConfig {
    SimConfig {
        nodes,
        steps: 3_000,
        pre_vote,
        clients: nodes as usize + 2,
        readers: 0,
        keys: 3,
        snapshots: Some(SnapshotSettings { policy, max_chunk }),
        bugs: Vec::new(),
        tweaks: Default::default(),
    }
}

/// The executor installed a snapshot whose index the commit index had passed since its last
/// chunk arrived (entries from the leader in the same batch), after applying those entries in
/// the same Ready: the state machine went back to the snapshot while the applied index stayed
/// ahead (`node/src/server/compaction.rs`, `install`). The follower's store silently lost
/// writes; only the reference-store check saw it.
#[test]
fn seed_11_an_install_behind_the_commit_index_does_not_roll_the_state_machine_back() {
    let policy = SnapshotPolicy {
        entries: 10,
        bytes: 0,
        tail: 1,
        amplification: 0,
    };
    let stats =
        run_seed(11, &config(5, false, policy, 977)).unwrap_or_else(|f| panic!("{}", f.message));
    assert!(stats.snapshots.installed > 0, "{stats:?}");
}

/// A follower rejected every AppendEntries whose previous index it had compacted away, and a
/// leader that counted it as matching there sent the same AppendEntries again at once, for ever
/// (`node/src/raft/replication.rs`, `handle_append`): "the network never went quiet".
#[test]
fn seed_4148_an_append_before_the_followers_snapshot_is_accepted() {
    let policy = SnapshotPolicy {
        entries: 15,
        bytes: 1620,
        tail: 8,
        amplification: 0,
    };
    let stats = run_seed(4148, &config(3, true, policy, 1024 * 1024))
        .unwrap_or_else(|f| panic!("{}", f.message));
    assert!(stats.snapshots.taken > 0, "{stats:?}");
}
