//! The steps of a run, in the order [`execute`] takes them:
//!
//! 1. [`start_cluster`]: start the nodes under the supervisor, wait for a leader;
//! 2. [`start_faults`]: the nemesis on its own thread, recording every fault in the history;
//! 3. [`drive_workload`]: the clients for the time limit (or until Ctrl-C), with the progress bar,
//!    while [`LiveChecker`] checks every key the workload has finished with (and with
//!    `--stop-on-invalid` ends the workload at the first invalid one);
//! 4. [`heal`]: stop the faults, heal everything, restart nodes that died, wait for a leader;
//! 5. [`final_reads`]: read every key once more, so a lost write shows in the history;
//! 6. [`compare_replicas`]: every node's state machine digest at one applied index, stored in
//!    `replicas.json` ([`super::replicas`]): a replica that diverged shows even if no client read
//!    from it;
//! 7. [`stop`]: stop the nodes (exact pids), make the history durable;
//! 8. judge: check the history and the replicas, write `results.json` and the reports
//!    ([`crate::judge`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use riptide_nemesis::{
    Firewall, Nemesis, NemesisConfig, NemesisEvent, Phase, Shutdown, Supervisor,
};
use riptide_proto::NodeId;
use riptide_store::{files, history::FINAL_READ_BASE};
use riptide_workload::{DriverOptions, Generator, GeneratorOptions, Recorder, Roster};

use super::folder::RunFolder;
use super::interrupts::Interrupts;
use super::live_check::LiveChecker;
use super::progress::Progress;
use super::view::{RunView, CLIENT_ADDR};
use crate::cluster::disks::RunDisks;
use crate::cluster::{self, status, ClusterPlan};

/// How long the nodes have to elect a first leader before the run starts. A correct cluster
/// on one machine elects in well under a second (timeouts of 150–300 ms); one that has not
/// after this long, with every node running, is not the bench's failure but the cluster's: the
/// run goes on without a leader, and the liveness verdict judges what the clients got (a node
/// that *exited* meanwhile still ends the run, with the tail of its log).
const ELECTION_AT_START: Duration = Duration::from_secs(15);

/// How a run that was carried out ended.
pub struct Outcome {
    /// The verdict's exit code: 0 valid, 1 invalid, 2 unknown.
    pub exit_code: u8,
    /// Ctrl-C ended the workload before its time limit.
    pub interrupted: bool,
}

/// What the steps share once the cluster is up.
struct Session<'a> {
    run: &'a RunFolder,
    nodes_dir: PathBuf,
    /// How the nodes are laid out and started (new ones too).
    cluster: ClusterPlan,
    /// The members now: the planned nodes until the membership nemesis changes them.
    roster: Roster,
    supervisor: Arc<Supervisor>,
    /// The nodes' disks (faultfs mounts with power cuts in the spec).
    disks: Arc<RunDisks>,
    /// The leader when the cluster came up (`None`: none within [`ELECTION_AT_START`]).
    leader: Option<NodeId>,
    /// The run's clock starts when the history does.
    start: Instant,
    history: Arc<Recorder>,
    runtime: tokio::runtime::Runtime,
    shutdown: Shutdown,
    interrupts: Interrupts,
    generator: Arc<Mutex<Generator>>,
}

/// Carries out the run in `run`'s folder, from the first node started to the stored verdict.
pub fn execute(run: &RunFolder, firewall: Option<Firewall>) -> anyhow::Result<Outcome> {
    let session = start_cluster(run)?;
    let nemesis = start_faults(&session, firewall)?;
    let nemesis_thread = nemesis.as_ref().map(|n| spawn_nemesis(&session, n.clone()));
    let live = LiveChecker::spawn(
        session.run.dir.join(files::HISTORY),
        session.run.plan.test.model.parse().ok(),
        session.generator.clone(),
        session.start,
        session.run.plan.test.stop_on_invalid,
    );
    let stopped_run = drive_workload(&session, nemesis.as_deref(), &live);
    let mut live = live.finish();
    live.stopped_run = stopped_run;
    if let Err(err) = live.store(&session.run.dir) {
        eprintln!("riptide: warning: cannot store the live check: {err:#}");
    }
    let interrupted = session.interrupts.stop_workload();
    let (recovered, up) = heal(&session, nemesis.as_deref(), nemesis_thread);
    if !session.interrupts.skip_final_reads() {
        final_reads(&session);
        compare_replicas(&session, &up);
    }
    drop(nemesis);
    stop(session)?;
    let plan = &run.plan.test;
    let exit_code = crate::judge::judge_run(
        &run.dir,
        &plan.model,
        Duration::from_secs_f64(plan.check_time_limit_s),
        interrupted,
        recovered,
    )?;
    Ok(Outcome {
        exit_code,
        interrupted,
    })
}

