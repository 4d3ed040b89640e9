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
//! does); only state-changing operations can be indeterminate. Retries happen after definite
//! failures, and, with [`Client::retry_indeterminate`], after unknown outcomes too, always with
//! the same client id and sequence number, so that a node's sessions apply the write at most once
//! (a node that ignores them applies it twice, which is what the retries are there to show).
//! After an unknown outcome only an answer from the state machine is definite: `ok`, or a cas
//! that found another value (a dedup'd retry gets the first application's answer); a refusal
//! before the log, or no leader at all, leaves the write `info`.
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
pub(crate) const MAX_HOPS: usize = 10;
/// Pause before retrying when nobody knows the leader (an election is under way).
pub(crate) const NO_LEADER_PAUSE: Duration = Duration::from_millis(50);

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
    /// More tries for a write whose outcome is unknown.
    retries: u32,
}

/// How one try of an operation ended.
enum Try {
    Known(OpResult),
    /// The write may or may not have taken effect; `last` is the node tried last.
    Unknown {
        why: String,
        last: NodeId,
    },
}

pub(crate) enum Attempt {
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
            retries: 0,
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

    /// The node this client takes for the leader: right after a write's `ok`, the node that
    /// acknowledged it.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
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
            Attempt::Answer(ClientResult::Status(status)) => Ok(*status),
            Attempt::Answer(other) => Err(format!("unexpected answer {other:?}")),
            Attempt::NotSent(e) | Attempt::Lost(e) => Err(e),
        }
    }

    /// Resends a write whose outcome is unknown (timed out, connection lost, `Indeterminate`)
    /// up to `tries` more times, with the same client id and sequence number, to the next node:
    /// as real clients do, and what makes a node that ignores its sessions apply a write twice.
    pub fn retry_indeterminate(&mut self, tries: u32) {
        self.retries = tries;
    }

    /// Runs one operation to a definite or indeterminate end. A write whose try ends unknown is
    /// tried again (see [`Client::retry_indeterminate`]); its answer is then the answer of the
    /// first try that knows, and `info` if none does.
    pub async fn execute(&mut self, op: ClientOp) -> OpResult {
        let is_read = matches!(op, ClientOp::Get { .. });
        if !is_read {
            self.seq += 1;
        }
        let seq = self.seq;
        let tries = if is_read { 1 } else { 1 + self.retries };
        let mut target = if is_read {
            self.opts.home
        } else {
            self.leader.unwrap_or(self.opts.home)
        };
        let mut unknown: Option<String> = None;
        for _ in 0..tries {
            match self.try_once(&op, seq, target, unknown.is_some()).await {
                Try::Known(result) => return result,
                Try::Unknown { why, last } => {
                    unknown = Some(why);
                    self.leader = None;
                    target = self.next_node(last);
                }
            }
        }
        self.unknown(is_read, unknown.unwrap_or_default())
    }

    /// One try, from `target`, following hints, within one op timeout. `after_unknown`: an
    /// earlier try of this write may have taken effect, so only an answer that comes from the
    /// state machine itself (ok, or a cas that found another value) is definite.
    async fn try_once(
        &mut self,
        op: &ClientOp,
        seq: u64,
        mut target: NodeId,
        after_unknown: bool,
    ) -> Try {
        let is_read = matches!(op, ClientOp::Get { .. });
        let deadline = Instant::now() + self.opts.op_timeout;
        let mut last_error = String::from("no node tried");
        let unknown = |why: String, last: NodeId| Try::Unknown { why, last };
        for _ in 0..MAX_HOPS {
            if Instant::now() >= deadline {
                break;
            }
            match self.attempt(target, op.clone(), seq, deadline).await {
                Attempt::Answer(ClientResult::Ok(reply)) => {
                    if !is_read {
                        self.leader = Some(target);
                    }
                    return Try::Known(OpResult::Ok(match reply {
                        Reply::Value(v) => v,
                        Reply::Done => None,
                    }));
                }
                Attempt::Answer(ClientResult::Fail(reason)) => {
                    return Try::Known(self.definite(is_read, &reason, after_unknown));
                }
                Attempt::Answer(ClientResult::Indeterminate { reason }) => {
                    return unknown(format!("indeterminate: {reason}"), target)
                }
                Attempt::Answer(ClientResult::NotLeader { leader_hint }) => {
                    last_error = format!("node {target} is not the leader");
                    target = self.follow_hint(target, leader_hint, deadline).await;
                }
                Attempt::Answer(
                    ClientResult::Status(_) | ClientResult::Digest(_) | ClientResult::Admin(_),
                ) => return unknown("the node answered with a status".into(), target),
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
                Attempt::Lost(err) => return unknown(err, target),
            }
        }
        if after_unknown {
            // Nobody took the retry, but the first try may have taken effect.
            let why = format!("retries after an unknown outcome reached no leader ({last_error})");
            return Try::Known(OpResult::Info(why));
        }
        Try::Known(self.refused_everywhere(is_read, deadline, last_error))
    }

    /// A definite failure's outcome. After an unknown try only a failure the state machine
    /// decided (a cas that found another value or no key) is definite; any other leaves `info`.
    fn definite(&mut self, is_read: bool, reason: &FailReason, after_unknown: bool) -> OpResult {
        let from_state = matches!(
            reason,
            FailReason::CasMismatch { .. } | FailReason::KeyMissing
        );
        if after_unknown && !from_state {
            let why = describe_fail(reason);
            return OpResult::Info(format!("a retry after an unknown outcome failed: {why}"));
        }
        self.failed(is_read, reason)
    }

    /// Where to go after `NotLeader`: the hinted leader, or (no hint) the next node after a pause.
    pub(crate) async fn follow_hint(
        &mut self,
        target: NodeId,
        hint: Option<riptide_proto::LeaderHint>,
        deadline: Instant,
    ) -> NodeId {
        match hint {
            Some(hint) if hint.id != target => {
                self.learn(hint.id, &hint.addr);
                self.leader = Some(hint.id);
                hint.id
            }
            _ => {
                self.leader = None;
                tokio::time::sleep_until(deadline.min(Instant::now() + NO_LEADER_PAUSE)).await;
                self.next_node(target)
            }
        }
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

    /// Remembers where node `id` lives, if this client did not know it: the leader moved to a
    /// member added at runtime. A hint that does not parse is ignored (the client then finds
    /// no address for it and tries the next node).
    pub(crate) fn learn(&mut self, id: NodeId, addr: &str) {
        if self.addr(id).is_some() {
            return;
        }
        if let Ok(addr) = addr.parse::<SocketAddr>() {
            self.opts.nodes.push((id, addr));
        }
    }

    /// Talks to `nodes` from now on, reads first to `home`: the members changed. Connections to
    /// nodes no longer listed are dropped, and so is the leader if it left.
    pub fn follow(&mut self, nodes: Vec<(NodeId, SocketAddr)>, home: NodeId) {
        self.conns
            .retain(|id, _| nodes.iter().any(|(n, _)| n == id));
        if self
            .leader
            .is_some_and(|l| !nodes.iter().any(|(n, _)| *n == l))
        {
            self.leader = None;
        }
        self.opts.nodes = nodes;
        self.opts.home = home;
    }

    pub(crate) fn op_timeout(&self) -> Duration {
        self.opts.op_timeout
    }

    pub(crate) fn home(&self) -> NodeId {
        self.opts.home
    }

    /// Every node this client knows: the ones it was given and those hints named since.
    pub fn nodes(&self) -> &[(NodeId, SocketAddr)] {
        &self.opts.nodes
    }

    pub(crate) fn next_node(&self, after: NodeId) -> NodeId {
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

    pub(crate) async fn attempt(
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
            // No node could take it (too large for a frame): a definite failure, at once.
            Err(err) if err.nothing_sent() => {
                let why = format!("cannot send the request: {err}");
                return Attempt::Answer(ClientResult::Fail(FailReason::BadRequest(why)));
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

pub(crate) fn describe_fail(reason: &FailReason) -> String {
    match reason {
        FailReason::CasMismatch { actual } => format!("cas-mismatch: the value is {actual}"),
        FailReason::KeyMissing => "cas on a missing key".into(),
        FailReason::BadRequest(why) => format!("bad request: {why}"),
        FailReason::Unavailable(why) => format!("unavailable: {why}"),
        FailReason::SessionExpired => "the client session expired".into(),
        FailReason::ChangeRefused { reason, .. } => format!("change refused: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
        /// The next this-many writes get no answer at all (the client times out).
        swallow: Arc<AtomicUsize>,
        /// Writes are refused as `Unavailable` (before the log).
        unavailable: Arc<AtomicBool>,
    }

    async fn fake_node() -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let node = FakeNode {
            addr: listener.local_addr().unwrap(),
            refuse: Arc::default(),
            write_seqs: Arc::default(),
            swallow: Arc::default(),
            unavailable: Arc::default(),
        };
        let state = (
            node.refuse.clone(),
            node.write_seqs.clone(),
            node.swallow.clone(),
            node.unavailable.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (refuse, write_seqs, swallow, unavailable) = state.clone();
                tokio::spawn(async move {
                    let mut conn = Connection::new(stream);
                    let _: Option<Hello> = conn.recv().await.unwrap();
                    while let Ok(Some(request)) = conn.recv::<ClientRequest>().await {
                        let is_write = matches!(request.op, ClientOp::Write(_));
                        if is_write && swallow.load(Ordering::SeqCst) > 0 {
                            swallow.fetch_sub(1, Ordering::SeqCst);
                            write_seqs.lock().unwrap().push(request.seq);
                            continue;
                        }
                        if is_write && unavailable.load(Ordering::SeqCst) {
                            write_seqs.lock().unwrap().push(request.seq);
                            let result = ClientResult::Fail(FailReason::Unavailable("busy".into()));
                            conn.send(&ClientResponse {
                                id: request.id,
                                result,
                            })
                            .await
                            .unwrap();
                            continue;
                        }
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

    fn one_node(node: &FakeNode) -> ClientOptions {
        ClientOptions {
            nodes: vec![(1, node.addr)],
            home: 1,
            op_timeout: Duration::from_millis(150),
            bind: None,
        }
    }

    #[tokio::test]
    async fn a_request_too_large_for_a_frame_fails_at_once_and_leaves_its_number() {
        let node = fake_node().await;
        let mut opts = one_node(&node);
        opts.op_timeout = Duration::from_secs(5);
        let mut client = Client::new(opts, 7);
        let huge = "x".repeat(riptide_proto::MAX_FRAME_BYTES);
        let result = client.put("k", &huge).await;
        // Failed as it is, not after trying every node: no node could have taken it.
        assert!(
            matches!(&result, OpResult::Fail(why)
                if why.contains("frame size too big") && !why.contains("gave up")),
            "{result:?}"
        );
        assert_eq!(client.put("k", "1").await, OpResult::Ok(None));
        assert_eq!(*node.write_seqs.lock().unwrap(), [1]);
    }

    #[tokio::test]
    async fn an_unknown_write_is_retried_with_the_same_number_and_takes_the_retrys_answer() {
        let node = fake_node().await;
        let mut client = Client::new(one_node(&node), 7);
        client.retry_indeterminate(2);
        node.swallow.store(1, Ordering::SeqCst);
        assert_eq!(client.put("k", "1").await, OpResult::Ok(None));
        // Two unanswered tries, then the answer.
        node.swallow.store(2, Ordering::SeqCst);
        assert_eq!(client.append("k", "2").await, OpResult::Ok(None));
        assert_eq!(*node.write_seqs.lock().unwrap(), [1, 1, 2, 2, 2]);
        // Every try unknown: info, and the number stays used.
        node.swallow.store(3, Ordering::SeqCst);
        assert!(matches!(client.put("k", "3").await, OpResult::Info(_)));
        assert_eq!(client.put("k", "4").await, OpResult::Ok(None));
        assert_eq!(node.write_seqs.lock().unwrap()[5..], [3, 3, 3, 4]);
    }

    #[tokio::test]
    async fn after_an_unknown_try_only_the_state_machine_is_definite() {
        let node = fake_node().await;
        let mut client = Client::new(one_node(&node), 7);
        client.retry_indeterminate(1);
        // The retry is refused before the log: the first try may still have applied.
        node.swallow.store(1, Ordering::SeqCst);
        node.unavailable.store(true, Ordering::SeqCst);
        let result = client.put("k", "1").await;
        assert!(
            matches!(&result, OpResult::Info(why) if why.contains("busy")),
            "{result:?}"
        );
        node.unavailable.store(false, Ordering::SeqCst);
        // A cas that found another value is the state machine's answer: definite.
        node.swallow.store(1, Ordering::SeqCst);
        assert!(matches!(client.cas("k", "x", "y").await, OpResult::Fail(_)));
        // Without retries an unknown write is info at once, and reads are never retried this way.
        let mut plain = Client::new(one_node(&node), 8);
        node.swallow.store(1, Ordering::SeqCst);
        assert!(matches!(plain.put("k", "2").await, OpResult::Info(_)));
    }
}
