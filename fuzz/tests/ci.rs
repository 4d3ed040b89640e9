//! The CI-sized fuzz run: every target for a fixed number of inputs from a fixed seed (the same
//! inputs every time), no panic allowed. And the harness itself: a target that panics is caught,
//! its input saved, and the saved input replays the panic.

use std::time::Duration;

use riptide_fuzz::driver::{fuzz, run_one, Options};
use riptide_fuzz::Target;

fn options(crash_dir: &std::path::Path, execs: u64) -> Options {
    Options {
        duration: Duration::from_secs(120),
        max_execs: Some(execs),
        seed: 7,
        crash_dir: crash_dir.to_path_buf(),
        max_len: 4096,
    }
}

#[test]
fn every_target_survives_its_ci_run_and_reaches_many_outcomes() {
    let crashes = tempfile::tempdir().unwrap();
    for target in riptide_fuzz::targets() {
        let execs = if target.name == "storage" {
            1_500
        } else {
            30_000
        };
        let report = fuzz(&target, &options(crashes.path(), execs));
        println!("{}", report.line());
        assert!(
            report.crashes.is_empty(),
            "{} panicked; inputs in {:?}",
            target.name,
            report.crashes
        );
        assert!(report.execs >= execs, "{}", report.line());
        assert!(
            report.outcomes >= 20,
            "{} reached too little: {}",
            target.name,
            report.line()
        );
    }
}

fn boom(input: &[u8]) -> String {
    if input.windows(4).any(|w| w == b"boom") {
        panic!("found the bomb");
    }
    format!("{} bytes", input.len().min(3))
}

#[test]
fn a_panicking_target_is_caught_saved_and_replayed() {
    let target = Target {
        name: "selftest",
        run: boom,
        seeds: || vec![b"a boom here".to_vec(), b"nothing".to_vec()],
    };
    let crashes = tempfile::tempdir().unwrap();
    let report = fuzz(&target, &options(crashes.path(), 200));
    assert!(!report.crashes.is_empty(), "{}", report.line());
    let saved = std::fs::read(&report.crashes[0]).unwrap();
    let err = run_one(&target, &saved).unwrap_err();
    assert!(err.contains("found the bomb"), "{err}");
    assert!(err.contains("ci.rs"), "the place is named: {err}");
    assert!(run_one(&target, b"harmless").is_ok());
}

#[test]
fn the_same_seed_draws_the_same_inputs() {
    let crashes = tempfile::tempdir().unwrap();
    let target = riptide_fuzz::target("hello").unwrap();
    let a = fuzz(&target, &options(crashes.path(), 5_000));
    let b = fuzz(&target, &options(crashes.path(), 5_000));
    assert_eq!((a.outcomes, a.corpus), (b.outcomes, b.corpus));
    assert!(riptide_fuzz::target("nope")
        .unwrap_err()
        .contains("known: frame, hello"));
}
