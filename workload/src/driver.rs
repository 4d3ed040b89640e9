//! Drives a cluster: `concurrency` workers take operations from one shared generator, pace
//! themselves to the requested rate, perform them through their own [`Client`] and record the
//! invoke and the completion in the history.
//!
//! Process ids follow Jepsen (the rules are written once, in [`riptide_history::process`]):
//! worker `w` starts as process `w`; after an `info` it can never invoke again under that id (the
//! op may still be in flight), so it continues as process `w + concurrency`, then
//! `w + 2 * concurrency`, and so on ([`after_info`]), with a new client id each time. The final
//! reads run under processes from [`riptide_history::FINAL_READ_BASE`] on.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use riptide_history::process::after_info;
use riptide_history::EventType;
use riptide_proto::NodeId;
use tokio::time::Instant;

use crate::client::{Client, ClientOptions, OpResult};
use crate::generator::{Generator, OpKind, PlannedOp, Value, WorkloadKind};
use crate::recorder::Recorder;
use crate::roster::Roster;

#[derive(Clone, Debug)]
pub struct DriverOptions {
    pub nodes: Vec<(NodeId, SocketAddr)>,
    pub concurrency: usize,
    /// Total operations per second; 0 means as fast as the workers can go.
    pub rate: f64,
    pub op_timeout: Duration,
    /// Every second worker's op timeout instead of `op_timeout` (patient clients beside
    /// impatient ones); `None`: every worker waits `op_timeout`.
    pub op_timeout_long: Option<Duration>,
    pub bind: Option<IpAddr>,
    pub workload: WorkloadKind,
    /// Retries of a write whose outcome is unknown ([`Client::retry_indeterminate`]).
    pub retry_indeterminate: u32,
    /// Members that change during the run (the membership nemesis): each worker follows them
    /// before its next op. `None`: `nodes` for the whole run.
    pub roster: Option<Roster>,
}

