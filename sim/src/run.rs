//! One seeded run: a random schedule of batches, client operations and faults, then a healed
//! cluster that must converge, with every check applied. Nothing reads a clock or a global RNG:
//! the seed decides everything, so a failing seed fails again, exactly, every time.

use std::collections::BTreeMap;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use riptide_node::kv::Command;
use riptide_node::protocol::{ClientOp, ClientResponse, ClientResult, WriteOp};
use riptide_node::server::raft_loop::MAX_BATCH_EVENTS;
use riptide_node::types::{NodeId, Payload};

use crate::client::{Action, SimClient};
use crate::cluster::{Cluster, Input, NodeSettings};
use crate::config::SimConfig;
use crate::history::{Completion, History};
use crate::storage::SnapshotCounters;

/// What a run did, to show the simulation exercises what it claims.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub ops: usize,
    pub oks: usize,
    pub fails: usize,
    pub infos: usize,
    /// The most events (peer messages, client requests, ticks) one Ready covered.
    pub largest_batch: usize,
    pub crashes: usize,
    /// Crashes that struck inside a Ready, at a storage call.
    pub crashes_in_ready: usize,
    /// `Indeterminate` answers: writes whose log index a newer leader reused.
    pub indeterminate: usize,
    /// The highest term any node reached.
    pub max_term: u64,
    /// Snapshots taken, sent, installed, lost in crashes, restarted from.
    pub snapshots: SnapshotCounters,
}

/// A failed run: which seed, what went wrong, and the history so far (riptide JSONL).
#[derive(Clone, Debug)]
pub struct Failure {
    pub seed: u64,
    pub message: String,
    pub history: String,
}

/// Runs one seed. Deterministic: the same seed and config give the same result.
pub fn run_seed(seed: u64, config: &SimConfig) -> Result<RunStats, Failure> {
    let mut run = Run::new(seed, config.clone());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.run()));
    let message = match result {
        Ok(Ok(())) => return Ok(run.stats()),
        Ok(Err(message)) => message,
        Err(panic) => match panic.downcast_ref::<String>() {
            Some(s) => format!("panic: {s}"),
            None => format!("panic: {:?}", panic.downcast_ref::<&str>()),
        },
    };
    Err(Failure {
        seed,
        message,
        history: run.history.text().to_string(),
    })
}

struct Run {
    config: SimConfig,
    rng: ChaCha8Rng,
    cluster: Cluster,
    clients: Vec<SimClient>,
    history: History,
    /// The simulation's clock, in steps.
    now: u64,
    next_process: u64,
    next_value: u64,
    /// How each client slot's latest operation ended.
    last_completion: BTreeMap<usize, Completion>,
    /// Nodes whose loop is stalled, and until when.
    stalled_until: BTreeMap<NodeId, u64>,
    /// With synced clocks: the shared clock's tick each node has reached.
    ticked: BTreeMap<NodeId, u64>,
    stats: RunStats,
}

impl Run {
    fn new(seed: u64, config: SimConfig) -> Run {
        let settings = NodeSettings {
            seed,
            pre_vote: config.pre_vote,
            bugs: config.bugs.clone(),
            snapshots: config.snapshots,
            tweaks: config.tweaks,
        };
        let cluster = Cluster::new(config.nodes, settings);
        let ids = cluster.ids().to_vec();
        let clients = (0..config.clients + config.readers)
            .map(|k| SimClient::new(k as u64, ids.clone(), ids[k % ids.len()]))
            .collect();
        Run {
            rng: ChaCha8Rng::seed_from_u64(seed),
            next_process: (config.clients + config.readers) as u64,
            config,
            cluster,
            clients,
            history: History::default(),
            now: 0,
            next_value: 0,
            last_completion: BTreeMap::new(),
            stalled_until: BTreeMap::new(),
            ticked: BTreeMap::new(),
            stats: RunStats::default(),
        }
    }

    fn stats(&self) -> RunStats {
        RunStats {
            ops: self.history.invokes,
            oks: self.history.oks,
            fails: self.history.fails,
            infos: self.history.infos,
            max_term: self.cluster.max_term(),
            snapshots: self.cluster.snapshot_counters(),
            ..self.stats.clone()
        }
    }

    fn run(&mut self) -> Result<(), String> {
        for step in 0..self.config.steps {
            self.step();
            if step % 64 == 0 {
                self.cluster.check_safety()?;
            }
        }
        self.cluster.check_safety()?;
        self.converge()?;
        self.history.check()
    }

