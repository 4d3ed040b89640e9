//! The nodes' disks: plain data dirs, or, for `power-cut`, each mounted through riptide-faultfs.
//!
//! A node's data lives in `nodes/n<i>/data/` either way. With a power cut in the spec, that
//! folder is the *backing* dir of a faultfs mounted at `nodes/n<i>/disk/`, and the node is
//! started with `--data-dir nodes/n<i>/disk`: every write reaches `data/` at once (so the folder
//! is what the node wrote, for inspection, as in any run), but faultfs remembers what was not
//! fsynced and drops it on a power cut ([`RunDisks::power_cut`]).
//!
//! The mounts exist only in the run's private mount namespace (see
//! `riptide_nemesis::sandbox`): the host never sees them. They are unmounted in the run's stop
//! step, after the nodes are gone ([`RunDisks::unmount`]); if the runner dies instead, the
//! kernel tears them down with the namespace. Either way `nodes/n<i>/disk/` is left empty and
//! `nodes/n<i>/data/` keeps everything.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use riptide_faultfs::{FaultFs, Mode, MountHandle};
use riptide_nemesis::{CutMode, Disks, NodeId, Sandbox};

/// One node's disk.
struct NodeDisk {
    id: NodeId,
    /// `nodes/n<i>/data`: what the node wrote.
    backing: PathBuf,
    /// The faultfs mount the node runs on, if mounted.
    mount: Option<Mutex<Option<MountHandle>>>,
    mountpoint: PathBuf,
}

/// Every node's disk in one run: the planned nodes', and those of nodes the membership nemesis
/// adds ([`RunDisks::add`]) and wipes ([`RunDisks::wipe`]).
pub struct RunDisks {
    nodes_dir: PathBuf,
    /// Whether each disk is a faultfs mount.
    fuse: bool,
    nodes: Mutex<Vec<Arc<NodeDisk>>>,
}

impl RunDisks {
    /// Plain data dirs `nodes_dir/n<i>/data` (created).
    pub fn plain(nodes_dir: &Path, ids: &[NodeId]) -> anyhow::Result<RunDisks> {
        RunDisks::with(nodes_dir, ids, false)
    }

    /// Each node's data dir mounted through faultfs (see the module docs). Needs the run's
    /// private mount namespace; fails, unmounting what it mounted, with a message saying why.
    pub fn mount(nodes_dir: &Path, ids: &[NodeId], sandbox: &Sandbox) -> anyhow::Result<RunDisks> {
        if let Err(why) = sandbox.mounts() {
            anyhow::bail!("the run has no private mount namespace to mount faultfs in ({why})");
        }
        RunDisks::with(nodes_dir, ids, true)
    }

    fn with(nodes_dir: &Path, ids: &[NodeId], fuse: bool) -> anyhow::Result<RunDisks> {
        let disks = RunDisks {
            nodes_dir: nodes_dir.to_path_buf(),
            fuse,
            nodes: Mutex::new(Vec::new()),
        };
        for &id in ids {
            disks.add(id)?;
        }
        Ok(disks)
    }

    /// Makes node `id`'s disk (a new node's, empty) like the others; returns the data dir to
    /// start it with.
    pub fn add(&self, id: NodeId) -> anyhow::Result<PathBuf> {
        let backing = self.nodes_dir.join(format!("n{id}")).join("data");
        create(&backing)?;
        let (mount, mountpoint) = if self.fuse {
            let mountpoint = self.nodes_dir.join(format!("n{id}")).join("disk");
            create(&mountpoint)?;
            let handle = FaultFs::mount(&backing, &mountpoint).map_err(|e| {
                anyhow::anyhow!("cannot mount node {id}'s data dir through faultfs: {e:#}")
            })?;
            (Some(Mutex::new(Some(handle))), mountpoint)
        } else {
            (None, backing.clone())
        };
        let disk = NodeDisk {
            id,
            backing,
            mount,
            mountpoint: mountpoint.clone(),
        };
        let mut nodes = self.lock_nodes();
        nodes.retain(|n| n.id != id);
        nodes.push(Arc::new(disk));
        Ok(mountpoint)
    }

