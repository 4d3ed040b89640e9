//! What a node needs to know to start: who it is, who its peers are, where its data lives, how
//! fast its clock ticks, and which (test-only) bugs to enable.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use super::compaction::SnapshotPolicy;
use super::peer_gate::Secret;
use crate::raft::config::CoreBugs;
use crate::raft::{Config, ReadMode};
use crate::storage::Durability;
use crate::types::NodeId;

/// Declares [`UnsafeBug`] with its command-line names, and keeps each variant's doc comment as
/// text, so that `--help` shows exactly what the docs say.
macro_rules! unsafe_bugs {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:literal, )*) => {
        /// A deliberate bug, for proving that riptide catches it. Never enable one outside a
        /// test. Each says where in history it comes from, the Raft rule it breaks and what a
        /// client sees.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum UnsafeBug {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl UnsafeBug {
            pub const ALL: [UnsafeBug; [$($name),*].len()] = [$(UnsafeBug::$variant),*];

            pub fn name(self) -> &'static str {
                match self {
                    $(UnsafeBug::$variant => $name,)*
                }
            }

            /// The variant's doc comment, one line per doc line.
            pub fn doc(self) -> &'static str {
                match self {
                    $(UnsafeBug::$variant => concat!($($doc, "\n"),*),)*
                }
            }
        }
    };
}

