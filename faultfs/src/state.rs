//! What the mount knows: the backing dir, inodes, open files, and the two undo journals.
//! Every FUSE request and every control command locks it; requests are answered in order.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::entries::EntryOp;
use crate::inodes::Inodes;
use crate::journal::FileJournal;

/// The hidden directory, inside the backing dir, where removed and overwritten entries wait
/// until their removal is durable. The mount does not show it.
pub const STASH: &str = ".faultfs-stash";

pub(crate) struct State {
    pub(crate) backing: PathBuf,
    pub(crate) inodes: Inodes,
    pub(crate) handles: HashMap<u64, (u64, File)>,
    next_fh: u64,
    pub(crate) data: BTreeMap<u64, FileJournal>,
    pub(crate) entries: Vec<EntryOp>,
    next_stash: u64,
    /// Counters for `status`.
    pub(crate) fsyncs: u64,
    pub(crate) dir_fsyncs: u64,
    pub(crate) power_cuts: u64,
}

pub(crate) fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

pub(crate) fn not_found() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOENT)
}

impl State {
    pub(crate) fn new(backing: PathBuf) -> io::Result<Self> {
        let stash = backing.join(STASH);
        if stash.exists() {
            // Left by a mount that was not unmounted cleanly: its undo journal is gone, so
            // what waits there can never come back.
            fs::remove_dir_all(&stash)?;
        }
        fs::create_dir(&stash)?;
        Ok(State {
            backing,
            inodes: Inodes::new(),
            handles: HashMap::new(),
            next_fh: 1,
            data: BTreeMap::new(),
            entries: Vec::new(),
            next_stash: 0,
            fsyncs: 0,
            dir_fsyncs: 0,
            power_cuts: 0,
        })
    }

    /// The relative path of `ino`.
    pub(crate) fn rel(&self, ino: u64) -> io::Result<PathBuf> {
        self.inodes
            .path(ino)
            .map(Path::to_path_buf)
            .ok_or_else(not_found)
    }

    pub(crate) fn full(&self, rel: &Path) -> PathBuf {
        self.backing.join(rel)
    }

    /// The relative path of `name` in directory `parent`; the stash is not a name of the root.
    pub(crate) fn child(&self, parent: u64, name: &std::ffi::OsStr) -> io::Result<PathBuf> {
        let dir = self.rel(parent)?;
        if dir.as_os_str().is_empty() && name == STASH {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        Ok(dir.join(name))
    }

    pub(crate) fn new_stash(&mut self) -> PathBuf {
        self.next_stash += 1;
        Path::new(STASH).join(self.next_stash.to_string())
    }

    pub(crate) fn add_handle(&mut self, ino: u64, file: File) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, (ino, file));
        fh
    }

    fn handle(&self, fh: u64) -> io::Result<&File> {
        self.handles
            .get(&fh)
            .map(|(_, f)| f)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    fn journal(&mut self, ino: u64, file: &File) -> io::Result<&mut FileJournal> {
        match self.data.entry(ino) {
            std::collections::btree_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::btree_map::Entry::Vacant(e) => {
                Ok(e.insert(FileJournal::new(file.metadata()?.len())))
            }
        }
    }

    pub(crate) fn write(&mut self, fh: u64, offset: u64, data: &[u8]) -> io::Result<()> {
        let (ino, file) = self
            .handles
            .remove(&fh)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        let result = self
            .journal(ino, &file)
            .and_then(|j| j.write(&file, offset, data));
        self.handles.insert(fh, (ino, file));
        result
    }

    pub(crate) fn read(&self, fh: u64, offset: u64, size: usize) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let file = self.handle(fh)?;
        let mut buf = vec![0; size];
        let mut done = 0;
        while done < size {
            let n = file.read_at(&mut buf[done..], offset + done as u64)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        buf.truncate(done);
        Ok(buf)
    }

    /// Sets the length of `ino` through its journal (with an open handle, or opening it).
    pub(crate) fn truncate(&mut self, ino: u64, fh: Option<u64>, len: u64) -> io::Result<()> {
        let file = match fh.and_then(|fh| self.handles.get(&fh)) {
            Some((_, f)) => f.try_clone()?,
            None => File::options()
                .read(true)
                .write(true)
                .open(self.full(&self.rel(ino)?))?,
        };
        let journal = self.journal(ino, &file)?;
        journal.truncate(&file, len)
    }

    /// fsync(2) of a file: its data is durable; its name is not (that takes the directory's).
    pub(crate) fn fsync(&mut self, fh: u64, datasync: bool) -> io::Result<()> {
        let (ino, file) = self
            .handles
            .get(&fh)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
        if datasync {
            file.sync_data()?;
        } else {
            file.sync_all()?;
        }
        self.data.remove(ino);
        self.fsyncs += 1;
        Ok(())
    }

    /// fsync(2) of a directory: every entry change it took part in is durable.
    pub(crate) fn fsyncdir(&mut self, ino: u64) -> io::Result<()> {
        let dir = self.full(&self.rel(ino)?);
        File::open(&dir)?.sync_all()?;
        let mut kept = Vec::new();
        for op in std::mem::take(&mut self.entries) {
            if op.dirs().contains(&ino) {
                if let Some(stash) = op.stash() {
                    remove_any(&self.full(stash))?;
                }
            } else {
                kept.push(op);
            }
        }
        self.entries = kept;
        self.dir_fsyncs += 1;
        Ok(())
    }
}

/// Removes a file or a directory tree; a missing one is no error.
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

impl State {
    /// open(2) of an existing file; `O_TRUNC` goes through the journal.
    pub(crate) fn open(&mut self, ino: u64, flags: i32) -> io::Result<u64> {
        let path = self.full(&self.rel(ino)?);
        let access = flags & libc::O_ACCMODE;
        let file = File::options()
            .read(true)
            .write(access != libc::O_RDONLY)
            .open(&path)
            .or_else(|_| {
                File::options()
                    .read(access != libc::O_WRONLY)
                    .write(access != libc::O_RDONLY)
                    .open(&path)
            })?;
        let fh = self.add_handle(ino, file);
        if flags & libc::O_TRUNC != 0 && access != libc::O_RDONLY {
            self.truncate(ino, Some(fh), 0)?;
        }
        Ok(fh)
    }
}
