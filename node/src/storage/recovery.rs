//! Reading the log back after a restart: validate every record, cut a torn tail, refuse damage.
//!
//! The rules (the module docs of [`super`] explain why):
//!
//! 1. Segments whose entries all precede the snapshot's last index are deleted unread (an
//!    interrupted compaction). The segment holding the snapshot's last index is always read, so
//!    that its term can be compared with the snapshot's.
//! 2. Every other segment is read in full. Its name must equal the index that follows the previous
//!    segment's last entry (the first one must not start after the snapshot): a gap or an overlap
//!    is corruption. Every record must be valid and hold the expected index, and terms must never
//!    decrease; a record with a good checksum that breaks these is corruption, never a torn write.
//! 3. A bad record in the newest segment with no valid record of a later entry anywhere after it is
//!    a torn final write: the file is cut there (and fsynced) and the cut is reported in `repairs`.
//!    A bad record with such a record after it, or a bad record in an older (sealed) segment, is
//!    corruption. A refused recovery never cuts anything.
//! 4. If the log ends before the snapshot's last index, or holds that index with another term, the
//!    snapshot replaced it just before a crash: it is deleted (reported in `repairs`).
//!    The first entry after the snapshot must not have a lower term than the snapshot.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::durability::{fsync, Durability, SyncKind};
use super::error::{Error, Result};
use super::fs::sync_dir;
use super::record::{decode_entry, find_following_entry, read_record, ENTRY_FIXED_LEN};
use super::segment::{self, Segment, HEADER_LEN, MAGIC};
use super::terms::TermRuns;
use crate::types::{Entry, Index, Term};

/// The log as recovery found (and repaired) it.
pub(crate) struct RecoveredLog {
    /// The surviving segments in order; empty if there is no log left (the store creates one).
    pub segments: Vec<Segment>,
    pub terms: TermRuns,
    /// The last entry the segments hold, if any.
    pub last: Option<(Index, Term)>,
    /// The entries after the snapshot.
    pub entries: Vec<Entry>,
}

fn corrupt(file: &Path, offset: usize, detail: String) -> Error {
    Error::Corrupt {
        file: file.to_path_buf(),
        offset: offset as u64,
        detail,
    }
}

/// Recovers the log in `log_dir` against the snapshot's last `(index, term)` (`(0, 0)` if none).
pub(crate) fn recover_log(
    log_dir: &Path,
    snap: (Index, Term),
    repairs: &mut Vec<String>,
    policy: Durability,
) -> Result<RecoveredLog> {
    let mut files = segment::list(log_dir, repairs)?;
    delete_segments_before(log_dir, &mut files, snap.0, repairs, policy)?;
    // A reset deletes every file, including those after a divergence that were never scanned.
    let all_paths: Vec<PathBuf> = files.iter().map(|(_, path)| path.clone()).collect();
    let (mut log, diverged) = scan_segments(files, snap, repairs)?;
    if let Some(why) = reset_reason(&log, diverged, snap) {
        log.segments.clear();
        remove_newest_first(log_dir, &all_paths, policy)?;
        repairs.push(format!(
            "deleted the whole log ({} segment(s)): {why}; the snapshot supersedes it (a \
             snapshot install or a snapshot past the synced log, then a crash)",
            all_paths.len()
        ));
        log.terms.clear();
        log.last = None;
        log.entries.clear();
    }
    Ok(log)
}

/// Rule 1: deletes the segments followed by one that starts at or before the snapshot's last
/// index (all their entries precede it), and drops them from `files`.
fn delete_segments_before(
    log_dir: &Path,
    files: &mut Vec<(Index, PathBuf)>,
    snap_index: Index,
    repairs: &mut Vec<String>,
    policy: Durability,
) -> Result<()> {
    let covered = files
        .windows(2)
        .take_while(|w| w[1].0 <= snap_index)
        .count();
    for (first, path) in files.drain(..covered) {
        fs::remove_file(&path).map_err(Error::io("remove", &path))?;
        repairs.push(format!(
            "deleted segment {}: all its entries precede the snapshot at {snap_index} \
             (finishing an interrupted compaction)",
            segment::file_name(first)
        ));
    }
    if covered > 0 {
        sync_dir(log_dir, policy)?;
    }
    Ok(())
}

