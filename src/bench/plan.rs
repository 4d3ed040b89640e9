//! What one sweep measures: the targets, the ops, the grid of points, and how long each lasts.
//!
//! A *point* is one (target, op, nodes, clients, value size). Every point is measured `reps`
//! times; the table and `bench.json`'s `rows` give the median of each figure over those
//! repetitions, and `samples` keeps every repetition.

use std::net::SocketAddr;
use std::time::Duration;

use crate::exit::Exit;

/// The system under load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// riptide's own node (`riptide node`), a cluster on 127.0.0.(10+i).
    Riptide,
    /// etcd (Debian's `etcd-server`), a cluster on 127.0.0.(20+i), through its v3 gRPC API.
    Etcd,
    /// riptide's own node with every data dir on riptide-faultfs, as `--nemesis power-cut`
    /// runs it: `--target riptide,riptide-faultfs` measures what the FUSE layer costs.
    #[value(name = "riptide-faultfs")]
    #[serde(rename = "riptide-faultfs")]
    RiptideFaultfs,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Riptide => "riptide",
            Target::Etcd => "etcd",
            Target::RiptideFaultfs => "riptide-faultfs",
        }
    }
}

/// What each client does in its loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Write a key (one log entry, committed by a majority).
    Put,
    /// Read a key, linearizably (riptide: the leader's ReadIndex; etcd: its default quorum read).
    Get,
    /// Gets and puts, a `--read-ratio` share of them gets.
    Mixed,
    /// Compare-and-set a key from the value last seen to a new one (a log entry either way).
    Cas,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::Mixed => "mixed",
            Op::Cas => "cas",
        }
    }
}

/// The most clients one point may have: far above what two cores can keep busy, low enough
/// that a typo (`--clients 100000`) is refused instead of opening 100,000 connections.
pub const MAX_CLIENTS: usize = 4096;
/// The largest value: 1 MiB, under etcd's default 1.5 MiB request limit and riptide's 16 MiB
/// frame limit even with MessagePack's overhead.
pub const MAX_VALUE_SIZE: usize = 1 << 20;
/// Clusters riptide can start: node addresses 127.0.0.11 to 127.0.0.17.
pub const MAX_NODES: usize = 7;

/// A checked sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub targets: Vec<Target>,
    pub ops: Vec<Op>,
    pub clients: Vec<usize>,
    pub nodes: Vec<usize>,
    pub value_sizes: Vec<usize>,
    pub keys: u64,
    pub read_ratio: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub reps: usize,
    pub seed: u64,
    pub op_timeout: Duration,
    /// A running riptide cluster's client addresses, instead of starting one.
    pub endpoints: Option<Vec<SocketAddr>>,
    /// A running etcd cluster's client addresses, instead of starting one.
    pub etcd_endpoints: Option<Vec<SocketAddr>>,
    pub port: u16,
    /// Flags for every riptide node bench starts, after its own (`--node-arg`).
    pub node_args: Vec<String>,
}

impl Sweep {
    /// The node counts to measure `target` at: a running cluster's size, else `--nodes`.
    pub fn nodes_for(&self, target: Target) -> Vec<usize> {
        match self.endpoints_of(target) {
            Some(endpoints) => vec![endpoints.len()],
            None => self.nodes.clone(),
        }
    }

    /// Every node count some target is measured at, in the order first given.
    pub fn node_counts(&self) -> Vec<usize> {
        let mut counts = Vec::new();
        for &target in &self.targets {
            for n in self.nodes_for(target) {
                if !counts.contains(&n) {
                    counts.push(n);
                }
            }
        }
        counts
    }

    /// The targets measured at `nodes` nodes, in the order given.
    pub fn targets_at(&self, nodes: usize) -> Vec<Target> {
        let mut targets = self.targets.clone();
        targets.retain(|&t| self.nodes_for(t).contains(&nodes));
        targets
    }

    /// The port of the nodes bench starts for `target`: `--port`, except that riptide on
    /// faultfs takes the next one when plain riptide is measured too (both clusters are up at
    /// once, on the same addresses).
    pub fn port_of(&self, target: Target) -> u16 {
        match target == Target::RiptideFaultfs && self.targets.contains(&Target::Riptide) {
            true => self.port.checked_add(1).unwrap_or(self.port - 1),
            false => self.port,
        }
    }

    pub fn endpoints_of(&self, target: Target) -> Option<&Vec<SocketAddr>> {
        match target {
            Target::Riptide => self.endpoints.as_ref(),
            Target::Etcd => self.etcd_endpoints.as_ref(),
            // Bench mounts the disks itself: never a running cluster.
            Target::RiptideFaultfs => None,
        }
    }

    /// Whether bench starts every cluster itself (then it may run them in a private network
    /// namespace; a running cluster is reachable only from the host's).
    pub fn starts_every_cluster(&self) -> bool {
        self.endpoints.is_none() && self.etcd_endpoints.is_none()
    }

    /// Whether a target needs its clusters started in the sandbox's mount namespace.
    pub fn needs_mounts(&self) -> bool {
        self.targets.contains(&Target::RiptideFaultfs)
    }

