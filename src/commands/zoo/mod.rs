//! `riptide zoo`: the bench's report card. Every deliberate bug of the node
//! (`--unsafe-bug`, [`UnsafeBug::ALL`]) is run N times with one schedule, the correct node M
//! times with the same schedule, and the table says, per bug, how often it was caught, how fast
//! (seconds into the run until the first anomaly was known: the live check's first invalid key,
//! or the end of the run for what only the final check, the replica comparison or the liveness
//! verdict sees), and what the anomaly was; and how many false alarms the correct node raised.
//!
//! Both halves are ordinary campaigns (`results/campaigns/zoo-bugs/`, `zoo-clean/`), so every
//! run can be opened, compared and resumed like any other. The table goes to
//! `results/zoo/STAMP/zoo.md` and `zoo.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use riptide_node::server::UnsafeBug;
use riptide_store::campaign::{CampaignFile, CampaignRun, CampaignStatus, RunOutcome};
use serde::{Deserialize, Serialize};

use super::campaign::{self, CampaignArgs};
use crate::exit::Exit;
use plan::ZooPlan;

mod plan;

/// The faults of the zoo's schedule: every family, with extra weight on the leader, where most
/// of the zoo's bugs live (a deposed, isolated, paused or killed leader), and every node losing
/// power at once, which is what the durability bugs need (`no-fsync`, `vote-not-synced`,
/// `no-dir-fsync`: an acknowledged write survives only if a majority really synced it), and
/// membership changes in a lane of their own beside the rolling faults (with
/// `--nemesis-overlap`), whose aimed changes are what `joint-one-majority` and
/// `single-server-change-unsafe` need; and leadership transfers, leader changes without a
/// timeout, whose clients follow the new leader at once; and slowed state machines on followers
/// that then take the lead (`slow-apply`), the lag `read-before-apply` needs; and peer messages
/// held back and duplicated by every node's transport (`reorder`, a class of its own, so it
/// overlaps with the rest), the late AppendEntries `truncate-on-match` needs; and leaders
/// frozen while cut off and woken still cut off (`stall`), whose clocks did not run while a
/// new leader took writes: the stale lease `lease-read-unsafe` serves.
pub const ZOO_NEMESIS: &str = "kill,pause,partition,loss,kill:leader,pause:leader,partition:isolate-leader,power-cut:all,membership,transfer-leader,slow-apply,reorder,stall";

/// What every zoo run gets unless the options after `--` give the same flag: the one default
/// schedule, tuned so that it catches as many of the zoo's bugs as it can (see the README's
/// bug zoo section for what each knob is for). 5 nodes for 60 s; the append workload (a read
/// returns every append, so lost, duplicated and reordered writes all show); rolling faults
/// (a process fault and a network fault at once) every 2 s, dealt from a deck so that each item
/// comes up once before any comes up again, with seeded waits of 0.5 to 3.5 s
/// so that some faults heal before a client's 2.5 s timeout and some outlast it; every second
/// client patient (6 s), so that a late answer (a deposed leader's) still reaches one; 500 ops/s;
/// keys that live for 500 ops; snapshots every 500 entries (so lagging followers receive
/// them); clients that resend writes whose outcome is unknown (without them `no-dedup` is
/// invisible); and the run ends at the first invalid key.
pub const DEFAULT_TEST_ARGS: [(&str, Option<&str>); 15] = [
    ("--nodes", Some("5")),
    ("--time-limit", Some("60")),
    ("--workload", Some("append")),
    ("--nemesis", Some(ZOO_NEMESIS)),
    ("--nemesis-overlap", None),
    ("--nemesis-deck", None),
    ("--nemesis-interval", Some("2")),
    ("--nemesis-jitter", Some("0.75")),
    ("--rate", Some("500")),
    ("--op-timeout-ms", Some("2500")),
    ("--op-timeout-long-ms", Some("6000")),
    ("--ops-per-key", Some("500")),
    ("--snapshot-entries", Some("500")),
    ("--retry-indeterminate", Some("3")),
    ("--stop-on-invalid", None),
];

