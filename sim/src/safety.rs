//! Raft's safety properties, checked across the cluster while it runs (paper §5.2, §5.3, §5.4),
//! and a reference state machine that every node's must match.
//!
//! - **Election Safety**: at most one leader in a term (every leader is recorded after each
//!   batch).
//! - **State Machine Safety**: no two nodes apply different entries at one index. Each applied
//!   entry is checked, as it is applied, against the first entry any node applied at that index;
//!   the first ones form the cluster's applied log, which has no gaps: a node that skips ahead
//!   by installing a snapshot skips only what some node applied before it. A node applies
//!   consecutive indexes, and jumps only by installing a snapshot.
//! - **The state machine**: the applied log drives a reference store, kept as of every index
//!   (clones share structure, so that is cheap). After every Ready that applied or installed
//!   something, and after a boot, a running node's store must equal the reference at its
//!   applied index, and every snapshot on a disk must decode to the
//!   reference at its index. This is what catches a snapshot that misses or repeats an entry, a
//!   restart or an install that keeps the wrong state, or a state machine rolled back.
//! - **Log Matching**: if two durable logs hold an entry with the same index and term, they hold
//!   the same entries up to it (compared where both still hold entries: a log starts after its
//!   snapshot).

use std::collections::{BTreeMap, BTreeSet};

use riptide_node::kv::{Command, KvStore};
use riptide_node::storage::Snapshot;
use riptide_node::types::{Entry, Index, NodeId, Payload, Term};

/// What the cluster has seen so far, and the first violation found.
#[derive(Debug)]
pub struct Safety {
    leaders_by_term: BTreeMap<Term, BTreeSet<NodeId>>,
    /// The entry applied at index `k + 1`, by whichever node applied it first.
    log: Vec<Entry>,
    /// `states[i]`: the reference store after applying `log[..i]`.
    states: Vec<KvStore>,
    /// Each running node's applied index, as its applied entries tell it.
    applied_to: BTreeMap<NodeId, Index>,
    /// Running nodes whose store was checked since they booted and has not changed since.
    store_checked: BTreeSet<NodeId>,
    /// The index of the snapshot last checked on each node's disk.
    snapshot_checked: BTreeMap<NodeId, Index>,
    violation: Option<String>,
}

/// What one node did in one Ready.
pub struct Applied<'a> {
    pub entries: &'a [Entry],
    /// It installed a snapshot from the leader.
    pub installed: bool,
    /// The Ready failed (a crash inside it): the store may lag the applied index.
    pub failed: bool,
    pub applied_index: Index,
    pub kv: &'a KvStore,
}

impl Default for Safety {
    fn default() -> Safety {
        Safety {
            leaders_by_term: BTreeMap::new(),
            log: Vec::new(),
            states: vec![KvStore::default()],
            applied_to: BTreeMap::new(),
            store_checked: BTreeSet::new(),
            snapshot_checked: BTreeMap::new(),
            violation: None,
        }
    }
}

impl Safety {
    pub fn leader(&mut self, term: Term, id: NodeId) {
        self.leaders_by_term.entry(term).or_default().insert(id);
    }

    /// The node booted with its state machine at `applied`.
    pub fn booted(&mut self, id: NodeId, applied: Index) {
        self.applied_to.insert(id, applied);
        self.store_checked.remove(&id);
    }

    /// The cluster's applied log: the entry applied at each index, from 1 on.
    pub fn applied_log(&self) -> &[Entry] {
        &self.log
    }