    /// Every check that needs more than one flag, and the ranges of each.
    pub fn check(&self) -> Result<(), Exit> {
        check_range("--clients", &self.clients, 1, MAX_CLIENTS)?;
        check_range("--nodes", &self.nodes, 1, MAX_NODES)?;
        check_range("--value-size", &self.value_sizes, 1, MAX_VALUE_SIZE)?;
        if self.keys == 0 || self.keys > 10_000_000 {
            return Err(Exit::bad_args(format!(
                "--keys {} is out of range; use 1 to 10000000 (keys are 8 bytes: k0000000..)",
                self.keys
            )));
        }
        if !(0.0..=1.0).contains(&self.read_ratio) {
            return Err(Exit::bad_args(format!(
                "--read-ratio {} is out of range; use a share of gets from 0 to 1 (0.9: 90% gets)",
                self.read_ratio
            )));
        }
        if self.reps == 0 {
            return Err(Exit::bad_args("--reps 0: use 1 or more repetitions"));
        }
        if self.duration.is_zero() {
            return Err(Exit::bad_args(
                "--duration 0: give each point some seconds to measure (e.g. --duration 10)",
            ));
        }
        if self.needs_mounts() && !self.starts_every_cluster() {
            return Err(Exit::bad_args(
                "--target riptide-faultfs starts its own cluster in a private namespace, which \
                 cannot reach one given with --endpoints or --etcd-endpoints; measure those in \
                 a run of their own",
            ));
        }
        for target in &self.targets {
            if let Some(endpoints) = self.endpoints_of(*target) {
                if endpoints.is_empty() {
                    return Err(Exit::bad_args(format!(
                        "--{}endpoints is empty; give IP:PORT,IP:PORT,..",
                        if *target == Target::Etcd { "etcd-" } else { "" }
                    )));
                }
            }
        }
        Ok(())
    }
}

fn check_range(flag: &str, values: &[usize], low: usize, high: usize) -> Result<(), Exit> {
    if values.is_empty() {
        return Err(Exit::bad_args(format!(
            "{flag} is empty; give one value or a list (e.g. {flag} {low},{high})"
        )));
    }
    match values.iter().find(|v| !(low..=high).contains(*v)) {
        Some(v) => Err(Exit::bad_args(format!(
            "{flag} {v} is out of range; use {low} to {high}"
        ))),
        None => Ok(()),
    }
}

/// `IP:PORT,IP:PORT,..` (clap splits at the commas), each checked.
pub fn parse_endpoint(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not IP:PORT (e.g. 127.0.0.11:7000)"))
}

/// The key of index `i`: 8 bytes, `k` and seven digits.
pub fn key(i: u64) -> String {
    format!("k{i:07}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep() -> Sweep {
        Sweep {
            targets: vec![Target::Riptide],
            ops: vec![Op::Put],
            clients: vec![1, 16],
            nodes: vec![3],
            value_sizes: vec![100],
            keys: 1000,
            read_ratio: 0.5,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(1),
            reps: 1,
            seed: 1,
            op_timeout: Duration::from_secs(2),
            endpoints: None,
            etcd_endpoints: None,
            port: 7000,
            node_args: Vec::new(),
        }
    }

    #[test]
    fn keys_are_eight_bytes() {
        assert_eq!(key(0), "k0000000");
        assert_eq!(key(9_999_999).len(), 8);
    }

    #[test]
    fn out_of_range_flags_are_refused_by_name() {
        assert!(sweep().check().is_ok());
        let mut s = sweep();
        s.clients = vec![1, 0];
        let err = s.check().unwrap_err().message;
        assert!(
            err.contains("--clients 0") && err.contains("1 to 4096"),
            "{err}"
        );
        let mut s = sweep();
        s.nodes = vec![9];
        assert!(s.check().unwrap_err().message.contains("--nodes 9"));
        let mut s = sweep();
        s.read_ratio = 1.5;
        assert!(s.check().unwrap_err().message.contains("--read-ratio"));
        let mut s = sweep();
        s.value_sizes = vec![0];
        assert!(s.check().unwrap_err().message.contains("--value-size 0"));
    }

    #[test]
    fn a_running_cluster_is_measured_at_its_own_size() {
        let mut s = sweep();
        s.nodes = vec![3, 5];
        s.endpoints = Some(vec!["127.0.0.11:7000".parse().unwrap()]);
        assert_eq!(s.nodes_for(Target::Riptide), vec![1]);
        assert_eq!(s.nodes_for(Target::Etcd), vec![3, 5]);
        assert!(!s.starts_every_cluster());
    }

    #[test]
    fn targets_of_one_size_are_measured_together() {
        let mut s = sweep();
        s.targets = vec![Target::Riptide, Target::Etcd];
        s.nodes = vec![3, 5];
        assert_eq!(s.node_counts(), vec![3, 5]);
        assert_eq!(s.targets_at(5), vec![Target::Riptide, Target::Etcd]);
        // A running riptide of 3 nodes beside etcd clusters of 3 and 5 that bench starts.
        s.endpoints = Some(vec!["127.0.0.11:7000".parse().unwrap(); 3]);
        assert_eq!(s.node_counts(), vec![3, 5]);
        assert_eq!(s.targets_at(3), vec![Target::Riptide, Target::Etcd]);
        assert_eq!(s.targets_at(5), vec![Target::Etcd]);
    }

    #[test]
    fn riptide_on_faultfs_beside_plain_riptide_takes_the_next_port() {
        let mut s = sweep();
        s.targets = vec![Target::Riptide, Target::RiptideFaultfs];
        assert_eq!(s.port_of(Target::Riptide), 7000);
        assert_eq!(s.port_of(Target::RiptideFaultfs), 7001);
        s.targets = vec![Target::RiptideFaultfs];
        assert_eq!(s.port_of(Target::RiptideFaultfs), 7000);
        s.targets = vec![Target::Riptide, Target::RiptideFaultfs];
        s.port = u16::MAX;
        assert_eq!(s.port_of(Target::RiptideFaultfs), u16::MAX - 1);
    }
}
