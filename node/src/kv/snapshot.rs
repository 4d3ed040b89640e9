//! The snapshot image of a [`KvStore`]: its data, its sessions with their cached answers and
//! all the expiry bookkeeping, so that a node restored from it answers every retry and expires
//! every session exactly as the node that took it. That is a safety property: a follower that
//! installs a leader's snapshot must go on computing the same state as its peers.
//!
//! Layout: a format version (`u32`, big-endian, currently 1), then one MessagePack array:
//!
//! ```text
//! [max_sessions, max_tombstones, clock, sessions_expired,
//!  {key: value, ...},
//!  [[client_id, seq, last_active, outcome], ...],
//!  [[expiry number, client_id], ...]]
//! ```
//!
//! The version comes first so that a node can tell a snapshot of a newer format from damage
//! before it parses anything. The entries of the maps come in the maps' iteration order, which
//! differs between processes (the hash maps are randomly seeded), so two equal stores may encode
//! to different bytes; what is guaranteed is that they decode to equal stores. The derived
//! indexes (activity order, tombstone set) are not stored but rebuilt, and `decode` checks that
//! the parts are consistent (unique ids and activities, nothing beyond the limits), so a damaged
//! image is an error instead of a store that would diverge later.
//!
//! `decode` never panics and never allocates by a length it read: the slice reader checks every
//! length against the bytes that are there, and the maps grow one entry at a time.

use std::fmt;
use std::io::Write;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, SerializeTuple, Serializer};
use std::sync::Arc;

use super::sessions::{Image, Session, Sessions};
use super::{Applied, Data, KvStore, SessionLimits};

/// The format `encode` writes; `decode` reads only this one.
const FORMAT_VERSION: u32 = 1;

impl KvStore {
    /// The snapshot image of the store (see the `snapshot` module for the format).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.len() * 16);
        self.encode_into(&mut out)
            .expect("writing to a Vec cannot fail");
        out
    }

    /// Writes the snapshot image to `w`, streaming the maps without building the image in
    /// memory first. It makes many small writes: give it a buffered writer.
    pub fn encode_into(&self, w: &mut impl Write) -> std::io::Result<()> {
        w.write_all(&FORMAT_VERSION.to_be_bytes())?;
        let mut w = KeepError {
            inner: w,
            error: None,
        };
        let result = ImageOut(self).serialize(&mut rmp_serde::Serializer::new(&mut w));
        match (result, w.error) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(io)) => Err(io),
            (Err(other), None) => Err(std::io::Error::other(other)),
        }
    }

    /// Restores a store from its snapshot image. Garbage, a truncated image, trailing bytes, an
    /// inconsistent image or an unknown format version are errors, never panics.
    pub fn decode(bytes: &[u8]) -> Result<KvStore, String> {
        let Some((version, body)) = bytes.split_first_chunk::<4>() else {
            return Err(format!(
                "the key-value snapshot is truncated: {} bytes, too short for its format version",
                bytes.len()
            ));
        };
        let version = u32::from_be_bytes(*version);
        if version != FORMAT_VERSION {
            return Err(format!(
                "unknown key-value snapshot format version {version} (this build reads version \
                 {FORMAT_VERSION}): a newer node wrote it, or it is not a snapshot"
            ));
        }
        let mut de = rmp_serde::Deserializer::from_read_ref(body);
        let ImageIn { data, sessions } = ImageIn::deserialize(&mut de)
            .map_err(|err| format!("undecodable key-value snapshot: {err}"))?;
        match IgnoredAny::deserialize(&mut de) {
            // No byte where another value would start: the image ended where the input does.
            Err(rmp_serde::decode::Error::InvalidMarkerRead(e))
                if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            _ => return Err("the key-value snapshot has bytes after its end".into()),
        }
        let sessions = Sessions::from_image(sessions)
            .map_err(|why| format!("inconsistent key-value snapshot: {why}"))?;
        Ok(KvStore { data, sessions })
    }
}

