//! `riptide test`: one run from start to stored verdict.
//!
//! 1. Check the options (bad ones exit 254 before anything starts).
//! 2. Enter the sandbox, a private network namespace, before any thread exists.
//! 3. Create the run folder, write `test.json` (status `running`).
//! 4. Then [`steps`], in order: start the nodes and wait for a leader; start the faults; drive
//!    the workload for the time limit (every op and every fault goes to `history.jsonl` as it
//!    happens); heal everything and wait for a leader; read every key once more; stop the nodes;
//!    judge the history and store `results.json`.
//! 5. Mark `test.json` complete (or incomplete, or crashed), point `results/latest` here and
//!    rewrite `results/index.html`.
//!
//! Ctrl-C (or SIGTERM) ends the workload early; the run still heals, reads, checks and is
//! stored, marked `incomplete`. A second Ctrl-C skips the final reads ([`interrupts`]).

mod folder;
mod interrupts;
pub mod options;
mod progress;
pub(crate) mod replicas;
mod steps;

use riptide_nemesis::{sandbox, Firewall, Sandbox};
use riptide_store::layout;

use crate::cluster::NodeProgram;
use crate::exit::Exit;
use folder::RunFolder;
use options::{RunPlan, TestArgs};
use riptide_store::RunStatus;

/// Runs `riptide test`. Returns the exit code (0 valid, 1 invalid, 2 unknown).
pub fn test(args: TestArgs) -> Result<u8, Exit> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let plan = args.plan(seed)?;
    let program = NodeProgram::resolve(plan.node_bin.as_deref())?;
    layout::prepare_results_dir(&plan.results_dir)?;
    let sandbox = enter_sandbox(&plan)?;
    let firewall = check_faults(&plan, sandbox.as_ref())?;
    let run = RunFolder::create(plan, program, sandbox)?;
    finish(&run, steps::execute(&run, firewall))
}

/// The private network namespace; without one (no root, no user namespaces) only a run with no
/// network faults may go on, on the host's loopback.
fn enter_sandbox(plan: &RunPlan) -> Result<Option<Sandbox>, Exit> {
    match sandbox::enter() {
        Ok(sandbox) => Ok(Some(sandbox)),
        Err(err) if plan.nemesis.needs_network() => Err(Exit::bad_args(format!(
            "--nemesis {} needs a network sandbox: {err}",
            plan.test.nemesis
        ))),
        Err(err) => {
            eprintln!("riptide: warning: {err}; running on the host's loopback without isolation");
            Ok(None)
        }
    }
}

/// Everything the faults need, checked before anything starts: a missing iptables, or a fault
/// that cannot be built on this many nodes, is a bad argument, not a crashed run.
fn check_faults(plan: &RunPlan, sandbox: Option<&Sandbox>) -> Result<Option<Firewall>, Exit> {
    let bad_nemesis =
        |e: riptide_nemesis::Error| Exit::bad_args(format!("--nemesis {}: {e}", plan.test.nemesis));
    let firewall = match (sandbox, plan.nemesis.needs_network()) {
        (Some(sandbox), true) => Some(Firewall::install(sandbox).map_err(bad_nemesis)?),
        _ => None,
    };
    let ids: Vec<u64> = (1..=plan.test.nodes as u64).collect();
    riptide_nemesis::Schedule::new(plan.test.seed, &plan.nemesis, &ids).map_err(bad_nemesis)?;
    Ok(firewall)
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
