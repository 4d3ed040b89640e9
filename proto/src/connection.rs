//! The async framed connection: typed messages in, typed messages out, over [`crate::frame`].
//!
//! [`Connection`] is a whole TCP connection (a client talking to a node). A side that only reads
//! or only writes uses the halves on their own: a node reads a connection with a [`FrameReader`]
//! and answers a client through a [`FrameWriter`] on another task; a peer link is one
//! [`FrameWriter`] on the socket the node dialled.
//!
//! `recv` is cancellation safe (a partly read frame stays buffered), so it may be raced against a
//! timeout and called again.

use futures::{FutureExt, SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite};

use crate::error::Result;
use crate::frame::{decode_body, Frame, FrameCodec};
use crate::message::Hello;

/// Reads typed messages from a byte stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    frames: FramedRead<R, FrameCodec>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(stream: R) -> FrameReader<R> {
        FrameReader {
            frames: FramedRead::new(stream, FrameCodec),
        }
    }

    /// The next message, or `None` if the other side closed the connection between frames.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        match self.frames.next().await {
            None => Ok(None),
            Some(frame) => decode_body(&frame?).map(Some),
        }
    }

    pub fn get_ref(&self) -> &R {
        self.frames.get_ref()
    }
}

/// Writes typed messages to a byte stream.
#[derive(Debug)]
pub struct FrameWriter<W> {
    frames: FramedWrite<W, FrameCodec>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(stream: W) -> FrameWriter<W> {
        FrameWriter {
            frames: FramedWrite::new(stream, FrameCodec),
        }
    }

    /// Opens a connection the protocol's way: the [`Hello`] first, flushed.
    pub async fn open(stream: W, hello: &Hello) -> Result<FrameWriter<W>> {
        let mut writer = FrameWriter::new(stream);
        writer.send(hello).await?;
        Ok(writer)
    }

    /// Writes one message and flushes it.
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<()> {
        self.frames.send(Frame::encode(msg)?).await
    }

    /// Queues one message without flushing (several `feed`s, then one [`Self::flush`]).
    pub async fn feed<T: Serialize>(&mut self, msg: &T) -> Result<()> {
        self.frames.feed(Frame::encode(msg)?).await
    }

    pub async fn flush(&mut self) -> Result<()> {
        SinkExt::<Frame>::flush(&mut self.frames).await
    }
}

/// Both directions of one TCP connection.
#[derive(Debug)]
pub struct Connection {
    reader: FrameReader<OwnedReadHalf>,
    writer: FrameWriter<OwnedWriteHalf>,
}

impl Connection {
    pub fn new(stream: TcpStream) -> Connection {
        let (read, write) = stream.into_split();
        Connection {
            reader: FrameReader::new(read),
            writer: FrameWriter::new(write),
        }
    }

    /// Says `hello` on a freshly connected stream.
    pub async fn open(stream: TcpStream, hello: &Hello) -> Result<Connection> {
        let mut conn = Connection::new(stream);
        conn.send(hello).await?;
        Ok(conn)
    }

    /// Writes one message and flushes it.
    pub async fn send<T: Serialize>(&mut self, msg: &T) -> Result<()> {
        self.writer.send(msg).await
    }

    /// The next message, or `None` if the other side closed the connection between frames.
    pub async fn recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        self.reader.recv().await
    }

    /// Whether the connection still looks open, without waiting: a peer that died or closed it
    /// has left an EOF or an error to read. (A frame already buffered does not count as either.)
    pub fn looks_open(&self) -> bool {
        let mut byte = [0u8; 1];
        let stream: &TcpStream = self.reader.get_ref().as_ref();
        match stream.peek(&mut byte).now_or_never() {
            None => true,          // nothing to read: open and idle
            Some(Ok(0)) => false,  // EOF
            Some(Ok(_)) => true,   // a late answer is waiting
            Some(Err(_)) => false, // reset
        }
    }

    pub fn into_split(self) -> (FrameReader<OwnedReadHalf>, FrameWriter<OwnedWriteHalf>) {
        (self.reader, self.writer)
    }
}