/// A writer that keeps the first I/O error of the writer it wraps, which the serializer would
/// otherwise turn into a message.
struct KeepError<'a, W> {
    inner: &'a mut W,
    error: Option<std::io::Error>,
}

impl<W: Write> Write for KeepError<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf).map_err(|e| self.keep(e))
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(buf).map_err(|e| self.keep(e))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush().map_err(|e| self.keep(e))
    }
}

impl<W> KeepError<'_, W> {
    /// Keeps `e` (unless it only asks to try again) and hands the serializer one of its kind.
    fn keep(&mut self, e: std::io::Error) -> std::io::Error {
        let kind = e.kind();
        if kind != std::io::ErrorKind::Interrupted {
            self.error.get_or_insert(e);
        }
        std::io::Error::from(kind)
    }
}

/// The image being written: borrows the store.
struct ImageOut<'a>(&'a KvStore);

impl Serialize for ImageOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (data, sessions) = (&self.0.data, &self.0.sessions);
        let limits = sessions.limits();
        let mut t = s.serialize_tuple(7)?;
        t.serialize_element(&(limits.max_sessions as u64))?;
        t.serialize_element(&(limits.max_tombstones as u64))?;
        t.serialize_element(&sessions.clock())?;
        t.serialize_element(&sessions.expired())?;
        t.serialize_element(&DataOut(data))?;
        t.serialize_element(&SessionsOut(sessions))?;
        t.serialize_element(&GraveyardOut(sessions))?;
        t.end()
    }
}

struct DataOut<'a>(&'a Data);

impl Serialize for DataOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0.iter() {
            map.serialize_entry(&**key, value.as_str())?;
        }
        map.end()
    }
}

struct SessionsOut<'a>(&'a Sessions);

impl Serialize for SessionsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let live = self.0.live();
        let mut seq = s.serialize_seq(Some(live.len()))?;
        for (id, session) in live {
            seq.serialize_element(&(id, session.seq, session.last_active, &session.outcome))?;
        }
        seq.end()
    }
}

struct GraveyardOut<'a>(&'a Sessions);

impl Serialize for GraveyardOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let graveyard = self.0.graveyard();
        let mut seq = s.serialize_seq(Some(graveyard.len()))?;
        for entry in graveyard {
            seq.serialize_element(&entry)?;
        }
        seq.end()
    }
}

/// The image being read: the data and the parts of the session table, not yet checked.
struct ImageIn {
    data: Data,
    sessions: Image,
}

impl<'de> Deserialize<'de> for ImageIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ImageIn, D::Error> {
        d.deserialize_tuple(7, ImageVisitor)
    }
}

struct ImageVisitor;

impl<'de> Visitor<'de> for ImageVisitor {
    type Value = ImageIn;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key-value snapshot image (an array of 7)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ImageIn, A::Error> {
        let max_sessions: u64 = field(&mut seq, 0)?;
        let max_tombstones: u64 = field(&mut seq, 1)?;
        let clock: u64 = field(&mut seq, 2)?;
        let expired: u64 = field(&mut seq, 3)?;
        let DataIn(data) = field(&mut seq, 4)?;
        let SessionsIn(live) = field(&mut seq, 5)?;
        let GraveyardIn(graveyard) = field(&mut seq, 6)?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(8, &"an array of 7"));
        }
        let limits = SessionLimits {
            max_sessions: usize::try_from(max_sessions).map_err(de::Error::custom)?,
            max_tombstones: usize::try_from(max_tombstones).map_err(de::Error::custom)?,
        };
        let sessions = Image {
            limits,
            clock,
            expired,
            live,
            graveyard,
        };
        Ok(ImageIn { data, sessions })
    }
}

/// Element `index` of the image array, which must be there.
fn field<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(
    seq: &mut A,
    index: usize,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::invalid_length(index, &"an array of 7"))
}

struct DataIn(Data);

impl<'de> Deserialize<'de> for DataIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<DataIn, D::Error> {
        d.deserialize_map(DataVisitor)
    }
}

struct DataVisitor;

