//! TCP transport: one listener per node for peers and clients, one outbound connection per peer.
//!
//! Frames are `riptide_proto`'s (a [`FrameReader`] per inbound connection, a [`FrameWriter`] per
//! answer stream and per outbound peer link). Every connection starts with a [`Hello`] frame. Peer connections are one-way: node A sends its
//! messages to B over the connection A dialled, and B answers over the one B dialled. Each node
//! binds only its own address and dials *from* it, so an iptables rule on (source, destination)
//! matches exactly the traffic of one link.
//!
//! Hostile or broken input never takes the node down: a frame over the size limit, a frame that
//! does not decode, a wrong first frame or a silent connection each close that connection with a
//! logged error.
//!
//! # Overload
//!
//! No inbound path waits without bound, and none blocks a tokio worker:
//! - a peer's message that does not fit in the Raft loop's queue is dropped and counted (Raft
//!   tolerates loss: heartbeats and probes resend what matters);
//! - a client request that does not fit, or that would put more than [`MAX_IN_FLIGHT`] requests
//!   of its connection in flight, is answered at once with `Fail(Unavailable("node overloaded:
//!   ..."))`. It never reached Raft, so the failure is definite and the client may retry;
//! - each connection's answers wait in a queue of [`RESPONSE_QUEUE`] slots. A request takes its
//!   slot before it is forwarded, so the Raft loop never waits to answer. When every slot is
//!   taken (the client is slow to read), the connection reads no more requests until one is
//!   free: plain TCP backpressure, nothing more is buffered. A client that takes no answer bytes for
//!   [`CLIENT_WRITE_STALL`] is not reading at all, and its connection is closed.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use riptide_proto::{FrameReader, FrameWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc::{channel, OwnedPermit, Receiver, Sender};
use tokio::sync::Semaphore;

use super::options::NodeOptions;
use super::peer_gate::{PeerGate, PeerHello, Refusal, REFUSED_BACKOFF};
use super::raft_loop::{queued_bytes, ClientReply, EventSender, PeerLink, Refused};
use super::reorder::{LateQueue, LinkShuffle, Outgoing, Reorder};
use crate::protocol::{ClientRequest, ClientResponse, ClientResult, FailReason, Hello};
use crate::raft::Message;
use crate::types::NodeId;

/// A connection must say hello within this time, or it is closed.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// An inbound peer connection with no frame for this long is closed; a live leader sends a
/// heartbeat every 50 ms, and a quiet link is re-dialled on demand by its owner.
const PEER_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connecting to a peer gives up after this long. Dropped SYNs (a partition) would otherwise hang
/// for the kernel's full retry schedule.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Unacknowledged data older than this aborts the connection (`TCP_USER_TIMEOUT`). Without it a
/// partitioned link stays "up" with exponential retransmission backoff, and when the partition
/// heals it can take many seconds before the next retransmission notices.
const TCP_USER_TIMEOUT_MS: u32 = 2_000;
/// Reconnect backoff bounds after a failed dial. The cap is short so that a healed link is back
/// within a few heartbeats: a longer one left a healed cluster waiting up to a second to elect.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_millis(250);
/// Messages queued per peer before the Raft loop starts dropping them (Raft tolerates loss).
const PEER_QUEUE: usize = 4096;
/// Open connections at most; past this, new ones wait in the accept backlog.
const MAX_CONNECTIONS: usize = 1024;
/// Requests one client connection may have in flight (forwarded to the Raft loop, not yet
/// answered); past it, a request is answered `Unavailable` at once. A workload client has one
/// request in flight at a time, so only a flood meets it; and it keeps one connection to a small
/// share (1/12) of the loop's client queue, so that a flood on one connection leaves room for
/// the others.
pub const MAX_IN_FLIGHT: usize = 1024;
/// Answers one connection may hold unwritten, counting the slots its requests in flight have
/// reserved: room for every request in flight plus [`MAX_IN_FLIGHT`] answers waiting for the
/// client to read them. While it is full, the connection reads no more requests.
pub const RESPONSE_QUEUE: usize = 2 * MAX_IN_FLIGHT;
/// A client that takes no answer bytes for this long is not reading: its connection is closed
/// instead of holding its place among [`MAX_CONNECTIONS`] for ever.
const CLIENT_WRITE_STALL: Duration = Duration::from_secs(10);

