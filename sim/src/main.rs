//! `riptide-sim`: runs many seeds of the deterministic simulation on several threads and
//! prints the first failing seed with the command that reproduces it.
//!
//! ```text
//! cargo run --release -p riptide-sim -- --seeds 1000000 [--start S] [--threads N]
//! cargo run --release -p riptide-sim -- --seed 4711 [--history h.jsonl]
//! ```

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use riptide_node::server::UnsafeBug;
use riptide_sim::storage::SnapshotCounters;
use riptide_sim::{run_seed, Failure, SimConfig};

/// Seeds between two progress lines (a few tens of seconds on two cores).
const PROGRESS_EVERY: u64 = 10_000;

const USAGE: &str = "usage: riptide-sim [--seeds N] [--start S] [--threads N] [--bug NAME]
       riptide-sim --seed S [--history FILE] [--bug NAME]
  --seeds N      how many seeds to run (default 10000), from --start (default 0)
  --threads N    worker threads (default: every core)
  --seed S       run one seed and print what failed
  --history FILE with --seed: write the run's client history (riptide JSONL) to FILE
  --bug NAME     enable a deliberate bug (an --unsafe-bug name: riptide-node --help lists
                 them)";

struct Args {
    seeds: u64,
    start: u64,
    threads: usize,
    one: Option<u64>,
    history: Option<String>,
    bugs: Vec<UnsafeBug>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seeds: 10_000,
        start: 0,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        one: None,
        history: None,
        bugs: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--seeds" => args.seeds = number()?,
            "--start" => args.start = number()?,
            "--threads" => args.threads = number()?.max(1) as usize,
            "--seed" => args.one = Some(number()?),
            "--history" => args.history = Some(value),
            "--bug" => args.bugs.push(value.parse()?),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(args)
}

fn config(seed: u64, bugs: &[UnsafeBug]) -> SimConfig {
    let mut config = SimConfig::for_seed(seed);
    config.bugs = bugs.to_vec();
    config
}

fn reproduce(failure: &Failure, bugs: &[UnsafeBug]) -> String {
    let bugs: String = bugs.iter().map(|b| format!(" --bug {b}")).collect();
    format!(
        "cargo run --release -p riptide-sim -- --seed {}{bugs} --history seed-{}.jsonl",
        failure.seed, failure.seed
    )
}

fn run_one(seed: u64, args: &Args) -> ExitCode {
    let config = config(seed, &args.bugs);
    println!("seed {seed}: {config:?}");
    let result = run_seed(seed, &config);
    match result {
        Ok(stats) => {
            println!("seed {seed}: ok ({stats:?})");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            println!("seed {seed} FAILED:\n{}", failure.message);
            if let Some(path) = &args.history {
                match std::fs::write(path, &failure.history) {
                    Ok(()) => println!("history written to {path} (riptide check {path})"),
                    Err(e) => eprintln!("cannot write {path}: {e}"),
                }
            }
            ExitCode::FAILURE
        }
    }
}

fn run_many(args: &Args) -> ExitCode {
    let started = Instant::now();
    let next = AtomicU64::new(args.start);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let first_failure: Mutex<Option<Failure>> = Mutex::new(None);
    let snapshots = Mutex::new(SnapshotTotals::default());
    let end = args.start.saturating_add(args.seeds);
    std::thread::scope(|scope| {
        for _ in 0..args.threads {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end {
                        break;
                    }
                    let config = config(seed, &args.bugs);
                    let result = run_seed(seed, &config);
                    if let Ok(stats) = &result {
                        let mut totals = snapshots.lock().expect("not poisoned");
                        totals.seeds += usize::from(config.snapshots.is_some());
                        totals.counters += stats.snapshots;
                    }
                    if let Err(failure) = result {
                        stop.store(true, Ordering::Relaxed);
                        let mut first = first_failure.lock().expect("not poisoned");
                        if !matches!(first.as_ref(), Some(f) if f.seed < failure.seed) {
                            *first = Some(failure);
                        }
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n.rem_euclid(PROGRESS_EVERY) == 0 {
                        eprintln!("{n} seeds in {:.0?}", started.elapsed());
                    }
                }
            });
        }
    });
    let ran = done.load(Ordering::Relaxed);
    match first_failure.into_inner().expect("not poisoned") {
        None => {
            println!(
                "{ran} seeds from {} passed in {:.1?}",
                args.start,
                started.elapsed()
            );
            println!("{}", snapshots.into_inner().expect("not poisoned"));
            ExitCode::SUCCESS
        }
        Some(failure) => {
            println!("seed {} FAILED:\n{}", failure.seed, failure.message);
            println!("reproduce: {}", reproduce(&failure, &args.bugs));
            ExitCode::FAILURE
        }
    }
}

/// What the passing seeds did with snapshots, for the summary.
#[derive(Default)]
struct SnapshotTotals {
    /// Seeds with snapshots on.
    seeds: usize,
    counters: SnapshotCounters,
}

impl std::fmt::Display for SnapshotTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.counters;
        write!(
            f,
            "snapshots on in {} seeds: {} taken, {} installed ({} chunks, {} refused), {} \
             restarts from a snapshot; crashes lost {} writes and {} transfers, kept {} unpolled \
             writes",
            self.seeds,
            c.taken,
            c.installed,
            c.chunks,
            c.refused,
            c.restarts_from_snapshot,
            c.lost_in_crash,
            c.transfers_lost,
            c.kept_unpolled
        )
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("riptide-sim: {why}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match args.one {
        Some(seed) => run_one(seed, &args),
        None => run_many(&args),
    }
}
