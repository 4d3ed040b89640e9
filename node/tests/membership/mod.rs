//! A small in-memory cluster of pure Raft cores for the membership scenarios: every node has a
//! durable hard state, log and snapshot; messages travel through one FIFO network with directed
//! links that can be cut; every Ready is carried out in the documented order. Nodes that are in
//! no configuration yet (to be added) exist from the start, booted with the initial voters.
//!
//! The cluster watches two safety properties all along: Election Safety (one leader per term)
//! and State Machine Safety (every node applies the same entry at an index, and no node reports
//! a leader replacing its committed entries).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use riptide_node::raft::{Body, Config, Message, Raft, RaftLog, SnapshotImage};
use riptide_node::types::{Entry, HardState, Index, Membership, NodeId, SnapshotMeta, Term};

pub struct Node {
    pub raft: Option<Raft>,
    config: Config,
    hard: HardState,
    /// The durable log after the snapshot.
    log: Vec<Entry>,
    snapshot: Option<SnapshotImage>,
    pub applied: Vec<Entry>,
}

pub struct Cluster {
    pub nodes: BTreeMap<NodeId, Node>,
    net: VecDeque<Message>,
    cut: BTreeSet<(NodeId, NodeId)>,
    leaders: BTreeMap<Term, NodeId>,
    committed: BTreeMap<Index, Term>,
    /// The first Election Safety violation seen.
    pub two_leaders: Option<String>,
    /// The first State Machine Safety violation seen.
    pub lost: Option<String>,
    /// Messages sent, by (sender, kind).
    pub sent: BTreeMap<(NodeId, &'static str), usize>,
    /// Reads that became safe: (node, read id).
    pub reads: Vec<(NodeId, u64)>,
}

impl Cluster {
    /// Nodes `ids`, each booted with `Config::new(id, voters)` (then `tweak`), an empty log.
    pub fn new(ids: &[NodeId], voters: &[NodeId], tweak: impl Fn(&mut Config)) -> Cluster {
        Cluster::with_log(ids, voters, &[], tweak)
    }

    /// Like [`Cluster::new`], every node starting from the durable log `log` (in term 1, no
    /// vote).
    pub fn with_log(
        ids: &[NodeId],
        voters: &[NodeId],
        log: &[Entry],
        tweak: impl Fn(&mut Config),
    ) -> Cluster {
        let mut cluster = Cluster {
            nodes: BTreeMap::new(),
            net: VecDeque::new(),
            cut: BTreeSet::new(),
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            two_leaders: None,
            lost: None,
            sent: BTreeMap::new(),
            reads: Vec::new(),
        };
        let term = log.last().map_or(0, |e| e.term);
        for &id in ids {
            let mut config = Config::new(id, voters.to_vec());
            tweak(&mut config);
            let node = Node {
                raft: None,
                config,
                hard: HardState {
                    term,
                    voted_for: None,
                },
                log: log.to_vec(),
                snapshot: None,
                applied: Vec::new(),
            };
            cluster.nodes.insert(id, node);
            cluster.restart(id);
        }
        cluster
    }

    pub fn raft(&self, id: NodeId) -> &Raft {
        self.nodes[&id].raft.as_ref().expect("a live node")
    }

    pub fn raft_mut(&mut self, id: NodeId) -> &mut Raft {
        self.nodes
            .get_mut(&id)
            .unwrap()
            .raft
            .as_mut()
            .expect("a live node")
    }

    pub fn membership(&self, id: NodeId) -> Membership {
        self.raft(id).membership().clone()
    }

