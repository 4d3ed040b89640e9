//! Inode numbers of the mount, each mapped to a path relative to the backing dir.
//!
//! FUSE names files by inode number; the backing dir names them by path. The table keeps both
//! directions and moves whole subtrees on a rename, so an inode keeps its number across renames.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The root of the mount, as FUSE numbers it.
pub(crate) const ROOT: u64 = 1;

pub(crate) struct Inodes {
    by_ino: HashMap<u64, PathBuf>,
    by_path: BTreeMap<PathBuf, u64>,
    next: u64,
}

impl Inodes {
    pub(crate) fn new() -> Self {
        let mut table = Inodes {
            by_ino: HashMap::new(),
            by_path: BTreeMap::new(),
            next: ROOT + 1,
        };
        table.reset();
        table
    }

    /// Forgets every inode but the root; numbers are never reused, so a stale kernel inode
    /// can only miss (ENOENT), never hit another file.
    pub(crate) fn reset(&mut self) {
        self.by_ino.clear();
        self.by_path.clear();
        self.by_ino.insert(ROOT, PathBuf::new());
        self.by_path.insert(PathBuf::new(), ROOT);
    }

    pub(crate) fn path(&self, ino: u64) -> Option<&Path> {
        self.by_ino.get(&ino).map(PathBuf::as_path)
    }

    /// The inode of `path`, numbering it if it has none yet.
    pub(crate) fn ino_for(&mut self, path: &Path) -> u64 {
        if let Some(&ino) = self.by_path.get(path) {
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_ino.insert(ino, path.to_path_buf());
        self.by_path.insert(path.to_path_buf(), ino);
        ino
    }

    /// Records that `from` and everything below it now live at `to`.
    pub(crate) fn moved(&mut self, from: &Path, to: &Path) {
        self.removed_paths(to);
        let moving: Vec<(PathBuf, u64)> = self.subtree(from);
        for (old, ino) in moving {
            self.by_path.remove(&old);
            let rest = old.strip_prefix(from).expect("subtree");
            let new = if rest.as_os_str().is_empty() {
                to.to_path_buf()
            } else {
                to.join(rest)
            };
            self.by_ino.insert(ino, new.clone());
            self.by_path.insert(new, ino);
        }
    }

    /// Forgets the names at and below `path` (their inodes keep their last path).
    pub(crate) fn removed_paths(&mut self, path: &Path) {
        for (old, _) in self.subtree(path) {
            self.by_path.remove(&old);
        }
    }

    fn subtree(&self, root: &Path) -> Vec<(PathBuf, u64)> {
        self.by_path
            .range(root.to_path_buf()..)
            .take_while(|(p, _)| p.starts_with(root))
            .map(|(p, &i)| (p.clone(), i))
            .collect()
    }
}
