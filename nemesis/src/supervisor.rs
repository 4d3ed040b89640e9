//! Process supervision: the node processes of a run, and the process faults on them.
//!
//! The [`Supervisor`] starts each node from a [`NodeSpec`] (program, arguments, environment, log
//! file), remembers its exact pid, and applies process faults to that pid only:
//!
//! - **kill**: `SIGKILL`, then reap. The node gets no chance to flush or say goodbye: whatever it
//!   had not made durable is lost, which is what a power cut does. Its peers see their TCP
//!   connections reset (the kernel closes the dead process's sockets) and new connects refused
//!   until it restarts. [`Supervisor::restart`] starts it again from the *same* spec: same command
//!   line, same data dir, same address.
//! - **pause**: `SIGSTOP`, later `SIGCONT`. The process is frozen but its sockets stay open: the
//!   kernel still completes TCP handshakes into the listen backlog and buffers incoming bytes, but
//!   nothing answers. Peers see a node that hangs (timeouts, not resets) — a long GC pause or a VM
//!   migration. After `SIGCONT` it resumes where it was, with stale ideas about time and terms.
//!
//! Signals go to exact pids with `kill(2)`, never by name. A pid is signalled only while its child
//! is unreaped, so it cannot have been reused by another process.
//!
//! # Nodes never outlive the run
//!
//! - Dropping the supervisor (normal exit, error, panic unwinding) resumes paused nodes, SIGKILLs
//!   every node and reaps it.
//! - If the runner itself dies without unwinding (SIGKILL, abort), each node gets SIGKILL from the
//!   kernel: it is started with `prctl(PR_SET_PDEATHSIG, SIGKILL)`. The catch: the "parent" that
//!   signal watches is the *thread* that forked the node, not the process. A node forked from a
//!   short-lived thread (say, a tokio blocking-pool thread) would be killed when that thread
//!   retires. So every spawn happens on one thread owned by the supervisor, which lives until the
//!   supervisor is dropped, after its nodes are dead. Right after fork the child also checks that
//!   its parent is still the runner (`getppid`), in case the runner died before the signal was
//!   armed.
//! - Each node gets a process group of its own, so a Ctrl-C in the terminal reaches the runner
//!   only; the runner then shuts down in order (heal, final reads, stop nodes).
//!
//! The spawning thread, and so every node, lives in the network namespace of the thread that
//! called [`Supervisor::new`]: create it after entering the sandbox.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::spawner::Spawner;
use crate::NodeId;

/// A process id, as the kernel and `std::process::Child::id` give it.
pub type Pid = u32;

/// How long to wait for a SIGSTOP or SIGCONT to show in `/proc/<pid>/stat`. Both take effect within
/// microseconds; the bound only matters on a machine so loaded that the wait would otherwise hang.
const STATE_CHANGE_TIMEOUT: Duration = Duration::from_secs(2);

/// How often `/proc/<pid>/stat` is polled during that wait: short next to any fault interval.
const STATE_POLL: Duration = Duration::from_millis(1);

/// How to start one node. Restarts reuse it as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// The node's id (1, 2, ...); it listens on [`crate::node_ip`]`(id)`.
    pub id: NodeId,
    /// The program, e.g. the path of `riptide-node`.
    pub program: PathBuf,
    /// Its arguments (including the data dir, which must stay the same across restarts).
    pub args: Vec<OsString>,
    /// Extra environment variables, on top of the runner's.
    pub env: Vec<(OsString, OsString)>,
    /// The file that stdout and stderr are appended to (parents are created).
    pub log: PathBuf,
    /// The working directory; the runner's if `None`.
    pub cwd: Option<PathBuf>,
}

