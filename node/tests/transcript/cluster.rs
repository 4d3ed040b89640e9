//! An in-memory cluster of pure Raft cores that records everything it does as a trace.
//!
//! The cluster plays the server's part exactly as [`Ready`](riptide_node::raft::Ready)
//! prescribes: it makes the hard state and entries durable (copies them into [`Durable`]) and
//! reports them persisted, only then puts the messages on the network, then applies the committed
//! entries, writes incoming snapshot chunks and installs snapshots (see `snapshots.rs`), and
//! records the reads. Messages wait in flight, in send order, until a script delivers, drops or
//! duplicates them; a cut link drops a message when it is sent and when it would be delivered; a
//! crashed node loses its in-flight input, its incoming snapshot buffer and everything that is not
//! durable. Nothing reads a clock or a global random generator: a script is a pure function of its
//! text.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use riptide_node::raft::{
    Config, Message, Raft, RaftLog, ReadId, ReadMode, ReadState, Ready, SnapshotImage,
};
use riptide_node::server::UnsafeBug;
use riptide_node::types::{Entry, HardState, Index, NodeId, Payload, Term};

pub use super::filter::Filter;
use super::format;
use super::snapshots::decode_state;
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
    pub max_snapshot_chunk: usize,
    /// Deliberate bugs of the core (`UnsafeBug` names), to show what each breaks.
    pub bugs: Vec<UnsafeBug>,
    pub apply_per_tick: Option<u32>,
    /// Lease reads instead of ReadIndex.
    pub lease: bool,
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
            max_snapshot_chunk: c.max_snapshot_chunk,
            bugs: Vec::new(),
            apply_per_tick: c.apply_per_tick,
            lease: false,
        }
    }
}

/// What survives a crash of one node: the hard state, the newest snapshot taken or installed,
/// and the log after the snapshot (`entries[k].index == snapshot index + 1 + k`).
#[derive(Clone, Debug, Default)]
pub struct Durable {
    pub hard_state: HardState,
    pub snapshot: Option<SnapshotImage>,
    pub entries: Vec<Entry>,
}

/// The bound on delivery rounds in one `stabilize`, to report a livelock instead of hanging.
const MAX_ROUNDS: usize = 10_000;

