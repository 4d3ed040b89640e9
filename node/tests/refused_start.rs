//! The `riptide-node` binary on a damaged data dir: a byte flipped in the middle of a sealed
//! WAL segment is refused with exit code 3 and one stderr line naming the segment and the
//! offset of the damaged record; a torn tail (the newest segment's last record cut in half) is
//! repaired and the node starts; a data dir locked by another process is a plain failure
//! (exit 1), not a refusal.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use riptide_node::storage::{LogStore, Recovered, StorageOptions};
use riptide_node::types::{Entry, HardState, Payload};

/// Bytes of one command; every entry's record is then `8 + 17 + COMMAND` bytes.
const COMMAND: usize = 100;
const RECORD: u64 = 8 + 17 + COMMAND as u64;
/// The segment header (its magic).
const HEADER: u64 = 8;

fn entries(from: u64, to: u64) -> Vec<Entry> {
    (from..=to)
        .map(|index| Entry {
            term: 1,
            index,
            payload: Payload::Command(vec![b'x'; COMMAND]),
        })
        .collect()
}

/// A stopped single node's data dir, as its storage left it: term 1 with its own vote, and 60
/// synced entries in segments of 8 records each (every segment but the newest is sealed).
fn data_dir(root: &Path) -> PathBuf {
    let dir = root.join("data");
    let opts = StorageOptions {
        segment_bytes: HEADER + 8 * RECORD,
    };
    let (mut store, _) = LogStore::open(&dir, opts).unwrap();
    store
        .save_hard_state(&HardState {
            term: 1,
            voted_for: Some(1),
        })
        .unwrap();
    store.append(&entries(1, 60)).unwrap();
    store.sync().unwrap();
    dir
}

/// Opens `dir` once the store that last had it open is gone for good. Dropping a store closes
/// its file, but a child that another test's thread is spawning at that moment holds a copy of
/// the descriptor (and with it the `flock`) from its fork until its exec closes it, so a reopen
/// in this process can briefly see the directory locked. Waits that window out (at most 10 s).
fn reopen(dir: &Path) -> (LogStore, Recovered) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match LogStore::open(dir, StorageOptions::default()) {
            Ok(opened) => return opened,
            Err(riptide_node::storage::Error::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("reopening {}: {e}", dir.display()),
        }
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segs.sort();
    assert!(segs.len() >= 3, "the test needs sealed segments: {segs:?}");
    segs
}

fn free_addr(ip: [u8; 4]) -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::from((ip, 0))).unwrap();
    listener.local_addr().unwrap()
}

fn start(dir: &Path, addr: SocketAddr, stderr: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_riptide-node"))
        .args(["--id", "1", "--listen", &addr.to_string(), "--log", "info"])
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap()
}

/// Waits for the node to exit on its own; kills it (by its pid) and fails after 20 s.
fn exit_code(mut child: Child, stderr: &Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().expect("exited, not killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let err = std::fs::read_to_string(stderr).unwrap_or_default();
    panic!("the node did not exit within 20 s; stderr:\n{err}");
}

#[test]
fn a_flipped_byte_in_a_sealed_segment_is_refused_with_exit_code_3() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path());
    let sealed = &segments(&dir)[1];
    let mut bytes = std::fs::read(sealed).unwrap();
    let middle = bytes.len() as u64 / 2;
    bytes[middle as usize] ^= 0x40;
    std::fs::write(sealed, &bytes).unwrap();
    let record_at = HEADER + (middle - HEADER) / RECORD * RECORD;

    let stderr = tmp.path().join("node.err");
    let child = start(&dir, free_addr([127, 85, 0, 1]), &stderr);
    let code = exit_code(child, &stderr);
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(code, 3, "stderr:\n{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{err}");
    assert!(
        lines[0].contains(&sealed.display().to_string()),
        "the line names the segment {}: {}",
        sealed.display(),
        lines[0]
    );
    assert!(
        lines[0].contains(&format!("at offset {record_at}")),
        "the line names the damaged record's offset {record_at}: {}",
        lines[0]
    );
}

#[test]
fn a_torn_tail_is_cut_and_the_node_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path());
    let newest = segments(&dir).pop().unwrap();
    let len = std::fs::metadata(&newest).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap();
    file.set_len(len - RECORD / 2).unwrap();
    drop(file);

    let stderr = tmp.path().join("node.err");
    let addr = free_addr([127, 85, 0, 2]);
    let mut child = start(&dir, addr, &stderr);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut status = None;
    while status.is_none() && Instant::now() < deadline {
        if let Some(exit) = child.try_wait().unwrap() {
            let err = std::fs::read_to_string(&stderr).unwrap_or_default();
            panic!("the node exited ({exit}) on a torn tail:\n{err}");
        }
        status = riptide_proto::status(addr, Duration::from_secs(1)).ok();
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    let err = std::fs::read_to_string(&stderr).unwrap();
    let status = status.unwrap_or_else(|| panic!("no status within 20 s:\n{err}"));
    assert!(status.term >= 1, "{status:?}");
    assert!(
        err.contains("torn final write"),
        "the repair is logged:\n{err}"
    );
    // The cut left the segment at the end of its last whole record (and the node appended
    // after it), never in the middle of one.
    let (_, recovered) = reopen(&dir);
    let last = recovered.entries.last().unwrap().index;
    assert!(last >= 59, "only the torn entry is gone: last {last}");
    assert_eq!(recovered.entries[..59], entries(1, 59)[..]);
}

#[test]
fn a_locked_data_dir_fails_with_exit_code_1_not_3() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path());
    let (_holder, _) = reopen(&dir);
    let stderr = tmp.path().join("node.err");
    let child = start(&dir, free_addr([127, 85, 0, 3]), &stderr);
    let code = exit_code(child, &stderr);
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(code, 1, "stderr:\n{err}");
    assert!(err.contains("locked"), "{err}");
}

#[test]
fn another_clusters_data_dir_is_refused_with_exit_code_3() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = data_dir(tmp.path());
    riptide_node::storage::cluster_id::adopt_cluster_id(
        &dir,
        Some("first"),
        riptide_node::storage::Durability::FULL,
    )
    .unwrap();
    let stderr = tmp.path().join("node.err");
    let child = Command::new(env!("CARGO_BIN_EXE_riptide-node"))
        .args([
            "--id",
            "1",
            "--listen",
            &free_addr([127, 85, 0, 4]).to_string(),
        ])
        .args(["--cluster-id", "second", "--data-dir"])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let code = exit_code(child, &stderr);
    let err = std::fs::read_to_string(&stderr).unwrap();
    assert_eq!(code, 3, "stderr:\n{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("`first`") && err.contains("`second`"), "{err}");
}