impl NodeSpec {
    /// A spec with no arguments, logging to `log`.
    pub fn new(id: NodeId, program: impl Into<PathBuf>, log: impl Into<PathBuf>) -> NodeSpec {
        NodeSpec {
            id,
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            log: log.into(),
            cwd: None,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> NodeSpec {
        self.args.push(arg.into());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> NodeSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> NodeSpec {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> NodeSpec {
        self.cwd = Some(dir.into());
        self
    }

    /// The command line, for logs and errors.
    pub fn command_line(&self) -> String {
        let mut line = self.program.display().to_string();
        for arg in &self.args {
            line.push(' ');
            line.push_str(&arg.to_string_lossy());
        }
        line
    }
}

/// What a node process is doing, as far as the supervisor knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum NodeState {
    /// Started and not stopped.
    Running,
    /// Stopped with SIGSTOP by the nemesis.
    Paused,
    /// Killed with SIGKILL by the nemesis; waits for [`Supervisor::restart`].
    Killed,
    /// Exited on its own (a crash, or a clean exit): nobody asked it to.
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
    },
    /// Stopped by [`Supervisor::shutdown`] at the end of the run.
    Stopped,
    /// Removed from the cluster by the membership nemesis and killed for good
    /// ([`Supervisor::retire`]): never restarted, its data wiped.
    Removed,
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeState::Running => f.write_str("running"),
            NodeState::Paused => f.write_str("paused"),
            NodeState::Killed => f.write_str("killed"),
            NodeState::Exited {
                code: Some(code), ..
            } => write!(f, "exited with code {code}"),
            NodeState::Exited {
                signal: Some(signal),
                ..
            } => write!(f, "exited on signal {signal}"),
            NodeState::Exited { .. } => f.write_str("exited"),
            NodeState::Stopped => f.write_str("stopped"),
            NodeState::Removed => f.write_str("removed"),
        }
    }
}

/// How a node answered [`Supervisor::terminate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// It exited within the grace period: with `code`, or killed by `signal` (SIGTERM's default
    /// action shows as signal 15).
    Exited {
        code: Option<i32>,
        signal: Option<i32>,
        after: Duration,
    },
    /// It was still running after `grace` and was SIGKILLed.
    Ignored { grace: Duration },
}

/// One node's pid and state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeStatus {
    pub id: NodeId,
    /// The live process's pid; `None` once it is killed, exited or stopped.
    pub pid: Option<Pid>,
    pub state: NodeState,
    /// How many times the node was started (1 + restarts).
    pub starts: u32,
}

/// The node processes of one run. Share it as `Arc<Supervisor>` between the runner and the
/// nemesis; every method takes `&self`.
#[derive(Debug)]
pub struct Supervisor {
    nodes: Mutex<BTreeMap<NodeId, Slot>>,
    spawner: Spawner,
}

#[derive(Debug)]
struct Slot {
    spec: NodeSpec,
    /// The unreaped child while it runs or is paused.
    child: Option<Child>,
    state: NodeState,
    starts: u32,
}

impl Slot {
    /// Notices an exit nobody asked for.
    fn refresh(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if let Ok(Some(status)) = child.try_wait() {
            tracing::warn!(node = self.spec.id, %status, "node exited on its own");
            self.child = None;
            self.state = exited(status);
        }
    }

    fn status(&self) -> NodeStatus {
        NodeStatus {
            id: self.spec.id,
            pid: self.child.as_ref().map(Child::id),
            state: self.state,
            starts: self.starts,
        }
    }

    fn bad_state(&self, action: &'static str) -> Error {
        Error::BadState {
            id: self.spec.id,
            state: self.state.to_string(),
            action,
        }
    }
}

impl Supervisor {
    /// A supervisor with no nodes yet, and its spawning thread (see the module docs).
    pub fn new() -> Result<Supervisor> {
        Ok(Supervisor {
            nodes: Mutex::new(BTreeMap::new()),
            spawner: Spawner::start()?,
        })
    }

    /// Starts a new node. Fails if `spec.id` is already supervised or the program cannot start.
    pub fn spawn(&self, spec: NodeSpec) -> Result<Pid> {
        let mut nodes = self.lock();
        if nodes.contains_key(&spec.id) {
            return Err(Error::DuplicateNode(spec.id));
        }
        let child = self.spawner.spawn(&spec)?;
        let pid = child.id();
        tracing::info!(node = spec.id, pid, "node started: {}", spec.command_line());
        nodes.insert(
            spec.id,
            Slot {
                spec,
                child: Some(child),
                state: NodeState::Running,
                starts: 1,
            },
        );
        Ok(pid)
    }

