//! Record framing and the binary encoding of a log entry.
//!
//! A record is `[u32 length][u32 crc32][payload]`, little-endian, where `length` counts the payload
//! bytes only and the CRC-32 (IEEE, `crc32fast`) covers the payload. A record is valid when its
//! length is within bounds, the whole payload is present and the checksum matches. The payload of a
//! log record is an entry:
//!
//! ```text
//! [u64 index][u64 term][u8 kind][command bytes ...]     kind 0 = Noop (no bytes), 1 = Command
//! ```
//!
//! Kind 2 is a configuration ([`Membership`]): three lists, voters, learners and outgoing voters,
//! each `[u32 count][u64 id] x count`, then the members' addresses,
//! `[u32 count]([u64 id][u16 len][len bytes of UTF-8]) x count` in increasing id order. An entry
//! written before configurations carried addresses ends after the three lists, and still
//! decodes (with no addresses).
//!
//! The command's length is implied by the record's length, so a no-op costs 17 + 8 bytes on disk.

use std::collections::BTreeMap;

use crate::types::{Entry, Index, Membership, NodeId, Payload, Term};

/// Bytes before a record's payload: the length and the checksum, four bytes each.
pub(crate) const RECORD_HEADER_LEN: usize = 8;

/// Bytes of an encoded entry before its command bytes: index (8), term (8), kind (1).
pub(crate) const ENTRY_FIXED_LEN: usize = 17;

/// The largest payload a record may carry. An entry must also fit in one AppendEntries frame
/// (`protocol::MAX_FRAME_BYTES` is 16 MiB), so a larger entry could never be replicated anyway; and
/// a bound lets recovery reject a garbage length at once instead of treating it as "the rest of
/// the record is missing".
pub(crate) const MAX_RECORD_PAYLOAD: usize = 16 * 1024 * 1024;

// The largest command a leader accepts must fit in a record.
const _: () =
    assert!(crate::server::executor::MAX_COMMAND_BYTES + ENTRY_FIXED_LEN <= MAX_RECORD_PAYLOAD);

const KIND_NOOP: u8 = 0;
const KIND_COMMAND: u8 = 1;
const KIND_CONFIG: u8 = 2;

/// The number of bytes `entry` takes on disk as a record, header included.
pub(crate) fn record_len(entry: &Entry) -> usize {
    RECORD_HEADER_LEN + payload_len(entry)
}

fn payload_len(entry: &Entry) -> usize {
    ENTRY_FIXED_LEN
        + match &entry.payload {
            Payload::Noop => 0,
            Payload::Command(bytes) => bytes.len(),
            Payload::Config(m) => {
                12 + 8 * (m.voters.len() + m.learners.len() + m.outgoing.len())
                    + addresses_len(&m.addresses)
            }
        }
}

/// The bytes [`encode_addresses`] writes for `addresses`.
pub(crate) fn addresses_len(addresses: &BTreeMap<NodeId, String>) -> usize {
    4 + addresses.values().map(|a| 8 + 2 + a.len()).sum::<usize>()
}

/// Appends the addresses section: `[u32 count]([u64 id][u16 len][len bytes]) x count`. The core
/// keeps addresses to 255 bytes ([`crate::raft::MAX_ADDRESS_BYTES`]).
pub(crate) fn encode_addresses(addresses: &BTreeMap<NodeId, String>, buf: &mut Vec<u8>) {
    let count = u32::try_from(addresses.len()).expect("fewer than 2^32 members");
    buf.extend_from_slice(&count.to_le_bytes());
    for (id, address) in addresses {
        let len = u16::try_from(address.len()).expect("an address of at most 255 bytes");
        buf.extend_from_slice(&id.to_le_bytes());
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(address.as_bytes());
    }
}