    /// One step of the random schedule.
    fn step(&mut self) {
        self.now += 1;
        match self.rng.gen_range(0..1000) {
            0..=149 => self.start_some_op(),
            150..=154 => self.burst(),
            155..=194 => self.cluster.net.lose_one(&mut self.rng),
            195..=214 => self.cluster.net.duplicate_one(&mut self.rng),
            215..=219 => self.crash_some(),
            220..=221 => self.stall_some(),
            222..=251 => {
                if let Some(&id) = self.cluster.crashed().first() {
                    self.ticked.remove(&id);
                    let answers = self.cluster.restart(id);
                    self.route(answers);
                }
            }
            252..=271 => self.partition(),
            272..=301 => self.cluster.net.heal(),
            _ => {
                let id = self.random_node();
                self.node_batch(id);
            }
        }
        self.poll_clients();
    }

    fn random_node(&mut self) -> NodeId {
        let ids = self.cluster.ids();
        ids[self.rng.gen_range(0..ids.len())]
    }

    /// How many queued deliveries one iteration of the node's loop takes. The real loop takes
    /// everything queued, up to [`MAX_BATCH_EVENTS`] after the first; half the time the
    /// simulation does too, otherwise it takes a few, as if the rest had not arrived yet.
    fn batch_size(&mut self) -> usize {
        match self.rng.gen_range(0..100) {
            0..=49 => MAX_BATCH_EVENTS + 1,
            50..=79 => self.rng.gen_range(1..=3),
            80..=94 => self.rng.gen_range(4..=16),
            _ => self.rng.gen_range(17..=MAX_BATCH_EVENTS + 1),
        }
    }

    /// One iteration of a node's loop: a batch of deliveries with the ticks that fell due
    /// mixed in, then one Ready.
    fn node_batch(&mut self, id: NodeId) {
        if !self.cluster.is_up(id) || self.stalled_until.get(&id).is_some_and(|&t| t > self.now) {
            return;
        }
        let n = self.batch_size();
        let mut batch: Vec<Input> = self
            .cluster
            .net
            .take(id, n, &mut self.rng)
            .into_iter()
            .map(Input::Deliver)
            .collect();
        if let Some(steps_per_tick) = self.config.tweaks.synced_clocks {
            let due = self.due_ticks(id, steps_per_tick);
            batch.splice(0..0, (0..due).map(|_| Input::Tick));
        } else {
            let ticks = match self.rng.gen_range(0..10) {
                0..=4 => 0,
                5..=8 => 1,
                _ => self.rng.gen_range(2..=5), // a stalled loop catching up
            };
            for _ in 0..ticks {
                let at = self.rng.gen_range(0..=batch.len());
                batch.insert(at, Input::Tick);
            }
        }
        self.stats.largest_batch = self.stats.largest_batch.max(batch.len());
        let armed = self.cluster.crash_armed(id);
        let answers = self
            .cluster
            .run_batch(id, batch, &mut Cluster::torn(&mut self.rng));
        if armed && !self.cluster.is_up(id) {
            self.stats.crashes_in_ready += 1;
        }
        self.after_crash_of(id);
        self.route(answers);
    }

    /// With synced clocks: the ticks of the shared clock `id` has not had yet (a node that just
    /// booted starts from now).
    fn due_ticks(&mut self, id: NodeId, steps_per_tick: u64) -> u64 {
        let now = self.now / steps_per_tick;
        let last = self.ticked.insert(id, now).unwrap_or(now);
        now - last
    }

    /// Crashes a node, now or at a storage call inside one of its next Readies, keeping a
    /// majority up.
    fn crash_some(&mut self) {
        let ids = self.cluster.ids().to_vec();
        let armed = ids
            .iter()
            .filter(|&&id| self.cluster.crash_armed(id))
            .count();
        let down = self.cluster.crashed().len() + armed;
        if down >= (ids.len() - 1) / 2 {
            return;
        }
        let up: Vec<NodeId> = ids
            .into_iter()
            .filter(|&id| self.cluster.is_up(id) && !self.cluster.crash_armed(id))
            .collect();
        let Some(&id) = up.choose(&mut self.rng) else {
            return;
        };
        self.stats.crashes += 1;
        if self.rng.gen_bool(0.5) {
            self.cluster.crash(id, &mut Cluster::torn(&mut self.rng));
            self.after_crash_of(id);
        } else {
            let calls = self.rng.gen_range(0..=3);
            self.cluster.arm_crash(id, calls);
        }
    }

