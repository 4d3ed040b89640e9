//! The sandbox: a private network namespace for one run.
//!
//! A run's nodes listen on 127.0.0.11, 127.0.0.12, ... and the nemesis cuts links between them with
//! iptables. Doing that on the host would change the host's firewall and make two runs at once see
//! (and break) each other. So each run lives in its own *network namespace*: a fresh network stack
//! with its own loopback device, its own 127.0.0.0/8, its own sockets and its own iptables tables.
//! Rules added inside never touch the host's firewall, and when the last process in the namespace
//! exits the kernel destroys it together with every rule in it: nothing to clean up on the host,
//! even after a `kill -9`.
//!
//! # How the namespace is entered
//!
//! - As root (or with `CAP_SYS_ADMIN`): `unshare(CLONE_NEWNET)`.
//! - As an ordinary user: `unshare(CLONE_NEWUSER | CLONE_NEWNET)` and map the user to root inside
//!   the new user namespace (`/proc/self/uid_map` = `0 <uid> 1`). Root in that user namespace owns
//!   the new network namespace, so it may run iptables there, and only there. (Root in a
//!   container without `CAP_SYS_ADMIN` takes this path too.)
//! - Then loopback is brought up (a new namespace starts with `lo` down), with the
//!   `SIOCGIFFLAGS`/`SIOCSIFFLAGS` ioctls, falling back to `ip link set lo up`.
//!
//! # Why "before any thread starts"
//!
//! Namespaces belong to *threads* in Linux. `unshare(CLONE_NEWNET)` moves only the calling thread;
//! threads and processes it creates afterwards inherit the new namespace, threads that already exist
//! stay where they were. And `unshare(CLONE_NEWUSER)` refuses (EINVAL) in a multi-threaded process.
//! So the runner calls [`enter`] first thing in `main`, before tokio starts its workers: then
//! nodes, clients, the nemesis and every iptables child are all inside. [`enter`] checks that the
//! process is still single-threaded and says so if not.
//!
//! # The mount namespace
//!
//! The same `unshare` also gives the run a private *mount namespace* (`CLONE_NEWNS`, with every
//! mount made private so nothing propagates back to the host). The `power-cut` fault mounts each
//! node's data dir through riptide's own FUSE filesystem (`riptide-faultfs`); those mounts live
//! only in the run's namespace: the host's `findmnt` never shows them, and if the runner dies
//! they vanish with the namespace. A kernel that refuses the mount namespace leaves the run
//! without one ([`Sandbox::mounts`] says why) and only `power-cut` is off.
//!
//! Tests cannot do that (the cargo test harness is multi-threaded), so [`run_isolated`] runs a test
//! body on a fresh thread that moves itself alone into a new network namespace (root only). Whatever
//! the body spawns from there — threads, sockets, child processes — is inside too.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::error::{Error, Result};

/// The identity of a network namespace: the inode number of its `/proc/*/ns/net` file.
pub type NetnsId = u64;

/// How the sandbox was entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// `unshare(CLONE_NEWNET)` with real root privileges.
    Root,
    /// `unshare(CLONE_NEWUSER | CLONE_NEWNET)`: root only inside the run's own user namespace.
    UserNamespace,
    /// Only the calling thread was moved, by [`run_isolated`] (tests).
    Thread,
}

/// Proof that the run is inside its own network namespace.
///
/// Holding one is what lets [`crate::firewall::Firewall`] be installed; the firewall also checks,
/// before every iptables command, that the calling thread is still in this namespace.
#[derive(Debug, Clone)]
pub struct Sandbox {
    mode: SandboxMode,
    netns: NetnsId,
    host_netns: NetnsId,
    /// The run's private mount namespace, or why there is none.
    mounts: std::result::Result<NetnsId, String>,
}

impl Sandbox {
    /// How the namespace was entered.
    pub fn mode(&self) -> SandboxMode {
        self.mode
    }

    /// The identity of the run's network namespace.
    pub fn netns(&self) -> NetnsId {
        self.netns
    }

    /// The identity of the namespace the process was in before (the host's, usually).
    pub fn host_netns(&self) -> NetnsId {
        self.host_netns
    }