unsafe_bugs! {
    /// Serve `get` from the local state machine on any node, without ReadIndex. History:
    /// Jepsen's 2014 etcd and Consul analyses. Rule broken: a read must confirm leadership with
    /// a quorum round (thesis §6.4). A client sees a stale read from a follower or a deposed
    /// leader.
    StaleRead => "stale-read",
    /// Grant votes without the election restriction's log up-to-date check. Rule broken: vote
    /// only for a candidate whose log is at least as up to date (§5.4.1). A client sees a lost
    /// write: a leader without a committed entry replaces it.
    VoteAnyLog => "vote-any-log",
    /// Answer `Ok` to a put or append as soon as the leader appended it, before a majority has
    /// it (a cas still waits for its result, which depends on the state). Rule broken: answer a
    /// write only once its entry is committed. A client sees a lost write after a failover.
    AckBeforeCommit => "ack-before-commit",
    /// A follower that installs a snapshot from the leader moves its applied index to the
    /// snapshot's but keeps its own, older state machine: the restore step is skipped (as when
    /// a failing restore is ignored). Every write between what it had applied and the snapshot
    /// is silently missing on that node, which the Raft paper §7 rules out: the state machine
    /// must be reset from the snapshot's contents.
    InstallWithoutRestore => "install-without-restore",
    /// The state machine ignores client sessions: a command retried with the same client id and
    /// sequence number (a client resending a write whose answer it lost) is applied again. The
    /// Raft thesis §6.3 is why sessions exist: without them a retried append appends twice.
    NoDedup => "no-dedup",
    /// The leader commits an entry of an earlier term as soon as a majority stores it. History:
    /// the Raft paper's Figure 8, and a classic of new implementations (raft-rs keeps the test
    /// `test_leader_only_commits_log_from_current_term`). Rule broken: only entries of the
    /// leader's own term are committed by counting replicas (§5.4.2). A client sees a lost
    /// write: an entry reported committed is overwritten after two leader changes.
    CommitPriorTerm => "commit-prior-term",
    /// The vote (votedFor) is not restored on restart: the node comes back knowing its term but
    /// not whom it voted for. History: implementations that persist the term but not the vote,
    /// or write them without syncing (toydb and etcd-raft both stress "persist HardState before
    /// answering"). Rule broken: at most one vote per term, durable before the reply (Figure 2).
    /// A client sees two leaders in one term after a crash, and conflicting acknowledged writes.
    ForgetVote => "forget-vote",
    /// ReadIndex uses the commit index of a new leader before it has committed an entry of its
    /// own term. History: toydb's `request_leader_change_linearizability` script; the thesis
    /// §6.4 step 1. Rule broken: a leader's commit index is only known to be current once its
    /// own no-op commits. A client sees a stale read right after a leader change.
    ReadIndexEarly => "read-index-early",
    /// A read confirmed by ReadIndex is answered at once, without waiting until the state
    /// machine has applied its read index. History: asynchronous state machines (openraft's
    /// `Linearizer`, toydb's apply guard exist for this). Rule broken: answer a read only once
    /// applied >= read index (thesis §6.4 step 4). A client sees a stale read when applying lags
    /// behind committing, as after a leader change.
    ReadBeforeApply => "read-before-apply",
    /// Leader-lease reads with a lease longer than the election timeout and without the
    /// check-quorum that leases rest on: the leader serves reads locally for up to twice the
    /// maximum election timeout after a majority last heard from it, never steps down on its
    /// own, and followers that just heard from it still grant votes; its lease clock counts
    /// only the ticks that fired, so a leader paused for seconds (SIGSTOP, a GC pause) wakes up
    /// inside its lease (Kleppmann's lock-lease pause, 2016). History: raft-rs's
    /// `LeaseBased` reads (documented as needing check_quorum), etcd-raft's README and
    /// openraft's leader-lease docs all warn that a lease must expire before a new leader can be
    /// elected. Rule broken: a lease shorter than the minimum election timeout less the clock
    /// drift, timed from when the heartbeats were sent, with followers holding off votes for
    /// that long (thesis §6.4.1), on a clock that does not stop with the process. A client sees
    /// a stale read from a deposed leader behind a partition or after a pause. Turns on
    /// `--read-mode lease` by itself.
    LeaseReadUnsafe => "lease-read-unsafe",
    /// A follower deletes every entry after prevIndex (that it does not itself know to be
    /// committed) before appending the message's entries, even when they match. History:
    /// openraft's fix "deleting entries after prev-log-id causes committed entry to be lost".
    /// Rule broken: delete only from the first conflict (Figure 2, AppendEntries step 3). A
    /// client sees a lost write: a delayed, reordered AppendEntries erases entries the follower
    /// acknowledged and the leader committed by counting it.
    TruncateOnMatch => "truncate-on-match",
    /// A follower sets its commit index to the leader's, ignoring how far the message vouched
    /// for its log. History: etcd-raft's `lagging_commit` test; toydb's heartbeat handling.
    /// Rule broken: commitIndex = min(leaderCommit, index of last new entry) (Figure 2). A
    /// client sees values flip back: a replica applies its own stale entries, later replaced.
    CommitPastMatch => "commit-past-match",
    /// A majority is counted as n/2 instead of n/2 + 1, for commits, elections, check-quorum and
    /// ReadIndex. History: the off-by-one in quorum arithmetic, as common as it is simple.
    /// Rule broken: a quorum is a strict majority, so any two intersect (§5.2, §5.3). A client
    /// sees writes acknowledged by a minority and lost, and two leaders at once.
    QuorumOffByOne => "quorum-off-by-one",
    /// A write is answered from whatever entry is applied at its log index, without checking
    /// that it is the entry the write appended (its term); a leader that steps down keeps
    /// waiting for its writes' indexes instead of giving them up. History: toydb aborts pending
    /// requests on a term change; raft-rs's docs match proposals by index and term. Rule
    /// broken: a reply belongs to one exact entry (index and term). A client sees `Ok` for a
    /// write that never took effect: a lost write.
    AnswerByIndex => "answer-by-index",
    /// Every node uses the same election timeout (the minimum), with no randomisation.
    /// History: the Raft paper §5.2 randomises timeouts precisely because fixed ones make
    /// candidates collide. Rule broken: randomised election timeouts. A liveness bug: nodes
    /// that start (or restart) together time out together, split the vote, and do so again
    /// every term: the cluster stops answering.
    FixedElectionTimeout => "fixed-election-timeout",
    /// The write-ahead log writes entries but never fsyncs them, and still counts them as
    /// durable: the leader counts its own entries toward a commit and a follower acknowledges
    /// them. History: logs that leave flushing to the page cache and trust replication (Kafka's
    /// default `flush.messages`, Redis's `appendfsync everysec`); Ganesan et al., "Redundancy
    /// Does Not Imply Fault Tolerance" (FAST 2017), and Jepsen's lazyfs exist to catch it. Rule
    /// broken: persistent state is on stable storage before the node answers (Figure 2). A
    /// client sees lost writes after a power cut: entries reported committed are gone from the
    /// nodes that acknowledged them (or a node refuses to start on a sealed segment cut short).
    NoFsync => "no-fsync",
    /// The term and vote are written to a temp file and renamed over `hardstate`, but the file
    /// is never fsynced before the vote is granted. History: the rename-without-fsync pattern
    /// that left zero-length files after crashes on ext4 with delayed allocation (2009); etcd and
    /// toydb insist on syncing the hard state before answering. Rule broken: currentTerm and
    /// votedFor are on stable storage before any reply (Figure 2). A client sees, after a power
    /// cut, a node that comes back with an empty hard-state file (it refuses to start) or an
    /// older term and vote: it can vote twice in one term, and two leaders accept writes.
    VoteNotSynced => "vote-not-synced",
    /// Files are created or renamed (new WAL segments, the hard state, snapshots, the cluster
    /// id) without fsyncing their directory. History: Pillai et al., "All File Systems Are Not
    /// Created Equal" (OSDI 2014), found missing directory fsyncs in most of the applications
    /// they studied. Rule broken: a new name is durable only once its directory is fsynced
    /// (POSIX). A client sees, after a power cut, a new segment vanish with the acknowledged
    /// entries it held (lost writes), or the hard state revert to an older term and vote.
    NoDirFsync => "no-dir-fsync",
    /// A single-server membership change goes from C_old to C_new directly, without the joint
    /// configuration, and the leader accepts it before it has committed an entry of its own
    /// term. History: the bug in single-server changes Diego Ongaro reported on raft-dev in 2015
    /// (a leader elected by a majority of an uncommitted configuration, overlapping no majority
    /// of another leader's). Rule broken: a leader changes the configuration only after it has
    /// committed in its term, and majorities of the old and new configuration must intersect
    /// (§6, thesis §4.1). A client sees a lost write: two configurations each commit, and one
    /// leader overwrites the other's committed entries.
    SingleServerChangeUnsafe => "single-server-change-unsafe",
    /// During a joint change C_old,new, commits, elections, check-quorum and ReadIndex count
    /// only the new configuration's majority. Rule broken: a decision in C_old,new needs a
    /// majority of C_old and of C_new (§6). A client sees a lost write: a leader commits with
    /// C_new's majority while the old configuration's majority elects another leader without it.
    JointOneMajority => "joint-one-majority",
}