/// The zoo's defaults that `user` does not override, then `user` (`riptide test` refuses a flag
/// given twice). A default switch (`--nemesis-overlap`, `--stop-on-invalid`) is turned off with
/// its `--no-` form (`--no-stop-on-invalid`), which the zoo consumes.
fn test_args(user: &[String]) -> Vec<String> {
    let given = |flag: &str| {
        user.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    let negation = |flag: &str| format!("--no-{}", &flag[2..]);
    let mut args = Vec::new();
    for (flag, value) in DEFAULT_TEST_ARGS {
        let off = value.is_none() && given(&negation(flag));
        if !given(flag) && !off {
            args.push(flag.to_string());
            args.extend(value.map(str::to_string));
        }
    }
    let negations: Vec<String> = DEFAULT_TEST_ARGS
        .iter()
        .filter(|(_, value)| value.is_none())
        .map(|(flag, _)| negation(flag))
        .collect();
    args.extend(user.iter().filter(|a| !negations.contains(a)).cloned());
    args
}

#[derive(clap::Args, Debug)]
pub struct ZooArgs {
    /// Runs of each bug.
    #[arg(long, default_value_t = 5)]
    pub runs: u32,
    /// Runs of the correct node (default: as many as --runs).
    #[arg(long)]
    pub clean_runs: Option<u32>,
    /// Only these bugs (comma-separated names; default: all of them).
    #[arg(long, value_delimiter = ',')]
    pub bugs: Vec<UnsafeBug>,
    /// Seed of the first run; run k uses SEED + k, for every bug and the correct node alike.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where runs, campaigns and the table are stored.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// Continue a zoo that stopped part way, from its folder (`RESULTS/zoo/STAMP`, printed at
    /// its start): the runs it lacks, with the options it was started with, then its table.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["runs", "clean_runs", "bugs", "seed", "results_dir", "test_args"]
    )]
    pub resume: Option<PathBuf>,
    /// More `riptide test` options after `--`; one the zoo also sets replaces the zoo's
    /// (`-- --nodes 3 --time-limit 30`); `--no-stop-on-invalid` and `--no-nemesis-overlap` turn
    /// the zoo's switches off.
    #[arg(last = true)]
    pub test_args: Vec<String>,
}

/// One bug's row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BugRow {
    pub bug: String,
    pub runs: u32,
    pub caught: u32,
    /// Seconds into the run until the first anomaly was known, over the runs that caught it.
    pub median_s: Option<f64>,
    pub worst_s: Option<f64>,
    /// Runs per anomaly kind (`not-linearizable`, `replicas-diverged`, `node-violation`,
    /// `unavailable`).
    pub anomalies: BTreeMap<String, u32>,
    /// Runs that were unknown or crashed: neither caught nor a clean pass.
    pub inconclusive: u32,
}

/// `zoo.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZooTable {
    pub started_at: String,
    pub seed: u64,
    pub test_args: Vec<String>,
    pub bugs: Vec<BugRow>,
    pub clean_runs: u32,
    /// Correct-node runs judged invalid.
    pub false_alarms: u32,
    pub clean_anomalies: BTreeMap<String, u32>,
    pub clean_inconclusive: u32,
    /// The two campaigns, relative to the results dir.
    pub bugs_campaign: String,
    pub clean_campaign: String,
    /// False while runs are missing (the zoo was stopped; `riptide zoo --resume` runs them):
    /// the rows count the runs done so far.
    #[serde(default = "complete_by_default")]
    pub complete: bool,
}

/// Tables written before `complete` existed were written by a zoo that had finished.
fn complete_by_default() -> bool {
    true
}

pub fn zoo(args: ZooArgs) -> Result<u8, Exit> {
    let (dir, results, plan) = match &args.resume {
        Some(dir) => {
            let results = plan::results_dir_of(dir)?;
            let plan = ZooPlan::load(dir)?;
            if finished(dir) {
                return Err(Exit::bad_args(format!(
                    "the zoo in {} is complete; nothing to resume (its table: {})",
                    dir.display(),
                    dir.join("zoo.md").display()
                )));
            }
            (dir.clone(), results, plan)
        }
        None => begin(&args)?,
    };
    println!(
        "riptide zoo: {} bugs x {} runs, the correct node x {}; stored in {} (riptide zoo \
         --resume {} continues it if it stops)",
        plan.bugs.len(),
        plan.runs,
        plan.clean_runs,
        dir.display(),
        dir.display()
    );
    let buggy = run_half(&results, &plan.bugs_campaign)?;
    let clean = match &plan.clean_campaign {
        Some(c) if buggy.status != CampaignStatus::Interrupted => Some(run_half(&results, c)?),
        Some(c) => Some(load_half(&results, c)?),
        None => None,
    };
    let complete = [Some(&buggy), clean.as_ref()]
        .into_iter()
        .flatten()
        .all(|f| f.status == CampaignStatus::Complete);
    let table = table(&plan, &buggy, clean.as_ref(), complete);
    store(&dir, &table)?;
    if let Err(err) = riptide_report::index::write_index(&results) {
        eprintln!("riptide zoo: warning: cannot rewrite the index: {err:#}");
    }
    print!("\n{}", markdown(&table));
    println!("zoo       {}", dir.display());
    if !complete {
        println!(
            "the zoo stopped before its last run: riptide zoo --resume {} runs what is left",
            dir.display()
        );
        return Ok(crate::exit::UNKNOWN);
    }
    let all_caught = table.bugs.iter().all(|b| b.caught == b.runs);
    Ok(if all_caught && table.false_alarms == 0 {
        0
    } else {
        1
    })
}

