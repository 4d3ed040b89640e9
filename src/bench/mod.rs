//! `riptide bench`: the throughput, latency and CPU cost of a cluster under a closed-loop load,
//! riptide and etcd side by side; and `riptide bench failover` ([`failover`]).
//!
//! A sweep, in order:
//!
//! 1. Check the flags ([`plan`]); find `etcd` if it is a target. Bad ones exit 254.
//! 2. Enter a private network namespace when bench starts every cluster itself, so that its
//!    clusters never meet another run's on the same addresses (as `riptide test` does).
//! 3. Create `results/bench/<UTC stamp>/` ([`folder`]).
//! 4. For each target and node count: start the cluster (or connect to `--endpoints`), then
//!    for each repetition, value size, op and client count: preload every key once, find the
//!    leader, open the clients to it, warm up, measure ([`load`]), and read every node's CPU
//!    time and the generator's around the window ([`cpu`]). Repetitions are the outer loop, so
//!    that a slow minute of a shared machine spreads over every point instead of ruining one.
//! 5. Print one row per point (medians over the repetitions, [`report`]), the side-by-side
//!    table when there are two targets, and store `bench.json` and `throughput.svg` ([`plot`]).
//!
//! What it leaves out: the two targets run one after the other, not interleaved; clusters run
//! with their default settings; keys are uniform (no hot keys).

pub mod cpu;
mod etcd;
pub mod failover;
mod folder;
pub mod load;
pub mod plan;
mod plot;
pub mod report;
mod riptide;

use std::time::Duration;

use riptide_nemesis::{sandbox, Sandbox};
use serde::Serialize;

use crate::cluster::NodeProgram;
use crate::exit::Exit;
use folder::BenchFolder;
use load::{Load, Process, Session};
use plan::{Sweep, Target};
use report::{PointKey, Row};

/// How many clients preload the keys.
const PRELOAD_CLIENTS: usize = 64;
/// How long a cluster may go without a leader between two points.
const LEADER_WAIT: Duration = Duration::from_secs(10);

/// Enters the private network namespace; without one, says so and goes on on the host.
pub fn enter_sandbox() -> Option<Sandbox> {
    match sandbox::enter() {
        Ok(sandbox) => Some(sandbox),
        Err(err) => {
            eprintln!("riptide: warning: {err}; benchmarking on the host's loopback");
            None
        }
    }
}

/// A cluster under measurement.
enum Deployment {
    Riptide(riptide::RiptideCluster),
    Etcd(etcd::EtcdCluster),
}

impl Deployment {
    /// The leader's index into the cluster's nodes.
    fn leader(&self, rt: &tokio::runtime::Runtime) -> anyhow::Result<usize> {
        match self {
            Deployment::Riptide(c) => {
                let id = c.leader(LEADER_WAIT)?;
                Ok(c.nodes.iter().position(|(n, _)| *n == id).unwrap_or(0))
            }
            Deployment::Etcd(c) => rt.block_on(c.leader()),
        }
    }

    fn processes(&self, leader: usize) -> Vec<Process> {
        match self {
            Deployment::Riptide(c) => c.processes(c.nodes[leader].0),
            Deployment::Etcd(c) => c.processes(leader),
        }
    }

    fn sessions(
        &self,
        rt: &tokio::runtime::Runtime,
        leader: usize,
        n: usize,
        op_timeout: Duration,
    ) -> anyhow::Result<Vec<Session>> {
        match self {
            Deployment::Riptide(c) => Ok((0..n)
                .map(|_| c.session(c.nodes[leader].0, rand::random::<u64>() | 1, op_timeout))
                .collect()),
            Deployment::Etcd(c) => rt.block_on(async {
                let mut sessions = Vec::with_capacity(n);
                for _ in 0..n {
                    sessions.push(c.session(leader, op_timeout).await?);
                }
                Ok(sessions)
            }),
        }
    }
}

