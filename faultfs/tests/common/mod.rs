//! A real faultfs mount in a temp dir, and the checks that none is left behind.
#![allow(dead_code)]

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use riptide_faultfs::{FaultFs, MountHandle};

/// These tests mount for real: without /dev/fuse or root they fail, saying so.
pub fn require_fuse() {
    assert!(
        Path::new("/dev/fuse").exists(),
        "these tests need /dev/fuse (modprobe fuse, or --device /dev/fuse in a container)"
    );
    // SAFETY: geteuid has no preconditions.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests mount FUSE filesystems and must run as root"
    );
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub backing: PathBuf,
    pub mnt: PathBuf,
    pub fs: Option<MountHandle>,
}

impl Fixture {
    pub fn new() -> Self {
        require_fuse();
        let dir = tempfile::tempdir().unwrap();
        let backing = dir.path().join("backing");
        let mnt = dir.path().join("mnt");
        fs::create_dir(&backing).unwrap();
        fs::create_dir(&mnt).unwrap();
        let fs = FaultFs::mount(&backing, &mnt).unwrap();
        Fixture {
            dir,
            backing,
            mnt,
            fs: Some(fs),
        }
    }

    pub fn fs(&self) -> &MountHandle {
        self.fs.as_ref().unwrap()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.mnt.join(name)
    }

    /// Writes a new file through the mount, fsyncs it, and (if `dir_sync`) its directory.
    pub fn write_synced(&self, name: &str, data: &[u8], dir_sync: bool) {
        let mut f = File::create(self.path(name)).unwrap();
        f.write_all(data).unwrap();
        f.sync_all().unwrap();
        drop(f);
        if dir_sync {
            self.sync_dir(Path::new(name).parent().unwrap().to_str().unwrap());
        }
    }

    pub fn sync_dir(&self, rel: &str) {
        File::open(self.mnt.join(rel)).unwrap().sync_all().unwrap();
    }

    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        fs::read(self.path(name)).ok()
    }

    pub fn read_backing(&self, name: &str) -> Option<Vec<u8>> {
        fs::read(self.backing.join(name)).ok()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(fs) = self.fs.take() {
            fs.unmount();
        }
        // (Not while unwinding from a failed test: a second panic would abort the run.)
        assert!(
            std::thread::panicking() || !mounted(&self.mnt),
            "{} is still mounted after unmount",
            self.mnt.display()
        );
    }
}

/// Whether anything is mounted at `path` (by /proc/self/mountinfo, as findmnt reads it).
pub fn mounted(path: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = path.to_string_lossy().into_owned();
    info.lines()
        .any(|l| l.split(' ').nth(4).is_some_and(|m| m == want))
}