    /// SIGKILLs a running or paused node and reaps it; returns the pid that died.
    pub fn kill(&self, id: NodeId) -> Result<Pid> {
        let mut nodes = self.lock();
        let slot = slot(&mut nodes, id)?;
        slot.refresh();
        if !matches!(slot.state, NodeState::Running | NodeState::Paused) {
            return Err(slot.bad_state("kill"));
        }
        let mut child = slot.child.take().expect("running nodes have a child");
        let pid = child.id();
        let result = kill_and_reap(&mut child);
        slot.state = NodeState::Killed;
        result?;
        tracing::info!(node = id, pid, "node killed");
        Ok(pid)
    }

    /// Ends a node for good: SIGKILL (after SIGCONT, if paused) and reap it if it runs, and mark
    /// it [`NodeState::Removed`], which nothing restarts. Returns the pid that died, if one ran.
    /// Idempotent.
    pub fn retire(&self, id: NodeId) -> Result<Option<Pid>> {
        let mut nodes = self.lock();
        let slot = slot(&mut nodes, id)?;
        slot.refresh();
        let pid = match slot.child.take() {
            Some(mut child) => {
                let pid = child.id();
                if slot.state == NodeState::Paused {
                    let _ = signal(pid, libc::SIGCONT);
                }
                kill_and_reap(&mut child)?;
                Some(pid)
            }
            None => None,
        };
        slot.state = NodeState::Removed;
        tracing::info!(node = id, ?pid, "node retired");
        Ok(pid)
    }

    /// Starts a killed (or exited) node again from its spec: same command line, data dir, address.
    pub fn restart(&self, id: NodeId) -> Result<Pid> {
        let mut nodes = self.lock();
        let slot = slot(&mut nodes, id)?;
        slot.refresh();
        if !matches!(slot.state, NodeState::Killed | NodeState::Exited { .. }) {
            return Err(slot.bad_state("restart"));
        }
        let child = self.spawner.spawn(&slot.spec)?;
        let pid = child.id();
        slot.child = Some(child);
        slot.state = NodeState::Running;
        slot.starts += 1;
        tracing::info!(node = id, pid, starts = slot.starts, "node restarted");
        Ok(pid)
    }

