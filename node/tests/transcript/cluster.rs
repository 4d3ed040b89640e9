//! An in-memory cluster of pure Raft cores that records everything it does as a trace.
//!
//! The cluster plays the server's part exactly as [`Ready`](riptide_node::raft::Ready)
//! prescribes: it makes the hard state and entries durable (copies them into [`Durable`]) and
//! reports them persisted, only then puts the messages on the network, then applies the committed
//! entries and records the reads. Messages wait in flight, in send order, until a script delivers
//! or drops them; a cut link drops a message when it is sent and when it would be delivered; a
//! crashed node loses its in-flight input and everything that is not durable. Nothing reads a
//! clock or a global random generator: a script is a pure function of its text.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use riptide_node::raft::{AppendResult, Body, Config, Message, Raft, RaftLog, ReadId, ReadState};
use riptide_node::types::{Entry, HardState, Index, NodeId, Payload, Term};

use super::format;
use super::trace::{id_or_none, role_name, Observed, Trace};

/// How every node of a cluster is configured (the `cluster` command's options).
#[derive(Clone, Debug)]
pub struct Options {
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub seed: u64,
    pub max_batch_entries: usize,
    pub max_inflight: usize,
    pub heartbeat_interval: u32,
    pub election_timeout: (u32, u32),
}

impl Default for Options {
    /// The core's defaults (`Config::new`).
    fn default() -> Options {
        let c = Config::new(1, vec![1]);
        Options {
            pre_vote: c.pre_vote,
            check_quorum: c.check_quorum,
            seed: c.seed,
            max_batch_entries: c.max_batch_entries,
            max_inflight: c.max_inflight,
            heartbeat_interval: c.heartbeat_interval,
            election_timeout: (c.election_timeout_min, c.election_timeout_max),
        }
    }
}

/// What survives a crash of one node.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    pub hard_state: HardState,
    pub entries: Vec<Entry>,
}

/// Which in-flight messages a command acts on. Every field left `None` matches everything.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub from: Option<NodeId>,
    pub to: Option<NodeId>,
    /// A message type as [`Body::kind`] names it, compared case-insensitively.
    pub kind: Option<String>,
    pub term: Option<Term>,
    /// Refused vote or failed append (true), or anything else (false).
    pub rejected: Option<bool>,
    /// An AppendEntries carrying the entry at this index.
    pub carries: Option<Index>,
}

impl Filter {
    pub fn matches(&self, m: &Message) -> bool {
        let rejected = matches!(
            m.body,
            Body::RequestVoteResponse { granted: false, .. }
                | Body::AppendEntriesResponse {
                    result: AppendResult::Reject { .. },
                    ..
                }
        );
        let carries = |index| {
            matches!(&m.body, Body::AppendEntries { entries, .. }
                if entries.iter().any(|e| e.index == index))
        };
        self.from.is_none_or(|x| x == m.from)
            && self.to.is_none_or(|x| x == m.to)
            && (self.kind.as_ref()).is_none_or(|k| k.eq_ignore_ascii_case(m.body.kind()))
            && self.term.is_none_or(|t| t == m.term)
            && self.rejected.is_none_or(|r| r == rejected)
            && self.carries.is_none_or(carries)
    }
}

/// The bound on delivery rounds in one `stabilize`, to report a livelock instead of hanging.
const MAX_ROUNDS: usize = 10_000;

pub struct Cluster {
    options: Options,
    ids: Vec<NodeId>,
    nodes: BTreeMap<NodeId, Raft>,
    pub durable: BTreeMap<NodeId, Durable>,
    pub crashed: BTreeSet<NodeId>,
    /// Messages in flight, in send order.
    pub network: VecDeque<Message>,
    /// Directed links that drop everything: (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Entries each node applied since it last booted, in order.
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    pub reads: BTreeMap<NodeId, Vec<ReadState>>,
    pub failed_reads: BTreeMap<NodeId, Vec<ReadId>>,
    /// Every (term, leader) ever observed, to check Election Safety.
    leaders_by_term: BTreeMap<Term, BTreeSet<NodeId>>,
    observed: BTreeMap<NodeId, Observed>,
    /// The messages delivered by the current command.
    pub delivered: Vec<Message>,
    pub trace: Trace,
}