/// Decodes an addresses section at the start of `bytes`; returns the addresses and the bytes the
/// section took. The error says what is wrong, for the caller to say where.
pub(crate) fn decode_addresses(bytes: &[u8]) -> Result<(BTreeMap<NodeId, String>, usize), String> {
    let short = |n: usize| format!("the addresses section is truncated (after {n} addresses)");
    let count = bytes.get(..4).ok_or_else(|| short(0))?;
    let count = u32::from_le_bytes(count.try_into().expect("4 bytes"));
    let mut addresses = BTreeMap::new();
    let mut at = 4;
    for n in 0..count as usize {
        let head = bytes.get(at..at + 10).ok_or_else(|| short(n))?;
        let id = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let len = u16::from_le_bytes(head[8..].try_into().expect("2 bytes")) as usize;
        let text = bytes.get(at + 10..at + 10 + len).ok_or_else(|| short(n))?;
        let address = std::str::from_utf8(text)
            .map_err(|e| format!("the address of node {id} is not UTF-8 ({e})"))?;
        if addresses.insert(id, address.to_owned()).is_some() {
            return Err(format!("node {id} has two addresses"));
        }
        at += 10 + len;
    }
    Ok((addresses, at))
}

/// Appends `entry` as one record to `buf` and returns the record's length. The caller has checked
/// the size against [`MAX_RECORD_PAYLOAD`].
pub(crate) fn encode_entry(entry: &Entry, buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; RECORD_HEADER_LEN]);
    buf.extend_from_slice(&entry.index.to_le_bytes());
    buf.extend_from_slice(&entry.term.to_le_bytes());
    match &entry.payload {
        Payload::Noop => buf.push(KIND_NOOP),
        Payload::Command(bytes) => {
            buf.push(KIND_COMMAND);
            buf.extend_from_slice(bytes);
        }
        Payload::Config(m) => {
            buf.push(KIND_CONFIG);
            for list in [&m.voters, &m.learners, &m.outgoing] {
                let count = u32::try_from(list.len()).expect("fewer than 2^32 members");
                buf.extend_from_slice(&count.to_le_bytes());
                for id in list {
                    buf.extend_from_slice(&id.to_le_bytes());
                }
            }
            encode_addresses(&m.addresses, buf);
        }
    }
    finish_record(buf, start)
}

/// Decodes the body of a configuration entry: voters, learners, outgoing voters, and (unless it
/// was written before configurations carried them) the members' addresses.
fn decode_membership(index: Index, mut body: &[u8]) -> Result<Membership, String> {
    let mut lists: [Vec<NodeId>; 3] = Default::default();
    for list in &mut lists {
        let short = || format!("configuration entry {index} is truncated");
        let count = body.get(..4).ok_or_else(short)?;
        let count = u32::from_le_bytes(count.try_into().expect("4 bytes")) as usize;
        let ids = count
            .checked_mul(8)
            .and_then(|n| body.get(4..4 + n))
            .ok_or_else(short)?;
        list.extend(
            ids.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))),
        );
        body = &body[4 + 8 * count..];
    }
    let mut addresses = BTreeMap::new();
    if !body.is_empty() {
        let (decoded, len) =
            decode_addresses(body).map_err(|e| format!("configuration entry {index}: {e}"))?;
        addresses = decoded;
        body = &body[len..];
    }
    if !body.is_empty() {
        return Err(format!(
            "configuration entry {index} has {} trailing bytes",
            body.len()
        ));
    }
    let [voters, learners, outgoing] = lists;
    let m = Membership {
        voters,
        learners,
        outgoing,
        addresses,
    };
    if let Some(id) = m.stray_address() {
        return Err(format!(
            "configuration entry {index} has an address for node {id}, which is not a member"
        ));
    }
    Ok(m)
}

/// Appends `payload` as one record to `buf` and returns the record's length.
pub(crate) fn encode_record(payload: &[u8], buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; RECORD_HEADER_LEN]);
    buf.extend_from_slice(payload);
    finish_record(buf, start)
}

/// Fills in the header of the record that starts at `start` and runs to the end of `buf`.
fn finish_record(buf: &mut [u8], start: usize) -> usize {
    let payload = &buf[start + RECORD_HEADER_LEN..];
    let len = u32::try_from(payload.len()).expect("payload length checked by the caller");
    let crc = crc32fast::hash(payload);
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    buf.len() - start
}

/// Why the bytes at some offset are not a valid record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BadRecord {
    /// Fewer bytes than a record header remain.
    ShortHeader { available: usize },
    /// The length field is below the smallest or above the largest possible payload.
    BadLength { len: u32 },
    /// The header promises more bytes than the file holds.
    Truncated { len: u32, missing: usize },
    /// The payload does not match its checksum.
    Checksum {
        len: u32,
        stored: u32,
        computed: u32,
    },
}