    /// A node's loop stops taking events for a while (a long fsync, a SIGSTOP, a starved
    /// thread): its inbox fills, and it takes a large batch when it resumes.
    fn stall_some(&mut self) {
        let id = self.random_node();
        let until = self.now + self.rng.gen_range(20..=300);
        self.stalled_until.insert(id, until);
    }

    /// The connections to a crashed node break: its clients learn their attempt is lost.
    fn after_crash_of(&mut self, id: NodeId) {
        if self.cluster.is_up(id) {
            return;
        }
        for slot in 0..self.clients.len() {
            let action = self.clients[slot].lost(id, self.now);
            self.act(slot, action);
        }
    }

    fn partition(&mut self) {
        let mut ids = self.cluster.ids().to_vec();
        ids.shuffle(&mut self.rng);
        let cut = self.rng.gen_range(1..ids.len());
        let (a, b) = ids.split_at(cut);
        self.cluster.net.partition(a, b);
    }

    fn new_op(&mut self, slot: usize) -> ClientOp {
        let key = format!("k{}", self.rng.gen_range(0..self.config.keys));
        self.next_value += 1;
        let n = self.next_value;
        if slot >= self.config.clients {
            return ClientOp::Get { key };
        }
        match self.rng.gen_range(0..100) {
            0..=34 => ClientOp::Get { key },
            35..=59 => ClientOp::Write(WriteOp::Put {
                key,
                value: format!("v{n}"),
            }),
            60..=79 => ClientOp::Write(WriteOp::Append {
                key,
                suffix: format!("a{n}."),
            }),
            _ => {
                let guess = format!("v{}", self.rng.gen_range(0..n));
                let expected = self.clients[slot].known.get(&key).cloned();
                ClientOp::Write(WriteOp::Cas {
                    key,
                    expected: expected.unwrap_or(guess),
                    new: format!("v{n}"),
                })
            }
        }
    }

    fn start_some_op(&mut self) {
        let idle: Vec<usize> = (0..self.clients.len())
            .filter(|&k| self.clients[k].is_idle())
            .collect();
        if let Some(&slot) = idle.choose(&mut self.rng) {
            let op = self.new_op(slot);
            self.start_op(slot, op);
        }
    }

    /// A burst of load: every idle client starts an operation at once.
    fn burst(&mut self) {
        for slot in 0..self.clients.len() {
            if self.clients[slot].is_idle() {
                let op = self.new_op(slot);
                self.start_op(slot, op);
            }
        }
    }

    fn start_op(&mut self, slot: usize, op: ClientOp) {
        self.history.invoke(self.clients[slot].process, &op);
        let action = self.clients[slot].start(op, self.now);
        self.act(slot, action);
    }

    fn act(&mut self, slot: usize, action: Action) {
        match action {
            Action::Wait => {}
            Action::Send { to, request } if self.cluster.is_up(to) => {
                self.cluster.net.send_client(to, request, slot)
            }
            Action::Send { .. } => {
                let action = self.clients[slot].not_sent(self.now);
                self.act(slot, action);
            }
            Action::Done { op, completion } => {
                let client = &mut self.clients[slot];
                self.history.complete(client.process, &op, &completion);
                self.last_completion.insert(slot, completion.clone());
                if completion == Completion::Info {
                    client.renew(self.next_process);
                    self.next_process += 1;
                }
            }
        }
    }

    fn route(&mut self, answers: Vec<(usize, ClientResponse)>) {
        for (slot, response) in answers {
            if matches!(response.result, ClientResult::Indeterminate { .. }) {
                self.stats.indeterminate += 1;
            }
            let action = self.clients[slot].on_answer(response, self.now);
            self.act(slot, action);
        }
    }

    fn poll_clients(&mut self) {
        for slot in 0..self.clients.len() {
            let action = self.clients[slot].poll(self.now);
            self.act(slot, action);
        }
    }
}