/// Step 1: the nodes, a leader, the history file, the runtime and the interrupt handler.
fn start_cluster(run: &RunFolder) -> anyhow::Result<Session<'_>> {
    let plan = &run.plan;
    let nodes_dir = run.dir.join(files::NODES);
    let cluster = ClusterPlan {
        nodes: plan.test.nodes,
        port: plan.test.port,
        program: run.program.clone(),
        dir: nodes_dir.clone(),
        seed: plan.test.seed,
        unsafe_bugs: plan.unsafe_bugs(),
        log_filter: plan.test.node_log.clone(),
        node_args: plan.node_args(),
    };
    let addrs = cluster.addrs();
    let ids: Vec<NodeId> = addrs.iter().map(|(id, _)| *id).collect();
    let disks = Arc::new(match (plan.nemesis.needs_fuse(), run.sandbox.as_ref()) {
        (true, Some(sandbox)) => RunDisks::mount(&nodes_dir, &ids, sandbox)?,
        (true, None) => anyhow::bail!("power-cut needs the run's sandbox to mount faultfs in"),
        (false, _) => RunDisks::plain(&nodes_dir, &ids)?,
    });
    let supervisor = Arc::new(Supervisor::new().context("cannot start the node supervisor")?);
    cluster.start_on(&supervisor, |id| {
        disks
            .node_data_dir(id)
            .unwrap_or_else(|| cluster.data_dir(id))
    })?;
    let leader = match cluster::wait_for_leader(&addrs, &supervisor, &nodes_dir, ELECTION_AT_START)
    {
        Ok(leader) => {
            tracing::info!(leader, "cluster is up");
            Some(leader)
        }
        Err(err) => match err.downcast_ref::<cluster::NoLeader>() {
            Some(no_leader) => {
                eprintln!(
                    "riptide: {no_leader}. Every node is running, so the run goes on: the clients \
                     will be refused until one leads, and the liveness check judges the cluster \
                     on what it served"
                );
                tracing::warn!("{no_leader}; the run goes on without a leader");
                None
            }
            None => return Err(err),
        },
    };

    let start = Instant::now();
    let history = Arc::new(
        Recorder::create(&run.dir.join(files::HISTORY), start)
            .context("cannot create history.jsonl")?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let shutdown = Shutdown::new();
    let interrupts = Interrupts::listen(&runtime, shutdown.clone());
    let generator = Arc::new(Mutex::new(Generator::new(GeneratorOptions {
        kind: plan.workload,
        ops_per_key: plan.test.ops_per_key,
        live_keys: plan.test.live_keys,
        seed: plan.test.seed,
    })));
    Ok(Session {
        run,
        nodes_dir,
        cluster,
        roster: Roster::new(addrs),
        supervisor,
        disks,
        leader,
        start,
        history,
        runtime,
        shutdown,
        interrupts,
        generator,
    })
}

/// Step 2: the nemesis, if the run has faults. It asks the cluster who leads (faults aimed at
/// the leader) through the status probe, and hands leadership over (transfer-leader) through
/// an admin request ([`RunView`]).
fn start_faults(
    session: &Session,
    firewall: Option<Firewall>,
) -> anyhow::Result<Option<Arc<Nemesis>>> {
    let plan = &session.run.plan;
    if plan.nemesis.is_empty() {
        return Ok(None);
    }
    let view = Arc::new(RunView {
        roster: session.roster.clone(),
        cluster: session.cluster.clone(),
        disks: session.disks.clone(),
    });
    let config = NemesisConfig {
        seed: plan.test.seed,
        spec: plan.nemesis.clone(),
        interval: Duration::from_secs_f64(plan.test.nemesis_interval_s),
        overlap: plan.test.nemesis_overlap,
        jitter: plan.test.nemesis_jitter,
        deck: plan.test.nemesis_deck,
    };
    let nemesis = Nemesis::new(config, session.supervisor.clone(), firewall, view.clone())?
        .with_disks(session.disks.clone())
        .with_operator(view);
    Ok(Some(Arc::new(nemesis)))
}

