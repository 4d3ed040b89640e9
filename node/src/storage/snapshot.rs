//! The snapshot file: the state machine as of some log index, replacing the log up to there.
//!
//! Layout of `<dir>/snapshot` (format 4), little-endian:
//!
//! ```text
//! [8  magic "rtsnap-4"]
//! [u64 last_index][u64 last_term]
//! [u32 voter count][u64 voter id] x count
//! [u32 learner count][u64 learner id] x count
//! [u32 outgoing voter count][u64 outgoing voter id] x count     (C_old of a joint configuration)
//! [u32 address count]([u64 id][u16 len][len bytes of UTF-8]) x count     (members only)
//! [u64 data_len][data ...]
//! [u32 crc32 of everything after the magic]
//! ```
//!
//! Format 3 (`rtsnap-3`) has no addresses section, and is still read (a configuration without
//! addresses): it was written before configurations carried them.
//! Format 2 (`rtsnap02`) has the voters' list only, and is still read (no learners, not joint):
//! it was written before membership changes existed, so it could not hold either.
//! The file image is also what a leader sends in InstallSnapshot chunks, so a follower can check
//! what it received with the same parser ([`Snapshot::from_image`]) before installing it.
//!
//! Format 1 (`rtsnap01`, no voters) was written by a riptide that could not restore snapshots at
//! all; such a file is refused with [`Error::OldSnapshotFormat`] rather than guessed at.
//!
//! # Writing
//!
//! A snapshot is written to `snapshot.tmp` (a received one to `snapshot.incoming`), fsynced,
//! renamed over `snapshot`, and the directory fsynced: the rename is the commit point. A leftover
//! temp file is a snapshot that was never taken, and recovery deletes it unread. A `snapshot` that
//! fails its checks is damage, not a torn write.
//!
//! [`write_snapshot_file`] runs on a background thread while the store keeps appending on the
//! Raft thread, and the Raft thread may install a snapshot from the leader at the same time. Two
//! process-wide locks keep them apart: one serializes writers of `snapshot.tmp`, the other makes
//! "check that the file on disk is older, then rename over it" atomic, so that a slow background
//! write can never replace a newer snapshot that was installed meanwhile (the log after that newer
//! snapshot would then start after a gap, and the node could not restart).

use std::fmt;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use super::durability::{Durability, SyncKind};
use super::error::{Error, Result};
use super::fs::{read_if_exists, remove_if_exists, rename_durable, write_synced};
use super::record::{addresses_len, decode_addresses, encode_addresses};
use crate::types::{Index, NodeId, SnapshotMeta, Term};

pub(crate) const FILE_NAME: &str = "snapshot";
pub(crate) const TMP_NAME: &str = "snapshot.tmp";
pub(crate) const INCOMING_NAME: &str = "snapshot.incoming";

/// Identifies the file and its format version; a future format gets a new magic, at least two
/// bits away from every older one (a test checks): a flipped bit must read as damage, never as
/// an older format. Hence not `rtsnap03`, one bit away from `rtsnap02` and `rtsnap01`.
const MAGIC: &[u8; 8] = b"rtsnap-4";

/// Format 3: voters, learners and outgoing voters, no addresses. Still read.
const MAGIC_V3: &[u8; 8] = b"rtsnap-3";

/// Format 2: voters only. Still read.
const MAGIC_V2: &[u8; 8] = b"rtsnap02";

/// The format of riptide versions that wrote snapshots but could not restore them.
const MAGIC_V1: &[u8; 8] = b"rtsnap01";

/// magic (8) + last_index (8) + last_term (8) + voter count (4).
const FIXED_LEN: usize = 28;

/// The data length field.
const DATA_LEN_LEN: usize = 8;

/// The trailing checksum.
const CRC_LEN: usize = 4;

/// Serializes writers of `snapshot.tmp` within the process.
static WRITING: Mutex<()> = Mutex::new(());

/// Makes "compare with the snapshot on disk, rename over it, fsync the directory" atomic.
static COMMITTING: Mutex<()> = Mutex::new(());