impl Cluster {
    /// Nodes 1..=n, all fresh.
    pub fn new(n: u64, options: Options) -> Result<Cluster, String> {
        let ids: Vec<NodeId> = (1..=n).collect();
        let mut cluster = Cluster {
            options,
            nodes: BTreeMap::new(),
            durable: ids.iter().map(|&id| (id, Durable::default())).collect(),
            crashed: BTreeSet::new(),
            network: VecDeque::new(),
            cut: BTreeSet::new(),
            applied: BTreeMap::new(),
            reads: BTreeMap::new(),
            failed_reads: BTreeMap::new(),
            leaders_by_term: BTreeMap::new(),
            observed: BTreeMap::new(),
            delivered: Vec::new(),
            trace: Trace::default(),
            ids,
        };
        for id in cluster.ids.clone() {
            cluster.boot(id)?;
        }
        Ok(cluster)
    }

    pub fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    fn config(&self, id: NodeId) -> Config {
        let o = &self.options;
        let mut c = Config::new(id, self.ids.clone());
        c.pre_vote = o.pre_vote;
        c.check_quorum = o.check_quorum;
        c.seed = o.seed;
        c.max_batch_entries = o.max_batch_entries;
        c.max_inflight = o.max_inflight;
        c.heartbeat_interval = o.heartbeat_interval;
        (c.election_timeout_min, c.election_timeout_max) = o.election_timeout;
        c
    }

    /// Starts (or restarts) a node from its durable state and prints its status.
    fn boot(&mut self, id: NodeId) -> Result<(), String> {
        let durable = self.durable[&id].clone();
        let log = RaftLog::recovered(0, 0, durable.entries);
        let raft = Raft::new(self.config(id), durable.hard_state, log)?;
        self.observed.insert(id, Observed::of(&raft));
        self.nodes.insert(id, raft);
        self.applied.insert(id, Vec::new());
        self.crashed.remove(&id);
        let status = self.status(id)?;
        self.trace.event(status);
        self.process(id);
        Ok(())
    }

    pub fn node(&self, id: NodeId) -> Result<&Raft, String> {
        self.nodes
            .get(&id)
            .ok_or_else(|| format!("no node {id} in this cluster"))
    }

    fn live_node(&mut self, id: NodeId) -> Result<&mut Raft, String> {
        if self.crashed.contains(&id) {
            return Err(format!("node {id} is crashed; restart it first"));
        }
        self.nodes
            .get_mut(&id)
            .ok_or_else(|| format!("no node {id} in this cluster"))
    }

    /// Carries out a node's `Ready`s, in the prescribed order, until it has nothing more to do.
    fn process(&mut self, id: NodeId) {
        loop {
            let raft = self.nodes.get_mut(&id).expect("a booted node");
            let ready = raft.ready();
            if ready.is_empty() {
                break;
            }
            let durable = self.durable.get_mut(&id).expect("every node has storage");
            if let Some(hard_state) = ready.hard_state {
                durable.hard_state = hard_state;
            }
            if let (Some(first), Some(last)) = (ready.entries.first(), ready.entries.last()) {
                durable.entries.truncate((first.index - 1) as usize);
                durable.entries.extend(ready.entries.iter().cloned());
                raft.persisted(last.index);
            }
            self.observe(id);
            for msg in ready.messages {
                if self.cut.contains(&(msg.from, msg.to)) {
                    self.trace_message(&msg, " dropped: link cut");
                } else {
                    self.trace_message(&msg, "");
                    self.network.push_back(msg);
                }
            }
            for entry in &ready.committed {
                self.trace
                    .event(format!("n{id} apply {}", format::entry(entry)));
            }
            self.applied.entry(id).or_default().extend(ready.committed);
            for read in &ready.reads {
                self.trace
                    .event(format!("n{id} read {} ready index={}", read.id, read.index));
            }
            for read in &ready.failed_reads {
                self.trace.event(format!("n{id} read {read} failed"));
            }
            self.reads.entry(id).or_default().extend(ready.reads);
            (self.failed_reads.entry(id).or_default()).extend(ready.failed_reads);
        }
        self.observe(id);
        let raft = &self.nodes[&id];
        if raft.is_leader() {
            let leaders = self.leaders_by_term.entry(raft.term()).or_default();
            leaders.insert(id);
        }
    }

