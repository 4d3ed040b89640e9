//! Overload, end to end: a real single-node cluster (the `riptide-node` binary, which elects
//! itself) over real TCP on loopback, pushed past its bounds.
//!
//! A node under more load than it can take must answer every request it cannot take with
//! `Fail(Unavailable("node overloaded: ..."))` at once (a definite failure: the request never
//! reached Raft), keep answering the rest, never queue without bound, and give back everything a
//! client held once it is gone. Each test starts its own node on its own 127.x address, with its
//! data dir in a temp dir, and kills only that node's pid.

use std::collections::BTreeMap;
use std::io::{BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use riptide_proto::{
    BlockingConnection, ClientOp, ClientRequest, ClientResponse, ClientResult, FailReason, Frame,
    Hello, Reply, Role, WriteOp,
};

/// The node's per-connection bound on requests in flight (`transport::MAX_IN_FLIGHT`).
const MAX_IN_FLIGHT: usize = riptide_node::server::transport::MAX_IN_FLIGHT;

/// A running node, killed (by its own pid) and reaped on drop.
struct Node {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Node {
    /// Starts a single-node cluster on `ip` (a free port) and waits until it leads.
    fn start(ip: [u8; 4]) -> Node {
        Node::start_with(ip, &[])
    }

    /// [`Node::start`] with more flags for the node.
    fn start_with(ip: [u8; 4], flags: &[&str]) -> Node {
        let addr = free_addr(ip);
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("node.log");
        let child = Command::new(env!("CARGO_BIN_EXE_riptide-node"))
            .args(["--id", "1", "--listen", &addr.to_string(), "--log", "warn"])
            .args(flags)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("node.err")).unwrap())
            .spawn()
            .unwrap();
        let node = Node {
            child,
            addr,
            log,
            _dir: dir,
        };
        node.wait_until_leader(Duration::from_secs(10));
        node
    }

    fn wait_until_leader(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.status().is_some_and(|s| s.role == Role::Leader) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the node did not lead within {timeout:?}\n{}", self.logs());
    }

    fn status(&self) -> Option<riptide_proto::Status> {
        riptide_proto::status(self.addr, Duration::from_secs(1)).ok()
    }

    /// Open file descriptors of the node process (sockets included).
    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    fn logs(&self) -> String {
        let err = self.log.with_file_name("node.err");
        let out = std::fs::read_to_string(&self.log).unwrap_or_default();
        out + &std::fs::read_to_string(err).unwrap_or_default()
    }

    fn connect(&self) -> TcpStream {
        let conn = BlockingConnection::open(self.addr, Duration::from_secs(5), &Hello::Client)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}\n{}", self.addr, self.logs()));
        conn.into_inner()
    }

    /// One put on a fresh connection, answered `Ok`.
    fn put_ok(&self, client_id: u64, key: &str) {
        let mut conn = BlockingConnection::new(self.connect());
        conn.send(&put(1, client_id, 1, key)).unwrap();
        let answer: ClientResponse = conn.recv().unwrap().unwrap();
        assert_eq!(answer.result, ClientResult::Ok(Reply::Done), "{answer:?}");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ip` with a port nobody on it is using right now.
fn free_addr(ip: [u8; 4]) -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::from((ip, 0))).unwrap();
    listener.local_addr().unwrap()
}

fn put(id: u64, client_id: u64, seq: u64, key: &str) -> ClientRequest {
    ClientRequest {
        id,
        client_id,
        seq,
        op: ClientOp::Write(WriteOp::Put {
            key: key.into(),
            value: format!("v{id}"),
        }),
    }
}

/// `count` pipelined puts with ids `1..=count`, as the bytes of their frames. A session has at
/// most one command outstanding, so each put is the first command of its own session
/// (`client_id` names the group of sessions; `count` must stay below 2^16).
fn pipelined_puts(client_id: u64, count: u64) -> Vec<u8> {
    assert!(count < 1 << 16);
    let mut bytes = Vec::new();
    for id in 1..=count {
        let request = put(id, (client_id << 16) | id, 1, &format!("k{}", id % 64));
        bytes.extend_from_slice(Frame::encode(&request).unwrap().as_bytes());
    }
    bytes
}

/// How a node answered a batch of requests.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    overloaded: usize,
}

/// Reads `count` answers, checks that ids `1..=count` are each answered exactly once with `Ok`
/// or `Unavailable("node overloaded: ...")`, and counts which.
fn read_answers(stream: &TcpStream, count: u64) -> Tally {
    let mut conn = BlockingConnection::new(BufReader::new(stream));
    let mut seen: BTreeMap<u64, ClientResult> = BTreeMap::new();
    let mut tally = Tally::default();
    for n in 0..count {
        let answer: ClientResponse = match conn.recv() {
            Ok(Some(answer)) => answer,
            other => panic!("answer {n} of {count}: {other:?}"),
        };
        match &answer.result {
            ClientResult::Ok(Reply::Done) => tally.ok += 1,
            ClientResult::Fail(FailReason::Unavailable(why))
                if why.starts_with("node overloaded: ") =>
            {
                tally.overloaded += 1
            }
            other => panic!("request {} got {other:?}", answer.id),
        }
        assert!((1..=count).contains(&answer.id), "unknown id {}", answer.id);
        let earlier = seen.insert(answer.id, answer.result);
        assert!(earlier.is_none(), "request {} answered twice", answer.id);
    }
    tally
}

/// Far more pipelined requests than the in-flight bound on one connection, with the answers left
/// unread for a while: each gets exactly one answer, some are refused, the rest succeed, and
/// the node goes on serving.
#[test]
fn one_connection_past_its_in_flight_bound_gets_unavailable_and_every_answer() {
    let node = Node::start([127, 83, 0, 1]);
    let count = 8 * MAX_IN_FLIGHT as u64;
    let stream = node.connect();
    // The node stops reading requests while this client leaves its answers unread, so the
    // requests go out from another thread.
    let mut sending = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || sending.write_all(&pipelined_puts(7, count)));
    std::thread::sleep(Duration::from_millis(500)); // not reading, yet
    let tally = read_answers(&stream, count);
    sender.join().unwrap().unwrap();
    assert!(tally.overloaded > 0, "nothing refused: {tally:?}");
    assert!(tally.ok > 0, "nothing accepted: {tally:?}");
    // The same connection still serves: a request now is accepted.
    let mut conn = BlockingConnection::new(stream);
    conn.send(&put(count + 1, 7, 1, "after")).unwrap();
    let answer: ClientResponse = conn.recv().unwrap().unwrap();
    assert_eq!(answer.id, count + 1);
    assert_eq!(answer.result, ClientResult::Ok(Reply::Done));
    node.put_ok(8, "fresh");
    assert!(node.status().is_some(), "{}", node.logs());
}

/// Many connections flooding at once (some reading their answers, some hanging up with
/// requests in flight) leave the node answering its status all through the flood and serving
/// after it, and everything the abandoned connections held is given back.
#[test]
fn a_flood_from_many_connections_leaves_the_node_serving() {
    survives_a_flood(Node::start([127, 83, 0, 2]));
}

/// The same flood on a node whose network runtime has one worker thread (`--net-threads 1`):
/// every connection, the flood's and the status queries', shares that thread.
#[test]
fn a_flood_on_one_network_thread_leaves_the_node_serving() {
    survives_a_flood(Node::start_with([127, 83, 0, 4], &["--net-threads", "1"]));
}

/// `--net-threads 0` would leave no thread to serve: the node refuses to start and says so.
#[test]
fn zero_network_threads_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_riptide-node"))
        .args([
            "--id",
            "1",
            "--listen",
            "127.83.0.5:7000",
            "--net-threads",
            "0",
        ])
        .arg("--data-dir")
        .arg(tempfile::tempdir().unwrap().path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--net-threads"), "stderr:\n{err}");
}

fn survives_a_flood(node: Node) {
    let baseline_fds = node.open_fds();
    let flood = Flood::start(&node);
    let mut asked = 0;
    while !flood.is_finished() {
        let status = riptide_proto::status(node.addr, Duration::from_secs(2));
        assert!(status.is_ok(), "status during the flood: {status:?}");
        asked += 1;
        if asked >= 10 {
            // Enough answers seen during the flood: the readers may end after FLOOD_TIME.
            flood.measured.store(true, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let tallies = flood.join();
    assert!(
        asked >= 10,
        "the flood was over before it was measured: {asked} status queries"
    );
    assert!(tallies.iter().all(|t| t.ok > 0), "{tallies:?}");
    assert!(tallies.iter().any(|t| t.overloaded > 0), "{tallies:?}");
    node.put_ok(9, "after-flood");
    // Every flooding connection is gone, and so are its sockets.
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.open_fds() > baseline_fds + 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let fds = node.open_fds();
    assert!(
        fds <= baseline_fds + 2,
        "{fds} fds open, {baseline_fds} before the flood"
    );
}

/// The clients of [`a_flood_from_many_connections_leaves_the_node_serving`]: 16 connections
/// that for [`FLOOD_TIME`] pipeline rounds of twice the in-flight bound and read every answer,
/// and 200 that one after another pipeline 256 requests and hang up without reading. The
/// readers go on past [`FLOOD_TIME`] until `measured` is set: on a loaded machine a status
/// query can take long, and the flood must outlast the queries that watch it.
struct Flood {
    readers: Vec<std::thread::JoinHandle<Tally>>,
    quitters: std::thread::JoinHandle<()>,
    measured: Arc<AtomicBool>,
}

const FLOOD_TIME: Duration = Duration::from_millis(1500);

impl Flood {
    fn start(node: &Node) -> Flood {
        let per_round = 2 * MAX_IN_FLIGHT as u64;
        let until = Instant::now() + FLOOD_TIME;
        let measured = Arc::new(AtomicBool::new(false));
        let readers = (0..16u64)
            .map(|c| {
                let stream = node.connect();
                let measured = measured.clone();
                std::thread::spawn(move || {
                    let mut tally = Tally::default();
                    for round in 0.. {
                        let watched = measured.load(Ordering::SeqCst);
                        if round > 0 && Instant::now() > until && watched {
                            break;
                        }
                        let client_id = ((c + 1) << 32) + round; // a fresh session per round
                        (&stream)
                            .write_all(&pipelined_puts(client_id, per_round))
                            .unwrap();
                        let got = read_answers(&stream, per_round);
                        tally.ok += got.ok;
                        tally.overloaded += got.overloaded;
                    }
                    tally
                })
            })
            .collect();
        let addr = node.addr;
        let quitters = std::thread::spawn(move || {
            for c in 0..200u64 {
                let hello = BlockingConnection::open(addr, Duration::from_secs(5), &Hello::Client);
                let mut stream = hello.unwrap().into_inner();
                stream.write_all(&pipelined_puts(1000 + c, 256)).unwrap();
                drop(stream); // hang up with requests in flight, answers unread
            }
        });
        Flood {
            readers,
            quitters,
            measured,
        }
    }

    fn is_finished(&self) -> bool {
        self.quitters.is_finished() && self.readers.iter().all(|r| r.is_finished())
    }

    fn join(self) -> Vec<Tally> {
        self.quitters.join().unwrap();
        self.readers
            .into_iter()
            .map(|r| r.join().unwrap())
            .collect()
    }
}

/// A client that sends and never reads is disconnected (once the node's answer writer has made
/// no progress for `CLIENT_WRITE_STALL`, 10 s; a kernel that frees a little receive buffer may
/// restart that clock once or twice) instead of the node buffering its answers without end or
/// keeping its connection for ever; the node goes on serving.
#[test]
fn a_client_that_never_reads_is_disconnected() {
    let node = Node::start([127, 83, 0, 3]);
    let mut stream = node.connect();
    let patience = Duration::from_secs(45);
    stream.set_write_timeout(Some(patience)).unwrap();
    // Far more answers than the socket buffers and the answer queue can hold together; once
    // they are full, the node reads no more requests and these writes block.
    let batch = pipelined_puts(11, 4 * MAX_IN_FLIGHT as u64);
    let started = Instant::now();
    let ended = loop {
        match stream.write_all(&batch) {
            Ok(()) if started.elapsed() < patience => {}
            Ok(()) => break Err("the node still reads requests".to_string()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break Err(format!("the node kept the connection: {e}"))
            }
            Err(closed) => break Ok(closed),
        }
    };
    let closed = ended.unwrap_or_else(|why| panic!("after {:?}: {why}", started.elapsed()));
    assert!(
        matches!(
            closed.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        ),
        "{closed:?}"
    );
    node.put_ok(12, "after-quiet");
}
