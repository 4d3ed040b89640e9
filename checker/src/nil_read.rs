//! What an `ok` read of `nil` means: Knossos's "unknown" or riptide's "the key is absent".
//!
//! Two checkers, two readings of the same line:
//!
//! - **Knossos** (`register`, `cas-register` in `knossos/model.clj`): a read whose value is `nil`
//!   matches every state: "we don't know what the read was". Jepsen tests rely on it; a client
//!   that could not parse a reply records `nil`.
//! - **riptide's JSONL**: `null` is a value like any other; a read of `null` says the key had no
//!   value (nothing written yet, or, with `--initial`, not the initial value either).
//!
//! [`NilRead::Any`] follows Knossos and [`NilRead::Absent`] riptide. By default EDN and Jepsen
//! logs are read as Knossos reads them and JSONL and Porcupine's kv data as their writers mean
//! them ([`NilRead::default_for`]); `--nil-read` chooses either for any input.
//!
//! **How `any` is checked.** An ok read that matches every state and changes none can be placed
//! anywhere inside its own interval, whatever the other ops do: so a history is linearizable
//! with it iff it is linearizable without it. [`check`](crate::check) therefore leaves such
//! reads out before the search (the search is untouched), and the report counts them. The
//! property tests check this against a brute force in which the model itself accepts a nil read
//! in every state (`tests/properties.rs`).

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::Format;
use crate::history::{Op, OpKind, Outcome, ValueId};
use crate::txn::{MicroKind, Txns};

/// The meaning of an `ok` read whose value is `nil`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NilRead {
    /// Knossos: the read constrains nothing (it matches any state).
    Any,
    /// riptide: the key had no value (its state was nil).
    Absent,
}

impl NilRead {
    pub const NAMES: &'static [&'static str] = &["any", "absent"];

    /// The meaning the format's writers intend: Knossos's for EDN and Jepsen logs, "absent" for
    /// riptide's JSONL and Porcupine's kv data (whose model compares every read).
    pub fn default_for(format: Format) -> NilRead {
        match format {
            Format::Edn | Format::JepsenLog => NilRead::Any,
            Format::Auto | Format::Jsonl | Format::PorcupineKv => NilRead::Absent,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NilRead::Any => "any",
            NilRead::Absent => "absent",
        }
    }

    /// Whether, in this mode, `op` constrains nothing and can be left out of the search.
    pub fn unconstrained(self, op: &Op) -> bool {
        self == NilRead::Any
            && op.f == OpKind::Read
            && op.outcome == Outcome::Ok
            && op.value == ValueId::NIL
    }

    /// Whether, in this mode, `op` is an ok txn that constrains nothing: it only reads, and
    /// every read is of nil (Knossos's multi-register: "nil reads are always legal"). Like an
    /// unconstrained read it matches every state and changes none, so it can be left out.
    pub fn unconstrained_txn(self, op: &Op, txns: &Txns) -> bool {
        self == NilRead::Any
            && op.f == OpKind::Txn
            && op.outcome == Outcome::Ok
            && txns
                .get(op.txn())
                .iter()
                .all(|m| m.f == MicroKind::Read && m.value == ValueId::NIL)
    }
}

impl fmt::Display for NilRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NilRead {
    type Err = Error;
    fn from_str(s: &str) -> Result<NilRead> {
        match s {
            "any" | "knossos" => Ok(NilRead::Any),
            "absent" => Ok(NilRead::Absent),
            _ => Err(Error::Invalid(format!(
                "unknown --nil-read `{s}`; expected one of {}",
                NilRead::NAMES.join(", ")
            ))),
        }
    }
}