/// What every inbound connection shares: the way to the Raft loop and the overload counters.
struct Inbound {
    me: NodeId,
    gate: Arc<PeerGate>,
    events: EventSender,
    dropped_peer_messages: AtomicU64,
    refused_requests: AtomicU64,
}

impl Inbound {
    /// Counts one more refusal and says whether to log it (at 1, 2, 4, 8...: rate-limited).
    fn count(counter: &AtomicU64) -> Option<u64> {
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        n.is_power_of_two().then_some(n)
    }
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts connections forever, one task each.
pub async fn accept_loop(
    listener: TcpListener,
    me: NodeId,
    gate: Arc<PeerGate>,
    events: EventSender,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let inbound = Arc::new(Inbound {
        me,
        gate,
        events,
        dropped_peer_messages: AtomicU64::new(0),
        refused_requests: AtomicU64::new(0),
    });
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, remote)) => {
                let inbound = inbound.clone();
                tokio::spawn(async move {
                    if let Err(err) = serve_connection(stream, remote, &inbound).await {
                        tracing::warn!("connection from {remote} closed: {err}");
                    }
                    drop(permit);
                });
            }
            Err(err) => {
                tracing::warn!("accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves one inbound connection: its hello says whether a peer or a client is talking. A peer
/// must pass the [`PeerGate`] first.
async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    inbound: &Inbound,
) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let (read_half, mut write_half) = stream.into_split();
    let mut frames = FrameReader::new(read_half);
    let Some(hello) = read_hello(&mut frames).await? else {
        return Ok(());
    };
    match hello {
        Hello::Peer {
            from,
            cluster,
            nonce,
            listen,
        } => {
            let hello = PeerHello {
                from,
                cluster: &cluster,
                nonce,
                listen: listen.as_deref(),
            };
            match inbound
                .gate
                .admit(remote, hello, &mut frames, &mut write_half)
                .await
            {
                Ok(()) => serve_peer(frames, from, inbound).await,
                // Logged and counted by the gate.
                Err(Refusal::Refused(_)) => Ok(()),
                Err(Refusal::Broken(why)) => anyhow::bail!("peer {from}: {why}"),
            }
        }
        Hello::Client => serve_client(frames, write_half, inbound).await,
    }
}

/// The first frame, which must be a [`Hello`] and must come within [`HELLO_TIMEOUT`]. `None` if
/// the connection closed without a word.
async fn read_hello(frames: &mut FrameReader<OwnedReadHalf>) -> anyhow::Result<Option<Hello>> {
    match tokio::time::timeout(HELLO_TIMEOUT, frames.recv::<Hello>()).await {
        Err(_) => anyhow::bail!("no hello within {HELLO_TIMEOUT:?}"),
        Ok(hello) => {
            hello.map_err(|e| frame_error(e, "first frame is not a Hello", "bad first frame"))
        }
    }
}

/// Hands a peer's messages to the Raft loop, checking that each is from that peer and to us.
/// Ends quietly when the peer closes the link or stays silent for [`PEER_IDLE_TIMEOUT`] (it
/// re-dials when it has something to say). A message that finds the Raft loop's queue full is
/// dropped and counted.
async fn serve_peer(
    mut frames: FrameReader<OwnedReadHalf>,
    from: NodeId,
    inbound: &Inbound,
) -> anyhow::Result<()> {
    let me = inbound.me;
    loop {
        let msg: Message = match tokio::time::timeout(PEER_IDLE_TIMEOUT, frames.recv()).await {
            Err(_) | Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(msg))) => msg,
            Ok(Err(e)) => {
                return Err(frame_error(
                    e,
                    format!("undecodable message from peer {from}"),
                    format!("bad frame from peer {from}"),
                ))
            }
        };
        if msg.from != from || msg.to != me {
            anyhow::bail!(
                "peer {from} sent a message labelled {} -> {}",
                msg.from,
                msg.to
            );
        }
        match inbound.events.peer(msg) {
            Ok(()) => {}
            Err(Refused::Full(())) => {
                if let Some(dropped) = Inbound::count(&inbound.dropped_peer_messages) {
                    tracing::warn!(dropped, "Raft loop queue full; dropping peer messages");
                }
            }
            Err(Refused::Closed) => return Ok(()), // shutting down
        }
    }
}

