//! riptide-history: the language of histories, each concept named once.
//!
//! A *history* is what clients saw: a sequence of *events*, in the real-time order in which the
//! runner observed them. The workload writes it (`history.jsonl`), the checker decides whether it
//! is linearizable, and the reports draw it. All three speak these words:
//!
//! | word | what it is | module |
//! |---|---|---|
//! | [`Value`] | what a key holds: nil, an integer or a string | [`value`] |
//! | [`OpKind`] | what an op does: read, write, cas, append (the `f` of an event) | [`op`] |
//! | [`EventType`] | invoke, or one of the completions ok / fail / info (the `type` of an event) | [`op`] |
//! | [`Outcome`] | how a paired op ended: ok, fail, info, or open (never completed) | [`op`] |
//! | [`Process`] | who ran an event: a client process, or the nemesis; the numbering rules | [`process`] |
//! | [`Record`] | one line of `history.jsonl` | [`record`] |
//! | [`OpenOps`] | pairing: each completion with the open invoke of its process | [`pairing`] |
//!
//! **Cas arguments.** A cas carries two values, the expected one and the new one. Everywhere an
//! op is held in memory they are two fields: `value` (the value read, written or appended, or the
//! cas's *expected* value) and `cas_new` (the cas's new value, nil for every other kind). Only on
//! disk are they one JSON array, `[expected, new]`; [`record::value_json`] writes it.
//!
//! The on-disk format is specified in `docs/history-format.md`; this crate does not change it.
//! It depends on nothing of riptide's (serde and serde_json only), so any part of the bench can
//! use it.

pub mod op;
pub mod pairing;
pub mod process;
pub mod record;
pub mod value;

pub use op::{EventType, OpKind, Outcome};
pub use pairing::OpenOps;
pub use process::{Process, FINAL_READ_BASE};
pub use record::{records, value_json, Record};
pub use value::Value;
