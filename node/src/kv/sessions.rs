//! The session table: one entry per live client session, expired least-recently-active first
//! once there are too many, and a bounded memory of the sessions it expired (tombstones).
//!
//! Everything here must evolve identically on every node, because the table is part of the
//! replicated state: the answer a command gets depends on it. So nothing reads a clock or
//! depends on a hash map's iteration order. Time is `clock`, the number of commands the store
//! has taken (every command except those refused as [`FailReason::SessionExpired`], which change
//! nothing); a session's activity is the clock value of its latest command. Two indexes keep the
//! policy O(log n) per command instead of a scan:
//!
//! - `by_activity` maps activity → client id. Activities are unique (the clock ticks once per
//!   command), so its first entry is the least recently active session;
//! - `graveyard` maps expiry number → client id, in the order the sessions expired, so its
//!   first entry is the oldest tombstone; `tombstones` is the same set keyed by client id.
//!
//! Every map is persistent ([`imbl`]), so cloning the table is O(1) like the rest of the store.

use imbl::{HashMap, HashSet, OrdMap};

use super::{Applied, SessionLimits};
use crate::protocol::FailReason;

/// What the table remembers of one client session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Session {
    /// The sequence number of the session's latest command.
    pub seq: u64,
    /// That command's answer, for retries.
    pub outcome: Applied,
    /// The clock value of the session's latest command.
    pub last_active: u64,
}

/// The live sessions, the tombstones and the counters that drive expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Sessions {
    limits: SessionLimits,
    live: HashMap<u64, Session>,
    by_activity: OrdMap<u64, u64>,
    tombstones: HashSet<u64>,
    graveyard: OrdMap<u64, u64>,
    clock: u64,
    expired: u64,
}

/// What the table says about a command before it is executed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Settled without executing: a retry (the original answer), an older command
    /// (`Superseded`) or a command of an expired session (`SessionExpired`).
    Settled(Applied),
    /// A new command of a live session, or the first command of a new one: execute it.
    Execute,
}

/// The parts of the table a snapshot holds; the indexes are rebuilt from them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Image {
    pub limits: SessionLimits,
    pub clock: u64,
    pub expired: u64,
    /// `(client id, session)`.
    pub live: Vec<(u64, Session)>,
    /// `(expiry number, client id)`.
    pub graveyard: Vec<(u64, u64)>,
}

impl Sessions {
    pub fn new(limits: SessionLimits) -> Sessions {
        let limits = SessionLimits {
            max_sessions: limits.max_sessions.max(1),
            ..limits
        };
        Sessions {
            limits,
            live: HashMap::new(),
            by_activity: OrdMap::new(),
            tombstones: HashSet::new(),
            graveyard: OrdMap::new(),
            clock: 0,
            expired: 0,
        }
    }

    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn expired(&self) -> u64 {
        self.expired
    }

    pub fn tombstone_count(&self) -> usize {
        self.tombstones.len()
    }

    /// The verdict on `(client_id, seq)`, changing nothing (what the leader asks before it
    /// proposes, and what [`Sessions::admit`] acts on).
    pub fn verdict(&self, client_id: u64, seq: u64) -> Verdict {
        let Some(session) = self.live.get(&client_id) else {
            // Unknown: a new session if this is its first command and the id never expired.
            if seq > 1 || self.tombstones.contains(&client_id) {
                return Verdict::Settled(Applied::Fail(FailReason::SessionExpired));
            }
            return Verdict::Execute;
        };
        match seq.cmp(&session.seq) {
            std::cmp::Ordering::Equal => Verdict::Settled(session.outcome.clone()),
            std::cmp::Ordering::Less => Verdict::Settled(Applied::Superseded),
            std::cmp::Ordering::Greater => Verdict::Execute,
        }
    }

