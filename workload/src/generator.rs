//! Seeded operation streams on independent keys.
//!
//! Linearizability checking is exponential in the number of concurrent operations on one key, so
//! the workload spreads over many keys and gives each a bounded life: a key receives at most
//! `ops_per_key` operations, then retires and a fresh key takes its place. A handful of keys are
//! live at once, so each sees several concurrent clients (where the anomalies are) while the
//! checker sees small independent problems.
//!
//! - **register**: read / write / cas on integers. Every value written to a key is new for that
//!   key, so every read names the write it saw. A cas expects a value recently written to the key,
//!   so that some succeed and some fail.
//! - **append**: append a unique token to a string, and read the whole string (the kv model).

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
pub use riptide_history::{OpKind, Value};
use serde::{Deserialize, Serialize};

/// Which workload to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    Register,
    Append,
}

impl std::str::FromStr for WorkloadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "register" => Ok(WorkloadKind::Register),
            "append" => Ok(WorkloadKind::Append),
            _ => Err(format!("unknown workload `{s}`; use register or append")),
        }
    }
}

impl WorkloadKind {
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Append => "append",
        }
    }
}

/// One operation to perform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedOp {
    pub kind: OpKind,
    pub key: String,
    /// write: the value written; append: the suffix; cas: the expected value; read: nil.
    pub value: Value,
    /// cas: the new value; nil otherwise.
    pub cas_new: Value,
}

impl PlannedOp {
    /// The `value` its invoke records (`[expected, new]` for a cas).
    pub fn value_json(&self) -> serde_json::Value {
        riptide_history::value_json(self.kind, &self.value, &self.cas_new)
    }
}

#[derive(Clone, Debug)]
pub struct GeneratorOptions {
    pub kind: WorkloadKind,
    pub ops_per_key: u32,
    /// Keys live at once.
    pub live_keys: usize,
    pub seed: u64,
}

struct KeyState {
    name: String,
    issued: u32,
    next_value: i64,
    recent: Vec<i64>,
}

/// A deterministic (given its seed and the order of `next` calls) stream of operations.
pub struct Generator {
    opts: GeneratorOptions,
    rng: ChaCha8Rng,
    live: Vec<KeyState>,
    next_key: u64,
    /// Every key ever used, in order of first use.
    used: BTreeMap<u64, String>,
}

/// How many recent values a cas may expect. Small, so that cas succeeds often enough to matter.
const CAS_CANDIDATES: usize = 3;

impl Generator {
    pub fn new(opts: GeneratorOptions) -> Generator {
        let rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let mut g = Generator {
            live: Vec::new(),
            next_key: 0,
            used: BTreeMap::new(),
            rng,
            opts,
        };
        for _ in 0..g.opts.live_keys.max(1) {
            let key = g.fresh_key();
            g.live.push(key);
        }
        g
    }

    fn fresh_key(&mut self) -> KeyState {
        let id = self.next_key;
        self.next_key += 1;
        let name = format!("k{id}");
        self.used.insert(id, name.clone());
        KeyState {
            name,
            issued: 0,
            next_value: 1,
            recent: Vec::new(),
        }
    }

    /// Every key handed out so far.
    pub fn keys(&self) -> Vec<String> {
        self.used.values().cloned().collect()
    }

    /// Is `key` still handed out? A key that is not has retired for good (past
    /// `ops_per_key`): no op on it is planned again.
    pub fn is_live(&self, key: &str) -> bool {
        self.live.iter().any(|k| k.name == key)
    }

