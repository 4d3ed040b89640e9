//! The options of `riptide test`, their validation, and the resolved plan (whose stored part,
//! [`TestPlan`], is `test.json`'s).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use riptide_nemesis::NemesisSpec;
use riptide_node::server::UnsafeBug;
use riptide_store::{LivenessPlan, SnapshotPlan, TestPlan};
use riptide_workload::WorkloadKind;

use super::keep_data::KeepData;
use crate::exit::Exit;

/// The faults of a run without `--nemesis`: all of them, narrowed to those that need no network
/// where the machine lacks iptables or network namespaces (`super::faults`).
pub const DEFAULT_NEMESIS: &str = "all";

/// `--concurrency`: a number of workers, or `Kn` for K per node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concurrency {
    Total(usize),
    PerNode(usize),
}

impl FromStr for Concurrency {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("`{s}` is not a concurrency; use a number like 10, or 2n for two per node");
        let value = if let Some(k) = s.strip_suffix('n') {
            Concurrency::PerNode(k.parse().map_err(|_| bad())?)
        } else {
            Concurrency::Total(s.parse().map_err(|_| bad())?)
        };
        match value {
            Concurrency::Total(0) | Concurrency::PerNode(0) => {
                Err("concurrency must be at least 1".into())
            }
            v => Ok(v),
        }
    }
}

impl Concurrency {
    pub fn workers(self, nodes: usize) -> usize {
        match self {
            Concurrency::Total(n) => n,
            Concurrency::PerNode(k) => k * nodes,
        }
    }
}

