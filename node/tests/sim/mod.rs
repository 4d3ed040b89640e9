//! An in-memory cluster of pure Raft cores for scripted and randomised tests.
//!
//! The simulator plays the server's part exactly as `Ready` prescribes: it makes hard state and
//! entries "durable" (copies them into `durable`) before putting messages on the network, applies
//! committed entries and records reads. Nothing here reads a clock or a global RNG; every test is
//! a pure function of its script and seed.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use riptide_node::raft::{Config, Message, Raft, RaftLog, ReadState};
use riptide_node::types::{Entry, HardState, Index, NodeId, Payload, Term};

/// What survives a crash of one node.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    pub hard_state: HardState,
    pub entries: Vec<Entry>,
}

pub struct Sim {
    pub nodes: BTreeMap<NodeId, Raft>,
    pub durable: BTreeMap<NodeId, Durable>,
    pub crashed: BTreeSet<NodeId>,
    /// Messages in flight, in send order.
    pub network: VecDeque<Message>,
    /// Directed links that drop everything: (from, to).
    pub cut: BTreeSet<(NodeId, NodeId)>,
    /// Entries each node applied, in order (survives crashes: it is the observable history).
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    pub reads: BTreeMap<NodeId, Vec<ReadState>>,
    pub failed_reads: BTreeMap<NodeId, Vec<u64>>,
    /// Every (term, leader) ever observed, to check Election Safety.
    pub leaders_by_term: BTreeMap<Term, BTreeSet<NodeId>>,
    pub make_config: Box<dyn Fn(NodeId, Vec<NodeId>) -> Config>,
}

impl Sim {
    /// `n` nodes with ids 1..=n and default configs (seeded by id).
    pub fn new(n: u64) -> Sim {
        Sim::with_config(n, |id, voters| {
            let mut c = Config::new(id, voters);
            c.seed = 42;
            c
        })
    }

    pub fn with_config(n: u64, make: impl Fn(NodeId, Vec<NodeId>) -> Config + 'static) -> Sim {
        let ids: Vec<NodeId> = (1..=n).collect();
        let mut sim = Sim {
            nodes: BTreeMap::new(),
            durable: ids.iter().map(|&id| (id, Durable::default())).collect(),
            crashed: BTreeSet::new(),
            network: VecDeque::new(),
            cut: BTreeSet::new(),
            applied: ids.iter().map(|&id| (id, Vec::new())).collect(),
            reads: BTreeMap::new(),
            failed_reads: BTreeMap::new(),
            leaders_by_term: BTreeMap::new(),
            make_config: Box::new(make),
        };
        for &id in &ids {
            sim.boot(id);
        }
        sim
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.durable.keys().copied().collect()
    }