    /// Prints what changed in a node's observed state since it was last printed.
    fn observe(&mut self, id: NodeId) {
        let now = Observed::of(&self.nodes[&id]);
        let before = self.observed.insert(id, now.clone());
        if before.as_ref() != Some(&now) {
            self.trace
                .event(format!("n{id} {}", now.describe(before.as_ref())));
        }
    }

    fn trace_message(&mut self, msg: &Message, note: &str) {
        self.trace
            .push(format!("{}{note}", format::message(msg)), true);
    }

    // ---- inputs ---------------------------------------------------------------------------------

    pub fn tick(&mut self, id: NodeId, times: usize) -> Result<(), String> {
        for _ in 0..times {
            self.live_node(id)?.tick();
            self.process(id);
        }
        Ok(())
    }

    pub fn campaign(&mut self, id: NodeId) -> Result<(), String> {
        self.live_node(id)?.campaign_now();
        self.process(id);
        Ok(())
    }

    pub fn propose(&mut self, id: NodeId, command: Vec<u8>) -> Result<(), String> {
        let text = format::command(&command);
        match self.live_node(id)?.propose(command) {
            Ok((index, term)) => self
                .trace
                .event(format!("n{id} propose {text} at {index}@{term}")),
            Err(not_leader) => self.trace.event(format!(
                "n{id} propose {text} refused: not leader (leader={})",
                id_or_none(not_leader.leader_hint)
            )),
        }
        self.process(id);
        Ok(())
    }

    pub fn read(&mut self, id: NodeId, read: ReadId) -> Result<(), String> {
        match self.live_node(id)?.read_index(read) {
            Ok(()) => self.trace.event(format!("n{id} read {read} registered")),
            Err(not_leader) => self.trace.event(format!(
                "n{id} read {read} refused: not leader (leader={})",
                id_or_none(not_leader.leader_hint)
            )),
        }
        self.process(id);
        Ok(())
    }

    /// Steps one message into its recipient, unless the link is cut or the recipient is down.
    pub fn deliver_message(&mut self, msg: Message) -> Result<(), String> {
        let to = msg.to;
        self.node(to)?;
        if self.crashed.contains(&to) {
            self.trace_message(&msg, &format!(" dropped: n{to} is down"));
            return Ok(());
        }
        if self.cut.contains(&(msg.from, msg.to)) {
            self.trace_message(&msg, " dropped: link cut");
            return Ok(());
        }
        self.trace_message(&msg, "");
        self.trace.depth += 1;
        self.nodes.get_mut(&to).expect("checked").step(msg.clone());
        self.delivered.push(msg);
        self.process(to);
        self.trace.depth -= 1;
        Ok(())
    }

