//! `riptide campaign`: the same test many times, over a matrix of options, stored for later
//! comparison.
//!
//! Each run is a separate `riptide test` process (its own sandbox, its own run folder). The
//! child tells the campaign where its run folder is (a file, see `--announce-run-dir`), and the
//! campaign reads the verdict and the numbers from it ([`row`]). The campaign's own folder
//! (`results/campaigns/<name>/<stamp>/`, see `riptide_store::campaign`) gets `campaign.json`,
//! rewritten after every run, and `campaign.html`; `results/index.html` lists campaigns.
//!
//! - **Matrix** ([`matrix`]): `--matrix KEY=V1,V2` options multiply; run k of every cell uses
//!   seed `SEED + k`, so cells and campaigns compare seed by seed.
//! - **Ctrl-C**: the children run in their own process group, so the terminal's Ctrl-C reaches
//!   only the campaign, which passes one SIGINT to each running child per Ctrl-C it gets (the
//!   first ends the child's workload early, a second skips its final reads). The interrupted
//!   runs are left out, the campaign is stored `interrupted`, and `--resume DIR` runs what is
//!   left.
//! - **Output**: one line per run and a summary; `--json` prints `campaign.json` instead (the
//!   lines go to stderr), `--junit FILE` writes JUnit XML ([`junit`]).

mod identity;
mod junit;
mod matrix;
mod row;
mod signals;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use riptide_store::campaign::{
    self as store, CampaignFile, CampaignPlan, CampaignRun, CampaignStatus, RunOutcome,
};

use crate::exit::{self, Exit};

#[derive(clap::Args, Debug)]
pub struct CampaignArgs {
    /// Runs of each cell of the matrix (of the whole campaign without one).
    #[arg(long, default_value_t = 5)]
    pub runs: u32,
    /// Seed of the first run of each cell; run k uses SEED + k. Random if not given.
    #[arg(long, allow_negative_numbers = false)]
    pub seed: Option<u64>,
    /// Stop at the first invalid run (to measure how fast a bug is found).
    #[arg(long)]
    pub stop_on_invalid: bool,
    /// A matrix dimension: a `riptide test` flag and its values, e.g. `nemesis=kill,partition`
    /// (`unsafe-bug=none,...`: `none` is the correct node). Repeatable; the campaign runs the
    /// product, in the order given.
    #[arg(long = "matrix", value_name = "KEY=V1,V2")]
    pub matrix: Vec<String>,
    /// How many runs at once (each has its own namespace; on 2 cores, 1).
    #[arg(long, default_value_t = 1)]
    pub parallel: usize,
    /// Where runs and campaigns are stored.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// The campaign's name: it is stored in `RESULTS/campaigns/NAME/`. Default: the test's
    /// `--name`, else `riptide`.
    #[arg(long)]
    pub name: Option<String>,
    /// Continue an interrupted campaign from its folder: the runs it lacks, with the options it
    /// was started with (give no other campaign options).
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// When done, keep this campaign as the baseline NAME for `riptide compare NAME DIR`.
    #[arg(long, value_name = "NAME")]
    pub save_baseline: Option<String>,
    /// Also write the campaign as JUnit XML to FILE (one test case per run).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print campaign.json on stdout instead of the table (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Options for every `riptide test` run, after `--` (e.g. -- --nemesis all --time-limit 60).
    #[arg(last = true)]
    pub test_args: Vec<String>,
}

/// One run to do: its place, cell and seed.
#[derive(Clone, Debug)]
struct Job {
    index: usize,
    cell: BTreeMap<String, String>,
    seed: u64,
}

pub fn campaign(args: CampaignArgs) -> Result<u8, Exit> {
    run(&args).map(|done| done.exit_code)
}

/// A campaign that ran: its exit code, folder and file.
pub struct Done {
    pub exit_code: u8,
    pub dir: PathBuf,
    pub file: CampaignFile,
}