    pub fn next_op(&mut self) -> PlannedOp {
        let slot = self.rng.gen_range(0..self.live.len());
        let roll: u32 = self.rng.gen_range(0..100);
        let kind = self.opts.kind;
        let key = &mut self.live[slot];
        key.issued += 1;
        let op = match kind {
            WorkloadKind::Register => match roll {
                0..=49 => PlannedOp {
                    kind: OpKind::Read,
                    key: key.name.clone(),
                    value: Value::Nil,
                    cas_new: Value::Nil,
                },
                50..=79 => {
                    let v = key.next_value;
                    key.next_value += 1;
                    key.recent.push(v);
                    PlannedOp {
                        kind: OpKind::Write,
                        key: key.name.clone(),
                        value: Value::Int(v),
                        cas_new: Value::Nil,
                    }
                }
                _ => {
                    let new = key.next_value;
                    key.next_value += 1;
                    let expected = if key.recent.is_empty() {
                        0 // never written: a definite failure, still a useful op
                    } else {
                        let from = key.recent.len().saturating_sub(CAS_CANDIDATES);
                        key.recent[self.rng.gen_range(from..key.recent.len())]
                    };
                    key.recent.push(new);
                    PlannedOp {
                        kind: OpKind::Cas,
                        key: key.name.clone(),
                        value: Value::Int(expected),
                        cas_new: Value::Int(new),
                    }
                }
            },
            WorkloadKind::Append => {
                if roll < 50 {
                    PlannedOp {
                        kind: OpKind::Read,
                        key: key.name.clone(),
                        value: Value::Nil,
                        cas_new: Value::Nil,
                    }
                } else {
                    let v = key.next_value;
                    key.next_value += 1;
                    PlannedOp {
                        kind: OpKind::Append,
                        key: key.name.clone(),
                        value: Value::Str(format!("{v} ")),
                        cas_new: Value::Nil,
                    }
                }
            }
        };
        if key.recent.len() > 4 * CAS_CANDIDATES {
            key.recent.drain(..key.recent.len() - CAS_CANDIDATES);
        }
        if self.live[slot].issued >= self.opts.ops_per_key {
            self.live[slot] = self.fresh_key();
        }
        op
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kind: WorkloadKind, seed: u64) -> GeneratorOptions {
        GeneratorOptions {
            kind,
            ops_per_key: 50,
            live_keys: 4,
            seed,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_ops() {
        let mut a = Generator::new(opts(WorkloadKind::Register, 9));
        let mut b = Generator::new(opts(WorkloadKind::Register, 9));
        let mut c = Generator::new(opts(WorkloadKind::Register, 10));
        let xs: Vec<PlannedOp> = (0..500).map(|_| a.next_op()).collect();
        let ys: Vec<PlannedOp> = (0..500).map(|_| b.next_op()).collect();
        let zs: Vec<PlannedOp> = (0..500).map(|_| c.next_op()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn keys_get_a_bounded_number_of_ops_and_written_values_are_unique_per_key() {
        let mut g = Generator::new(opts(WorkloadKind::Register, 1));
        let mut per_key: BTreeMap<String, Vec<PlannedOp>> = BTreeMap::new();
        for _ in 0..2_000 {
            let op = g.next_op();
            per_key.entry(op.key.clone()).or_default().push(op);
        }
        assert!(per_key.len() >= 2_000 / 50);
        for (key, ops) in &per_key {
            assert!(ops.len() <= 50, "{key} got {} ops", ops.len());
            let mut written: Vec<i64> = ops
                .iter()
                .filter_map(|op| match (op.kind, &op.value, &op.cas_new) {
                    (OpKind::Write, Value::Int(v), _) | (OpKind::Cas, _, Value::Int(v)) => Some(*v),
                    _ => None,
                })
                .collect();
            let n = written.len();
            written.sort_unstable();
            written.dedup();
            assert_eq!(written.len(), n, "{key} reuses a value");
        }
        let kinds: Vec<OpKind> = per_key.values().flatten().map(|op| op.kind).collect();
        for kind in [OpKind::Read, OpKind::Write, OpKind::Cas] {
            assert!(kinds.contains(&kind));
        }
    }

    #[test]
    fn the_append_workload_appends_unique_tokens() {
        let mut g = Generator::new(opts(WorkloadKind::Append, 3));
        let ops: Vec<PlannedOp> = (0..200).map(|_| g.next_op()).collect();
        assert!(ops.iter().any(|op| op.kind == OpKind::Append));
        assert!(ops
            .iter()
            .all(|op| matches!(op.kind, OpKind::Append | OpKind::Read)));
    }
}
