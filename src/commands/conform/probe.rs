//! Asking one node one thing, and saying exactly what came back.
//!
//! The framing and the connection are `riptide_proto`'s ([`BlockingConnection`], the same code
//! the runner's status probe and `riptide client status` use); this module only adds what a
//! conformance check needs on top: the raw answer when it does not decode (shown as hex), the
//! difference between "no answer", "closed" and "refused", and a check that the answer carries
//! the request's id. Every error is a sentence about what the node did.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use riptide_proto::frame::decode_body;
use riptide_proto::{
    BlockingConnection, ClientOp, ClientRequest, ClientResponse, ClientResult, Error, Hello,
    NodeId, Role, Status,
};

/// Up to 48 bytes as hex, with the total if there are more.
pub fn hex(bytes: &[u8]) -> String {
    let shown: Vec<String> = bytes.iter().take(48).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 48 {
        format!(" ... ({} bytes)", bytes.len())
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(" "))
}

/// A node's failure to answer, in words.
pub fn describe(err: &Error, timeout: Duration) -> String {
    match err {
        Error::Io(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            format!("no answer within {timeout:?} (the connection stayed open)")
        }
        Error::Io(e) if e.kind() == ErrorKind::ConnectionRefused => {
            "the connection was refused (nothing listens there)".into()
        }
        Error::Io(e) if e.kind() == ErrorKind::ConnectionReset => {
            "the node reset the connection instead of answering".into()
        }
        Error::Closed { .. } => "the node closed the connection without answering".into(),
        other => other.to_string(),
    }
}

/// Reads one answer on `conn` and decodes it, or says what arrived instead.
pub fn read_answer(
    conn: &mut BlockingConnection,
    timeout: Duration,
) -> Result<ClientResponse, String> {
    let body = conn
        .recv_body()
        .map_err(|e| describe(&e, timeout))?
        .ok_or_else(|| describe(&Error::Closed { awaited: "" }, timeout))?;
    decode_body::<ClientResponse>(&body).map_err(|e| {
        format!(
            "the answer does not decode as a ClientResponse ({e}); its body: {}",
            hex(&body)
        )
    })
}

/// Sends `request` on a new client connection to `addr` and returns the result, checking that
/// the answer carries the request's id.
pub fn ask(
    addr: SocketAddr,
    timeout: Duration,
    request: &ClientRequest,
) -> Result<ClientResult, String> {
    let mut conn = BlockingConnection::open(addr, timeout, &Hello::Client)
        .map_err(|e| format!("cannot connect: {}", describe(&e, timeout)))?;
    ask_on(&mut conn, timeout, request)
}

/// Like [`ask`], on a connection already open.
pub fn ask_on(
    conn: &mut BlockingConnection,
    timeout: Duration,
    request: &ClientRequest,
) -> Result<ClientResult, String> {
    conn.send(request)
        .map_err(|e| format!("cannot send the request: {}", describe(&e, timeout)))?;
    let answer = read_answer(conn, timeout)?;
    if answer.id != request.id {
        return Err(format!(
            "the answer carries id {} but the request was id {} (answer: {:?})",
            answer.id, request.id, answer.result
        ));
    }
    Ok(answer.result)
}

/// A request outside any session, as the runner's status probe sends it.
pub fn plain(op: ClientOp) -> ClientRequest {
    ClientRequest {
        id: 1,
        client_id: 0,
        seq: 0,
        op,
    }
}

/// Node `id`'s status, or what it did instead of answering one.
pub fn status(id: NodeId, addr: SocketAddr, timeout: Duration) -> Result<Status, String> {
    match ask(addr, timeout, &plain(ClientOp::Status))? {
        ClientResult::Status(status) => Ok(*status),
        other => Err(format!("answered {other:?} to a Status request (n{id})")),
    }
}

/// What a poll of every node's status saw.
pub struct Poll {
    pub statuses: Vec<(NodeId, Result<Status, String>)>,
}

impl Poll {
    pub fn take(nodes: &[(NodeId, SocketAddr)], timeout: Duration) -> Poll {
        Poll {
            statuses: nodes
                .iter()
                .map(|&(id, addr)| (id, status(id, addr, timeout)))
                .collect(),
        }
    }

    /// The leader, if exactly one node leads in the highest term and every node answered in
    /// that term naming it.
    pub fn agreed_leader(&self) -> Option<(NodeId, u64)> {
        let answered: Vec<&Status> = self
            .statuses
            .iter()
            .filter_map(|(_, s)| s.as_ref().ok())
            .collect();
        if answered.len() != self.statuses.len() {
            return None;
        }
        let leaders: Vec<&&Status> = answered.iter().filter(|s| s.role == Role::Leader).collect();
        let [leader] = leaders.as_slice() else {
            return None;
        };
        answered
            .iter()
            .all(|s| s.term == leader.term && s.leader == Some(leader.id))
            .then_some((leader.id, leader.term))
    }

    /// One line per node: role, term, leader, or the error.
    pub fn describe(&self) -> String {
        self.statuses
            .iter()
            .map(|(id, s)| match s {
                Ok(s) => format!(
                    "n{id}: {:?} term {} leader {}",
                    s.role,
                    s.term,
                    s.leader.map_or("none".into(), |l| format!("n{l}"))
                ),
                Err(e) => format!("n{id}: {e}"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Polls until the nodes agree on a leader, or `timeout` passes (then the last poll).
pub fn wait_for_leader(
    nodes: &[(NodeId, SocketAddr)],
    request_timeout: Duration,
    timeout: Duration,
) -> Result<(NodeId, u64), Poll> {
    let deadline = Instant::now() + timeout;
    loop {
        let poll = Poll::take(nodes, request_timeout);
        if let Some(leader) = poll.agreed_leader() {
            return Ok(leader);
        }
        if Instant::now() >= deadline {
            return Err(poll);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
