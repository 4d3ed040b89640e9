//! Where node `i` lives: 127.0.0.(10 + i), the one place this rule is written down.
//!
//! Each node binds only its own address and dials its peers *from* it, so an iptables rule on
//! (source, destination) matches exactly the traffic of one link. Clients and the runner connect
//! from 127.0.0.1, which no node-to-node rule ever names.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::ids::NodeId;

/// Node addresses start at 127.0.0.11 so that 127.0.0.1, the clients' address, and the few below
/// stay outside every node-to-node rule.
const NODE_IP_BASE: u8 = 10;

/// The largest node id that still has an address (127.0.0.255).
pub const MAX_NODE_ID: NodeId = (u8::MAX - NODE_IP_BASE) as NodeId;

/// The address node `id` listens on and dials from: 127.0.0.(10 + id).
///
/// # Panics
///
/// If `id` is 0 or above [`MAX_NODE_ID`] (the address would leave 127.0.0.11..=127.0.0.255).
pub fn node_ip(id: NodeId) -> Ipv4Addr {
    let last = u8::try_from(id)
        .ok()
        .filter(|&i| i >= 1)
        .and_then(|i| i.checked_add(NODE_IP_BASE))
        .unwrap_or_else(|| panic!("node id {id} out of range 1..={MAX_NODE_ID}"));
    Ipv4Addr::new(127, 0, 0, last)
}

/// Node `id`'s socket address on `port`: [`node_ip`]`(id):port`. Panics as [`node_ip`] does.
pub fn node_addr(id: NodeId, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(node_ip(id)), port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_i_lives_at_127_0_0_10_plus_i() {
        assert_eq!(node_ip(1), Ipv4Addr::new(127, 0, 0, 11));
        assert_eq!(node_ip(MAX_NODE_ID), Ipv4Addr::new(127, 0, 0, 255));
        assert_eq!(node_addr(3, 7000), "127.0.0.13:7000".parse().unwrap());
    }

    #[test]
    fn ids_without_an_address_panic() {
        assert!(std::panic::catch_unwind(|| node_ip(0)).is_err());
        assert!(std::panic::catch_unwind(|| node_ip(MAX_NODE_ID + 1)).is_err());
        assert!(std::panic::catch_unwind(|| node_addr(1 << 40, 7000)).is_err());
    }
}
