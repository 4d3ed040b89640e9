//! Pruning the store: which runs and campaigns `riptide prune` removes, decided in full before
//! anything is removed ([`plan`]), then carried out ([`apply`]).
//!
//! # Units
//!
//! The store is pruned in *units*, each with the time it started:
//!
//! - a **campaign**: its folder `campaigns/<name>/<stamp>/` together with every run folder its
//!   `campaign.json` names. A campaign and its runs are kept or removed as one.
//! - a **run**: a run folder `<name>/<stamp>/` (with a `test.json` or a `history.jsonl`, as the
//!   index lists them) that no campaign names.
//!
//! # Rules
//!
//! Each rule keeps units; a unit is removed only when no rule keeps it:
//!
//! - `--keep N` keeps the N newest units (campaigns and runs counted together);
//! - `--older-than AGE` keeps every unit younger than AGE.
//!
//! And whatever the rules say, these are always kept (and not counted in N):
//!
//! - a campaign a saved baseline (`baselines/<name>`) points at, with its runs;
//! - a run or campaign whose status is still `running` (it may be running now; one whose
//!   runner was killed stays `running` and is left for a person to remove);
//! - a run that a kept campaign names, even when another, removed campaign names it too.
//!
//! # Safety
//!
//! Only folders found by walking the results dir are removed, and the walk never follows a
//! symlink (a linked folder is not a run; `latest` is a link). A campaign row naming a folder
//! that is not one of those (`../elsewhere`, a missing run) removes nothing. A `campaign.json`
//! that cannot be read stops the prune before anything is removed: without it, which runs
//! belong to the campaign is unknown.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::campaign::{CampaignFile, CampaignStatus, BASELINES_DIR, CAMPAIGNS_DIR};
use crate::{files, Error, Manifest, Result, RunStatus};

/// What `riptide prune` was asked to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Keep the N newest units.
    pub keep: Option<usize>,
    /// Keep units younger than this.
    pub older_than: Option<Duration>,
    /// Now, in Unix seconds (the age of a unit is measured from here).
    pub now: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitKind {
    Run,
    Campaign,
}

/// Why a unit is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Among the `--keep N` newest.
    Newest,
    /// Younger than `--older-than`.
    Younger,
    /// A saved baseline points at it (the baselines' names).
    Baseline(Vec<String>),
    /// Its status is `running`.
    Running,
}

impl Keep {
    pub fn describe(&self) -> String {
        match self {
            Keep::Newest => "among the newest".into(),
            Keep::Younger => "younger than --older-than".into(),
            Keep::Baseline(names) => format!("baseline {}", names.join(", ")),
            Keep::Running => "status running (if its runner is gone, remove it by hand)".into(),
        }
    }
}

/// A run or a campaign with its runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    pub kind: UnitKind,
    /// The folder, relative to the results dir, with `/` separators.
    pub path: String,
    /// `YYYYMMDDTHHMMSS`, UTC.
    pub started_at: String,
    /// A campaign's run folders (relative) that go with it; empty for a run.
    pub runs: Vec<String>,
    /// Bytes of the files that removing it frees (the campaign's runs included).
    pub bytes: u64,
    /// `None`: removed.
    pub keep: Option<Keep>,
}

/// What [`plan`] decided, newest unit first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub units: Vec<Unit>,
}

impl Plan {
    pub fn removed(&self) -> impl Iterator<Item = &Unit> {
        self.units.iter().filter(|u| u.keep.is_none())
    }

    pub fn kept(&self) -> impl Iterator<Item = &Unit> {
        self.units.iter().filter(|u| u.keep.is_some())
    }

    pub fn bytes_removed(&self) -> u64 {
        self.removed().map(|u| u.bytes).sum()
    }
}

/// `7d`, `12h`, `30m`, `45s`, `2w`: a whole number and a unit.
pub fn parse_age(text: &str) -> std::result::Result<Duration, String> {
    let bad = || {
        format!("`{text}` is not an age; use a whole number and a unit, e.g. 30m, 12h, 7d (s, m, h, d, w)")
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let unit_s = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(format!(
            "--older-than {text} would remove every run; give an age of more than 0"
        ));
    }
    Ok(Duration::from_secs(n.saturating_mul(unit_s)))
}

/// Bytes of every file under `path` (the path itself if it is a file or a link); links are
/// counted as links, never followed.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries.flatten().map(|e| disk_usage(&e.path())).sum()
}

