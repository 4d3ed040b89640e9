//! The snapshot file: the state machine as of some log index, replacing the log up to there.
//!
//! Layout of `<dir>/snapshot`:
//!
//! ```text
//! [8  magic "rtsnap01"][u64 last_index][u64 last_term][u64 data_len][data ...][u32 crc32]
//! ```
//!
//! little-endian, the CRC-32 covering everything between the magic and itself. Like the hard state
//! it is written to `snapshot.tmp`, fsynced, renamed over `snapshot`, and the directory fsynced: the
//! rename is the commit point. A leftover `snapshot.tmp` is a snapshot that was never taken, and
//! recovery deletes it unread. A `snapshot` that fails its checks is damage, not a torn write.

use std::path::Path;

use super::error::{Error, Result};
use super::fs::{read_if_exists, replace_file};
use crate::types::{Index, Term};

pub(crate) const FILE_NAME: &str = "snapshot";
pub(crate) const TMP_NAME: &str = "snapshot.tmp";

/// Identifies the file and its format version; a future format gets a new magic.
const MAGIC: &[u8; 8] = b"rtsnap01";

/// magic (8) + last_index (8) + last_term (8) + data_len (8).
const HEADER_LEN: usize = 32;

/// The trailing checksum.
const CRC_LEN: usize = 4;

/// A snapshot of the state machine: everything the log held up to and including `last_index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The index of the last entry the snapshot includes.
    pub last_index: Index,
    /// The term of that entry, needed for the AppendEntries consistency check right after it.
    pub last_term: Term,
    /// The state machine's own serialization; opaque to storage.
    pub data: Vec<u8>,
}

/// Durably replaces the snapshot in `dir` (the old one stays valid until the rename).
pub(crate) fn save(dir: &Path, snap: &Snapshot) -> Result<()> {
    let mut header = [0u8; HEADER_LEN];
    header[..8].copy_from_slice(MAGIC);
    header[8..16].copy_from_slice(&snap.last_index.to_le_bytes());
    header[16..24].copy_from_slice(&snap.last_term.to_le_bytes());
    header[24..32].copy_from_slice(&(snap.data.len() as u64).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header[8..]);
    crc.update(&snap.data);
    let crc = crc.finalize().to_le_bytes();
    replace_file(dir, TMP_NAME, FILE_NAME, &[&header, &snap.data, &crc])
}

/// Loads the snapshot from `dir`, if one was ever saved.
pub(crate) fn load(dir: &Path) -> Result<Option<Snapshot>> {
    let path = dir.join(FILE_NAME);
    let Some(mut bytes) = read_if_exists(&path)? else {
        return Ok(None);
    };
    let corrupt = |offset: usize, detail: String| Error::Corrupt {
        file: path.clone(),
        offset: offset as u64,
        detail: format!(
            "{detail} (snapshots are only ever installed by an fsynced rename, so this is damage, \
             not a torn write)"
        ),
    };
    if bytes.len() < HEADER_LEN + CRC_LEN || &bytes[..8] != MAGIC {
        return Err(corrupt(
            0,
            "not a riptide snapshot file (short or bad magic)".into(),
        ));
    }
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let (last_index, last_term, data_len) = (u64_at(8), u64_at(16), u64_at(24));
    let expected_len = data_len.checked_add((HEADER_LEN + CRC_LEN) as u64);
    if expected_len != Some(bytes.len() as u64) {
        return Err(corrupt(
            24,
            format!(
                "snapshot file has {} bytes, its header says {data_len} bytes of data",
                bytes.len()
            ),
        ));
    }
    let crc_at = bytes.len() - CRC_LEN;
    let stored = u32::from_le_bytes(bytes[crc_at..].try_into().expect("4 bytes"));
    let computed = crc32fast::hash(&bytes[8..crc_at]);
    if stored != computed {
        return Err(corrupt(
            crc_at,
            format!("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"),
        ));
    }
    bytes.truncate(crc_at);
    bytes.drain(..HEADER_LEN);
    Ok(Some(Snapshot {
        last_index,
        last_term,
        data: bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_replaces_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let one = Snapshot {
            last_index: 10,
            last_term: 2,
            data: b"state at 10".to_vec(),
        };
        save(dir.path(), &one).unwrap();
        assert_eq!(load(dir.path()).unwrap().as_ref(), Some(&one));
        let two = Snapshot {
            last_index: 20,
            last_term: 3,
            data: vec![],
        };
        save(dir.path(), &two).unwrap();
        assert_eq!(load(dir.path()).unwrap().as_ref(), Some(&two));

        save(dir.path(), &one).unwrap();
        let good = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
        for byte in 0..good.len() {
            let mut bad = good.clone();
            bad[byte] ^= 0x80;
            std::fs::write(dir.path().join(FILE_NAME), &bad).unwrap();
            assert!(
                matches!(load(dir.path()), Err(Error::Corrupt { .. })),
                "flip at {byte}"
            );
        }
        std::fs::write(dir.path().join(FILE_NAME), &good[..good.len() - 1]).unwrap();
        assert!(matches!(load(dir.path()), Err(Error::Corrupt { .. })));
    }
}
