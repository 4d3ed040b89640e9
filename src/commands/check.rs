//! `riptide check FILE`: is this history linearizable?
//!
//! Reads a history (riptide JSONL, Jepsen EDN, a Jepsen log or Porcupine's kv data; the format is
//! detected), checks it with `riptide-checker` and prints the verdict with a counterexample, or
//! the report as JSON with `--json`. Exit codes: 0 linearizable, 1 not, 2 unknown (time limit or
//! memory budget), 254 bad arguments or unreadable input. `--report DIR` also writes the
//! interactive timeline of the history ([`super::check_report`]).
//!
//! `riptide check --bench DIR` times every history in DIR instead (parse + check, one file at a
//! time, median of 5 rounds), as the checker's README reports for Porcupine's test set.

use std::path::PathBuf;
use std::time::Duration;

use super::check_report;

use riptide_checker::{
    bench, check, default_model, load_history, parse_seconds, CheckOptions, Error, Format,
    ModelKind, Value,
};

/// Exit code for bad arguments or unreadable input.
const BAD_INPUT: i32 = 254;

/// Rounds per file for `--bench`: the median of 5, as the published numbers use.
const BENCH_ROUNDS: usize = 5;

/// Check a history for linearizability.
///
/// Exit codes: 0 linearizable, 1 not linearizable, 2 unknown (time limit or memory budget
/// reached), 254 bad arguments or unreadable input.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// The history: riptide JSONL, Jepsen EDN, a Jepsen log, or Porcupine kv data.
    #[arg(value_name = "FILE", required_unless_present = "bench")]
    pub file: Option<PathBuf>,

    /// Model: register, cas-register, kv, or Knossos's mutex (acquire/release) or
    /// multi-register (txn) [default: multi-register if the history has txns, mutex if it has
    /// acquires or releases, kv if it has appends or is Porcupine kv data, else cas-register].
    #[arg(long, value_parser = ["register", "cas-register", "kv", "mutex", "multi-register"])]
    pub model: Option<String>,

    /// Format of FILE.
    #[arg(long, default_value = "auto", value_parser = ["auto", "jsonl", "edn", "jepsen-log", "porcupine-kv"])]
    pub format: String,

    /// Give up after S seconds (decimals allowed): keys not decided by then are unknown, the
    /// others keep their verdicts.
    #[arg(long, value_name = "S", value_parser = seconds, allow_negative_numbers = true)]
    pub time_limit: Option<Duration>,

    /// Value of every key before any write: nil, an integer or a string [default: nil; "" for
    /// Porcupine kv data]. Negative integers are fine: `--initial -1`.
    #[arg(long, value_name = "VALUE", allow_negative_numbers = true)]
    pub initial: Option<String>,

    /// What an ok read of nil means: `any` (as in Knossos: it matches every state) or `absent`
    /// (the key has no value) [default: any for EDN and Jepsen logs, absent for JSONL and
    /// Porcupine kv data].
    #[arg(long, value_name = "MEANING", value_parser = ["any", "absent"])]
    pub nil_read: Option<String>,

    /// Print the report as JSON (for results.json and the HTML report) instead of text.
    #[arg(long)]
    pub json: bool,

    /// Memory the search may use, in MiB; a key that needs more is unknown.
    #[arg(
        long,
        value_name = "MIB",
        default_value_t = 1024,
        allow_negative_numbers = true
    )]
    pub memory_budget: usize,

    /// Worker threads for checking keys in parallel [default: one per core].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..), allow_negative_numbers = true)]
    pub threads: Option<u16>,

    /// Keep checking the other keys after one is found invalid (by default the check stops
    /// there: one invalid key decides the history).
    #[arg(long)]
    pub all_keys: bool,

    /// Also write DIR/timeline.html, the interactive timeline a run gets, with the
    /// counterexample highlighted (and latency.svg, rate.svg for a history with times). DIR is
    /// created if needed; its parent must exist.
    #[arg(long, value_name = "DIR", conflicts_with = "bench")]
    pub report: Option<PathBuf>,

    /// Instead of checking FILE, time every history in DIR: parse + check one file at a time,
    /// median of 5 rounds; verdicts are compared with DIR/expected.tsv if present.
    #[arg(long, value_name = "DIR", conflicts_with = "file")]
    pub bench: Option<PathBuf>,
}

fn seconds(s: &str) -> Result<Duration, String> {
    parse_seconds(s).map_err(|e| e.to_string())
}

impl CheckArgs {
    fn options(&self) -> CheckOptions {
        CheckOptions {
            time_limit: self.time_limit,
            memory_budget_bytes: self.memory_budget.saturating_mul(1 << 20),
            initial: self.initial.as_deref().map(Value::parse_cli),
            threads: self.threads.map(usize::from),
            all_keys: self.all_keys,
            nil_read: self.nil_read.as_deref().map(|m| {
                m.parse()
                    .expect("clap admits only the names NilRead parses")
            }),
            // The time limit covers reading the file too.
            started: Some(std::time::Instant::now()),
        }
    }
}

/// What to do about an error, in one clause.
fn hint(e: &Error) -> &'static str {
    match e {
        Error::Io { .. } => "check the path",
        Error::Parse { .. } => {
            "fix or remove that line, or pass --format if the format was guessed wrong"
        }
        Error::History { .. } => "the history is malformed at that line; fix it",
        Error::Unsupported { .. } | Error::Invalid(_) => "see riptide check --help",
    }
}

fn fail(e: &Error) -> i32 {
    eprintln!("riptide check: {e} ({})", hint(e));
    BAD_INPUT
}

/// Runs `riptide check`; returns the exit code.
pub fn run(args: &CheckArgs) -> i32 {
    let opts = args.options();
    if let Some(dir) = &args.bench {
        return match bench::bench_dir(dir, BENCH_ROUNDS, &opts) {
            Ok(report) => {
                print!("{}", report.render(15));
                i32::from(!report.mismatches().is_empty())
            }
            Err(e) => fail(&e),
        };
    }
    let Some(file) = &args.file else {
        eprintln!("riptide check: no FILE given (see riptide check --help)");
        return BAD_INPUT;
    };
    if let Some(Err(e)) = args.report.as_deref().map(check_report::usable_dir) {
        eprintln!("riptide check: {e}");
        return BAD_INPUT;
    }
    let format: Format = match args.format.parse() {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let history = match load_history(file, format) {
        Ok(h) => h,
        Err(e) => return fail(&e),
    };
    let model: ModelKind = match &args.model {
        Some(m) => match m.parse() {
            Ok(m) => m,
            Err(e) => return fail(&e),
        },
        None => default_model(&history),
    };
    let report = match check(&history, model, &opts) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("riptide check: cannot write the report as JSON: {e}");
                return 255;
            }
        }
    } else {
        print!("{}", report.render());
    }
    if let Some(dir) = &args.report {
        match check_report::write(dir, &history, &report) {
            // With --json, stdout is the report alone.
            Ok(page) if args.json => eprintln!("report: {}", page.display()),
            Ok(page) => println!("report: {}", page.display()),
            Err(e) => {
                eprintln!("riptide check: {e}");
                return BAD_INPUT;
            }
        }
    }
    report.verdict.exit_code()
}
