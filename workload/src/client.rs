//! An async client of a riptide cluster that never lies about what it knows.
//!
//! The client keeps one connection per node, sends each request to the node it believes can
//! answer, and follows `NotLeader` hints. The outcome of an operation is mapped as follows:
//!
//! | what happened | write / cas / append | read |
//! |---|---|---|
//! | `Ok` | `ok` | `ok` with the value |
//! | definite `Fail` (cas mismatch, missing key, bad request) | `fail` | `fail` |
//! | `NotLeader` / could not connect (nothing sent) | retry elsewhere, `fail` when out of tries | same |
//! | timeout, connection lost after sending, `Indeterminate` | **`info`** | `fail` |
//!
//! A read that never came back had no effect on the data, so it is recorded as `fail` (as Jepsen
//! does); only state-changing operations can be indeterminate. Retries happen only after definite
//! failures, with the same client id and sequence number, so even a retry the client believed
//! was never delivered applies at most once.
//!
//! Only writes take sequence numbers (reads never reach the log), counted from 1 in each session.
//! The state machine takes a command of a session it does not know only if its number is 1 (a
//! higher one means the session existed and expired), so a session's first write to reach a log
//! must be number 1: a write that every node refused before appending it (not the leader, nothing
//! sent, unavailable) leaves its number to the next write.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use riptide_proto::{
    ClientOp, ClientRequest, ClientResponse, ClientResult, Connection, FailReason, Hello, NodeId,
    Reply, Status, WriteOp,
};
use tokio::net::TcpSocket;
use tokio::time::Instant;

/// How many nodes one operation may try before giving up with a definite failure. Enough to
/// follow a hint or two through an election on a 7-node cluster.
const MAX_HOPS: usize = 10;
/// Pause before retrying when nobody knows the leader (an election is under way).
const NO_LEADER_PAUSE: Duration = Duration::from_millis(50);

#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Every node of the cluster.
    pub nodes: Vec<(NodeId, SocketAddr)>,
    /// The node reads go to first (writes go to the last known leader).
    pub home: NodeId,
    /// Total time one operation may take, retries included.
    pub op_timeout: Duration,
    /// Address to connect from: outside every partition (127.0.0.1 in a run).
    pub bind: Option<IpAddr>,
}

/// What became of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// Took effect; for reads, the value read.
    Ok(Option<String>),
    /// Definitely did not take effect.
    Fail(String),
    /// May or may not take effect.
    Info(String),
}

/// One logical client: a client id, a sequence number, connections to every node.
pub struct Client {
    opts: ClientOptions,
    conns: HashMap<NodeId, Connection>,
    leader: Option<NodeId>,
    client_id: u64,
    seq: u64,
    next_request: u64,
}

enum Attempt {
    Answer(ClientResult),
    /// Nothing reached the node; try another.
    NotSent(String),
    /// The request may have reached the node; the answer is unknown.
    Lost(String),
}

impl Client {
    pub fn new(opts: ClientOptions, client_id: u64) -> Client {
        Client {
            opts,
            conns: HashMap::new(),
            leader: None,
            client_id,
            seq: 0,
            next_request: 0,
        }
    }

    /// Starts over as a new logical client (after an `info`, a worker becomes a new process).
    pub fn renew(&mut self, client_id: u64) {
        self.client_id = client_id;
        self.seq = 0;
        self.conns.clear();
    }

    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    pub async fn get(&mut self, key: &str) -> OpResult {
        self.execute(ClientOp::Get { key: key.into() }).await
    }

    pub async fn put(&mut self, key: &str, value: &str) -> OpResult {
        self.execute(ClientOp::Write(WriteOp::Put {
            key: key.into(),
            value: value.into(),
        }))
        .await
    }

    pub async fn cas(&mut self, key: &str, expected: &str, new: &str) -> OpResult {
        self.execute(ClientOp::Write(WriteOp::Cas {
            key: key.into(),
            expected: expected.into(),
            new: new.into(),
        }))
        .await
    }