    /// Replaces a node's durable log (before it boots) to set up a scenario.
    pub fn set_log(&mut self, id: NodeId, terms: &[Term], hard_state: HardState) {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(k, &term)| Entry {
                term,
                index: k as Index + 1,
                payload: Payload::Command(vec![k as u8]),
            })
            .collect();
        self.durable.insert(
            id,
            Durable {
                hard_state,
                entries,
            },
        );
        self.boot(id);
    }

    fn boot(&mut self, id: NodeId) {
        let durable = self.durable[&id].clone();
        let config = (self.make_config)(id, self.ids());
        let raft = Raft::new(
            config,
            durable.hard_state,
            RaftLog::recovered(0, 0, durable.entries),
        )
        .unwrap();
        self.nodes.insert(id, raft);
        self.applied.insert(id, Vec::new());
        self.crashed.remove(&id);
        self.process(id);
    }

    pub fn node(&self, id: NodeId) -> &Raft {
        &self.nodes[&id]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Raft {
        self.nodes.get_mut(&id).unwrap()
    }

    /// Carries out a node's Ready until it has nothing more to do.
    pub fn process(&mut self, id: NodeId) {
        if self.crashed.contains(&id) {
            return;
        }
        loop {
            let raft = self.nodes.get_mut(&id).unwrap();
            let ready = raft.ready();
            if ready.is_empty() {
                break;
            }
            let durable = self.durable.get_mut(&id).unwrap();
            if let Some(hs) = ready.hard_state {
                durable.hard_state = hs;
            }
            if let Some(first) = ready.entries.first() {
                durable.entries.truncate((first.index - 1) as usize);
                durable.entries.extend(ready.entries.iter().cloned());
                let last = ready.entries.last().unwrap().index;
                raft.persisted(last);
            }
            for msg in ready.messages {
                if !self.cut.contains(&(msg.from, msg.to)) {
                    self.network.push_back(msg);
                }
            }
            self.applied.get_mut(&id).unwrap().extend(ready.committed);
            self.reads.entry(id).or_default().extend(ready.reads);
            self.failed_reads
                .entry(id)
                .or_default()
                .extend(ready.failed_reads);
        }
        let raft = &self.nodes[&id];
        if raft.is_leader() {
            self.leaders_by_term
                .entry(raft.term())
                .or_default()
                .insert(id);
        }
    }

    pub fn tick(&mut self, id: NodeId) {
        if self.crashed.contains(&id) {
            return;
        }
        self.node_mut(id).tick();
        self.process(id);
    }

    /// Ticks every live node `n` times, delivering all messages after each round.
    pub fn tick_all(&mut self, n: usize) {
        for _ in 0..n {
            for id in self.ids() {
                self.tick(id);
            }
            self.deliver_all();
        }
    }

    /// Delivers one message (the oldest), if any. Returns it.
    pub fn deliver_one(&mut self) -> Option<Message> {
        let msg = self.network.pop_front()?;
        self.deliver(msg.clone());
        Some(msg)
    }

    pub fn deliver(&mut self, msg: Message) {
        let to = msg.to;
        if self.crashed.contains(&to) || self.cut.contains(&(msg.from, msg.to)) {
            return;
        }
        self.node_mut(to).step(msg);
        self.process(to);
    }

    /// Delivers messages until the network is quiet (bounded, to catch livelock).
    pub fn deliver_all(&mut self) {
        for _ in 0..100_000 {
            if self.deliver_one().is_none() {
                return;
            }
        }
        panic!("network never went quiet");
    }

    /// Drops every message in flight that matches `pred`.
    pub fn drop_where(&mut self, pred: impl Fn(&Message) -> bool) {
        self.network.retain(|m| !pred(m));
    }

    pub fn campaign(&mut self, id: NodeId) {
        self.node_mut(id).campaign_now();
        self.process(id);
    }

    /// Runs `id`'s election to completion on a healthy network and checks it won.
    pub fn elect(&mut self, id: NodeId) {
        self.campaign(id);
        self.deliver_all();
        assert!(
            self.node(id).is_leader(),
            "node {id} should have won the election"
        );
        // Let the no-op commit and the commit index reach the followers.
        let interval = self.node(id).config().heartbeat_interval as usize;
        for _ in 0..interval {
            self.tick(id);
        }
        self.deliver_all();
    }

    /// Cuts every link between the groups (both directions). Nodes not named keep all links.
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        for (a, ga) in groups.iter().enumerate() {
            for (b, gb) in groups.iter().enumerate() {
                if a != b {
                    for &x in ga.iter() {
                        for &y in gb.iter() {
                            self.cut.insert((x, y));
                        }
                    }
                }
            }
        }
    }

    pub fn isolate(&mut self, id: NodeId) {
        let others: Vec<NodeId> = self.ids().into_iter().filter(|&x| x != id).collect();
        self.partition(&[&[id], &others]);
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn crash(&mut self, id: NodeId) {
        self.crashed.insert(id);
        self.network.retain(|m| m.to != id);
    }

    pub fn restart(&mut self, id: NodeId) {
        self.boot(id);
    }

    /// Proposes a command on `id`, returning its index if `id` is the leader.
    pub fn propose(&mut self, id: NodeId, command: &[u8]) -> Option<Index> {
        let result = self
            .node_mut(id)
            .propose(command.to_vec())
            .ok()
            .map(|(index, _)| index);
        self.process(id);
        result
    }

    pub fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .filter(|(id, r)| !self.crashed.contains(id) && r.is_leader())
            .map(|(&id, _)| id)
            .collect()
    }

    pub fn terms(&self, id: NodeId) -> Vec<Term> {
        self.durable[&id].entries.iter().map(|e| e.term).collect()
    }

    /// The commands applied by `id`, in order (no-ops left out).
    pub fn applied_commands(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.applied[&id]
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Command(c) => Some(c.clone()),
                Payload::Noop => None,
            })
            .collect()
    }

    /// Raft's safety properties, checked across the whole cluster. Panics with a description.
    pub fn check_safety(&self) {
        // Election Safety: at most one leader per term.
        for (term, leaders) in &self.leaders_by_term {
            assert!(
                leaders.len() <= 1,
                "two leaders in term {term}: {leaders:?}"
            );
        }
        // State Machine Safety: applied sequences are prefixes of one another.
        let ids = self.ids();
        for &a in &ids {
            for &b in &ids {
                let (x, y) = (&self.applied[&a], &self.applied[&b]);
                let n = x.len().min(y.len());
                assert_eq!(
                    x[..n],
                    y[..n],
                    "nodes {a} and {b} applied different entries"
                );
            }
        }
        // Log Matching: same index and term means identical prefixes.
        for &a in &ids {
            for &b in &ids {
                let (x, y) = (&self.durable[&a].entries, &self.durable[&b].entries);
                let n = x.len().min(y.len());
                if let Some(k) = (0..n).rev().find(|&k| x[k].term == y[k].term) {
                    assert_eq!(
                        x[..=k],
                        y[..=k],
                        "log matching violated between {a} and {b}"
                    );
                }
            }
        }
    }
}

impl Sim {
    /// Delivers everything except messages matching `hold`, which stay queued (in order).
    pub fn deliver_all_but(&mut self, hold: impl Fn(&Message) -> bool) {
        let mut held = VecDeque::new();
        for _ in 0..100_000 {
            let Some(msg) = self.network.pop_front() else {
                break;
            };
            if hold(&msg) {
                held.push_back(msg);
            } else {
                self.deliver(msg);
            }
        }
        self.network = held;
    }

    /// Campaigns and delivers; does not require a win.
    pub fn elect_unchecked(&mut self, id: NodeId) {
        self.campaign(id);
        self.deliver_all();
        let interval = self.node(id).config().heartbeat_interval as usize;
        for _ in 0..interval {
            self.tick(id);
        }
        self.deliver_all();
    }
}
