//! Directory changes through the entry journal, and their undo at a power cut.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use crate::entries::EntryOp;
use crate::state::{remove_any, State};

fn err(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl State {
    /// Moves a backing entry and the inodes below it.
    fn relocate(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(self.full(from), self.full(to))?;
        self.inodes.moved(from, to);
        Ok(())
    }

    /// Creates a new regular file; returns its inode and an open handle.
    pub(crate) fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
    ) -> io::Result<(u64, u64)> {
        let rel = self.child(parent, name)?;
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode & 0o7777)
            .open(self.full(&rel))?;
        self.entries.push(EntryOp::Created {
            parent,
            name: name.to_owned(),
        });
        let ino = self.inodes.ino_for(&rel);
        Ok((ino, self.add_handle(ino, file)))
    }

    pub(crate) fn mkdir(&mut self, parent: u64, name: &OsStr, mode: u32) -> io::Result<u64> {
        let rel = self.child(parent, name)?;
        fs::DirBuilder::new()
            .mode(mode & 0o7777)
            .create(self.full(&rel))?;
        self.entries.push(EntryOp::MadeDir {
            parent,
            name: name.to_owned(),
        });
        Ok(self.inodes.ino_for(&rel))
    }

    /// unlink(2) (`dir` false) or rmdir(2) (`dir` true): the entry goes to the stash.
    pub(crate) fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> io::Result<()> {
        let rel = self.child(parent, name)?;
        let meta = fs::symlink_metadata(self.full(&rel))?;
        match (dir, meta.is_dir()) {
            (false, true) => return Err(err(libc::EISDIR)),
            (true, false) => return Err(err(libc::ENOTDIR)),
            (true, true) if fs::read_dir(self.full(&rel))?.next().is_some() => {
                return Err(err(libc::ENOTEMPTY))
            }
            _ => {}
        }
        let stash = self.new_stash();
        self.relocate(&rel, &stash)?;
        self.entries.push(EntryOp::Removed {
            parent,
            name: name.to_owned(),
            stash,
        });
        Ok(())
    }

    /// rename(2); an existing target goes to the stash. `RENAME_NOREPLACE` is honoured,
    /// `RENAME_EXCHANGE` is not supported (EINVAL).
    pub(crate) fn rename(
        &mut self,
        from: (u64, &OsStr),
        to: (u64, &OsStr),
        flags: u32,
    ) -> io::Result<()> {
        if flags & libc::RENAME_EXCHANGE != 0 {
            return Err(err(libc::EINVAL));
        }
        let src = self.child(from.0, from.1)?;
        let dst = self.child(to.0, to.1)?;
        let src_meta = fs::symlink_metadata(self.full(&src))?;
        if src == dst {
            return Ok(());
        }
        if dst.starts_with(&src) {
            return Err(err(libc::EINVAL));
        }
        let mut replaced = None;
        if let Ok(dst_meta) = fs::symlink_metadata(self.full(&dst)) {
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(err(libc::EEXIST));
            }
            match (src_meta.is_dir(), dst_meta.is_dir()) {
                (false, true) => return Err(err(libc::EISDIR)),
                (true, false) => return Err(err(libc::ENOTDIR)),
                (true, true) if fs::read_dir(self.full(&dst))?.next().is_some() => {
                    return Err(err(libc::ENOTEMPTY))
                }
                _ => {}
            }
            let stash = self.new_stash();
            self.relocate(&dst, &stash)?;
            replaced = Some(stash);
        }
        self.relocate(&src, &dst)?;
        self.entries.push(EntryOp::Renamed {
            from: (from.0, from.1.to_owned()),
            to: (to.0, to.1.to_owned()),
            replaced,
        });
        Ok(())
    }

    /// Undoes one entry change. A change whose entry is no longer there (a later change to
    /// it was durable) is skipped: `Ok(false)`.
    pub(crate) fn undo_entry(&mut self, op: &EntryOp) -> io::Result<bool> {
        let at = |s: &State, (parent, name): (u64, &OsStr)| -> io::Result<std::path::PathBuf> {
            Ok(s.rel(parent)?.join(name))
        };
        let exists = |s: &State, rel: &Path| fs::symlink_metadata(s.full(rel)).is_ok();
        match op {
            EntryOp::Created { parent, name } | EntryOp::MadeDir { parent, name } => {
                let rel = at(self, (*parent, name))?;
                if !exists(self, &rel) {
                    return Ok(false);
                }
                remove_any(&self.full(&rel))?;
                self.inodes.removed_paths(&rel);
            }
            EntryOp::Removed {
                parent,
                name,
                stash,
            } => {
                let rel = at(self, (*parent, name))?;
                if !exists(self, stash) || exists(self, &rel) {
                    return Ok(false);
                }
                self.relocate(stash, &rel)?;
            }
            EntryOp::Renamed { from, to, replaced } => {
                let src = at(self, (from.0, &from.1))?;
                let dst = at(self, (to.0, &to.1))?;
                if !exists(self, &dst) || exists(self, &src) {
                    return Ok(false);
                }
                self.relocate(&dst, &src)?;
                if let Some(stash) = replaced {
                    if exists(self, stash) {
                        self.relocate(stash, &dst)?;
                    }
                }
            }
        }
        Ok(true)
    }
}

/// A record's description for the power-cut report.
pub(crate) fn describe(state: &State, op: &EntryOp) -> String {
    let at = |parent: u64, name: &OsStr| {
        state
            .rel(parent)
            .map(|p| p.join(name).display().to_string())
            .unwrap_or_else(|_| format!("<dir {parent}>/{}", name.to_string_lossy()))
    };
    match op {
        EntryOp::Created { parent, name } => format!("create {}", at(*parent, name)),
        EntryOp::MadeDir { parent, name } => format!("mkdir {}", at(*parent, name)),
        EntryOp::Removed { parent, name, .. } => format!("remove {}", at(*parent, name)),
        EntryOp::Renamed { from, to, .. } => {
            format!("rename {} -> {}", at(from.0, &from.1), at(to.0, &to.1))
        }
    }
}
