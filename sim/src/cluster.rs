//! A cluster of real executors ([`riptide_node::server::executor::Executor`]) on simulated
//! disks and a simulated network, with Raft's safety properties checked across it.
//!
//! The cluster does what the real Raft loop does for each node: take a batch of events (peer
//! messages, client requests, ticks), feed them to the executor, and call `process_ready` once.
//! A storage failure inside the Ready (an armed simulated crash) crashes the node there: what was
//! sent before it stays sent, what was not durable is lost.

use std::collections::{BTreeMap, BTreeSet};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use riptide_node::protocol::ClientResponse;
use riptide_node::raft::{Config, Raft, RaftLog};
use riptide_node::server::executor::Executor;
use riptide_node::server::UnsafeBug;
use riptide_node::types::{Entry, NodeId, Payload, Term};

use crate::network::{Answers, Delivery, Outbox, SimNetwork};
use crate::storage::{Disk, SimStorage};

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
}

pub struct Cluster {
    ids: Vec<NodeId>,
    settings: NodeSettings,
    /// Running nodes.
    live: BTreeMap<NodeId, SimExecutor>,
    /// What crashed nodes left on disk.
    down: BTreeMap<NodeId, Disk>,
    pub net: SimNetwork,
    /// Entries each node applied since it last booted, in order.
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    /// Every (term, leader) ever observed, to check Election Safety.
    leaders_by_term: BTreeMap<Term, BTreeSet<NodeId>>,
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
            applied: BTreeMap::new(),
            leaders_by_term: BTreeMap::new(),
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
        c.unsafe_vote_any_log = self.settings.bugs.contains(&UnsafeBug::VoteAnyLog);
        c
    }

    /// Boots a crashed node from its disk, as the real node starts: recover, then one Ready.
    pub fn restart(&mut self, id: NodeId) -> Vec<(usize, ClientResponse)> {
        let Some(disk) = self.down.remove(&id) else {
            return Vec::new();
        };
        let log = RaftLog::recovered(0, 0, disk.entries.clone());
        let raft = Raft::new(self.config(id), disk.hard_state, log).expect("valid config");
        let addrs = self.ids.iter().map(|&n| (n, format!("node-{n}"))).collect();
        let mut executor = Executor::new(
            raft,
            SimStorage::new(disk),
            Outbox::default(),
            Answers::default(),
            addrs,
            &self.settings.bugs,
        );
        executor.record_applied();
        self.live.insert(id, executor);
        self.applied.insert(id, Vec::new());
        self.run_batch(id, Vec::new(), &mut |_| 0)
    }

    /// Crashes a running node between two Readies. `torn` picks how many unsynced entries
    /// survive (there are none between Readies, but the choice is the disk's to make).
    pub fn crash(&mut self, id: NodeId, torn: &mut dyn FnMut(usize) -> usize) {
        if let Some(executor) = self.live.remove(&id) {
            let storage = executor.into_storage();
            self.down.insert(id, storage.crash(torn));
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
        let failed = executor.process_ready().is_err();
        let answers = self.collect(id);
        if failed {
            self.crash(id, torn);
        }
        answers
    }

    /// Puts what the executor sent on the network, and records what it applied.
    fn collect(&mut self, id: NodeId) -> Vec<(usize, ClientResponse)> {
        let executor = self.live.get_mut(&id).expect("running");
        let messages = std::mem::take(&mut executor.network_mut().0);
        let answers = std::mem::take(&mut executor.clients_mut().0);
        let applied = executor.take_applied();
        let raft = executor.raft();
        if raft.is_leader() {
            self.leaders_by_term
                .entry(raft.term())
                .or_default()
                .insert(id);
        }
        self.applied.entry(id).or_default().extend(applied);
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

    /// The commands `id` applied since it booted, in order (no-ops left out).
    pub fn applied_commands(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.applied[&id]
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Command(c) => Some(c.clone()),
                Payload::Noop => None,
            })
            .collect()
    }

    fn durable_log(&self, id: NodeId) -> &[Entry] {
        match self.live.get(&id) {
            Some(executor) => executor.storage().synced(),
            None => &self.down[&id].entries,
        }
    }

    /// Raft's safety properties across the whole cluster (paper §5.2, §5.3, §5.4).
    pub fn check_safety(&self) -> Result<(), String> {
        for (term, leaders) in &self.leaders_by_term {
            if leaders.len() > 1 {
                return Err(format!("two leaders in term {term}: {leaders:?}"));
            }
        }
        for (i, &a) in self.ids.iter().enumerate() {
            for &b in &self.ids[i + 1..] {
                let (x, y) = (&self.applied[&a], &self.applied[&b]);
                let n = x.len().min(y.len());
                if let Some(k) = (0..n).find(|&k| x[k] != y[k]) {
                    return Err(format!(
                        "state machine safety: nodes {a} and {b} applied different entries at \
                         position {k}: {:?} and {:?}",
                        x[k], y[k]
                    ));
                }
                let (x, y) = (self.durable_log(a), self.durable_log(b));
                let n = x.len().min(y.len());
                if let Some(k) = (0..n).rev().find(|&k| x[k].term == y[k].term) {
                    if x[..=k] != y[..=k] {
                        return Err(format!(
                            "log matching: nodes {a} and {b} agree on the term of index {} but \
                             not on the entries up to it",
                            k + 1
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// How many entries a crash keeps of `n` unsynced ones: any number a real disk allows.
    pub fn torn(rng: &mut ChaCha8Rng) -> impl FnMut(usize) -> usize + '_ {
        move |n| rng.gen_range(0..=n)
    }
}
