//! Segment files: the log cut into files named by the index of their first entry.
//!
//! `<dir>/log/00000000000000000042.seg` holds entries 42, 43, ... up to the entry before the next
//! segment's first index (or the end of the log for the newest one). Each file is the magic
//! `rtwal001` followed by one record per entry, in index order. Twenty digits hold any `u64`, and
//! zero-padding makes the names sort like the numbers.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use crate::types::Index;

/// Identifies a segment file and its format version; a future format gets a new magic.
pub(crate) const MAGIC: &[u8; 8] = b"rtwal001";

/// Bytes before the first record of a segment.
pub(crate) const HEADER_LEN: u64 = MAGIC.len() as u64;

/// The directory under the data directory that holds the segments.
pub(crate) const LOG_DIR: &str = "log";

const EXTENSION: &str = ".seg";

/// Digits in a segment name: enough for `u64::MAX`.
const NAME_DIGITS: usize = 20;

/// The file name of the segment whose first entry is `first`.
pub(crate) fn file_name(first: Index) -> String {
    format!("{first:0width$}{EXTENSION}", width = NAME_DIGITS)
}

/// The first index encoded in a segment file name, or `None` if `name` is not a segment name.
pub(crate) fn parse_file_name(name: &str) -> Option<Index> {
    let digits = name.strip_suffix(EXTENSION)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What the store keeps in memory about one segment: enough to append to it, cut it at any entry
/// in O(1), and know which entries it holds, without ever re-reading it.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Index of the first entry this segment holds (or will hold, while empty); also its name.
    pub first: Index,
    pub path: PathBuf,
    /// `offsets[i]` is the byte offset of the record of entry `first + i`.
    pub offsets: Vec<u64>,
    /// The segment's length in bytes, including bytes still in the write buffer.
    pub len: u64,
}

impl Segment {
    /// The index the next entry appended to this segment gets.
    pub fn next_index(&self) -> Index {
        self.first + self.offsets.len() as Index
    }

    /// The name of the file, for messages.
    pub fn name(&self) -> String {
        file_name(self.first)
    }
}

/// The segment files in `log_dir`, sorted by first index. Other files are left alone and reported
/// in `notes` (an operator may have put them there; they are none of the log's business).
pub(crate) fn list(log_dir: &Path, notes: &mut Vec<String>) -> Result<Vec<(Index, PathBuf)>> {
    let mut found = Vec::new();
    let entries = fs::read_dir(log_dir).map_err(Error::io("list directory", log_dir))?;
    for entry in entries {
        let entry = entry.map_err(Error::io("list directory", log_dir))?;
        let name = entry.file_name();
        match name.to_str().and_then(parse_file_name) {
            Some(first) => found.push((first, entry.path())),
            None => notes.push(format!(
                "ignored unexpected file {} in the log directory",
                entry.path().display()
            )),
        }
    }
    found.sort_unstable_by_key(|(first, _)| *first);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_like_indexes_and_parse_back() {
        assert_eq!(file_name(1), "00000000000000000001.seg");
        assert_eq!(file_name(u64::MAX), "18446744073709551615.seg");
        assert!(file_name(9) < file_name(10));
        for i in [0, 1, 42, u64::MAX] {
            assert_eq!(parse_file_name(&file_name(i)), Some(i));
        }
        for bad in [
            "1.seg",
            "0000000000000000000a.seg",
            "00000000000000000001.tmp",
            "x",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }
}
