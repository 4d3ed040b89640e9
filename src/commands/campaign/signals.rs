//! Ctrl-C for a campaign: remembered, and passed on to the running children.
//!
//! The children run in their own process group, so a terminal's Ctrl-C reaches only the
//! campaign. Its handler (async-signal-safe: atomics and `kill(2)` only) sets a flag, so no new
//! run starts, and sends each running child one SIGINT, which `riptide test` takes as "end the
//! workload now, then heal, check and store"; a second Ctrl-C sends a second, which skips the
//! child's final reads.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// At most this many runs at once (`--parallel`).
pub const MAX_CHILDREN: usize = 16;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static CHILDREN: [AtomicI32; MAX_CHILDREN] = [const { AtomicI32::new(0) }; MAX_CHILDREN];

extern "C" fn on_sigint(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    for child in &CHILDREN {
        let pid = child.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill(2) is async-signal-safe. The pid is a child this process started;
            // between the wait that reaps it and `untrack` (microseconds) it could in theory
            // be reused, the one window where this signal could miss its target.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
    }
}

/// Installs the handler (SIGINT and SIGTERM). Handlers do not survive `exec`, so children
/// start with the default dispositions.
pub fn install() {
    let handler = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only touches atomics and calls kill(2).
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Whether Ctrl-C came.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The child running in `slot`, to be passed Ctrl-C.
pub fn track(slot: usize, pid: u32) {
    CHILDREN[slot].store(pid as i32, Ordering::SeqCst);
    // A Ctrl-C between the spawn and here: pass it on now.
    if interrupted() {
        // SAFETY: as in the handler.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
    }
}

pub fn untrack(slot: usize) {
    CHILDREN[slot].store(0, Ordering::SeqCst);
}
