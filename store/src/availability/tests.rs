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

    fn fault(&mut self, start: f64, stop: f64) {
        let ns = |s: f64| (s * 1e9) as u64;
        self.line(format!(
            r#"{{"time":{},"process":"nemesis","type":"info","f":"start","value":{{"fault":"kill","nodes":[2]}}}}"#,
            ns(start)
        ));
        self.line(format!(
            r#"{{"time":{},"process":"nemesis","type":"info","f":"stop","value":{{"fault":"kill","nodes":[2]}}}}"#,
            ns(stop)
        ));
    }

    fn final_reads(&mut self, at: f64, answered: usize, missing: usize) {
        for i in 0..answered + missing {
            let outcome = if i < answered { "ok" } else { "fail" };
            let error = (i >= answered).then_some("no leader reachable before the timeout");
            self.op(FINAL_READ_BASE + i as u64, at, at + 0.01, outcome, error);
        }
    }

    fn judge(&self) -> Availability {
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
        judge(&RunHistory::from_file(&file), LivenessRule::default())
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