/// Rules 2 and 3: reads the segments in order, checking that their names chain. Returns the log
/// and whether it stopped at an entry that diverges from the snapshot.
fn scan_segments(
    files: Vec<(Index, PathBuf)>,
    snap: (Index, Term),
    repairs: &mut Vec<String>,
) -> Result<(RecoveredLog, bool)> {
    let mut log = RecoveredLog {
        segments: Vec::new(),
        terms: TermRuns::default(),
        last: None,
        entries: Vec::new(),
    };
    let mut diverged = false;
    let newest = files.len().saturating_sub(1);
    for (i, (first, path)) in files.into_iter().enumerate() {
        check_segment_name(&log, first, &path, snap.0)?;
        let seg = scan_segment(
            first,
            path,
            i == newest,
            snap,
            &mut log,
            &mut diverged,
            repairs,
        )?;
        log.segments.push(seg);
        if diverged {
            break;
        }
    }
    Ok((log, diverged))
}

/// Rule 2: a segment's name is the index that follows the previous segment's last entry; the
/// first segment must not start after the snapshot.
fn check_segment_name(
    log: &RecoveredLog,
    first: Index,
    path: &Path,
    snap_index: Index,
) -> Result<()> {
    match log.segments.last().map(Segment::next_index) {
        Some(next) if first != next => Err(corrupt(
            path,
            0,
            format!(
                "segment starts at entry {first}, but the previous segment ends at entry \
                 {}: the log has a gap or an overlap",
                next.saturating_sub(1)
            ),
        )),
        _ if first == 0 => Err(corrupt(
            path,
            0,
            "segment named 0: index 0 is never an entry".into(),
        )),
        None if first > snap_index + 1 => Err(corrupt(
            path,
            0,
            format!(
                "the log starts at entry {first}, but the snapshot ends at entry \
                 {snap_index}: entries {}..={} are missing",
                snap_index + 1,
                first - 1
            ),
        )),
        _ => Ok(()),
    }
}

/// Rule 4: why the log must give way to the snapshot, if it must: it diverged from the snapshot,
/// or it does not reach the snapshot's last entry.
fn reset_reason(
    log: &RecoveredLog,
    diverged: bool,
    (snap_index, snap_term): (Index, Term),
) -> Option<String> {
    if diverged {
        return Some(format!(
            "its entry {snap_index} has another term than the snapshot's ({snap_term}), so the \
             entries after it are from another history"
        ));
    }
    match (log.last, log.segments.last()) {
        (Some((last, _)), _) if last < snap_index => Some(format!(
            "it ends at entry {last}, before the snapshot's last entry {snap_index}"
        )),
        (None, Some(seg)) if seg.first <= snap_index => Some(format!(
            "it is empty and starts at {}, before the snapshot's last entry {snap_index}",
            seg.first
        )),
        _ => None,
    }
}

/// What a valid record's entry means for the scan.
#[derive(PartialEq, Eq)]
enum EntryFit {
    /// It continues the log.
    Follows,
    /// It sits at the snapshot's last index with another term: the log diverged from the snapshot.
    Diverges,
}

/// Reads one segment, appending its entries to `log`. Stops early (setting `diverged`) at an entry
/// at the snapshot's index with another term.
fn scan_segment(
    first: Index,
    path: PathBuf,
    is_newest: bool,
    snap: (Index, Term),
    log: &mut RecoveredLog,
    diverged: &mut bool,
    repairs: &mut Vec<String>,
) -> Result<Segment> {
    let bytes = fs::read(&path).map_err(Error::io("read", &path))?;
    let mut seg = Segment {
        first,
        path,
        offsets: Vec::new(),
        len: HEADER_LEN,
    };
    let mut end = HEADER_LEN as usize;
    let mut bad = check_magic(&bytes);
    while bad.is_none() && end < bytes.len() {
        let (payload, after) = match read_record(&bytes, end, ENTRY_FIXED_LEN) {
            Ok(ok) => ok,
            Err(why) => {
                bad = Some((end, why.to_string()));
                break;
            }
        };
        let entry = decode_entry(payload).map_err(|why| {
            corrupt(
                &seg.path,
                end,
                format!("{why} (its checksum matched: not a torn write)"),
            )
        })?;
        if check_entry(&seg, end, &entry, log.last, snap)? == EntryFit::Diverges {
            *diverged = true;
            return Ok(seg);
        }
        seg.offsets.push(end as u64);
        log.terms.push(entry.index, entry.term);
        log.last = Some((entry.index, entry.term));
        if entry.index > snap.0 {
            log.entries.push(entry);
        }
        end = after;
    }
    if let Some((at, why)) = bad {
        let min_term = log.last.map_or(0, |(_, term)| term);
        cut_torn_tail(&seg, &bytes, (at, &why), is_newest, min_term, repairs)?;
    }
    seg.len = end as u64;
    Ok(seg)
}

