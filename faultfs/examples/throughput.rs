//! Throughput on a plain directory and through faultfs (run as root):
//!
//! ```text
//! nice -n 19 cargo run --release -p riptide-faultfs --example throughput -- [REPS]
//! ```
//!
//! Two loads, each REPS times (default 5) on each side, the median printed:
//! write+fsync: 2000 appends of 128 bytes, each followed by fdatasync (a Raft log's pattern);
//! plain write: 64 MiB in 64 KiB writes, no fsync.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use riptide_faultfs::FaultFs;

const SYNC_OPS: usize = 2000;
const BULK_MIB: usize = 64;

fn write_fsync(dir: &Path) -> f64 {
    let path = dir.join("log");
    let mut f = File::create(&path).unwrap();
    let record = [7u8; 128];
    let start = Instant::now();
    for _ in 0..SYNC_OPS {
        f.write_all(&record).unwrap();
        f.sync_data().unwrap();
    }
    let rate = SYNC_OPS as f64 / start.elapsed().as_secs_f64();
    drop(f);
    fs::remove_file(&path).unwrap();
    rate
}

fn bulk_write(dir: &Path) -> f64 {
    let path = dir.join("bulk");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    let chunk = vec![9u8; 64 << 10];
    let start = Instant::now();
    for _ in 0..BULK_MIB * 16 {
        f.write_all(&chunk).unwrap();
    }
    let rate = BULK_MIB as f64 / start.elapsed().as_secs_f64();
    // Outside the timing: fsync, so that faultfs drops its journal of this file.
    f.sync_all().unwrap();
    drop(f);
    fs::remove_file(&path).unwrap();
    rate
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    xs[xs.len() / 2]
}

fn measure(name: &str, dir: &Path, reps: usize) {
    let sync: Vec<f64> = (0..reps).map(|_| write_fsync(dir)).collect();
    let bulk: Vec<f64> = (0..reps).map(|_| bulk_write(dir)).collect();
    println!(
        "{name:<8} write+fsync {:>8.0} ops/s   plain write {:>7.1} MiB/s   (median of {reps}; \
         runs: {:.0?} ops/s, {:.1?} MiB/s)",
        median(sync.clone()),
        median(bulk.clone()),
        sync,
        bulk
    );
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("REPS is a number"))
        .unwrap_or(5);
    let base = tempfile::tempdir().unwrap();
    let plain = base.path().join("plain");
    let backing = base.path().join("backing");
    let mnt = base.path().join("mnt");
    for d in [&plain, &backing, &mnt] {
        fs::create_dir(d).unwrap();
    }
    println!("in {}", base.path().display());
    measure("plain", &plain, reps);
    let fs = FaultFs::mount(&backing, &mnt).unwrap_or_else(|e| panic!("{e:#}"));
    measure("faultfs", &mnt, reps);
    fs.unmount();
}
