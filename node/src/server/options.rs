//! What a node needs to know to start: who it is, who its peers are, where its data lives, how
//! fast its clock ticks, and which (test-only) bugs to enable.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use super::compaction::SnapshotPolicy;
use super::peer_gate::Secret;
use crate::raft::Config;
use crate::types::NodeId;

/// A deliberate bug, for proving that riptide catches it. Never enable one outside a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnsafeBug {
    /// Serve `get` from the local state machine on any node, without ReadIndex.
    StaleRead,
    /// Grant votes without the election restriction's log up-to-date check.
    VoteAnyLog,
    /// Answer `Ok` to a put or append as soon as the leader appended it, before a majority has
    /// it (a cas still waits for its result, which depends on the state).
    AckBeforeCommit,
    /// A follower that installs a snapshot from the leader moves its applied index to the
    /// snapshot's but keeps its own, older state machine: the restore step is skipped (as when
    /// a failing restore is ignored). Every write between what it had applied and the snapshot
    /// is silently missing on that node, which the Raft paper §7 rules out: the state machine
    /// must be reset from the snapshot's contents.
    InstallWithoutRestore,
    /// The state machine ignores client sessions: a command retried with the same client id and
    /// sequence number (a client resending a write whose answer it lost) is applied again. The
    /// Raft thesis §6.3 is why sessions exist: without them a retried append appends twice.
    NoDedup,
}

impl UnsafeBug {
    pub const ALL: [UnsafeBug; 5] = [
        UnsafeBug::StaleRead,
        UnsafeBug::VoteAnyLog,
        UnsafeBug::AckBeforeCommit,
        UnsafeBug::InstallWithoutRestore,
        UnsafeBug::NoDedup,
    ];

    pub fn name(self) -> &'static str {
        match self {
            UnsafeBug::StaleRead => "stale-read",
            UnsafeBug::VoteAnyLog => "vote-any-log",
            UnsafeBug::AckBeforeCommit => "ack-before-commit",
            UnsafeBug::InstallWithoutRestore => "install-without-restore",
            UnsafeBug::NoDedup => "no-dedup",
        }
    }
}

impl FromStr for UnsafeBug {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UnsafeBug::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = UnsafeBug::ALL.iter().map(|b| b.name()).collect();
                format!("unknown unsafe bug `{s}`; known bugs: {}", names.join(", "))
            })
    }
}

impl std::fmt::Display for UnsafeBug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything a node is started with.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub id: NodeId,
    pub listen: SocketAddr,
    /// Every other member: id → address.
    pub peers: BTreeMap<NodeId, SocketAddr>,
    pub data_dir: PathBuf,
    pub tick_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_ms: u64,
    pub seed: u64,
    /// When to snapshot the state machine and how much log to keep behind a snapshot.
    pub snapshot: SnapshotPolicy,
    /// Most bytes of snapshot image in one InstallSnapshot message.
    pub snapshot_chunk_bytes: usize,
    /// Most client sessions the state machine keeps (least recently used expire first).
    pub max_sessions: usize,
    pub unsafe_bugs: Vec<UnsafeBug>,
    /// `--cluster-id`: the cluster this node belongs to (checked against its data dir).
    pub cluster_id: Option<String>,
    /// `--cluster-secret-file`: peers must prove they know it.
    pub secret: Option<Secret>,
}

impl NodeOptions {
    pub fn has_bug(&self, bug: UnsafeBug) -> bool {
        self.unsafe_bugs.contains(&bug)
    }

    /// The address of node `id` (this node or a peer).
    pub fn addr_of(&self, id: NodeId) -> Option<SocketAddr> {
        if id == self.id {
            Some(self.listen)
        } else {
            self.peers.get(&id).copied()
        }
    }

    /// Checks the options hang together; the message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.peers.contains_key(&self.id) {
            return Err(format!(
                "--peer names this node's own id {}; list only the other members",
                self.id
            ));
        }
        if self.tick_ms == 0 {
            return Err("--tick-ms must be at least 1".into());
        }
        if self.heartbeat_ms < self.tick_ms || self.election_timeout_min_ms < 2 * self.heartbeat_ms
        {
            return Err(format!(
                "timings must satisfy tick ({}) <= heartbeat ({}) and 2 x heartbeat <= election timeout min ({})",
                self.tick_ms, self.heartbeat_ms, self.election_timeout_min_ms
            ));
        }
        if self.election_timeout_max_ms <= self.election_timeout_min_ms {
            return Err(format!(
                "--election-timeout-max-ms ({}) must exceed --election-timeout-min-ms ({})",
                self.election_timeout_max_ms, self.election_timeout_min_ms
            ));
        }
        if let Some(id) = &self.cluster_id {
            crate::storage::cluster_id::validate_cluster_id(id)
                .map_err(|e| format!("--cluster-id: {e}"))?;
        }
        if self.max_sessions == 0 {
            return Err("--max-sessions must be at least 1".into());
        }
        for (id, addr) in &self.peers {
            if *addr == self.listen {
                return Err(format!("peer {id} has this node's own address {addr}"));
            }
        }
        self.raft_config().validate()
    }

    /// The Raft core's configuration, timings converted from milliseconds to ticks.
    pub fn raft_config(&self) -> Config {
        let mut voters: Vec<NodeId> = self.peers.keys().copied().collect();
        voters.push(self.id);
        voters.sort_unstable();
        let ticks = |ms: u64| (ms / self.tick_ms).max(1) as u32;
        let mut config = Config::new(self.id, voters);
        config.election_timeout_min = ticks(self.election_timeout_min_ms);
        config.election_timeout_max = ticks(self.election_timeout_max_ms);
        config.heartbeat_interval = ticks(self.heartbeat_ms);
        config.seed = self.seed;
        config.max_snapshot_chunk = self.snapshot_chunk_bytes;
        config.unsafe_vote_any_log = self.has_bug(UnsafeBug::VoteAnyLog);
        config
    }
}