/// `512 B`, `3.2 KiB`, `41.0 MiB`, `1.2 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Checks that `results` is a riptide store: it exists, is a folder, and holds an
/// `index.html`, a `latest` link or a `campaigns/` folder.
pub fn check_store(results: &Path) -> Result<()> {
    if !results.is_dir() {
        return Err(Error::Layout(format!(
            "results dir {} does not exist or is not a folder; pass the --results-dir your runs went to",
            results.display()
        )));
    }
    let marked = results.join("index.html").is_file()
        || results.join("latest").symlink_metadata().is_ok()
        || results.join(CAMPAIGNS_DIR).is_dir();
    if !marked {
        return Err(Error::Layout(format!(
            "{} is not a riptide results dir (no index.html, latest or {CAMPAIGNS_DIR}/ in it); \
             pass the --results-dir your runs went to; nothing was removed",
            results.display()
        )));
    }
    Ok(())
}

/// A run folder found in the store.
struct FoundRun {
    path: String,
    started_at: String,
    running: bool,
}

/// A campaign folder found in the store, with the run folders its rows name.
struct FoundCampaign {
    dir: PathBuf,
    path: String,
    started_at: String,
    running: bool,
    runs: BTreeSet<String>,
}

/// Decides what to remove. Removes nothing.
pub fn plan(results: &Path, rules: &Rules) -> Result<Plan> {
    check_store(results)?;
    let runs = find_runs(results);
    let campaigns = find_campaigns(results, &runs)?;
    let baselines = baselines(results);
    let claimed: BTreeSet<&String> = campaigns.iter().flat_map(|c| &c.runs).collect();
    let mut units: Vec<(Unit, Option<Keep>)> = Vec::new();
    for c in &campaigns {
        let protect = match canonical(&c.dir).and_then(|d| baselines.get(&d)) {
            Some(names) => Some(Keep::Baseline(names.clone())),
            None => c.running.then_some(Keep::Running),
        };
        let unit = unit(UnitKind::Campaign, &c.path, &c.started_at);
        units.push((
            Unit {
                runs: c.runs.iter().cloned().collect(),
                ..unit
            },
            protect,
        ));
    }
    for r in runs.values().filter(|r| !claimed.contains(&r.path)) {
        let protect = r.running.then_some(Keep::Running);
        units.push((unit(UnitKind::Run, &r.path, &r.started_at), protect));
    }
    // Newest first; the folder name breaks ties.
    units.sort_by(|(a, _), (b, _)| (&b.started_at, &b.path).cmp(&(&a.started_at, &a.path)));
    let mut counted = 0;
    for (unit, protect) in &mut units {
        unit.keep = protect.take().or_else(|| {
            counted += 1;
            keep_by_rules(rules, counted, &unit.started_at)
        });
    }
    let mut units: Vec<Unit> = units.into_iter().map(|(u, _)| u).collect();
    release_shared_runs(&mut units);
    for unit in &mut units {
        unit.bytes = std::iter::once(&unit.path)
            .chain(&unit.runs)
            .map(|p| disk_usage(&results.join(p)))
            .sum();
    }
    Ok(Plan { units })
}

fn unit(kind: UnitKind, path: &str, started_at: &str) -> Unit {
    Unit {
        kind,
        path: path.to_string(),
        started_at: started_at.to_string(),
        runs: Vec::new(),
        bytes: 0,
        keep: None,
    }
}

/// The rules' answer for the `nth` newest unprotected unit (1-based).
fn keep_by_rules(rules: &Rules, nth: usize, started_at: &str) -> Option<Keep> {
    if rules.keep.is_some_and(|n| nth <= n) {
        return Some(Keep::Newest);
    }
    let younger = rules.older_than.is_some_and(|age| {
        let started = stamp_unix(started_at).unwrap_or(rules.now);
        rules.now.saturating_sub(started) < age.as_secs()
    });
    younger.then_some(Keep::Younger)
}

/// A run named by a kept campaign stays: a removed campaign does not take it along.
fn release_shared_runs(units: &mut [Unit]) {
    let kept: BTreeSet<String> = units
        .iter()
        .filter(|u| u.keep.is_some())
        .flat_map(|u| u.runs.iter().cloned())
        .collect();
    for unit in units.iter_mut().filter(|u| u.keep.is_none()) {
        unit.runs.retain(|r| !kept.contains(r));
    }
}

