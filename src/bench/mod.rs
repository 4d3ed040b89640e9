//! `riptide bench`: the throughput, latency and CPU cost of a cluster under a closed-loop load,
//! riptide and etcd side by side; and `riptide bench failover` ([`failover`]).
//!
//! A sweep, in order:
//!
//! 1. Check the flags ([`plan`]); find `etcd` if it is a target. Bad ones exit 254.
//! 2. Enter a private network namespace when bench starts every cluster itself, so that its
//!    clusters never meet another run's on the same addresses (as `riptide test` does).
//! 3. Create `results/bench/<UTC stamp>/` ([`folder`]).
//! 4. For each node count: start the cluster of every target at that size (or connect to
//!    `--endpoints`), all at once, then for each repetition and value size preload every key
//!    once on each cluster, and for each op and client count measure every cluster in turn:
//!    find the leader, open the clients to it, warm up, measure ([`load`]), and read every
//!    node's CPU time and the generator's around the window ([`cpu`]). Repetitions are the
//!    outer loop, so that a slow minute of a shared machine spreads over every point instead
//!    of ruining one, and the targets take turns at each point (the first of them rotating),
//!    so that a ratio compares two measurements taken seconds apart, not minutes.
//! 5. Print one row per point (medians over the repetitions, [`report`]), the side-by-side
//!    table when there are two targets, and store `bench.json` and `throughput.svg` ([`plot`]).
//!
//! What it leaves out: clusters run with their default settings; keys are uniform (no hot
//! keys). The clusters waiting for their turn idle (heartbeats only) beside the one measured.

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
        let rows = medians(samples, &plan.targets);
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
    for nodes in plan.node_counts() {
        // Every target of this size is up at once and measured point by point in turn, so
        // that a ratio compares the same minutes of a shared machine.
        let mut group = Vec::new();
        for target in plan.targets_at(nodes) {
            let dir = folder.cluster_dir(target.name(), nodes)?;
            let deployment = deploy(
                &plan,
                (target, nodes),
                &program,
                (etcd_bin.as_deref(), sandbox.as_ref()),
                &dir,
            )?;
            group.push(Deployed::new(target, nodes, deployment, dir));
        }
        measure_group(&rt, &group, &plan, &mut |row| {
            samples.push(row);
            store(&samples, "running").map(|_| ())
        })?;
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
        let port = plan.port_of(target);
        let (seed, args) = (plan.seed, &plan.node_args[..]);
        riptide::RiptideCluster::start(nodes, port, program.clone(), dir, seed, faultfs, args)
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

/// A cluster bench measures, with the folder of its logs; dropping it stops the cluster (if
/// bench started it) and then removes its data dirs.
struct Deployed {
    target: Target,
    nodes: usize,
    deployment: Option<Deployment>,
    dir: std::path::PathBuf,
}

impl Deployed {
    fn new(target: Target, nodes: usize, deployment: Deployment, dir: std::path::PathBuf) -> Self {
        Deployed {
            target,
            nodes,
            deployment: Some(deployment),
            dir,
        }
    }

    fn get(&self) -> &Deployment {
        self.deployment.as_ref().expect("present until dropped")
    }
}

impl Drop for Deployed {
    fn drop(&mut self) {
        drop(self.deployment.take());
        let prefix = if self.target == Target::Etcd {
            'e'
        } else {
            'n'
        };
        folder::remove_data(&self.dir, prefix, self.nodes);
    }
}

/// The order in which the clusters of a group take their turn at one point: rotated from
/// point to point, so that no target is always measured first (the first after a preload
/// finds the page cache and the CPU caches in another state).
fn turns(clusters: usize, point: usize) -> impl Iterator<Item = usize> {
    (0..clusters).map(move |k| (k + point) % clusters)
}

/// Every point of a group of clusters of one size, `reps` times, the clusters in turn at
/// each point; each sample goes to `record` as it is measured.
fn measure_group(
    rt: &tokio::runtime::Runtime,
    group: &[Deployed],
    plan: &Sweep,
    record: &mut dyn FnMut(Row) -> Result<(), Exit>,
) -> anyhow::Result<()> {
    let mut point = 0;
    for rep in 0..plan.reps {
        for &value_size in &plan.value_sizes {
            let known = group
                .iter()
                .map(|d| preload(rt, d, plan, value_size))
                .collect::<anyhow::Result<Vec<_>>>()?;
            for &op in &plan.ops {
                for &clients in &plan.clients {
                    for i in turns(group.len(), point) {
                        let key = PointKey {
                            target: group[i].target,
                            op,
                            nodes: group[i].nodes,
                            clients,
                            value_size,
                        };
                        let row = measure_point(rt, group[i].get(), plan, key, rep, &known[i])?;
                        record(row)?;
                    }
                    point += 1;
                }
            }
        }
    }
    Ok(())
}

/// Writes every key once (so that gets read real values and cas finds what it expects) and
/// returns the values written.
fn preload(
    rt: &tokio::runtime::Runtime,
    deployed: &Deployed,
    plan: &Sweep,
    value_size: usize,
) -> anyhow::Result<load::Known> {
    let deployment = deployed.get();
    let leader = deployment.leader(rt)?;
    let preloaders = PRELOAD_CLIENTS.min(plan.keys as usize);
    let mut sessions = deployment.sessions(rt, leader, preloaders, plan.op_timeout)?;
    rt.block_on(load::preload(&mut sessions, plan.keys, value_size))
        .map_err(|e| anyhow::anyhow!("{} n{}: {e}", deployed.target.name(), deployed.nodes))
}

/// One point on one cluster: clients opened to the leader, warm-up, the measured window.
fn measure_point(
    rt: &tokio::runtime::Runtime,
    deployment: &Deployment,
    plan: &Sweep,
    key: PointKey,
    rep: usize,
    known: &load::Known,
) -> anyhow::Result<Row> {
    let leader = deployment.leader(rt)?;
    let processes = deployment.processes(leader);
    let mut sessions = deployment.sessions(rt, leader, key.clients, plan.op_timeout)?;
    let load = Load {
        op: key.op,
        value_size: key.value_size,
        keys: plan.keys,
        read_ratio: plan.read_ratio,
        warmup: plan.warmup,
        duration: plan.duration,
        seed: plan.seed.wrapping_add(rep as u64 * 10_007),
    };
    let m = rt.block_on(load::measure(&mut sessions, &load, known, &processes));
    let row = Row::sample(key, &m, &processes);
    eprintln!(
        "riptide: rep {}/{}  {} {} n{} c{} {}B: {:.0} ops/s, p99 {:.2} ms, {} errors{}",
        rep + 1,
        plan.reps,
        key.target.name(),
        key.op.name(),
        key.nodes,
        key.clients,
        key.value_size,
        row.ops_per_sec,
        row.p99_ms,
        row.errors,
        row.first_error
            .as_ref()
            .map_or(String::new(), |e| format!(" (the first: {e})"))
    );
    Ok(row)
}

/// One row per point: the targets in the order given, and each target's points in the order
/// they were first measured (the targets took turns, so the samples interleave them).
fn medians(samples: &[Row], targets: &[Target]) -> Vec<Row> {
    let mut keys: Vec<PointKey> = Vec::new();
    for s in samples {
        if !keys.contains(&s.key) {
            keys.push(s.key);
        }
    }
    keys.sort_by_key(|k| targets.iter().position(|&t| t == k.target));
    keys.iter()
        .map(|k| {
            let of_point: Vec<Row> = samples.iter().filter(|s| s.key == *k).cloned().collect();
            Row::median(&of_point)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{medians, turns};
    use crate::bench::plan::Target;
    use crate::bench::report::tests::row;

    #[test]
    fn rows_group_the_targets_in_the_order_given_whatever_order_they_took_turns_in() {
        let at = |target, clients, ops| {
            let mut r = row(target, ops, 1.0, 0);
            r.key.clients = clients;
            r
        };
        // Point 0: riptide first; point 1: etcd first; then a second repetition.
        let samples = vec![
            at(Target::Riptide, 1, 10.0),
            at(Target::Etcd, 1, 1.0),
            at(Target::Etcd, 64, 2.0),
            at(Target::Riptide, 64, 20.0),
            at(Target::Riptide, 1, 30.0),
            at(Target::Etcd, 1, 3.0),
            at(Target::Etcd, 64, 4.0),
            at(Target::Riptide, 64, 40.0),
        ];
        let rows = medians(&samples, &[Target::Riptide, Target::Etcd]);
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.key.target, r.key.clients, r.reps))
            .collect();
        assert_eq!(
            got,
            [
                (Target::Riptide, 1, 2),
                (Target::Riptide, 64, 2),
                (Target::Etcd, 1, 2),
                (Target::Etcd, 64, 2)
            ]
        );
        assert_eq!(rows[0].ops_per_sec, 20.0, "the median of 10 and 30");
    }

    #[test]
    fn the_first_to_be_measured_rotates_from_point_to_point() {
        let order = |point| turns(2, point).collect::<Vec<_>>();
        assert_eq!(order(0), vec![0, 1]);
        assert_eq!(order(1), vec![1, 0]);
        assert_eq!(order(2), vec![0, 1]);
        assert_eq!(turns(3, 4).collect::<Vec<_>>(), vec![1, 2, 0]);
        assert_eq!(turns(1, 7).collect::<Vec<_>>(), vec![0]);
    }
}