/// Runs a cluster of real nodes under concurrent clients (and faults), records the history,
/// checks it for linearizability and stores the run.
#[derive(clap::Args, Debug, Clone)]
pub struct TestArgs {
    /// Name of the test; runs are stored under RESULTS_DIR/NAME/TIMESTAMP.
    #[arg(long, default_value = "riptide")]
    pub name: String,
    /// Cluster size: 3, 5 or 7 nodes, on 127.0.0.11, .12, ...
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// How long the workload runs, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub time_limit: f64,
    /// Client workers: a number, or Kn for K per node (2n on 5 nodes = 10).
    #[arg(long, default_value = "2n")]
    pub concurrency: Concurrency,
    /// Total operations per second over all workers; 0 for as fast as they can go.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Operations per key before the workload moves on to a fresh key (keeps checking tractable).
    #[arg(long, default_value_t = 100)]
    pub ops_per_key: u32,
    /// register (read/write/cas on integers, cas-register model) or append (append/read on
    /// strings, kv model).
    #[arg(long, default_value = "register")]
    pub workload: WorkloadKind,
    /// Seed for every random choice (workload, faults, election timeouts); random if not given.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Faults: none, all, or a comma list of kill, pause, partition, loss, delay[:MS], power-cut,
    /// corrupt, restart, transfer-leader, membership[:grow|shrink|replace|stranded|disjoint],
    /// slow-apply[:MS], reorder[:MAX_MS], stall[:AWAKE_MS], stale-candidate[:HOLD_MS] (see
    /// README; all is every one of them but delay, slow-apply, reorder, stall and
    /// stale-candidate). Default: all where iptables, network
    /// namespaces and FUSE work; without iptables no partition, loss or membership
    /// stranded/disjoint, without FUSE no power-cut (a note says what to install).
    #[arg(long)]
    pub nemesis: Option<String>,
    /// Seconds between a fault's start and stop, and between a stop and the next start.
    #[arg(long, default_value_t = 10.0)]
    pub nemesis_interval: f64,
    /// Let a process fault (kill, pause, transfer-leader, ...), a network fault (partition,
    /// loss) and a membership change overlap: faults roll, each lasting a few intervals,
    /// staggered by one (see README).
    #[arg(long)]
    pub nemesis_overlap: bool,
    /// Vary each wait of the nemesis by up to this fraction of --nemesis-interval, seeded (0.75:
    /// waits of 0.25 to 1.75 intervals), so that faults come in many lengths: some heal before
    /// a client's request times out, some outlast it. 0 to 0.9.
    #[arg(long, default_value_t = 0.0)]
    pub nemesis_jitter: f64,
    /// Deal the --nemesis items from a seeded, shuffled deck (each item as many times as its
    /// weight) instead of drawing each start afresh: every item comes up once before any comes
    /// up again, so a short run leaves fewer of them out.
    #[arg(long)]
    pub nemesis_deck: bool,
    /// A client op that gets no answer within this many milliseconds is recorded as info
    /// (writes) or fail (reads).
    #[arg(long, default_value_t = 1000)]
    pub op_timeout_ms: u64,
    /// Every second client waits this long for an answer instead of --op-timeout-ms: a mix of
    /// impatient clients, which give up (and with --retry-indeterminate resend) early, and
    /// patient ones, which still see an answer that comes late (a deposed leader's, a healed
    /// node's). 0: every client waits --op-timeout-ms.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub op_timeout_long_ms: u64,
    /// Each node snapshots its state machine after this many applied entries and discards the log
    /// it covers; small values (e.g. 50) make snapshots and InstallSnapshot happen many times a
    /// minute. 0: never by count.
    #[arg(long, default_value_t = riptide_node::cli::DEFAULT_SNAPSHOT_ENTRIES)]
    pub snapshot_entries: u64,
    /// Or after this many bytes of applied commands (0: never by size).
    #[arg(long, default_value_t = riptide_node::cli::DEFAULT_SNAPSHOT_BYTES)]
    pub snapshot_bytes: u64,
    /// Entries each node keeps behind a snapshot (a follower less far behind catches up from the
    /// log; 0 makes every lagging follower receive a snapshot). Default: 1000, or
    /// --snapshot-entries if that is smaller, so that small snapshot settings really make
    /// lagging followers receive snapshots.
    #[arg(long)]
    pub snapshot_tail: Option<u64>,
    /// TEST ONLY: pass a deliberate bug to every node to prove the bench catches it (see --help
    /// for the list). Repeatable; recorded in test.json.
    #[arg(long = "unsafe-bug", value_name = "NAME", long_help = UnsafeBug::help())]
    pub unsafe_bugs: Vec<UnsafeBug>,
    /// Where runs are stored.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// When to keep the nodes' data dirs (`nodes/n<i>/`, the bulk of a run folder) after the
    /// run: on-failure (removed when the run is valid and complete), always, never. The
    /// history, results, reports and logs are always kept.
    #[arg(long, default_value = "on-failure", value_name = "WHEN")]
    pub keep_data: KeepData,
    /// Run nodes from this riptide-node binary instead of riptide's own built-in node.
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// TCP port every node listens on (each node has its own IP).
    #[arg(long, default_value_t = 7000)]
    pub port: u16,
    /// Seconds the checker may spend before answering unknown for the keys it has not decided.
    #[arg(long, default_value_t = 60.0)]
    pub check_time_limit: f64,
    /// Seconds to wait, after healing, for a leader before the final reads.
    #[arg(long, default_value_t = 15.0)]
    pub recovery_timeout: f64,
    /// Liveness: the share of client ops the cluster must serve in every 3 s slice with no
    /// fault in place (a definite answer: ok, or a cas that found another value); 0 turns that
    /// part of the check off. A run below it is INVALID (unavailable).
    #[arg(long, default_value_t = 0.25)]
    pub liveness_threshold: f64,
    /// Seconds after a fault stops before its stretch is judged (elections, restarts).
    #[arg(long, default_value_t = 3.0)]
    pub liveness_grace: f64,
    /// Log filter for the nodes' logs (RUST_LOG syntax).
    #[arg(long, default_value = "info")]
    pub node_log: String,
    /// Resend a write whose outcome is unknown (timed out, connection lost, indeterminate) up to
    /// this many more times, with the same client id and sequence number, to the next node, as
    /// real clients do. The history records one op; its answer is the first try that knows.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub retry_indeterminate: u32,
    /// How the nodes' leaders serve reads: read-index (a heartbeat round confirms each batch) or
    /// lease (answered locally within a lease shorter than the minimum election timeout;
    /// assumes clocks that drift less than 20%). Passed to every node as --read-mode.
    #[arg(long, value_name = "MODE")]
    pub read_mode: Option<riptide_node::raft::ReadMode>,
    /// End the run at the first key the background checker finds not linearizable (keys are
    /// checked as soon as they retire, past --ops-per-key): the faults stop, the cluster heals,
    /// the final reads run and the run is judged and stored as usual, in seconds instead of the
    /// whole time limit.
    #[arg(long)]
    pub stop_on_invalid: bool,
    /// A file holding a shared secret for the nodes' peer links (at least 16 bytes): every peer
    /// connection then runs an HMAC challenge-response. Recorded in test.json as a path.
    #[arg(long, value_name = "FILE")]
    pub cluster_secret_file: Option<PathBuf>,
    /// No progress bar (a line every few seconds instead).
    #[arg(long)]
    pub no_progress: bool,
    /// Write the run folder's path to this file as soon as the folder exists (for `campaign`,
    /// which then reads the run's results.json).
    #[arg(long, hide = true, value_name = "FILE")]
    pub announce_run_dir: Option<PathBuf>,
}

