//! `riptide cluster` (a local cluster for people to poke at) and `riptide client` (the poke).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use riptide_nemesis::Supervisor;
use riptide_node::server::UnsafeBug;
use riptide_proto::NodeId;
use riptide_proto::{ClientOp, WriteOp};
use riptide_store::ReplicaOutcome;
use riptide_workload::{Client, ClientOptions, OpResult};

use crate::cluster::{self as local_cluster, status, ClusterPlan, NodeProgram};
use crate::commands::admin::{AdminCommand, AdminContext};
use crate::exit::{self, Exit};

#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    /// Number of nodes (1 to 7), on 127.0.0.11, .12, ...
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Port every node listens on.
    #[arg(long, default_value_t = 7000)]
    pub port: u16,
    /// Folder for the nodes' data and logs; reuse one to restart a cluster with its data.
    /// Default: a fresh folder under the system temp dir.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Run nodes from this riptide-node binary instead of riptide's built-in node.
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Seed for the nodes' election timeouts.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// TEST ONLY: a deliberate bug for every node (see --help for the list). Repeatable.
    #[arg(long = "unsafe-bug", value_name = "NAME", long_help = UnsafeBug::help())]
    pub unsafe_bugs: Vec<UnsafeBug>,
    /// The cluster's id. Default: the one this --dir's cluster was formed with (kept in
    /// DIR/cluster-id), or a fresh one for a new cluster.
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// A file holding a shared secret the nodes' peer links must prove (at least 16 bytes).
    #[arg(long, value_name = "FILE")]
    pub cluster_secret_file: Option<PathBuf>,
}

/// The cluster id for `dir`: `--cluster-id`, else the one `dir` was formed with, else a fresh
/// one; kept in `dir/cluster-id` so that a restart on the same dir rejoins its cluster.
fn cluster_id_for(dir: &std::path::Path, given: Option<String>) -> Result<String, Exit> {
    let file = dir.join("cluster-id");
    let stored = std::fs::read_to_string(&file)
        .ok()
        .map(|s| s.trim().to_string());
    let id = given
        .or(stored)
        .unwrap_or_else(local_cluster::fresh_cluster_id);
    riptide_node::storage::cluster_id::validate_cluster_id(&id)
        .map_err(|e| Exit::bad_args(format!("--cluster-id: {e}")))?;
    std::fs::write(&file, format!("{id}\n"))
        .map_err(|e| Exit::bad_args(format!("cannot write {}: {e}", file.display())))?;
    Ok(id)
}

