//! A cluster of real executors ([`riptide_node::server::executor::Executor`]) on simulated
//! disks and a simulated network, with Raft's safety properties checked across it.
//!
//! The cluster does what the real Raft loop does for each node: take a batch of events (peer
//! messages, client requests, ticks), feed them to the executor, and call `process_ready` once.
//! A storage failure inside the Ready (an armed simulated crash) crashes the node there: what was
//! sent before it stays sent, what was not durable is lost.
//!
//! A node boots from its disk as the real node does (`restore` in `riptide_node::server`): with
//! a snapshot on the disk, the core's log starts after it, the core holds its image (to send to
//! followers), and the state machine is decoded from it. After every Ready the cluster hands
//! what the node applied, its store and its disk's snapshot to the checks of [`crate::safety`].

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use riptide_node::kv::KvStore;
use riptide_node::protocol::ClientResponse;
use riptide_node::raft::{Config, Raft, RaftLog, ReadMode, SnapshotImage};
use riptide_node::server::executor::Executor;
use riptide_node::server::UnsafeBug;
use riptide_node::types::{Entry, NodeId, Term};

use crate::config::{SnapshotSettings, Tweaks};
use crate::network::{Answers, Delivery, Outbox, SimNetwork};
use crate::safety::{log_matching, Applied, DurableLog, Safety};
use crate::storage::{Disk, Encodings, SimStorage, SnapshotCounters};

pub type SimExecutor = Executor<SimStorage, Outbox, Answers>;

/// One event of a batch.
#[derive(Debug)]
pub enum Input {
    Tick,
    Deliver(Delivery),
}

/// How each node's core is configured.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    pub seed: u64,
    pub pre_vote: bool,
    pub bugs: Vec<UnsafeBug>,
    /// Log compaction and InstallSnapshot, if on.
    pub snapshots: Option<SnapshotSettings>,
    pub tweaks: Tweaks,
}

pub struct Cluster {
    ids: Vec<NodeId>,
    settings: NodeSettings,
    /// Running nodes.
    live: BTreeMap<NodeId, SimExecutor>,
    /// What crashed nodes left on disk.
    down: BTreeMap<NodeId, Disk>,
    pub net: SimNetwork,
    /// What every node applied, led and snapshotted, checked as it happens.
    safety: Safety,
    /// Boots so far, to seed each boot's disk choices.
    boots: u64,
    /// The bytes of the states snapshotted, shared by the storages.
    encodings: Encodings,
    /// The snapshot counters of storages that crashed, and restarts from a snapshot.
    counters: SnapshotCounters,
}

impl Cluster {
    /// `n` nodes with ids 1..=n and empty disks, booted.
    pub fn new(n: u64, settings: NodeSettings) -> Cluster {
        let ids: Vec<NodeId> = (1..=n).collect();
        let mut cluster = Cluster {
            net: SimNetwork::new(&ids),
            down: ids.iter().map(|&id| (id, Disk::default())).collect(),
            ids,
            settings,
            live: BTreeMap::new(),
            safety: Safety::default(),
            boots: 0,
            encodings: Encodings::default(),
            counters: SnapshotCounters::default(),
        };
        for id in cluster.ids.clone() {
            cluster.restart(id);
        }
        cluster
    }

    pub fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    pub fn is_up(&self, id: NodeId) -> bool {
        self.live.contains_key(&id)
    }

    pub fn crashed(&self) -> Vec<NodeId> {
        self.down.keys().copied().collect()
    }

    pub fn node(&self, id: NodeId) -> Option<&SimExecutor> {
        self.live.get(&id)
    }

