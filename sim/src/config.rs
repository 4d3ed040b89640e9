//! What one seed simulates: [`SimConfig::for_seed`] derives every setting of a run from its
//! seed, so that a seed names one exact run.
//!
//! Cluster size, pre-vote and the reader crowd come from the seed's low bits, as they always
//! have. Whether the nodes take snapshots, and with which settings, is drawn from a generator
//! of its own seeded by the seed ([`SnapshotSettings::for_seed`]): independent of the other
//! settings, and leaving a seed without snapshots the exact run it was before snapshots came to
//! the simulation.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use riptide_node::server::compaction::SnapshotPolicy;
use riptide_node::server::UnsafeBug;

/// What one run simulates.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub nodes: u64,
    /// Steps of the random schedule before the faults stop.
    pub steps: usize,
    /// Pre-vote and check quorum together (on) or plain Raft (off).
    pub pre_vote: bool,
    /// Clients that read, write, cas and append.
    pub clients: usize,
    /// Further clients that only read.
    pub readers: usize,
    pub keys: usize,
    /// Log compaction and InstallSnapshot, if on.
    pub snapshots: Option<SnapshotSettings>,
    /// Deliberate bugs, to prove the simulation catches them.
    pub bugs: Vec<UnsafeBug>,
    /// Settings off the seed mix, for the runs that prove a bug needs them to show.
    pub tweaks: Tweaks,
}

/// Node behaviour the seed mix leaves at the node's defaults, turned on by tests that need it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tweaks {
    /// The core's `apply_per_tick`: a state machine that applies at most this many committed
    /// entries per tick, so that applying lags behind committing (as with an asynchronous
    /// state machine), as the real node's never does.
    pub apply_per_tick: Option<u32>,
    /// Leader-lease reads (`--read-mode lease`; check-quorum on whatever the seed says, as
    /// leases need it).
    pub lease_reads: bool,
    /// One clock for every node, ticking every this many steps: each batch of a node starts
    /// with the ticks that fell due since its last (a stalled node catches up when it resumes,
    /// as the real loop does). None: every batch draws its own ticks, so a stalled node's clock
    /// stops and clocks drift without bound, which is fine for everything but leases (they
    /// assume bounded drift). About 6 steps per tick is the unsynced schedule's rate for a node
    /// of three; fewer make faults last longer in ticks (a partition heals after about 33 steps).
    pub synced_clocks: Option<u64>,
}

impl SimConfig {
    /// The mix the CI test and the command run: mostly 3 nodes, every fourth seed 5; pre-vote
    /// on for even seeds; snapshots for about half the seeds. Sized so that a seed takes a few
    /// milliseconds.
    pub fn for_seed(seed: u64) -> SimConfig {
        let nodes = if seed % 4 == 3 { 5 } else { 3 };
        // Every eighth seed a crowd of readers, so that requests pile up into large batches
        // (readers keep the history easy to check: a read that fails is dropped from it).
        let readers = if seed % 8 == 5 { 40 } else { 0 };
        SimConfig {
            nodes,
            steps: 3_000,
            pre_vote: seed & 1 == 0,
            clients: nodes as usize + 2,
            readers,
            keys: 3,
            snapshots: SnapshotSettings::for_seed(seed),
            bugs: Vec::new(),
            tweaks: Tweaks::default(),
        }
    }
}

/// How the nodes of a run take and send snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotSettings {
    /// When every node snapshots, and the log tail it keeps behind a snapshot.
    pub policy: SnapshotPolicy,
    /// The core's `max_snapshot_chunk`: image bytes per InstallSnapshot message.
    pub max_chunk: usize,
}

/// Mixed into the seed for the snapshot settings' own generator.
const SNAPSHOT_SALT: u64 = 0x5a4e_5341_5053_4e41;

impl SnapshotSettings {
    /// For about half the seeds, small settings so that everything about snapshots happens
    /// often in 3,000 steps (a run applies 100 to 200 entries, and an image is a few hundred
    /// bytes): a snapshot every 5 to 50 applied entries (log-uniform, so a third of the seeds
    /// every 10 or fewer; for a quarter of the seeds also every 200 to 2,000 bytes of
    /// commands), 0 to 10 entries of log kept behind it, and for three quarters of the seeds
    /// chunks of 32 to 2,048 bytes (log-uniform), so that a transfer often takes several
    /// messages; the rest send the whole image in one (the default 1 MiB chunk).
    pub fn for_seed(seed: u64) -> Option<SnapshotSettings> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ SNAPSHOT_SALT);
        if !rng.gen_bool(0.5) {
            return None;
        }
        let entries = (5.0 * 10f64.powf(rng.gen::<f64>())) as u64;
        let bytes = if rng.gen_bool(0.25) {
            rng.gen_range(200..=2_000)
        } else {
            0
        };
        let tail = rng.gen_range(0..=10);
        let max_chunk = if rng.gen_bool(0.75) {
            let scale = rng.gen_range(5..11);
            rng.gen_range(1 << scale..=2 << scale)
        } else {
            1024 * 1024
        };
        Some(SnapshotSettings {
            policy: SnapshotPolicy {
                entries,
                bytes,
                tail,
                amplification: 0,
            },
            max_chunk,
        })
    }
}
