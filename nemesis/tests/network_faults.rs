//! Network faults against real TCP and UDP on the sandbox's loopback (root + iptables).
//!
//! Each test runs in a fresh network namespace and checks afterwards that the namespace is gone
//! and that the host's firewall has no riptide rule.

mod common;

use std::net::{SocketAddrV4, UdpSocket};
use std::time::Duration;

use common::{isolated, listen, node_connects, CLIENT_IP, CONNECT_TIMEOUT};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use riptide_nemesis::partition::partition;
use riptide_nemesis::{node_ip, Error, Firewall, Grudge, NodeId, PartitionKind, Rule, RuleKind};

const PORT: u16 = 7000;

/// Every ordered pair of distinct nodes among `nodes`.
fn pairs(nodes: &[NodeId]) -> Vec<(NodeId, NodeId)> {
    let mut pairs = Vec::new();
    for &a in nodes {
        for &b in nodes {
            if a != b {
                pairs.push((a, b));
            }
        }
    }
    pairs
}

/// Tries every pair's connect in parallel (a cut one costs [`CONNECT_TIMEOUT`]); the threads are
/// started from the test's thread, so they are inside its namespace.
fn connectivity(nodes: &[NodeId]) -> Vec<((NodeId, NodeId), bool)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = pairs(nodes)
            .into_iter()
            .map(|(a, b)| scope.spawn(move || ((a, b), node_connects(a, b, PORT))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn partition_of_node_1_from_node_2_cuts_tcp_both_ways_until_healed() {
    isolated(|sb| {
        let firewall = common::firewall(sb);
        let (_l1, _l2) = (listen(1, PORT), listen(2, PORT));
        assert!(node_connects(1, 2, PORT) && node_connects(2, 1, PORT));

        let mut grudge = Grudge::new();
        grudge.cut(1, 2);
        let commands = firewall.apply(&grudge.rules(RuleKind::Drop)).unwrap();
        assert_eq!(
            commands,
            [
                "iptables -A riptide -s 127.0.0.12 -d 127.0.0.11 -j DROP",
                "iptables -A riptide -s 127.0.0.11 -d 127.0.0.12 -j DROP",
            ]
        );
        let listing = firewall.listing().unwrap();
        assert!(listing.contains("-A riptide -s 127.0.0.11/32 -d 127.0.0.12/32 -j DROP"));
        assert!(listing.contains("-A riptide -s 127.0.0.12/32 -d 127.0.0.11/32 -j DROP"));

        assert!(
            !node_connects(1, 2, PORT),
            "127.0.0.11 -> 127.0.0.12 must fail"
        );
        assert!(
            !node_connects(2, 1, PORT),
            "127.0.0.12 -> 127.0.0.11 must fail"
        );
        // Clients sit outside the partition.
        let to_2 = SocketAddrV4::new(node_ip(2), PORT);
        assert!(common::connect_from(CLIENT_IP, to_2, CONNECT_TIMEOUT).is_ok());

        assert_eq!(firewall.heal().unwrap(), "iptables -F riptide");
        assert!(firewall.rules().is_empty());
        assert!(node_connects(1, 2, PORT) && node_connects(2, 1, PORT));
    });
}

#[test]
fn every_partition_kind_cuts_exactly_the_links_of_its_grudge() {
    isolated(|sb| {
        let firewall = common::firewall(sb);
        let nodes: Vec<NodeId> = (1..=5).collect();
        let _listeners: Vec<_> = nodes.iter().map(|&id| listen(id, PORT)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(2024);
        for kind in PartitionKind::ALL {
            let p = partition(kind, &nodes, &mut rng, Some(4)).unwrap();
            firewall.apply(&p.grudge.rules(RuleKind::Drop)).unwrap();
            for ((a, b), connected) in connectivity(&nodes) {
                assert_eq!(
                    connected,
                    p.grudge.can_connect(a, b),
                    "{kind}: connect {a} -> {b} (groups {:?})",
                    p.groups
                );
            }
            firewall.heal().unwrap();
            for (pair, connected) in connectivity(&nodes) {
                assert!(connected, "{kind}: {pair:?} still cut after heal");
            }
        }
    });
}

#[test]
fn asymmetric_cut_passes_one_direction_only() {
    isolated(|sb| {
        let firewall = common::firewall(sb);
        let listener = listen(2, PORT);
        // A connection opened before the cut, from node 1 to node 2.
        let to_2 = SocketAddrV4::new(node_ip(2), PORT);
        let at_1 = common::connect_from(node_ip(1), to_2, CONNECT_TIMEOUT).unwrap();
        let (at_2, _) = listener.accept().unwrap();
        let udp_1 = UdpSocket::bind((node_ip(1), PORT)).unwrap();
        let udp_2 = UdpSocket::bind((node_ip(2), PORT)).unwrap();
        let wait = Some(Duration::from_millis(300));
        for udp in [&udp_1, &udp_2] {
            udp.set_read_timeout(wait).unwrap();
        }
        for tcp in [&at_1, &at_2] {
            tcp.set_read_timeout(wait).unwrap();
        }

        // Node 2 stops hearing node 1; node 1 still hears node 2.
        let mut grudge = Grudge::new();
        grudge.cut_one_way(1, 2);
        let commands = firewall.apply(&grudge.rules(RuleKind::Drop)).unwrap();
        assert_eq!(
            commands,
            ["iptables -A riptide -s 127.0.0.11 -d 127.0.0.12 -j DROP"]
        );

        // Datagrams: 2 -> 1 arrives, 1 -> 2 vanishes.
        udp_2.send_to(b"from 2", (node_ip(1), PORT)).unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = udp_1.recv_from(&mut buf).expect("2 -> 1 is open");
        assert_eq!(&buf[..n], b"from 2");
        udp_1.send_to(b"from 1", (node_ip(2), PORT)).unwrap();
        assert!(udp_2.recv_from(&mut buf).is_err(), "1 -> 2 is cut");

        // On the established connection, bytes flow 2 -> 1 only (1's ACKs are lost, but the
        // bytes were delivered).
        use std::io::{Read, Write};
        (&at_2).write_all(b"pong").unwrap();
        let mut got = [0u8; 4];
        (&at_1).read_exact(&mut got).expect("2 -> 1 delivers");
        assert_eq!(&got, b"pong");
        (&at_1).write_all(b"ping").unwrap();
        assert!((&at_2).read(&mut got).is_err(), "1 -> 2 delivers nothing");

        // New TCP connections need both directions, so they fail both ways.
        assert!(!node_connects(1, 2, PORT));
        let _l1 = listen(1, PORT + 1);
        assert!(!node_connects(2, 1, PORT + 1));

        firewall.heal().unwrap();
        udp_1.send_to(b"again", (node_ip(2), PORT)).unwrap();
        assert!(udp_2.recv_from(&mut buf).is_ok(), "healed");
        assert!(node_connects(1, 2, PORT) && node_connects(2, 1, PORT + 1));
    });
}

#[test]
fn loss_drops_a_random_fraction_of_one_links_packets() {
    isolated(|sb| {
        let firewall = common::firewall(sb);
        let udp_1 = UdpSocket::bind((node_ip(1), PORT)).unwrap();
        let udp_2 = UdpSocket::bind((node_ip(2), PORT)).unwrap();
        udp_1.set_nonblocking(true).unwrap();
        udp_2.set_nonblocking(true).unwrap();
        let rule = Rule::between(1, 2, RuleKind::Loss(0.5));
        assert_eq!(
            firewall.apply(&[rule]).unwrap(),
            [
                "iptables -A riptide -s 127.0.0.11 -d 127.0.0.12 -m statistic --mode random \
              --probability 0.5 -j DROP"
            ]
        );

        // (sender, receiver, destination): node 1 -> 2 is lossy, 2 -> 1 is not.
        let count = |from: &UdpSocket, to: &UdpSocket, dst: NodeId| {
            const BATCHES: usize = 20;
            const PER_BATCH: usize = 20; // small batches so the receive buffer never overflows
            let mut received = 0;
            let mut buf = [0u8; 16];
            for _ in 0..BATCHES {
                for _ in 0..PER_BATCH {
                    from.send_to(b"x", (node_ip(dst), PORT)).unwrap();
                }
                std::thread::sleep(Duration::from_millis(5));
                while to.recv_from(&mut buf).is_ok() {
                    received += 1;
                }
            }
            received
        };
        let lossy = count(&udp_1, &udp_2, 2);
        // 400 datagrams at p = 0.5: mean 200, standard deviation 10; 120..280 is 8 deviations.
        assert!((120..=280).contains(&lossy), "{lossy} of 400 arrived");
        assert_eq!(
            count(&udp_2, &udp_1, 1),
            400,
            "the other direction is clean"
        );

        firewall.heal().unwrap();
        assert_eq!(count(&udp_1, &udp_2, 2), 400, "healed");
    });
}

#[test]
fn the_firewall_refuses_to_run_outside_its_namespace() {
    let Some(firewall) = isolated(common::firewall) else {
        return;
    };
    // This thread is on the host: every command must be refused, not run here.
    let rule = Rule::between(1, 2, RuleKind::Drop);
    assert!(matches!(firewall.apply(&[rule]), Err(Error::NotInSandbox)));
    assert!(matches!(firewall.heal(), Err(Error::NotInSandbox)));
    drop(firewall);
    common::assert_host_firewall_clean();
}

#[test]
fn a_missing_or_broken_iptables_is_one_line_with_the_fix() {
    isolated(|sb| {
        let err = Firewall::install_with(sb, std::path::Path::new("/nonexistent/iptables"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "iptables not found (looked for /nonexistent/iptables); fix: apt-get install \
             iptables (only partition and loss need it: kill and pause work without)"
        );

        // An iptables that runs but fails, as when the kernel lacks the tables.
        let dir = tempfile::tempdir().unwrap();
        for name in ["iptables", "iptables-restore"] {
            let path = dir.path().join(name);
            std::fs::write(
                &path,
                "#!/bin/sh\necho \"iptables v1.8.9 (nf_tables): Could not fetch rule set \
                 generation id: Invalid argument\" >&2\nexit 4\n",
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // Running a script just written can fail with ETXTBSY while another test thread forks
        // (its child briefly holds our write descriptor): a race of the test, not of riptide.
        let mut err = String::new();
        for _ in 0..50 {
            err = Firewall::install_with(sb, &dir.path().join("iptables"))
                .unwrap_err()
                .to_string();
            if !err.contains("Text file busy") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!err.contains('\n'), "one line: {err}");
        assert!(
            err.starts_with(
                "iptables does not work here: `iptables -w -N riptide` failed: iptables v1.8.9 \
                 (nf_tables): Could not fetch rule set generation id: Invalid argument; fix: \
                 apt-get install iptables"
            ),
            "{err}"
        );
    });
}

/// Sends `count` numbered datagrams from `from` to node `dst` and returns, per datagram that
/// arrived at `to` within a second, its number and how long after the first send it came.
fn udp_arrivals(from: &UdpSocket, to: &UdpSocket, dst: NodeId, count: u8) -> Vec<(u8, Duration)> {
    let began = std::time::Instant::now();
    for i in 0..count {
        from.send_to(&[i], (node_ip(dst), PORT)).unwrap();
    }
    to.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut arrivals = Vec::new();
    let mut buf = [0u8; 4];
    while arrivals.len() < usize::from(count) {
        match to.recv_from(&mut buf) {
            Ok(_) => arrivals.push((buf[0], began.elapsed())),
            Err(_) => break,
        }
    }
    arrivals
}

#[test]
fn delay_holds_one_links_packets_in_order_and_a_partition_still_drops_them() {
    isolated(|sb| {
        let firewall = common::firewall(sb);
        let udp_1 = UdpSocket::bind((node_ip(1), PORT)).unwrap();
        let udp_2 = UdpSocket::bind((node_ip(2), PORT)).unwrap();
        let rule = Rule::between(1, 2, RuleKind::Delay(80));
        assert_eq!(
            firewall.apply(&[rule]).unwrap(),
            [
                "iptables -A riptide-delay -s 127.0.0.11 -d 127.0.0.12 -j NFQUEUE --queue-num 80 \
              --queue-bypass"
            ]
        );
        let slow = udp_arrivals(&udp_1, &udp_2, 2, 10);
        let order: Vec<u8> = slow.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, (0..10).collect::<Vec<u8>>(), "all arrive, in order");
        assert!(
            slow.iter().all(|(_, t)| *t >= Duration::from_millis(80)),
            "each held 80 ms: {slow:?}"
        );
        let fast = udp_arrivals(&udp_2, &udp_1, 1, 10);
        assert_eq!(fast.len(), 10);
        assert!(
            fast.iter().all(|(_, t)| *t < Duration::from_millis(60)),
            "the other direction is not slowed: {fast:?}"
        );

        // A cut on the same link wins over its delay (held in OUTPUT, dropped in INPUT).
        firewall
            .apply(&[Rule::between(1, 2, RuleKind::Drop)])
            .unwrap();
        assert!(udp_arrivals(&udp_1, &udp_2, 2, 3).is_empty(), "cut");

        assert_eq!(
            firewall.heal().unwrap(),
            "iptables -F riptide; iptables -F riptide-delay"
        );
        let healed = udp_arrivals(&udp_1, &udp_2, 2, 10);
        assert_eq!(healed.len(), 10);
        assert!(
            healed.iter().all(|(_, t)| *t < Duration::from_millis(60)),
            "healed: {healed:?}"
        );
    });
}

#[test]
fn a_cut_drops_the_packets_a_delay_holds_and_recut_swaps_cuts_keeping_delays() {
    isolated(|sb| {
        let firewall = common::firewall(sb);
        let udp_1 = UdpSocket::bind((node_ip(1), PORT)).unwrap();
        let udp_2 = UdpSocket::bind((node_ip(2), PORT)).unwrap();
        let udp_3 = UdpSocket::bind((node_ip(3), PORT)).unwrap();
        firewall
            .apply(&[
                Rule::between(1, 2, RuleKind::Delay(300)),
                Rule::between(1, 3, RuleKind::Drop),
            ])
            .unwrap();
        // Five packets are in flight (held) on 1 -> 2 when the cut comes: none arrives.
        for i in 0..5u8 {
            udp_1.send_to(&[i], (node_ip(2), PORT)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        let commands = firewall
            .recut(&[Rule::between(1, 2, RuleKind::Drop)])
            .unwrap();
        assert_eq!(commands[0], "iptables -F riptide");
        assert_eq!(
            commands[1],
            "iptables -A riptide -s 127.0.0.11 -d 127.0.0.12 -j DROP"
        );
        udp_2
            .set_read_timeout(Some(Duration::from_millis(600)))
            .unwrap();
        let mut buf = [0u8; 4];
        assert!(
            udp_2.recv_from(&mut buf).is_err(),
            "a packet held when its link was cut arrived"
        );
        // The old cut 1 -> 3 is gone in the same step; the delay rule stayed.
        let to_3 = udp_arrivals(&udp_1, &udp_3, 3, 3);
        assert_eq!(to_3.len(), 3, "recut replaced the old cut");
        let kinds: Vec<RuleKind> = firewall.rules().iter().map(|r| r.kind).collect();
        assert_eq!(kinds, [RuleKind::Delay(300), RuleKind::Drop]);
        firewall.heal().unwrap();
        assert_eq!(udp_arrivals(&udp_1, &udp_2, 2, 3).len(), 3, "healed");
    });
}

#[test]
fn delay_slows_a_tcp_round_trip_by_the_sum_of_both_directions() {
    use std::io::{Read, Write};
    isolated(|sb| {
        let firewall = common::firewall(sb);
        let listener = std::net::TcpListener::bind((node_ip(2), PORT)).unwrap();
        let echo = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1];
            while conn.read_exact(&mut buf).is_ok() {
                conn.write_all(&buf).unwrap();
            }
        });
        let mut conn = std::net::TcpStream::connect_timeout(
            &SocketAddrV4::new(node_ip(2), PORT).into(),
            CONNECT_TIMEOUT,
        )
        .unwrap();
        conn.set_nodelay(true).unwrap();
        let round_trip = |conn: &mut std::net::TcpStream| {
            let began = std::time::Instant::now();
            conn.write_all(b"x").unwrap();
            let mut buf = [0u8; 1];
            conn.read_exact(&mut buf).unwrap();
            began.elapsed()
        };
        assert!(round_trip(&mut conn) < Duration::from_millis(30));
        // The client is 127.0.0.1 here, so delay both ways between it and node 2.
        let client = CLIENT_IP;
        let rules = [
            Rule {
                src: client,
                dst: node_ip(2),
                kind: RuleKind::Delay(30),
            },
            Rule {
                src: node_ip(2),
                dst: client,
                kind: RuleKind::Delay(50),
            },
        ];
        firewall.apply(&rules).unwrap();
        // The established connection slows at once: no reconnect needed.
        let slow = round_trip(&mut conn);
        assert!(
            slow >= Duration::from_millis(80) && slow < Duration::from_millis(400),
            "{slow:?}"
        );
        firewall.heal().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert!(round_trip(&mut conn) < Duration::from_millis(30));
        drop(conn);
        echo.join().unwrap();
    });
}
