//! riptide: a Jepsen-style test bench for Raft. This library is everything behind the `riptide`
//! command line (`main.rs` only parses it); `docs/architecture.md` draws the whole map.
//!
//! - [`run`]: one `riptide test` run, orchestrated step by step: start the cluster, inject
//!   faults, drive the workload, heal, read every key once more, judge, store.
//! - [`cluster`]: a cluster of real node processes on this machine, and the status probe.
//! - [`judge`]: checks a stored history, writes `results.json` and the reports, prints the
//!   summary. The one place where the store (riptide-store) meets the reports (riptide-report).
//! - [`bench`]: `riptide bench`, throughput, latency and failover of riptide and etcd.
//! - [`commands`]: the other subcommands: `campaign`, `check`, `analyze`, `serve`, `cluster`,
//!   `client`.
//! - [`exit`]: exit codes and the error that carries one.
//!
//! The run-folder schema lives in `riptide-store`, the reports in `riptide-report`, the node in
//! `riptide-node`, the clients and the history recorder in `riptide-workload`, the faults in
//! `riptide-nemesis`, the checker in `riptide-checker`.

pub mod bench;
pub mod cluster;
pub mod commands;
pub mod exit;
pub mod judge;
pub mod run;
