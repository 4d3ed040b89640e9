//! Whether each node dials its peers from its own address, read from the kernel's socket table.
//!
//! The bench's partitions are firewall rules on (source IP, destination IP): "drop 127.0.0.11
//! -> 127.0.0.12" cuts the link from n1 to n2 only if n1's connections to n2 come *from*
//! 127.0.0.11. A node that lets the kernel pick the source dials from 127.0.0.1, which no rule
//! names, and a partition silently does nothing. This needs no root: `/proc/<pid>/fd` of our own
//! children names their sockets, and `/proc/net/tcp` (of the namespace we run in) says what
//! each socket connects.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use riptide_proto::NodeId;

use super::cluster::Bench;
use super::rules::Verdict;

/// One established TCP connection: its socket inode and both ends.
#[derive(Debug, PartialEq, Eq)]
struct Conn {
    inode: u64,
    local: SocketAddrV4,
    remote: SocketAddrV4,
}

/// `0B00007F:1B58` (the kernel's hex of the address as stored, then the port) as an address.
fn parse_addr(s: &str) -> Option<SocketAddrV4> {
    let (ip, port) = s.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddrV4::new(Ipv4Addr::from(u32::from_be(ip)), port))
}

/// The established connections in `/proc/net/tcp`'s text.
fn established(table: &str) -> Vec<Conn> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "01" {
                return None;
            }
            Some(Conn {
                local: parse_addr(f[1])?,
                remote: parse_addr(f[2])?,
                inode: f[9].parse().ok()?,
            })
        })
        .collect()
}

/// The socket inodes a process holds open.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let s = target
                .to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?;
            s.parse().ok()
        })
        .collect()
}

/// Each node's connections to a peer's listen address, judged by their source address.
pub fn check(bench: &Bench) -> Verdict {
    let table = match std::fs::read_to_string("/proc/net/tcp") {
        Ok(t) => t,
        Err(e) => return Verdict::Warn(format!("cannot read /proc/net/tcp ({e}); not checked")),
    };
    let conns = established(&table);
    let nodes = bench.nodes();
    let mut problems = Vec::new();
    let mut good = 0;
    for &(id, own) in &nodes {
        let Some(pid) = bench.supervisor.pid(id) else {
            continue;
        };
        let inodes = socket_inodes(pid);
        for conn in conns.iter().filter(|c| inodes.contains(&c.inode)) {
            let Some(&(peer, _)) = nodes
                .iter()
                .find(|&&(p, a)| p != id && a == SocketAddr::V4(conn.remote))
            else {
                continue;
            };
            if SocketAddr::V4(conn.local).ip() == own.ip() {
                good += 1;
            } else {
                problems.push(format!(
                    "n{id} (pid {pid}) dials n{peer} at {} from {}, not from its own {}: bind the socket to {}:0 before connecting",
                    conn.remote, conn.local, own.ip(), own.ip()
                ));
            }
        }
    }
    if problems.is_empty() && good == 0 {
        return Verdict::Warn(
            "found no node-to-node connection to judge (do the nodes keep their peer connections open?)".into(),
        );
    }
    Verdict::from_problems(
        problems,
        format!("{good} peer connections, each from its node's own address"),
    )
}

/// The nodes' ids.
pub fn ids(nodes: &[(NodeId, SocketAddr)]) -> Vec<NodeId> {
    nodes.iter().map(|&(id, _)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_table_reads_as_addresses() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
            0: 0B00007F:1B58 0C00007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 20 4 30 10 -1\n   \
            1: 0100007F:1B58 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0 20 4 30 10 -1\n";
        let conns = established(table);
        assert_eq!(
            conns,
            vec![Conn {
                inode: 4242,
                local: "127.0.0.11:7000".parse().unwrap(),
                remote: "127.0.0.12:40000".parse().unwrap(),
            }]
        );
    }
}