/// A snapshot of the state machine: everything the log held up to and including
/// `meta.last_index`, kept as the exact bytes of its file.
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// What the snapshot covers: last index and term, and the voters at that index.
    pub meta: SnapshotMeta,
    /// The whole file image (header, data, checksum).
    image: Vec<u8>,
    /// Where the state machine's data starts in `image`.
    data_at: usize,
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("meta", &self.meta)
            .field("image_bytes", &self.image.len())
            .field("data_bytes", &self.data().len())
            .finish()
    }
}

impl Snapshot {
    /// Encodes the file image of a snapshot with `meta` and the state machine's `data`.
    pub fn new(meta: SnapshotMeta, data: &[u8]) -> Snapshot {
        let lists = [&meta.voters, &meta.learners, &meta.outgoing];
        let ids: usize = lists.iter().map(|l| l.len()).sum();
        let data_at = FIXED_LEN
            + 8 * ids
            + 4 * (lists.len() - 1)
            + addresses_len(&meta.addresses)
            + DATA_LEN_LEN;
        let mut image = Vec::with_capacity(data_at + data.len() + CRC_LEN);
        image.extend_from_slice(MAGIC);
        image.extend_from_slice(&meta.last_index.to_le_bytes());
        image.extend_from_slice(&meta.last_term.to_le_bytes());
        for list in lists {
            let count = u32::try_from(list.len()).expect("fewer than 2^32 members");
            image.extend_from_slice(&count.to_le_bytes());
            for id in list {
                image.extend_from_slice(&id.to_le_bytes());
            }
        }
        encode_addresses(&meta.addresses, &mut image);
        debug_assert_eq!(image.len() + DATA_LEN_LEN, data_at);
        image.extend_from_slice(&(data.len() as u64).to_le_bytes());
        image.extend_from_slice(data);
        let crc = crc32fast::hash(&image[MAGIC.len()..]);
        image.extend_from_slice(&crc.to_le_bytes());
        Snapshot {
            meta,
            image,
            data_at,
        }
    }

    /// Checks and decodes a file image (magic, lengths, checksum). `source` names where the bytes
    /// came from, for the error: [`Error::Corrupt`] for bad bytes, [`Error::OldSnapshotFormat`]
    /// for a format-1 file. Never panics, whatever the bytes.
    pub fn from_image(image: Vec<u8>, source: &Path) -> Result<Snapshot> {
        match parse(&image) {
            Ok((meta, data_at)) => Ok(Snapshot {
                meta,
                image,
                data_at,
            }),
            Err(Invalid::OldFormat) => Err(Error::OldSnapshotFormat {
                file: source.to_path_buf(),
            }),
            Err(Invalid::Bad { offset, detail }) => Err(Error::Corrupt {
                file: source.to_path_buf(),
                offset: offset as u64,
                detail,
            }),
        }
    }

    /// The exact bytes of the snapshot file: what a leader sends in InstallSnapshot chunks.
    pub fn image(&self) -> &[u8] {
        &self.image
    }

    /// The file image, without copying it.
    pub fn into_image(self) -> Vec<u8> {
        self.image
    }

    /// The state machine's part: its own serialization, opaque to storage.
    pub fn data(&self) -> &[u8] {
        &self.image[self.data_at..self.image.len() - CRC_LEN]
    }
}

/// Why an image is not a snapshot.
enum Invalid {
    OldFormat,
    Bad { offset: usize, detail: String },
}

fn bad(offset: usize, detail: impl Into<String>) -> Invalid {
    Invalid::Bad {
        offset,
        detail: detail.into(),
    }
}

/// Checks the checksum at `crc_at` over everything after the magic.
fn check_crc(image: &[u8], crc_at: usize) -> std::result::Result<(), Invalid> {
    let stored = u32::from_le_bytes(image[crc_at..].try_into().expect("4 bytes"));
    let computed = crc32fast::hash(&image[MAGIC.len()..crc_at]);
    match stored == computed {
        true => Ok(()),
        false => Err(bad(
            crc_at,
            format!("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"),
        )),
    }
}