/// `YYYYMMDDTHHMMSS` (a `-n` suffix or anything after the 15th character ignored) as Unix time.
pub fn stamp_unix(stamp: &str) -> Option<u64> {
    let s = stamp.get(..15)?;
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        s.get(0..4)?,
        s.get(4..6)?,
        s.get(6..8)?,
        s.get(9..11)?,
        s.get(11..13)?,
        s.get(13..15)?
    );
    let time = humantime::parse_rfc3339(&rfc).ok()?;
    time.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// Real (not linked, not hidden) subfolders of `dir`.
fn subdirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (!name.starts_with('.')).then(|| (name, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// Every run folder, by its relative path.
fn find_runs(results: &Path) -> BTreeMap<String, FoundRun> {
    let mut runs = BTreeMap::new();
    for (test, test_dir) in subdirs(results) {
        if test == CAMPAIGNS_DIR || test == BASELINES_DIR {
            continue;
        }
        for (stamp, dir) in subdirs(&test_dir) {
            if !(dir.join(files::MANIFEST).is_file() || dir.join(files::HISTORY).is_file()) {
                continue;
            }
            let manifest = Manifest::load(&dir).ok();
            let path = format!("{test}/{stamp}");
            let run = FoundRun {
                path: path.clone(),
                started_at: manifest
                    .as_ref()
                    .map(|m| m.started_at.clone())
                    .filter(|s| !s.is_empty())
                    .unwrap_or(stamp),
                running: manifest.is_some_and(|m| m.status == RunStatus::Running),
            };
            runs.insert(path, run);
        }
    }
    runs
}

/// Every campaign folder, with the runs (among `runs`) its rows name.
fn find_campaigns(results: &Path, runs: &BTreeMap<String, FoundRun>) -> Result<Vec<FoundCampaign>> {
    let mut found = Vec::new();
    for (name, name_dir) in subdirs(&results.join(CAMPAIGNS_DIR)) {
        for (stamp, dir) in subdirs(&name_dir) {
            if !dir.join(crate::campaign::CAMPAIGN_FILE).is_file() {
                continue;
            }
            let file = CampaignFile::load(&dir).map_err(|e| {
                Error::Layout(format!(
                    "{e}; without it the campaign's runs are unknown, so nothing was removed \
                     (fix or remove that campaign folder, then prune again)"
                ))
            })?;
            let named = file.runs.iter().filter_map(|r| r.dir.as_deref());
            found.push(FoundCampaign {
                path: format!("{CAMPAIGNS_DIR}/{name}/{stamp}"),
                started_at: file.started_at.clone(),
                running: file.status == CampaignStatus::Running,
                runs: named
                    .map(|d| d.trim_end_matches('/').to_string())
                    .filter(|d| runs.contains_key(d))
                    .collect(),
                dir,
            });
        }
    }
    Ok(found)
}

/// The campaign folders saved baselines point at (canonical paths), with the baselines' names.
fn baselines(results: &Path) -> BTreeMap<PathBuf, Vec<String>> {
    let mut found: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(results.join(BASELINES_DIR)) else {
        return found;
    };
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let target = PathBuf::from(text.trim());
        // A relative path in a hand-written baseline is taken from the results dir.
        let target = if target.is_absolute() {
            target
        } else {
            results.join(target)
        };
        if let Some(dir) = canonical(&target) {
            let name = entry.file_name().to_string_lossy().into_owned();
            found.entry(dir).or_default().push(name);
        }
    }
    found
}

fn canonical(path: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(path).ok()
}

/// What [`apply`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    pub runs: usize,
    pub campaigns: usize,
    pub bytes: u64,
    /// Folders that could not be removed, with the error.
    pub failures: Vec<String>,
}

/// Removes what `plan` decided, then the test and campaign-name folders left empty, and points
/// `latest` at the newest run left (or removes it when none is).
pub fn apply(results: &Path, plan: &Plan) -> Removed {
    let mut removed = Removed::default();
    for unit in plan.removed() {
        let runs = unit.runs.iter().map(|r| (UnitKind::Run, r));
        for (kind, path) in std::iter::once((unit.kind, &unit.path)).chain(runs) {
            let dir = results.join(path);
            let bytes = disk_usage(&dir);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    removed.bytes += bytes;
                    match kind {
                        UnitKind::Run => removed.runs += 1,
                        UnitKind::Campaign => removed.campaigns += 1,
                    }
                }
                Err(err) => removed.failures.push(format!("{}: {err}", dir.display())),
            }
        }
    }
    for (_, dir) in subdirs(results) {
        let _ = std::fs::remove_dir(&dir);
    }
    for (_, dir) in subdirs(&results.join(CAMPAIGNS_DIR)) {
        let _ = std::fs::remove_dir(&dir);
    }
    relink_latest(results);
    removed
}

