//! `riptide prune`: removes old runs and campaigns from the results dir, then rewrites
//! `results/index.html`.
//!
//! What is a unit, which rules keep what, and what is never removed (saved baselines'
//! campaigns, units still `running`, runs a kept campaign names) is decided by
//! [`riptide_store::prune`]; this module is the command line: it checks the options, prints
//! what goes (and, with `--dry-run`, stops there), removes it and says how many bytes that
//! freed.

use std::path::PathBuf;
use std::time::Duration;

use riptide_store::prune::{self, human_bytes, Keep, Plan, Rules, Unit, UnitKind};

use crate::exit::Exit;

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Keep the N newest runs and campaigns (a campaign with its runs counts as one); older
    /// ones are removed.
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Keep runs and campaigns younger than AGE (30m, 12h, 7d, 2w); older ones are removed.
    /// With --keep too, a unit goes only when neither keeps it.
    #[arg(long, value_name = "AGE", value_parser = prune::parse_age)]
    pub older_than: Option<Duration>,
    /// List what would be removed and the bytes it would free; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The results dir to prune.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
}

pub fn prune(args: PruneArgs) -> Result<u8, Exit> {
    match args.keep {
        None if args.older_than.is_none() => {
            return Err(Exit::bad_args(
                "say what to keep: --keep N (the N newest runs and campaigns) or --older-than AGE \
                 (e.g. 7d); add --dry-run to see what would go",
            ))
        }
        Some(0) => {
            return Err(Exit::bad_args(
                "--keep 0 would remove every run and campaign; keep at least 1 (to empty the \
                 store, delete the results dir itself)",
            ))
        }
        _ => {}
    }
    let rules = Rules {
        keep: args.keep,
        older_than: args.older_than,
        now: riptide_store::layout::now_unix(),
    };
    let plan = prune::plan(&args.results_dir, &rules)?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "remove"
    };
    for unit in plan.removed() {
        println!("{verb:<12}  {}", describe(unit));
    }
    for unit in plan.kept() {
        if let Some(keep @ (Keep::Baseline(_) | Keep::Running)) = &unit.keep {
            println!("{:<12}  {}  ({})", "keep", describe(unit), keep.describe());
        }
    }
    let (runs, campaigns) = counts(&plan);
    let kept = plan.kept().count();
    let dir = args.results_dir.display();
    if args.dry_run {
        println!(
            "dry run: {runs} run(s) and {campaigns} campaign(s) would go from {dir}, freeing {}; \
             {kept} kept; nothing was removed",
            human_bytes(plan.bytes_removed())
        );
        return Ok(0);
    }
    let removed = prune::apply(&args.results_dir, &plan);
    if let Err(err) = riptide_report::index::write_index(&args.results_dir) {
        eprintln!("riptide: warning: cannot rewrite {dir}/index.html: {err:#}");
    }
    println!(
        "removed {} run(s) and {} campaign(s) from {dir}, {} freed; {kept} kept; index rewritten",
        removed.runs,
        removed.campaigns,
        human_bytes(removed.bytes)
    );
    if removed.failures.is_empty() {
        Ok(0)
    } else {
        Err(Exit::crashed(format!(
            "could not remove {} folder(s): {}",
            removed.failures.len(),
            removed.failures.join("; ")
        )))
    }
}

/// `campaign  campaigns/c/20261201T100000  (3 runs)  1.2 MiB`.
fn describe(unit: &Unit) -> String {
    let (kind, runs) = match unit.kind {
        UnitKind::Run => ("run", String::new()),
        UnitKind::Campaign => match unit.runs.len() {
            1 => ("campaign", "  (1 run)".to_string()),
            n => ("campaign", format!("  ({n} runs)")),
        },
    };
    format!(
        "{kind:<8}  {}{runs}  {}",
        unit.path,
        human_bytes(unit.bytes)
    )
}

/// Run folders and campaign folders the plan removes (a campaign's runs counted as runs).
fn counts(plan: &Plan) -> (usize, usize) {
    plan.removed()
        .fold((0, 0), |(runs, campaigns), u| match u.kind {
            UnitKind::Run => (runs + 1, campaigns),
            UnitKind::Campaign => (runs + u.runs.len(), campaigns + 1),
        })
}
