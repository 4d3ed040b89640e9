//! The exact MessagePack bytes of the client protocol, as `docs/node-contract.md` shows them.
//!
//! A node written in another language is written against those bytes, so they are pinned here:
//! if a serde attribute or the encoder changes what goes on the wire, a test fails and the
//! contract (and other people's nodes) must change with it. Each case is a message and the hex
//! of its frame body (no length prefix); the body decodes back to the same message. The second
//! half pins what a reader *accepts* beyond what riptide writes (wider integers, reordered or
//! extra fields), which is what another language's encoder is likely to produce.
//!
//! `cargo test -p riptide-proto --test wire_shapes -- --nocapture` prints every case.

use std::fmt::Debug;

use riptide_proto::{
    decode, encode, AdminDone, AdminOp, ClientOp, ClientRequest, ClientResponse, ClientResult,
    FailReason, Frame, Hello, LeaderHint, MembershipStatus, Reply, Role, SnapshotStatus,
    StateDigest, Status, WriteOp,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn unhex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

/// Encodes `msg`, checks the body against `expected`, and decodes it back to `msg`.
fn pin<T: Serialize + DeserializeOwned + PartialEq + Debug>(msg: T, expected: &str) {
    let body = encode(&msg).unwrap();
    println!("{msg:?}\n  {}", hex(&body));
    assert_eq!(hex(&body), expected, "the wire shape of {msg:?} changed");
    assert_eq!(decode::<T>(&body).unwrap(), msg);
}

fn request(op: ClientOp) -> ClientRequest {
    ClientRequest {
        id: 7,
        client_id: 42,
        seq: 1,
        op,
    }
}

fn response(result: ClientResult) -> ClientResponse {
    ClientResponse { id: 7, result }
}

/// `{"id":7,"client_id":42,"seq":1,"op":` — the head every request below shares.
const REQ: &str = "84 a2 69 64 07 a9 63 6c 69 65 6e 74 5f 69 64 2a a3 73 65 71 01 a2 6f 70";
/// `{"id":7,"result":` — the head every response below shares.
const RESP: &str = "82 a2 69 64 07 a6 72 65 73 75 6c 74";

#[test]
fn hellos_are_a_bare_string_or_a_one_key_map() {
    pin(Hello::Client, "a6 43 6c 69 65 6e 74");
    pin(
        Hello::peer(2, "c"),
        "81 a4 50 65 65 72 83 a4 66 72 6f 6d 02 a7 63 6c 75 73 74 65 72 a1 63 a5 6e 6f 6e 63 65 c0",
    );
    // With the address the dialer listens on: one more key, `listen`.
    pin(
        Hello::Peer {
            from: 2,
            cluster: "c".into(),
            nonce: None,
            listen: Some("h:1".into()),
        },
        "81 a4 50 65 65 72 84 a4 66 72 6f 6d 02 a7 63 6c 75 73 74 65 72 a1 63 a5 6e 6f 6e 63 65 c0 a6 6c 69 73 74 65 6e a3 68 3a 31",
    );
}

#[test]
fn the_frame_is_a_big_endian_length_then_the_body() {
    let frame = Frame::encode(&Hello::Client).unwrap();
    assert_eq!(hex(frame.as_bytes()), "00 00 00 07 a6 43 6c 69 65 6e 74");
}

#[test]
fn requests_are_maps_whose_op_is_externally_tagged() {
    pin(
        request(ClientOp::Status),
        &format!("{REQ} a6 53 74 61 74 75 73"),
    );
    pin(
        request(ClientOp::Digest),
        &format!("{REQ} a6 44 69 67 65 73 74"),
    );
    pin(
        request(ClientOp::Get { key: "k".into() }),
        &format!("{REQ} 81 a3 47 65 74 81 a3 6b 65 79 a1 6b"),
    );
    let write = "81 a5 57 72 69 74 65";
    pin(
        request(ClientOp::Write(WriteOp::Put {
            key: "k".into(),
            value: "v".into(),
        })),
        &format!("{REQ} {write} 81 a3 50 75 74 82 a3 6b 65 79 a1 6b a5 76 61 6c 75 65 a1 76"),
    );
    pin(
        request(ClientOp::Write(WriteOp::Cas {
            key: "k".into(),
            expected: "v".into(),
            new: "w".into(),
        })),
        &format!(
            "{REQ} {write} 81 a3 43 61 73 83 a3 6b 65 79 a1 6b \
             a8 65 78 70 65 63 74 65 64 a1 76 a3 6e 65 77 a1 77"
        ),
    );
    pin(
        request(ClientOp::Write(WriteOp::Append {
            key: "k".into(),
            suffix: "x".into(),
        })),
        &format!(
            "{REQ} {write} 81 a6 41 70 70 65 6e 64 82 a3 6b 65 79 a1 6b \
             a6 73 75 66 66 69 78 a1 78"
        ),
    );
}

#[test]
fn ok_and_fail_answers() {
    pin(
        response(ClientResult::Ok(Reply::Value(Some("v".into())))),
        &format!("{RESP} 81 a2 4f 6b 81 a5 56 61 6c 75 65 a1 76"),
    );
    pin(
        response(ClientResult::Ok(Reply::Value(None))),
        &format!("{RESP} 81 a2 4f 6b 81 a5 56 61 6c 75 65 c0"),
    );
    pin(
        response(ClientResult::Ok(Reply::Done)),
        &format!("{RESP} 81 a2 4f 6b a4 44 6f 6e 65"),
    );
    let fail = "81 a4 46 61 69 6c";
    pin(
        response(ClientResult::Fail(FailReason::CasMismatch {
            actual: "v".into(),
        })),
        &format!(
            "{RESP} {fail} 81 ab 43 61 73 4d 69 73 6d 61 74 63 68 81 a6 61 63 74 75 61 6c a1 76"
        ),
    );
    pin(
        response(ClientResult::Fail(FailReason::KeyMissing)),
        &format!("{RESP} {fail} aa 4b 65 79 4d 69 73 73 69 6e 67"),
    );
    pin(
        response(ClientResult::Fail(FailReason::BadRequest("b".into()))),
        &format!("{RESP} {fail} 81 aa 42 61 64 52 65 71 75 65 73 74 a1 62"),
    );
    pin(
        response(ClientResult::Fail(FailReason::Unavailable("u".into()))),
        &format!("{RESP} {fail} 81 ab 55 6e 61 76 61 69 6c 61 62 6c 65 a1 75"),
    );
    pin(
        response(ClientResult::Fail(FailReason::SessionExpired)),
        &format!("{RESP} {fail} ae 53 65 73 73 69 6f 6e 45 78 70 69 72 65 64"),
    );
}

#[test]
fn not_leader_and_indeterminate_answers() {
    let not_leader = "81 a9 4e 6f 74 4c 65 61 64 65 72 81 ab 6c 65 61 64 65 72 5f 68 69 6e 74";
    pin(
        response(ClientResult::NotLeader { leader_hint: None }),
        &format!("{RESP} {not_leader} c0"),
    );
    pin(
        response(ClientResult::NotLeader {
            leader_hint: Some(LeaderHint {
                id: 2,
                addr: "127.0.0.12:7000".into(),
            }),
        }),
        &format!(
            "{RESP} {not_leader} 82 a2 69 64 02 a4 61 64 64 72 \
             af 31 32 37 2e 30 2e 30 2e 31 32 3a 37 30 30 30"
        ),
    );
    pin(
        response(ClientResult::Indeterminate { reason: "r".into() }),
        &format!(
            "{RESP} 81 ad 49 6e 64 65 74 65 72 6d 69 6e 61 74 65 81 a6 72 65 61 73 6f 6e a1 72"
        ),
    );
}

#[test]
fn admin_requests_and_their_answers() {
    pin(
        request(ClientOp::Admin(AdminOp::AddLearner {
            id: 4,
            addr: "127.0.0.14:7000".into(),
        })),
        &format!(
            "{REQ} 81 a5 41 64 6d 69 6e 81 aa 41 64 64 4c 65 61 72 6e 65 72 82 a2 69 64 04 a4 61 \
             64 64 72 af 31 32 37 2e 30 2e 30 2e 31 34 3a 37 30 30 30"
        ),
    );
    pin(
        response(ClientResult::Fail(FailReason::ChangeRefused {
            reason: "r".into(),
            retry: true,
        })),
        &format!(
            "{RESP} 81 a4 46 61 69 6c 81 ad 43 68 61 6e 67 65 52 65 66 75 73 65 64 82 a6 72 65 61 \
             73 6f 6e a1 72 a5 72 65 74 72 79 c3"
        ),
    );
    let membership = MembershipStatus {
        voters: vec![1, 2],
        learners: vec![3],
        outgoing: Vec::new(),
        addresses: [(3, "a".to_string())].into(),
        changing: false,
    };
    pin(
        response(ClientResult::Admin(AdminDone {
            membership,
            leader: Some(1),
        })),
        &format!(
            "{RESP} 81 a5 41 64 6d 69 6e 82 aa 6d 65 6d 62 65 72 73 68 69 70 85 a6 76 6f 74 65 72 \
             73 92 01 02 a8 6c 65 61 72 6e 65 72 73 91 03 a8 6f 75 74 67 6f 69 6e 67 90 a9 \
             61 64 64 72 65 73 73 65 73 81 03 a1 61 a8 63 68 61 6e 67 69 6e 67 c2 a6 6c 65 \
             61 64 65 72 01"
        ),
    );
}

fn leader_status() -> Status {
    Status {
        id: 1,
        role: Role::Leader,
        term: 3,
        leader: Some(1),
        commit_index: 5,
        applied_index: 5,
        last_log_index: 6,
        first_log_index: 1,
        snapshot: SnapshotStatus::default(),
        refused_peers: 0,
        safety_violation: None,
        membership: MembershipStatus::default(),
        reorder: Default::default(),
    }
}

#[test]
fn status_and_digest_answers() {
    pin(
        response(ClientResult::Status(Box::new(leader_status()))),
        &format!(
            "{RESP} 81 a6 53 74 61 74 75 73 8d a2 69 64 01 a4 72 6f 6c 65 a6 4c 65 61 64 65 72 \
             a4 74 65 72 6d 03 a6 6c 65 61 64 65 72 01 ac 63 6f 6d 6d 69 74 5f 69 6e 64 65 78 05 \
             ad 61 70 70 6c 69 65 64 5f 69 6e 64 65 78 05 ae 6c 61 73 74 5f 6c 6f 67 5f 69 6e 64 65 78 06 \
             af 66 69 72 73 74 5f 6c 6f 67 5f 69 6e 64 65 78 01 a8 73 6e 61 70 73 68 6f 74 88 \
             aa 6c 61 73 74 5f 69 6e 64 65 78 00 a5 62 79 74 65 73 00 a5 74 61 6b 65 6e 00 \
             a9 69 6e 73 74 61 6c 6c 65 64 00 a4 73 65 6e 74 00 a8 73 65 73 73 69 6f 6e 73 00 \
             b0 73 65 73 73 69 6f 6e 73 5f 65 78 70 69 72 65 64 00 a4 6b 65 79 73 00 \
             ad 72 65 66 75 73 65 64 5f 70 65 65 72 73 00 \
             b0 73 61 66 65 74 79 5f 76 69 6f 6c 61 74 69 6f 6e c0 \
             aa 6d 65 6d 62 65 72 73 68 69 70 85 a6 76 6f 74 65 72 73 90 \
             a8 6c 65 61 72 6e 65 72 73 90 a8 6f 75 74 67 6f 69 6e 67 90 \
             a9 61 64 64 72 65 73 73 65 73 80 a8 63 68 61 6e 67 69 6e 67 c2 \
             a7 72 65 6f 72 64 65 72 83 ac 6d 61 78 5f 64 65 6c 61 79 5f 6d 73 00 \
             a4 68 65 6c 64 00 a6 63 6f 70 69 65 64 00"
        ),
    );
    pin(
        response(ClientResult::Digest(StateDigest {
            id: 1,
            applied_index: 5,
            applied_term: 3,
            keys: 1,
            sessions: 1,
            data_digest: 9,
            session_digest: 8,
        })),
        &format!(
            "{RESP} 81 a6 44 69 67 65 73 74 87 a2 69 64 01 ad 61 70 70 6c 69 65 64 5f 69 6e 64 65 78 05 \
             ac 61 70 70 6c 69 65 64 5f 74 65 72 6d 03 a4 6b 65 79 73 01 a8 73 65 73 73 69 6f 6e 73 01 \
             ab 64 61 74 61 5f 64 69 67 65 73 74 09 ae 73 65 73 73 69 6f 6e 5f 64 69 67 65 73 74 08"
        ),
    );
}

#[test]
fn a_reader_takes_wide_integers_any_field_order_and_extra_fields() {
    // {"result": {"Ok": "Done"}, "extra": true, "id": uint64 7}: reordered, an unknown field,
    // and the id as a full 8-byte uint64 (what many encoders write for a 64-bit integer).
    let body = unhex(
        "83 a6 72 65 73 75 6c 74 81 a2 4f 6b a4 44 6f 6e 65 a5 65 78 74 72 61 c3 \
         a2 69 64 cf 00 00 00 00 00 00 00 07",
    );
    assert_eq!(
        decode::<ClientResponse>(&body).unwrap(),
        response(ClientResult::Ok(Reply::Done))
    );
}

#[test]
fn a_status_without_its_optional_parts_still_reads() {
    // The eight required fields, without `snapshot`, `refused_peers` and `safety_violation`:
    // they default to zero and none, so a node may leave them out.
    let mut full = encode(&leader_status()).unwrap();
    let at = full.windows(9).position(|w| w == b"\xa8snapshot").unwrap();
    full.truncate(at);
    full[0] = 0x88; // a map of 8 pairs now
    assert_eq!(decode::<Status>(&full).unwrap(), leader_status());
}

#[test]
fn a_status_missing_a_required_field_does_not_read() {
    let mut body = encode(&leader_status()).unwrap();
    body[0] = 0x81; // only the first pair, `id`, is left
    body.truncate(5);
    assert!(decode::<Status>(&body).is_err());
}

#[test]
fn a_reader_takes_a_unit_variant_as_a_map_to_nil_and_strings_as_bin() {
    // {"Status": nil}: how some encoders write an enum case without data.
    assert_eq!(
        decode::<ClientOp>(&unhex("81 a6 53 74 61 74 75 73 c0")).unwrap(),
        ClientOp::Status
    );
    // {"Get": {"key": bin8 "k"}}: a string sent as MessagePack bin.
    assert_eq!(
        decode::<ClientOp>(&unhex("81 a3 47 65 74 81 a3 6b 65 79 c4 01 6b")).unwrap(),
        ClientOp::Get { key: "k".into() }
    );
}

#[test]
fn a_reader_takes_a_struct_as_an_array_in_field_order() {
    // [7, 42, 1, "Status"]: positional, in the order the contract lists the fields.
    assert_eq!(
        decode::<ClientRequest>(&unhex("94 07 2a 01 a6 53 74 61 74 75 73")).unwrap(),
        ClientRequest {
            id: 7,
            client_id: 42,
            seq: 1,
            op: ClientOp::Status
        }
    );
}
