//! The frame: a 4-byte big-endian body length, then a MessagePack body of at most
//! [`MAX_FRAME_BYTES`].
//!
//! This is the only framing code. The async [`crate::Connection`] runs it as a tokio codec
//! ([`FrameCodec`]); the blocking [`crate::BlockingConnection`] calls the same [`Frame::encode`]
//! and [`body_len`] around `read_exact`/`write_all`.

use bytes::{Buf, BufMut, BytesMut};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{Error, Result};

/// The largest frame body a node accepts or sends. AppendEntries batches are capped well below it
/// (see `raft::Config::max_batch_bytes`), so only a broken or hostile sender ever reaches it.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The length prefix: a `u32`, big-endian, counting the body only.
pub const HEADER_LEN: usize = 4;

/// Encodes a message as a frame body (MessagePack, structs as maps so that fields can be added).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    rmp_serde::to_vec_named(msg)
}

/// Decodes a frame body.
pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, rmp_serde::decode::Error> {
    rmp_serde::from_slice(body)
}

/// One whole frame, header included, ready to write: it can only be made by [`Frame::encode`],
/// which checks the size cap, so every `Frame` is one a reader accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame(Vec<u8>);

impl Frame {
    /// Encodes `msg` behind its length prefix, refusing it if the body is over the cap.
    pub fn encode<T: Serialize>(msg: &T) -> Result<Frame> {
        let mut bytes = vec![0; HEADER_LEN];
        rmp_serde::encode::write_named(&mut bytes, msg).map_err(|source| Error::Encode {
            what: type_name::<T>(),
            source,
        })?;
        let size = bytes.len() - HEADER_LEN;
        check_size(size)?;
        bytes[..HEADER_LEN].copy_from_slice(&(size as u32).to_be_bytes());
        Ok(Frame(bytes))
    }

    /// The bytes on the wire: header, then body.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The body length a header announces, refused if it is over the cap (before anything is
/// allocated for it).
pub fn body_len(header: [u8; HEADER_LEN]) -> Result<usize> {
    let size = u32::from_be_bytes(header) as usize;
    check_size(size)?;
    Ok(size)
}

/// Decodes a complete frame body as a `T`; the error names `T`.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    rmp_serde::from_slice(body).map_err(|source| Error::Decode {
        expected: type_name::<T>(),
        size: body.len(),
        source,
    })
}

fn check_size(size: usize) -> Result<()> {
    if size > MAX_FRAME_BYTES {
        return Err(Error::Oversized {
            size,
            limit: MAX_FRAME_BYTES,
        });
    }
    Ok(())
}

/// The type's own name without its module path (`Hello`, not `riptide_proto::message::Hello`).
fn type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    if full.contains('<') {
        full
    } else {
        full.rsplit("::").next().unwrap_or(full)
    }
}

/// The framing as a tokio codec: yields frame bodies, writes [`Frame`]s.
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameCodec;

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>> {
        let Some(header) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let total = HEADER_LEN + body_len(header.try_into().expect("HEADER_LEN bytes"))?;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        Ok(Some(buf.split_to(total - HEADER_LEN)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>> {
        if let Some(body) = self.decode(buf)? {
            return Ok(Some(body));
        }
        if buf.is_empty() {
            return Ok(None); // closed between frames: a clean end
        }
        let expected = match buf.get(..HEADER_LEN) {
            Some(header) => HEADER_LEN + body_len(header.try_into().expect("HEADER_LEN bytes"))?,
            None => HEADER_LEN,
        };
        Err(Error::Truncated {
            expected,
            received: buf.len(),
        })
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = Error;

    fn encode(&mut self, frame: Frame, buf: &mut BytesMut) -> Result<()> {
        buf.put_slice(frame.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Hello;

    #[test]
    fn a_frame_is_a_big_endian_length_then_the_body() {
        let frame = Frame::encode(&Hello::peer(3, "c1")).unwrap();
        let body = encode(&Hello::peer(3, "c1")).unwrap();
        assert_eq!(
            &frame.as_bytes()[..HEADER_LEN],
            &(body.len() as u32).to_be_bytes()
        );
        assert_eq!(&frame.as_bytes()[HEADER_LEN..], &body[..]);
    }

    #[test]
    fn a_peer_hello_without_cluster_or_nonce_decodes_as_an_unnamed_cluster() {
        // What a node of an older riptide, or a forger who knows only `from`, sends.
        #[derive(serde::Serialize)]
        enum Legacy {
            Peer { from: u64 },
        }
        let body = encode(&Legacy::Peer { from: 3 }).unwrap();
        let hello: Hello = decode(&body).unwrap();
        assert_eq!(hello, Hello::peer(3, ""));
        let full = Hello::Peer {
            from: 3,
            cluster: "c1".into(),
            nonce: Some(vec![7; 16]),
            listen: Some("127.0.0.13:7000".into()),
        };
        assert_eq!(decode::<Hello>(&encode(&full).unwrap()).unwrap(), full);
    }

    #[test]
    fn nonces_and_proofs_go_as_bin_bytes() {
        use crate::message::{PeerAdmission, PeerProof};
        let nonce = vec![0xfe; 16];
        let mut bin = vec![0xc4, 16];
        bin.extend_from_slice(&nonce);
        let has_bin = |body: &[u8]| body.windows(bin.len()).any(|w| w == bin);
        let hello = Hello::Peer {
            from: 3,
            cluster: "c1".into(),
            nonce: Some(nonce.clone()),
            listen: None,
        };
        let challenge = PeerAdmission::Challenge {
            nonce: nonce.clone(),
            proof: nonce.clone(),
        };
        let proof = PeerProof {
            proof: nonce.clone(),
        };
        assert!(has_bin(&encode(&hello).unwrap()));
        assert!(has_bin(&encode(&challenge).unwrap()));
        assert!(has_bin(&encode(&proof).unwrap()));
        assert_eq!(decode::<Hello>(&encode(&hello).unwrap()).unwrap(), hello);
        assert_eq!(
            decode::<PeerAdmission>(&encode(&challenge).unwrap()).unwrap(),
            challenge
        );
        assert_eq!(
            decode::<PeerProof>(&encode(&proof).unwrap()).unwrap(),
            proof
        );
    }

    #[test]
    fn a_header_over_the_cap_is_refused_with_its_size() {
        let size = MAX_FRAME_BYTES + 1;
        let err = body_len((size as u32).to_be_bytes()).unwrap_err();
        assert!(matches!(err, Error::Oversized { size: s, limit: MAX_FRAME_BYTES } if s == size));
        assert_eq!(
            err.to_string(),
            format!("frame size too big: {size} bytes, over the {MAX_FRAME_BYTES}-byte limit")
        );
        assert_eq!(
            body_len((MAX_FRAME_BYTES as u32).to_be_bytes()).unwrap(),
            MAX_FRAME_BYTES
        );
    }

    #[test]
    fn a_message_over_the_cap_is_refused_before_writing() {
        let err = Frame::encode(&"x".repeat(MAX_FRAME_BYTES)).unwrap_err();
        assert!(matches!(err, Error::Oversized { size, .. } if size > MAX_FRAME_BYTES));
        assert!(err.nothing_sent());
    }

    #[test]
    fn a_decode_error_names_the_expected_type() {
        let err = decode_body::<Hello>(&[0xc1]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Decode {
                    expected: "Hello",
                    size: 1,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err
            .to_string()
            .starts_with("a 1-byte frame does not decode as Hello: "));
    }
}
