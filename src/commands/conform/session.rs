//! A client session of the checks: one `client_id`, writes numbered 1, 2, 3... as the bench's
//! workload client numbers them, sent to the leader, following `NotLeader` to wherever it moved.
//!
//! Answers are shown as JSON ([`shape`]), which is the MessagePack shape written in the notation
//! `docs/node-contract.md` uses: `{"Fail":{"CasMismatch":{"actual":"two"}}}`.

use std::net::SocketAddr;
use std::time::Instant;

use riptide_proto::{ClientOp, ClientRequest, ClientResult, NodeId, WriteOp};

use super::cluster::Bench;
use super::probe;

/// A value as the contract shows it on the wire: its JSON rendering, tag for tag.
pub fn shape<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("(cannot render: {e})"))
}

pub struct Session<'a> {
    bench: &'a Bench,
    pub client_id: u64,
    /// The sequence number of the session's last write (0 before the first).
    pub seq: u64,
    next_id: u64,
    pub leader: NodeId,
}

impl<'a> Session<'a> {
    pub fn new(bench: &'a Bench, client_id: u64, leader: NodeId) -> Session<'a> {
        Session {
            bench,
            client_id,
            seq: 0,
            next_id: 0,
            leader,
        }
    }

    pub fn request(&mut self, op: ClientOp, seq: u64) -> ClientRequest {
        self.next_id += 1;
        ClientRequest {
            id: self.next_id,
            client_id: self.client_id,
            seq,
            op,
        }
    }

    /// Sends `op` with `seq` to node `to` on a new connection; the raw result.
    pub fn send_to(&mut self, to: NodeId, op: ClientOp, seq: u64) -> Result<ClientResult, String> {
        let request = self.request(op, seq);
        probe::ask(self.addr(to), self.bench.timeout, &request)
    }

    fn addr(&self, id: NodeId) -> SocketAddr {
        self.bench.addr(id)
    }

    /// The next write of the session, to the leader.
    pub fn write(&mut self, op: WriteOp) -> Result<ClientResult, String> {
        self.seq += 1;
        self.send_to_leader(ClientOp::Write(op), self.seq)
    }

    /// A read, to the leader (reads carry the session's current number and take none).
    pub fn read(&mut self, key: &str) -> Result<ClientResult, String> {
        self.send_to_leader(ClientOp::Get { key: key.into() }, self.seq)
    }

    /// Sends to the leader; on `NotLeader` follows the hint, or asks every node who leads, and
    /// sends again with the same `seq`, until the election timeout. Anything else is returned.
    pub fn send_to_leader(&mut self, op: ClientOp, seq: u64) -> Result<ClientResult, String> {
        let deadline = Instant::now() + self.bench.election_timeout;
        loop {
            let result = self.send_to(self.leader, op.clone(), seq);
            let Ok(ClientResult::NotLeader { leader_hint }) = &result else {
                return result.map_err(|e| format!("n{}: {e}", self.leader));
            };
            if Instant::now() >= deadline {
                return Err(format!(
                    "every node answered NotLeader for {:?}; the last was n{}: {}",
                    self.bench.election_timeout,
                    self.leader,
                    shape(result.as_ref().unwrap())
                ));
            }
            match leader_hint {
                Some(hint) if hint.id != self.leader => self.leader = hint.id,
                _ => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    let nodes = self.bench.nodes();
                    if let Ok((leader, _)) =
                        probe::wait_for_leader(&nodes, self.bench.timeout, self.bench.timeout)
                    {
                        self.leader = leader;
                    }
                }
            }
        }
    }
}

/// `Ok(())` if `got` is `want`, else a sentence with what was sent and both shapes.
pub fn expect(
    what: &str,
    got: Result<ClientResult, String>,
    want: &ClientResult,
) -> Result<(), String> {
    match got {
        Ok(result) if &result == want => Ok(()),
        Ok(result) => Err(format!(
            "{what}: expected {}, got {}",
            shape(want),
            shape(&result)
        )),
        Err(e) => Err(format!("{what}: expected {}; {e}", shape(want))),
    }
}