/// Hands a client's requests to the Raft loop while a writer task sends the answers back as they
/// come (requests may be pipelined). Returns once the client closes and every answer is written,
/// or at once when the writer gives up (a broken socket, a client that does not read).
async fn serve_client(
    mut frames: FrameReader<OwnedReadHalf>,
    write_half: OwnedWriteHalf,
    inbound: &Inbound,
) -> anyhow::Result<()> {
    let (tx, rx) = channel::<ClientResponse>(RESPONSE_QUEUE);
    let mut writer = tokio::spawn(write_responses(FrameWriter::new(write_half), rx));
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let ended = tokio::select! {
        ended = read_requests(&mut frames, &tx, &in_flight, inbound) => ended,
        written = &mut writer => return written.unwrap_or(Ok(())),
    };
    drop(tx);
    let written = writer.await.unwrap_or(Ok(()));
    ended.and(written)
}

/// Takes a free answer slot (waiting for the client to read, if none is free), then reads a
/// request and hands it to [`admit`]; until the client closes or the node shuts down (`Ok`), or
/// a frame is not a request (`Err`; what is already answered is still written).
async fn read_requests(
    frames: &mut FrameReader<OwnedReadHalf>,
    tx: &Sender<ClientResponse>,
    in_flight: &Arc<Semaphore>,
    inbound: &Inbound,
) -> anyhow::Result<()> {
    loop {
        let Ok(slot) = tx.clone().reserve_owned().await else {
            return Ok(()); // the writer is gone
        };
        let request = match frames.recv::<ClientRequest>().await {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()),
            Err(e) => {
                let err = frame_error(e, "undecodable client request", "bad frame from client");
                return Err(err);
            }
        };
        if !admit(request, slot, in_flight, inbound) {
            return Ok(()); // shutting down
        }
    }
}

/// Forwards one request, with the answer slot reserved for it, to the Raft loop or, if its
/// connection has [`MAX_IN_FLIGHT`] requests in flight or the loop's queue is full, answers
/// `Unavailable` at once. `false` if the loop is gone.
fn admit(
    request: ClientRequest,
    slot: OwnedPermit<ClientResponse>,
    in_flight: &Arc<Semaphore>,
    inbound: &Inbound,
) -> bool {
    let id = request.id;
    let Ok(permit) = in_flight.clone().try_acquire_owned() else {
        let why = "too many requests in flight on this connection";
        slot.send(overloaded(id, why));
        return true;
    };
    match inbound
        .events
        .client(request, ClientReply::new(slot, permit))
    {
        Ok(()) => true,
        Err(Refused::Full(reply)) => {
            reply.send(overloaded(id, "the Raft loop's queue is full"));
            if let Some(refused) = Inbound::count(&inbound.refused_requests) {
                tracing::warn!(refused, "Raft loop queue full; refusing client requests");
            }
            true
        }
        Err(Refused::Closed) => false,
    }
}

/// The definite failure of a request that never reached Raft.
fn overloaded(id: u64, why: &str) -> ClientResponse {
    let reason = FailReason::Unavailable(format!("node overloaded: {why}"));
    ClientResponse {
        id,
        result: ClientResult::Fail(reason),
    }
}

/// Says what broke a connection: a frame that arrived whole but is not the expected message
/// (`undecodable`), or a broken frame or socket (`bad`).
fn frame_error(
    err: riptide_proto::Error,
    undecodable: impl Display,
    bad: impl Display,
) -> anyhow::Error {
    match err {
        riptide_proto::Error::Decode { .. } => anyhow::anyhow!("{undecodable}: {err}"),
        _ => anyhow::anyhow!("{bad}: {err}"),
    }
}

