//! Blocking status queries, for code that runs outside tokio (the nemesis thread asks who leads).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use riptide_node::protocol::{
    self, ClientOp, ClientRequest, ClientResponse, ClientResult, Hello, Status,
};
use riptide_node::types::NodeId;

fn write_frame(stream: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    stream.write_all(&(body.len() as u32).to_be_bytes())?;
    stream.write_all(body)
}

fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > protocol::MAX_FRAME_BYTES {
        return Err(std::io::Error::other("frame too large"));
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body)?;
    Ok(body)
}

/// Asks one node for its status, giving up after `timeout` per step.
pub fn status(addr: SocketAddr, timeout: Duration) -> std::io::Result<Status> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    write_frame(
        &mut stream,
        &protocol::encode(&Hello::Client).map_err(std::io::Error::other)?,
    )?;
    let request = ClientRequest {
        id: 1,
        client_id: 0,
        seq: 0,
        op: ClientOp::Status,
    };
    write_frame(
        &mut stream,
        &protocol::encode(&request).map_err(std::io::Error::other)?,
    )?;
    let response: ClientResponse =
        protocol::decode(&read_frame(&mut stream)?).map_err(std::io::Error::other)?;
    match response.result {
        ClientResult::Status(status) => Ok(status),
        other => Err(std::io::Error::other(format!(
            "unexpected answer {other:?}"
        ))),
    }
}

/// The leader, as the nodes that answer see it: the highest-term node that says it leads.
pub fn leader(nodes: &[(NodeId, SocketAddr)], timeout: Duration) -> Option<(NodeId, u64)> {
    nodes
        .iter()
        .filter_map(|(_, addr)| status(*addr, timeout).ok())
        .filter(|s| s.role == riptide_node::protocol::Role::Leader)
        .map(|s| (s.id, s.term))
        .max_by_key(|&(_, term)| term)
}
