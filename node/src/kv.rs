//! The key-value state machine that the Raft log drives, with client sessions.
//!
//! Commands are applied in log order on every node, so every node computes the same results.
//! A client session (client id → the last sequence number applied and its result) makes a retried
//! command apply at most once and gives the retry the original answer (Raft thesis §6.3). A client
//! has at most one command outstanding, so remembering the last one is enough.
//!
//! Left out: session expiry. Sessions live as long as the process; a run creates a few thousand.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

pub use crate::protocol::WriteOp;
use crate::protocol::{FailReason, Reply};

/// A state-changing command as it travels through the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub client_id: u64,
    pub seq: u64,
    pub op: WriteOp,
}

/// What applying a command produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    Ok(Reply),
    Fail(FailReason),
    /// The session already moved past this sequence number: the command may or may not have
    /// applied earlier, and its result is no longer remembered.
    Superseded,
}

impl Command {
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec(self).expect("commands always encode")
    }

    pub fn decode(bytes: &[u8]) -> Result<Command, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }
}

#[derive(Clone, Debug)]
struct Session {
    seq: u64,
    outcome: Applied,
}

/// The replicated map from string keys to string values.
#[derive(Debug, Default)]
pub struct KvStore {
    data: HashMap<String, String>,
    sessions: HashMap<u64, Session>,
}

impl KvStore {
    pub fn get(&self, key: &str) -> Option<String> {
        self.data.get(key).cloned()
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The remembered outcome of `(client_id, seq)`, if that is the session's latest command.
    pub fn cached(&self, client_id: u64, seq: u64) -> Option<Applied> {
        let session = self.sessions.get(&client_id)?;
        match seq.cmp(&session.seq) {
            std::cmp::Ordering::Equal => Some(session.outcome.clone()),
            std::cmp::Ordering::Less => Some(Applied::Superseded),
            std::cmp::Ordering::Greater => None,
        }
    }

    /// Applies a committed command; a duplicate gets the original outcome and changes nothing.
    pub fn apply(&mut self, cmd: &Command) -> Applied {
        if let Some(outcome) = self.cached(cmd.client_id, cmd.seq) {
            return outcome;
        }
        let outcome = self.execute(&cmd.op);
        self.sessions.insert(
            cmd.client_id,
            Session {
                seq: cmd.seq,
                outcome: outcome.clone(),
            },
        );
        outcome
    }

    fn execute(&mut self, op: &WriteOp) -> Applied {
        match op {
            WriteOp::Put { key, value } => {
                self.data.insert(key.clone(), value.clone());
                Applied::Ok(Reply::Done)
            }
            WriteOp::Cas { key, expected, new } => match self.data.get_mut(key) {
                None => Applied::Fail(FailReason::KeyMissing),
                Some(current) if current == expected => {
                    *current = new.clone();
                    Applied::Ok(Reply::Done)
                }
                Some(current) => Applied::Fail(FailReason::CasMismatch {
                    actual: current.clone(),
                }),
            },
            WriteOp::Append { key, suffix } => {
                self.data.entry(key.clone()).or_default().push_str(suffix);
                Applied::Ok(Reply::Done)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(client_id: u64, seq: u64, op: WriteOp) -> Command {
        Command { client_id, seq, op }
    }

    fn put(k: &str, v: &str) -> WriteOp {
        WriteOp::Put {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn cas_on_a_missing_key_fails_definitely() {
        let mut kv = KvStore::default();
        let op = WriteOp::Cas {
            key: "k".into(),
            expected: "1".into(),
            new: "2".into(),
        };
        assert_eq!(
            kv.apply(&cmd(1, 1, op)),
            Applied::Fail(FailReason::KeyMissing)
        );
        assert_eq!(kv.get("k"), None);
    }

    #[test]
    fn cas_mismatch_reports_the_actual_value() {
        let mut kv = KvStore::default();
        kv.apply(&cmd(1, 1, put("k", "1")));
        let op = WriteOp::Cas {
            key: "k".into(),
            expected: "5".into(),
            new: "2".into(),
        };
        assert_eq!(
            kv.apply(&cmd(1, 2, op)),
            Applied::Fail(FailReason::CasMismatch { actual: "1".into() })
        );
        let op = WriteOp::Cas {
            key: "k".into(),
            expected: "1".into(),
            new: "2".into(),
        };
        assert_eq!(kv.apply(&cmd(1, 3, op)), Applied::Ok(Reply::Done));
        assert_eq!(kv.get("k").as_deref(), Some("2"));
    }

    #[test]
    fn a_retried_command_applies_once_and_gets_the_original_answer() {
        let mut kv = KvStore::default();
        let append = cmd(
            7,
            1,
            WriteOp::Append {
                key: "k".into(),
                suffix: "x".into(),
            },
        );
        assert_eq!(kv.apply(&append), Applied::Ok(Reply::Done));
        assert_eq!(kv.apply(&append), Applied::Ok(Reply::Done));
        assert_eq!(kv.get("k").as_deref(), Some("x"), "applied once");
        // A CAS that failed keeps failing with the original reason on retry, even if it would
        // succeed now.
        let cas = cmd(
            8,
            1,
            WriteOp::Cas {
                key: "k".into(),
                expected: "xy".into(),
                new: "z".into(),
            },
        );
        let first = kv.apply(&cas);
        kv.apply(&cmd(
            9,
            1,
            WriteOp::Append {
                key: "k".into(),
                suffix: "y".into(),
            },
        ));
        assert_eq!(kv.apply(&cas), first);
        assert_eq!(kv.apply(&cmd(7, 0, put("k", "old"))), Applied::Superseded);
        assert_eq!(kv.get("k").as_deref(), Some("xy"));
    }
}
