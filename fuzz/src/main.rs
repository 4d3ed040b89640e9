//! `riptide-fuzz`: fuzz the node's wire, core and storage for a while, or replay a saved input.
//!
//! ```text
//! riptide-fuzz run all --seconds 3600 --seed 1     # each target for an hour, one after another
//! riptide-fuzz run raft --seconds 60               # one target
//! riptide-fuzz replay raft fuzz-crashes/raft-1a2b3c4d.bin
//! ```
//!
//! Exit codes: 0 no panic, 1 some target panicked (its inputs are in `--crash-dir`), 2 bad
//! arguments.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use riptide_fuzz::driver::{fuzz, run_one, Options};

#[derive(Parser)]
#[command(
    name = "riptide-fuzz",
    about = "Structure-aware fuzzing of riptide's wire, Raft core and storage"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fuzz TARGET (frame, hello, client, raft, storage, or all).
    Run {
        target: String,
        /// Seconds per target.
        #[arg(long, default_value_t = 60.0)]
        seconds: f64,
        /// Stop each target after this many inputs.
        #[arg(long)]
        max_execs: Option<u64>,
        /// Seed of the input generator (printed; the same seed and limits give the same inputs).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where inputs that panicked are saved.
        #[arg(long, default_value = "fuzz-crashes")]
        crash_dir: PathBuf,
        /// Longest generated input in bytes.
        #[arg(long, default_value_t = 4096)]
        max_len: usize,
    },
    /// Run one saved input through TARGET again.
    Replay { target: String, input: PathBuf },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run {
            target,
            seconds,
            max_execs,
            seed,
            crash_dir,
            max_len,
        } => {
            if !(seconds.is_finite() && seconds > 0.0) {
                eprintln!("riptide-fuzz: --seconds must be a positive number, not {seconds}");
                return ExitCode::from(2);
            }
            let targets = if target == "all" {
                riptide_fuzz::targets()
            } else {
                match riptide_fuzz::target(&target) {
                    Ok(t) => vec![t],
                    Err(e) => {
                        eprintln!("riptide-fuzz: {e}");
                        return ExitCode::from(2);
                    }
                }
            };
            let opts = Options {
                duration: Duration::from_secs_f64(seconds),
                max_execs,
                seed,
                crash_dir,
                max_len,
            };
            let mut crashed = false;
            for t in &targets {
                let report = fuzz(t, &opts);
                println!("{}", report.line());
                crashed |= !report.crashes.is_empty();
            }
            ExitCode::from(u8::from(crashed))
        }
        Command::Replay { target, input } => {
            let t = match riptide_fuzz::target(&target) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("riptide-fuzz: {e}");
                    return ExitCode::from(2);
                }
            };
            let bytes = match std::fs::read(&input) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("riptide-fuzz: cannot read {}: {e}", input.display());
                    return ExitCode::from(2);
                }
            };
            match run_one(&t, &bytes) {
                Ok(outcome) => {
                    println!("no panic: {outcome}");
                    ExitCode::SUCCESS
                }
                Err(message) => {
                    println!("panicked: {message}");
                    ExitCode::from(1)
                }
            }
        }
    }
}