    pub async fn append(&mut self, key: &str, suffix: &str) -> OpResult {
        self.execute(ClientOp::Write(WriteOp::Append {
            key: key.into(),
            suffix: suffix.into(),
        }))
        .await
    }

    /// Asks one node for its status (no retries, no leader following).
    pub async fn status(&mut self, node: NodeId) -> Result<Status, String> {
        let deadline = Instant::now() + self.opts.op_timeout;
        match self.attempt(node, ClientOp::Status, 0, deadline).await {
            Attempt::Answer(ClientResult::Status(status)) => Ok(status),
            Attempt::Answer(other) => Err(format!("unexpected answer {other:?}")),
            Attempt::NotSent(e) | Attempt::Lost(e) => Err(e),
        }
    }

    /// Runs one operation to a definite or indeterminate end.
    pub async fn execute(&mut self, op: ClientOp) -> OpResult {
        let is_read = matches!(op, ClientOp::Get { .. });
        if !is_read {
            self.seq += 1;
        }
        let seq = self.seq;
        let deadline = Instant::now() + self.opts.op_timeout;
        let mut target = if is_read {
            self.opts.home
        } else {
            self.leader.unwrap_or(self.opts.home)
        };
        let mut last_error = String::from("no node tried");
        for _ in 0..MAX_HOPS {
            if Instant::now() >= deadline {
                break;
            }
            match self.attempt(target, op.clone(), seq, deadline).await {
                Attempt::Answer(ClientResult::Ok(reply)) => {
                    if !is_read {
                        self.leader = Some(target);
                    }
                    return OpResult::Ok(match reply {
                        Reply::Value(v) => v,
                        Reply::Done => None,
                    });
                }
                Attempt::Answer(ClientResult::Fail(reason)) => {
                    return self.failed(is_read, &reason)
                }
                Attempt::Answer(ClientResult::Indeterminate { reason }) => {
                    return self.unknown(is_read, format!("indeterminate: {reason}"))
                }
                Attempt::Answer(ClientResult::NotLeader { leader_hint }) => {
                    last_error = format!("node {target} is not the leader");
                    match leader_hint {
                        Some(hint) if hint.id != target => {
                            self.leader = Some(hint.id);
                            target = hint.id;
                        }
                        _ => {
                            self.leader = None;
                            target = self.next_node(target);
                            tokio::time::sleep_until(
                                deadline.min(Instant::now() + NO_LEADER_PAUSE),
                            )
                            .await;
                        }
                    }
                }
                Attempt::Answer(ClientResult::Status(_) | ClientResult::Digest(_)) => {
                    return self.unknown(is_read, "the node answered with a status".into())
                }
                Attempt::NotSent(err) => {
                    last_error = err;
                    if self.leader == Some(target) {
                        self.leader = None;
                    }
                    target = self.next_node(target);
                    tokio::time::sleep_until(deadline.min(Instant::now() + NO_LEADER_PAUSE)).await;
                }
                // A read has no effect, so an unanswered one can simply be asked elsewhere.
                Attempt::Lost(err) if is_read => {
                    last_error = err;
                    target = self.next_node(target);
                }
                Attempt::Lost(err) => return self.unknown(is_read, err),
            }
        }
        self.refused_everywhere(is_read, deadline, last_error)
    }

    /// A definite failure. One the node answered before appending the write (see
    /// [`FailReason`]) leaves the write's sequence number unused.
    fn failed(&mut self, is_read: bool, reason: &FailReason) -> OpResult {
        let before_the_log = matches!(
            reason,
            FailReason::BadRequest(_) | FailReason::Unavailable(_)
        );
        if !is_read && before_the_log {
            self.seq -= 1;
        }
        OpResult::Fail(describe_fail(reason))
    }