/// The faults stop: heal, restart everyone, and the cluster must converge (the old simulation's
/// liveness assertions, now through the client path).
impl Run {
    fn converge(&mut self) -> Result<(), String> {
        self.cluster.net.heal();
        self.stalled_until.clear();
        for id in self.cluster.ids().to_vec() {
            if self.cluster.crash_armed(id) {
                self.cluster.crash(id, &mut Cluster::torn(&mut self.rng));
                self.after_crash_of(id);
            }
        }
        for id in self.cluster.crashed() {
            let answers = self.cluster.restart(id);
            self.route(answers);
        }
        // Long enough for every operation in flight to finish or time out.
        self.tick_all(300)?;
        let leaders = self.cluster.leaders();
        let [leader] = leaders[..] else {
            return Err(format!("one leader after healing, got {leaders:?}"));
        };
        let final_write = self.final_write(leader)?;
        let applied = self
            .cluster
            .node(leader)
            .map_or(0, |n| n.raft().log().applied_index());
        let reference: Vec<&[u8]> = self.cluster.applied_log()[..applied as usize]
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Command(c) => Some(&c[..]),
                Payload::Noop | Payload::Config(_) => None,
            })
            .collect();
        let last = reference.last().map(|c| Command::decode(c).map(|c| c.op));
        if last.as_ref().and_then(|r| r.as_ref().ok()) != Some(&final_write) {
            return Err(format!(
                "the final write is the last command the leader applied; got {last:?}"
            ));
        }
        let mut unique = reference.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != reference.len() {
            return Err("a command applied twice".into());
        }
        self.converged(leader, applied)?;
        self.final_reads()?;
        self.cluster.check_safety()
    }

    /// Every node applied what the leader did (its store was checked at every step against the
    /// applied log, which holds every command once).
    fn converged(&self, leader: NodeId, applied: u64) -> Result<(), String> {
        for &id in self.cluster.ids() {
            let at = self
                .cluster
                .node(id)
                .map(|n| n.raft().log().applied_index());
            if at != Some(applied) {
                return Err(format!(
                    "node {id} diverged from the leader {leader}: applied up to {at:?}, the \
                     leader {applied}"
                ));
            }
        }
        Ok(())
    }

    /// A fresh client writes once more; it must be told `ok`.
    fn final_write(&mut self, leader: NodeId) -> Result<WriteOp, String> {
        let ids = self.cluster.ids().to_vec();
        self.clients
            .push(SimClient::new(self.next_process, ids, leader));
        self.next_process += 1;
        let slot = self.clients.len() - 1;
        let (key, value) = ("k0".to_string(), "final".to_string());
        let op = ClientOp::Write(WriteOp::Put {
            key: key.clone(),
            value: value.clone(),
        });
        self.start_op(slot, op);
        self.tick_all(20)?;
        if self.last_completion.get(&slot) != Some(&Completion::Ok(None)) {
            return Err("the final write was not acknowledged".into());
        }
        Ok(WriteOp::Put { key, value })
    }

    /// Reads every key once more, so that a lost write shows in the history.
    fn final_reads(&mut self) -> Result<(), String> {
        let slot = self.clients.len() - 1;
        for k in 0..self.config.keys {
            let key = format!("k{k}");
            self.start_op(slot, ClientOp::Get { key });
            self.tick_all(10)?;
        }
        Ok(())
    }

    /// `rounds` times: every node takes a tick and its inbox, then messages flow until the
    /// network is quiet.
    fn tick_all(&mut self, rounds: usize) -> Result<(), String> {
        for _ in 0..rounds {
            self.now += 2;
            for id in self.cluster.ids().to_vec() {
                let mut batch = vec![Input::Tick];
                batch.extend(
                    self.cluster
                        .net
                        .take_all(id)
                        .into_iter()
                        .map(Input::Deliver),
                );
                let answers = self.cluster.run_batch(id, batch, &mut |_| 0);
                self.route(answers);
            }
            self.settle()?;
            self.poll_clients();
            self.settle()?;
        }
        Ok(())
    }

    /// Delivers everything queued, node by node, until the network is quiet.
    fn settle(&mut self) -> Result<(), String> {
        for _ in 0..10_000 {
            if self.cluster.net.total_pending() == 0 {
                return Ok(());
            }
            for id in self.cluster.ids().to_vec() {
                if self.cluster.net.pending(id) > 0 {
                    let batch = self.cluster.net.take_all(id);
                    let batch = batch.into_iter().map(Input::Deliver).collect();
                    let answers = self.cluster.run_batch(id, batch, &mut |_| 0);
                    self.route(answers);
                }
            }
        }
        Err("the network never went quiet".into())
    }
}