/// Runs the campaign `args` asks for (`riptide campaign`, and each half of `riptide zoo`).
pub fn run(args: &CampaignArgs) -> Result<Done, Exit> {
    if args.parallel == 0 || args.parallel > signals::MAX_CHILDREN {
        return Err(Exit::bad_args(format!(
            "--parallel must be 1 to {}",
            signals::MAX_CHILDREN
        )));
    }
    riptide_store::layout::prepare_results_dir(&args.results_dir)
        .map_err(|e| Exit::bad_args(e.to_string()))?;
    let exe = std::env::current_exe()
        .map_err(|e| Exit::crashed(format!("cannot find riptide's own executable: {e}")))?;
    let (dir, mut file) = match &args.resume {
        Some(dir) => resume(args, dir)?,
        None => start(args, &exe)?,
    };
    let jobs = jobs(&file.asked);
    let done: Vec<(BTreeMap<String, String>, u64)> =
        file.runs.iter().map(|r| (r.cell.clone(), r.seed)).collect();
    let todo: Vec<Job> = jobs
        .iter()
        .filter(|j| !done.contains(&(j.cell.clone(), j.seed)))
        .cloned()
        .collect();
    say(
        args,
        &format!(
            "riptide campaign: {} runs ({} to do), seeds {}..{}, stored in {}",
            jobs.len(),
            todo.len(),
            file.asked.first_seed,
            file.asked.first_seed + file.asked.runs.max(1) as u64 - 1,
            dir.display()
        ),
    );
    signals::install();
    let started = Instant::now();
    let status = match execute(args, &exe, &dir, &mut file, &jobs, todo) {
        Ok(status) => status,
        Err(exit) => {
            // Refused before anything ran: the fresh, empty campaign folder goes too.
            if args.resume.is_none() && file.runs.is_empty() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return Err(exit);
        }
    };
    file.status = status;
    order_runs(&mut file, &jobs);
    store_all(args, &dir, &file);
    let exit_code = finish(args, &dir, &file, started.elapsed().as_secs_f64())?;
    Ok(Done {
        exit_code,
        dir,
        file,
    })
}

/// Creates the campaign `args` asks for, with no run done yet, and returns its folder: what
/// `riptide zoo` does before its first run, so that its plan can name both campaigns and a
/// stopped zoo can resume them (`run` with `resume` set to the folder).
pub fn create(args: &CampaignArgs) -> Result<PathBuf, Exit> {
    riptide_store::layout::prepare_results_dir(&args.results_dir)
        .map_err(|e| Exit::bad_args(e.to_string()))?;
    let exe = std::env::current_exe()
        .map_err(|e| Exit::crashed(format!("cannot find riptide's own executable: {e}")))?;
    start(args, &exe).map(|(dir, _)| dir)
}

/// A new campaign: its folder and its `campaign.json`.
fn start(args: &CampaignArgs, exe: &Path) -> Result<(PathBuf, CampaignFile), Exit> {
    if args.runs == 0 {
        return Err(Exit::bad_args("--runs must be at least 1"));
    }
    let matrix: Vec<(String, Vec<String>)> = args
        .matrix
        .iter()
        .map(|m| matrix::parse(m))
        .collect::<Result<_, _>>()
        .map_err(Exit::bad_args)?;
    let test_args = matrix::check_test_args(&args.test_args, &matrix).map_err(Exit::bad_args)?;
    let name = args
        .name
        .clone()
        .or_else(|| flag_value(&test_args, "--name"))
        .unwrap_or_else(|| "riptide".into());
    let asked = CampaignPlan {
        runs: args.runs,
        first_seed: args.seed.unwrap_or_else(|| rand::random::<u64>() >> 1),
        matrix,
        test_args,
        stop_on_invalid: args.stop_on_invalid,
    };
    let node = identity::of_binary(&identity::node_binary(&asked.test_args, exe));
    let now = riptide_store::layout::now_unix();
    let dir = store::create_campaign_dir(&args.results_dir, &name, now)
        .map_err(|e| Exit::bad_args(e.to_string()))?;
    let started_at = riptide_store::layout::timestamp(now);
    let file = CampaignFile::new(&name, &started_at, asked, node);
    file.store(&dir)
        .map_err(|e| Exit::crashed(format!("cannot store the campaign: {e}")))?;
    Ok((dir, file))
}

/// An interrupted campaign, to be continued with the options it was started with.
fn resume(args: &CampaignArgs, dir: &Path) -> Result<(PathBuf, CampaignFile), Exit> {
    let asked_more = !args.matrix.is_empty()
        || !args.test_args.is_empty()
        || args.seed.is_some()
        || args.stop_on_invalid;
    if asked_more {
        return Err(Exit::bad_args(
            "--resume continues with the options the campaign was started with; give no --matrix, --seed, --stop-on-invalid or test options",
        ));
    }
    let mut file = CampaignFile::load(dir).map_err(|e| Exit::bad_args(e.to_string()))?;
    if file.status == CampaignStatus::Complete {
        return Err(Exit::bad_args(format!(
            "the campaign in {} is complete; nothing to resume",
            dir.display()
        )));
    }
    file.status = CampaignStatus::Running;
    Ok((dir.to_path_buf(), file))
}