impl<'de> Visitor<'de> for DataVisitor {
    type Value = DataIn;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map from string keys to string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DataIn, A::Error> {
        let mut data = Data::new();
        // Borrowed from the input (`decode` reads a slice), so each string is copied once.
        while let Some((key, value)) = map.next_entry::<&str, &str>()? {
            if data.contains_key(key) {
                return Err(de::Error::custom(format!("key {key:?} appears twice")));
            }
            data.insert(key.into(), Arc::new(value.to_owned()));
        }
        Ok(DataIn(data))
    }
}

struct SessionsIn(Vec<(u64, Session)>);

impl<'de> Deserialize<'de> for SessionsIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SessionsIn, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SessionsIn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of [client_id, seq, last_active, outcome]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SessionsIn, A::Error> {
                let mut live = Vec::new();
                while let Some((id, seq_, last_active, outcome)) =
                    seq.next_element::<(u64, u64, u64, Applied)>()?
                {
                    let session = Session {
                        seq: seq_,
                        outcome,
                        last_active,
                    };
                    live.push((id, session));
                }
                Ok(SessionsIn(live))
            }
        }
        d.deserialize_seq(V)
    }
}

struct GraveyardIn(Vec<(u64, u64)>);

impl<'de> Deserialize<'de> for GraveyardIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GraveyardIn, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = GraveyardIn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of [expiry number, client_id]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<GraveyardIn, A::Error> {
                let mut graveyard = Vec::new();
                while let Some(entry) = seq.next_element::<(u64, u64)>()? {
                    graveyard.push(entry);
                }
                Ok(GraveyardIn(graveyard))
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap as StdMap;

    use proptest::prelude::*;

    use super::FORMAT_VERSION;
    use crate::kv::{Applied, Command, KvStore, SessionLimits, WriteOp};
    use crate::protocol::{FailReason, Reply};

    const EXPIRED: Applied = Applied::Fail(FailReason::SessionExpired);

    fn cmd(client_id: u64, seq: u64, op: WriteOp) -> Command {
        Command { client_id, seq, op }
    }

    fn append(key: &str, suffix: &str) -> WriteOp {
        WriteOp::Append {
            key: key.into(),
            suffix: suffix.into(),
        }
    }

    fn cas(key: &str, expected: &str, new: &str) -> WriteOp {
        WriteOp::Cas {
            key: key.into(),
            expected: expected.into(),
            new: new.into(),
        }
    }

    /// A store with data, live sessions (one whose last answer is a failure), expired sessions
    /// and a dropped tombstone.
    fn busy_store() -> KvStore {
        let mut kv = KvStore::with_limits(SessionLimits {
            max_sessions: 3,
            max_tombstones: 2,
        });
        for client in 10..14 {
            kv.apply(&cmd(client, 1, append("old", "o")));
        }
        kv.apply(&cmd(1, 1, append("k", "a")));
        kv.apply(&cmd(2, 1, cas("k", "zzz", "b")));
        kv.apply(&cmd(3, 1, append("ü ключ", "ß")));
        kv.apply(&cmd(1, 2, append("k", "b")));
        assert_eq!(kv.sessions_expired(), 4);
        assert_eq!(kv.tombstone_count(), 2);
        kv
    }

    #[test]
    fn a_restored_store_answers_retries_as_the_original_did() {
        let original = busy_store();
        let mut restored = KvStore::decode(&original.encode()).unwrap();
        assert_eq!(restored, original);
        assert_eq!(restored.limits(), original.limits());
        assert_eq!(restored.sessions_expired(), 4);
        // A retried append gets its answer and is not applied twice.
        assert_eq!(
            restored.apply(&cmd(1, 2, append("k", "b"))),
            Applied::Ok(Reply::Done)
        );
        assert_eq!(restored.get("k").as_deref(), Some("ab"));
        // A retried CAS keeps its original failure, and an older command is superseded.
        let mismatch = Applied::Fail(FailReason::CasMismatch { actual: "a".into() });
        assert_eq!(restored.apply(&cmd(2, 1, cas("k", "zzz", "b"))), mismatch);
        assert_eq!(
            restored.apply(&cmd(1, 1, append("k", "a"))),
            Applied::Superseded
        );
        // Tombstones survive; the dropped ones stay dropped.
        assert_eq!(restored.cached(13, 1), Some(EXPIRED));
        assert_eq!(restored.cached(12, 1), Some(EXPIRED));
        assert_eq!(restored.cached(11, 1), None);
        assert_eq!(restored.get("ü ключ").as_deref(), Some("ß"));
    }

