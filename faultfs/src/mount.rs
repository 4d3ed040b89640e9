//! Mounting, the handle the bench drives, and the checks that turn a failed mount into advice.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fuser::{BackgroundSession, MountOption};
use serde::Serialize;

use crate::cut::PowerCutReport;
use crate::fs::FaultFsInner;
use crate::journal::Mode;
use crate::state::{remove_any, State, STASH};

/// How long a power cut waits for the kernel to release the files of a killed process.
const RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Entry point: `FaultFs::mount(backing, mountpoint)`.
pub struct FaultFs;

/// A live mount. Dropping it unmounts.
pub struct MountHandle {
    session: Option<BackgroundSession>,
    state: Arc<Mutex<State>>,
    mountpoint: PathBuf,
    backing: PathBuf,
}

/// What `status` answers.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub mountpoint: PathBuf,
    pub backing: PathBuf,
    pub open_files: usize,
    /// Files with data written since their last fsync.
    pub unsynced_files: usize,
    /// Directory changes not yet made durable by a directory fsync.
    pub unsynced_entries: usize,
    pub fsyncs: u64,
    pub dir_fsyncs: u64,
    pub power_cuts: u64,
}

fn unusable(what: &str, path: &Path, e: &std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "{what} {} does not exist: create it first (an empty directory for a mountpoint)",
            path.display()
        )
    } else if e.raw_os_error() == Some(libc::ENOTCONN) {
        anyhow::anyhow!(
            "{what} {} is a stale FUSE mount ({e}): its server died; umount -l it first",
            path.display()
        )
    } else {
        anyhow::anyhow!("{what} {} cannot be used: {e}", path.display())
    }
}

fn check_dirs(backing: &Path, mountpoint: &Path) -> Result<(PathBuf, PathBuf)> {
    let backing = fs::canonicalize(backing).map_err(|e| unusable("backing dir", backing, &e))?;
    if !backing.is_dir() {
        bail!("backing {} is not a directory", backing.display());
    }
    let mountpoint_c =
        fs::canonicalize(mountpoint).map_err(|e| unusable("mountpoint", mountpoint, &e))?;
    let meta = fs::metadata(&mountpoint_c).map_err(|e| unusable("mountpoint", mountpoint, &e))?;
    if !meta.is_dir() {
        bail!("mountpoint {} is not a directory", mountpoint.display());
    }
    let mut listing =
        fs::read_dir(&mountpoint_c).map_err(|e| unusable("mountpoint", mountpoint, &e))?;
    if listing.next().is_some() {
        bail!(
            "mountpoint {} is not empty (or something is mounted there already): use an empty \
             directory",
            mountpoint.display()
        );
    }
    if mountpoint_c.starts_with(&backing) || backing.starts_with(&mountpoint_c) {
        bail!("the mountpoint and the backing dir must not contain each other");
    }
    Ok((backing, mountpoint_c))
}

