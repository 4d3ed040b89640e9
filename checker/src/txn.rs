//! Transactions, the ops of Knossos's `multi-register` model.
//!
//! A `txn` op's value is a list of micro-ops, each `[f register value]`, run in order as one
//! atomic step:
//!
//! ```text
//! {:process 0, :type :invoke, :f :txn, :value [[:read :x nil] [:write :y 2]]}
//! {:process 0, :type :ok,     :f :txn, :value [[:read :x 1] [:write :y 2]]}
//! ```
//!
//! `f` is `:read` (or `:r`) or `:write` (or `:w`); a register is named by a keyword, a string or
//! an integer (`:x`, `"x"` and `x` are the same register, named `x`); a value is nil, an integer
//! or a string. As for a single read, the invoke's reads carry nil and the `ok` completion's
//! carry what was read; an `ok` txn is checked with its completion's micro-ops, an `info` one
//! with its invoke's, as Knossos does.
//!
//! Transactions are interned like values: an [`crate::history::Op`] of kind `txn` carries its
//! transaction's [`TxnId`] (see [`crate::history::Op::txn`]), so that the op stays a small `Copy`
//! record and two identical transactions have the same id. Register names are interned too
//! ([`RegisterId`]).

use std::borrow::Cow;

use crate::fx::FxHashMap as HashMap;
use crate::history::{RawValue, ValueId, Values};

/// Read or write one register.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MicroKind {
    Read,
    Write,
}

impl MicroKind {
    /// `read`/`r` or `write`/`w`.
    pub fn parse(name: &str) -> Option<MicroKind> {
        match name {
            "read" | "r" => Some(MicroKind::Read),
            "write" | "w" => Some(MicroKind::Write),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MicroKind::Read => "read",
            MicroKind::Write => "write",
        }
    }
}

/// An interned register name: an index into the history's [`Txns`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegisterId(pub u32);

/// An interned transaction: an index into the history's [`Txns`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxnId(pub u32);

/// One micro-op of a transaction.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Micro {
    pub f: MicroKind,
    pub register: RegisterId,
    /// The value written, or read (nil in an invoke, or where the client did not know).
    pub value: ValueId,
}

/// A micro-op as a parser found it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RawMicro<'a> {
    pub f: MicroKind,
    pub register: Cow<'a, str>,
    pub value: RawValue<'a>,
}

/// Every distinct transaction and register name of a history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Txns {
    table: Vec<Box<[Micro]>>,
    registers: Vec<String>,
}

impl Txns {
    /// The micro-ops of a transaction, in order.
    pub fn get(&self, id: TxnId) -> &[Micro] {
        &self.table[id.0 as usize]
    }

    /// How many distinct transactions the history has.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// A register's name, as written (without a keyword's `:`).
    pub fn register(&self, r: RegisterId) -> &str {
        &self.registers[r.0 as usize]
    }

    /// How many distinct registers the history's transactions name.
    pub fn registers(&self) -> usize {
        self.registers.len()
    }

    /// A transaction as a person reads it: `txn [r x 1, w y 2]`. With `reads_unknown` (an info
    /// txn, whose results nobody saw) reads show as `r x ?`.
    pub fn describe(&self, id: TxnId, values: &Values, reads_unknown: bool) -> String {
        let micros: Vec<String> = self
            .get(id)
            .iter()
            .map(|m| {
                let r = self.register(m.register);
                match m.f {
                    MicroKind::Read if reads_unknown => format!("r {r} ?"),
                    MicroKind::Read => format!("r {r} {}", values.get(m.value)),
                    MicroKind::Write => format!("w {r} {}", values.get(m.value)),
                }
            })
            .collect();
        format!("txn [{}]", micros.join(", "))
    }

    /// A transaction as JSON, as Jepsen writes it: `[["read","x",1],["write","y",2]]`.
    pub fn to_json(&self, id: TxnId, values: &Values) -> serde_json::Value {
        let micro = |m: &Micro| {
            serde_json::json!([
                m.f.name(),
                self.register(m.register),
                serde_json::to_value(values.get(m.value)).unwrap_or_default()
            ])
        };
        serde_json::Value::Array(self.get(id).iter().map(micro).collect())
    }
}

/// Builds a [`Txns`] while a history is read: interns registers and transactions.
#[derive(Default)]
pub(crate) struct TxnInterner {
    txns: Txns,
    ids: HashMap<Box<[Micro]>, TxnId>,
    register_ids: HashMap<Box<str>, RegisterId>,
}

impl TxnInterner {
    pub(crate) fn register(&mut self, name: &str) -> RegisterId {
        if let Some(&id) = self.register_ids.get(name) {
            return id;
        }
        let id = RegisterId(self.txns.registers.len() as u32);
        self.txns.registers.push(name.to_string());
        self.register_ids.insert(name.into(), id);
        id
    }

    pub(crate) fn txn(&mut self, micros: Vec<Micro>) -> TxnId {
        if let Some(&id) = self.ids.get(micros.as_slice()) {
            return id;
        }
        let id = TxnId(self.txns.table.len() as u32);
        let micros: Box<[Micro]> = micros.into();
        self.txns.table.push(micros.clone());
        self.ids.insert(micros, id);
        id
    }

    pub(crate) fn finish(self) -> Txns {
        self.txns
    }
}
