//! The framed connection, async and blocking, against the frames a broken or hostile peer sends:
//! each case is one behaviour of the protocol's framing rules (see the crate docs).

use std::io::Cursor;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use riptide_proto::{
    BlockingConnection, ClientOp, ClientRequest, ClientResponse, ClientResult, Connection, Error,
    FrameReader, FrameWriter, Hello, Role, Status, WriteOp, MAX_FRAME_BYTES,
};
use tokio::io::AsyncWriteExt;

fn request(id: u64) -> ClientRequest {
    ClientRequest {
        id,
        client_id: 7,
        seq: id,
        op: ClientOp::Write(WriteOp::Cas {
            key: "k".into(),
            expected: "a".into(),
            new: "b".into(),
        }),
    }
}

fn a_status() -> Status {
    Status {
        id: 2,
        role: Role::Leader,
        term: 5,
        leader: Some(2),
        commit_index: 10,
        applied_index: 9,
        last_log_index: 11,
        first_log_index: 1,
        snapshot: Default::default(),
        refused_peers: 0,
        safety_violation: None,
        membership: Default::default(),
        reorder: Default::default(),
    }
}

/// A header announcing one byte more than the cap, then a little of its "body".
fn oversized_header() -> Vec<u8> {
    let mut bytes = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes().to_vec();
    bytes.extend([1, 2, 3]);
    bytes
}

/// A frame that promises 100 bytes and brings 3.
const TRUNCATED: [u8; 7] = [0, 0, 0, 100, 1, 2, 3];
/// A complete 4-byte frame whose body is not MessagePack (0xc1 is never used).
const GARBAGE: [u8; 8] = [0, 0, 0, 4, 0xc1, 0xc1, 0xc1, 0xc1];

/// Reads `bytes` as an async stream that then ends.
async fn recv_async<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> riptide_proto::Result<Option<T>> {
    let (mut tx, rx) = tokio::io::duplex(64 * 1024);
    tx.write_all(bytes).await.unwrap();
    drop(tx);
    FrameReader::new(rx).recv().await
}

fn recv_blocking<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> riptide_proto::Result<Option<T>> {
    BlockingConnection::new(Cursor::new(bytes.to_vec())).recv()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn messages_roundtrip_async_and_end_cleanly_at_a_frame_boundary() {
    runtime().block_on(async {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let mut writer = FrameWriter::open(a, &Hello::peer(3, "c1")).await.unwrap();
        writer.feed(&request(1)).await.unwrap();
        writer.feed(&request(2)).await.unwrap();
        writer.flush().await.unwrap();
        drop(writer);
        let mut reader = FrameReader::new(b);
        assert_eq!(
            reader.recv::<Hello>().await.unwrap(),
            Some(Hello::peer(3, "c1"))
        );
        assert_eq!(reader.recv().await.unwrap(), Some(request(1)));
        assert_eq!(reader.recv().await.unwrap(), Some(request(2)));
        assert_eq!(reader.recv::<ClientRequest>().await.unwrap(), None);
    });
}

#[test]
fn messages_roundtrip_blocking_with_the_same_bytes_as_async() {
    let mut blocking = BlockingConnection::new(Vec::new());
    blocking.send(&Hello::Client).unwrap();
    blocking.send(&request(1)).unwrap();
    let blocking_bytes = blocking.into_inner();

    let async_bytes = runtime().block_on(async {
        let (a, mut b) = tokio::io::duplex(64 * 1024);
        let mut writer = FrameWriter::open(a, &Hello::Client).await.unwrap();
        writer.send(&request(1)).await.unwrap();
        drop(writer);
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut b, &mut bytes)
            .await
            .unwrap();
        bytes
    });
    assert_eq!(blocking_bytes, async_bytes);

    let mut reader = BlockingConnection::new(Cursor::new(blocking_bytes));
    assert_eq!(reader.recv::<Hello>().unwrap(), Some(Hello::Client));
    assert_eq!(reader.recv().unwrap(), Some(request(1)));
    assert_eq!(reader.recv::<ClientRequest>().unwrap(), None);
}

fn assert_oversized(err: Error) {
    assert!(
        matches!(err, Error::Oversized { size, limit } if size == MAX_FRAME_BYTES + 1 && limit == MAX_FRAME_BYTES),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains(&(MAX_FRAME_BYTES + 1).to_string()), "{text}");
    assert!(text.contains(&MAX_FRAME_BYTES.to_string()), "{text}");
}

#[test]
fn an_oversized_frame_is_refused_with_its_size_and_the_limit() {
    assert_oversized(
        runtime()
            .block_on(recv_async::<Hello>(&oversized_header()))
            .unwrap_err(),
    );
    assert_oversized(recv_blocking::<Hello>(&oversized_header()).unwrap_err());
}