    /// Wipes node `id`'s disk for good (the node is dead and out of the cluster): unmounted,
    /// and its folder `n<id>/` removed. Its log, beside the folder, stays.
    pub fn wipe(&self, id: NodeId) -> anyhow::Result<()> {
        let disk = {
            let mut nodes = self.lock_nodes();
            let at = nodes.iter().position(|n| n.id == id);
            at.map(|at| nodes.remove(at))
        };
        let Some(disk) = disk else {
            anyhow::bail!("node {id} has no disk in this run");
        };
        disk.unmount();
        let folder = self.nodes_dir.join(format!("n{id}"));
        std::fs::remove_dir_all(&folder)
            .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", folder.display()))
    }

    /// The data dir node `id` is started with.
    pub fn node_data_dir(&self, id: NodeId) -> Option<PathBuf> {
        self.node(id).map(|n| n.mountpoint.clone())
    }

    /// Unmounts every faultfs (call once the nodes are dead). What was not synced stays, as
    /// after a clean shutdown.
    pub fn unmount(&self) {
        for node in self.lock_nodes().iter() {
            node.unmount();
        }
    }

    fn node(&self, id: NodeId) -> Option<Arc<NodeDisk>> {
        self.lock_nodes().iter().find(|n| n.id == id).cloned()
    }

    fn lock_nodes(&self) -> std::sync::MutexGuard<'_, Vec<Arc<NodeDisk>>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl NodeDisk {
    fn unmount(&self) {
        if let Some(slot) = &self.mount {
            if let Some(handle) = lock(slot).take() {
                handle.unmount();
                tracing::info!(node = self.id, backing = %self.backing.display(), "faultfs unmounted");
            }
        }
    }
}

/// Why this process cannot mount faultfs disks, if it cannot: no sandbox, no private mount
/// namespace, or no FUSE (the reason says what to install or change).
pub fn why_no_faultfs(sandbox: Option<&Sandbox>) -> Option<String> {
    match sandbox.map(Sandbox::mounts) {
        None => Some("there is no sandbox (see the note above)".to_string()),
        Some(Err(why)) => Some(format!("there is no private mount namespace: {why}")),
        Some(Ok(_)) => riptide_faultfs::check_fuse()
            .err()
            .map(|e| format!("FUSE is not available: {e:#}")),
    }
}

impl Disks for RunDisks {
    fn data_dir(&self, id: NodeId) -> Option<PathBuf> {
        self.node_data_dir(id)
    }

    fn power_cut(&self, id: NodeId, mode: CutMode) -> Result<serde_json::Value, String> {
        let node = self.node(id).ok_or_else(|| format!("no node {id}"))?;
        let slot = node.mount.as_ref().ok_or_else(|| {
            format!(
                "node {id}'s data dir is not mounted through faultfs (no power-cut in the spec)"
            )
        })?;
        let guard = lock(slot);
        let handle = guard
            .as_ref()
            .ok_or_else(|| format!("node {id}'s faultfs is already unmounted"))?;
        let mode = match mode {
            CutMode::All => Mode::All,
            CutMode::Torn { seed } => Mode::Torn(seed),
            CutMode::Reorder { seed } => Mode::Reorder(seed),
        };
        let report = handle.power_cut(mode).map_err(|e| format!("{e:#}"))?;
        serde_json::to_value(&report).map_err(|e| e.to_string())
    }
}

impl Drop for RunDisks {
    fn drop(&mut self) {
        self.unmount();
    }
}

fn create(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))
}

fn lock(slot: &Mutex<Option<MountHandle>>) -> std::sync::MutexGuard<'_, Option<MountHandle>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}
