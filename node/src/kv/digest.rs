//! A fingerprint of the whole state machine, for comparing replicas.
//!
//! Raft's State Machine Safety property says that every node applies the same command at each
//! index. So two nodes that have applied the same index must hold exactly the same store: the
//! same keys and values, and the same session table (the answers a retry would get, the order in
//! which sessions would expire). A node whose store differs has diverged, whatever its clients
//! saw: a snapshot installed without its state, an entry applied twice, a committed entry
//! replaced. Clients see such a node only through the reads it happens to answer; its digest
//! shows it at once. (etcd checks its members the same way with `HashKV` at a revision.)
//!
//! [`KvStore::digest`] walks the store once, O(keys + sessions), without changing it. Both
//! digests are sums of one hash per entry, so they do not depend on the order the hash maps
//! iterate in, which differs between processes. The entry hash is FNV-1a over a length-prefixed
//! encoding (so `("ab", "c")` and `("a", "bc")` differ), finished with a 64-bit mixer so that the
//! sum of many of them stays well spread. It is a fingerprint against mistakes, not against an
//! adversary.

use super::{Applied, KvStore};
use crate::protocol::{FailReason, Reply};

/// The two fingerprints of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest {
    /// Of every key and its value.
    pub data: u64,
    /// Of the session table: the limits, the clock, each live session with its cached answer,
    /// and the tombstones in expiry order.
    pub sessions: u64,
}

impl KvStore {
    /// The store's fingerprints (see the module docs). Equal stores have equal digests in every
    /// process; a store that differs in any key, value or session almost surely does not.
    pub fn digest(&self) -> Digest {
        let mut data = 0u64;
        for (key, value) in self.data.iter() {
            let mut h = Fnv::new();
            h.bytes(key.as_bytes());
            h.bytes(value.as_bytes());
            data = data.wrapping_add(h.finish());
        }
        let sessions = &self.sessions;
        let limits = sessions.limits();
        let mut head = Fnv::new();
        head.u64(limits.max_sessions as u64);
        head.u64(limits.max_tombstones as u64);
        head.u64(sessions.clock());
        head.u64(sessions.expired());
        let mut table = head.finish();
        for (id, session) in sessions.live() {
            let mut h = Fnv::new();
            h.u64(1);
            h.u64(id);
            h.u64(session.seq);
            h.u64(session.last_active);
            outcome(&mut h, &session.outcome);
            table = table.wrapping_add(h.finish());
        }
        for (expiry, id) in sessions.graveyard() {
            let mut h = Fnv::new();
            h.u64(2);
            h.u64(expiry);
            h.u64(id);
            table = table.wrapping_add(h.finish());
        }
        Digest {
            data,
            sessions: table,
        }
    }
}

/// Feeds a cached answer into `h`, one tag per variant so that no two answers collide by
/// construction.
fn outcome(h: &mut Fnv, applied: &Applied) {
    match applied {
        Applied::Ok(Reply::Done) => h.u64(10),
        Applied::Ok(Reply::Value(None)) => h.u64(11),
        Applied::Ok(Reply::Value(Some(v))) => {
            h.u64(12);
            h.bytes(v.as_bytes());
        }
        Applied::Superseded => h.u64(13),
        Applied::Fail(reason) => match reason {
            FailReason::CasMismatch { actual } => {
                h.u64(20);
                h.bytes(actual.as_bytes());
            }
            FailReason::KeyMissing => h.u64(21),
            FailReason::BadRequest(why) => {
                h.u64(22);
                h.bytes(why.as_bytes());
            }
            FailReason::Unavailable(why) => {
                h.u64(23);
                h.bytes(why.as_bytes());
            }
            FailReason::SessionExpired => h.u64(24),
            // Never an answer of the state machine (admin requests do not reach it), but
            // hashed all the same.
            FailReason::ChangeRefused { reason, retry } => {
                h.u64(25 + u64::from(*retry));
                h.bytes(reason.as_bytes());
            }
        },
    }
}

/// FNV-1a, 64 bits, with a murmur3 finaliser.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn byte(&mut self, b: u8) {
        self.0 ^= u64::from(b);
        self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
    }

    fn u64(&mut self, n: u64) {
        for b in n.to_le_bytes() {
            self.byte(b);
        }
    }

    /// A length, then the bytes.
    fn bytes(&mut self, bytes: &[u8]) {
        self.u64(bytes.len() as u64);
        for &b in bytes {
            self.byte(b);
        }
    }

    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Command, SessionLimits, WriteOp};

    fn put(client_id: u64, seq: u64, key: &str, value: &str) -> Command {
        Command {
            client_id,
            seq,
            op: WriteOp::Put {
                key: key.into(),
                value: value.into(),
            },
        }
    }

    fn apply_all(kv: &mut KvStore, cmds: &[Command]) {
        for c in cmds {
            kv.apply(c);
        }
    }

    #[test]
    fn equal_stores_built_in_different_orders_have_equal_digests() {
        let cmds: Vec<Command> = (0..200)
            .map(|i| put(i % 7 + 1, i / 7 + 1, &format!("k{i}"), &format!("v{i}")))
            .collect();
        let mut a = KvStore::default();
        apply_all(&mut a, &cmds);
        // The same store, restored from its image: its maps are built in another order.
        let b = KvStore::decode(&a.encode()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.digest(), b.digest());
        assert_ne!(a.digest(), KvStore::default().digest());
    }

    #[test]
    fn one_changed_value_changes_the_data_digest_only() {
        let mut a = KvStore::default();
        apply_all(&mut a, &[put(1, 1, "x", "1"), put(2, 1, "y", "2")]);
        let mut b = KvStore::default();
        apply_all(&mut b, &[put(1, 1, "x", "1"), put(2, 1, "y", "3")]);
        let (da, db) = (a.digest(), b.digest());
        assert_ne!(da.data, db.data);
        assert_eq!(da.sessions, db.sessions);
    }

    #[test]
    fn splitting_a_key_and_value_differently_changes_the_digest() {
        let mut a = KvStore::default();
        a.apply(&put(1, 1, "ab", "c"));
        let mut b = KvStore::default();
        b.apply(&put(1, 1, "a", "bc"));
        assert_ne!(a.digest().data, b.digest().data);
    }

    #[test]
    fn a_session_difference_shows_in_the_session_digest() {
        // The same data, but one store saw a retry that the other did not: the clock (and the
        // session's activity) differ, so the two would expire sessions differently later.
        let mut a = KvStore::default();
        apply_all(&mut a, &[put(1, 1, "x", "1")]);
        let mut b = a.clone();
        b.apply(&put(1, 1, "x", "1"));
        assert_eq!(a.digest().data, b.digest().data);
        assert_ne!(a.digest().sessions, b.digest().sessions);
        // And expiry: two sessions in a store that keeps one.
        let limits = SessionLimits {
            max_sessions: 1,
            max_tombstones: 10,
        };
        let mut c = KvStore::with_limits(limits);
        let mut d = KvStore::with_limits(limits);
        apply_all(&mut c, &[put(1, 1, "x", "1"), put(2, 1, "y", "1")]);
        apply_all(&mut d, &[put(2, 1, "y", "1"), put(1, 1, "x", "1")]);
        assert_eq!(c.digest().data, d.digest().data);
        assert_ne!(c.digest().sessions, d.digest().sessions);
    }
}
