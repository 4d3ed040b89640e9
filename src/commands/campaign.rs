//! `riptide campaign`: the same test, several times with different seeds, one verdict.
//!
//! Each run is a separate `riptide test` process (each gets its own sandbox and its own run
//! folder). The child tells the campaign where its run folder is (through a file, see
//! `--announce-run-dir`), and the campaign reads the verdict from that folder's `results.json`.
//! It prints one line per run and a summary: how many runs were valid, invalid or unknown, and
//! how many runs and seconds it took to find the first anomaly.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use riptide_checker::Verdict;
use riptide_store::Results;

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

/// How one run of the campaign ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunVerdict {
    Judged(Verdict),
    /// No results.json: the run crashed before it was judged.
    Crashed,
}

struct RunLine {
    seed: u64,
    verdict: RunVerdict,
    seconds: f64,
    dir: Option<PathBuf>,
}

/// The verdict stored in the child's run folder. A run whose folder or `results.json` is
/// missing or unreadable crashed.
fn stored_verdict(dir: Option<&Path>) -> RunVerdict {
    match dir.map(Results::load) {
        Some(Ok(results)) => RunVerdict::Judged(results.verdict),
        Some(Err(err)) => {
            eprintln!("riptide campaign: {err}");
            RunVerdict::Crashed
        }
        None => RunVerdict::Crashed,
    }
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
        let line = run_one(&exe, &args.test_args, first_seed + k)?;
        println!(
            "run {:>3}  seed {:<20} {:<8} {:>6.1} s  {}",
            k + 1,
            line.seed,
            verdict_name(line.verdict),
            line.seconds,
            line.dir
                .as_ref()
                .map_or("?".to_string(), |d| d.display().to_string())
        );
        let invalid = line.verdict == RunVerdict::Judged(Verdict::Invalid);
        lines.push(line);
        if invalid && args.stop_on_invalid {
            break;
        }
    }
    Ok(summarise(&lines, started.elapsed().as_secs_f64()))
}

/// One `riptide test` with `seed`, as a child process; its verdict comes from its results.json.
fn run_one(exe: &Path, test_args: &[String], seed: u64) -> Result<RunLine, Exit> {
    let announce = std::env::temp_dir().join(format!(
        "riptide-campaign-{}-{seed}.run-dir",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&announce);
    let run_started = Instant::now();
    let out = Command::new(exe)
        .arg("test")
        .args(test_args)
        .args(["--seed", &seed.to_string(), "--no-progress"])
        .arg("--announce-run-dir")
        .arg(&announce)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| Exit::crashed(format!("cannot start riptide test: {e}")))?;
    let dir = std::fs::read_to_string(&announce).ok().map(PathBuf::from);
    let _ = std::fs::remove_file(&announce);
    if out.status.code() == Some(exit::BAD_ARGS as i32) && dir.is_none() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Exit::bad_args(
            stderr
                .lines()
                .last()
                .unwrap_or("riptide test rejected its options")
                .trim_start_matches("riptide: ")
                .to_string(),
        ));
    }
    Ok(RunLine {
        seed,
        verdict: stored_verdict(dir.as_deref()),
        seconds: run_started.elapsed().as_secs_f64(),
        dir,
    })
}

/// The campaign's last lines, and its exit code: invalid if any run was, else crashed, else
/// unknown, else valid.
fn summarise(lines: &[RunLine], seconds: f64) -> u8 {
    let count = |v: RunVerdict| lines.iter().filter(|l| l.verdict == v).count();
    let valid = count(RunVerdict::Judged(Verdict::Valid));
    let invalid = count(RunVerdict::Judged(Verdict::Invalid));
    let unknown = count(RunVerdict::Judged(Verdict::Unknown));
    let crashed = count(RunVerdict::Crashed);
    println!(
        "\ncampaign  {} runs in {seconds:.0} s: {valid} valid, {invalid} invalid, {unknown} unknown, {crashed} crashed",
        lines.len(),
    );
    if let Some(first) = lines
        .iter()
        .position(|l| l.verdict == RunVerdict::Judged(Verdict::Invalid))
    {
        let seconds: f64 = lines[..=first].iter().map(|l| l.seconds).sum();
        println!(
            "first anomaly in run {} (seed {}), after {:.0} s of testing",
            first + 1,
            lines[first].seed,
            seconds
        );
    }
    if invalid > 0 {
        exit::INVALID
    } else if crashed > 0 {
        exit::CRASHED
    } else if unknown > 0 {
        exit::UNKNOWN
    } else {
        0
    }
}

fn verdict_name(verdict: RunVerdict) -> &'static str {
    match verdict {
        RunVerdict::Judged(Verdict::Valid) => "valid",
        RunVerdict::Judged(Verdict::Invalid) => "INVALID",
        RunVerdict::Judged(Verdict::Unknown) => "unknown",
        RunVerdict::Crashed => "crashed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_judged_by_its_results_json_and_without_one_it_crashed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(stored_verdict(None), RunVerdict::Crashed);
        assert_eq!(stored_verdict(Some(dir.path())), RunVerdict::Crashed);
        std::fs::write(
            dir.path().join("results.json"),
            r#"{"schema":1,"verdict":"invalid"}"#,
        )
        .unwrap();
        assert_eq!(
            stored_verdict(Some(dir.path())),
            RunVerdict::Judged(Verdict::Invalid)
        );
        std::fs::write(dir.path().join("results.json"), r#"{"verdict":"bogus"}"#).unwrap();
        assert_eq!(stored_verdict(Some(dir.path())), RunVerdict::Crashed);
    }

    #[test]
    fn the_campaign_exit_code_puts_invalid_before_crashed_before_unknown() {
        let line = |verdict| RunLine {
            seed: 1,
            verdict,
            seconds: 1.0,
            dir: None,
        };
        let valid = line(RunVerdict::Judged(Verdict::Valid));
        assert_eq!(summarise(&[valid], 1.0), 0);
        let mixed = [
            line(RunVerdict::Judged(Verdict::Unknown)),
            line(RunVerdict::Crashed),
        ];
        assert_eq!(summarise(&mixed, 1.0), exit::CRASHED);
        let with_invalid = [
            line(RunVerdict::Crashed),
            line(RunVerdict::Judged(Verdict::Invalid)),
        ];
        assert_eq!(summarise(&with_invalid, 1.0), exit::INVALID);
    }
}