/// Checks `image` and returns its metadata and where its data starts.
fn parse(image: &[u8]) -> std::result::Result<(SnapshotMeta, usize), Invalid> {
    if image.starts_with(MAGIC_V1) {
        return Err(Invalid::OldFormat);
    }
    // How many member lists, and whether an addresses section follows them.
    let (lists, with_addresses) = match () {
        _ if image.starts_with(MAGIC) => (3, true),
        _ if image.starts_with(MAGIC_V3) => (3, false),
        _ if image.starts_with(MAGIC_V2) => (1, false),
        _ => (0, false),
    };
    if image.len() < FIXED_LEN + DATA_LEN_LEN + CRC_LEN || lists == 0 {
        return Err(bad(0, "not a riptide snapshot (short, or bad magic)"));
    }
    let u64_at = |at: usize| u64::from_le_bytes(image[at..at + 8].try_into().expect("8 bytes"));
    let crc_at = image.len() - CRC_LEN;
    // Each list (its count, then its ids), and the data length field after the last, must fit
    // before the checksum.
    let mut members: [Vec<NodeId>; 3] = Default::default();
    let mut at = FIXED_LEN - 4;
    for list in members.iter_mut().take(lists) {
        let count = match image.get(at..at + 4).filter(|_| at + 4 <= crc_at) {
            Some(c) => u32::from_le_bytes(c.try_into().expect("4 bytes")) as usize,
            None => return Err(bad(at, "the member lists do not fit in the file")),
        };
        let end = count
            .checked_mul(8)
            .and_then(|v| v.checked_add(at + 4))
            .filter(|&end| end + DATA_LEN_LEN <= crc_at)
            .ok_or_else(|| {
                bad(
                    at,
                    format!("{count} voters do not fit in a {}-byte file", image.len()),
                )
            })?;
        list.extend((0..count).map(|i| u64_at(at + 4 + 8 * i)));
        at = end;
    }
    let (mut addresses, addresses_at) = (Default::default(), at);
    if with_addresses {
        // The lists left room for the data length field before the checksum.
        let section = &image[at..crc_at - DATA_LEN_LEN];
        let (decoded, len) = decode_addresses(section).map_err(|e| bad(at, e))?;
        addresses = decoded;
        at += len;
    }
    let data_at = at + DATA_LEN_LEN;
    let data_len = u64_at(at);
    if data_len != (crc_at - data_at) as u64 {
        return Err(bad(
            at,
            format!(
                "the header says {data_len} bytes of data, the file holds {}",
                crc_at - data_at
            ),
        ));
    }
    check_crc(image, crc_at)?;
    let [voters, learners, outgoing] = members;
    let meta = SnapshotMeta {
        last_index: u64_at(8),
        last_term: u64_at(16),
        voters,
        learners,
        outgoing,
        addresses,
    };
    if let Some(id) = meta.membership().stray_address() {
        return Err(bad(
            addresses_at,
            format!("the snapshot has an address for node {id}, which is not a member"),
        ));
    }
    Ok((meta, data_at))
}

/// Loads the snapshot from `dir`, if one was ever saved.
pub(crate) fn load(dir: &Path) -> Result<Option<Snapshot>> {
    let path = dir.join(FILE_NAME);
    let Some(bytes) = read_if_exists(&path)? else {
        return Ok(None);
    };
    match Snapshot::from_image(bytes, &path) {
        Err(Error::Corrupt {
            file,
            offset,
            detail,
        }) => Err(Error::Corrupt {
            file,
            offset,
            detail: format!(
                "{detail} (a snapshot is only ever installed by an fsynced rename, so this is \
                 damage, not a torn write)"
            ),
        }),
        other => other.map(Some),
    }
}

