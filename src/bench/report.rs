//! Rows: one per measured repetition (a *sample*) and one per point (the *row*: the median of
//! each figure over the point's samples, errors summed); the table printed at the end; the
//! side-by-side table of two targets with the ratio per point.

use serde::Serialize;

use super::load::{Measurement, Process};
use super::plan::{Op, Target};

/// Where a point sits in the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PointKey {
    pub target: Target,
    pub op: Op,
    pub nodes: usize,
    pub clients: usize,
    pub value_size: usize,
}

/// One point's figures (a repetition's, or the median of its repetitions).
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub key: PointKey,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub errors: u64,
    /// Cas ops that found another value (definite answers, counted in `ops_per_sec`).
    pub mismatches: u64,
    /// CPU seconds of the leader's process in the measured window (null: pid unknown).
    pub leader_cpu_s: Option<f64>,
    /// CPU seconds of each follower's process, in node order.
    pub follower_cpu_s: Vec<Option<f64>>,
    /// CPU seconds of the load generator (this riptide process).
    pub generator_cpu_s: f64,
    /// Resident memory (MiB) of the leader's process at the window's end (null: pid unknown).
    pub leader_rss_mib: Option<f64>,
    /// The same for each follower, in node order.
    pub follower_rss_mib: Vec<Option<f64>>,
    pub window_s: f64,
    /// Repetitions behind this row (1 for a sample).
    pub reps: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Row {
    pub fn sample(key: PointKey, m: &Measurement, processes: &[Process]) -> Row {
        let leader = processes.iter().position(|p| p.leader);
        let follower_cpu_s = (0..processes.len())
            .filter(|i| Some(*i) != leader)
            .map(|i| m.process_cpu[i].map(|s| round(s, 2)))
            .collect();
        let rss = |i: usize| {
            m.process_rss_mib
                .get(i)
                .copied()
                .flatten()
                .map(|r| round(r, 1))
        };
        let follower_rss_mib = (0..processes.len())
            .filter(|i| Some(*i) != leader)
            .map(rss)
            .collect();
        Row {
            key,
            ops_per_sec: round(m.ops_per_sec(), 1),
            p50_ms: round(m.quantile_ms(0.5), 3),
            p99_ms: round(m.quantile_ms(0.99), 3),
            p999_ms: round(m.quantile_ms(0.999), 3),
            errors: m.errors,
            mismatches: m.mismatches,
            leader_cpu_s: leader.and_then(|i| m.process_cpu[i]).map(|s| round(s, 2)),
            follower_cpu_s,
            generator_cpu_s: round(m.generator_cpu, 2),
            leader_rss_mib: leader.and_then(rss),
            follower_rss_mib,
            window_s: m.window.as_secs_f64(),
            reps: 1,
            first_error: m.first_error.clone(),
        }
    }

    /// The median of each figure over `samples` (all of one point), errors summed.
    pub fn median(samples: &[Row]) -> Row {
        let first = &samples[0];
        let med = |f: &dyn Fn(&Row) -> f64| median(samples.iter().map(f).collect());
        let med_opt = |f: &dyn Fn(&Row) -> Option<f64>| {
            let values: Option<Vec<f64>> = samples.iter().map(f).collect();
            values.map(median)
        };
        let followers = first.follower_cpu_s.len();
        Row {
            key: first.key,
            ops_per_sec: round(med(&|r| r.ops_per_sec), 1),
            p50_ms: round(med(&|r| r.p50_ms), 3),
            p99_ms: round(med(&|r| r.p99_ms), 3),
            p999_ms: round(med(&|r| r.p999_ms), 3),
            errors: samples.iter().map(|r| r.errors).sum(),
            mismatches: samples.iter().map(|r| r.mismatches).sum(),
            leader_cpu_s: med_opt(&|r| r.leader_cpu_s).map(|s| round(s, 2)),
            follower_cpu_s: (0..followers)
                .map(|i| {
                    med_opt(&|r| r.follower_cpu_s.get(i).copied().flatten()).map(|s| round(s, 2))
                })
                .collect(),
            generator_cpu_s: round(med(&|r| r.generator_cpu_s), 2),
            leader_rss_mib: med_opt(&|r| r.leader_rss_mib).map(|m| round(m, 1)),
            follower_rss_mib: (0..first.follower_rss_mib.len())
                .map(|i| {
                    med_opt(&|r| r.follower_rss_mib.get(i).copied().flatten()).map(|m| round(m, 1))
                })
                .collect(),
            window_s: first.window_s,
            reps: samples.len(),
            first_error: samples.iter().find_map(|r| r.first_error.clone()),
        }
    }

    pub fn followers_cpu_total(&self) -> Option<f64> {
        self.follower_cpu_s.iter().copied().sum()
    }

    /// The largest resident memory of any node (MiB), leader or follower.
    pub fn max_node_rss_mib(&self) -> Option<f64> {
        let all = self.follower_rss_mib.iter().chain([&self.leader_rss_mib]);
        all.flatten().copied().reduce(f64::max)
    }
}

/// The median (the mean of the two middle values for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

fn cpu(s: Option<f64>) -> String {
    s.map_or("-".into(), |s| format!("{s:.2}"))
}