    /// The verdict on a committed command, with its effect on the table: a command of a live
    /// session counts as activity, even when it is only a retry. A verdict of `Execute` must be
    /// followed by [`Sessions::record`].
    pub fn admit(&mut self, client_id: u64, seq: u64) -> Verdict {
        let verdict = self.verdict(client_id, seq);
        match &verdict {
            Verdict::Settled(Applied::Fail(FailReason::SessionExpired)) => {}
            Verdict::Settled(_) => {
                self.clock += 1;
                self.touch(client_id);
            }
            Verdict::Execute => self.clock += 1,
        }
        verdict
    }

    /// Remembers the outcome of the command just executed, opening its session (and expiring
    /// the least recently active one if that makes too many) if it is new.
    pub fn record(&mut self, client_id: u64, seq: u64, outcome: Applied) {
        let last_active = self.clock;
        let previous = self.live.insert(
            client_id,
            Session {
                seq,
                outcome,
                last_active,
            },
        );
        match previous {
            Some(old) => {
                self.by_activity.remove(&old.last_active);
            }
            // The new session is not in `by_activity` yet, so it cannot be the one to go.
            None if self.live.len() > self.limits.max_sessions => self.expire_least_recent(),
            None => {}
        }
        self.by_activity.insert(last_active, client_id);
    }

    /// Moves a live session's activity to the current clock value.
    fn touch(&mut self, client_id: u64) {
        let clock = self.clock;
        let Some(session) = self.live.get_mut(&client_id) else {
            return;
        };
        let before = std::mem::replace(&mut session.last_active, clock);
        self.by_activity.remove(&before);
        self.by_activity.insert(clock, client_id);
    }

    /// Expires the session with the smallest activity and tombstones its client id, dropping
    /// the oldest tombstone if there are too many.
    fn expire_least_recent(&mut self) {
        let Some(&(activity, client_id)) = self.by_activity.get_min() else {
            return;
        };
        self.by_activity.remove(&activity);
        self.live.remove(&client_id);
        self.expired += 1;
        self.tombstones.insert(client_id);
        self.graveyard.insert(self.expired, client_id);
        while self.graveyard.len() > self.limits.max_tombstones {
            let Some(&(number, oldest)) = self.graveyard.get_min() else {
                break;
            };
            self.graveyard.remove(&number);
            self.tombstones.remove(&oldest);
        }
    }

    /// The clock value of the latest command taken.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// The live sessions, in no particular order.
    pub fn live(&self) -> impl ExactSizeIterator<Item = (u64, &Session)> {
        self.live.iter().map(|(&id, session)| (id, session))
    }

