//! The server around the pure core: one thread runs the Raft loop (core + storage + state
//! machine), a tokio runtime runs the network.
//!
//! ```text
//!  peers ──TCP──► transport::inbound ─┐                     ┌─► transport::outbound ──TCP──► peers
//!  clients ─TCP─► transport::inbound ─┼─► Event channel ──► │ raft_loop (thread)
//!                                     │                     │   Raft::step/tick/propose/read_index
//!                                     │                     │   LogStore: save, append, ONE fsync
//!                                     │                     │   KvStore::apply, answer clients
//!                                     └─────────────────────└─► client response channels
//! ```
//!
//! The loop itself is thin: it feeds events and ticks to the [`executor`], which carries out the
//! core's `Ready` and answers clients. The executor is generic over storage, network and client
//! answers, so the deterministic simulation (crate `riptide-sim`) runs exactly the same code.
//!
//! Group commit falls out of the shape: while the loop is inside an fsync, new requests queue in
//! the channel, and the next iteration takes them all, proposes them all and covers them with one
//! fsync. No lock is ever held across an fsync: the loop owns its state outright.

mod admin;
pub mod compaction;
pub mod executor;
mod members;
pub mod node_storage;
pub mod options;
pub mod peer_gate;
pub mod raft_loop;
pub mod reorder;
mod status;
pub mod transport;

pub use options::{NodeOptions, UnsafeBug};

use std::sync::Arc;

use anyhow::Context;
use peer_gate::PeerGate;

use crate::kv::{KvStore, SessionLimits};
use crate::logging::TermCell;
use crate::raft::{RaftLog, SnapshotImage};
use crate::storage::cluster_id::adopt_cluster_id;
use crate::storage::{LogStore, Recovered, StorageOptions};

/// Runs a node until the process is killed or a fatal storage error happens.
pub fn run(opts: NodeOptions, term: TermCell) -> anyhow::Result<()> {
    let durability = opts.durability();
    let (store, recovered) =
        LogStore::open_with(&opts.data_dir, StorageOptions::default(), durability)
            .with_context(|| format!("cannot open the data dir {}", opts.data_dir.display()))?;
    for repair in &recovered.repairs {
        tracing::warn!("storage recovery: {repair}");
    }
    let cluster = adopt_cluster_id(&opts.data_dir, opts.cluster_id.as_deref(), durability)?;
    match &cluster {
        Some(id) => tracing::info!("member of cluster `{id}`"),
        None => tracing::warn!("no cluster id (--cluster-id): peers of any unnamed cluster on the configured addresses are admitted"),
    }
    let gate = Arc::new(PeerGate::new(&opts, cluster, opts.secret.clone()));
    let hard_state = recovered.hard_state;
    term.set(hard_state.term);
    let config = opts.raft_config();
    let (raft, kv) = restore(&opts, config, recovered)?;
    let store = node_storage::NodeStorage::new(store, opts.data_dir.clone());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.net_threads)
        .enable_all()
        .thread_name("riptide-net")
        .build()
        .context("cannot start the tokio runtime")?;

    let (events_tx, events_rx) = raft_loop::event_queue();
    let listener = runtime
        .block_on(transport::bind(opts.listen))
        .with_context(|| {
            format!(
                "cannot listen on {}: is another node using that address?",
                opts.listen
            )
        })?;
    tracing::info!("listening on {}", opts.listen);
    let opener =
        transport::LinkOpener::new(runtime.handle().clone(), gate.clone(), opts.listen.ip());
    let reorder = opener.reorder().clone();
    let links = raft_loop::PeerLinks::open(opener, &opts);
    let refused_peers = gate.refused_counter();
    runtime.spawn(transport::accept_loop(listener, opts.id, gate, events_tx));

    let mut state = raft_loop::RaftLoop::new(raft, store, kv, links, &opts, term);
    state.count_refused_peers(refused_peers);
    state.hook_reorder(reorder);
    let handle = std::thread::Builder::new()
        .name("riptide-raft".into())
        .spawn(move || state.run(events_rx))
        .context("cannot start the Raft thread")?;
    let result = handle
        .join()
        .map_err(|_| anyhow::anyhow!("the Raft thread panicked"))?;
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}

/// The core and the state machine as the data dir left them: the newest snapshot (decoded into
/// the state machine) and the log after it, which the node replays as it commits again.
fn restore(
    opts: &NodeOptions,
    config: crate::raft::Config,
    recovered: Recovered,
) -> anyhow::Result<(crate::raft::Raft, KvStore)> {
    let hard_state = recovered.hard_state;
    let limits = SessionLimits {
        max_sessions: opts.max_sessions,
        ..SessionLimits::default()
    };
    let entries = recovered.entries.len();
    let Some(snapshot) = recovered.snapshot else {
        tracing::info!(
            term = hard_state.term,
            voted_for = ?hard_state.voted_for,
            entries,
            "recovered from {}",
            opts.data_dir.display()
        );
        let log = RaftLog::recovered(0, 0, recovered.entries);
        let raft = crate::raft::Raft::new(config, hard_state, log).map_err(anyhow::Error::msg)?;
        return Ok((raft, KvStore::with_limits(limits)));
    };
    let meta = snapshot.meta.clone();
    let path = opts.data_dir.join("snapshot");
    // The state section starts after the header and ends before the 4-byte checksum.
    let data_at = snapshot.image().len() - snapshot.data().len() - 4;
    let kv = KvStore::decode(snapshot.data()).map_err(|why| crate::storage::Error::Corrupt {
        file: path.clone(),
        offset: data_at as u64,
        detail: format!("the snapshot passed its checksum but its state does not decode: {why}"),
    })?;
    // Session limits are part of the replicated state machine (every node must expire the same
    // sessions), so the snapshot's win over the command line's.
    if kv.limits() != limits {
        tracing::warn!(
            snapshot = ?kv.limits(),
            command_line = ?limits,
            "the snapshot's session limits differ from the command line's; keeping the snapshot's"
        );
    }
    if meta.voters != config.voters {
        tracing::info!(
            snapshot = %meta.membership(),
            command_line = ?config.voters,
            "the snapshot's configuration differs from the command line's; the snapshot's (and the log's after it) is in force"
        );
    }
    tracing::info!(
        term = hard_state.term,
        voted_for = ?hard_state.voted_for,
        snapshot_index = meta.last_index,
        snapshot_term = meta.last_term,
        entries,
        "recovered from {}: a snapshot and the log after it",
        opts.data_dir.display()
    );
    let log = RaftLog::recovered(meta.last_index, meta.last_term, recovered.entries);
    let image = SnapshotImage::new(meta, snapshot.into_image());
    let raft = crate::raft::Raft::recover(config, hard_state, log, Some(image))
        .map_err(anyhow::Error::msg)?;
    Ok((raft, kv))
}
