//! Recovery from damaged files: a data dir whose log segment, hard state, snapshot or cluster
//! id is a valid file with bytes flipped, overwritten, cut or spliced (or replaced by any bytes at
//! all). [`LogStore::open`] must recover or refuse with an error that names the file, never
//! panic, and what it recovers must be a contiguous log after its snapshot.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::Unstructured;
use riptide_node::storage::cluster_id::adopt_cluster_id;
use riptide_node::storage::Durability;
use riptide_node::storage::{LogStore, Snapshot, StorageOptions};
use riptide_node::types::{Entry, HardState, Payload, SnapshotMeta};

use super::kind;
use crate::Target;

pub const TARGET: Target = Target {
    name: "storage",
    run,
    seeds,
};

/// Small segments, so that the data dir has several.
fn options() -> StorageOptions {
    StorageOptions { segment_bytes: 256 }
}

/// The files of a valid data dir (relative path, bytes): a snapshot at 5, entries 3..=20 in
/// several segments, a hard state and a cluster id. Built once.
fn pristine() -> &'static [(PathBuf, Vec<u8>)] {
    static FILES: OnceLock<Vec<(PathBuf, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir");
        let (mut store, _) = LogStore::open(dir.path(), options()).expect("a fresh store");
        let entries: Vec<Entry> = (1..=20)
            .map(|index| Entry {
                index,
                term: 1 + index / 8,
                payload: Payload::Command(format!("put k{index} v{index}").into_bytes()),
            })
            .collect();
        store.append(&entries).expect("append");
        store.sync().expect("sync");
        store
            .save_hard_state(&HardState {
                term: 3,
                voted_for: Some(2),
            })
            .expect("hard state");
        let meta = SnapshotMeta {
            last_index: 5,
            last_term: 1,
            voters: vec![1, 2, 3],
            learners: Vec::new(),
            outgoing: Vec::new(),
            addresses: Default::default(),
        };
        store
            .save_snapshot(&Snapshot::new(meta, b"state machine bytes"))
            .expect("snapshot");
        drop(store);
        adopt_cluster_id(dir.path(), Some("fuzz"), Durability::FULL).expect("cluster id");
        let mut files = Vec::new();
        collect(dir.path(), dir.path(), &mut files);
        files.sort();
        files
    })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.file_name().is_some_and(|n| n != "LOCK") {
            let bytes = std::fs::read(&path).expect("read");
            out.push((path.strip_prefix(root).unwrap().to_path_buf(), bytes));
        }
    }
}

/// One file damaged as the input says.
fn damage(u: &mut Unstructured<'_>, bytes: &mut Vec<u8>) {
    for _ in 0..u.int_in_range(1u8..=4).unwrap_or(1) {
        if bytes.is_empty() {
            bytes.extend(u.arbitrary::<Vec<u8>>().unwrap_or_default());
            continue;
        }
        let at = u.int_in_range(0..=bytes.len() - 1).unwrap_or(0);
        match u.int_in_range(0u8..=4).unwrap_or(0) {
            0 => bytes[at] ^= 1 << u.int_in_range(0u8..=7).unwrap_or(0),
            1 => bytes[at] = u.arbitrary().unwrap_or(0),
            2 => bytes.truncate(at),
            3 => {
                let run: Vec<u8> = u.arbitrary().unwrap_or_default();
                bytes.splice(at..at, run);
            }
            _ => *bytes = u.arbitrary().unwrap_or_default(),
        }
    }
}

fn run(input: &[u8]) -> String {
    let mut u = Unstructured::new(input);
    let dir = tempfile::tempdir().expect("a temp dir");
    let files = pristine();
    let mut damaged = Vec::new();
    for (name, bytes) in files {
        let mut bytes = bytes.clone();
        if u.ratio(1, 3).unwrap_or(false) {
            damage(&mut u, &mut bytes);
            damaged.push(name.file_name().unwrap().to_string_lossy().into_owned());
        }
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir");
        if !u.ratio(1, 12).unwrap_or(false) {
            std::fs::write(&path, bytes).expect("write");
        }
    }
    let class = |name: &str| {
        if name.ends_with(".seg") {
            "segment".to_string()
        } else {
            name.to_string()
        }
    };
    let mut touched: Vec<String> = damaged.iter().map(|n| class(n)).collect();
    touched.sort();
    touched.dedup();
    let cluster = match adopt_cluster_id(dir.path(), None, Durability::FULL) {
        Ok(_) => "cluster ok".to_string(),
        Err(err) => format!("cluster {}", kind(&err)),
    };
    let opened = match LogStore::open(dir.path(), options()) {
        Ok((_, recovered)) => {
            let after = recovered.snapshot.as_ref().map_or(0, |s| s.meta.last_index);
            for (k, entry) in recovered.entries.iter().enumerate() {
                assert_eq!(
                    entry.index,
                    after + 1 + k as u64,
                    "recovered entries are contiguous"
                );
            }
            format!(
                "recovered {} entries, snapshot {}, {} repairs",
                super::bucket(recovered.entries.len()),
                recovered.snapshot.is_some(),
                recovered.repairs.len()
            )
        }
        Err(err) => format!("refused {}", kind(&err)),
    };
    format!("[{}] {cluster}; {opened}", touched.join(" "))
}

fn seeds() -> Vec<Vec<u8>> {
    vec![Vec::new(), vec![0; 64], (0..=255u8).collect()]
}
