//! `riptide analyze RUN_DIR`: judge a stored run again.
//!
//! Re-reads the run's `history.jsonl`, checks it (with the model and check time limit the run
//! used, from its `test.json`, unless `--model` / `--time-limit` say otherwise), and rewrites
//! `results.json`, `timeline.html`, `latency.svg`, `rate.svg` and the results index, exactly as
//! `riptide test` writes them at the end of a run. This is how old runs are re-judged after the
//! checker changes, or looked at under another model. The history and `test.json` are never
//! modified.
//!
//! `RUN_DIR` is a run folder; a path that is not a folder as given is tried under
//! `--results-dir` too, so `riptide analyze latest` works. The index rewritten is the one of the
//! store the run belongs to: the run folder is `<results>/<test-name>/<timestamp>/`.
//!
//! Exit codes: 0 valid, 1 invalid, 2 unknown, 254 not a run folder or a bad option.

use std::path::{Path, PathBuf};
use std::time::Duration;

use riptide_store::{files, Manifest, Results, RunStatus};

use crate::exit::Exit;

/// Re-check a stored run and rewrite its results.json and reports.
///
/// Exit codes: 0 valid, 1 invalid, 2 unknown, 254 not a run folder or a bad option.
#[derive(clap::Args, Debug, Clone)]
pub struct AnalyzeArgs {
    /// The run folder (`results/<test>/<timestamp>`, or `latest`).
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,

    /// Model to check with: register, cas-register, kv, mutex or multi-register [default: the
    /// one the run used, from test.json; else cas-register, or kv for a history with appends].
    #[arg(long, value_parser = ["register", "cas-register", "kv", "mutex", "multi-register"])]
    pub model: Option<String>,

    /// Seconds the checker may take; undecided keys are unknown [default: the run's
    /// --check-time-limit, from test.json; else 60].
    #[arg(long, value_name = "S", value_parser = seconds)]
    pub time_limit: Option<f64>,

    /// Where runs are stored: RUN_DIR is also looked up there.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results_dir: PathBuf,
}

/// The check time limit when neither the option nor test.json gives one: the same as
/// `riptide test --check-time-limit`'s default.
const DEFAULT_TIME_LIMIT_S: f64 = 60.0;

fn seconds(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite() && *x > 0.0)
        .ok_or_else(|| format!("expected a positive number of seconds, got `{s}`"))
}

/// Finds the run folder: as given, else under the results dir.
fn resolve(args: &AnalyzeArgs) -> Result<PathBuf, Exit> {
    let candidates = [args.run_dir.clone(), args.results_dir.join(&args.run_dir)];
    let Some(dir) = candidates.iter().find(|d| d.is_dir()) else {
        return Err(Exit::bad_args(format!(
            "{} is not a run folder (nor is {}); pass a folder like {}/riptide/20261123T233447 or `latest`",
            args.run_dir.display(),
            candidates[1].display(),
            args.results_dir.display()
        )));
    };
    if !dir.join(files::HISTORY).is_file() {
        return Err(Exit::bad_args(format!(
            "{} has no history.jsonl: it is not a run folder (runs are {}/<test>/<timestamp>)",
            dir.display(),
            args.results_dir.display()
        )));
    }
    // Through `latest` to the real folder, so the index and messages name the run itself.
    Ok(dir.canonicalize().unwrap_or_else(|_| dir.clone()))
}

/// The model: the option, else the run's, else chosen from the history's ops.
fn model(args: &AnalyzeArgs, manifest: Option<&Manifest>, dir: &Path) -> Result<String, Exit> {
    if let Some(m) = &args.model {
        return Ok(m.clone());
    }
    if let Some(m) = manifest.map(|m| &m.test.model).filter(|m| !m.is_empty()) {
        return Ok(m.clone());
    }
    let history =
        riptide_checker::load_history(&dir.join(files::HISTORY), riptide_checker::Format::Jsonl)
            .map_err(|e| Exit::bad_args(format!("cannot read the history: {e}")))?;
    Ok(riptide_checker::default_model(&history).to_string())
}

/// Whether the stored run ended with a leader after healing; unknown counts as yes (nothing
/// says it did not, and the summary would otherwise print a false warning).
fn recovered(dir: &Path) -> bool {
    Results::load(dir).map_or(true, |r| r.cluster_recovered)
}

/// The run's `test.json`: none if it is missing; a damaged one is a warning, and the run is
/// analyzed as a bare history.
fn manifest(dir: &Path) -> Option<Manifest> {
    if !dir.join(files::MANIFEST).exists() {
        return None;
    }
    Manifest::load(dir)
        .map_err(|err| eprintln!("riptide: warning: {err}; analyzing the history alone"))
        .ok()
}

/// Runs `riptide analyze`. Returns the verdict's exit code.
pub fn analyze(args: AnalyzeArgs) -> Result<u8, Exit> {
    let dir = resolve(&args)?;
    let manifest = manifest(&dir);
    let model = model(&args, manifest.as_ref(), &dir)?;
    let limit = args
        .time_limit
        .or(manifest
            .as_ref()
            .map(|m| m.test.check_time_limit_s)
            .filter(|&s| s > 0.0))
        .unwrap_or(DEFAULT_TIME_LIMIT_S);
    // A run that did not finish (interrupted, crashed, still running) has a partial history.
    let interrupted = manifest
        .as_ref()
        .is_some_and(|m| m.status != RunStatus::Complete);
    eprintln!(
        "riptide: analyzing {} with model {model}, time limit {limit} s",
        dir.display()
    );
    let code = crate::judge::judge_run(
        &dir,
        &model,
        Duration::from_secs_f64(limit),
        interrupted,
        recovered(&dir),
    )
    .map_err(|e| {
        let exit = Exit::from(e);
        // A history the checker cannot read is bad input, not a crash of riptide.
        Exit::bad_args(exit.message)
    })?;
    if let Some(results) = store_of(&dir, &args.results_dir) {
        if let Err(err) = riptide_report::index::write_index(&results) {
            eprintln!("riptide: warning: cannot rewrite the index: {err:#}");
        }
    }
    Ok(code)
}

/// The results store a run folder belongs to: its grandparent, if that is `--results-dir` or
/// looks like a store (has `latest` or `index.html`). A history kept anywhere else is analyzed
/// without writing an index into some unrelated folder.
fn store_of(dir: &Path, results_dir: &Path) -> Option<PathBuf> {
    let store = dir.parent()?.parent()?;
    let named = results_dir.canonicalize().is_ok_and(|r| r == store);
    let looks_like =
        store.join("index.html").is_file() || store.join("latest").symlink_metadata().is_ok();
    (named || looks_like).then(|| store.to_path_buf())
}
