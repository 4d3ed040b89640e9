//! The supervisor's spawning thread: every node is forked from this one long-lived thread, so
//! that `PR_SET_PDEATHSIG` (which watches the forking *thread*) fires only when the runner dies
//! (see [`crate::supervisor`]), and each node gets its own process group and log file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::supervisor::NodeSpec;

/// The supervisor's long-lived spawning thread (see the module docs for why it exists).
#[derive(Debug)]
pub(crate) struct Spawner {
    requests: Option<mpsc::Sender<SpawnRequest>>,
    thread: Option<JoinHandle<()>>,
}

struct SpawnRequest {
    spec: NodeSpec,
    reply: mpsc::Sender<Result<Child>>,
}

impl Spawner {
    pub(crate) fn start() -> Result<Spawner> {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        let thread = std::thread::Builder::new()
            .name("riptide-spawner".to_string())
            .spawn(move || {
                for request in rx {
                    let _ = request.reply.send(spawn_now(&request.spec));
                }
            })
            .map_err(|e| Error::io("starting the node spawner thread", e))?;
        Ok(Spawner {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    pub(crate) fn spawn(&self, spec: &NodeSpec) -> Result<Child> {
        let gone = || Error::Spawn {
            path: spec.program.clone(),
            reason: "the supervisor's spawning thread is gone".to_string(),
        };
        let (reply, answer) = mpsc::channel();
        let request = SpawnRequest {
            spec: spec.clone(),
            reply,
        };
        let requests = self.requests.as_ref().ok_or_else(gone)?;
        requests.send(request).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }

    /// Ends the thread; call only once every node is dead (they would get SIGKILL otherwise).
    pub(crate) fn stop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Forks and execs one node; runs on the spawner thread only.
fn spawn_now(spec: &NodeSpec) -> Result<Child> {
    let log = open_log(&spec.log)?;
    let mut header = log
        .try_clone()
        .map_err(|e| Error::io(format!("opening {}", spec.log.display()), e))?;
    let _ = writeln!(
        header,
        "--- riptide-nemesis: starting node {}: {}",
        spec.id,
        spec.command_line()
    );
    let stderr = log
        .try_clone()
        .map_err(|e| Error::io(format!("opening {}", spec.log.display()), e))?;
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr);
    if let Some(dir) = &spec.cwd {
        command.current_dir(dir);
    }
    // SAFETY: getpid has no preconditions.
    let runner = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the child between fork and exec and only makes async-signal-safe
    // system calls (prctl, getppid, setpgid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The runner may have died between fork and prctl, before the signal was armed: then
            // we were re-parented already, and must not run.
            if libc::getppid() != runner {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            if libc::setpgid(0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().map_err(|e| spawn_error(&spec.program, e))
}

fn open_log(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating log dir {}", dir.display()), e))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("opening log file {}", path.display()), e))
}

fn spawn_error(program: &Path, e: std::io::Error) -> Error {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "no such program; build it first (e.g. `cargo build \
                                         --release`) or pass the right path"
            .to_string(),
        std::io::ErrorKind::PermissionDenied => "not executable; make sure the path is a file \
                                                 and `chmod +x` it"
            .to_string(),
        _ => e.to_string(),
    };
    Error::Spawn {
        path: program.to_path_buf(),
        reason,
    }
}
