//! The run's folder while it runs: created with `test.json` (status `running`) and the runner's
//! log, rewritten as the run ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use riptide_nemesis::Sandbox;
use riptide_store::{layout, Manifest, RunStatus};

use super::options::RunPlan;
use crate::cluster::NodeProgram;
use crate::exit::Exit;

pub struct RunFolder {
    pub dir: PathBuf,
    pub plan: RunPlan,
    pub program: NodeProgram,
    pub sandbox: Option<Sandbox>,
    pub started_at: String,
    /// `--keep-data` removed the nodes' data dirs (recorded in `test.json`).
    pub node_data_removed: AtomicBool,
}

impl RunFolder {
    /// Creates `results/<name>/<timestamp>/`, writes `test.json` and starts `riptide.log`.
    pub fn create(
        plan: RunPlan,
        program: NodeProgram,
        sandbox: Option<Sandbox>,
    ) -> Result<RunFolder, Exit> {
        let now = layout::now_unix();
        let dir = layout::create_run_dir(&plan.results_dir, &plan.test.name, now)?;
        let run = RunFolder {
            dir,
            plan,
            program,
            sandbox,
            started_at: layout::timestamp(now),
            node_data_removed: AtomicBool::new(false),
        };
        run.write_manifest(RunStatus::Running, None);
        if let Some(file) = &run.plan.announce_run_dir {
            std::fs::write(file, run.dir.as_os_str().as_encoded_bytes())
                .map_err(|e| Exit::bad_args(format!("cannot write {}: {e}", file.display())))?;
        }
        init_run_log(&run.dir.join(riptide_store::files::RUN_LOG));
        eprintln!(
            "riptide: test {} with seed {} -> {}",
            run.plan.test.name,
            run.plan.test.seed,
            run.dir.display()
        );
        tracing::info!(seed = run.plan.test.seed, dir = %run.dir.display(), "starting run");
        Ok(run)
    }

    /// The command that repeats this run: the plan's, plus the node binary if it was not
    /// riptide's own (a rerun without it would test another node).
    pub fn rerun(&self) -> String {
        let mut rerun = self.plan.test.rerun_command();
        if let NodeProgram::Binary(path) = &self.program {
            rerun.push_str(&format!(" --node-bin {}", path.display()));
        }
        rerun
    }

    /// (Re)writes `test.json`; a failure is reported, never fatal (the history matters more).
    pub fn write_manifest(&self, status: RunStatus, error: Option<String>) {
        let manifest = Manifest {
            version: env!("CARGO_PKG_VERSION").to_string(),
            command: std::env::args().collect(),
            node_program: self.program.describe(),
            sandbox: self.sandbox.as_ref().map(|s| format!("{:?}", s.mode())),
            started_at: self.started_at.clone(),
            status,
            error,
            rerun: self.rerun(),
            node_data_removed: self.node_data_removed.load(Ordering::SeqCst),
            ..Manifest::new(self.plan.test.clone())
        };
        if let Err(err) = manifest.store(&self.dir) {
            eprintln!("riptide: {err}");
        }
    }

    /// `results/index.html` lists every run; a failure to rewrite it is only a warning.
    pub fn rewrite_index(&self) {
        let results = &self.plan.results_dir;
        if let Err(err) = riptide_report::index::write_index(results) {
            eprintln!(
                "riptide: warning: cannot rewrite {}/index.html: {err:#}",
                results.display()
            );
        }
    }
}

fn init_run_log(path: &Path) {
    if let Ok(file) = std::fs::File::create(path) {
        let filter = tracing_subscriber::EnvFilter::try_from_env("RIPTIDE_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(Mutex::new(file))
            .try_init();
    }
}
