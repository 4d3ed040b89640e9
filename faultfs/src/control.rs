//! The control socket of the `riptide-faultfs` binary: one command a line, one JSON line back.
//!
//! * `power-cut all` | `power-cut torn SEED` | `power-cut reorder SEED` →
//!   `{"ok":true,"report":{...}}` (a [`PowerCutReport`](crate::PowerCutReport))
//! * `status` → `{"ok":true,"status":{...}}` (a [`Status`](crate::Status))
//! * `unmount` → `{"ok":true}`, then the binary unmounts and exits
//! * anything else, or a failed command → `{"ok":false,"error":"..."}`

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

use crate::mount::MountHandle;

const POLL: Duration = Duration::from_millis(100);

/// Answers one command; `true` in the second place means unmount now.
pub fn answer(handle: &MountHandle, line: &str) -> (Value, bool) {
    let line = line.trim();
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match word {
        "power-cut" => match rest.parse() {
            Ok(mode) => match handle.power_cut(mode) {
                Ok(report) => (json!({"ok": true, "report": report}), false),
                Err(e) => (json!({"ok": false, "error": format!("{e:#}")}), false),
            },
            Err(e) => (json!({"ok": false, "error": e}), false),
        },
        "status" => (json!({"ok": true, "status": handle.status()}), false),
        "unmount" => (json!({"ok": true}), true),
        _ => (
            json!({"ok": false, "error": format!(
                "unknown command {line:?}: power-cut all|torn SEED|reorder SEED, status, unmount"
            )}),
            false,
        ),
    }
}

/// Serves one connection until it closes, `unmount` or `stop`; `Ok(true)` means unmount.
fn serve_one(handle: &MountHandle, stream: UnixStream, stop: &AtomicBool) -> io::Result<bool> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        match reader.read_line(&mut line) {
            Ok(0) => return Ok(false),
            Ok(_) => {
                let (value, unmount) = answer(handle, &line);
                line.clear();
                writeln!(out, "{value}")?;
                if unmount {
                    return Ok(true);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Serves the control socket at `path` until `unmount` or `stop` is set.
pub fn serve(handle: &MountHandle, path: &Path, stop: &AtomicBool) -> io::Result<()> {
    let listener = UnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => match serve_one(handle, stream, stop) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => eprintln!("riptide-faultfs: control connection: {e}"),
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
