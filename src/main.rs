//! `riptide`: a Jepsen-style test bench for Raft. See README.md.

//!
//! This file is only the command line: every command's body is in the `riptide` library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use riptide::commands::{
    analyze, bench, campaign, check, cluster, compare, conform, prune, serve, zoo,
};
use riptide::{exit, run};

/// A Jepsen-style test bench for Raft: a real cluster, concurrent clients, faults, and a
/// linearizability checker that judges what the clients saw.
///
/// Exit codes: 0 valid, 1 invalid, 2 unknown, 254 bad arguments or input, 255 crashed.
#[derive(Parser, Debug)]
#[command(name = "riptide", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a test: start a cluster, drive it (with faults), check the history, store the run.
    Test(run::options::TestArgs),
    /// Run the same test several times (over a matrix of options), stored for comparison.
    Campaign(campaign::CampaignArgs),
    /// Every deliberate bug of the node run N times with one schedule, the correct node M
    /// times: caught k/N, seconds to the first anomaly, false alarms (the bench's report card).
    Zoo(zoo::ZooArgs),
    /// Compare two stored campaigns (or a saved baseline): safety, liveness, performance.
    /// Exit 0 nothing regressed, 1 safety or liveness did, 3 only performance did.
    Compare(compare::CompareArgs),
    /// Check a history file for linearizability (riptide JSONL, Jepsen EDN or log, Porcupine).
    Check(check::CheckArgs),
    /// Re-check a stored run (optionally with another model or time limit); rewrite its
    /// results.json and reports.
    Analyze(analyze::AnalyzeArgs),
    /// Remove old runs and campaigns from the results dir (--keep N, --older-than AGE), never
    /// a saved baseline's; rewrite the index.
    Prune(prune::PruneArgs),
    /// Serve the results dir over HTTP: the index of runs, timelines, plots, histories.
    Serve(serve::ServeArgs),
    /// Check that a node binary keeps the node contract (docs/node-contract.md): flags,
    /// protocol, bad frames, SIGTERM, restarts. Exit 0 it does, 1 it breaks a rule.
    Conform(conform::ConformArgs),
    /// Measure a cluster's throughput, latency and CPU under a closed-loop load, riptide and
    /// etcd side by side; `bench failover`: the time to the first write after the leader dies.
    Bench(bench::BenchArgs),
    /// Start a local cluster and keep it running until Ctrl-C.
    Cluster(cluster::ClusterArgs),
    /// Talk to a running cluster by hand: get, put, cas, append, status.
    Client(cluster::ClientArgs),
    /// Run one Raft node (what `riptide test` starts; same as the riptide-node binary).
    #[command(hide = true)]
    Node(riptide_node::cli::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = match err.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => exit::BAD_ARGS,
            };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    if let Command::Node(args) = cli.command {
        return riptide_node::cli::run(args);
    }
    let result = std::panic::catch_unwind(move || match cli.command {
        Command::Test(args) => run::test(args),
        Command::Campaign(args) => campaign::campaign(args),
        Command::Zoo(args) => zoo::zoo(args),
        Command::Compare(args) => compare::compare(args),
        Command::Check(args) => Ok(check::run(&args) as u8),
        Command::Analyze(args) => analyze::analyze(args),
        Command::Prune(args) => prune::prune(args),
        Command::Serve(args) => serve::serve(args),
        Command::Conform(args) => conform::conform(args),
        Command::Bench(args) => bench::bench(args),
        Command::Cluster(args) => cluster::cluster(args),
        Command::Client(args) => cluster::client(args),
        Command::Node(_) => unreachable!(),
    });
    match result {
        Ok(Ok(code)) => ExitCode::from(code),
        Ok(Err(exit)) => {
            eprintln!("riptide: {}", exit.message);
            ExitCode::from(exit.code)
        }
        Err(_) => {
            eprintln!("riptide: crashed (a bug in riptide); whatever the run recorded is kept in its folder");
            ExitCode::from(exit::CRASHED)
        }
    }
}
