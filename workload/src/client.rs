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
        self.seq += 1;
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
                    return OpResult::Fail(describe_fail(&reason))
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
                Attempt::Answer(ClientResult::Status(_)) => {
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
        if Instant::now() >= deadline && !is_read {
            // Every attempt was definitely refused, but time ran out: still definite.
            return OpResult::Fail(format!(
                "no leader reachable before the timeout ({last_error})"
            ));
        }
        OpResult::Fail(format!("gave up after {MAX_HOPS} tries ({last_error})"))
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