/// What `bench.json` holds for a sweep.
#[derive(Serialize)]
struct SweepFile<'a> {
    kind: &'static str,
    warmup_s: f64,
    duration_s: f64,
    reps: usize,
    keys: u64,
    read_ratio: f64,
    op_timeout_ms: u128,
    sandbox: Option<String>,
    rows: &'a [Row],
    samples: &'a [Row],
}

/// Runs a sweep. Exit 0 when it completed (errors are in the table and `bench.json`).
pub fn sweep(
    plan: Sweep,
    node_bin: Option<&std::path::Path>,
    results: &std::path::Path,
) -> Result<u8, Exit> {
    plan.check()?;
    let program = NodeProgram::resolve(node_bin)?;
    let etcd_bin = match plan.targets.contains(&Target::Etcd) && plan.etcd_endpoints.is_none() {
        true => Some(etcd::find_etcd()?),
        false => None,
    };
    let sandbox = plan.starts_every_cluster().then(enter_sandbox).flatten();
    check_mounts(&plan, sandbox.as_ref())?;
    let folder = BenchFolder::create(results)?;
    eprintln!(
        "riptide: bench with seed {} -> {}",
        plan.seed,
        folder.dir.display()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::crashed(e.to_string()))?;
    let mut samples = Vec::new();
    let store = |samples: &[Row], status: &str| {
        let rows = medians(samples);
        let file = SweepFile {
            kind: "sweep",
            warmup_s: plan.warmup.as_secs_f64(),
            duration_s: plan.duration.as_secs_f64(),
            reps: plan.reps,
            keys: plan.keys,
            read_ratio: plan.read_ratio,
            op_timeout_ms: plan.op_timeout.as_millis(),
            sandbox: sandbox.as_ref().map(|s| format!("{:?}", s.mode())),
            rows: &rows,
            samples,
        };
        folder.store(plan.seed, status, &file).map(|_| rows)
    };
    for &target in &plan.targets {
        for nodes in plan.nodes_for(target) {
            let dir = folder.cluster_dir(target.name(), nodes)?;
            let deployment = deploy(
                &plan,
                (target, nodes),
                &program,
                (etcd_bin.as_deref(), sandbox.as_ref()),
                &dir,
            )?;
            let measured = measure_cluster(&rt, &deployment, &plan, (target, nodes), &mut |row| {
                samples.push(row);
                store(&samples, "running").map(|_| ())
            });
            drop(deployment);
            folder::remove_data(&dir, if target == Target::Etcd { 'e' } else { 'n' }, nodes);
            measured?;
        }
    }
    let rows = store(&samples, "complete")?;
    folder.write("throughput.svg", &plot::svg(&rows))?;
    println!("{}", report::table(&rows));
    for other in [Target::Etcd, Target::RiptideFaultfs] {
        if let Some(text) = report::side_by_side(&rows, other) {
            let name = other.name();
            println!("riptide against {name} (ratio: riptide / {name})\n{text}");
        }
    }
    println!(
        "seed {}; load average {} at the start, {} now; stored in {}",
        plan.seed,
        folder::describe_load(folder.load_at_start),
        folder::describe_load(cpu::load_average()),
        folder.dir.join(folder::BENCH_JSON).display()
    );
    Ok(0)
}

/// `--target riptide-faultfs` needs FUSE and the sandbox's mount namespace: refused (exit 254)
/// before anything starts without them.
fn check_mounts(plan: &Sweep, sandbox: Option<&Sandbox>) -> Result<(), Exit> {
    if !plan.needs_mounts() {
        return Ok(());
    }
    let why = crate::cluster::disks::why_no_faultfs(sandbox);
    match why {
        Some(why) => Err(Exit::bad_args(format!(
            "--target riptide-faultfs needs riptide-faultfs, but {why}"
        ))),
        None => Ok(()),
    }
}