    /// Sends SIGTERM to a running node and waits up to `grace` for it to exit (polling, the lock
    /// held, so no other fault can interleave). A node that is still running after `grace` is
    /// SIGKILLed and reaped, and the answer says it ignored the signal. Either way the node ends
    /// up `Killed`, ready for [`Supervisor::restart`]. The bench itself never stops nodes this
    /// way (faults are SIGKILL); `riptide conform` uses it to check the node contract.
    pub fn terminate(&self, id: NodeId, grace: Duration) -> Result<Termination> {
        let mut nodes = self.lock();
        let slot = slot(&mut nodes, id)?;
        slot.refresh();
        if slot.state != NodeState::Running {
            return Err(slot.bad_state("terminate"));
        }
        let mut child = slot.child.take().expect("running nodes have a child");
        slot.state = NodeState::Killed;
        let pid = child.id();
        let started = Instant::now();
        if let Err(e) = signal(pid, libc::SIGTERM) {
            kill_and_reap(&mut child)?;
            return Err(e);
        }
        while started.elapsed() < grace {
            match child.try_wait() {
                Ok(Some(status)) => {
                    tracing::info!(node = id, pid, %status, "node exited on SIGTERM");
                    return Ok(Termination::Exited {
                        code: status.code(),
                        signal: status.signal(),
                        after: started.elapsed(),
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    kill_and_reap(&mut child)?;
                    return Err(Error::io(format!("waiting for pid {pid}"), e));
                }
            }
        }
        kill_and_reap(&mut child)?;
        tracing::warn!(node = id, pid, "node ignored SIGTERM for {grace:?}; killed");
        Ok(Termination::Ignored { grace })
    }

    /// SIGSTOPs a running node and waits until the kernel shows it stopped; returns its pid.
    pub fn pause(&self, id: NodeId) -> Result<Pid> {
        self.stop_or_continue(id, true)
    }

    /// SIGCONTs a paused node and waits until it runs again; returns its pid.
    pub fn resume(&self, id: NodeId) -> Result<Pid> {
        self.stop_or_continue(id, false)
    }

    /// The node's current pid, if it is alive (running or paused).
    pub fn pid(&self, id: NodeId) -> Option<Pid> {
        self.status(id).ok().and_then(|s| s.pid)
    }

    /// The node's pid and state (noticing an exit nobody asked for).
    pub fn status(&self, id: NodeId) -> Result<NodeStatus> {
        let mut nodes = self.lock();
        let slot = slot(&mut nodes, id)?;
        slot.refresh();
        Ok(slot.status())
    }

    /// Every node's pid and state, by id.
    pub fn statuses(&self) -> Vec<NodeStatus> {
        let mut nodes = self.lock();
        nodes
            .values_mut()
            .map(|slot| {
                slot.refresh();
                slot.status()
            })
            .collect()
    }

    /// The supervised node ids, sorted.
    pub fn ids(&self) -> Vec<NodeId> {
        self.lock().keys().copied().collect()
    }

    /// The spec a node was started from.
    pub fn spec(&self, id: NodeId) -> Result<NodeSpec> {
        let mut nodes = self.lock();
        Ok(slot(&mut nodes, id)?.spec.clone())
    }

    /// Stops every node: SIGCONT if paused, SIGKILL, reap. Idempotent; [`Drop`] calls it.
    pub fn shutdown(&self) {
        let mut nodes = self.lock();
        for slot in nodes.values_mut() {
            slot.refresh();
            let Some(mut child) = slot.child.take() else {
                continue;
            };
            if slot.state == NodeState::Paused {
                // Not needed for SIGKILL to work; a stopped process that outlived us by accident
                // would be the worst kind of leftover, so never leave one stopped.
                let _ = signal(child.id(), libc::SIGCONT);
            }
            if let Err(e) = kill_and_reap(&mut child) {
                tracing::warn!(node = slot.spec.id, "stopping node: {e}");
            }
            slot.state = NodeState::Stopped;
        }
    }

    fn stop_or_continue(&self, id: NodeId, stop: bool) -> Result<Pid> {
        let (from, to, sig, action) = if stop {
            (
                NodeState::Running,
                NodeState::Paused,
                libc::SIGSTOP,
                "pause",
            )
        } else {
            (
                NodeState::Paused,
                NodeState::Running,
                libc::SIGCONT,
                "resume",
            )
        };
        let mut nodes = self.lock();
        let slot = slot(&mut nodes, id)?;
        slot.refresh();
        if slot.state != from {
            return Err(slot.bad_state(action));
        }
        let pid = slot.child.as_ref().expect("live nodes have a child").id();
        signal(pid, sig)?;
        wait_stopped(pid, stop)?;
        slot.state = to;
        tracing::info!(node = id, pid, "node {action}d");
        Ok(pid)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<NodeId, Slot>> {
        // A panic while holding the lock leaves the map consistent (each change is one
        // assignment), and Drop must still be able to kill the nodes.
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.shutdown();
        self.spawner.stop();
    }
}

/// The last non-empty line of a node's log (what a node that exited said last), at most 400
/// characters of it.
pub fn last_line(log: &Path) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let tail = &text[text.len().saturating_sub(64 * 1024)..];
    let tail = String::from_utf8_lossy(tail);
    let line = tail.lines().rev().find(|l| !l.trim().is_empty())?;
    Some(line.trim().chars().take(400).collect())
}

fn slot(nodes: &mut BTreeMap<NodeId, Slot>, id: NodeId) -> Result<&mut Slot> {
    nodes.get_mut(&id).ok_or(Error::UnknownNode(id))
}

fn exited(status: ExitStatus) -> NodeState {
    NodeState::Exited {
        code: status.code(),
        signal: status.signal(),
    }
}

/// Sends `sig` to exactly `pid`.
fn signal(pid: Pid, sig: libc::c_int) -> Result<()> {
    let raw = libc::pid_t::try_from(pid).expect("pids fit in pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is an unreaped child of ours.
    if unsafe { libc::kill(raw, sig) } == 0 {
        Ok(())
    } else {
        Err(Error::io(
            format!("sending signal {sig} to pid {pid}"),
            std::io::Error::last_os_error(),
        ))
    }
}

fn kill_and_reap(child: &mut Child) -> Result<()> {
    let pid = child.id();
    // ESRCH cannot happen while unreaped (a zombie still takes signals), but the wait must run
    // whatever happened, so the error is reported after it.
    let sent = signal(pid, libc::SIGKILL);
    child
        .wait()
        .map_err(|e| Error::io(format!("reaping pid {pid}"), e))?;
    sent
}

/// Waits until `/proc/<pid>/stat` shows the process stopped (`T`) or not stopped.
fn wait_stopped(pid: Pid, stopped: bool) -> Result<()> {
    let deadline = Instant::now() + STATE_CHANGE_TIMEOUT;
    loop {
        let state = proc_state(pid);
        match state {
            Some('T' | 't') if stopped => return Ok(()),
            Some(s) if !stopped && s != 'T' && s != 't' => return Ok(()),
            // Gone or a zombie: it died meanwhile; the next refresh will notice.
            None | Some('Z' | 'X') => return Ok(()),
            _ => {}
        }
        if Instant::now() > deadline {
            return Err(Error::io(
                format!(
                    "waiting for pid {pid} to {}",
                    if stopped { "stop" } else { "continue" }
                ),
                std::io::Error::from(std::io::ErrorKind::TimedOut),
            ));
        }
        std::thread::sleep(STATE_POLL);
    }
}

/// The one-letter state in `/proc/<pid>/stat` (after the command name, which may hold spaces).
fn proc_state(pid: Pid) -> Option<char> {
    parse_state(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_state_reads_past_a_command_name_with_spaces_and_parens() {
        assert_eq!(parse_state("42 (a) b) T 1 42"), Some('T'));
        assert_eq!(parse_state("7 (node) S 1 7 7"), Some('S'));
        assert!(proc_state(std::process::id()).is_some());
        assert_eq!(proc_state(u32::MAX), None);
    }

    #[test]
    fn a_missing_program_is_a_clear_error_naming_it() {
        let sup = Supervisor::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("riptide-node");
        let err = sup
            .spawn(NodeSpec::new(1, &missing, dir.path().join("n1.log")))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "cannot start {}: no such program; build it first (e.g. `cargo build \
                 --release`) or pass the right path",
                missing.display()
            )
        );
        assert!(sup.ids().is_empty());
    }

    #[test]
    fn a_non_executable_program_is_a_clear_error() {
        let sup = Supervisor::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("not-a-program");
        std::fs::write(&program, "just text").unwrap();
        let err = sup
            .spawn(NodeSpec::new(1, &program, dir.path().join("n1.log")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not executable"), "{err}");
    }

    #[test]
    fn faults_on_unknown_nodes_and_in_the_wrong_state_are_refused() {
        let sup = Supervisor::new().unwrap();
        assert_eq!(
            sup.kill(9).unwrap_err().to_string(),
            "no node 9 is supervised"
        );
        let dir = tempfile::tempdir().unwrap();
        sup.spawn(NodeSpec::new(1, "sleep", dir.path().join("n1.log")).arg("30"))
            .unwrap();
        assert_eq!(
            sup.resume(1).unwrap_err().to_string(),
            "cannot resume node 1: it is running"
        );
        assert_eq!(
            sup.restart(1).unwrap_err().to_string(),
            "cannot restart node 1: it is running"
        );
        sup.kill(1).unwrap();
        assert_eq!(
            sup.pause(1).unwrap_err().to_string(),
            "cannot pause node 1: it is killed"
        );
    }
}
