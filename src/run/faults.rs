//! Which faults a run can have on this machine, settled before anything starts.
//!
//! Partition and loss need iptables inside the run's private network namespace; kill and pause
//! need neither. What happens when the machine lacks one depends on who chose the faults:
//!
//! - `--nemesis SPEC` given: a fault the machine cannot do is a bad argument (exit 254) whose
//!   message says what to install.
//! - no `--nemesis`: the run asks for `all` ([`super::options::DEFAULT_NEMESIS`]). If the
//!   sandbox cannot be entered or iptables does not work in it, the run goes on with the same
//!   spec without its network faults ([`riptide_nemesis::NemesisSpec::without_network`]) and prints one note with the reason and its
//!   fix ([`fall_back`]). `test.json` records the faults the run really had.
//!
//! `power-cut` needs riptide-faultfs: `/dev/fuse`, root (or `fusermount3`) and the run's
//! private mount namespace ([`check_disks`]). Where they are missing, a spec that got power
//! cuts from `all` (given or by default) runs without them, with one note saying why and the
//! fix; a `power-cut` asked for by name is a bad argument.
//!
//! The detection is the real thing, not a guess: [`sandbox::enter`] and [`Firewall::install`]
//! themselves (`RIPTIDE_IPTABLES=/nonexistent` shows what a machine without iptables gets).

use riptide_nemesis::{sandbox, Firewall, Sandbox};

use super::options::RunPlan;
use crate::exit::Exit;

/// The private network namespace; without one (no root, no user namespaces) only a run with no
/// network faults may go on, on the host's loopback.
pub fn enter_sandbox(plan: &mut RunPlan) -> Result<Option<Sandbox>, Exit> {
    match sandbox::enter() {
        Ok(sandbox) => Ok(Some(sandbox)),
        Err(err) if plan.nemesis.needs_network() && !fall_back(plan, &err) => {
            Err(Exit::bad_args(format!(
                "--nemesis {} needs a network sandbox: {err}",
                plan.test.nemesis
            )))
        }
        Err(err) => {
            eprintln!("riptide: warning: {err}; running on the host's loopback without isolation");
            Ok(None)
        }
    }
}

/// Everything the faults need, checked before anything starts: a missing iptables, or a fault
/// that cannot be built on this many nodes, is a bad argument, not a crashed run.
pub fn check_faults(
    plan: &mut RunPlan,
    sandbox: Option<&Sandbox>,
) -> Result<Option<Firewall>, Exit> {
    let firewall = match (sandbox, plan.nemesis.needs_network()) {
        (Some(sandbox), true) => match Firewall::install(sandbox) {
            Ok(firewall) => Some(firewall),
            Err(err) if fall_back(plan, &err) => None,
            Err(err) => return Err(bad_nemesis(plan, err)),
        },
        _ => None,
    };
    let ids: Vec<u64> = (1..=plan.test.nodes as u64).collect();
    riptide_nemesis::Schedule::new(plan.test.seed, &plan.nemesis, &ids)
        .map_err(|e| bad_nemesis(plan, e))?;
    Ok(firewall)
}

/// Power cuts need FUSE and the run's mount namespace. Without them, an `all` loses its power
/// cuts (one note says why and how to get them); a `power-cut` named in `--nemesis` is refused.
pub fn check_disks(plan: &mut RunPlan, sandbox: Option<&Sandbox>) -> Result<(), Exit> {
    if !plan.nemesis.needs_fuse() {
        return Ok(());
    }
    let why = crate::cluster::disks::why_no_faultfs(sandbox);
    let Some(why) = why else {
        return Ok(());
    };
    if plan.power_cut_named {
        return Err(Exit::bad_args(format!(
            "--nemesis {}: power-cut needs riptide-faultfs, but {why}; or drop power-cut",
            plan.test.nemesis
        )));
    }
    let narrowed = plan.nemesis.without_power_cut();
    eprintln!("riptide: note: running --nemesis {narrowed}: power-cut is off because {why}");
    plan.test.nemesis = narrowed.to_string();
    plan.nemesis = narrowed;
    Ok(())
}

fn bad_nemesis(plan: &RunPlan, err: riptide_nemesis::Error) -> Exit {
    Exit::bad_args(format!("--nemesis {}: {err}", plan.test.nemesis))
}

/// Without `--nemesis`, narrows the plan to the faults that need no network sandbox and prints
/// the one-line note; returns false (the plan untouched) when `--nemesis` was given.
pub fn fall_back(plan: &mut RunPlan, reason: &riptide_nemesis::Error) -> bool {
    if plan.nemesis_given {
        return false;
    }
    let narrowed = plan.nemesis.without_network();
    eprintln!(
        "riptide: note: {}",
        fallback_note(&narrowed.to_string(), reason)
    );
    plan.test.nemesis = narrowed.to_string();
    plan.nemesis = narrowed;
    true
}

/// The note: which faults run, why the others do not, and how to get them.
fn fallback_note(narrowed: &str, reason: &riptide_nemesis::Error) -> String {
    format!(
        "no --nemesis given, running --nemesis {narrowed}: partition, loss and the membership \
         changes that cut links (stranded, disjoint) are off because {reason}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::options::TestArgs;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        test: TestArgs,
    }

    fn plan(args: &[&str]) -> RunPlan {
        let argv = std::iter::once("riptide").chain(args.iter().copied());
        Cli::parse_from(argv).test.plan(1).unwrap()
    }

    fn no_iptables() -> riptide_nemesis::Error {
        riptide_nemesis::Error::IptablesMissing {
            looked_for: "/nonexistent/iptables".into(),
        }
    }

    #[test]
    fn the_default_is_every_fault_and_narrows_to_kill_pause_with_the_fix() {
        let mut p = plan(&[]);
        assert!(!p.nemesis_given);
        assert_eq!(
            p.test.nemesis,
            "kill,pause,partition,loss,power-cut,corrupt,restart,transfer-leader,membership"
        );
        assert!(fall_back(&mut p, &no_iptables()));
        assert_eq!(
            p.test.nemesis,
            "kill,pause,power-cut,corrupt,restart,transfer-leader,\
             membership:grow,membership:shrink,membership:replace"
        );
        assert!(!p.nemesis.needs_network());
        let note = fallback_note("kill,pause", &no_iptables());
        assert!(note.contains("apt-get install iptables"), "{note}");
    }

    #[test]
    fn without_a_sandbox_all_loses_its_power_cuts_but_a_named_one_is_refused() {
        let mut p = plan(&["--nemesis", "all"]);
        check_disks(&mut p, None).unwrap();
        assert_eq!(
            p.test.nemesis,
            "kill,pause,partition,loss,corrupt,restart,transfer-leader,membership"
        );
        assert!(!p.nemesis.needs_fuse());
        let mut p = plan(&["--nemesis", "kill,power-cut:all"]);
        let err = check_disks(&mut p, None).unwrap_err();
        assert_eq!(err.code, 254);
        assert!(
            err.message.contains("power-cut needs riptide-faultfs"),
            "{}",
            err.message
        );
        let mut p = plan(&["--nemesis", "kill,corrupt"]);
        check_disks(&mut p, None).unwrap();
        assert_eq!(p.test.nemesis, "kill,corrupt", "corrupt needs no FUSE");
    }

    #[test]
    fn a_given_nemesis_is_never_narrowed() {
        let mut p = plan(&["--nemesis", "partition"]);
        assert!(p.nemesis_given);
        assert!(!fall_back(&mut p, &no_iptables()));
        assert_eq!(p.test.nemesis, "partition");
        assert!(plan(&["--nemesis", "none"]).nemesis.is_empty());
    }
}
