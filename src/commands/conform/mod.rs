//! `riptide conform`: does a node binary keep the node contract (`docs/node-contract.md`)?
//!
//! It starts three nodes of the binary exactly as `riptide test` would (the same
//! [`ClusterPlan`], so the same flags, addresses and data dirs), then checks the contract's
//! rules in order, printing one line per rule as it goes ([`rules`]):
//!
//! 1. the nodes start with the bench's flags and listen on their addresses ([`startup`], on
//!    the [`cluster`] they form);
//! 2. every node answers `Status`, and they elect a leader that all of them name ([`startup`],
//!    asking with [`probe`]);
//! 3. each node dials its peers from its own address ([`peers`]);
//! 4. every request type gets the answer the contract gives it ([`requests`], through one
//!    client [`session`]);
//! 5. bad frames are refused without taking the node down ([`frames`]);
//! 6. SIGTERM stops a node; SIGKILL on all and a restart on their data dirs keeps every
//!    acknowledged write ([`lifecycle`]).
//!
//! A rule whose prerequisite failed is skipped, not failed, so the first FAIL is the one to fix.
//! Exit codes: 0 every rule holds (advisory warnings allowed), 1 a rule is broken, 254 bad
//! arguments (a `--node-bin` that is missing or not executable, a port in use), 255 conform
//! itself failed. Nodes run in a private network namespace when riptide can make one (root or
//! user namespaces), else on the host's loopback at a free port; either way only on 127.0.0.0/8.
//! Everything conform starts it stops (exact pids, the supervisor's), and its folder is removed
//! at the end, on failure too, unless `--keep-dir` names one to keep.

mod cluster;
mod frames;
mod lifecycle;
mod peers;
mod probe;
mod requests;
pub mod rules;
mod session;
mod startup;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use riptide_nemesis::{sandbox, Supervisor};
use riptide_proto::NodeId;

use crate::cluster::{ClusterPlan, NodeProgram};
use crate::exit::{self, Exit};
use cluster::{Bench, WorkDir};
use rules::Findings;
use session::Session;

#[derive(clap::Args, Debug)]
pub struct ConformArgs {
    /// The node binary to check. It is started as `riptide test --node-bin` starts it. Default:
    /// riptide's own node.
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// The port every node listens on (node i on 127.0.0.(10+i)). Default: 7000 inside
    /// riptide's private network namespace, else a free port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Milliseconds a node may take to answer one request.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
    /// Seconds the nodes may take to elect a leader (at the start and after the restart).
    #[arg(long, default_value_t = 15.0)]
    pub election_timeout: f64,
    /// Keep the nodes' data dirs and logs (n1.log, ...) in this folder, created if missing,
    /// instead of a temporary folder removed at the end.
    #[arg(long)]
    pub keep_dir: Option<PathBuf>,
    /// Run on the host's loopback (at a free port unless --port) even where riptide could make
    /// a private network namespace: to watch the nodes with the host's own tools.
    #[arg(long)]
    pub no_sandbox: bool,
    /// One more flag for every node, after the bench's own (e.g. --node-arg=--verbose).
    /// Repeatable.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
}

/// The flags `riptide test` gives every node besides the layout (its snapshot settings), from
/// `test`'s own defaults, so that conform checks exactly what a default run passes.
fn bench_node_args() -> Result<Vec<String>, Exit> {
    #[derive(Parser)]
    struct Defaults {
        #[command(flatten)]
        test: crate::run::options::TestArgs,
    }
    let defaults = Defaults::try_parse_from(["riptide"])
        .map_err(|e| Exit::crashed(format!("riptide test's defaults do not parse: {e}")))?;
    Ok(defaults.test.plan(1)?.node_args())
}

/// A port free on every node's address (the host's loopback is shared with whatever else runs).
fn free_port(nodes: usize) -> Result<u16, Exit> {
    for _ in 0..64 {
        let port = rand::random::<u16>() % 20_000 + 30_000;
        let free = (1..=nodes as NodeId)
            .all(|id| TcpListener::bind(crate::cluster::node_addr(id, port)).is_ok());
        if free {
            return Ok(port);
        }
    }
    Err(Exit::crashed(
        "found no port free on 127.0.0.11-13 in 64 tries; pass --port",
    ))
}

fn work_dir(keep: Option<PathBuf>) -> Result<WorkDir, Exit> {
    let (path, keep) = match keep {
        Some(path) => {
            // Old data dirs there would be recovered by the new nodes: not a fresh cluster.
            let used = std::fs::read_dir(&path).is_ok_and(|mut entries| entries.next().is_some());
            if used {
                return Err(Exit::bad_args(format!(
                    "--keep-dir {} is not empty; give a new or empty folder (the nodes would \
                     recover the data left there)",
                    path.display()
                )));
            }
            (path, true)
        }
        None => {
            let name = format!(
                "riptide-conform-{}-{}",
                std::process::id(),
                riptide_store::layout::now_unix()
            );
            (std::env::temp_dir().join(name), false)
        }
    };
    std::fs::create_dir_all(&path)
        .map_err(|e| Exit::bad_args(format!("cannot create {}: {e}", path.display())))?;
    Ok(WorkDir { path, keep })
}

/// Ctrl-C or SIGTERM: stop after the current check, clean up, exit 130.
fn listen_for_interrupts() -> Result<(tokio::runtime::Runtime, Arc<AtomicBool>), Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Exit::crashed(e.to_string()))?;
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    runtime.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        eprintln!("riptide conform: interrupted; stopping after this check and cleaning up");
        set.store(true, Ordering::SeqCst);
    });
    Ok((runtime, flag))
}

