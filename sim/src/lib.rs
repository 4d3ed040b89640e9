//! riptide-sim: deterministic simulation of a whole riptide cluster, running the real node's
//! executor ([`riptide_node::server::executor`]) — the code that carries out Raft's `Ready` and
//! answers clients — on simulated disks, a simulated network and simulated clients.
//!
//! One seed is one exact run ([`run_seed`]):
//! - nodes take **batches** of events, as the real loop does: random mixes of peer messages,
//!   client requests and ticks, from one event up to [`MAX_BATCH_EVENTS`], then one Ready;
//! - the network loses, duplicates, mildly reorders and partitions peer messages;
//! - nodes **crash** between Readies or at a storage call inside one, losing what was not
//!   durable (a torn tail may keep any prefix of unsynced entries), and restart from their disk;
//! - for half the seeds, nodes take **snapshots** and compact their logs, leaders send
//!   snapshots in chunks to followers left behind, and crashes strike snapshot writes and
//!   transfers ([`storage`] keeps the real storage's durability contract, [`config`] picks the
//!   settings);
//! - clients issue put, cas, append and get with sessions, retry and map answers to
//!   `ok`/`fail`/`info` exactly as the workload client does ([`client`]);
//! - then the faults stop and the cluster must converge: one leader, a final write
//!   acknowledged and applied everywhere, no command applied twice.
//!
//! Checked: Election Safety, Log Matching and State Machine Safety throughout, and every node's
//! store and every snapshot against a reference store driven by the applied log ([`safety`]);
//! at the end, the linearizability of everything the clients saw, with `riptide-checker`
//! ([`history`]). See `sim/README.md` for running a million seeds and reproducing one.
//!
//! [`MAX_BATCH_EVENTS`]: riptide_node::server::raft_loop::MAX_BATCH_EVENTS

pub mod client;
pub mod cluster;
pub mod config;
pub mod history;
pub mod network;
pub mod run;
pub mod safety;
pub mod storage;

pub use config::{SimConfig, SnapshotSettings, Tweaks};
pub use run::{run_seed, Failure, RunStats};
