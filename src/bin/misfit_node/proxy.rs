//! The proxy in front of the misfit's node: every byte passes through unchanged, except where a
//! misfit says otherwise. Client connections are read frame by frame (so that a `Status` can be
//! swallowed, or a bad frame noticed); peer connections and answers are copied as they are.

use std::net::SocketAddr;

use riptide_proto::frame::{body_len, HEADER_LEN};
use riptide_proto::{decode, ClientOp, ClientRequest, ClientResponse, ClientResult, Frame, Hello};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use crate::Misfit;

/// Serves `front` on a thread of its own, forwarding to the node at `inner`, once the node
/// listens there: the proxy must not accept what the node cannot take yet (a real node binds
/// its address only when it can serve, and conform holds it to that).
pub fn start(front: SocketAddr, inner: SocketAddr, misfits: Vec<Misfit>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    std::thread::spawn(move || {
        runtime.block_on(async move {
            loop {
                if let Ok(mut probe) = TcpStream::connect(inner).await {
                    // Say hello and leave, so that the node logs no silent connection.
                    let hello = riptide_proto::Frame::encode(&Hello::Client).expect("encodes");
                    let _ = probe.write_all(hello.as_bytes()).await;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            let listener = match TcpListener::bind(front).await {
                Ok(listener) => listener,
                Err(e) => {
                    eprintln!("riptide-misfit-node: cannot listen on {front}: {e}");
                    std::process::exit(1);
                }
            };
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let misfits = misfits.clone();
                tokio::spawn(async move {
                    let _ = serve(client, inner, &misfits).await;
                });
            }
        })
    });
    Ok(())
}

/// A frame as read: whole, over the cap (the header only), or cut short (what arrived).
enum Read {
    Frame(Vec<u8>),
    Oversized(Vec<u8>),
    Truncated(Vec<u8>),
    Closed,
}

async fn read_frame(from: &mut OwnedReadHalf) -> std::io::Result<Read> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match from.read(&mut header[got..]).await? {
            0 if got == 0 => return Ok(Read::Closed),
            0 => return Ok(Read::Truncated(header[..got].to_vec())),
            n => got += n,
        }
    }
    let Ok(len) = body_len(header) else {
        return Ok(Read::Oversized(header.to_vec()));
    };
    let mut bytes = header.to_vec();
    bytes.resize(HEADER_LEN + len, 0);
    let mut filled = HEADER_LEN;
    while filled < bytes.len() {
        match from.read(&mut bytes[filled..]).await? {
            0 => {
                bytes.truncate(filled);
                return Ok(Read::Truncated(bytes));
            }
            n => filled += n,
        }
    }
    Ok(Read::Frame(bytes))
}

fn die(misfits: &[Misfit], what: &str) {
    if misfits.contains(&Misfit::DiesOnBadFrame) {
        eprintln!("riptide-misfit-node: a bad frame ({what}); exiting, as dies-on-bad-frame does");
        std::process::exit(3);
    }
}

/// Connects to the node from the client's own IP, so that the node sees the address it would
/// have seen without the proxy (a node admits a peer only from that peer's address).
async fn dial_as(client: &TcpStream, inner: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(client.peer_addr()?.ip(), 0))?;
    socket.connect(inner).await
}

async fn serve(client: TcpStream, inner: SocketAddr, misfits: &[Misfit]) -> std::io::Result<()> {
    let upstream = dial_as(&client, inner).await?;
    let (mut from_client, to_client) = client.into_split();
    let (from_node, mut to_node) = upstream.into_split();
    let hello = match read_frame(&mut from_client).await? {
        Read::Frame(bytes) => bytes,
        Read::Closed => return Ok(()),
        Read::Oversized(bytes) | Read::Truncated(bytes) => {
            tokio::spawn(answers(from_node, to_client, Vec::new()));
            return pass_rest(bytes, from_client, to_node).await;
        }
    };
    to_node.write_all(&hello).await?;
    if !matches!(decode::<Hello>(&hello[HEADER_LEN..]), Ok(Hello::Client)) {
        // A peer, or a first frame that is not a hello (the node judges that one).
        tokio::spawn(answers(from_node, to_client, Vec::new()));
        return pass_rest(Vec::new(), from_client, to_node).await;
    }
    tokio::spawn(answers(from_node, to_client, misfits.to_vec()));
    client_requests(from_client, to_node, misfits).await
}

/// Copies the node's answers back to the client; with a misfit that lies in its answers, frame
/// by frame, rewriting them.
async fn answers(
    mut from_node: OwnedReadHalf,
    mut to_client: OwnedWriteHalf,
    misfits: Vec<Misfit>,
) {
    let lies = misfits
        .iter()
        .any(|m| matches!(m, Misfit::WrongLeaderHint | Misfit::StatusWrongId));
    if lies {
        while let Ok(Read::Frame(frame)) = read_frame(&mut from_node).await {
            let bytes = match decode::<ClientResponse>(&frame[HEADER_LEN..]) {
                Ok(mut answer) => {
                    lie(&mut answer.result, &misfits);
                    Frame::encode(&answer).map_or(frame, |f| f.as_bytes().to_vec())
                }
                Err(_) => frame,
            };
            if to_client.write_all(&bytes).await.is_err() {
                return;
            }
        }
    }
    let _ = tokio::io::copy(&mut from_node, &mut to_client).await;
    let _ = to_client.shutdown().await;
}

/// The lies: a leader hint with the wrong port, a status with another node's id.
fn lie(result: &mut ClientResult, misfits: &[Misfit]) {
    match result {
        ClientResult::NotLeader {
            leader_hint: Some(hint),
        } if misfits.contains(&Misfit::WrongLeaderHint) => {
            if let Ok(addr) = hint.addr.parse::<SocketAddr>() {
                hint.addr = SocketAddr::new(addr.ip(), addr.port().wrapping_add(1)).to_string();
            }
        }
        ClientResult::Status(status) if misfits.contains(&Misfit::StatusWrongId) => {
            status.id += 100;
        }
        _ => {}
    }
}

/// Forwards a client's requests, swallowing `Status` if the misfit says so.
async fn client_requests(
    mut from_client: OwnedReadHalf,
    mut to_node: OwnedWriteHalf,
    misfits: &[Misfit],
) -> std::io::Result<()> {
    loop {
        let frame = match read_frame(&mut from_client).await? {
            Read::Frame(bytes) => bytes,
            Read::Closed => return to_node.shutdown().await,
            Read::Oversized(bytes) => {
                die(misfits, "oversized length prefix");
                return pass_rest(bytes, from_client, to_node).await;
            }
            Read::Truncated(bytes) => {
                die(misfits, "cut short");
                return pass_rest(bytes, from_client, to_node).await;
            }
        };
        match decode::<ClientRequest>(&frame[HEADER_LEN..]) {
            Ok(request)
                if request.op == ClientOp::Status && misfits.contains(&Misfit::SilentStatus) =>
            {
                continue;
            }
            Ok(_) => {}
            Err(_) => die(misfits, "not a ClientRequest"),
        }
        to_node.write_all(&frame).await?;
    }
}

/// `first`, then everything else the client sends, as it is; then the end of the stream.
async fn pass_rest(
    first: Vec<u8>,
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
) -> std::io::Result<()> {
    to.write_all(&first).await?;
    let _ = tokio::io::copy(&mut from, &mut to).await;
    to.shutdown().await
}