    /// Every attempt was definitely refused (not the leader, or nothing sent): nothing was
    /// appended anywhere, so a write's sequence number is left to the next write.
    fn refused_everywhere(&mut self, is_read: bool, deadline: Instant, why: String) -> OpResult {
        if is_read {
            return OpResult::Fail(format!("gave up after {MAX_HOPS} tries ({why})"));
        }
        self.seq -= 1;
        if Instant::now() >= deadline {
            // Time ran out, but every attempt was refused: still definite.
            return OpResult::Fail(format!("no leader reachable before the timeout ({why})"));
        }
        OpResult::Fail(format!("gave up after {MAX_HOPS} tries ({why})"))
    }

    fn unknown(&mut self, is_read: bool, why: String) -> OpResult {
        if is_read {
            OpResult::Fail(why)
        } else {
            OpResult::Info(why)
        }
    }

    fn next_node(&self, after: NodeId) -> NodeId {
        let ids: Vec<NodeId> = self.opts.nodes.iter().map(|(id, _)| *id).collect();
        let k = ids.iter().position(|&id| id == after).unwrap_or(0);
        ids[(k + 1) % ids.len()]
    }

    fn addr(&self, node: NodeId) -> Option<SocketAddr> {
        self.opts
            .nodes
            .iter()
            .find(|(id, _)| *id == node)
            .map(|(_, a)| *a)
    }

    async fn connect(
        &self,
        addr: SocketAddr,
        deadline: Instant,
    ) -> riptide_proto::Result<Connection> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(
            self.opts.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            0,
        ))?;
        let stream = tokio::time::timeout_at(deadline, socket.connect(addr))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        stream.set_nodelay(true)?;
        Connection::open(stream, &Hello::Client).await
    }

    async fn attempt(
        &mut self,
        node: NodeId,
        op: ClientOp,
        seq: u64,
        deadline: Instant,
    ) -> Attempt {
        let Some(addr) = self.addr(node) else {
            return Attempt::NotSent(format!("unknown node {node}"));
        };
        // A cached connection that a dead or restarted node closed would turn a certain "not
        // sent" into an "unknown" if used, so it is dropped before use instead.
        let cached = self.conns.remove(&node).filter(|conn| conn.looks_open());
        let mut conn = match cached {
            Some(conn) => conn,
            None => match self.connect(addr, deadline).await {
                Ok(conn) => conn,
                Err(err) => {
                    return Attempt::NotSent(format!(
                        "cannot connect to node {node} at {addr}: {err}"
                    ))
                }
            },
        };
        self.next_request += 1;
        let id = self.next_request;
        let request = ClientRequest {
            id,
            client_id: self.client_id,
            seq,
            op,
        };
        match conn.send(&request).await {
            Ok(()) => {}
            Err(err) if err.nothing_sent() => {
                return Attempt::NotSent(format!("cannot encode the request: {err}"))
            }
            // Part of the frame may have left: the node might have the request.
            Err(err) => {
                return Attempt::Lost(format!(
                    "connection to node {node} broke while sending: {err}"
                ))
            }
        }
        loop {
            match tokio::time::timeout_at(deadline, conn.recv::<ClientResponse>()).await {
                Err(_) => return Attempt::Lost(format!("timed out waiting for node {node}")),
                Ok(Ok(None)) => return Attempt::Lost(format!("node {node} closed the connection")),
                Ok(Err(err @ riptide_proto::Error::Decode { .. })) => {
                    return Attempt::Lost(format!("undecodable answer from node {node}: {err}"))
                }
                Ok(Err(err)) => {
                    return Attempt::Lost(format!("connection to node {node} broke: {err}"))
                }
                Ok(Ok(Some(response))) => {
                    if response.id != id {
                        continue; // a late answer to an earlier, abandoned request
                    }
                    self.conns.insert(node, conn);
                    return Attempt::Answer(response.result);
                }
            }
        }
    }
}