/// Every run of the plan, in order: cell by cell, seed by seed.
fn jobs(plan: &CampaignPlan) -> Vec<Job> {
    let mut jobs = Vec::new();
    for cell in matrix::cells(&plan.matrix) {
        for k in 0..plan.runs as u64 {
            jobs.push(Job {
                index: jobs.len(),
                cell: cell.clone(),
                seed: plan.first_seed + k,
            });
        }
    }
    jobs
}

/// Runs `todo`, `--parallel` at a time, storing `campaign.json` after each.
fn execute(
    args: &CampaignArgs,
    exe: &Path,
    dir: &Path,
    file: &mut CampaignFile,
    jobs: &[Job],
    todo: Vec<Job>,
) -> Result<CampaignStatus, Exit> {
    let queue = std::sync::Mutex::new(todo.into_iter());
    let (tx, rx) = std::sync::mpsc::channel::<Result<(Job, row::Judged), Exit>>();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let plan = file.asked.clone();
    let mut status = CampaignStatus::Complete;
    std::thread::scope(|scope| {
        for slot in 0..args.parallel {
            let (tx, queue, stop, plan) = (tx.clone(), &queue, &stop, &plan);
            scope.spawn(move || loop {
                if stop.load(std::sync::atomic::Ordering::SeqCst) || signals::interrupted() {
                    return;
                }
                let Some(job) = queue.lock().unwrap().next() else {
                    return;
                };
                let result = run_one(exe, &args.results_dir, plan, &job, slot);
                // Decided here, before this worker takes its next job: were it left to the
                // collector, the next run would already have started when it set the flag.
                if ends_campaign(&result, plan.stop_on_invalid) {
                    stop.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                let _ = tx.send(result.map(|judged| (job, judged)));
            });
        }
        drop(tx);
        for result in rx {
            match result {
                Err(exit) => {
                    stop.store(true, std::sync::atomic::Ordering::SeqCst);
                    status = CampaignStatus::Interrupted;
                    say(args, &format!("riptide campaign: {}", exit.message));
                    if exit.code == exit::BAD_ARGS && file.runs.is_empty() {
                        return Err(exit);
                    }
                }
                Ok((job, judged)) if judged.interrupted => {
                    status = CampaignStatus::Interrupted;
                    say(
                        args,
                        &format!(
                            "run {:>3}  interrupted; not counted (--resume {} runs it again)",
                            job.index + 1,
                            dir.display()
                        ),
                    );
                }
                Ok((job, judged)) => {
                    print_line(args, &file.asked, &job, &judged.row);
                    let invalid = judged.row.verdict == RunOutcome::Invalid;
                    file.push(judged.row);
                    order_runs(file, jobs);
                    if let Err(err) = file.store(dir) {
                        say(args, &format!("riptide campaign: warning: {err}"));
                    }
                    if invalid && plan.stop_on_invalid {
                        stop.store(true, std::sync::atomic::Ordering::SeqCst);
                        status = CampaignStatus::StoppedOnInvalid;
                    }
                }
            }
        }
        if signals::interrupted() && status == CampaignStatus::Complete {
            status = CampaignStatus::Interrupted;
        }
        Ok(status)
    })
}

/// Whether a finished run ends the campaign: a run that could not be run, or, with
/// `--stop-on-invalid`, an invalid one.
fn ends_campaign(result: &Result<row::Judged, Exit>, stop_on_invalid: bool) -> bool {
    match result {
        Err(_) => true,
        Ok(judged) => {
            stop_on_invalid && !judged.interrupted && judged.row.verdict == RunOutcome::Invalid
        }
    }
}

/// One `riptide test` as a child process, in its own process group; its row comes from its
/// run folder.
fn run_one(
    exe: &Path,
    results_dir: &Path,
    plan: &CampaignPlan,
    job: &Job,
    slot: usize,
) -> Result<row::Judged, Exit> {
    use std::os::unix::process::CommandExt;
    let announce = std::env::temp_dir().join(format!(
        "riptide-campaign-{}-{}.run-dir",
        std::process::id(),
        job.index
    ));
    let _ = std::fs::remove_file(&announce);
    let run_started = Instant::now();
    let child = Command::new(exe)
        .arg("test")
        .args(&plan.test_args)
        .args(matrix::flags(&plan.matrix, &job.cell))
        .args(["--seed", &job.seed.to_string(), "--no-progress"])
        .arg("--results-dir")
        .arg(results_dir)
        .arg("--announce-run-dir")
        .arg(&announce)
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Exit::crashed(format!("cannot start riptide test: {e}")))?;
    signals::track(slot, child.id());
    let out = child.wait_with_output();
    signals::untrack(slot);
    let out = out.map_err(|e| Exit::crashed(format!("riptide test: {e}")))?;
    let dir = std::fs::read_to_string(&announce).ok().map(PathBuf::from);
    let _ = std::fs::remove_file(&announce);
    if out.status.code() == Some(exit::BAD_ARGS as i32) && dir.is_none() {
        // The child's whole complaint: clap's message is several lines, the last of which
        // ("For more information, try '--help'") says nothing by itself.
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Exit::bad_args(format!(
            "riptide test refused its options:\n{}",
            stderr.trim_end()
        )));
    }
    let seconds = run_started.elapsed().as_secs_f64();
    Ok(row::read(
        results_dir,
        dir.as_deref(),
        &job.cell,
        job.seed,
        seconds,
    ))
}

