use super::*;
use crate::history::HistoryFile;

/// A history built line by line: ops of one process each, faults by start and stop time.
#[derive(Default)]
struct Builder {
    lines: Vec<String>,
    next_process: u64,
}

impl Builder {
    fn line(&mut self, json: String) {
        let index = self.lines.len();
        let json = json.replacen('{', &format!("{{\"index\":{index},"), 1);
        self.lines.push(json);
    }

    /// An op invoked at `t0` seconds, completed at `t1` as `outcome` (with `error`).
    fn op(&mut self, process: u64, t0: f64, t1: f64, outcome: &str, error: Option<&str>) {
        let ns = |s: f64| (s * 1e9) as u64;
        self.line(format!(
            r#"{{"time":{},"process":{process},"type":"invoke","f":"write","key":"k","value":1}}"#,
            ns(t0)
        ));
        let error = error.map_or(String::new(), |e| format!(r#","error":"{e}""#));
        self.line(format!(
            r#"{{"time":{},"process":{process},"type":"{outcome}","f":"write","key":"k","value":1{error}}}"#,
            ns(t1)
        ));
    }

    /// `n` ops spread over `[from, to)` seconds, all with the same outcome.
    fn ops(&mut self, from: f64, to: f64, n: usize, outcome: &str, error: Option<&str>) {
        for i in 0..n {
            let t = from + (to - from) * i as f64 / n as f64;
            let p = self.next_process;
            self.next_process += 1;
            self.op(p, t, t + 0.01, outcome, error);
        }
    }

    /// A kill of n2 from `start` to `stop` seconds.
    fn fault(&mut self, start: f64, stop: f64) {
        self.fault_with(start, stop, r#"{"fault":"kill","nodes":[2]}"#);
    }

    fn final_reads(&mut self, at: f64, answered: usize, missing: usize) {
        for i in 0..answered + missing {
            let outcome = if i < answered { "ok" } else { "fail" };
            let error = (i >= answered).then_some("no leader reachable before the timeout");
            self.op(FINAL_READ_BASE + i as u64, at, at + 0.01, outcome, error);
        }
    }

    /// A fault of any kind: its start event's value is `value` (a JSON object).
    fn fault_with(&mut self, start: f64, stop: f64, value: &str) {
        let ns = |s: f64| (s * 1e9) as u64;
        let fault: serde_json::Value = serde_json::from_str(value).unwrap();
        let name = fault["fault"].as_str().unwrap().to_string();
        self.line(format!(
            r#"{{"time":{},"process":"nemesis","type":"info","f":"start","value":{value}}}"#,
            ns(start)
        ));
        self.line(format!(
            r#"{{"time":{},"process":"nemesis","type":"info","f":"stop","value":{{"fault":"{name}"}}}}"#,
            ns(stop)
        ));
    }

    fn judge(&self) -> Availability {
        self.judge_with(LivenessRule::default())
    }

    /// Judged as a cluster of `nodes` voters.
    fn judge_nodes(&self, nodes: usize) -> Availability {
        self.judge_with(LivenessRule {
            nodes,
            ..LivenessRule::default()
        })
    }

    fn judge_with(&self, rule: LivenessRule) -> Availability {
        let mut lines: Vec<(f64, String)> = self
            .lines
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (v["time"].as_f64().unwrap(), l.clone())
            })
            .collect();
        lines.sort_by(|a, b| a.0.total_cmp(&b.0));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let text: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
        std::fs::write(&path, text.join("\n") + "\n").unwrap();
        let file = HistoryFile::read(&path).unwrap();
        judge(&RunHistory::from_file(&file), rule)
    }
}

#[test]
fn a_healthy_run_is_available_and_its_window_is_judged() {
    let mut b = Builder::default();
    b.ops(0.0, 10.0, 100, "ok", None);
    b.final_reads(11.0, 5, 0);
    let a = b.judge();
    assert!(a.available, "{:?}", a.reasons);
    assert_eq!(
        a.windows.len(),
        3,
        "10 s in slices of 3 s, the last one 4 s"
    );
    assert_eq!((a.windows[2].ops, a.windows[2].served), (40, 40));
    assert!(a
        .describe()
        .starts_with("ok: 3 fault-free slice(s) of 3 s judged, the worst served 100%"));
}

#[test]
fn a_cluster_that_stops_answering_with_no_fault_in_place_is_unavailable() {
    let mut b = Builder::default();
    b.ops(0.0, 5.0, 50, "ok", None);
    b.fault(5.0, 10.0);
    b.ops(5.0, 10.0, 50, "info", Some("timed out"));
    // Healed at 10 s, and still nothing answers from 13 s (after the grace) to the end.
    b.ops(10.0, 20.0, 100, "info", Some("timed out"));
    b.ops(20.0, 21.0, 10, "ok", None);
    b.final_reads(22.0, 5, 0);
    let a = b.judge();
    assert!(!a.available);
    assert_eq!(a.reasons.len(), 1, "{:?}", a.reasons);
    assert!(
        a.reasons[0].starts_with(
            "between 13.0 s and 19.0 s, with no fault in place, the cluster served 0 of 60 ops"
        ),
        "{:?}",
        a.reasons
    );
    assert_eq!(a.unavailable.len(), 1);
    assert!((a.unavailable[0].0 - 13.0).abs() < 1e-9);
    assert!(a.describe().starts_with("UNAVAILABLE: "));
}

#[test]
fn the_grace_after_a_heal_and_definite_cas_failures_do_not_count_against_it() {
    let mut b = Builder::default();
    b.ops(0.0, 5.0, 50, "fail", Some("cas-mismatch: the value is 3"));
    b.fault(5.0, 10.0);
    b.ops(5.0, 12.9, 80, "info", Some("timed out"));
    b.ops(13.0, 20.0, 70, "ok", None);
    b.final_reads(21.0, 3, 0);
    let a = b.judge();
    assert!(a.available, "{:?}", a.reasons);
    assert_eq!(a.windows.len(), 4);
    assert_eq!(
        a.windows[0].served, a.windows[0].ops,
        "cas mismatches are answers"
    );
    let after = a.first_ok_after_heal_s.unwrap();
    assert!((after - 3.01).abs() < 1e-6, "{after}");
}

#[test]
fn final_reads_without_an_answer_and_no_ok_after_the_heal_are_unavailable() {
    let mut b = Builder::default();
    b.ops(0.0, 5.0, 50, "ok", None);
    b.final_reads(6.0, 3, 2);
    let a = b.judge();
    assert!(!a.available);
    assert_eq!(a.reasons, ["2 of 5 final reads got no answer"]);

    let mut b = Builder::default();
    b.ops(0.0, 5.0, 50, "ok", None);
    b.fault(5.0, 6.0);
    b.ops(6.0, 7.0, 5, "info", Some("timed out"));
    let a = b.judge();
    assert!(!a.available);
    assert!(
        a.reasons
            .iter()
            .any(|r| r.starts_with("no op succeeded after the last heal (6.0 s)")),
        "{:?}",
        a.reasons
    );
}

/// The workload of the minority tests: served for 5 s, then 15 s under a fault that starts at
/// 5 s and stops at 20 s, served or not, then served again.
fn under_fault(fault: &str, served_meanwhile: bool) -> Builder {
    let mut b = Builder::default();
    b.ops(0.0, 5.0, 50, "ok", None);
    b.fault_with(5.0, 20.0, fault);
    match served_meanwhile {
        true => b.ops(5.0, 20.0, 150, "ok", None),
        false => b.ops(5.0, 20.0, 150, "info", Some("timed out")),
    }
    b.ops(20.0, 25.0, 50, "ok", None);
    b.final_reads(26.0, 3, 0);
    b
}

#[test]
fn a_cluster_that_stops_answering_while_only_a_minority_is_faulted_is_unavailable() {
    let kill = r#"{"fault":"kill","nodes":[2]}"#;
    let a = under_fault(kill, false).judge_nodes(5);
    assert!(!a.available);
    assert_eq!(a.reasons.len(), 1, "{:?}", a.reasons);
    assert!(
        a.reasons[0].starts_with(
            "between 8.0 s and 20.0 s, with only n2 faulted (a majority up and connected), the cluster served 0 of 120 ops"
        ),
        "{:?}",
        a.reasons
    );
    // Served meanwhile: available, and the slices under the kill are among those judged.
    let a = under_fault(kill, true).judge_nodes(5);
    assert!(a.available, "{:?}", a.reasons);
    assert_eq!(
        a.windows
            .iter()
            .filter(|w| w.faulted.as_deref() == Some(&[2][..]))
            .count(),
        4
    );
    assert!(
        a.describe()
            .starts_with("ok: 7 slice(s) of 3 s judged (3 fault-free, 4 with a minority faulted)"),
        "{}",
        a.describe()
    );
    // The cluster's size unknown (results from before): only fault-free stretches judged.
    assert!(under_fault(kill, false).judge().available);
}

#[test]
fn faults_that_take_a_majority_or_no_set_of_nodes_leave_their_stretch_unjudged() {
    for fault in [
        // Two of four, three of five: no strict majority left untouched.
        r#"{"fault":"pause","nodes":[1,2]}"#,
        r#"{"fault":"power-cut","nodes":[1,2,3,4,5]}"#,
        // A partition with no majority side, and one whose sides overlap (a bridge).
        r#"{"fault":"partition","groups":[[1,2],[3,4]],"nodes":[1,2,3,4]}"#,
        r#"{"fault":"partition","groups":[[1,2,3],[3,4]],"nodes":[1,2,3,4]}"#,
        r#"{"fault":"membership","change":"stranded","outcome":"done","nodes":[5]}"#,
        r#"{"fault":"membership","change":"shrink","outcome":"unknown","removed":2}"#,
    ] {
        let a = under_fault(fault, false).judge_nodes(4);
        assert!(a.available, "{fault}: {:?}", a.reasons);
        assert!(a.windows.iter().all(|w| w.faulted.is_none()), "{fault}");
    }
    // A membership change that removed a voter counts it as faulted; one that added a voter,
    // and a leadership transfer, take out nobody.
    let shrink = r#"{"fault":"membership","change":"shrink","outcome":"done","removed":3}"#;
    let a = under_fault(shrink, false).judge_nodes(5);
    assert!(
        a.reasons[0].contains("with only n3 faulted"),
        "{:?}",
        a.reasons
    );
    for fault in [
        r#"{"fault":"membership","change":"grow","outcome":"done","added":6}"#,
        r#"{"fault":"transfer-leader","nodes":[2]}"#,
    ] {
        let a = under_fault(fault, false).judge_nodes(5);
        assert!(
            a.reasons[0].contains("with faults in place that take out no node"),
            "{fault}: {:?}",
            a.reasons
        );
    }
    // Slowed state machines are faulted nodes: a minority slowed must not stop the cluster.
    let slow = r#"{"fault":"slow-apply","nodes":[2,5],"apply_delay_ms":500}"#;
    let a = under_fault(slow, false).judge_nodes(5);
    assert!(
        a.reasons[0].contains("with only n2, n5 faulted"),
        "{:?}",
        a.reasons
    );
    // A partition whose larger side is a majority: the smaller side is what is faulted.
    let cut = r#"{"fault":"partition","groups":[[2,4],[1,3,5]],"nodes":[1,2,3,4,5]}"#;
    let a = under_fault(cut, false).judge_nodes(5);
    assert!(!a.available);
    assert!(
        a.reasons[0].contains("with only n2, n4 faulted"),
        "{:?}",
        a.reasons
    );
}

#[test]
fn a_node_that_refused_to_start_after_its_fault_counts_as_faulted_to_the_end() {
    // n2's data was corrupted; it refused to start at the stop and stays down. Then n3 is
    // killed: two of three down, which no cluster can serve through, so nothing is judged there.
    let mut b = Builder::default();
    b.ops(0.0, 5.0, 50, "ok", None);
    b.line(r#"{"time":5000000000,"process":"nemesis","type":"info","f":"start","value":{"fault":"corrupt","nodes":[2]}}"#.to_string());
    b.line(r#"{"time":6000000000,"process":"nemesis","type":"info","f":"stop","value":{"fault":"corrupt","nodes":[2],"disks":{"2":{"refused":"exit code 3","said":"corrupt segment"}}}}"#.to_string());
    b.fault_with(10.0, 20.0, r#"{"fault":"kill","nodes":[3]}"#);
    b.ops(5.0, 10.0, 50, "ok", None);
    b.ops(10.0, 20.0, 100, "info", Some("timed out"));
    b.ops(20.0, 26.0, 60, "ok", None);
    b.final_reads(27.0, 3, 0);
    let a = b.judge_nodes(3);
    assert!(a.available, "{:?}", a.reasons);
    assert!(
        a.windows
            .iter()
            .all(|w| w.end_s <= 10.0 + 1e-9 || w.start_s >= 23.0 - 1e-9),
        "nothing judged while two of three were down: {:?}",
        a.windows
    );
    let after: Vec<&Window> = a
        .windows
        .iter()
        .filter(|w| w.start_s >= 23.0 - 1e-9)
        .collect();
    assert!(
        !after.is_empty() && after.iter().all(|w| w.faulted.as_deref() == Some(&[2][..])),
        "{after:?}"
    );
}