    /// The first violation found, if any.
    pub fn check(&self) -> Result<(), String> {
        for (term, leaders) in &self.leaders_by_term {
            if leaders.len() > 1 {
                return Err(format!("two leaders in term {term}: {leaders:?}"));
            }
        }
        match &self.violation {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }

    fn violated(&mut self, why: impl FnOnce() -> String) {
        if self.violation.is_none() {
            self.violation = Some(why());
        }
    }

    /// Checks what node `id` applied in one Ready, and its store after it.
    pub fn applied(&mut self, id: NodeId, ready: Applied<'_>) {
        let mut prev = self.applied_to[&id];
        for entry in ready.entries {
            let index = entry.index;
            if index <= prev || (index != prev + 1 && !ready.installed) {
                self.violated(|| {
                    format!(
                        "state machine safety: node {id} applied index {index} after index {prev}"
                    )
                });
            }
            self.record(id, entry);
            prev = index;
        }
        if ready.failed {
            self.applied_to.insert(id, prev);
            return;
        }
        if ready.applied_index < prev || (ready.applied_index != prev && !ready.installed) {
            let at = ready.applied_index;
            self.violated(|| {
                format!(
                    "state machine safety: node {id} is at applied index {at}, but applied {prev}"
                )
            });
        }
        let at = ready.applied_index;
        self.applied_to.insert(id, at);
        // Nothing else changes the store (a read does not), and comparing stores is not free.
        let unchanged = ready.entries.is_empty() && !ready.installed;
        if !(unchanged && self.store_checked.contains(&id)) {
            self.store_checked.insert(id);
            self.check_store(id, at, ready.kv);
        }
    }

    /// Node `id`'s store must be the reference at its applied index `at`.
    pub fn check_store(&mut self, id: NodeId, at: Index, kv: &KvStore) {
        match self.states.get(at as usize) {
            Some(state) if state == kv => {}
            Some(_) => self.violated(|| {
                format!(
                    "state machine safety: node {id}'s store at applied index {at} differs from \
                     what the applied log gives"
                )
            }),
            None => self
                .violated(|| format!("node {id} is at applied index {at}, which no node applied")),
        }
    }

    /// One applied entry against the cluster's applied log.
    fn record(&mut self, id: NodeId, entry: &Entry) {
        let index = entry.index;
        let len = self.log.len() as Index;
        if index <= len {
            let first = &self.log[(index - 1) as usize];
            if first != entry {
                let first = first.clone();
                self.violated(|| {
                    format!(
                        "state machine safety: node {id} applied {entry:?} at index {index}, \
                         another node {first:?}"
                    )
                });
            }
            return;
        }
        if index != len + 1 {
            self.violated(|| {
                format!("node {id} applied index {index}, but no node applied index {len} + 1")
            });
            return;
        }
        let mut state = self
            .states
            .last()
            .expect("starts with the empty store")
            .clone();
        if let Payload::Command(bytes) = &entry.payload {
            // As the executor does: an undecodable command is skipped.
            if let Ok(command) = Command::decode(bytes) {
                state.apply(&command);
            }
        }
        self.log.push(entry.clone());
        self.states.push(state);
    }

    /// Checks the snapshot on node `id`'s disk, once per new snapshot: its state must be the
    /// reference at its index, and its term the applied entry's.
    pub fn disk_snapshot(&mut self, id: NodeId, snapshot: Option<&Snapshot>) {
        let Some(snapshot) = snapshot else { return };
        let index = snapshot.meta.last_index;
        if self.snapshot_checked.insert(id, index) == Some(index) {
            return;
        }
        let term = snapshot.meta.last_term;
        let Some(state) = self.states.get(index as usize) else {
            return self.violated(|| {
                format!("node {id} holds a snapshot at index {index}, which no node applied")
            });
        };
        let entry_term = self.log[(index - 1) as usize].term;
        let decoded = KvStore::decode(snapshot.data());
        if entry_term != term || decoded.as_ref() != Ok(state) {
            self.violated(|| {
                format!(
                    "node {id}'s snapshot at index {index} (term {term}) is not the state the \
                     applied log gives there (entry term {entry_term}; decoded: {})",
                    decoded
                        .as_ref()
                        .map_or_else(|e| e.clone(), |_| "a different store".into())
                )
            });
        }
    }
}

/// A durable log: the index it starts after, and its entries.
pub type DurableLog<'a> = (Index, &'a [Entry]);

