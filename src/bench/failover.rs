//! `riptide bench failover`: how long writes stop when the leader dies, freezes or is cut off.
//!
//! A steady write load runs throughout: `writers` clients in a closed loop of puts, on their own
//! thread. Then, `kills` times for each fault:
//!
//! 1. wait until one leader L is followed by every node and writes are being acknowledged,
//!    then let the load run steadily for `settle`;
//! 2. note the time T and inject the fault on L: **kill** (SIGKILL, restarted afterwards),
//!    **pause** (SIGSTOP, SIGCONT afterwards) or **isolate** (iptables drops every packet
//!    between L and the other nodes, both ways, inside bench's network namespace; clients still
//!    reach every node, as in `riptide test`'s partitions);
//! 3. the sample is the time from T to the first write acknowledged by a node other than L;
//! 4. undo the fault and wait for every node to follow one leader again.
//!
//! What bounds it: the followers notice the silence after an election timeout (150–300 ms,
//! randomised), one of them wins an election (a round trip), and a client must find it. After
//! a SIGKILL the clients see their connections reset at once and try the next node; a paused
//! or isolated leader answers nothing, so a client only moves on when its op times out
//! (`--op-timeout-ms`, 100 ms by default, kept under the election timeout so that it is not
//! what is measured). Each writer retries an unanswered write on the next node (same session
//! and sequence number, so it is applied at most once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use riptide_nemesis::{Firewall, Rule, RuleKind};
use riptide_proto::NodeId;
use riptide_workload::{Client, ClientOptions, OpResult};
use serde::Serialize;

use super::folder::BenchFolder;
use super::plan::key;
use super::riptide::RiptideCluster;
use crate::cluster::NodeProgram;
use crate::exit::Exit;

/// How long the cluster may take to have one leader that every node follows again.
const RECOVERY_WAIT: Duration = Duration::from_secs(20);
/// Tries of one write after unknown outcomes: enough to walk round a 7-node cluster a few times
/// during an election.
const WRITE_RETRIES: u32 = 30;

/// The faults on the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// SIGKILL, then restart from the same data dir.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Pause,
    /// iptables cuts the leader from every other node, then heals.
    Isolate,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Isolate => "isolate",
        }
    }
}

/// A checked failover plan.
#[derive(Clone, Debug)]
pub struct FailoverPlan {
    pub faults: Vec<Fault>,
    pub kills: usize,
    pub nodes: usize,
    pub writers: usize,
    pub value_size: usize,
    pub keys: u64,
    pub op_timeout: Duration,
    pub settle: Duration,
    pub recovery_timeout: Duration,
    pub seed: u64,
    pub port: u16,
}

/// What the writers saw, shared with the fault loop.
#[derive(Default)]
struct Watch {
    /// The fault's time and the node it hit, while waiting for the first write after it.
    armed: Option<(Instant, NodeId)>,
    first_ack: Option<Instant>,
    acks: u64,
    errors: u64,
}

/// One fault's figures.
#[derive(Serialize)]
struct FaultRow {
    fault: Fault,
    injected: usize,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    /// Faults after which no write was acknowledged within the recovery timeout.
    missed: usize,
    samples_ms: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<String>,
}