/// Rows in plan order, whatever order parallel runs finished in.
fn order_runs(file: &mut CampaignFile, jobs: &[Job]) {
    let place = |r: &CampaignRun| {
        jobs.iter()
            .position(|j| j.cell == r.cell && j.seed == r.seed)
            .unwrap_or(usize::MAX)
    };
    file.runs.sort_by_key(place);
}

fn print_line(args: &CampaignArgs, plan: &CampaignPlan, job: &Job, run: &CampaignRun) {
    let cell = matrix::label(&plan.matrix, &job.cell);
    let line = format!(
        "run {:>3}  {}seed {:<20} {:<8} {:>6.1} s  {:>8.0} ok/s  p99 {:>6.1} ms  {}",
        job.index + 1,
        if cell.is_empty() {
            String::new()
        } else {
            format!("{cell}  ")
        },
        run.seed,
        verdict_name(run.verdict),
        run.seconds,
        run.ok_per_s,
        run.p99_ms,
        run.dir.as_deref().unwrap_or("?")
    );
    say(args, &line);
}

/// A line for people: stdout, or stderr when stdout carries `--json`.
fn say(args: &CampaignArgs, line: &str) {
    if args.json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// `campaign.json`, `campaign.html` and the index. Failing to write a page costs nothing else.
fn store_all(args: &CampaignArgs, dir: &Path, file: &CampaignFile) {
    if let Err(err) = file.store(dir) {
        say(args, &format!("riptide campaign: warning: {err}"));
    }
    if let Err(err) = riptide_report::campaign::write_campaign_page(dir, &args.results_dir, file) {
        say(
            args,
            &format!("riptide campaign: warning: cannot write campaign.html: {err:#}"),
        );
    }
    if let Err(err) = riptide_report::index::write_index(&args.results_dir) {
        say(
            args,
            &format!("riptide campaign: warning: cannot rewrite the index: {err:#}"),
        );
    }
}

/// The summary, the JUnit file, the baseline, and the exit code.
fn finish(args: &CampaignArgs, dir: &Path, file: &CampaignFile, seconds: f64) -> Result<u8, Exit> {
    let t = &file.totals;
    say(
        args,
        &format!(
            "\ncampaign  {} runs in {seconds:.0} s: {} valid, {} invalid, {} unknown, {} crashed ({})",
            t.runs,
            t.valid,
            t.invalid,
            t.unknown,
            t.crashed,
            status_name(file.status)
        ),
    );
    if let Some(first) = file
        .runs
        .iter()
        .position(|r| r.verdict == RunOutcome::Invalid)
    {
        let seconds: f64 = file.runs[..=first].iter().map(|r| r.seconds).sum();
        say(
            args,
            &format!(
                "first anomaly in run {} (seed {}), after {seconds:.0} s of testing",
                first + 1,
                file.runs[first].seed
            ),
        );
    }
    say(
        args,
        &format!("node      {}", identity::describe(&file.node)),
    );
    say(args, &format!("campaign  {}", dir.display()));
    if let Some(path) = &args.junit {
        let xml = junit::render(file, &args.results_dir);
        std::fs::write(path, xml)
            .map_err(|e| Exit::crashed(format!("--junit {}: {e}", path.display())))?;
    }
    if let Some(name) = &args.save_baseline {
        let saved = store::save_baseline(&args.results_dir, name, dir)
            .map_err(|e| Exit::bad_args(e.to_string()))?;
        say(args, &format!("baseline  {name} ({})", saved.display()));
    }
    if args.json {
        let text = serde_json::to_string_pretty(file).map_err(|e| Exit::crashed(e.to_string()))?;
        println!("{text}");
    }
    Ok(exit_code(file))
}

/// Invalid if any run was, else crashed, else unknown, else interrupted (2), else valid.
fn exit_code(file: &CampaignFile) -> u8 {
    let t = &file.totals;
    if t.invalid > 0 {
        exit::INVALID
    } else if t.crashed > 0 {
        exit::CRASHED
    } else if t.unknown > 0 || file.status == CampaignStatus::Interrupted {
        exit::UNKNOWN
    } else {
        0
    }
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == flag {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix(&format!("{flag}=")) {
            return Some(v.to_string());
        }
    }
    None
}

fn verdict_name(verdict: RunOutcome) -> &'static str {
    match verdict {
        RunOutcome::Valid => "valid",
        RunOutcome::Invalid => "INVALID",
        RunOutcome::Unknown => "unknown",
        RunOutcome::Crashed => "crashed",
    }
}

