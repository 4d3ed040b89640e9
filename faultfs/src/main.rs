//! `riptide-faultfs mount --backing DIR --mountpoint DIR --control SOCKET`: mounts a faultfs and
//! serves its control socket (see `riptide_faultfs::control`) until `unmount`, SIGINT or SIGTERM.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use riptide_faultfs::{control, FaultFs};

#[derive(Parser)]
#[command(
    version,
    about = "A FUSE passthrough that can forget what was not fsynced"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mount BACKING at MOUNTPOINT and serve the control socket until told to unmount.
    Mount {
        #[arg(long)]
        backing: PathBuf,
        #[arg(long)]
        mountpoint: PathBuf,
        /// Unix socket for the control commands (must not exist yet).
        #[arg(long)]
        control: PathBuf,
    },
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("riptide-faultfs: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let Command::Mount {
        backing,
        mountpoint,
        control,
    } = Cli::parse().command;
    if control.exists() {
        anyhow::bail!(
            "control socket {} exists already: another faultfs may be using it; remove it if not",
            control.display()
        );
    }
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let handle = FaultFs::mount(&backing, &mountpoint)?;
    println!(
        "mounted {} at {}, control {}",
        backing.display(),
        handle.mountpoint().display(),
        control.display()
    );
    let served = control::serve(&handle, &control, &STOP)
        .with_context(|| format!("control socket {}", control.display()));
    let _ = std::fs::remove_file(&control);
    handle.unmount();
    served
}