/// Where the segment's records start being unreadable because of its header: `None` if the
/// magic is intact, else offset 0 and why.
fn check_magic(bytes: &[u8]) -> Option<(usize, String)> {
    let header = HEADER_LEN as usize;
    if bytes.len() >= header && bytes[..header] == MAGIC[..] {
        None
    } else if bytes.len() < header && MAGIC.starts_with(bytes) {
        Some((
            0,
            format!("torn segment header ({} of {header} bytes)", bytes.len()),
        ))
    } else {
        Some((0, "not a riptide log segment (bad magic)".to_string()))
    }
}

/// Checks a valid record's entry at offset `at` against the log so far and the snapshot: the
/// expected index, terms that never decrease, and no term below the snapshot's right after it.
fn check_entry(
    seg: &Segment,
    at: usize,
    entry: &Entry,
    last: Option<(Index, Term)>,
    (snap_index, snap_term): (Index, Term),
) -> Result<EntryFit> {
    let expected = seg.next_index();
    if entry.index != expected {
        return Err(corrupt(
            &seg.path,
            at,
            format!(
                "record holds entry {}, expected entry {expected}",
                entry.index
            ),
        ));
    }
    if let Some((_, previous)) = last {
        if entry.term < previous {
            return Err(corrupt(
                &seg.path,
                at,
                format!(
                    "entry {} has term {} after term {previous}: terms never decrease in a \
                     Raft log",
                    entry.index, entry.term
                ),
            ));
        }
    }
    if entry.index == snap_index && entry.term != snap_term {
        return Ok(EntryFit::Diverges);
    }
    if entry.index == snap_index + 1 && entry.term < snap_term {
        return Err(corrupt(
            &seg.path,
            at,
            format!(
                "entry {} has term {}, lower than the snapshot's last term {snap_term}",
                entry.index, entry.term
            ),
        ));
    }
    Ok(EntryFit::Follows)
}

/// Rule 3: a bad record (at offset `at`, for reason `why`) is a torn tail only at the very end of
/// the newest segment; then the file is cut there. Anything else is corruption.
fn cut_torn_tail(
    seg: &Segment,
    bytes: &[u8],
    (at, why): (usize, &str),
    is_newest: bool,
    min_term: Term,
    repairs: &mut Vec<String>,
) -> Result<()> {
    let name = seg.name();
    if !is_newest {
        return Err(corrupt(
            &seg.path,
            at,
            format!(
                "{why} in sealed segment {name}: a newer segment exists, and a segment is \
                 fsynced before the next one is created, so this is not a torn write"
            ),
        ));
    }
    if let Some((valid, index)) = find_following_entry(bytes, at, seg.next_index(), min_term) {
        return Err(corrupt(
            &seg.path,
            at,
            format!(
                "{why}, but a valid record (entry {index}) follows at offset {valid}: damage \
                 in the middle of the log, not a torn write"
            ),
        ));
    }
    cut(&seg.path, at as u64)?;
    // An empty file is a segment created just before a crash: nothing was lost or cut.
    if !bytes.is_empty() {
        repairs.push(format!(
            "segment {name}: {why} at offset {at}; cut {} bytes (a torn final write)",
            bytes.len() - at
        ));
    }
    Ok(())
}

/// Cuts `path` to `at` bytes (rewriting the segment header if `at` is inside it) and fsyncs it, so
/// that later appends land after a durable end and can never expose the cut bytes again.
/// (A repair: always fsynced, whatever the store's policy.)
fn cut(path: &Path, at: u64) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(Error::io("open", path))?;
    if at < HEADER_LEN {
        file.set_len(0).map_err(Error::io("truncate", path))?;
        file.write_all(MAGIC).map_err(Error::io("write", path))?;
    } else {
        file.set_len(at).map_err(Error::io("truncate", path))?;
    }
    fsync(&file, path, SyncKind::Other, false, Durability::FULL)
}

/// Deletes segment files from the newest to the oldest, fsyncing the directory after each, so that
/// a crash part-way always leaves a prefix of the log (never a log with a hole in it).
pub(crate) fn remove_newest_first(
    log_dir: &Path,
    paths: &[PathBuf],
    policy: Durability,
) -> Result<()> {
    for path in paths.iter().rev() {
        fs::remove_file(path).map_err(Error::io("remove", path))?;
        sync_dir(log_dir, policy)?;
    }
    Ok(())
}