    /// Carries out `id`'s Ready until there is nothing left to do.
    pub fn process(&mut self, id: NodeId) {
        loop {
            let node = self.nodes.get_mut(&id).unwrap();
            let Some(raft) = node.raft.as_mut() else {
                return;
            };
            let ready = raft.ready();
            if ready.is_empty() {
                break;
            }
            if let Some(hs) = ready.hard_state {
                node.hard = hs;
            }
            if let Some(first) = ready.entries.first() {
                node.log.retain(|e| e.index < first.index);
                node.log.extend(ready.entries.iter().cloned());
                raft.persisted(ready.entries.last().unwrap().index);
            }
            for m in ready.messages {
                *self.sent.entry((m.from, m.body.kind())).or_default() += 1;
                self.net.push_back(m);
            }
            assert!(
                ready.install.is_none(),
                "no snapshot transfers in these scenarios"
            );
            self.reads.extend(ready.reads.iter().map(|r| (id, r.id)));
            for entry in ready.committed {
                match self.committed.get(&entry.index) {
                    Some(&term) if term != entry.term => {
                        self.lost.get_or_insert(format!(
                            "n{id} applied {}@{} where {}@{term} was applied",
                            entry.index, entry.term, entry.index
                        ));
                    }
                    _ => {
                        self.committed.insert(entry.index, entry.term);
                    }
                }
                node.applied.push(entry);
            }
        }
        self.observe(id);
    }

    fn observe(&mut self, id: NodeId) {
        let raft = self.raft(id);
        let (term, leader) = (raft.term(), raft.is_leader());
        if let Some(v) = raft.safety_violation() {
            self.lost.get_or_insert(format!("n{id}: {}", v.describe()));
        }
        if leader {
            let first = *self.leaders.entry(term).or_insert(id);
            if first != id {
                self.two_leaders
                    .get_or_insert(format!("n{first} and n{id} both lead term {term}"));
            }
        }
    }

    /// Delivers the oldest message in flight (dropped if its link is cut or its target down).
    fn deliver_one(&mut self, msg: Message) {
        let to = msg.to;
        if self.cut.contains(&(msg.from, to)) {
            return;
        }
        let Some(raft) = self.nodes.get_mut(&to).and_then(|n| n.raft.as_mut()) else {
            return;
        };
        raft.step(msg);
        self.process(to);
    }

    /// Delivers the messages in flight now that `pick` selects (their answers stay in flight);
    /// the others stay where they are.
    pub fn deliver_where(&mut self, pick: impl Fn(&Message) -> bool) {
        let all: Vec<Message> = self.net.drain(..).collect();
        let (picked, kept): (Vec<_>, Vec<_>) = all.into_iter().partition(|m| pick(m));
        self.net.extend(kept);
        for msg in picked {
            self.deliver_one(msg);
        }
    }

    /// Loses the messages in flight that `pick` selects.
    pub fn drop_where(&mut self, pick: impl Fn(&Message) -> bool) {
        self.net.retain(|m| !pick(m));
    }

    /// Delivers until nothing is in flight.
    pub fn stabilize(&mut self) {
        for _ in 0..100_000 {
            let Some(msg) = self.net.pop_front() else {
                return;
            };
            self.deliver_one(msg);
        }
        panic!("the network never went quiet");
    }

    pub fn tick(&mut self, id: NodeId, times: usize) {
        for _ in 0..times {
            if let Some(raft) = self.nodes.get_mut(&id).unwrap().raft.as_mut() {
                raft.tick();
            }
            self.process(id);
        }
    }

    /// `rounds` rounds of: every live node ticks once, then the network goes quiet.
    pub fn run(&mut self, rounds: usize) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for _ in 0..rounds {
            for &id in &ids {
                self.tick(id, 1);
            }
            self.stabilize();
        }
    }

    /// `id` starts an election now, then the network goes quiet.
    pub fn elect(&mut self, id: NodeId) {
        self.raft_mut(id).campaign_now();
        self.process(id);
        self.stabilize();
    }

    pub fn propose(&mut self, id: NodeId, command: &str) -> Option<Index> {
        let index = self.raft_mut(id).propose(command.as_bytes().to_vec()).ok();
        self.process(id);
        index.map(|(i, _)| i)
    }