/// Durably writes `snap` as the snapshot of the data directory `dir`: `snapshot.tmp`, fsync,
/// rename over `snapshot`, fsync `dir`. Meant for a background thread while the [`LogStore`]
/// keeps appending on the Raft thread; afterwards the Raft thread adopts it with
/// [`LogStore::snapshot_written`], which discards the log it covers.
///
/// Refuses ([`Error::StaleSnapshot`], `snapshot.tmp` removed) a snapshot older than the one on
/// disk, which happens when the leader installed a newer one while this was being written. Writes
/// of one directory are serialized; a write must finish before its store is dropped and the
/// directory reopened (open deletes `snapshot.tmp`).
///
/// On an I/O error the old snapshot and the whole log are still intact, but do not adopt this one:
/// the rename may or may not be durable. A failing disk is best treated as fatal.
///
/// [`LogStore`]: super::LogStore
/// [`LogStore::snapshot_written`]: super::LogStore::snapshot_written
pub fn write_snapshot_file(dir: &Path, snap: &Snapshot) -> Result<()> {
    write_snapshot_file_with(dir, snap, Durability::FULL)
}

/// [`write_snapshot_file`] under the store's fsync policy ([`super::LogStore::durability`]).
pub fn write_snapshot_file_with(dir: &Path, snap: &Snapshot, policy: Durability) -> Result<()> {
    let _writing = lock(&WRITING);
    write_synced(
        &dir.join(TMP_NAME),
        &[snap.image()],
        SyncKind::Other,
        policy,
    )?;
    commit(dir, TMP_NAME, &snap.meta, policy)
}

/// Renames the fsynced `dir/from` (holding a snapshot with `meta`) over `dir/snapshot`, unless the
/// snapshot there is newer: then `from` is removed and the error is [`Error::StaleSnapshot`].
pub(crate) fn commit(
    dir: &Path,
    from: &str,
    meta: &SnapshotMeta,
    policy: Durability,
) -> Result<()> {
    let _committing = lock(&COMMITTING);
    if let Some(((current_index, current_term), _)) = read_head(dir)? {
        if is_stale(
            (meta.last_index, meta.last_term),
            (current_index, current_term),
        ) {
            remove_if_exists(dir, from)?;
            return Err(Error::StaleSnapshot {
                index: meta.last_index,
                term: meta.last_term,
                current_index,
                current_term,
            });
        }
    }
    rename_durable(dir, from, FILE_NAME, policy)
}

/// Whether a snapshot ending at `new` must not replace one ending at `current`: it is older, or
/// ends at the same index with another term.
pub(crate) fn is_stale(new: (Index, Term), current: (Index, Term)) -> bool {
    new.0 < current.0 || (new.0 == current.0 && new.1 != current.1)
}

/// The last `(index, term)` and the size in bytes of the snapshot file in `dir`, reading only its
/// header (the whole file was checked when it was written or loaded); `None` without a file.
pub(crate) fn read_head(dir: &Path) -> Result<Option<((Index, Term), u64)>> {
    let path = dir.join(FILE_NAME);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open", &path)(e)),
    };
    let len = file.metadata().map_err(Error::io("stat", &path))?.len();
    let mut head = [0u8; 24];
    let read = file.read_exact(&mut head);
    let known = [MAGIC, MAGIC_V3, MAGIC_V2].iter().any(|m| &head[..8] == *m);
    if read.is_err() || !known {
        return Err(Error::Corrupt {
            file: path,
            offset: 0,
            detail: "the snapshot file changed since it was written: short, or bad magic".into(),
        });
    }
    let u64_at = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8 bytes"));
    Ok(Some(((u64_at(8), u64_at(16)), len)))
}

