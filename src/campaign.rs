//! `riptide campaign`: the same test, several times with different seeds, one verdict.
//!
//! Each run is a separate `riptide test` process (each gets its own sandbox and its own run
//! folder). The campaign prints one line per run and a summary: how many runs were valid,
//! invalid or unknown, and how many runs and seconds it took to find the first anomaly.

use std::process::Command;
use std::time::Instant;

use crate::exit::{self, Exit};

#[derive(clap::Args, Debug)]
pub struct CampaignArgs {
    /// How many runs.
    #[arg(long, default_value_t = 5)]
    pub runs: u32,
    /// Seed of the first run; run k uses SEED + k. Random if not given.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop at the first invalid run (to measure how fast a bug is found).
    #[arg(long)]
    pub stop_on_invalid: bool,
    /// Options for every `riptide test` run, after `--` (e.g. -- --nemesis all --time-limit 60).
    #[arg(last = true)]
    pub test_args: Vec<String>,
}

struct RunLine {
    seed: u64,
    code: Option<i32>,
    seconds: f64,
    dir: String,
}

pub fn campaign(args: CampaignArgs) -> Result<u8, Exit> {
    if args.runs == 0 {
        return Err(Exit::bad_args("--runs must be at least 1"));
    }
    if args
        .test_args
        .iter()
        .any(|a| a == "--seed" || a.starts_with("--seed="))
    {
        return Err(Exit::bad_args(
            "give the campaign's --seed before `--`; each run gets SEED + k",
        ));
    }
    let exe = std::env::current_exe()
        .map_err(|e| Exit::crashed(format!("cannot find riptide's own executable: {e}")))?;
    let first_seed = args.seed.unwrap_or_else(|| rand::random::<u64>() >> 1);
    eprintln!(
        "riptide campaign: {} runs, seeds {}..{}",
        args.runs,
        first_seed,
        first_seed + args.runs as u64 - 1
    );
    let started = Instant::now();
    let mut lines: Vec<RunLine> = Vec::new();
    for k in 0..args.runs as u64 {
        let seed = first_seed + k;
        let run_started = Instant::now();
        let out = Command::new(&exe)
            .arg("test")
            .args(&args.test_args)
            .args(["--seed", &seed.to_string(), "--no-progress"])
            .output()
            .map_err(|e| Exit::crashed(format!("cannot start riptide test: {e}")))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        if code == Some(exit::BAD_ARGS as i32) {
            return Err(Exit::bad_args(
                stderr
                    .lines()
                    .last()
                    .unwrap_or("riptide test rejected its options")
                    .trim_start_matches("riptide: ")
                    .to_string(),
            ));
        }
        let dir = stdout
            .lines()
            .find_map(|l| l.strip_prefix("run       "))
            .or_else(|| stderr.lines().find_map(|l| l.split("-> ").nth(1)))
            .unwrap_or("?")
            .to_string();
        let line = RunLine {
            seed,
            code,
            seconds: run_started.elapsed().as_secs_f64(),
            dir,
        };
        println!(
            "run {:>3}  seed {:<20} {:<8} {:>6.1} s  {}",
            k + 1,
            line.seed,
            verdict_name(line.code),
            line.seconds,
            line.dir
        );
        let invalid = line.code == Some(exit::INVALID as i32);
        lines.push(line);
        if invalid && args.stop_on_invalid {
            break;
        }
    }
    let count = |c: u8| lines.iter().filter(|l| l.code == Some(c as i32)).count();
    let (valid, invalid, unknown) = (count(0), count(exit::INVALID), count(exit::UNKNOWN));
    let crashed = lines.len() - valid - invalid - unknown;
    println!(
        "\ncampaign  {} runs in {:.0} s: {valid} valid, {invalid} invalid, {unknown} unknown, {crashed} crashed",
        lines.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(first) = lines
        .iter()
        .position(|l| l.code == Some(exit::INVALID as i32))
    {
        let seconds: f64 = lines[..=first].iter().map(|l| l.seconds).sum();
        println!(
            "first anomaly in run {} (seed {}), after {:.0} s of testing",
            first + 1,
            lines[first].seed,
            seconds
        );
    }
    Ok(if invalid > 0 {
        exit::INVALID
    } else if crashed > 0 {
        exit::CRASHED
    } else if unknown > 0 {
        exit::UNKNOWN
    } else {
        0
    })
}

fn verdict_name(code: Option<i32>) -> &'static str {
    match code {
        Some(0) => "valid",
        Some(1) => "INVALID",
        Some(2) => "unknown",
        _ => "crashed",
    }
}
