//! Client requests: a frame body decoded as a [`ClientRequest`] (and, from the same bytes read
//! as structure, a well-formed request of any shape), applied to a state machine. A put that
//! applies is read back; a command applied twice (a retry) changes nothing the second time.

use arbitrary::Unstructured;
use riptide_node::kv::{Applied, Command, KvStore};
use riptide_proto::{decode, encode, ClientOp, ClientRequest, WriteOp};

use super::{kind, small_or_any};
use crate::Target;

pub const TARGET: Target = Target {
    name: "client",
    run,
    seeds,
};

/// A put, as the workload sends it.
pub fn sample_request() -> ClientRequest {
    ClientRequest {
        id: 1,
        client_id: 42,
        seq: 1,
        op: ClientOp::Write(WriteOp::Put {
            key: "k1".into(),
            value: "v1".into(),
        }),
    }
}

fn run(input: &[u8]) -> String {
    let mut kv = KvStore::default();
    let decoded = match decode::<ClientRequest>(input) {
        Ok(request) => apply(&mut kv, &request),
        Err(err) => format!("refused {}", kind(&err)),
    };
    let mut u = Unstructured::new(input);
    let mut built = Vec::new();
    while !u.is_empty() && built.len() < 16 {
        let request = request(&mut u);
        let bytes = encode(&request).expect("a request encodes");
        let back: ClientRequest = decode(&bytes).expect("an encoded request decodes");
        assert_eq!(back, request, "a request survives a round trip");
        built.push(apply(&mut kv, &request));
    }
    built.sort();
    built.dedup();
    format!("{decoded}; built [{}]", built.join(", "))
}

/// Applies a write (twice, as a retry would) or reads; returns what happened.
fn apply(kv: &mut KvStore, request: &ClientRequest) -> String {
    let ClientOp::Write(op) = &request.op else {
        if let ClientOp::Get { key } = &request.op {
            let _ = kv.get(key);
        }
        return format!("{:?}", std::mem::discriminant(&request.op)).replace("Discriminant", "op");
    };
    let cmd = Command {
        client_id: request.client_id,
        seq: request.seq,
        op: op.clone(),
    };
    // A pair the session already answered is not applied again (that is the point of sessions).
    let new = kv.cached(cmd.client_id, cmd.seq).is_none();
    let first = kv.apply(&cmd);
    let before = kv.get(op.key());
    let second = kv.apply(&cmd);
    assert_eq!(
        kv.get(op.key()),
        before,
        "a retried command changed the state"
    );
    if let (true, Applied::Ok(_), WriteOp::Put { key, value }) = (new, &first, op) {
        assert_eq!(
            kv.get(key).as_deref(),
            Some(value.as_str()),
            "a put is read back"
        );
    }
    format!("{} then {}", kind(&first), kind(&second))
}

fn text(u: &mut Unstructured<'_>) -> String {
    match u.int_in_range(0u8..=3).unwrap_or(0) {
        0 => String::new(),
        1 => format!("k{}", u.int_in_range(0u8..=3).unwrap_or(0)),
        _ => u.arbitrary::<String>().unwrap_or_default(),
    }
}

fn request(u: &mut Unstructured<'_>) -> ClientRequest {
    let op = match u.int_in_range(0u8..=5).unwrap_or(0) {
        0 => ClientOp::Get { key: text(u) },
        1 => ClientOp::Status,
        2 => ClientOp::Digest,
        3 => ClientOp::Write(WriteOp::Cas {
            key: text(u),
            expected: text(u),
            new: text(u),
        }),
        4 => ClientOp::Write(WriteOp::Append {
            key: text(u),
            suffix: text(u),
        }),
        _ => ClientOp::Write(WriteOp::Put {
            key: text(u),
            value: text(u),
        }),
    };
    ClientRequest {
        id: small_or_any(u, 8),
        client_id: small_or_any(u, 3),
        seq: small_or_any(u, 4),
        op,
    }
}

fn seeds() -> Vec<Vec<u8>> {
    vec![encode(&sample_request()).unwrap()]
}