/// A lock that a panic elsewhere does not make unusable (it guards no data, only an order).
fn lock(mutex: &'static Mutex<()>) -> MutexGuard<'static, ()> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(last_index: Index, last_term: Term, voters: &[NodeId]) -> SnapshotMeta {
        SnapshotMeta {
            last_index,
            last_term,
            voters: voters.to_vec(),
            learners: Vec::new(),
            outgoing: Vec::new(),
            addresses: Default::default(),
        }
    }

    #[test]
    fn a_joint_configuration_with_learners_round_trips() {
        let mut m = meta(9, 4, &[1, 2, 5]);
        m.learners = vec![7, 8];
        m.outgoing = vec![1, 2, 3];
        let snap = Snapshot::new(m.clone(), b"joint state");
        let back = Snapshot::from_image(snap.image().to_vec(), Path::new("x")).unwrap();
        assert_eq!(back.meta, m);
        assert_eq!(back.data(), b"joint state");
    }

    /// A format-2 image (`rtsnap02`: voters only), as riptide wrote before membership changes.
    fn format_2_image(
        last_index: Index,
        last_term: Term,
        voters: &[NodeId],
        data: &[u8],
    ) -> Vec<u8> {
        let mut image = MAGIC_V2.to_vec();
        image.extend_from_slice(&last_index.to_le_bytes());
        image.extend_from_slice(&last_term.to_le_bytes());
        image.extend_from_slice(&(voters.len() as u32).to_le_bytes());
        for v in voters {
            image.extend_from_slice(&v.to_le_bytes());
        }
        image.extend_from_slice(&(data.len() as u64).to_le_bytes());
        image.extend_from_slice(data);
        let crc = crc32fast::hash(&image[8..]);
        image.extend_from_slice(&crc.to_le_bytes());
        image
    }

    /// A format-3 image (`rtsnap-3`: voters, learners, outgoing voters, no addresses), as
    /// riptide wrote before configurations carried addresses.
    fn format_3_image(meta: &SnapshotMeta, data: &[u8]) -> Vec<u8> {
        let mut image = MAGIC_V3.to_vec();
        image.extend_from_slice(&meta.last_index.to_le_bytes());
        image.extend_from_slice(&meta.last_term.to_le_bytes());
        for list in [&meta.voters, &meta.learners, &meta.outgoing] {
            image.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for id in list {
                image.extend_from_slice(&id.to_le_bytes());
            }
        }
        image.extend_from_slice(&(data.len() as u64).to_le_bytes());
        image.extend_from_slice(data);
        let crc = crc32fast::hash(&image[8..]);
        image.extend_from_slice(&crc.to_le_bytes());
        image
    }

    #[test]
    fn a_format_3_file_is_still_read_as_a_configuration_without_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = meta(12, 3, &[1, 2, 5]);
        m.learners = vec![7];
        m.outgoing = vec![1, 2, 3];
        let image = format_3_image(&m, b"v3 state");
        std::fs::write(dir.path().join(FILE_NAME), &image).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.meta, m);
        assert!(loaded.meta.addresses.is_empty());
        assert_eq!(loaded.data(), b"v3 state");
        assert_eq!(
            read_head(dir.path()).unwrap(),
            Some(((12, 3), image.len() as u64))
        );
        // The same metadata written today is format 4, and another image.
        let now = Snapshot::new(m, b"v3 state");
        assert_eq!(&now.image()[..8], b"rtsnap-4");
        assert_ne!(now.image(), &image[..]);
    }

    fn with_addresses(m: &mut SnapshotMeta, addresses: &[(NodeId, &str)]) {
        m.addresses = addresses
            .iter()
            .map(|&(id, a)| (id, a.to_string()))
            .collect();
    }

    #[test]
    fn a_format_4_snapshot_round_trips_its_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = meta(30, 6, &[1, 2, 5]);
        m.learners = vec![7];
        m.outgoing = vec![1, 2, 3];
        with_addresses(
            &mut m,
            &[(1, "h1:7001"), (3, "h3:7003"), (7, &"x".repeat(255))],
        );
        let snap = Snapshot::new(m.clone(), b"with addresses");
        write_snapshot_file(dir.path(), &snap).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.meta, m);
        assert_eq!(loaded.meta.membership().address(3), Some("h3:7003"));
        assert_eq!(loaded.data(), b"with addresses");
        assert_eq!(
            read_head(dir.path()).unwrap(),
            Some(((30, 6), snap.image().len() as u64))
        );
    }

    #[test]
    fn a_bad_addresses_section_is_refused_without_panicking() {
        let mut m = meta(5, 1, &[1, 2]);
        with_addresses(&mut m, &[(1, "h1:1"), (2, "h2:2")]);
        let good = Snapshot::new(m, b"state").into_image();
        // The addresses section starts after the three lists; recompute the checksum of each
        // damaged image so that only the section is wrong.
        let section = FIXED_LEN + 16 + 8;
        let reseal = |mut image: Vec<u8>| {
            let crc_at = image.len() - CRC_LEN;
            let crc = crc32fast::hash(&image[8..crc_at]);
            image[crc_at..].copy_from_slice(&crc.to_le_bytes());
            image
        };
        let mut huge = good.clone();
        huge[section..section + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut not_utf8 = good.clone();
        // The first address's bytes follow its count, id and length.
        not_utf8[section + 4 + 10] = 0xff;
        let mut stranger = good.clone();
        stranger[section + 4..section + 12].copy_from_slice(&9u64.to_le_bytes());
        let cases = [
            (huge, "truncated"),
            (not_utf8, "not UTF-8"),
            (stranger, "node 9, which is not a member"),
        ];
        for (image, why) in cases {
            let err = Snapshot::from_image(reseal(image), Path::new("x")).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{err}");
            assert!(err.to_string().contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn the_magic_is_at_least_two_bits_from_every_older_one() {
        let bits = |a: &[u8; 8], b: &[u8; 8]| -> u32 {
            a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
        };
        let all = [MAGIC, MAGIC_V3, MAGIC_V2, MAGIC_V1];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                let d = bits(a, b);
                // rtsnap02 and rtsnap01 predate the rule; every newer magic keeps it.
                if i < 2 {
                    assert!(d >= 2, "{:?} and {:?} are {d} bit apart", a, b);
                }
            }
        }
        assert_eq!(bits(MAGIC, MAGIC_V3), 3);
    }

    #[test]
    fn a_format_2_file_is_still_read_as_a_simple_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let image = format_2_image(12, 3, &[1, 2, 3], b"old state");
        std::fs::write(dir.path().join(FILE_NAME), &image).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.meta, meta(12, 3, &[1, 2, 3]));
        assert_eq!(loaded.data(), b"old state");
        assert_eq!(
            read_head(dir.path()).unwrap(),
            Some(((12, 3), image.len() as u64))
        );
    }

    #[test]
    fn round_trips_replaces_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let one = Snapshot::new(meta(10, 2, &[1, 2, 3]), b"state at 10");
        write_snapshot_file(dir.path(), &one).unwrap();
        let loaded = load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded, one);
        assert_eq!(loaded.meta.voters, vec![1, 2, 3]);
        assert_eq!(loaded.data(), b"state at 10");
        assert_eq!(
            read_head(dir.path()).unwrap(),
            Some(((10, 2), one.image().len() as u64))
        );
        let two = Snapshot::new(meta(20, 3, &[]), b"");
        write_snapshot_file(dir.path(), &two).unwrap();
        assert_eq!(load(dir.path()).unwrap().as_ref(), Some(&two));
        assert!(two.data().is_empty());

        let err = write_snapshot_file(dir.path(), &one).unwrap_err();
        assert!(
            matches!(
                err,
                Error::StaleSnapshot {
                    current_index: 20,
                    ..
                }
            ),
            "{err}"
        );
        assert!(!dir.path().join(TMP_NAME).exists());
        assert_eq!(load(dir.path()).unwrap().as_ref(), Some(&two));
    }

    #[test]
    fn debug_prints_lengths_not_data() {
        let snap = Snapshot::new(meta(1, 1, &[7]), &[0xAB; 100_000]);
        let shown = format!("{snap:?}");
        assert!(shown.len() < 200, "{shown}");
        assert!(shown.contains("data_bytes: 100000"), "{shown}");
    }

    #[test]
    fn garbage_and_truncations_are_refused_without_panicking() {
        let good = Snapshot::new(meta(5, 1, &[1, 2]), b"some state").into_image();
        for len in 0..good.len() {
            let err = Snapshot::from_image(good[..len].to_vec(), Path::new("x")).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "cut at {len}: {err}");
        }
        let mut huge_count = good.clone();
        huge_count[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = Snapshot::from_image(huge_count, Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("voters do not fit"), "{err}");
        let mut huge_data = good.clone();
        // Two voters, then the (empty) learner and outgoing lists' and addresses' counts.
        let at = FIXED_LEN + 16 + 12;
        huge_data[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let err = Snapshot::from_image(huge_data, Path::new("x")).unwrap_err();
        assert!(err.to_string().contains("bytes of data"), "{err}");
    }
}