pub struct Cluster {
    options: Options,
    ids: Vec<NodeId>,
    pub(super) nodes: BTreeMap<NodeId, Raft>,
    pub durable: BTreeMap<NodeId, Durable>,
    pub crashed: BTreeSet<NodeId>,
    /// Messages in flight, in send order.
    pub network: VecDeque<Message>,
    /// Directed links that drop everything: (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Each node's state machine: the entries it applied, in order, from index 1 (a snapshot it
    /// booted from or installed counts as having applied what the snapshot covers).
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    /// The snapshot bytes each node received so far (its temp file); lost in a crash.
    pub incoming: BTreeMap<NodeId, Vec<u8>>,
    /// How many snapshots each node installed from a leader.
    pub installs: BTreeMap<NodeId, u64>,
    /// What the harness saw go wrong while carrying out a `Ready` (an entry applied out of
    /// order); `assert safety` reports them.
    pub(super) violations: Vec<String>,
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
            incoming: BTreeMap::new(),
            installs: BTreeMap::new(),
            violations: Vec::new(),
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
        c.max_snapshot_chunk = o.max_snapshot_chunk;
        c.apply_per_tick = o.apply_per_tick;
        if o.lease {
            c.read_mode = ReadMode::Lease;
        }
        UnsafeBug::configure(&o.bugs, &mut c);
        c
    }

    /// Starts (or restarts) a node from its durable state and prints its status. With a snapshot,
    /// the log starts after it, the core holds it to send, and the state machine is loaded from it.
    fn boot(&mut self, id: NodeId) -> Result<(), String> {
        let durable = self.durable[&id].clone();
        let (log, state) = match &durable.snapshot {
            Some(image) => {
                let meta = &image.meta;
                let log = RaftLog::recovered(meta.last_index, meta.last_term, durable.entries);
                (log, decode_state(&image.bytes)?)
            }
            None => (RaftLog::recovered(0, 0, durable.entries), Vec::new()),
        };
        let mut raft = Raft::new(self.config(id), durable.hard_state, log)?;
        if let Some(image) = durable.snapshot {
            raft.set_snapshot(image);
        }
        self.observed.insert(id, Observed::of(&raft));
        self.nodes.insert(id, raft);
        self.applied.insert(id, state);
        self.incoming.remove(&id);
        self.crashed.remove(&id);
        let status = self.status(id)?;
        self.trace.event(status);
        self.process(id)
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
    pub(super) fn process(&mut self, id: NodeId) -> Result<(), String> {
        loop {
            let raft = self.nodes.get_mut(&id).expect("a booted node");
            let ready = raft.ready();
            if ready.is_empty() {
                break;
            }
            self.persist(id, &ready);
            self.observe(id);
            for msg in ready.messages {
                if self.cut.contains(&(msg.from, msg.to)) {
                    self.trace_message(&msg, " dropped: link cut");
                } else {
                    self.trace_message(&msg, "");
                    self.network.push_back(msg);
                }
            }
            self.apply(id, ready.committed);
            self.write_chunks(id, ready.snapshot_chunks)?;
            if let Some(request) = ready.install {
                self.install(id, request)?;
            }
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
        Ok(())
    }

    /// Steps 1 and 2 of a `Ready`: the hard state, then the entries (replacing the stored ones
    /// from the first new index on), then tells the core they are durable.
    fn persist(&mut self, id: NodeId, ready: &Ready) {
        let durable = self.durable.get_mut(&id).expect("every node has storage");
        if let Some(hard_state) = ready.hard_state {
            durable.hard_state = hard_state;
        }
        if let (Some(first), Some(last)) = (ready.entries.first(), ready.entries.last()) {
            let offset = durable.offset().0;
            // Entries the snapshot already covers stay folded into it.
            let keep = first.index.saturating_sub(offset + 1) as usize;
            durable.entries.truncate(keep);
            let new = ready.entries.iter().filter(|e| e.index > offset);
            durable.entries.extend(new.cloned());
            let raft = self.nodes.get_mut(&id).expect("a booted node");
            raft.persisted(last.index);
        }
    }

    /// Step 4: the state machine applies the committed entries, each right after the one before.
    fn apply(&mut self, id: NodeId, committed: Vec<Entry>) {
        let applied = self.applied.entry(id).or_default();
        for entry in committed {
            self.trace
                .event(format!("n{id} apply {}", format::entry(&entry)));
            let expected = applied.last().map_or(0, |e| e.index) + 1;
            if entry.index != expected {
                self.violations.push(format!(
                    "n{id} applied {} when its state machine expected {expected}",
                    format::entry(&entry)
                ));
            }
            applied.push(entry);
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
            self.process(id)?;
        }
        Ok(())
    }

    /// The node's loop missed `ticks` ticks (a paused process) and reports them at once, as the
    /// server does with [`riptide_node::raft::Raft::skip_ticks`].
    pub fn skip_ticks(&mut self, id: NodeId, ticks: u64) -> Result<(), String> {
        self.live_node(id)?.skip_ticks(ticks);
        self.process(id)
    }

    pub fn campaign(&mut self, id: NodeId) -> Result<(), String> {
        self.live_node(id)?.campaign_now();
        self.process(id)
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
        self.process(id)
    }

    pub fn read(&mut self, id: NodeId, read: ReadId) -> Result<(), String> {
        match self.live_node(id)?.read_index(read) {
            Ok(()) => self.trace.event(format!("n{id} read {read} registered")),
            Err(not_leader) => self.trace.event(format!(
                "n{id} read {read} refused: not leader (leader={})",
                id_or_none(not_leader.leader_hint)
            )),
        }
        self.process(id)
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
        let result = self.process(to);
        self.trace.depth -= 1;
        result
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

    /// Puts a copy of each matching in-flight message (the first `limit`) at the end of the
    /// network: the network delivered it twice.
    pub fn duplicate(&mut self, filter: &Filter, limit: Option<usize>) {
        let copies: Vec<Message> = (self.network.iter())
            .filter(|m| filter.matches(m))
            .take(limit.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        for msg in copies {
            self.trace_message(&msg, " duplicated");
            self.network.push_back(msg);
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

    /// Stops a node: it loses the messages in flight to it and everything not durable (its
    /// incoming snapshot buffer too).
    pub fn crash(&mut self, id: NodeId) -> Result<(), String> {
        self.live_node(id)?;
        self.crashed.insert(id);
        self.incoming.remove(&id);
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

    /// A crashed node's disk loses every durable entry after `last` (entries it may have
    /// acknowledged: a power cut with a lying fsync, a wiped data dir); its hard state stays.
    pub fn truncate_log(&mut self, id: NodeId, last: Index) -> Result<(), String> {
        self.node(id)?;
        if !self.crashed.contains(&id) {
            return Err(format!("truncate-log: crash n{id} first"));
        }
        let durable = self.durable.get_mut(&id).expect("every node has a disk");
        let offset = durable.snapshot.as_ref().map_or(0, |s| s.meta.last_index);
        if last < offset {
            return Err(format!("truncate-log: n{id}'s snapshot covers {offset}"));
        }
        durable.entries.retain(|e| e.index <= last);
        self.trace.event(format!(
            "n{id} durable log cut after {last}: {} entries left",
            durable.entries.len()
        ));
        Ok(())
    }

    /// Replaces a node's durable state with a log of the given terms (commands `r1`, `r2`, …) and
    /// no snapshot, and boots it from there: how a script sets up a history without replaying it.
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
                snapshot: None,
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

    /// Raft's safety properties across the whole history of the cluster: one leader per term,
    /// state machines that agree (and applied every entry once, in order), and durable logs
    /// (snapshot contents included) that agree up to any entry they share.
    pub fn check_safety(&self) -> Result<(), String> {
        for (term, leaders) in &self.leaders_by_term {
            if leaders.len() > 1 {
                return Err(format!(
                    "Election Safety: two leaders in term {term}: {leaders:?}"
                ));
            }
        }
        if let Some(violation) = self.violations.first() {
            return Err(format!("State Machine Safety: {violation}"));
        }
        let logs = (self.ids.iter())
            .map(|&id| self.durable[&id].full_log())
            .collect::<Result<Vec<_>, _>>()?;
        for (&a, log_a) in self.ids.iter().zip(&logs) {
            for (&b, log_b) in self.ids.iter().zip(&logs) {
                let (x, y) = (&self.applied[&a], &self.applied[&b]);
                let n = x.len().min(y.len());
                if x[..n] != y[..n] {
                    return Err(format!(
                        "State Machine Safety: nodes {a} and {b} applied different entries"
                    ));
                }
                let (x, y) = (log_a, log_b);
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
