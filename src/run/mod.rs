//! `riptide test`: one run from start to stored verdict.
//!
//! 1. Check the options (bad ones exit 254 before anything starts).
//! 2. Enter the sandbox, a private network namespace, before any thread exists, and settle the
//!    faults this machine can do ([`faults`]: without `--nemesis`, all of them, or kill and
//!    pause where iptables or namespaces are missing; without power cuts where FUSE is).
//! 3. Create the run folder, write `test.json` (status `running`).
//! 4. Then [`steps`], in order: start the nodes and wait for a leader; start the faults; drive
//!    the workload for the time limit (every op and every fault goes to `history.jsonl` as it
//!    happens); heal everything and wait for a leader; read every key once more; stop the nodes;
//!    judge the history and store `results.json`.
//! 5. Remove the nodes' data dirs if `--keep-data` says so ([`keep_data`]: by default when the
//!    run is valid and complete), mark `test.json` complete (or incomplete, or crashed), point
//!    `results/latest` here and rewrite `results/index.html`.
//!
//! Ctrl-C (or SIGTERM) ends the workload early; the run still heals, reads, checks and is
//! stored, marked `incomplete`. A second Ctrl-C skips the final reads ([`interrupts`]).

mod faults;
mod folder;
mod interrupts;
pub mod keep_data;
mod live_check;
pub mod options;
mod progress;
pub(crate) mod replicas;
mod steps;
mod view;

use riptide_store::layout;

use crate::cluster::NodeProgram;
use crate::exit::Exit;
use folder::RunFolder;
use options::TestArgs;
use riptide_store::RunStatus;

/// Runs `riptide test`. Returns the exit code (0 valid, 1 invalid, 2 unknown).
pub fn test(args: TestArgs) -> Result<u8, Exit> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut plan = args.plan(seed)?;
    let program = NodeProgram::resolve(plan.node_bin.as_deref())?;
    layout::prepare_results_dir(&plan.results_dir)?;
    let sandbox = faults::enter_sandbox(&mut plan)?;
    let firewall = faults::check_faults(&mut plan, sandbox.as_ref())?;
    faults::check_disks(&mut plan, sandbox.as_ref())?;
    let run = RunFolder::create(plan, program, sandbox)?;
    finish(&run, steps::execute(&run, firewall))
}

/// Stores how the run ended; a crash keeps everything recorded so far and says where it is.
fn finish(run: &RunFolder, outcome: anyhow::Result<steps::Outcome>) -> Result<u8, Exit> {
    let result = match outcome {
        Ok(outcome) => {
            println!("rerun     {}", run.rerun());
            let status = if outcome.interrupted {
                RunStatus::Incomplete
            } else {
                RunStatus::Complete
            };
            tidy_node_data(run, &outcome);
            run.write_manifest(status, None);
            Ok(outcome.exit_code)
        }
        Err(err) => {
            let exit = Exit::from(err);
            run.write_manifest(RunStatus::Crashed, Some(exit.message.clone()));
            tracing::error!("run failed: {}", exit.message);
            Err(Exit {
                code: exit.code,
                message: format!(
                    "{} (the run so far is in {})",
                    exit.message,
                    run.dir.display()
                ),
            })
        }
    };
    let _ = layout::update_latest(&run.plan.results_dir, &run.dir);
    run.rewrite_index();
    result
}

/// `--keep-data`: once the verdict is stored, a valid complete run's node data dirs go (by
/// default), and the summary says so.
fn tidy_node_data(run: &RunFolder, outcome: &steps::Outcome) {
    let valid = outcome.exit_code == 0;
    if !run.plan.keep_data.removes(valid, !outcome.interrupted) {
        return;
    }
    let freed = keep_data::remove_node_data(&run.dir);
    run.node_data_removed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let why = if valid {
        "the run is valid; --keep-data always keeps them"
    } else {
        "--keep-data never"
    };
    println!(
        "data      node data dirs removed, {} freed ({why}); history, results and logs kept",
        riptide_store::prune::human_bytes(freed)
    );
}