fn status_name(status: CampaignStatus) -> &'static str {
    match status {
        CampaignStatus::Running => "running",
        CampaignStatus::Complete => "complete",
        CampaignStatus::Interrupted => "interrupted",
        CampaignStatus::StoppedOnInvalid => "stopped at the first invalid run",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use riptide_store::campaign::NodeIdentity;

    fn row(seed: u64, verdict: RunOutcome) -> CampaignRun {
        CampaignRun {
            caught_at_s: None,
            cell: BTreeMap::new(),
            seed,
            verdict,
            anomalies: vec![],
            dir: None,
            seconds: 1.0,
            ok_per_s: 0.0,
            p50_ms: 0.0,
            p99_ms: 0.0,
            faults: BTreeMap::new(),
            unsafe_bugs: vec![],
            cluster_recovered: true,
        }
    }

    #[test]
    fn the_exit_code_puts_invalid_before_crashed_before_unknown() {
        let mut file =
            CampaignFile::new("c", "t", CampaignPlan::default(), NodeIdentity::default());
        file.push(row(1, RunOutcome::Valid));
        file.status = CampaignStatus::Complete;
        assert_eq!(exit_code(&file), 0);
        file.status = CampaignStatus::Interrupted;
        assert_eq!(exit_code(&file), exit::UNKNOWN);
        file.push(row(2, RunOutcome::Unknown));
        file.push(row(3, RunOutcome::Crashed));
        assert_eq!(exit_code(&file), exit::CRASHED);
        file.push(row(4, RunOutcome::Invalid));
        assert_eq!(exit_code(&file), exit::INVALID);
    }

    #[test]
    fn jobs_go_cell_by_cell_with_the_same_seeds_in_every_cell() {
        let plan = CampaignPlan {
            runs: 2,
            first_seed: 10,
            matrix: vec![("nodes".into(), vec!["3".into(), "5".into()])],
            ..CampaignPlan::default()
        };
        let jobs = jobs(&plan);
        let seen: Vec<(String, u64)> = jobs
            .iter()
            .map(|j| (j.cell["nodes"].clone(), j.seed))
            .collect();
        assert_eq!(
            seen,
            [
                ("3".into(), 10),
                ("3".into(), 11),
                ("5".into(), 10),
                ("5".into(), 11)
            ]
        );
        let mut file = CampaignFile::new("c", "t", plan, NodeIdentity::default());
        let mut late = row(10, RunOutcome::Valid);
        late.cell.insert("nodes".into(), "5".into());
        let mut early = row(11, RunOutcome::Valid);
        early.cell.insert("nodes".into(), "3".into());
        file.push(late);
        file.push(early);
        order_runs(&mut file, &jobs);
        assert_eq!(file.runs[0].cell["nodes"], "3");
    }
}
