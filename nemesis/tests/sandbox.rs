//! The sandbox: a private loopback per run, invisible to the host and to other runs, gone after.

mod common;

use std::net::{SocketAddrV4, TcpListener};
use std::process::Command;
use std::sync::{mpsc, Barrier};

use common::{connect_from, isolated, CLIENT_IP, CONNECT_TIMEOUT};
use riptide_nemesis::{node_ip, sandbox, Error, Rule, RuleKind, SandboxMode};

const PORT: u16 = 7200;

#[test]
fn an_isolated_run_has_its_own_loopback_that_the_host_cannot_reach() {
    let (listening_tx, listening_rx) = mpsc::channel::<()>();
    let (checked_tx, checked_rx) = mpsc::channel::<bool>();
    // On the host: try to reach the address the isolated run listens on.
    let host = std::thread::spawn(move || {
        if listening_rx.recv().is_err() {
            return; // skipped
        }
        let to = SocketAddrV4::new(node_ip(1), PORT);
        checked_tx
            .send(connect_from(CLIENT_IP, to, CONNECT_TIMEOUT).is_ok())
            .unwrap();
    });
    isolated(move |sb| {
        assert_eq!(sb.mode(), SandboxMode::Thread);
        assert!(sb.is_current());
        assert_ne!(sb.netns(), sb.host_netns());
        assert!(sandbox::netns_in_use(sb.netns()));
        let _listener = TcpListener::bind((node_ip(1), PORT)).expect("node address on lo");
        let to = SocketAddrV4::new(node_ip(1), PORT);
        assert!(
            connect_from(CLIENT_IP, to, CONNECT_TIMEOUT).is_ok(),
            "lo is up"
        );
        listening_tx.send(()).unwrap();
        assert!(!checked_rx.recv().unwrap(), "the host reached the sandbox");
        // Threads started here are inside too.
        let netns = sb.netns();
        let inner = std::thread::spawn(move || sandbox::current_netns().unwrap());
        assert_eq!(inner.join().unwrap(), netns);
    });
    host.join().unwrap();
}

#[test]
fn two_runs_at_once_never_see_each_other() {
    let barrier = Barrier::new(2);
    let run = |peer: u64| {
        isolated(|sb| {
            // The same address and port in both runs at the same moment.
            let _listener = TcpListener::bind((node_ip(1), PORT)).expect("no clash across runs");
            let firewall = common::firewall(sb);
            firewall
                .apply(&[Rule::between(1, peer, RuleKind::Drop)])
                .unwrap();
            barrier.wait();
            let listing = firewall.listing().unwrap();
            barrier.wait();
            listing
        })
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| run(2));
        let b = s.spawn(|| run(3));
        (a.join().unwrap(), b.join().unwrap())
    });
    let (Some(a), Some(b)) = (a, b) else { return };
    assert!(
        a.contains("-d 127.0.0.12/32") && !a.contains("127.0.0.13"),
        "{a}"
    );
    assert!(
        b.contains("-d 127.0.0.13/32") && !b.contains("127.0.0.12"),
        "{b}"
    );
}

#[test]
fn enter_refuses_once_threads_have_started() {
    // The test harness is multi-threaded: the real `enter` must refuse, and change nothing.
    let before = sandbox::current_netns().unwrap();
    let err = sandbox::enter().unwrap_err();
    assert!(matches!(err, Error::NotSingleThreaded { .. }), "{err}");
    assert!(err.to_string().contains("call it first thing in main"));
    assert_eq!(sandbox::current_netns().unwrap(), before);
}

#[test]
fn an_ordinary_user_gets_a_sandbox_through_a_user_namespace() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to start the probe as another user");
        return;
    }
    // The probe drops to uid 65534, then calls `sandbox::enter` and installs the firewall.
    let out = Command::new(common::testbin())
        .arg("userns-probe")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.starts_with("unavailable:") {
        eprintln!("skipped: unprivileged user namespaces are disabled here: {stdout}");
        return;
    }
    assert!(out.status.success(), "probe failed: {stdout}");
    assert!(stdout.starts_with("ok UserNamespace"), "{stdout}");
    assert!(
        stdout.contains("-A riptide -s 127.0.0.11/32 -d 127.0.0.12/32 -j DROP"),
        "{stdout}"
    );
    common::assert_host_firewall_clean();
}