/// Starts the cluster, prints where it is, and waits for Ctrl-C.
pub fn cluster(args: ClusterArgs) -> Result<u8, Exit> {
    if !(1..=7).contains(&args.nodes) {
        return Err(Exit::bad_args(format!(
            "--nodes {} is out of range; use 1 to 7",
            args.nodes
        )));
    }
    let program = NodeProgram::resolve(args.node_bin.as_deref())?;
    let dir = match args.dir {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!(
            "riptide-cluster-{}",
            riptide_store::layout::timestamp(riptide_store::layout::now_unix())
        )),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Exit::bad_args(format!("cannot create {}: {e}", dir.display())))?;
    let cluster_id = cluster_id_for(&dir, args.cluster_id)?;
    let secret_file = match &args.cluster_secret_file {
        Some(path) => {
            riptide_node::server::peer_gate::Secret::read(path).map_err(Exit::bad_args)?;
            let path = std::path::absolute(path).map_err(|e| Exit::bad_args(e.to_string()))?;
            Some(path.display().to_string())
        }
        None => None,
    };
    let plan = ClusterPlan {
        nodes: args.nodes,
        port: args.port,
        program,
        dir: dir.clone(),
        seed: args.seed,
        unsafe_bugs: args.unsafe_bugs,
        log_filter: "info".into(),
        node_args: local_cluster::identity_args(&cluster_id, secret_file.as_deref()),
    };
    let supervisor = Arc::new(Supervisor::new().map_err(|e| Exit::crashed(e.to_string()))?);
    plan.start(&supervisor)?;
    let addrs = plan.addrs();
    let leader =
        local_cluster::wait_for_leader(&addrs, &supervisor, &dir, Duration::from_secs(15))?;
    println!(
        "riptide cluster: {} nodes, leader n{leader}, cluster id {cluster_id}, data and logs in {}",
        args.nodes,
        dir.display()
    );
    for (id, addr) in &addrs {
        println!(
            "  n{id}  {addr}  pid {}",
            supervisor.pid(*id).map_or("-".into(), |p| p.to_string())
        );
    }
    println!(
        "try:  riptide client --nodes {} --port {} put k1 hello",
        args.nodes, args.port
    );
    println!(
        "      riptide client --nodes {} --port {} status",
        args.nodes, args.port
    );
    println!("Ctrl-C stops the cluster.");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::crashed(e.to_string()))?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    });
    supervisor.shutdown();
    println!("\nriptide cluster: stopped; data kept in {}", dir.display());
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct ClientArgs {
    /// Number of nodes of the cluster (addresses 127.0.0.11 .. 127.0.0.(10+N)).
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// The nodes' port.
    #[arg(long, default_value_t = 7000)]
    pub port: u16,
    /// Explicit node addresses as ID=IP:PORT instead of --nodes/--port. Repeatable.
    #[arg(long = "node")]
    pub node: Vec<String>,
    /// Give up after this many milliseconds (a write is then of unknown outcome). For an admin
    /// command: per request.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
    /// Admin commands: how long to keep retrying while the leader says "retry shortly" (a
    /// learner still catching up, another change in flight).
    #[arg(long, default_value_t = 30_000)]
    pub wait_ms: u64,
    #[command(subcommand)]
    pub op: ClientCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum ClientCommand {
    /// Read a key (linearizable, through the leader's ReadIndex).
    Get { key: String },
    /// Write a key.
    Put { key: String, value: String },
    /// Set KEY to NEW if it holds EXPECTED.
    Cas {
        key: String,
        expected: String,
        new: String,
    },
    /// Append SUFFIX to KEY's value.
    Append { key: String, suffix: String },
    /// Every node's role, term, leader and log positions.
    Status,
    /// Compare the nodes' state machines: nodes that applied the same index must hold the same
    /// keys, values and sessions. Waits up to --timeout-ms for them to reach one index. Exit 0
    /// they agree, 1 they diverged, 2 not every node could be compared.
    Compare,
    #[command(flatten)]
    Admin(crate::commands::admin::AdminCommand),
}

/// Performs one op. Exit code 0 ok, 1 definite failure, 2 unknown outcome.
pub fn client(args: ClientArgs) -> Result<u8, Exit> {
    let nodes = client_nodes(&args)?;
    let timeout = Duration::from_millis(args.timeout_ms);
    let op = match &args.op {
        ClientCommand::Status => return Ok(print_statuses(&nodes, timeout)),
        ClientCommand::Compare => return Ok(print_comparison(&nodes, timeout)),
        ClientCommand::Admin(AdminCommand::Members) => {
            return Ok(crate::commands::admin::print_members(&nodes, timeout))
        }
        ClientCommand::Admin(command) => {
            let ctx = AdminContext {
                client: ClientOptions {
                    nodes: nodes.clone(),
                    home: nodes[0].0,
                    op_timeout: timeout,
                    bind: None,
                },
                wait: Duration::from_millis(args.wait_ms),
                port: args.port,
            };
            return crate::commands::admin::run(command, ctx);
        }
        ClientCommand::Get { key } => ClientOp::Get { key: key.clone() },
        ClientCommand::Put { key, value } => ClientOp::Write(WriteOp::Put {
            key: key.clone(),
            value: value.clone(),
        }),
        ClientCommand::Cas { key, expected, new } => ClientOp::Write(WriteOp::Cas {
            key: key.clone(),
            expected: expected.clone(),
            new: new.clone(),
        }),
        ClientCommand::Append { key, suffix } => ClientOp::Write(WriteOp::Append {
            key: key.clone(),
            suffix: suffix.clone(),
        }),
    };
    let is_read = matches!(op, ClientOp::Get { .. });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Exit::crashed(e.to_string()))?;
    let result = runtime.block_on(async {
        let opts = ClientOptions {
            nodes: nodes.clone(),
            home: nodes[0].0,
            op_timeout: timeout,
            bind: None,
        };
        Client::new(opts, rand::random::<u64>() | 1)
            .execute(op)
            .await
    });
    Ok(print_result(result, is_read))
}

