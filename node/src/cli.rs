//! The command line of a node, shared by the `riptide-node` binary and `riptide node`.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | 0 | stopped cleanly |
//! | 1 | failed while running (an I/O error, a locked data dir, a port in use, ...) |
//! | 2 | bad arguments (clap's usage errors too) |
//! | 3 ([`EXIT_REFUSED`]) | refused to start on its data dir: damaged data (storage's `Corrupt`, naming the file and offset), a snapshot in a format it cannot use, or another cluster's data (`--cluster-id` mismatch). One line on stderr says which file and what to do; restarting will not help, an operator must move the dir aside |

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::raft::ReadMode;
use crate::server::compaction::SnapshotPolicy;
use crate::server::peer_gate::Secret;
use crate::server::{self, NodeOptions, UnsafeBug};

/// One member of a riptide Raft key-value cluster.
///
/// Peers and clients share the listen address: the first frame of a connection says which it is.
/// Every frame is a 4-byte big-endian length and a MessagePack body. The node keeps its
/// write-ahead log, term and vote in --data-dir and restarts from it after a crash.
///
/// Example, a 3-node cluster on one machine:
///   riptide-node --id 1 --listen 127.0.0.11:7000 --peer 2=127.0.0.12:7000 --peer 3=127.0.0.13:7000 --data-dir /tmp/n1
///
/// Exit codes: 0 stopped cleanly; 1 failed while running; 2 bad arguments; 3 refused to start
/// on the data dir (damaged data, naming the file and offset; an old snapshot format; another
/// cluster's data): move the dir aside, restarting will not help.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "riptide-node",
    version,
    about,
    long_about,
    verbatim_doc_comment
)]
pub struct Args {
    /// This node's id (a positive integer, unique in the cluster).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub id: u64,
    /// Address to listen on, and to dial peers from (ip:port).
    #[arg(long)]
    pub listen: SocketAddr,
    /// Another member of the cluster, as ID=IP:PORT. Repeat for each peer.
    #[arg(long = "peer", value_parser = parse_peer)]
    pub peers: Vec<(u64, SocketAddr)>,
    /// Start as a new member of a running cluster: this node is left out of the initial
    /// configuration (the --peer list is where the cluster is) and waits, never campaigning,
    /// until the leader adds it as a learner (`riptide client add-node`) and sends it the log or
    /// a snapshot. Start it with an empty --data-dir; on a restart the flag changes nothing (the
    /// configuration in its log and snapshot is in force).
    #[arg(long)]
    pub join: bool,
    /// Directory for the write-ahead log, term and vote. Created if missing.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Length of one logical clock tick in milliseconds.
    #[arg(long, default_value_t = 10)]
    pub tick_ms: u64,
    /// Shortest election timeout in milliseconds (each timeout is drawn from [min, max)).
    #[arg(long, default_value_t = 150)]
    pub election_timeout_min_ms: u64,
    /// Longest election timeout in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub election_timeout_max_ms: u64,
    /// How often the leader sends heartbeats, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// Seed for the election-timeout randomness (mixed with the node id).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Snapshot the state machine after this many applied entries since the last snapshot, and
    /// discard the log it covers (0: never by count).
    #[arg(long, default_value_t = DEFAULT_SNAPSHOT_ENTRIES)]
    pub snapshot_entries: u64,
    /// Snapshot after this many bytes of applied commands since the last snapshot (0: never by
    /// size).
    #[arg(long, default_value_t = DEFAULT_SNAPSHOT_BYTES)]
    pub snapshot_bytes: u64,
    /// Entries kept in memory behind a snapshot, so that a follower a little behind catches up
    /// from the log instead of receiving the whole snapshot.
    #[arg(long, default_value_t = DEFAULT_SNAPSHOT_TAIL)]
    pub snapshot_tail: u64,
    /// A due snapshot waits until the commands applied since the last one amount to 1/N of that
    /// snapshot's size, so that with a large state snapshots cost at most N bytes written per
    /// byte of commands, and the log held in memory stays under the state's size / N (0: no
    /// wait; snapshots come every --snapshot-entries whatever the state's size).
    #[arg(long, default_value_t = DEFAULT_SNAPSHOT_AMPLIFICATION)]
    pub snapshot_amplification: u64,
    /// Worker threads of the network runtime, which reads and writes every peer and client
    /// connection (the Raft loop has a thread of its own). One thread saves cross-thread wakeups
    /// and speeds up writes on a 2-core machine; two serve more linearizable reads (see the
    /// README's bench section).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub net_threads: u64,
    /// Most bytes of snapshot in one InstallSnapshot message (a large state moves in chunks).
    #[arg(long, default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..=8 * 1024 * 1024))]
    pub snapshot_chunk_bytes: u64,
    /// Most client sessions the state machine keeps; the least recently used expire first, and
    /// a retry in an expired session gets a definite "session expired" error.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_sessions: u64,
    /// TEST ONLY: break Raft on purpose to prove riptide catches it (see --help for the list:
    /// each bug's history, the rule it breaks and what a client sees). Repeatable.
    #[arg(long = "unsafe-bug", value_name = "NAME", long_help = UnsafeBug::help())]
    pub unsafe_bugs: Vec<UnsafeBug>,
    /// How the leader serves reads: read-index (a heartbeat round confirms each batch of reads;
    /// no clock assumptions) or lease (answered locally while a majority heard from the leader
    /// within the minimum election timeout less a drift margin of 20%, timed from when the
    /// heartbeats were sent; needs clocks that drift less than that).
    #[arg(long, default_value_t = ReadMode::ReadIndex, value_name = "MODE")]
    pub read_mode: ReadMode,
    /// The cluster this node belongs to: 1 to 64 characters from A-Z a-z 0-9 . _ -. Stored in
    /// the data dir on the first start; a later start with another id refuses to run, and peers
    /// of another cluster are never admitted. `riptide test` and `riptide cluster` generate one.
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// A file holding the cluster's shared secret (at least 16 bytes; a trailing newline is
    /// ignored). Peers must prove they know it (HMAC-SHA-256 challenge–response on every peer
    /// connection). It authenticates peers; it does not encrypt their messages.
    #[arg(long)]
    pub cluster_secret_file: Option<PathBuf>,
    /// Log filter when RUST_LOG is not set (e.g. info, debug, riptide_node::raft=debug).
    #[arg(long, default_value = "info")]
    pub log: String,
}