impl std::fmt::Display for BadRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRecord::ShortHeader { available } => write!(
                f,
                "torn record header ({available} of {RECORD_HEADER_LEN} bytes)"
            ),
            BadRecord::BadLength { len } => write!(
                f,
                "impossible record length {len} (valid: {min}..={MAX_RECORD_PAYLOAD})",
                min = ENTRY_FIXED_LEN
            ),
            BadRecord::Truncated { len, missing } => {
                write!(f, "torn record (len {len}, needs {missing} more bytes)")
            }
            BadRecord::Checksum {
                len,
                stored,
                computed,
            } => write!(
                f,
                "checksum mismatch (len {len}, stored {stored:#010x}, computed {computed:#010x})"
            ),
        }
    }
}

/// Reads the record at `offset` of `bytes` whose payload must be `min_len..=MAX_RECORD_PAYLOAD`
/// bytes long. Returns the payload and the offset just past the record.
pub(crate) fn read_record(
    bytes: &[u8],
    offset: usize,
    min_len: usize,
) -> Result<(&[u8], usize), BadRecord> {
    let rest = &bytes[offset.min(bytes.len())..];
    if rest.len() < RECORD_HEADER_LEN {
        return Err(BadRecord::ShortHeader {
            available: rest.len(),
        });
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes"));
    let stored = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    let n = len as usize;
    if n < min_len || n > MAX_RECORD_PAYLOAD {
        return Err(BadRecord::BadLength { len });
    }
    let available = rest.len() - RECORD_HEADER_LEN;
    if n > available {
        return Err(BadRecord::Truncated {
            len,
            missing: n - available,
        });
    }
    let payload = &rest[RECORD_HEADER_LEN..RECORD_HEADER_LEN + n];
    let computed = crc32fast::hash(payload);
    if computed != stored {
        return Err(BadRecord::Checksum {
            len,
            stored,
            computed,
        });
    }
    Ok((payload, offset + RECORD_HEADER_LEN + n))
}

/// Decodes an entry from a record payload whose checksum already matched. An error here is never
/// a torn write: the bytes are exactly what was written, so they were written by a different
/// format (a newer version) or by a bug.
pub(crate) fn decode_entry(payload: &[u8]) -> Result<Entry, String> {
    if payload.len() < ENTRY_FIXED_LEN {
        return Err(format!(
            "entry payload of {} bytes is too short",
            payload.len()
        ));
    }
    let index: Index = u64::from_le_bytes(payload[0..8].try_into().expect("8 bytes"));
    let term: Term = u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"));
    let body = &payload[ENTRY_FIXED_LEN..];
    let payload = match payload[16] {
        KIND_NOOP if body.is_empty() => Payload::Noop,
        KIND_NOOP => return Err(format!("no-op entry {index} carries {} bytes", body.len())),
        KIND_COMMAND => Payload::Command(body.to_vec()),
        KIND_CONFIG => Payload::Config(decode_membership(index, body)?),
        kind => {
            return Err(format!(
                "entry {index} has unknown payload kind {kind} (written by a newer version?)"
            ))
        }
    };
    Ok(Entry {
        term,
        index,
        payload,
    })
}

/// The smallest record: a header and a no-op entry.
const MIN_RECORD_LEN: usize = RECORD_HEADER_LEN + ENTRY_FIXED_LEN;

/// The first offset after `bad_at` (where a bad record stands in place of entry `min_index`) at
/// which a complete, valid record of a *later entry of this log* starts, with that entry's index. A
/// later entry has an index of at least `min_index`, a term of at least `min_term`, and sits far
/// enough from `bad_at` for the entries between to fit.
///
/// Recovery uses it to tell a torn final write (nothing valid follows the bad bytes) from damage in
/// the middle of the log (acknowledged entries follow). Each offset is first checked for a plausible
/// kind, index and term, which garbage and zeros almost never pass, and only then checksummed: so
/// the scan stays linear in the bytes scanned instead of checksumming a record's worth of bytes at
/// every offset. It only runs on a file already known to be damaged.
pub(crate) fn find_following_entry(
    bytes: &[u8],
    bad_at: usize,
    min_index: Index,
    min_term: Term,
) -> Option<(usize, Index)> {
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let last_start = bytes.len().checked_sub(MIN_RECORD_LEN)?;
    (bad_at + 1..=last_start).find_map(|at| {
        let fields = at + RECORD_HEADER_LEN;
        let (index, term, kind) = (u64_at(fields), u64_at(fields + 8), bytes[fields + 16]);
        let fit_between = ((at - bad_at) / MIN_RECORD_LEN) as u64;
        let plausible = kind <= KIND_CONFIG
            && index >= min_index
            && index - min_index <= fit_between
            && term >= min_term;
        if !plausible {
            return None;
        }
        let (payload, _) = read_record(bytes, at, ENTRY_FIXED_LEN).ok()?;
        decode_entry(payload).ok().map(|entry| (at, entry.index))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: Index, term: Term, payload: Payload) -> Entry {
        Entry {
            term,
            index,
            payload,
        }
    }

    #[test]
    fn entries_round_trip_through_records() {
        let entries = [
            entry(1, 1, Payload::Noop),
            entry(2, 1, Payload::Command(vec![])),
            entry(3, 7, Payload::Command(b"put k v".to_vec())),
            entry(u64::MAX, u64::MAX, Payload::Command(vec![0xff; 300])),
            entry(
                4,
                7,
                Payload::Config(Membership {
                    voters: vec![1, 2, 4],
                    learners: vec![9],
                    outgoing: vec![1, 2, 3],
                    addresses: Default::default(),
                }),
            ),
            entry(5, 7, Payload::Config(Membership::new(&[1, 2, 4]))),
            entry(
                6,
                8,
                Payload::Config(Membership {
                    voters: vec![1, 2, 4],
                    learners: vec![9],
                    outgoing: vec![1, 2, 3],
                    addresses: [
                        (1, "é".repeat(127)),
                        (3, "n3:7003".to_string()),
                        (9, "a".repeat(255)),
                    ]
                    .into_iter()
                    .collect(),
                }),
            ),
        ];
        let mut buf = Vec::new();
        for e in &entries {
            let before = buf.len();
            assert_eq!(encode_entry(e, &mut buf), record_len(e));
            assert_eq!(buf.len() - before, record_len(e));
        }
        let mut at = 0;
        for e in &entries {
            let (payload, next) = read_record(&buf, at, ENTRY_FIXED_LEN).unwrap();
            assert_eq!(&decode_entry(payload).unwrap(), e);
            at = next;
        }
        assert_eq!(at, buf.len());
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let mut buf = Vec::new();
        encode_entry(&entry(1, 1, Payload::Command(b"abc".to_vec())), &mut buf);
        let good = buf.clone();

        assert_eq!(
            read_record(&good[..5], 0, ENTRY_FIXED_LEN),
            Err(BadRecord::ShortHeader { available: 5 })
        );
        assert_eq!(
            read_record(&good[..good.len() - 2], 0, ENTRY_FIXED_LEN),
            Err(BadRecord::Truncated {
                len: 20,
                missing: 2
            })
        );
        let mut flipped = good.clone();
        flipped[12] ^= 0x10;
        assert!(matches!(
            read_record(&flipped, 0, ENTRY_FIXED_LEN),
            Err(BadRecord::Checksum { len: 20, .. })
        ));
        assert_eq!(
            read_record(&[0; 64], 0, ENTRY_FIXED_LEN),
            Err(BadRecord::BadLength { len: 0 })
        );
        let text = BadRecord::Truncated {
            len: 20,
            missing: 2,
        }
        .to_string();
        assert_eq!(text, "torn record (len 20, needs 2 more bytes)");
    }

    /// The payload of configuration entry 4 of `body` (what follows the kind).
    fn config_payload(body: &[u8]) -> Vec<u8> {
        let mut payload = 4u64.to_le_bytes().to_vec();
        payload.extend_from_slice(&2u64.to_le_bytes());
        payload.push(KIND_CONFIG);
        payload.extend_from_slice(body);
        payload
    }

    /// The three lists of voters [1, 2], no learners, not joint.
    fn lists() -> Vec<u8> {
        let mut body = 2u32.to_le_bytes().to_vec();
        body.extend_from_slice(&1u64.to_le_bytes());
        body.extend_from_slice(&2u64.to_le_bytes());
        body.extend_from_slice(&[0; 8]);
        body
    }

    /// An addresses section of `(id, address bytes)`.
    fn section(addresses: &[(NodeId, &[u8])]) -> Vec<u8> {
        let mut body = (addresses.len() as u32).to_le_bytes().to_vec();
        for (id, a) in addresses {
            body.extend_from_slice(&id.to_le_bytes());
            body.extend_from_slice(&(a.len() as u16).to_le_bytes());
            body.extend_from_slice(a);
        }
        body
    }

    #[test]
    fn a_configuration_entry_without_addresses_still_decodes() {
        let old = decode_entry(&config_payload(&lists())).unwrap();
        assert_eq!(old.payload, Payload::Config(Membership::new(&[1, 2])));
        let mut body = lists();
        body.extend(section(&[(2, b"h2:1")]));
        let Payload::Config(m) = decode_entry(&config_payload(&body)).unwrap().payload else {
            panic!("a configuration");
        };
        assert_eq!(m.address(2), Some("h2:1"));
        assert_eq!(m.address(1), None);
    }

    #[test]
    fn a_bad_addresses_section_is_an_error_naming_the_entry() {
        let good = [lists(), section(&[(1, b"h1:1"), (2, b"h2:2")])].concat();
        assert!(decode_entry(&config_payload(&good)).is_ok());
        // Cut anywhere inside the addresses section (but not right after the lists: that is
        // the old format).
        for cut in lists().len() + 1..good.len() {
            let err = decode_entry(&config_payload(&good[..cut])).unwrap_err();
            assert!(
                err.contains("configuration entry 4") && err.contains("truncated"),
                "cut at {cut}: {err}"
            );
        }
        let cases: [(Vec<u8>, &str); 4] = [
            ([good.clone(), vec![0]].concat(), "1 trailing bytes"),
            (
                [lists(), section(&[(1, &[0xff, 0xfe])])].concat(),
                "not UTF-8",
            ),
            (
                [lists(), section(&[(3, b"h3:3")])].concat(),
                "node 3, which is not a member",
            ),
            (
                [lists(), section(&[(1, b"a"), (1, b"b")])].concat(),
                "two addresses",
            ),
        ];
        for (body, why) in cases {
            let err = decode_entry(&config_payload(&body)).unwrap_err();
            assert!(err.contains("configuration entry 4"), "{err}");
            assert!(err.contains(why), "{why}: {err}");
        }
        // A count far beyond the bytes is truncation, not an allocation.
        let huge = [lists(), u32::MAX.to_le_bytes().to_vec()].concat();
        assert!(decode_entry(&config_payload(&huge))
            .unwrap_err()
            .contains("truncated"));
    }

    #[test]
    fn a_valid_checksum_with_an_unknown_kind_is_an_error_not_a_guess() {
        let mut payload = vec![0; ENTRY_FIXED_LEN];
        payload[16] = 9;
        assert!(decode_entry(&payload)
            .unwrap_err()
            .contains("unknown payload kind 9"));
    }

    #[test]
    fn the_scan_finds_a_later_entry_after_garbage_and_nothing_in_zeros() {
        let mut buf = vec![0u8; 100];
        assert_eq!(find_following_entry(&buf, 0, 1, 0), None);
        buf.extend_from_slice(&[0xab; 13]);
        let at = buf.len();
        encode_entry(&entry(5, 2, Payload::Noop), &mut buf);
        buf.extend_from_slice(&[0; 10]);
        assert_eq!(find_following_entry(&buf, 0, 4, 2), Some((at, 5)));
        assert_eq!(find_following_entry(&buf, at, 4, 2), None);
        // An older entry, a lower term, or one too far ahead to fit is not a later entry of this log.
        assert_eq!(find_following_entry(&buf, 0, 6, 2), None);
        assert_eq!(find_following_entry(&buf, 0, 4, 3), None);
        assert_eq!(find_following_entry(&buf, 100, 4, 2), None);
    }

    #[test]
    fn the_scan_is_linear_on_a_large_garbage_tail() {
        // 16 MiB of pseudo-random bytes: checksumming at every plausible length would take minutes.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let garbage: Vec<u8> = (0..16 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let start = std::time::Instant::now();
        assert_eq!(find_following_entry(&garbage, 0, 1_000, 3), None);
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
    }
}