/// Writes answers until every sender is gone or the connection breaks, one flush per burst.
/// An answer that does not encode is skipped; the client's timeout covers it. A write that makes
/// no progress for [`CLIENT_WRITE_STALL`] ends it: the client is not reading.
async fn write_responses(
    mut writer: FrameWriter<OwnedWriteHalf>,
    mut rx: Receiver<ClientResponse>,
) -> anyhow::Result<()> {
    let stalled = || anyhow::anyhow!("client read no answer for {CLIENT_WRITE_STALL:?}");
    while let Some(response) = rx.recv().await {
        let mut next = Some(response);
        while let Some(response) = next {
            match tokio::time::timeout(CLIENT_WRITE_STALL, writer.feed(&response)).await {
                Err(_) => return Err(stalled()),
                Ok(Err(riptide_proto::Error::Encode { .. }) | Ok(())) => {}
                Ok(Err(_)) => return Ok(()), // the client is gone
            }
            next = rx.try_recv().ok();
        }
        match tokio::time::timeout(CLIENT_WRITE_STALL, writer.flush()).await {
            Err(_) => return Err(stalled()),
            Ok(Err(_)) => return Ok(()),
            Ok(Ok(())) => {}
        }
    }
    Ok(())
}

/// Opens outbound peer links: one sender task per peer, on the network's runtime. The Raft loop
/// opens the command line's peers at start and the members a configuration adds later
/// ([`super::raft_loop::PeerLinks`]).
#[derive(Clone)]
pub struct LinkOpener {
    runtime: tokio::runtime::Handle,
    gate: Arc<PeerGate>,
    own_ip: IpAddr,
    /// The reorder hook every link follows.
    reorder: Arc<Reorder>,
}

impl LinkOpener {
    pub fn new(runtime: tokio::runtime::Handle, gate: Arc<PeerGate>, own_ip: IpAddr) -> Self {
        LinkOpener {
            runtime,
            gate,
            own_ip,
            reorder: Arc::default(),
        }
    }

    /// The reorder hook every link follows (the `Reorder` admin request sets it).
    pub fn reorder(&self) -> &Arc<Reorder> {
        &self.reorder
    }

    /// The gate inbound peer connections pass.
    pub fn gate(&self) -> &PeerGate {
        &self.gate
    }

    /// Starts the sender task of a link to `peer` at `addr`; it ends when the link is dropped.
    pub fn open(&self, peer: NodeId, addr: SocketAddr) -> PeerLink {
        let (tx, rx) = tokio::sync::mpsc::channel(PEER_QUEUE);
        let queue = PeerQueue {
            rx,
            bytes: Arc::new(AtomicUsize::new(0)),
        };
        let queued = queue.bytes.clone();
        let link = OutboundLink {
            gate: self.gate.clone(),
            own_ip: self.own_ip,
            peer,
            addr,
        };
        let shuffle = LinkShuffle::new(self.reorder.clone(), peer);
        self.runtime.spawn(send_to_peer(link, queue, shuffle));
        PeerLink {
            addr: addr.to_string(),
            tx,
            queued,
        }
    }

    /// One link per peer of the command line.
    pub fn open_all(&self, opts: &NodeOptions) -> BTreeMap<NodeId, PeerLink> {
        opts.peers
            .iter()
            .map(|(&peer, &addr)| (peer, self.open(peer, addr)))
            .collect()
    }
}

/// Dials `addr` from our own IP, so the source address names this node.
async fn dial(own_ip: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match own_ip {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(own_ip, 0))?;
    set_user_timeout(socket.as_raw_fd());
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn set_user_timeout(fd: i32) {
    let value: libc::c_uint = TCP_USER_TIMEOUT_MS;
    // SAFETY: a valid socket fd and a c_uint option value of the right size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            &value as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        );
    }
}

/// The receiving end of a peer link's queue, which keeps the queue's byte count (see
/// [`super::raft_loop::PEER_QUEUE_BYTES`]) as messages leave it.
struct PeerQueue {
    rx: Receiver<Message>,
    bytes: Arc<AtomicUsize>,
}