    #[test]
    fn a_restored_store_expires_the_same_sessions_as_the_original() {
        let mut original = busy_store();
        let mut restored = KvStore::decode(&original.encode()).unwrap();
        for (client, seq) in [(2, 2), (20, 1), (21, 1), (3, 2), (22, 1), (1, 3), (23, 1)] {
            let command = cmd(client, seq, append("k", "x"));
            assert_eq!(restored.cached(client, seq), original.cached(client, seq));
            assert_eq!(restored.apply(&command), original.apply(&command));
            assert_eq!(restored, original, "after {command:?}");
        }
        assert_eq!(original.sessions_expired(), 8);
        assert_eq!(original.cached(1, 4), Some(EXPIRED));
    }

    #[test]
    fn an_empty_store_round_trips() {
        let kv = KvStore::default();
        assert_eq!(KvStore::decode(&kv.encode()), Ok(kv));
    }

    #[test]
    fn encode_into_writes_what_encode_returns_and_keeps_the_writers_error() {
        let kv = busy_store();
        let mut out = Vec::new();
        kv.encode_into(&mut out).unwrap();
        assert_eq!(out, kv.encode());
        assert_eq!(&out[..4], &FORMAT_VERSION.to_be_bytes());

        /// Accepts `room` bytes, then fails as a full disk does.
        struct Full {
            room: usize,
        }
        impl std::io::Write for Full {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.room == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::StorageFull,
                        "disk full",
                    ));
                }
                let n = buf.len().min(self.room);
                self.room -= n;
                Ok(n)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        for room in [0, 3, 10, out.len() - 1] {
            let err = kv.encode_into(&mut Full { room }).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "room {room}");
            assert_eq!(err.to_string(), "disk full");
        }
        kv.encode_into(&mut Full { room: out.len() }).unwrap();
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = busy_store().encode();
        for len in 0..bytes.len() {
            assert!(
                KvStore::decode(&bytes[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut bytes = busy_store().encode();
        bytes.push(0);
        let err = KvStore::decode(&bytes).unwrap_err();
        assert!(err.contains("after its end"), "{err}");
    }

    #[test]
    fn another_format_version_is_a_clear_error() {
        let mut bytes = busy_store().encode();
        bytes[..4].copy_from_slice(&2u32.to_be_bytes());
        let err = KvStore::decode(&bytes).unwrap_err();
        assert!(err.contains("format version 2"), "{err}");
        assert!(err.contains("reads version 1"), "{err}");
        let err = KvStore::decode(&[0, 0, 1]).unwrap_err();
        assert!(err.contains("truncated"), "{err}");
    }

    /// An image written by hand, field by field as the module docs give the layout.
    type RawImage = (
        u64,
        u64,
        u64,
        u64,
        StdMap<String, String>,
        Vec<(u64, u64, u64, Applied)>,
        Vec<(u64, u64)>,
    );

    fn raw(image: &RawImage) -> Vec<u8> {
        let mut bytes = FORMAT_VERSION.to_be_bytes().to_vec();
        bytes.extend(rmp_serde::to_vec(image).unwrap());
        bytes
    }

    fn valid_raw() -> RawImage {
        let data = StdMap::from([("k".to_string(), "v".to_string())]);
        let done = Applied::Ok(Reply::Done);
        let sessions = vec![(1, 4, 6, done.clone()), (2, 1, 7, done)];
        (2, 5, 7, 3, data, sessions, vec![(2, 30), (3, 31)])
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        let mut kv = KvStore::decode(&raw(&valid_raw())).unwrap();
        assert_eq!(kv.get("k").as_deref(), Some("v"));
        assert_eq!(kv.session_count(), 2);
        assert_eq!(kv.tombstone_count(), 2);
        assert_eq!(kv.sessions_expired(), 3);
        let limits = SessionLimits {
            max_sessions: 2,
            max_tombstones: 5,
        };
        assert_eq!(kv.limits(), limits);
        assert_eq!(kv.cached(1, 4), Some(Applied::Ok(Reply::Done)));
        assert_eq!(kv.cached(30, 1), Some(EXPIRED));
        // Session 1 (activity 6) is the least recent: a new session expires it.
        kv.apply(&cmd(40, 1, append("k", "w")));
        assert_eq!(kv.cached(1, 5), Some(EXPIRED));
        assert_eq!(kv.cached(2, 2), None);
    }

    #[test]
    fn an_inconsistent_image_is_an_error() {
        let done = Applied::Ok(Reply::Done);
        let mut cases: Vec<(&str, RawImage)> = Vec::new();
        let mut bad = valid_raw();
        bad.0 = 0;
        cases.push(("max_sessions 0", bad));
        let mut bad = valid_raw();
        bad.5.push((3, 1, 5, done.clone()));
        cases.push(("more sessions than max_sessions", bad));
        let mut bad = valid_raw();
        bad.5[1].2 = 6;
        cases.push(("two sessions with one activity", bad));
        let mut bad = valid_raw();
        bad.5[1].0 = 1;
        cases.push(("a session twice", bad));
        let mut bad = valid_raw();
        bad.5[1].2 = 8;
        cases.push(("activity after the clock", bad));
        let mut bad = valid_raw();
        bad.6[0].1 = 2;
        cases.push(("a live session tombstoned", bad));
        let mut bad = valid_raw();
        bad.6[1].1 = 30;
        cases.push(("a tombstone twice", bad));
        let mut bad = valid_raw();
        bad.6[1].0 = 4;
        cases.push(("a tombstone numbered after the expiries", bad));
        let mut bad = valid_raw();
        bad.6[1].0 = 2;
        cases.push(("two tombstones with one number", bad));
        let mut bad = valid_raw();
        bad.1 = 1;
        cases.push(("more tombstones than max_tombstones", bad));
        for (what, image) in cases {
            assert!(KvStore::decode(&raw(&image)).is_err(), "{what}");
        }
    }

    #[test]
    fn a_key_twice_is_an_error() {
        // A map header for two entries with the same key, after the first four fields.
        let mut bytes = FORMAT_VERSION.to_be_bytes().to_vec();
        bytes.extend([0x97, 1, 1, 0, 0, 0x82]);
        bytes.extend([0xa1, b'k', 0xa1, b'1', 0xa1, b'k', 0xa1, b'2']);
        bytes.extend([0x90, 0x90]);
        let err = KvStore::decode(&bytes).unwrap_err();
        assert!(err.contains("twice"), "{err}");
        bytes[15] = b'j';
        assert!(
            KvStore::decode(&bytes).is_ok(),
            "the same image with distinct keys"
        );
    }

    proptest! {
        /// Anything at all: an error or a store that round-trips, never a panic.
        #[test]
        fn garbage_never_panics(body in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut bytes = FORMAT_VERSION.to_be_bytes().to_vec();
            bytes.extend(&body);
            for input in [&body[..], &bytes[..]] {
                if let Ok(kv) = KvStore::decode(input) {
                    prop_assert_eq!(KvStore::decode(&kv.encode()), Ok(kv));
                }
            }
        }

        /// A valid image with one byte changed: an error or a consistent store, never a panic.
        #[test]
        fn a_damaged_image_never_panics(at in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let mut bytes = busy_store().encode();
            let at = at.index(bytes.len());
            bytes[at] = byte;
            if let Ok(kv) = KvStore::decode(&bytes) {
                prop_assert_eq!(KvStore::decode(&kv.encode()), Ok(kv));
            }
        }
    }
}
