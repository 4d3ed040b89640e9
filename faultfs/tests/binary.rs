//! The `riptide-faultfs` binary: its control socket, SIGTERM, and its errors on bad input.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{mounted, require_fuse};
use serde_json::Value;

struct Bin {
    _dir: tempfile::TempDir,
    mnt: PathBuf,
    socket: PathBuf,
    child: Child,
}

fn start() -> Bin {
    require_fuse();
    let dir = tempfile::tempdir().unwrap();
    let (backing, mnt, socket) = (
        dir.path().join("b"),
        dir.path().join("m"),
        dir.path().join("ctl"),
    );
    fs::create_dir(&backing).unwrap();
    fs::create_dir(&mnt).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_riptide-faultfs"))
        .args(["mount", "--backing"])
        .arg(&backing)
        .arg("--mountpoint")
        .arg(&mnt)
        .arg("--control")
        .arg(&socket)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !socket.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no control socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Bin {
        _dir: dir,
        mnt,
        socket,
        child,
    }
}

fn ask(stream: &mut UnixStream, command: &str) -> Value {
    writeln!(stream, "{command}").unwrap();
    let mut line = String::new();
    BufReader::new(stream.try_clone().unwrap())
        .read_line(&mut line)
        .unwrap();
    serde_json::from_str(&line).unwrap()
}

fn wait_gone(bin: &mut Bin) {
    let status = bin.child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!mounted(&bin.mnt), "left mounted");
    assert!(!bin.socket.exists(), "left its socket");
}

#[test]
fn the_control_socket_cuts_reports_and_unmounts() {
    let mut bin = start();
    fs::write(bin.mnt.join("f"), b"unsynced").unwrap();
    let mut s = UnixStream::connect(&bin.socket).unwrap();
    let status = ask(&mut s, "status");
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(status["status"]["unsynced_files"], 1, "{status}");
    let bad = ask(&mut s, "power-cut sideways");
    assert_eq!(bad["ok"], false, "{bad}");
    let cut = ask(&mut s, "power-cut torn 7");
    assert_eq!(cut["ok"], true, "{cut}");
    assert_eq!(cut["report"]["mode"]["mode"], "torn", "{cut}");
    assert_eq!(cut["report"]["entries_undone"][0], "create f", "{cut}");
    assert!(!bin.mnt.join("f").exists());
    assert_eq!(ask(&mut s, "unmount")["ok"], true);
    wait_gone(&mut bin);
}

#[test]
fn sigterm_unmounts() {
    let mut bin = start();
    assert!(mounted(&bin.mnt));
    // SAFETY: signalling our own child by its pid.
    unsafe { libc::kill(bin.child.id() as i32, libc::SIGTERM) };
    wait_gone(&mut bin);
}

fn mount_error(backing: &Path, mnt: &Path) -> String {
    let err = riptide_faultfs::FaultFs::mount(backing, mnt)
        .err()
        .expect("must fail");
    format!("{err:#}")
}

#[test]
fn bad_directories_are_refused_with_advice() {
    require_fuse();
    let dir = tempfile::tempdir().unwrap();
    let (backing, mnt) = (dir.path().join("b"), dir.path().join("m"));
    let e = mount_error(&backing, &mnt);
    assert!(
        e.contains("does not exist") && e.contains("create it"),
        "{e}"
    );
    fs::create_dir(&backing).unwrap();
    let e = mount_error(&backing, &mnt);
    assert!(
        e.contains("mountpoint") && e.contains("does not exist"),
        "{e}"
    );
    fs::create_dir(&mnt).unwrap();
    fs::write(mnt.join("x"), b"").unwrap();
    let e = mount_error(&backing, &mnt);
    assert!(e.contains("not empty"), "{e}");
    assert!(!mounted(&mnt));
}

#[test]
fn not_root_is_refused_with_advice() {
    require_fuse();
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let (backing, mnt) = (dir.path().join("b"), dir.path().join("m"));
    for d in [&backing, &mnt] {
        fs::create_dir(d).unwrap();
        fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    }
    // As nobody (setpriv is in util-linux).
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_riptide-faultfs"))
        .args(["mount", "--backing"])
        .arg(&backing)
        .arg("--mountpoint")
        .arg(&mnt)
        .arg("--control")
        .arg(dir.path().join("ctl"))
        .output()
        .expect("setpriv (util-linux) is needed for this test");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "mounted as nobody? {stderr}");
    assert!(stderr.contains("root"), "{stderr}");
    assert!(!mounted(&mnt));
}
