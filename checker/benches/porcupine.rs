//! `cargo bench -p riptide-checker`: times Porcupine's histories (from `shared/` beside the
//! checkout), each file parsed and checked one at a time, median of 5 rounds.
//!
//! Set `RIPTIDE_BENCH_DIR` to time another directory of histories.

use std::path::PathBuf;

fn main() {
    // `cargo bench` passes `--bench`; a filter argument would name files, which we do not need.
    let dir = std::env::var_os("RIPTIDE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/histories/porcupine")
        });
    if !dir.is_dir() {
        eprintln!(
            "no histories at {}: put shared/ beside the checkout or set RIPTIDE_BENCH_DIR",
            dir.display()
        );
        std::process::exit(1);
    }
    let dir = dir.canonicalize().unwrap_or(dir);
    let opts = riptide_checker::CheckOptions::default();
    match riptide_checker::bench::bench_dir(&dir, 5, &opts) {
        Ok(report) => {
            print!("{}", report.render(10));
            if !report.mismatches().is_empty() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