/// Whether the zoo in `dir` has written its complete table.
fn finished(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("zoo.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<ZooTable>(&text).ok())
        .is_some_and(|t| t.complete)
}

/// A new zoo: its folder, its two campaigns (created, not yet run) and its plan, stored.
fn begin(args: &ZooArgs) -> Result<(PathBuf, PathBuf, ZooPlan), Exit> {
    if args.runs == 0 {
        return Err(Exit::bad_args("--runs must be at least 1"));
    }
    let bugs: Vec<UnsafeBug> = if args.bugs.is_empty() {
        UnsafeBug::ALL.to_vec()
    } else {
        args.bugs.clone()
    };
    let names: Vec<String> = bugs.iter().map(|b| b.name().to_string()).collect();
    let clean_runs = args.clean_runs.unwrap_or(args.runs);
    let test_args = test_args(&args.test_args);
    let half = |name: &str, runs: u32, matrix: Vec<String>| CampaignArgs {
        runs,
        seed: Some(args.seed),
        stop_on_invalid: false,
        matrix,
        parallel: 1,
        results_dir: args.results_dir.clone(),
        name: Some(name.to_string()),
        resume: None,
        save_baseline: None,
        junit: None,
        json: false,
        test_args: test_args.clone(),
    };
    let now = riptide_store::layout::now_unix();
    let buggy = campaign::create(&half(
        "zoo-bugs",
        args.runs,
        vec![format!("unsafe-bug={}", names.join(","))],
    ))?;
    let clean = if clean_runs > 0 {
        Some(campaign::create(&half(
            "zoo-clean",
            clean_runs,
            Vec::new(),
        ))?)
    } else {
        None
    };
    let relative = |dir: &Path| {
        dir.strip_prefix(&args.results_dir)
            .unwrap_or(dir)
            .display()
            .to_string()
    };
    let plan = ZooPlan {
        started_at: riptide_store::layout::timestamp(now),
        seed: args.seed,
        runs: args.runs,
        clean_runs,
        bugs: names,
        test_args,
        bugs_campaign: relative(&buggy),
        clean_campaign: clean.as_deref().map(relative),
    };
    let dir = riptide_store::layout::create_run_dir(&args.results_dir, ZOO_DIR, now)
        .map_err(|e| Exit::crashed(format!("cannot create the zoo's folder: {e}")))?;
    plan.store(&dir)?;
    Ok((dir, args.results_dir.clone(), plan))
}

/// Runs what the campaign `relative` (to `results`) lacks, or reads it back if it is done.
fn run_half(results: &Path, relative: &str) -> Result<CampaignFile, Exit> {
    let file = load_half(results, relative)?;
    if file.status == CampaignStatus::Complete {
        println!("riptide zoo: {relative} is complete");
        return Ok(file);
    }
    let resume = CampaignArgs {
        runs: 0,
        seed: None,
        stop_on_invalid: false,
        matrix: Vec::new(),
        parallel: 1,
        results_dir: results.to_path_buf(),
        name: None,
        resume: Some(results.join(relative)),
        save_baseline: None,
        junit: None,
        json: false,
        test_args: Vec::new(),
    };
    Ok(campaign::run(&resume)?.file)
}

fn load_half(results: &Path, relative: &str) -> Result<CampaignFile, Exit> {
    CampaignFile::load(&results.join(relative)).map_err(|e| {
        Exit::bad_args(format!(
            "the zoo's campaign {relative} cannot be read ({e}); was it moved or pruned?"
        ))
    })
}

/// The table of the runs done so far.
fn table(
    plan: &ZooPlan,
    buggy: &CampaignFile,
    clean: Option<&CampaignFile>,
    complete: bool,
) -> ZooTable {
    let clean_rows: &[CampaignRun] = clean.map_or(&[], |c| &c.runs);
    let (false_alarms, clean_anomalies, clean_inconclusive) = tally(clean_rows);
    ZooTable {
        started_at: plan.started_at.clone(),
        seed: plan.seed,
        test_args: plan.test_args.clone(),
        bugs: plan
            .bugs
            .iter()
            .map(|name| bug_row(name, &buggy.runs))
            .collect(),
        clean_runs: clean_rows.len() as u32,
        false_alarms,
        clean_anomalies,
        clean_inconclusive,
        bugs_campaign: plan.bugs_campaign.clone(),
        clean_campaign: plan.clean_campaign.clone().unwrap_or_default(),
        complete,
    }
}

/// The row of `bug` from the bug campaign's runs.
fn bug_row(bug: &str, runs: &[CampaignRun]) -> BugRow {
    let mine: Vec<&CampaignRun> = runs
        .iter()
        .filter(|r| r.cell.get("unsafe-bug").map(String::as_str) == Some(bug))
        .collect();
    let caught: Vec<&CampaignRun> = mine
        .iter()
        .copied()
        .filter(|r| r.verdict == RunOutcome::Invalid)
        .collect();
    let mut seconds: Vec<f64> = caught
        .iter()
        .map(|r| r.caught_at_s.unwrap_or(r.seconds))
        .collect();
    seconds.sort_by(f64::total_cmp);
    let (_, anomalies, inconclusive) = tally(mine.iter().copied());
    BugRow {
        bug: bug.to_string(),
        runs: mine.len() as u32,
        caught: caught.len() as u32,
        median_s: (!seconds.is_empty()).then(|| seconds[(seconds.len() - 1) / 2]),
        worst_s: seconds.last().copied(),
        anomalies,
        inconclusive,
    }
}

/// Invalid runs, their anomaly kinds, and runs that were unknown or crashed.
fn tally<'r>(runs: impl IntoIterator<Item = &'r CampaignRun>) -> (u32, BTreeMap<String, u32>, u32) {
    let mut kinds = BTreeMap::new();
    let mut invalid = 0;
    let mut inconclusive = 0;
    for r in runs {
        match r.verdict {
            RunOutcome::Invalid => invalid += 1,
            RunOutcome::Unknown | RunOutcome::Crashed => inconclusive += 1,
            RunOutcome::Valid => {}
        }
        for a in &r.anomalies {
            *kinds.entry(a.clone()).or_insert(0) += 1;
        }
    }
    (invalid, kinds, inconclusive)
}