/// A run's resolved options: the plan stored in `test.json`, plus what only this process needs
/// (the parsed workload and fault spec, where to store, how to show progress).
#[derive(Clone, Debug)]
pub struct RunPlan {
    /// What `test.json` records.
    pub test: TestPlan,
    pub workload: WorkloadKind,
    pub nemesis: NemesisSpec,
    /// `--nemesis` was given: a fault this machine cannot do is then an error, not a fallback.
    pub nemesis_given: bool,
    /// `--nemesis` names `power-cut` itself (not only through `all`): without FUSE that is an
    /// error, not a fallback.
    pub power_cut_named: bool,
    pub results_dir: PathBuf,
    pub keep_data: KeepData,
    pub node_bin: Option<PathBuf>,
    pub no_progress: bool,
    pub announce_run_dir: Option<PathBuf>,
}

fn positive(name: &str, value: f64) -> Result<f64, Exit> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(Exit::bad_args(format!(
            "--{name} must be a positive number of seconds, not {value}"
        )))
    }
}

impl TestArgs {
    /// `--cluster-secret-file`, checked to hold a usable secret, as an absolute path (the nodes
    /// run in the run folder's context, not the caller's directory).
    fn secret_file(&self) -> Result<Option<String>, Exit> {
        let Some(path) = &self.cluster_secret_file else {
            return Ok(None);
        };
        riptide_node::server::peer_gate::Secret::read(path).map_err(Exit::bad_args)?;
        let absolute = std::path::absolute(path).map_err(|e| {
            Exit::bad_args(format!("--cluster-secret-file {}: {e}", path.display()))
        })?;
        Ok(Some(absolute.display().to_string()))
    }

    /// The options that are counts, rates and shares, each within its range.
    fn check_counts(&self) -> Result<(), Exit> {
        if ![3, 5, 7].contains(&self.nodes) {
            return Err(Exit::bad_args(format!(
                "--nodes {} is not supported; use 3, 5 or 7",
                self.nodes
            )));
        }
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return Err(Exit::bad_args(format!(
                "--rate {} must be 0 (unlimited) or a positive number of ops/s",
                self.rate
            )));
        }
        if !(0.0..=1.0).contains(&self.liveness_threshold) {
            return Err(Exit::bad_args(format!(
                "--liveness-threshold {} must be between 0 (off) and 1",
                self.liveness_threshold
            )));
        }
        if !(self.liveness_grace.is_finite() && self.liveness_grace >= 0.0) {
            return Err(Exit::bad_args(format!(
                "--liveness-grace {} must be 0 or more seconds",
                self.liveness_grace
            )));
        }
        if self.ops_per_key == 0 {
            return Err(Exit::bad_args("--ops-per-key must be at least 1"));
        }
        if self.op_timeout_ms < 10 {
            return Err(Exit::bad_args("--op-timeout-ms must be at least 10"));
        }
        if self.op_timeout_long_ms != 0 && self.op_timeout_long_ms <= self.op_timeout_ms {
            return Err(Exit::bad_args(format!(
                "--op-timeout-long-ms {} must be longer than --op-timeout-ms {} (or 0 for none)",
                self.op_timeout_long_ms, self.op_timeout_ms
            )));
        }
        if self.port == 0 {
            return Err(Exit::bad_args("--port must be a fixed port number, not 0"));
        }
        Ok(())
    }

    /// Checks every option and resolves the plan. Errors are one line saying what to change.
    pub fn plan(&self, seed: u64) -> Result<RunPlan, Exit> {
        self.check_counts()?;
        let time_limit_s = positive("time-limit", self.time_limit)?;
        let nemesis_interval_s = positive("nemesis-interval", self.nemesis_interval)?;
        let nemesis_jitter = checked_jitter(self.nemesis_jitter)?;
        let check_time_limit_s = positive("check-time-limit", self.check_time_limit)?;
        let recovery_timeout_s = positive("recovery-timeout", self.recovery_timeout)?;
        let nemesis = self.nemesis.as_deref().unwrap_or(DEFAULT_NEMESIS);
        let nemesis_spec: NemesisSpec = nemesis
            .parse()
            .map_err(|e| Exit::bad_args(format!("--nemesis {nemesis}: {e}")))?;
        let concurrency = self.concurrency.workers(self.nodes);
        let mut unsafe_bugs: Vec<UnsafeBug> = self.unsafe_bugs.clone();
        unsafe_bugs.sort();
        unsafe_bugs.dedup();
        let test = TestPlan {
            name: self.name.clone(),
            nodes: self.nodes,
            time_limit_s,
            concurrency,
            rate: self.rate,
            ops_per_key: self.ops_per_key,
            // About four workers per live key: enough concurrency on a key to expose anomalies,
            // little enough that each key's search stays small.
            live_keys: concurrency.div_ceil(4),
            workload: self.workload.name().to_string(),
            model: match self.workload {
                WorkloadKind::Register => "cas-register",
                WorkloadKind::Append => "kv",
            }
            .to_string(),
            seed,
            nemesis: nemesis_spec.to_string(),
            nemesis_interval_s,
            nemesis_overlap: self.nemesis_overlap,
            nemesis_jitter,
            nemesis_deck: self.nemesis_deck,
            op_timeout_ms: self.op_timeout_ms,
            op_timeout_long_ms: self.op_timeout_long_ms,
            unsafe_bugs: unsafe_bugs.iter().map(|b| b.name().to_string()).collect(),
            port: self.port,
            check_time_limit_s,
            recovery_timeout_s,
            node_log: self.node_log.clone(),
            cluster_id: crate::cluster::fresh_cluster_id(),
            retry_indeterminate: self.retry_indeterminate,
            stop_on_invalid: self.stop_on_invalid,
            read_mode: self.read_mode.map(|m| m.to_string()),
            cluster_secret_file: self.secret_file()?,
            liveness: Some(LivenessPlan {
                threshold: self.liveness_threshold,
                grace_s: self.liveness_grace,
            }),
            snapshot: Some(SnapshotPlan {
                entries: self.snapshot_entries,
                bytes: self.snapshot_bytes,
                tail: self.snapshot_tail.unwrap_or(match self.snapshot_entries {
                    0 => riptide_node::cli::DEFAULT_SNAPSHOT_TAIL,
                    n => n.min(riptide_node::cli::DEFAULT_SNAPSHOT_TAIL),
                }),
            }),
        };
        Ok(RunPlan {
            test,
            workload: self.workload,
            nemesis: nemesis_spec,
            nemesis_given: self.nemesis.is_some(),
            power_cut_named: names_power_cut(self.nemesis.as_deref()),
            results_dir: self.results_dir.clone(),
            keep_data: self.keep_data,
            node_bin: self.node_bin.clone(),
            no_progress: self.no_progress,
            announce_run_dir: self.announce_run_dir.clone(),
        })
    }
}