/// `latest` keeps pointing at a run that is still there, else at the newest run left.
fn relink_latest(results: &Path) {
    let latest = results.join("latest");
    if std::fs::symlink_metadata(&latest).is_err() || latest.exists() {
        return;
    }
    let newest = find_runs(results)
        .into_values()
        .max_by(|a, b| (&a.started_at, &a.path).cmp(&(&b.started_at, &b.path)));
    let _ = std::fs::remove_file(&latest);
    if let Some(run) = newest {
        let _ = crate::layout::update_latest(results, &results.join(run.path));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::{save_baseline, CampaignPlan, CampaignRun, NodeIdentity, RunOutcome};

    /// A run folder with a `test.json` of `status` and a history of `bytes` bytes.
    fn run(results: &Path, path: &str, status: &str, bytes: usize) {
        let dir = results.join(path);
        std::fs::create_dir_all(dir.join("nodes/n1/data")).unwrap();
        let stamp = path.rsplit('/').next().unwrap();
        std::fs::write(
            dir.join("test.json"),
            format!(r#"{{"started_at":"{stamp}","status":"{status}"}}"#),
        )
        .unwrap();
        std::fs::write(dir.join("history.jsonl"), vec![b'x'; bytes]).unwrap();
    }

    fn campaign(results: &Path, stamp: &str, runs: &[&str]) -> PathBuf {
        let dir = results.join(CAMPAIGNS_DIR).join("c").join(stamp);
        std::fs::create_dir_all(&dir).unwrap();
        let mut file =
            CampaignFile::new("c", stamp, CampaignPlan::default(), NodeIdentity::default());
        file.status = CampaignStatus::Complete;
        for (seed, r) in runs.iter().enumerate() {
            file.push(CampaignRun {
                caught_at_s: None,
                cell: BTreeMap::new(),
                seed: seed as u64,
                verdict: RunOutcome::Valid,
                anomalies: vec![],
                dir: Some(r.to_string()),
                seconds: 1.0,
                ok_per_s: 1.0,
                p50_ms: 1.0,
                p99_ms: 1.0,
                faults: BTreeMap::new(),
                unsafe_bugs: vec![],
                cluster_recovered: true,
            });
        }
        file.store(&dir).unwrap();
        dir
    }

    fn store() -> tempfile::TempDir {
        let results = tempfile::tempdir().unwrap();
        std::fs::write(results.path().join("index.html"), "").unwrap();
        results
    }

    fn removed(plan: &Plan) -> Vec<&str> {
        plan.removed().map(|u| u.path.as_str()).collect()
    }

    const DAY: u64 = 86_400;

    fn rules(keep: Option<usize>, older_than: Option<&str>) -> Rules {
        Rules {
            keep,
            older_than: older_than.map(|a| parse_age(a).unwrap()),
            // 2026-12-02T00:00:00Z
            now: stamp_unix("20261202T000000").unwrap(),
        }
    }

    #[test]
    fn keep_n_counts_campaigns_as_one_and_takes_their_runs_along() {
        let results = store();
        let r = results.path();
        run(r, "t/20261120T000000", "complete", 100);
        run(r, "t/20261121T000000", "complete", 100);
        run(r, "t/20261121T000001", "complete", 100);
        campaign(
            r,
            "20261121T000000",
            &["t/20261121T000000", "t/20261121T000001"],
        );
        run(r, "t/20261125T000000", "complete", 100);
        run(r, "t/20261126T000000", "complete", 100);
        let plan = plan(r, &rules(Some(2), None)).unwrap();
        assert_eq!(
            removed(&plan),
            ["campaigns/c/20261121T000000", "t/20261120T000000"]
        );
        let c = plan.removed().next().unwrap();
        assert_eq!(c.runs, ["t/20261121T000000", "t/20261121T000001"]);
        assert!(c.bytes >= 200, "its runs' bytes count: {}", c.bytes);
        assert!(std::fs::symlink_metadata(r.join("latest")).is_err());
        std::os::unix::fs::symlink("t/20261120T000000", r.join("latest")).unwrap();
        let done = apply(r, &plan);
        assert_eq!((done.runs, done.campaigns), (3, 1));
        assert!(done.failures.is_empty(), "{:?}", done.failures);
        assert_eq!(done.bytes, plan.bytes_removed());
        assert!(!r.join("t/20261121T000000").exists() && r.join("t/20261125T000000").is_dir());
        assert!(
            !r.join(CAMPAIGNS_DIR).join("c").exists(),
            "empty name folders go"
        );
        assert_eq!(
            std::fs::read_link(r.join("latest")).unwrap(),
            Path::new("t/20261126T000000"),
            "latest moves to the newest run left"
        );
    }

    #[test]
    fn older_than_and_keep_both_keep_and_baselines_and_running_are_never_counted() {
        let results = store();
        let r = results.path();
        run(r, "t/20261101T000000", "complete", 10);
        run(r, "t/20261102T000000", "running", 10);
        let base = campaign(r, "20261103T000000", &["t/20261103T000000"]);
        run(r, "t/20261103T000000", "complete", 10);
        run(r, "t/20261130T000000", "complete", 10);
        run(r, "t/20261201T120000", "complete", 10);
        save_baseline(r, "main", &base).unwrap();
        let by_age = plan(r, &rules(None, Some("7d"))).unwrap();
        assert_eq!(removed(&by_age), ["t/20261101T000000"]);
        let kept: BTreeMap<&str, Keep> = by_age
            .kept()
            .map(|u| (u.path.as_str(), u.keep.clone().unwrap()))
            .collect();
        assert_eq!(
            kept["campaigns/c/20261103T000000"],
            Keep::Baseline(vec!["main".into()])
        );
        assert_eq!(kept["t/20261102T000000"], Keep::Running);
        assert_eq!(kept["t/20261130T000000"], Keep::Younger);
        // Both rules: the newest is kept by count, the two-day-old one by age.
        let both = plan(r, &rules(Some(1), Some("3d"))).unwrap();
        assert_eq!(removed(&both), ["t/20261101T000000"]);
        let only_keep = plan(r, &rules(Some(1), None)).unwrap();
        assert_eq!(
            removed(&only_keep),
            ["t/20261130T000000", "t/20261101T000000"]
        );
        assert!(!removed(&only_keep).contains(&"t/20261103T000000"));
    }

    #[test]
    fn a_run_of_a_kept_campaign_stays_and_stray_rows_remove_nothing() {
        let results = store();
        let r = results.path();
        run(r, "t/20261101T000000", "complete", 10);
        campaign(
            r,
            "20261101T000000",
            &["t/20261101T000000", "../../etc", "t/gone"],
        );
        campaign(r, "20261201T000000", &["t/20261101T000000"]);
        let plan = plan(r, &rules(Some(1), None)).unwrap();
        let old = plan.removed().next().unwrap();
        assert_eq!(old.path, "campaigns/c/20261101T000000");
        assert!(
            old.runs.is_empty(),
            "shared with a kept campaign: {:?}",
            old.runs
        );
        apply(r, &plan);
        assert!(r.join("t/20261101T000000").is_dir());
    }

    #[test]
    fn links_are_not_followed_and_bad_stores_and_campaigns_are_clear_errors() {
        let results = store();
        let r = results.path();
        let outside = tempfile::tempdir().unwrap();
        run(outside.path(), "t/20261101T000000", "complete", 10);
        std::os::unix::fs::symlink(outside.path().join("t"), r.join("t")).unwrap();
        let plan = plan(r, &rules(Some(1), None)).unwrap();
        assert!(
            plan.units.is_empty(),
            "a linked folder is not a run: {plan:?}"
        );

        let err = super::plan(&r.join("nope"), &rules(Some(1), None)).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = super::plan(outside.path(), &rules(Some(1), None)).unwrap_err();
        assert!(
            err.to_string().contains("not a riptide results dir"),
            "{err}"
        );

        let c = campaign(r, "20261101T000000", &[]);
        std::fs::write(c.join("campaign.json"), "{").unwrap();
        let err = super::plan(r, &rules(Some(1), None)).unwrap_err();
        assert!(err.to_string().contains("nothing was removed"), "{err}");
    }

    #[test]
    fn ages_and_sizes_read_as_people_write_them() {
        assert_eq!(parse_age("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_age("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_age("7d"), Ok(Duration::from_secs(7 * DAY)));
        for bad in ["7", "d", "7x", "-1d", "1.5h", ""] {
            assert!(parse_age(bad).unwrap_err().contains("e.g. 30m"), "{bad}");
        }
        assert!(parse_age("0d").unwrap_err().contains("more than 0"));
        assert_eq!(stamp_unix("19700102T000000-2"), Some(DAY));
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 200 * 1024), "3.2 MiB");
    }
}