impl PeerQueue {
    async fn recv(&mut self) -> Option<Message> {
        let msg = self.rx.recv().await?;
        self.taken(&msg);
        Some(msg)
    }

    fn try_recv(&mut self) -> Option<Message> {
        let msg = self.rx.try_recv().ok()?;
        self.taken(&msg);
        Some(msg)
    }

    fn taken(&self, msg: &Message) {
        self.bytes.fetch_sub(queued_bytes(msg), Ordering::Relaxed);
    }
}

/// One outbound peer link: who we are, whom we dial.
struct OutboundLink {
    gate: Arc<PeerGate>,
    own_ip: IpAddr,
    peer: NodeId,
    addr: SocketAddr,
}

impl OutboundLink {
    /// Dials the peer and passes its admission. `Err` carries how long to wait before the next
    /// try: the backoff after a failed dial, [`REFUSED_BACKOFF`] after a refusal.
    async fn connect(&self, backoff: Duration) -> Result<FrameWriter<OwnedWriteHalf>, Duration> {
        let (peer, addr) = (self.peer, self.addr);
        let stream = dial(self.own_ip, addr).await.map_err(|err| {
            tracing::debug!("cannot reach peer {peer} at {addr}: {err}");
            backoff
        })?;
        match self.gate.introduce(stream, peer).await {
            Ok(sink) => {
                tracing::debug!("connected to peer {peer} at {addr}");
                Ok(sink)
            }
            Err(Refusal::Refused(reason)) => {
                tracing::warn!("peer {peer} at {addr} is not admitted: {reason}");
                Err(REFUSED_BACKOFF)
            }
            Err(Refusal::Broken(why)) => {
                tracing::debug!("handshake with peer {peer} at {addr} failed: {why}");
                Err(backoff)
            }
        }
    }
}

/// Keeps a connection to one peer and writes its messages, re-dialling with backoff when it breaks.
/// Messages that arrive while the link is down are dropped: Raft resends what matters. With the
/// [`reorder`](super::reorder) hook on, some wait in `late` and go out after later ones.
async fn send_to_peer(link: OutboundLink, mut rx: PeerQueue, mut shuffle: LinkShuffle) {
    let peer = link.peer;
    let mut backoff = BACKOFF_MIN;
    let mut retry_at = tokio::time::Instant::now();
    let mut sink: Option<FrameWriter<OwnedWriteHalf>> = None;
    let mut late = LateQueue::default();
    let mut batch: Vec<Message> = Vec::new();
    loop {
        batch.clear();
        let first = match late.next_due() {
            None => rx.recv().await.map(Outgoing::Fresh),
            Some(due) => tokio::select! {
                msg = rx.recv() => msg.map(Outgoing::Fresh),
                _ = tokio::time::sleep_until(due) => late.pop_due().map(Outgoing::Late),
            },
        };
        let Some(first) = first else {
            break; // the link was dropped
        };
        late.route(first, &mut shuffle, &mut batch);
        while let Some(msg) = rx.try_recv() {
            late.route(Outgoing::Fresh(msg), &mut shuffle, &mut batch);
        }
        while let Some(msg) = late.pop_due() {
            batch.push(msg);
        }
        if batch.is_empty() {
            continue;
        }
        if sink.is_none() {
            if tokio::time::Instant::now() < retry_at {
                continue; // still backing off: drop
            }
            match link.connect(backoff).await {
                Ok(framed) => {
                    sink = Some(framed);
                    backoff = BACKOFF_MIN;
                }
                Err(wait) => {
                    retry_at = tokio::time::Instant::now() + wait;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
        }
        let Some(framed) = sink.as_mut() else {
            continue;
        };
        let mut result = Ok(());
        for msg in &batch {
            result = framed.feed(msg).await;
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = framed.flush().await;
        }
        if let Err(err) = result {
            tracing::debug!("link to peer {peer} broke: {err}");
            sink = None;
        }
    }
}