fn describe_fail(reason: &FailReason) -> String {
    match reason {
        FailReason::CasMismatch { actual } => format!("cas-mismatch: the value is {actual}"),
        FailReason::KeyMissing => "cas on a missing key".into(),
        FailReason::BadRequest(why) => format!("bad request: {why}"),
        FailReason::Unavailable(why) => format!("unavailable: {why}"),
        FailReason::SessionExpired => "the client session expired".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use riptide_proto::{ClientOp, ClientRequest, ClientResponse, ClientResult, Connection};
    use tokio::net::TcpListener;

    use super::*;

    /// A one-node "cluster" on loopback that records the sequence number of every write it is
    /// sent, refuses writes with `NotLeader` while `refuse` is set, fails every CAS with a
    /// mismatch (as an applied CAS would) and applies everything else.
    struct FakeNode {
        addr: SocketAddr,
        refuse: Arc<AtomicBool>,
        write_seqs: Arc<Mutex<Vec<u64>>>,
    }

    async fn fake_node() -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let node = FakeNode {
            addr: listener.local_addr().unwrap(),
            refuse: Arc::default(),
            write_seqs: Arc::default(),
        };
        let (refuse, write_seqs) = (node.refuse.clone(), node.write_seqs.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (refuse, write_seqs) = (refuse.clone(), write_seqs.clone());
                tokio::spawn(async move {
                    let mut conn = Connection::new(stream);
                    let _: Option<Hello> = conn.recv().await.unwrap();
                    while let Ok(Some(request)) = conn.recv::<ClientRequest>().await {
                        let result = answer(&request, &refuse, &write_seqs);
                        let response = ClientResponse {
                            id: request.id,
                            result,
                        };
                        conn.send(&response).await.unwrap();
                    }
                });
            }
        });
        node
    }

    fn answer(
        request: &ClientRequest,
        refuse: &AtomicBool,
        seqs: &Mutex<Vec<u64>>,
    ) -> ClientResult {
        let ClientOp::Write(write) = &request.op else {
            return ClientResult::Ok(Reply::Value(None));
        };
        seqs.lock().unwrap().push(request.seq);
        if refuse.load(Ordering::SeqCst) {
            return ClientResult::NotLeader { leader_hint: None };
        }
        match write {
            WriteOp::Cas { .. } => ClientResult::Fail(FailReason::CasMismatch {
                actual: "other".into(),
            }),
            _ => ClientResult::Ok(Reply::Done),
        }
    }

    #[tokio::test]
    async fn a_sessions_first_write_to_reach_the_log_has_seq_1() {
        let node = fake_node().await;
        let opts = ClientOptions {
            nodes: vec![(1, node.addr)],
            home: 1,
            op_timeout: Duration::from_millis(300),
            bind: None,
        };
        let mut client = Client::new(opts, 7);
        // A read first: it takes no sequence number.
        assert_eq!(client.get("k").await, OpResult::Ok(None));
        // A write refused everywhere never reached a log: its number is used again.
        node.refuse.store(true, Ordering::SeqCst);
        assert!(matches!(client.put("k", "1").await, OpResult::Fail(_)));
        let refused = node.write_seqs.lock().unwrap().len();
        assert!(refused >= 2, "the client retried ({refused} attempts)");
        node.refuse.store(false, Ordering::SeqCst);
        assert_eq!(client.put("k", "2").await, OpResult::Ok(None));
        assert_eq!(client.append("k", "3").await, OpResult::Ok(None));
        // A failed CAS did apply (its failure is its result), so it uses up its number.
        assert!(matches!(client.cas("k", "x", "y").await, OpResult::Fail(_)));
        assert_eq!(client.put("k", "4").await, OpResult::Ok(None));
        // A new session starts at 1 again.
        client.renew(8);
        assert_eq!(client.put("k", "5").await, OpResult::Ok(None));
        let seqs = node.write_seqs.lock().unwrap().clone();
        let mut expected = vec![1; refused];
        expected.extend([1, 2, 3, 4, 1]);
        assert_eq!(seqs, expected);
    }
}
