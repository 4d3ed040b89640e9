//! The hard-state file: the current term and vote, replaced atomically on every change.
//!
//! Layout of `<dir>/hardstate`: the magic `rths0001`, then one record (see [`super::record`]) whose
//! 17-byte payload is `[u64 term][u8 has_vote][u64 voted_for]`. It is replaced by writing
//! `hardstate.tmp`, fsyncing it, renaming it over `hardstate` and fsyncing the directory, so a
//! crash leaves the old or the new value, never a torn one; the checksum catches media damage.
//! A leftover `hardstate.tmp` is a write that never happened: recovery deletes it unread.

use std::path::Path;

use super::durability::{Durability, SyncKind};
use super::error::{Error, Result};
use super::fs::{read_if_exists, replace_file};
use super::record::{encode_record, read_record, RECORD_HEADER_LEN};
use crate::types::HardState;

pub(crate) const FILE_NAME: &str = "hardstate";
pub(crate) const TMP_NAME: &str = "hardstate.tmp";

/// Identifies the file and its format version; a future format gets a new magic.
const MAGIC: &[u8; 8] = b"rths0001";

/// term (8) + has_vote (1) + voted_for (8).
const PAYLOAD_LEN: usize = 17;

/// The whole file: magic, record header, payload.
const FILE_LEN: usize = MAGIC.len() + RECORD_HEADER_LEN + PAYLOAD_LEN;

/// Durably replaces the hard state in `dir`.
pub(crate) fn save(dir: &Path, hs: &HardState, policy: Durability) -> Result<()> {
    let mut payload = [0u8; PAYLOAD_LEN];
    payload[0..8].copy_from_slice(&hs.term.to_le_bytes());
    if let Some(vote) = hs.voted_for {
        payload[8] = 1;
        payload[9..17].copy_from_slice(&vote.to_le_bytes());
    }
    let mut bytes = Vec::with_capacity(FILE_LEN);
    bytes.extend_from_slice(MAGIC);
    encode_record(&payload, &mut bytes);
    replace_file(
        dir,
        (TMP_NAME, FILE_NAME),
        &[&bytes],
        SyncKind::HardState,
        policy,
    )
}

/// Loads the hard state from `dir`; a node that never saved one starts at term 0 with no vote.
pub(crate) fn load(dir: &Path) -> Result<HardState> {
    let path = dir.join(FILE_NAME);
    let Some(bytes) = read_if_exists(&path)? else {
        return Ok(HardState::default());
    };
    let corrupt = |offset: usize, detail: String| Error::Corrupt {
        file: path.clone(),
        offset: offset as u64,
        detail: format!(
            "{detail} (this file is only ever replaced by an fsynced rename, so this is damage, \
             not a torn write)"
        ),
    };
    if bytes.len() != FILE_LEN {
        return Err(corrupt(
            0,
            format!(
                "hard-state file has {} bytes, expected {FILE_LEN}",
                bytes.len()
            ),
        ));
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt(
            0,
            "not a riptide hard-state file (bad magic)".into(),
        ));
    }
    let (payload, _) = read_record(&bytes, MAGIC.len(), PAYLOAD_LEN)
        .map_err(|bad| corrupt(MAGIC.len(), format!("hard-state record: {bad}")))?;
    if payload.len() != PAYLOAD_LEN {
        return Err(corrupt(
            MAGIC.len(),
            format!("hard-state payload has {} bytes", payload.len()),
        ));
    }
    let term = u64::from_le_bytes(payload[0..8].try_into().expect("8 bytes"));
    let vote = u64::from_le_bytes(payload[9..17].try_into().expect("8 bytes"));
    let voted_for = match payload[8] {
        0 if vote == 0 => None,
        1 => Some(vote),
        flag => return Err(corrupt(MAGIC.len(), format!("bad vote flag {flag}"))),
    };
    Ok(HardState { term, voted_for })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_defaults_when_absent() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), HardState::default());
        for hs in [
            HardState {
                term: 3,
                voted_for: Some(2),
            },
            HardState {
                term: 4,
                voted_for: None,
            },
            HardState {
                term: u64::MAX,
                voted_for: Some(0),
            },
        ] {
            save(dir.path(), &hs, Durability::FULL).unwrap();
            assert_eq!(load(dir.path()).unwrap(), hs);
        }
        assert!(!dir.path().join(TMP_NAME).exists());
    }

    #[test]
    fn any_damage_is_refused_never_misread() {
        let dir = tempfile::tempdir().unwrap();
        save(
            dir.path(),
            &HardState {
                term: 9,
                voted_for: Some(1),
            },
            Durability::FULL,
        )
        .unwrap();
        let good = std::fs::read(dir.path().join(FILE_NAME)).unwrap();
        for cut in 0..good.len() {
            std::fs::write(dir.path().join(FILE_NAME), &good[..cut]).unwrap();
            assert!(
                matches!(load(dir.path()), Err(Error::Corrupt { .. })),
                "cut at {cut}"
            );
        }
        for byte in 0..good.len() {
            let mut bad = good.clone();
            bad[byte] ^= 0x01;
            std::fs::write(dir.path().join(FILE_NAME), &bad).unwrap();
            assert!(
                matches!(load(dir.path()), Err(Error::Corrupt { .. })),
                "flip at {byte}"
            );
        }
    }
}