#[test]
fn an_oversized_message_is_refused_before_a_byte_is_written() {
    let huge = "x".repeat(MAX_FRAME_BYTES);
    let mut blocking = BlockingConnection::new(Vec::new());
    let err = blocking.send(&huge).unwrap_err();
    assert!(
        err.nothing_sent() && matches!(err, Error::Oversized { .. }),
        "{err:?}"
    );
    assert!(blocking.into_inner().is_empty());

    runtime().block_on(async {
        let (a, mut b) = tokio::io::duplex(64 * 1024);
        let mut writer = FrameWriter::new(a);
        let err = writer.send(&huge).await.unwrap_err();
        assert!(
            err.nothing_sent() && matches!(err, Error::Oversized { .. }),
            "{err:?}"
        );
        drop(writer);
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut b, &mut bytes)
            .await
            .unwrap();
        assert!(bytes.is_empty());
    });
}

fn assert_truncated(err: Error, expected: usize, received: usize) {
    assert!(
        matches!(err, Error::Truncated { expected: e, received: r } if e == expected && r == received),
        "{err:?}"
    );
}

#[test]
fn a_truncated_frame_says_how_much_of_it_arrived() {
    assert_truncated(
        runtime()
            .block_on(recv_async::<Hello>(&TRUNCATED))
            .unwrap_err(),
        104,
        7,
    );
    assert_truncated(recv_blocking::<Hello>(&TRUNCATED).unwrap_err(), 104, 7);
    // Cut inside the length prefix itself.
    assert_truncated(
        runtime()
            .block_on(recv_async::<Hello>(&[0, 0]))
            .unwrap_err(),
        4,
        2,
    );
    assert_truncated(recv_blocking::<Hello>(&[0, 0]).unwrap_err(), 4, 2);
}

fn assert_undecodable(err: Error, what: &str) {
    assert!(
        matches!(err, Error::Decode { expected, size: 4, .. } if expected == what),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("does not decode as {what}")),
        "{err}"
    );
}

#[test]
fn a_garbage_body_is_refused_naming_the_expected_message() {
    let rt = runtime();
    assert_undecodable(
        rt.block_on(recv_async::<Hello>(&GARBAGE)).unwrap_err(),
        "Hello",
    );
    assert_undecodable(recv_blocking::<Hello>(&GARBAGE).unwrap_err(), "Hello");
    // A well-formed message of the wrong kind is just as undecodable.
    let mut wrong = BlockingConnection::new(Vec::new());
    wrong.send(&Hello::Client).unwrap();
    let wrong = wrong.into_inner();
    let err = recv_blocking::<ClientResponse>(&wrong).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Decode {
                expected: "ClientResponse",
                ..
            }
        ),
        "{err:?}"
    );
}

/// A one-shot stand-in for a node: answers one client's status request with `answer`.
fn fake_node(answer: ClientResult) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut conn = BlockingConnection::new(stream);
        assert_eq!(conn.recv::<Hello>().unwrap(), Some(Hello::Client));
        let request: ClientRequest = conn.recv().unwrap().unwrap();
        assert_eq!(request.op, ClientOp::Status);
        let response = ClientResponse {
            id: request.id,
            result: answer,
        };
        conn.send(&response).unwrap();
    });
    addr
}

#[test]
fn the_blocking_status_query_reads_a_nodes_answer() {
    let addr = fake_node(ClientResult::Status(Box::new(a_status())));
    let status = riptide_proto::status(addr, Duration::from_secs(5)).unwrap();
    assert_eq!(status, a_status());

    let addr = fake_node(ClientResult::NotLeader { leader_hint: None });
    let err = riptide_proto::status(addr, Duration::from_secs(5)).unwrap_err();
    assert!(matches!(err, Error::Unexpected { .. }), "{err:?}");
}

#[test]
fn the_async_connection_talks_to_a_blocking_peer() {
    let addr = fake_node(ClientResult::Status(Box::new(a_status())));
    runtime().block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut conn = Connection::open(stream, &Hello::Client).await.unwrap();
        assert!(conn.looks_open());
        let request = ClientRequest {
            id: 9,
            client_id: 0,
            seq: 0,
            op: ClientOp::Status,
        };
        conn.send(&request).await.unwrap();
        let response: ClientResponse = conn.recv().await.unwrap().unwrap();
        assert_eq!(response.id, 9);
        assert_eq!(response.result, ClientResult::Status(Box::new(a_status())));
        // The fake node has hung up: the connection says so without waiting.
        assert_eq!(conn.recv::<ClientResponse>().await.unwrap(), None);
        assert!(!conn.looks_open());
    });
}