/// Snapshot every 10,000 applied entries by default: at the bench's default rate (100 ops/s)
/// that is one snapshot every 100 s, and the in-memory log stays below about 11,000 entries
/// (with the tail), a few MB.
pub const DEFAULT_SNAPSHOT_ENTRIES: u64 = 10_000;
/// Or after 16 MiB of commands, whichever comes first: large values do not grow the log unbounded.
pub const DEFAULT_SNAPSHOT_BYTES: u64 = 16 * 1024 * 1024;
/// Keep 1,000 entries behind a snapshot: a follower that missed a few seconds catches up from
/// the log.
pub const DEFAULT_SNAPSHOT_TAIL: u64 = 1_000;
/// The default `--snapshot-amplification`: a quarter of the state's size in commands between
/// two snapshots.
pub const DEFAULT_SNAPSHOT_AMPLIFICATION: u64 = 4;

fn parse_peer(s: &str) -> Result<(u64, SocketAddr), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not ID=IP:PORT"))?;
    let id: u64 = id
        .parse()
        .map_err(|_| format!("peer id `{id}` is not a positive integer"))?;
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| format!("peer address `{addr}` is not IP:PORT"))?;
    Ok((id, addr))
}

/// The exit code of a node that refuses to start on its data dir (see the module docs).
pub const EXIT_REFUSED: u8 = 3;

/// Runs a node with parsed arguments until it is killed or fails.
pub fn run(args: Args) -> ExitCode {
    let term = crate::logging::init(args.id, &args.log);
    let mut peers = BTreeMap::new();
    for (id, addr) in &args.peers {
        if peers.insert(*id, *addr).is_some() {
            eprintln!("riptide-node: peer {id} is given twice; name each peer once");
            return ExitCode::from(2);
        }
    }
    let secret = match args.cluster_secret_file.as_deref().map(Secret::read) {
        None => None,
        Some(Ok(secret)) => Some(secret),
        Some(Err(msg)) => {
            eprintln!("riptide-node: {msg}");
            return ExitCode::from(2);
        }
    };
    let opts = NodeOptions {
        id: args.id,
        listen: args.listen,
        peers,
        join: args.join,
        data_dir: args.data_dir,
        tick_ms: args.tick_ms,
        election_timeout_min_ms: args.election_timeout_min_ms,
        election_timeout_max_ms: args.election_timeout_max_ms,
        heartbeat_ms: args.heartbeat_ms,
        seed: args.seed,
        snapshot: SnapshotPolicy {
            entries: args.snapshot_entries,
            bytes: args.snapshot_bytes,
            tail: args.snapshot_tail,
            amplification: args.snapshot_amplification,
        },
        snapshot_chunk_bytes: args.snapshot_chunk_bytes as usize,
        net_threads: args.net_threads as usize,
        max_sessions: args.max_sessions as usize,
        unsafe_bugs: args.unsafe_bugs,
        read_mode: args.read_mode,
        cluster_id: args.cluster_id,
        secret,
    };
    if let Err(msg) = opts.validate() {
        eprintln!("riptide-node: {msg}");
        return ExitCode::from(2);
    }
    if !opts.unsafe_bugs.is_empty() {
        tracing::warn!(bugs = ?opts.unsafe_bugs, "UNSAFE BUGS ENABLED: this node breaks Raft on purpose");
    }
    match server::run(opts, term) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if refused_start(&err) => {
            // One line, naming the file (and offset): no log line repeats it.
            let line = format!("{err:#}").replace('\n', " ");
            eprintln!("riptide-node: refusing to start: {line}");
            ExitCode::from(EXIT_REFUSED)
        }
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("riptide-node: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// Is `err` storage refusing the data dir (anywhere in its chain)?
fn refused_start(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|cause| cause.downcast_ref::<crate::storage::Error>())
        .any(crate::storage::Error::refuses_start)
}