    /// Takes the first `limit` in-flight messages that match, leaving the others in order.
    fn take_matching(&mut self, filter: &Filter, limit: Option<usize>) -> Vec<Message> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::new();
        for msg in self.network.drain(..) {
            if filter.matches(&msg) && limit.is_none_or(|n| taken.len() < n) {
                taken.push(msg);
            } else {
                kept.push_back(msg);
            }
        }
        self.network = kept;
        taken
    }

    /// Delivers the matching messages in flight now (the answers they provoke stay in flight).
    pub fn deliver(&mut self, filter: &Filter, limit: Option<usize>) -> Result<(), String> {
        for msg in self.take_matching(filter, limit) {
            self.deliver_message(msg)?;
        }
        Ok(())
    }

    /// Delivers matching messages, answers included, until none is in flight.
    pub fn stabilize(&mut self, filter: &Filter) -> Result<(), String> {
        for _ in 0..MAX_ROUNDS {
            if !self.network.iter().any(|m| filter.matches(m)) {
                return Ok(());
            }
            self.deliver(filter, None)?;
        }
        Err(format!(
            "the network never went quiet in {MAX_ROUNDS} rounds"
        ))
    }

    pub fn drop_messages(&mut self, filter: &Filter, limit: Option<usize>) {
        for msg in self.take_matching(filter, limit) {
            self.trace_message(&msg, " dropped");
        }
    }

    /// `rounds` times: tick every live node once, in id order, then stabilize. Prints only state
    /// changes, applied entries and reads, under the number of the round they happened in.
    pub fn run(&mut self, rounds: usize) -> Result<(), String> {
        self.trace.quiet = true;
        let result = (1..=rounds).try_for_each(|round| {
            self.trace.header = Some(format!("round {round}:"));
            for id in self.ids.clone() {
                if !self.crashed.contains(&id) {
                    self.tick(id, 1)?;
                }
            }
            self.stabilize(&Filter::default())
        });
        self.trace.quiet = false;
        self.trace.header = None;
        result
    }

    // ---- faults ---------------------------------------------------------------------------------

    /// Cuts every link between the groups, both ways. Nodes not named keep all their links.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) -> Result<(), String> {
        for &id in groups.iter().flatten() {
            self.node(id)?;
        }
        for (a, ga) in groups.iter().enumerate() {
            for gb in groups.iter().skip(a + 1) {
                for &x in ga {
                    for &y in gb {
                        self.cut.insert((x, y));
                        self.cut.insert((y, x));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Stops a node: it loses the messages in flight to it and everything not durable.
    pub fn crash(&mut self, id: NodeId) -> Result<(), String> {
        self.live_node(id)?;
        self.crashed.insert(id);
        let lost = self.take_matching(
            &Filter {
                to: Some(id),
                ..Filter::default()
            },
            None,
        );
        for msg in lost {
            self.trace_message(&msg, &format!(" dropped: n{id} is down"));
        }
        Ok(())
    }

    /// Boots a node again from its durable state (crashing it first if it is running).
    pub fn restart(&mut self, id: NodeId) -> Result<(), String> {
        if !self.crashed.contains(&id) {
            self.crash(id)?;
        }
        self.boot(id)
    }

    /// Replaces a node's durable state with a log of the given terms (commands `r1`, `r2`, …) and
    /// boots it from there: how a script sets up a history without replaying it.
    pub fn set_durable(
        &mut self,
        id: NodeId,
        hard_state: HardState,
        terms: &[Term],
    ) -> Result<(), String> {
        self.node(id)?;
        let entries = (terms.iter().enumerate())
            .map(|(k, &term)| Entry {
                term,
                index: k as Index + 1,
                payload: Payload::Command(format!("r{}", k + 1).into_bytes()),
            })
            .collect();
        self.durable.insert(
            id,
            Durable {
                hard_state,
                entries,
            },
        );
        self.crashed.insert(id);
        self.boot(id)
    }

    // ---- views ----------------------------------------------------------------------------------

    /// One line: role, term, vote, leader and log positions (or that the node is down).
    pub fn status(&self, id: NodeId) -> Result<String, String> {
        let raft = self.node(id)?;
        if self.crashed.contains(&id) {
            return Ok(format!("n{id} crashed"));
        }
        let log = raft.log();
        Ok(format!(
            "n{id} {} term={} vote={} leader={} commit={} applied={} last={}@{}",
            role_name(raft.role()),
            raft.term(),
            id_or_none(raft.voted_for()),
            id_or_none(raft.leader()),
            log.commit_index(),
            self.applied[&id].last().map_or(0, |e| e.index),
            log.last_index(),
            log.last_term()
        ))
    }

    /// The live nodes in the leader role.
    pub fn leaders(&self) -> Vec<NodeId> {
        (self.nodes.iter())
            .filter(|(id, raft)| !self.crashed.contains(id) && raft.is_leader())
            .map(|(&id, _)| id)
            .collect()
    }

    /// Raft's safety properties across the whole history of the cluster.
    pub fn check_safety(&self) -> Result<(), String> {
        for (term, leaders) in &self.leaders_by_term {
            if leaders.len() > 1 {
                return Err(format!(
                    "Election Safety: two leaders in term {term}: {leaders:?}"
                ));
            }
        }
        for &a in &self.ids {
            for &b in &self.ids {
                let (x, y) = (&self.applied[&a], &self.applied[&b]);
                let n = x.len().min(y.len());
                if x[..n] != y[..n] {
                    return Err(format!(
                        "State Machine Safety: nodes {a} and {b} applied different entries"
                    ));
                }
                let (x, y) = (&self.durable[&a].entries, &self.durable[&b].entries);
                let n = x.len().min(y.len());
                if let Some(k) = (0..n).rev().find(|&k| x[k].term == y[k].term) {
                    if x[..=k] != y[..=k] {
                        return Err(format!(
                            "Log Matching: nodes {a} and {b} agree on {}@{} but not before",
                            k + 1,
                            x[k].term
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
