//! What an op does: Jepsen's `:f`, as the checker knows it.
//!
//! riptide's own workload writes four kinds (`read`, `write`, `cas`, `append`), which are
//! `riptide-history`'s [`riptide_history::OpKind`], the vocabulary the recorder and the reports
//! share. The checker also reads histories written for two more of Knossos's models, whose ops
//! riptide never produces:
//!
//! - `acquire` and `release`, of Knossos's `mutex`: a lock, taken and given back;
//! - `txn`, of Knossos's `multi-register`: a transaction, `[[:read :x 1] [:write :y 2]]`, whose
//!   micro-ops are in [`crate::txn`].
//!
//! So the checker's [`OpKind`] is the shared one plus those three; [`From`] turns the shared one
//! into it, and the names (`parse`, `name`, serde) are the shared names plus `acquire`,
//! `release`, `txn`.

use serde::Serialize;

/// What an op does: the `f` of a client event. A completion repeats its invoke's kind.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// `read` (Porcupine: `get`): observes the value.
    Read,
    /// `write` (Porcupine: `put`): sets the value.
    Write,
    /// `cas [expected new]`: sets `new` if the value is `expected`.
    Cas,
    /// `append s`: appends the string `s` to the value.
    Append,
    /// `acquire`: takes the lock, which must be free.
    Acquire,
    /// `release`: gives the lock back; it must be held.
    Release,
    /// `txn [[:read :x v] [:write :y v] ...]`: reads and writes of several registers at once.
    Txn,
}

impl OpKind {
    pub const ALL: [OpKind; 7] = [
        OpKind::Read,
        OpKind::Write,
        OpKind::Cas,
        OpKind::Append,
        OpKind::Acquire,
        OpKind::Release,
        OpKind::Txn,
    ];

    /// Accepts the shared names (with Porcupine's `get`/`put`) and `acquire`, `release`, `txn`.
    pub fn parse(name: &str) -> Option<OpKind> {
        if let Some(shared) = riptide_history::OpKind::parse(name) {
            return Some(shared.into());
        }
        Some(match name {
            "acquire" => OpKind::Acquire,
            "release" => OpKind::Release,
            "txn" => OpKind::Txn,
            _ => return None,
        })
    }

    /// The `f` a history records.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::Cas => "cas",
            OpKind::Append => "append",
            OpKind::Acquire => "acquire",
            OpKind::Release => "release",
            OpKind::Txn => "txn",
        }
    }
}

impl From<riptide_history::OpKind> for OpKind {
    fn from(f: riptide_history::OpKind) -> OpKind {
        match f {
            riptide_history::OpKind::Read => OpKind::Read,
            riptide_history::OpKind::Write => OpKind::Write,
            riptide_history::OpKind::Cas => OpKind::Cas,
            riptide_history::OpKind::Append => OpKind::Append,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_extend_the_shared_ones() {
        for f in OpKind::ALL {
            assert_eq!(OpKind::parse(f.name()), Some(f));
        }
        for f in riptide_history::OpKind::ALL {
            assert_eq!(OpKind::from(f).name(), f.name());
        }
        assert_eq!(OpKind::parse("get"), Some(OpKind::Read));
        assert_eq!(OpKind::parse("lock"), None);
        assert_eq!(
            serde_json::to_string(&OpKind::Acquire).unwrap(),
            "\"acquire\""
        );
    }
}