    /// The tombstones as `(expiry number, client id)`, oldest first.
    pub fn graveyard(&self) -> impl ExactSizeIterator<Item = (u64, u64)> + '_ {
        self.graveyard.iter().map(|(&number, &id)| (number, id))
    }

    /// Rebuilds the table from a snapshot's parts, refusing parts that no table could have
    /// produced (so that a damaged snapshot cannot make a node diverge later).
    pub fn from_image(image: Image) -> Result<Sessions, String> {
        let Image {
            limits,
            clock,
            expired,
            live,
            graveyard,
        } = image;
        if limits.max_sessions == 0 {
            return Err("max_sessions is 0".into());
        }
        if live.len() > limits.max_sessions || graveyard.len() > limits.max_tombstones {
            return Err("more sessions or tombstones than the limits allow".into());
        }
        let mut table = Sessions::new(limits);
        table.clock = clock;
        table.expired = expired;
        for (client_id, session) in live {
            table.restore_session(client_id, session)?;
        }
        for (number, client_id) in graveyard {
            table.restore_tombstone(number, client_id)?;
        }
        Ok(table)
    }

    fn restore_session(&mut self, client_id: u64, session: Session) -> Result<(), String> {
        if session.last_active > self.clock {
            return Err(format!("session {client_id} is active after the clock"));
        }
        if self.by_activity.contains_key(&session.last_active) {
            return Err(format!(
                "two sessions share activity {}",
                session.last_active
            ));
        }
        self.by_activity.insert(session.last_active, client_id);
        if self.live.insert(client_id, session).is_some() {
            return Err(format!("session {client_id} appears twice"));
        }
        Ok(())
    }

    fn restore_tombstone(&mut self, number: u64, client_id: u64) -> Result<(), String> {
        if number == 0 || number > self.expired {
            return Err(format!("tombstone number {number} is out of range"));
        }
        if self.live.contains_key(&client_id) || self.tombstones.contains(&client_id) {
            return Err(format!("client {client_id} is tombstoned twice or alive"));
        }
        if self.graveyard.insert(number, client_id).is_some() {
            return Err(format!("tombstone number {number} appears twice"));
        }
        self.tombstones.insert(client_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap as StdMap, VecDeque};

    use proptest::prelude::*;

    use crate::kv::{Applied, Command, KvStore, SessionLimits, WriteOp};
    use crate::protocol::{FailReason, Reply};

    const EXPIRED: Applied = Applied::Fail(FailReason::SessionExpired);

    fn append(client_id: u64, seq: u64, suffix: &str) -> Command {
        Command {
            client_id,
            seq,
            op: WriteOp::Append {
                key: "k".into(),
                suffix: suffix.into(),
            },
        }
    }

    fn limited(max_sessions: usize, max_tombstones: usize) -> KvStore {
        KvStore::with_limits(SessionLimits {
            max_sessions,
            max_tombstones,
        })
    }

    #[test]
    fn the_least_recently_active_session_expires_not_the_oldest() {
        let mut kv = limited(3, 10);
        for client in [1, 2, 3] {
            kv.apply(&append(client, 1, "x"));
        }
        // Client 1, the oldest session, is active again; client 2 is now the least recent.
        kv.apply(&append(1, 2, "y"));
        assert_eq!(kv.session_count(), 3);
        assert_eq!(kv.sessions_expired(), 0);
        kv.apply(&append(4, 1, "z"));
        assert_eq!(kv.session_count(), 3);
        assert_eq!(kv.sessions_expired(), 1);
        assert_eq!(kv.cached(2, 2), Some(EXPIRED), "client 2 expired");
        assert_eq!(kv.cached(1, 3), None, "client 1 lives on");
        assert_eq!(kv.cached(3, 2), None, "client 3 lives on");
        assert_eq!(kv.cached(4, 1), Some(Applied::Ok(Reply::Done)));
        // Next to go is client 3 (its last command came before client 1's second one).
        kv.apply(&append(5, 1, "w"));
        assert_eq!(kv.cached(3, 2), Some(EXPIRED));
        assert_eq!(kv.cached(1, 3), None);
    }

    #[test]
    fn a_retry_counts_as_activity() {
        let mut kv = limited(2, 10);
        kv.apply(&append(1, 1, "a"));
        kv.apply(&append(2, 1, "b"));
        assert_eq!(kv.apply(&append(1, 1, "a")), Applied::Ok(Reply::Done));
        kv.apply(&append(3, 1, "c"));
        assert_eq!(
            kv.cached(2, 2),
            Some(EXPIRED),
            "client 2 was the least recent"
        );
        assert_eq!(kv.cached(1, 2), None);
        assert_eq!(
            kv.get("k").as_deref(),
            Some("abc"),
            "the retry did not apply"
        );
    }

    #[test]
    fn a_retry_of_an_expired_sessions_command_is_refused_and_changes_nothing() {
        let mut kv = limited(3, 10);
        kv.apply(&append(7, 1, "a"));
        kv.apply(&append(7, 2, "b"));
        for client in [8, 9, 10] {
            kv.apply(&append(client, 1, "-"));
        }
        assert_eq!(kv.sessions_expired(), 1);
        let before = kv.clone();
        for seq in [1, 2, 3] {
            assert_eq!(kv.cached(7, seq), Some(EXPIRED), "cached, seq {seq}");
            assert_eq!(
                kv.apply(&append(7, seq, "again")),
                EXPIRED,
                "apply, seq {seq}"
            );
        }
        assert_eq!(kv.get("k").as_deref(), Some("ab---"));
        assert_eq!(kv, before, "not even the clock moved");
        // Its client starts over with a new session, which works.
        assert_eq!(kv.apply(&append(11, 1, "c")), Applied::Ok(Reply::Done));
        assert_eq!(kv.get("k").as_deref(), Some("ab---c"));
    }

    #[test]
    fn a_command_above_seq_1_of_an_unknown_session_is_session_expired() {
        let mut kv = KvStore::default();
        assert_eq!(kv.cached(5, 2), Some(EXPIRED));
        assert_eq!(kv.apply(&append(5, 2, "x")), EXPIRED);
        assert_eq!(kv.get("k"), None);
        assert_eq!(kv.session_count(), 0);
        assert_eq!(kv, KvStore::default());
        // The first command of a new session goes through the log.
        assert_eq!(kv.cached(5, 1), None);
        assert_eq!(kv.apply(&append(5, 1, "x")), Applied::Ok(Reply::Done));
        assert_eq!(kv.session_count(), 1);
    }

    #[test]
    fn tombstones_are_bounded_oldest_dropped_first() {
        let mut kv = limited(1, 2);
        for client in 1..=4 {
            kv.apply(&append(client, 1, "x"));
        }
        assert_eq!(kv.sessions_expired(), 3);
        assert_eq!(kv.session_count(), 1);
        assert_eq!(kv.tombstone_count(), 2);
        assert_eq!(kv.cached(2, 1), Some(EXPIRED));
        assert_eq!(kv.cached(3, 1), Some(EXPIRED));
        // The documented hole: client 1's tombstone was dropped, so a retry of its first
        // command looks like a new session and would apply again. Its later commands are
        // still refused.
        assert_eq!(kv.cached(1, 1), None);
        assert_eq!(kv.cached(1, 2), Some(EXPIRED));
        assert_eq!(kv.apply(&append(1, 1, "x")), Applied::Ok(Reply::Done));
        assert_eq!(kv.get("k").as_deref(), Some("xxxxx"));
        // Reopening client 1 expired client 4, whose tombstone pushed out client 2's.
        assert_eq!(kv.tombstone_count(), 2);
        assert_eq!(kv.cached(2, 1), None);
        assert_eq!(kv.cached(4, 1), Some(EXPIRED));
    }

    #[test]
    fn no_tombstones_and_at_least_one_session() {
        let mut kv = limited(0, 0);
        assert_eq!(kv.limits().max_sessions, 1);
        kv.apply(&append(1, 1, "a"));
        kv.apply(&append(2, 1, "b"));
        assert_eq!(kv.session_count(), 1);
        assert_eq!(kv.tombstone_count(), 0);
        assert_eq!(kv.cached(1, 2), Some(EXPIRED), "seq > 1 needs no tombstone");
        assert_eq!(kv.cached(2, 1), Some(Applied::Ok(Reply::Done)));
    }

    #[test]
    fn two_stores_fed_the_same_commands_expire_the_same_sessions() {
        let (mut a, mut b) = (limited(4, 3), limited(4, 3));
        let mut state = 1u64;
        for _ in 0..2_000 {
            // A small deterministic mix of clients, retries and stale commands.
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let client = (state >> 33) % 12;
            let seq = (state >> 45) % 4;
            let command = append(client, seq, &client.to_string());
            assert_eq!(a.cached(client, seq), b.cached(client, seq));
            assert_eq!(a.apply(&command), b.apply(&command));
        }
        assert!(a.sessions_expired() > 10, "the mix must exercise expiry");
        assert_eq!(a.sessions_expired(), b.sessions_expired());
        assert_eq!(a, b);
    }

    /// The policy written the slow, obvious way (scans, a queue), to check the indexes against.
    struct Model {
        limits: SessionLimits,
        data: StdMap<String, String>,
        /// `(client id, seq, outcome, last activity)`.
        live: Vec<(u64, u64, Applied, u64)>,
        tombstones: VecDeque<u64>,
        clock: u64,
        expired: u64,
    }

    impl Model {
        fn apply(&mut self, cmd: &Command) -> Applied {
            if let Some(s) = self.live.iter_mut().find(|s| s.0 == cmd.client_id) {
                self.clock += 1;
                s.3 = self.clock;
                if cmd.seq <= s.1 {
                    return if cmd.seq == s.1 {
                        s.2.clone()
                    } else {
                        Applied::Superseded
                    };
                }
                let outcome = execute(&mut self.data, &cmd.op);
                (s.1, s.2) = (cmd.seq, outcome.clone());
                return outcome;
            }
            if cmd.seq > 1 || self.tombstones.contains(&cmd.client_id) {
                return EXPIRED;
            }
            self.clock += 1;
            if self.live.len() == self.limits.max_sessions {
                let oldest = (0..self.live.len())
                    .min_by_key(|&i| self.live[i].3)
                    .unwrap();
                let gone = self.live.remove(oldest).0;
                self.expired += 1;
                self.tombstones.push_back(gone);
                if self.tombstones.len() > self.limits.max_tombstones {
                    self.tombstones.pop_front();
                }
            }
            let outcome = execute(&mut self.data, &cmd.op);
            self.live
                .push((cmd.client_id, cmd.seq, outcome.clone(), self.clock));
            outcome
        }
    }

    fn execute(data: &mut StdMap<String, String>, op: &WriteOp) -> Applied {
        match op {
            WriteOp::Put { key, value } => {
                data.insert(key.clone(), value.clone());
            }
            WriteOp::Cas { key, expected, new } => match data.get(key) {
                None => return Applied::Fail(FailReason::KeyMissing),
                Some(v) if v != expected => {
                    let actual = v.clone();
                    return Applied::Fail(FailReason::CasMismatch { actual });
                }
                Some(_) => {
                    data.insert(key.clone(), new.clone());
                }
            },
            WriteOp::Append { key, suffix } => {
                data.entry(key.clone()).or_default().push_str(suffix)
            }
        }
        Applied::Ok(Reply::Done)
    }

    fn command() -> impl Strategy<Value = Command> {
        let op = prop_oneof![
            (0..2u8, 0..3u8).prop_map(|(k, v)| WriteOp::Put {
                key: k.to_string(),
                value: v.to_string()
            }),
            (0..2u8, 0..3u8, 0..3u8).prop_map(|(k, e, n)| WriteOp::Cas {
                key: k.to_string(),
                expected: e.to_string(),
                new: n.to_string()
            }),
            (0..2u8, 0..3u8).prop_map(|(k, s)| WriteOp::Append {
                key: k.to_string(),
                suffix: s.to_string()
            }),
        ];
        (0..8u64, 0..5u64, op).prop_map(|(client_id, seq, op)| Command { client_id, seq, op })
    }

    proptest! {
        #[test]
        fn the_store_follows_the_obvious_model(
            max_sessions in 1..5usize,
            max_tombstones in 0..4usize,
            commands in prop::collection::vec(command(), 0..300),
        ) {
            let limits = SessionLimits { max_sessions, max_tombstones };
            let mut kv = KvStore::with_limits(limits);
            let mut model = Model {
                limits,
                data: StdMap::new(),
                live: Vec::new(),
                tombstones: VecDeque::new(),
                clock: 0,
                expired: 0,
            };
            for cmd in &commands {
                let cached = kv.cached(cmd.client_id, cmd.seq);
                let applied = kv.apply(cmd);
                prop_assert_eq!(&applied, &model.apply(cmd), "{:?}", cmd);
                if let Some(cached) = cached {
                    prop_assert_eq!(cached, applied, "cached and apply disagree on {:?}", cmd);
                }
                prop_assert_eq!(kv.session_count(), model.live.len());
                prop_assert_eq!(kv.tombstone_count(), model.tombstones.len());
                prop_assert_eq!(kv.sessions_expired(), model.expired);
            }
            for key in ["0", "1"] {
                prop_assert_eq!(kv.get(key), model.data.get(key).cloned());
            }
        }
    }
}
