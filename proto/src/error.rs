//! What can go wrong on a connection, said so that a log line is enough to know what happened.

/// An error on a framed connection. Each one ends that connection; none is meant to end a process.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The socket failed (connect, read, write, a timeout of the blocking connection).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A frame header announced, or a message would need, more than the size cap. A reader says
    /// so before reading the body; a writer before writing a byte.
    #[error("frame size too big: {size} bytes, over the {limit}-byte limit")]
    Oversized { size: usize, limit: usize },
    /// The connection closed in the middle of a frame. (The wording of this message and of
    /// `Oversized`'s is the one tokio's length-delimited codec used; node logs are grepped for it.)
    #[error(
        "truncated frame: the connection closed with bytes remaining on stream \
         ({received} of the frame's {expected} bytes arrived)"
    )]
    Truncated { expected: usize, received: usize },
    /// A complete frame whose body is not the message the reader expected.
    #[error("a {size}-byte frame does not decode as {expected}: {source}")]
    Decode {
        expected: &'static str,
        size: usize,
        source: rmp_serde::decode::Error,
    },
    /// A message that MessagePack cannot represent (nothing was written).
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        source: rmp_serde::encode::Error,
    },
    /// The other side closed the connection, between frames, before the answer came.
    #[error("the connection closed before {awaited} arrived")]
    Closed { awaited: &'static str },
    /// A well-formed answer, but not to the question asked.
    #[error("expected {expected}, got {got}")]
    Unexpected { expected: &'static str, got: String },
}

impl Error {
    /// Whether the failed send left nothing on the wire: the message was refused before its first
    /// byte was written (it does not encode, or it is over the size cap).
    pub fn nothing_sent(&self) -> bool {
        matches!(self, Error::Encode { .. } | Error::Oversized { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
