//! riptide-node: a durable Raft key-value server.
//!
//! The crate is split by concept:
//! - [`types`]: node ids, terms, indexes, entries, hard state;
//! - [`raft`]: the pure consensus core (no I/O, no clock, no threads);
//! - [`storage`]: the write-ahead log, hard state and snapshots on disk;
//! - [`protocol`]: the wire types clients and peers exchange, and the frame codec.

pub mod types;