/// The table as Markdown, as printed and stored in `zoo.md`.
pub fn markdown(t: &ZooTable) -> String {
    let secs = |s: Option<f64>| s.map_or("—".to_string(), |s| format!("{s:.1}"));
    let kinds = |k: &BTreeMap<String, u32>| {
        if k.is_empty() {
            "—".to_string()
        } else {
            let parts: Vec<String> = k.iter().map(|(k, n)| format!("{k} {n}")).collect();
            parts.join(", ")
        }
    };
    let mut s = format!(
        "riptide zoo {} (seed {}; riptide test {})\n\n",
        t.started_at,
        t.seed,
        t.test_args.join(" ")
    );
    if !t.complete {
        s += "**Incomplete**: the zoo stopped before its last run; the rows count the runs done \
              so far (`riptide zoo --resume` runs the rest).\n\n";
    }
    s += "| bug | caught | median s to first anomaly | worst s | anomalies (runs) | unknown or crashed |\n";
    s += "|---|---|---|---|---|---|\n";
    for b in &t.bugs {
        s += &format!(
            "| `{}` | {}/{} | {} | {} | {} | {} |\n",
            b.bug,
            b.caught,
            b.runs,
            secs(b.median_s),
            secs(b.worst_s),
            kinds(&b.anomalies),
            b.inconclusive
        );
    }
    s += &format!(
        "| correct node | {} false alarms in {} runs | | | {} | {} |\n",
        t.false_alarms,
        t.clean_runs,
        kinds(&t.clean_anomalies),
        t.clean_inconclusive
    );
    s += &format!(
        "\nruns: {} and {}\n",
        t.bugs_campaign,
        if t.clean_campaign.is_empty() {
            "(no clean runs)"
        } else {
            &t.clean_campaign
        }
    );
    s
}

/// Writes `zoo.json` and `zoo.md` into the zoo's folder (`results/zoo/STAMP/`).
fn store(dir: &Path, table: &ZooTable) -> Result<(), Exit> {
    let crashed =
        |e: &dyn std::fmt::Display| Exit::crashed(format!("cannot store the zoo table: {e}"));
    riptide_store::layout::write_json(&dir.join("zoo.json"), table).map_err(|e| crashed(&e))?;
    riptide_store::layout::write_atomic(&dir.join("zoo.md"), markdown(table).as_bytes())
        .map_err(|e| crashed(&e))
}