    /// Cuts the link from `a` to `b` (one way).
    pub fn cut_one_way(&mut self, a: NodeId, b: NodeId) {
        self.cut.insert((a, b));
    }

    /// Cuts every link between the two groups, both ways.
    pub fn partition(&mut self, left: &[NodeId], right: &[NodeId]) {
        for &a in left {
            for &b in right {
                self.cut.insert((a, b));
                self.cut.insert((b, a));
            }
        }
    }

    pub fn isolate(&mut self, id: NodeId) {
        let others: Vec<NodeId> = self.nodes.keys().copied().filter(|&o| o != id).collect();
        self.partition(&[id], &others);
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn crash(&mut self, id: NodeId) {
        self.nodes.get_mut(&id).unwrap().raft = None;
    }

    /// Boots `id` from its durable state: hard state, snapshot, the log after it.
    pub fn restart(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).unwrap();
        let (offset, offset_term) = node
            .snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.meta.last_index, s.meta.last_term));
        let log = RaftLog::recovered(offset, offset_term, node.log.clone());
        let raft = Raft::recover(node.config.clone(), node.hard, log, node.snapshot.clone())
            .expect("a valid config");
        node.raft = Some(raft);
        self.process(id);
    }

    /// `id` snapshots its state machine at its applied index (durably) and its core discards
    /// the log up to there.
    pub fn snapshot(&mut self, id: NodeId) -> Index {
        let node = self.nodes.get_mut(&id).unwrap();
        let raft = node.raft.as_mut().expect("a live node");
        let index = raft.log().applied_index();
        let term = raft.log().term_at(index).expect("an applied entry");
        let meta = SnapshotMeta::new(index, term, &raft.membership_at(index));
        let image = SnapshotImage::new(meta, format!("{} entries", node.applied.len()).into());
        raft.snapshot_taken(image.clone(), 0);
        node.log.retain(|e| e.index > index);
        node.snapshot = Some(image);
        index
    }

    /// The live nodes in the leader role.
    pub fn leaders(&self) -> Vec<NodeId> {
        let live = self
            .nodes
            .iter()
            .filter_map(|(&id, n)| Some((id, n.raft.as_ref()?)));
        live.filter(|(_, r)| r.is_leader())
            .map(|(id, _)| id)
            .collect()
    }

    /// How many messages of `kind` `id` has sent.
    pub fn sent_by(&self, id: NodeId, kind: &'static str) -> usize {
        self.sent.get(&(id, kind)).copied().unwrap_or(0)
    }

    pub fn in_flight(&self) -> &VecDeque<Message> {
        &self.net
    }

    /// Asserts both safety properties held all along.
    pub fn assert_safe(&self) {
        assert_eq!(self.two_leaders, None, "Election Safety");
        assert_eq!(self.lost, None, "State Machine Safety");
    }
}

/// Is `m` an AppendEntries that carries entries?
pub fn carries_entries(m: &Message) -> bool {
    matches!(&m.body, Body::AppendEntries { entries, .. } if !entries.is_empty())
}

/// A configuration of `voters` and `learners`, not joint.
pub fn simple(voters: &[NodeId], learners: &[NodeId]) -> Membership {
    Membership {
        voters: voters.to_vec(),
        learners: learners.to_vec(),
        outgoing: Vec::new(),
        addresses: Default::default(),
    }
}

/// The joint configuration C_old,new.
pub fn joint(new: &[NodeId], old: &[NodeId], learners: &[NodeId]) -> Membership {
    Membership {
        voters: new.to_vec(),
        learners: learners.to_vec(),
        outgoing: old.to_vec(),
        addresses: Default::default(),
    }
}

/// Without pre-vote and check-quorum: elections happen exactly when a test asks for them.
pub fn scripted(config: &mut Config) {
    config.pre_vote = false;
    config.check_quorum = false;
}
