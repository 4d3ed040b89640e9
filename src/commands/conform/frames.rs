//! Bad input: frames a broken or hostile client might send, each on a connection of its own.
//!
//! For each, the node must close that connection or answer something, within a few seconds (a
//! node that waits for the 4 GiB an oversized header announces is stuck, and one that keeps a
//! connection that stopped making sense open is a leak); it must still be running afterwards;
//! and it must still serve: a new connection gets a status, and a client connection opened
//! *before* the bad frames, left alone meanwhile, still gets its answers.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use riptide_proto::{encode, BlockingConnection, ClientOp, Hello, NodeId};

use super::cluster::Bench;
use super::probe;
use super::rules::Verdict;

/// How long a node may take to close or answer a connection that sent a bad frame.
const REACTION: Duration = Duration::from_secs(5);

/// One kind of bad input: a name for the output and the bytes, after which the client half-closes
/// (`shutdown_after`) or waits.
struct BadFrame {
    what: &'static str,
    bytes: Vec<u8>,
    shutdown_after: bool,
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

fn client_hello() -> Vec<u8> {
    frame(&encode(&Hello::Client).expect("a hello encodes"))
}

fn cases() -> Vec<BadFrame> {
    let after_hello = |rest: Vec<u8>| [client_hello(), rest].concat();
    let mut oversized = 0xFFFF_FFFFu32.to_be_bytes().to_vec();
    oversized.extend_from_slice(&[0x84; 16]);
    let mut cut = 100u32.to_be_bytes().to_vec();
    cut.extend_from_slice(&[0x84, 0xa2, 0x69, 0x64, 0x01, 0xa9, 0x63, 0x6c, 0x69, 0x65]);
    vec![
        BadFrame {
            what: "a first frame that is not a Hello (body c1, a byte MessagePack never uses)",
            bytes: frame(&[0xc1]),
            shutdown_after: false,
        },
        BadFrame {
            what: "after the client hello, a frame of garbage MessagePack (c1 c1 c1)",
            bytes: after_hello(frame(&[0xc1, 0xc1, 0xc1])),
            shutdown_after: false,
        },
        BadFrame {
            what: "after the client hello, well-formed MessagePack that is not a request (the string \"hello\")",
            bytes: after_hello(frame(&encode(&"hello").expect("a string encodes"))),
            shutdown_after: false,
        },
        BadFrame {
            what: "after the client hello, a length prefix of ff ff ff ff (4 GiB, over the 16 MiB cap)",
            bytes: after_hello(oversized),
            shutdown_after: false,
        },
        BadFrame {
            what: "after the client hello, a frame cut short (length 100, 10 bytes, then our side closed)",
            bytes: after_hello(cut),
            shutdown_after: true,
        },
    ]
}

/// Sends one bad frame and says how the node reacted: `Ok` closed or answered, `Err` neither.
fn react(bench: &Bench, id: NodeId, case: &BadFrame) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&bench.addr(id), bench.timeout)
        .map_err(|e| format!("cannot connect: {e}"))?;
    stream.set_read_timeout(Some(REACTION)).ok();
    stream.set_write_timeout(Some(bench.timeout)).ok();
    // A node may close as soon as it has seen enough: a failed write then is a reaction too.
    if stream.write_all(&case.bytes).is_err() {
        return Ok("closed the connection".into());
    }
    if case.shutdown_after {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => Ok("closed the connection".into()),
        Ok(n) => Ok(format!("answered ({})", probe::hex(&buf[..n]))),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Err(format!(
            "kept the connection open for {REACTION:?} without closing it or answering"
        )),
        Err(_) => Ok("reset the connection".into()),
    }
}

/// Every bad frame against node `id`, with a bystander connection that must keep working.
pub fn check(bench: &Bench, id: NodeId) -> Verdict {
    let addr = bench.addr(id);
    let mut bystander = match BlockingConnection::open(addr, bench.timeout, &Hello::Client) {
        Ok(conn) => conn,
        Err(e) => return Verdict::Fail(format!("n{id}: cannot open a client connection: {e}")),
    };
    let status = probe::plain(ClientOp::Status);
    if let Err(e) = probe::ask_on(&mut bystander, bench.timeout, &status) {
        return Verdict::Fail(format!("n{id}: a status before any bad frame: {e}"));
    }
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for case in cases() {
        match react(bench, id, &case) {
            Ok(how) => seen.push(how),
            Err(e) => problems.push(format!("n{id}, sent {}: {e}", case.what)),
        }
        std::thread::sleep(Duration::from_millis(50));
        if let Some(ended) = bench.ended(id) {
            problems.push(format!("n{id} died when sent {}: {ended}", case.what));
            let _ = bench.restart(id);
            let _ = bench.wait_listening(&[id], Duration::from_secs(10));
            return Verdict::Fail(problems.join("\n"));
        }
        if let Err(e) = probe::status(id, addr, bench.timeout) {
            problems.push(format!(
                "n{id}, after {}: a status on a new connection: {e}",
                case.what
            ));
        }
    }
    if let Err(e) = probe::ask_on(&mut bystander, bench.timeout, &status) {
        problems.push(format!(
            "n{id}: a client connection opened before the bad frames no longer answers status: {e}"
        ));
    }
    let pass = format!(
        "n{id} {}; it kept serving, old connections too",
        summarize(&seen)
    );
    Verdict::from_problems(problems, pass)
}

/// "closed the connection 4 times, answered once" style.
fn summarize(seen: &[String]) -> String {
    let mut kinds: Vec<(String, usize)> = Vec::new();
    for s in seen {
        let kind = s.split(" (").next().unwrap_or(s).to_string();
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((kind, 1)),
        }
    }
    let parts: Vec<String> = kinds
        .iter()
        .map(|(k, n)| format!("{k} ({n} of {})", seen.len()))
        .collect();
    format!("{} on bad frames", parts.join(", "))
}