/// The table of rows, one line each.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<15} {:<5} {:>5} {:>7} {:>6} {:>10} {:>8} {:>8} {:>8} {:>6}   {:>8} {:>9} {:>6} {:>8}\n",
        "target",
        "op",
        "nodes",
        "clients",
        "value",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "errors",
        "cpu s: leader",
        "followers",
        "bench",
        "rss MiB"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<15} {:<5} {:>5} {:>7} {:>6} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>6}   {:>13} {:>9} {:>6.2} {:>8}\n",
            r.key.target.name(),
            r.key.op.name(),
            r.key.nodes,
            r.key.clients,
            r.key.value_size,
            r.ops_per_sec,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.errors,
            cpu(r.leader_cpu_s),
            cpu(r.followers_cpu_total()),
            r.generator_cpu_s,
            r.max_node_rss_mib().map_or("-".into(), |m| format!("{m:.0}"))
        ));
    }
    out
}

/// riptide against `other` (etcd, or riptide on faultfs), point by point: ops/s (p99 ms) of each
/// and riptide's ratio; `None` unless both targets have rows.
pub fn side_by_side(rows: &[Row], other: Target) -> Option<String> {
    let pairs: Vec<(&Row, &Row)> = rows
        .iter()
        .filter(|r| r.key.target == Target::Riptide)
        .filter_map(|r| {
            let twin = PointKey {
                target: other,
                ..r.key
            };
            rows.iter().find(|e| e.key == twin).map(|e| (r, e))
        })
        .collect();
    if pairs.is_empty() {
        return None;
    }
    let mut out = format!(
        "{:<5} {:>5} {:>7} {:>6} {:>22} {:>22} {:>8} {:>9}\n",
        "op",
        "nodes",
        "clients",
        "value",
        "riptide ops/s (p99)",
        format!("{} ops/s (p99)", other.name()),
        "ratio",
        "p99 ratio"
    );
    for (r, e) in pairs {
        let ratio = |a: f64, b: f64| match b > 0.0 {
            true => format!("{:.2}x", a / b),
            false => "-".into(),
        };
        out.push_str(&format!(
            "{:<5} {:>5} {:>7} {:>6} {:>22} {:>22} {:>8} {:>9}\n",
            r.key.op.name(),
            r.key.nodes,
            r.key.clients,
            r.key.value_size,
            format!("{:.0} ({:.2})", r.ops_per_sec, r.p99_ms),
            format!("{:.0} ({:.2})", e.ops_per_sec, e.p99_ms),
            ratio(r.ops_per_sec, e.ops_per_sec),
            ratio(r.p99_ms, e.p99_ms)
        ));
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A sample of a 16-client put on 3 nodes.
    pub(crate) fn row(target: Target, ops: f64, p99: f64, errors: u64) -> Row {
        Row {
            key: PointKey {
                target,
                op: Op::Put,
                nodes: 3,
                clients: 16,
                value_size: 100,
            },
            ops_per_sec: ops,
            p50_ms: p99 / 2.0,
            p99_ms: p99,
            p999_ms: p99 * 2.0,
            errors,
            mismatches: 0,
            leader_cpu_s: Some(ops / 1000.0),
            follower_cpu_s: vec![Some(1.0), None],
            generator_cpu_s: 0.5,
            leader_rss_mib: Some(ops / 10.0),
            follower_rss_mib: vec![Some(30.0), None],
            window_s: 10.0,
            reps: 1,
            first_error: None,
        }
    }

    #[test]
    fn a_row_is_the_median_of_its_samples_with_errors_summed() {
        let samples = [
            row(Target::Riptide, 100.0, 3.0, 0),
            row(Target::Riptide, 300.0, 1.0, 2),
            row(Target::Riptide, 200.0, 2.0, 1),
        ];
        let r = Row::median(&samples);
        assert_eq!(
            (r.ops_per_sec, r.p99_ms, r.errors, r.reps),
            (200.0, 2.0, 3, 3)
        );
        assert_eq!(r.leader_cpu_s, Some(0.2));
        assert_eq!(r.follower_cpu_s, vec![Some(1.0), None]);
        assert_eq!(r.leader_rss_mib, Some(20.0));
        assert_eq!(r.follower_rss_mib, vec![Some(30.0), None]);
        assert_eq!(r.max_node_rss_mib(), Some(30.0));
        assert_eq!(samples[1].max_node_rss_mib(), Some(30.0));
        assert!(table(&samples).contains("rss MiB"));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn two_targets_are_compared_point_by_point() {
        assert!(side_by_side(&[row(Target::Riptide, 1.0, 1.0, 0)], Target::Etcd).is_none());
        let rows = [
            row(Target::Riptide, 3000.0, 2.0, 0),
            row(Target::Etcd, 1000.0, 8.0, 0),
        ];
        let text = side_by_side(&rows, Target::Etcd).unwrap();
        assert!(text.contains("3.00x") && text.contains("0.25x"), "{text}");
        assert!(table(&rows).lines().count() == 3);
        assert!(side_by_side(&rows, Target::RiptideFaultfs).is_none());
        let on_faultfs = [
            row(Target::Riptide, 3000.0, 2.0, 0),
            row(Target::RiptideFaultfs, 1500.0, 4.0, 0),
        ];
        let text = side_by_side(&on_faultfs, Target::RiptideFaultfs).unwrap();
        assert!(text.contains("riptide-faultfs ops/s"), "{text}");
        assert!(text.contains("2.00x") && text.contains("0.50x"), "{text}");
    }
}