/// Paces all workers together: each takes the next free slot, `1/rate` apart.
struct Pacer {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pacer {
    async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next.lock().unwrap();
            let now = Instant::now();
            // Do not bank unused slots beyond one interval (no bursts after a stall).
            let slot = (*next).max(now - interval);
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Runs the workers until `stop` is set. Returns when every worker has finished its current op.
pub async fn run_workers(
    opts: DriverOptions,
    generator: Arc<Mutex<Generator>>,
    history: Arc<Recorder>,
    stop: Arc<AtomicBool>,
) {
    let pacer = Arc::new(Pacer {
        interval: (opts.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / opts.rate)),
        next: Mutex::new(Instant::now()),
    });
    let mut tasks = Vec::new();
    for worker in 0..opts.concurrency {
        let home = opts.nodes[worker % opts.nodes.len()].0;
        let client_opts = ClientOptions {
            nodes: opts.nodes.clone(),
            home,
            op_timeout: match opts.op_timeout_long {
                Some(long) if worker % 2 == 1 => long,
                _ => opts.op_timeout,
            },
            bind: opts.bind,
        };
        let (generator, history, stop, pacer) = (
            generator.clone(),
            history.clone(),
            stop.clone(),
            pacer.clone(),
        );
        let concurrency = opts.concurrency as u64;
        let workload = opts.workload;
        let retries = opts.retry_indeterminate;
        let roster = opts.roster.clone();
        tasks.push(tokio::spawn(async move {
            let mut process = worker as u64;
            let mut client = Client::new(client_opts, process + 1);
            client.retry_indeterminate(retries);
            let mut seen = roster.as_ref().map_or(0, Roster::version);
            while !stop.load(Ordering::Relaxed) {
                pacer.wait().await;
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Some(roster) = &roster {
                    roster.refresh(&mut client, worker, &mut seen);
                }
                let op = generator.lock().unwrap().next_op();
                if perform(&mut client, process, &op, workload, &history).await == EventType::Info {
                    process = after_info(process, concurrency);
                    client.renew(process + 1);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

/// Performs one op and records it. Returns the completion type.
pub async fn perform(
    client: &mut Client,
    process: u64,
    op: &PlannedOp,
    workload: WorkloadKind,
    history: &Recorder,
) -> EventType {
    history.invoke(process, op.kind, &op.key, op.value_json());
    let result = match (op.kind, &op.value, &op.cas_new) {
        (OpKind::Read, _, _) => client.get(&op.key).await,
        (OpKind::Write, Value::Int(v), _) => client.put(&op.key, &v.to_string()).await,
        (OpKind::Cas, Value::Int(expected), Value::Int(new)) => {
            client
                .cas(&op.key, &expected.to_string(), &new.to_string())
                .await
        }
        (OpKind::Append, Value::Str(s), _) => client.append(&op.key, s).await,
        _ => OpResult::Fail(format!("malformed op {op:?}")),
    };
    let (event_type, value, error) = match result {
        OpResult::Ok(read) => {
            let value = if op.kind == OpKind::Read {
                read_value(read, workload).to_json()
            } else {
                op.value_json()
            };
            (EventType::Ok, value, None)
        }
        OpResult::Fail(why) => (EventType::Fail, op.value_json(), Some(why)),
        OpResult::Info(why) => (EventType::Info, op.value_json(), Some(why)),
    };
    history.complete(process, event_type, op.kind, &op.key, value, error);
    event_type
}

/// A read's value as the history shows it: an integer for the register workload (values are
/// written as decimal strings), the raw string otherwise. A string that is not a number on a
/// register key is recorded as-is, and the checker will flag it.
fn read_value(read: Option<String>, workload: WorkloadKind) -> Value {
    match (read, workload) {
        (None, _) => Value::Nil,
        (Some(s), WorkloadKind::Register) => match s.parse::<u64>().map(i64::try_from) {
            Ok(Ok(v)) => Value::Int(v),
            _ => Value::Str(s),
        },
        (Some(s), WorkloadKind::Append) => Value::Str(s),
    }
}

/// What the final reads read, from where, and for how long.
#[derive(Clone, Debug)]
pub struct FinalReads {
    pub nodes: Vec<(NodeId, SocketAddr)>,
    pub bind: Option<IpAddr>,
    pub workload: WorkloadKind,
    pub keys: Vec<String>,
    /// Reads run under fresh process ids from this one on: [`riptide_history::FINAL_READ_BASE`]
    /// in a run, so that [`riptide_history::process::is_final_read`] tells them apart.
    pub first_process: u64,
    /// Give up on the keys still unread after this long.
    pub deadline: Duration,
    /// Readers at once.
    pub parallel: usize,
}

/// After the faults stop: read every key once more, retrying until a definite answer or the
/// deadline, so the history ends with the cluster's final word on each key. Returns how many
/// keys were read and how many got no answer.
pub async fn final_reads(plan: FinalReads, history: Arc<Recorder>) -> (usize, usize) {
    let FinalReads {
        nodes,
        bind,
        workload,
        keys,
        first_process,
        deadline,
        parallel,
    } = plan;
    let until = Instant::now() + deadline;
    let keys = Arc::new(Mutex::new(
        keys.into_iter().collect::<std::collections::VecDeque<_>>(),
    ));
    let mut tasks = Vec::new();
    for k in 0..parallel.max(1) {
        let (nodes, keys, history) = (nodes.clone(), keys.clone(), history.clone());
        tasks.push(tokio::spawn(async move {
            let opts = ClientOptions {
                nodes: nodes.clone(),
                home: nodes[k % nodes.len()].0,
                op_timeout: Duration::from_secs(2),
                bind,
            };
            let process = first_process + k as u64;
            let mut client = Client::new(opts, process + 1);
            let (mut ok, mut failed) = (0, 0);
            loop {
                let Some(key) = keys.lock().unwrap().pop_front() else {
                    break;
                };
                let op = PlannedOp {
                    kind: OpKind::Read,
                    key,
                    value: Value::Nil,
                    cas_new: Value::Nil,
                };
                let mut done = false;
                while Instant::now() < until {
                    if perform(&mut client, process, &op, workload, &history).await == EventType::Ok
                    {
                        done = true;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if done {
                    ok += 1;
                } else {
                    failed += 1;
                }
            }
            (ok, failed)
        }));
    }
    let mut totals = (0, 0);
    for task in tasks {
        if let Ok((ok, failed)) = task.await {
            totals.0 += ok;
            totals.1 += failed;
        }
    }
    totals
}
