//! Process faults on real child processes (the stand-in node), by exact pid.
//!
//! Each test runs in a fresh network namespace (so node addresses and ports are private) and
//! checks afterwards that no node process, namespace or host rule is left.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddrV4;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ask, ask_when_ready, echo_node, is_dead, isolated, track, CLIENT_IP};
use riptide_nemesis::{node_ip, sandbox, NodeState, Supervisor};

const PORT: u16 = 7100;

#[test]
fn a_killed_node_is_gone_and_a_new_pid_serves_its_address_with_its_data() {
    isolated(|_| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = Supervisor::new().unwrap();
        let pid = track(supervisor.spawn(echo_node(1, PORT, dir.path())).unwrap());
        assert_eq!(ask_when_ready(1, PORT, "pid"), pid.to_string());
        assert_eq!(ask_when_ready(1, PORT, "put a"), "ok");

        assert_eq!(supervisor.kill(1).unwrap(), pid);
        assert!(is_dead(pid), "killed pid {pid} must be gone");
        let status = supervisor.status(1).unwrap();
        assert_eq!((status.state, status.pid), (NodeState::Killed, None));
        let refused = ask(1, PORT, "pid", Duration::from_millis(300)).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);

        let new = track(supervisor.restart(1).unwrap());
        assert_ne!(new, pid);
        assert_eq!(ask_when_ready(1, PORT, "pid"), new.to_string());
        assert_eq!(
            ask_when_ready(1, PORT, "get"),
            "a",
            "data survived the kill"
        );
        let status = supervisor.status(1).unwrap();
        assert_eq!(
            (status.state, status.pid, status.starts),
            (NodeState::Running, Some(new), 2)
        );
        let log = std::fs::read_to_string(dir.path().join("n1.log")).unwrap();
        assert_eq!(
            log.matches("--- riptide-nemesis: starting node 1").count(),
            2
        );
    });
}

#[test]
fn a_paused_node_stops_answering_then_answers_again() {
    isolated(|_| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = Supervisor::new().unwrap();
        let pid = track(supervisor.spawn(echo_node(1, PORT, dir.path())).unwrap());
        assert_eq!(ask_when_ready(1, PORT, "pid"), pid.to_string());

        assert_eq!(supervisor.pause(1).unwrap(), pid);
        assert_eq!(common::proc_state(pid), Some('T'));
        assert_eq!(supervisor.status(1).unwrap().state, NodeState::Paused);

        // The kernel still accepts the connection into the backlog, but nobody answers.
        let to = SocketAddrV4::new(node_ip(1), PORT);
        let stream = common::connect_from(CLIENT_IP, to, Duration::from_millis(300))
            .expect("a paused node's kernel still completes the handshake");
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        (&stream).write_all(b"pid\n").unwrap();
        let mut reply = String::new();
        let mut reader = BufReader::new(&stream);
        assert!(
            reader.read_line(&mut reply).is_err(),
            "no answer while paused"
        );

        assert_eq!(supervisor.resume(1).unwrap(), pid);
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        reply.clear();
        reader.read_line(&mut reply).unwrap();
        assert_eq!(
            reply.trim(),
            pid.to_string(),
            "the pending request is answered"
        );
        assert_eq!(ask_when_ready(1, PORT, "pid"), pid.to_string());
        assert_eq!(supervisor.status(1).unwrap().state, NodeState::Running);
    });
}

#[test]
fn dropping_the_supervisor_kills_every_node_paused_ones_included() {
    isolated(|_| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = Supervisor::new().unwrap();
        let pids: Vec<u32> = (1..=3)
            .map(|id| track(supervisor.spawn(echo_node(id, PORT, dir.path())).unwrap()))
            .collect();
        for id in 1..=3 {
            ask_when_ready(id, PORT, "pid");
        }
        supervisor.pause(2).unwrap();
        supervisor.kill(3).unwrap();
        drop(supervisor);
        for pid in pids {
            assert!(is_dead(pid), "{pid} outlived the supervisor");
        }
    });
}