impl UnsafeBug {
    /// The `--unsafe-bug` option's long help: every bug's name and doc comment.
    pub fn help() -> String {
        let mut help = String::from(
            "TEST ONLY: break Raft on purpose to prove riptide catches it. Repeatable. One of:\n",
        );
        for bug in UnsafeBug::ALL {
            help.push('\n');
            help.push_str(bug.name());
            help.push('\n');
            for line in bug.doc().lines() {
                help.push_str("    ");
                help.push_str(line.trim());
                help.push('\n');
            }
        }
        help
    }

    /// Turns on the bugs that live in the Raft core (lease-read-unsafe turns on lease reads).
    pub fn configure(bugs: &[UnsafeBug], config: &mut Config) {
        let has = |bug| bugs.contains(&bug);
        if has(UnsafeBug::LeaseReadUnsafe) {
            config.read_mode = ReadMode::Lease;
            config.check_quorum = false;
        }
        config.unsafe_vote_any_log = has(UnsafeBug::VoteAnyLog);
        config.bugs = CoreBugs {
            commit_prior_term: has(UnsafeBug::CommitPriorTerm),
            forget_vote: has(UnsafeBug::ForgetVote),
            read_index_early: has(UnsafeBug::ReadIndexEarly),
            lease_too_long: has(UnsafeBug::LeaseReadUnsafe),
            truncate_on_match: has(UnsafeBug::TruncateOnMatch),
            commit_past_match: has(UnsafeBug::CommitPastMatch),
            quorum_off_by_one: has(UnsafeBug::QuorumOffByOne),
            fixed_election_timeout: has(UnsafeBug::FixedElectionTimeout),
            single_server_change_unsafe: has(UnsafeBug::SingleServerChangeUnsafe),
            joint_one_majority: has(UnsafeBug::JointOneMajority),
        };
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
    /// `--join`: not in the initial configuration; added at runtime by the leader.
    pub join: bool,
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
    /// Worker threads of the network runtime (`--net-threads`).
    pub net_threads: usize,
    /// Most client sessions the state machine keeps (least recently used expire first).
    pub max_sessions: usize,
    pub unsafe_bugs: Vec<UnsafeBug>,
    /// `--read-mode`: ReadIndex (the default) or leader leases.
    pub read_mode: ReadMode,
    /// `--cluster-id`: the cluster this node belongs to (checked against its data dir).
    pub cluster_id: Option<String>,
    /// `--cluster-secret-file`: peers must prove they know it.
    pub secret: Option<Secret>,
}

impl NodeOptions {
    pub fn has_bug(&self, bug: UnsafeBug) -> bool {
        self.unsafe_bugs.contains(&bug)
    }

    /// Which fsyncs storage does: all of them, unless a durability bug is on.
    pub fn durability(&self) -> Durability {
        Durability {
            log: !self.has_bug(UnsafeBug::NoFsync),
            hard_state: !self.has_bug(UnsafeBug::VoteNotSynced),
            dirs: !self.has_bug(UnsafeBug::NoDirFsync),
        }
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
        if self.join && self.peers.is_empty() {
            return Err("--join needs the cluster's members as --peer ID=IP:PORT".into());
        }
        for (id, addr) in &self.peers {
            if *addr == self.listen {
                return Err(format!("peer {id} has this node's own address {addr}"));
            }
        }
        let config = self.raft_config();
        match self.join {
            true => config.validate_tunables(),
            false => config.validate(),
        }
    }

    /// The Raft core's configuration, timings converted from milliseconds to ticks.
    pub fn raft_config(&self) -> Config {
        // A joining node is not in the initial configuration: the leader adds it later.
        let mut voters: Vec<NodeId> = self.peers.keys().copied().collect();
        if !self.join {
            voters.push(self.id);
        }
        voters.sort_unstable();
        let ticks = |ms: u64| (ms / self.tick_ms).max(1) as u32;
        let mut config = Config::new(self.id, voters);
        config.addresses = self
            .peers
            .iter()
            .map(|(&id, addr)| (id, addr.to_string()))
            .chain([(self.id, self.listen.to_string())])
            .collect();
        config.election_timeout_min = ticks(self.election_timeout_min_ms);
        config.election_timeout_max = ticks(self.election_timeout_max_ms);
        config.heartbeat_interval = ticks(self.heartbeat_ms);
        config.seed = self.seed;
        config.max_snapshot_chunk = self.snapshot_chunk_bytes;
        config.read_mode = self.read_mode;
        config.lease_drift = (config.election_timeout_min / 5).max(1);
        UnsafeBug::configure(&self.unsafe_bugs, &mut config);
        config
    }
}