/// Runs `riptide conform`.
pub fn conform(args: ConformArgs) -> Result<u8, Exit> {
    if !(args.election_timeout.is_finite() && args.election_timeout > 0.0) {
        return Err(Exit::bad_args(
            "--election-timeout must be a positive number of seconds",
        ));
    }
    if args.timeout_ms < 10 {
        return Err(Exit::bad_args("--timeout-ms must be at least 10"));
    }
    let program = NodeProgram::resolve(args.node_bin.as_deref())?;
    let mut node_args = bench_node_args()?;
    node_args.extend(args.node_args.iter().cloned());
    // Before any thread: the sandbox needs a single-threaded process.
    let sandboxed = !args.no_sandbox
        && match sandbox::enter() {
            Ok(_) => true,
            Err(err) => {
                eprintln!("riptide conform: note: {err}; running on the host's loopback");
                false
            }
        };
    let (_runtime, interrupted) = listen_for_interrupts()?;
    let port = match (args.port, sandboxed) {
        (Some(port), _) => port,
        (None, true) => 7000,
        (None, false) => free_port(3)?,
    };
    let dir = work_dir(args.keep_dir.clone())?;
    let plan = ClusterPlan {
        nodes: 3,
        port,
        program,
        dir: dir.path.clone(),
        seed: 1,
        unsafe_bugs: Vec::new(),
        log_filter: "info".into(),
        node_args,
    };
    let supervisor = Arc::new(Supervisor::new().map_err(|e| Exit::crashed(e.to_string()))?);
    let bench = Bench {
        plan,
        supervisor,
        timeout: Duration::from_millis(args.timeout_ms),
        election_timeout: Duration::from_secs_f64(args.election_timeout),
    };
    println!(
        "riptide conform: {}, 3 nodes on {}..{} port {port} ({}){}",
        bench.plan.program.describe(),
        bench.addr(1).ip(),
        bench.addr(3).ip(),
        if sandboxed {
            "in a private network namespace"
        } else {
            "on the host's loopback"
        },
        if dir.keep {
            format!(", data and logs in {}", dir.path.display())
        } else {
            String::new()
        }
    );
    println!("  as: {}", bench.command_line(1));
    let findings = checks(&bench, &interrupted);
    bench.supervisor.shutdown();
    let kept = dir.keep;
    drop(dir);
    if interrupted.load(Ordering::SeqCst) {
        return Ok(130);
    }
    Ok(summary(&bench, &findings, kept))
}

/// The last line, and the exit code.
fn summary(bench: &Bench, findings: &Findings, kept: bool) -> u8 {
    let failed = findings.failed();
    if failed.is_empty() {
        println!(
            "riptide conform: {} keeps the node contract",
            bench.plan.program.describe()
        );
        0
    } else {
        println!(
            "riptide conform: {} breaks {} rule{} of the node contract: {} (see docs/node-contract.md)",
            bench.plan.program.describe(),
            failed.len(),
            if failed.len() == 1 { "" } else { "s" },
            failed.join(", ")
        );
        if !kept {
            println!("  (the nodes' logs are removed; rerun with --keep-dir DIR to read them)");
        }
        exit::INVALID
    }
}

/// One step of the checks after the election: adds its findings, may move the session.
type Step<'a> = dyn Fn(&mut Findings, &mut Session) + 'a;

/// Every check, in order; each step needs the ones before it.
fn checks(bench: &Bench, interrupted: &AtomicBool) -> Findings {
    let mut findings = Findings::default();
    let stop = |findings: &mut Findings, rest: &[&'static rules::Rule], why: &str| {
        let done: Vec<&str> = rules::ALL
            .iter()
            .filter(|r| findings.verdict(r).is_some())
            .map(|r| r.id)
            .collect();
        let rest: Vec<&'static rules::Rule> = rest
            .iter()
            .copied()
            .filter(|r| !done.contains(&r.id))
            .collect();
        findings.skip(&rest, why);
    };
    if !startup::start(bench, &mut findings) {
        stop(
            &mut findings,
            &rules::ALL[..rules::ALL.len() - 1],
            "the nodes are not all up",
        );
        findings.add(&rules::LOGS, lifecycle::logs(bench));
        return findings;
    }
    let leader = match startup::elect(bench, &mut findings) {
        Some(leader) => leader,
        None => {
            let why = if findings.passed(&rules::STATUS) {
                "needs a leader that every node names"
            } else {
                "needs every node to answer Status"
            };
            stop(&mut findings, &rules::ALL[..rules::ALL.len() - 3], why);
            lifecycle::sigterm_then_restart(bench, &mut findings, 2);
            stop(&mut findings, &[&rules::RESTART], why);
            findings.add(&rules::LOGS, lifecycle::logs(bench));
            return findings;
        }
    };
    let steps: [&Step; 5] = [
        &|f, _| f.add(&rules::PEER_ADDRESS, peers::check(bench)),
        &|f, s| requests::check(bench, f, s),
        &|f, s| {
            let follower = requests::followers_of(bench, s.leader)[0];
            f.add(&rules::BAD_FRAMES, frames::check(bench, follower))
        },
        &|f, s| {
            let follower = *requests::followers_of(bench, s.leader)
                .last()
                .expect("3 nodes");
            lifecycle::sigterm_then_restart(bench, f, follower)
        },
        &|f, s| {
            if f.verdict(&rules::RESTART).is_none() {
                f.add(&rules::RESTART, lifecycle::restart(bench, s))
            }
        },
    ];
    let mut session = Session::new(bench, rand::random::<u64>() | 1, leader);
    for step in steps {
        if interrupted.load(Ordering::SeqCst) {
            stop(&mut findings, rules::ALL, "interrupted");
            return findings;
        }
        step(&mut findings, &mut session);
    }
    findings.add(&rules::LOGS, lifecycle::logs(bench));
    findings
}
