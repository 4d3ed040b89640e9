//! `riptide test`: one run from start to stored verdict.
//!
//! 1. Check the options (bad ones exit 254 before anything starts).
//! 2. Enter the sandbox, a private network namespace, before any thread exists.
//! 3. Create the run folder, write `test.json` (status `running`).
//! 4. Start the nodes under the supervisor and wait for a leader.
//! 5. Run the workload for the time limit while the nemesis injects faults; every op and every
//!    fault goes to `history.jsonl` as it happens.
//! 6. Stop the faults, heal everything, wait for a leader, read every key once more.
//! 7. Stop the nodes, check the history, write `results.json`, point `results/latest` here.
//!
//! Ctrl-C (or SIGTERM) ends step 5 early; the run still heals, reads, checks and is stored,
//! marked `incomplete`. A second Ctrl-C skips the final reads.

pub mod options;
mod progress;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use riptide_nemesis::{
    sandbox, ClusterView, Firewall, Nemesis, NemesisConfig, Sandbox, Shutdown, Supervisor,
};
use riptide_workload::{DriverOptions, Generator, GeneratorOptions, History};
use serde::Serialize;

use crate::exit::Exit;
use crate::local_cluster::{self, ClusterPlan, NodeProgram};
use crate::store;
use options::{TestArgs, TestPlan};

/// The address clients connect from: outside every partition, which only cuts node-to-node links.
const CLIENT_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// `test.json`: how the run was started and how far it got.
#[derive(Serialize)]
struct Manifest<'a> {
    test: &'a TestPlan,
    version: &'static str,
    /// The command as typed.
    command: Vec<String>,
    /// A command that repeats this run, seed included.
    rerun: String,
    node_program: String,
    sandbox: Option<String>,
    started_at: String,
    /// `running`, `complete`, `incomplete` (interrupted) or `crashed`.
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

struct Run {
    dir: PathBuf,
    plan: TestPlan,
    program: NodeProgram,
    sandbox: Option<Sandbox>,
    started_at: String,
}

impl Run {
    fn write_manifest(&self, status: &str, error: Option<String>) {
        let manifest = Manifest {
            test: &self.plan,
            version: env!("CARGO_PKG_VERSION"),
            command: std::env::args().collect(),
            rerun: self.plan.rerun_command(),
            node_program: self.program.describe(),
            sandbox: self.sandbox.as_ref().map(|s| format!("{:?}", s.mode())),
            started_at: self.started_at.clone(),
            status,
            error,
        };
        if let Err(err) = store::write_json(&self.dir.join("test.json"), &manifest) {
            eprintln!("riptide: cannot write test.json: {err}");
        }
    }
}

