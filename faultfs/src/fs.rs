//! The FUSE requests, each answered from [`State`] under its lock.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use fuser::{
    FileType, Filesystem, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};

use crate::attr::{attr, kind, TTL};
use crate::state::{errno, State, STASH};

pub(crate) struct FaultFsInner(pub(crate) Arc<Mutex<State>>);

impl FaultFsInner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn entry(state: &mut State, rel: &std::path::Path) -> io::Result<fuser::FileAttr> {
    let meta = fs::symlink_metadata(state.full(rel))?;
    let ino = state.inodes.ino_for(rel);
    Ok(attr(ino, &meta))
}

fn time(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

/// setattr(2) without the size: mode, owner, times.
fn set_meta(
    path: &std::path::Path,
    mode: Option<u32>,
    owner: (Option<u32>, Option<u32>),
    times: (Option<TimeOrNow>, Option<TimeOrNow>),
) -> io::Result<()> {
    if let Some(mode) = mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))?;
    }
    if owner.0.is_some() || owner.1.is_some() {
        std::os::unix::fs::lchown(path, owner.0, owner.1)?;
    }
    if times.0.is_some() || times.1.is_some() {
        let mut ft = fs::FileTimes::new();
        if let Some(a) = times.0 {
            ft = ft.set_accessed(time(a));
        }
        if let Some(m) = times.1 {
            ft = ft.set_modified(time(m));
        }
        File::open(path)?.set_times(ft)?;
    }
    Ok(())
}

impl Filesystem for FaultFsInner {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let mut s = self.state();
        let result = s
            .child(parent, name)
            .map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))
            .and_then(|rel| entry(&mut s, &rel));
        match result {
            Ok(a) => reply.entry(&TTL, &a, 0),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let s = self.state();
        let result = s
            .rel(ino)
            .and_then(|rel| fs::symlink_metadata(s.full(&rel)));
        match result {
            Ok(m) => reply.attr(&TTL, &attr(ino, &m)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        let mut s = self.state();
        let result = (|| {
            let path = s.full(&s.rel(ino)?);
            if let Some(len) = size {
                s.truncate(ino, fh, len)?;
            }
            set_meta(&path, mode, (uid, gid), (atime, mtime))?;
            fs::symlink_metadata(&path)
        })();
        match result {
            Ok(m) => reply.attr(&TTL, &attr(ino, &m)),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn mknod(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(libc::EPERM);
        }
        let mut s = self.state();
        let result = s.create(parent, name, mode).and_then(|(ino, fh)| {
            s.handles.remove(&fh);
            let rel = s.rel(ino)?;
            entry(&mut s, &rel)
        });
        match result {
            Ok(a) => reply.entry(&TTL, &a, 0),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn mkdir(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let mut s = self.state();
        let result = s.mkdir(parent, name, mode).and_then(|ino| {
            let rel = s.rel(ino)?;
            entry(&mut s, &rel)
        });
        match result {
            Ok(a) => reply.entry(&TTL, &a, 0),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        match self.state().remove(parent, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        match self.state().remove(parent, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        flags: u32,
        reply: ReplyEmpty,
    ) {
        match self
            .state()
            .rename((parent, name), (newparent, newname), flags)
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        let mut s = self.state();
        match s.open(ino, flags) {
            Ok(fh) => reply.opened(fh, 0),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        match self.state().read(fh, offset.max(0) as u64, size as usize) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        match self.state().write(fh, offset.max(0) as u64, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn flush(&mut self, _req: &Request<'_>, _ino: u64, _fh: u64, _lo: u64, reply: ReplyEmpty) {
        reply.ok();
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.state().handles.remove(&fh);
        reply.ok();
    }

    fn fsync(&mut self, _req: &Request<'_>, _ino: u64, fh: u64, datasync: bool, reply: ReplyEmpty) {
        match self.state().fsync(fh, datasync) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let mut s = self.state();
        match list(&mut s, ino) {
            Ok(entries) => {
                for (i, (ino, kind, name)) in entries.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(ino, (i + 1) as i64, kind, name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn fsyncdir(&mut self, _req: &Request<'_>, ino: u64, _fh: u64, _ds: bool, reply: ReplyEmpty) {
        match self.state().fsyncdir(ino) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn statfs(&mut self, _req: &Request<'_>, _ino: u64, reply: ReplyStatfs) {
        let backing = self.state().backing.clone();
        match statvfs(&backing) {
            Ok(v) => reply.statfs(
                v.f_blocks,
                v.f_bfree,
                v.f_bavail,
                v.f_files,
                v.f_ffree,
                v.f_bsize as u32,
                v.f_namemax as u32,
                v.f_frsize as u32,
            ),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn create(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut s = self.state();
        let result = s.create(parent, name, mode).and_then(|(ino, fh)| {
            let rel = s.rel(ino)?;
            entry(&mut s, &rel).map(|a| (a, fh))
        });
        match result {
            Ok((a, fh)) => reply.created(&TTL, &a, 0, fh, 0),
            Err(e) => reply.error(errno(&e)),
        }
    }
}

type DirEntry = (u64, FileType, std::ffi::OsString);

/// `.`, `..` and the backing dir's entries (without the stash), sorted for stable offsets.
fn list(s: &mut State, ino: u64) -> io::Result<Vec<DirEntry>> {
    let rel = s.rel(ino)?;
    let parent = rel
        .parent()
        .map(|p| s.inodes.ino_for(p))
        .unwrap_or(crate::inodes::ROOT);
    let mut out = vec![
        (ino, FileType::Directory, ".".into()),
        (parent, FileType::Directory, "..".into()),
    ];
    let mut names = Vec::new();
    for e in fs::read_dir(s.full(&rel))? {
        let e = e?;
        if rel.as_os_str().is_empty() && e.file_name() == STASH {
            continue;
        }
        names.push((e.file_name(), kind(&e.metadata()?)));
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind) in names {
        let child = s.inodes.ino_for(&rel.join(&name));
        out.push((child, kind, name));
    }
    Ok(out)
}

fn statvfs(path: &std::path::Path) -> io::Result<libc::statvfs> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let mut v: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `v` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut v) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}