/// Whether this process can mount a faultfs: `/dev/fuse` opens, and root or `fusermount3`. The
/// error says what is missing and how to get it.
///
/// `RIPTIDE_FUSE_DEV=/nonexistent` shows what a machine without FUSE gets (the device checked
/// is that path instead of `/dev/fuse`).
pub fn check_fuse() -> Result<()> {
    let dev_path = std::env::var_os("RIPTIDE_FUSE_DEV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/dev/fuse".into());
    let dev = dev_path.as_path();
    if !dev.exists() {
        bail!(
            "{} is missing: load the kernel module (modprobe fuse), or run the container \
             with --device /dev/fuse",
            dev.display()
        );
    }
    if let Err(e) = fs::OpenOptions::new().read(true).write(true).open(dev) {
        bail!(
            "cannot open {} ({e}): run as root, or give this user access to it",
            dev.display()
        );
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let fusermount = [
        "/usr/bin/fusermount3",
        "/bin/fusermount3",
        "/usr/bin/fusermount",
    ]
    .iter()
    .any(|p| Path::new(p).exists());
    if !root && !fusermount {
        bail!("not root and no fusermount3: run as root, or apt-get install fuse3");
    }
    Ok(())
}

impl FaultFs {
    /// Mounts a faultfs of `backing` at `mountpoint` (an empty directory), serving it from a
    /// background thread until the handle is dropped or [`MountHandle::unmount`]ed.
    pub fn mount(backing: &Path, mountpoint: &Path) -> Result<MountHandle> {
        let (backing, mountpoint) = check_dirs(backing, mountpoint)?;
        check_fuse()?;
        let state = State::new(backing.clone())
            .with_context(|| format!("cannot make the stash in {}", backing.display()))?;
        let state = Arc::new(Mutex::new(state));
        let options = [
            MountOption::FSName(format!("riptide-faultfs:{}", backing.display())),
            MountOption::Subtype("riptide-faultfs".into()),
            MountOption::AllowOther,
        ];
        let session = fuser::spawn_mount2(FaultFsInner(state.clone()), &mountpoint, &options)
            .map_err(|e| {
                let hint = match e.raw_os_error() {
                    Some(libc::EPERM) | Some(libc::EACCES) => {
                        ": mount(2) needs root (CAP_SYS_ADMIN; in a container --cap-add \
                         SYS_ADMIN --device /dev/fuse), or fusermount3 (apt-get install fuse3)"
                    }
                    Some(libc::ENOENT) => ": no fusermount3 either: apt-get install fuse3",
                    // SAFETY: geteuid has no preconditions.
                    _ if unsafe { libc::geteuid() } != 0 => {
                        " (run as root; as another user it needs fusermount3 and \
                         user_allow_other in /etc/fuse.conf)"
                    }
                    _ => "",
                };
                anyhow::anyhow!("cannot mount {}: {e}{hint}", mountpoint.display())
            })?;
        Ok(MountHandle {
            session: Some(session),
            state,
            mountpoint,
            backing,
        })
    }
}

impl MountHandle {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Drops the unsynced state (see the crate docs). Refused while files are open.
    pub fn power_cut(&self, mode: Mode) -> Result<PowerCutReport> {
        let start = Instant::now();
        loop {
            let mut state = self.state();
            if state.handles.is_empty() || start.elapsed() > RELEASE_WAIT {
                return state.power_cut(mode).context("power cut");
            }
            drop(state);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn status(&self) -> Status {
        let s = self.state();
        Status {
            mountpoint: self.mountpoint.clone(),
            backing: self.backing.clone(),
            open_files: s.handles.len(),
            unsynced_files: s.data.len(),
            unsynced_entries: s.entries.len(),
            fsyncs: s.fsyncs,
            dir_fsyncs: s.dir_fsyncs,
            power_cuts: s.power_cuts,
        }
    }

    /// Unmounts (by this mount's exact mountpoint) and removes the stash.
    pub fn unmount(mut self) {
        self.teardown();
    }

    fn teardown(&mut self) {
        if let Some(session) = self.session.take() {
            // Unmounts; the session thread then ends. fuser unmounts with umount2(MNT_DETACH)
            // when it mounted by itself, but through `fusermount3 -u` (not lazy, so refused while
            // the kernel still holds a reference) when fuse3 is installed: detach it ourselves
            // if it is still there, by its exact mountpoint.
            drop(session);
            if is_mounted(&self.mountpoint) {
                detach(&self.mountpoint);
            }
            let _ = remove_any(&self.backing.join(STASH));
        }
    }
}

/// Whether something is mounted exactly at `path` (a line of `/proc/self/mountinfo`).
fn is_mounted(path: &Path) -> bool {
    let want = path.to_string_lossy();
    fs::read_to_string("/proc/self/mountinfo").is_ok_and(|info| {
        info.lines()
            .any(|l| l.split(' ').nth(4).is_some_and(|m| m == want))
    })
}

/// `umount2(path, MNT_DETACH)`; a failure is logged, since nothing else can be done about it.
fn detach(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: c is a valid NUL-terminated path; umount2 only reads it.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        eprintln!(
            "riptide-faultfs: cannot unmount {}: {}; run umount -l {0}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
}

impl Drop for MountHandle {
    fn drop(&mut self) {
        self.teardown();
    }
}