#[test]
fn a_node_that_exits_on_its_own_is_reported_and_can_be_restarted() {
    isolated(|_| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = Supervisor::new().unwrap();
        let spec = riptide_nemesis::NodeSpec::new(1, common::testbin(), dir.path().join("n1.log"))
            .arg("no-such-mode");
        track(supervisor.spawn(spec).unwrap());
        let deadline = Instant::now() + common::READY_TIMEOUT;
        while supervisor.status(1).unwrap().state == NodeState::Running {
            assert!(Instant::now() < deadline, "the bad command should exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        let status = supervisor.status(1).unwrap();
        assert_eq!(
            status.state,
            NodeState::Exited {
                code: Some(2),
                signal: None
            }
        );
        assert_eq!(status.pid, None);
        assert_eq!(
            supervisor.kill(1).unwrap_err().to_string(),
            "cannot kill node 1: it is exited with code 2"
        );
        track(supervisor.restart(1).unwrap());
        assert_eq!(supervisor.status(1).unwrap().starts, 2);
    });
}

#[test]
fn nodes_and_the_namespace_die_with_a_runner_killed_by_sigkill() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The stand-in runner enters its own sandbox (the real `sandbox::enter`, as root), starts a
    // supervisor and one node, and reports the node's pid and its namespace.
    let mut runner = Command::new(common::testbin())
        .arg("parent")
        .arg(format!("{}:{PORT}", node_ip(1)))
        .arg(dir.path().join("n1"))
        .arg(dir.path().join("n1.log"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(runner.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let ["child", pid, "netns", netns] = words.as_slice() else {
        panic!("unexpected runner output: {line:?}");
    };
    let (node, netns): (u32, u64) = (pid.parse().unwrap(), netns.parse().unwrap());
    assert!(!is_dead(node));
    assert!(sandbox::netns_in_use(netns));

    runner.kill().unwrap(); // SIGKILL: no unwinding, no Drop
    runner.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_dead(node) || sandbox::netns_in_use(netns) {
        assert!(
            Instant::now() < deadline,
            "node {node} or its namespace outlived the runner"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    common::assert_host_firewall_clean();
}

#[test]
fn sigterm_ends_a_node_that_obeys_and_one_that_ignores_it_is_killed_after_the_grace() {
    use riptide_nemesis::{NodeSpec, Termination};
    isolated(|_| {
        let dir = tempfile::tempdir().unwrap();
        let supervisor = Supervisor::new().unwrap();
        let pid = track(supervisor.spawn(echo_node(1, PORT, dir.path())).unwrap());
        assert_eq!(ask_when_ready(1, PORT, "pid"), pid.to_string());
        match supervisor.terminate(1, Duration::from_secs(5)).unwrap() {
            Termination::Exited { signal, after, .. } => {
                assert_eq!(signal, Some(libc::SIGTERM));
                assert!(after < Duration::from_secs(5));
            }
            other => panic!("the echo node obeys SIGTERM: {other:?}"),
        }
        assert!(is_dead(pid));
        assert_eq!(supervisor.status(1).unwrap().state, NodeState::Killed);
        track(supervisor.restart(1).unwrap());

        // A shell that ignores SIGTERM and execs into sleep: the ignoring survives the exec.
        let stubborn = NodeSpec::new(2, "/bin/sh", dir.path().join("n2.log"))
            .args(["-c", "trap '' TERM; exec sleep 30"]);
        let pid = track(supervisor.spawn(stubborn).unwrap());
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        let grace = Duration::from_millis(500);
        assert_eq!(
            supervisor.terminate(2, grace).unwrap(),
            Termination::Ignored { grace }
        );
        assert!(started.elapsed() >= grace);
        assert!(is_dead(pid), "an ignored SIGTERM ends in SIGKILL");
        assert_eq!(supervisor.status(2).unwrap().state, NodeState::Killed);
    });
}
