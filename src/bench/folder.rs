//! The bench folder, `results/bench/<UTC stamp>/`: `bench.json` (rewritten after every
//! measurement, so that an interrupted sweep keeps what it measured), the plot, and one
//! subfolder per cluster (`riptide-n3/`, `etcd-n3/`) with its nodes' logs. The nodes' data dirs
//! are removed when their cluster is done with: they hold only what the load wrote.

use std::path::{Path, PathBuf};

use riptide_store::layout;
use serde::Serialize;

use super::cpu;
use crate::exit::Exit;

/// The results dir's subfolder that holds benchmarks (beside the runs' `<test name>/`; it has
/// no `test.json`, so the index and `riptide prune` leave it alone).
pub const BENCH_DIR: &str = "bench";
pub const BENCH_JSON: &str = "bench.json";

pub struct BenchFolder {
    pub dir: PathBuf,
    pub started_at: String,
    pub load_at_start: Option<[f64; 3]>,
}

impl BenchFolder {
    /// Creates `<results>/bench/<stamp>/` (the results dir as `riptide test` checks it).
    pub fn create(results: &Path) -> Result<BenchFolder, Exit> {
        layout::prepare_results_dir(results)?;
        let now = layout::now_unix();
        let dir = layout::create_run_dir(results, BENCH_DIR, now)?;
        Ok(BenchFolder {
            dir,
            started_at: layout::timestamp(now),
            load_at_start: cpu::load_average(),
        })
    }

    /// A subfolder for one cluster's logs and data.
    pub fn cluster_dir(&self, target: &str, nodes: usize) -> Result<PathBuf, Exit> {
        let dir = self.dir.join(format!("{target}-n{nodes}"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Exit::crashed(format!("cannot create {}: {e}", dir.display())))?;
        Ok(dir)
    }

    /// Writes `bench.json`: `body`'s fields beside the command, the seed, the times and the
    /// machine's load.
    pub fn store(&self, seed: u64, status: &str, body: &impl Serialize) -> Result<(), Exit> {
        #[derive(Serialize)]
        struct Header<'a, T> {
            schema: u32,
            status: &'a str,
            command: Vec<String>,
            seed: u64,
            started_at: &'a str,
            written_at: String,
            cores: usize,
            load_average_at_start: Option<[f64; 3]>,
            load_average_now: Option<[f64; 3]>,
            #[serde(flatten)]
            body: &'a T,
        }
        let header = Header {
            schema: 1,
            status,
            command: std::env::args().collect(),
            seed,
            started_at: &self.started_at,
            written_at: layout::timestamp(layout::now_unix()),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            load_average_at_start: self.load_at_start,
            load_average_now: cpu::load_average(),
            body,
        };
        let path = self.dir.join(BENCH_JSON);
        layout::write_json(&path, &header)
            .map_err(|e| Exit::crashed(format!("cannot write {}: {e}", path.display())))
    }

    pub fn write(&self, name: &str, text: &str) -> Result<(), Exit> {
        let path = self.dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| Exit::crashed(format!("cannot write {}: {e}", path.display())))
    }
}

/// The 1-minute load average, for the line that ends a benchmark ("?" where unknown).
pub fn describe_load(load: Option<[f64; 3]>) -> String {
    load.map_or("?".into(), |l| format!("{:.2}", l[0]))
}

/// Removes the data dirs `<dir>/<prefix><i>/` of a cluster's `n` nodes, keeping their logs.
pub fn remove_data(dir: &Path, prefix: char, n: usize) {
    for i in 1..=n {
        let _ = std::fs::remove_dir_all(dir.join(format!("{prefix}{i}")));
    }
}
