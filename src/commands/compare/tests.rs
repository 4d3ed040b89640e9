use std::collections::BTreeMap;

use super::*;

fn run(seed: u64, verdict: RunOutcome, ok_per_s: f64) -> CampaignRun {
    CampaignRun {
        caught_at_s: None,
        cell: BTreeMap::new(),
        seed,
        verdict,
        anomalies: if verdict == RunOutcome::Invalid {
            vec!["not-linearizable".into()]
        } else {
            vec![]
        },
        dir: Some(format!("riptide/run{seed}")),
        seconds: 10.0,
        ok_per_s,
        p50_ms: 1.0,
        p99_ms: 5.0,
        faults: BTreeMap::new(),
        unsafe_bugs: vec![],
        cluster_recovered: true,
    }
}

fn valid(seeds: std::ops::Range<u64>) -> Vec<CampaignRun> {
    seeds
        .map(|s| run(s, RunOutcome::Valid, 1000.0 + s as f64))
        .collect()
}

#[test]
fn the_same_campaign_twice_regresses_nothing() {
    let r = compare_cell(&valid(1..4), &valid(1..4), 0.1);
    assert!(!r.safety && !r.liveness && !r.perf, "{:#?}", r.lines);
    assert!(r.lines[0].starts_with("safety     ok"), "{:#?}", r.lines);
}

#[test]
fn runs_that_became_invalid_are_named_and_one_that_was_already_is_not_a_regression() {
    let base = vec![
        run(1, RunOutcome::Valid, 1000.0),
        run(2, RunOutcome::Invalid, 1000.0),
    ];
    let new = vec![
        run(1, RunOutcome::Invalid, 1000.0),
        run(2, RunOutcome::Invalid, 1000.0),
    ];
    let r = compare_cell(&base, &new, 0.1);
    assert!(r.safety);
    let text = r.lines.join("\n");
    assert!(
        text.contains("1 run(s) became invalid: seed 1 (not-linearizable) riptide/run1"),
        "{text}"
    );
    assert!(
        text.contains("still invalid as in the base: seed 2"),
        "{text}"
    );
    let r = compare_cell(&new, &new, 0.1);
    assert!(!r.safety, "the same invalid runs again: {:#?}", r.lines);
}

#[test]
fn a_new_anomaly_kind_is_a_safety_regression() {
    let mut base = vec![run(1, RunOutcome::Invalid, 1000.0)];
    let mut new = base.clone();
    new[0].anomalies.push("replicas-diverged".into());
    let r = compare_cell(&base, &new, 0.1);
    assert!(
        r.safety
            && r.lines
                .join("\n")
                .contains("new anomaly kinds: replicas-diverged")
    );
    base[0].anomalies = new[0].anomalies.clone();
    assert!(!compare_cell(&base, &new, 0.1).safety);
}

#[test]
fn a_bug_both_campaigns_ran_is_judged_by_its_catch_rate() {
    let with_bug = |v: Vec<CampaignRun>| -> Vec<CampaignRun> {
        v.into_iter()
            .map(|mut r| {
                r.unsafe_bugs = vec!["stale-read".into()];
                r
            })
            .collect()
    };
    let caught = with_bug(vec![
        run(1, RunOutcome::Invalid, 900.0),
        run(2, RunOutcome::Valid, 900.0),
    ]);
    let r = compare_cell(&caught, &caught, 0.1);
    assert!(!r.safety, "{:#?}", r.lines);
    assert!(
        r.lines[0].contains("catch rate stale-read: 1 of 2 -> 1 of 2"),
        "{:#?}",
        r.lines
    );
    let missed = with_bug(valid(1..3));
    let r = compare_cell(&caught, &missed, 0.1);
    assert!(
        r.safety && r.lines[0].contains("no longer caught"),
        "{:#?}",
        r.lines
    );
    // A bug only NEW runs is the node under test: its invalid runs are regressions.
    let r = compare_cell(&valid(1..3), &caught, 0.1);
    assert!(
        r.safety && r.lines[0].contains("became invalid"),
        "{:#?}",
        r.lines
    );
}

#[test]
fn unavailable_runs_are_a_liveness_regression() {
    let mut new = valid(1..3);
    new[1].cluster_recovered = false;
    let r = compare_cell(&valid(1..3), &new, 0.1);
    assert!(r.liveness && !r.safety, "{:#?}", r.lines);
    assert!(
        r.lines.join("\n").contains("became unavailable: seed 2"),
        "{:#?}",
        r.lines
    );
    new[1] = run(2, RunOutcome::Crashed, 0.0);
    assert!(compare_cell(&valid(1..3), &new, 0.1).liveness);
}

#[test]
fn a_throughput_drop_beyond_the_noise_is_a_performance_regression_only() {
    let base = valid(1..4);
    let slow: Vec<CampaignRun> = (1..4).map(|s| run(s, RunOutcome::Valid, 600.0)).collect();
    let r = compare_cell(&base, &slow, 0.1);
    assert!(r.perf && !r.safety && !r.liveness, "{:#?}", r.lines);
    assert!(r
        .lines
        .iter()
        .any(|l| l.starts_with("ok ops/s") && l.contains("REGRESSED")));
    let r = compare_cell(&base, &slow, 0.5);
    assert!(
        !r.perf,
        "a 40% drop is within a 50% threshold: {:#?}",
        r.lines
    );
}

#[test]
fn an_unavailable_run_is_a_liveness_regression_not_a_safety_one() {
    let mut new = valid(1..3);
    new[0].verdict = RunOutcome::Invalid;
    new[0].anomalies = vec!["unavailable".into()];
    let r = compare_cell(&valid(1..3), &new, 0.1);
    assert!(r.liveness && !r.safety, "{:#?}", r.lines);
}
