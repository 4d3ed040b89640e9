//! The few file-system moves storage is built from, each with its durability rule.
//!
//! POSIX makes a file's *contents* durable with `fsync` on the file, and its *name* (creation,
//! removal, rename) durable with `fsync` on the directory that holds it. Forgetting the second is the
//! classic way to lose a freshly created or renamed file in a power failure.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::durability::{fsync, Durability, SyncKind};
use super::error::{Error, Result};

/// Makes the entries of directory `dir` (files created, removed or renamed in it) durable.
pub(crate) fn sync_dir(dir: &Path, policy: Durability) -> Result<()> {
    if !policy.dirs {
        return Ok(());
    }
    let handle = File::open(dir).map_err(Error::io("open directory", dir))?;
    fsync(&handle, dir, SyncKind::Dir, false, policy)
}

/// Replaces `dir/name` with `parts` (concatenated) atomically and durably: write `dir/tmp_name`,
/// fsync it, rename it over `name`, fsync `dir`. A crash at any point leaves either the old file or
/// the new one under `name`, never a mix; at worst a stale `tmp_name` that recovery removes.
/// `kind` says which fsync of the policy the temp file's is.
pub(crate) fn replace_file(
    dir: &Path,
    (tmp_name, name): (&str, &str),
    parts: &[&[u8]],
    kind: SyncKind,
    policy: Durability,
) -> Result<()> {
    let tmp = dir.join(tmp_name);
    write_synced(&tmp, parts, kind, policy)?;
    rename_durable(dir, tmp_name, name, policy)
}

/// Creates (or truncates) `path`, writes `parts` (concatenated) and fsyncs it. Its *name* is not
/// made durable: the caller renames it and syncs the directory.
pub(crate) fn write_synced(
    path: &Path,
    parts: &[&[u8]],
    kind: SyncKind,
    policy: Durability,
) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(Error::io("create", path))?;
    for part in parts {
        file.write_all(part).map_err(Error::io("write", path))?;
    }
    fsync(&file, path, kind, false, policy)
}

/// Renames `dir/from` over `dir/to` and fsyncs `dir`: the commit point of a replacement. The
/// caller has fsynced `from`'s contents.
pub(crate) fn rename_durable(dir: &Path, from: &str, to: &str, policy: Durability) -> Result<()> {
    let from = dir.join(from);
    fs::rename(&from, dir.join(to)).map_err(Error::io("rename", &from))?;
    sync_dir(dir, policy)
}

/// Removes `dir/name` if it exists; says whether it did. The caller syncs the directory.
pub(crate) fn remove_if_exists(dir: &Path, name: &str) -> Result<bool> {
    let path = dir.join(name);
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("remove", path)(e)),
    }
}

/// Reads `path`, or `None` if it does not exist.
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path)(e)),
    }
}

/// Takes an exclusive advisory lock on `dir/LOCK` for as long as the returned file is open. The
/// kernel drops it when the process dies, so a SIGKILLed node never leaves a stale lock behind.
pub(crate) fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(Error::io("create", &path))?;
    // SAFETY: flock takes a file descriptor we own (kept open by `file`) and plain flags.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        return Err(if err.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked {
                dir: dir.to_path_buf(),
            }
        } else {
            Error::io("lock", path)(err)
        });
    }
    Ok(file)
}

/// Creates `dir` (and its parents) if missing, making its name durable in its parent.
pub(crate) fn create_dir_durable(dir: &Path, policy: Durability) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(Error::io("create directory", dir))?;
    match dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent, policy),
        _ => Ok(()),
    }
}
