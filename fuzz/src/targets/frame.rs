//! The frame codec: a byte stream cut into random reads. Every frame the codec yields is within
//! the size limit, and a decoded body is tried as each message a node reads.

use arbitrary::Unstructured;
use bytes::BytesMut;
use riptide_node::raft::Message;
use riptide_proto::frame::{decode_body, FrameCodec};
use riptide_proto::{ClientRequest, Frame, Hello, MAX_FRAME_BYTES};
use tokio_util::codec::Decoder;

use super::kind;
use crate::Target;

pub const TARGET: Target = Target {
    name: "frame",
    run,
    seeds,
};

fn run(input: &[u8]) -> String {
    // The first two bytes choose how the stream is cut into reads; the rest is the stream.
    let (cuts, stream) = input.split_at(input.len().min(2));
    let mut cut = Unstructured::new(cuts);
    let step = 1 + cut.int_in_range(0usize..=63).unwrap_or(0);
    let mut codec = FrameCodec;
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in stream.chunks(step) {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(body)) => frames.push(body_kind(&body)),
                Ok(None) => break,
                Err(err) => return label(&frames, &format!("refused {}", kind(&err))),
            }
        }
    }
    match codec.decode_eof(&mut buf) {
        Ok(Some(body)) => frames.push(body_kind(&body)),
        Ok(None) => {}
        Err(err) => return label(&frames, &format!("end {}", kind(&err))),
    }
    label(&frames, "clean end")
}

/// What a body decodes as; asserts the limit.
fn body_kind(body: &[u8]) -> &'static str {
    assert!(
        body.len() <= MAX_FRAME_BYTES,
        "a frame over the limit was yielded"
    );
    if let Ok(msg) = decode_body::<Message>(body) {
        return msg.body.kind();
    }
    if decode_body::<ClientRequest>(body).is_ok() {
        return "ClientRequest";
    }
    if decode_body::<Hello>(body).is_ok() {
        return "Hello";
    }
    "undecodable"
}

fn label(frames: &[&str], end: &str) -> String {
    let mut kinds: Vec<&str> = frames.to_vec();
    kinds.sort();
    kinds.dedup();
    format!(
        "{} frame(s) [{}], {end}",
        super::bucket(frames.len()),
        kinds.join(" ")
    )
}

fn seeds() -> Vec<Vec<u8>> {
    let frame = |f: Frame| f.as_bytes().to_vec();
    let hello = frame(Frame::encode(&Hello::peer(2, "c1")).unwrap());
    let client = frame(Frame::encode(&Hello::Client).unwrap());
    let append = frame(Frame::encode(&super::raft::sample_append()).unwrap());
    let request = frame(Frame::encode(&super::client::sample_request()).unwrap());
    let mut stream = vec![0, 7];
    stream.extend(&hello);
    stream.extend(&append);
    let mut clients = vec![3, 1];
    clients.extend(&client);
    clients.extend(&request);
    clients.extend(&request);
    vec![stream, clients]
}