    /// The identity (inode of `/proc/thread-self/ns/mnt`) of the run's private mount namespace,
    /// or why the kernel refused one. Without it no FUSE mount is made (they would show on the
    /// host and outlive a crashed runner).
    pub fn mounts(&self) -> std::result::Result<NetnsId, &str> {
        self.mounts.as_ref().copied().map_err(String::as_str)
    }

    /// Whether the calling thread is inside this sandbox.
    pub fn is_current(&self) -> bool {
        current_netns().is_ok_and(|ns| ns == self.netns)
    }
}

/// Moves the whole process into a new private network namespace and brings loopback up.
///
/// Call it first thing in `main`, before any thread starts (see the module docs). As root it
/// unshares the network namespace; otherwise it unshares a user namespace mapped to root together
/// with it. On failure the error is one line that says how to fix it; the runner may then go on
/// without a sandbox for the faults that need neither namespace nor iptables (kill, pause).
pub fn enter() -> Result<Sandbox> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(Error::NotSingleThreaded { threads });
    }
    let host_netns = current_netns()?;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mode = if root {
        match unshare(libc::CLONE_NEWNET) {
            Ok(()) => SandboxMode::Root,
            // Root without CAP_SYS_ADMIN (a container): a user namespace may still be allowed.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                enter_user_namespace()?;
                SandboxMode::UserNamespace
            }
            Err(e) => {
                return Err(Error::NamespaceUnavailable {
                    reason: format!("unshare(CLONE_NEWNET): {e}"),
                })
            }
        }
    } else {
        enter_user_namespace()?;
        SandboxMode::UserNamespace
    };
    loopback_up()?;
    let netns = current_netns()?;
    let mounts = private_mounts();
    tracing::info!(
        ?mode,
        netns,
        ?mounts,
        "entered the run's private network namespace"
    );
    Ok(Sandbox {
        mode,
        netns,
        host_netns,
        mounts,
    })
}

/// Runs `body` on a fresh thread that first moves itself alone into a new network namespace with
/// loopback up. **Meant for tests** (this crate's and other crates'): the cargo test harness is
/// multi-threaded, so [`enter`] cannot be used there.
///
/// Everything `body` creates — threads, sockets, child processes, a
/// [`Supervisor`](crate::Supervisor) and its nodes, a [`Firewall`](crate::Firewall) — lives in the
/// namespace, which disappears once the thread and all of those are gone. A panic in `body` is
/// re-raised in the caller.
///
/// Needs root (a user namespace cannot be entered from a multi-threaded process). When it cannot
/// create the namespace it prints one `skipped: ...` line on stderr (not captured by the test
/// harness) and returns `None`, so a test can `let Some(..) = run_isolated(..) else { return };`.
pub fn run_isolated<R, F>(body: F) -> Option<R>
where
    F: FnOnce(&Sandbox) -> R + Send,
    R: Send,
{
    let outcome = std::thread::scope(|scope| {
        let handle = scope.spawn(move || -> std::result::Result<R, String> {
            let sandbox = enter_this_thread()?;
            Ok(body(&sandbox))
        });
        match handle.join() {
            Ok(outcome) => outcome,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    match outcome {
        Ok(value) => Some(value),
        Err(why) => {
            // Written to the real stderr, past the test harness's capture, so a skip is never silent.
            let _ = writeln!(std::io::stderr(), "skipped: {why}");
            None
        }
    }
}

/// The namespace of the calling thread.
pub fn current_netns() -> Result<NetnsId> {
    std::fs::metadata("/proc/thread-self/ns/net")
        .map(|m| m.ino())
        .map_err(|e| Error::io("reading /proc/thread-self/ns/net", e))
}

/// Whether any thread of any process still lives in network namespace `netns`.
///
/// Tests use it to show that a run's namespace is gone (and its rules with it) once the run ends.
/// It scans `/proc/*/task/*/ns/net`, so it needs to see every process (root).
pub fn netns_in_use(netns: NetnsId) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    for proc_entry in procs.flatten() {
        let name = proc_entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(tasks) = std::fs::read_dir(proc_entry.path().join("task")) else {
            continue;
        };
        for task in tasks.flatten() {
            if std::fs::metadata(task.path().join("ns/net")).is_ok_and(|m| m.ino() == netns) {
                return true;
            }
        }
    }
    false
}

/// The thread-only entry used by [`run_isolated`]; the error is a reason to skip.
fn enter_this_thread() -> std::result::Result<Sandbox, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(
            "needs root to create a private network namespace from a multi-threaded \
                    test process (run the tests as root, as CI does)"
                .to_string(),
        );
    }
    let host_netns = current_netns().map_err(|e| e.to_string())?;
    unshare(libc::CLONE_NEWNET).map_err(|e| {
        format!("unshare(CLONE_NEWNET) failed: {e} (network namespaces disabled here?)")
    })?;
    loopback_up().map_err(|e| e.to_string())?;
    let netns = current_netns().map_err(|e| e.to_string())?;
    Ok(Sandbox {
        mode: SandboxMode::Thread,
        netns,
        host_netns,
        mounts: private_mounts(),
    })
}