    fn config(&self, id: NodeId) -> Config {
        let mut c = Config::new(id, self.ids.clone());
        c.seed = self.settings.seed;
        c.pre_vote = self.settings.pre_vote;
        c.check_quorum = self.settings.pre_vote;
        c.max_batch_entries = 3; // small batches exercise pipelining and partial acks
        c.max_inflight = 4;
        UnsafeBug::configure(&self.settings.bugs, &mut c);
        c.apply_per_tick = self.settings.tweaks.apply_per_tick;
        if self.settings.tweaks.lease_reads {
            c.read_mode = ReadMode::Lease;
        }
        if c.read_mode == ReadMode::Lease && !c.bugs.lease_too_long {
            c.check_quorum = true;
        }
        if let Some(snapshots) = self.settings.snapshots {
            c.max_snapshot_chunk = snapshots.max_chunk;
        }
        c
    }

    /// Boots a crashed node from its disk, as the real node starts: recover, then one Ready.
    pub fn restart(&mut self, id: NodeId) -> Vec<(usize, ClientResponse)> {
        let Some(disk) = self.down.remove(&id) else {
            return Vec::new();
        };
        let (log, kv, image) = recover(&disk);
        let mut raft = Raft::new(self.config(id), disk.hard_state, log).expect("valid config");
        if let Some(image) = image {
            raft.set_snapshot(image);
            self.counters.restarts_from_snapshot += 1;
        }
        let addrs = self.ids.iter().map(|&n| (n, format!("node-{n}"))).collect();
        self.boots += 1;
        let disk_seed = self.settings.seed ^ self.boots.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut executor = Executor::new(
            raft,
            SimStorage::new(disk, disk_seed, self.encodings.clone()),
            Outbox::default(),
            Answers::default(),
            addrs,
            &self.settings.bugs,
        )
        .with_state(kv);
        if let Some(snapshots) = self.settings.snapshots {
            executor.set_snapshot_policy(snapshots.policy);
        }
        executor.record_applied();
        self.safety
            .booted(id, executor.raft().log().applied_index());
        self.live.insert(id, executor);
        self.run_batch(id, Vec::new(), &mut |_| 0)
    }

    /// Crashes a running node between two Readies. `torn` picks how many unsynced entries
    /// survive (there are none between Readies, but the choice is the disk's to make).
    pub fn crash(&mut self, id: NodeId, torn: &mut dyn FnMut(usize) -> usize) {
        if let Some(executor) = self.live.remove(&id) {
            let (disk, counters) = executor.into_storage().crash(torn);
            self.safety.disk_snapshot(id, disk.snapshot.as_ref());
            self.counters += counters;
            self.down.insert(id, disk);
            self.net.clear(id);
        }
    }

    /// Makes the node crash at its `calls`-th storage call from now, inside a later Ready.
    pub fn arm_crash(&mut self, id: NodeId, calls: u32) {
        if let Some(executor) = self.live.get_mut(&id) {
            executor.storage_mut().arm_crash(calls);
        }
    }

    pub fn crash_armed(&self, id: NodeId) -> bool {
        self.live
            .get(&id)
            .is_some_and(|e| e.storage().crash_armed())
    }

    /// Feeds one batch to a running node and carries out its Ready, as the real loop does once
    /// per iteration. Returns the answers for clients.
    pub fn run_batch(
        &mut self,
        id: NodeId,
        batch: Vec<Input>,
        torn: &mut dyn FnMut(usize) -> usize,
    ) -> Vec<(usize, ClientResponse)> {
        let Some(executor) = self.live.get_mut(&id) else {
            return Vec::new();
        };
        for input in batch {
            match input {
                Input::Tick => executor.tick(),
                Input::Deliver(Delivery::Peer(msg)) => {
                    // A link cut while the message was queued drops it too.
                    if !self.net.is_cut(msg.from, msg.to) {
                        executor.step(msg);
                    }
                }
                Input::Deliver(Delivery::Client { request, client }) => {
                    executor.on_client(request, client)
                }
            }
        }
        let installed = executor.storage().counters().installed;
        let failed = executor.process_ready().is_err();
        let installed = executor.storage().counters().installed > installed;
        let answers = self.collect(id, installed, failed);
        if failed {
            self.crash(id, torn);
        }
        answers
    }