/// The nodes to talk to: `--node ID=IP:PORT`s, else `--nodes N` at the run's addresses.
fn client_nodes(args: &ClientArgs) -> Result<Vec<(NodeId, SocketAddr)>, Exit> {
    if args.node.is_empty() {
        if !(1..=7).contains(&args.nodes) {
            return Err(Exit::bad_args(format!(
                "--nodes {} is out of range; use 1 to 7",
                args.nodes
            )));
        }
        return Ok((1..=args.nodes as NodeId)
            .map(|id| (id, local_cluster::node_addr(id, args.port)))
            .collect());
    }
    args.node
        .iter()
        .map(|s| {
            let (id, addr) = s
                .split_once('=')
                .ok_or_else(|| Exit::bad_args(format!("--node {s}: expected ID=IP:PORT")))?;
            let id = id
                .parse()
                .map_err(|_| Exit::bad_args(format!("--node {s}: `{id}` is not a node id")))?;
            let addr = addr
                .parse()
                .map_err(|_| Exit::bad_args(format!("--node {s}: `{addr}` is not IP:PORT")))?;
            Ok((id, addr))
        })
        .collect()
}

/// `riptide client compare`: one line per node, then the outcome.
fn print_comparison(nodes: &[(NodeId, SocketAddr)], timeout: Duration) -> u8 {
    let check = crate::run::replicas::compare(nodes, timeout);
    for n in &check.nodes {
        println!(
            "n{} applied {} (term {}): {} keys, {} sessions, data {}, sessions {}",
            n.id,
            n.applied_index,
            n.applied_term,
            n.keys,
            n.sessions,
            n.data_digest,
            n.session_digest
        );
    }
    for (id, err) in &check.unanswered {
        println!("n{id}: no answer ({err})");
    }
    println!("{}", check.note);
    match check.outcome {
        ReplicaOutcome::Agree => 0,
        ReplicaOutcome::Diverged => exit::INVALID,
        ReplicaOutcome::Incomplete => exit::UNKNOWN,
    }
}

/// `riptide client status`: one line per node, the nodes asked for and then every member a
/// configuration they report names (members added at run time). Exit 0 if every node answered,
/// else 1.
fn print_statuses(nodes: &[(NodeId, SocketAddr)], timeout: Duration) -> u8 {
    let mut reachable = 0;
    let mut queue: Vec<(NodeId, SocketAddr)> = nodes.to_vec();
    let mut next = 0;
    while let Some(&(id, addr)) = queue.get(next) {
        next += 1;
        match status::status(addr, timeout) {
            Ok(s) => {
                reachable += 1;
                for (member, at) in &s.membership.addresses {
                    let known = queue.iter().any(|(i, _)| i == member);
                    if let (false, Ok(at)) = (known, at.parse::<SocketAddr>()) {
                        queue.push((*member, at));
                    }
                }
                println!(
                    "n{id} {addr}: {:?} term {} leader {} commit {} applied {} log {}..={} \
                     snapshot {} ({} B) keys {} sessions {} {}",
                    s.role,
                    s.term,
                    s.leader.map_or("-".into(), |l| format!("n{l}")),
                    s.commit_index,
                    s.applied_index,
                    s.first_log_index,
                    s.last_log_index,
                    s.snapshot.last_index,
                    s.snapshot.bytes,
                    s.snapshot.keys,
                    s.snapshot.sessions,
                    s.membership.describe()
                );
            }
            Err(err) => println!("n{id} {addr}: unreachable ({err})"),
        }
    }
    if reachable == queue.len() {
        0
    } else {
        exit::INVALID
    }
}

/// Prints an op's outcome; the exit code is 0 ok, 1 a definite failure, 2 unknown.
fn print_result(result: OpResult, is_read: bool) -> u8 {
    match result {
        OpResult::Ok(Some(value)) => {
            println!("{value}");
            0
        }
        OpResult::Ok(None) if is_read => {
            println!("(nil)");
            0
        }
        OpResult::Ok(None) => {
            println!("ok");
            0
        }
        OpResult::Fail(why) => {
            println!("fail: {why}");
            exit::INVALID
        }
        OpResult::Info(why) => {
            println!("unknown: {why}");
            exit::UNKNOWN
        }
    }
}
