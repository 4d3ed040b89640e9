//! A stand-in node for riptide-nemesis's own tests. Not part of the API.
//!
//! - `echo ADDR DATADIR`: a TCP server on ADDR answering one line per request line: `pid` → its
//!   pid; `put X` → appends X to DATADIR/data, fsyncs, `ok`; `get` → the values put so far, comma
//!   separated (so a restarted server shows its data survived); anything else is echoed.
//! - `parent ADDR DATADIR LOG`: what a runner does: enters a sandbox, starts a supervisor and one
//!   `echo` node, prints `child PID netns INODE`, then sleeps until killed (tests SIGKILL it and
//!   check that the node and the namespace die with it).
//! - `userns-probe`: drops to uid/gid 65534, enters the sandbox the unprivileged way, installs
//!   the firewall and applies one rule; prints `ok MODE` and the chain, or `unavailable: WHY`.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use riptide_nemesis::{sandbox, Firewall, NodeSpec, Rule, RuleKind, Supervisor};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["echo", addr, dir] => echo(addr, Path::new(dir)),
        ["parent", addr, dir, log] => parent(addr, dir, log),
        ["userns-probe"] => userns_probe(),
        _ => {
            eprintln!("usage: echo ADDR DATADIR | parent ADDR DATADIR LOG | userns-probe");
            ExitCode::from(2)
        }
    }
}

fn echo(addr: &str, dir: &Path) -> ExitCode {
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    std::fs::create_dir_all(dir).expect("data dir");
    let data = dir.join("data");
    println!("listening on {addr} as pid {}", std::process::id());
    for stream in listener.incoming().flatten() {
        let data = data.clone();
        std::thread::spawn(move || serve(stream, &data));
    }
    ExitCode::SUCCESS
}

fn serve(stream: TcpStream, data: &PathBuf) {
    let mut writer = stream.try_clone().expect("clone stream");
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        let reply = match line.split_once(' ') {
            _ if line == "pid" => std::process::id().to_string(),
            _ if line == "get" => std::fs::read_to_string(data)
                .unwrap_or_default()
                .lines()
                .collect::<Vec<_>>()
                .join(","),
            Some(("put", value)) => {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(data)
                    .expect("open data");
                writeln!(file, "{value}").expect("write data");
                file.sync_all().expect("fsync data");
                "ok".to_string()
            }
            _ => line,
        };
        if writeln!(writer, "{reply}").is_err() {
            return;
        }
    }
}

fn parent(addr: &str, dir: &str, log: &str) -> ExitCode {
    let sandbox = sandbox::enter().expect("enter sandbox");
    let supervisor = Supervisor::new().expect("supervisor");
    let me = std::env::current_exe().expect("current exe");
    let pid = supervisor
        .spawn(NodeSpec::new(1, me, log).args(["echo", addr, dir]))
        .expect("spawn child");
    println!("child {pid} netns {}", sandbox.netns());
    std::io::stdout().flush().expect("flush");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

fn userns_probe() -> ExitCode {
    const NOBODY: u32 = 65534;
    // SAFETY: plain set*id calls on a single-threaded process.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(NOBODY) != 0
            || libc::setuid(NOBODY) != 0
        {
            println!("unavailable: cannot drop to uid {NOBODY}");
            return ExitCode::from(3);
        }
        // Changing uid made the process non-dumpable, which makes its /proc/self files root's:
        // an ordinary user's process is dumpable, so restore that to probe what it would see.
        libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
    let sandbox = match sandbox::enter() {
        Ok(sandbox) => sandbox,
        Err(e) => {
            println!("unavailable: {e}");
            return ExitCode::from(3);
        }
    };
    let firewall = match Firewall::install(&sandbox) {
        Ok(firewall) => firewall,
        Err(e) => {
            println!("firewall failed: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = firewall.apply(&[Rule::between(1, 2, RuleKind::Drop)]) {
        println!("apply failed: {e}");
        return ExitCode::from(1);
    }
    println!("ok {:?}", sandbox.mode());
    print!("{}", firewall.listing().unwrap_or_default());
    ExitCode::SUCCESS
}
