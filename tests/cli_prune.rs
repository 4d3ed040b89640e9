//! Disk use: `riptide test --keep-data` on real runs, and `riptide prune` on a store built by
//! hand (runs, campaigns, a saved baseline, links) as the real binary sees it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::riptide_bin;
use riptide_store::campaign::{
    create_campaign_dir, save_baseline, CampaignFile, CampaignPlan, CampaignRun, CampaignStatus,
    NodeIdentity, RunOutcome,
};
use riptide_store::layout;
use riptide_store::{Manifest, RunStatus, TestPlan};

fn riptide(args: &[&str]) -> Output {
    Command::new(riptide_bin())
        .args(args)
        .output()
        .expect("run riptide")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn is_root() -> bool {
    let root = unsafe { libc::geteuid() == 0 };
    if !root {
        eprintln!("skipped: riptide test needs root for its network namespace");
    }
    root
}

#[test]
fn keep_data_always_keeps_a_valid_runs_node_data() {
    if !is_root() {
        return;
    }
    let results = tempfile::tempdir().unwrap();
    let out = riptide(&[
        "test",
        "--nodes",
        "3",
        "--time-limit",
        "3",
        "--nemesis",
        "none",
        "--keep-data",
        "always",
        "--no-progress",
        "--results-dir",
        results.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = results
        .path()
        .join(std::fs::read_link(results.path().join("latest")).unwrap());
    for id in 1..=3 {
        assert!(dir.join(format!("nodes/n{id}/data")).is_dir(), "n{id} kept");
        assert!(dir.join(format!("nodes/n{id}.log")).is_file());
    }
    let manifest = Manifest::load(&dir).unwrap();
    assert!(!manifest.node_data_removed);
    assert!(!text(&out).contains("node data dirs removed"));
}

/// A stored run `riptide/<stamp>` that started `ago` seconds before now, with a node data dir.
fn run(results: &Path, ago: u64) -> String {
    let stamp = layout::timestamp(layout::now_unix() - ago);
    let dir = results.join("riptide").join(&stamp);
    std::fs::create_dir_all(dir.join("nodes/n1/data")).unwrap();
    std::fs::write(dir.join("nodes/n1/data/wal"), vec![0u8; 4096]).unwrap();
    std::fs::write(dir.join("history.jsonl"), "").unwrap();
    let manifest = Manifest {
        started_at: stamp.clone(),
        status: RunStatus::Complete,
        ..Manifest::new(TestPlan {
            name: "riptide".into(),
            nodes: 1,
            ..TestPlan::default()
        })
    };
    manifest.store(&dir).unwrap();
    format!("riptide/{stamp}")
}

/// A stored campaign that started `ago` seconds before now, naming `runs`.
fn campaign(results: &Path, ago: u64, runs: &[&str]) -> PathBuf {
    let now = layout::now_unix() - ago;
    let dir = create_campaign_dir(results, "c", now).unwrap();
    let plan = CampaignPlan::default();
    let mut file = CampaignFile::new("c", &layout::timestamp(now), plan, NodeIdentity::default());
    file.status = CampaignStatus::Complete;
    for (seed, run) in runs.iter().enumerate() {
        file.push(CampaignRun {
            caught_at_s: None,
            cell: Default::default(),
            seed: seed as u64,
            verdict: RunOutcome::Valid,
            anomalies: vec![],
            dir: Some(run.to_string()),
            seconds: 1.0,
            ok_per_s: 1.0,
            p50_ms: 1.0,
            p99_ms: 1.0,
            faults: Default::default(),
            unsafe_bugs: vec![],
            cluster_recovered: true,
        });
    }
    file.store(&dir).unwrap();
    dir
}

/// What `index.html` lists: the run folders its run rows link, and the campaign folders its
/// campaign rows link.
fn index(results: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let page = std::fs::read_to_string(results.join("index.html")).unwrap();
    let href_ending = |row: &str, file: &str| -> Option<String> {
        let end = row.find(&format!("/{file}\""))?;
        let start = row[..end].rfind("href=\"")? + "href=\"".len();
        Some(row[start..end].to_string())
    };
    let rows = |class: &str, file: &str| -> BTreeSet<String> {
        page.lines()
            .filter(|l| l.starts_with(&format!("<tr class=\"{class}\"")))
            .map(|l| href_ending(l, file).unwrap_or_else(|| panic!("no {file} link: {l}")))
            .collect()
    };
    let runs = rows("run", "test.json");
    let total = format!("<p id=\"totals\">{} runs:", runs.len());
    assert!(
        page.contains(&total),
        "the totals agree with the rows: {page}"
    );
    (runs, rows("campaign", "campaign.html"))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn rel(results: &Path, dir: &Path) -> String {
    dir.strip_prefix(results).unwrap().display().to_string()
}

const DAY: u64 = 86_400;

#[test]
fn prune_keeps_the_newest_and_every_baseline_and_rewrites_the_index() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let r = results.as_path();
    let old = run(r, 30 * DAY);
    let older_campaign_runs = [run(r, 25 * DAY), run(r, 25 * DAY - 60)];
    let refs: Vec<&str> = older_campaign_runs.iter().map(String::as_str).collect();
    let kept_campaign = campaign(r, 25 * DAY, &refs);
    save_baseline(r, "main", &kept_campaign).unwrap();
    let b = run(r, 20 * DAY);
    let c2_run = run(r, 15 * DAY);
    let c2 = campaign(r, 15 * DAY, &[&c2_run]);
    let d = run(r, 2 * DAY);
    let e = run(r, 3600);
    std::os::unix::fs::symlink(&old, r.join("latest")).unwrap();
    // A link out of the store, to a folder that looks like runs: never followed, never touched.
    let outside = tmp.path().join("outside");
    run(&outside, 40 * DAY);
    std::os::unix::fs::symlink(outside.join("riptide"), r.join("linked")).unwrap();
    riptide_report::index::write_index(r).unwrap();
    let results_arg = r.to_str().unwrap();

    let out = riptide(&[
        "prune",
        "--keep",
        "2",
        "--dry-run",
        "--results-dir",
        results_arg,
    ]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let would: BTreeSet<String> = said
        .lines()
        .filter(|l| l.starts_with("would remove "))
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect();
    let c2_rel = rel(r, &c2);
    assert_eq!(would, set(&[&old, &b, &c2_rel]), "{said}");
    assert!(said.contains("nothing was removed"), "{said}");
    assert!(
        r.join(&old).is_dir() && c2.is_dir(),
        "a dry run removes nothing"
    );

    let out = riptide(&["prune", "--keep", "2", "--results-dir", results_arg]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let kept_rel = rel(r, &kept_campaign);
    assert!(
        said.lines()
            .any(|l| l.starts_with("keep") && l.contains(&kept_rel) && l.contains("baseline main")),
        "the baseline's campaign is kept, and why: {said}"
    );
    assert!(
        said.contains("removed 3 run(s) and 1 campaign(s)"),
        "{said}"
    );
    assert!(said.contains("freed"), "{said}");
    for gone in [&old, &b, &c2_run] {
        assert!(!r.join(gone).exists(), "{gone} removed");
    }
    assert!(!c2.exists());
    let (runs, campaigns) = index(r);
    let mut want = set(&[&d, &e]);
    want.extend(older_campaign_runs.iter().cloned());
    assert_eq!(runs, want, "the index lists what is left");
    assert_eq!(campaigns, set(&[&kept_rel]));
    assert_eq!(std::fs::read_link(r.join("latest")).unwrap(), Path::new(&e));
    assert!(outside.join("riptide").read_dir().unwrap().count() == 1);
    assert!(
        r.join("linked").symlink_metadata().is_ok(),
        "the link stays"
    );

    let out = riptide(&["prune", "--older-than", "36h", "--results-dir", results_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (runs, _) = index(r);
    assert!(!runs.contains(&d) && runs.contains(&e), "{runs:?}");
    assert!(kept_campaign.join("campaign.json").is_file());
    assert!(older_campaign_runs.iter().all(|run| r.join(run).is_dir()));
}

#[test]
fn prune_refuses_unclear_requests_and_stores_it_does_not_know() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().to_str().unwrap();
    let missing = tmp.path().join("missing");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["prune", "--results-dir", results], "say what to keep"),
        (
            vec!["prune", "--keep", "0", "--results-dir", results],
            "at least 1",
        ),
        (
            vec!["prune", "--older-than", "7x", "--results-dir", results],
            "e.g. 30m",
        ),
        (
            vec!["prune", "--older-than", "0d", "--results-dir", results],
            "more than 0",
        ),
        (
            vec!["prune", "--keep", "1", "--results-dir", results],
            "not a riptide results dir",
        ),
        (
            vec![
                "prune",
                "--keep",
                "1",
                "--results-dir",
                missing.to_str().unwrap(),
            ],
            "does not exist",
        ),
    ];
    for (args, needle) in cases {
        let out = riptide(&args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {said}");
        assert!(
            said.contains(needle),
            "{args:?}: expected `{needle}` in {said}"
        );
    }
}
