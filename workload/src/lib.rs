//! riptide-workload: the clients that drive a cluster and the history they leave.
//!
//! - [`admin`]: membership changes and leadership transfer through the leader;
//! - [`client`]: an async client that finds the leader and maps every outcome honestly to
//!   `ok` / `fail` / `info`;
//! - [`generator`]: seeded streams of operations on independent keys (register and append);
//! - [`recorder`]: the [`Recorder`] that appends each invoke and completion to `history.jsonl`
//!   as it happens;
//! - [`driver`]: concurrent workers, rate limiting, and the final reads;
//! - [`roster`]: the members the clients follow while the membership nemesis changes them.
//!
//! The words of histories (values, op kinds, processes and their numbering, records, pairing)
//! are `riptide-history`'s.

pub mod admin;
pub mod client;
pub mod driver;
pub mod generator;
pub mod recorder;
pub mod roster;

pub use admin::AdminOutcome;
pub use client::{Client, ClientOptions, OpResult};
pub use driver::{final_reads, run_workers, DriverOptions, FinalReads};
pub use generator::{Generator, GeneratorOptions, PlannedOp, WorkloadKind};
pub use recorder::{Recorder, RecorderStats};
pub use roster::Roster;
