//! riptide-node: a durable Raft key-value server.
//!
//! The crate is split by concept:
//! - [`types`]: entries and hard state (node ids, terms and indexes come from `riptide-proto`);
//! - [`raft`]: the pure consensus core (no I/O, no clock, no threads);
//! - [`storage`]: the write-ahead log, hard state and snapshots on disk;
//! - [`kv`]: the key-value state machine with client sessions;
//! - [`protocol`]: the wire types clients and peers exchange, re-exported from `riptide-proto`;
//! - [`server`]: the Raft loop thread and the TCP transport around the core;
//! - [`logging`]: log lines tagged with node id and term;
//! - [`cli`]: the command line, shared by `riptide-node` and `riptide node`.

pub mod cli;
pub mod kv;
pub mod logging;
pub mod protocol;
pub mod raft;
pub mod server;
pub mod storage;
pub mod types;