/// `results/zoo/`: the zoo's tables, one folder per `riptide zoo`.
pub const ZOO_DIR: &str = "zoo";

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        bug: &str,
        verdict: RunOutcome,
        caught_at_s: Option<f64>,
        anomalies: &[&str],
    ) -> CampaignRun {
        CampaignRun {
            cell: BTreeMap::from([("unsafe-bug".to_string(), bug.to_string())]),
            seed: 1,
            verdict,
            anomalies: anomalies.iter().map(|a| a.to_string()).collect(),
            dir: None,
            seconds: 60.0,
            ok_per_s: 0.0,
            p50_ms: 0.0,
            p99_ms: 0.0,
            faults: BTreeMap::new(),
            unsafe_bugs: vec![bug.to_string()],
            cluster_recovered: true,
            caught_at_s,
        }
    }

    #[test]
    fn options_after_the_separator_replace_the_zoos_own() {
        let user: Vec<String> = ["--nodes", "3", "--time-limit=20", "--seed-free"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let args = test_args(&user).join(" ");
        assert_eq!(
            args,
            format!(
                "--workload append --nemesis {ZOO_NEMESIS} --nemesis-overlap --nemesis-deck --nemesis-interval 2 \
                 --nemesis-jitter 0.75 --rate 500 --op-timeout-ms 2500 --op-timeout-long-ms 6000 \
                 --ops-per-key 500 --snapshot-entries 500 --retry-indeterminate 3 --stop-on-invalid --nodes 3 \
                 --time-limit=20 --seed-free"
            )
        );
        assert!(test_args(&[])
            .join(" ")
            .starts_with("--nodes 5 --time-limit 60"));
    }

    #[test]
    fn a_default_switch_is_turned_off_with_its_no_form() {
        let user: Vec<String> = [
            "--no-stop-on-invalid",
            "--no-nemesis-overlap",
            "--rate",
            "9",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let args = test_args(&user);
        for gone in [
            "--stop-on-invalid",
            "--nemesis-overlap",
            "--no-stop-on-invalid",
            "--no-nemesis-overlap",
        ] {
            assert!(!args.iter().any(|a| a == gone), "{gone} in {args:?}");
        }
        assert_eq!(args.iter().filter(|a| *a == "--rate").count(), 1);
        assert!(args.ends_with(&["--rate".to_string(), "9".to_string()]));
        assert!(test_args(&[]).iter().any(|a| a == "--stop-on-invalid"));
    }

    #[test]
    fn a_row_counts_catches_and_times_for_its_bug_only() {
        let runs = [
            run(
                "stale-read",
                RunOutcome::Invalid,
                Some(3.0),
                &["not-linearizable"],
            ),
            run(
                "stale-read",
                RunOutcome::Invalid,
                Some(9.0),
                &["not-linearizable"],
            ),
            run("stale-read", RunOutcome::Valid, None, &[]),
            run("stale-read", RunOutcome::Invalid, None, &["unavailable"]),
            run("vote-any-log", RunOutcome::Crashed, None, &[]),
        ];
        let row = bug_row("stale-read", &runs);
        assert_eq!((row.runs, row.caught, row.inconclusive), (4, 3, 0));
        // The run caught without a live finding counts its whole length.
        assert_eq!(row.median_s, Some(9.0));
        assert_eq!(row.worst_s, Some(60.0));
        assert_eq!(row.anomalies["not-linearizable"], 2);
        assert_eq!(row.anomalies["unavailable"], 1);
        let other = bug_row("vote-any-log", &runs);
        assert_eq!((other.runs, other.caught, other.inconclusive), (1, 0, 1));
        assert_eq!(other.median_s, None);
        let table = ZooTable {
            started_at: "t".into(),
            seed: 1,
            test_args: vec!["--nodes".into(), "5".into()],
            bugs: vec![row, other],
            clean_runs: 2,
            false_alarms: 0,
            clean_anomalies: BTreeMap::new(),
            clean_inconclusive: 0,
            bugs_campaign: "campaigns/zoo-bugs/x".into(),
            clean_campaign: "campaigns/zoo-clean/y".into(),
            complete: true,
        };
        let md = markdown(&table);
        assert!(!md.contains("Incomplete"), "{md}");
        let partial = markdown(&ZooTable {
            complete: false,
            ..table.clone()
        });
        assert!(partial.contains("**Incomplete**"), "{partial}");
        assert!(
            md.contains(
                "| `stale-read` | 3/4 | 9.0 | 60.0 | not-linearizable 2, unavailable 1 | 0 |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| `vote-any-log` | 0/1 | — | — | — | 1 |"),
            "{md}"
        );
        assert!(md.contains("0 false alarms in 2 runs"), "{md}");
    }
}
