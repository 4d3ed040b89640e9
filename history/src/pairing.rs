//! Pairing: each completion goes with the open invoke of the same process.
//!
//! A process runs one op at a time, so at any moment it has at most one *open* op: invoked, not
//! yet completed. Pairing is then a map from process to its open op. [`OpenOps`] is that map; the
//! caller decides what an op is (`T`: a slot in its own table, an invoke time, ...) and what to
//! do with the two ways a history can break the rule:
//!
//! - a **double invoke**: a process invokes while its previous op is still open
//!   ([`OpenOps::invoke`] refuses it and hands back the open op);
//! - an **orphan completion**: a completion for a process with no open op
//!   ([`OpenOps::complete`] returns `None`).
//!
//! What is still open when the history ends ([`OpenOps::into_open`]) never completed: the ops
//! whose [`Outcome`](crate::Outcome) is `Open`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Hashes a process number with one multiply (Fx's constant): pairing runs once per event of
/// every history the checker reads, where std's SipHash costs more than the rest of the
/// pairing. Process numbers come from a history file, never from an adversary.
#[derive(Default, Clone, Copy)]
struct ProcessHasher(u64);

impl Hasher for ProcessHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// The open op of each client process.
#[derive(Clone, Debug)]
pub struct OpenOps<T> {
    open: HashMap<u64, T, BuildHasherDefault<ProcessHasher>>,
}

impl<T> Default for OpenOps<T> {
    fn default() -> Self {
        OpenOps {
            open: HashMap::default(),
        }
    }
}

impl<T> OpenOps<T> {
    pub fn new() -> OpenOps<T> {
        OpenOps::default()
    }

    /// Opens `op` for `process`. A double invoke is refused: nothing changes, and the op
    /// already open is returned.
    pub fn invoke(&mut self, process: u64, op: T) -> Result<(), &T> {
        match self.open.entry(process) {
            std::collections::hash_map::Entry::Occupied(e) => Err(e.into_mut()),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(op);
                Ok(())
            }
        }
    }

    /// Closes and returns the open op of `process`; `None` is an orphan completion.
    pub fn complete(&mut self, process: u64) -> Option<T> {
        self.open.remove(&process)
    }

    /// The open op of `process`, if any.
    pub fn get(&self, process: u64) -> Option<&T> {
        self.open.get(&process)
    }

    /// How many ops are open.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// The ops never completed, with their processes, in no particular order.
    pub fn into_open(self) -> impl Iterator<Item = (u64, T)> {
        self.open.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_pair_with_their_process_open_invoke() {
        let mut open = OpenOps::new();
        open.invoke(1, "write 1").unwrap();
        open.invoke(2, "read").unwrap();
        assert_eq!(open.complete(2), Some("read"));
        assert_eq!(open.complete(1), Some("write 1"));
        assert!(open.is_empty());
    }

    #[test]
    fn a_double_invoke_is_refused_and_an_orphan_completion_finds_nothing() {
        let mut open = OpenOps::new();
        open.invoke(1, "first").unwrap();
        assert_eq!(open.invoke(1, "second"), Err(&"first"));
        assert_eq!(open.get(1), Some(&"first"));
        assert_eq!(open.complete(7), None);
        assert_eq!(open.len(), 1);
        assert_eq!(open.into_open().collect::<Vec<_>>(), [(1, "first")]);
    }
}