/// Runs the failover benchmark. Exit 0 when every fault was injected and recovered from.
pub fn failover(
    plan: FailoverPlan,
    node_bin: Option<&std::path::Path>,
    results: &std::path::Path,
) -> Result<u8, Exit> {
    let program = NodeProgram::resolve(node_bin)?;
    let sandbox = super::enter_sandbox();
    let (firewall, no_firewall) = match (&sandbox, plan.faults.contains(&Fault::Isolate)) {
        (_, false) => (None, None),
        (None, true) => (
            None,
            Some("no private network namespace (needs root or user namespaces)".to_string()),
        ),
        (Some(sandbox), true) => match Firewall::install(sandbox) {
            Ok(firewall) => (Some(firewall), None),
            Err(err) => (None, Some(err.to_string())),
        },
    };
    let folder = BenchFolder::create(results)?;
    eprintln!(
        "riptide: bench failover with seed {} -> {}",
        plan.seed,
        folder.dir.display()
    );
    let dir = folder.cluster_dir("riptide", plan.nodes)?;
    let cluster = Arc::new(RiptideCluster::start(
        plan.nodes,
        plan.port,
        program,
        &dir,
        plan.seed,
        None,
        &[],
    )?);
    let watch = Arc::new(Mutex::new(Watch::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers = start_writers(&plan, &cluster, &watch, &stop)?;
    let mut rows = Vec::new();
    let outcome = (|| -> anyhow::Result<()> {
        for &fault in &plan.faults {
            if fault == Fault::Isolate && firewall.is_none() {
                let why = no_firewall.clone().unwrap_or_default();
                eprintln!("riptide: skipping isolate: {why}");
                rows.push(skipped(fault, why));
                continue;
            }
            rows.push(measure_fault(
                &plan,
                &cluster,
                firewall.as_ref(),
                &watch,
                fault,
            )?);
        }
        Ok(())
    })();
    stop.store(true, Ordering::SeqCst);
    let _ = writers.join();
    drop(cluster);
    super::folder::remove_data(&dir, 'n', plan.nodes);
    let (acks, errors) = {
        let w = watch.lock().expect("poisoned");
        (w.acks, w.errors)
    };
    store(&folder, &plan, &rows, (acks, errors), outcome.is_ok())?;
    outcome?;
    print_table(&rows, &plan);
    println!(
        "{acks} writes acknowledged, {errors} failed or of unknown outcome (during the elections)"
    );
    println!(
        "seed {}; load average {} at the start, {} now; stored in {}",
        plan.seed,
        super::folder::describe_load(folder.load_at_start),
        super::folder::describe_load(super::cpu::load_average()),
        folder.dir.join(super::folder::BENCH_JSON).display()
    );
    Ok(0)
}

fn skipped(fault: Fault, why: String) -> FaultRow {
    FaultRow {
        fault,
        injected: 0,
        p50_ms: None,
        p99_ms: None,
        max_ms: None,
        missed: 0,
        samples_ms: Vec::new(),
        skipped: Some(why),
    }
}

fn store(
    folder: &BenchFolder,
    plan: &FailoverPlan,
    rows: &[FaultRow],
    (acks, errors): (u64, u64),
    complete: bool,
) -> Result<(), Exit> {
    #[derive(Serialize)]
    struct FailoverFile<'a> {
        kind: &'static str,
        nodes: usize,
        writers: usize,
        value_size: usize,
        keys: u64,
        op_timeout_ms: u128,
        settle_s: f64,
        acks: u64,
        errors: u64,
        failover: &'a [FaultRow],
    }
    let file = FailoverFile {
        kind: "failover",
        nodes: plan.nodes,
        writers: plan.writers,
        value_size: plan.value_size,
        keys: plan.keys,
        op_timeout_ms: plan.op_timeout.as_millis(),
        settle_s: plan.settle.as_secs_f64(),
        acks,
        errors,
        failover: rows,
    };
    let status = if complete { "complete" } else { "crashed" };
    folder.store(plan.seed, status, &file)
}

fn print_table(rows: &[FaultRow], plan: &FailoverPlan) {
    println!(
        "failover on {} nodes, {} writers, op timeout {} ms: time from the fault to the first write acknowledged by another node",
        plan.nodes,
        plan.writers,
        plan.op_timeout.as_millis()
    );
    println!(
        "{:<8} {:>6} {:>9} {:>9} {:>9} {:>7}",
        "fault", "n", "p50 ms", "p99 ms", "max ms", "missed"
    );
    let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    for r in rows {
        match &r.skipped {
            Some(why) => println!("{:<8} skipped: {why}", r.fault.name()),
            None => println!(
                "{:<8} {:>6} {:>9} {:>9} {:>9} {:>7}",
                r.fault.name(),
                r.injected,
                ms(r.p50_ms),
                ms(r.p99_ms),
                ms(r.max_ms),
                r.missed
            ),
        }
    }
}

/// The writers: a current-thread runtime on a thread of their own, so that the fault loop's
/// blocking calls never stall them.
fn start_writers(
    plan: &FailoverPlan,
    cluster: &Arc<RiptideCluster>,
    watch: &Arc<Mutex<Watch>>,
    stop: &Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>, Exit> {
    let leader = cluster.leader(RECOVERY_WAIT)?;
    let clients: Vec<Client> = (0..plan.writers)
        .map(|_| {
            let opts = ClientOptions {
                nodes: cluster.nodes.clone(),
                home: leader,
                op_timeout: plan.op_timeout,
                bind: None,
            };
            let mut client = Client::new(opts, rand::random::<u64>() | 1);
            client.retry_indeterminate(WRITE_RETRIES);
            client
        })
        .collect();
    let (plan, watch, stop) = (plan.clone(), watch.clone(), stop.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::crashed(e.to_string()))?;
    Ok(std::thread::spawn(move || {
        let loops = clients
            .into_iter()
            .enumerate()
            .map(|(c, client)| writer(c, client, &plan, &watch, &stop));
        rt.block_on(futures::future::join_all(loops));
    }))
}

async fn writer(
    c: usize,
    mut client: Client,
    plan: &FailoverPlan,
    watch: &Mutex<Watch>,
    stop: &AtomicBool,
) {
    let mut rng = StdRng::seed_from_u64(plan.seed.wrapping_add(c as u64));
    let value = "v".repeat(plan.value_size);
    while !stop.load(Ordering::Relaxed) {
        let k = key(rng.gen_range(0..plan.keys));
        let result = client.put(&k, &value).await;
        let now = Instant::now();
        let mut w = watch.lock().expect("poisoned");
        match result {
            OpResult::Ok(_) => {
                w.acks += 1;
                if let Some((at, faulted)) = w.armed {
                    if w.first_ack.is_none() && now > at && client.leader() != Some(faulted) {
                        w.first_ack = Some(now);
                    }
                }
            }
            OpResult::Fail(_) | OpResult::Info(_) => w.errors += 1,
        }
    }
}

/// `plan.kills` injections of `fault`, each on the leader of the moment.
fn measure_fault(
    plan: &FailoverPlan,
    cluster: &RiptideCluster,
    firewall: Option<&Firewall>,
    watch: &Mutex<Watch>,
    fault: Fault,
) -> anyhow::Result<FaultRow> {
    let supervisor = cluster
        .supervisor
        .as_ref()
        .expect("bench started the cluster");
    let mut samples = Vec::new();
    let mut missed = 0;
    for i in 0..plan.kills {
        let leader = cluster.leader(RECOVERY_WAIT)?;
        wait_for_writes(watch, RECOVERY_WAIT)?;
        std::thread::sleep(plan.settle);
        let at = Instant::now();
        {
            let mut w = watch.lock().expect("poisoned");
            w.first_ack = None;
            w.armed = Some((at, leader));
        }
        match fault {
            Fault::Kill => drop(supervisor.kill(leader)?),
            Fault::Pause => drop(supervisor.pause(leader)?),
            Fault::Isolate => drop(
                firewall
                    .expect("checked")
                    .apply(&isolation(cluster, leader))?,
            ),
        }
        let first = wait_for_first_ack(watch, plan.recovery_timeout);
        match fault {
            Fault::Kill => drop(supervisor.restart(leader)?),
            Fault::Pause => drop(supervisor.resume(leader)?),
            Fault::Isolate => drop(firewall.expect("checked").heal()?),
        }
        let sample = first.map(|t| (t - at).as_secs_f64() * 1000.0);
        match sample {
            Some(ms) => samples.push((ms * 10.0).round() / 10.0),
            None => missed += 1,
        }
        eprintln!(
            "riptide: {} {}/{} of n{leader}: {}",
            fault.name(),
            i + 1,
            plan.kills,
            sample.map_or(
                format!("no write acknowledged within {:?}", plan.recovery_timeout),
                |ms| { format!("first write acknowledged after {ms:.1} ms") }
            )
        );
    }
    let q = |q: f64| quantile(&samples, q);
    Ok(FaultRow {
        fault,
        injected: plan.kills,
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        max_ms: q(1.0),
        missed,
        samples_ms: samples,
        skipped: None,
    })
}

/// Every packet between `leader` and the other nodes dropped, both ways.
fn isolation(cluster: &RiptideCluster, leader: NodeId) -> Vec<Rule> {
    cluster
        .nodes
        .iter()
        .filter(|(id, _)| *id != leader)
        .flat_map(|(id, _)| {
            [
                Rule::between(leader, *id, RuleKind::Drop),
                Rule::between(*id, leader, RuleKind::Drop),
            ]
        })
        .collect()
}

fn wait_for_writes(watch: &Mutex<Watch>, timeout: Duration) -> anyhow::Result<()> {
    let before = watch.lock().expect("poisoned").acks;
    let deadline = Instant::now() + timeout;
    while watch.lock().expect("poisoned").acks < before + 10 {
        if Instant::now() >= deadline {
            anyhow::bail!("the writers got no write acknowledged within {timeout:?} after the cluster recovered");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn wait_for_first_ack(watch: &Mutex<Watch>, timeout: Duration) -> Option<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        let first = {
            let mut w = watch.lock().expect("poisoned");
            let first = w.first_ack;
            if first.is_some() {
                w.armed = None;
            }
            first
        };
        if first.is_some() || Instant::now() >= deadline {
            watch.lock().expect("poisoned").armed = None;
            return first;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The nearest-rank quantile of `samples` (`None` when there are none).
fn quantile(samples: &[f64], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let s: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(quantile(&s, 0.5), Some(10.0));
        assert_eq!(quantile(&s, 0.99), Some(20.0));
        assert_eq!(quantile(&s, 1.0), Some(20.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
