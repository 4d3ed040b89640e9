//! The simulated network: one inbox per node holding peer messages and client requests, links
//! that can be cut, and the executor's two outputs ([`Outbox`] for peer messages, [`Answers`]
//! for client answers).
//!
//! Faults: a cut link drops what crosses it (when sent and when delivered); a message can be
//! lost or duplicated at random; a node takes its inbox in order except for mild reordering
//! (each event is one of the first few queued). Clients are outside every partition, as the
//! riptide runner's clients are (they connect from 127.0.0.1), and TCP never duplicates a
//! request, so only peer messages are duplicated.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use riptide_node::protocol::{ClientRequest, ClientResponse};
use riptide_node::raft::Message;
use riptide_node::server::executor::{Clients, Network};
use riptide_node::types::NodeId;

/// How far out of order a node may take its inbox: each event taken is one of the first this
/// many. Mild, like the old simulation: enough to reorder pipelined AppendEntries.
const REORDER_WINDOW: usize = 4;

/// What reaches a node.
#[derive(Clone, Debug)]
pub enum Delivery {
    Peer(Message),
    /// A request from the simulated client in slot `client`.
    Client {
        request: ClientRequest,
        client: usize,
    },
}

/// The executor's [`Network`]: messages wait here until the cluster puts them on the wire.
#[derive(Debug, Default)]
pub struct Outbox(pub Vec<Message>);

impl Network for Outbox {
    fn send(&mut self, msg: Message) {
        self.0.push(msg);
    }
}

/// The executor's [`Clients`]: answers wait here, tagged with the client slot, until the cluster
/// hands them to the clients.
#[derive(Debug, Default)]
pub struct Answers(pub Vec<(usize, ClientResponse)>);

impl Clients for Answers {
    type Reply = usize;
    fn answer(&mut self, client: usize, response: ClientResponse) {
        self.0.push((client, response));
    }
}

#[derive(Debug)]
pub struct SimNetwork {
    inboxes: BTreeMap<NodeId, VecDeque<Delivery>>,
    /// Directed links that drop everything: (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
}

impl SimNetwork {
    pub fn new(ids: &[NodeId]) -> SimNetwork {
        SimNetwork {
            inboxes: ids.iter().map(|&id| (id, VecDeque::new())).collect(),
            cut: BTreeSet::new(),
        }
    }

    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.contains(&(from, to))
    }

    pub fn send_peer(&mut self, msg: Message) {
        if !self.is_cut(msg.from, msg.to) {
            if let Some(inbox) = self.inboxes.get_mut(&msg.to) {
                inbox.push_back(Delivery::Peer(msg));
            }
        }
    }

    pub fn send_client(&mut self, to: NodeId, request: ClientRequest, client: usize) {
        if let Some(inbox) = self.inboxes.get_mut(&to) {
            inbox.push_back(Delivery::Client { request, client });
        }
    }

    pub fn pending(&self, id: NodeId) -> usize {
        self.inboxes.get(&id).map_or(0, VecDeque::len)
    }

    pub fn total_pending(&self) -> usize {
        self.inboxes.values().map(VecDeque::len).sum()
    }

    /// Takes up to `n` deliveries for `id`, mildly reordered.
    pub fn take(&mut self, id: NodeId, n: usize, rng: &mut ChaCha8Rng) -> Vec<Delivery> {
        let inbox = self.inboxes.get_mut(&id).expect("a member");
        let mut batch = Vec::with_capacity(n.min(inbox.len()));
        while batch.len() < n && !inbox.is_empty() {
            let k = rng.gen_range(0..inbox.len().min(REORDER_WINDOW));
            batch.push(inbox.remove(k).expect("in range"));
        }
        batch
    }

    /// Takes everything queued for `id`, in order.
    pub fn take_all(&mut self, id: NodeId) -> Vec<Delivery> {
        self.inboxes
            .get_mut(&id)
            .map(|inbox| inbox.drain(..).collect())
            .unwrap_or_default()
    }

    /// A crashed node's connections are gone, and what was queued for it with them.
    pub fn clear(&mut self, id: NodeId) -> Vec<Delivery> {
        self.take_all(id)
    }

    /// A random queued delivery: (node, position).
    fn pick(&self, rng: &mut ChaCha8Rng) -> Option<(NodeId, usize)> {
        let total = self.total_pending();
        if total == 0 {
            return None;
        }
        let mut k = rng.gen_range(0..total);
        for (&id, inbox) in &self.inboxes {
            if k < inbox.len() {
                return Some((id, k));
            }
            k -= inbox.len();
        }
        None
    }

    /// Loses one queued delivery at random (a client request lost this way is a lost
    /// connection: the client never hears back).
    pub fn lose_one(&mut self, rng: &mut ChaCha8Rng) {
        if let Some((id, k)) = self.pick(rng) {
            self.inboxes.get_mut(&id).expect("a member").remove(k);
        }
    }

    /// Duplicates one queued peer message at random; the copy arrives late.
    pub fn duplicate_one(&mut self, rng: &mut ChaCha8Rng) {
        if let Some((id, k)) = self.pick(rng) {
            let inbox = self.inboxes.get_mut(&id).expect("a member");
            if let Delivery::Peer(msg) = &inbox[k] {
                let copy = Delivery::Peer(msg.clone());
                inbox.push_back(copy);
            }
        }
    }

    /// Cuts every link between the two groups, both ways.
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId]) {
        for &x in a {
            for &y in b {
                self.cut.insert((x, y));
                self.cut.insert((y, x));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }
}
