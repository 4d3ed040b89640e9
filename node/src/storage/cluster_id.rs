//! The cluster's identity, kept in the data dir so that a node can never wander into another
//! cluster.
//!
//! A cluster id is chosen once, when a cluster is first formed (`riptide test` and `riptide
//! cluster` generate one and pass `--cluster-id`). The first start on an empty data dir writes it
//! to `<dir>/cluster` (temp file, fsync, rename, fsync the directory); every later start compares
//! the flag with it, and a mismatch stops the node before it says a word to anyone. Without this,
//! a node left over from an earlier cluster on the same addresses, or a data dir copied from
//! another cluster, could vote and replicate in this one and rewrite its log.
//!
//! The file is one line of text, `rtclus01 <id> <crc32 of id, hex>`, so that an operator can read
//! it and a damaged one is never misread.

use std::path::Path;

use super::durability::{Durability, SyncKind};
use super::error::{Error, Result};
use super::fs::{read_if_exists, replace_file};

const FILE: &str = "cluster";
const TMP: &str = "cluster.tmp";
const MAGIC: &str = "rtclus01";
/// Longest cluster id accepted.
pub const MAX_CLUSTER_ID_LEN: usize = 64;

/// Checks a cluster id's spelling: 1 to 64 characters from `A-Z a-z 0-9 . _ -`.
pub fn validate_cluster_id(id: &str) -> std::result::Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if id.is_empty() || id.len() > MAX_CLUSTER_ID_LEN || !id.chars().all(ok_char) {
        return Err(format!(
            "cluster id `{id}` must be 1 to {MAX_CLUSTER_ID_LEN} characters from A-Z a-z 0-9 . _ -"
        ));
    }
    Ok(())
}

/// What the data dir says about the cluster, reconciled with `--cluster-id`:
/// - stored and given: they must be equal, or the node must not start (the error names both);
/// - stored only: the stored id (a restart without the flag keeps its cluster);
/// - given only: a fresh data dir joins that cluster, and the id is written durably;
/// - neither: `None`, an unnamed cluster whose nodes admit only other unnamed nodes.
pub fn adopt_cluster_id(
    dir: &Path,
    given: Option<&str>,
    policy: Durability,
) -> Result<Option<String>> {
    let stored = read_cluster_id(dir)?;
    match (stored, given) {
        (Some(stored), Some(given)) if stored != given => Err(Error::ClusterMismatch {
            dir: dir.to_path_buf(),
            stored,
            given: given.to_string(),
        }),
        (Some(stored), _) => Ok(Some(stored)),
        (None, Some(given)) => {
            let line = format!(
                "{MAGIC} {given} {:08x}\n",
                crc32fast::hash(given.as_bytes())
            );
            replace_file(
                dir,
                (TMP, FILE),
                &[line.as_bytes()],
                SyncKind::Other,
                policy,
            )?;
            Ok(Some(given.to_string()))
        }
        (None, None) => Ok(None),
    }
}

/// The id stored in `dir`, if any; a file that does not parse or check is [`Error::Corrupt`].
fn read_cluster_id(dir: &Path) -> Result<Option<String>> {
    let path = dir.join(FILE);
    let Some(bytes) = read_if_exists(&path)? else {
        return Ok(None);
    };
    let corrupt = |detail: String| Error::Corrupt {
        file: path.clone(),
        offset: 0,
        detail,
    };
    let text = String::from_utf8(bytes).map_err(|_| corrupt("not UTF-8 text".into()))?;
    let fields: Vec<&str> = text.trim_end_matches('\n').split(' ').collect();
    let [magic, id, crc] = fields[..] else {
        return Err(corrupt(format!(
            "expected `{MAGIC} <id> <crc>`, found {text:?}"
        )));
    };
    if magic != MAGIC {
        return Err(corrupt(format!(
            "unknown format `{magic}`, expected {MAGIC}"
        )));
    }
    let want = format!("{:08x}", crc32fast::hash(id.as_bytes()));
    if crc != want || validate_cluster_id(id).is_err() {
        return Err(corrupt(format!(
            "the checksum of cluster id `{id}` is {crc}, expected {want}"
        )));
    }
    Ok(Some(id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_dir_takes_the_given_id_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            adopt_cluster_id(dir.path(), None, Durability::FULL).unwrap(),
            None
        );
        assert_eq!(
            adopt_cluster_id(dir.path(), Some("c-1"), Durability::FULL)
                .unwrap()
                .as_deref(),
            Some("c-1")
        );
        // A restart without the flag stays in its cluster; with the same flag too.
        assert_eq!(
            adopt_cluster_id(dir.path(), None, Durability::FULL)
                .unwrap()
                .as_deref(),
            Some("c-1")
        );
        assert_eq!(
            adopt_cluster_id(dir.path(), Some("c-1"), Durability::FULL)
                .unwrap()
                .as_deref(),
            Some("c-1")
        );
    }

    #[test]
    fn another_id_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        adopt_cluster_id(dir.path(), Some("old"), Durability::FULL).unwrap();
        let err = adopt_cluster_id(dir.path(), Some("new"), Durability::FULL)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`old`") && err.contains("`new`"), "{err}");
    }

    #[test]
    fn a_damaged_file_is_corrupt_not_misread() {
        let dir = tempfile::tempdir().unwrap();
        adopt_cluster_id(dir.path(), Some("abc"), Durability::FULL).unwrap();
        let path = dir.path().join(FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("abc", "abd")).unwrap();
        let err = adopt_cluster_id(dir.path(), None, Durability::FULL).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        std::fs::write(&path, b"\xff\xfe").unwrap();
        assert!(matches!(
            adopt_cluster_id(dir.path(), None, Durability::FULL).unwrap_err(),
            Error::Corrupt { .. }
        ));
    }

    #[test]
    fn ids_are_short_plain_words() {
        assert!(validate_cluster_id("riptide-20261202T0930-1f").is_ok());
        for bad in ["", "a b", "x/y", &"a".repeat(65)] {
            assert!(validate_cluster_id(bad).is_err(), "{bad:?}");
        }
    }
}