/// Log Matching between the durable logs of nodes `a` and `b`, where both hold entries.
pub fn log_matching(
    a: NodeId,
    x: DurableLog<'_>,
    b: NodeId,
    y: DurableLog<'_>,
) -> Result<(), String> {
    let from = x.0.max(y.0) + 1;
    let to = (x.0 + x.1.len() as Index).min(y.0 + y.1.len() as Index);
    let same_term = |k: Index| entry_at(x, k).term == entry_at(y, k).term;
    let Some(k) = (from..=to).rev().find(|&k| same_term(k)) else {
        return Ok(());
    };
    match (from..=k).find(|&i| entry_at(x, i) != entry_at(y, i)) {
        None => Ok(()),
        Some(i) => Err(format!(
            "log matching: nodes {a} and {b} agree on the term of index {k} but not on the \
             entry at {i}"
        )),
    }
}

fn entry_at<'a>((offset, log): DurableLog<'a>, index: Index) -> &'a Entry {
    &log[(index - offset - 1) as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: Index, term: Term, payload: &[u8]) -> Entry {
        Entry {
            term,
            index,
            payload: if payload.is_empty() {
                Payload::Noop
            } else {
                Payload::Command(payload.to_vec())
            },
        }
    }

    fn ready<'a>(entries: &'a [Entry], installed: bool, at: Index, kv: &'a KvStore) -> Applied<'a> {
        Applied {
            entries,
            installed,
            failed: false,
            applied_index: at,
            kv,
        }
    }

    #[test]
    fn log_matching_compares_where_both_logs_hold_entries() {
        let x = [entry(1, 1, b""), entry(2, 1, b""), entry(3, 2, b"")];
        let after_snapshot = [entry(3, 2, b"")];
        assert!(log_matching(1, (0, &x), 2, (2, &after_snapshot)).is_ok());
        let other = [entry(2, 1, b"x"), entry(3, 2, b"")];
        let why = log_matching(1, (0, &x), 2, (1, &other)).unwrap_err();
        assert!(
            why.contains("index 3") && why.contains("entry at 2"),
            "{why}"
        );
    }

    #[test]
    fn nodes_must_apply_the_same_entries_in_order_and_hold_the_same_store() {
        let empty = KvStore::default();
        let mut safety = Safety::default();
        safety.booted(1, 0);
        safety.booted(2, 0);
        let log = [entry(1, 1, b""), entry(2, 1, b""), entry(3, 1, b"")];
        safety.applied(1, ready(&log, false, 3, &empty));
        // Node 2 skips ahead by installing a snapshot at 2: fine.
        safety.applied(2, ready(&log[2..], true, 3, &empty));
        assert!(safety.check().is_ok());

        let mut skipping = Safety::default();
        skipping.booted(1, 0);
        skipping.applied(1, ready(&log, false, 3, &empty));
        skipping.booted(2, 0);
        skipping.applied(2, ready(&log[1..], false, 3, &empty));
        assert!(skipping
            .check()
            .unwrap_err()
            .contains("applied index 2 after index 0"));

        let mut different = Safety::default();
        different.booted(1, 0);
        different.applied(1, ready(&log, false, 3, &empty));
        different.booted(2, 0);
        different.applied(2, ready(&[entry(1, 2, b"")], false, 1, &empty));
        assert!(different
            .check()
            .unwrap_err()
            .contains("state machine safety"));

        let mut lost = Safety::default();
        lost.booted(1, 0);
        let put = riptide_node::kv::Command {
            client_id: 1,
            seq: 1,
            op: riptide_node::protocol::WriteOp::Put {
                key: "k".into(),
                value: "v".into(),
            },
        };
        let write = [entry(1, 1, &put.encode())];
        // The entry applied, but the store did not change: the write is lost.
        lost.applied(1, ready(&write, false, 1, &empty));
        assert!(lost
            .check()
            .unwrap_err()
            .contains("store at applied index 1"));
    }
}