/// The cluster of `target` with `nodes` nodes: started with its logs in `dir`, or the running
/// one given by its endpoints.
fn deploy(
    plan: &Sweep,
    (target, nodes): (Target, usize),
    program: &NodeProgram,
    (etcd_bin, sandbox): (Option<&std::path::Path>, Option<&Sandbox>),
    dir: &std::path::Path,
) -> anyhow::Result<Deployment> {
    let start = |faultfs| {
        riptide::RiptideCluster::start(nodes, plan.port, program.clone(), dir, plan.seed, faultfs)
    };
    Ok(match (target, plan.endpoints_of(target)) {
        (Target::Riptide, Some(eps)) => Deployment::Riptide(riptide::RiptideCluster::running(eps)?),
        (Target::Riptide, None) => Deployment::Riptide(start(None)?),
        (Target::RiptideFaultfs, _) => {
            let sandbox = sandbox.expect("checked before the sweep started");
            Deployment::Riptide(start(Some(sandbox))?)
        }
        (Target::Etcd, Some(eps)) => Deployment::Etcd(etcd::EtcdCluster::running(eps)),
        (Target::Etcd, None) => {
            let bin = etcd_bin.expect("found before the sweep started");
            Deployment::Etcd(etcd::EtcdCluster::start(nodes, bin, dir)?)
        }
    })
}

/// Every point of one cluster, `reps` times; each sample goes to `record` as it is measured.
fn measure_cluster(
    rt: &tokio::runtime::Runtime,
    deployment: &Deployment,
    plan: &Sweep,
    (target, nodes): (Target, usize),
    record: &mut dyn FnMut(Row) -> Result<(), Exit>,
) -> anyhow::Result<()> {
    for rep in 0..plan.reps {
        for &value_size in &plan.value_sizes {
            let leader = deployment.leader(rt)?;
            let preloaders = PRELOAD_CLIENTS.min(plan.keys as usize);
            let mut sessions = deployment.sessions(rt, leader, preloaders, plan.op_timeout)?;
            let known = rt
                .block_on(load::preload(&mut sessions, plan.keys, value_size))
                .map_err(|e| anyhow::anyhow!("{} n{nodes}: {e}", target.name()))?;
            drop(sessions);
            for &op in &plan.ops {
                for &clients in &plan.clients {
                    let key = PointKey {
                        target,
                        op,
                        nodes,
                        clients,
                        value_size,
                    };
                    let leader = deployment.leader(rt)?;
                    let processes = deployment.processes(leader);
                    let mut sessions = deployment.sessions(rt, leader, clients, plan.op_timeout)?;
                    let load = Load {
                        op,
                        value_size,
                        keys: plan.keys,
                        read_ratio: plan.read_ratio,
                        warmup: plan.warmup,
                        duration: plan.duration,
                        seed: plan.seed.wrapping_add(rep as u64 * 10_007),
                    };
                    let m = rt.block_on(load::measure(&mut sessions, &load, &known, &processes));
                    let row = Row::sample(key, &m, &processes);
                    eprintln!(
                        "riptide: rep {}/{}  {} {} n{nodes} c{clients} {value_size}B: {:.0} ops/s, p99 {:.2} ms, {} errors{}",
                        rep + 1,
                        plan.reps,
                        target.name(),
                        op.name(),
                        row.ops_per_sec,
                        row.p99_ms,
                        row.errors,
                        row.first_error.as_ref().map_or(String::new(), |e| format!(" (the first: {e})"))
                    );
                    record(row)?;
                }
            }
        }
    }
    Ok(())
}

/// One row per point, in the order the points were first measured.
fn medians(samples: &[Row]) -> Vec<Row> {
    let mut keys: Vec<PointKey> = Vec::new();
    for s in samples {
        if !keys.contains(&s.key) {
            keys.push(s.key);
        }
    }
    keys.iter()
        .map(|k| {
            let of_point: Vec<Row> = samples.iter().filter(|s| s.key == *k).cloned().collect();
            Row::median(&of_point)
        })
        .collect()
}