/// The identity of the calling thread's mount namespace.
pub fn current_mntns() -> Result<NetnsId> {
    std::fs::metadata("/proc/thread-self/ns/mnt")
        .map(|m| m.ino())
        .map_err(|e| Error::io("reading /proc/thread-self/ns/mnt", e))
}

/// Moves the calling thread (the whole process, if single-threaded) into a new mount namespace
/// whose mounts are all private, so that what the run mounts never propagates to the host.
fn private_mounts() -> std::result::Result<NetnsId, String> {
    unshare(libc::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    // SAFETY: a propagation change on "/" with null source, type and data, as mount(2) documents.
    let changed = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if changed != 0 {
        return Err(format!(
            "making the run's mounts private (mount --make-rprivate /): {}",
            std::io::Error::last_os_error()
        ));
    }
    current_mntns().map_err(|e| e.to_string())
}

fn unshare(flags: libc::c_int) -> std::io::Result<()> {
    // SAFETY: unshare only changes the calling thread's (or process's) namespace membership.
    if unsafe { libc::unshare(flags) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// New user namespace + network namespace, with the caller mapped to root inside.
fn enter_user_namespace() -> Result<()> {
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET).map_err(|e| Error::NamespaceUnavailable {
        reason: format!("unshare(CLONE_NEWUSER | CLONE_NEWNET): {e}"),
    })?;
    // An unprivileged process must give up setgroups before it may write its gid_map.
    let maps = [
        ("/proc/self/setgroups", "deny".to_string()),
        ("/proc/self/uid_map", format!("0 {uid} 1")),
        ("/proc/self/gid_map", format!("0 {gid} 1")),
    ];
    for (path, content) in maps {
        std::fs::write(path, content).map_err(|e| Error::NamespaceUnavailable {
            reason: format!("writing {path}: {e}"),
        })?;
    }
    Ok(())
}

/// Number of threads in this process, from `/proc/self/status`.
fn thread_count() -> Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| Error::io("reading /proc/self/status", e))?;
    Ok(status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(1))
}

/// Brings `lo` up in the calling thread's namespace: ioctl first, `ip link set lo up` if that fails.
fn loopback_up() -> Result<()> {
    let ioctl_error = match loopback_up_ioctl() {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let out = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .output();
    match out {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(Error::NamespaceUnavailable {
            reason: format!(
                "cannot bring loopback up: ioctl: {ioctl_error}; ip link set lo up: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }),
        Err(e) => Err(Error::NamespaceUnavailable {
            reason: format!(
                "cannot bring loopback up: ioctl: {ioctl_error}; ip link set lo up: {e}"
            ),
        }),
    }
}

fn loopback_up_ioctl() -> std::io::Result<()> {
    // SAFETY: plain socket syscall; the fd is closed below on every path.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: fd is a socket and req a valid ifreq naming "lo"; the kernel reads and writes only
    // inside it. Reading the flags union member after SIOCGIFFLAGS filled it is sound.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS as _, &mut req) < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req) < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: fd is ours and still open.
    unsafe { libc::close(fd) };
    result
}
