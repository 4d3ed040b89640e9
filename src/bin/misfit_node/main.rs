//! `riptide-misfit-node`: riptide's own node with chosen breaches of the node contract, so that
//! the tests can show `riptide conform` catching each one and naming the rule. TEST ONLY; not
//! part of riptide's interface.
//!
//! It takes `riptide-node`'s flags and runs the very same node in-process, behind a small
//! proxy ([`proxy`]) on the `--listen` address; the node itself listens one port up. With no
//! misfit chosen it keeps the contract (the proxy passes every byte through), which the tests
//! check too. The misfits, chosen with `RIPTIDE_MISFIT=a,b` or `--misfit a --misfit b`:
//!
//! | misfit | what it breaks | the rule conform should name |
//! |---|---|---|
//! | `silent-status` | swallows every `Status` request, never answering | `status` |
//! | `dies-on-bad-frame` | exits (code 3) on the first client frame that is not a request | `bad-frames` |
//! | `ignores-sigterm` | ignores SIGTERM | `sigterm` |
//! | `forgets-data` | empties its `--data-dir` every time it starts | `restart` |
//! | `rejects-bench-flags` | refuses `--snapshot-entries` like a node that never heard of it | `flags` |
//! | `wrong-leader-hint` | a follower's `NotLeader` hint names the leader at the wrong port | `followers` |
//! | `status-wrong-id` | its status says it is node id + 100 | `status` |
//!
//! Why a binary of the `riptide` package: cargo builds it for `cargo test` (the tests find it
//! as `CARGO_BIN_EXE_riptide-misfit-node`) with nothing to enable, and it links the real node
//! so each misfit breaks one rule and keeps all the others. `test = false, doc = false` in
//! Cargo.toml keep it out of test and doc runs (like `riptide-nemesis-testbin`).

mod proxy;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;

/// One way to break the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misfit {
    SilentStatus,
    DiesOnBadFrame,
    IgnoresSigterm,
    ForgetsData,
    RejectsBenchFlags,
    WrongLeaderHint,
    StatusWrongId,
}

impl Misfit {
    fn parse(name: &str) -> Result<Misfit, String> {
        Ok(match name {
            "silent-status" => Misfit::SilentStatus,
            "dies-on-bad-frame" => Misfit::DiesOnBadFrame,
            "ignores-sigterm" => Misfit::IgnoresSigterm,
            "forgets-data" => Misfit::ForgetsData,
            "rejects-bench-flags" => Misfit::RejectsBenchFlags,
            "wrong-leader-hint" => Misfit::WrongLeaderHint,
            "status-wrong-id" => Misfit::StatusWrongId,
            other => {
                return Err(format!(
                    "unknown misfit `{other}`; one of silent-status, dies-on-bad-frame, \
                     ignores-sigterm, forgets-data, rejects-bench-flags, wrong-leader-hint, \
                     status-wrong-id"
                ))
            }
        })
    }
}

/// The misfits from the environment and the command line, and the node's own arguments.
fn split_args(args: Vec<String>) -> Result<(Vec<Misfit>, Vec<String>), String> {
    let mut misfits = Vec::new();
    if let Ok(list) = std::env::var("RIPTIDE_MISFIT") {
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            misfits.push(Misfit::parse(name)?);
        }
    }
    let mut rest = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--misfit" {
            let name = args.next().ok_or("--misfit needs a name")?;
            misfits.push(Misfit::parse(&name)?);
        } else if let Some(name) = arg.strip_prefix("--misfit=") {
            misfits.push(Misfit::parse(name)?);
        } else {
            rest.push(arg);
        }
    }
    Ok((misfits, rest))
}

fn main() -> ExitCode {
    let (misfits, args) = match split_args(std::env::args().collect()) {
        Ok(split) => split,
        Err(e) => {
            eprintln!("riptide-misfit-node: {e}");
            return ExitCode::from(2);
        }
    };
    if misfits.contains(&Misfit::RejectsBenchFlags)
        && args.iter().any(|a| a == "--snapshot-entries")
    {
        eprintln!(
            "error: unexpected argument '--snapshot-entries' found (misfit rejects-bench-flags)"
        );
        return ExitCode::from(2);
    }
    let mut node = riptide_node::cli::Args::parse_from(args);
    if misfits.contains(&Misfit::IgnoresSigterm) {
        // SAFETY: setting a signal's disposition to SIG_IGN before any thread exists.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    if misfits.contains(&Misfit::ForgetsData) {
        let _ = std::fs::remove_dir_all(&node.data_dir);
    }
    eprintln!("riptide-misfit-node: misfits {misfits:?}");
    let front = node.listen;
    node.listen = SocketAddr::new(front.ip(), front.port().wrapping_add(1));
    if let Err(e) = proxy::start(front, node.listen, misfits) {
        eprintln!("riptide-misfit-node: cannot listen on {front}: {e}");
        return ExitCode::from(1);
    }
    riptide_node::cli::run(node)
}