    /// Puts what the executor sent on the network, and checks what it applied.
    fn collect(
        &mut self,
        id: NodeId,
        installed: bool,
        failed: bool,
    ) -> Vec<(usize, ClientResponse)> {
        let executor = self.live.get_mut(&id).expect("running");
        let messages = std::mem::take(&mut executor.network_mut().0);
        let answers = std::mem::take(&mut executor.clients_mut().0);
        let entries = executor.take_applied();
        let raft = executor.raft();
        if raft.is_leader() {
            self.safety.leader(raft.term(), id);
        }
        let ready = Applied {
            entries: &entries,
            installed,
            failed,
            applied_index: raft.log().applied_index(),
            kv: executor.kv(),
        };
        self.safety.applied(id, ready);
        self.safety.disk_snapshot(id, executor.storage().snapshot());
        for msg in messages {
            self.net.send_peer(msg);
        }
        answers
    }

    /// The highest term any running node is in.
    pub fn max_term(&self) -> Term {
        self.live
            .values()
            .map(|e| e.raft().term())
            .max()
            .unwrap_or(0)
    }

    /// The running leaders.
    pub fn leaders(&self) -> Vec<NodeId> {
        self.live
            .iter()
            .filter(|(_, e)| e.raft().is_leader())
            .map(|(&id, _)| id)
            .collect()
    }

    /// The cluster's applied log: the entry every node that got there applied at each index.
    pub fn applied_log(&self) -> &[Entry] {
        self.safety.applied_log()
    }

    /// What the nodes' storages did with snapshots, over every boot so far.
    pub fn snapshot_counters(&self) -> SnapshotCounters {
        let mut total = self.counters;
        for executor in self.live.values() {
            total += executor.storage().counters();
        }
        total
    }

    fn durable_log(&self, id: NodeId) -> DurableLog<'_> {
        match self.live.get(&id) {
            Some(executor) => (executor.storage().offset(), executor.storage().synced()),
            None => (self.down[&id].offset(), &self.down[&id].entries),
        }
    }

    /// Checks a running node's store against the applied log now (see [`crate::safety`]).
    pub fn check_store(&mut self, id: NodeId) {
        if let Some(executor) = self.live.get(&id) {
            let at = executor.raft().log().applied_index();
            self.safety.check_store(id, at, executor.kv());
        }
    }

    /// Raft's safety properties across the whole cluster (see [`crate::safety`]).
    pub fn check_safety(&self) -> Result<(), String> {
        self.safety.check()?;
        for (i, &a) in self.ids.iter().enumerate() {
            for &b in &self.ids[i + 1..] {
                log_matching(a, self.durable_log(a), b, self.durable_log(b))?;
            }
        }
        Ok(())
    }

    /// How many entries a crash keeps of `n` unsynced ones: any number a real disk allows.
    pub fn torn(rng: &mut ChaCha8Rng) -> impl FnMut(usize) -> usize + '_ {
        move |n| rng.gen_range(0..=n)
    }
}

/// The core's log, the state machine and the snapshot image a disk gives a booting node, as the
/// real node's `restore` does.
fn recover(disk: &Disk) -> (RaftLog, KvStore, Option<SnapshotImage>) {
    let Some(snapshot) = &disk.snapshot else {
        let log = RaftLog::recovered(0, 0, disk.entries.clone());
        return (log, KvStore::default(), None);
    };
    let meta = snapshot.meta.clone();
    assert!(
        disk.entries
            .first()
            .is_none_or(|e| e.index == meta.last_index + 1),
        "the disk's log does not start right after its snapshot at {}",
        meta.last_index
    );
    let kv = KvStore::decode(snapshot.data())
        .unwrap_or_else(|why| panic!("the disk's snapshot does not decode: {why}"));
    let log = RaftLog::recovered(meta.last_index, meta.last_term, disk.entries.clone());
    let image = SnapshotImage::new(meta, snapshot.image().to_vec());
    (log, kv, Some(image))
}
