//! Deterministic simulation: whole clusters of pure cores under random message loss, duplication,
//! reordering, partitions and crashes, with Raft's safety properties checked throughout and
//! liveness checked after the faults stop. One seed, one exact run; a failure prints its seed.

mod sim;

use std::collections::BTreeSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use riptide_node::raft::Config;
use riptide_node::types::NodeId;
use sim::Sim;

fn run(seed: u64, nodes: u64, steps: usize, pre_vote: bool) {
    let mut sim = Sim::with_config(nodes, move |id, voters| {
        let mut c = Config::new(id, voters);
        c.seed = seed;
        c.pre_vote = pre_vote;
        c.check_quorum = pre_vote;
        c.max_batch_entries = 3; // small batches exercise pipelining and partial acks
        c.max_inflight = 4;
        c
    });
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ids: Vec<NodeId> = sim.ids();
    let mut next_command = 0u32;
    let mut read_id = 0u64;
    for step in 0..steps {
        let roll = rng.gen_range(0..100);
        match roll {
            0..=34 => {
                let id = ids[rng.gen_range(0..ids.len())];
                sim.tick(id);
            }
            35..=69 => {
                if !sim.network.is_empty() {
                    let k = rng.gen_range(0..sim.network.len().min(4)); // mild reordering
                    let msg = sim.network.remove(k).unwrap();
                    sim.deliver(msg);
                }
            }
            70..=74 => {
                if !sim.network.is_empty() {
                    let k = rng.gen_range(0..sim.network.len());
                    sim.network.remove(k); // loss
                }
            }
            75..=76 => {
                if !sim.network.is_empty() {
                    let k = rng.gen_range(0..sim.network.len());
                    let msg = sim.network[k].clone();
                    sim.network.push_back(msg); // duplicate, delivered late
                }
            }
            77..=86 => {
                for leader in sim.leaders() {
                    next_command += 1;
                    sim.propose(leader, &next_command.to_be_bytes());
                }
            }
            87..=88 => {
                for leader in sim.leaders() {
                    read_id += 1;
                    let _ = sim.node_mut(leader).read_index(read_id);
                    sim.process(leader);
                }
            }
            89..=90 => {
                let live: Vec<NodeId> = ids
                    .iter()
                    .copied()
                    .filter(|id| !sim.crashed.contains(id))
                    .collect();
                if sim.crashed.len() < (nodes as usize - 1) / 2 && !live.is_empty() {
                    sim.crash(live[rng.gen_range(0..live.len())]);
                }
            }
            91..=93 => {
                if let Some(&id) = sim.crashed.iter().next() {
                    sim.restart(id);
                }
            }
            94..=95 => {
                let mut shuffled = ids.clone();
                for i in (1..shuffled.len()).rev() {
                    shuffled.swap(i, rng.gen_range(0..=i));
                }
                let cut = rng.gen_range(1..shuffled.len());
                let (a, b) = shuffled.split_at(cut);
                sim.partition(&[a, b]);
            }
            _ => sim.heal(),
        }
        if step % 64 == 0 {
            sim.check_safety();
        }
    }
    sim.check_safety();

    // The faults stop: heal, restart everyone, and the cluster must converge.
    sim.heal();
    for id in ids.clone() {
        if sim.crashed.contains(&id) {
            sim.restart(id);
        }
    }
    sim.tick_all(300);
    let leaders = sim.leaders();
    assert_eq!(
        leaders.len(),
        1,
        "seed {seed}: one leader after healing, got {leaders:?}"
    );
    let leader = leaders[0];
    sim.propose(leader, b"final");
    sim.tick_all(20);
    sim.check_safety();
    let reference = sim.applied_commands(leader);
    assert_eq!(
        reference.last().map(|c| c.as_slice()),
        Some(&b"final"[..]),
        "seed {seed}: the final write commits"
    );
    let unique: BTreeSet<&Vec<u8>> = reference.iter().collect();
    assert_eq!(
        unique.len(),
        reference.len(),
        "seed {seed}: a command applied twice"
    );
    for &id in &ids {
        assert_eq!(
            sim.applied_commands(id),
            reference,
            "seed {seed}: node {id} diverged"
        );
    }
}

#[test]
fn simulation_three_nodes_with_prevote_and_check_quorum() {
    for seed in 0..300 {
        run(seed, 3, 3_000, true);
    }
}

#[test]
fn simulation_five_nodes_with_prevote_and_check_quorum() {
    for seed in 1_000..1_200 {
        run(seed, 5, 4_000, true);
    }
}

#[test]
fn simulation_five_nodes_plain_raft() {
    for seed in 2_000..2_200 {
        run(seed, 5, 4_000, false);
    }
}
