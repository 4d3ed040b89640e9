//! `riptide bench`: the options of a sweep (the body is [`crate::bench`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::bench::failover::{FailoverPlan, Fault};
use crate::bench::plan::{self, Op, Sweep, Target};
use crate::exit::Exit;

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub mode: Option<BenchMode>,
    /// What to measure: riptide, etcd, or both side by side (riptide,etcd).
    #[arg(long, value_delimiter = ',', default_value = "riptide")]
    pub target: Vec<Target>,
    /// The ops, one point each: put, get (linearizable), mixed (see --read-ratio), cas.
    #[arg(long, value_delimiter = ',', default_value = "put,get")]
    pub op: Vec<Op>,
    /// Concurrent clients (closed loop, one connection each), a list to sweep.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    pub clients: Vec<usize>,
    /// Cluster sizes, a list to sweep (a cluster is started for each).
    #[arg(long, value_delimiter = ',', default_value = "3")]
    pub nodes: Vec<usize>,
    /// Value sizes in bytes, a list to sweep.
    #[arg(long, value_delimiter = ',', default_value = "100")]
    pub value_size: Vec<usize>,
    /// Number of distinct 8-byte keys; each client picks uniformly among them.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// For --op mixed: the share of gets (0.9: 90% gets, 10% puts).
    #[arg(long, default_value_t = 0.5)]
    pub read_ratio: f64,
    /// Seconds of load before each point's window, not measured.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds measured per point and repetition.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Repetitions of every point; the table shows medians.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Seed of the clients' key choice. Default: random (printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// An op not answered in this many milliseconds counts as an error.
    #[arg(long, default_value_t = 2000)]
    pub op_timeout_ms: u64,
    /// A running riptide cluster's client addresses (IP:PORT,..) instead of starting one.
    #[arg(long, value_delimiter = ',', value_parser = plan::parse_endpoint)]
    pub endpoints: Option<Vec<SocketAddr>>,
    /// A running etcd cluster's client addresses (IP:PORT,..) instead of starting one.
    #[arg(long, value_delimiter = ',', value_parser = plan::parse_endpoint)]
    pub etcd_endpoints: Option<Vec<SocketAddr>>,
    /// Port of the riptide nodes bench starts (on 127.0.0.11, .12, ..).
    #[arg(long, default_value_t = 7000)]
    pub port: u16,
    /// Run riptide's nodes from this riptide-node binary instead of riptide's own.
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// One more flag for every riptide node bench starts, after its own (e.g.
    /// --node-arg=--snapshot-amplification=0), to compare node settings. Repeatable.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Where benchmarks are stored (in DIR/bench/<UTC stamp>/).
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
}

/// The flags as a [`Sweep`]; durations that are not finite and positive are refused.
fn sweep(args: &BenchArgs) -> Result<Sweep, Exit> {
    let mut targets = args.target.clone();
    targets.dedup();
    Ok(Sweep {
        targets,
        ops: args.op.clone(),
        clients: args.clients.clone(),
        nodes: args.nodes.clone(),
        value_sizes: args.value_size.clone(),
        keys: args.keys,
        read_ratio: args.read_ratio,
        warmup: seconds("--warmup", args.warmup, true)?,
        duration: seconds("--duration", args.duration, false)?,
        reps: args.reps,
        seed: args.seed.unwrap_or_else(rand::random),
        op_timeout: Duration::from_millis(args.op_timeout_ms.max(1)),
        endpoints: args.endpoints.clone(),
        etcd_endpoints: args.etcd_endpoints.clone(),
        port: args.port,
        node_args: args.node_args.clone(),
    })
}

fn seconds(flag: &str, s: f64, zero_ok: bool) -> Result<Duration, Exit> {
    if !s.is_finite() || s < 0.0 || (s == 0.0 && !zero_ok) || s > 86_400.0 {
        return Err(Exit::bad_args(format!(
            "{flag} {s} is out of range; give seconds above 0 and at most a day"
        )));
    }
    Ok(Duration::from_secs_f64(s))
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchMode {
    /// Under a steady write load, fault the leader again and again (SIGKILL, SIGSTOP, iptables
    /// isolation) and report the time from each fault to the first write another node
    /// acknowledges: p50, p99, max.
    Failover(FailoverArgs),
}

#[derive(clap::Args, Debug)]
pub struct FailoverArgs {
    /// Faults per kind.
    #[arg(long, default_value_t = 20)]
    pub kills: usize,
    /// The kinds of fault on the leader: kill (SIGKILL, restart), pause (SIGSTOP, SIGCONT),
    /// isolate (iptables; skipped with the reason where it cannot work).
    #[arg(long, value_delimiter = ',', default_value = "kill,pause,isolate")]
    pub faults: Vec<Fault>,
    /// Nodes of the cluster bench starts.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Clients writing in a closed loop throughout.
    #[arg(long, default_value_t = 16)]
    pub writers: usize,
    /// Bytes of each written value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Keys the writers choose from.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// A write unanswered this long is tried on the next node (keep it under the 150 ms
    /// election timeout, or it is what gets measured).
    #[arg(long, default_value_t = 100)]
    pub op_timeout_ms: u64,
    /// Seconds of steady load before each fault.
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    /// Seconds to wait for the first write after a fault before counting it as missed.
    #[arg(long, default_value_t = 10.0)]
    pub recovery_timeout: f64,
    /// Seed of the writers' key choice. Default: random (printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Port of the riptide nodes failover starts (on 127.0.0.11, .12, ..).
    #[arg(long, default_value_t = 7000)]
    pub port: u16,
    /// Run riptide's nodes from this riptide-node binary instead of riptide's own.
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Where benchmarks are stored (in DIR/bench/<UTC stamp>/).
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
}

fn failover_plan(args: &FailoverArgs) -> Result<FailoverPlan, Exit> {
    let in_range = |flag: &str, v: usize, high: usize| match (1..=high).contains(&v) {
        true => Ok(v),
        false => Err(Exit::bad_args(format!(
            "{flag} {v} is out of range; use 1 to {high}"
        ))),
    };
    let mut faults = args.faults.clone();
    faults.dedup();
    let nodes = in_range("--nodes", args.nodes, plan::MAX_NODES)?;
    if nodes < 3 {
        return Err(Exit::bad_args(format!(
            "--nodes {nodes}: failover needs 3 or more nodes, so that the others can elect a new leader"
        )));
    }
    Ok(FailoverPlan {
        faults,
        kills: in_range("--kills", args.kills, 1000)?,
        nodes,
        writers: in_range("--writers", args.writers, plan::MAX_CLIENTS)?,
        value_size: in_range("--value-size", args.value_size, plan::MAX_VALUE_SIZE)?,
        keys: args.keys.clamp(1, 10_000_000),
        op_timeout: Duration::from_millis(args.op_timeout_ms.max(1)),
        settle: seconds("--settle", args.settle, true)?,
        recovery_timeout: seconds("--recovery-timeout", args.recovery_timeout, false)?,
        seed: args.seed.unwrap_or_else(rand::random),
        port: args.port,
    })
}

pub fn bench(args: BenchArgs) -> Result<u8, Exit> {
    if let Some(BenchMode::Failover(f)) = &args.mode {
        let plan = failover_plan(f)?;
        return crate::bench::failover::failover(plan, f.node_bin.as_deref(), &f.results_dir);
    }
    let plan = sweep(&args)?;
    crate::bench::sweep(plan, args.node_bin.as_deref(), &args.results_dir)
}
