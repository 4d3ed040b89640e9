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

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use riptide_proto::{FrameReader, FrameWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc::{unbounded_channel, Receiver, UnboundedReceiver};
use tokio::sync::Semaphore;

use super::options::NodeOptions;
use super::raft_loop::{Event, PeerLink};
use crate::protocol::{ClientRequest, ClientResponse, Hello};
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
pub async fn accept_loop(listener: TcpListener, me: NodeId, events: mpsc::Sender<Event>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, remote)) => {
                let events = events.clone();
                tokio::spawn(async move {
                    if let Err(err) = serve_connection(stream, me, events).await {
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

/// Serves one inbound connection: its hello says whether a peer or a client is talking.
async fn serve_connection(
    stream: TcpStream,
    me: NodeId,
    events: mpsc::Sender<Event>,
) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let (read_half, write_half) = stream.into_split();
    let mut frames = FrameReader::new(read_half);
    let Some(hello) = read_hello(&mut frames).await? else {
        return Ok(());
    };
    match hello {
        Hello::Peer { from } => serve_peer(frames, from, me, &events).await,
        Hello::Client => serve_client(frames, write_half, &events).await,
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
/// re-dials when it has something to say).
async fn serve_peer(
    mut frames: FrameReader<OwnedReadHalf>,
    from: NodeId,
    me: NodeId,
    events: &mpsc::Sender<Event>,
) -> anyhow::Result<()> {
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
        if events.send(Event::Peer(msg)).is_err() {
            return Ok(()); // shutting down
        }
    }
}

/// Hands a client's requests to the Raft loop while a writer task sends the answers back as they
/// come (requests may be pipelined). Returns once the client closes and every answer is written.
async fn serve_client(
    mut frames: FrameReader<OwnedReadHalf>,
    write_half: OwnedWriteHalf,
    events: &mpsc::Sender<Event>,
) -> anyhow::Result<()> {
    let (tx, rx) = unbounded_channel::<ClientResponse>();
    let writer = tokio::spawn(write_responses(FrameWriter::new(write_half), rx));
    let result = async {
        while let Some(request) = frames.recv::<ClientRequest>().await? {
            let reply = tx.clone();
            if events.send(Event::Client { request, reply }).is_err() {
                break;
            }
        }
        Ok(())
    }
    .await
    .map_err(|e| frame_error(e, "undecodable client request", "bad frame from client"));
    drop(tx);
    let _ = writer.await;
    result
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
/// An answer that does not encode is skipped; the client's timeout covers it.
async fn write_responses(
    mut writer: FrameWriter<OwnedWriteHalf>,
    mut rx: UnboundedReceiver<ClientResponse>,
) {
    while let Some(response) = rx.recv().await {
        let mut next = Some(response);
        while let Some(response) = next {
            match writer.feed(&response).await {
                Err(riptide_proto::Error::Encode { .. }) | Ok(()) => {}
                Err(_) => return,
            }
            next = rx.try_recv().ok();
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
}

/// Starts one sender task per peer and returns the links the Raft loop sends through.
pub fn start_outbound(opts: &NodeOptions) -> BTreeMap<NodeId, PeerLink> {
    let mut links = BTreeMap::new();
    for (&peer, &addr) in &opts.peers {
        let (tx, rx) = tokio::sync::mpsc::channel(PEER_QUEUE);
        tokio::spawn(send_to_peer(opts.id, opts.listen.ip(), peer, addr, rx));
        links.insert(
            peer,
            PeerLink {
                addr: addr.to_string(),
                tx,
            },
        );
    }
    links
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

/// Keeps a connection to one peer and writes its messages, re-dialling with backoff when it breaks.
/// Messages that arrive while the link is down are dropped: Raft resends what matters.
async fn send_to_peer(
    me: NodeId,
    own_ip: IpAddr,
    peer: NodeId,
    addr: SocketAddr,
    mut rx: Receiver<Message>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut retry_at = tokio::time::Instant::now();
    let mut sink: Option<FrameWriter<TcpStream>> = None;
    while let Some(first) = rx.recv().await {
        if sink.is_none() {
            if tokio::time::Instant::now() < retry_at {
                continue; // still backing off: drop
            }
            match dial(own_ip, addr).await {
                Ok(stream) => {
                    if let Ok(framed) = FrameWriter::open(stream, &Hello::Peer { from: me }).await {
                        tracing::debug!("connected to peer {peer} at {addr}");
                        sink = Some(framed);
                        backoff = BACKOFF_MIN;
                    }
                }
                Err(err) => {
                    tracing::debug!("cannot reach peer {peer} at {addr}: {err}");
                    retry_at = tokio::time::Instant::now() + backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
        }
        let Some(framed) = sink.as_mut() else {
            continue;
        };
        let mut result = framed.feed(&first).await;
        while result.is_ok() {
            match rx.try_recv() {
                Ok(msg) => result = framed.feed(&msg).await,
                Err(_) => break,
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