/// Whether a `--nemesis` value names `power-cut` itself (not only through `all`).
fn names_power_cut(nemesis: Option<&str>) -> bool {
    nemesis.is_some_and(|s| s.split(',').any(|i| i.trim().starts_with("power-cut")))
}

impl RunPlan {
    /// The `--unsafe-bug`s, as the node takes them.
    pub fn unsafe_bugs(&self) -> Vec<UnsafeBug> {
        self.test
            .unsafe_bugs
            .iter()
            .filter_map(|b| b.parse().ok())
            .collect()
    }

    /// The flags every node gets from the plan besides the cluster layout: snapshot settings.
    pub fn node_args(&self) -> Vec<String> {
        let mut args = crate::cluster::identity_args(
            &self.test.cluster_id,
            self.test.cluster_secret_file.as_deref(),
        );
        if let Some(mode) = &self.test.read_mode {
            args.extend(["--read-mode".to_string(), mode.clone()]);
        }
        let Some(s) = &self.test.snapshot else {
            return args;
        };
        args.extend(
            [
                ("--snapshot-entries", s.entries),
                ("--snapshot-bytes", s.bytes),
                ("--snapshot-tail", s.tail),
            ]
            .into_iter()
            .flat_map(|(flag, value)| [flag.to_string(), value.to_string()]),
        );
        args
    }

    pub fn time_limit(&self) -> Duration {
        Duration::from_secs_f64(self.test.time_limit_s)
    }

    pub fn recovery_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.test.recovery_timeout_s)
    }
}

/// `--nemesis-jitter`, refused outside 0 to [`riptide_nemesis::MAX_JITTER`].
fn checked_jitter(jitter: f64) -> Result<f64, Exit> {
    if !(0.0..=riptide_nemesis::MAX_JITTER).contains(&jitter) {
        return Err(Exit::bad_args(format!(
            "--nemesis-jitter {jitter}: must be from 0 to {} (a fraction of --nemesis-interval)",
            riptide_nemesis::MAX_JITTER
        )));
    }
    Ok(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_is_a_number_or_per_node() {
        assert_eq!("10".parse::<Concurrency>().unwrap().workers(5), 10);
        assert_eq!("2n".parse::<Concurrency>().unwrap().workers(5), 10);
        assert_eq!("3n".parse::<Concurrency>().unwrap().workers(7), 21);
        assert!("0".parse::<Concurrency>().is_err());
        assert!("xn".parse::<Concurrency>().unwrap_err().contains("2n"));
    }
}
