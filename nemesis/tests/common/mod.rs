//! Helpers shared by the integration tests: an isolated run with the after-test checks, TCP
//! connects from a chosen source address, and the stand-in node binary.

#![allow(dead_code)] // each test file uses a different subset

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use riptide_nemesis::sandbox::{self, Sandbox};
use riptide_nemesis::{node_ip, NodeId, NodeSpec, Pid};

/// How long a connect may take before it counts as cut. On loopback a handshake takes
/// microseconds, and a dropped SYN is retransmitted only after 1 s: 300 ms means the SYN vanished.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);

/// How long a restarted or resumed stand-in node may take to answer: it starts in milliseconds;
/// the margin is for a loaded 2-core CI machine.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The clients' address: outside every partition.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// The run's firewall; a missing or broken iptables fails the test with the one-line fix.
pub fn firewall(sb: &Sandbox) -> riptide_nemesis::Firewall {
    riptide_nemesis::Firewall::install(sb).unwrap_or_else(|e| panic!("{e}"))
}

/// The stand-in node.
pub fn testbin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_riptide-nemesis-testbin"))
}

thread_local! {
    /// Pids spawned by the isolated run on this thread, checked after it.
    static SPAWNED: RefCell<Vec<Pid>> = const { RefCell::new(Vec::new()) };
}

/// Runs `body` in a fresh network namespace, then checks what every test must leave behind:
/// no namespace, no node process, no rule on the host. Returns `None` if skipped (not root).
pub fn isolated<R: Send>(body: impl FnOnce(&Sandbox) -> R + Send) -> Option<R> {
    let (netns, result, pids) = sandbox::run_isolated(|sb| {
        let result = body(sb);
        let pids = SPAWNED.with(|s| s.take());
        (sb.netns(), result, pids)
    })?;
    for pid in pids {
        assert!(is_dead(pid), "node process {pid} outlived the test");
    }
    // A joined thread can still be inside the kernel's exit path for a moment: pthread_join
    // wakes up when the thread's memory is released, a little before its namespaces are. So the
    // namespace gets a short grace period to disappear; a process holding it would hold it for good.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while sandbox::netns_in_use(netns) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        !sandbox::netns_in_use(netns),
        "the test's network namespace is still in use"
    );
    assert_host_firewall_clean();
    Some(result)
}

/// Notes a pid spawned by the current test, for the after-test check (call it on the thread
/// that runs the test body).
pub fn track(pid: Pid) -> Pid {
    SPAWNED.with(|s| s.borrow_mut().push(pid));
    pid
}

/// No `riptide` chain or rule in the host's firewall (called from a host thread).
pub fn assert_host_firewall_clean() {
    let Ok(out) = Command::new("iptables").args(["-w", "-S"]).output() else {
        return; // no iptables on the host: nothing could have been added there
    };
    let rules = String::from_utf8_lossy(&out.stdout);
    assert!(
        !rules.contains("riptide"),
        "the host's firewall has riptide rules:\n{rules}"
    );
}

/// Whether `pid` is gone (or a zombie nobody reaped yet: dead all the same).
pub fn is_dead(pid: Pid) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => matches!(
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next()),
            Some('Z' | 'X')
        ),
    }
}

/// The one-letter process state of `pid` (`T` when stopped).
pub fn proc_state(pid: Pid) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Opens a TCP connection from `from` (port chosen by the kernel) to `to`, giving up after
/// `timeout`. std cannot bind a socket before connecting it, hence libc.
pub fn connect_from(
    from: Ipv4Addr,
    to: SocketAddrV4,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    fn check(ret: libc::c_int) -> std::io::Result<libc::c_int> {
        if ret < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }
    fn sockaddr(ip: Ipv4Addr, port: u16) -> libc::sockaddr_in {
        // SAFETY: sockaddr_in is plain old data.
        let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = port.to_be();
        addr.sin_addr.s_addr = u32::from(ip).to_be();
        addr
    }
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: the fd is fresh and owned by the TcpStream from here on (closed on every path); the
    // sockaddr pointers point at live locals of the right size.
    unsafe {
        let fd = check(libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        ))?;
        let stream = TcpStream::from_raw_fd(fd);
        let src = sockaddr(from, 0);
        check(libc::bind(
            fd,
            (&src as *const libc::sockaddr_in).cast(),
            len,
        ))?;
        let dst = sockaddr(*to.ip(), to.port());
        if libc::connect(fd, (&dst as *const libc::sockaddr_in).cast(), len) < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EINPROGRESS) {
                return Err(err);
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            let ms = timeout.as_millis() as libc::c_int;
            if check(libc::poll(&mut pfd, 1, ms))? == 0 {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            if let Some(e) = stream.take_error()? {
                return Err(e);
            }
        }
        stream.set_nonblocking(false)?;
        Ok(stream)
    }
}

/// Whether node `from` can open a TCP connection to node `to` on `port`.
pub fn node_connects(from: NodeId, to: NodeId, port: u16) -> bool {
    connect_from(
        node_ip(from),
        SocketAddrV4::new(node_ip(to), port),
        CONNECT_TIMEOUT,
    )
    .is_ok()
}

/// A listener on node `id`'s address; the kernel completes handshakes into its backlog, which is
/// all a connect test needs.
pub fn listen(id: NodeId, port: u16) -> TcpListener {
    TcpListener::bind(SocketAddrV4::new(node_ip(id), port)).expect("bind node address")
}

/// The spec of a stand-in node `id` serving on `port`, data and log under `dir`.
pub fn echo_node(id: NodeId, port: u16, dir: &std::path::Path) -> NodeSpec {
    let addr = SocketAddrV4::new(node_ip(id), port).to_string();
    let data = dir.join(format!("n{id}"));
    NodeSpec::new(id, testbin(), dir.join(format!("n{id}.log")))
        .arg("echo")
        .arg(addr)
        .arg(data)
}

/// Sends one request line to a stand-in node, from the clients' address, and reads the reply.
pub fn ask(id: NodeId, port: u16, request: &str, timeout: Duration) -> std::io::Result<String> {
    let to = SocketAddrV4::new(node_ip(id), port);
    let stream = connect_from(CLIENT_IP, to, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    (&stream).write_all(format!("{request}\n").as_bytes())?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply)?;
    if reply.is_empty() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(reply.trim_end().to_string())
}

/// Asks until the node answers (it may still be starting), up to [`READY_TIMEOUT`].
pub fn ask_when_ready(id: NodeId, port: u16, request: &str) -> String {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match ask(id, port, request, Duration::from_secs(1)) {
            Ok(reply) => return reply,
            Err(e) if Instant::now() > deadline => panic!("node {id} never answered: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A supervisor running stand-in nodes 1..=`n` on `port`, each answering before this returns.
pub fn echo_cluster(
    n: u64,
    port: u16,
    dir: &std::path::Path,
) -> std::sync::Arc<riptide_nemesis::Supervisor> {
    let supervisor = std::sync::Arc::new(riptide_nemesis::Supervisor::new().unwrap());
    for id in 1..=n {
        track(supervisor.spawn(echo_node(id, port, dir)).unwrap());
    }
    for id in 1..=n {
        ask_when_ready(id, port, "pid");
    }
    supervisor
}
