//! The blocking framed connection, for code outside tokio (the runner's nemesis thread, test
//! helpers), and the one question such code asks: [`status`].
//!
//! Same frames as the async [`crate::Connection`]: it writes [`Frame::encode`]'s bytes and reads
//! with [`body_len`] and [`decode_body`], so the two cannot drift apart.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::frame::{body_len, decode_body, Frame, HEADER_LEN};
use crate::message::{
    ClientOp, ClientRequest, ClientResponse, ClientResult, Hello, StateDigest, Status,
};

/// Typed messages over a blocking byte stream (a `TcpStream` with timeouts, in practice).
#[derive(Debug)]
pub struct BlockingConnection<S = TcpStream> {
    stream: S,
}

impl BlockingConnection<TcpStream> {
    /// Connects to `addr` and says `hello`. `timeout` bounds the connect and every later read
    /// and write.
    pub fn open(addr: SocketAddr, timeout: Duration, hello: &Hello) -> Result<Self> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut conn = BlockingConnection::new(stream);
        conn.send(hello)?;
        Ok(conn)
    }
}

impl<S> BlockingConnection<S> {
    pub fn new(stream: S) -> BlockingConnection<S> {
        BlockingConnection { stream }
    }

    /// The stream back, with whatever is left unread or was written.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

impl<S: Write> BlockingConnection<S> {
    /// Writes one message (nothing at all if it does not encode or is over the cap).
    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<()> {
        let frame = Frame::encode(msg)?;
        self.stream.write_all(frame.as_bytes())?;
        Ok(self.stream.flush()?)
    }
}

impl<S: Read> BlockingConnection<S> {
    /// The next message, or `None` if the other side closed the connection between frames.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        match self.recv_body()? {
            Some(body) => decode_body(&body).map(Some),
            None => Ok(None),
        }
    }

    /// The next frame's body, undecoded (for a caller that wants to show what a peer sent when
    /// it does not decode), or `None` if the other side closed the connection between frames.
    pub fn recv_body(&mut self) -> Result<Option<Vec<u8>>> {
        let mut header = [0u8; HEADER_LEN];
        match read_full(&mut self.stream, &mut header)? {
            0 => return Ok(None),
            HEADER_LEN => {}
            received => {
                return Err(Error::Truncated {
                    expected: HEADER_LEN,
                    received,
                })
            }
        }
        let mut body = vec![0; body_len(header)?];
        let received = read_full(&mut self.stream, &mut body)?;
        if received < body.len() {
            return Err(Error::Truncated {
                expected: HEADER_LEN + body.len(),
                received: HEADER_LEN + received,
            });
        }
        Ok(Some(body))
    }
}

/// Fills `buf` unless the stream ends first; returns how many bytes it got.
fn read_full(stream: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Asks the node at `addr` for its [`Status`], giving up after `timeout` per step (connect,
/// write, read). Never goes through Raft: any live node answers, leader or not.
pub fn status(addr: SocketAddr, timeout: Duration) -> Result<Status> {
    match ask(addr, timeout, ClientOp::Status, "the status")? {
        ClientResult::Status(status) => Ok(*status),
        other => Err(unexpected("a status", other)),
    }
}

/// Asks the node at `addr` for the [`StateDigest`] of its state machine, as [`status`] does.
/// The node walks its whole store for it: for comparing replicas, not for polling.
pub fn state_digest(addr: SocketAddr, timeout: Duration) -> Result<StateDigest> {
    match ask(addr, timeout, ClientOp::Digest, "the state digest")? {
        ClientResult::Digest(digest) => Ok(digest),
        other => Err(unexpected("a state digest", other)),
    }
}

/// One request on a connection of its own, outside any client session.
fn ask(
    addr: SocketAddr,
    timeout: Duration,
    op: ClientOp,
    awaited: &'static str,
) -> Result<ClientResult> {
    let mut conn = BlockingConnection::open(addr, timeout, &Hello::Client)?;
    conn.send(&ClientRequest {
        id: 1,
        client_id: 0,
        seq: 0,
        op,
    })?;
    let response: ClientResponse = conn.recv()?.ok_or(Error::Closed { awaited })?;
    Ok(response.result)
}

fn unexpected(expected: &'static str, got: ClientResult) -> Error {
    Error::Unexpected {
        expected,
        got: format!("{got:?}"),
    }
}