/// The nemesis thread: faults on schedule until the shutdown, each recorded as it happens.
fn spawn_nemesis(session: &Session, nemesis: Arc<Nemesis>) -> JoinHandle<()> {
    let (shutdown, history) = (session.shutdown.clone(), session.history.clone());
    std::thread::Builder::new()
        .name("riptide-nemesis".into())
        .spawn(move || {
            nemesis.run(&shutdown, &mut |event| {
                tracing::info!(f = event.f.as_str(), value = %event.value(), "nemesis");
                history.nemesis(event.f.as_str(), event.value());
            })
        })
        .expect("spawn the nemesis thread")
}

/// Step 3: the clients, for the time limit or until Ctrl-C, with the progress bar (which shows
/// the leader, polled twice a second, and the fault in place).
/// Returns whether `--stop-on-invalid` ended it.
fn drive_workload(session: &Session, nemesis: Option<&Nemesis>, live: &LiveChecker) -> bool {
    let stop_on_invalid = session.run.plan.test.stop_on_invalid;
    let mut stopped_run = false;
    let plan = &session.run.plan;
    let driver = DriverOptions {
        nodes: session.roster.nodes(),
        concurrency: plan.test.concurrency,
        rate: plan.test.rate,
        op_timeout: Duration::from_millis(plan.test.op_timeout_ms),
        op_timeout_long: (plan.test.op_timeout_long_ms > 0)
            .then(|| Duration::from_millis(plan.test.op_timeout_long_ms)),
        bind: Some(CLIENT_ADDR),
        workload: plan.workload,
        retry_indeterminate: plan.test.retry_indeterminate,
        roster: Some(session.roster.clone()),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let progress = Progress::new(plan.time_limit(), plan.no_progress);
    session.runtime.block_on(async {
        let workers = tokio::spawn(riptide_workload::run_workers(
            driver,
            session.generator.clone(),
            session.history.clone(),
            stop.clone(),
        ));
        let leader_now = Arc::new(Mutex::new(session.leader));
        let poller = tokio::spawn(poll_leader(session.roster.clone(), leader_now.clone()));
        while session.start.elapsed() < plan.time_limit() && !session.interrupts.stop_workload() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if stop_on_invalid && live.found_invalid() {
                eprintln!(
                    "\nriptide: a key is not linearizable ({:.1} s into the run); \
                     --stop-on-invalid: stopping the run",
                    session.start.elapsed().as_secs_f64()
                );
                stopped_run = true;
                break;
            }
            let active = nemesis.and_then(|n| n.active()).map(|p| fault_label(&p));
            progress.update(
                session.start.elapsed(),
                &session.history.stats(),
                *leader_now.lock().unwrap(),
                active.as_deref(),
            );
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = workers.await;
        poller.abort();
    });
    progress.finish();
    stopped_run
}

/// Who leads, for the progress bar, every half second.
async fn poll_leader(roster: Roster, leader_now: Arc<Mutex<Option<NodeId>>>) {
    loop {
        let addrs = roster.nodes();
        let found =
            tokio::task::spawn_blocking(move || status::leader(&addrs, Duration::from_millis(200)))
                .await
                .ok()
                .flatten();
        *leader_now.lock().unwrap() = found.map(|(id, _)| id);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The fault in place, labelled as the reports label it (`kill n3`, `partition majority n1 | n2,n3`).
fn fault_label(plan: &riptide_nemesis::Plan) -> String {
    let value = NemesisEvent::describe(plan, Phase::Start).value();
    let fault = value
        .get("fault")
        .and_then(|f| f.as_str())
        .unwrap_or("fault");
    riptide_store::history::fault_label(fault, &value)
}

/// Step 4: stop the nemesis, heal every fault (recorded), restart nodes that exited on their
/// own, and wait for a leader. Returns whether the cluster recovered, and the nodes that are up
/// (all but those that refused to start).
fn heal(
    session: &Session,
    nemesis: Option<&Nemesis>,
    thread: Option<JoinHandle<()>>,
) -> (bool, Vec<(NodeId, SocketAddr)>) {
    session.shutdown.trigger();
    if let Some(thread) = thread {
        let _ = thread.join();
    }
    if let Some(nemesis) = nemesis {
        for event in nemesis.heal_faults() {
            session.history.nemesis(event.f.as_str(), event.value());
        }
    }
    // Before the voters' restore, which needs a leader: nodes that exited on their own (a
    // bug's crash, a refused restart) are back first, or the restore works with a cluster
    // short of them and may wait out its whole deadline.
    let refused = restart_exited(session);
    if let Some(event) = nemesis.and_then(Nemesis::restore_membership) {
        session.history.nemesis(event.f.as_str(), event.value());
    }
    let up: Vec<(NodeId, SocketAddr)> = session
        .roster
        .nodes()
        .iter()
        .filter(|(id, _)| !refused.contains(id))
        .copied()
        .collect();
    let recovered = cluster::wait_for_leader(
        &up,
        &session.supervisor,
        &session.nodes_dir,
        session.run.plan.recovery_timeout(),
    );
    if let Err(err) = &recovered {
        eprintln!("riptide: the cluster did not recover after healing: {err:#}");
    }
    (recovered.is_ok(), up)
}

/// A node that exited on its own during the run is restarted for the final reads. One that
/// exits again at once (a node refusing its damaged data dir after a disk fault: riptide-node
/// exits with code 3 then) stays down, recorded in the history, so in the summary, with what it
/// said last. Returns those nodes.
fn restart_exited(session: &Session) -> Vec<NodeId> {
    let mut restarted = Vec::new();
    for status in session.supervisor.statuses() {
        if let riptide_nemesis::NodeState::Exited { .. } = status.state {
            tracing::warn!(
                node = status.id,
                "node exited on its own during the run; restarting it for the final reads"
            );
            if session.supervisor.restart(status.id).is_ok() {
                restarted.push(status.id);
            }
        }
    }
    if restarted.is_empty() {
        return Vec::new();
    }
    std::thread::sleep(REFUSAL_WATCH);
    let mut down = Vec::new();
    for status in session.supervisor.statuses() {
        if !restarted.contains(&status.id) {
            continue;
        }
        let riptide_nemesis::NodeState::Exited { .. } = status.state else {
            continue;
        };
        let log = session.nodes_dir.join(format!("n{}.log", status.id));
        let refusal = riptide_nemesis::disk::refusal(&status.state, Some(&log));
        eprintln!(
            "riptide: node {} exited again at once ({}) and stays down: {}",
            status.id,
            status.state,
            refusal["said"].as_str().unwrap_or("")
        );
        session.history.nemesis(
            "stop",
            serde_json::json!({
                "fault": "heal",
                "nodes": [status.id],
                "disks": { status.id.to_string(): refusal },
                "note": format!("node {} refused to start and stays down", status.id),
            }),
        );
        down.push(status.id);
    }
    down
}

/// How long a node restarted for the final reads is watched for exiting again.
const REFUSAL_WATCH: Duration = Duration::from_secs(1);

/// Step 5: one more read of every key the workload touched, by processes of their own.
fn final_reads(session: &Session) {
    let plan = &session.run.plan;
    let keys = session.generator.lock().unwrap().keys();
    let reads = riptide_workload::FinalReads {
        nodes: session.roster.nodes(),
        bind: Some(CLIENT_ADDR),
        workload: plan.workload,
        keys,
        first_process: FINAL_READ_BASE,
        deadline: plan.recovery_timeout(),
        parallel: plan.test.concurrency.min(16),
    };
    let history = session.history.clone();
    let (ok, failed) = session
        .runtime
        .block_on(riptide_workload::final_reads(reads, history));
    tracing::info!(ok, failed, "final reads");
    if failed > 0 {
        eprintln!("riptide: {failed} final read(s) got no answer");
    }
}

/// Step 6: the replicas compared, and the comparison stored for the judge.
fn compare_replicas(session: &Session, up: &[(NodeId, SocketAddr)]) {
    let check = super::replicas::compare(up, session.run.plan.recovery_timeout());
    tracing::info!(outcome = ?check.outcome, note = %check.note, "replicas compared");
    if let Err(err) = check.store(&session.run.dir) {
        eprintln!("riptide: warning: cannot store the replica comparison: {err:#}");
    }
}

/// Step 7: the nodes stop, the history is made durable and checked for write errors.
fn stop(session: Session) -> anyhow::Result<()> {
    session.supervisor.shutdown();
    session.disks.unmount();
    session
        .history
        .sync()
        .context("cannot sync history.jsonl")?;
    if let Some(err) = session.history.write_error() {
        anyhow::bail!("writing history.jsonl failed: {err}");
    }
    session.runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}