/// Runs `riptide test`. Returns the exit code (0 valid, 1 invalid, 2 unknown).
pub fn test(args: TestArgs) -> Result<u8, Exit> {
    let seed = args.seed.unwrap_or_else(rand::random);
    let plan = args.plan(seed)?;
    let program = NodeProgram::resolve(plan.node_bin.as_deref())?;
    store::prepare_results_dir(&plan.results_dir)?;

    // Before any thread: the private network namespace.
    let sandbox = match sandbox::enter() {
        Ok(sandbox) => Some(sandbox),
        Err(err) if plan.nemesis_spec.needs_network() => {
            return Err(Exit::bad_args(format!(
                "--nemesis {} needs a network sandbox: {err}",
                plan.nemesis
            )));
        }
        Err(err) => {
            eprintln!("riptide: warning: {err}; running on the host's loopback without isolation");
            None
        }
    };

    // Everything the faults need is checked before anything starts: a missing iptables, or a
    // fault that cannot be built on this many nodes, is a bad argument, not a crashed run.
    let bad_nemesis =
        |e: riptide_nemesis::Error| Exit::bad_args(format!("--nemesis {}: {e}", plan.nemesis));
    let firewall = match (&sandbox, plan.nemesis_spec.needs_network()) {
        (Some(sandbox), true) => Some(Firewall::install(sandbox).map_err(bad_nemesis)?),
        _ => None,
    };
    let ids: Vec<u64> = (1..=plan.nodes as u64).collect();
    riptide_nemesis::Schedule::new(plan.seed, &plan.nemesis_spec, &ids).map_err(bad_nemesis)?;

    let now = store::now_unix();
    let dir = store::create_run_dir(&plan.results_dir, &plan.name, now)?;
    let run = Run {
        dir,
        plan,
        program,
        sandbox,
        started_at: store::timestamp(now),
    };
    run.write_manifest("running", None);
    init_run_log(&run.dir.join("riptide.log"));
    eprintln!(
        "riptide: test {} with seed {} -> {}",
        run.plan.name,
        run.plan.seed,
        run.dir.display()
    );
    tracing::info!(seed = run.plan.seed, dir = %run.dir.display(), "starting run");

    match execute(&run, firewall) {
        Ok(outcome) => {
            println!("rerun     {}", run.plan.rerun_command());
            run.write_manifest(
                if outcome.interrupted {
                    "incomplete"
                } else {
                    "complete"
                },
                None,
            );
            let _ = store::update_latest(&run.plan.results_dir, &run.dir);
            rewrite_index(&run.plan.results_dir);
            Ok(outcome.exit_code)
        }
        Err(err) => {
            let exit = Exit::from(err);
            run.write_manifest("crashed", Some(exit.message.clone()));
            let _ = store::update_latest(&run.plan.results_dir, &run.dir);
            rewrite_index(&run.plan.results_dir);
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
    }
}

/// `results/index.html` lists every run; a failure to rewrite it is only a warning.
fn rewrite_index(results: &Path) {
    if let Err(err) = crate::report::index::write_index(results) {
        eprintln!(
            "riptide: warning: cannot rewrite {}/index.html: {err:#}",
            results.display()
        );
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

struct Outcome {
    exit_code: u8,
    interrupted: bool,
}

fn execute(run: &Run, firewall: Option<Firewall>) -> anyhow::Result<Outcome> {
    let plan = &run.plan;
    let nodes_dir = run.dir.join("nodes");
    let cluster = ClusterPlan {
        nodes: plan.nodes,
        port: plan.port,
        program: run.program.clone(),
        dir: nodes_dir.clone(),
        seed: plan.seed,
        unsafe_bugs: plan.unsafe_bugs(),
        log_filter: plan.node_log.clone(),
    };
    let addrs = cluster.addrs();
    let supervisor = Arc::new(Supervisor::new().context("cannot start the node supervisor")?);
    cluster.start(&supervisor)?;
    let leader =
        local_cluster::wait_for_leader(&addrs, &supervisor, &nodes_dir, Duration::from_secs(15))?;
    tracing::info!(leader, "cluster is up");

    // The faults.
    let view_addrs = addrs.clone();
    let view: Arc<dyn ClusterView> = Arc::new(move || {
        crate::node_status::leader(&view_addrs, Duration::from_millis(200)).map(|(id, _)| id)
    });
    let nemesis = if plan.nemesis_spec.is_empty() {
        None
    } else {
        let config = NemesisConfig {
            seed: plan.seed,
            spec: plan.nemesis_spec.clone(),
            interval: Duration::from_secs_f64(plan.nemesis_interval_s),
            overlap: plan.nemesis_overlap,
        };
        Some(Arc::new(Nemesis::new(
            config,
            supervisor.clone(),
            firewall,
            view,
        )?))
    };

    let start = Instant::now();
    let history = Arc::new(
        History::create(&run.dir.join("history.jsonl"), start)
            .context("cannot create history.jsonl")?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;

    // Ctrl-C / SIGTERM: the first ends the workload early, the second skips the final reads.
    let interrupts = Arc::new(AtomicU8::new(0));
    let shutdown = Shutdown::new();
    {
        let (interrupts, shutdown) = (interrupts.clone(), shutdown.clone());
        runtime.spawn(async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            loop {
                tokio::select! {
                    r = tokio::signal::ctrl_c() => if r.is_err() { return },
                    _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                }
                let n = interrupts.fetch_add(1, Ordering::SeqCst) + 1;
                shutdown.trigger();
                eprintln!("\nriptide: interrupted ({n}); {}", if n == 1 { "stopping the run cleanly (Ctrl-C again to skip the final reads)" } else { "skipping the final reads" });
            }
        });
    }

    let nemesis_thread = nemesis.as_ref().map(|nemesis| {
        let (nemesis, shutdown, history) = (nemesis.clone(), shutdown.clone(), history.clone());
        std::thread::Builder::new()
            .name("riptide-nemesis".into())
            .spawn(move || {
                nemesis.run(&shutdown, &mut |event| {
                    tracing::info!(f = event.f.as_str(), value = %event.value(), "nemesis");
                    history.nemesis(event.f.as_str(), event.value());
                })
            })
            .expect("spawn the nemesis thread")
    });

    // The workload.
    let generator = Arc::new(Mutex::new(Generator::new(GeneratorOptions {
        kind: plan.workload,
        ops_per_key: plan.ops_per_key,
        live_keys: plan.live_keys,
        seed: plan.seed,
    })));
    let driver = DriverOptions {
        nodes: addrs.clone(),
        concurrency: plan.concurrency,
        rate: plan.rate,
        op_timeout: Duration::from_millis(plan.op_timeout_ms),
        bind: Some(CLIENT_ADDR),
        workload: plan.workload,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let progress = progress::Progress::new(plan.time_limit(), plan.no_progress);
    runtime.block_on(async {
        let workers = tokio::spawn(riptide_workload::run_workers(
            driver,
            generator.clone(),
            history.clone(),
            stop.clone(),
        ));
        let leader_now = Arc::new(Mutex::new(Some(leader)));
        let poller = {
            let (addrs, leader_now) = (addrs.clone(), leader_now.clone());
            tokio::spawn(async move {
                loop {
                    let addrs = addrs.clone();
                    let found = tokio::task::spawn_blocking(move || {
                        crate::node_status::leader(&addrs, Duration::from_millis(200))
                    })
                    .await
                    .ok()
                    .flatten();
                    *leader_now.lock().unwrap() = found.map(|(id, _)| id);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        };
        while start.elapsed() < plan.time_limit() && interrupts.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let active = nemesis
                .as_ref()
                .and_then(|n| n.active())
                .map(|p| describe_plan(&p));
            progress.update(
                start.elapsed(),
                &history.stats(),
                *leader_now.lock().unwrap(),
                active.as_deref(),
            );
        }
        stop.store(true, Ordering::SeqCst);
        let _ = workers.await;
        poller.abort();
    });
    progress.finish();
    let interrupted = interrupts.load(Ordering::SeqCst) > 0;

    // Heal everything and let the cluster recover.
    shutdown.trigger();
    if let Some(thread) = nemesis_thread {
        let _ = thread.join();
    }
    if let Some(nemesis) = &nemesis {
        for event in nemesis.heal_all() {
            history.nemesis(event.f.as_str(), event.value());
        }
    }
    for status in supervisor.statuses() {
        if let riptide_nemesis::NodeState::Exited { .. } = status.state {
            tracing::warn!(
                node = status.id,
                "node exited on its own during the run; restarting it for the final reads"
            );
            let _ = supervisor.restart(status.id);
        }
    }
    let recovered = local_cluster::wait_for_leader(
        &addrs,
        &supervisor,
        &nodes_dir,
        Duration::from_secs_f64(plan.recovery_timeout_s),
    );
    if let Err(err) = &recovered {
        eprintln!("riptide: the cluster did not recover after healing: {err:#}");
    }
    if interrupts.load(Ordering::SeqCst) < 2 {
        let keys = generator.lock().unwrap().keys();
        let first_process = crate::report::ops::FINAL_READ_BASE;
        let reads = riptide_workload::FinalReads {
            nodes: addrs.clone(),
            bind: Some(CLIENT_ADDR),
            workload: plan.workload,
            keys,
            first_process,
            deadline: Duration::from_secs_f64(plan.recovery_timeout_s),
            parallel: plan.concurrency.min(16),
        };
        let (ok, failed) = runtime.block_on(riptide_workload::final_reads(reads, history.clone()));
        tracing::info!(ok, failed, "final reads");
        if failed > 0 {
            eprintln!("riptide: {failed} final read(s) got no answer");
        }
    }
    supervisor.shutdown();
    drop(nemesis);
    history.sync().context("cannot sync history.jsonl")?;
    if let Some(err) = history.write_error() {
        anyhow::bail!("writing history.jsonl failed: {err}");
    }
    runtime.shutdown_timeout(Duration::from_millis(200));

    // Judge and store.
    let verdict = crate::verdict::judge_run(
        &run.dir,
        plan.model,
        Duration::from_secs_f64(plan.check_time_limit_s),
        interrupted,
        recovered.is_ok(),
    )?;
    Ok(Outcome {
        exit_code: verdict,
        interrupted,
    })
}

/// A short label for the fault in place, for the progress line.
fn describe_plan(plan: &riptide_nemesis::Plan) -> String {
    use riptide_nemesis::Plan;
    let nodes = |ns: &[u64]| {
        ns.iter()
            .map(|n| format!("n{n}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    match plan {
        Plan::Kill { nodes: ns, .. } => format!("kill {}", nodes(ns)),
        Plan::Pause { nodes: ns, .. } => format!("pause {}", nodes(ns)),
        Plan::Partition(p) => {
            let groups: Vec<String> = p.groups.iter().map(|g| nodes(g)).collect();
            format!("partition {} {}", p.kind.name(), groups.join(" | "))
        }
        Plan::Loss {
            nodes: ns,
            probability,
            ..
        } => format!("loss {:.0}% {}", probability * 100.0, nodes(ns)),
    }
}
